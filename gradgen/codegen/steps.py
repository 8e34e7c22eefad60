"""The kernel schedule's data model: buffers, strided views of them, kernels, host ops, and
the schedule holding them in run order (built by :mod:`gradgen.codegen.schedule`, its memory
planned by :mod:`gradgen.codegen.memory`, rendered by :mod:`gradgen.codegen.render`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.core import Eqn, Literal, Program, Var
from .layout import contiguous, numel, rows


@dataclass(eq=False)
class Buffer:
    """Storage for one value: a program input (``index``), a constant (``value``), a temporary,
    or a check kernel's status (two int64: first bad position, its index; kept per executable)."""

    var: Var
    kind: str  # "input" | "const" | "temp" | "status"
    index: int | None = None
    value: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class View:
    """A value read from ``buffer`` at element ``strides`` (0 = broadcast)."""

    buffer: Buffer
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    @property
    def is_whole(self) -> bool:
        """Whether the view is the buffer itself (same shape, row-major)."""
        return self.shape == self.buffer.var.aval.shape and self.strides == contiguous(self.shape)


def is_iota(view: View) -> bool:
    """Whether ``view`` reads an integer constant holding 0, 1, 2, ... in memory order (the
    one-hot lowering's positions along a row): its element at offset ``o`` is ``o``."""
    value = view.buffer.value if view.buffer.kind == "const" else None
    if value is None or value.dtype.kind not in "iu" or value.size < 2:
        return False
    return bool(np.array_equal(value.reshape(-1), np.arange(value.size)))


@dataclass(eq=False)
class ColumnSum:
    """A sum over the rows of a value of a row-wise kernel (``x.sum(0)`` where the kernel
    reduces along each row of ``x``: layer norm's weight gradient). The kernel adds the value
    over each block of ``block`` consecutive rows into one row of ``partial`` (shape
    ``[blocks, *row]``) while its passes run; a reduction kernel then sums those rows in order
    (the program's equation, now over ``partial``; ``Schedule.derived``). Each block is one
    iteration of the kernel's parallel loop, so the result does not depend on the thread count.
    ``partial`` is float64 (the block's own sum is in the operand's type).
    """

    eqn: Eqn       # the program's reduce_sum over the kernel's kept axes
    partial: Var
    block: int


@dataclass(eq=False)
class Kernel:
    """One fused loop nest over ``domain``; ``red_axes`` set when it reduces.

    A *matmul kernel* (``gemm`` set: the ``matmul`` equation, also ``eqns[0]``) computes the
    product of its two operand loads over ``domain`` (the product's shape), then runs the
    elementwise equations after it (its *epilogue*, ``eqns[1:]``) on each block of rows; see
    :mod:`gradgen.codegen.gemm`. The product is stored only when ``stores`` holds it.

    A *check kernel* (``check`` set: a ``check_index`` equation, also ``eqns[0]``) tests each
    index of its one load and stores the checked indices; it reports the first index out of
    range in ``status`` (see :mod:`gradgen.codegen.checks`), which the executable reads after
    the kernel runs.
    """

    domain: tuple[int, ...]
    red_axes: tuple[int, ...] | None = None
    eqns: list[Eqn] = field(default_factory=list)
    loads: dict[Var, View] = field(default_factory=dict)
    stores: dict[Var, Buffer] = field(default_factory=dict)
    consts: dict[Var, Literal] = field(default_factory=dict)  # splat operands -> their scalar
    name: str = ""
    # Per-row values (reduction results, equations over them, their broadcasts back over
    # the domain): C scalars per row, see gradgen.codegen.layout.
    row_values: set[Var] = field(default_factory=set)
    gemm: Eqn | None = None
    check: Eqn | None = None
    status: Buffer | None = None
    column_sums: list[ColumnSum] = field(default_factory=list)

    def is_row_shaped(self, v: Var) -> bool:
        """Whether per-row value ``v`` has one element per row (else: a broadcast of one)."""
        return numel(v.aval.shape) == rows(self.domain, self.red_axes)


@dataclass(eq=False)
class HostOp:
    """One equation run by numpy between kernels: operands are views or rank-0 literals."""

    eqn: Eqn
    inputs: list
    output: Buffer
    name: str = ""


Step = Kernel | HostOp


@dataclass
class Schedule:
    """Kernels and host ops in run order, with where each program output lives."""

    program: Program
    steps: list[Step]
    inputs: list[Buffer]
    outputs: list  # View or Literal per program output
    numbers: dict[Var, int]  # printed number of every value: %12 <-> v12 / p12
    order: dict[int, int]    # id(eqn) -> position in the program (synthetic copies last)
    # The memory plan (gradgen.codegen.memory): temporaries -> workspace slot, slot bytes.
    # Buffers absent from ``slots`` (inputs, constants, outputs) are not workspace.
    slots: dict[Buffer, int] = field(default_factory=dict)
    slot_sizes: list[int] = field(default_factory=list)
    # id(eqn) -> (the program's equation it computes a part of, how): a column sum's total
    derived: dict[int, tuple[Eqn, str]] = field(default_factory=dict)

    @property
    def kernels(self) -> list[Kernel]:
        return [s for s in self.steps if isinstance(s, Kernel)]

    @property
    def slot_offsets(self) -> list[int]:
        """Byte offset of each slot in one workspace block (64-byte aligned)."""
        from .memory import offsets  # noqa: PLC0415  (memory imports this module)
        return offsets(self.slot_sizes)

    @property
    def workspace_bytes(self) -> int:
        """Bytes of the one workspace block holding every slot."""
        return sum(self.slot_sizes)


__all__ = ["Buffer", "View", "ColumnSum", "Kernel", "HostOp", "Step", "Schedule", "is_iota"]
