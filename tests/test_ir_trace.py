"""Tracing: traced programs equal eager results; every stop reason names the user's line."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd import record
from gradgen.ir import check, parse, run, unflatten
from gradgen.ir.trace import TraceError, trace
from gradgen.ir.trace_inputs import input_values
from gradgen.ops.registry import Aval, Primitive
from gradgen.tensor import Tensor

HERE = os.path.basename(__file__)
RNG = np.random.default_rng(1)


def _t(*shape, dtype=np.float64, requires_grad=False, lo=-1.0, hi=1.0):
    t = gg.tensor(RNG.uniform(lo, hi, shape).astype(dtype))
    return t.requires_grad_(requires_grad)


def _here() -> str:
    """``test_ir_trace.py:<line of the caller's next line>``."""
    return f"{HERE}:{sys._getframe(1).f_lineno + 1}"


# ---------------------------------------------------------------- a corpus of functions

W = _t(3, 4, requires_grad=True)
B = _t(4, requires_grad=True)


def mlp(x):
    h = (x @ W + B).tanh()
    return (h * h).mean()


def broadcasting(x, y):
    return (x + y) * 2 - y / 3 + 1


def promotion(x, n):
    return x * n + n  # float tensor with an int tensor


def reductions(x):
    return {"sum": x.sum(dim=1, keepdim=True), "max": x.max(), "var": x.var(dim=0),
            "lse": gg.logsumexp(x, dim=1), "argmax": x.argmax(dim=1), "shape": x.shape}


def softmax_like(x):
    e = (x - x.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def where_clamp(x, y):
    return gg.where(x > y, x, y).clamp(-0.5, 0.5), gg.maximum(x, y), (x > 0).sum()


def shapes(x, y):
    z = gg.cat([x, y], dim=0).transpose(0, 1).reshape(-1)
    return [gg.stack([x, y]).flip(0), z.unsqueeze(0), 3.5]


def matmul_chain(a, b, c):
    return (a @ b).relu() @ c, gg.outer(a[0] if False else a.sum(0), c.sum(1))


def fan_out(x):
    y = x.sigmoid()
    return y * y + y.exp() + y


def constants_inside(x):
    k = gg.tensor([1.0, 2.0, 3.0], dtype=gg.float64)
    return x * k + gg.ones(3, dtype=gg.float64), k


def under_no_grad(x):
    with gg.no_grad():
        s = (x * 2).sum()
    return x * s + x.detach()


def indexing(x, idx):
    a, b = x.split([1, 2], dim=0)
    return x[1:, ::2] * 2, x[idx], x[:, -1], a.sum() + b.mean(), x[..., None].squeeze(-1)


def classifier(x, y):
    import gradgen.nn.functional as F
    h = F.layer_norm(F.linear(x, W, B[:3]), (3,))
    return F.cross_entropy(F.gelu(h), y), F.softmax(h, dim=-1), F.mse_loss(h, h * 0.5)


def identity_and_reuse(x, y):
    return x, y, x


CORPUS = [
    (mlp, lambda: (_t(5, 3),)),
    (broadcasting, lambda: (_t(2, 3, requires_grad=True), _t(3))),
    (promotion, lambda: (_t(2, 2, dtype=np.float32), gg.tensor([[1, 2], [3, 4]]))),
    (reductions, lambda: (_t(3, 4),)),
    (softmax_like, lambda: (_t(2, 5, dtype=np.float32, requires_grad=True),)),
    (where_clamp, lambda: (_t(4), _t(4))),
    (shapes, lambda: (_t(2, 3), _t(2, 3))),
    (matmul_chain, lambda: (_t(2, 3), _t(3, 4), _t(4, 2))),
    (fan_out, lambda: (_t(3, requires_grad=True),)),
    (constants_inside, lambda: (_t(3),)),
    (under_no_grad, lambda: (_t(3, requires_grad=True),)),
    (indexing, lambda: (_t(3, 4), gg.tensor(RNG.integers(-3, 3, (2, 2))))),
    (classifier, lambda: (_t(5, 4), gg.tensor(RNG.integers(0, 3, 5)))),
    (identity_and_reuse, lambda: (_t(2), _t(1))),
]


def _values(obj):
    from gradgen.ir.tree import flatten
    leaves, tree = flatten(obj)
    return [t._data for t in leaves], tree


@pytest.mark.parametrize("fn,make", CORPUS, ids=[f.__name__ for f, _ in CORPUS])
def test_traced_program_equals_eager(fn, make):
    prog = check(trace(fn, *make()))
    args = make()  # fresh values: a value baked into the program as a constant would show
    want, want_tree = _values(fn(*args))
    got = run(prog, *input_values(prog, *args))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    rebuilt = unflatten(prog.meta["out_tree"], [Tensor._make(g) for g in got])
    assert _values(rebuilt)[1] == want_tree
    assert str(parse(str(prog), _consts(prog))) == str(prog)
    for e in prog.eqns:
        assert e.loc is not None and e.loc.startswith(HERE + ":"), e


def _consts(prog):
    from gradgen.ir import constant_table
    return constant_table(prog)


def test_text_of_a_traced_function():
    x = gg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    line = sys._getframe().f_lineno
    prog = trace(lambda x, y: (x * y + 1).sum(dim=1), x, gg.tensor([0.5, 0.25, 2.0]))
    loc = f"{HERE}:{line + 1}"
    assert str(prog) == textwrap.dedent(f"""\
        def (%x:f32[1,3], %y:f32[3]):
          %0:f32[1,3] = broadcast_in_dim[dims=(1,), shape=(1, 3)] %y  # {loc}
          %1:f32[1,3] = mul %x, %0  # {loc}
          %2:f32[1,3] = add %1, 1.0:f32  # {loc}
          %3:f32[1] = reduce_sum[axes=(1,)] %2  # {loc}
          return %3""")


# ---------------------------------------------------------------- inputs and meta


def test_meta_describes_inputs_and_outputs():
    x, y = _t(2, requires_grad=True), _t(2)

    def f(x, pair, scale, *rest):
        return {"out": x * pair[1] * scale + W.sum() + rest[0]}, 7

    prog = trace(f, x, (3, y), 2.0, _t(2))
    m = prog.meta
    assert m["argnums"] == (0, 1, 3) and m["n_explicit"] == 3
    assert [v.name for v in prog.inputs] == ["x", "pair_0", "rest0", "c0"]
    assert m["captured"][0] is W
    assert m["requires_grad"] == (True, False, False, True)
    assert m["out_tree"][0] == "seq" and m["out_tree"][2][1] == ("const", 7)
    check(prog)


def test_captured_tensors_are_read_by_reference():
    w = gg.tensor([1.0, 2.0])
    prog = trace(lambda x: x * w, gg.tensor([3.0, 4.0]))
    x = gg.tensor([1.0, 1.0])
    np.testing.assert_array_equal(run(prog, *input_values(prog, x))[0], [1.0, 2.0])
    with gg.no_grad():
        w.mul_(10)  # an in-place update between calls is seen, never a stale copy
    np.testing.assert_array_equal(run(prog, *input_values(prog, x))[0], [10.0, 20.0])
    with pytest.raises(TypeError, match="structure"):
        input_values(prog, x, x)


def test_tracing_follows_the_callers_grad_mode():
    x = _t(3, requires_grad=True)
    text = str(trace(under_no_grad, x))
    assert text.count("stop_gradient") == 2  # the no_grad block's result, and detach()
    with gg.no_grad():  # as eager: everything fn computes is cut from the gradient
        cut = str(trace(under_no_grad, x))
    assert gg.is_grad_enabled()  # restored
    assert cut.count("stop_gradient") > text.count("stop_gradient")

    def branches(x):  # fn sees the grad mode it is called in, as eager code would
        y = x * 2
        return x.exp() if gg.is_grad_enabled() and y.requires_grad else x.sin()
    assert "exp" in str(trace(branches, x))
    with gg.no_grad():
        assert "sin" in str(trace(branches, x))


def test_tracing_records_prims_without_requires_grad():
    prog = trace(lambda x: (x * 2).exp(), _t(3))
    assert [e.prim.name for e in prog.eqns] == ["mul", "exp"]
    assert prog.meta["requires_grad"] == (False,)


def test_data_alias_is_a_detached_value():
    x = _t(3, requires_grad=True)
    prog = trace(lambda x: x.data * x, x)
    assert [e.prim.name for e in prog.eqns] == ["stop_gradient", "mul"]
    np.testing.assert_array_equal(run(prog, x._data)[0], x._data * x._data)


# ---------------------------------------------------------------- stop reasons


def _stops(fn, *args):
    with pytest.raises(TraceError) as info:
        trace(fn, *args)
    assert record.tracer[0] is None and record.stop_tracing[0] is None
    assert Tensor.__dict__["_init"] is _INIT and gg.is_grad_enabled()
    return info.value


_INIT = Tensor.__dict__["_init"]


_FLOW = "a tensor's value flows into Python: "
# One function per line: the expected location is the function's own line.
VALUE_FLOWS = [
    (lambda x: x.sum().item(), _FLOW + "item()"),
    (lambda x: x if x.sum() > 0 else -x, _FLOW + "boolean()"),
    (lambda x: float(x.sum()), _FLOW + "float()"),
    (lambda x: int(x.sum()), _FLOW + "int()"),
    (lambda x: x.tolist(), _FLOW + "tolist()"),
    (lambda x: np.asarray(x.detach()), "an operation outside the registry: numpy applied to a tensor's data"),
    (lambda x: [r for r in x], "iteration over a tensor (its length becomes a Python value)"),
    (lambda x: repr(x.sum()), _FLOW + "formatting (print/repr/str)"),
    (lambda x: f"{x.sum():.3f}", _FLOW + "formatting (print/repr/str)"),
    (lambda x: [1, 2, 3][gg.tensor(1)], _FLOW + "used as an index"),
]


@pytest.mark.parametrize("fn,reason", VALUE_FLOWS, ids=[r for _, r in VALUE_FLOWS])
def test_value_flowing_into_python_stops(fn, reason):
    err = _stops(fn, _t(2, 2))
    where = f"{HERE}:{fn.__code__.co_firstlineno}"
    assert (err.reason, err.where) == (reason, where)
    assert str(err) == f"{reason} (at {where})"


def test_random_number_generation_stops():
    where = []

    def fn(x):
        where.append(_here())
        return x + gg.randn(3)
    err = _stops(fn, _t(3))
    assert (err.reason, err.where) == ("random number generation", where[0])


def test_operation_outside_the_registry_stops():
    rogue = Primitive("rogue_op", np.negative, lambda x: x, None, "")
    where = []

    def fn(x):
        where.append(_here())
        return rogue(x * 2)
    err = _stops(fn, _t(3))
    assert (err.reason, err.where) == ("an operation outside the registry: rogue_op", where[0])


def test_boolean_mask_indexing_stops():
    x = _t(4)
    where = []

    def fn(x):
        where.append(_here())
        return x[x > 0]
    err = _stops(fn, x)
    assert err.reason == "indexing with a boolean mask (the result's shape depends on the data)"
    assert err.where == where[0]


def test_custom_autograd_function_stops():
    Function = gg.autograd.Function

    class Double(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2
    where = []

    def fn(x):
        where.append(_here())
        return Double.apply(x)
    err = _stops(fn, _t(3, requires_grad=True))
    assert "custom autograd.Function" in err.reason and err.where == where[0]


def test_inplace_mutation_of_an_input_that_requires_grad_stops():
    where = []

    def fn(x):
        with gg.no_grad():
            where.append(_here())
            x.mul_(2)
        return x * 3
    err = _stops(fn, _t(3, requires_grad=True))
    assert (err.reason, err.where) == ("in-place mutation of an input that requires grad", where[0])


def test_a_swallowed_stop_still_stops():
    where = []

    def fn(x):
        try:
            where.append(_here())
            x.sum().item()
        except Exception:  # noqa: BLE001  (user code hiding the error)
            pass
        return x * 2
    err = _stops(fn, _t(3))
    assert err.where == where[0] and "item()" in err.reason


def test_errors_in_fn_propagate_and_restore_state():
    def fn(x):
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        trace(fn, _t(2))
    assert record.tracer[0] is None and Tensor.__dict__["_init"] is _INIT


def test_nested_trace_is_refused():
    err = _stops(lambda x: trace(lambda y: y * 2, x), _t(2))
    assert "nested tracing" in err.reason


def test_same_tensor_twice_is_refused():
    x = _t(2)
    with pytest.raises(TraceError, match="the same tensor is passed as two arguments"):
        trace(lambda a, b: a + b, x, x)


# ---------------------------------------------------------------- stability across processes

_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import test_ir_trace as T
    from gradgen.ir.trace import trace
    for fn, make in T.CORPUS:
        print(trace(fn, *make()))
""")


def test_text_is_identical_across_processes():
    here = os.path.dirname(os.path.abspath(__file__))
    script = _SCRIPT.format(tests=here)
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                           cwd=os.path.dirname(here), timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]
    assert outs[0] == "".join(str(trace(fn, *make())) + "\n" for fn, make in CORPUS)


# ---------------------------------------------------------------- in-place writes


def _write(target, value):
    """What an in-place front-end function does: write, bump the version, tell the tracer."""
    from gradgen.ir.trace_writes import traced_inplace
    target._data[...] = value._data
    target._version.value += 1
    if record.tracer[0] is not None:
        traced_inplace(target, value)


def test_inplace_write_into_an_intermediate_is_followed():
    def fn(x):
        y = x * 2
        _write(y, y + 1)
        return y * 3

    x = _t(3)
    want = fn(x)._data
    prog = check(trace(fn, x))
    assert [e.prim.name for e in prog.eqns] == ["mul", "add", "mul"]
    np.testing.assert_array_equal(run(prog, x._data)[0], want)


def test_inplace_write_into_an_input_stops():
    err = _stops(lambda x: _write(x, x + 1), _t(3))
    assert err.reason == "in-place mutation of a program input (the IR holds no mutation)"
    # The innermost frame outside gradgen: here the helper standing in for the front end.
    assert err.where == f"{HERE}:{_write.__code__.co_firstlineno + 6}"


def test_untold_write_into_a_traced_tensor_stops():
    where = []

    def fn(x):
        y = x * 2
        y._version.value += 1  # a write the tracer was not told about
        where.append(_here())
        return y + 1
    err = _stops(fn, _t(3))
    assert "in-place mutation of a traced tensor the tracer was not told about" in err.reason
    assert err.where == where[0]


def test_untold_write_into_an_unused_input_stops_at_the_end():
    def fn(x, w):
        w._version.value += 1
        return x * 2
    err = _stops(fn, _t(3), _t(3, requires_grad=True))
    assert err.reason == "in-place mutation of an input that requires grad"


def test_before_inplace_names_the_reason():
    from gradgen.ir.trace_writes import before_inplace
    where = []

    def into_input(x):
        where.append(_here())
        before_inplace(x)
    err = _stops(into_input, _t(3, requires_grad=True))
    assert (err.reason, err.where) == ("in-place mutation of an input that requires grad", where[0])

    def into_intermediate(x):
        where.append(_here())
        before_inplace(x * 2)
    err = _stops(into_intermediate, _t(3))
    assert err.reason == "an in-place operation (the traced program would not see the write)"
    assert err.where == where[1]
    assert trace(lambda x: before_inplace(x * 2, supported=True) or x, _t(2)).eqns
    before_inplace(_t(2))  # no trace: nothing to do
