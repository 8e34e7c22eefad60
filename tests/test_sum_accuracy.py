"""float32 sums in compiled kernels against float64: never less accurate than numpy's float32 sum.

Each case sums adversarial data in one kernel form (a row-wise kernel's pass, a one-pass row
reduction, a column reduction, a chunked whole-array reduction; see gradgen/codegen/sums.py)
and measures the error in units of the float32 spacing at the exact (float64) sum, against
numpy's own float32 sum of the same data along the same axis.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import gradgen as gg
from conftest import needs_cc


def _offset(rng, shape):
    """A large mean with a small spread: every partial sum is large, the terms nearly equal."""
    return 1e4 + rng.standard_normal(shape) * 1e-2


def _alternating(rng, shape):
    """Alternating signs over six decades: the sum cancels almost all of its terms."""
    signs = np.where(np.arange(shape[-1]) % 2 == 0, 1.0, -1.0)
    return signs * 10.0 ** rng.uniform(-3, 3, shape)


def _tenth(rng, shape):
    return np.full(shape, 0.1)


def _spread(rng, shape):
    return rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)


# form -> (function of a tensor, numpy axis, marker the generated C must contain)
FORMS = {
    "row-wise": (lambda t: (t.sum(1), t - t.sum(1, keepdim=True)), 1, "acc0b[i1l]"),
    "rows": (lambda t: t.sum(1), 1, "acc0b[i1l]"),
    "columns": (lambda t: t.sum(0), 0, "i0b += 16"),
    "chunks": (lambda t: t.sum(), None, "_p[c]"),
}

# name -> (form, shape, data)
CASES = {
    "row-wise-offset": ("row-wise", (16, 1024), _offset),
    "row-wise-alternating-tail": ("row-wise", (16, 1003), _alternating),
    "row-wise-spread": ("row-wise", (8, 4099), _spread),
    "rows-offset-tail": ("rows", (16, 1029), _offset),
    "rows-alternating": ("rows", (16, 2048), _alternating),
    "rows-tenth": ("rows", (4, 100_003), _tenth),
    "columns-offset": ("columns", (1000, 64), _offset),
    "columns-alternating": ("columns", (999, 256), lambda r, s: _alternating(r, s[::-1]).T),
    "columns-tenth": ("columns", (4099, 8), _tenth),
    "chunks-tenth-1e7": ("chunks", (10_000_000,), _tenth),
    "chunks-offset": ("chunks", (300_007,), _offset),
    "chunks-spread": ("chunks", (65_541,), _spread),
}


def _ulps(got, exact) -> np.ndarray:
    """|got - exact| in units of the float32 spacing at ``exact``."""
    exact = np.asarray(exact, np.float64)
    spacing = np.spacing(np.abs(exact).astype(np.float32))
    return np.abs(np.asarray(got, np.float64) - exact) / spacing


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def _first(out):
    return (out[0] if isinstance(out, tuple) else out).numpy()


@needs_cc
@pytest.mark.parametrize("name", list(CASES))
def test_float32_sum_is_no_worse_than_numpy(name):
    form, shape, data = CASES[name]
    fn, axis, marker = FORMS[form]
    x = data(np.random.default_rng(len(name)), shape).astype(np.float32)
    compiled = gg.compile(fn, fullgraph=True)
    got = _first(compiled(gg.from_numpy(x)))
    assert marker in compiled.inspect()[0]["c_source"]  # the form the case is meant to test
    exact = x.astype(np.float64).sum(axis)
    ours, numpy_err = _ulps(got, exact), _ulps(x.sum(axis), exact)
    # On average no worse than numpy; at worst within rounding luck of numpy's worst case
    # (a correctly rounded result is off by up to 0.5 ulp; numpy's may be luckier).
    assert _rms(ours) <= _rms(numpy_err) + 0.05, (_rms(ours), _rms(numpy_err))
    assert ours.max() <= 1.5 * max(numpy_err.max(), 0.5), (ours.max(), numpy_err.max())


SPECIALS = {
    "inf": lambda x: x.__setitem__((..., 5), np.inf),
    "inf-minus-inf": lambda x: (x.__setitem__((..., 5), np.inf),
                                x.__setitem__((..., 900), -np.inf)),
    "nan-in-tail": lambda x: x.__setitem__((..., -2), np.nan),
    "all-negative-zero": lambda x: x.__setitem__(..., -0.0),
}


@needs_cc
@pytest.mark.parametrize("form", ["row-wise", "rows", "chunks"])
@pytest.mark.parametrize("special", list(SPECIALS))
def test_special_values_match_eager(form, special):
    """inf, NaN and -0.0 give what eager (numpy) gives, in the lanes and past them."""
    fn, _, _ = FORMS[form]
    x = np.random.default_rng(0).standard_normal((4, 1003) if form != "chunks" else (40_003,))
    x = x.astype(np.float32)
    SPECIALS[special](x)
    with np.errstate(all="ignore"):
        want = _first(fn(gg.from_numpy(x)))
        got = _first(gg.compile(fn, fullgraph=True)(gg.from_numpy(x)))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@needs_cc
@pytest.mark.parametrize("shape,axis", [((8, 1003), 1), ((8, 1003), None), ((40_011,), None)])
@pytest.mark.parametrize("nan", [False, True])
def test_sum_beside_max_and_product_matches_eager(shape, axis, nan):
    """A float sum in lanes sharing its loop with a max (NaN flag) and a product, and a
    consumer of the sum (a row-wise pass), past the last whole group of lanes too."""
    def fn(t):
        s = t.sum(axis) if axis is not None else t.sum()
        m = t.amax(axis) if axis is not None else t.amax()
        p = (t * 0.001 + 1.0).prod(axis) if axis is not None else (t * 1e-5 + 1.0).prod()
        return s, m, p, t - (t.sum(axis, keepdim=True) if axis is not None else t.sum())
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    if nan:
        x[..., -3] = np.nan
    with np.errstate(all="ignore"):
        want = [w.numpy() for w in fn(gg.from_numpy(x))]
        got = [g.numpy() for g in gg.compile(fn, fullgraph=True)(gg.from_numpy(x))]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-3)


@needs_cc
@pytest.mark.parametrize("fn,shape,vectorized", [
    (lambda t: t.sum(), (65_541,), False),   # chunks: the tail's length is known at run time
    (lambda t: t.sum(1), (16, 1003), True),  # rows of 1003: a tail of 11, a constant
], ids=["chunk-tail", "row-tail"])
def test_only_a_tail_of_constant_length_is_vectorized(fn, shape, vectorized):
    """A lanes loop's tail carries `omp simd` only when its length is a constant: a chunk's
    tail of run-time length (under 16 elements) compiles faster as a plain loop."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    compiled = gg.compile(fn, fullgraph=True)
    np.testing.assert_allclose(_first(compiled(gg.from_numpy(x))), fn(x), rtol=1e-5)
    source = compiled.inspect()[0]["c_source"]
    tails = re.findall(r"(#pragma omp simd[^\n]*\n)?[ \t]*for \(int64_t (\w+) = \2m;", source)
    assert tails and all(bool(simd) == vectorized for simd, _ in tails), tails
