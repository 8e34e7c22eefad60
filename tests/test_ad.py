"""The reverse-mode transformation (``vjp``) and the forward/backward split (``partition``)."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

import gradgen as gg
from gradgen.ad import evaluate, partition, vjp
from gradgen.ad.reverse import active_outputs
from gradgen.dtypes import float64
from gradgen.ir import Builder, check, parse, run
from gradgen.ir.core import Eqn, Program
from gradgen.ops.registry import Aval, Primitive
from gradgen.passes import optimize


def _p(text: str) -> Program:
    return check(parse(textwrap.dedent(text)))


def _text(text: str) -> str:
    return textwrap.dedent(text).strip()


TANH_MUL = """
    def (%x:f64[3], %y:f64[3]):
      %0:f64[3] = tanh %x  # model.py:1
      %1:f64[3] = mul %0, %y  # model.py:2
      %2:f64[] = reduce_sum[axes=(0,)] %1  # model.py:3
      return %2
    """


def test_vjp_text() -> None:
    joint = check(vjp(_p(TANH_MUL)))
    assert str(joint) == _text("""
        def (%x:f64[3], %y:f64[3], %ct0:f64[]):
          %0:f64[3] = tanh %x  # model.py:1
          %1:f64[3] = mul %0, %y  # model.py:2
          %2:f64[] = reduce_sum[axes=(0,)] %1  # model.py:3
          %3:f64[3] = broadcast_in_dim[dims=(), shape=(3,)] %ct0  # model.py:3
          %4:f64[3] = mul %3, %y  # model.py:2
          %5:f64[3] = mul %3, %0  # model.py:2
          %6:f64[3] = mul %0, %0  # model.py:1
          %7:f64[3] = sub 1.0:f64, %6  # model.py:1
          %8:f64[3] = mul %4, %7  # model.py:1
          return %2, %8, %5
        """)
    assert joint.meta["wrt"] == (0, 1) and joint.meta["zero_grads"] == (False, False)
    x, y = np.array([0.1, -0.5, 2.0]), np.array([1.5, 0.25, -1.0])
    _, gx, gy = run(joint, x, y, np.array(2.0))
    np.testing.assert_allclose(gx, 2 * y * (1 - np.tanh(x) ** 2), rtol=1e-15)
    np.testing.assert_allclose(gy, 2 * np.tanh(x), rtol=1e-15)


def test_fan_out_sums_with_add() -> None:
    joint = vjp(_p("""
        def (%x:f64[2]):
          %0:f64[2] = mul %x, %x
          %1:f64[2] = exp %x
          %2:f64[2] = add %0, %1
          return %2
        """))
    # exp's rule, then mul's two operands (both x): three contributions summed by two adds
    assert [e.prim.name for e in joint.eqns[3:]] == ["mul", "mul", "mul", "add", "add"]
    x, ct = np.array([0.5, -1.0]), np.array([1.0, 3.0])
    np.testing.assert_allclose(run(joint, x, ct)[1], ct * (2 * x + np.exp(x)), rtol=1e-15)


def test_inactive_values_get_no_backward() -> None:
    joint = vjp(_p("""
        def (%x:f64[2], %n:i64[2]):
          %0:f64[2] = stop_gradient %x
          %1:f64[2] = mul %x, %0
          %2:f64[2] = convert[dtype=f64] %n
          %3:f64[2] = mul %1, %2
          %4:bool[2] = lt %x, 0.0:f64
          %5:f64[2] = select %4, %3, %x
          return %5, %4
        """), wrt=[0])
    backward = [e.prim.name for e in joint.eqns[6:]]
    assert "convert" not in backward and "stop_gradient" not in backward
    assert joint.meta["active_outputs"] == (True, False)
    assert [v.aval.dtype.name for v in joint.inputs] == ["float64", "int64", "float64", "bool"]
    x, n = np.array([0.5, -2.0]), np.array([3, 4])
    _, _, gx = run(joint, x, n, np.array([1.0, 1.0]), np.array([False, True]))
    # x >= 0 selects x itself (gradient 1); x < 0 selects x*stop(x)*n (gradient stop(x)*n)
    np.testing.assert_allclose(gx, [1.0, -2.0 * 4])


def test_structural_zero_gradient() -> None:
    joint = vjp(_p("""
        def (%x:f64[2], %y:f64[3]):
          %0:f64[2] = exp %x
          return %0
        """))
    assert joint.meta["zero_grads"] == (False, True)
    gy = run(joint, np.zeros(2), np.ones(3), np.ones(2))[2]
    np.testing.assert_array_equal(gy, np.zeros(3))


def test_wrt_and_seeds_select_what_is_computed() -> None:
    prog = _p("""
        def (%x:f64[2], %y:f64[2]):
          %0:f64[2] = mul %x, %y
          %1:f64[2] = sin %y
          return %0, %1
        """)
    joint = vjp(prog, wrt=[0], seeds=[0])
    assert len(joint.inputs) == 3 and len(joint.outputs) == 3
    assert [e.prim.name for e in joint.eqns[2:]] == ["mul"]  # only d/dx of x*y: ct * y
    assert active_outputs(prog, [0]) == (True, False)
    assert active_outputs(prog, [1]) == (True, True)


def test_integer_input_cannot_be_differentiated() -> None:
    prog = _p("""
        def (%n:i64[2]):
          %0:i64[2] = neg %n
          return %0
        """)
    with pytest.raises(TypeError, match=r"only floating inputs have gradients, got int64"):
        vjp(prog, wrt=[0])
    assert vjp(prog).meta["wrt"] == ()


def test_identity_and_literal_outputs() -> None:
    joint = vjp(_p("""
        def (%x:f64[2]):
          return %x, %x, 2.0:f64
        """))
    g = run(joint, np.zeros(2), np.array([1.0, 2.0]), np.array([10.0, 20.0]), np.array(5.0))[3]
    np.testing.assert_allclose(g, [11.0, 22.0])


def test_rule_returning_a_wrong_type_is_reported() -> None:
    bad = Primitive("bad_double", lambda x: 2 * x, lambda x: x,
                    lambda g, ins, out, needs: (gg.ops.reduce.reduce_sum(g, axes=(0,)),), "BadBackward0")
    b = Builder()
    x = b.input((3,), float64, name="x")
    out = b.new_var(Aval((3,), float64))
    b.append(Eqn(bad, (x,), out, {}))
    with pytest.raises(TypeError, match=r"a cotangent of type f64\[\] reached %x:f64\[3\]"):
        vjp(b.build([out]))


def test_unsaved_operands_reach_rules_as_avals() -> None:
    seen = []

    def rule(g, ins, out, needs):
        seen.append((type(ins[0]), out is None))
        return (g,)

    ident = Primitive("ident_probe", lambda x: x, lambda x: x, rule, "IdentBackward0")
    b = Builder()
    x = b.input((2,), float64)
    out = b.new_var(Aval((2,), float64))
    b.append(Eqn(ident, (x,), out, {}))
    vjp(b.build([out]))
    assert seen == [(Aval, True)]


def test_exp_backward_reads_the_output_not_the_input() -> None:
    part = partition(vjp(_p("""
        def (%x:f64[4]):
          %0:f64[4] = mul %x, 3.0:f64
          %1:f64[4] = exp %0
          return %1
        """)))
    # exp saves its output, which is also the primal output: one residual, no saved input
    assert part.saved_inputs == () and part.n_residuals == 1
    assert part.forward.outputs[0] is part.forward.outputs[1]


POLY = """
    def (%x:f64[3]):
      %0:f64[3] = mul %x, %x
      %1:f64[3] = mul %0, %x
      %2:f64[] = reduce_sum[axes=(0,)] %1
      return %2
    """


def test_second_and_third_derivatives() -> None:
    x = np.array([0.5, -1.0, 2.0])
    joint = vjp(_p(POLY))                          # (x, ct) -> (sum x^3, 3x^2 ct)
    np.testing.assert_allclose(run(joint, x, np.array(2.0))[1], 6 * x ** 2)
    joint2 = check(vjp(joint, wrt=[0], seeds=[1]))  # (x, ct, v) -> (.., .., 6 x ct v)
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(run(joint2, x, np.array(2.0), v)[2], 12 * x * v)
    joint3 = check(vjp(joint2, wrt=[0], seeds=[2]))  # -> 6 ct v w
    w = np.array([1.0, 0.5, 0.25])
    np.testing.assert_allclose(run(joint3, x, np.array(2.0), v, w)[3], 12 * v * w)


def test_optimized_joint_is_differentiable_again() -> None:
    x = np.array([0.5, -1.0, 2.0])
    joint2 = vjp(optimize(vjp(_p(POLY))), wrt=[0], seeds=[1])
    np.testing.assert_allclose(run(optimize(joint2), x, np.array(1.0), np.ones(3))[2], 6 * x)


def test_evaluate_on_tensors_matches_run_and_records_autograd() -> None:
    joint = optimize(vjp(_p(TANH_MUL)))
    x = gg.tensor([0.1, -0.5, 2.0], dtype=gg.float64, requires_grad=True)
    y = gg.tensor([1.5, 0.25, -1.0], dtype=gg.float64)
    outs = evaluate(joint, x, y, gg.tensor(1.0, dtype=gg.float64))
    want = run(joint, x.detach(), y, np.array(1.0))
    for got, w in zip(outs, want):
        np.testing.assert_allclose(got.detach().numpy(), w, rtol=1e-15)
    outs[1].sum().backward()  # d/dx sum(y (1 - tanh^2 x)) through the gradient program
    t = np.tanh(x.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), y.numpy() * -2 * t * (1 - t * t), rtol=1e-14)


# ---------------------------------------------------------------- partition and its policy

def _split(text: str, wrt=None):
    prog = _p(text)
    joint = vjp(prog, wrt)
    part = partition(joint)
    check(part.forward), check(part.backward)
    return prog, joint, part


def _run_split(part, inputs: list, cts: list) -> list:
    res = run(part.forward, *inputs)
    saved = [inputs[i] for i in part.saved_inputs]
    return res[:part.n_outputs] + run(part.backward, *saved, *res[part.n_outputs:], *cts)


def _residual_names(part) -> list[str]:
    return [e.prim.name for e in part.forward.eqns for r in part.forward.outputs[part.n_outputs:]
            if e.out is r]


def test_partition_equals_joint() -> None:
    prog, joint, part = _split(TANH_MUL)
    x, y, ct = np.array([0.1, -0.5, 2.0]), np.array([1.5, 0.25, -1.0]), np.array(0.5)
    for a, b in zip(_run_split(part, [x, y], [ct]), run(joint, x, y, ct), strict=True):
        np.testing.assert_array_equal(a, b)


def test_policy_recomputes_cheap_values_of_inputs() -> None:
    # tanh(x) and 1 - tanh(x)^2 are elementwise in the inputs: nothing but inputs is saved.
    _, _, part = _split(TANH_MUL)
    assert part.n_residuals == 0 and part.saved_inputs == (0, 1)
    assert [e.prim.name for e in part.backward.eqns].count("tanh") == 1
    assert str(part.forward) == _text("""
        def (%x:f64[3], %y:f64[3]):
          %0:f64[3] = tanh %x  # model.py:1
          %1:f64[3] = mul %0, %y  # model.py:2
          %2:f64[] = reduce_sum[axes=(0,)] %1  # model.py:3
          return %2
        """)


def test_policy_recomputes_a_bias_broadcast() -> None:
    _, _, part = _split("""
        def (%x:f32[64,32], %w:f32[32,16], %b:f32[16]):
          %0:f32[64,16] = matmul %x, %w
          %1:f32[64,16] = broadcast_in_dim[dims=(1,), shape=(64, 16)] %b
          %2:f32[64,16] = add %0, %1
          %3:f32[64,16] = mul %2, %1
          %4:f32[] = reduce_sum[axes=(0, 1)] %3
          return %4
        """)
    # the broadcast (4 KiB) is rebuilt from b (64 bytes); the matmul output must be saved
    assert _residual_names(part) == ["add"] and 2 in part.saved_inputs
    assert "broadcast_in_dim" in [e.prim.name for e in part.backward.eqns]


def test_policy_saves_a_mask_rather_than_its_float_source() -> None:
    _, _, part = _split("""
        def (%x:f32[8,4], %w:f32[4,4]):
          %0:f32[8,4] = matmul %x, %w
          %1:bool[8,4] = le %0, 0.0:f32
          %2:f32[8,4] = select %1, 0.0:f32, %0
          %3:f32[] = reduce_sum[axes=(0, 1)] %2
          return %3
        """)
    kinds = [r.aval.dtype.name for r in part.forward.outputs[part.n_outputs:]]
    assert kinds == ["bool"]  # 32 bytes instead of the matmul's 128


def test_policy_never_recomputes_a_comparison_of_a_library_function() -> None:
    # max's gradient mask x == max(x), x = exp(tanh(w) * w): recomputed in the backward, exp
    # may round differently there (float64: the forward's loop calls libmvec's vector exp, the
    # backward's the scalar one) and miss the maximum. The mask is saved, not its source.
    _, joint, part = _split("""
        def (%w:f64[4,64]):
          %0:f64[4,64] = tanh %w
          %1:f64[4,64] = mul %0, %w
          %2:f64[4,64] = exp %1
          %3:f64[4] = reduce_max[axes=(1,)] %2
          %4:f64[] = reduce_sum[axes=(0,)] %3
          return %4
        """)
    assert "eq" not in [e.prim.name for e in part.backward.eqns]
    assert "bool" in [r.aval.dtype.name for r in part.forward.outputs[part.n_outputs:]]
    # a comparison of exact arithmetic on the inputs is still recomputed (when it is cheaper)
    _, _, part = _split("""
        def (%w:f64[4,64]):
          %1:f64[4,64] = mul %w, %w
          %3:f64[4] = reduce_max[axes=(1,)] %1
          %4:f64[] = reduce_sum[axes=(0,)] %3
          return %4
        """)
    assert "eq" in [e.prim.name for e in part.backward.eqns]


def test_policy_never_saves_more_than_saving_everything_read() -> None:
    _, joint, part = _split("""
        def (%x:f32[16], %y:f32[16]):
          %0:f32[16] = sin %x
          %1:f32[16] = mul %0, %y
          %2:f32[16] = exp %1
          %3:f32[16] = mul %2, %0
          %4:f32[] = reduce_sum[axes=(0,)] %3
          %5:f32[] = reduce_max[axes=(0,)] %3
          %6:f32[] = add %4, %5
          return %6
        """)
    def nbytes(vs):
        return sum(v.aval.size * v.aval.dtype.itemsize for v in vs)
    residuals = part.forward.outputs[part.n_outputs:]
    tangent_free = {e.out for e in joint.eqns[:7]}
    read = {a for e in joint.eqns[7:] for a in e.inputs if a in tangent_free}
    assert nbytes(residuals) <= nbytes(read)
    x, y, ct = np.linspace(-1, 1, 16, dtype=np.float32), np.ones(16, np.float32), np.float32(1)
    for a, b in zip(_run_split(part, [x, y], [np.array(ct)]), run(joint, x, y, np.array(ct))):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_policy_saves_a_shared_matmul_output_once() -> None:
    # x - mean and (x - mean)^2 both come from the matmul output: save it (and the small
    # mean), not the two [8,16] differences.
    _, joint, part = _split("""
        def (%x:f32[8,4], %w:f32[4,16]):
          %0:f32[8,16] = matmul %x, %w
          %1:f32[8] = reduce_sum[axes=(1,)] %0
          %2:f32[8,16] = broadcast_in_dim[dims=(0,), shape=(8, 16)] %1
          %3:f32[8,16] = sub %0, %2
          %4:f32[8,16] = tanh %3
          %5:f32[8,16] = mul %3, %3
          %6:f32[8,16] = sin %5
          %7:f32[8,16] = mul %4, %6
          %8:f32[] = reduce_sum[axes=(0, 1)] %7
          return %8
        """)
    assert sorted(_residual_names(part)) == ["matmul", "reduce_sum"]
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((4, 16)).astype(np.float32)
    for a, b in zip(_run_split(part, [x, w], [np.float32(1)]), run(joint, x, w, np.float32(1))):
        np.testing.assert_allclose(a, b, rtol=1e-6)
