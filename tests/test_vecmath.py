"""gradgen's own float32 exp and tanh in the generated C (templates/vecmath.c.jinja).

Checked through gradgen.compile on bit patterns spread over the whole float32 range plus the
edges (overflow and underflow thresholds, subnormals, signed zeros, infinities, NaN): the error
against numpy's float64 value is within the documented bound (bench/vecmath_ulp.py, every
float32 input: exp 1.06 ulp, tanh 2.42 ulp; here 1.1 and 2.5), the class of each result (NaN,
infinity, zero and its sign) is the correctly rounded value's, and the results match eager (numpy's float32
functions) at the suite's tolerance. Sigmoid (1 / (1 + exp(-x))) matches eager too.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

import gradgen as gg
from conftest import needs_cc

pytestmark = needs_cc

F32 = np.float32
_EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1.1754942e-38, -1.1754942e-38,
          1.17549435e-38, 3.4028235e38, -3.4028235e38, 88.72283, 88.72284, 88.7229, 89.0, 89.5,
          -87.33654, -87.3366, -103.97207, -103.9721, -103.98, -104.0, -150.0, 9.0, 9.01, 9.02,
          9.5, 10.0, -9.01, 0.625, -0.625, 0.5493061, 1e-30, -1e-30, 0.6931472, -0.6931472]


def _inputs() -> np.ndarray:
    bits = np.arange(0, 2**32, 16411, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([bits.view(F32), np.array(_EDGES, F32)])


def _ulp_error(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in ulps of float32 at ``exact`` (finite, nonzero values)."""
    e = np.floor(np.log2(np.abs(exact)))
    ulp = np.maximum(2.0 ** (e - 23), 2.0 ** -149)
    return np.abs(got.astype(np.float64) - exact) / ulp


def _classes(a: np.ndarray) -> np.ndarray:
    """NaN, +-inf, +-0 or finite nonzero, per element."""
    return np.select([np.isnan(a), np.isposinf(a), np.isneginf(a), (a == 0) & np.signbit(a),
                      a == 0], [0, 1, 2, 3, 4], 5)


CASES: list[tuple[str, Callable, Callable, float]] = [
    ("exp", lambda t: t.exp(), np.exp, 1.1),
    ("tanh", lambda t: t.tanh(), np.tanh, 2.5),
]


@pytest.mark.parametrize("name,fn,reference,bound", CASES, ids=[c[0] for c in CASES])
def test_error_bound_and_classes(name: str, fn: Callable, reference: Callable, bound: float) -> None:
    x = _inputs()
    f = gg.compile(fn, fullgraph=True)
    got = f(gg.from_numpy(x)).numpy()
    assert f"gg_{name}f(" in f.inspect()[0]["c_source"]
    with np.errstate(all="ignore"):
        exact = reference(x.astype(np.float64))
        rounded = exact.astype(F32)
    np.testing.assert_array_equal(_classes(got), _classes(rounded))
    finite = np.isfinite(exact) & (exact != 0) & np.isfinite(got)
    err = _ulp_error(got[finite], exact[finite])
    worst = int(np.argmax(err))
    assert err[worst] <= bound, f"{name}({x[finite][worst]!r}): {err[worst]:.2f} ulp"


@pytest.mark.parametrize("name,fn", [("exp", lambda t: t.exp()), ("tanh", lambda t: t.tanh()),
                                     ("sigmoid", lambda t: t.sigmoid())])
def test_matches_eager(name: str, fn: Callable) -> None:
    x = gg.from_numpy(_inputs())
    with np.errstate(all="ignore"):
        want = fn(x).numpy()
    got = gg.compile(fn, fullgraph=True)(x).numpy()
    np.testing.assert_array_equal(_classes(got), _classes(want))
    normal = np.isfinite(want) & (np.abs(want) >= np.finfo(F32).tiny)
    np.testing.assert_allclose(got[normal], want[normal], rtol=1e-5, atol=0)
    tiny = np.isfinite(want) & ~normal  # subnormal results: a few of their spacings apart
    assert np.all(np.abs(got[tiny].astype(np.float64) - want[tiny]) <= 4 * 2.0 ** -149)
