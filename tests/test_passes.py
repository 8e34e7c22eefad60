"""Each pass before/after (golden text) with the interpreter as oracle; the pipeline's snapshots."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

import gradgen as gg
from gradgen.ir import check, parse, run
from gradgen.ad import partition, vjp
from gradgen.ir.trace import trace
from gradgen.passes import PASSES, cse, dce, fold, optimize, simplify


# Traced by the snapshot tests below; their line numbers appear in the golden text.
def snap_mlp(x, w, b):
    return gg.tanh(x @ w + b).sum()


def snap_softmax(x):
    e = gg.exp(x - x.amax(1, keepdim=True))
    return e / e.sum(1, keepdim=True)


def snap_affine(x, s):
    y = (x * 1.0 + 0.0) * s
    return y.reshape(6).reshape(2, 3).t().t() + gg.zeros(2, 3) * 2.0


def _program(text: str):
    return parse(textwrap.dedent(text))


def _random_inputs(program, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for v in program.inputs:
        d = v.aval.dtype
        if d.is_floating_point:
            out.append(rng.standard_normal(v.aval.shape).astype(d.np))
        elif d.name == "bool":
            out.append(rng.random(v.aval.shape) < 0.5)
        else:
            out.append(rng.integers(-3, 4, v.aval.shape).astype(d.np))
    return out


def assert_same_results(before, after) -> None:
    """The interpreter gives the same outputs for both programs (exactly, up to -0.0)."""
    check(after)
    assert [v.aval for v in after.inputs] == [v.aval for v in before.inputs]
    for seed in range(3):
        xs = _random_inputs(before, seed)
        for a, b in zip(run(before, *xs), run(after, *xs), strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=0)


# (id, pass, program before, program after)
CASES = [
    ("dce-drops-unused", dce, """
        def (%x:f32[3]):
          %0:f32[3] = exp %x
          %1:f32[3] = neg %x
          %2:f32[3] = mul %1, %1
          return %1
        """, """
        def (%x:f32[3]):
          %0:f32[3] = neg %x
          return %0
        """),
    ("dce-keeps-unused-input", dce, """
        def (%x:f32[3], %y:f32[3]):
          %0:f32[3] = neg %y
          return %x
        """, """
        def (%x:f32[3], %y:f32[3]):
          return %x
        """),
    ("cse-merges-repeats", cse, """
        def (%x:f32[2,3]):
          %0:f32[3] = reduce_sum[axes=(0,)] %x
          %1:f32[3] = reduce_sum[axes=(0,)] %x
          %2:f32[3] = mul %0, 2.0:f32
          %3:f32[3] = mul %1, 2.0:f32
          %4:f32[3] = mul %1, 3.0:f32
          %5:f32[3] = add %2, %3
          return %5, %4
        """, """
        def (%x:f32[2,3]):
          %0:f32[3] = reduce_sum[axes=(0,)] %x
          %1:f32[3] = mul %0, 2.0:f32
          %2:f32[3] = mul %0, 3.0:f32
          %3:f32[3] = add %1, %1
          return %3, %2
        """),
    ("cse-params-differ", cse, """
        def (%x:f32[2,3]):
          %0:f32[3] = reduce_sum[axes=(0,)] %x
          %1:f32[2] = reduce_sum[axes=(1,)] %x
          %2:f32[3,2] = transpose[perm=(1, 0)] %x
          return %0, %1, %2
        """, None),
    ("fold-scalar-literals", fold, """
        def (%x:f64[4]):
          %0:f64[] = mul 2.0:f64, 3.0:f64
          %1:f64[] = exp 0.0:f64
          %2:f64[] = add %0, %1
          %3:f64[4] = mul %x, %2
          return %3
        """, """
        def (%x:f64[4]):
          %0:f64[4] = mul %x, 7.0:f64
          return %0
        """),
    ("fold-splats", fold, """
        def (%x:f32[2,3]):
          %0:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] 2.0:f32
          %1:f32[2,3] = mul %0, 0.5:f32
          %2:f32[3,2] = transpose[perm=(1, 0)] %1
          %3:f32[3] = reduce_sum[axes=(1,)] %2
          %4:f32[3,2] = transpose[perm=(1, 0)] %x
          %5:f32[3,2] = mul %4, %2
          return %5, %3
        """, """
        def (%x:f32[2,3]):
          %0:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] 2.0:f32
          %1:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] 1.0:f32
          %2:f32[3,2] = broadcast_in_dim[dims=(), shape=(3, 2)] 1.0:f32
          %3:f32[3] = broadcast_in_dim[dims=(), shape=(3,)] 2.0:f32
          %4:f32[3,2] = transpose[perm=(1, 0)] %x
          %5:f32[3,2] = mul %4, %2
          return %5, %3
        """),
    ("fold-compare-select", fold, """
        def (%x:f32[2]):
          %0:bool[] = lt 1.0:f32, 2.0:f32
          %1:f32[] = select %0, 4.0:f32, 5.0:f32
          %2:f32[2] = mul %x, %1
          return %2
        """, """
        def (%x:f32[2]):
          %0:f32[2] = mul %x, 4.0:f32
          return %0
        """),
    ("fold-does-not-grow-constants", fold, """
        def (%x:f32[64,64]):
          %0:f32[64,64] = broadcast_in_dim[dims=(), shape=(64, 64)] 1.0:f32
          %1:f32[64,64] = add %x, %0
          return %1
        """, None),
    ("simplify-identities", simplify, """
        def (%x:f32[2,3]):
          %0:f32[2,3] = mul %x, 1.0:f32
          %1:f32[2,3] = add -0.0:f32, %0
          %2:f32[2,3] = sub %1, 0.0:f32
          %3:f32[2,3] = div %2, 1.0:f32
          %4:f32[2,3] = neg %3
          %5:f32[2,3] = neg %4
          %6:f32[2,3] = convert[dtype=f32] %5
          %7:f32[2,3] = sub -0.0:f32, %6
          return %7
        """, """
        def (%x:f32[2,3]):
          %0:f32[2,3] = neg %x
          %1:f32[2,3] = neg %x
          return %1
        """),
    # +0.0 + x is +0.0 at x = -0.0, and so is +0.0 - x at x = +0.0: on floats these stay
    # (x - 0.0 is x everywhere); on integers every zero is the identity
    ("simplify-keeps-the-sign-of-zero", simplify, """
        def (%x:f32[2,3], %i:i64[2]):
          %0:f32[2,3] = add 0.0:f32, %x
          %1:f32[2,3] = add %0, 0.0:f32
          %2:f32[2,3] = sub %1, -0.0:f32
          %3:f32[2,3] = sub 0.0:f32, %2
          %4:f32[2,3] = sub %3, 0.0:f32
          %5:i64[2] = add 0:i64, %i
          %6:i64[2] = sub 0:i64, %5
          return %4, %6
        """, """
        def (%x:f32[2,3], %i:i64[2]):
          %0:f32[2,3] = add 0.0:f32, %x
          %1:f32[2,3] = add %0, 0.0:f32
          %2:f32[2,3] = sub %1, -0.0:f32
          %3:f32[2,3] = sub 0.0:f32, %2
          %4:i64[2] = neg %i
          return %3, %4
        """),
    ("simplify-splat-identities", simplify, """
        def (%x:f32[2,3]):
          %0:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] 1.0:f32
          %1:f32[2,3] = mul %0, %x
          %2:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] -0.0:f32
          %3:f32[2,3] = add %1, %2
          return %3
        """, """
        def (%x:f32[2,3]):
          %0:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] 1.0:f32
          %1:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] -0.0:f32
          return %x
        """),
    ("simplify-keeps-type-changing-identity", simplify, """
        def (%x:f32[]):
          %0:f32[3] = broadcast_in_dim[dims=(), shape=(3,)] 1.0:f32
          %1:f32[3] = mul %0, %x
          %2:f64[] = convert[dtype=f64] %x
          return %1, %2
        """, None),
    ("simplify-layout-chains", simplify, """
        def (%x:f32[2,3], %b:f32[3]):
          %0:f32[1,3] = reshape[shape=(1, 3)] %b
          %1:f32[2,3] = broadcast_in_dim[dims=(0, 1), shape=(2, 3)] %0
          %2:f32[4,2,3] = broadcast_in_dim[dims=(1, 2), shape=(4, 2, 3)] %1
          %3:f32[3,2] = transpose[perm=(1, 0)] %x
          %4:f32[2,3] = transpose[perm=(1, 0)] %3
          %5:f32[6] = reshape[shape=(6,)] %4
          %6:f32[3,2] = reshape[shape=(3, 2)] %5
          %7:f32[2,3] = reshape[shape=(2, 3)] %6
          %8:f32[2,3] = broadcast_in_dim[dims=(0, 1), shape=(2, 3)] %7
          return %2, %6, %8
        """, """
        def (%x:f32[2,3], %b:f32[3]):
          %0:f32[1,3] = reshape[shape=(1, 3)] %b
          %1:f32[2,3] = broadcast_in_dim[dims=(1,), shape=(2, 3)] %b
          %2:f32[4,2,3] = broadcast_in_dim[dims=(2,), shape=(4, 2, 3)] %b
          %3:f32[3,2] = transpose[perm=(1, 0)] %x
          %4:f32[6] = reshape[shape=(6,)] %x
          %5:f32[3,2] = reshape[shape=(3, 2)] %x
          return %2, %5, %x
        """),
    ("simplify-transpose-compose", simplify, """
        def (%x:f32[2,3,4]):
          %0:f32[3,4,2] = transpose[perm=(1, 2, 0)] %x
          %1:f32[4,3,2] = transpose[perm=(1, 0, 2)] %0
          return %1
        """, """
        def (%x:f32[2,3,4]):
          %0:f32[3,4,2] = transpose[perm=(1, 2, 0)] %x
          %1:f32[4,3,2] = transpose[perm=(2, 1, 0)] %x
          return %1
        """),
    ("simplify-sum-size1-axes", simplify, """
        def (%x:f32[2,1,3], %y:f32[1,4], %i:i64[2]):
          %0:f32[2,3] = reduce_sum[axes=(1,)] %x
          %1:f32[3] = reduce_sum[axes=(0, 1)] %x
          %2:f32[1,4] = reduce_sum[axes=()] %y
          %3:f32[] = reduce_sum[axes=(0, 1)] %y
          %4:i64[2] = reduce_sum[axes=()] %i
          return %0, %1, %2, %3, %4
        """, """
        def (%x:f32[2,1,3], %y:f32[1,4], %i:i64[2]):
          %0:f32[2,3] = reshape[shape=(2, 3)] %x
          %1:f32[2,3] = add %0, 0.0:f32
          %2:f32[1,3] = reduce_sum[axes=(0,)] %x
          %3:f32[3] = reshape[shape=(3,)] %2
          %4:f32[1,4] = add %y, 0.0:f32
          %5:f32[1] = reduce_sum[axes=(1,)] %y
          %6:f32[] = reshape[shape=()] %5
          return %1, %3, %4, %6, %i
        """),
    # (a float sum over size-1 axes only, or over no axis, is its operand plus +0.0: a sum
    # starts from +0.0, so a -0.0 sums to +0.0; an integer one is its operand)
    # A sum over axes only a broadcast made is the broadcast times their count; a sum that also
    # covers an axis of the operand (%4) stays a sum.
    ("simplify-sum-of-broadcast", simplify, """
        def (%s:f64[], %v:f32[3], %i:i64[3]):
          %0:f64[4,3] = broadcast_in_dim[dims=(), shape=(4, 3)] %s
          %1:f64[3] = reduce_sum[axes=(0,)] %0
          %2:f64[] = reduce_sum[axes=(0, 1)] %0
          %3:f32[3,5] = broadcast_in_dim[dims=(0,), shape=(3, 5)] %v
          %4:f32[] = reduce_sum[axes=(0, 1)] %3
          %5:f32[3] = reduce_sum[axes=(1,)] %3
          %6:i64[2,3] = broadcast_in_dim[dims=(1,), shape=(2, 3)] %i
          %7:i64[3] = reduce_sum[axes=(0,)] %6
          return %1, %2, %4, %5, %7
        """, """
        def (%s:f64[], %v:f32[3], %i:i64[3]):
          %0:f64[4,3] = broadcast_in_dim[dims=(), shape=(4, 3)] %s
          %1:f64[3] = broadcast_in_dim[dims=(), shape=(3,)] %s
          %2:f64[3] = mul %1, 4.0:f64
          %3:f64[] = mul %s, 12.0:f64
          %4:f32[3,5] = broadcast_in_dim[dims=(0,), shape=(3, 5)] %v
          %5:f32[] = reduce_sum[axes=(0, 1)] %4
          %6:f32[3] = mul %v, 5.0:f32
          %7:i64[2,3] = broadcast_in_dim[dims=(1,), shape=(2, 3)] %i
          %8:i64[3] = mul %i, 2:i64
          return %2, %3, %5, %6, %8
        """),
]


@pytest.mark.parametrize("name,pass_,before,after", CASES, ids=[c[0] for c in CASES])
def test_pass_before_after(name, pass_, before, after) -> None:
    p = check(_program(before))
    q = pass_(p)
    expected = textwrap.dedent(after if after is not None else before).strip()
    assert str(q) == expected
    assert_same_results(p, q)
    assert str(p) == textwrap.dedent(before).strip(), "a pass must not modify its input"


@pytest.mark.parametrize("name,pass_,before,after", CASES, ids=[c[0] for c in CASES])
def test_pipeline_keeps_results(name, pass_, before, after) -> None:
    p = _program(before)
    assert_same_results(p, optimize(p))


def test_pipeline_is_the_one_list() -> None:
    assert PASSES == [simplify, fold, cse, dce]


def test_pipeline_reaches_a_fixed_point() -> None:
    p = _program(next(c for c in CASES if c[0] == "simplify-layout-chains")[2])
    once = optimize(p)
    assert str(optimize(once)) == str(once)
    assert str(once) == textwrap.dedent("""
        def (%x:f32[2,3], %b:f32[3]):
          %0:f32[4,2,3] = broadcast_in_dim[dims=(2,), shape=(4, 2, 3)] %b
          %1:f32[3,2] = reshape[shape=(3, 2)] %x
          return %0, %1, %x
        """).strip()


def _traced_mlp():
    return trace(snap_mlp, gg.ones(2, 3), gg.ones(3, 4), gg.ones(4))


SNAPSHOTS = {
    "affine-before": """
        const $0:f32[2,3] = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        def (%x:f32[2,3], %s:f32[]):
          %0:f32[2,3] = mul %x, 1.0:f32  # test_passes.py:27
          %1:f32[2,3] = add %0, 0.0:f32  # test_passes.py:27
          %2:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] %s  # test_passes.py:27
          %3:f32[2,3] = mul %1, %2  # test_passes.py:27
          %4:f32[6] = reshape[shape=(6,)] %3  # test_passes.py:28
          %5:f32[2,3] = reshape[shape=(2, 3)] %4  # test_passes.py:28
          %6:f32[3,2] = transpose[perm=(1, 0)] %5  # test_passes.py:28
          %7:f32[2,3] = transpose[perm=(1, 0)] %6  # test_passes.py:28
          %8:f32[2,3] = mul $0, 2.0:f32  # test_passes.py:28
          %9:f32[2,3] = add %7, %8  # test_passes.py:28
          return %9
        """,
    "affine-after": """
        const $0:f32[2,3] = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        def (%x:f32[2,3], %s:f32[]):
          %0:f32[2,3] = add %x, 0.0:f32  # test_passes.py:27
          %1:f32[2,3] = broadcast_in_dim[dims=(), shape=(2, 3)] %s  # test_passes.py:27
          %2:f32[2,3] = mul %0, %1  # test_passes.py:27
          %3:f32[2,3] = add %2, $0  # test_passes.py:28
          return %3
        """,
    "mlp-gradient-before": """
        def (%x:f32[2,3], %w:f32[3,4], %b:f32[4], %ct0:f32[]):
          %0:f32[2,4] = matmul %x, %w  # test_passes.py:18
          %1:f32[2,4] = broadcast_in_dim[dims=(1,), shape=(2, 4)] %b  # test_passes.py:18
          %2:f32[2,4] = add %0, %1  # test_passes.py:18
          %3:f32[2,4] = tanh %2  # test_passes.py:18
          %4:f32[] = reduce_sum[axes=(0, 1)] %3  # test_passes.py:18
          %5:f32[2,4] = broadcast_in_dim[dims=(), shape=(2, 4)] %ct0  # test_passes.py:18
          %6:f32[2,4] = mul %3, %3  # test_passes.py:18
          %7:f32[2,4] = sub 1.0:f32, %6  # test_passes.py:18
          %8:f32[2,4] = mul %5, %7  # test_passes.py:18
          %9:f32[4] = reduce_sum[axes=(0,)] %8  # test_passes.py:18
          %10:f32[4,3] = transpose[perm=(1, 0)] %w  # test_passes.py:18
          %11:f32[2,3] = matmul %8, %10  # test_passes.py:18
          %12:f32[3,2] = transpose[perm=(1, 0)] %x  # test_passes.py:18
          %13:f32[3,4] = matmul %12, %8  # test_passes.py:18
          return %4, %11, %13, %9
        """,
    "mlp-forward-after": """
        def (%x:f32[2,3], %w:f32[3,4], %b:f32[4]):
          %0:f32[2,4] = matmul %x, %w  # test_passes.py:18
          %1:f32[2,4] = broadcast_in_dim[dims=(1,), shape=(2, 4)] %b  # test_passes.py:18
          %2:f32[2,4] = add %0, %1  # test_passes.py:18
          %3:f32[2,4] = tanh %2  # test_passes.py:18
          %4:f32[] = reduce_sum[axes=(0, 1)] %3  # test_passes.py:18
          %5:f32[2,4] = mul %3, %3  # test_passes.py:18
          %6:f32[2,4] = sub 1.0:f32, %5  # test_passes.py:18
          return %4, %6
        """,
    "mlp-backward-after": """
        def (%x:f32[2,3], %w:f32[3,4], %0:f32[2,4], %ct0:f32[]):
          %1:f32[2,4] = broadcast_in_dim[dims=(), shape=(2, 4)] %ct0  # test_passes.py:18
          %2:f32[2,4] = mul %1, %0  # test_passes.py:18
          %3:f32[4] = reduce_sum[axes=(0,)] %2  # test_passes.py:18
          %4:f32[4,3] = transpose[perm=(1, 0)] %w  # test_passes.py:18
          %5:f32[2,3] = matmul %2, %4  # test_passes.py:18
          %6:f32[3,2] = transpose[perm=(1, 0)] %x  # test_passes.py:18
          %7:f32[3,4] = matmul %6, %2  # test_passes.py:18
          return %5, %7, %3
        """,
    "softmax-gradient-before": """
        def (%x:f32[2,3], %ct0:f32[2,3]):
          %0:f32[2] = reduce_max[axes=(1,)] %x  # test_passes.py:22
          %1:f32[2,1] = reshape[shape=(2, 1)] %0  # test_passes.py:22
          %2:f32[2,3] = broadcast_in_dim[dims=(0, 1), shape=(2, 3)] %1  # test_passes.py:22
          %3:f32[2,3] = sub %x, %2  # test_passes.py:22
          %4:f32[2,3] = exp %3  # test_passes.py:22
          %5:f32[2] = reduce_sum[axes=(1,)] %4  # test_passes.py:23
          %6:f32[2,1] = reshape[shape=(2, 1)] %5  # test_passes.py:23
          %7:f32[2,3] = broadcast_in_dim[dims=(0, 1), shape=(2, 3)] %6  # test_passes.py:23
          %8:f32[2,3] = div %4, %7  # test_passes.py:23
          %9:f32[2,3] = div %ct0, %7  # test_passes.py:23
          %10:f32[2,3] = div %4, %7  # test_passes.py:23
          %11:f32[2,3] = div %10, %7  # test_passes.py:23
          %12:f32[2,3] = mul %ct0, %11  # test_passes.py:23
          %13:f32[2,3] = neg %12  # test_passes.py:23
          %14:f32[2] = reduce_sum[axes=(1,)] %13  # test_passes.py:23
          %15:f32[2,1] = reshape[shape=(2, 1)] %14  # test_passes.py:23
          %16:f32[2] = reshape[shape=(2,)] %15  # test_passes.py:23
          %17:f32[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %16  # test_passes.py:23
          %18:f32[2,3] = add %9, %17  # test_passes.py:23
          %19:f32[2,3] = mul %18, %4  # test_passes.py:22
          %20:f32[2,3] = neg %19  # test_passes.py:22
          %21:f32[2] = reduce_sum[axes=(1,)] %20  # test_passes.py:22
          %22:f32[2,1] = reshape[shape=(2, 1)] %21  # test_passes.py:22
          %23:f32[2] = reshape[shape=(2,)] %22  # test_passes.py:22
          %24:f32[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %0  # test_passes.py:22
          %25:bool[2,3] = eq %x, %24  # test_passes.py:22
          %26:f32[2,3] = convert[dtype=f32] %25  # test_passes.py:22
          %27:f32[2] = reduce_sum[axes=(1,)] %26  # test_passes.py:22
          %28:bool[2] = eq %27, 0.0:f32  # test_passes.py:22
          %29:f32[2] = select %28, nan:f32, %27  # test_passes.py:22
          %30:f32[2] = div %23, %29  # test_passes.py:22
          %31:f32[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %30  # test_passes.py:22
          %32:f32[2,3] = mul %31, %26  # test_passes.py:22
          %33:f32[2,3] = add %19, %32  # test_passes.py:22
          return %8, %33
        """,
    "softmax-gradient-after": """
        def (%x:f32[2,3], %ct0:f32[2,3]):
          %0:f32[2] = reduce_max[axes=(1,)] %x  # test_passes.py:22
          %1:f32[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %0  # test_passes.py:22
          %2:f32[2,3] = sub %x, %1  # test_passes.py:22
          %3:f32[2,3] = exp %2  # test_passes.py:22
          %4:f32[2] = reduce_sum[axes=(1,)] %3  # test_passes.py:23
          %5:f32[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %4  # test_passes.py:23
          %6:f32[2,3] = div %3, %5  # test_passes.py:23
          %7:f32[2,3] = div %ct0, %5  # test_passes.py:23
          %8:f32[2,3] = div %6, %5  # test_passes.py:23
          %9:f32[2,3] = mul %ct0, %8  # test_passes.py:23
          %10:f32[2,3] = neg %9  # test_passes.py:23
          %11:f32[2] = reduce_sum[axes=(1,)] %10  # test_passes.py:23
          %12:f32[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %11  # test_passes.py:23
          %13:f32[2,3] = add %7, %12  # test_passes.py:23
          %14:f32[2,3] = mul %13, %3  # test_passes.py:22
          %15:f32[2,3] = neg %14  # test_passes.py:22
          %16:f32[2] = reduce_sum[axes=(1,)] %15  # test_passes.py:22
          %17:bool[2,3] = eq %x, %1  # test_passes.py:22
          %18:f32[2,3] = convert[dtype=f32] %17  # test_passes.py:22
          %19:f32[2] = reduce_sum[axes=(1,)] %18  # test_passes.py:22
          %20:bool[2] = eq %19, 0.0:f32  # test_passes.py:22
          %21:f32[2] = select %20, nan:f32, %19  # test_passes.py:22
          %22:f32[2] = div %16, %21  # test_passes.py:22
          %23:f32[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %22  # test_passes.py:22
          %24:f32[2,3] = mul %23, %18  # test_passes.py:22
          %25:f32[2,3] = add %14, %24  # test_passes.py:22
          return %6, %25
        """,
}


def _snapshot(name: str) -> str:
    return textwrap.dedent(SNAPSHOTS[name]).strip()


def test_snapshot_affine_before_after() -> None:
    p = trace(snap_affine, gg.ones(2, 3), gg.ones(()))
    assert str(p) == _snapshot("affine-before")
    assert str(optimize(p)) == _snapshot("affine-after")
    assert_same_results(p, optimize(p))


def test_snapshot_mlp_gradient_and_split() -> None:
    joint = vjp(_traced_mlp())
    assert str(joint) == _snapshot("mlp-gradient-before")
    part = partition(optimize(joint))
    assert str(optimize(part.forward)) == _snapshot("mlp-forward-after")
    assert str(optimize(part.backward)) == _snapshot("mlp-backward-after")
    assert_same_results(joint, optimize(joint))


def test_snapshot_softmax_gradient_before_after() -> None:
    joint = vjp(trace(snap_softmax, gg.ones(2, 3)))
    assert str(joint) == _snapshot("softmax-gradient-before")
    assert str(optimize(joint)) == _snapshot("softmax-gradient-after")
    assert_same_results(joint, optimize(joint))


def test_snapshots_are_stable_across_processes() -> None:
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, 'tests'); import gradgen as gg, test_passes as T; "
            "from gradgen.passes import optimize; "
            "print(optimize(T.vjp(T.trace(T.snap_softmax, gg.ones(2, 3)))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).parent.parent)).stdout
    assert out.strip() == _snapshot("softmax-gradient-after")
