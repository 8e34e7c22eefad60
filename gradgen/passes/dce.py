"""Dead code elimination: drop equations whose value no output needs.

Every registry primitive is pure (random number generation never reaches the
IR), so an equation is dead exactly when nothing live reads its output. Inputs
are kept even when unused: a program's signature never changes under a pass.
"""
from __future__ import annotations

from ..ir.core import Program, Var


def dce(program: Program) -> Program:
    """``program`` without the equations no output depends on."""
    live = {a for a in program.outputs if type(a) is Var}
    kept = []
    for e in reversed(program.eqns):
        if e.out in live:
            kept.append(e)
            live.update(a for a in e.inputs if type(a) is Var)
    kept.reverse()
    return Program(list(program.inputs), kept, list(program.outputs), dict(program.meta))
