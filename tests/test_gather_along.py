"""take_along / scatter_add_along / check_index, gather and the losses built on them, and their
compiled lowering (gradgen.codegen.onehot).

Oracles: numpy float64 for the primitives, PyTorch for gather (when installed), the IR
interpreter for the lowering (bit for bit), eager for compiled calls (values, gradients,
NaN/inf positions, signs of zeros and the exception raised for bad targets).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen import compile, value_and_grad
from gradgen.ad import partition, vjp
from gradgen.autograd.gradcheck import gradcheck, gradgradcheck
from gradgen.codegen import HostOp, Kernel, build_schedule
from gradgen.codegen import rowwise
from gradgen.codegen.steps import is_iota
from gradgen.codegen.onehot import lower_onehot
from gradgen.ir import run
from gradgen.ir.trace import trace
from gradgen.ops.indexing import check_index, scatter_add_along, take_along
from gradgen.ops.registry import Aval
from gradgen.passes import optimize

from test_compile_c import HAS_CC, Counter, _close, _rtol


def needs_cc(fn):
    """The ``cc`` marker, and a skip where there is no C compiler."""
    return pytest.mark.cc(pytest.mark.skipif(not HAS_CC, reason="no C compiler")(fn))


_ALONG = ("take_along", "scatter_add_along")


def _np_take_along(x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    corner = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(idx.shape))
    return np.take_along_axis(x[corner], idx, axis=axis)


def _np_scatter_along(u: np.ndarray, idx: np.ndarray, axis: int, shape: tuple) -> np.ndarray:
    out = np.zeros(shape, u.dtype)
    grid = list(np.ogrid[tuple(slice(0, k) for k in idx.shape)])
    grid[axis] = idx
    np.add.at(out, tuple(grid), u)
    return out


# ---------------------------------------------------------------- the primitives

# (operand shape, index, axis): duplicates, negatives, one index per row, a smaller index.
ALONG_CASES = [
    ((3, 4), [[0, 0], [3, 1], [-1, 2]], 1),
    ((3, 4), [[1], [-4], [3]], 1),
    ((3, 4), [[2, 0, 1, -1]], 0),
    ((2, 3, 4), [[[0, 2], [1, 1]]], 1),
    ((2, 3, 4), [[[3], [0], [1]], [[-1], [2], [2]]], 2),
    ((4,), [3, -2, 0], 0),
    ((3, 2), np.zeros((3, 0), int), 1),
]


@pytest.mark.parametrize("shape,idx,axis", ALONG_CASES)
def test_take_and_scatter_along_match_numpy(shape, idx, axis) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    i = np.array(idx, dtype=np.int64)
    got = take_along(gg.from_numpy(x), gg.from_numpy(i), axis=axis).numpy()
    np.testing.assert_array_equal(got, _np_take_along(x, i, axis))
    u = rng.standard_normal(i.shape)
    got = scatter_add_along(gg.from_numpy(u), gg.from_numpy(i), axis=axis, shape=shape).numpy()
    np.testing.assert_allclose(got, _np_scatter_along(u, i, axis, shape), rtol=1e-15, atol=1e-15)


def test_scatter_along_adds_to_zeros() -> None:
    """-0.0 added to zeros is +0.0 (the one-per-row store too); NaN and inf pass; int32 works."""
    u = np.array([[-0.0], [np.nan], [-np.inf]], np.float32)
    i = np.array([[1], [0], [2]], np.int32)
    got = scatter_add_along(gg.from_numpy(u), gg.from_numpy(i), axis=1, shape=(3, 3)).numpy()
    assert got.dtype == np.float32 and not np.signbit(got[0]).any()
    np.testing.assert_array_equal(got, [[0, 0, 0], [np.nan, 0, 0], [0, 0, -np.inf]])
    dup = scatter_add_along(gg.from_numpy(np.array([[-0.0, -0.0]])), gg.from_numpy(np.array([[1, 1]])),
                            axis=1, shape=(1, 2)).numpy()
    assert not np.signbit(dup).any()


@pytest.mark.parametrize("call,exc,match", [
    (lambda x, i: take_along(x, i + 4, axis=1), IndexError,
     "index 4 is out of bounds for dimension 1 with size 4"),
    (lambda x, i: take_along(x, i - 5, axis=1), IndexError,
     "index -5 is out of bounds for dimension 1 with size 4"),
    (lambda x, i: scatter_add_along(x[:, :1], i + 7, axis=1, shape=(3, 4)), IndexError,
     "index 7 is out of bounds for dimension 1 with size 4"),
    (lambda x, i: check_index(i - 1, size=4, axis=1, mode="gather"), RuntimeError,
     "index -1 is out of bounds for dimension 1 with size 4"),
    (lambda x, i: check_index(i + 4, size=4, axis=0, mode="target"), IndexError,
     "Target 4 is out of bounds."),
])
def test_along_errors(call, exc, match) -> None:
    x, i = gg.ones(3, 4), gg.tensor([[0], [1], [2]])
    with pytest.raises(exc, match=match):
        call(x, i)


F32, I64 = gg.float32, gg.int64


@pytest.mark.parametrize("prim,avals,params,match", [
    (take_along, [((3, 4), F32), ((3, 1), F32)], {"axis": 1}, "integer tensor"),
    (take_along, [((3, 4), F32), ((3,), I64)], {"axis": 1}, "rank"),
    (take_along, [((3, 4), F32), ((4, 1), I64)], {"axis": 1}, "no larger"),
    (take_along, [((3, 4), F32), ((3, 1), I64)], {"axis": 2}, "not an axis"),
    (scatter_add_along, [((3, 4), F32), ((3, 1), I64)], {"axis": 1, "shape": (3, 4)}, "one shape"),
    (check_index, [((3, 1), I64)], {"size": 4, "axis": 1, "mode": "clip"}, "mode"),
])
def test_along_shape_rules(prim, avals, params, match) -> None:
    with pytest.raises(TypeError, match=match):
        prim.abstract_eval(*(Aval(s, d) for s, d in avals), **params)


def test_check_index_wraps_only_in_wrap_mode() -> None:
    i = gg.tensor([-1, 0, 3])
    assert check_index(i, size=4, axis=0, mode="wrap").tolist() == [3, 0, 3]
    j = gg.tensor([0, 3])
    out = check_index(j, size=4, axis=0, mode="gather")
    assert out.tolist() == [0, 3] and not np.shares_memory(out.numpy(), j.numpy())


def test_gather_gradcheck_rank3_int32() -> None:
    x = gg.randn(2, 3, 4, dtype=gg.float64, requires_grad=True)
    i = gg.tensor([[[2, 0, 1, 1]], [[0, 0, 2, 1]]], dtype=gg.int32)
    assert gradcheck(lambda x: gg.gather(x, 1, i), (x,))
    assert gradgradcheck(lambda x: gg.gather(x, -2, i) ** 2, (x,))
    u = gg.randn(2, 1, 4, dtype=gg.float64, requires_grad=True)
    assert gradgradcheck(lambda u: scatter_add_along(u, i, axis=1, shape=(2, 3, 4)) ** 2, (u,))


def test_gather_against_pytorch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 2))
    for dim, idx in ((1, [[[0, 1], [3, 3]], [[2, 0], [1, 1]]]), (-1, [[[1], [0]]]), (0, [[[2, 0]]])):
        for itype in (np.int64, np.int32):
            i = np.array(idx, itype)
            g, t = gg.from_numpy(x.copy()).requires_grad_(), torch.tensor(x).requires_grad_()
            go, to = gg.gather(g, dim, gg.from_numpy(i)), torch.gather(t, dim, torch.tensor(i))
            np.testing.assert_array_equal(go.detach().numpy(), to.detach().numpy())
            assert type(go.grad_fn).__name__ == type(to.grad_fn).__name__ == "GatherBackward0"
            w = rng.standard_normal(i.shape)
            (go * gg.from_numpy(w)).sum().backward()
            (to * torch.tensor(w)).sum().backward()
            np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-15)
    for bad in ([[[4]]], [[[-1]]]):
        with pytest.raises(RuntimeError) as mine:
            gg.gather(gg.from_numpy(x), 1, gg.tensor(bad))
        with pytest.raises(RuntimeError) as theirs:
            torch.gather(torch.tensor(x), 1, torch.tensor(bad))
        assert str(mine.value) == str(theirs.value)


# ---------------------------------------------------------------- the lowering (IR interpreter)

def _ce_sum(z, t):
    return (F.cross_entropy(z, t, reduction="none") * gg.arange(1, 7, dtype=z.dtype)).sum()


def _logits(dtype) -> np.ndarray:
    """Rows with NaN, +-inf and -0.0 off and on the target (targets: _TARGETS)."""
    z = np.random.default_rng(2).standard_normal((6, 5)).astype(dtype)
    z[0, 3] = np.nan                 # NaN off the target: the row is NaN
    z[1, 2] = np.inf                 # +inf on the target
    z[2, 0], z[2, 1] = -np.inf, 50.0  # -inf on the target: the loss is +inf
    z[3, 4] = -np.inf                # -inf off the target
    z[4] = -0.0                      # all -0.0: a uniform row
    z[5, 1] = np.nan                 # NaN in an ignored row
    return z


_TARGETS = np.array([1, 2, 0, 1, 3, -100])


def _gather_chain(z, t):
    """A pick through a select on a per-row mask, a product with a constant row and a square."""
    y = gg.where(z.sum(1, keepdim=True) > 0, z * 2.0 - 1.0, -z) * gg.arange(5, dtype=z.dtype)
    return (gg.gather(y, 1, t.clamp(0)[:, None]) ** 2).sum()


def _joint(fn, *args):
    program = trace(fn, *args)
    return optimize(vjp(program, wrt=(0,), seeds=(0,)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lowering_equals_the_program_bit_for_bit(dtype) -> None:
    z, t = _logits(dtype), _TARGETS
    for fn in (_ce_sum, _gather_chain):
        with np.errstate(all="ignore"):
            joint = _joint(fn, gg.from_numpy(z), gg.from_numpy(t))
        lowered = lower_onehot(joint)
        assert not any(e.prim.name in _ALONG for e in lowered.eqns)
        ct = np.ones((), dtype)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for want, got in zip(run(joint, z, t, ct), run(lowered, z, t, ct), strict=True):
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
                np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_lowering_leaves_other_gathers_alone() -> None:
    """Several indices per row, integer operands: host ops as before."""
    x, k = gg.randn(3, 4), gg.tensor([[0, 1], [3, 3], [2, 0]])
    program = trace(lambda x, k: gg.gather(x, 1, k) + gg.gather(k * 2, 1, k[:, :1].clamp(0, 1)), x, k)
    lowered = lower_onehot(optimize(program))
    assert sum(e.prim is take_along for e in lowered.eqns) == 2


def _ce_schedule(n: int, c: int, part: str):
    z, t = gg.randn(n, c), gg.from_numpy(np.arange(n) % c)
    loss = lambda z, t: F.cross_entropy(z, t)  # noqa: E731
    if part == "forward":
        return build_schedule(optimize(trace(loss, z, t)))
    joint = _joint(loss, z, t)
    return build_schedule(joint if part == "value_and_grad" else optimize(partition(joint).backward))


@pytest.mark.parametrize("part", ["forward", "value_and_grad", "backward"])
def test_cross_entropy_fuses_into_one_row_kernel(part) -> None:
    """max, sum of exp and the pick in one row-wise kernel, which stores no [N, C] value but
    the gradient (softmax - one-hot); a separate backward is one elementwise kernel (the row
    sum of the one-hot is its value). No gather or scatter runs on the host."""
    n, c = 64, 10
    sched = _ce_schedule(n, c, part)
    hosts = [s.eqn.prim.name for s in sched.steps if isinstance(s, HostOp)]
    assert hosts == [], hosts  # the index check is a check kernel (codegen.checks)
    rows = [k for k in sched.steps if isinstance(k, Kernel) and k.domain == (n, c)]
    assert len(rows) == 1 and rows[0].red_axes == (None if part == "backward" else (1,))
    big = [v for v in rows[0].stores if v.aval.shape == (n, c)]
    assert len(big) == (0 if part == "forward" else 1)


# ---------------------------------------------------------------- compiled == eager

def _w(c: int, dtype) -> gg.Tensor:
    return gg.from_numpy(np.linspace(0.5, 2.0, c).astype(dtype))


# name -> (loss of logits z, targets t and class weights w; rank of z; the ignored target)
LOSSES = {
    "ce_mean": (lambda z, t, w: F.cross_entropy(z, t), 2, -100),
    "ce_sum_ignore": (lambda z, t, w: F.cross_entropy(z, t, reduction="sum", ignore_index=2), 2, 2),
    "ce_weight_smooth": (lambda z, t, w: F.cross_entropy(z, t, weight=w, label_smoothing=0.1), 2,
                         -100),
    "ce_none_rows": (lambda z, t, w: (F.cross_entropy(z, t, reduction="none") * w[:1]).sum(), 2,
                     -100),
    "ce_spatial": (lambda z, t, w: F.cross_entropy(z, t, weight=w), 3, -100),
    "nll_weight_ignore": (lambda z, t, w: F.nll_loss(F.log_softmax(z, 1), t, weight=w,
                                                     ignore_index=0), 2, 0),
    "gather_onehot": (lambda z, t, w: (gg.gather(z, 1, t.clamp(0)[:, None]) * 3.0).sum(), 2, -100),
    "gather_general": (lambda z, t, w: (gg.gather(z, 1, t.clamp(0)[:, None].expand(-1, 3)) ** 2)
                       .sum(), 2, -100),
}


def _data(rank: int, dtype, seed: int, special: bool, ignore: int) -> tuple:
    rng = np.random.default_rng(seed)
    n, c = 6, 5
    if rank == 3:
        z = rng.standard_normal((n, c, 2)).astype(dtype)
        t = rng.integers(0, c, (n, 2))
    else:
        z = _logits(dtype) if special else rng.standard_normal((n, c)).astype(dtype)
        t = _TARGETS.copy() if special else rng.integers(0, c, n)
    t[t == -100] = ignore
    t[seed % n] = ignore
    return gg.from_numpy(z), gg.from_numpy(t), _w(c, dtype)


def _check(fn, cf, args, dtype) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = value_and_grad(fn)(*args)
        got = cf(*args)
    for g, w, what in ((got[0], want[0], "value"), (got[1], want[1], "gradient")):
        g, w = g.numpy(), w.numpy()
        _close(g, w, _rtol(dtype, True), what)
        zeros = w == 0
        np.testing.assert_array_equal(np.signbit(g[zeros]), np.signbit(w[zeros]), err_msg=what)


@needs_cc
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_compiled_loss_equals_eager(name, dtype) -> None:
    fn, rank, ignore = LOSSES[name]
    body = Counter(fn)
    cf = compile(value_and_grad(body))
    for seed, special in ((0, False), (1, rank == 2), (2, False)):
        _check(fn, cf, _data(rank, dtype, seed, special, ignore), dtype)
    assert cf.fallback_reason is None, cf.fallback_reason
    assert body.calls == 1, "a later call re-ran the function's Python"


def _raises_like_eager(fn, cf, args):
    with pytest.raises(Exception) as eager:
        fn(*args)
    with pytest.raises(type(eager.value)) as compiled:
        cf(*args)
    assert str(compiled.value) == str(eager.value)


@needs_cc
def test_compiled_calls_check_new_indices() -> None:
    """New targets/indices out of range raise what eager raises, on a call the guards let
    through (no retrace); valid ones still run compiled."""
    z = gg.randn(4, 5)
    cases = [
        (lambda z, t: F.cross_entropy(z, t), gg.tensor([0, 4, 1, -100]),
         [gg.tensor([0, 5, 1, 2]), gg.tensor([0, -1, 1, 2]), gg.tensor([7, 1, -3, 2])]),
        (lambda z, t: F.nll_loss(z, t, reduction="sum"), gg.tensor([3, 4, 1, 2]),
         [gg.tensor([0, 1, 2, 5])]),
        (lambda z, t: gg.gather(z, 1, t[:, None]).sum(), gg.tensor([0, 4, 1, 2]),
         [gg.tensor([0, 5, 1, 2]), gg.tensor([0, -1, 1, 2])]),
        (lambda z, t: take_along(z, t[:, None], axis=1).sum(), gg.tensor([0, -1, 1, 2]),
         [gg.tensor([0, 5, 1, 2]), gg.tensor([0, -6, 1, 2])]),
    ]
    for fn, good, bads in cases:
        body = Counter(fn)
        cf = compile(value_and_grad(body))
        _check(fn, cf, (z, good), np.float32)
        for bad in bads:
            _raises_like_eager(value_and_grad(fn), cf, (z, bad))
        _check(fn, cf, (z, good), np.float32)
        assert cf.fallback_reason is None and body.calls == 1


# ---------------------------------------------------------------- the one-hot compare in C

def _edge_data(c: int, dtype, ignore: int) -> tuple:
    """9 rows of ``c`` classes: targets at 0 and c-1 and ignored, NaN/inf on and off target."""
    rng = np.random.default_rng(c)
    z = rng.standard_normal((9, c)).astype(dtype)
    t = rng.integers(0, c, 9)
    t[:3] = 0, c - 1, ignore
    z[3, t[3]] = np.nan                       # NaN on the target
    z[4, (t[4] + 1) % c] = np.nan             # NaN off the target (the same when c == 1)
    z[5, t[5]] = -np.inf                      # the loss is +inf
    z[6, c - 1] = np.inf
    return gg.from_numpy(z), gg.from_numpy(t), _w(c, dtype)


EDGE_LOSSES = {
    "ce": (lambda z, t, w: F.cross_entropy(z, t), -100),
    "ce_ignore_weight": (lambda z, t, w: F.cross_entropy(z, t, weight=w, ignore_index=2), 2),
    "nll_sum": (lambda z, t, w: F.nll_loss(F.log_softmax(z, 1), t, reduction="sum"), 0),
    "gather_i32": (lambda z, t, w: (gg.gather(z, 1, t.clamp(0).to(gg.int32)[:, None]) * 2.0).sum(),
                   -100),
}


@needs_cc
@pytest.mark.parametrize("c", [1, 7, 8, 9, 33])
@pytest.mark.parametrize("name", list(EDGE_LOSSES))
def test_onehot_compare_edges_compiled_equal_eager(name, c) -> None:
    """Row lengths around the vector width (the int32 position compare), the first and last
    class, ignored rows, NaN and infinities; float32 and float64 in one go."""
    fn, ignore = EDGE_LOSSES[name]
    for dtype in (np.float32, np.float64):
        cf = compile(value_and_grad(fn))
        _check(fn, cf, _edge_data(c, dtype, ignore), dtype)
        assert cf.fallback_reason is None, cf.fallback_reason


@needs_cc
def test_onehot_in_c_is_a_row_load_and_an_int32_compare() -> None:
    """The pick is one load per row at the checked target; the gradient's one-hot compares
    the loop index (no array of positions is read) in int32 with the target, converted once."""
    z, t = gg.randn(16, 40), gg.from_numpy(np.arange(16) % 40)
    cf = compile(value_and_grad(lambda z, t: F.cross_entropy(z, t)))
    cf(z, t)
    src = cf.inspect()[0]["c_source"]
    lines = [line.strip() for line in src.splitlines()]
    assert sum(line.startswith("const float") and "[i0 * 40 + (int64_t)p" in line
               for line in lines) == 1
    assert sum("reduction(max:" in line for line in lines) == 1  # the row max only
    (iota,) = [line.split()[2] for line in lines if line.endswith("= (int32_t)(i1);")]
    (cmp,) = [line for line in lines if f"({iota} == " in line]
    assert f"const int32_t {cmp.split('== ')[1].rstrip(');')} = " in src


def test_pick_needs_a_checked_index() -> None:
    """reduce_max(select(iota == t, x, -inf)) with t not known to be in range stays a masked
    maximum (an out-of-range t selects nothing: -inf, never a load out of the row)."""
    x = gg.randn(8, 12)
    t = gg.from_numpy(np.arange(8) * 3 - 5)

    def masked(x, t):
        hit = gg.arange(12)[None, :] == t[:, None]
        return gg.where(hit, x, float("-inf")).amax(1) + x.amax(1)

    sched = build_schedule(optimize(trace(masked, x, t)))
    (k,) = [k for k in sched.kernels if k.domain == (8, 12)]
    assert any(is_iota(v) for v in k.loads.values())
    assert rowwise.picks(k, {e.out: e for e in sched.program.eqns}) == {}
    if HAS_CC:
        got = compile(masked, fullgraph=True)(x, t).numpy()
        np.testing.assert_array_equal(got, masked(x, t).numpy())
        assert np.isneginf(got).sum() == 4  # targets -5, -2, 13, 16 select nothing
