"""Running kernel schedules: build their C module once, then call kernels and host ops per call.

:func:`build_programs` turns IR programs (e.g. a forward and a backward program)
into one C module -- one compiler run, one cache entry -- and returns one
:class:`Executable` per program. An executable is called with numpy arrays (one
per program input) and returns one array per program output.

Everything that does not change between calls is decided once, when the
executable is built: each buffer's place in a per-call array list, the
persistent arrays and their cffi pointers, which buffers get a fresh array per
call, and one flat list of steps (a kernel with the getter of its pointer
arguments, or a host-op closure). A call then converts only the pointers of its
own arrays (inputs and fresh outputs) and runs the steps.

Memory: temporaries that no output refers to live in a *workspace* allocated
once and kept between calls (one block carved by the schedule's memory plan
when it has one), so their pointers are converted once; constant buffers
likewise. Arrays that leave the call (program outputs, including the residuals a
forward program hands to its backward) are fresh on every call, so nothing the
caller still holds is ever overwritten by a later call (the generated call
reuses one that nobody holds any more: :mod:`.callgen`). Input arrays are passed by
pointer (made C-contiguous first if needed). :meth:`Executable.bind` fixes
inputs that never change (a cotangent of ones) as persistent buffers.

Check kernels (``check_index``) run as a kernel followed by a test of their status buffer
(:func:`.slots.check_step`): a bad index raises eager's exception there, before later steps
and before any output is returned. A kernel allocating row buffers on the heap returns whether
it could not, which raises MemoryError the same way (:func:`.slots.allocating_step`).

Host ops (general indexing, argmax, ... -- every equation the schedule does not
put in a kernel, including any primitive without a C lowering) run between
kernels as the primitive's own numpy implementation on strided views of the
buffers, exactly as the IR interpreter would run them (:mod:`.slots`).

An executable's workspace serves one call at a time: a call that finds another thread
inside the kernels (cffi releases the GIL) runs on a spare executable with a workspace of
its own (made on first need, kept for the next such call), so concurrent calls never share
temporaries.
"""
from __future__ import annotations

import copy
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

# The data model only: scheduling and rendering (Jinja) load when a program is lowered, so
# a process that finds its lowering in the cache never imports them.
from ..codegen.steps import Kernel, Schedule, View
from ..codegen.clower import CTYPES
from ..ir.core import Literal, Program
from ..ir.printer import print_program
from .cache import get_or_build
from .callgen import Spares, generated_call
from .loader import LoadedModule
from .slots import Slots, allocating_step, check_step, converter, getter, host_step, kernel_args

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
    """One scheduled program bound to its loaded kernels; call it with numpy arrays.

    ``owned[k]`` says that output ``k`` is always an array made by this call and returned
    once (no input, no other output): the caller may keep it without a copy.
    """

    def __init__(self, sched: Schedule, module: LoadedModule | None, prefix: str,
                 args: dict[str, list]) -> None:
        self.schedule = sched
        self.n_inputs = len(sched.inputs)
        self._convert = convert = converter(module)
        slots = Slots(sched, module)
        kernel_slots = [[slots.slot(b) for b in args[prefix + step.name]]
                        if isinstance(step, Kernel) else None for step in sched.steps]
        dynamic = {s for ks in kernel_slots if ks for s in ks if slots.pointers[s] is None}
        # What each step reads and writes (slots), for bind's precomputation.
        self._io = [(frozenset(slots.slot(v.buffer) for v in step.loads.values()),
                     frozenset(slots.slot(b) for b in step.stores.values()))
                    if isinstance(step, Kernel) else
                    (frozenset(slots.slot(a.buffer) for a in step.inputs if isinstance(a, View)),
                     frozenset((slots.slot(step.output),)))
                    for step in sched.steps]
        self._leaving = frozenset(slots.slot(b) for b in slots.leaving)
        # Steps: (kernel, getter of its pointers) or (host closure, None).
        self._steps: list[tuple[Callable, Callable | None]] = [
            (module.functions[prefix + step.name], kernel_args(ks)) if ks is not None else
            (host_step(step, slots, slots.ctype[slots.slot(step.output)]
                        if slots.slot(step.output) in dynamic else None, convert), None)
            for step, ks in zip(sched.steps, kernel_slots)]
        for pos, step in enumerate(sched.steps):
            if isinstance(step, Kernel) and step.check is not None:  # raises on a bad index
                status = slots.template[slots.slot(step.status)]
                self._steps[pos] = (check_step(self._steps[pos][0], status, step.check),
                                    self._steps[pos][1])
            elif isinstance(step, Kernel) and module.returns_failure(prefix + step.name):
                self._steps[pos] = (allocating_step(self._steps[pos][0], prefix + step.name),
                                    self._steps[pos][1])
        self._step_slots = [tuple(ks) if ks is not None else None for ks in kernel_slots]
        self._inputs = [(s, slots.ctype[s] if s in dynamic else None)
                        for s in range(self.n_inputs)]
        self._fresh = [(s, shape, dt, slots.ctype[s] if s in dynamic else None)
                       for s, shape, dt in slots.fresh]
        self._outputs = [(None, np.asarray(o.value)) if isinstance(o, Literal) else
                         (slots.slot(o.buffer), o.buffer.kind == "const") for o in sched.outputs]
        self._template = slots.template
        self._pointers = slots.pointers
        self._const_slots = frozenset(s for b, s in slots.index.items() if b.kind == "const")
        self._ctype = slots.ctype
        self._module = module
        # Outputs that are all plain buffers (no literal, no constant to copy): one getter.
        plain = [s for s, const in self._outputs if s is not None and const is False]
        self._take = getter(plain) if len(plain) == len(self._outputs) else None
        uses = Counter(s for s, const in self._outputs if s is not None and not const)
        self.owned = tuple(s is None or const or (s >= self.n_inputs and uses[s] == 1)
                           for s, const in self._outputs)
        # One call at a time runs in this workspace; a concurrent one gets a spare executable.
        self._lock = threading.Lock()
        self._busy = Spares(lambda: Executable(sched, module, prefix, args))

    def bind(self, fixed: dict[int, np.ndarray]) -> "Executable":
        """This executable with inputs ``fixed`` (position -> array) held as persistent buffers:
        their pointers are converted once, and the result is called with the other inputs only,
        in order. The arrays are copied (C-contiguous, the input's dtype) and only ever read.

        Steps that read only fixed inputs, constants and what such steps wrote (e.g. the
        cotangent of ones times 1/n) run here, once, when all they write stays inside the call
        (no program output): later calls skip them.
        """
        new = copy.copy(self)
        new._template, new._pointers = list(self._template), list(self._pointers)
        new._lock = threading.Lock()
        new._busy = Spares(lambda: self._busy.make().bind(fixed))
        for i, arr in fixed.items():
            aval = self.schedule.inputs[i].var.aval
            arr = np.array(arr, dtype=aval.dtype.np, order="C")
            new._template[i] = arr
            if self._module is not None and self._inputs[i][1] is not None:
                new._pointers[i] = self._module.pointer(arr)
        new._inputs = [(s, ct) for s, ct in self._inputs if s not in fixed]
        new._precompute(set(fixed))
        return new

    def _precompute(self, known: set) -> None:
        """Run the steps computable from ``known`` slots (and constants) now; keep the rest."""
        known |= self._const_slots
        keep, keep_io, keep_slots = [], [], []
        for (fn, get), (ins, outs), ks in zip(self._steps, self._io, self._step_slots):
            persistent = all(self._template[s] is not None or
                             (get is None and s not in self._leaving) for s in outs)
            checks = hasattr(fn, "fail")  # a step that may raise runs per call, never at bind
            if ins <= known and persistent and not outs & self._leaving and not checks:
                if get is None:
                    fn(self._template, self._pointers)
                    for s in outs:  # the host op's array is now persistent: fix its pointer
                        if self._module is not None and self._ctype[s] is not None:
                            self._pointers[s] = self._module.pointer(self._template[s])
                else:
                    # Workspace slots may share memory with later temporaries (the memory
                    # plan): what is computed once gets storage of its own.
                    for s in outs:
                        self._template[s] = np.empty_like(self._template[s])
                        self._pointers[s] = self._module.pointer(self._template[s])
                    fn(*get(self._pointers))
                known |= outs
            else:
                keep.append((fn, get))
                keep_io.append((ins, outs))
                keep_slots.append(ks)
        self._steps, self._io, self._step_slots = keep, keep_io, keep_slots

    def callable(self) -> Callable[..., list[np.ndarray]]:
        """The fastest way to call this executable, with the same ``owned``: a generated
        straight-line function when every step is a kernel (:mod:`gradgen.runtime.callgen`),
        else the executable itself."""
        fn = generated_call(self)
        if fn is None:
            return self
        fn.owned = self.owned
        return fn

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        convert = self._convert
        mem = self._template.copy()
        ptrs = self._pointers.copy()
        for (s, ct), a in zip(self._inputs, arrays):
            if ct is None:
                if not a.flags.c_contiguous:
                    a = np.ascontiguousarray(a)
            else:
                try:
                    ptrs[s] = convert(ct, a, False)
                except ValueError:  # not C-contiguous (numpy refuses a flat buffer): copy it
                    a = np.ascontiguousarray(a)
                    ptrs[s] = convert(ct, a, False)
            mem[s] = a
        empty = np.empty
        for s, shape, dt, ct in self._fresh:
            arr = mem[s] = empty(shape, dt)
            if ct is not None:
                ptrs[s] = convert(ct, arr, False)
        if not self._lock.acquire(False):  # another thread is inside (cffi releases the GIL)
            return self._busy(arrays)
        try:
            for fn, get in self._steps:
                if get is None:
                    fn(mem, ptrs)
                else:
                    fn(*get(ptrs))
        finally:
            self._lock.release()
        if self._take is not None:
            return self._take(mem)
        # Literal and constant outputs are copied: the caller owns every array it gets.
        return [np.array(v) if s is None else (mem[s].copy() if v else mem[s])
                for s, v in self._outputs]


def _check_dtypes(program: Program) -> None:
    vals = list(program.inputs) + [e.out for e in program.eqns]
    for v in vals:
        if v.aval.dtype.short not in CTYPES:
            raise LoweringError(f"no C lowering for dtype {v.aval.dtype.name} "
                                f"(value of shape {tuple(v.aval.shape)})")


def build_programs(programs: Sequence[Program], threads: int) -> NativeBuild:
    """One C module for ``programs`` (built or loaded from the disk cache) and an executable each:
    :func:`lower_programs`, then :func:`load_lowered`.

    Raises:
        LoweringError: a program cannot be expressed in C.
        CompilerNotFound, CompileError, LoadError: from the runtime (no compiler, it failed, ...).
    """
    return load_lowered(lower_programs(programs), threads)


@dataclass(eq=False)
class Lowered:
    """Programs lowered to one C module: everything loading it needs, without rendering again
    (the lowering cache, :mod:`gradgen.runtime.lowering`, keeps these)."""

    schedules: list[Schedule]
    prefixes: list[str]          # each schedule's kernel-name prefix in the module
    args: dict[str, list]        # kernel name -> its buffers in parameter order
    source: str | None           # the C module (None: host ops only, nothing to compile)
    cdef: str | None             # its cffi declarations


def lower_programs(programs: Sequence[Program]) -> Lowered:
    """Schedule ``programs`` and render their kernels as one C module.

    Raises:
        LoweringError: a program cannot be expressed in C.
    """
    from ..codegen import build_schedule, render_module  # noqa: PLC0415  (see the imports)
    from .templates import use_bytecode_cache  # noqa: PLC0415
    try:
        for p in programs:
            _check_dtypes(p)
        scheds = [build_schedule(p) for p in programs]
        prefixes = [f"g{k}_" for k in range(len(programs))]
        label = hashlib.sha256("\n".join(print_program(p) for p in programs).encode()).hexdigest()
        use_bytecode_cache()
        module_text = render_module(scheds, cache_key=f"programs-{label[:16]}", prefixes=prefixes,
                                    split=True)  # cache.get_or_build builds several units
    except LoweringError:
        raise
    except Exception as exc:  # the generator refused: the program stays eager, with the reason
        raise LoweringError(f"C code generation failed: {type(exc).__name__}: {exc}") from exc
    if not any(s.kernels for s in scheds):  # host ops only: nothing to compile
        return Lowered(scheds, prefixes, module_text.args, None, None)
    return Lowered(scheds, prefixes, module_text.args, module_text.source, module_text.cdef)


def load_lowered(lowered: Lowered, threads: int) -> NativeBuild:
    """The module of ``lowered`` (from the disk cache, else compiled) and an executable per
    program.

    Raises:
        CompilerNotFound, CompileError, LoadError: from the runtime (no compiler, it failed, ...).
    """
    scheds, prefixes, args = lowered.schedules, lowered.prefixes, lowered.args
    if lowered.source is None:
        return NativeBuild([Executable(s, None, p, args) for s, p in zip(scheds, prefixes)],
                           None, schedules=scheds)
    module = get_or_build(lowered.source, lowered.cdef, threads)
    set_threads = module.functions.get("gg_set_num_threads")  # present when a loop is parallel
    if set_threads is not None:
        set_threads(threads)
    from .blas import install  # noqa: PLC0415  (this function is all that needs it)
    install(module)  # large matmuls call numpy's BLAS (see gradgen.runtime.blas)
    execs = [Executable(s, module, p, args) for s, p in zip(scheds, prefixes)]
    return NativeBuild(execs, lowered.source, module.cache_path, module.key, scheds)


__all__ = ["Executable", "NativeBuild", "LoweringError", "Lowered", "build_programs",
           "lower_programs", "load_lowered"]
