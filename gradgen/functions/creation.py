"""Tensor creation: ``tensor``, factories (``ones``, ``arange``, ...), ``from_numpy``."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..autograd import record
from ..autograd.record import untraceable
from ..dtypes import as_dtype, bool_, dtype, from_numpy_dtype, get_default_dtype, int64
from ..tensor import Tensor
from ._operands import shape_arg


def _infer_dtype(data: Any) -> dtype:
    """PyTorch's inference: bool -> bool, int -> int64, float -> default dtype."""
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, np.ndarray):
        return from_numpy_dtype(data.dtype)
    if isinstance(data, np.generic):
        return from_numpy_dtype(data.dtype) if not isinstance(data, np.floating) or \
            data.dtype == np.float32 or data.dtype == np.float64 else get_default_dtype()
    if isinstance(data, bool):
        return bool_
    if isinstance(data, int):
        return int64
    if isinstance(data, float):
        return get_default_dtype()
    if isinstance(data, (list, tuple)):
        kinds = set()
        _collect_kinds(data, kinds)
        if "f" in kinds:
            return get_default_dtype()
        if "i" in kinds:
            return int64
        if "b" in kinds:
            return bool_
        return get_default_dtype()  # empty lists are float
    raise TypeError(f"Could not infer dtype of {type(data).__name__}")


def _collect_kinds(seq: Any, kinds: set) -> None:
    for x in seq:
        if isinstance(x, (list, tuple)):
            _collect_kinds(x, kinds)
        elif isinstance(x, bool) or (isinstance(x, np.generic) and x.dtype.kind == "b"):
            kinds.add("b")
        elif isinstance(x, (int, np.integer)):
            kinds.add("i")
        elif isinstance(x, (float, np.floating)):
            kinds.add("f")
        elif isinstance(x, Tensor):
            kinds.add("f" if x.dtype.is_floating_point else ("b" if x.dtype is bool_ else "i"))
        elif isinstance(x, np.ndarray):
            kinds.add(x.dtype.kind if x.dtype.kind in "bf" else "i")
        else:
            raise TypeError(f"new(): invalid data type '{type(x).__name__}'")


_NEGATIVE_STRIDES = (
    "At least one stride in the given numpy array is negative, and tensors with negative strides "
    "are not currently supported. (You can probably work around this by making a copy of your "
    "array  with array.copy().) ")


def _positive_strides(arr: np.ndarray) -> np.ndarray:
    """``arr``, refused as PyTorch refuses it when a stride is negative (``a[::-1]``)."""
    if any(s < 0 for s in arr.strides):
        raise ValueError(_NEGATIVE_STRIDES)
    return arr


def _to_array(data: Any, dt: dtype | None) -> np.ndarray:
    """``data`` as a fresh numpy array of gradgen dtype ``dt`` (inferred when None)."""
    if isinstance(data, np.ndarray):
        _positive_strides(data)
    target = dt if dt is not None else _infer_dtype(data)
    if isinstance(data, (Tensor, list, tuple)) and record.tracing() and _holds_tensor(data):
        untraceable("a tensor's value flows into a new tensor: tensor(<tensor>) (use clone().detach())")
    if isinstance(data, Tensor):
        src = data._data
    elif isinstance(data, (list, tuple)):
        src = _nested(data)
    else:
        src = data
    try:
        arr = np.array(src, dtype=target.np)
    except ValueError as e:
        raise ValueError(f"could not build a tensor from the given data: {e}") from None
    if arr.dtype.kind == "O":
        raise TypeError("new(): invalid data type 'object'")
    return arr


def _holds_tensor(data: Any) -> bool:
    if isinstance(data, Tensor):
        return True
    return isinstance(data, (list, tuple)) and any(_holds_tensor(x) for x in data)


def _nested(seq: Any) -> Any:
    """Replace tensors inside nested lists by their values; check the lists are rectangular."""
    out = []
    for x in seq:
        if isinstance(x, (list, tuple)):
            out.append(_nested(x))
        elif isinstance(x, Tensor):
            out.append(x._data)
        else:
            out.append(x)
    lens = {len(x) if isinstance(x, list) else -1 for x in out}
    if len(lens) > 1:
        first = len(out[0]) if isinstance(out[0], list) else None
        bad = next(len(x) for x in out if isinstance(x, list) and len(x) != first) if first is not None else 0
        raise ValueError(f"expected sequence of length {first} at dim 1 (got {bad})")
    return out


def _leaf(arr: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(arr)
    if requires_grad:
        if arr.dtype.kind != "f":  # factories word it with a capital O, unlike requires_grad_()
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t._requires_grad = True
    return t


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (nested lists, numbers, arrays, tensors).

    >>> import gradgen as gg
    >>> gg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)
    """
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.clone().detach() or sourceTensor.clone().detach()."
                      "requires_grad_(True), rather than torch.tensor(sourceTensor).",
                      UserWarning, stacklevel=2)
    return _leaf(_to_array(data, None if dtype is None else as_dtype(dtype)), requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but shares memory with a numpy array or tensor of the same dtype."""
    d = None if dtype is None else as_dtype(dtype)
    if isinstance(data, Tensor) and (d is None or data.dtype is d):
        return data
    if isinstance(data, np.ndarray) and (d is None or data.dtype == d.np):
        from_numpy_dtype(data.dtype)
        return Tensor._make(_positive_strides(data))
    return Tensor._make(_to_array(data, d))


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``ndarray`` (whose dtype must be supported)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    from_numpy_dtype(ndarray.dtype)
    return Tensor._make(_positive_strides(ndarray))


def _factory(fill: Any):
    def fn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           out: Any = None) -> Tensor:
        d = get_default_dtype() if dtype is None else as_dtype(dtype)
        return _leaf(fill(tuple(shape_arg(size)), d.np), requires_grad)
    return fn


ones = _factory(np.ones)
zeros = _factory(np.zeros)
empty = _factory(np.empty)
ones.__name__, zeros.__name__, empty.__name__ = "ones", "zeros", "empty"
ones.__doc__ = "A tensor of ones of the given size."
zeros.__doc__ = "A tensor of zeros of the given size."
empty.__doc__ = "An uninitialized tensor of the given size."


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from the value)."""
    d = _infer_dtype(fill_value) if dtype is None else as_dtype(dtype)
    return _leaf(np.full(tuple(shape_arg((size,))), fill_value, d.np), requires_grad)


def _like(fill: Any):
    def fn(input: Tensor, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
        d = input.dtype if dtype is None else as_dtype(dtype)
        return _leaf(fill(input._data.shape, d.np), requires_grad)
    return fn


ones_like = _like(np.ones)
zeros_like = _like(np.zeros)
empty_like = _like(np.empty)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    d = input.dtype if dtype is None else as_dtype(dtype)
    return _leaf(np.full(input._data.shape, fill_value, d.np), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The identity matrix (``n`` x ``m``)."""
    d = get_default_dtype() if dtype is None else as_dtype(dtype)
    return _leaf(np.eye(n, n if m is None else m, dtype=d.np), requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 when all are integers."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    vals = (start, end, step)
    if dtype is None:
        d = get_default_dtype() if any(isinstance(v, float) for v in vals) else int64
    else:
        d = as_dtype(dtype)
    n = max(0, int(np.ceil((end - start) / step)))
    arr = (start + step * np.arange(n, dtype=np.float64)).astype(d.np) if d.is_floating_point \
        else np.arange(start, end, step, dtype=d.np)
    return _leaf(arr, requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    d = get_default_dtype() if dtype is None else as_dtype(dtype)
    return _leaf(np.linspace(start, end, steps, dtype=np.float64).astype(d.np), requires_grad)


FUNCTIONS = ["tensor", "as_tensor", "from_numpy", "ones", "zeros", "empty", "full", "ones_like",
             "zeros_like", "empty_like", "full_like", "eye", "arange", "linspace"]
