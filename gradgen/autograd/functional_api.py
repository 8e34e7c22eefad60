"""``backward`` and ``autograd.grad``: argument checking in PyTorch's words, then the engine."""
from __future__ import annotations

from typing import Any

import numpy as np

from .engine import execute
from .node import Node
from .record import refresh_view

# gradgen.tensor imports this package before it defines Tensor, then binds it here (an import
# statement inside backward() would run on every call).
Tensor: Any = None


def _as_tuple(x: Any) -> tuple:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


_ONE: dict[np.dtype, np.ndarray] = {}


def _ones(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """``np.ones(shape, dtype)`` for the implicit gradient of a one-element output; a copy of
    a cached 0-d one is ~5x cheaper than np.ones for the usual scalar loss."""
    if shape:
        return np.ones(shape, dtype)
    one = _ONE.get(dtype)
    if one is None:
        one = _ONE[dtype] = np.ones((), dtype)
    return one.copy()


def _make_grads(outputs: tuple, grads: tuple, is_grads_batched: bool = False) -> list:
    result = []
    for i, out in enumerate(outputs):
        g = grads[i] if i < len(grads) else None
        if g is None:
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if out._data.dtype.kind != "f":
                raise RuntimeError("grad can be implicitly created only for real scalar outputs "
                                   f"but got {out.dtype}")
            result.append(Tensor._make(_ones(out._data.shape, out._data.dtype)))
            continue
        if not isinstance(g, Tensor):
            raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
        if g._data.shape != out._data.shape:
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                               f"output[{i}] has a shape of {out.shape}.")
        if g._data.dtype != out._data.dtype:
            g = g.to(out.dtype)
        result.append(g)
    return result


def _root(t: Any, i: int) -> Node:
    if t._view_op is not None:
        refresh_view(t)  # a stale view backpropagates through its base's current history
    if t._grad_fn is not None:
        return t._grad_fn
    if t._requires_grad:
        return t._get_accumulator()
    raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")


def _target(t: Any) -> Node:
    if t._view_op is not None:
        refresh_view(t)
    if not t._requires_grad:
        raise RuntimeError("One of the differentiated Tensors does not require grad")
    return t._grad_fn if t._grad_fn is not None else t._get_accumulator()


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Any = None) -> None:
    """Accumulate gradients of ``tensors`` into the leaves' ``.grad`` (``torch.autograd.backward``)."""
    outs = _as_tuple(tensors)
    grads = _make_grads(outs, _as_tuple(grad_tensors))
    keep = create_graph if retain_graph is None else retain_graph
    roots = [_root(t, i) for i, t in enumerate(outs)]
    if inputs is None:
        execute(roots, grads, keep, create_graph)
        return
    ins = _as_tuple(inputs)
    if not ins:
        raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    for t in ins:
        if not t._requires_grad:  # PyTorch retains the grad of every input, hence its wording
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    targets = [_target(t) for t in ins]
    captured = execute(roots, grads, keep, create_graph, capture=targets, accumulate=False)
    for t, node in zip(ins, targets):
        g = captured.get(node)
        if g is not None:
            t._accumulate_grad(g) if t._grad_fn is None else t._store_retained_grad(g, create_graph)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True, allow_unused: bool | None = None,
         is_grads_batched: bool = False, materialize_grads: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    >>> import gradgen as gg
    >>> x = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> gg.autograd.grad((x * x).sum(), x)
    (tensor([2., 4.]),)
    """
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    if not ins:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    if allow_unused is None:
        allow_unused = materialize_grads
    grads = _make_grads(outs, _as_tuple(grad_outputs))
    keep = create_graph if retain_graph is None else retain_graph
    roots = [_root(t, i) for i, t in enumerate(outs)]
    targets = [_target(t) for t in ins]
    captured = execute(roots, grads, keep, create_graph, capture=targets, accumulate=False)
    result = []
    for i, (t, node) in enumerate(zip(ins, targets)):
        g = captured.get(node)
        if g is None:
            if materialize_grads:
                g = Tensor._make(np.zeros_like(t._data))
            elif not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the desired "
                                   "behavior.")
        result.append(g)
    return tuple(result)
