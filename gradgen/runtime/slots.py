"""The per-call layout of an executable's buffers, and the closures running its host ops and
testing its check kernels' status and its allocating kernels' failure.

Each buffer of a schedule gets a *slot*: its index into the per-call lists of arrays and of
cffi pointers (:class:`Slots`). What never changes between calls is fixed in the slot once --
constants, workspace temporaries (views into one block carved by the memory plan) and their
pointers -- so a call converts only the pointers of its own arrays. Used by
:class:`gradgen.runtime.executor.Executable`.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable

import numpy as np

from ..codegen.checks import STATUS_NONE
from ..codegen.clower import buffer_ctype
from ..codegen.steps import HostOp, Schedule, View
from ..ir.core import Eqn, Literal
from .loader import LoadedModule

_ALIGN = 64  # bytes: the workspace block starts on a cache line


def converter(module: LoadedModule | None) -> Callable | None:
    """``convert(ctype, array, False)`` -> a cffi pointer to the array's data (C-contiguous only).

    The backend's function takes a ctype object as is; ``FFI.from_buffer`` adds a Python-level
    call that re-checks its type argument on every call.
    """
    if module is None:
        return None
    backend = getattr(module.ffi, "_backend", None)
    return getattr(backend, "from_buffer", None) or module.ffi.from_buffer


class Slots:
    """Each buffer's index into the per-call lists, and what is fixed at that index."""

    def __init__(self, sched: Schedule, module: LoadedModule | None) -> None:
        self.module = module
        self.index: dict[Any, int] = {}
        self.template: list[Any] = []   # per-slot persistent array (workspace, consts)
        self.pointers: list[Any] = []   # per-slot cffi pointer when fixed
        self.ctype: list[Any] = []      # per-slot cffi array type
        self.fresh: list[tuple] = []    # (slot, shape, dtype) allocated per call: kernel outputs
        self.leaving = {o.buffer for o in sched.outputs if isinstance(o, View)}
        self.host_outs = {s.output for s in sched.steps if isinstance(s, HostOp)}
        self.block = _workspace_block(sched)
        for b in sched.inputs:
            self.slot(b)

    def slot(self, buf) -> int:
        s = self.index.get(buf)
        if s is not None:
            return s
        s = self.index[buf] = len(self.template)
        aval = buf.var.aval
        ffi = self.module.ffi if self.module is not None else None
        self.ctype.append(ffi.typeof(f"{buffer_ctype(aval.dtype)}[]") if ffi is not None else None)
        arr = None
        if buf.kind == "const":
            arr = np.ascontiguousarray(buf.value, dtype=aval.dtype.np)
        elif buf.kind != "input" and buf not in self.leaving and buf not in self.host_outs:
            arr = self.block(buf)  # a workspace temporary: allocated once
        elif buf.kind != "input" and buf not in self.host_outs:
            self.fresh.append((s, tuple(aval.shape), aval.dtype.np))
        self.template.append(arr)
        self.pointers.append(self.module.pointer(arr) if arr is not None and
                             self.module is not None else None)
        return s


def _workspace_block(sched: Schedule) -> Callable:
    """``array_of(buffer)`` for workspace temporaries: views into one block when the schedule
    has a memory plan (temporaries with disjoint lifetimes share a slot), else one array each."""
    slots = getattr(sched, "slots", None) or {}
    if not slots:
        return lambda buf: np.empty(buf.var.aval.shape, buf.var.aval.dtype.np)
    offsets = sched.slot_offsets
    raw = np.empty(sched.workspace_bytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN

    def array_of(buf) -> np.ndarray:
        if buf not in slots:
            return np.empty(buf.var.aval.shape, buf.var.aval.dtype.np)
        aval = buf.var.aval
        at = start + offsets[slots[buf]]
        return raw[at:at + aval.size * aval.dtype.itemsize].view(aval.dtype.np).reshape(aval.shape)
    return array_of


def kernel_args(slots: list[int]) -> Callable[[list], tuple]:
    """A getter of a kernel's pointer arguments from the per-call pointer list."""
    if len(slots) == 1:
        (only,) = slots
        return lambda ptrs: (ptrs[only],)
    return itemgetter(*slots)


def getter(slots: list[int]) -> Callable[[list], list]:
    """``take(mem)`` -> ``[mem[s] for s in slots]``, in one C-level call."""
    if not slots:
        return lambda mem: []
    if len(slots) == 1:
        (only,) = slots
        return lambda mem: [mem[only]]
    get = itemgetter(*slots)
    return lambda mem: list(get(mem))


def check_step(kernel: Callable, status: np.ndarray, eqn: Eqn) -> Callable:
    """A check kernel's step: the kernel, then the test of its status -- raising the error of
    ``eqn``'s facet (``check_index``: eager's exception and message) for the first bad index.
    ``run.kernel``, ``run.status`` (a memoryview: reading it costs least) and ``run.fail`` let
    :mod:`.callgen` write the same test inline."""
    error, params = eqn.prim.c_lowering["error"], eqn.params
    flags = memoryview(status)

    def fail() -> None:
        raise error(int(status[1]), **params)

    def run(*ptrs: Any) -> None:
        kernel(*ptrs)
        if flags[0] != STATUS_NONE:
            fail()
    run.kernel, run.status, run.fail = kernel, flags, fail
    return run


def allocating_step(kernel: Callable, name: str) -> Callable:
    """The step of a kernel that allocates row buffers on the heap: the kernel, raising
    MemoryError when it reports it could not. ``run.kernel`` and ``run.fail`` let
    :mod:`.callgen` write the same test inline."""
    def fail() -> None:
        raise MemoryError(f"compiled kernel {name} could not allocate its row buffers")

    def run(*ptrs: Any) -> None:
        if kernel(*ptrs):
            fail()
    run.kernel, run.fail = kernel, fail
    return run


def host_step(step: HostOp, slots: Slots, ctype: Any, convert: Callable | None) -> Callable:
    """The closure running one host op: the primitive's numpy implementation on (views of)
    the buffers; its result is made an owned C-contiguous array of the output's dtype."""
    impl, params = step.eqn.prim.impl, step.eqn.params
    out, dt = slots.slot(step.output), step.output.var.aval.dtype.np
    ins = [(None, a.value) if isinstance(a, Literal) else
           (slots.slot(a.buffer), None if a.is_whole else
            (a.shape, tuple(s * a.buffer.var.aval.dtype.itemsize for s in a.strides)))
           for a in step.inputs]
    strided = np.lib.stride_tricks.as_strided

    def run(mem: list, ptrs: list) -> None:
        vals = [how if s is None else mem[s] if how is None else
                strided(mem[s], how[0], how[1], writeable=False) for s, how in ins]
        arr = np.asarray(impl(*vals, **params))
        # A result that is a view (of an input or of the workspace), an operand itself or
        # read-only is copied: outputs must own their memory, and kernels read it flat.
        if (arr.base is not None or arr.dtype != dt or not arr.flags.c_contiguous
                or not arr.flags.writeable or any(arr is v for v in vals)):
            arr = np.array(arr, dtype=dt, order="C")
        mem[out] = arr
        if ctype is not None:
            ptrs[out] = convert(ctype, arr, False)
    return run


__all__ = ["Slots", "converter", "kernel_args", "getter", "host_step", "check_step",
           "allocating_step"]
