"""``trace(fn, *example_args)``: run ``fn`` once and turn the recorded primitives into a Program.

Every primitive application reaches ``record.bind``, which reports it to the
active tracer as ``(prim, args, params, out)`` — the same record the tape keeps —
so tracing is a walk: each report becomes one equation, tensors map to variables.

- Inputs: tensors among the positional arguments (also inside tuples, lists and
  dicts) are the explicit inputs, in order. Tensors that existed before the
  trace and are neither (closures, globals, module weights) become *captured*
  inputs after them; ``program.meta["captured"]`` holds the tensor objects
  themselves so later calls read their current values by reference.
- Constants: numpy arrays, Python numbers and tensors created inside ``fn``
  without a primitive (factories such as ``zeros``) become Literals.
- Grad mode: ``fn`` runs in the caller's grad mode and every primitive is recorded
  whatever requires grad; work done under ``no_grad`` is cut from differentiation by a
  ``stop_gradient`` equation, as eager autograd would cut it.
- Writes: in-place writes into tensors made inside ``fn`` are followed; a write into an
  input's memory (or through ``.data``) stops the trace before it happens
  (:mod:`gradgen.ir.trace_writes`).
- Stops: anything the IR cannot hold raises :class:`TraceError` with the reason
  and the user's ``file:line`` (a value flowing into Python, random numbers,
  a custom autograd.Function, ...) — see ``record.untraceable``.
- ``abstract=True`` first tries an abstract trace, which computes no values (see
  :mod:`gradgen.ir.abstract`); when it stops, ``fn`` is traced again on the real data,
  so the result, or the stop and its reason, are those of a real trace. Side effects of
  ``fn`` (a print) then happen twice.

``program.meta`` keys: ``argnums`` (positional argument of each explicit input),
``in_tree`` (structure of the arguments), ``n_explicit``, ``captured``,
``requires_grad`` (one bool per input, at trace time), ``out_tree`` (structure of
the result; ``tree.unflatten(meta["out_tree"], outputs)`` rebuilds it), ``trace``
("abstract", or "real" with ``abstract_stop``: why the abstract trace did not do).
"""
from __future__ import annotations

import gc
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ..autograd import record
from ..autograd.engine import any_stale
from ..autograd.node import saved_output
from ..autograd.grad_mode import _state
from ..autograd.record import NoValues, TraceBusy, TraceError
from ..ops.elementwise import stop_gradient
from ..ops.registry import PRIMITIVES, Aval, Primitive
from ..tensor import Tensor
from .abstract import AbstractOutputs, Escapes
from .builder import Builder
from .core import Atom, Eqn, Literal, Program, Var
from .location import user_location
from .reads import closure_cells, functions, global_source, read_values, rebound, snapshot
from .trace_inputs import declare_inputs
from .trace_writes import _active, on_data
from .tree import flatten

# One trace at a time in the process: the hooks below (Tensor._init, record's slots) are
# process-wide; each records only the tracing thread's operations (record.trace_owner).
_one_trace = threading.Lock()


class AbstractStop(TraceError):
    """An abstract trace stopped for want of values; a real trace decides."""


class _Tracer:
    """The state of one trace: tensor -> atom map, the builder, what is captured."""

    def __init__(self, abstract: bool = False, escapes: Escapes | None = None) -> None:
        self.b = Builder()
        # id(tensor) -> (tensor, atom, version when bound); holding the tensor keeps ids unique.
        self.known: dict[int, tuple[Tensor, Atom, int]] = {}
        self.created: set[int] = set()      # ids of tensors created during the trace
        self.foreign: set[int] = set()      # ids of tensors other threads created meanwhile
        self.input_tensors: list[Tensor] = []
        self.input_versions: list[int] = []
        self.input_requires_grad: list[bool] = []
        self.captured: list[Tensor] = []
        # Where each captured tensor was read from (a global or a closure cell of fn), or None:
        # rebinding that variable fails the compiled program's guard (see ad.cache.make_guard).
        self.sources: list[tuple | None] = []
        self.cells: dict[int, Any] = {}     # id(contents) -> closure cell of the traced fn
        self.nondiff: set[Var] = set()      # values no gradient flows through
        self.data_made: set[int] = set()    # ids of tensors made by ``.data`` during the trace
        # A view primitive's output -> the variable whose memory it views (through any chain of
        # views), and the input variables: which writes reach an input (trace_writes).
        self.view_root: dict[Var, Var] = {}
        self.input_vars: set[Var] = set()
        self.error: TraceError | None = None
        self.abstract = AbstractOutputs(self.stop_abstract) if abstract else None
        # Tensors made during the trace, numbered: weakly kept by an abstract trace (to find
        # escapes), looked for by the real trace filling them (see abstract.Escapes).
        self.n_made = 0
        self.made: list[tuple[int, weakref.ref]] | None = [] if abstract else None
        self.escapes = escapes

    # ------------------------------------------------------------ stopping
    def stop(self, reason: str, where: str | None = None, cls: type = TraceError) -> None:
        err = cls(reason, where if where is not None else user_location())
        if self.error is None:
            self.error = err
        try:
            raise err
        finally:  # no frame -> error -> traceback -> frame cycle keeping the trace's tensors
            del err

    def stop_abstract(self, reason: str) -> None:
        """Stop an abstract trace for want of values: a real trace may well go through."""
        self.stop(reason, cls=AbstractStop)

    # ------------------------------------------------------------ tensors <-> atoms
    def bind(self, t: Tensor, atom: Atom) -> None:
        self.known[id(t)] = (t, atom, t._version.value)

    def add_input(self, t: Tensor, name: str | None) -> Var:
        v = self.b.input(t._data.shape, t.dtype, name)
        self.input_tensors.append(t)
        self.input_versions.append(t._version.value)
        self.input_requires_grad.append(bool(t._requires_grad))
        self.input_vars.add(v)
        self.bind(t, v)
        return v

    def atom(self, a: Any) -> Atom:
        if type(a) is Tensor:
            entry = self.known.get(id(a))
            if entry is not None:
                # Only a version bump means a write: the front end may swap in an equal
                # copy of the data (flip makes its result own its memory).
                if a._version.value != entry[2]:
                    self.stale(a)
                return entry[1]
            return self.unknown(a)
        if isinstance(a, np.ndarray):
            return Literal(self.constant(a))
        return Literal(np.asarray(a))

    def constant(self, data: np.ndarray) -> np.ndarray:
        """A copy of ``data`` to keep as a Literal; an abstract trace has no values to keep."""
        if isinstance(data, NoValues):
            self.stop_abstract("a constant made from a tensor of the abstract trace")
        return data.copy()

    def unknown(self, t: Tensor) -> Atom:
        """A tensor first met as an operand or output: alias, constant or captured input."""
        if id(t) in self.foreign:  # e.g. computed from fn's inputs by a thread fn started
            self.stop("a tensor another thread made during the trace is used: its value may "
                      "depend on this call, which a compiled program would not recompute")
        if id(t) not in self.created:
            v = self.add_input(t, f"c{len(self.captured)}")
            self.captured.append(t)
            cell = self.cells.get(id(t))
            self.sources.append(("cell", cell, None) if cell is not None else global_source(t))
            return v
        # (a tensor made inside fn without a primitive: a factory's; `x.data` is bound when
        # made, see trace_writes.on_data)
        atom = Literal(self.constant(t._data))
        self.bind(t, atom)
        return atom

    def on_saved_output(self, t: Tensor, data: np.ndarray) -> None:
        """``t``: a backward inside fn rewrapped the output it saved (``data``, the array of a
        traced tensor): the same value (differentiable under ``create_graph=True``)."""
        if record.tracing():
            for other, atom, _ in self.known.values():
                if other._data is data:
                    self.bind(t, atom)
                    return

    def is_input(self, t: Tensor) -> bool:
        return any(x is t for x in self.input_tensors)

    def stale(self, t: Tensor) -> None:
        if self.is_input(t):
            self.stop_input_mutation(t)
        self.stop("in-place mutation of a traced tensor the tracer was not told about "
                  "(e.g. a write through a view)")

    def stop_input_mutation(self, t: Tensor, where: str | None = None) -> None:
        if t._requires_grad:
            self.stop("in-place mutation of an input that requires grad", where)
        self.stop("in-place mutation of a program input (the IR holds no mutation)", where)

    # ------------------------------------------------------------ equations
    def emit(self, prim: Primitive, ins: tuple[Atom, ...], params: dict, loc: str | None) -> Var:
        try:
            aval = prim.abstract_eval(*(a.aval for a in ins), **params)
        except (TypeError, ValueError) as err:
            self.stop(f"ill-typed application of {prim.name} (a front-end bug): {err}", loc)
        out = self.b.new_var(aval)
        self.b.eqns.append(Eqn(prim, ins, out, params, loc))
        if prim.is_view and len(ins) == 1 and type(ins[0]) is Var:
            self.view_root[out] = self.view_root.get(ins[0], ins[0])
        if prim.vjp is None or not aval.dtype.is_floating_point or \
                all(isinstance(a, Literal) or a in self.nondiff for a in ins):
            self.nondiff.add(out)
        return out

    def made_tensor(self, t: Tensor) -> None:
        k = self.n_made
        self.n_made = k + 1
        if self.made is not None:
            self.made.append((k, weakref.ref(t)))
        elif self.escapes is not None:
            self.escapes.seen(k, t)

    def on_prim(self, prim: Primitive, args: tuple, params: dict, out: Tensor) -> None:
        self.made_tensor(out)
        if PRIMITIVES.get(prim.name) is not prim:
            self.stop(f"an operation outside the registry: {prim.name}")
        loc = user_location()
        ins = tuple(self.atom(a) for a in args)
        v = self.emit(prim, ins, dict(params), loc)
        if v.aval != Aval(out._data.shape, out.dtype):
            self.stop(f"{prim.name}: its shape rule gives {v.aval} but its implementation "
                      f"produced {out.dtype.short}{list(out._data.shape)}", loc)
        if not _state.enabled and v not in self.nondiff:
            v = self.emit(stop_gradient, (v,), {}, loc)  # no_grad inside fn: cut the gradient
        self.bind(out, v)


@contextmanager
def _hooks(tr: _Tracer) -> Iterator[None]:
    """Install the tracer's callbacks (restored on any exit). ``fn`` runs in the caller's grad
    mode, as eager would run it: what it computes under no_grad is cut from the gradient."""
    orig_init = Tensor.__dict__["_init"]
    init = orig_init.__func__
    created, made, foreign_ids = tr.created, tr.made_tensor, tr.foreign

    # Every tensor is initialised through Tensor._init; noting the ones made during
    # the trace tells a constant made inside fn (a Literal) from a tensor that
    # existed before (a captured input, read by reference). Process-wide while it
    # lasts: tensors other threads make meanwhile are noted apart (using one stops the trace).
    owner = threading.get_ident()

    def _init(t: Tensor, data: np.ndarray, grad_fn: Any, counter: Any) -> None:
        init(t, data, grad_fn, counter)
        if threading.get_ident() == owner:
            created.add(id(t))
            made(t)
        else:
            foreign_ids.add(id(t))

    prev_grad = _state.enabled
    _active.append(tr)
    record.trace_owner[0] = owner
    record.foreign[0] = lambda prim, args, params, out: foreign_ids.add(id(out))
    record.tracer[0] = tr.on_prim
    record.stop_tracing[0] = tr.stop
    record.abstract[0] = tr.abstract
    record.data_made[0] = lambda src, out: on_data(tr, src, out)
    saved_output[0] = tr.on_saved_output
    Tensor._init = staticmethod(_init)
    try:
        yield
    finally:
        _state.enabled = prev_grad
        Tensor._init = orig_init
        record.abstract[0] = None
        record.data_made[0] = None
        saved_output[0] = None
        record.stop_tracing[0] = None
        record.tracer[0] = None
        record.foreign[0] = None
        record.trace_owner[0] = None
        _active.pop()


def trace(fn: Callable[..., Any], *example_args: Any, abstract: bool = False) -> Program:
    """Run ``fn(*example_args)`` once and return its IR program.

    With ``abstract=True`` the first attempt computes no values (see
    :mod:`gradgen.ir.abstract`); if it stops, ``fn`` runs again under a real trace, whose
    program (or stop) is returned.

    >>> import gradgen as gg
    >>> x = gg.ones(2, 3)
    >>> print(trace(lambda x: (x * 2).sum(), x))  # doctest: +ELLIPSIS
    def (%x:f32[2,3]):
      %0:f32[2,3] = mul %x, 2.0:f32  # <doctest ...>:1
      %1:f32[] = reduce_sum[axes=(0, 1)] %0  # <doctest ...>:1
      return %1
    """
    if not _one_trace.acquire(blocking=False):
        if record.trace_owner[0] == threading.get_ident():
            raise TraceError("trace: another trace is already active (nested tracing is not "
                             "supported)", user_location())
        raise TraceBusy("trace: another thread is tracing (gradgen traces one function at a time)")
    try:
        if not abstract:
            return _trace(_Tracer(), fn, example_args)
        return _abstract_then_real(fn, example_args)
    finally:
        _one_trace.release()


def _abstract_then_real(fn: Callable[..., Any], example_args: tuple) -> Program:
    """An abstract trace's program; a real trace's when it stops for want of values, when
    it fails any other way (the real trace raises eager's own error), or when tensors it
    made outlived it (they get the real trace's values). A stop a real trace would make
    the same way (``.item()``, random numbers, ...) is raised at once."""
    tr = _Tracer(abstract=True)
    made, program, stopped = tr.made, None, None
    try:
        program = _trace(tr, fn, example_args)
    except Exception as err:  # noqa: BLE001
        why = err.reason if isinstance(err, TraceError) else f"{type(err).__name__}: {err}"
        if type(err) is TraceError:  # it read no values: a real trace stops the same way
            stopped = TraceError(err.reason, err.where)  # (no traceback holding fn's frames)
    tr.known.clear()  # let go of the trace's tensors, then see which are still alive
    tr.error = tr.abstract = None
    del tr
    escapes = Escapes.of(made)
    if escapes is not None:  # or only held by reference cycles
        del escapes
        gc.collect()
        escapes = Escapes.of(made)
    if escapes is None:
        if stopped is not None:
            raise stopped
        if program is not None:
            program.meta["trace"] = "abstract"
            return program
    if program is not None:
        why = "tensors of the abstract trace outlived it (kept by the function)"
    try:
        program = _trace(_Tracer(escapes=escapes), fn, example_args)
    finally:
        if escapes is not None:
            escapes.fill()
    program.meta["trace"], program.meta["abstract_stop"] = "real", why
    return program


def _trace(tr: _Tracer, fn: Callable[..., Any], example_args: tuple) -> Program:
    fns = functions(fn)
    tr.cells = closure_cells(fns)
    argnums, in_tree = declare_inputs(tr, fn, example_args)
    before = snapshot(fns)
    try:
        with _hooks(tr):
            result = fn(*example_args)
            leaves, out_tree = flatten(result)
            outputs = [tr.atom(t) for t in leaves]
            name = rebound(before, fns)
            if name is not None:
                tr.stop(f"fn assigns to the variable {name!r} it reads (a compiled call would "
                        "not run the assignment)")
        if tr.error is not None:  # fn caught the TraceError and carried on: still invalid
            raise tr.error
        for t, ver in zip(tr.input_tensors, tr.input_versions):
            if t._version.value != ver:
                tr.stop_input_mutation(t, where=None)
        if any_stale([t._grad_fn for t in leaves if isinstance(t, Tensor)]):
            tr.stop("a tensor saved for the gradient was then written in place (eager's "
                    "backward raises on it; so does this function, run eagerly)")
    except Exception as err:
        # A stopped trace leaves the variables fn assigned as they were: the call runs fn
        # eagerly next, which assigns them once (a list fn appends to is not undone).
        rebound(before, fns)
        if tr.error is not None:  # report the stop, even if fn caught it and failed differently
            raise tr.error from None
        raise err
    meta = {"argnums": argnums, "in_tree": in_tree, "n_explicit": len(argnums),
            "captured": list(tr.captured), "captured_sources": list(tr.sources),
            "value_guards": read_values(fns),  # (fn assigned none of them: see rebound)
            "requires_grad": tuple(tr.input_requires_grad),
            "out_tree": out_tree, "trace": "real",
            "out_nodes": [type(t._grad_fn).__name__ if t._grad_fn is not None else None
                          for t in leaves],  # (a view output made again is named so)
            # (and is one of several views one call returned -- split's -- if so)
            "out_multi": [t._view_op[4] if getattr(t, "_view_op", None) else None
                          for t in leaves]}
    return tr.b.build(outputs, meta)
