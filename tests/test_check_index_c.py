"""check_index in C (gradgen.codegen.checks): a compiled call raises eager's exception and message
for the first out-of-range index in C order -- on the first call (abstract trace) and on later
ones, on 1 and 2 threads, below and above the parallel threshold -- and works again after."""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.codegen import HostOp, build_schedule
from gradgen.codegen.layout import PARALLEL_MIN_ARITHMETIC
from gradgen.ir.trace import trace
from gradgen.ops.indexing import check_index, take_along
from gradgen.passes import optimize

from conftest import needs_cc

C = 5                                   # classes / axis length
SMALL, LARGE = 11, PARALLEL_MIN_ARITHMETIC + 4097  # LARGE: the check runs in parallel pieces


def _ce(z, t):
    return F.cross_entropy(z, t)


def _nll(z, t):
    return F.nll_loss(F.log_softmax(z, 1), t)


def _gather(z, t):
    return gg.gather(z, 1, t.reshape(-1, 1)).sum()


def _take_along(z, t):  # a one-per-row pick: the compiler adds check_index[mode='wrap']
    return take_along(z, t.reshape(-1, 1), axis=1).sum()


def _wrap(z, t):  # the checked, wrapped indices themselves are the output
    return check_index(t, size=C, axis=0, mode="wrap")


def _gather_wide(z, t):  # three indices per row: the gather itself stays a host op
    return gg.gather(z, 1, t.reshape(-1, 3)).sum()


def _pair(z, t):  # x[arange(n), t]: each index tensor checked within its own dim
    return z[gg.arange(z.shape[0]), t].sum()


# (function, bad indices planted at fractions of the index array: (where, value)).
CASES = {
    "cross_entropy target == classes": (_ce, [(0.2, -100), (0.45, C), (0.8, -1)]),
    "cross_entropy negative target": (_ce, [(0.3, -2), (0.31, 9), (0.9, C)]),
    "nll_loss": (_nll, [(0.6, C + 3), (0.95, -7)]),
    "gather negative": (_gather, [(0.52, -1), (0.9, C)]),
    "gather == size": (_gather, [(0.05, C), (0.5, -100)]),
    "take_along wrap": (_take_along, [(0.35, -C - 1), (0.4, C), (0.7, -C - 9)]),
    "check_index wrap": (_wrap, [(0.65, C + 1), (0.99, -C - 1)]),
    "x[arange(n), t]": (_pair, [(0.25, C), (0.5, -C - 1), (0.75, C + 5)]),
}


def _args(n: int, bad: list | None, seed: int = 0) -> tuple:
    """Logits [n, C] and n indices in [0, C) with ``bad`` planted; with ``bad`` None, in
    [-C, C) (:func:`_good` makes them valid for each function)."""
    rng = np.random.default_rng(seed)
    z = gg.tensor(rng.standard_normal((n, C)).astype(np.float32))
    t = rng.integers(-C if bad is None else 0, C, n)
    for where, value in bad or []:
        t[min(int(where * n), n - 1)] = value
    return z, gg.tensor(t)


def _good(fn, n: int) -> tuple:
    z, t = _args(n, None, seed=1)
    if fn in (_ce, _nll):
        t = gg.tensor(np.where(t.numpy() < 0, -100, t.numpy()))
    elif fn in (_gather, _gather_wide):
        t = gg.tensor(np.abs(t.numpy()) % C)
    return z, t


def _outcome(fn, *args):
    try:
        out = fn(*args)
    except Exception as exc:  # noqa: BLE001  (the exception is what is compared)
        return type(exc), str(exc)
    return np.asarray(out.numpy())


def _same(got, want) -> None:
    if isinstance(want, tuple):
        assert got == want
    else:
        assert isinstance(got, np.ndarray), got
        np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    old = gg.get_num_threads()
    gg.set_num_threads(request.param)
    yield request.param
    gg.set_num_threads(old)


# One check per mode above the parallel threshold (each size and thread count is a build).
SIZES = [(case, SMALL) for case in CASES] + \
    [(case, LARGE) for case in ("cross_entropy target == classes", "gather negative",
                                "take_along wrap")]


@needs_cc
@pytest.mark.parametrize("case,n", SIZES, ids=[f"{c}-{'large' if n == LARGE else 'small'}"
                                               for c, n in SIZES])
def test_compiled_raises_as_eager(case, n, threads) -> None:
    fn, bad = CASES[case]
    cf = gg.compile(fn)
    bad_args = _args(n, bad)
    want = _outcome(fn, *bad_args)
    assert isinstance(want, tuple), "the planted indices must make eager raise"
    assert _outcome(cf, *bad_args) == want                    # first call: trace, build, run
    assert _outcome(cf, *bad_args) == want                    # compiled call
    good = _good(fn, n)
    _same(_outcome(cf, *good), _outcome(fn, *good))           # a good call after a raise
    later = _args(n, bad[1:], seed=2)
    _same(_outcome(cf, *later), _outcome(fn, *later))         # and another bad one
    (report,) = cf.inspect()
    assert report["fallback_reason"] is None
    src = report["c_source"]
    assert "index check over" in src and "check_index[axis=" in src
    assert ("_part(void" in src.split("index check over")[1].split("*/\n\n/*")[0]) == \
        (n == LARGE)  # the check kernel itself runs in parallel pieces above the threshold


@needs_cc
def test_gather_read_by_a_host_op(threads) -> None:
    """The check raises before the host op reading its (zeroed) indices runs."""
    z = gg.tensor(np.ones((4, C), np.float32))
    t = gg.tensor(np.array([0, 1, 2, 4, -1, 7, 0, 0, 1, 2, 3, 4]))
    t2 = gg.tensor(np.array([0, 1, 2, 4, 1, 7, 0, 0, 1, 2, 3, 4]))
    cf = gg.compile(_gather_wide)
    for args in ((z, t), (z, t2), (z, t), (z, gg.tensor(np.arange(12) % C))):
        _same(_outcome(cf, *args), _outcome(_gather_wide, *args))


@needs_cc
def test_value_and_grad_raises_as_eager(threads) -> None:
    vg = gg.compile(gg.value_and_grad(_ce))
    z, t = _args(SMALL, [(0.5, C)])
    want = _outcome(lambda *a: gg.value_and_grad(_ce)(*a)[0], z, t)
    for _ in range(2):
        with pytest.raises(want[0]) as got:
            vg(z, t)
        assert str(got.value) == want[1]
    z, t = _good(_ce, SMALL)
    value, grad = vg(z, t)
    want_value, want_grad = gg.value_and_grad(_ce)(z, t)
    np.testing.assert_allclose(value.numpy(), want_value.numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad.numpy(), want_grad.numpy(), rtol=1e-5, atol=1e-7)


def _mlp(x, w1, w2, t):
    return F.cross_entropy(F.relu(x @ w1) @ w2, t)


def test_cross_entropy_schedules_no_host_op() -> None:
    sched = build_schedule(optimize(trace(_ce, *_good(_ce, SMALL))))
    assert not [s for s in sched.steps if isinstance(s, HostOp)]
    (k,) = [k for k in sched.kernels if k.check is not None]
    assert k.status.kind == "status" and k.status not in sched.slots  # never shared memory


@needs_cc
def test_mlp_step_is_one_generated_call() -> None:
    """The MLP's value_and_grad program is all kernels, so it runs the generated call."""
    rng = np.random.default_rng(3)
    x = gg.tensor(rng.standard_normal((16, 12)).astype(np.float32))
    w1 = gg.tensor(rng.standard_normal((12, 8)).astype(np.float32) * 0.3)
    w2 = gg.tensor(rng.standard_normal((8, C)).astype(np.float32) * 0.3)
    t = gg.tensor(rng.integers(0, C, 16))
    vg = gg.compile(gg.value_and_grad(_mlp, argnums=(1, 2)))
    vg(x, w1, w2, t)
    (entry,) = [e for _, _, e in vg._cache.entries.values()]
    (ex,) = entry.native.executables
    call = ex.callable()
    assert call is not ex and "if T" in call.source  # the status test is inline
    bad = gg.tensor(np.r_[t.numpy()[:-1], C])
    with pytest.raises(IndexError, match=f"^Target {C} is out of bounds.$"):
        vg(x, w1, w2, bad)
    np.testing.assert_allclose(vg(x, w1, w2, t)[0].numpy(), _mlp(x, w1, w2, t).numpy(),
                               rtol=1e-5)
