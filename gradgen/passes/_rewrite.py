"""The one loop every rewriting pass shares: walk equations in order, substitute, rewrite.

A pass supplies a *rule* ``rule(eqn, ctx) -> None | Atom | Eqn | list[Eqn]``:
``None`` keeps the equation, an atom replaces its output everywhere (the
equation is dropped), an equation (or a list ending with one producing the same
output variable) replaces it. Rules see equations whose operands have already
been substituted, and can look up the equation that produced any variable, so
chains (``neg(neg(x))``) collapse in one sweep.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from ..ir.core import Eqn, Literal, Program, Var
from ..ops.registry import Aval

Atom = Any  # Var | Literal


class Context:
    """What a rule may ask while the program is being rewritten."""

    __slots__ = ("producer", "_next_id", "changed")

    def __init__(self, program: Program) -> None:
        self.producer: dict[Var, Eqn] = {}
        self._next_id = next_id(program)
        self.changed = False

    def fresh(self, aval: Aval) -> Var:
        """A new variable of type ``aval`` whose id no other variable of the program uses."""
        v = Var(self._next_id, aval)
        self._next_id += 1
        return v

    def defn(self, atom: Atom) -> Eqn | None:
        """The (rewritten) equation producing ``atom``, or None for inputs and literals."""
        return self.producer.get(atom) if type(atom) is Var else None


Rule = Callable[[Eqn, Context], Any]


def next_id(program: Program) -> int:
    """One more than the largest variable id in ``program``."""
    top = -1
    for v in program.inputs:
        top = max(top, v.id)
    for e in program.eqns:
        top = max(top, e.out.id)
    return top + 1


def subst(atom: Atom, env: dict) -> Atom:
    return env.get(atom, atom) if type(atom) is Var else atom


def rewrite(program: Program, rule: Rule) -> Program:
    """Apply ``rule`` to every equation in order; returns a new program (the input is untouched).

    Unchanged equations are kept as the same objects, so a caller can tell cheaply
    whether anything changed.
    """
    env: dict[Var, Atom] = {}
    get = env.get
    ctx = Context(program)
    producer = ctx.producer
    eqns: list[Eqn] = []
    for e in program.eqns:
        if env:
            ins = tuple([get(a, a) for a in e.inputs])  # literals are never keys: they pass
            if ins != e.inputs:  # atoms compare by identity
                e = Eqn(e.prim, ins, e.out, e.params, e.loc)
        result = rule(e, ctx)
        if result is None:
            eqns.append(e)
            producer[e.out] = e
            continue
        ctx.changed = True
        if isinstance(result, Eqn):
            result = [result]
        if isinstance(result, list):
            for r in result:
                eqns.append(r)
                producer[r.out] = r
            if result[-1].out is not e.out:
                env[e.out] = result[-1].out
        else:
            env[e.out] = result
    outputs = [get(a, a) for a in program.outputs]
    return Program(list(program.inputs), eqns, outputs, dict(program.meta))


def literal_scalar(atom: Atom) -> np.ndarray | None:
    """The 0-d value of a rank-0 literal, else None."""
    if type(atom) is Literal and atom.value.ndim == 0:
        return atom.value
    return None


def splat_value(atom: Atom, ctx: Context) -> np.ndarray | None:
    """The 0-d value when ``atom`` is one constant everywhere: a literal whose elements are all
    equal (bit for bit), or a broadcast of a rank-0 literal."""
    if type(atom) is Literal:
        v = atom.value
        if v.ndim == 0:
            return v
        if v.size and _all_same(v):
            return v.reshape(-1)[0].reshape(())
        return None
    e = ctx.defn(atom)
    if e is not None and e.prim.name == "broadcast_in_dim":
        return literal_scalar(e.inputs[0])
    return None


def _all_same(v: np.ndarray) -> bool:
    flat = np.ascontiguousarray(v).reshape(-1)
    return bool((flat.view(np.uint8).reshape(flat.size, -1) == flat[:1].view(np.uint8)).all())


def uses(program: Program) -> dict[Var, int]:
    """How many times each variable is read (by equations and as an output)."""
    n: dict[Var, int] = {}
    for e in program.eqns:
        for a in e.inputs:
            if type(a) is Var:
                n[a] = n.get(a, 0) + 1
    for a in program.outputs:
        if type(a) is Var:
            n[a] = n.get(a, 0) + 1
    return n


def vars_of(atoms: Iterable[Atom]) -> list[Var]:
    return [a for a in atoms if type(a) is Var]
