"""``gradgen.nn.functional`` (``import gradgen.nn.functional as F``): activations, softmax,
linear, layer_norm, losses and dropout, with PyTorch's signatures and errors.

Everything here is a composite of gradgen's front-end functions (so of registry
primitives): none needs a derivative rule of its own, double backward works, and
the compiler sees ordinary primitives. The result's grad_fn carries the name of
PyTorch's fused backward (``SoftmaxBackward0``, ``NllLossBackward0``, ...).
"""
from __future__ import annotations

import builtins
import math
import operator
import warnings
from typing import Any, Sequence

import numpy as np

from ..dtypes import dtype as _dtype
from ..functions._operands import broadcast_shapes, is_index, not_tensor, require_tensor, type_name
from ..functions import math as M
from ..functions.linalg import matmul
from ..functions.math import _named, relu as _relu, sigmoid, tanh
from ..functions.random import bernoulli_mask
from ..tensor import Tensor, _wrap_dim

__all__ = ["relu", "sigmoid", "tanh", "gelu", "softplus", "softmax", "log_softmax", "linear",
           "layer_norm", "mse_loss", "nll_loss", "cross_entropy", "dropout"]

def _scalar_name(t: Tensor) -> str:
    """PyTorch's ScalarType name of ``t``'s dtype (Float, Double, Long, ...)."""
    return t.dtype.scalar_name


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _require_float(x: Tensor, kernel: str) -> None:
    """PyTorch's error for a floating-only kernel applied to an integer or bool tensor."""
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_scalar_name(x)}'")


# ---------------------------------------------------------------- activations

def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); the gradient at 0 is 0."""
    # (require_tensor's check, inline on this hot path; numpy arrays still pass, unlike in
    # PyTorch: tests/test_codegen_matmul.py's float64 oracles apply F.relu to them)
    if not isinstance(input, (Tensor, np.ndarray)):
        raise not_tensor("relu", input)
    return input.relu_() if inplace else _relu(input)


def gelu(input: Tensor, *, approximate: str = "none") -> Tensor:
    """x * Phi(x) with the exact erf form, or the tanh approximation (``approximate="tanh"``)."""
    require_tensor("gelu", input)
    if not isinstance(approximate, str):
        raise TypeError(f"gelu(): argument 'approximate' must be str, not {type_name(approximate)}")
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    _require_float(input, "GeluKernelImpl")
    x = input
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        out = x * 0.5 * (M.tanh(inner) + 1.0)
    else:
        # x/2 * (erf + 1): where erf rounds to -1 (and at -0.0) the result is -0.0, the sign of
        # x * Phi(x). (PyTorch's float32 kernel gives +0.0 there on some machines: AMD EPYC.)
        out = x * 0.5 * (M.erf(x * math.sqrt(0.5)) + 1.0)
    return _named(out, "GeluBackward0")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    require_tensor("softplus", input)
    _require_float(input, "softplus_cpu")
    bx = input * beta
    linear_part = bx > threshold
    # exp() only sees the values it is selected for: the other branch's gradient
    # is then 0, not 0 * inf = nan.
    safe = M.where(linear_part, 0.0, bx)
    if beta == 0:
        # log(2) / 0 = inf, with PyTorch's gradient sigmoid(0 x) = 1/2 (its backward never
        # divides by beta; differentiating the division would give 0 * inf = nan).
        soft = input * 0.5 + (math.inf - (input * 0.5).detach())
    else:
        soft = M.log1p(M.exp(safe)) / beta
    out = M.where(linear_part, input, soft)
    return _named(out, "SoftplusBackward0")


# ---------------------------------------------------------------- softmax

def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _shifted(name: str, input: Tensor, dim: Any, stacklevel: int,
             dtype: Any) -> tuple[int, Tensor]:
    """(wrapped dim, input in the compute dtype minus its detached max along dim)."""
    require_tensor(name, input)
    if dim is None:
        dim = _softmax_dim(name, input.ndim, stacklevel + 1)
    elif not is_index(dim):
        raise TypeError(f"{name}(): argument 'dim' (position 1) must be int, not {type_name(dim)}")
    if dtype is not None and not isinstance(dtype, _dtype):
        raise TypeError(f"{name}(): argument 'dtype' must be torch.dtype, not {type_name(dtype)}")
    x = input if dtype is None else input.to(dtype)
    d = _wrap_dim(operator.index(dim), x.ndim)
    if x._data.size == 0:
        return d, x  # (PyTorch runs no kernel, so checks no dtype: see _empty)
    if not x.dtype.is_floating_point:
        last = "lastdim_" if d == max(x.ndim - 1, 0) else ""
        _require_float(x, f"{name}_{last}kernel_impl")
    # Subtracting the max keeps exp() in range; it is detached because softmax
    # does not depend on it (its exact gradient is zero). A 0-d input is shifted
    # by itself, as a size-1 dim: log_softmax is then exactly 0.
    m = x.detach().amax(d, keepdim=True)
    return d, x - m


def _empty(x: Tensor) -> Tensor:
    """softmax of an empty integer or bool tensor: an empty tensor of its dtype, as PyTorch."""
    return Tensor._make(np.empty(x._data.shape, x._data.dtype))


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, computed stably.

    >>> import gradgen as torch, gradgen.nn.functional as F
    >>> F.softmax(torch.tensor([[1.0, 2.0, 3.0]]), dim=1)
    tensor([[0.0900, 0.2447, 0.6652]])
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # inf inputs give nan, silently
        d, shifted = _shifted("softmax", input, dim, _stacklevel, dtype)
        if not shifted.dtype.is_floating_point:
            return _empty(shifted)
        e = M.exp(shifted)
        return _named(e / e.sum(d, keepdim=True), "SoftmaxBackward0")


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along ``dim``, computed stably."""
    with np.errstate(invalid="ignore", divide="ignore"):  # inf inputs give nan, silently
        d, shifted = _shifted("log_softmax", input, dim, _stacklevel, dtype)
        if not shifted.dtype.is_floating_point:
            return _empty(shifted)
        lse = M.log(M.exp(shifted).sum(d, keepdim=True))
        return _named(shifted - lse, "LogSoftmaxBackward0")


# ---------------------------------------------------------------- linear and layer_norm

def _check_expand(bias: Tensor, target: tuple[int, ...]) -> None:
    """PyTorch's error when ``bias`` does not expand to ``target`` (addmm's bias)."""
    b = bias.shape
    if len(b) > len(target):
        raise RuntimeError(f"expand(torch.{_scalar_name(bias)}Tensor"
                           f"{{{_fmt(b)}}}, size={_fmt(target)}): the number of sizes provided "
                           f"({len(target)}) must be greater or equal to the number of dimensions "
                           f"in the tensor ({len(b)})")
    for i in range(1, len(b) + 1):
        if b[-i] not in (1, target[-i]):
            raise RuntimeError(f"The expanded size of the tensor ({target[-i]}) must match the existing "
                               f"size ({b[-i]}) at non-singleton dimension {len(target) - i}.  Target "
                               f"sizes: {_fmt(target)}.  Tensor sizes: {_fmt(b)}")


def _folds(input: Tensor, bias: Tensor) -> bool:
    """Whether PyTorch computes linear as one addmm on ``input`` folded into a matrix (a 2-D
    input, or a contiguous one with a bias of one dim that is not 1: a row of the output)."""
    if input.ndim == 2:
        return True
    return input._data.flags.c_contiguous and (
        bias.ndim == 1 or builtins.sum(s != 1 for s in bias.shape) == 1)


def _addmm(input: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """bias + input @ weight.T as PyTorch's addmm on ``input`` folded into a matrix: its checks
    (before the product's), its broadcasting of the bias (to the folded result) and names."""
    if bias.dtype is not weight.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                           f"{_scalar_name(bias)} and {_scalar_name(weight)}")
    if weight.ndim == 1:
        raise RuntimeError("mat2 must be a matrix, got 1-D tensor")
    if input.dtype is not weight.dtype:  # (before the shapes, as addmm)
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{_scalar_name(input)} and {_scalar_name(weight)}")
    shape = tuple(input.shape)
    rows = math.prod(shape[:-1])
    out = matmul(input if input.ndim == 2 else input.reshape(rows, shape[-1]), weight.t())
    _check_expand(bias, tuple(out.shape))
    if input.ndim == 2:
        return _named(out + bias, "AddmmBackward0")
    return _named((out + bias).reshape(shape[:-1] + (out.shape[-1],)), "ViewBackward0")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias (``weight``: [out_features, in_features]).

    >>> import gradgen as torch, gradgen.nn.functional as F
    >>> F.linear(torch.ones(2, 3), torch.ones(4, 3), torch.zeros(4)).shape
    torch.Size([2, 4])
    """
    require_tensor("linear", input)
    require_tensor("linear", weight, "weight", 2)
    if input.ndim == 0 or weight.ndim == 0:
        raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are "
                           f"{input.ndim}D and {weight.ndim}D")
    if bias is None:
        return matmul(input, weight.t())
    require_tensor("linear", bias, "bias", 3)
    if _folds(input, bias):
        return _addmm(input, weight, bias)
    # PyTorch adds the bias to the product in place: it may not grow the output.
    out = matmul(input, weight.t())
    full = broadcast_shapes(tuple(out.shape), tuple(bias.shape))
    if full != tuple(out.shape):
        raise RuntimeError(f"output with shape {_fmt(out.shape)} doesn't match the broadcast "
                           f"shape {_fmt(full)}")
    return out + bias


def _check_mixed_dtype(input: Tensor, params: list[Tensor]) -> None:
    """PyTorch's first layer_norm check (before any shape check): a first given parameter of
    another dtype than the input makes a "mixed dtype" call, refused with a message that
    depends on whether the input is float32."""
    if not params or params[0].dtype is input.dtype:
        return
    raise RuntimeError("mixed dtype (CPU): " + (
        "expect parameter to have scalar type of Float" if input.dtype.name == "float32"
        else "all inputs must share same datatype."))


def layer_norm(input: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dims (biased variance), then scale and shift."""
    require_tensor("layer_norm", input)
    for name, pos, p in (("weight", 3, weight), ("bias", 4, bias)):
        if p is not None:
            require_tensor("layer_norm", p, name, pos)
    if not isinstance(normalized_shape, (tuple, list)):
        raise TypeError("layer_norm(): argument 'normalized_shape' (position 2) must be tuple of "
                        f"ints, not {type_name(normalized_shape)}")
    _check_mixed_dtype(input, [p for p in (weight, bias) if p is not None])
    ns = tuple(int(s) for s in normalized_shape)
    if not ns:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., containing "
                           "at least one element, but got normalized_shape = []")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != ns:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got "
                               f"{name} of shape {_fmt(p.shape)} and normalized_shape = {_fmt(ns)}")
    shape = tuple(input.shape)
    if len(shape) < len(ns) or shape[len(shape) - len(ns):] != ns:
        raise RuntimeError(f"Given normalized_shape={_fmt(ns)}, expected input with shape "
                           f"[*, {', '.join(map(str, ns))}], but got input of size{_fmt(shape)}")
    _require_float(input, "LayerNormKernelImpl")
    for p in (weight, bias):
        if p is not None and p.dtype is not input.dtype:
            raise RuntimeError(f"expected scalar type {_scalar_name(input)} but found "
                               f"{_scalar_name(p)}")
    axes = tuple(range(len(shape) - len(ns), len(shape)))
    centered = input - input.mean(axes, keepdim=True)
    var = (centered * centered).mean(axes, keepdim=True)
    out = centered * M.rsqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return _named(out, "NativeLayerNormBackward0")


# ---------------------------------------------------------------- dropout

def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only).

    The mask comes from gradgen's global generator, so ``manual_seed`` repeats it.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    require_tensor("dropout", input)
    if not training or p == 0:
        return input
    if p == 1:
        scale: Any = False  # (PyTorch's input * zeros_like(input): zeros of any dtype)
    elif not input.dtype.is_floating_point:
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{_scalar_name(input)}")
    else:
        mask = bernoulli_mask(tuple(input.shape), 1.0 - p, input.dtype)
        mask *= input.dtype.np.type(1.0 / (1.0 - p))
        scale = Tensor._make(mask)
    return input.mul_(scale) if inplace else M.mul(input, scale)


# The losses live in their own module; imported last because they use softmax above.
from .losses import cross_entropy, mse_loss, nll_loss  # noqa: E402
