"""Reading the text form back into a Program (for tests, snapshots and hand-written IR).

``parse(str(p), constant_table(p))`` rebuilds a program that prints identically.
Types are taken as written (run :func:`gradgen.ir.checker.check` to verify them
against the shape rules), so malformed programs can be written down too.

>>> p = parse('''
... def (%x:f64[2]):
...   %0:f64[2] = mul %x, 2.0:f64  # model.py:3
...   return %0
... ''')
>>> p.eqns[0].loc
'model.py:3'
"""
from __future__ import annotations

import ast
import re
from typing import Any, Mapping

import numpy as np

from ..dtypes import _ALL, dtype
from ..ops.registry import PRIMITIVES, Aval
from .core import Atom, Eqn, Literal, Program, Var
from .errors import IRError

_DTYPES: dict[str, dtype] = {d.short: d for d in _ALL}
_NONFINITE = re.compile(r"-?(?:inf|nan)")
_TYPE = re.compile(r"(\w+)\[([0-9,]*)\]\Z")
_TOKEN = re.compile(r"\s*(?:('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|([-+]?[\w.]+(?:[eE][-+]?\d+)?)|(.))")


def parse_type(text: str) -> Aval:
    """``f32[2,3]`` -> Aval((2, 3), float32)."""
    m = _TYPE.match(text.strip())
    if not m or m.group(1) not in _DTYPES:
        raise ValueError(f"bad type {text!r} (expected e.g. f32[2,3])")
    shape = tuple(int(s) for s in m.group(2).split(",")) if m.group(2) else ()
    return Aval(shape, _DTYPES[m.group(1)])


def _scalar(text: str, d: dtype) -> np.ndarray:
    if d.short == "bool":
        if text not in ("True", "False"):
            raise ValueError(f"bad bool literal {text!r}")
        return np.asarray(text == "True")
    return np.asarray(float(text) if d.is_floating_point else int(text), d.np)


class _Params:
    """A tiny recursive-descent reader for printed parameter values."""

    def __init__(self, text: str) -> None:
        self.toks = [m.group(1) or m.group(2) or m.group(3) for m in _TOKEN.finditer(text)
                     if (m.group(1) or m.group(2) or m.group(3))]
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, want: str | None = None) -> str:
        t = self.peek()
        if t is None or (want is not None and t != want):
            raise ValueError(f"expected {want or 'a value'} in parameters, got {t!r}")
        self.i += 1
        return t

    def value(self) -> Any:
        t = self.take()
        if t in ("(", "["):
            close = ")" if t == "(" else "]"
            items = []
            while self.peek() != close:
                items.append(self.value())
                if self.peek() == ",":
                    self.take()
            self.take(close)
            return tuple(items) if t == "(" else items
        if t[0] in "'\"":
            return ast.literal_eval(t)
        if t in _DTYPES:
            return _DTYPES[t]
        if t in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[t]
        try:
            return int(t)
        except ValueError:
            return float(t)

    def pairs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.peek() is not None:
            key = self.take()
            self.take("=")
            out[key] = self.value()
            if self.peek() == ",":
                self.take()
        return out


def _split_bracket(rhs: str) -> tuple[str, str, str]:
    """``prim[params] ops`` -> (prim, params text, operands text)."""
    m = re.match(r"([\w.]+)", rhs)
    if not m:
        raise ValueError(f"expected a primitive name, got {rhs!r}")
    name, rest = m.group(1), rhs[m.end():]
    params = ""
    if rest.startswith("["):
        depth = 0
        for i, c in enumerate(rest):
            depth += c == "["
            depth -= c == "]"
            if depth == 0:
                params, rest = rest[1:i], rest[i + 1:]
                break
        else:
            raise ValueError("unbalanced [ in parameters")
    return name, params, rest.strip()


class _Reader:
    def __init__(self, constants: Mapping[str, Any] | None) -> None:
        self.vars: dict[str, Var] = {}
        self.consts: dict[str, Literal] = {}
        self.given = dict(constants or {})
        self.next_id = 0

    def define(self, token: str, aval: Aval) -> Var:
        if not token.startswith("%"):
            raise ValueError(f"expected a variable like %3 or %x, got {token!r}")
        name = token[1:]
        if name in self.vars:
            raise ValueError(f"variable {token} is defined twice")
        v = Var(self.next_id, aval, None if name.isdigit() else name)
        self.next_id += 1
        self.vars[name] = v
        return v

    def atom(self, token: str) -> Atom:
        token = token.strip()
        if token.startswith("%"):
            if token[1:] not in self.vars:
                raise ValueError(f"variable {token} is used before it is defined")
            return self.vars[token[1:]]
        if token.startswith("$"):
            if token not in self.consts:
                raise ValueError(f"constant {token} is not declared")
            return self.consts[token]
        value, _, d = token.rpartition(":")
        if d not in _DTYPES or not value:
            raise ValueError(f"bad operand {token!r} (expected %var, $const or value:dtype)")
        return Literal(_scalar(value, _DTYPES[d]))

    def atoms(self, text: str) -> list[Atom]:
        return [self.atom(t) for t in text.split(", ")] if text.strip() else []

    def const(self, line: str) -> None:
        head, _, body = line[len("const "):].partition(" = ")
        name, _, ty = head.partition(":")
        aval = parse_type(ty)
        body = body.strip()
        if body.startswith("<"):
            if name not in self.given:
                raise ValueError(f"constant {name} is printed by digest; pass its value in constants=")
            arr = np.asarray(self.given[name], aval.dtype.np)
        else:
            quoted = _NONFINITE.sub(lambda m: repr(m.group()), body)  # float() reads them back
            arr = np.asarray(ast.literal_eval(quoted), dtype=object).astype(aval.dtype.np)
        if arr.shape != aval.shape:
            raise ValueError(f"constant {name} has shape {list(arr.shape)}, declared {aval}")
        self.consts[name] = Literal(arr)

    def eqn(self, line: str) -> Eqn:
        body, loc = line, None
        if "  # " in line:
            body, _, loc = line.rpartition("  # ")
            loc = loc.strip()
        lhs, _, rhs = body.partition(" = ")
        out_tok, _, ty = lhs.strip().partition(":")
        name, params, ops = _split_bracket(rhs.strip())
        if name not in PRIMITIVES:
            raise ValueError(f"no primitive named {name!r} in the registry")
        ins = tuple(self.atoms(ops))
        out = self.define(out_tok, parse_type(ty))
        return Eqn(PRIMITIVES[name], ins, out, _Params(params).pairs(), loc)


def parse(text: str, constants: Mapping[str, Any] | None = None) -> Program:
    """Read a program printed by :func:`gradgen.ir.printer.print_program`.

    ``constants`` supplies array constants printed by digest (``$k`` -> array).
    Errors raise :class:`IRError` naming the line.
    """
    r = _Reader(constants)
    inputs: list[Var] | None = None
    eqns: list[Eqn] = []
    outputs: list[Atom] | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("const "):
                r.const(line)
            elif line.startswith("def (") and line.endswith("):"):
                inner = line[len("def ("):-2].strip()
                inputs = []
                for part in (inner.split(", ") if inner else []):
                    tok, _, ty = part.strip().partition(":")
                    inputs.append(r.define(tok, parse_type(ty)))
            elif inputs is None:
                raise ValueError("expected `def (...):` before the equations")
            elif line == "return" or line.startswith("return "):
                outputs = r.atoms(line[len("return"):])
            else:
                eqns.append(r.eqn(line))
        except (ValueError, SyntaxError, TypeError) as err:
            raise IRError(f"line {n}: {err}: {raw.strip()!r}") from None
    if inputs is None or outputs is None:
        raise IRError("parse: a program needs a `def (...):` line and a `return` line")
    return Program(inputs, eqns, outputs)
