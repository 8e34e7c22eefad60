"""Abstract tracing: record a function's program without computing its values.

``gradgen.compile`` traces a function on its first call for each signature, and then runs
the compiled program to get the call's result -- the values the trace computes are thrown
away. An *abstract* trace (``trace(fn, *args, abstract=True)``) skips them: while it runs,
a primitive's output is an uninitialised :class:`~gradgen.autograd.record.NoValues` array
with the type the primitive's shape rule gives, so tracing a function over a million floats
costs what tracing it over four does. View primitives (transpose, reshape, slices,
broadcasts, detach) still run: they cost nothing and keep numpy's aliasing and strides,
which the front end reads (``is_contiguous``, views sharing storage).

Nothing may be decided on values that are not there. The abstract trace stops (and the
caller traces again on the real data, see :func:`gradgen.ir.trace.trace`) when:

- the front end reads values of such data (``record.values``: index checks of
  ``index_select``/``take``, a 0-d boolean index, ``allclose``), or the tracer would make
  a constant of it;
- an in-place write would go into memory that holds values (a captured tensor, a view of
  an input, a tensor made by a factory inside the function): the garbage must not reach it;
- a shape rule refuses its operands (eager's own error comes from the real trace), or any
  other exception escapes the function;
- anything :func:`~gradgen.autograd.record.untraceable` already refuses (``.item()``, ...).

A tensor of the abstract trace that outlives it other than as a result (appended to a
global list, kept by a hook) is an *escape*: the function is then traced again on the real
data, and the escaped tensor takes on the state of its real twin (:class:`Escapes`).
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from ..autograd.record import NoValues
from ..ops.linalg import matmul
from ..ops.registry import Primitive, aval_of


def _c_ordered(a: np.ndarray) -> bool:
    """Whether numpy lays out a result computed from ``a`` in C order: its strides fall
    along its axes, axes of length 1 and broadcast (zero-stride) axes aside."""
    if a.flags.c_contiguous:
        return True
    last = None
    for n, s in zip(a.shape, a.strides):
        if n == 1 or s == 0:
            continue
        s = abs(s)
        if last is not None and s >= last:
            return False
        last = s
    return True


class AbstractOutputs:
    """The ``record.abstract`` hook of one abstract trace: output arrays without values.

    ``stop(reason)`` stops the trace (it raises).
    """

    def __init__(self, stop: Any) -> None:
        self.thread = threading.get_ident()
        self.stop = stop

    def __call__(self, prim: Primitive, datas: list, params: dict) -> np.ndarray:
        if threading.get_ident() != self.thread:  # another thread's eager work: real values
            out = prim.impl(*datas, **params)
            return out if type(out) is np.ndarray else np.asarray(out)
        if prim.is_view:  # a view of real data holds real values; of NoValues data, none
            return np.asanyarray(prim.impl(*datas, **params))
        try:
            aval = prim.abstract_eval(*(aval_of(d) for d in datas), **params)
        except (TypeError, ValueError) as err:
            self.stop(f"{prim.name}: the shape rule refuses the operands ({err}); eager says why")
        if prim is matmul or all(_c_ordered(d) for d in datas if d.ndim > 1):
            return np.empty(aval.shape, aval.dtype.np).view(NoValues)
        return self._laid_out(prim, datas, params)

    def _laid_out(self, prim: Primitive, datas: list, params: dict) -> np.ndarray:
        """An operand is permuted (a transpose): numpy picks the result's strides from the
        operands', so let it, on whatever the operands hold."""
        try:
            with np.errstate(all="ignore"):
                return np.asanyarray(prim.impl(*datas, **params)).view(NoValues)
        except Exception as err:  # e.g. an index check on garbage indices
            self.stop(f"{prim.name} on permuted operands: {type(err).__name__}")
            raise  # (stop raises)


# What a tensor is, slot by slot: an escaped tensor takes on its real twin's whole state.
_STATE = ("_data", "_requires_grad", "_grad_fn", "_grad", "_version", "_base",
          "_view_op", "_accumulator", "_retains_grad")


class Escapes:
    """Tensors of an abstract trace that outlived it, given their values by a real trace.

    Tensors are numbered in the order the trace makes them. A real trace of the same function
    makes the same tensors in the same order -- the abstract one decided nothing on values --
    so tensor ``k`` of the real trace is what escaped tensor ``k`` stands for: once that trace
    ends, the escaped tensor takes on its state (values, autograd history, version counter).
    One the real trace did not reach (it stopped earlier) gets NaN, never silent garbage.
    """

    def __init__(self, escaped: dict[int, Any]) -> None:
        self.escaped = escaped
        self.real: dict[int, Any] = {}

    @staticmethod
    def of(made: list[tuple[int, weakref.ref]]) -> "Escapes | None":
        """The escapes among ``made`` (number, weak reference) once the trace let go, if any."""
        escaped = {}
        for k, ref in made:
            t = ref()
            if t is not None and isinstance(t._data, NoValues):
                escaped[k] = t
        return Escapes(escaped) if escaped else None

    def seen(self, k: int, t: Any) -> None:
        if k in self.escaped:
            self.real[k] = t

    def fill(self) -> None:
        for k, t in self.escaped.items():
            real = self.real.get(k)
            if real is not None and real._data.shape == t._data.shape:
                for name in _STATE:
                    if hasattr(real, name):
                        setattr(t, name, getattr(real, name))
            else:
                kind = t._data.dtype.kind
                t._data = np.full(t._data.shape, np.nan if kind in "fc" else 0, t._data.dtype)


def is_abstract(data: Any) -> bool:
    """Whether ``data`` (an array) was made by an abstract trace and holds no values."""
    return isinstance(data, NoValues)


__all__ = ["AbstractOutputs", "Escapes", "is_abstract"]
