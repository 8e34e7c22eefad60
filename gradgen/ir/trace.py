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
- Grad mode: tracing always runs with grad mode on and records every primitive
  whatever requires grad; work done under ``no_grad`` inside ``fn`` is cut from
  differentiation by a ``stop_gradient`` equation, as eager autograd would cut it.
- Stops: anything the IR cannot hold raises :class:`TraceError` with the reason
  and the user's ``file:line`` (a value flowing into Python, random numbers,
  a custom autograd.Function, ...) — see ``record.untraceable``.

``program.meta`` keys: ``argnums`` (positional argument of each explicit input),
``in_tree`` (structure of the arguments), ``n_explicit``, ``captured``,
``requires_grad`` (one bool per input, at trace time), ``out_tree`` (structure of
the result; ``tree.unflatten(meta["out_tree"], outputs)`` rebuilds it).
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ..autograd import record
from ..autograd.grad_mode import _state
from ..autograd.record import TraceError
from ..ops.elementwise import stop_gradient
from ..ops.registry import PRIMITIVES, Aval, Primitive
from ..tensor import Tensor
from .builder import Builder
from .core import Atom, Eqn, Literal, Program, Var
from .location import user_location
from .tree import flatten, same_tree

_active: list["_Tracer"] = []


class _Tracer:
    """The state of one trace: tensor -> atom map, the builder, what is captured."""

    def __init__(self) -> None:
        self.b = Builder()
        # id(tensor) -> (tensor, atom, version when bound); holding the tensor keeps ids unique.
        self.known: dict[int, tuple[Tensor, Atom, int]] = {}
        self.created: set[int] = set()      # ids of tensors created during the trace
        self.input_tensors: list[Tensor] = []
        self.input_versions: list[int] = []
        self.input_requires_grad: list[bool] = []
        self.captured: list[Tensor] = []
        self.nondiff: set[Var] = set()      # values no gradient flows through
        self.error: TraceError | None = None

    # ------------------------------------------------------------ stopping
    def stop(self, reason: str, where: str | None = None) -> None:
        err = TraceError(reason, where if where is not None else user_location())
        if self.error is None:
            self.error = err
        raise err

    # ------------------------------------------------------------ tensors <-> atoms
    def bind(self, t: Tensor, atom: Atom) -> None:
        self.known[id(t)] = (t, atom, t._version.value)

    def add_input(self, t: Tensor, name: str | None) -> Var:
        v = self.b.input(t._data.shape, t.dtype, name)
        self.input_tensors.append(t)
        self.input_versions.append(t._version.value)
        self.input_requires_grad.append(bool(t._requires_grad))
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
            return Literal(a.copy())
        return Literal(np.asarray(a))

    def unknown(self, t: Tensor) -> Atom:
        """A tensor first met as an operand or output: alias, constant or captured input."""
        if id(t) not in self.created:
            v = self.add_input(t, f"c{len(self.captured)}")
            self.captured.append(t)
            return v
        alias = self.alias_of(t)
        if alias is not None:  # `x.data` made inside fn: the same value, detached
            atom: Atom = self.emit(stop_gradient, (alias,), {}, user_location()) \
                if isinstance(alias, Var) else alias
        else:
            atom = Literal(t._data.copy())
        self.bind(t, atom)
        return atom

    def alias_of(self, t: Tensor) -> Atom | None:
        """The atom of a traced tensor holding the very same array as ``t`` (``x.data``)."""
        data = t._data
        for other, atom, _ in self.known.values():
            if other._data is data:
                return atom
        return None

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
        if prim.vjp is None or not aval.dtype.is_floating_point or \
                all(isinstance(a, Literal) or a in self.nondiff for a in ins):
            self.nondiff.add(out)
        return out

    def on_prim(self, prim: Primitive, args: tuple, params: dict, out: Tensor) -> None:
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

    def on_inplace(self, target: Tensor, result: Tensor) -> None:
        if self.is_input(target):
            self.stop_input_mutation(target)
        self.bind(target, self.atom(result))


def before_inplace(target: Tensor, supported: bool = False) -> None:
    """Stop the active trace before an in-place write into ``target`` it cannot follow.

    In-place front-end functions call this when ``record.tracer[0]`` is set. A
    write into a program input always stops ("in-place mutation of an input that
    requires grad", or of any other input); other writes stop too unless the
    caller reports them afterwards with :func:`traced_inplace` (``supported=True``).
    """
    if not _active:
        return
    tr = _active[-1]
    if tr.is_input(target):
        tr.stop_input_mutation(target)
    if not supported:
        tr.stop("an in-place operation (the traced program would not see the write)")


def traced_inplace(target: Tensor, result: Tensor) -> None:
    """Tell the active trace that ``target`` now holds ``result``'s value (after an in-place write).

    In-place front-end functions call this (when ``record.tracer[0]`` is set)
    after writing and bumping the version counter; the IR then continues with
    ``result``'s variable. Writes into an input stop the trace.
    """
    if _active:
        _active[-1].on_inplace(target, result)


def input_values(program: Program, *args: Any) -> list[np.ndarray]:
    """The arrays to run a traced ``program`` on for arguments ``args`` (same structure as traced).

    Explicit inputs come from ``args``; captured inputs are read from their
    tensors now (by reference), so in-place updates since the trace are seen.
    """
    leaves, tree = flatten(args)
    if not same_tree(tree, program.meta["in_tree"]):
        raise TypeError("arguments do not have the structure the program was traced with")
    return [t._data for t in leaves] + [t._data for t in program.meta["captured"]]


def _arg_names(fn: Callable, n: int) -> list[str | None]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [None] * n
    names: list[str | None] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            names.extend(f"{p.name}{i}" for i in range(n - len(names)))
    return (names + [None] * n)[:n]


def _declare_inputs(tr: _Tracer, fn: Callable, args: tuple) -> tuple[tuple[int, ...], Any]:
    names = _arg_names(fn, len(args))
    argnums: list[int] = []
    for i, arg in enumerate(args):
        arg_leaves, _ = flatten(arg)
        for j, t in enumerate(arg_leaves):
            name = names[i] if type(arg) is Tensor else (f"{names[i]}_{j}" if names[i] else None)
            if id(t) in tr.known:
                tr.stop(f"the same tensor is passed as two arguments (argument {i})")
            tr.add_input(t, name)
            argnums.append(i)
    return tuple(argnums), flatten(args)[1]


@contextmanager
def _hooks(tr: _Tracer) -> Iterator[None]:
    """Install the tracer's callbacks (restored on any exit) and turn grad mode on."""
    orig_init = Tensor.__dict__["_init"]
    init = orig_init.__func__
    created = tr.created

    # Every tensor is initialised through Tensor._init; noting the ones made during
    # the trace tells a constant made inside fn (a Literal) from a tensor that
    # existed before (a captured input, read by reference). Process-wide while it
    # lasts: a tensor another thread makes meanwhile would count as made inside.
    def _init(t: Tensor, data: np.ndarray, grad_fn: Any, counter: Any) -> None:
        init(t, data, grad_fn, counter)
        created.add(id(t))

    prev_grad = _state.enabled
    _active.append(tr)
    record.tracer[0] = tr.on_prim
    record.stop_tracing[0] = tr.stop
    Tensor._init = staticmethod(_init)
    _state.enabled = True
    try:
        yield
    finally:
        _state.enabled = prev_grad
        Tensor._init = orig_init
        record.stop_tracing[0] = None
        record.tracer[0] = None
        _active.pop()


def trace(fn: Callable[..., Any], *example_args: Any) -> Program:
    """Run ``fn(*example_args)`` once and return its IR program.

    >>> import gradgen as gg
    >>> x = gg.ones(2, 3)
    >>> print(trace(lambda x: (x * 2).sum(), x))  # doctest: +ELLIPSIS
    def (%x:f32[2,3]):
      %0:f32[2,3] = mul %x, 2.0:f32  # <doctest ...>:1
      %1:f32[] = reduce_sum[axes=(0, 1)] %0  # <doctest ...>:1
      return %1
    """
    if record.tracer[0] is not None or record.stop_tracing[0] is not None:
        raise TraceError("trace: another trace is already active (nested tracing is not supported)",
                         user_location())
    tr = _Tracer()
    argnums, in_tree = _declare_inputs(tr, fn, example_args)
    try:
        with _hooks(tr):
            result = fn(*example_args)
            leaves, out_tree = flatten(result)
            outputs = [tr.atom(t) for t in leaves]
    except Exception as err:
        if tr.error is not None:  # report the stop, even if fn caught it and failed differently
            raise tr.error from None
        raise err
    if tr.error is not None:  # fn caught the TraceError and carried on: the trace is still invalid
        raise tr.error
    for t, ver in zip(tr.input_tensors, tr.input_versions):
        if t._version.value != ver:
            tr.stop_input_mutation(t, where=None)
    meta = {"argnums": argnums, "in_tree": in_tree, "n_explicit": len(argnums),
            "captured": list(tr.captured), "requires_grad": tuple(tr.input_requires_grad),
            "out_tree": out_tree}
    return tr.b.build(outputs, meta)
