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
  same axes, none of extent 1 (a reduction over those is a reshape first,
  :mod:`gradgen.codegen.unitaxes`). float32 sums accumulate in double. A row-wise
  kernel (below) also keeps sums over its rows, in partial sums per block of rows
  (:mod:`gradgen.codegen.colsums`).
- Row-wise kernels. A reduction's result is a *per-row value* of its kernel (one
  C scalar per iteration of the loops over the kept axes), stored only if read
  elsewhere. Elementwise equations over per-row values (``mean = sum * 1/n``,
  ``log`` of a sum) join the kernel as per-row equations; a ``reshape`` between
  per-row shapes, or a ``broadcast_in_dim`` back along the reduced axes, is a
  per-row alias; elementwise equations over the whole domain that read such a
  broadcast (``x - max``, ``exp``, ``/ sum``) and further reductions over the
  same axes join the same kernel. The renderer splits such a kernel into passes
  over each row (see :mod:`gradgen.codegen.rowwise`): softmax is one kernel of
  two passes (max; sum of exp) plus a pass storing ``exp(x - max) / sum``.
  This is recognized from shapes and strides only, never from op names.
- ``matmul`` is a *matmul kernel* (:mod:`gradgen.codegen.gemm`): a generated loop
  or a BLAS call, with the elementwise kernel reading its product (bias, relu)
  fused in as its epilogue. It is a host op until fusion and rematerialization
  are done, and becomes a kernel after them.
- ``check_index`` is a *check kernel* (:mod:`gradgen.codegen.checks`): one loop
  over its (contiguous) indices, reporting the first one out of range through a
  status buffer the executable reads. Like a matmul it is a host op until fusion
  and rematerialization are done (nothing fuses into it or recomputes its operand).
- Everything else (indexing, argmax, ...) is a *host op*: a numpy call (the primitive's own
  implementation) between kernels, on strided views of the buffers their kernels store.
- ``stop_gradient`` is the identity here: its output is its operand.

The data model (:class:`Buffer`, :class:`View`, :class:`Kernel`, :class:`HostOp`,
:class:`Schedule`) lives in :mod:`gradgen.codegen.steps`; it is re-exported here. Buffers
are named after the IR value they hold (``p12`` holds ``%12``); values computed inside a
kernel are stored only when something outside reads them.
"""
from __future__ import annotations

from ..dtypes import int64
from ..ir.core import Atom, Eqn, Literal, Program, Var
from ..ops.elementwise import stop_gradient
from ..ops.registry import Aval
from . import clower, gemm
from .colsums import schedule_column_sum
from .layout import contiguous, kept_pattern, numel, row_access, rows, same_walk
from .memory import plan_memory
from .onehot import lower_onehot
from .remat import rematerialize
from .split import split_whole_reductions
from .steps import Buffer, HostOp, Kernel, Schedule, Step, View
from .unitaxes import drop_unit_axes


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
        self.derived: dict[int, tuple] = {}  # (Schedule.derived)
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
            if not self.row_layout(e, low["view"]):
                self.layout(e, low["view"])
        elif clower.elementwise_template(e) is not None:
            if not self.row_eqn(e):
                self.fuse(e, e.out.aval.shape, None)
        elif clower.is_reduction(e):
            if not schedule_column_sum(self, e):  # (a sum over a row kernel's rows)
                self.fuse(e, e.inputs[0].aval.shape, tuple(sorted(e.params["axes"])))
        elif gemm.lowers(e):
            gemm.schedule_matmul(self, e)
        elif isinstance(low, dict) and "check" in low:
            self.host(e, [self.flat(e.inputs[0])])  # a check kernel after fusion (lower_checks)
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

    def flat(self, a: Atom) -> View:
        """``a`` readable from memory in C order at element offsets 0, 1, 2, ... (else copied)."""
        view = self.as_view(a)
        if isinstance(a, Var) and not same_walk(view.strides, contiguous(view.shape), view.shape):
            view = self.copy(a)
        return view

    def lower_checks(self) -> None:
        """Turn the check_index host ops into check kernels, each with its status buffer."""
        for pos, step in enumerate(self.steps):
            low = step.eqn.prim.c_lowering if isinstance(step, HostOp) else None
            if isinstance(low, dict) and "check" in low:
                e = step.eqn
                status = Buffer(self.fresh(Var(0, Aval((2,), int64))), "status")
                k = Kernel(tuple(e.out.aval.shape), eqns=[e], loads={e.inputs[0]: step.inputs[0]},
                           stores={e.out: step.output}, check=e, status=status)
                self.steps[pos] = k
                self.producer[step.output] = k

    def host(self, e: Eqn, views: list | None = None) -> None:
        """``e`` as a host op, reading ``views`` if given (else its operands where they are)."""
        ins = views if views is not None else \
            [a if isinstance(a, Literal) and a.aval.ndim == 0 else self.as_view(a)
             for a in e.inputs]
        buf = Buffer(e.out, "temp")
        step = HostOp(e, ins, buf)
        self.producer[buf] = step
        self.steps.append(step)
        self.loc[e.out] = View(buf, e.out.aval.shape, contiguous(e.out.aval.shape))

    def fuse(self, e: Eqn, domain: tuple[int, ...], red: tuple[int, ...] | None) -> None:
        groups, outside = [], []  # kernels holding operands over this domain / other shapes
        for a in e.inputs:
            w = self.where(a)
            if isinstance(w, Kernel):
                inside = a.aval.shape == w.domain == tuple(domain)
                (groups if inside else outside).append(w)
        groups = list(dict.fromkeys(groups))
        if groups:
            for g in groups[1:]:
                if not self.merge(g, groups[0]):
                    break
            groups = list(dict.fromkeys(w for a in e.inputs if isinstance(w := self.where(a), Kernel)
                                        and a.aval.shape == w.domain == tuple(domain)))
        views = [w for a in e.inputs if isinstance(w := self.where(a), View)]
        target = None
        # Kernels that cannot merge: join one, read the others' values from memory -- first
        # one holding a per-row broadcast (storing that would write a whole domain).
        for t in sorted(groups, key=lambda g: not any(a in g.row_values for a in e.inputs)):
            others = outside + [g for g in groups if g is not t]
            if _fits(t, red) and not self.reaches(views, t) and \
                    not any(self.feeds(t, w) for w in others):
                target = t
                break
        if target is None:  # operands held by other kernels are read from memory
            views = [self.as_view(a) if isinstance(w, Kernel) else w
                     for a in e.inputs if isinstance(w := self.where(a), (View, Kernel))]
            target = self.open_group(domain, red, views)
        for a in e.inputs:
            w = self.where(a)
            if isinstance(w, Kernel) and (w is not target or a.aval.shape != target.domain):
                w = self.as_view(a)
            if isinstance(w, View):
                target.loads[a] = w
            elif isinstance(w, Literal) and isinstance(a, Var):
                target.consts[a] = w
        target.eqns.append(e)
        self.loc[e.out] = target
        if red is not None:  # a per-row value, stored when something outside reads it
            target.red_axes = red
            target.row_values.add(e.out)

    def feeds(self, k: Kernel, w: Kernel) -> bool:
        """Whether kernel ``w`` is ``k`` or computed (directly or not) from ``k``'s stores."""
        return w is k or k in self.ancestors(w)

    # ------------------------------------------------------------ row-wise fusion
    def row_layout(self, e: Eqn, strides_of) -> bool:
        """A reshape or broadcast of a per-row value that stays per-row: an alias in its kernel."""
        a = e.inputs[0]
        k = self.where(a)
        if not (isinstance(k, Kernel) and a in k.row_values):
            return False
        red = k.red_axes
        pattern = contiguous(a.aval.shape) if k.is_row_shaped(a) else kept_pattern(k.domain, red)
        strides = strides_of(a.aval.shape, pattern, **e.params)
        shape = e.out.aval.shape
        if strides is None:
            return False
        if numel(shape) == rows(k.domain, red):
            ok = same_walk(strides, contiguous(shape), shape)
        else:
            ok = shape == k.domain and same_walk(strides, kept_pattern(k.domain, red), shape)
        if ok:
            k.eqns.append(e)
            k.row_values.add(e.out)
            self.loc[e.out] = k
        return ok

    def row_eqn(self, e: Eqn) -> bool:
        """An elementwise equation over per-row values joins their kernel as a per-row one."""
        ks = [w for a in e.inputs if isinstance(w := self.where(a), Kernel) and a in w.row_values
              and w.is_row_shaped(a)]
        if not ks:
            return False
        k = ks[0]
        if numel(k.domain) == 0 or not k.is_row_shaped(e.out):
            return False
        loads = {}
        for a in e.inputs:
            w = self.where(a)
            if isinstance(w, Literal) or (w is k and a in k.row_values):
                continue
            if isinstance(w, Kernel):
                if self.feeds(k, w) or row_access(k.domain, k.red_axes, a.aval.shape,
                                                  contiguous(a.aval.shape)) is None:
                    return False
                loads[a] = None  # made readable below, once the equation is accepted
            elif row_access(k.domain, k.red_axes, w.shape, w.strides) is None or \
                    self.reaches([w], k):
                return False
            else:
                loads[a] = w
        for a, w in loads.items():
            k.loads[a] = w if w is not None else self.as_view(a)
        for a in e.inputs:
            if isinstance(a, Var) and isinstance(self.where(a), Literal):
                k.consts[a] = self.where(a)
        k.eqns.append(e)
        k.row_values.add(e.out)
        self.loc[e.out] = k
        return True

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
        self.absorb(g, into, sorted(into.eqns + g.eqns, key=lambda e: self.order[id(e)]))
        into.row_values |= g.row_values
        into.red_axes = into.red_axes if into.red_axes is not None else g.red_axes
        return True

    def absorb(self, g: Kernel, into: Kernel, eqns: list[Eqn]) -> None:
        """Kernel ``g`` becomes part of ``into`` (which then holds ``eqns``): its loads, stores
        and constants move over, what it produced is produced by ``into``, and it leaves the
        schedule."""
        into.eqns = eqns
        into.loads.update(g.loads)
        into.stores.update(g.stores)
        into.consts.update(g.consts)
        into.column_sums += g.column_sums
        for buf in g.stores.values():
            self.producer[buf] = into
        for v, w in self.loc.items():
            if w is g:
                self.loc[v] = into
        self.steps.remove(g)

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
        rematerialize(self, outputs)  # values readers can compute cheaply are not stored
        gemm.lower_matmuls(self, outputs)  # matmul host ops -> kernels, with their epilogues
        self.lower_checks()
        steps = _toposort(self.steps, self.deps)
        for kind, name in ((Kernel, "kernel"), (HostOp, "host")):
            for k, s in enumerate([s for s in steps if isinstance(s, kind)]):
                s.name = f"{name}_{k}"
        return Schedule(self.program, steps, self.inputs, outputs, self.numbers, self.order,
                        derived=self.derived)


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
    """The kernel schedule of an (optimized) IR program, with its memory plan; see the
    module docstring and :mod:`gradgen.codegen.memory`."""
    program = lower_onehot(program)  # one-per-row gathers/scatters become fusable compares
    program = split_whole_reductions(program)  # a loss over all rows joins the row kernel
    program = drop_unit_axes(program)  # rows of one element: per-row = whole-domain shapes
    sched = _Scheduler(program).run()
    sched.slots, sched.slot_sizes = plan_memory(sched)
    return sched


__all__ = ["Buffer", "View", "Kernel", "HostOp", "Schedule", "build_schedule", "contiguous"]
