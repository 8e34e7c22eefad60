"""Loss functions of ``gradgen.nn.functional``: mse_loss, nll_loss, cross_entropy.

Composites of gradgen's front-end functions (one definition each), with PyTorch's
argument checks, reductions and error messages.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..autograd.grad_mode import is_grad_enabled
from ..dtypes import bool_
from ..functions import gather as _ix
from ..functions import math as M
from ..functions.indexing import _tracing
from ..functions.math import _named
from ..ops.indexing import check_index, check_index_values, take_along
from ..tensor import Tensor
from ..functions._operands import is_index, require_tensor, type_name
from .functional import _fmt, _require_float, _scalar_name, log_softmax


# ---------------------------------------------------------------- losses

def _reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    """PyTorch's reduction argument, including the deprecated size_average/reduce pair."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
        warnings.warn(f"size_average and reduce args will be deprecated, please use "
                      f"reduction='{reduction}' instead.", UserWarning, stacklevel=3)
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' "
                      "instead.", UserWarning, stacklevel=3)
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def mse_loss(input: Tensor, target: Tensor, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean (or sum, or none) of the squared differences; ``weight`` scales them elementwise."""
    if target.size() != input.size():
        warnings.warn(f"Using a target size ({target.size()}) that is different to the input size "
                      f"({input.size()}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", UserWarning, stacklevel=2)
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    if weight is None and input.dtype is bool_ and target.dtype is bool_:
        _reduction(None, None, reduction)
        _require_float(input, "mse_cpu")  # (before bool - bool, which PyTorch refuses too)
    diff = input - target
    if weight is not None:
        # PyTorch's weighted form: plain ops, and 'mean' divides by the total weight.
        if weight.size() != input.size():
            raise ValueError("Weights and input must have the same size.")
        loss = diff.pow(2) * weight
        if reduction not in ("none", "sum", "mean"):
            raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', "
                             "'sum'.")
        return loss if reduction == "none" else (
            loss.sum() if reduction == "sum" else loss.sum() / weight.sum())
    reduction = _reduction(None, None, reduction)
    if not diff.dtype.is_floating_point:
        _require_float(diff, "mse_cpu")
    return _named(_reduce(diff * diff, reduction), "MseLossBackward0")


def _require_operands(fn: str, input: Any, target: Any, weight: Any, ignore_index: Any) -> None:
    """PyTorch's TypeErrors for a loss's input, target or weight that is no Tensor, and for an
    ignore_index that is no integer."""
    require_tensor(fn, input, "input", 1)
    require_tensor(fn, target, "target", 2)
    if weight is not None:
        require_tensor(fn, weight, "weight", 3)
    if not is_index(ignore_index):
        pos = 5 if fn == "cross_entropy_loss" else 4
        raise TypeError(f"{fn}(): argument 'ignore_index' (position {pos}) must be int, not "
                        f"{type_name(ignore_index)}")


def _check_nll(input: Tensor, target: Tensor, weight: Tensor | None) -> int:
    """PyTorch's shape, dtype and weight checks of nll_loss; returns the number of classes."""
    nd = input.ndim
    if nd < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {nd})")
    if nd != 1 and input.shape[0] != (target.shape[0] if target.ndim else 0):
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0] if target.ndim else 0}).")
    if nd <= 2:
        if target.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if nd == 1 and target.ndim == 1 and target.shape[0] != 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: "
                             f"{target.shape[0]}")
    elif nd == 4:
        if target.ndim != 3:
            raise RuntimeError("only batches of spatial targets supported (3D tensors) but got "
                               f"targets of dimension: {target.ndim}")
        if tuple(target.shape) != (input.shape[0],) + tuple(input.shape[2:]):
            raise RuntimeError(f"size mismatch (got input: {_fmt(input.shape)} , target: "
                               f"{_fmt(target.shape)}")
    elif tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"Expected target size {_fmt((input.shape[0],) + tuple(input.shape[2:]))}, "
                           f"got {_fmt(target.shape)}")
    if target.dtype.name != "int64":
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_scalar_name(target)}")
    classes = input.shape[1] if nd >= 2 else input.shape[0]
    if weight is not None and (weight.numel() != classes or (nd <= 2 and weight.ndim != 1)):
        if nd <= 2:
            raise RuntimeError(f"weight tensor should be defined either for all {classes} classes or no "
                               f"classes but got weight tensor of shape: {_fmt(weight.shape)}")
        raise RuntimeError("weight tensor should be defined either for all or no classes")
    _require_float(input, "nll_loss_out_frame" if nd <= 2 else "nll_loss2d_forward_out_frame")
    if weight is not None and weight.dtype is not input.dtype:
        raise RuntimeError(f"expected scalar type {_scalar_name(input)} but found {_scalar_name(weight)}")
    if weight is not None and weight.requires_grad and is_grad_enabled():
        raise RuntimeError("The function 'nll_loss_forward' is not differentiable with respect to "
                           "argument 'weight'. This input cannot have requires_grad True.")
    return classes


def _target_weights(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                    classes: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(valid mask, target with ignored entries replaced by class 0, weight of each target).

    With ``classes``, a target outside ``[0, classes)`` (and not ignored) raises PyTorch's
    IndexError; while tracing the check is recorded, so a compiled call checks its own targets.
    """
    valid = M.ne(target, ignore_index)
    safe = M.where(valid, target, 0)
    if classes is not None and _tracing():
        safe = check_index(safe, size=classes, axis=1, mode="target")
    elif classes is not None:
        check_index_values(safe._data, classes, 1, "target")
    if weight is None:
        w = valid.to(input.dtype)
    else:
        w = M.where(valid, _ix.take(weight, safe), 0.0)
    return valid, safe, w


def _nll(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
         reduction: str) -> Tensor:
    classes = _check_nll(input, target, weight)
    valid, safe, w = _target_weights(input, target, weight, ignore_index, classes)
    cd = 0 if input.ndim == 1 else 1
    index = safe.unsqueeze(cd) if cd else safe.reshape((1,))
    picked = take_along(input, index, axis=cd).squeeze(cd)
    if picked.shape != target.shape:
        picked = picked.reshape(tuple(target.shape))
    # select, not multiply: an ignored entry's -inf/nan input must not leak into
    # the loss, and its gradient is exactly 0.
    terms = M.where(valid, -(picked if weight is None else picked * w), 0.0)
    name = "NllLossBackward0" if input.ndim <= 2 else "NllLoss2DBackward0"
    if reduction == "none":
        if input.ndim == 1:
            terms = terms.reshape(())
        return _named(terms, name if input.ndim in (1, 2, 4) else "ViewBackward0")
    total = terms.sum()
    if reduction == "mean":
        # Divided by the total weight, as PyTorch (rounded as its result is). With every
        # target ignored the loss is nan (0 / 0) and the ignored entries' gradient stays
        # exactly 0 (the select above).
        with np.errstate(divide="ignore", invalid="ignore"):
            total = total / w.sum()
    return _named(total, name)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: Any = None,
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer class targets (``input`` holds log-probabilities).

    ``weight`` rescales each class; targets equal to ``ignore_index`` contribute
    nothing, and 'mean' divides by the total weight of the other targets.
    """
    reduction = _reduction(size_average, reduce, reduction)
    _require_operands("nll_loss_nd", input, target, weight, ignore_index)
    return _nll(input, target, weight, ignore_index, reduction)


def _class_weight(weight: Tensor, input: Tensor, cd: int) -> Tensor:
    """``weight`` shaped to broadcast along the class dim of ``input``."""
    return weight.reshape((-1,) + (1,) * (input.ndim - cd - 1))


def _probability_targets(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                         reduction: str, smoothing: float) -> Tensor:
    if not target.dtype.is_floating_point:
        raise RuntimeError("Expected floating point type for target with class probabilities, got "
                           f"{_scalar_name(target)}")
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    cd = 0 if input.ndim <= 1 else 1
    classes = input.shape[cd] if input.ndim else 1
    if weight is not None and (weight.ndim != 1 or weight.numel() != classes):
        raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all {classes} "
                           f"classes or no classes but got weight tensor of shape: {_fmt(weight.shape)}")
    if smoothing > 0:
        target = target * (1 - smoothing) + smoothing / classes
    terms = log_softmax(input, cd) * target
    if weight is not None:
        terms = terms * _class_weight(weight, input, cd)
    if reduction == "none":
        return -terms.sum(cd)
    if reduction == "sum":
        return -terms.sum()
    if input.numel() == 0:
        return -(terms.sum() + math.nan)  # PyTorch: the mean of nothing is nan
    return _named(-terms.sum() / (input.numel() // classes), "DivBackward1")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average: Any = None, ignore_index: int = -100, reduce: Any = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """nll_loss(log_softmax(input, class dim), target): class indices or class probabilities.

    ``input`` is (C), (N, C) or (N, C, d1, ...); an integer ``target`` holds class
    indices (with ``weight`` and ``ignore_index`` as in nll_loss), a floating one
    of ``input``'s shape holds probabilities. ``label_smoothing`` mixes the target
    with the uniform distribution.

    >>> import gradgen as torch, gradgen.nn.functional as F
    >>> F.cross_entropy(torch.tensor([[2.0, 0.5], [0.1, 1.0]]), torch.tensor([0, 1]))
    tensor(0.2713)
    """
    reduction = _reduction(size_average, reduce, reduction)
    _require_operands("cross_entropy_loss", input, target, weight, ignore_index)
    # PyTorch takes label_smoothing as a Python float (a 0-d tensor too): the smoothing is
    # computed in the logits' precision, not the tensor's.
    label_smoothing = float(label_smoothing)
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if tuple(input.shape) == tuple(target.shape):
        return _probability_targets(input, target, weight, ignore_index, reduction,
                                    max(label_smoothing, 0.0))
    cd = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, cd) if input.ndim else input
    loss = _nll(logp, target, weight, ignore_index, reduction)
    if not label_smoothing > 0:
        return loss
    return loss * (1 - label_smoothing) + _smoothing_term(logp, target, weight, ignore_index,
                                                          reduction) * (label_smoothing / logp.shape[cd])


def _smoothing_term(logp: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                    reduction: str) -> Tensor:
    """PyTorch's label-smoothing part: minus the (class-weighted) sum of log-probabilities."""
    cd = 0 if logp.ndim == 1 else 1
    terms = logp if weight is None else logp * _class_weight(weight, logp, cd)
    valid, _, w = _target_weights(logp, target, weight, ignore_index)
    smooth = M.where(valid, -terms.sum(cd), 0.0)
    if reduction == "none":
        return smooth
    total = smooth.sum()
    if reduction == "sum":
        return total
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / w.sum()
