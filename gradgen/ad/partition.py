"""Split a joint program into a forward program and a backward program.

The forward program maps the primal inputs to the primal outputs plus the
*residuals* the backward needs; the backward program maps the saved primal
inputs, the residuals and the output cotangents to the gradients.

Rematerialization policy (a greedy stand-in for AOTAutograd's min-cut). Each
forward value the backward needs is either *saved* (a residual) or *recomputed*
in the backward from values that are themselves saved or recomputed.

1. Only cheap primitives are recomputed: elementwise arithmetic, comparisons,
   ``select``, ``convert`` and the layout primitives ``broadcast_in_dim``,
   ``reshape``, ``transpose``. Reductions, matmul, indexing never are, so a
   value they produce that the backward needs is always saved. Nor is a
   comparison of a value recomputed through a library function (``ROUNDED``:
   exp, tanh, ...): C may round that function differently in the backward's loop
   than in the forward's (float64's vector and scalar exp differ in the last bit),
   which flips an equality such as max's gradient mask ``x == max(x)``; the
   comparison's result is saved instead (one byte an element).
2. Primal inputs, primal outputs and literals cost nothing (the caller holds
   them anyway), and so do the values rule 1 forces to be saved. A free value
   the backward reads is saved, never recomputed (``exp`` keeps its output).
3. In program order, each value gets the cost of having it in the backward:
   its size in bytes if saved, or the summed costs of its operands if
   recomputed. Recomputing is chosen when it costs strictly fewer bytes than
   saving, or nothing at all.
4. From the values the backward needs, follow the choices: recomputed values
   pull in their operands, saved ones stop the walk.
5. Costs add along trees (a shared operand counts once per use), which misses
   one common pattern: ``x - mean(x)`` and ``(x - mean(x))**2`` both cost
   all of ``x`` (a matmul output), so both get saved. So: values that are not
   recomputable and from which two or more saved values are computed (through
   cheap equations only) are tried as free; the plan is kept if it saves
   fewer bytes in total (at most three such rounds).

The estimate never undercounts, and each round is kept only when it lowers
the total, so the residuals never take more bytes than saving everything the
backward reads would. Typical effects: a broadcast of a bias or
a constant is recomputed from the bias or the literal; ``tanh``'s
``1 - t*t`` of an input is recomputed from the input; a ``relu`` mask of an
intermediate (1 byte per element, the intermediate 4 or 8) is saved.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.core import Eqn, Program, Var
from ..ops.elementwise import COMPARISONS
from ..passes.dce import dce
from ..passes.fold import ELEMENTWISE

RECOMPUTABLE = ELEMENTWISE | {"broadcast_in_dim", "reshape", "transpose"}
# Elementwise primitives C computes by a library call (libm, libmvec, gradgen's vecmath): the
# same input may round differently in two loops. (sqrt is correctly rounded everywhere.)
ROUNDED = frozenset({"cos", "erf", "exp", "expm1", "log", "log1p", "logistic", "pow", "sin",
                     "tanh"})


@dataclass
class Partition:
    """The two halves of a joint program.

    ``forward``: primal inputs -> primal outputs + residuals.
    ``backward``: saved primal inputs (``saved_inputs`` gives their indices),
    then residuals (the forward's outputs after the first ``n_outputs``), then
    one cotangent per ``seeds`` output -> one gradient per ``wrt`` input.
    """

    forward: Program
    backward: Program
    n_outputs: int
    saved_inputs: tuple[int, ...]
    wrt: tuple[int, ...]
    seeds: tuple[int, ...]
    zero_grads: tuple[bool, ...]
    active_outputs: tuple[bool, ...]

    @property
    def n_residuals(self) -> int:
        return len(self.forward.outputs) - self.n_outputs


def partition(joint: Program) -> Partition:
    """Split ``joint`` (made by :func:`gradgen.ad.reverse.vjp`) by the module's policy."""
    meta = joint.meta
    n_in, n_out = meta["n_primal_inputs"], meta["n_primal_outputs"]
    primal_ins, cts = joint.inputs[:n_in], joint.inputs[n_in:]
    primal_outs, grads = joint.outputs[:n_out], joint.outputs[n_out:]
    tangent = _depends_on(joint.eqns, set(cts))
    back = dce(Program(list(joint.inputs), [e for e in joint.eqns if e.out in tangent], list(grads)))
    producer = {e.out: e for e in joint.eqns}
    needed = _free_vars(back, tangent)
    order = {e.out: k for k, e in enumerate(joint.eqns)}
    order.update({v: -1 - k for k, v in enumerate(primal_ins)})
    outs = {a for a in primal_outs if type(a) is Var}
    saved, recompute = _rematerialize(needed, producer, set(primal_ins), outs, order)
    bw_eqns = [e for e in joint.eqns if e.out in recompute or e.out in tangent]
    saved_inputs = tuple(i for i, v in enumerate(primal_ins) if v in saved)
    residuals = sorted((v for v in saved if v in producer), key=order.__getitem__)
    base = {k: v for k, v in meta.items()
            if k not in ("n_primal_inputs", "n_primal_outputs", "wrt", "seeds", "zero_grads",
                         "active_outputs")}
    backward = dce(Program([primal_ins[i] for i in saved_inputs] + residuals + list(cts),
                           bw_eqns, list(grads), dict(base)))
    forward = dce(Program(list(primal_ins), [e for e in joint.eqns if e.out not in tangent],
                          list(primal_outs) + residuals, dict(base)))
    return Partition(forward, backward, n_out, saved_inputs, tuple(meta["wrt"]),
                     tuple(meta["seeds"]), tuple(meta["zero_grads"]),
                     tuple(meta["active_outputs"]))


def _depends_on(eqns: list[Eqn], seeds: set) -> set:
    dep = set(seeds)
    for e in eqns:
        if any(type(a) is Var and a in dep for a in e.inputs):
            dep.add(e.out)
    return dep


def _free_vars(back: Program, tangent: set) -> set:
    """Non-tangent variables the backward equations (or gradient outputs) read."""
    free = set()
    for e in back.eqns:
        free.update(a for a in e.inputs if type(a) is Var and a not in tangent)
    free.update(a for a in back.outputs if type(a) is Var and a not in tangent)
    return free


def _nbytes(v: Var, primal: set) -> int:
    return 0 if v in primal else v.aval.size * v.aval.dtype.itemsize


def _rematerialize(needed: set, producer: dict, primal: set, outs: set,
                   order: dict) -> tuple[set, set]:
    """The module's policy; returns (values to save, values to recompute in the backward)."""
    above = ancestors(needed, producer)
    in_order = sorted(above, key=order.__getitem__)
    # Inputs and outputs exist anyway; values the backward needs that only the forward can
    # compute are saved whatever else happens. All are free for recomputing anything else.
    free = set(primal) | (outs & above) | {
        v for v in needed if v not in primal and producer[v].prim.name not in RECOMPUTABLE}
    best = _plan(needed, producer, primal, free, in_order)
    for _ in range(3):  # rule 5: try saving expensive values that several saved values share
        shared = _shared_sources(best[0] - free, producer, free)
        if not shared:
            break
        trial = _plan(needed, producer, primal, free | shared, in_order)
        if _total(trial[0], primal) >= _total(best[0], primal):
            break
        best, free = trial, free | shared
    return best


def _plan(needed: set, producer: dict, primal: set, free: set, in_order: list) -> tuple[set, set]:
    """Rules 3 and 4 for a given set of free values."""
    cheapest: dict[Var, int] = {}   # bytes to save so that v is available in the backward
    recompute_ok: set = set()
    rounded: set = set()  # recomputable through a ROUNDED primitive (rule 1)
    for v in in_order:
        if v in free:
            cheapest[v] = 0
            continue
        size = _nbytes(v, primal)
        e = producer[v]
        name = e.prim.name
        operands = {a for a in e.inputs if type(a) is Var}
        if name in RECOMPUTABLE and not (name in COMPARISONS and operands & rounded):
            cost = sum(cheapest.get(a, 0) for a in operands)
            if cost == 0 or cost < size:
                cheapest[v] = cost
                recompute_ok.add(v)
                if name in ROUNDED or operands & rounded:
                    rounded.add(v)
                continue
        cheapest[v] = size
    saved: set = set()
    recompute: set = set()
    stack = list(needed)
    while stack:
        v = stack.pop()
        if v in saved or v in recompute:
            continue
        if v in recompute_ok:
            recompute.add(v)
            stack.extend(a for a in producer[v].inputs if type(a) is Var)
        else:
            saved.add(v)
    return saved, recompute


def _shared_sources(saved: set, producer: dict, free: set) -> set:
    """Non-free values that are not recomputable, reached from two or more saved values through
    recomputable equations only (e.g. a matmul output that both ``x - mean`` and ``(x - mean)^2``
    are computed from)."""
    reached: dict[Var, int] = {}
    for v in saved:
        e = producer.get(v)
        if e is None or e.prim.name not in RECOMPUTABLE:
            continue
        seen: set = set()
        stack = [a for a in e.inputs if type(a) is Var]
        while stack and len(seen) < 64:  # a bounded walk keeps this linear in practice
            a = stack.pop()
            if a in seen or a in free:
                continue
            seen.add(a)
            pa = producer.get(a)
            if pa is None:
                continue
            if pa.prim.name in RECOMPUTABLE:
                stack.extend(x for x in pa.inputs if type(x) is Var)
            else:
                reached[a] = reached.get(a, 0) + 1
    return {a for a, n in reached.items() if n >= 2}


def _total(saved: set, primal: set) -> int:
    return sum(_nbytes(v, primal) for v in saved)


def ancestors(needed: set, producer: dict) -> set:
    """``needed`` and every forward value they are computed from."""
    seen = set()
    stack = list(needed)
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        e = producer.get(v)
        if e is not None:
            stack.extend(a for a in e.inputs if type(a) is Var)
    return seen


__all__ = ["Partition", "partition", "ancestors", "RECOMPUTABLE", "ROUNDED"]
