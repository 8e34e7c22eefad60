"""Custom autograd functions: ``class F(Function)`` with static ``forward``/``backward``.

The backward engine is built on single-output nodes (see node.py). A Function call
becomes one node, ``<Name>Backward``, which is also the ``ctx`` that forward and
backward receive (as in PyTorch), so ctx attributes are visible on ``grad_fn``.
What becomes of forward's outputs (their grad_fn, aliases, dirty and view outputs, saved
tensors) is in function_outputs.py.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from .grad_mode import _state
from .record import untraceable
from .function_outputs import unpack_saved, wrap_outputs
from .node import FREED_MESSAGE, Node

_LEGACY_MESSAGE = (
    "Legacy autograd function with non-static forward method is deprecated. Please use new-style "
    "autograd function with static forward method. (Example: "
    "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")


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
        return tuple(unpack_saved(self, p) for p in packed)

    def mark_non_differentiable(self, *args: Any) -> None:
        """Declare outputs that are not differentiable: they will not require grad."""
        self._non_differentiable = self._non_differentiable + args

    def mark_dirty(self, *args: Any) -> None:
        """Declare inputs that forward modified in place (and returns as outputs)."""
        self._dirty = self._dirty + args

    def set_materialize_grads(self, value: bool) -> None:
        """Whether None output gradients reach backward as zeros (the default) or as None."""
        self._materialize = bool(value)


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
        return wrap_outputs(Tensor, node, args, out, record)


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
