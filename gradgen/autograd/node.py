"""Backward nodes (``grad_fn`` objects): one per recorded primitive, plus AccumulateGrad.

A node has exactly one output (every primitive has one), so "the gradient of a
tensor" and "the gradient flowing into its grad_fn" are the same thing. Nodes are
named like PyTorch's classes (``AddBackward0``): each display name gets its own
subclass, so ``type(y.grad_fn).__name__`` and ``repr`` match PyTorch.
"""
from __future__ import annotations

import itertools
import re
from typing import Any, Callable

import numpy as np

from ..dtypes import bool_, float32, float64, int32, int64

_sequence = itertools.count()

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward.")


class Node:
    """A function of the backward graph; ``next_functions`` are its inputs' nodes."""

    __slots__ = ("_next", "_seq", "_pre_hooks", "_retains", "_metadata", "__weakref__")
    # Per output of the last apply(): whether that gradient was made for the call alone
    # (nothing else refers to it), so the engine may hand it to a leaf without a copy.
    # None: copy as usual.
    stealable: tuple[bool, ...] | None = None
    # Whether unit_grads() may answer (a class that holds gradients for a cotangent of one).
    holds_unit: bool = False

    def __init__(self, next_nodes: tuple[Node | None, ...]) -> None:
        self._next = next_nodes
        self._seq = next(_sequence)
        self._pre_hooks: list[Callable[[Any], Any]] | None = None
        self._retains = None  # weakref to a non-leaf tensor that retains its grad
        self._metadata: dict | None = None

    @property
    def metadata(self) -> dict:
        """A dict for the user's own annotations (made on first use: most nodes never need one)."""
        m = self._metadata
        if m is None:
            m = self._metadata = {}
        return m

    def name(self) -> str:
        """The PyTorch-style class name, e.g. ``"MulBackward0"``."""
        return type(self).__name__

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        # A hidden selector (multi-output custom Function) shows as (its Function's node, index).
        return tuple(getattr(n, "_edge", None) or (n, 0) for n in self._next)

    def register_prehook(self, hook: Callable[[tuple], Any]) -> "RemovableHandle":
        """Run ``hook(grad_outputs)`` (a 1-tuple) before this node runs, after its tensor hooks;
        a returned tuple replaces the gradients (PyTorch's ``Node.register_prehook``)."""
        return self._add_pre_hook(_NodePreHook(hook))

    def _add_pre_hook(self, hook: Callable[[Any], Any]) -> "RemovableHandle":
        """Run ``hook(grad)`` on the incoming gradient; a non-None result replaces it (the
        mechanism of ``Tensor.register_hook``: the hook sees the bare tensor)."""
        if self._pre_hooks is None:
            self._pre_hooks = []
        self._pre_hooks.append(hook)
        return RemovableHandle(self._pre_hooks, hook)

    def apply(self, grad: Any) -> tuple[Any, ...]:
        raise NotImplementedError

    def unit_grads(self) -> tuple[Any, ...] | None:
        """``apply(one)`` for an implicit cotangent of one, without making the one, when this
        node already holds those gradients (see ``holds_unit``); None: ``apply`` must run."""
        return None

    def stale(self) -> bool:
        """Whether ``apply`` would raise because a tensor this node saved was written in place
        since (PyTorch's "modified by an inplace operation")."""
        return False

    def release(self) -> None:
        """Free saved values (after a backward without retain_graph)."""

    def __call__(self, grad: Any) -> tuple[Any, ...]:
        return self.apply(grad)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"


class RemovableHandle:
    """What registering a hook returns: ``remove()`` it, or use it as a context manager that
    removes the hook on exit; ``id`` numbers handles as PyTorch's ``RemovableHandle`` does."""

    __slots__ = ("_hooks", "_hook", "id")
    next_id = 0

    def __init__(self, hooks: list, hook: Any) -> None:
        self._hooks, self._hook = hooks, hook
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1

    def remove(self) -> None:
        """Unregister the hook (again: nothing happens)."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class _NodePreHook:
    """A ``Node.register_prehook`` hook in the node's list of pre-hooks: it sees the gradients as
    a tuple and may return a tuple. The engine runs these after the tensor hooks and the
    retain_grad store, as PyTorch runs node pre-hooks after tensor pre-hooks."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[tuple], Any]) -> None:
        self.fn = fn

    def __call__(self, grad: Any) -> Any:
        r = self.fn((grad,))
        if r is None:
            return grad
        if not isinstance(r, tuple):
            raise TypeError(f"expected tuple, but hook returned '{_typename(r)}'")
        if len(r) != 1:
            name = getattr(self.fn, "__name__", type(self.fn).__name__)
            raise RuntimeError(f"hook '{name}' has returned an incorrect number of values (got "
                               f"{len(r)}, but expected 1)")
        new = r[0]
        if new is None or new is grad:
            return new
        if grad is None:
            raise RuntimeError("can't replace a None gradient with a non-None value")
        check_hook_result(self.fn, grad, new)
        return new


def check_hook_result(hook: Any, g: Any, r: Any) -> None:
    """PyTorch's errors for a hook's replacement gradient of another type, size or dtype."""
    if not hasattr(r, "_data") or not hasattr(r, "_grad_fn"):
        raise TypeError(f"expected Variable, but hook returned '{_typename(r)}'")
    name = getattr(hook, "__name__", type(hook).__name__)
    if r._data.shape != g._data.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value")
    if r._data.dtype != g._data.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value (was "
                           f"torch.{_LEGACY_TYPE[g.dtype.name]} got "
                           f"torch.{_LEGACY_TYPE[r.dtype.name]})")


def _typename(x: Any) -> str:
    """A value's type as PyTorch's messages name it (for errors only: imported when needed)."""
    from ..functions._operands import type_name  # noqa: PLC0415
    return type_name(x)


class PrimNode(Node):
    """The backward of one primitive application: calls the registry's VJP rule."""

    __slots__ = ("prim", "params", "_ins", "_versions", "_out", "_needs", "_freed",
                 "_saves_number")

    def apply(self, grad: Any) -> tuple[Any, ...]:
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        ins = self._ins
        if self._versions is not None:
            _check_versions(self, ins, self._versions)
        out = None
        if self._out is not None:
            out = _unpack_output(self)
        return self.prim.vjp(grad, ins, out, self._needs, **self.params)

    def stale(self) -> bool:
        if self._freed:
            return False
        if self._versions is not None and modified(zip(self._ins, self._versions)) is not None:
            return True
        return self._out is not None and self._out[1].value != self._out[2]

    def release(self) -> None:
        # Like PyTorch, a node is "freed" when it saved data: tensors, index arrays (x[mask]),
        # or the number of a user's `x * 3` / `x / 3` (which PyTorch saves as a tensor; see
        # saves_number). The constants of composites and shapes stay, so backward through
        # `x.mean()` or `x + 3` twice works, as in PyTorch.
        ins = self._ins
        if self._out is not None or self._saves_number or (
                self.prim.save_inputs and ins is not None and any(map(_is_data, ins))):
            self._ins = self._out = None
            self._freed = True


def _is_data(a: Any) -> bool:
    return hasattr(a, "_version") or (isinstance(a, np.ndarray) and a.ndim > 0)


def saves_number(t: Any) -> Any:
    """Mark ``t``'s node as PyTorch's for an operation it applied with a Python number that
    PyTorch saves as a tensor (``x * 3``, ``x / 3``): a backward frees it, a second raises."""
    node = t._grad_fn
    if isinstance(node, PrimNode):
        node._saves_number = True
    return t


def modified(saved: Any) -> tuple | None:
    """The first of ``saved`` (``(tensor, version)`` pairs; a None version is not checked)
    written in place since that version, as ``(tensor, version)``; None if none was."""
    for t, v in saved:
        if v is not None and t._version.value != v:
            return t, v
    return None


def _check_versions(node: PrimNode, ins: tuple, versions: tuple) -> None:
    bad = modified(zip(ins, versions))
    if bad is not None:
        raise RuntimeError(modified_message(*bad))


# PyTorch's legacy tensor type names (torch.FloatTensor, ...), by dtype name.
_LEGACY_TYPE = {d.name: f"{d.scalar_name}Tensor" for d in (bool_, int32, int64, float32, float64)}


def display_name(node_name: str) -> str:
    """A node's name as PyTorch's error messages print it: without "Backward" and a 0 overload
    index ("Mul" for MulBackward0, but "Clamp1" for ClampBackward1; "Save" for SaveBackward)."""
    return re.sub(r'Backward(?:0?$|(?=[0-9]+$))', '', node_name)


MULTI_OUTPUT_SUFFIX = (
    " This view is the output of a function that returns multiple views. Such functions do not "
    "allow the output views to be modified inplace. You should replace the inplace operation by "
    "an out-of-place one.")


FUNCTION_OUTPUT_SUFFIX = (
    " This view was created inside a custom Function (or because an input was returned as-is) "
    "and the autograd logic to handle view+inplace would override the custom backward "
    "associated with the custom Function, leading to incorrect gradients. This behavior is "
    "forbidden. You can fix this by cloning the output of the custom Function.")


def multi_output_message(view: Any, index: int, through: str | None = None,
                         indirect: bool = False, in_function: bool = False) -> str:
    """PyTorch's refusal of an output (``index``) of split/chunk/unbind, or of a view or input a
    custom Function returned (``in_function``), or a view of one, being written in place
    (``indirect``: its base, or another view of it, was written and this view is used).
    ``through``: the node name of the view an indexed write takes of it (output 0)."""
    name = through or (view._grad_fn.name() if view._grad_fn is not None else None)
    what = "its base or another view of its base has been" if indirect else "is being"
    if name is None:
        head = f"A view was created in no_grad mode and {what} modified inplace with grad mode enabled."
    else:
        head = (f"Output {0 if through else index} of {display_name(name)} is a view and {what} "
                "modified inplace.")
    return head + (FUNCTION_OUTPUT_SUFFIX if in_function else MULTI_OUTPUT_SUFFIX)


def modified_message(t: Any, expected: int, producer: "Node | None" = None) -> str:
    """PyTorch's error for a saved tensor changed in place before backward used it. A saved
    output names the node that made it (``producer``), a saved input its current grad_fn."""
    what = f"[torch.{_LEGACY_TYPE[t.dtype.name]} [{', '.join(map(str, t.shape))}]]"
    node = producer if producer is not None else t.grad_fn
    if node is not None:
        # PyTorch names the node without "Backward" and a 0 overload index here ("output 0 of
        # Mul", but "Clamp1" for ClampBackward1; a custom Function's "SaveBackward" gives "Save").
        what += f", which is output 0 of {display_name(node.name())},"
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {what} is at version {t._version.value}; expected version "
            f"{expected} instead. Hint: enable anomaly detection to find the operation that "
            "failed to compute its gradient, with torch.autograd.set_detect_anomaly(True, "
            "check_nan=False).")


# Set while a trace is active (gradgen.ir.trace): told of each saved output a backward
# rewraps, so the trace reads it as the value it saved, not as a new constant.
saved_output: list[Callable[[Any, np.ndarray], None] | None] = [None]


def _unpack_output(node: PrimNode) -> Any:
    from ..tensor import Tensor  # noqa: PLC0415
    data, counter, version = node._out
    t = Tensor._make(data, node, counter)
    if counter.value != version:
        raise RuntimeError(modified_message(t, version))
    if saved_output[0] is not None:
        saved_output[0](t, data)
    return t


class AccumulateGrad(Node):
    """Accumulates the incoming gradient into a leaf's ``.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable: Any) -> None:
        super().__init__(())
        self.variable = variable

    def apply(self, grad: Any) -> tuple[Any, ...]:
        self.variable._accumulate_grad(grad)
        return ()

    def name(self) -> str:
        """PyTorch's qualified C++ name (the class still prints as ``AccumulateGrad``)."""
        return "torch::autograd::AccumulateGrad"


_classes: dict[str, type] = {}


def node_class(name: str) -> type:
    """The PrimNode subclass displayed as ``name`` (created once per name)."""
    cls = _classes.get(name)
    if cls is None:
        cls = _classes[name] = type(name, (PrimNode,), {"__slots__": ()})
    return cls


def rename(node: Node, name: str | type) -> None:
    """Display ``node`` as ``name`` (composites name their last primitive's node), or make it
    of node class ``name`` (one whose ``name()`` differs, see view_writes.qualified)."""
    if isinstance(name, type):
        if type(node) is not name and isinstance(node, PrimNode):
            node.__class__ = name
    elif type(node).__name__ != name and isinstance(node, PrimNode):
        node.__class__ = node_class(name)
