"""One compiled specialization of a function: its programs, how to call them, its grad_fn.

A :class:`CompiledEntry` is built once per input signature from the traced
program: the forward program (outputs plus residuals) and, when some input
requires grad, the backward program. Calling it runs the forward program (in the
interpreter, or through the executables a ``lower`` function built, e.g. C
kernels) and gives the call one :class:`CompiledFunctionBackward` node whose
``apply`` runs the backward program on the saved residuals, so the ordinary
engine (``loss.backward()``) fills the leaves' ``.grad`` as eagerly. The
backward program runs once per backward pass with every output's cotangent
(zeros for outputs no gradient reached): a single differentiable output has the
node as its grad_fn; with several, each gets a hidden selector that deposits its
gradient in the node's slot, exactly as for a multi-output custom
``autograd.Function`` (see gradgen/autograd/function.py). With
``create_graph=True`` the backward instead evaluates the joint gradient program
on tensors (eager primitives, recorded on the tape), so second derivatives are
those of eager mode.

A *loss* (one output, one element, floating point) is the usual case and is
compiled differently: the forward program computes the loss alone (no
residuals) and the backward program is the joint gradient program, inputs and
cotangent to loss and gradients. Once a call's loss has been differentiated,
the next call is *fused*: it runs the joint program with the cotangent held at
one, so the loss and all gradients come out of one pass over the inputs (as
``compile(value_and_grad)`` does), and its node hands those gradients out for a
cotangent of one, scales them by any other finite cotangent, and runs the joint
program on an inf or NaN one. A call whose loss is dropped without being
differentiated turns fusing off until a backward runs again, so a loop that only
evaluates pays for its loss alone after a call or two, while several calls
summed into one loss before the backward all stay fused (up to FUSED_PENDING
awaiting their backward at once: each holds its gradients). A loss's first call is fused too,
and with the C backend the loss-only forward is compiled only when a call first needs it (a
loss dropped undifferentiated): a first compile builds one program, as
``compile(value_and_grad)`` does, not two.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..autograd.function_outputs import _OutputSelector
from ..ir.core import Literal, Program, Var
from ..ir.interpreter import run
from ..ir.tree import unflatten
from ..tensor import Tensor
from .compiled_backward import CompiledFunctionBackward
from .loss import LazyForward, is_scalar_loss, read_by_gradients
from .partition import partition
from .reverse import active_outputs, vjp
from .views import replay, view_chain

Optimizer = Callable[[Program], Program]
Runner = Callable[..., list]
# ``lower(programs)`` -> an object whose ``executables`` run each program on numpy arrays.
Lower = Callable[[list], Any]
# ``lower_forward(program)`` -> the same for one more program of the trace (a loss's forward
# alone), kept apart: built when a call first needs it.
LowerForward = Callable[[Program], Any]
# Fused calls whose gradients may await their backward at once (see _plan_fused).
FUSED_PENDING = 8
# How a call makes output k a tensor: wrap the fresh array, return input i, repeat output i,
# copy the array, or check it first (it may be shared with an input or another output).
_WRAP, _INPUT, _REPEAT, _COPY, _CHECK, _VIEW, _OUT_VIEW = range(7)


def _interpreter(program: Program) -> Runner:
    return lambda *arrays: run(program, *arrays)


class CompiledEntry:
    """The programs of one signature and what is needed to call them.

    ``CompiledEntry(program, ...)`` differentiates, optimizes and partitions ``program`` (a
    loss is not partitioned: its backward is the joint gradient program), then lowers the
    programs; :meth:`restore` rebuilds an entry from the results of that work kept by
    an earlier process (:meth:`ad_state` and a loaded native build), without redoing it.
    """

    # What differentiation and partitioning decide (see ad_state).
    AD_FIELDS = ("wrt", "seeds", "forward", "backward", "saved_inputs", "zero_grads", "fused")
    # compile(fullgraph=True): a loss-only forward that fails to build raises (see LazyForward).
    strict = False

    def __init__(self, program: Program, requires_grad: Sequence[bool], optimize: Optimizer,
                 lower: Lower | None = None, lower_forward: LowerForward | None = None) -> None:
        self._start(program, optimize, lower_forward)
        self.wrt = tuple(i for i, r in enumerate(requires_grad) if r)
        act = active_outputs(program, self.wrt) if self.wrt else ()
        self.seeds = tuple(k for k, a in enumerate(act) if a)
        self.backward: Program | None = None
        self.fused = is_scalar_loss(program, self.seeds)
        if self.fused:
            # A loss: one gradient program (inputs and cotangent -> loss and gradients) is the
            # backward of a plain call and, its cotangent held at one, the fused call.
            self.forward = optimize(program)
            self.backward = self.joint
            self.saved_inputs = read_by_gradients(self.backward)
            self.zero_grads = tuple(self.backward.meta["zero_grads"])
        elif self.seeds:
            joint = optimize(vjp(program, self.wrt, self.seeds))
            part = partition(joint)
            self.forward = optimize(part.forward)
            self.backward = optimize(part.backward)
            self.saved_inputs = part.saved_inputs
            self.zero_grads = part.zero_grads
        else:
            self.forward = optimize(program)
            self.saved_inputs = ()
            self.zero_grads = ()
        programs = [self.forward] + ([self.backward] if self.backward is not None else [])
        if self.fused and lower_forward is not None:
            programs = [self.backward]  # the joint program alone: see LazyForward
        self._finish(lower(programs) if lower is not None else None)

    @classmethod
    def restore(cls, program: Program, optimize: Optimizer, state: dict, native: Any,
                lower_forward: LowerForward | None = None) -> "CompiledEntry":
        """The entry of ``program`` from an earlier :meth:`ad_state` and the native build of
        its programs (their executables; a loss's joint program alone when its forward is
        built lazily, by ``lower_forward``)."""
        self = cls.__new__(cls)
        self._start(program, optimize, lower_forward)
        for name in cls.AD_FIELDS:
            setattr(self, name, state[name])
        self._finish(native)
        return self

    def ad_state(self) -> dict:
        """What differentiation and partitioning decided, for :meth:`restore`."""
        return {name: getattr(self, name) for name in self.AD_FIELDS}

    def _start(self, program: Program, optimize: Optimizer,
               lower_forward: LowerForward | None) -> None:
        self.program = program
        self._optimize = optimize
        self._lower_forward = lower_forward
        self.forward_native: Any = None  # a lazily built forward's native build
        self._joint: Program | None = None
        self._partial_joints: dict[tuple[int, ...], tuple[Program, tuple[bool, ...]]] = {}

    def _finish(self, native: Any) -> None:
        """Plan the calls and bind the runners (the executables of ``native``, else the
        interpreter)."""
        self.n_outputs = len(self.program.outputs)
        if self.fused:
            self._joint = self.backward
        self._plan_outputs()
        programs = [self.forward] + ([self.backward] if self.backward is not None else [])
        self.native = native
        runners = [ex.callable() for ex in native.executables] if native is not None else \
            [_interpreter(p) for p in programs]
        if self.fused and len(runners) == 1:  # the joint program alone: forward built lazily
            runners.insert(0, LazyForward(self))
        self.run_forward: Runner = runners[0]
        self.run_backward: Runner | None = runners[1] if len(runners) > 1 else None
        # Gradients the C executor makes for one backward call alone: a leaf may keep them.
        self.grads_owned = getattr(self.run_backward, "owned", None)
        if self.fused and self.grads_owned is not None:  # (the loss comes first)
            self.grads_owned = self.grads_owned[self.n_outputs:]
        self._plan_call()
        # Cotangents of the seeds a backward call does not get: zeros of these (shape, dtype).
        self._zero_cts = [(self.program.outputs[k].aval.shape,
                           self.program.outputs[k].aval.dtype.np) for k in self.seeds]

    def _plan_outputs(self) -> None:
        """Decide, per output, whether it is an input returned as is, a repeat, or needs a copy."""
        pos = {v: i for i, v in enumerate(self.program.inputs)}
        self.identity: list[int | None] = []   # output is (traced as) input i itself
        self.repeat: list[int | None] = []     # output is the same value as an earlier output
        first: dict[int, int] = {}
        for k, a in enumerate(self.program.outputs):
            self.identity.append(pos.get(a) if type(a) is Var else None)
            j = first.setdefault(id(a), k) if type(a) is Var else k
            self.repeat.append(j if j != k else None)
        outs = {}
        for k, a in enumerate(self.program.outputs):
            if type(a) is Var:
                outs.setdefault(a, k)
        self.view_of = [view_chain(self.program, a, pos, outs) for a in self.program.outputs]
        self._view_names = self.program.meta.get("out_nodes") or [None] * len(self.view_of)
        self._view_multi = self.program.meta.get("out_multi") or [None] * len(self.view_of)
        fwd_in = set(self.forward.inputs)
        seen: set = set()
        self.copy: list[bool] = []  # literal, input or shared (after the passes): copy it out
        for a in self.forward.outputs[:self.n_outputs]:
            self.copy.append(type(a) is Literal or a in fwd_in or id(a) in seen)
            seen.add(id(a))

    @property
    def joint(self) -> Program:
        """The unsplit gradient program (used when the backward itself must be differentiable)."""
        if self._joint is None:
            self._joint = self._optimize(vjp(self.program, self.wrt, self.seeds))
        return self._joint

    def partial_joint(self, seeds: tuple[int, ...]) -> tuple[Program, tuple[bool, ...]]:
        """The gradient program of outputs ``seeds`` only, and which gradients are structurally
        zero in it: for a backward that reached some differentiable outputs of a call but not
        all (cached per set of outputs)."""
        got = self._partial_joints.get(seeds)
        if got is None:
            raw = vjp(self.program, self.wrt, seeds)
            got = self._partial_joints[seeds] = (self._optimize(raw), raw.meta["zero_grads"])
        return got

    def _plan_call(self) -> None:
        """Per output, how a call turns the forward's array into a tensor; decided once."""
        owned = getattr(self.run_forward, "owned", None)  # the C executor's fresh outputs
        self._out_plan: list[tuple[int, int | None]] = []
        for k in range(self.n_outputs):
            if self.identity[k] is not None:
                self._out_plan.append((_INPUT, self.identity[k]))
            elif self.repeat[k] is not None:
                self._out_plan.append((_REPEAT, self.repeat[k]))
            elif self.view_of[k] is not None:  # a view of an input or output: made again
                self._out_plan.append((_OUT_VIEW if self.view_of[k][2] else _VIEW, k))
            elif owned is not None and owned[k]:  # made by this call, returned once: no check
                self._out_plan.append((_COPY if self.copy[k] else _WRAP, None))
            else:
                self._out_plan.append((_CHECK, None))
        # Views of other outputs, made once those (and their grad_fn) are: bases first.
        self._out_views: list[int] = []
        for k in range(self.n_outputs):
            self._order_out_view(k)
        # Residuals the executor made fresh cannot share memory with any tensor of the call.
        self.fresh_residuals = owned is not None and all(owned[self.n_outputs:])
        self._nodes = [(pos, k) for pos, k in enumerate(self.seeds)
                       if self.identity[k] is None and self.repeat[k] is None
                       and self.view_of[k] is None]
        # One differentiable output: the node is its grad_fn, no selector (the fast path).
        self._only = self._nodes[0][0] if len(self._nodes) == 1 else None
        self._plan_fused()
        tree = self.program.meta["out_tree"]
        self._single = tree[1] if tree[0] == "leaf" else None
        # run_args(args): the call on all-tensor positional arguments (the fast-key path).
        self.run_args: Callable[[tuple], Any] = self._direct()

    def _order_out_view(self, k: int) -> None:
        view = self.view_of[k]
        if view is not None and view[2] and k not in self._out_views:
            self._order_out_view(view[0])
            self._out_views.append(k)

    def _plan_fused(self) -> None:
        """For a loss: the fused call's runner (the gradient program with its cotangent held at
        one: loss and gradients in one run) and which of its outputs need a copy to be kept."""
        self.run_fused: Runner | None = None
        # Fuse the next call: once a call's node has run its backward, until one is dropped
        # without (see CompiledFunctionBackward.__del__), and while fewer than FUSED_PENDING
        # fused calls await their backward (each holds its gradients; losses kept in a list
        # and never differentiated must not pile them up).
        self.speculate = False
        self._differentiated = False
        self._pending = 0
        if not self.fused or self._only is None:
            return
        # A loss is differentiated as a rule: its first call is fused too.
        self.speculate = self._differentiated = True
        ct = self.program.outputs[0].aval
        ones = np.ones(ct.shape, ct.dtype.np)
        if self.native is not None:
            runner = self.native.executables[-1].bind({len(self.backward.inputs) - 1: ones})
            runner = runner.callable()
        else:
            backward = self.backward
            runner = lambda *arrays: run(backward, *arrays, ones)  # noqa: E731
        owned = getattr(runner, "owned", None) or (False,) * len(self.backward.outputs)
        self._fused_copy = None if all(owned) else [not o for o in owned]
        self.run_fused = runner

    def fused_node(self, differentiated: bool | None = None, pending: int = 0) -> None:
        """A node's news (see CompiledFunctionBackward): whether a loss was differentiated or
        dropped without, and fused calls made (+1) or settled (-1); decides the next call."""
        if differentiated is not None:
            self._differentiated = differentiated
        left = self._pending + pending
        self._pending = left if left > 0 else 0
        self.speculate = self._differentiated and left < FUSED_PENDING

    def _call_fused(self, inputs: Sequence[Tensor]) -> Tensor:
        """The call when the previous call's output was differentiated: the fused program gives
        the loss and the gradients at once, which the node keeps and scales by the cotangent
        its backward receives (no forward residuals, no second pass over the inputs)."""
        results = self.run_fused(*[t._data for t in inputs])
        if self._fused_copy is not None:  # an output the executable may hand out again
            results = [np.array(a) if c else a for a, c in zip(results, self._fused_copy)]
        out = Tensor._make(results[0])
        self._attach(inputs, [out], (), results[1:])
        return out

    def _run_args(self, args: tuple) -> Any:
        """Run on all-tensor positional ``args`` (plus the captured tensors); see :meth:`call`."""
        captured = self.program.meta["captured"]
        return self.call(list(args) + captured if captured else list(args))

    def _direct(self) -> Callable[[tuple], Any]:
        """``run_args`` as one closure in the usual case -- no captured tensor, one output made
        fresh by the executable (or by a loss's fused call), at most one backward node,
        residuals the executable made for this call alone -- doing exactly what
        :meth:`__call__` and :meth:`_attach` would; otherwise the general :meth:`_run_args`."""
        if self.program.meta["captured"] or self.n_outputs != 1 or self._single != 0:
            return self._run_args
        run, make = self.run_forward, Tensor._make
        wrap = self._out_plan[0][0] == _WRAP
        if self.backward is None or not self._nodes:
            return (lambda args: make(run(*[t._data for t in args])[0])) if wrap \
                else self._run_args
        fused = self.run_fused is not None
        if self._only is None or not self.fresh_residuals or not (wrap or fused):
            return self._run_args
        wrt, entry, node_of, general = self.wrt, self, CompiledFunctionBackward, self._run_args

        def call(args: tuple) -> Tensor:
            if fused and entry.speculate:
                return entry._call_fused(args)
            if not wrap:  # (a forward built lazily: its output is checked)
                return general(args)
            results = run(*[t._data for t in args])
            out = make(results[0])
            node = node_of(tuple([args[i]._grad_fn if args[i]._grad_fn is not None
                                  else args[i]._get_accumulator() for i in wrt]))
            node._init(entry, args, (out,), results[1:])
            out._grad_fn = node
            out._requires_grad = True
            return out
        return call

    def call(self, inputs: list[Tensor]) -> Any:
        """Run on ``inputs`` and return the outputs in the structure ``fn`` returned them."""
        outs = self(inputs)
        if self._single is not None:
            return outs[self._single]
        return unflatten(self.program.meta["out_tree"], outs)

    def __call__(self, inputs: list[Tensor]) -> list[Tensor]:
        if self.run_fused is not None and self.speculate:
            return [self._call_fused(inputs)]
        arrays = [t._data for t in inputs]
        results = self.run_forward(*arrays)
        outs: list[Tensor] = []
        make = Tensor._make
        for (how, i), arr in zip(self._out_plan, results):
            if how == _WRAP:
                outs.append(make(arr))
            elif how == _INPUT:
                outs.append(inputs[i])
            elif how == _REPEAT:
                outs.append(outs[i])
            elif how == _COPY:
                outs.append(make(np.array(arr)))
            elif how == _VIEW:  # the view primitives again, on the input: eager's view and node
                outs.append(replay(inputs, self.view_of[i], self._view_names[i],
                                   self._view_multi[i]))
            elif how == _OUT_VIEW:  # made below, from an output
                outs.append(None)
            else:  # (the interpreter's results may be views of inputs or of each other)
                k = len(outs)
                if self.copy[k] or not arr.flags.writeable or _aliases(arr, arrays) or \
                        any(t is not None and np.may_share_memory(arr, t._data) for t in outs):
                    arr = np.array(arr)
                outs.append(make(arr))
        if self.backward is not None:
            self._attach(inputs, outs, results[self.n_outputs:])
        for k in self._out_views:  # on the outputs (with their grad_fn): eager's views and nodes
            outs[k] = replay(outs, self.view_of[k], self._view_names[k], self._view_multi[k])
        return outs

    def _attach(self, inputs: Sequence[Tensor], outs: list[Tensor], residuals: Sequence,
                unit: list | None = None) -> None:
        """Give the call's outputs their grad_fn (``unit``: a fused call's gradients)."""
        if not self._nodes:
            return
        nexts = tuple([inputs[i]._grad_fn if inputs[i]._grad_fn is not None
                       else inputs[i]._get_accumulator() for i in self.wrt])
        node = CompiledFunctionBackward(nexts)
        node._init(self, inputs, outs, residuals, unit)
        if self._only is not None:
            out = outs[self._nodes[0][1]]
            out._grad_fn = node
            out._requires_grad = True
            return
        for pos, k in self._nodes:
            outs[k]._grad_fn = _OutputSelector(node, pos)
            outs[k]._requires_grad = True


def _aliases(arr: np.ndarray, arrays: list) -> bool:
    """Whether ``arr`` is or views an input's array (a kernel's identity, e.g. ``stop_gradient``
    of an input after the simplifier dropped the copy ``clone()`` made: ``x.clone().detach()``)."""
    return any(arr is a or (arr.base is not None and np.may_share_memory(arr, a))
               for a in arrays)


__all__ = ["CompiledEntry", "CompiledFunctionBackward"]
