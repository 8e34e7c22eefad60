"""erf: the vectorized Cody implementation against math.erf (glibc), ulp by ulp."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gradgen as gg
from gradgen.ops import erf as E
from gradgen.ops.erf import erf_numpy


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between same-dtype arrays (NaN == NaN)."""
    ints = {np.dtype(np.float64): np.int64, np.dtype(np.float32): np.int32}[a.dtype]
    ia, ib = a.view(ints).astype(np.int64), b.view(ints).astype(np.int64)
    # Map the sign-magnitude bit patterns onto a monotone integer line.
    ia = np.where(ia < 0, np.iinfo(ints).min - ia, ia)
    ib = np.where(ib < 0, np.iinfo(ints).min - ib, ib)
    d = np.abs(ia - ib)
    return np.where(np.isnan(a) & np.isnan(b), 0, d)


def _reference(x: np.ndarray) -> np.ndarray:
    return np.array([math.erf(v) for v in x.astype(np.float64).tolist()]).astype(x.dtype)


def _sweep() -> np.ndarray:
    rng = np.random.default_rng(0)
    tiny = np.geomspace(5e-324, 1e-8, 20_000)
    mid = np.geomspace(1e-8, 7.0, 100_000)
    return np.concatenate([
        np.linspace(-7.0, 7.0, 400_001), rng.uniform(-6.0, 6.0, 100_000), tiny, -tiny, mid, -mid,
        # Near the interval boundaries and where erf rounds to 1.
        np.linspace(0.46, 0.54, 20_001), np.linspace(3.9, 6.1, 20_001), -np.linspace(0.46, 0.54, 2001),
        [1e10, 1e300, -1e300, np.finfo(np.float64).max, 5.9, 6.0, 6.0000001, 27.0]])


@pytest.fixture(scope="module")
def sweep() -> tuple[np.ndarray, np.ndarray]:
    x = _sweep()
    return x, _reference(x)


def test_float64_within_two_ulp(sweep):
    x, ref = sweep
    assert x.size > E._SCALAR_LOOP_MAX  # the vectorized path
    u = _ulps(erf_numpy(x), ref)
    assert u.max() <= 2, (x[u.argmax()], u.max())
    assert (u == 0).mean() > 0.7


def test_float32_matches_rounded_reference(sweep):
    x, _ = sweep
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    got = erf_numpy(x32)
    assert got.dtype == np.float32
    assert _ulps(got, _reference(x32)).max() <= 1


@pytest.mark.parametrize("n", [1, 4, E._SCALAR_LOOP_MAX, E._SCALAR_LOOP_MAX + 1, 3 * E._BLOCK + 5])
def test_both_paths_and_blocks(n):
    x = np.random.default_rng(n).standard_normal(n) * 3
    assert _ulps(erf_numpy(x), _reference(x)).max() <= 2


SPECIALS = [(0.0, 0.0), (-0.0, -0.0), (np.inf, 1.0), (-np.inf, -1.0), (5e-324, 5e-324),
            (-5e-324, -5e-324), (1e300, 1.0), (-40.0, -1.0)]


@pytest.mark.parametrize("pad", [0, 1000])  # scalar loop and vectorized path
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_special_values(pad, dt):
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        xs = np.array([v for v, _ in SPECIALS] + [np.nan] + [0.25] * pad, dt)
    got = erf_numpy(xs)
    for i, (v, want) in enumerate(SPECIALS):
        want = dt(want)
        assert got[i] == want and np.signbit(got[i]) == np.signbit(want), (v, got[i])
    assert np.isnan(got[len(SPECIALS)])


def test_no_floating_point_warnings():
    x = np.array([np.inf, -np.inf, np.nan, 1e300, 5e-324] * 100)
    with np.errstate(all="raise"):
        erf_numpy(x)


def test_shapes_and_non_contiguous():
    a = np.linspace(-3, 3, 600).reshape(20, 30)
    for x in (a, a.T, a[::2, ::3], np.float64(0.3) * np.ones(()), np.empty((0, 3))):
        got = erf_numpy(x)
        assert got.shape == x.shape
        assert _ulps(got, _reference(x.ravel()).reshape(x.shape)).max() <= 2 if x.size else True


def test_tensor_erf_value_and_gradient():
    x = gg.tensor(np.linspace(-3, 3, 301), dtype=gg.float64, requires_grad=True)
    y = gg.erf(x)
    assert y.grad_fn.name() == "ErfBackward0"
    np.testing.assert_allclose(y.detach().numpy(), _reference(x.detach().numpy()), rtol=0, atol=1e-15)
    assert gg.autograd.gradcheck(gg.erf, (gg.tensor([-2.0, -0.3, 0.0, 0.4, 1.7], dtype=gg.float64,
                                                    requires_grad=True),))


def test_against_torch_float32():
    torch = pytest.importorskip("torch")
    x = np.linspace(-6, 6, 10_001).astype(np.float32)
    want = torch.erf(torch.from_numpy(x)).numpy()
    assert _ulps(erf_numpy(x), want).max() <= 2
