"""Tensor printing that matches PyTorch's ``torch._tensor_str`` character for character.

The rules, in the order PyTorch applies them:

* One formatter is chosen for the whole tensor (or, when it is summarized,
  for the elements that will actually be shown), so every element is
  padded to the same width and columns line up.
* A floating tensor whose nonzero finite values are all integers prints in
  "int mode" (``1.``, ``-3.``); otherwise fixed point with ``precision``
  digits, unless the values span too many orders of magnitude, in which
  case scientific notation is used for every element.
* Rows wrap at ``linewidth``; continuation lines are indented to sit under
  the first element, and nested dimensions are separated by one blank line
  per extra dimension.
* Above ``threshold`` elements, each dimension keeps only ``edgeitems``
  entries at either end with ``...`` between them.
* ``dtype=`` is shown only when it cannot be inferred from the text, and
  trailing items move to a new line when they would overflow ``linewidth``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from gradgen.dtypes import dtype as _Dtype, get_default_dtype

__all__ = ["tensor_repr", "set_printoptions", "get_printoptions"]


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_OPTS = _PrintOptions()

_PROFILES: dict[str, dict[str, Any]] = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}

# Above this ratio between the largest and smallest nonzero magnitude (or
# outside these bounds) fixed point would lose the small values or print
# absurdly wide numbers, so PyTorch switches to scientific notation.
_SCI_RATIO = 1000.0
_SCI_MAX = 1.0e8
_SCI_MIN = 1.0e-4


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set how tensors print, with the same options and quirks as ``torch.set_printoptions``.

    ``profile`` ("default", "short" or "full") resets the first four options
    before the explicit ones are applied. ``sci_mode`` is always assigned,
    so any call without it returns to automatic scientific notation.

    >>> import numpy as np; from gradgen.dtypes import float32
    >>> set_printoptions(precision=2)
    >>> tensor_repr(np.array([1.12345], np.float32), float32)
    'tensor([1.12])'
    >>> set_printoptions(profile="default")
    >>> tensor_repr(np.array([1.12345], np.float32), float32)
    'tensor([1.1235])'
    """
    if profile is not None:
        # An unknown profile is silently ignored, as in PyTorch.
        for name, value in _PROFILES.get(profile, {}).items():
            setattr(_OPTS, name, value)
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            setattr(_OPTS, name, value)
    _OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """The current print options, as keyword arguments for ``set_printoptions``.

    >>> get_printoptions()["precision"]
    4
    """
    return dataclasses.asdict(_OPTS)


class _Formatter:
    """One style and one width for every element that will be printed."""

    def __init__(self, shown: np.ndarray, floating: bool) -> None:
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        flat = shown.reshape(-1)
        if not floating:
            self.width = max([self.width] + [len(str(v)) for v in _extremes(flat)])
            return
        values = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if values.size == 0:
            # Only zeros, infs and nans: nothing sets a width, and zeros print as "0.".
            return
        self.int_mode = bool(np.all(values == np.ceil(values)))
        magnitudes = np.abs(values)
        lo, hi = float(magnitudes.min()), float(magnitudes.max())
        if _OPTS.sci_mode is None:
            self.sci_mode = hi / lo > _SCI_RATIO or hi > _SCI_MAX or lo < _SCI_MIN
        else:
            self.sci_mode = bool(_OPTS.sci_mode)
        # Note: the widths come from the nonzero finite values only, so "nan",
        # "inf" and "0." may stick out past them; PyTorch does the same.
        for v in _extremes(values):
            if self.sci_mode:
                text = f"{v:.{_OPTS.precision}e}"
            elif self.int_mode:
                text = f"{v:.0f}."
            else:
                text = f"{v:.{_OPTS.precision}f}"
            self.width = max(self.width, len(text))

    def format(self, value: Any) -> str:
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:.{_OPTS.precision}e}"
        elif self.int_mode:
            # The trailing dot is what tells a float tensor apart from an int one.
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{_OPTS.precision}f}"
        return text.rjust(self.width)


def _extremes(values: np.ndarray) -> list[Any]:
    """The values whose printed form is longest in any style.

    Rounding is monotonic, so the widest text among the positive values comes
    from the largest or smallest one (big integer part, or a 3-digit negative
    exponent), and likewise among the negatives. This spares formatting every
    element as Python objects.
    """
    if values.size == 0:
        return []
    picks = [values.min(), values.max()]
    if values.dtype.kind == "f":
        for part in (values[values > 0], values[values < 0]):
            if part.size:
                picks += [part.min(), part.max()]
    return [v.item() for v in picks]


def _kept_indices(n: int, summarize: bool) -> list[int | None]:
    """Indices shown along one dimension; None marks the elided middle."""
    e = _OPTS.edgeitems
    if summarize and n > 2 * e:
        return list(range(e)) + [None] + list(range(n - e, n))
    return list(range(n))


def _summarized(data: np.ndarray) -> np.ndarray:
    """Just the elements a summarized print shows, so hidden ones don't widen columns."""
    for axis in range(data.ndim):
        kept = [i for i in _kept_indices(data.shape[axis], True) if i is not None]
        data = np.take(data, kept, axis=axis)
    return data


def _vector_str(row: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    # Each element costs its width plus ", "; the last one doesn't, but PyTorch counts it anyway.
    per_line = max(1, (_OPTS.linewidth - indent) // (fmt.width + 2))
    if summarize and not _OPTS.edgeitems:
        items = ["..."]
    else:
        values = row.tolist()
        items = [" ..." if i is None else fmt.format(values[i])
                 for i in _kept_indices(len(values), summarize)]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(data: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if data.ndim == 0:
        return fmt.format(data.item())
    if data.ndim == 1:
        return _vector_str(data, indent, summarize, fmt)
    parts = ["..." if i is None else _nested_str(data[i], indent + 1, summarize, fmt)
             for i in _kept_indices(data.shape[0], summarize)]
    # One blank line between blocks for every dimension below the first two.
    separator = "," + "\n" * (data.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def _body_str(data: np.ndarray, floating: bool, indent: int) -> str:
    summarize = data.size > _OPTS.threshold
    fmt = _Formatter(_summarized(data) if summarize else data, floating)
    return _nested_str(data, indent, summarize, fmt)


def _add_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    # PyTorch's line-length estimate is two more than the real length; kept for identical wrapping.
    last_line_len = len(text) - text.rfind("\n") + 1
    out = [text]
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > _OPTS.linewidth:
            out.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            out.append(", " + suffix)
            last_line_len += len(suffix) + 2
    return "".join(out) + ")"


def tensor_repr(data: np.ndarray, dtype: _Dtype, suffix: str | None = None) -> str:
    """The text PyTorch prints for a CPU tensor holding ``data``.

    ``suffix`` is one trailing item such as ``"requires_grad=True"`` or
    ``"grad_fn=<AddBackward0>"``; it goes last, wrapping to a new line if needed.

    >>> import numpy as np; from gradgen.dtypes import float64, int64
    >>> tensor_repr(np.array([[1.0, 2.5]]), float64, "requires_grad=True")
    'tensor([[1.0000, 2.5000]], dtype=torch.float64, requires_grad=True)'
    >>> tensor_repr(np.zeros((0, 3), np.int64), int64)
    'tensor([], size=(0, 3), dtype=torch.int64)'
    """
    data = np.asarray(data)
    prefix = "tensor("
    indent = len(prefix)
    default_name = get_default_dtype().name
    suffixes: list[str] = []
    if data.size == 0:
        # Numpy shows a (0,) shape as bare "[]"; any other empty shape is spelled out.
        if data.ndim != 1:
            suffixes.append(f"size={tuple(data.shape)}")
        # With no elements, nothing in the text hints at the dtype, so even int64 is named.
        if dtype.name != default_name:
            suffixes.append(f"dtype={dtype!r}")
        body = "[]"
    else:
        if not _OPTS.edgeitems:
            suffixes.append(f"size={tuple(data.shape)}")
        # int64 and bool read unambiguously from the digits and True/False;
        # "1." reads as the default float type.
        if dtype.name not in (default_name, "int64", "bool"):
            suffixes.append(f"dtype={dtype!r}")
        body = _body_str(data, dtype.is_floating_point, indent)
    if suffix is not None:
        suffixes.append(suffix)
    return _add_suffixes(prefix + body, suffixes, indent)
