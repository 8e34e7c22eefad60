"""The IR: a flat, typed SSA program of primitive equations.

A :class:`Program` has typed input variables, a list of equations (each one
registry primitive applied to variables and literals, producing one new
variable) and outputs. Equations are the same records the eager tape makes:
(primitive, operands, params), plus the user's source location.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dtypes import from_numpy_dtype
from ..ops.registry import Aval, Primitive


class _Typed:
    """Tensor-like type accessors over ``aval`` (shared by Var and Literal)."""

    __slots__ = ()
    aval: Aval

    @property
    def shape(self) -> tuple[int, ...]:
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    @property
    def ndim(self) -> int:
        return len(self.aval.shape)


class Var(_Typed):
    """An SSA value: printed ``%<id>``; carries its static type ``aval``.

    ``shape``, ``dtype`` and ``ndim`` mirror a tensor's, so VJP rules (which
    only look at those and call primitives) run unchanged on variables when a
    program is being built symbolically. ``name`` is an optional readable name
    (an identifier, e.g. a traced function's parameter) the printer uses as
    ``%name``; unnamed variables print as numbers in order of definition.
    """

    __slots__ = ("id", "aval", "name")

    def __init__(self, id: int, aval: Aval, name: str | None = None) -> None:
        self.id = id
        self.aval = aval
        self.name = name

    def __repr__(self) -> str:
        return f"%{self.name if self.name else self.id}:{self.aval}"


class Literal(_Typed):
    """A constant operand: a numpy array (usually 0-d) of a supported dtype."""

    __slots__ = ("value", "aval")

    def __init__(self, value: Any) -> None:
        arr = np.asarray(value)
        self.value = arr
        self.aval = Aval(tuple(arr.shape), from_numpy_dtype(arr.dtype))

    def __repr__(self) -> str:
        return f"Literal({self.value!r})"


Atom = Var | Literal


@dataclass
class Eqn:
    """``out = prim(*inputs, **params)`` at source location ``loc`` ("file.py:14")."""

    prim: Primitive
    inputs: tuple[Atom, ...]
    out: Var
    params: dict[str, Any]
    loc: str | None = None


@dataclass
class Program:
    """A typed SSA program: ``inputs`` -> ``eqns`` -> ``outputs``."""

    inputs: list[Var]
    eqns: list[Eqn]
    outputs: list[Atom]
    # Free-form facts about the program (which inputs are captured tensors, ...).
    meta: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        from .printer import print_program  # noqa: PLC0415  (printer imports this module)
        return print_program(self)
