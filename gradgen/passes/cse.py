"""Common subexpression elimination: one equation per (primitive, operands, params).

Two equations applying the same primitive with the same parameters to the same
operands (variables by identity, literals by dtype, shape and bytes) compute the
same value, so the later one is replaced by the earlier one's output. Reverse
mode makes many such pairs (the forward value recomputed in a rule, the same
broadcast of a cotangent for two operands).
"""
from __future__ import annotations

from typing import Any

from ..ir.core import Eqn, Literal, Program
from ._rewrite import Context, rewrite


def _atom_key(a: Any) -> Any:
    if type(a) is Literal:
        return ("lit", a.aval.dtype.name, a.value.shape, a.value.tobytes())
    return a  # variables hash by identity


def _key(e: Eqn) -> tuple:
    params = e.params
    return (e.prim, tuple([_atom_key(a) for a in e.inputs]),
            tuple(sorted(params.items())) if params else ())


def cse(program: Program) -> Program:
    """``program`` with repeated equations replaced by their first occurrence."""
    seen: dict[tuple, Any] = {}

    def rule(e: Eqn, ctx: Context) -> Any:
        k = _key(e)
        try:
            first = seen.get(k)
        except TypeError:  # an unhashable parameter: leave the equation alone rather than guess
            return None
        if first is not None and first.aval == e.out.aval:
            return first
        seen[k] = e.out
        return None

    return rewrite(program, rule)
