"""Shape operations: reshape and view, transposes, (un)squeeze, expand (flip, repeat and tile:
:mod:`.repeating`).

Everything here is a composite of the layout primitives ``reshape``,
``transpose``, ``broadcast_in_dim`` (``gradgen.ops.shape``) and ``slice_``,
``rev`` (``gradgen.ops.indexing``); ``cat`` and ``stack`` are in :mod:`.joining`. Views share memory and the
version counter with their base (``bind`` sees to that for primitives flagged
``is_view``); results are named like PyTorch's grad_fn classes.
"""
from __future__ import annotations

import math
import operator
import warnings
from typing import Any, Sequence

import numpy as np

from ..autograd.node import _LEGACY_TYPE
from ..ops import shape as P
from ..tensor import Tensor, _wrap_dim
from ._operands import (broadcast_shapes, is_index, overload_error, shape_arg, tensor_function,
                        type_name)
from .math import _named

VIEW_ERROR = ("view size is not compatible with input tensor's size and stride (at least one "
              "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _dims_arg(args: tuple, kw: Any, name: str) -> tuple[int, ...]:
    """Dims given as ``f(0, 1)``, ``f((0, 1))`` or ``f(dims=(0, 1))``."""
    if kw is not None:
        args = (kw,)
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if not is_index(a):
            raise TypeError(f"{name}(): argument 'dims' must be tuple of ints, but found element "
                            f"of type {type_name(a)}")
    return tuple(operator.index(a) for a in args)


def _distinct(dims: Sequence[int], ndim: int) -> tuple[int, ...]:
    out = tuple(_wrap_dim(d, ndim) for d in dims)
    seen: set[int] = set()
    for d in out:
        if d in seen:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        seen.add(d)
    return out


# ---------------------------------------------------------------- reshape family

def infer_shape(shape: Sequence[int], numel: int) -> tuple[int, ...]:
    """``shape`` with its ``-1`` entry filled in, PyTorch's errors on misuse."""
    infer = None
    known = 1
    for i, s in enumerate(shape):
        if s == -1:
            if infer is not None:
                raise RuntimeError("only one dimension can be inferred")
            infer = i
        elif s < 0:
            raise RuntimeError(f"invalid shape dimension {s} at index {i} of shape {_fmt(shape)}")
        else:
            known *= s
    if infer is None:
        if known == numel:
            return tuple(shape)
    elif known == 0 and numel == 0:
        raise RuntimeError(f"cannot reshape tensor of 0 elements into shape {_fmt(shape)} because "
                           "the unspecified dimension size -1 can be any value and is ambiguous")
    elif known and numel % known == 0:
        return tuple(shape[:infer]) + (numel // known,) + tuple(shape[infer + 1:])
    raise RuntimeError(f"shape '{_fmt(shape)}' is invalid for input of size {numel}")


def _reshape_to(input: Tensor, shape: tuple[int, ...]) -> Tensor:
    out = P.reshape(input, shape=shape)
    if out._version is not input._version:
        return _named(out, "UnsafeViewBackward0")  # numpy had to copy: PyTorch's clone + view
    return out if input._data.flags.c_contiguous else _named(out, "ReshapeAliasBackward0")


def _sizes(args: tuple, kw: dict, name: str, keyword: str) -> tuple:
    """Sizes given positionally (``f(2, 3)``, ``f((2, 3))``) or by PyTorch's keyword
    (``reshape(shape=...)``, ``view(size=...)``), for ``shape_arg``."""
    if kw:
        unknown = set(kw) - {keyword}
        if unknown or args:
            bad = sorted(unknown)[0] if unknown else keyword
            raise TypeError(f"{name}() got an unexpected keyword argument '{bad}'")
        return (kw[keyword],)
    return args


def reshape(input: Tensor, *shape: Any, **kw: Any) -> Tensor:
    """The same elements in ``shape`` (one entry may be -1); a view when strides allow.

    >>> import gradgen as gg
    >>> gg.arange(6).reshape(2, -1).shape
    torch.Size([2, 3])
    """
    shape = _sizes(shape, kw, "reshape", "shape")
    return _reshape_to(input, infer_shape(shape_arg(shape), input._data.size))


def view(input: Tensor, *shape: Any, **kw: Any) -> Tensor:
    """Like ``reshape`` but always a view; raises PyTorch's error when strides do not allow one."""
    shape = _sizes(shape, kw, "view", "size")
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer, Tensor)):
        raise NotImplementedError("gradgen: Tensor.view(dtype) is not supported; use .to(dtype)")
    out = P.reshape(input, shape=infer_shape(shape_arg(shape), input._data.size))
    if out._version is not input._version and input._data.size:
        raise RuntimeError(VIEW_ERROR)  # numpy had to copy: the strides allow no view
    return out


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return view(input, other.shape)


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, other.shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (returns ``input`` itself when there is nothing to merge)."""
    shape = input._data.shape
    if not shape:
        return P.reshape(input, shape=(1,))
    s, e = _wrap_dim(start_dim, len(shape)), _wrap_dim(end_dim, len(shape))
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    return _reshape_to(input, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one entry may be -1)."""
    shape = input._data.shape
    d = _wrap_dim(operator.index(dim), len(shape))
    sizes = list(shape_arg((sizes,)))
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    unexpected = "unflatten got an unexpected error:\n"
    if not shape:
        raise RuntimeError(f"{unexpected}Dimension specified as {d} but tensor has no dimensions")
    try:
        filled = infer_shape(sizes, shape[d])
    except RuntimeError as e:
        if str(e) == "only one dimension can be inferred":
            raise RuntimeError(unexpected + str(e)) from None
        raise RuntimeError(f"unflatten: Provided sizes {_fmt(sizes)} don't multiply up to the size "
                           f"of dim {d} ({shape[d]}) in the input tensor") from None
    return _named(P.reshape(input, shape=shape[:d] + filled + shape[d + 1:]), "ViewBackward0")


# ---------------------------------------------------------------- transposes

def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap dims ``dim0`` and ``dim1`` (a view)."""
    nd = input._data.ndim
    a, b = _wrap_dim(dim0, nd), _wrap_dim(dim1, nd)
    perm = list(range(nd))
    if nd:  # (a 0-d tensor takes dims 0 and -1, and comes back as a view)
        perm[a], perm[b] = perm[b], perm[a]
    return _named(P.transpose(input, perm=tuple(perm)), "TransposeBackward0")


def permute(input: Tensor, *dims: Any, **kw: Any) -> Tensor:
    """Reorder the dims as ``dims`` (a view)."""
    if not dims and not kw:
        raise TypeError('permute() missing 1 required positional arguments: "dims"')
    dims = _dims_arg(dims, kw.pop("dims", None), "permute")
    nd = input._data.ndim
    if len(dims) != nd:
        raise RuntimeError("permute(sparse_coo): number of dimensions in the tensor input does not "
                           "match the length of the desired ordering of dimensions i.e. input.dim() "
                           f"= {nd} is not equal to len(dims) = {len(dims)}")
    perm = tuple(_wrap_dim(d, nd) for d in dims)
    if len(set(perm)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return P.transpose(input, perm=perm)


def t(input: Tensor) -> Tensor:
    """Transpose a matrix; 0-d and 1-d tensors come back as they are (still a new view)."""
    nd = input._data.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    return _named(P.transpose(input, perm=tuple(reversed(range(nd)))), "TBackward0")


def _T(self: Tensor) -> Tensor:
    nd = self._data.ndim
    if nd == 0:
        warnings.warn("Tensor.T is deprecated on 0-D tensors. This function is the identity in "
                      "these cases.", UserWarning, stacklevel=2)
    elif nd != 2:
        warnings.warn("The use of `x.T` on tensors of dimension other than 2 to reverse their shape "
                      "is deprecated and it will throw an error in a future release. Consider `x.mT` "
                      "to transpose batches of matrices or `x.permute(*torch.arange(x.ndim - 1, -1, "
                      "-1))` to reverse the dimensions of a tensor.", UserWarning, stacklevel=2)
    return P.transpose(self, perm=tuple(reversed(range(nd))))


def _mT(self: Tensor) -> Tensor:
    nd = self._data.ndim
    if nd == 0:  # (PyTorch 2.13 returns a 0-d tensor itself)
        return self
    if nd < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {nd}-D tensor.")
    return _transpose(self, -2, -1)


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (ints or sequences), keeping the others' order."""
    nd = input._data.ndim
    src, dst = ([operator.index(d)] if is_index(d) else list(_dims_arg((d,), None, "movedim"))
                for d in (source, destination))
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({_fmt(src)} dims) "
                           f"should contain the same number of dims as destination ({_fmt(dst)} dims)")
    wsrc = [_wrap_dim(d, nd) for d in src]
    wdst = [_wrap_dim(d, nd) for d in dst]
    for name, ds, given in (("source", wsrc, src), ("destination", wdst, dst)):
        if len(set(ds)) != len(ds):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({_fmt(given)})")
    rest = iter(d for d in range(nd) if d not in wsrc)
    placed = dict(zip(wdst, wsrc))
    perm = tuple(placed[i] if i in placed else next(rest) for i in range(nd))
    out = P.transpose(input, perm=perm)
    return _named(out, "AliasBackward0") if not nd else out


# ---------------------------------------------------------------- size-1 dims and broadcasting

def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim`` (a view)."""
    shape = input._data.shape
    d = _wrap_dim(operator.index(dim), len(shape) + 1)
    return _named(P.reshape(input, shape=shape[:d] + (1,) + shape[d:]), "UnsqueezeBackward0")


def _squeeze_method(self: Tensor, *dims: Any, **kw: Any) -> Tensor:
    """``Tensor.squeeze``, which also takes several dims as separate arguments."""
    if len(dims) > 1:
        dims = (dims,)
    return _squeeze(self, *dims, **kw)


_SQUEEZE_SIGNATURES = ["Tensor input", "Tensor input, int dim", "Tensor input, tuple of ints dim",
                       "Tensor input, name dim"]


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Remove size-1 dims: all of them, or those among ``dim`` (an int or a tuple)."""
    shape = input._data.shape
    if dim is None:
        dims, name = tuple(range(len(shape))), "SqueezeBackward0"
    elif is_index(dim):
        dims, name = (_wrap_dim(operator.index(dim), len(shape)),), "SqueezeBackward1"
    elif isinstance(dim, (tuple, list)):
        dims, name = _distinct(_dims_arg((dim,), None, "squeeze"), len(shape)), "SqueezeBackward2"
    else:
        raise overload_error("squeeze", (dim,), _SQUEEZE_SIGNATURES)
    new = tuple(s for i, s in enumerate(shape) if not (s == 1 and i in dims))
    return _named(P.reshape(input, shape=new), name)


def expanded_shape(shape: tuple[int, ...], want: tuple[int, ...], dtype_name: str) -> tuple[int, ...]:
    """``shape`` broadcast to ``want`` (-1 keeps a dim), with PyTorch's expand errors."""
    lead = len(want) - len(shape)
    if lead < 0:
        legacy = (f"CPUBoolType{{{_fmt(shape)}}}" if dtype_name == "bool"  # (PyTorch's wording)
                  else f"torch.{_LEGACY_TYPE[dtype_name]}{{{_fmt(shape)}}}")
        raise RuntimeError(f"expand({legacy}, size={_fmt(want)}): the number of sizes provided "
                           f"({len(want)}) must be greater or equal to the number of dimensions in "
                           f"the tensor ({len(shape)})")
    out = list(want)
    for i in range(len(want) - 1, -1, -1):  # (from the last dim, as PyTorch checks)
        s = want[i]
        if i < lead:
            if s < 0:
                raise RuntimeError(f"The expanded size of the tensor ({s}) isn't allowed in a "
                                   f"leading, non-existing dimension {i}")
        else:
            cur = shape[i - lead]
            s = cur if s == -1 else s
            if cur != 1 and s != cur:
                raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing "
                                   f"size ({cur}) at non-singleton dimension {i}.  Target sizes: "
                                   f"{_fmt(want)}.  Tensor sizes: {_fmt(shape)}")
        out[i] = s
    return tuple(out)


def expand(input: Tensor, *sizes: Any, **kw: Any) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps a dim); new dims go in front."""
    if not sizes and not kw:
        raise TypeError('expand() missing 1 required positional arguments: "size"')
    want = tuple(shape_arg(_sizes(sizes, kw, "expand", "size")))
    shape = input._data.shape
    out = expanded_shape(shape, want, input.dtype.name)
    return P.broadcast_in_dim(input, shape=out, dims=tuple(range(len(out) - len(shape), len(out))))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


def broadcast_to(input: Tensor, size: Any) -> Tensor:
    return expand(input, size)


def _broadcast_to_method(self: Tensor, *size: Any, **kw: Any) -> Tensor:
    """``Tensor.broadcast_to``, which also takes the sizes as separate arguments."""
    return expand(self, *_sizes(size, kw, "broadcast_to", "size"))


def broadcast_tensors(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Expand every tensor to their common broadcast shape (tensors already of it come back as they are)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type_name(x)}")
    shape: tuple = ()
    for x in tensors:
        shape = broadcast_shapes(shape, x._data.shape)
    return tuple(x if x._data.shape == shape else expand(x, shape) for x in tensors)


METHODS = {
    "reshape": reshape, "view": view, "view_as": view_as, "reshape_as": reshape_as,
    "flatten": flatten, "unflatten": unflatten, "transpose": transpose, "swapaxes": transpose,
    "swapdims": transpose, "permute": permute, "t": t, "T": property(_T), "mT": property(_mT),
    "movedim": movedim, "moveaxis": movedim, "unsqueeze": unsqueeze, "squeeze": _squeeze_method,
    "expand": expand, "expand_as": expand_as, "broadcast_to": _broadcast_to_method,
}

FUNCTIONS = [
    "reshape", "flatten", "unflatten", "transpose", "swapaxes", "swapdims", "permute", "t",
    "movedim", "moveaxis", "unsqueeze", "squeeze", "broadcast_to", "broadcast_tensors",
]

# The torch-level functions check that their input is a Tensor (the methods need not).
_MOVEDIM_SIGNATURES = ["Tensor input, int source, int destination",
                       "Tensor input, tuple of ints source, tuple of ints destination"]
_squeeze, _transpose = squeeze, transpose  # (the methods', unchecked)
swapaxes, swapdims = tensor_function(transpose, "swapaxes"), tensor_function(transpose, "swapdims")
movedim = tensor_function(movedim, overloads=_MOVEDIM_SIGNATURES)
moveaxis = tensor_function(METHODS["moveaxis"], "moveaxis", overloads=_MOVEDIM_SIGNATURES)
reshape, flatten, unflatten, transpose, permute, t, unsqueeze, squeeze = (
    tensor_function(f) for f in (reshape, flatten, unflatten, transpose, permute, t, unsqueeze,
                                 squeeze))
broadcast_to = tensor_function(broadcast_to)
