"""Reverse-mode differentiation of IR programs by transformation.

``vjp(program, wrt)`` returns the *joint* program: the primal equations followed
by the backward equations obtained by applying, in reverse order, each
primitive's registry VJP rule -- the same rules eager autograd runs. The rules
execute in the builder's symbolic mode, so calling primitives on Vars appends
equations instead of computing. Exactly as on the eager tape:

- a rule gets the operands (or, for a primitive that saves none, their
  :class:`Aval` stand-ins), the output when the primitive saves it, the incoming
  cotangent, and one ``needs`` flag per operand;
- cotangents reaching one value from several consumers are summed with ``add``;
- values that do not depend on a differentiated input (inactive values, integer
  and boolean values, outputs of primitives without a rule such as comparisons
  and ``stop_gradient``) get no cotangent, and rules are skipped where no
  operand needs one.

The joint program is an ordinary Program, so it can be differentiated again.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..ir.builder import Builder, building
from ..ir.core import Atom, Eqn, Program, Var
from ..ops.elementwise import add
from ..ops.registry import Aval
from ..ops.shape import full


def vjp(program: Program, wrt: Sequence[int] | None = None,
        seeds: Sequence[int] | None = None) -> Program:
    """The joint forward-and-backward program of ``program``.

    Inputs: ``program``'s inputs, then one cotangent per output listed in
    ``seeds`` (default: every output; each cotangent has its output's type).
    Outputs: ``program``'s outputs, then the gradient of each input listed in
    ``wrt`` (default: every floating input). ``meta`` records
    ``n_primal_inputs``, ``n_primal_outputs``, ``wrt``, ``seeds``,
    ``zero_grads`` (gradients that are structurally zero: no path joins that
    input to a seeded output) and ``active_outputs`` (outputs that depend
    differentiably on a ``wrt`` input).

    >>> from gradgen.dtypes import float64
    >>> b = Builder(); x = b.input((3,), float64, name="x")
    >>> joint = vjp(b.build([b.add("mul", x, x)]))
    >>> [v.aval for v in joint.inputs], len(joint.outputs)
    ([Aval(shape=(3,), dtype=torch.float64), Aval(shape=(3,), dtype=torch.float64)], 2)
    """
    if wrt is None:
        wrt = [i for i, v in enumerate(program.inputs) if v.aval.dtype.is_floating_point]
    wrt = tuple(wrt)
    seeds = tuple(range(len(program.outputs))) if seeds is None else tuple(seeds)
    for i in wrt:
        v = program.inputs[i]
        if not v.aval.dtype.is_floating_point:
            raise TypeError(f"vjp: cannot differentiate with respect to input {i} ({v!r}): "
                            f"only floating inputs have gradients, got {v.aval.dtype.name}")
    b = Builder()
    ins = [b.input(v.aval.shape, v.aval.dtype, name=v.name) for v in program.inputs]
    env: dict[Var, Atom] = dict(zip(program.inputs, ins))
    eqns = _copy_eqns(b, program.eqns, env)
    outs = [env.get(a, a) if type(a) is Var else a for a in program.outputs]
    taken = {v.name for v in ins if v.name}
    cts = [b.input(outs[k].aval.shape, outs[k].aval.dtype, name=_fresh_name(f"ct{k}", taken))
           for k in seeds]
    active = _active(eqns, {ins[i] for i in wrt})
    results, zero = [], []
    with building(b):  # primitives called on Vars from here on append equations to b
        grads = _backward(b, eqns, [outs[k] for k in seeds], cts, active)
        for i in wrt:
            g = grads.get(ins[i])
            zero.append(g is None)
            if g is None:
                g = full(0.0, ins[i].aval.shape, ins[i].aval.dtype)
            results.append(g)
    meta = dict(program.meta)
    meta.update(n_primal_inputs=len(ins), n_primal_outputs=len(outs), wrt=wrt, seeds=seeds,
                zero_grads=tuple(zero),
                active_outputs=tuple(type(a) is Var and a in active for a in outs))
    return b.build(outs + results, meta)


def active_outputs(program: Program, wrt: Sequence[int]) -> tuple[bool, ...]:
    """Which outputs of ``program`` depend differentiably on the inputs listed in ``wrt``."""
    active = _active(program.eqns, {program.inputs[i] for i in wrt})
    return tuple(type(a) is Var and a in active for a in program.outputs)


def _copy_eqns(b: Builder, eqns: list[Eqn], env: dict) -> list[Eqn]:
    copied = []
    for e in eqns:
        out = b.new_var(e.out.aval, e.out.name)
        ne = Eqn(e.prim, tuple(env.get(a, a) if type(a) is Var else a for a in e.inputs), out,
                 dict(e.params), e.loc)
        b.append(ne)
        env[e.out] = out
        copied.append(ne)
    return copied


def _fresh_name(base: str, taken: set) -> str:
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _active(eqns: list[Eqn], seeds: set) -> set:
    """Variables that depend differentiably on a seed (what eager would give a grad_fn)."""
    active = set(seeds)
    for e in eqns:
        if e.prim.vjp is None or not e.out.aval.dtype.is_floating_point:
            continue
        for a in e.inputs:
            if type(a) is Var and a in active:
                active.add(e.out)
                break
    return active


def _accumulate(b: Builder, cts: dict, v: Var, g: Any) -> None:
    g = b.atoms((g,))[0]
    if g.aval != v.aval:
        raise TypeError(f"vjp: a cotangent of type {g.aval} reached {v!r}; "
                        "a VJP rule returned a cotangent of the wrong shape or dtype")
    old = cts.get(v)
    cts[v] = g if old is None else add(old, g)


def _backward(b: Builder, eqns: list[Eqn], outs: list, cts: list, active: set) -> dict:
    """Emit the backward equations (in building mode); returns each variable's cotangent."""
    ct: dict[Var, Any] = {}
    for o, c in zip(outs, cts):
        if type(o) is Var and o in active:
            _accumulate(b, ct, o, c)
    for e in reversed(eqns):
        g = ct.pop(e.out, None)
        if g is None:
            continue
        needs = tuple(type(a) is Var and a in active for a in e.inputs)
        if not any(needs):
            continue
        prim = e.prim
        ins = e.inputs if prim.save_inputs else tuple(Aval(a.aval.shape, a.aval.dtype)
                                                       for a in e.inputs)
        out = e.out if prim.save_output else None
        b.loc = e.loc
        gs = prim.vjp(g, ins, out, needs, **e.params)
        for a, need, gi in zip(e.inputs, needs, gs):
            if need and gi is not None:
                _accumulate(b, ct, a, gi)
    b.loc = None
    return ct


__all__ = ["vjp", "active_outputs"]
