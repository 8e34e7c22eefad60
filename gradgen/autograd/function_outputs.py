"""What a custom Function's call makes of forward's outputs (see function.py).

How gradients of several outputs reach the one node of a Function call: when a call has exactly one
differentiable output, that output's ``grad_fn`` is the node itself and its
gradient arrives directly. With two or more, each differentiable output gets a
tiny ``_OutputSelector`` node whose only next function is the Function's node.
The engine sums each output's gradient in its selector's buffer as usual; the
selector writes it into slot ``i`` of the Function's node and passes on a 0-d
zero as a token, so the engine's dependency counting runs the Function's node
once, after every selector that will run has run. Selectors are invisible to
users: ``grad_fn`` and ``next_functions`` show ``(FunctionNode, i)`` like
PyTorch, while per-output hooks and ``retain_grad`` attach to the selector and
see exactly that output's gradient. The engine needs no change.

A returned input, or a tensor of the graph, becomes an alias viewing it; a view forward
returns, or such an alias, is a view PyTorch refuses to write into or to use after its base
was written (the Function's backward would be overridden). A dirty view (``mark_dirty``) has
its base rebased around the Function's node (CopySlices), as an in-place op through a view
would. Saved outputs are kept as data and counter and rebuilt on each access.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .node import Node, modified_message

if TYPE_CHECKING:
    from .function import BackwardCFunction


_DIRTY_VIEW_OUTPUTS = (
    "If your Function modifies inplace an input that is a view of another Tensor, your Function "
    "cannot return more than one Tensor. This is not supported by the current autograd engine. "
    "You should either make sure the input is not a view (using .clone() for example) or make "
    "your Function only return one Tensor (potentially splitting it into two Functions: one "
    "doing the inplace that returns a single Tensor and a second one that does the other "
    "operations). You can ask on the forum https://discuss.pytorch.org/ if you need help to do "
    "this change.")


class _OutputSelector(Node):
    """Routes output ``i``'s gradient into slot ``i`` of a multi-output Function's node."""

    __slots__ = ("_fn", "_index")

    def __init__(self, fn: BackwardCFunction, index: int) -> None:
        super().__init__((fn,))
        self._fn, self._index = fn, index

    def apply(self, grad: Any) -> tuple[Any, ...]:
        from ..tensor import Tensor  # noqa: PLC0415
        self._fn._slots[self._index] = grad
        return (Tensor._make(np.zeros((), grad._data.dtype)),)

    def name(self) -> str:
        return self._fn.name()

    @property
    def _visible(self) -> BackwardCFunction:  # what tensor.grad_fn shows
        return self._fn

    @property
    def _edge(self) -> tuple[Node, int]:  # what next_functions shows
        return (self._fn, self._index)

    def __repr__(self) -> str:
        return repr(self._fn)


def wrap_outputs(Tensor: type, node: BackwardCFunction, args: tuple, out: Any, record: bool) -> Any:
    """Attach ``node`` to the differentiable outputs, alias returned inputs, pack saved tensors."""
    is_tuple = isinstance(out, tuple)
    raw = out if is_tuple else (out,)
    dirty = node._dirty
    outs = []
    for k, o in enumerate(raw):
        if isinstance(o, Tensor):
            if dirty and any(o is d for d in dirty):
                _mark_dirty_output(o, record)
            elif o._requires_grad or any(o is a for a in args):
                alias = Tensor._make(o._data, None, o._version)  # forward returned a graph tensor
                alias._base = o._base if o._base is not None else o
                if record:
                    _function_view(alias, o, k)
                o = alias
            elif record and o._view_op is not None and o._base is not None:
                _function_view(o, o, k)  # a view forward made of an input
        outs.append(o)
    if dirty and not all(any(d is r for r in raw) for d in dirty):
        raise RuntimeError("Some elements marked as dirty during the forward method were not "
                           "returned as output. The inputs that are modified inplace must all be "
                           "outputs of the Function.")
    node._in_meta = tuple((a._data.shape, a._data.dtype) if isinstance(a, Tensor) else None
                          for a in args)
    node._out_meta = tuple((o._data.shape, o._data.dtype) if isinstance(o, Tensor) else None
                           for o in outs)
    if record:
        # A dirty view: its base's history is what it was before forward wrote through it.
        rebased = []
        views = [o for o in outs if dirty and isinstance(o, Tensor)
                 and any(o is d for d in dirty) and _tracked_view(o)]
        if views:
            if len(raw) > 1:
                raise RuntimeError(_DIRTY_VIEW_OUTPUTS)
            from ..functions.view_writes import base_alias, write_through_view  # noqa: PLC0415
            rebased = [(o, base_alias(o, False)) for o in views]
        _attach(Tensor, node, raw, outs)
        for o, old_base in rebased:  # the base's CopySlices around node
            if o._grad_fn is not None:  # (its value with node's history: not a stale view)
                write_through_view(o, Tensor._make(o._data, o._grad_fn), old_base, False)
    return tuple(outs) if is_tuple else outs[0]


def _function_view(t: Any, source: Any, k: int) -> None:
    """Make ``t``, output ``k``, a view of ``source``'s base that PyTorch refuses to write into
    or to use after its base was written (a custom Function's backward would be overridden)."""
    vo = source._view_op
    root, steps = (vo[0], vo[1]) if vo is not None and source._base is not None else (source, ())
    t._view_op = [root, steps, True, t._version.value, k, True]


def _tracked_view(t: Any) -> bool:
    """Whether ``t`` is a view whose writes its base's history must record (made in grad
    mode, of a base that requires grad)."""
    vo = t._view_op
    return vo is not None and t._base is not None and vo[2] and vo[0]._requires_grad


def _mark_dirty_output(t: Any, record: bool) -> None:
    if record and t._grad_fn is None and t._requires_grad:
        raise RuntimeError("a leaf Variable that requires grad has been used in an in-place "
                           "operation.")
    t._version.value += 1


def _attach(Tensor: type, node: BackwardCFunction, raw: tuple, outs: list) -> None:
    non_diff = node._non_differentiable
    diff = []
    for i, (r, o) in enumerate(zip(raw, outs)):
        if isinstance(o, Tensor):
            if non_diff and any(r is n for n in non_diff):
                o._requires_grad = False
            elif o._data.dtype.kind == "f":
                diff.append(i)
    if len(diff) == 1:
        node._only = diff[0]
        o = outs[diff[0]]
        o._grad_fn = node
        o._requires_grad = True
    else:
        node._only = None
        node._slots = [None] * len(outs)
        for i in diff:
            outs[i]._grad_fn = _OutputSelector(node, i)
            outs[i]._requires_grad = True
    if node._to_save:
        node._saved = _pack(node._to_save, raw, outs)
        del node._to_save  # it may hold outputs, whose grad_fn is this node: no cycles


def _pack(tensors: tuple, raw: tuple, outs: list) -> tuple:
    """(tensor, version, rebuild) per saved tensor; outputs keep data+counter, not the tensor."""
    packed = []
    for t in tensors:
        if t is None:
            packed.append(None)
            continue
        i = next((k for k, r in enumerate(raw) if r is t), None)
        if i is None:
            packed.append((t, t._version.value, None))
        else:
            o = outs[i]
            packed.append((None, o._version.value, (o._data, o._version, i, o._grad_fn is not None)))
    return tuple(packed)


def unpack_saved(node: Any, p: tuple | None) -> Any:
    """A saved tensor as ``ctx.saved_tensors`` gives it back (see :func:`_pack`)."""
    from ..tensor import Tensor  # noqa: PLC0415
    if p is None:
        return None
    t, version, rebuild = p
    if rebuild is not None:
        # An output: rebuilt on each access (holding it, or its grad_fn, would make node._saved
        # a reference cycle through the node). Its grad_fn leads back into this node.
        data, counter, index, differentiable = rebuild
        if not differentiable:
            grad_fn = None
        elif node._only is not None:
            grad_fn = node
        else:
            grad_fn = _OutputSelector(node, index)
        t = Tensor._make(data, grad_fn, counter)
    if t._version.value != version:
        raise RuntimeError(modified_message(t, version))
    return t


__all__ = ["wrap_outputs", "unpack_saved"]
