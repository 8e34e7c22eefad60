"""Matrix products: matmul (and ``@``), mm, bmm, dot, mv, outer.

Every product is the one ``matmul`` primitive ([..., m, k] @ [..., k, n] over
identical batch dims) plus ``reshape`` for vectors and ``broadcast_in_dim`` for
broadcast batch dims. ``matmul`` follows PyTorch's dispatch (dot, mv, mm, a
batched operand folded into a matrix, or bmm), so it raises the error of the
kernel PyTorch would have called and names grad_fn as PyTorch does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..dtypes import bool_, int32, int64
from ..ops.elementwise import convert
from ..ops.indexing import slice_ as _slice
from ..ops.reduce import reduce_sum
from ..ops.linalg import _mT, matmul as _matmul_prim
from ..ops.shape import reshape as _reshape_prim
from ..tensor import Tensor
from ._operands import as_tensor_operand, broadcast_shapes, expand_to, not_tensor, require_tensor
from .math import _named
from .math import mul as _mul

_CPP_NAME = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
             "bool": "bool"}
_BOOL_KERNEL = {"mm": "addmm_impl_cpu_", "mv": "addmv_impl_cpu", "dot": "dot", "bmm": "bmm"}


# ---------------------------------------------------------------- argument checks

def _require_tensors(fn: str, other: str, a: Any, b: Any) -> None:
    """PyTorch's TypeError unless both operands of ``fn`` are Tensors."""
    require_tensor(fn, a)
    require_tensor(fn, b, other, 2)


def _check_kernel_dtypes(kernel: str, a: Tensor, b: Tensor) -> None:
    """PyTorch's dtype errors of the kernel ``matmul`` dispatched to (shapes already checked).

    With an empty operand PyTorch's kernels compute nothing: bmm then checks no dtype, mm and
    mv no bool (the result is empty or zeros, see ``_product``)."""
    da, db = a.dtype, b.dtype
    empty = a._data.size == 0 or b._data.size == 0
    if empty and kernel == "bmm":
        return
    if kernel == "bmm" and da is bool_:
        raise NotImplementedError("\"bmm\" not implemented for 'Bool'")
    if da is not db:
        if kernel == "mm":
            raise RuntimeError("expected m1 and m2 to have the same dtype, but got: "
                               f"{_CPP_NAME[da.name]} != {_CPP_NAME[db.name]}")
        if kernel == "mv":
            v, m = db.scalar_name, da.scalar_name
            raise RuntimeError(f"addmv input tensors must have the same dtype, but got {v}, {m}, and {v}")
        if kernel == "dot":
            raise RuntimeError("dot : expected both vectors to have same dtype, but found "
                               f"{da.scalar_name} and {db.scalar_name}")
        raise RuntimeError(f"expected scalar type {da.scalar_name} but found "
                           f"{db.scalar_name}")
    if da is bool_ and not (empty and kernel != "dot"):
        raise NotImplementedError(f"\"{_BOOL_KERNEL[kernel]}\" not implemented for 'Bool'")


def _check_mm_shapes(a: tuple, b: tuple) -> None:
    if a[1] != b[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a[0]}x{a[1]} and "
                           f"{b[0]}x{b[1]})")


def _check_mv_shapes(m: tuple, v: tuple) -> None:
    if m[1] != v[0]:
        raise RuntimeError(f"size mismatch, got input ({m[0]}), mat ({m[0]}x{m[1]}), vec ({v[0]})")


def _check_dot(a: Tensor, b: Tensor) -> None:
    # dot checks dtypes before sizes, unlike the other kernels.
    if a.dtype is not b.dtype:
        _check_kernel_dtypes("dot", a, b)
    (n,), (m,) = a._data.shape, b._data.shape
    if n != m:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{n}] and src [{m}] to "
                           f"have the same number of elements, but got {n} and {m} elements "
                           "respectively")
    _check_kernel_dtypes("dot", a, b)


def _check_bmm_shapes(batch: int, k1: int, k2: int) -> None:
    if k1 != k2:
        raise RuntimeError("Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{batch}, {k1}] but got: [{batch}, {k2}].")


# ---------------------------------------------------------------- primitive application

def _reshape(t: Tensor, shape: tuple) -> Tensor:
    return t if t._data.shape == shape else _reshape_prim(t, shape=shape)


def _product(x: Tensor, y: Tensor) -> Tensor:
    """The matmul primitive on checked, equal-dtype operands (int32 computes as int64); bool
    or mixed operands (passed only when empty) multiply to zeros of ``y``'s dtype, as PyTorch's
    kernels give them."""
    if x._data.dtype != y._data.dtype or x._data.dtype == np.bool_:
        sx, sy = x._data.shape, y._data.shape
        shape = np.broadcast_shapes(sx[:-2], sy[:-2]) + (sx[-2], sy[-1])
        return Tensor._make(np.zeros(shape, y._data.dtype))
    if x._data.dtype == np.int32:
        return convert(_matmul_prim(convert(x, dtype=int64), convert(y, dtype=int64)), dtype=int32)
    return _matmul_prim(x, y)


def _mm(x: Tensor, y: Tensor) -> Tensor:
    return _named(_product(x, y), "MmBackward0")


def _mv(m: Tensor, v: Tensor) -> Tensor:
    k = v._data.shape[0]
    out = _product(m, _reshape_prim(v, shape=(k, 1)))
    return _named(_reshape_prim(out, shape=out._data.shape[:1]), "MvBackward0")


def _dot(a: Tensor, b: Tensor) -> Tensor:
    k = a._data.shape[0]
    out = _product(_reshape_prim(a, shape=(1, k)), _reshape_prim(b, shape=(k, 1)))
    return _named(_reshape_prim(out, shape=()), "DotBackward0")


def _prod(shape: tuple) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# ---------------------------------------------------------------- matmul dispatch

def _prefolds(t1: Tensor, t2: Tensor) -> tuple[Tensor, Tensor]:
    """PyTorch treats a [1, m, k] operand that requires grad as [m, k] against a 3-D one
    whose batch is not 1 (so its gradient is one mm, not a bmm plus a sum)."""
    s1, s2 = t1._data.shape, t2._data.shape
    if len(s1) == 3 and len(s2) == 3 and (s1[0] == 1) != (s2[0] == 1):
        if s1[0] == 1 and t1._requires_grad:
            return _reshape_prim(t1, shape=s1[1:]), t2
        if s2[0] == 1 and t2._requires_grad:
            return t1, _reshape_prim(t2, shape=s2[1:])
    return t1, t2


def _should_fold(t1: Tensor, t2: Tensor) -> bool:
    """PyTorch's choice between folding the batched operand into a matrix (mm/mv) and bmm."""
    d1, d2 = t1._data.ndim, t2._data.ndim
    larger = d1 >= d2
    if not (max(d1, d2) >= 3 and min(d1, d2) <= 2):
        return False
    if (t2 if larger else t1)._requires_grad:
        return True
    if d1 == 2:
        return False
    a = t1._data if larger else np.swapaxes(t2._data, -1, -2)
    if a.size == 0:
        return True
    st, sh = a.strides, a.shape
    return all(st[i] == st[i + 1] * sh[i + 1] for i in range(a.ndim - 2))


def _fold(x: Tensor, y: Tensor) -> Tensor:
    """x: [..., m, k] with y a matrix or vector: one mm/mv on x viewed as [(...)*m, k]."""
    sx = x._data.shape
    rows = _prod(sx[:-1])
    if y._data.ndim == 2:
        _check_mm_shapes((rows, sx[-1]), y._data.shape)
        _check_kernel_dtypes("mm", x, y)
        out = _mm(_reshape_prim(x, shape=(rows, sx[-1])), y)
        shape = sx[:-1] + y._data.shape[1:]
    else:
        _check_mv_shapes((rows, sx[-1]), y._data.shape)
        _check_kernel_dtypes("mv", x, y)
        out = _mv(_reshape_prim(x, shape=(rows, sx[-1])), y)
        shape = sx[:-1]
    return _named(_reshape_prim(out, shape=shape), "UnsafeViewBackward0")


def _fold_transposed(x: Tensor, y: Tensor) -> Tensor:
    """x a matrix or vector, y: [..., k, n]: PyTorch folds y.mT into [(...)*n, k]."""
    sy = y._data.shape
    rows = _prod(sy[:-2]) * sy[-1]
    if x._data.ndim == 2:
        _check_mm_shapes((rows, sy[-2]), x._data.shape[::-1])
        _check_kernel_dtypes("mm", y, x)
        # Computed as a broadcast batched product: the result is contiguous, as
        # PyTorch's (which copies the transposed mm result).
        batch = sy[:-2]
        out = _product(expand_to(x, batch + x._data.shape), y)
        return _named(out, "CloneBackward0" if out._data.size else "TransposeBackward0")
    _check_mv_shapes((rows, sy[-2]), x._data.shape)
    _check_kernel_dtypes("mv", y, x)
    folded = _reshape_prim(_mT(y), shape=(rows, sy[-2]))
    out = _mv(folded, x)
    return _named(_reshape_prim(out, shape=sy[:-2] + sy[-1:]), "UnsafeViewBackward0")


def _batched(x: Tensor, y: Tensor) -> Tensor:
    """The bmm path: broadcast batch dims, multiply, drop the dims of vector operands."""
    sx, sy = x._data.shape, y._data.shape
    bx, by = sx[:-2], sy[:-2]
    batch = broadcast_shapes(bx, by)
    k1 = sx[-1]
    k2 = sy[-2] if len(sy) > 1 else sy[0]
    _check_bmm_shapes(_prod(batch), k1, k2)
    _check_kernel_dtypes("bmm", x, y)
    x2 = x if len(sx) > 1 else _reshape_prim(x, shape=(1, k1))
    y2 = y if len(sy) > 1 else _reshape_prim(y, shape=(k2, 1))
    x2 = expand_to(x2, batch + x2._data.shape[-2:])
    y2 = expand_to(y2, batch + y2._data.shape[-2:])
    out = _named(_product(x2, y2), "BmmBackward0")
    shape = batch + (sx[-2:-1] if len(sx) > 1 else ()) + (sy[-1:] if len(sy) > 1 else ())
    return _named(_reshape_prim(out, shape=shape), "UnsafeViewBackward0")


def _matmul(x: Tensor, y: Tensor) -> Tensor:
    d1, d2 = x._data.ndim, y._data.ndim
    if d1 == 2 and d2 == 2:
        _check_mm_shapes(x._data.shape, y._data.shape)
        _check_kernel_dtypes("mm", x, y)
        return _mm(x, y)
    if d1 == 0 or d2 == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{d1}D and {d2}D")
    if d1 == 1 and d2 == 1:
        _check_dot(x, y)
        return _dot(x, y)
    if d1 == 2 and d2 == 1:
        _check_mv_shapes(x._data.shape, y._data.shape)
        _check_kernel_dtypes("mv", x, y)
        return _mv(x, y)
    if d1 == 1 and d2 == 2:
        _check_mm_shapes((1,) + x._data.shape, y._data.shape)
        _check_kernel_dtypes("mm", x, y)
        out = _mm(_reshape_prim(x, shape=(1,) + x._data.shape), y)
        return _named(_reshape_prim(out, shape=y._data.shape[1:]), "SqueezeBackward4")
    x, y = _prefolds(x, y)
    if _should_fold(x, y):
        return _fold(x, y) if x._data.ndim >= y._data.ndim else _fold_transposed(x, y)
    return _batched(x, y)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D operands and broadcast batch dims.

    >>> import gradgen as torch
    >>> torch.matmul(torch.ones(2, 3), torch.ones(3)).shape
    torch.Size([2])
    """
    _require_tensors("matmul", "other", input, other)
    return _matmul(input, other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices."""
    _require_tensors("mm", "mat2", input, mat2)
    if input._data.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2._data.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    _check_mm_shapes(input._data.shape, mat2._data.shape)
    _check_kernel_dtypes("mm", input, mat2)
    return _mm(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of two 3-D tensors with equal batch sizes (no broadcasting)."""
    _require_tensors("bmm", "mat2", input, mat2)
    if input._data.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2._data.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    (b, _, k), (b2, k2, _) = input._data.shape, mat2._data.shape
    if b != b2 or k != k2:
        raise RuntimeError("Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{b}, {k}] but got: [{b2}, {k2}].")
    _check_kernel_dtypes("bmm", input, mat2)
    return _named(_product(input, mat2), "BmmBackward0")


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """Inner product of two 1-D tensors (a 0-d tensor)."""
    _require_tensors("dot", "tensor", input, tensor)
    if input._data.ndim != 1 or tensor._data.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input._data.ndim}D and "
                           f"{tensor._data.ndim}D tensors")
    _check_dot(input, tensor)
    return _dot(input, tensor)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Product of a matrix and a vector."""
    _require_tensors("mv", "vec", input, vec)
    if input._data.ndim != 2 or vec._data.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input._data.ndim}, "
                           f"{vec._data.ndim}")
    _check_mv_shapes(input._data.shape, vec._data.shape)
    _check_kernel_dtypes("mv", input, vec)
    return _mv(input, vec)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two vectors (types promote, as PyTorch's elementwise product)."""
    _require_tensors("outer", "vec2", input, vec2)
    for name, v in (("self", input), ("vec2", vec2)):
        if v._data.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {v._data.ndim}-D")
    return _mul(_reshape_prim(input, shape=(input._data.shape[0], 1)), vec2)


ger = outer


def matrix_trace(input: Tensor) -> Tensor:
    """``torch.trace``: the sum of a matrix's main diagonal (integers sum as int64); its
    gradient is the cotangent on the diagonal. (``gradgen.trace`` of a function traces it.)"""
    require_tensor("trace", input)
    if input.dtype is bool_:  # (checked before the rank, as PyTorch)
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    if input._data.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim "
                           f"{input._data.ndim}")
    x = input if input.dtype.is_floating_point else convert(input, dtype=int64)
    n, m = x._data.shape
    k = min(n, m)  # the diagonal: every (m + 1)-th element of the row-major flattening
    flat = _reshape_prim(x, shape=(n * m,))
    diagonal = _slice(flat, starts=(0,), stops=((k - 1) * (m + 1) + 1 if k else 0,),
                      steps=(m + 1,))
    return _named(reduce_sum(diagonal, axes=(0,)), "TraceBackward0")


# ---------------------------------------------------------------- methods and operators

def _method(fn_name: str, arg: str, fn: Any):
    def method(self: Tensor, other: Tensor) -> Tensor:
        if not isinstance(other, Tensor):
            raise not_tensor(fn_name, other, arg, 1)
        return fn(self, other)
    method.__name__ = fn_name
    method.__doc__ = fn.__doc__
    return method


def _operand(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return as_tensor_operand(x)
    return None


def _op_matmul(self: Tensor, other: Any) -> Any:
    o = _operand(other)
    return NotImplemented if o is None else _matmul(self, o)


def _op_rmatmul(self: Tensor, other: Any) -> Any:
    o = _operand(other)
    return NotImplemented if o is None else _matmul(o, self)


METHODS = {
    "matmul": _method("matmul", "other", matmul), "mm": _method("mm", "mat2", mm),
    "bmm": _method("bmm", "mat2", bmm), "dot": _method("dot", "tensor", dot),
    "mv": _method("mv", "vec", mv), "outer": _method("outer", "vec2", outer),
    "ger": _method("ger", "vec2", outer), "trace": matrix_trace,
    "__matmul__": _op_matmul, "__rmatmul__": _op_rmatmul,
}
FUNCTIONS = ["matmul", "mm", "bmm", "dot", "mv", "outer", "ger"]
