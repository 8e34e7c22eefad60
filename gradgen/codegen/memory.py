"""The memory planner: temporaries whose lifetimes do not overlap share workspace slots.

A schedule's *temporaries* are the buffers its steps write that do not leave the
call: not program inputs, not constants, not program outputs (those the caller
keeps, so they get fresh memory). Each temporary lives from the step that writes
it to the last step that reads it. Walking the steps in order, a temporary takes
a slot whose previous occupant's last reader came strictly before its writer --
so within one step, the buffers it reads and the buffers it writes are always in
different slots, and kernels never receive aliasing ``restrict`` pointers. Among
the free slots the smallest one big enough is taken; if none is, the largest free
one grows; only when no slot is free does a new one open.

The executor allocates the slots once per specialization (one block:
``slot_offsets`` into ``workspace_bytes``, every slot 64-byte aligned) and reuses
them across calls. A host op's result may be copied into its slot or kept as the
array numpy returned; either is correct.
"""
from __future__ import annotations

from .steps import Buffer, Kernel, Schedule, View

ALIGN = 64  # bytes: a cache line, and AVX-512's natural alignment


def _writes(step) -> list[Buffer]:
    return list(step.stores.values()) if isinstance(step, Kernel) else [step.output]


def _reads(step) -> list[Buffer]:
    views = step.loads.values() if isinstance(step, Kernel) else \
        [v for v in step.inputs if isinstance(v, View)]
    return [v.buffer for v in views]


def nbytes(buf: Buffer) -> int:
    """The byte size of the value ``buf`` holds."""
    aval = buf.var.aval
    return aval.size * aval.dtype.itemsize


def lifetimes(sched: Schedule) -> dict[Buffer, tuple[int, int]]:
    """Each temporary's (writing step, last reading step) positions in ``sched.steps``."""
    leaving = {o.buffer for o in sched.outputs if isinstance(o, View)}
    life: dict[Buffer, list[int]] = {}
    for pos, step in enumerate(sched.steps):
        for b in _reads(step):
            if b in life:
                life[b][1] = pos
        for b in _writes(step):
            if b.kind == "temp" and b not in leaving:
                life[b] = [pos, pos]
    return {b: (s, e) for b, (s, e) in life.items()}


def plan_memory(sched: Schedule) -> tuple[dict[Buffer, int], list[int]]:
    """Slots for ``sched``'s temporaries: a buffer -> slot map, and each slot's byte size."""
    slots: dict[Buffer, int] = {}
    sizes: list[int] = []
    free_after: list[int] = []  # per slot: the last step reading its current occupant
    for buf, (start, end) in sorted(lifetimes(sched).items(), key=lambda kv: kv[1][0]):
        need = _aligned(nbytes(buf))
        free = [s for s in range(len(sizes)) if free_after[s] < start]
        fits = [s for s in free if sizes[s] >= need]
        if fits:
            s = min(fits, key=lambda s: (sizes[s], s))
        elif free:
            s = max(free, key=lambda s: (sizes[s], -s))
            sizes[s] = need
        else:
            s = len(sizes)
            sizes.append(need)
            free_after.append(end)
        free_after[s] = end
        slots[buf] = s
    return slots, sizes


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def offsets(sizes: list[int]) -> list[int]:
    """Byte offsets of the slots in one workspace block (each slot ``ALIGN``-aligned)."""
    out, at = [], 0
    for n in sizes:
        out.append(at)
        at += _aligned(n)
    return out


__all__ = ["plan_memory", "lifetimes", "nbytes", "offsets", "ALIGN"]
