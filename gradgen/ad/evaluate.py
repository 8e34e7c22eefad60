"""Evaluating an IR program by applying its primitives to tensors.

Unlike the interpreter (numpy arrays in, arrays out), this goes through the
primitives' ordinary binding, so eager autograd records every step and an
active trace sees it: a gradient program evaluated this way can itself be
differentiated (higher-order ``grad``, ``create_graph=True`` through a
compiled function).
"""
from __future__ import annotations

from typing import Any

from ..ir.core import Program, Var
from ..tensor import Tensor


def evaluate(program: Program, *args: Any) -> list[Tensor]:
    """``program`` applied to tensors ``args``; returns one tensor per output."""
    if len(args) != len(program.inputs):
        raise TypeError(f"evaluate: program takes {len(program.inputs)} inputs, got {len(args)}")
    env: dict[Var, Any] = dict(zip(program.inputs, args))
    for e in program.eqns:
        env[e.out] = e.prim(*[env[a] if type(a) is Var else a.value for a in e.inputs], **e.params)
    return [env[a] if type(a) is Var else Tensor._make(a.value.copy()) for a in program.outputs]


__all__ = ["evaluate"]
