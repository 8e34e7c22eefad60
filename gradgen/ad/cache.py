"""Specializing a function per call signature: cache keys, the trace cache, fallback records.

A function is traced once per *signature* -- the structure of its arguments,
the values of its non-tensor arguments, each tensor's shape, dtype,
requires_grad flag and strides, grad mode and the default dtype -- and the result is reused
while its guard holds (:func:`make_guard`: the tensors it captured keep their
shapes, dtypes and requires_grad flags, and the globals and closure variables fn
read still hold what they held). A cache may hold at most ``limit`` signatures; a
new one past it raises :class:`SpecializationLimit`. When tracing or compiling fails,
:class:`Fallback` keeps the reason (per signature, too) and warns once per function.

Calls whose positional arguments are all tensors (the common case) also have a
*fast key*, :func:`fast_signature`: the same facts (each tensor's shape, dtype and
requires_grad flag, grad mode, default dtype) computed in one pass without flattening. A
:class:`TraceCache` indexes its entries by fast key too, so such a call finds its
entry with one dictionary lookup.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from ..autograd.grad_mode import _state, enable_grad
from ..dtypes import _default
from ..ir.core import Program
from ..ir.trace import trace
from ..ir.trace_inputs import AliasedArguments
from ..ir.tree import flatten
from ..tensor import Tensor


def _key_tree(tree: tuple) -> tuple:
    """A flatten tree made hashable and type-exact (``2`` and ``2.0`` trace differently)."""
    kind = tree[0]
    if kind == "leaf":
        return tree
    if kind == "const":
        v = tree[1]
        try:
            hash(v)
        except TypeError:  # cannot key a cache: the caller runs the call eagerly, saying why
            kind = f"{type(v).__module__}.{type(v).__qualname__}".removeprefix("builtins.")
            raise TypeError(
                f"an argument of type {kind} is neither a tensor nor a hashable value, so no "
                "compiled specialization can be chosen by it (pass a numpy array as a tensor: "
                "gradgen.from_numpy(a))") from None
        return ("const", type(v), _exact(v))
    return tree[:-1] + (tuple(_key_tree(t) for t in tree[-1]),)


def signature(args: tuple) -> tuple:
    """The cache key of a call: argument structure, constants, tensor types, grad mode and the
    default dtype (factories and Python floats inside fn take it: a trace bakes it in)."""
    return _signature(flatten(args))


def _exact(v: Any) -> Any:
    """``v`` as a key that tells what ``==`` does not: -0.0 from 0.0 (``x / a`` differs), and
    a NaN equal to a NaN."""
    return v.hex() if type(v) is float else v


def _signature(flat: tuple[list, tuple]) -> tuple:
    leaves, tree = flat
    return (_key_tree(tree),
            tuple([(t._data.shape, t._data.dtype, t._requires_grad, t._data.strides)
                   for t in leaves]),
            _state.enabled, _default.value)


def fast_signature(args: tuple) -> tuple | None:
    """The fast key of a call whose positional arguments are all tensors, else None.

    It holds what :func:`signature` holds for such a call -- the argument count (the
    structure), each tensor's shape, dtype, requires_grad flag and strides, grad mode and the
    default dtype -- so two calls share a fast key exactly when they share a signature. (The
    strides: eager's ``view``, ``contiguous()`` and ``is_contiguous()`` answer by them, so a
    trace holds for one layout.)
    """
    sig = []
    for a in args:
        if not isinstance(a, Tensor):
            return None
        d = a._data
        sig.append((d.shape, d.dtype, a._requires_grad, d.strides))
    return (tuple(sig), _state.enabled, _default.value)


def make_guard(program: Program) -> Callable[[], bool] | None:
    """The check a later call runs before reusing ``program`` (None: nothing to check).

    It holds while each captured tensor keeps its shape, dtype and requires_grad flag (its
    data is read by reference) and is still what the global or closure cell fn read it from
    holds, and while the other values fn read from its globals or closure are unchanged
    (Python scalars by value, a NaN equal to a NaN; other objects by identity): rebinding such
    a variable makes the next call trace again, as fn would read the new value. The check is
    written out as one straight-line function, so a call pays a few reads per guard.
    """
    captured = program.meta["captured"]
    sources = program.meta.get("captured_sources") or [None] * len(captured)
    values = program.meta.get("value_guards") or ()
    if not captured and not values:
        return None
    env: dict[str, Any] = {"MISSING": _MISSING, "same": _same_scalar}
    tests = []
    for j, t in enumerate(captured):
        env[f"t{j}"], env[f"s{j}"], env[f"d{j}"] = t, t._data.shape, t._data.dtype
        tests.append(f"t{j}._data.shape != s{j} or t{j}._data.dtype != d{j} or "
                     f"t{j}._requires_grad is not {bool(t._requires_grad)}")
    bound = [(s[1], s[2], t, True) for s, t in zip(sources, captured) if s is not None]
    bound += [(where, name, v, by_id) for _, where, name, v, by_id in values]
    for j, (where, name, v, by_id) in enumerate(bound):
        env[f"w{j}"], env[f"n{j}"], env[f"v{j}"] = where, name, v
        now = f"w{j}.get(n{j}, MISSING)" if type(where) is dict else f"w{j}.cell_contents"
        tests.append(f"{now} is not v{j}" if by_id else f"not same({now}, v{j})")
    # Straight-line Python over names made up here (a guard runs on every call); an emptied
    # closure cell raises ValueError: the guard fails.
    text = ("def make(" + ", ".join(env) + "):\n    def holds():\n        try:\n"
            + "".join(f"            if {x}:\n                return False\n" for x in tests)
            + "        except ValueError:\n            return False\n        return True\n"
            + "    return holds\n")
    scope: dict[str, Any] = {}
    exec(compile(text, "<gradgen guard>", "exec"), scope)  # noqa: S102 (our text, see above)
    return scope["make"](**env)


def _same_scalar(now: Any, v: Any) -> bool:
    """Whether Python scalar ``now`` is ``v``'s value (same type; a NaN equals a NaN, -0.0
    differs from 0.0)."""
    return now is v or (type(now) is type(v) and _exact(now) == _exact(v))


_MISSING = object()


class SpecializationLimit(RuntimeError):
    """A function already has its maximum number of specializations."""


def inputs_of(program: Program, args: tuple, leaves: list | None = None) -> list[Tensor]:
    """The program's input tensors for a call: the arguments' tensors, then the captured ones."""
    captured = program.meta["captured"]
    leaves = flatten(args)[0] if leaves is None else leaves
    return leaves + captured if captured else leaves


class TraceCache:
    """Per-signature entries of one function, retraced when a captured tensor changes type.

    ``fast`` maps a fast key (see :func:`fast_signature`) to ``(program, guard, runner)``:
    the entry of the signature it stands for, with a runner made from the entry's value
    once. A caller finding a fast hit must still check its guard (:func:`make_guard`; None:
    nothing to check).
    ``abstract``: trace without computing values first (for callers that discard the
    values a trace computes, as ``gradgen.compile`` does; see ``trace``). ``grad_mode``:
    trace with grad mode on (``value_and_grad``, whose eager path runs fn under
    ``enable_grad``); otherwise fn is traced in the caller's grad mode.
    """

    def __init__(self, build: Callable[[Program], Any], limit: int | None = None,
                 abstract: bool = False, grad_mode: bool = False) -> None:
        self.entries: dict[tuple, tuple[Program, tuple, Any]] = {}
        self.fast: dict[tuple, tuple[Program, tuple, Any]] = {}
        self.build = build
        self.limit = limit
        self.abstract = abstract
        self.grad_mode = grad_mode
        self.retraces = 0  # guard failures (entry rebuilt in place)
        self.key_retraces: dict[tuple, int] = {}

    def get(self, fn: Callable, args: tuple, key: tuple,
            build: Callable[[Program], Any] | None = None) -> tuple[Program, Any]:
        """The (program, built value) of ``key``; traces and builds on a miss.

        Raises:
            SpecializationLimit: ``key`` is new and ``limit`` signatures are already cached, or
                its guard failed ``limit`` times (a variable fn reads keeps changing: each
                trace would be thrown away again; the caller runs fn eagerly).
        """
        hit = self.entries.get(key)
        if hit is not None:
            program, guard, value = hit
            if guard is None or guard():
                return program, value
            self.retraces += 1
            # The entry is rebuilt: fast keys standing for it are stale.
            self.fast = {k: v for k, v in self.fast.items() if v[0] is not program}
            n = self.key_retraces[key] = self.key_retraces.get(key, 0) + 1
            if self.limit is not None and n >= self.limit:
                del self.entries[key]
                raise SpecializationLimit(
                    f"this signature was traced again {n} times: a global or closure variable "
                    "fn reads keeps changing (its guards: compiled_fn.inspect()); pass values "
                    "that change from call to call as arguments")
        elif self.limit is not None and len(self.entries) >= self.limit:
            raise SpecializationLimit(
                f"the specialization limit ({self.limit}) is reached: this call's signature "
                "(shapes, dtypes, requires_grad flags, grad mode, non-tensor arguments) is new; "
                "raise it with compile(fn, max_specializations=...)")
        if self.grad_mode:
            with enable_grad():
                program = trace(fn, *args, abstract=self.abstract)
        else:
            program = trace(fn, *args, abstract=self.abstract)
        value = (build or self.build)(program)
        self.entries[key] = (program, make_guard(program), value)
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
        """Keep ``err`` as the reason, and under ``key`` (the call's signature) unless it is a
        fact of this call alone (one tensor passed as two arguments): later calls of that
        signature run eagerly at once, while a call with distinct tensors still compiles."""
        first = self.reason is None
        self.reason = err
        if key is not None and not isinstance(err, AliasedArguments):
            self.eager_keys[key] = err
        if first:
            name = getattr(self.fn, "__qualname__", repr(self.fn))
            warnings.warn(f"gradgen.{self.what}({name}): falling back to eager: {err}",
                          UserWarning, stacklevel=self.stacklevel)


__all__ = ["signature", "fast_signature", "TraceCache", "Fallback", "inputs_of",
           "make_guard", "SpecializationLimit"]
