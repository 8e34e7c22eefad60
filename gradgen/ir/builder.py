"""Constructing IR programs directly, or symbolically by calling primitives on variables.

>>> from gradgen.dtypes import float32
>>> from gradgen.ops.elementwise import mul
>>> b = Builder()
>>> x = b.input((2, 3), float32, name="x")
>>> y = b.add("mul", x, 2.0)
>>> with building(b):
...     z = mul(y, y)          # a primitive called on Vars appends an equation
>>> print(b.build([z]))
def (%x:f32[2,3]):
  %0:f32[2,3] = mul %x, 2.0:f32
  %1:f32[2,3] = mul %0, %0
  return %1

Types come from each primitive's shape rule (``prim.abstract_eval``), so a
program built here is well typed by construction.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from ..autograd.record import _scalar_dtype
from ..dtypes import as_dtype, dtype, get_default_dtype
from ..ops import registry
from ..ops.registry import Aval, Primitive
from .core import Atom, Eqn, Literal, Program, Var

# Zero-size stand-ins so record._scalar_dtype (which looks at arrays) sees a Var's dtype.
_PROBES: dict[dtype, np.ndarray] = {}


def _probe(a: Any) -> Any:
    if isinstance(a, Var):
        p = _PROBES.get(a.aval.dtype)
        if p is None:
            p = _PROBES[a.aval.dtype] = np.empty(0, a.aval.dtype.np)
        return p
    if isinstance(a, Literal):
        return a.value
    return a


def _prim(p: Primitive | str) -> Primitive:
    return p if isinstance(p, Primitive) else registry.get(p)


class Builder:
    """Accumulates inputs and equations; ``build(outputs)`` returns the Program.

    ``loc`` is the source location stamped on equations appended without an
    explicit ``loc=`` (e.g. the AD transformation sets it to the primal
    equation's location while emitting that equation's backward rule).
    """

    def __init__(self) -> None:
        self.inputs: list[Var] = []
        self.eqns: list[Eqn] = []
        self.loc: str | None = None
        self._next_id = 0

    def new_var(self, aval: Aval, name: str | None = None) -> Var:
        """A fresh variable of type ``aval`` (not yet defined by anything)."""
        v = Var(self._next_id, aval, name)
        self._next_id += 1
        return v

    def input(self, shape: Sequence[int], dt: Any, name: str | None = None) -> Var:
        """Declare a new program input of ``shape`` and dtype ``dt``."""
        v = self.new_var(Aval(tuple(int(s) for s in shape), as_dtype(dt)), name)
        self.inputs.append(v)
        return v

    def literal(self, value: Any, dt: Any = None) -> Literal:
        """A constant operand (``dt`` converts it; default: the value's own dtype)."""
        if dt is None and type(value) is float:
            dt = get_default_dtype()  # a bare Python float is a default-dtype constant
        return Literal(np.asarray(value) if dt is None else np.asarray(value, as_dtype(dt).np))

    def atoms(self, args: Sequence[Any]) -> tuple[Atom, ...]:
        """Operands as atoms: Vars and Literals pass; scalars and arrays become Literals.

        Python scalars take the dtype of the first non-bool operand, exactly as
        eager ``bind`` does (``record._scalar_dtype``).
        """
        out: list[Atom] = []
        sd = None
        for a in args:
            if isinstance(a, (Var, Literal)):
                out.append(a)
            elif isinstance(a, np.ndarray):
                out.append(Literal(a))
            elif hasattr(a, "_data") and isinstance(a._data, np.ndarray):
                out.append(Literal(a._data))  # a concrete tensor inside a symbolic rule
            else:
                if sd is None:
                    sd = _scalar_dtype(tuple(_probe(x) for x in args))
                out.append(Literal(np.asarray(a, sd)))
        return tuple(out)

    def add(self, prim: Primitive | str, *args: Any, loc: str | None = None, **params: Any) -> Var:
        """Append ``prim(*args, **params)``; returns the new variable (typed by the shape rule)."""
        p = _prim(prim)
        ins = self.atoms(args)
        aval = p.abstract_eval(*(a.aval for a in ins), **params)
        out = self.new_var(aval)
        self.eqns.append(Eqn(p, ins, out, dict(params), loc if loc is not None else self.loc))
        return out

    eqn = add

    def append(self, eqn: Eqn) -> Var:
        """Append an existing equation record as is (no type computation)."""
        self.eqns.append(eqn)
        return eqn.out

    def inline(self, program: Program, *args: Any) -> list[Atom]:
        """Append ``program``'s equations applied to ``args``; returns its outputs' atoms."""
        env: dict[Var, Atom] = {}
        for v, a in zip(program.inputs, self.atoms(args), strict=True):
            if a.aval != v.aval:
                raise TypeError(f"inline: input {v!r} given an operand of type {a.aval}")
            env[v] = a
        for e in program.eqns:
            ins = tuple(env.get(a, a) if isinstance(a, Var) else a for a in e.inputs)
            out = self.new_var(e.out.aval)
            self.eqns.append(Eqn(e.prim, ins, out, dict(e.params), e.loc))
            env[e.out] = out
        return [env.get(a, a) if isinstance(a, Var) else a for a in program.outputs]

    def build(self, outputs: Sequence[Any], meta: dict | None = None) -> Program:
        """The program with this builder's inputs and equations and the given outputs."""
        # An output scalar is a constant of its own type (no other operand to take a dtype from).
        outs = [a if isinstance(a, (Var, Literal)) else
                self.atoms((a,))[0] if isinstance(a, np.ndarray) or hasattr(a, "_data")
                else self.literal(a) for a in outputs]
        return Program(list(self.inputs), list(self.eqns), outs, dict(meta or {}))


def _has_var(args: tuple) -> bool:
    for a in args:
        if isinstance(a, (Var, Literal)):
            return True
    return False


@contextmanager
def building(builder: Builder) -> Iterator[Builder]:
    """Make primitives called on Vars append equations to ``builder`` (symbolic mode).

    Inside the block, ``mul(x, y)`` with a Var operand returns a new Var, so
    VJP rules from the registry run unchanged to emit IR. Calls whose operands
    are tensors and no Vars still run eagerly; calls on constants only (e.g.
    ``full``) are emitted as equations.
    """
    prev = registry._binder[0]

    def bind(prim: Primitive, args: tuple, params: dict) -> Any:
        if not _has_var(args) and any(hasattr(a, "_data") for a in args):
            return prev(prim, args, params)
        return builder.add(prim, *args, **params)

    registry._binder[0] = bind
    try:
        yield builder
    finally:
        registry._binder[0] = prev
