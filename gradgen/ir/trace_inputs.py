"""The inputs of a trace (:mod:`gradgen.ir.trace`): declared from ``fn``'s arguments, named
after its parameters, and read back from arguments for a later run of the traced program."""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..autograd.record import TraceError
from ..tensor import Tensor
from .core import Program
from .tree import flatten, same_tree

if TYPE_CHECKING:
    from .trace import _Tracer


class AliasedArguments(TraceError):
    """One tensor passed as two arguments: a fact of this call, not of its signature."""


def input_values(program: Program, *args: Any) -> list[np.ndarray]:
    """The arrays to run a traced ``program`` on for arguments ``args`` (same structure as traced).

    Explicit inputs come from ``args``; captured inputs are read from their
    tensors now (by reference), so in-place updates since the trace are seen.
    """
    leaves, tree = flatten(args)
    if not same_tree(tree, program.meta["in_tree"]):
        raise TypeError("arguments do not have the structure the program was traced with")
    return [t._data for t in leaves] + [t._data for t in program.meta["captured"]]


def _arg_names(fn: Callable, n: int) -> list[str | None]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [None] * n
    names: list[str | None] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            names.extend(f"{p.name}{i}" for i in range(n - len(names)))
    return (names + [None] * n)[:n]


def declare_inputs(tr: "_Tracer", fn: Callable, args: tuple) -> tuple[tuple[int, ...], Any]:
    names = _arg_names(fn, len(args))
    argnums: list[int] = []
    for i, arg in enumerate(args):
        arg_leaves, _ = flatten(arg)
        for j, t in enumerate(arg_leaves):
            name = names[i] if type(arg) is Tensor else (f"{names[i]}_{j}" if names[i] else None)
            if id(t) in tr.known:
                tr.stop(f"the same tensor is passed as two arguments (argument {i})",
                        cls=AliasedArguments)
            tr.add_input(t, name)
            argnums.append(i)
    return tuple(argnums), flatten(args)[1]


__all__ = ["AliasedArguments", "declare_inputs", "input_values"]
