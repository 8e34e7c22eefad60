"""The pass pipeline: one list, run in order until the program stops changing."""
from __future__ import annotations

from typing import Callable

from ..ir.core import Program
from .cse import cse
from .dce import dce
from .fold import fold
from .simplify import simplify

Pass = Callable[[Program], Program]

# Simplification and folding expose duplicates for CSE; DCE sweeps what they all orphan.
PASSES: list[Pass] = [simplify, fold, cse, dce]

_MAX_ROUNDS = 4


def _signature(p: Program) -> tuple:
    # Passes keep unchanged equations as the same objects, so identities tell what changed.
    return tuple(map(id, p.eqns)), tuple(map(id, p.outputs))


def optimize(program: Program, passes: list[Pass] | None = None) -> Program:
    """Run ``passes`` (default :data:`PASSES`) in order, repeating while any of them changes the program."""
    passes = PASSES if passes is None else passes
    for _ in range(_MAX_ROUNDS):
        old = program  # kept alive so the ids in its signature cannot be reused
        for p in passes:
            program = p(program)
        if _signature(program) == _signature(old):
            break
    return program
