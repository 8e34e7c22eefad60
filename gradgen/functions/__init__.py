"""The front end: gradgen's user-facing operations, composed from registry primitives.

Each module lists its ``FUNCTIONS`` (exported as ``gradgen.<name>``) and its
``METHODS`` (attached to :class:`~gradgen.tensor.Tensor`).
"""
from __future__ import annotations

from types import ModuleType

from ..tensor import Tensor
from . import (conversion, creation, gather, index_write, indexing, inplace, joining, linalg, math,
               operators, python_values, random, reductions, repeating, shape, splitting,
               statistics)

MODULES: list[ModuleType] = [creation, random, math, operators, python_values, conversion, reductions, shape,
                             repeating, joining, indexing, index_write, splitting, gather, linalg,
                             inplace, statistics]


def install_methods() -> None:
    """Attach every module's METHODS to Tensor (called once at import)."""
    for mod in MODULES:
        for name, fn in getattr(mod, "METHODS", {}).items():
            setattr(Tensor, name, fn)
