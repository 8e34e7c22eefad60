"""In-place operations: values against numpy, gradients against the out-of-place ops and
gradcheck, version counters, grad_fn names and error messages against PyTorch 2.13.

Scenarios written against a module ``T`` run on gradgen here; the same scenarios run on
PyTorch in ``test_scenarios_match_torch`` (skipped without torch), which is how the
expected values below were obtained.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd import gradcheck, gradgradcheck
from gradgen.autograd.record import TraceError
from gradgen.functions.inplace_checks import LEAF_MESSAGE, OVERLAP_MESSAGE, PARTIAL_MESSAGE
from gradgen.ir import run as run_program
from gradgen.ir.trace import trace
from gradgen.ops.indexing import slice_
from gradgen.ops.shape import broadcast_in_dim, reshape, transpose


def ver(t) -> int:
    v = t._version
    return v if isinstance(v, int) else v.value


def iadd(t, o):
    t += o
    return t


def isub(t, o):
    t -= o
    return t


def imul(t, o):
    t *= o
    return t


def idiv(t, o):
    t /= o
    return t


# ---------------------------------------------------------------- the op table
# (id, in-place call, out-of-place equivalent, numpy reference, other's kind, positive data,
#  PyTorch's grad_fn name). Kinds: "t" a tensor operand, "s" no tensor operand.
OPS = [
    ("add_", lambda t, o: t.add_(o), lambda t, o: t + o, lambda a, b: a + b, "t", False, "AddBackward0"),
    ("add_alpha", lambda t, o: t.add_(o, alpha=2.5), lambda t, o: t.add(o, alpha=2.5),
     lambda a, b: a + 2.5 * b, "t", False, "AddBackward0"),
    ("sub_", lambda t, o: t.sub_(o), lambda t, o: t - o, lambda a, b: a - b, "t", False, "SubBackward0"),
    ("sub_alpha", lambda t, o: t.sub_(o, alpha=-1.5), lambda t, o: t.sub(o, alpha=-1.5),
     lambda a, b: a + 1.5 * b, "t", False, "SubBackward0"),
    ("mul_", lambda t, o: t.mul_(o), lambda t, o: t * o, lambda a, b: a * b, "t", False, "MulBackward0"),
    ("div_", lambda t, o: t.div_(o), lambda t, o: t / o, lambda a, b: a / b, "t", True, "DivBackward0"),
    ("pow_", lambda t, o: t.pow_(o), lambda t, o: t ** o, lambda a, b: a ** b, "t", True, "PowBackward1"),
    ("iadd", iadd, lambda t, o: t + o, lambda a, b: a + b, "t", False, "AddBackward0"),
    ("isub", isub, lambda t, o: t - o, lambda a, b: a - b, "t", False, "SubBackward0"),
    ("imul", imul, lambda t, o: t * o, lambda a, b: a * b, "t", False, "MulBackward0"),
    ("idiv", idiv, lambda t, o: t / o, lambda a, b: a / b, "t", True, "DivBackward0"),
    ("clamp_t", lambda t, o: t.clamp_(o), lambda t, o: t.clamp(o), np.maximum, "t", False,
     "ClampBackward0"),
    ("clamp_min_t", lambda t, o: t.clamp_min_(o), lambda t, o: t.clamp(min=o), np.maximum, "t", False,
     "ClampMinBackward1"),
    ("clamp_max_t", lambda t, o: t.clamp_max_(o), lambda t, o: t.clamp(max=o), np.minimum, "t", False,
     "ClampMaxBackward1"),
    ("copy_", lambda t, o: t.copy_(o), lambda t, o: t * 0 + o, lambda a, b: a * 0 + b, "t", False,
     "CopyBackwards"),
    ("add_s", lambda t, o: t.add_(1.5), lambda t, o: t + 1.5, lambda a, b: a + 1.5, "s", False,
     "AddBackward0"),
    ("mul_s", lambda t, o: t.mul_(-2), lambda t, o: t * -2, lambda a, b: a * -2, "s", False, "MulBackward0"),
    ("div_s", lambda t, o: t.div_(4), lambda t, o: t / 4, lambda a, b: a / 4, "s", False, "DivBackward0"),
    ("pow_s", lambda t, o: t.pow_(3), lambda t, o: t ** 3, lambda a, b: a ** 3, "s", False, "PowBackward0"),
    ("clamp_", lambda t, o: t.clamp_(-0.5, 0.7), lambda t, o: t.clamp(-0.5, 0.7),
     lambda a, b: np.clip(a, -0.5, 0.7), "s", False, "ClampBackward1"),
    ("clamp_min_", lambda t, o: t.clamp_min_(0.2), lambda t, o: t.clamp(min=0.2),
     lambda a, b: np.maximum(a, 0.2), "s", False, "ClampMinBackward0"),
    ("clamp_max_", lambda t, o: t.clamp_max_(0.2), lambda t, o: t.clamp(max=0.2),
     lambda a, b: np.minimum(a, 0.2), "s", False, "ClampMaxBackward0"),
    ("zero_", lambda t, o: t.zero_(), lambda t, o: t * 0, lambda a, b: a * 0, "s", False, "ZeroBackward0"),
    ("fill_", lambda t, o: t.fill_(2.5), lambda t, o: t * 0 + 2.5, lambda a, b: a * 0 + 2.5, "s", False,
     "FillBackward2"),
    ("neg_", lambda t, o: t.neg_(), lambda t, o: -t, lambda a, b: -a, "s", False, "NegBackward0"),
    ("abs_", lambda t, o: t.abs_(), lambda t, o: t.abs(), lambda a, b: np.abs(a), "s", False, "AbsBackward0"),
    ("sign_", lambda t, o: t.sign_(), lambda t, o: t.sign(), lambda a, b: np.sign(a), "s", False,
     "SignBackward0"),
    ("relu_", lambda t, o: t.relu_(), lambda t, o: t.relu(), lambda a, b: np.maximum(a, 0), "s", False,
     "ReluBackward0"),
    ("exp_", lambda t, o: t.exp_(), lambda t, o: t.exp(), lambda a, b: np.exp(a), "s", False, "ExpBackward0"),
    ("expm1_", lambda t, o: t.expm1_(), lambda t, o: t.expm1(), lambda a, b: np.expm1(a), "s", False,
     "Expm1Backward0"),
    ("log_", lambda t, o: t.log_(), lambda t, o: t.log(), lambda a, b: np.log(a), "s", True, "LogBackward0"),
    ("log2_", lambda t, o: t.log2_(), lambda t, o: t.log2(), lambda a, b: np.log2(a), "s", True,
     "Log2Backward0"),
    ("log10_", lambda t, o: t.log10_(), lambda t, o: t.log10(), lambda a, b: np.log10(a), "s", True,
     "Log10Backward0"),
    ("log1p_", lambda t, o: t.log1p_(), lambda t, o: t.log1p(), lambda a, b: np.log1p(a), "s", True,
     "Log1PBackward0"),
    ("sqrt_", lambda t, o: t.sqrt_(), lambda t, o: t.sqrt(), lambda a, b: np.sqrt(a), "s", True,
     "SqrtBackward0"),
    ("rsqrt_", lambda t, o: t.rsqrt_(), lambda t, o: t.rsqrt(), lambda a, b: 1 / np.sqrt(a), "s", True,
     "RsqrtBackward0"),
    ("reciprocal_", lambda t, o: t.reciprocal_(), lambda t, o: t.reciprocal(), lambda a, b: 1 / a, "s",
     True, "ReciprocalBackward0"),
    ("square_", lambda t, o: t.square_(), lambda t, o: t.square(), lambda a, b: a * a, "s", False,
     "PowBackward0"),
    ("sin_", lambda t, o: t.sin_(), lambda t, o: t.sin(), lambda a, b: np.sin(a), "s", False, "SinBackward0"),
    ("cos_", lambda t, o: t.cos_(), lambda t, o: t.cos(), lambda a, b: np.cos(a), "s", False, "CosBackward0"),
    ("tanh_", lambda t, o: t.tanh_(), lambda t, o: t.tanh(), lambda a, b: np.tanh(a), "s", False,
     "TanhBackward0"),
    ("sigmoid_", lambda t, o: t.sigmoid_(), lambda t, o: t.sigmoid(), lambda a, b: 1 / (1 + np.exp(-a)),
     "s", False, "SigmoidBackward0"),
    ("erf_", lambda t, o: t.erf_(), lambda t, o: t.erf(), None, "s", False, "ErfBackward0"),
]
IDS = [op[0] for op in OPS]
TENSOR_OPS = [op for op in OPS if op[4] == "t"]
# Operands of every broadcasting shape for the ops that take a tensor.
GRAD_CASES = [pytest.param(op, shape, id=f"{op[0]}-{list(shape)}") for op in OPS
              for shape in ([(2, 3), (3,), (2, 1), ()] if op[4] == "t" else [(2, 3)])]


def _data(positive: bool, shape: tuple, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.3, 1.7, shape) if positive else rng.uniform(-1.5, 1.5, shape)


def _reference(ref, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if ref is None:  # erf: no numpy function; the out-of-place op is tested elsewhere
        return gg.tensor(a).erf().numpy()
    return np.broadcast_to(ref(a, b), a.shape)


@pytest.mark.parametrize("op", OPS, ids=IDS)
@pytest.mark.parametrize("dt", [gg.float32, gg.float64])
def test_values_leaf_without_grad(op, dt) -> None:
    _, fn, _, ref, _, pos, _ = op
    a, b = _data(pos, (2, 3), 0), _data(pos, (2, 3), 1)
    t = gg.tensor(a, dtype=dt)
    memory = t._data
    r = fn(t, gg.tensor(b, dtype=dt))
    assert r is t and t._data is memory and t.dtype is dt and t.is_leaf and not t.requires_grad
    assert ver(t) == 1
    tol = 1e-6 if dt is gg.float32 else 1e-12
    np.testing.assert_allclose(t.numpy(), _reference(ref, a.astype(dt.np), b.astype(dt.np)),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("op, other_shape", GRAD_CASES)
def test_gradients_match_out_of_place(op, other_shape) -> None:
    """A non-leaf written in place; broadcasting operands that require grad."""
    _, fn, out_of_place, _, kind, pos, grad_name = op
    a, b, w = _data(pos, (2, 3), 2), _data(pos, other_shape, 3), _data(False, (2, 3), 4)
    grads = []
    for inplace in (True, False):
        x = gg.tensor(a, dtype=gg.float64, requires_grad=True)
        o = gg.tensor(b, dtype=gg.float64, requires_grad=True)
        y = x * 1.0
        if inplace:
            r = fn(y, o)
            assert r is y and ver(y) == 1 and type(y.grad_fn).__name__ == grad_name
        else:
            y = out_of_place(y, o)
        (y * gg.tensor(w)).sum().backward()
        grads.append((y.detach().numpy().copy(), x.grad.numpy(),
                      None if o.grad is None else o.grad.numpy()))
    (v1, gx1, go1), (v2, gx2, go2) = grads
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-12, atol=1e-12)
    if kind == "t":
        np.testing.assert_allclose(go1, go2, rtol=1e-12, atol=1e-12)


def _grads_of_inplace(T, op, other_shape):
    _, fn, _, _, _, pos, _ = op
    x = T.tensor(_data(pos, (2, 3), 2), requires_grad=True)
    o = T.tensor(_data(pos, other_shape, 3), requires_grad=True)
    y = x * 1.0
    fn(y, o)
    (y * T.tensor(_data(False, (2, 3), 4))).sum().backward()
    return (type(y.grad_fn).__name__, y.detach().numpy(), x.grad.numpy(),
            None if o.grad is None else o.grad.numpy())


@pytest.mark.parametrize("op, other_shape", GRAD_CASES)
def test_op_table_matches_torch(op, other_shape) -> None:
    """PyTorch gives the grad_fn names of the table, and the same values and gradients."""
    torch = pytest.importorskip("torch")
    mine, theirs = _grads_of_inplace(gg, op, other_shape), _grads_of_inplace(torch, op, other_shape)
    assert mine[0] == theirs[0] == op[6]
    for a, b in zip(mine[1:], theirs[1:]):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", TENSOR_OPS, ids=[op[0] for op in TENSOR_OPS])
def test_leaf_without_grad_with_operand_that_requires_grad(op) -> None:
    _, fn, out_of_place, _, _, pos, grad_name = op
    a, b = _data(pos, (2, 3), 5), _data(pos, (2, 3), 6)
    t = gg.tensor(a, dtype=gg.float64)
    o = gg.tensor(b, dtype=gg.float64, requires_grad=True)
    fn(t, o)
    assert not t.is_leaf and t.requires_grad and type(t.grad_fn).__name__ == grad_name
    t.sum().backward()
    o2 = gg.tensor(b, dtype=gg.float64, requires_grad=True)
    out_of_place(gg.tensor(a, dtype=gg.float64), o2).sum().backward()
    np.testing.assert_allclose(o.grad.numpy(), o2.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_under_no_grad_a_leaf_that_requires_grad_is_written(op) -> None:
    _, fn, _, ref, _, pos, _ = op
    a, b = _data(pos, (3,), 7), _data(pos, (3,), 8)
    w = gg.tensor(a, dtype=gg.float64, requires_grad=True)
    with gg.no_grad():
        fn(w, gg.tensor(b, dtype=gg.float64, requires_grad=True))
    assert w.is_leaf and w.requires_grad and w.grad_fn is None and ver(w) == 1
    np.testing.assert_allclose(w.detach().numpy(), _reference(ref, a, b), rtol=1e-12)


@pytest.mark.parametrize("op", OPS, ids=IDS)
@pytest.mark.parametrize("view", ["transpose", "slice", "reshape", "detach"])
def test_write_through_a_view_reaches_the_base(op, view) -> None:
    _, fn, _, ref, _, pos, _ = op
    base_np = _data(pos, (4, 3), 9)
    base = gg.tensor(base_np, dtype=gg.float64)
    expect = base_np.copy()
    v, v_np = {
        "transpose": lambda: (transpose(base, perm=(1, 0)), expect.T),
        "slice": lambda: (slice_(base, starts=(1, 0), stops=(4, 3), steps=(2, 1)), expect[1:4:2]),
        "reshape": lambda: (reshape(base, shape=(2, 6)), expect.reshape(2, 6)),
        "detach": lambda: (base.detach(), expect),
    }[view]()
    b = _data(pos, v.shape[-1:], 10)  # broadcasts along the view's leading axis
    v_np[...] = _reference(ref, v_np.copy(), b)  # numpy's view writes into ``expect``
    assert fn(v, gg.tensor(b, dtype=gg.float64)) is v
    assert ver(base) == ver(v) == 1
    np.testing.assert_allclose(base.numpy(), expect, rtol=1e-12)


# ---------------------------------------------------------------- dtypes

DTYPE_CASES = [
    # (id, self values, self dtype, call, expected values, expected dtype)
    ("int_add_int", [1, 2, 3], "int64", lambda T, t: t.add_(2), [3, 4, 5], "int64"),
    ("int32_mul_int", [1, 2, 3], "int32", lambda T, t: t.mul_(3), [3, 6, 9], "int32"),
    ("int32_add_int64", [1, 2, 3], "int32", lambda T, t: t.add_(T.tensor([1, 1, 1])), [2, 3, 4], "int32"),
    ("f32_add_f64", [1, 2, 3], "float32", lambda T, t: t.add_(T.tensor([0.5], dtype=T.float64)),
     [1.5, 2.5, 3.5], "float32"),
    ("f64_mul_f32", [1, 2, 3], "float64", lambda T, t: t.mul_(T.tensor([2.0])), [2, 4, 6], "float64"),
    ("f32_add_int", [1, 2, 3], "float32", lambda T, t: t.add_(T.tensor([1, 2, 3])), [2, 4, 6], "float32"),
    ("int_neg", [1, -2], "int64", lambda T, t: t.neg_(), [-1, 2], "int64"),
    ("int_pow", [2, 3], "int64", lambda T, t: t.pow_(2), [4, 9], "int64"),
    ("int_clamp", [-5, 0, 5], "int64", lambda T, t: t.clamp_(-1, 2), [-1, 0, 2], "int64"),
    ("int_relu", [-5, 3], "int64", lambda T, t: t.relu_(), [0, 3], "int64"),
    ("int_copy_float", [0, 0], "int64", lambda T, t: t.copy_(T.tensor([1.7, -2.5])), [1, -2], "int64"),
    ("int_fill_float", [0, 0], "int64", lambda T, t: t.fill_(1.5), [1, 1], "int64"),
    ("bool_fill_int", [False, True], "bool", lambda T, t: t.fill_(2), [True, True], "bool"),
    ("bool_zero", [False, True], "bool", lambda T, t: t.zero_(), [False, False], "bool"),
    ("f64_copy_int_bcast", [[1, 1], [1, 1]], "float64", lambda T, t: t.copy_(T.tensor([3, 4])),
     [[3, 4], [3, 4]], "float64"),
    ("f32_copy_scalar", [1, 1], "float32", lambda T, t: t.copy_(2.5), [2.5, 2.5], "float32"),
    ("f32_fill_0d_int", [1, 1], "float32", lambda T, t: t.fill_(T.tensor(3)), [3, 3], "float32"),
]


def _dtype_case(T, case):
    _, values, dt, call, _, _ = case
    t = T.tensor(values, dtype=getattr(T, dt))
    assert call(T, t) is t
    return t.tolist(), str(t.dtype), ver(t)


@pytest.mark.parametrize("case", DTYPE_CASES, ids=[c[0] for c in DTYPE_CASES])
def test_dtype_cases(case) -> None:
    assert _dtype_case(gg, case) == (case[4], f"torch.{case[5]}", 1)


@pytest.mark.parametrize("case", DTYPE_CASES, ids=[c[0] for c in DTYPE_CASES])
def test_dtype_cases_match_torch(case) -> None:
    torch = pytest.importorskip("torch")
    assert _dtype_case(torch, case) == (case[4], f"torch.{case[5]}", 1)


def test_gradient_through_a_dtype_conversion() -> None:
    t = gg.zeros(3)
    o = gg.tensor([1.0, 2.0, 3.0], dtype=gg.float64, requires_grad=True)
    t.add_(o)
    t.mul_(o)
    assert t.dtype is gg.float32 and type(t.grad_fn).__name__ == "MulBackward0"
    t.sum().backward()
    assert o.grad.dtype is gg.float64
    np.testing.assert_allclose(o.grad.numpy(), 2 * o.detach().numpy())


# ---------------------------------------------------------------- scenarios shared with PyTorch
# Each scenario takes the module (gradgen or torch) and returns plain values.


def _vals(t) -> list:
    return np.round(np.asarray(t.detach().numpy(), np.float64), 4).tolist()


def _sgd(T):
    rng = np.random.default_rng(0)
    xs = T.tensor(rng.normal(size=8))
    ys = T.tensor(3.0 * rng.normal(size=8) + 0.5)
    w = T.tensor([0.1], dtype=T.float64, requires_grad=True)
    b = T.tensor([0.0], dtype=T.float64, requires_grad=True)
    for _ in range(5):
        loss = ((xs * w + b - ys) ** 2).mean()
        loss.backward()
        with T.no_grad():
            w -= 0.1 * w.grad
            b.sub_(b.grad, alpha=0.1)
        w.grad.zero_()
        b.grad.zero_()
    return _vals(w), _vals(b), ver(w), ver(b), w.is_leaf, w.requires_grad, ver(w.grad)


def _retain(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.mul_(3)
    y.sum().backward()
    return _vals(y.grad), _vals(x.grad), y.retains_grad


def _versions(T):
    a = T.ones(3)
    d = a.detach()
    a.add_(1)
    d.mul_(2)
    a += 1
    with T.no_grad():
        a.zero_()
    a.copy_(a)
    x = T.ones(3, requires_grad=True)
    y = x * 2
    y.add_(1).mul_(2)
    t = T.zeros(3)
    t.add_(x)
    return ver(a), ver(d), ver(y), ver(t), ver(x), t.is_leaf, type(t.grad_fn).__name__


def _rebased(T):
    t = T.zeros(3)
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    t.add_(x).mul_(x).sub_(1)
    t.sum().backward()
    return _vals(t), _vals(x.grad), t.is_leaf, type(t.grad_fn).__name__


def _zero_sends_zeros(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.zero_()
    y.sum().backward()
    return _vals(x.grad), type(y.grad_fn).__name__


def _fill_from_tensor(T):
    v = T.tensor(2.0, requires_grad=True)
    y = T.zeros(3)
    y.fill_(v)
    (y * T.tensor([1.0, 2.0, 3.0])).sum().backward()
    return _vals(v.grad), type(y.grad_fn).__name__


def _copy_broadcast(T):
    s = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)
    x = T.tensor([[1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    y = x * 1
    y.copy_(s)
    (y * T.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    return _vals(s.grad), _vals(x.grad), _vals(y), str(y.dtype), s.grad.dtype == T.float64


def _detached_view(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.detach().add_(1)
    e = x.detach()
    e.mul_(x)
    return _vals(x), ver(x), type(e.grad_fn).__name__, x.is_leaf, e.requires_grad


def _self_operand(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.add_(y)
    y.sum().backward()
    return _vals(x.grad)


def _hook_stays_on_old_value(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(_vals(g)))
    y.mul_(3)
    y.sum().backward()
    return seen


def _front_end_views(T):
    a = T.arange(6.0).reshape(2, 3)
    a.t().add_(1)
    a[0].mul_(2)
    a.view(6)[1:3].zero_()
    a[:, 1:].unsqueeze(0).sub_(T.tensor([1.0, 2.0]))
    a.T[::2].neg_()
    a[1] = 7.0
    a += 1
    return _vals(a), ver(a)


def _expanded(T):
    calls = [lambda: T.ones(1).expand(3).add_(1), lambda: T.ones(3).expand(1, 3).add_(1),
             lambda: T.ones(3).expand(2, 3).fill_(2), lambda: T.ones(2, 1).expand(2, 3).mul_(2),
             lambda: T.ones(3)[None].expand(2, 3).copy_(T.zeros(2, 3)),
             lambda: T.ones(3).expand(2, 3).zero_()]
    return [_outcome(T, lambda T: _vals(call())) for call in calls]


def _saved_output(make, then):
    def scenario(T):
        x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = make(x)
        then(y)
        y.sum().backward()
        return _vals(x.grad)
    return scenario


def _saved_input(make):
    def scenario(T):
        x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = make(x)
        z = y * y
        with T.no_grad():
            y.add_(1)
        z.sum().backward()
    return scenario


def _saved_leaf(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = T.ones(3, requires_grad=True)
    q = x * w
    with T.no_grad():
        w.add_(1)
    q.sum().backward()


SCENARIOS = {
    "sgd": _sgd, "retain_grad_moves": _retain, "versions": _versions, "rebased": _rebased,
    "zero_sends_zeros": _zero_sends_zeros, "fill_from_tensor": _fill_from_tensor,
    "copy_broadcast": _copy_broadcast, "detached_view": _detached_view,
    "self_operand": _self_operand, "hook_stays_on_old_value": _hook_stays_on_old_value,
    "front_end_views": _front_end_views, "expanded": _expanded,
    "add_after_exp": _saved_output(lambda x: x.exp(), lambda y: y.add_(1)),
    "add_after_exp_": _saved_output(lambda x: (x * 2).exp_(), lambda y: y.add_(1)),
    "mul_after_sigmoid_": _saved_output(lambda x: (x * 2).sigmoid_(), lambda y: y.mul_(2)),
    "sub_after_tanh_": _saved_output(lambda x: (x * 2).tanh_(), lambda y: y.sub_(1)),
    "sub_after_sqrt_": _saved_output(lambda x: (x * 2).sqrt_(), lambda y: y.sub_(1)),
    "mul_by_itself": _saved_output(lambda x: x * 2, lambda y: y.mul_(y)),
    "add_after_relu_": _saved_output(lambda x: (x * 2).relu_(), lambda y: y.add_(1)),
    "saved_mul_input": _saved_input(lambda x: x * 2),
    "saved_clamp_input": _saved_input(lambda x: x.clamp(0, 5)),
    "saved_double_input": _saved_input(lambda x: x.double()),
    "saved_leaf": _saved_leaf,
    "leaf": lambda T: T.ones(3, requires_grad=True).add_(1),
    "leaf_iadd": lambda T: iadd(T.ones(3, requires_grad=True), 1),
    "leaf_zero": lambda T: T.ones(3, requires_grad=True).zero_(),
    "leaf_copy": lambda T: T.ones(3, requires_grad=True).copy_(T.ones(3)),
    "leaf_before_shape": lambda T: T.ones(3, requires_grad=True).add_(T.ones(2, 3)),
    "int_plus_float": lambda T: iadd(T.tensor([1, 2, 3]), 1.5),
    "int_div": lambda T: T.tensor([1, 2]).div_(2),
    "int32_plus_double": lambda T: T.tensor([1, 2], dtype=T.int32).add_(
        T.tensor([0.5, 1.0], dtype=T.float64)),
    "bool_plus_int": lambda T: T.tensor([True]).add_(1),
    "int_exp": lambda T: T.tensor([1, 2]).exp_(),
    "int_sqrt": lambda T: T.tensor([1, 2]).sqrt_(),
    "int_clamp_number": lambda T: T.tensor([1, 2]).clamp_(0.5),
    "int32_clamp_min_number": lambda T: T.tensor([1, 2], dtype=T.int32).clamp_min_(0.5),
    "bool_clamp_max_number": lambda T: T.tensor([True]).clamp_max_(0.5),
    "int_clamp_tensor": lambda T: T.tensor([1, 2]).clamp_(T.tensor(0.5)),
    "grow": lambda T: T.ones(3).add_(T.ones(2, 3)),
    "grow_0d": lambda T: T.ones(()).add_(T.ones(1)),
    "grow_rows": lambda T: T.ones(1, 3).mul_(T.ones(2, 3)),
    "grow_before_dtype": lambda T: T.tensor([1, 2, 3]).add_(T.ones(2, 3)),
    "mismatch": lambda T: T.ones(3).add_(T.ones(2)),
    "copy_mismatch": lambda T: T.ones(2).copy_(T.ones(3)),
    "copy_grow": lambda T: T.ones(2).copy_(T.ones(3, 2)),
    "fill_1d": lambda T: T.ones(2).fill_(T.ones(2)),
    "clamp_nothing": lambda T: T.ones(2).clamp_(),
    "bool_neg": lambda T: T.tensor([True]).neg_(),
    "add_str": lambda T: T.ones(2).add_("a"),
    "mul_none": lambda T: T.ones(2).mul_(None),
    "copy_list": lambda T: T.ones(2).copy_([1, 2]),
    "div_ndarray": lambda T: T.ones(2).div_(np.ones(2)),
    "pow_str": lambda T: T.ones(2).pow_("a"),
    "fill_none": lambda T: T.ones(2).fill_(None),
    "clamp_max_str": lambda T: T.ones(2).clamp_max_("a"),
    "clamp_two_bad": lambda T: T.ones(2).clamp_(0, "a"),
    "iadd_str_declines": lambda T: T.ones(2).__iadd__("a") is NotImplemented,
    "iadd_ndarray_rebinds": lambda T: _iadd_ndarray(T),
}


def _iadd_ndarray(T):
    t = T.ones(2)
    u = t
    u += np.ones(2)  # not in place, as in PyTorch: u is rebound to t + ndarray
    return u is t, ver(t), _vals(u)


def _modified(name: str, dt: str, version: int, expected: int) -> tuple:
    what = f"[torch.{dt} [3]]" + (f", which is output 0 of {name}," if name else "")
    return ("RuntimeError", "one of the variables needed for gradient computation has been modified "
            f"by an inplace operation: {what} is at version {version}; expected version {expected} "
            "instead. Hint: enable anomaly detection to find the operation that failed to compute "
            "its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _cast(frm: str, to: str) -> tuple:
    return ("RuntimeError", f"result type {frm} can't be cast to the desired output type {to}")


def _grow(out: str, shape: str) -> tuple:
    return ("RuntimeError", f"output with shape {out} doesn't match the broadcast shape {shape}")


def _not_tensor(fn: str, got: str) -> tuple:
    return ("TypeError", f"{fn}(): argument 'other' (position 1) must be Tensor, not {got}")


def _combination(fn: str, got: str, params: list[str]) -> tuple:
    marked = ", ".join(f"!{g}!" for g in got.split(", "))
    default = " = None" if len(params) > 1 else ""
    lines = [f"{fn}() received an invalid combination of arguments - got ({got}), but expected one of:"]
    for kind in ("Tensor", "Number"):
        lines.append(f" * ({', '.join(f'{kind} {p}{default}' for p in params)})")
        lines.append(f"      didn't match because some of the arguments have invalid types: ({marked})")
    return ("TypeError", "\n".join(lines) + "\n")


_LEAF = ("RuntimeError", LEAF_MESSAGE)
_MISMATCH = "The size of tensor a ({}) must match the size of tensor b ({}) at non-singleton dimension 0"

EXPECTED = {
    "sgd": ([-0.0249], [-1.4436], 5, 5, True, True, 9),
    "retain_grad_moves": ([1.0, 1.0, 1.0], [6.0, 6.0, 6.0], True),
    "versions": (5, 5, 2, 1, 0, False, "AddBackward0"),
    "rebased": ([0.0, 3.0, 8.0], [2.0, 4.0, 6.0], False, "SubBackward0"),
    "zero_sends_zeros": ([0.0, 0.0, 0.0], "ZeroBackward0"),
    "fill_from_tensor": (6.0, "FillBackward3"),
    "copy_broadcast": ([4.0, 6.0], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [1.0, 2.0]], "torch.float32",
                       True),
    "detached_view": ([4.0, 9.0, 16.0], 2, "MulBackward0", True, True),
    "self_operand": [4.0, 4.0, 4.0],
    "front_end_views": ([[-1.0, 0.0, 3.0], [8.0, 8.0, 8.0]], 7),
    "expanded": [("RuntimeError", OVERLAP_MESSAGE), [[2.0, 2.0, 2.0]], [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]],
                 ("RuntimeError", OVERLAP_MESSAGE), ("RuntimeError", OVERLAP_MESSAGE),
                 [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]],
    "hook_stays_on_old_value": [[3.0, 3.0, 3.0]],
    "add_after_exp": _modified("Exp", "FloatTensor", 1, 0),
    "add_after_exp_": _modified("Exp", "FloatTensor", 2, 1),
    "mul_after_sigmoid_": _modified("Sigmoid", "FloatTensor", 2, 1),
    "sub_after_tanh_": _modified("Tanh", "FloatTensor", 2, 1),
    "sub_after_sqrt_": _modified("Sqrt", "FloatTensor", 2, 1),
    "mul_by_itself": _modified("Mul", "FloatTensor", 1, 0),
    "add_after_relu_": _modified("Relu", "FloatTensor", 2, 1),
    "saved_mul_input": _modified("Mul", "FloatTensor", 1, 0),
    "saved_clamp_input": _modified("Clamp1", "FloatTensor", 1, 0),
    "saved_double_input": _modified("ToCopy", "DoubleTensor", 1, 0),
    "saved_leaf": _modified("", "FloatTensor", 1, 0),
    "leaf": _LEAF, "leaf_iadd": _LEAF, "leaf_zero": _LEAF, "leaf_copy": _LEAF, "leaf_before_shape": _LEAF,
    "int_plus_float": _cast("Float", "Long"),
    "int_div": _cast("Float", "Long"),
    "int32_plus_double": _cast("Double", "Int"),
    "bool_plus_int": _cast("Long", "Bool"),
    "int_exp": _cast("Float", "Long"),
    "int_sqrt": _cast("Float", "Long"),
    "int_clamp_number": _cast("Float", "long int"),
    "int32_clamp_min_number": _cast("Float", "int"),
    "bool_clamp_max_number": _cast("Float", "bool"),
    "int_clamp_tensor": _cast("Float", "Long"),
    "grow": _grow("[3]", "[2, 3]"),
    "grow_0d": _grow("[]", "[1]"),
    "grow_rows": _grow("[1, 3]", "[2, 3]"),
    "grow_before_dtype": _grow("[3]", "[2, 3]"),
    "mismatch": ("RuntimeError", _MISMATCH.format(3, 2)),
    "copy_mismatch": ("RuntimeError", _MISMATCH.format(2, 3)),
    "copy_grow": _grow("[2]", "[3, 2]"),
    "fill_1d": ("RuntimeError", "fill_ only supports 0-dimension value tensor but got tensor with 1 "
                "dimensions."),
    "clamp_nothing": ("RuntimeError", "torch.clamp: At least one of 'min' or 'max' must not be None"),
    "bool_neg": ("RuntimeError", "Negation, the `-` operator, on a bool tensor is not supported. If you "
                 "are trying to invert a mask, use the `~` or `logical_not()` operator instead."),
    "add_str": _not_tensor("add_", "str"),
    "mul_none": _not_tensor("mul_", "NoneType"),
    "copy_list": _not_tensor("copy_", "list"),
    "div_ndarray": _not_tensor("div_", "numpy.ndarray"),
    "pow_str": _combination("pow_", "str", ["exponent"]),
    "fill_none": _combination("fill_", "NoneType", ["value"]),
    "clamp_max_str": _combination("clamp_max_", "str", ["max"]),
    "clamp_two_bad": _combination("clamp_", "int, str", ["min", "max"]),
    "iadd_str_declines": True,
    "iadd_ndarray_rebinds": (False, 0, [2.0, 2.0]),
}


def _outcome(T, fn):
    try:
        return fn(T)
    except Exception as e:  # noqa: BLE001 - an expected error is the scenario's outcome
        return (type(e).__name__, str(e))


def test_every_scenario_has_an_expectation() -> None:
    assert set(SCENARIOS) == set(EXPECTED)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios(name) -> None:
    assert _outcome(gg, SCENARIOS[name]) == EXPECTED[name]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, on ``t += ndarray``
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_match_torch(name) -> None:
    torch = pytest.importorskip("torch")
    assert _outcome(torch, SCENARIOS[name]) == EXPECTED[name]


# ---------------------------------------------------------------- the SGD update, against numpy


def test_sgd_loop_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    xs, ys = rng.normal(size=(16, 3)), rng.normal(size=16)
    w0, lr = rng.normal(size=3), 0.05
    w = gg.tensor(w0, requires_grad=True)
    x, y = gg.tensor(xs), gg.tensor(ys)
    w_np = w0.copy()
    for step in range(1, 6):
        loss = ((x * w).sum(1) - y).pow(2).mean()
        loss.backward()
        with gg.no_grad():
            w -= lr * w.grad
        w.grad.zero_()
        w_np -= lr * 2 * ((xs @ w_np - ys)[:, None] * xs).mean(0)
        assert w.is_leaf and w.requires_grad and ver(w) == step
        np.testing.assert_allclose(w.detach().numpy(), w_np, rtol=1e-12)
        assert not w.grad.numpy().any()


# ---------------------------------------------------------------- gradcheck through in-place ops


def _module(t):
    return gg if isinstance(t, gg.Tensor) else __import__("torch")


def _chain(x, o):
    y = x * 2
    y.mul_(o)
    y.add_(x, alpha=3)
    y.sub_(o).div_(o)
    return y.exp_()


def _unaries(x, o):
    y = x + 0.0
    y.sigmoid_()
    z = y * 1
    z.clamp_(0.2, 0.8).square_()
    z -= o
    z.abs_().neg_().mul_(2).add_(2.5).sqrt_()  # sqrt_ saves its result: no write after it
    return (z * 1).tanh_() + y


def _copy_fill(x, o):
    y = x * 1
    y.copy_(o)  # o broadcast over y's rows
    y *= x
    z = (x * 2).fill_(o.sum())  # a 0-d tensor value
    return y + z.pow_(2)


def _into_a_constant(x, o):
    t = _module(x).zeros(2, 3, dtype=x.dtype)
    t.add_(o).mul_(x)
    t.clamp_min_(o * 0.5)
    return t.reciprocal_()


GRADCHECKED = [_chain, _unaries, _copy_fill, _into_a_constant]


def _gradcheck_inputs(T):
    rng = np.random.default_rng(2)
    x = T.tensor(rng.uniform(0.5, 1.5, (2, 3)), requires_grad=True)
    o = T.tensor(rng.uniform(0.5, 1.5, (3,)), requires_grad=True)
    return x, o


@pytest.mark.parametrize("fn", GRADCHECKED)
def test_gradcheck_functions_with_inplace_ops(fn) -> None:
    x, o = _gradcheck_inputs(gg)
    assert gradcheck(fn, (x, o))
    assert gradcheck(lambda x, o: fn(x, o).sum(), (x, o))
    assert gradgradcheck(fn, (x, o))  # the saved old values carry their own history


@pytest.mark.parametrize("fn", GRADCHECKED)
def test_gradchecked_functions_are_valid_pytorch(fn) -> None:
    torch = pytest.importorskip("torch")
    x, o = _gradcheck_inputs(torch)
    assert torch.autograd.gradcheck(fn, (x, o))
    gx, go = _gradcheck_inputs(gg)
    np.testing.assert_allclose(fn(gx, go).detach().numpy(), fn(x, o).detach().numpy(), rtol=1e-12)


# ---------------------------------------------------------------- views, overlap


def test_in_place_on_a_view_that_requires_grad_rebases_the_base() -> None:
    # PyTorch's CopySlices (more cases in test_inplace_views.py).
    x = gg.ones(2, 3, requires_grad=True)
    y = x * 1
    v = transpose(y, perm=(1, 0))
    v.add_(1)
    assert v.grad_fn.name() == "AsStridedBackward0" and y.grad_fn.name() == "torch::autograd::CopySlices"
    assert y.tolist() == [[2.0] * 3] * 2 and ver(y) == 1
    base = gg.zeros(2, 3)
    w = gg.ones(6, requires_grad=True)
    reshape(base, shape=(6,)).add_(w)
    assert ver(base) == 1 and base.grad_fn.name() == "torch::autograd::CopySlices"
    (base * 2).sum().backward()
    assert w.grad.tolist() == [2.0] * 6
    with gg.no_grad():  # nothing is recorded: allowed, and the base sees it
        transpose(x, perm=(1, 0)).mul_(3)
    assert x.tolist() == [[3.0] * 3] * 2 and ver(x) == 1


def test_write_into_a_broadcast_tensor() -> None:
    base = gg.tensor([1.0, 2.0])
    e = broadcast_in_dim(base, shape=(3, 2), dims=(1,))
    for call in (lambda: e.add_(1), lambda: e.copy_(gg.ones(3, 2)), lambda: e.exp_(),
                 lambda: e.clamp_(0), lambda: iadd(e, gg.ones(3, 2))):
        with pytest.raises(RuntimeError) as info:
            call()
        assert str(info.value) == OVERLAP_MESSAGE
    assert ver(base) == 0
    e.fill_(7)  # PyTorch allows fill_ and zero_: every alias gets the same value
    assert base.tolist() == [7.0, 7.0] and ver(base) == 1
    e.zero_()
    assert base.tolist() == [0.0, 0.0] and ver(base) == 2
    # Broadcasting that repeats nothing (numpy marks it read-only) is written like PyTorch does.
    one = broadcast_in_dim(base, shape=(1, 2), dims=(1,))
    one.add_(gg.tensor([[1.0, 2.0]]))
    assert base.tolist() == [1.0, 2.0] and ver(base) == 3


def test_read_only_memory_is_refused_clearly() -> None:
    arr = np.ones(2)
    arr.flags.writeable = False
    t = gg.from_numpy(arr)
    with pytest.raises(RuntimeError, match="read-only"):
        t.add_(1)
    assert ver(t) == 0 and arr.tolist() == [1.0, 1.0]


def test_partial_overlap_between_operand_and_target() -> None:
    a = gg.arange(5.0)
    lo = slice_(a, starts=(0,), stops=(4,), steps=(1,))
    hi = slice_(a, starts=(1,), stops=(5,), steps=(1,))
    for call in (lambda: hi.add_(lo), lambda: hi.copy_(lo), lambda: hi.clamp_(lo)):
        with pytest.raises(RuntimeError) as info:
            call()
        assert str(info.value) == PARTIAL_MESSAGE
    sq = gg.arange(4.0).detach()
    m = reshape(sq, shape=(2, 2))
    with pytest.raises(RuntimeError, match="some elements of the input tensor"):
        m.add_(transpose(m, perm=(1, 0)))  # same memory, other layout: PyTorch refuses too
    m.add_(m.detach())  # the same memory with the same layout is fine
    assert sq.tolist() == [0.0, 2.0, 4.0, 6.0]


# ---------------------------------------------------------------- tracing


def _traced_body(x):
    y = x * 2
    y.add_(1).mul_(x)
    t = gg.zeros(3)
    t.add_(y.double())  # float64 result written into float32: an explicit convert
    t.clamp_min_(0.5)
    z = gg.zeros(3, dtype=gg.float64)
    z.copy_(x)
    z.mul_(3).fill_(2.0)
    with gg.no_grad():
        z.sub_(x)
    return y.exp_(), t, z + x


def test_traced_programs_follow_inplace_writes() -> None:
    x = gg.tensor([0.1, -0.2, 0.3], requires_grad=True)
    program = trace(_traced_body, x)
    assert ver(x) == 0
    for values in ([0.5, 0.25, -1.0], [2.0, -3.0, 0.0]):
        x2 = np.array(values, np.float32)
        expected = [o.detach().numpy() for o in _traced_body(gg.tensor(x2))]
        for got, want in zip(run_program(program, x2), expected):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_trace_stops_before_writing_into_an_input() -> None:
    w = gg.ones(3)

    def into_argument(x):
        x.add_(1)
        return x

    def into_captured(x):
        with gg.no_grad():
            w.mul_(x)
        return w * 1

    x = gg.tensor([1.0, 2.0, 3.0])
    for fn in (into_argument, into_captured):
        with pytest.raises(TraceError, match="in-place mutation of a program input"):
            trace(fn, x)
    # Stopped before the write: the eager fallback that follows will not apply it twice.
    assert x.tolist() == [1.0, 2.0, 3.0] and w.tolist() == [1.0, 1.0, 1.0]
    assert ver(x) == ver(w) == 0


def test_flip_of_a_tensor_written_in_place_traces() -> None:
    """flip's result owns its memory (a copy of rev's view) with its own version counter; a
    trace that bound the view before the copy must not take the new counter for a write."""
    def fn(x):
        y = x * 2.0
        y.add_(1.0)
        return (y.flip(0) * y).sum()

    x = gg.tensor([[0.5, -1.0], [2.0, 3.0]], requires_grad=True)
    program = trace(fn, x)
    want = fn(x.detach()).numpy()
    np.testing.assert_allclose(run_program(program, x.detach().numpy())[0], want, rtol=1e-6)


def _exp_then_add(x):
    y = x.exp()  # saves its output
    y.add_(1.0)
    return y.sum()


def _operand_zeroed(x):
    w = x * 3.0
    z = w * x  # saves w
    w.zero_()
    return z.sum()


def _write_nothing_saved(x):
    y = x * 2.0  # (saves nothing of y)
    y.add_(1.0)
    return (y * y).sum()


def _saved_then_written_under_no_grad(x):
    y = x.tanh()
    with gg.no_grad():
        y.mul_(2.0)
    return y.sum()


@pytest.mark.parametrize("fn, raises", [(_exp_then_add, True), (_operand_zeroed, True),
                                        (_write_nothing_saved, False),
                                        (_saved_then_written_under_no_grad, True)])
def test_compiled_functions_writing_a_saved_tensor_raise_as_eager(fn, raises) -> None:
    """Eager's backward raises when a tensor saved for it was written in place since; a traced
    program keeps no such state (it would give a gradient), so the trace stops and the function
    runs eagerly: the same error, or the same gradient where nothing saved was written."""
    cf = gg.compile(fn, backend="interpret")
    results = []
    for f in (fn, cf, cf):
        x = gg.tensor([0.5, -1.0, 2.0], requires_grad=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f(x).backward()
            results.append(x.grad.tolist())
        except RuntimeError as err:
            results.append(str(err))
    assert results[0] == results[1] == results[2]
    assert ("modified by an inplace operation" in str(results[0])) == raises
    assert (cf.inspect()[0]["fallback_reason"] is not None) == raises


def test_top_level_functions_are_the_ones_pytorch_exports() -> None:
    t = gg.tensor([-1.0, 2.0])
    assert gg.relu_(t) is t and t.tolist() == [0.0, 2.0]
    assert gg.clamp_(t, max=1.0) is t and gg.fill_(t, 3) is t and gg.zero_(t) is t
    for name in ("add_", "mul_", "sub_", "div_", "pow_", "copy_", "sign_"):
        assert not hasattr(gg, name)
    torch = pytest.importorskip("torch")
    from gradgen.functions import inplace  # noqa: PLC0415
    for name in inplace.FUNCTIONS:
        assert hasattr(torch, name), name
    for name in inplace.METHODS:
        assert hasattr(torch.Tensor, name), name


def test_nothing_is_copied_when_nothing_is_recorded(monkeypatch) -> None:
    from gradgen.functions import inplace  # noqa: PLC0415
    calls = []
    monkeypatch.setattr(inplace, "_old_value", lambda t: calls.append(t) or t)
    w = gg.ones(3, requires_grad=True)
    with gg.no_grad():
        w.mul_(2).add_(1).exp_()
    gg.ones(3).add_(gg.ones(3)).copy_(gg.zeros(3))
    assert calls == []
