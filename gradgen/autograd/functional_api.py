"""``backward`` and ``autograd.grad``: argument checking in PyTorch's words, then the engine."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .engine import execute
from .function_outputs import _OutputSelector
from .node import Node, _typename
from .record import refresh_view

# gradgen.tensor imports this package before it defines Tensor, then binds it here (an import
# statement inside backward() would run on every call).
Tensor: Any = None


def _tensors(x: Any) -> tuple:
    """PyTorch's reading of an outputs/inputs argument: a tensor, or any iterable of them (a
    float raises Python's "'float' object is not iterable", as in PyTorch)."""
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _inputs(x: Any, fn: str) -> tuple:
    """``inputs`` of ``grad``/``backward``: a tensor, an iterable, or a dict (its values)."""
    if isinstance(x, Tensor):
        return (x,)
    if type(x) is dict:
        ins = tuple(x.values())
    elif isinstance(x, Mapping):
        raise TypeError(f"`inputs` argument to `{fn}()` must be a dict, not {type(x).__name__}. "
                        "Other Mapping types are not supported.")
    else:
        ins = tuple(x)
    if not ins:
        raise RuntimeError(f"`inputs` argument to `{fn}()` cannot be empty.")
    return ins


def _check_input(t: Any) -> Any:
    if not isinstance(t, Tensor):
        raise RuntimeError(f"all inputs have to be Tensors or GradientEdges, but got {_typename(t)}")
    return t


def _grads_tuple(g: Any, n: int) -> tuple:
    """PyTorch's ``_tensor_or_tensors_to_tuple``: None for each output, a tensor, or an iterable."""
    if g is None:
        return (None,) * n
    return (g,) if isinstance(g, Tensor) else tuple(g)


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


def _make_grads(outputs: tuple, grads: tuple, batched: bool = False) -> list:
    """PyTorch's ``_make_grads``, then its engine's count check: the gradient for each output
    (an implicit one for a scalar output that requires grad, None for one that does not)."""
    result = []
    for i, (out, g) in enumerate(zip(outputs, grads)):
        if not isinstance(out, Tensor):
            raise AssertionError("Expected output to be a torch.Tensor")
        if g is None:
            if out._requires_grad if out._view_op is None else out.requires_grad:
                if out._data.size != 1:
                    raise RuntimeError("grad can be implicitly created only for scalar outputs")
                if out._data.dtype.kind != "f":
                    raise RuntimeError("grad can be implicitly created only for real scalar "
                                       f"outputs but got {out.dtype}")
                g = Tensor._make(_ones(out._data.shape, out._data.dtype))
            result.append(g)
            continue
        if not isinstance(g, Tensor):
            raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
        first = g[0] if batched else g  # (g[0]: PyTorch's IndexError for an empty batch)
        if first._data.shape != out._data.shape:
            raise RuntimeError(_shape_message(i, first, out, batched))
        if g._data.dtype != out._data.dtype:
            g = g.to(out.dtype)
        result.append(g)
    if len(result) < len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(result)} gradients")
    return result


def _shape_message(i: int, g: Any, out: Any, batched: bool) -> str:
    """PyTorch's; batched, it prints the first batch element's shape without its first dim."""
    if not batched:
        return (f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and output[{i}] "
                f"has a shape of {out.shape}.")
    return ("If `is_grads_batched=True`, we interpret the first dimension of each grad_output as "
            "the batch dimension. The sizes of the remaining dimensions are expected to match the "
            "shape of corresponding output, but a mismatch was detected: grad_output[{i}] has a "
            f"shape of {g.shape[1:]} and output[{i}] has a shape of {out.shape}. If you only want some "
            "tensors in `grad_output` to be considered batched, consider using vmap."
            ).replace("{i}", str(i))


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
    """Accumulate gradients of ``tensors`` into the leaves' ``.grad`` (``torch.autograd.backward``).

    With ``inputs``, only those tensors' gradients are accumulated: a non-leaf input retains
    its gradient from then on (``retain_grad()``) and its node runs, as in PyTorch.
    """
    ins = None if inputs is None else _inputs(inputs, "backward")
    outs = _tensors(tensors)
    grads = _make_grads(outs, _grads_tuple(grad_tensors, len(outs)))
    keep = create_graph if retain_graph is None else retain_graph
    roots = [_root(t, i) for i, t in enumerate(outs)]
    if ins is None:
        execute(roots, grads, keep, create_graph)
        return
    targets = []
    for t in ins:
        _check_input(t).retain_grad()  # (a leaf's is a no-op; one not requiring grad raises)
        node = _target(t)
        # An output of a multi-output custom Function: PyTorch runs the Function's node.
        targets += (node, node._fn) if type(node) is _OutputSelector else (node,)
    execute(roots, grads, keep, create_graph, capture=targets)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True, allow_unused: bool | None = None,
         is_grads_batched: bool = False, materialize_grads: bool = False) -> Any:
    """The gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    ``is_grads_batched``: the first dim of each ``grad_outputs`` tensor is a batch of
    cotangents; the result stacks one backward pass per batch element.

    >>> import gradgen as gg
    >>> x = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> gg.autograd.grad((x * x).sum(), x)
    (tensor([2., 4.]),)
    """
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    if allow_unused is None:
        allow_unused = materialize_grads
    outs = _tensors(outputs)
    ins = _inputs(inputs, "grad")
    grads = _make_grads(outs, _grads_tuple(grad_outputs, len(outs)), is_grads_batched)
    keep = create_graph if retain_graph is None else retain_graph
    if is_grads_batched:
        result = _batched(outs, ins, grads, keep, create_graph, allow_unused)
    else:
        result = _grad(outs, ins, grads, keep, create_graph, allow_unused)
    if materialize_grads:
        result = tuple(Tensor._make(np.zeros_like(t._data)) if g is None else g
                       for g, t in zip(result, ins))
    return dict(zip(inputs.keys(), result)) if type(inputs) is dict else result


def _grad(outs: tuple, ins: tuple, grads: list, keep: bool, create_graph: bool,
          allow_unused: bool) -> tuple:
    """One backward pass of ``grad``: the inputs' gradients, None for an unused one."""
    roots = [_root(t, i) for i, t in enumerate(outs)]
    targets = [_target(_check_input(t)) for t in ins]
    captured = execute(roots, grads, keep, create_graph, capture=targets, accumulate=False)
    result = []
    for i, node in enumerate(targets):
        g = captured.get(node)
        if g is None and not allow_unused:
            raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have been "
                               "used in the graph. Set allow_unused=True if this is the desired "
                               "behavior.")
        result.append(g)
    return tuple(result)


def _batched(outs: tuple, ins: tuple, grads: list, keep: bool, create_graph: bool,
             allow_unused: bool) -> tuple:
    """``grad`` with a batch of cotangents: one pass per batch element (PyTorch vmaps one
    pass), the graph kept until the last; each input's gradients stacked along dim 0."""
    from ..functions.joining import stack  # noqa: PLC0415
    sizes = {g._data.shape[0] if g._data.ndim else None for g in grads if g is not None}
    if None in sizes:  # an implicit 0-d one
        raise ValueError("vmap(vjp, in_dims=0, ...)(<inputs>): Got in_dim=0 for some input, but "
                         "that input is a Tensor of dimensionality 0 so expected in_dim to satisfy "
                         "0 <= in_dim < 0.")
    if len(sizes) > 1:
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sorted(sizes)} for the mapped dimension")
    if not sizes:  # no output requires grad: the unbatched pass raises PyTorch's error
        return _grad(outs, ins, grads, keep, create_graph, allow_unused)
    n = sizes.pop()
    rows = [_grad(outs, ins, [None if g is None else g[b] for g in grads],
                  keep or b < n - 1, create_graph, allow_unused) for b in range(n)]
    return tuple(None if col[0] is None else stack(list(col)) for col in zip(*rows))
