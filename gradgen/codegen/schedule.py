"""The kernel schedule: which IR equations run together in one C loop nest.

Policy (greedy, in program order):

- Elementwise equations (arithmetic, math, comparisons, ``select``, ``convert``)
  over one output shape join one *group*: one kernel, one loop nest over that
  shape. A group also takes unrelated equations of the same shape (horizontal
  fusion) when that creates no cycle between kernels.
- Layout equations (``broadcast_in_dim``, ``transpose``, ``reshape``) move no
  data: they turn a buffer into a strided *view* (the registry's ``view`` facet
  computes the strides) that a kernel reads with index arithmetic. A layout
  equation over a value still inside a group makes the group store it. A
  reshape no strides can express copies its operand first (one small kernel).
- ``reduce_sum/max/min/prod`` join the group of their elementwise producers, so
  ``sum(tanh(x) * y)`` reads x and y once; all reductions of a group reduce the
  same axes. float32 sums accumulate in double.
- Everything else (matmul, indexing, argmax, ...) is a *host op*: for now it runs
  as a numpy call (the primitive's own implementation) between kernels, on
  strided views of the buffers. Its operands are stored by their kernels.
- ``stop_gradient`` is the identity here: its output is its operand.

Buffers are named after the IR value they hold (``p12`` holds ``%12``); values
computed inside a kernel are stored only when something outside reads them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.core import Atom, Eqn, Literal, Program, Var
from ..ops.elementwise import stop_gradient
from . import clower


def contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major element strides of ``shape``."""
    strides, n = [], 1
    for s in reversed(shape):
        strides.append(n)
        n *= s
    return tuple(reversed(strides))


@dataclass(eq=False)
class Buffer:
    """Storage for one value: a program input (``index``), a constant (``value``) or a temporary."""

    var: Var
    kind: str  # "input" | "const" | "temp"
    index: int | None = None
    value: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class View:
    """A value read from ``buffer`` at element ``strides`` (0 = broadcast)."""

    buffer: Buffer
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    @property
    def is_whole(self) -> bool:
        """Whether the view is the buffer itself (same shape, row-major)."""
        return self.shape == self.buffer.var.aval.shape and self.strides == contiguous(self.shape)


@dataclass(eq=False)
class Kernel:
    """One fused loop nest over ``domain``; ``red_axes`` set when it reduces."""

    domain: tuple[int, ...]
    red_axes: tuple[int, ...] | None = None
    eqns: list[Eqn] = field(default_factory=list)
    loads: dict[Var, View] = field(default_factory=dict)
    stores: dict[Var, Buffer] = field(default_factory=dict)
    consts: dict[Var, Literal] = field(default_factory=dict)  # splat operands -> their scalar
    name: str = ""


@dataclass(eq=False)
class HostOp:
    """One equation run by numpy between kernels: operands are views or rank-0 literals."""

    eqn: Eqn
    inputs: list
    output: Buffer
    name: str = ""


Step = Kernel | HostOp


@dataclass
class Schedule:
    """Kernels and host ops in run order, with where each program output lives."""

    program: Program
    steps: list[Step]
    inputs: list[Buffer]
    outputs: list  # View or Literal per program output
    numbers: dict[Var, int]  # printed number of every value: %12 <-> v12 / p12
    order: dict[int, int]    # id(eqn) -> position in the program (synthetic copies last)

    @property
    def kernels(self) -> list[Kernel]:
        return [s for s in self.steps if isinstance(s, Kernel)]


class _Scheduler:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.numbers = {v: k for k, v in enumerate(program.inputs)}
        for e in program.eqns:
            self.numbers.setdefault(e.out, len(self.numbers))
        self.order = {id(e): k for k, e in enumerate(program.eqns)}
        self.loc: dict[Var, object] = {}  # View | Literal (rank-0 splat) | Kernel
        self.producer: dict[Buffer, Step] = {}
        self.steps: list[Step] = []
        self.consts: dict[int, View] = {}
        self.inputs = [Buffer(v, "input", index=i) for i, v in enumerate(program.inputs)]
        for b in self.inputs:
            self.loc[b.var] = View(b, b.var.aval.shape, contiguous(b.var.aval.shape))

    # ------------------------------------------------------------ values
    def fresh(self, like: Var) -> Var:
        v = Var(-1 - len(self.numbers), like.aval)
        self.numbers[v] = len(self.numbers)
        return v

    def where(self, a: Atom) -> object:
        if isinstance(a, Literal):
            if a.aval.ndim == 0:
                return a
            view = self.consts.get(id(a))
            if view is None:
                buf = Buffer(self.fresh(Var(0, a.aval)), "const", value=a.value)
                view = self.consts[id(a)] = View(buf, a.aval.shape, contiguous(a.aval.shape))
            return view
        return self.loc[a]

    def as_view(self, a: Atom) -> View:
        """``a`` readable from memory: stores a kernel value, makes a splat a 0-stride view."""
        w = self.where(a)
        if isinstance(w, Kernel):
            buf = w.stores.get(a)
            if buf is None:
                buf = w.stores[a] = Buffer(a, "temp")
                self.producer[buf] = w
            return View(buf, a.aval.shape, contiguous(a.aval.shape))
        if isinstance(w, Literal):  # a splat: a 0-d constant buffer read at stride 0
            buf = Buffer(self.fresh(Var(0, w.aval)), "const", value=w.value)
            return View(buf, a.aval.shape, (0,) * a.aval.ndim)
        return w

    # ------------------------------------------------------------ dependencies
    def deps(self, s: Step) -> set:
        views = s.loads.values() if isinstance(s, Kernel) else \
            [v for v in s.inputs if isinstance(v, View)]
        return {self.producer[v.buffer] for v in views if v.buffer in self.producer}

    def ancestors(self, s: Step) -> set:
        seen: set = set()
        stack = list(self.deps(s))
        while stack:
            t = stack.pop()
            if t not in seen:
                seen.add(t)
                stack.extend(self.deps(t))
        return seen

    def reaches(self, views: list[View], k: Kernel) -> bool:
        """Whether any of ``views`` is computed (directly or not) from kernel ``k``'s stores."""
        for v in views:
            p = self.producer.get(v.buffer)
            if p is not None and (p is k or k in self.ancestors(p)):
                return True
        return False

    # ------------------------------------------------------------ equations
    def visit(self, e: Eqn) -> None:
        low = e.prim.c_lowering
        if e.prim is stop_gradient and not isinstance(self.where(e.inputs[0]), Kernel):
            self.loc[e.out] = self.where(e.inputs[0])  # the identity: an alias
        elif isinstance(low, dict) and "view" in low:
            self.layout(e, low["view"])
        elif clower.elementwise_template(e) is not None:
            self.fuse(e, e.out.aval.shape, None)
        elif clower.is_reduction(e):
            self.fuse(e, e.inputs[0].aval.shape, tuple(sorted(e.params["axes"])))
        else:
            self.host(e)

    def layout(self, e: Eqn, strides_of) -> None:
        src = self.where(e.inputs[0])
        if isinstance(src, Literal):
            self.loc[e.out] = src  # a rank-0 constant broadcasts anywhere
            return
        view = self.as_view(e.inputs[0])
        strides = strides_of(view.shape, view.strides, **e.params)
        if strides is None:  # no strides express it: copy the operand, then it is contiguous
            view = self.copy(e.inputs[0])
            strides = strides_of(view.shape, view.strides, **e.params)
        self.loc[e.out] = View(view.buffer, e.out.aval.shape, tuple(strides))

    def copy(self, a: Var) -> View:
        """A contiguous copy of ``a`` (a synthetic identity equation in some kernel)."""
        out = self.fresh(a)
        e = Eqn(stop_gradient, (a,), out, {}, None)
        self.order[id(e)] = len(self.order) + len(self.program.eqns)
        self.fuse(e, a.aval.shape, None)
        return self.as_view(out)

    def host(self, e: Eqn) -> None:
        ins = [a if isinstance(a, Literal) and a.aval.ndim == 0 else self.as_view(a)
               for a in e.inputs]
        buf = Buffer(e.out, "temp")
        step = HostOp(e, ins, buf)
        self.producer[buf] = step
        self.steps.append(step)
        self.loc[e.out] = View(buf, e.out.aval.shape, contiguous(e.out.aval.shape))

    def fuse(self, e: Eqn, domain: tuple[int, ...], red: tuple[int, ...] | None) -> None:
        groups = []
        for a in e.inputs:
            w = self.where(a)
            if isinstance(w, Kernel) and w not in groups:
                groups.append(w)
        target = groups[0] if groups else None
        for g in groups[1:]:
            if not self.merge(g, target):
                target = None
                break
        views = [w for a in e.inputs if isinstance(w := self.where(a), View)]
        if target is not None and (not _fits(target, red) or self.reaches(views, target)):
            target = None
        if target is None:  # operands held by other kernels are read from memory
            views = [self.as_view(a) if isinstance(w, Kernel) else w
                     for a in e.inputs if isinstance(w := self.where(a), (View, Kernel))]
            target = self.open_group(domain, red, views)
        for a in e.inputs:
            w = self.where(a)
            if isinstance(w, Kernel) and w is not target:
                w = self.as_view(a)
            if isinstance(w, View):
                target.loads[a] = w
            elif isinstance(w, Literal) and isinstance(a, Var):
                target.consts[a] = w
        target.eqns.append(e)
        if red is None:
            self.loc[e.out] = target
        else:
            target.red_axes = red
            buf = target.stores[e.out] = Buffer(e.out, "temp")
            self.producer[buf] = target
            self.loc[e.out] = View(buf, e.out.aval.shape, contiguous(e.out.aval.shape))

    def open_group(self, domain, red, views: list[View]) -> Kernel:
        for s in reversed(self.steps):
            if isinstance(s, Kernel) and s.domain == domain and _fits(s, red) \
                    and not self.reaches(views, s):
                return s
        k = Kernel(tuple(domain))
        self.steps.append(k)
        return k

    def merge(self, g: Kernel, into: Kernel) -> bool:
        """Move kernel ``g`` into ``into`` when neither reads the other's results."""
        if g.red_axes is not None and not _fits(into, g.red_axes):
            return False
        if g in self.ancestors(into) or into in self.ancestors(g):
            return False
        into.eqns = sorted(into.eqns + g.eqns, key=lambda e: self.order[id(e)])
        into.loads.update(g.loads)
        into.stores.update(g.stores)
        into.consts.update(g.consts)
        into.red_axes = into.red_axes if into.red_axes is not None else g.red_axes
        for buf in g.stores.values():
            self.producer[buf] = into
        for v, w in self.loc.items():
            if w is g:
                self.loc[v] = into
        self.steps.remove(g)
        return True

    # ------------------------------------------------------------ outputs and order
    def output(self, a: Atom) -> object:
        if isinstance(a, Literal):
            return a
        w = self.where(a)
        if isinstance(w, View) and w.is_whole:
            return w
        if isinstance(w, Kernel):
            return self.as_view(a)
        return self.copy(a)

    def run(self) -> Schedule:
        for e in self.program.eqns:
            self.visit(e)
        outputs = [self.output(a) for a in self.program.outputs]
        steps = _toposort(self.steps, self.deps)
        for k, s in enumerate([s for s in steps if isinstance(s, Kernel)]):
            s.name = f"kernel_{k}"
        for k, s in enumerate([s for s in steps if isinstance(s, HostOp)]):
            s.name = f"host_{k}"
        return Schedule(self.program, steps, self.inputs, outputs, self.numbers, self.order)


def _fits(k: Kernel, red: tuple[int, ...] | None) -> bool:
    return red is None or k.red_axes is None or k.red_axes == red


def _toposort(steps: list[Step], deps) -> list[Step]:
    """Steps in dependency order, keeping creation order where free (stable names)."""
    done: list[Step] = []
    placed: set = set()
    pending = list(steps)
    while pending:
        for s in pending:
            if deps(s) <= placed:
                done.append(s)
                placed.add(s)
                pending.remove(s)
                break
        else:  # pragma: no cover  (the fusion rules never create a cycle)
            raise AssertionError("kernel schedule has a cycle")
    return done


def build_schedule(program: Program) -> Schedule:
    """The kernel schedule of an (optimized) IR program; see the module docstring."""
    return _Scheduler(program).run()


__all__ = ["Buffer", "View", "Kernel", "HostOp", "Schedule", "build_schedule", "contiguous"]
