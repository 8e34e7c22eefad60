"""Specializing a function per call signature: cache keys, the trace cache, fallback records.

A function is traced once per *signature* -- the structure of its arguments,
the values of its non-tensor arguments, each tensor's shape, dtype and
requires_grad flag, grad mode and the default dtype -- and the result is reused while the tensors
it captured (closures, module weights) keep their identity, shapes, dtypes and
requires_grad flags. A cache may hold at most ``limit`` signatures; a new one past
it raises :class:`SpecializationLimit`. When tracing or compiling fails,
:class:`Fallback` keeps the reason (per signature, too) and warns once per function.

Calls whose positional arguments are all tensors (the common case) also have a
*fast key*, :func:`fast_signature`: the same facts (each tensor's shape, dtype and
requires_grad flag, grad mode) computed in one pass without flattening. A
:class:`TraceCache` indexes its entries by fast key too, so such a call finds its
entry with one dictionary lookup.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from ..autograd.grad_mode import _state
from ..dtypes import _default
from ..ir.core import Program
from ..ir.trace import trace
from ..ir.tree import flatten
from ..tensor import Tensor


def _key_tree(tree: tuple) -> tuple:
    """A flatten tree made hashable and type-exact (``2`` and ``2.0`` trace differently)."""
    kind = tree[0]
    if kind == "leaf":
        return tree
    if kind == "const":
        v = tree[1]
        hash(v)  # unhashable constants cannot key a cache: TypeError, handled by the caller
        return ("const", type(v), v)
    return tree[:-1] + (tuple(_key_tree(t) for t in tree[-1]),)


def signature(args: tuple) -> tuple:
    """The cache key of a call: argument structure, constants, tensor types, grad mode and the
    default dtype (factories and Python floats inside fn take it: a trace bakes it in)."""
    return _signature(flatten(args))


def _signature(flat: tuple[list, tuple]) -> tuple:
    leaves, tree = flat
    return (_key_tree(tree),
            tuple([(t._data.shape, t._data.dtype, t._requires_grad) for t in leaves]),
            _state.enabled, _default.value)


def fast_signature(args: tuple) -> tuple | None:
    """The fast key of a call whose positional arguments are all tensors, else None.

    It holds what :func:`signature` holds for such a call -- the argument count (the
    structure), each tensor's shape, dtype and requires_grad flag, grad mode and the default
    dtype -- so two calls share a fast key exactly when they share a signature.
    """
    sig = []
    for a in args:
        if not isinstance(a, Tensor):
            return None
        d = a._data
        sig.append((d.shape, d.dtype, a._requires_grad))
    return (tuple(sig), _state.enabled, _default.value)


def captured_guard(program: Program) -> tuple:
    """Identity, shape, dtype and requires_grad of each captured tensor (its data by reference),
    and a mark when the program baked in Python scalars read from globals or closure cells (its
    guard is then never empty: :func:`guard_holds` compares them)."""
    guard = tuple((id(t), t._data.shape, t._data.dtype, t._requires_grad)
                  for t in program.meta["captured"])
    return guard + ("values",) if program.meta.get("value_guards") else guard


class SpecializationLimit(RuntimeError):
    """A function already has its maximum number of specializations."""


def inputs_of(program: Program, args: tuple, leaves: list | None = None) -> list[Tensor]:
    """The program's input tensors for a call: the arguments' tensors, then the captured ones."""
    captured = program.meta["captured"]
    leaves = flatten(args)[0] if leaves is None else leaves
    return leaves + captured if captured else leaves


def guard_holds(program: Program, guard: tuple) -> bool:
    """Whether the tensors ``program`` captured still match ``guard`` (:func:`captured_guard`)
    and are still what the globals or closure cells fn read them from hold, and the other
    values fn read from its globals or closure are unchanged (Python scalars by value, other
    objects by identity): rebinding such a variable makes the next call trace again, as fn
    would read the new value."""
    captured, values = program.meta["captured"], program.meta.get("value_guards")
    if not captured and not values:
        return True
    if captured_guard(program) != guard:
        return False
    for source, t in zip(program.meta.get("captured_sources") or (), captured):
        if source is not None and not _still_bound(source, t):
            return False
    for kind, where, name, v, by_identity in values or ():
        now = where.get(name, _MISSING) if kind == "global" else _cell_value(where)
        if now is v:
            continue
        if by_identity or type(now) is not type(v) or (now != v and not (now != now and v != v)):
            return False  # (a NaN equals a NaN here)
    return True


_MISSING = object()


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _MISSING


def _still_bound(source: tuple, t: Any) -> bool:
    kind, where, name = source
    if kind == "global":
        return where.get(name) is t
    try:
        return where.cell_contents is t
    except ValueError:  # the cell was emptied (del)
        return False


class TraceCache:
    """Per-signature entries of one function, retraced when a captured tensor changes type.

    ``fast`` maps a fast key (see :func:`fast_signature`) to ``(program, guard, runner)``:
    the entry of the signature it stands for, with a runner made from the entry's value
    once. A caller finding a fast hit must still check ``guard_holds(program, guard)``.
    ``abstract``: trace without computing values first (for callers that discard the
    values a trace computes, as ``gradgen.compile`` does; see ``trace``).
    """

    def __init__(self, build: Callable[[Program], Any], limit: int | None = None,
                 abstract: bool = False) -> None:
        self.entries: dict[tuple, tuple[Program, tuple, Any]] = {}
        self.fast: dict[tuple, tuple[Program, tuple, Any]] = {}
        self.build = build
        self.limit = limit
        self.abstract = abstract
        self.retraces = 0  # captured-tensor guard failures (entry rebuilt in place)

    def get(self, fn: Callable, args: tuple, key: tuple,
            build: Callable[[Program], Any] | None = None) -> tuple[Program, Any]:
        """The (program, built value) of ``key``; traces and builds on a miss.

        Raises:
            SpecializationLimit: ``key`` is new and ``limit`` signatures are already cached.
        """
        hit = self.entries.get(key)
        if hit is not None:
            program, guard, value = hit
            if guard_holds(program, guard):
                return program, value
            self.retraces += 1
            # The entry is rebuilt: fast keys standing for it are stale.
            self.fast = {k: v for k, v in self.fast.items() if v[0] is not program}
        elif self.limit is not None and len(self.entries) >= self.limit:
            raise SpecializationLimit(
                f"the specialization limit ({self.limit}) is reached: this call's signature "
                "(shapes, dtypes, requires_grad flags, grad mode, non-tensor arguments) is new; "
                "raise it with compile(fn, max_specializations=...)")
        program = trace(fn, *args, abstract=self.abstract)
        value = (build or self.build)(program)
        self.entries[key] = (program, captured_guard(program), value)
        return program, value

    def index_fast(self, fast_key: tuple, key: tuple, runner: Any) -> None:
        """Let ``fast_key`` find ``key``'s entry (just returned by :meth:`get`), running it
        with ``runner``."""
        program, guard, _ = self.entries[key]
        self.fast[fast_key] = (program, guard, runner)


class Fallback:
    """Remembers why a function runs eagerly and warns once."""

    def __init__(self, fn: Callable, what: str, stacklevel: int = 4) -> None:
        self.fn, self.what, self.stacklevel = fn, what, stacklevel
        self.reason: Exception | None = None
        self.eager_keys: dict[Any, Exception] = {}  # signature -> why it runs eagerly

    def note(self, err: Exception, key: Any = None) -> None:
        first = self.reason is None
        self.reason = err
        if key is not None:
            self.eager_keys[key] = err
        if first:
            name = getattr(self.fn, "__qualname__", repr(self.fn))
            warnings.warn(f"gradgen.{self.what}({name}): falling back to eager: {err}",
                          UserWarning, stacklevel=self.stacklevel)


__all__ = ["signature", "fast_signature", "TraceCache", "Fallback", "inputs_of",
           "captured_guard", "guard_holds", "SpecializationLimit"]
