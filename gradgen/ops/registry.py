"""The primitive registry: each primitive declared once, with all its facets.

A :class:`Primitive` holds, side by side, everything gradgen knows about one
operation: its numpy implementation, its shape/dtype rule (over abstract
values), its reverse-mode rule written in gradgen's own primitives, which of its
values that rule needs saved, and room for the C lowering the compiler adds.

Conventions every primitive follows (they keep the rules free of special cases):
- Elementwise primitives take operands of one shape and dtype; an operand may be
  a rank-0 *constant* (a Python scalar or 0-d numpy array, never a tensor that
  needs a gradient), which broadcasts. The front end inserts ``broadcast_in_dim``
  and ``convert`` for everything else, so no VJP rule ever unbroadcasts.
- A VJP rule has the signature ``rule(g, ins, out, needs, **params)`` and returns
  one cotangent (or ``None``) per operand. ``ins`` holds the saved operands (or
  :class:`Aval` stand-ins carrying only shape and dtype when the primitive does
  not save them), ``out`` the saved output or ``None``, ``needs`` one bool per
  operand telling which cotangents are wanted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ..dtypes import dtype, from_numpy_dtype

Shape = tuple[int, ...]


class Aval(NamedTuple):
    """An abstract value: the static type of a tensor (shape and dtype)."""

    shape: Shape
    dtype: dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(map(str, self.shape))}]"


def aval_of(x: Any) -> Aval:
    """The Aval of a tensor, an ndarray, or an Aval."""
    if isinstance(x, Aval):
        return x
    return Aval(tuple(x.shape), x.dtype if isinstance(x.dtype, dtype) else from_numpy_dtype(x.dtype))


VjpRule = Callable[..., Sequence[Any]]


@dataclass(eq=False)
class Primitive:
    """One operation of the registry. Calling it applies it to tensors (see ``bind``)."""

    name: str
    impl: Callable[..., np.ndarray]
    shape_rule: Callable[..., Aval]
    vjp: VjpRule | None
    grad_name: str
    save_inputs: bool = False
    save_output: bool = False
    is_view: bool = False
    # With save_inputs: needs -> which operands to keep (the rest become Avals), so a
    # node keeps only what the wanted cotangents read. None keeps every operand.
    saved_for: Callable[[tuple[bool, ...]], tuple[bool, ...]] | None = None
    # Filled by the C backend: how this primitive lowers to C.
    c_lowering: Any = None
    doc: str = ""
    extra: dict = field(default_factory=dict)

    def __call__(self, *args: Any, **params: Any) -> Any:
        return _binder[0](self, args, params)

    def abstract_eval(self, *avals: Aval, **params: Any) -> Aval:
        """The output type for operand types ``avals`` (raises on ill-typed use)."""
        return self.shape_rule(*avals, **params)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}

# Set by gradgen.autograd.record at import: the function that applies a
# primitive to tensors (records autograd nodes and, while tracing, equations).
_binder: list[Callable[[Primitive, tuple, dict], Any]] = [lambda p, a, k: NotImplemented]


def register(prim: Primitive) -> Primitive:
    """Add ``prim`` to the registry; each name is declared exactly once."""
    if prim.name in PRIMITIVES:
        raise ValueError(f"primitive {prim.name!r} is already registered")
    PRIMITIVES[prim.name] = prim
    return prim


def defprim(name: str, impl: Callable[..., np.ndarray], shape_rule: Callable[..., Aval],
            vjp: VjpRule | None, grad_name: str, *, save_inputs: bool = False,
            save_output: bool = False, is_view: bool = False, doc: str = "",
            saved_for: Callable[[tuple[bool, ...]], tuple[bool, ...]] | None = None) -> Primitive:
    """Declare and register a primitive in one statement."""
    return register(Primitive(name, impl, shape_rule, vjp, grad_name, save_inputs=save_inputs,
                              save_output=save_output, is_view=is_view, doc=doc,
                              saved_for=saved_for))


def get(name: str) -> Primitive:
    """The registered primitive ``name``."""
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r} in the registry") from None
