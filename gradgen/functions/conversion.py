"""Dtype conversion and copies: ``to``, ``float``/``double``/..., ``clone``, ``contiguous``."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..dtypes import as_dtype, bool_, dtype, float32, float64, int32, int64
from ..ops.elementwise import convert
from ..tensor import Tensor, device
from .math import _named


def to(self: Tensor, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False,
       non_blocking: bool = False) -> Tensor:
    """``t.to(dtype)``, ``t.to("cpu")``, ``t.to(other)``: converts dtype; CPU is the only device."""
    target = None if dtype is None else as_dtype(dtype)
    for a in args:
        if isinstance(a, Tensor):
            target = a.dtype
        elif isinstance(a, (str, _device_type())):
            _device_type()(a)
        elif a is not None:
            target = as_dtype(a)
    if device is not None:
        _device_type()(device)
    if target is None or target is self.dtype:
        return clone(self) if copy else self
    return _named(convert(self, dtype=target), "ToCopyBackward0")


def _device_type() -> type:
    return device


def clone(self: Tensor, *, memory_format: Any = None) -> Tensor:
    """A copy that stays in the graph (its gradient flows back to ``self``)."""
    return _named(convert(self, dtype=self.dtype), "CloneBackward0")


def contiguous(self: Tensor, memory_format: Any = None) -> Tensor:
    if self._data.flags.c_contiguous:
        return self
    out = clone(self)  # (a transpose's copy keeps its memory order: clone preserves it)
    if not out._data.flags.c_contiguous:  # the copy is this tensor's alone: lay it out in rows
        out._data = np.ascontiguousarray(out._data)
    return out


def type_as(self: Tensor, other: Tensor) -> Tensor:
    return to(self, other.dtype)


def _as(d: dtype):
    def fn(self: Tensor, memory_format: Any = None) -> Tensor:
        return to(self, d)
    return fn


METHODS = {"to": to, "clone": clone, "contiguous": contiguous, "type_as": type_as,
           "float": _as(float32), "double": _as(float64), "long": _as(int64), "int": _as(int32),
           "bool": _as(bool_), "cpu": lambda self: self}
FUNCTIONS = ["clone"]
