"""Verifying an IR program: SSA, types against the shape rules, outputs defined.

>>> from gradgen.ir.parser import parse
>>> check(parse('''
... def (%x:f32[2]):
...   %0:f64[2] = neg %x
...   return %0
... '''))
Traceback (most recent call last):
...
gradgen.ir.errors.IRError: line 2, equation 0 `%0:f64[2] = neg %x`: output typed f64[2] but the shape rule of neg gives f32[2]
"""
from __future__ import annotations

from typing import Any

from ..ops.registry import PRIMITIVES
from .core import Literal, Program, Var
from .errors import IRError
from .printer import format_eqn, program_names


def _fail(where: str, msg: str) -> None:
    raise IRError(f"{where}: {msg}")


def _check_atom(a: Any, defined: set, where: str) -> None:
    if isinstance(a, Var):
        if a not in defined:
            _fail(where, f"operand %?{a.id} is used before it is defined")
    elif isinstance(a, Literal):
        if tuple(a.value.shape) != a.aval.shape or a.value.dtype != a.aval.dtype.np:
            _fail(where, f"literal value {a.value.dtype}{list(a.value.shape)} does not match its type {a.aval}")
    else:
        _fail(where, f"operand {a!r} is neither a Var nor a Literal")


def _check_eqn(e: Any, defined: set, where: str) -> None:
    if PRIMITIVES.get(e.prim.name) is not e.prim:
        _fail(where, f"primitive {e.prim.name!r} is not the registered one")
    for a in e.inputs:
        _check_atom(a, defined, where)
    try:
        hash(tuple(sorted(e.params.items())))
    except TypeError:
        _fail(where, f"parameters {e.params!r} are not hashable plain values")
    if e.out in defined:
        _fail(where, "its output variable is already defined (not SSA)")
    try:
        expect = e.prim.abstract_eval(*(a.aval for a in e.inputs), **e.params)
    except (TypeError, ValueError) as err:
        _fail(where, f"the shape rule of {e.prim.name} rejects it: {err}")
    if expect != e.out.aval:
        _fail(where, f"output typed {e.out.aval} but the shape rule of {e.prim.name} gives {expect}")


def check(program: Program) -> Program:
    """Raise :class:`IRError` naming the first bad equation (and its line in ``str(program)``).

    Returns the program, so ``check(p)`` can wrap a pass's result.
    """
    names = program_names(program)
    first = len(names.consts) + 2  # const lines, then `def`, then equations (1-based)
    defined: set[Var] = set()
    for i, v in enumerate(program.inputs):
        if not isinstance(v, Var) or v in defined:
            _fail(f"input {i}", f"{v!r} is not a distinct variable")
        names.define(v)
        defined.add(v)
    for n, e in enumerate(program.eqns):
        _check_eqn(e, defined, f"line {first + n}, equation {n} `{format_eqn(e, names)}`")
        defined.add(e.out)
    for i, a in enumerate(program.outputs):
        _check_atom(a, defined, f"output {i}")
    return program
