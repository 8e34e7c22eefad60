"""The stable text form of an IR program (``str(program)``).

One equation per line, every value typed, parameters sorted by name, the
user's source location as a trailing comment::

    const $0:f32[3] = [1.0, 2.0, 3.0]
    def (%x:f32[2,3], %0:f32[3]):
      %1:f32[2,3] = broadcast_in_dim[dims=(1,), shape=(2, 3)] %0  # train.py:14
      %2:f32[2,3] = add %x, %1  # train.py:14
      %3:f32[2,3] = mul %2, 0.5:f32
      %4:f32[3] = add %0, $0
      return %2, %4

Variables print as ``%name`` when they carry a name, otherwise as numbers
given in order of definition (never ids), so the text is identical across runs
and processes. Rank-0 literals print inline as ``value:dtype`` with the
shortest exact repr; other array constants live in a ``const`` section before
the program (in full up to ``INLINE_LIMIT`` elements, by content digest
beyond; :func:`constant_table` gives them to ``parse``).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from ..dtypes import dtype
from .core import Literal, Program, Var

INLINE_LIMIT = 64
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_scalar(x: Any) -> str:
    """The exact, shortest round-trip text of one array element."""
    if isinstance(x, (bool, np.bool_)):
        return "True" if x else "False"
    if isinstance(x, (np.integer, int)):
        return str(int(x))
    if isinstance(x, np.float32):
        return str(x)  # numpy's shortest repr that reads back as the same float32
    return repr(float(x))


def format_param(v: Any) -> str:
    """A parameter value as deterministic text (the parser reads it back)."""
    if isinstance(v, dtype):
        return v.short
    if isinstance(v, tuple):
        inner = ", ".join(format_param(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(format_param(x) for x in v) + "]"
    if isinstance(v, (bool, np.bool_, np.integer, np.floating)) or v is None:
        return "None" if v is None else format_scalar(v)
    if isinstance(v, float):
        return repr(v)
    return repr(v)


def _nested(arr: np.ndarray) -> str:
    if arr.ndim == 0:
        return format_scalar(arr[()])
    return "[" + ", ".join(_nested(a) for a in arr) + "]"


def digest(arr: np.ndarray) -> str:
    """A short content digest of an array (dtype, shape and bytes)."""
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return "sha256:" + h.hexdigest()[:16]


class _Names:
    """Assigns printed names in order of definition."""

    def __init__(self) -> None:
        self.names: dict[Var, str] = {}
        self.used: set[str] = set()
        self.counter = 0
        self.consts: dict[int, tuple[str, Literal]] = {}

    def define(self, v: Var) -> str:
        if v in self.names:
            return self.names[v]
        name = v.name
        if name is None or not _IDENT.match(name) or name in self.used:
            name = str(self.counter)
            self.counter += 1
        self.used.add(name)
        self.names[v] = name
        return f"%{name}"

    def ref(self, a: Any) -> str:
        if isinstance(a, Var):
            n = self.names.get(a)
            return f"%{n}" if n is not None else f"%?{a.id}"
        if a.value.ndim == 0:
            return f"{format_scalar(a.value[()])}:{a.aval.dtype.short}"
        return self.consts[id(a)][0]

    def collect_const(self, a: Any) -> None:
        if isinstance(a, Literal) and a.value.ndim > 0 and id(a) not in self.consts:
            self.consts[id(a)] = (f"${len(self.consts)}", a)


def _const_line(name: str, lit: Literal) -> str:
    arr = lit.value
    body = _nested(arr) if arr.size <= INLINE_LIMIT else f"<{digest(arr)}>"
    return f"const {name}:{lit.aval} = {body}"


def format_eqn(e: Any, names: _Names) -> str:
    """One equation line (without indentation); defines its output in ``names``."""
    params = ""
    if e.params:
        params = "[" + ", ".join(f"{k}={format_param(e.params[k])}" for k in sorted(e.params)) + "]"
    ops = ", ".join(names.ref(a) for a in e.inputs)
    out = names.define(e.out)
    line = f"{out}:{e.out.aval} = {e.prim.name}{params}"
    if ops:
        line += " " + ops
    if e.loc:
        line += f"  # {e.loc}"
    return line


def program_names(program: Program) -> "_Names":
    """The printed names of a program, with its array constants numbered in order of use."""
    names = _Names()
    for e in program.eqns:
        for a in e.inputs:
            names.collect_const(a)
    for a in program.outputs:
        names.collect_const(a)
    return names


def print_program(program: Program) -> str:
    """The program's stable text form (see the module docstring)."""
    names = program_names(program)
    lines = [_const_line(n, lit) for n, lit in names.consts.values()]
    ins = ", ".join(f"{names.define(v)}:{v.aval}" for v in program.inputs)
    lines.append(f"def ({ins}):")
    for e in program.eqns:
        lines.append("  " + format_eqn(e, names))
    outs = ", ".join(names.ref(a) for a in program.outputs)
    lines.append(f"  return {outs}" if outs else "  return")
    return "\n".join(lines)


def constant_table(program: Program) -> dict[str, np.ndarray]:
    """The printed names (``$k``) of the program's array constants, for ``parse``."""
    names = program_names(program)
    return {n: lit.value for n, lit in names.consts.values()}
