"""Column sums inside row-wise kernels (gradgen/codegen/colsums.py): ``y.sum(0)`` of a value the
row-wise kernel makes row by row, kept in partial sums per block of rows and added up after.

A table of programs (where the summed value is ready: before or after the row sums; one or
two column sums; rows of 1 to 16 per block; kept axes merged into one row loop or not) is
checked against the IR interpreter, between thread counts bit for bit, and against float64
for accuracy; the schedule is checked for what the fusion promises (x read by one kernel).
"""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg
from gradgen.codegen import build_schedule, render_module
from gradgen.codegen.colsums import blocks
from gradgen.dtypes import float32, float64
from gradgen.ir.builder import Builder
from gradgen.ir.interpreter import run
from test_codegen import _check
from test_codegen_reductions import _nan_canonical

RNG = np.random.default_rng(11)


def _bcast(b, v, shape, dims):
    return b.add("broadcast_in_dim", v, shape=shape, dims=dims)


def _program(shape, n_red: int, d, kind: str):
    """Over ``x`` of ``shape`` reducing its last ``n_red`` axes per row:
    level0 -- the row sums of x and the column sums of x * x;
    norm   -- layer-norm like: d = x - mean(x) per row, the row sums of d * d, the column sums
              of d * w (w one value per position in the row) and d * 2 stored;
    two    -- norm's, plus the column sums of d;
    bcast  -- norm's with d * w * y, y broadcast along the second kept axis (the kept loops
              cannot merge into one)."""
    b = Builder()
    x = b.input(shape, d)
    red = tuple(range(len(shape) - n_red, len(shape)))
    kept = tuple(range(len(shape) - n_red))
    row_shape = tuple(shape[a] for a in red)
    if kind == "level0":
        s = b.add("reduce_sum", x, axes=red)
        return b.build([s, b.add("reduce_sum", b.add("mul", x, x), axes=kept)])
    w = b.input(row_shape, d)
    s = b.add("reduce_sum", x, axes=red)
    mean = b.add("mul", s, 1.0 / int(np.prod(row_shape)))
    dev = b.add("sub", x, _bcast(b, mean, shape, kept))
    var = b.add("reduce_sum", b.add("mul", dev, dev), axes=red)
    summed = b.add("mul", dev, _bcast(b, w, shape, red))
    extra = []
    if kind == "bcast":
        y = b.input((shape[0], 1) + row_shape, d)
        y_shape = (shape[0],) + row_shape
        y2 = b.add("reshape", y, shape=y_shape)
        summed = b.add("mul", summed, _bcast(b, y2, shape, (0,) + red))
    if kind == "two":
        extra = [b.add("reduce_sum", dev, axes=kept)]
    col = b.add("reduce_sum", summed, axes=kept)
    return b.build([var, col, b.add("mul", dev, 2.0)] + extra)


# name -> (shape, reduced trailing axes, kind)
SHAPES = {
    "ln_512x1024": ((512, 1024), 1, "norm"),   # rows summed in lanes, 16 rows per block
    "small_37x5": ((37, 5), 1, "norm"),        # 4 rows per block
    "few_rows_3x300": ((3, 300), 1, "norm"),   # 1 row per block
    "rows_1000x33": ((1000, 33), 1, "two"),
    "many_rows_5000x3": ((5000, 3), 1, "norm"),  # 20 rows per block: at most 256 blocks
    "level0_64x40": ((64, 40), 1, "level0"),
    "3d_6x7x40": ((6, 7, 40), 1, "norm"),
    "4d_4x5x6x7": ((4, 5, 6, 7), 2, "two"),
    "bcast_6x7x40": ((6, 7, 40), 1, "bcast"),
}
CASES = {f"{name}-{d.short}": (_program(shape, n, d, kind), kind)
         for name, (shape, n, kind) in SHAPES.items() for d in (float32, float64)}


def _inputs(program, specials: bool):
    xs = [RNG.standard_normal(v.aval.shape).astype(v.aval.dtype.np) for v in program.inputs]
    if specials and xs[0].size >= 40:
        flat = xs[0].reshape(-1)
        for v in (np.nan, np.inf, -np.inf):
            flat[RNG.permutation(flat.size)[:2]] = v
    return xs


def test_blocks():
    assert blocks(512) == (16, 32)
    assert blocks(37) == (4, 10)
    assert blocks(3) == (1, 3)
    assert blocks(5000) == (20, 250)
    for n in range(2, 3000, 37):
        block, count = blocks(n)
        assert count <= 256 and (count - 1) * block < n <= count * block


@pytest.mark.parametrize("name", list(CASES))
def test_the_row_kernel_keeps_the_column_sums(name):
    """One kernel reads x: the row-wise one, holding every column sum of the program."""
    program, kind = CASES[name]
    sched = build_schedule(program)
    x = sched.inputs[0]
    readers = [k for k in sched.kernels if any(v.buffer is x for v in k.loads.values())]
    assert len(readers) == 1, [(k.name, k.domain, k.red_axes) for k in sched.kernels]
    (row,) = readers
    assert len(row.column_sums) == (2 if kind == "two" else 1)
    for c in row.column_sums:  # its partials are added up by a reduction over their rows
        (total,) = [k for k in sched.kernels if any(v.buffer.var is c.partial
                                                    for v in k.loads.values())]
        assert total.red_axes == (0,) and total.domain == c.partial.aval.shape
    src = render_module([sched], "colsums").source
    assert "partial sums per block of" in src and "adding up its partial sums" in src


@pytest.mark.parametrize("first, second", [
    (("reduce_sum", (0,)), ("reduce_sum", (1,))),   # the kernel reduces axis 0: rows trail
    (("reduce_sum", (1,)), ("reduce_max", (0,))),   # a maximum over the rows
])
def test_not_a_column_sum(first, second):
    """A sum over axis 0 of a kernel that reduces axis 0 itself (its rows are not the leading
    axes), and a maximum over the rows, stay kernels of their own."""
    b = Builder()
    x = b.input((40, 30), float32)
    s0 = b.add(first[0], x, axes=first[1])
    s1 = b.add(second[0], b.add("mul", x, x), axes=second[1])
    sched = build_schedule(b.build([s0, s1]))
    assert not any(k.column_sums for k in sched.kernels)


@pytest.fixture(scope="module")
def built():
    from gradgen.runtime.compiler import CompilerNotFound  # noqa: PLC0415
    from gradgen.runtime.executor import build_programs  # noqa: PLC0415
    names = list(CASES)
    try:
        one = build_programs([CASES[n][0] for n in names], 1).executables
        two = build_programs([CASES[n][0] for n in names], 2).executables
    except CompilerNotFound:
        pytest.skip("no C compiler")
    return {n: (a, b) for n, a, b in zip(names, one, two)}


@pytest.mark.cc
@pytest.mark.parametrize("specials", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_column_sums_match_interpreter_on_any_thread_count(built, name, specials):
    program, _ = CASES[name]
    xs = _inputs(program, specials)
    one, two = built[name]
    old = gg.get_num_threads()
    try:
        with np.errstate(all="ignore"):
            want = run(program, *xs)
            gg.set_num_threads(1)
            got1 = one(*xs)
            gg.set_num_threads(2)
            got2 = two(*xs)
    finally:
        gg.set_num_threads(old)
    for g1, g2, w in zip(got1, got2, want, strict=True):
        _check(g1, w, 1e-10 if w.dtype == np.float64 else 1e-4)
        assert _nan_canonical(g1).tobytes() == _nan_canonical(g2).tobytes()


@pytest.mark.cc
def test_float32_column_sums_are_accurate(built):
    """Against float64: the column sums of 5000 rows in float32 are as close as numpy's own
    float32 column sum (which adds the rows one after the other in float32)."""
    program, _ = CASES["many_rows_5000x3-f32"]
    x = RNG.uniform(0.5, 1.5, (5000, 3)).astype(np.float32)
    w = np.ones(3, np.float32)
    got = built["many_rows_5000x3-f32"][1](x, w)[1]
    x64 = x.astype(np.float64)
    dev = x64 - x64.mean(1, keepdims=True)
    exact = dev.sum(0)
    dev32 = (x - x.sum(1, keepdims=True) * np.float32(1 / 3)).astype(np.float32)
    numpy_err = np.abs(dev32.sum(0).astype(np.float64) - exact)
    scale = np.abs(dev).sum(0)
    assert np.all(np.abs(got - exact) <= numpy_err + 1e-6 * scale)


@pytest.mark.cc
@pytest.mark.parametrize("name", ["ln_512x1024-f32", "rows_1000x33-f32"])
def test_same_sums_as_a_column_reduction_of_their_own(built, name, monkeypatch):
    """float32 with 16 rows per block (128 to 4096 rows): the fused sums add the same numbers
    in the same order as the columns form of a separate reduction kernel, bit for bit the
    same result. (Fewer rows per block add fewer in float; float64 adds per block first.)"""
    from gradgen.codegen import schedule  # noqa: PLC0415
    from gradgen.runtime.executor import build_programs  # noqa: PLC0415
    program, _ = CASES[name]
    xs = _inputs(program, False)
    monkeypatch.setattr(schedule, "schedule_column_sum", lambda s, e: False)
    (alone,) = build_programs([program], 2).executables
    monkeypatch.undo()
    assert not any(k.column_sums for k in alone.schedule.kernels)
    for a, b in zip(alone(*xs), built[name][1](*xs), strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.cc
@pytest.mark.parametrize("shape", [(96, 200), (4, 24, 200)])
def test_layer_norm_weight_gradient_through_compile(shape):
    """compile(value_and_grad) of a layer-norm loss, also over [batch, tokens, features] (the
    loss's sum splits along the row kernel's axes: codegen.split): the weight gradient is a
    column sum of the row kernel, and matches eager."""
    rng = np.random.default_rng(3)
    x = gg.tensor(rng.standard_normal(shape).astype(np.float32))
    w = gg.tensor(rng.uniform(0.5, 1.5, 200).astype(np.float32))
    b = gg.tensor(rng.standard_normal(200).astype(np.float32))

    def loss(x, w, b):
        return (gg.nn.functional.layer_norm(x, (200,), w, b) * x).sum()

    cf = gg.compile(gg.value_and_grad(loss, argnums=(0, 1, 2)), fullgraph=True)
    got = cf(x, w, b)
    want = gg.value_and_grad(loss, argnums=(0, 1, 2))(x, w, b)
    assert "partial sums per block of" in cf.inspect()[0]["c_source"]
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), rtol=1e-4)
    for g, e in zip(got[1], want[1]):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-4, atol=1e-4)
