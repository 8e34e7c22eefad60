"""An executable's call as one generated Python function (straight-line code per program).

:meth:`Executable.__call__ <gradgen.runtime.executor.Executable.__call__>` is
general: it copies the per-call slot lists, loops over the inputs, the fresh
outputs and the steps, and picks the outputs out of a list. When every step is a
C kernel, the same work is a fixed sequence known when the executable is built,
so it is written out once as Python text and compiled with :func:`exec`, the way
:mod:`dataclasses` writes ``__init__``: each input's pointer converted, each
fresh output allocated, each kernel called with its pointers (persistent ones
are closure constants), each check kernel's status tested right after it (a bad index
raises, :func:`.slots.check_step`) and an allocating kernel's result too
(:func:`.slots.allocating_step`), the outputs returned. The text holds only names this
module makes up (``a3``, ``q3``, ``K0``, ...), never a user string.

Small fresh outputs are recycled. Each slot of at most :data:`RECYCLED_BYTES` keeps
the arrays its last two calls returned, with their cffi pointers; when nothing but
the slot refers to one any more (its reference count is back at what it was when
the array was made: no tensor, view, memoryview or other buffer export holds it),
the next call writes into it instead of allocating an array and converting its
pointer: about half a microsecond less per output, which counts on calls whose
kernels take a few microseconds. Whatever the caller keeps is never written again;
keeping two arrays per slot covers the loop that holds each result until the next
call returns (``loss, g = step(x)``). The slots are read and written only under the
lock. Larger outputs are allocated on every call: their kernels take long enough
for the allocation not to count, and keeping them would hold memory nobody uses.

An input numpy cannot pass as a flat buffer (not C-contiguous) makes the
generated function hand the whole call to the general path, which copies it. The
kernels run under the executable's lock (tried, never waited for): a call that finds
another thread inside runs on a spare executable (:class:`Spares`).
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from ..codegen.checks import STATUS_NONE

RECYCLED_BYTES = 64 * 1024  # the largest output a slot recycles (see the module docstring)


def generated_call(ex: Any) -> Callable[..., list] | None:
    """``ex``'s call as one generated function, or None when some step is not a kernel
    (a host op runs on the general path's slot lists) or nothing was compiled."""
    if ex._module is None or any(slots is None for slots in ex._step_slots):
        return None
    env: dict[str, Any] = {"convert": ex._convert, "empty": np.empty, "general": ex,
                           "refs": sys.getrefcount,
                           "copy": np.array, "acquire": ex._lock.acquire,
                           "release": ex._lock.release, "busy": ex._busy}
    inputs = {s: ct for s, ct in ex._inputs}
    fresh = {s: (shape, dt, ct) for s, shape, dt, ct in ex._fresh}
    params = ", ".join(f"a{s}" for s in inputs)
    body = ["try:"]
    body += [f"    q{s} = convert(C{s}, a{s}, False)" for s, ct in inputs.items() if ct is not None]
    body += ["    pass"] if len(body) == 1 else []
    body += ["except ValueError:  # not C-contiguous: the general path copies it",
             f"    return general({params})"]
    returned = {s for s, _ in ex._outputs}
    for s, ct in inputs.items():
        env[f"C{s}"] = ct
        if ct is None and s in returned:  # no kernel reads it; it is returned contiguous
            body.append(f"if not a{s}.flags.c_contiguous: return general({params})")
    recycle, kept = [], []  # (module docstring: recycled outputs)
    for s, (shape, dt, ct) in fresh.items():
        env[f"S{s}"], env[f"D{s}"], env[f"C{s}"] = shape, dt, ct
        if int(np.prod(shape)) * np.dtype(dt).itemsize > RECYCLED_BYTES:
            body.append(f"o{s} = empty(S{s}, D{s})")
            body += [f"q{s} = convert(C{s}, o{s}, False)"] if ct is not None else []
            continue
        lines, names = _recycled(s, ct is not None)
        recycle += lines
        kept += names

    def pointer(s: int) -> str:
        if s in fresh or (s in inputs and inputs[s] is not None):
            return f"q{s}"
        env[f"P{s}"] = ex._pointers[s]
        return f"P{s}"

    def array(s: int) -> str:
        if s in inputs:
            return f"a{s}"
        if s in fresh:
            return f"o{s}"
        env[f"M{s}"] = ex._template[s]
        return f"M{s}"

    steps = []
    for k, ((fn, _), slots) in enumerate(zip(ex._steps, ex._step_slots)):
        env[f"K{k}"] = getattr(fn, "kernel", fn)
        call = f"K{k}({', '.join(pointer(s) for s in slots)})"
        if hasattr(fn, "status"):  # a check kernel: test its status (slots.check_step)
            env[f"T{k}"], env[f"F{k}"] = fn.status, fn.fail
            steps += [f"    {call}", f"    if T{k}[0] != {STATUS_NONE}: F{k}()"]
        elif hasattr(fn, "fail"):  # it returns whether it could not allocate (allocating_step)
            env[f"F{k}"] = fn.fail
            steps.append(f"    if {call}: F{k}()")
        else:
            steps.append(f"    {call}")
    if steps:  # (none: every output is an input or a constant, nothing is fresh)
        body += ["if not acquire(False):  # another thread is inside: a spare workspace",
                 f"    return busy(({params}{',' if len(inputs) == 1 else ''}))", "try:",
                 *[f"    {line}" for line in recycle], *steps, "finally:", "    release()"]
    outs = []
    for k, (s, v) in enumerate(ex._outputs):
        if s is None:  # a literal: a fresh copy each call
            env[f"L{k}"] = v
            outs.append(f"copy(L{k})")
        else:
            outs.append(f"{array(s)}.copy()" if v else array(s))
    body.append(f"return [{', '.join(outs)}]")
    names = ", ".join(env)
    start = [f"{', '.join(kept)} = {', '.join('0' if n[0] in 'bc' else 'None' for n in kept)}",
             f"nonlocal {', '.join(kept)}"] if kept else ["", ""]
    text = (f"def make({names}):\n    {start[0]}\n    def call({params}):\n        {start[1]}\n"
            + "".join(f"        {line}\n" for line in body) + "    return call\n")
    scope: dict[str, Any] = {}
    exec(compile(text, "<gradgen executable call>", "exec"), scope)  # noqa: S102  (our text only)
    call = scope["make"](**env)
    call.source = text  # for inspection and tests
    return call


def _recycled(s: int, pointer: bool) -> tuple[list[str], list[str]]:
    """The lines that give fresh output ``s`` its array (``o``) and pointer (``q``) for this
    call, and the names they keep between calls: the array the call before returned (``p``,
    pointer ``r``) and each array's reference count when only the slot held it (``b``, ``c``).
    """
    o, p, q, r, b, c = (f"{n}{s}" for n in "opqrbc")
    pair, older = ([o, q, b], [p, r, c]) if pointer else ([o, b], [p, c])
    make = [f"{o} = empty(S{s}, D{s})"] + ([f"{q} = convert(C{s}, {o}, False)"] if pointer else [])
    lines = [f"if refs({o}) != {b}:  # held outside: the array before, or a new one",
             f"    if refs({p}) == {c}:",
             f"        {', '.join(pair + older)} = {', '.join(older + pair)}",
             "    else:",
             f"        {', '.join(older)} = {', '.join(pair)}",
             *[f"        {line}" for line in make],
             f"        {b} = refs({o})"]
    return lines, pair + older


class Spares:
    """Executables like one that is busy, each with a workspace of its own: ``spares(arrays)``
    runs a call on an idle one (made by ``make()`` when none is idle) and keeps it for the
    next concurrent call."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.idle: list = []

    def __call__(self, arrays: tuple) -> list:
        try:
            spare = self.idle.pop()  # atomic under the GIL: no two calls get the same spare
        except IndexError:
            spare = self.make()
        try:
            return spare(*arrays)
        finally:
            self.idle.append(spare)


__all__ = ["generated_call", "Spares"]
