"""Running kernel schedules: build their C module once, then call kernels and host ops per call.

:func:`build_programs` turns IR programs (e.g. a forward and a backward program)
into one C module -- one compiler run, one cache entry -- and returns one
:class:`Executable` per program. An executable is called with numpy arrays (one
per program input) and returns one array per program output.

Memory: temporaries that no output refers to live in a *workspace* allocated
once and kept between calls, so their cffi pointers are converted once; constant
buffers likewise. Arrays that leave the call (program outputs, including the
residuals a forward program hands to its backward) are allocated fresh on every
call, so nothing returned is ever overwritten by a later call. Input arrays are
passed by pointer (made C-contiguous first if needed). Values do not yet share
workspace storage by lifetime (no memory planner): each temporary has its own.

Host ops (matmul, indexing, argmax, ... -- every equation the schedule does not
put in a kernel, including any primitive without a C lowering) run between
kernels as the primitive's own numpy implementation on strided views of the
buffers, exactly as the IR interpreter would run them.

An executable's workspace makes it non-reentrant: one call at a time.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..codegen import HostOp, Kernel, Schedule, View, build_schedule, render_module
from ..codegen.clower import CTYPES
from ..ir.core import Literal, Program
from ..ir.printer import print_program
from .cache import get_or_build
from .loader import LoadedModule
from .threads import apply_to_openmp

_KERNEL, _HOST = 0, 1


class LoweringError(RuntimeError):
    """A program cannot be turned into C (an unsupported dtype, a schedule the renderer refuses)."""


@dataclass
class NativeBuild:
    """What one build produced: the executables and where their C lives (for inspection)."""

    executables: list["Executable"]
    source: str | None               # the generated C module (None: no kernel, nothing built)
    cache_path: Path | None = None   # the cache entry directory holding source.c and kernel.so
    key: str | None = None
    schedules: list[Schedule] = field(default_factory=list)


class Executable:
    """One scheduled program bound to its loaded kernels; call it with numpy arrays."""

    def __init__(self, sched: Schedule, module: LoadedModule | None, prefix: str,
                 args: dict[str, list]) -> None:
        self.schedule = sched
        self.n_inputs = len(sched.inputs)
        slot: dict[Any, int] = {b: i for i, b in enumerate(sched.inputs)}
        out_bufs = {o.buffer for o in sched.outputs if isinstance(o, View)}
        ffi = module.ffi if module is not None else None
        self._ffi = ffi
        template: list[Any] = [None] * self.n_inputs   # per-slot array (workspace, consts)
        pointers: list[Any] = [None] * self.n_inputs   # per-slot cffi pointer when fixed
        self._fresh: list[tuple[int, tuple, np.dtype]] = []  # slots allocated per call
        self._ctype: list[str] = []

        def slot_of(buf) -> int:
            if buf in slot:
                return slot[buf]
            s = slot[buf] = len(template)
            aval = buf.var.aval
            if buf.kind == "const":
                arr = np.ascontiguousarray(buf.value, dtype=aval.dtype.np)
                template.append(arr)
                pointers.append(module.pointer(arr) if module is not None else None)
            elif buf in out_bufs or buf in host_outs:
                template.append(None)
                pointers.append(None)
                if buf not in host_outs:
                    self._fresh.append((s, tuple(aval.shape), aval.dtype.np))
            else:  # a workspace temporary: allocated once, pointer converted once
                arr = np.empty(aval.shape, aval.dtype.np)
                template.append(arr)
                pointers.append(module.pointer(arr))
            return s

        host_outs = {s.output for s in sched.steps if isinstance(s, HostOp)}
        for b in sched.inputs:
            slot_of(b)
        self._plan: list[tuple] = []
        self._dynamic_read: set[int] = set()  # slots whose pointer is made per call
        for step in sched.steps:
            if isinstance(step, Kernel):
                fn = module.functions[prefix + step.name]
                slots = [slot_of(b) for b in args[prefix + step.name]]
                self._plan.append((_KERNEL, fn, slots))
            else:
                ins = [(None, a.value) if isinstance(a, Literal) else
                       (slot_of(a.buffer), None if a.is_whole else
                        (a.shape, tuple(s * a.buffer.var.aval.dtype.itemsize for s in a.strides)))
                       for a in step.inputs]
                out = slot_of(step.output)
                self._plan.append((_HOST, step.eqn, ins, out, step.output.var.aval.dtype.np))
        self._ctype = [None] * len(template)
        for b, s in slot.items():
            self._ctype[s] = f"{CTYPES[b.var.aval.dtype.short]}[]"
        for op in self._plan:
            if op[0] == _KERNEL:
                self._dynamic_read.update(s for s in op[2] if pointers[s] is None)
        self._template = template
        self._pointers = pointers
        self._outputs = [(None, np.asarray(o.value)) if isinstance(o, Literal) else
                         (slot_of(o.buffer), o.buffer.kind == "const") for o in sched.outputs]
        self._pre = sorted(s for s in self._dynamic_read if s < self.n_inputs
                           or any(s == f[0] for f in self._fresh))

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        mem = list(self._template)
        for i, a in enumerate(arrays):
            mem[i] = a if a.flags.c_contiguous else np.ascontiguousarray(a)
        for s, shape, dt in self._fresh:
            mem[s] = np.empty(shape, dt)
        ptrs = list(self._pointers)
        ffi = self._ffi
        for s in self._pre:
            ptrs[s] = ffi.from_buffer(self._ctype[s], mem[s])
        for op in self._plan:
            if op[0] == _KERNEL:
                op[1](*[ptrs[s] for s in op[2]])
            else:
                self._host(op, mem, ptrs)
        # Literal and constant outputs are copied: the caller owns every array it gets.
        return [np.array(v) if s is None else (mem[s].copy() if v else mem[s])
                for s, v in self._outputs]

    def _host(self, op: tuple, mem: list, ptrs: list) -> None:
        _, eqn, ins, out, dt = op
        vals = []
        for s, how in ins:
            if s is None:
                vals.append(how)
            elif how is None:
                vals.append(mem[s])
            else:
                vals.append(np.lib.stride_tricks.as_strided(mem[s], how[0], how[1], writeable=False))
        arr = np.asarray(eqn.prim.impl(*vals, **eqn.params))
        # A result that is a view (of an input or of the workspace) or an operand itself is
        # copied: outputs must own their memory, and kernels read it through a flat pointer.
        if (arr.base is not None or arr.dtype != dt or not arr.flags.c_contiguous
                or any(arr is v for v in vals)):
            arr = np.array(arr, dtype=dt, order="C")
        mem[out] = arr
        if out in self._dynamic_read:
            ptrs[out] = self._ffi.from_buffer(self._ctype[out], arr)


def _check_dtypes(program: Program) -> None:
    vals = list(program.inputs) + [e.out for e in program.eqns]
    for v in vals:
        if v.aval.dtype.short not in CTYPES:
            raise LoweringError(f"no C lowering for dtype {v.aval.dtype.name} "
                                f"(value of shape {tuple(v.aval.shape)})")


def build_programs(programs: Sequence[Program], threads: int) -> NativeBuild:
    """One C module for ``programs`` (built or loaded from the disk cache) and an executable each.

    Raises:
        LoweringError: a program cannot be expressed in C.
        CompilerNotFound, CompileError, LoadError: from the runtime (no compiler, it failed, ...).
    """
    try:
        for p in programs:
            _check_dtypes(p)
        scheds = [build_schedule(p) for p in programs]
        prefixes = [f"g{k}_" for k in range(len(programs))]
        label = hashlib.sha256("\n".join(print_program(p) for p in programs).encode()).hexdigest()
        module_text = render_module(scheds, cache_key=f"programs-{label[:16]}", prefixes=prefixes)
    except LoweringError:
        raise
    except Exception as exc:  # the generator refused: the program stays eager, with the reason
        raise LoweringError(f"C code generation failed: {type(exc).__name__}: {exc}") from exc
    if not any(s.kernels for s in scheds):  # host ops only: nothing to compile
        return NativeBuild([Executable(s, None, p, module_text.args)
                            for s, p in zip(scheds, prefixes)], None, schedules=scheds)
    module = get_or_build(module_text.source, module_text.cdef, threads)
    if threads > 1:
        apply_to_openmp()
    execs = [Executable(s, module, p, module_text.args) for s, p in zip(scheds, prefixes)]
    return NativeBuild(execs, module_text.source, module.cache_path, module.key, scheds)


__all__ = ["Executable", "NativeBuild", "LoweringError", "build_programs"]
