"""Custom autograd functions: ``class F(Function)`` with static ``forward``/``backward``.

The backward engine is built on single-output nodes (see node.py). A Function call
becomes one node, ``<Name>Backward``, which is also the ``ctx`` that forward and
backward receive (as in PyTorch), so ctx attributes are visible on ``grad_fn``.

How gradients of several outputs reach that one node: when a call has exactly one
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
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from .grad_mode import _state
from .record import untraceable
from .node import FREED_MESSAGE, Node, modified_message

_LEGACY_MESSAGE = (
    "Legacy autograd function with non-static forward method is deprecated. Please use new-style "
    "autograd function with static forward method. (Example: "
    "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")


_DIRTY_VIEW_OUTPUTS = (
    "If your Function modifies inplace an input that is a view of another Tensor, your Function "
    "cannot return more than one Tensor. This is not supported by the current autograd engine. "
    "You should either make sure the input is not a view (using .clone() for example) or make "
    "your Function only return one Tensor (potentially splitting it into two Functions: one "
    "doing the inplace that returns a single Tensor and a second one that does the other "
    "operations). You can ask on the forum https://discuss.pytorch.org/ if you need help to do "
    "this change.")


def _shape_str(shape: tuple) -> str:
    return f"[{', '.join(map(str, shape))}]"


class FunctionCtx:
    """What ``forward`` and ``backward`` receive as ``ctx``: saved tensors and flags."""

    # Class-level defaults, so a call that uses none of these features sets nothing.
    _to_save: tuple = ()
    _saved: tuple | None = None
    _freed = False
    _dirty: tuple = ()
    _non_differentiable: tuple = ()
    _materialize = True

    def save_for_backward(self, *tensors: Any) -> None:
        """Save tensors (or None) for backward; read them back with ``ctx.saved_tensors``."""
        from ..tensor import Tensor  # noqa: PLC0415
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} "
                                f"is of type {type(t).__name__}")
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        """The saved tensors, checked against in-place changes since they were saved."""
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        packed = self._saved
        if packed is None:  # still inside forward (PyTorch's is empty there), or nothing recorded
            return ()
        return tuple(_unpack(self, p) for p in packed)

    def mark_non_differentiable(self, *args: Any) -> None:
        """Declare outputs that are not differentiable: they will not require grad."""
        self._non_differentiable = self._non_differentiable + args

    def mark_dirty(self, *args: Any) -> None:
        """Declare inputs that forward modified in place (and returns as outputs)."""
        self._dirty = self._dirty + args

    def set_materialize_grads(self, value: bool) -> None:
        """Whether None output gradients reach backward as zeros (the default) or as None."""
        self._materialize = bool(value)


def _unpack(node: Any, p: tuple | None) -> Any:
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


class BackwardCFunction(Node, FunctionCtx):
    """The node of one Function call; also its ``ctx``. Subclassed per Function as XBackward."""

    _forward_cls: type

    def apply(self, grad: Any) -> tuple[Any, ...]:
        grads = self._collect(grad)
        result = self._forward_cls.backward(self, *grads)
        return self._validate(result if isinstance(result, tuple) else (result,))

    def _collect(self, grad: Any) -> list:
        from ..tensor import Tensor  # noqa: PLC0415
        if self._only is not None:
            grads = [None] * len(self._out_meta)
            grads[self._only] = grad
        else:
            grads, self._slots = self._slots, [None] * len(self._out_meta)
        if self._materialize:
            for i, meta in enumerate(self._out_meta):
                if grads[i] is None and meta is not None:
                    grads[i] = Tensor._make(np.zeros(meta[0], meta[1]))
        return grads

    def _validate(self, result: tuple) -> tuple:
        from ..tensor import Tensor  # noqa: PLC0415
        name = self.name()
        n = len(self._next)
        if len(result) != n:
            if len(result) < n or any(g is not None for g in result[n:]):
                raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                                   f"(expected {n}, got {len(result)})")
            result = result[:n]
        grads = []
        for i, (g, meta, nxt) in enumerate(zip(result, self._in_meta, self._next)):
            if g is None:
                grads.append(None)
                continue
            if not isinstance(g, Tensor):
                raise RuntimeError(f"expected Variable or None (got {type(g).__name__})")
            if meta is None:
                raise RuntimeError(f"function {name} returned a gradient different than None at "
                                   f"position {i + 1}, but the corresponding forward input was "
                                   "not a Variable")
            grads.append(None if nxt is None else _conform(g, meta, name, i))
        return tuple(grads)

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        # One edge per tensor argument, as in PyTorch (``_next`` has a slot per argument).
        return tuple(e for e, m in zip(Node.next_functions.fget(self), self._in_meta)
                     if m is not None)

    def __repr__(self) -> str:
        return f"<torch.autograd.function.{type(self).__name__} object at {hex(id(self))}>"

    def release(self) -> None:
        if self._saved:
            self._saved = None
            self._freed = True


def _conform(g: Any, meta: tuple, name: str, i: int) -> Any:
    """PyTorch's validate_outputs: sum a broadcast gradient down to the input's shape, cast dtype."""
    shape, dtype = meta
    gs = g._data.shape
    if gs != shape:
        lead = len(gs) - len(shape)
        if lead < 0 or any(s != 1 and s != d for s, d in zip(shape, gs[lead:])):
            raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - got "
                               f"{_shape_str(gs)} but expected shape compatible with "
                               f"{_shape_str(shape)}")
        if lead:
            g = g.sum(tuple(range(lead)))
        ones = tuple(d for d, (s, h) in enumerate(zip(shape, gs[lead:])) if s == 1 and h != 1)
        if ones:
            g = g.sum(ones, keepdim=True)
    if g._data.dtype != dtype:
        g = g.to(_dtype_of(dtype))
    return g


def _dtype_of(np_dtype: np.dtype) -> Any:
    from ..dtypes import _BY_NP  # noqa: PLC0415
    return _BY_NP[np_dtype]


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


class FunctionMeta(type):
    """Gives every Function subclass its own backward node class, named ``<Name>Backward``."""

    def __init__(cls, name: str, bases: tuple, attrs: dict) -> None:
        cls._backward_cls = type(f"{name}Backward", (BackwardCFunction,), {"_forward_cls": cls})
        super().__init__(name, bases, attrs)


class Function(metaclass=FunctionMeta):
    """Base class for custom differentiable operations.

    >>> import gradgen as gg
    >>> class Cube(gg.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return g * 3 * x * x
    >>> x = gg.tensor([2.0], requires_grad=True)
    >>> Cube.apply(x).sum().backward(); x.grad
    tensor([12.])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(f"{type(self)} should not be instantiated. Methods on autograd functions "
                      "are all static, so you should invoke them on the class itself. "
                      "Instantiating an autograd function will raise an error in a future version "
                      "of PyTorch.", DeprecationWarning, stacklevel=2)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(_LEGACY_MESSAGE)

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        """Compute the outputs (runs with grad mode off). Override as a staticmethod."""
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> Any:
        """Optional: fill ``ctx`` here instead of in a ``forward`` that takes no ctx."""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """One gradient (or None) per forward input. Override as a staticmethod."""
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` and, when an input requires grad, record one backward node."""
        from ..tensor import Tensor  # noqa: PLC0415
        untraceable(f"a custom autograd.Function: {cls.__name__}")
        node = cls._backward_cls.__new__(cls._backward_cls)
        record = False
        if _state.enabled:
            for a in args:
                if isinstance(a, Tensor) and a._requires_grad:
                    record = True
                    break
        if record:
            nexts = tuple((a._grad_fn or a._get_accumulator())
                          if isinstance(a, Tensor) and a._requires_grad else None for a in args)
            node.needs_input_grad = tuple(n is not None for n in nexts)
        else:
            nexts = ()
            node.needs_input_grad = (False,) * len(args)
        Node.__init__(node, nexts)
        prev = _state.enabled
        _state.enabled = False
        try:
            if cls.setup_context is not Function.setup_context:
                out = cls.forward(*args, **kwargs)
                cls.setup_context(node, args, out)
            else:
                out = cls.forward(node, *args, **kwargs)
        finally:
            _state.enabled = prev
        return _wrap_outputs(Tensor, node, args, out, record)


def _wrap_outputs(Tensor: type, node: BackwardCFunction, args: tuple, out: Any, record: bool) -> Any:
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


def once_differentiable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a ``backward`` that is not itself differentiable: it runs with grad mode off."""
    import functools  # noqa: PLC0415

    @functools.wraps(fn)
    def wrapper(ctx: Any, *args: Any) -> Any:
        prev = _state.enabled
        _state.enabled = False
        try:
            return fn(ctx, *args)
        finally:
            _state.enabled = prev
    return wrapper


__all__ = ["Function", "FunctionCtx", "BackwardCFunction", "once_differentiable"]
