"""The reference interpreter: runs any IR program with the registry's numpy implementations.

It is the oracle for every pass, for gradient programs and for the C backend,
so it checks as it goes: inputs must match the program's input types, and each
equation's result must have exactly the type its output variable declares.

>>> from gradgen.dtypes import float64
>>> from gradgen.ir.builder import Builder
>>> b = Builder(); x = b.input((2,), float64)
>>> run(b.build([b.add("mul", x, 3.0)]), np.array([1.0, 2.0]))
[array([3., 6.])]
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .core import Program, Var
from .errors import IRError


def _input_array(v: Var, x: Any, i: int) -> np.ndarray:
    arr = x._data if hasattr(x, "_data") and isinstance(x._data, np.ndarray) else np.asarray(x)
    if arr.shape != v.aval.shape:
        raise IRError(f"run: input {i} ({v!r}) expects shape {list(v.aval.shape)}, "
                      f"got {list(arr.shape)}")
    if arr.dtype != v.aval.dtype.np:
        if np.ndim(x) == 0 and not isinstance(x, np.ndarray):
            return np.asarray(x, v.aval.dtype.np)  # a Python scalar for a 0-d input
        raise IRError(f"run: input {i} ({v!r}) expects dtype {v.aval.dtype.name}, got {arr.dtype}")
    return arr


def run(program: Program, *inputs: Any) -> list[np.ndarray]:
    """Evaluate ``program`` on ``inputs`` (arrays, tensors or scalars); returns output arrays."""
    if len(inputs) != len(program.inputs):
        raise IRError(f"run: program takes {len(program.inputs)} inputs, got {len(inputs)}")
    env: dict[Var, np.ndarray] = {}
    for i, (v, x) in enumerate(zip(program.inputs, inputs)):
        env[v] = _input_array(v, x, i)
    for n, e in enumerate(program.eqns):
        args = [env[a] if type(a) is Var else a.value for a in e.inputs]
        out = e.prim.impl(*args, **e.params)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        aval = e.out.aval
        if out.shape != aval.shape or out.dtype != aval.dtype.np:
            raise IRError(f"run: equation {n} ({e.prim.name}) produced {out.dtype}{list(out.shape)}, "
                          f"but its output is typed {aval}")
        env[e.out] = out
    return [env[a] if type(a) is Var else a.value for a in program.outputs]


__all__ = ["run"]
