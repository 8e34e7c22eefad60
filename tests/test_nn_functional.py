"""gradgen.nn.functional: values against numpy float64, gradients by (grad)gradcheck,
PyTorch's errors, names and warnings; a torch comparison behind importorskip."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(7)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def t64(a, requires_grad=True, transposed=False):
    """A float64 tensor of ``a``; ``transposed`` stores it as a non-contiguous view."""
    a = np.asarray(a, np.float64)
    if transposed and a.ndim >= 2:
        a = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    return gg.from_numpy(a).requires_grad_(requires_grad)


def rand(*shape):
    return RNG.standard_normal(shape)


# ---------------------------------------------------------------- numpy references

def np_softmax(x, d):
    if x.size == 0:
        return x.copy()
    e = np.exp(x - x.max(axis=d, keepdims=True))
    return e / e.sum(axis=d, keepdims=True)


def np_log_softmax(x, d):
    if x.size == 0:
        return x.copy()
    s = x - x.max(axis=d, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=d, keepdims=True))


def np_layer_norm(x, k, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def np_nll(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    """Reference nll_loss over (N, C, d...) log-probabilities, written as PyTorch documents it."""
    shape = np.shape(target)
    if logp.ndim == 1:
        logp, target = logp[None], np.reshape(target, (1,))
    c = logp.shape[1]
    lp = np.moveaxis(logp, 1, -1).reshape(-1, c)
    tg = target.reshape(-1)
    w = np.ones(c) if weight is None else weight
    losses, wsum = np.zeros(len(tg)), 0.0
    for i, k in enumerate(tg):
        if k != ignore_index:
            losses[i] = -w[k] * lp[i, k]
            wsum += w[k]
    if reduction == "none":
        return losses.reshape(shape)
    return losses.sum() if reduction == "sum" else (losses.sum() / wsum if wsum else np.float64(np.nan))


ACTIVATIONS = [
    ("relu", F.relu, lambda x: np.maximum(x, 0)),
    ("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", F.tanh, np.tanh),
    ("gelu", F.gelu, lambda x: x * 0.5 * (1 + _erf(x / math.sqrt(2)))),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    ("softplus", F.softplus, lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))),
    ("softplus_beta", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
     lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(np.minimum(2 * x, 3))) / 2)),
]
SHAPES = [(7,), (3, 4), (2, 3, 4), (), (0, 3)]


@pytest.mark.parametrize("name,fn,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_values(name, fn, ref, shape):
    x = rand(*shape) * 3
    np.testing.assert_allclose(fn(t64(x)).detach().numpy(), ref(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,fn,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_gradients(name, fn, ref):
    x = np.array([-25.0, -3.1, -0.7, 0.3, 1.1, 2.9, 4.2, 30.0])
    if name == "relu":
        x = x[np.abs(x) > 0.1]
    assert gradcheck(fn, (t64(x),))
    assert gradcheck(fn, (t64(rand(3, 4), transposed=True),))
    if name.startswith(("gelu", "softplus", "sigmoid", "tanh")):
        assert gradgradcheck(fn, (t64(x[1:-1]),))


def test_activation_extremes_and_names():
    x = t64([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    want = [0.0, math.log1p(math.exp(-50)), math.log(2), 50, 1000]
    np.testing.assert_array_equal(F.softplus(x).detach().numpy(), want)
    np.testing.assert_array_equal(F.gelu(x).detach().numpy(), [-0.0, -0.0, 0.0, 50, 1000])
    F.softplus(x).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    y = t64(rand(3))
    assert {F.gelu(y).grad_fn.name(), F.gelu(y, approximate="tanh").grad_fn.name()} == {"GeluBackward0"}
    assert F.softplus(y).grad_fn.name() == "SoftplusBackward0"
    assert F.relu(y).grad_fn.name() == "ReluBackward0"


# ---------------------------------------------------------------- softmax

SOFTMAX_CASES = [((3, 5), 1), ((3, 5), 0), ((3, 5), -1), ((2, 3, 4), 1), ((2, 3, 4), -1), ((6,), 0),
                 ((0, 3), 1), ((2, 0), 1)]


@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES)
@pytest.mark.parametrize("transposed", [False, True])
def test_softmax_values(shape, dim, transposed):
    x = rand(*shape) * 4
    xt = t64(x, transposed=transposed)
    s, ls = F.softmax(xt, dim), F.log_softmax(xt, dim)
    np.testing.assert_allclose(s.detach().numpy(), np_softmax(x, dim), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ls.detach().numpy(), np_log_softmax(x, dim), rtol=1e-12, atol=1e-15)
    assert s.grad_fn.name() == "SoftmaxBackward0" and ls.grad_fn.name() == "LogSoftmaxBackward0"


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("shape,dim", [((3, 5), 1), ((2, 3, 4), 0), ((4,), 0)])
def test_softmax_gradients(fn, shape, dim):
    x = t64(rand(*shape))
    assert gradcheck(lambda a: fn(a, dim), (x,))
    assert gradgradcheck(lambda a: fn(a, dim), (x,))


def test_softmax_is_stable_and_handles_infinities():
    x = t64([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -999.0]])
    np.testing.assert_allclose(F.softmax(x, 1).detach().numpy(), np_softmax(x.detach().numpy(), 1))
    np.testing.assert_allclose(F.log_softmax(x, 1).detach().numpy(),
                               np_log_softmax(x.detach().numpy(), 1), rtol=1e-12)
    inf = math.inf
    special = t64([[-inf, 0.0, 1.0], [-inf, -inf, -inf], [inf, 1.0, 2.0]], requires_grad=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = F.softmax(special, 1).numpy()
        ls = F.log_softmax(special, 1).numpy()
    np.testing.assert_allclose(s[0], np_softmax(np.array([-inf, 0.0, 1.0]), 0))
    assert np.isnan(s[1:]).all()
    assert ls[0, 0] == -inf and np.isnan(ls[1:]).all()


def test_softmax_dtype_and_implicit_dim():
    x = gg.tensor(rand(2, 3), dtype=gg.float32)
    assert F.softmax(x, 1, dtype=gg.float64).dtype is gg.float64
    assert F.log_softmax(gg.tensor([[1, 2]]), 1, dtype=gg.float32).dtype is gg.float32
    for fn, name in ((F.softmax, "softmax"), (F.log_softmax, "log_softmax")):
        with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name} has been "
                                             "deprecated. Change the call to include dim=X as an argument."):
            out = fn(x)
        np.testing.assert_allclose(out.numpy(), (np_softmax if name == "softmax" else np_log_softmax)(
            x.numpy().astype(np.float64), 1), rtol=1e-6)
    with pytest.warns(UserWarning):
        assert F.softmax(gg.ones(2, 2, 2)).sum(0).allclose(gg.ones(2, 2))  # dim 0 for 3-D
    with pytest.raises(NotImplementedError, match="\"softmax_lastdim_kernel_impl\" not implemented for 'Long'"):
        F.softmax(gg.tensor([[1, 2]]), 1)
    with pytest.raises(NotImplementedError, match="\"log_softmax_kernel_impl\" not implemented for 'Long'"):
        F.log_softmax(gg.tensor([[1, 2]]), 0)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of "
                                         r"\[-2, 1\], but got 2\)"):
        F.softmax(x, 2)


# ---------------------------------------------------------------- linear and layer_norm

LINEAR_CASES = [((4, 5), True), ((4, 5), False), ((5,), True), ((5,), False), ((2, 3, 5), True),
                ((2, 3, 5), False), ((0, 5), True)]


@pytest.mark.parametrize("shape,with_bias", LINEAR_CASES)
def test_linear(shape, with_bias):
    x, w, b = rand(*shape), rand(3, 5), rand(3)
    args = (t64(x), t64(w)) + ((t64(b),) if with_bias else ())
    out = F.linear(*args)
    np.testing.assert_allclose(out.detach().numpy(), x @ w.T + (b if with_bias else 0), rtol=1e-12)
    if 0 not in shape:
        assert gradcheck(F.linear, args)
        assert gradgradcheck(F.linear, args)
    if len(shape) == 2:
        assert out.grad_fn.name() == ("AddmmBackward0" if with_bias else "MmBackward0")


def test_linear_non_contiguous_and_errors():
    x, w, b = t64(rand(4, 5), transposed=True), t64(rand(3, 5), transposed=True), t64(rand(3))
    assert gradcheck(F.linear, (x, w, b))
    cases = [
        ((4, 5), (3, 6), None, "mat1 and mat2 shapes cannot be multiplied (4x5 and 6x3)"),
        ((4, 5), (3, 5), (2,), "The expanded size of the tensor (3) must match the existing size (2) at "
                               "non-singleton dimension 1.  Target sizes: [4, 3].  Tensor sizes: [2]"),
        ((2, 4, 5), (3, 5), (2,), "The expanded size of the tensor (3) must match the existing size (2) "
                                  "at non-singleton dimension 1.  Target sizes: [8, 3].  Tensor sizes: [2]"),
        ((5,), (3, 5), (3, 3), "output with shape [3] doesn't match the broadcast shape [3, 3]"),
        ((4, 5), (2, 3, 5), None, "t() expects a tensor with <= 2 dimensions, but self is 3D"),
    ]
    for xs, ws, bs, msg in cases:
        with pytest.raises(RuntimeError) as info:
            F.linear(t64(rand(*xs)), t64(rand(*ws)), None if bs is None else t64(rand(*bs)))
        assert str(info.value) == msg


LN_CASES = [((4, 5), (5,)), ((2, 3, 4), (3, 4)), ((2, 3, 4), (4,)), ((6,), (6,)), ((0, 3), (3,))]


@pytest.mark.parametrize("shape,ns", LN_CASES)
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm(shape, ns, affine):
    x = rand(*shape) * 3 + 1
    w, b = (rand(*ns), rand(*ns)) if affine else (None, None)
    args = (t64(x), ns) + ((t64(w), t64(b)) if affine else ())
    out = F.layer_norm(*args)
    assert out.grad_fn.name() == "NativeLayerNormBackward0"
    np.testing.assert_allclose(out.detach().numpy(), np_layer_norm(x, len(ns), w, b), rtol=1e-10, atol=1e-12)
    if 0 not in shape:
        fn = (lambda a, ww, bb: F.layer_norm(a, ns, ww, bb, eps=1e-3)) if affine else \
             (lambda a: F.layer_norm(a, ns, eps=1e-3))
        ins = (t64(x, transposed=True),) + ((t64(w), t64(b)) if affine else ())
        assert gradcheck(fn, ins)
        assert gradgradcheck(fn, ins)


def test_layer_norm_errors():
    x = t64(rand(2, 3))
    cases = [
        ((4,), None, None, "Given normalized_shape=[4], expected input with shape [*, 4], but got "
                           "input of size[2, 3]"),
        ((1, 2, 3), None, None, "Given normalized_shape=[1, 2, 3], expected input with shape [*, 1, 2, 3], "
                                "but got input of size[2, 3]"),
        ((), None, None, "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
                         "one element, but got normalized_shape = []"),
        ((3,), (4,), None, "Expected weight to be of same shape as normalized_shape, but got weight of shape "
                           "[4] and normalized_shape = [3]"),
        ((3,), None, (4,), "Expected bias to be of same shape as normalized_shape, but got bias of shape [4] "
                           "and normalized_shape = [3]"),
    ]
    for ns, ws, bs, msg in cases:
        with pytest.raises(RuntimeError) as info:
            F.layer_norm(x, ns, None if ws is None else t64(rand(*ws)), None if bs is None else t64(rand(*bs)))
        assert str(info.value) == msg
    with pytest.raises(TypeError, match=r"argument 'normalized_shape' \(position 2\) must be tuple of "
                                        "ints, not int"):
        F.layer_norm(x, 3)
    with pytest.raises(NotImplementedError, match="\"LayerNormKernelImpl\" not implemented for 'Long'"):
        F.layer_norm(gg.tensor([[1, 2]]), (2,))


# ---------------------------------------------------------------- losses

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    x, y = rand(3, 4), rand(3, 4)
    out = F.mse_loss(t64(x), t64(y, False), reduction=reduction)
    d = (x - y) ** 2
    want = d.mean() if reduction == "mean" else (d.sum() if reduction == "sum" else d)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12)
    assert out.grad_fn.name() == "MseLossBackward0"
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), (t64(x), t64(y)))
    w = np.abs(rand(3, 4))
    out = F.mse_loss(t64(x), t64(y), reduction=reduction, weight=t64(w, False))
    wd = d * w
    want = wd.sum() / w.sum() if reduction == "mean" else (wd.sum() if reduction == "sum" else wd)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12)


def test_mse_loss_warnings_and_errors():
    x = t64(rand(3, 4))
    with pytest.warns(UserWarning, match=r"Using a target size \(torch.Size\(\[4\]\)\) that is different "
                                         r"to the input size \(torch.Size\(\[3, 4\]\)\)"):
        F.mse_loss(x, t64(rand(4)))
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated, please use "
                                         "reduction='sum' instead."):
        assert F.mse_loss(x, x.detach() * 0, size_average=False).item() == pytest.approx(
            (x.detach().numpy() ** 2).sum())
    with pytest.raises(ValueError, match="^foo is not a valid value for reduction$"):
        F.mse_loss(x, x, reduction="foo")
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of "
                                           r"tensor b \(5\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            F.mse_loss(x, t64(rand(5, 4)))
    with pytest.raises(NotImplementedError, match="\"mse_cpu\" not implemented for 'Long'"):
        F.mse_loss(gg.tensor([1, 2]), gg.tensor([1, 3]))


NLL_CASES = [  # (input shape, target maker, kwargs)
    ((5, 4), None, {}),
    ((5, 4), None, {"reduction": "sum"}),
    ((5, 4), None, {"reduction": "none"}),
    ((5, 4), None, {"weight": True}),
    ((5, 4), None, {"weight": True, "ignore_index": 2}),
    ((5, 4), None, {"weight": True, "ignore_index": 1, "reduction": "none"}),
    ((5, 4), "ignored", {"weight": True}),
    ((5, 4), "ignored", {"reduction": "sum"}),
    ((3, 4, 2), None, {}),
    ((3, 4, 2, 2), "ignored", {"weight": True}),
    ((2, 4, 2, 1, 2), None, {"reduction": "none", "weight": True}),
    ((4,), None, {}),
    ((4,), None, {"reduction": "none"}),
    ((0, 4), None, {}),
    ((3, 4, 0), None, {"weight": True}),
    ((3, 4, 0), None, {"reduction": "none"}),
]


def _targets(shape, how):
    c = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = RNG.integers(0, c, tshape)
    if how == "ignored" and t.size:
        t.flat[::2] = -100
    return t


@pytest.mark.parametrize("shape,how,kw", NLL_CASES)
def test_nll_loss_and_cross_entropy(shape, how, kw):
    x = rand(*shape)
    target = _targets(shape, how)
    c = shape[1] if len(shape) > 1 else shape[0]
    kw = dict(kw)
    weight = np.abs(rand(c)) + 0.1 if kw.pop("weight", False) else None
    ref_kw = dict(kw, weight=weight)
    gkw = dict(kw, weight=None if weight is None else t64(weight, False))
    tg = gg.tensor(target)
    nll = F.nll_loss(t64(x), tg, **gkw)
    np.testing.assert_allclose(nll.detach().numpy(), np_nll(x, target, **ref_kw), rtol=1e-12)
    assert nll.shape == np_nll(x, target, **ref_kw).shape
    ce = F.cross_entropy(t64(x), tg, **gkw)
    cd = 0 if x.ndim == 1 else 1
    np.testing.assert_allclose(ce.detach().numpy(), np_nll(np_log_softmax(x, cd), target, **ref_kw),
                               rtol=1e-12)
    if x.size:
        assert gradcheck(lambda a: F.nll_loss(a, tg, **gkw), (t64(x),))
        assert gradcheck(lambda a: F.cross_entropy(a, tg, **gkw), (t64(x, transposed=True),))


def test_cross_entropy_gradgradcheck_and_smoothing():
    x, tg = t64(rand(4, 3)), gg.tensor([0, 2, -100, 1])
    w = t64(np.array([0.5, 2.0, 1.0]), False)
    assert gradgradcheck(lambda a: F.cross_entropy(a, tg, weight=w), (x,))
    assert gradgradcheck(lambda a: F.cross_entropy(a, tg, label_smoothing=0.2), (x,))
    # label smoothing = (1 - e) * nll + e * mean over classes of -log p (weighted, ignored masked)
    logp = np_log_softmax(x.detach().numpy(), 1)
    keep = np.array([0, 2, 1])
    wn = w.numpy()
    smooth = -(logp[[0, 1, 3]] * wn).sum() / wn[keep].sum()
    want = 0.8 * np_nll(logp, tg.numpy(), weight=wn) + 0.2 * smooth / 3
    got = F.cross_entropy(x, tg, weight=w, label_smoothing=0.2)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, tg, weight=w, label_smoothing=0.2), (x,))


def test_cross_entropy_probability_targets():
    x = rand(4, 3)
    p = np_softmax(rand(4, 3), 1)
    out = F.cross_entropy(t64(x), t64(p, False))
    np.testing.assert_allclose(out.detach().numpy(), -(np_log_softmax(x, 1) * p).sum() / 4, rtol=1e-12)
    assert gradcheck(lambda a, b: F.cross_entropy(a, b), (t64(x), t64(p)))
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
        F.cross_entropy(t64(x), t64(p), ignore_index=1)


def test_nll_loss_ignored_and_zero_weight_semantics():
    x = t64(rand(3, 4))
    out = F.nll_loss(x, gg.tensor([-100, -100, -100]))
    assert math.isnan(out.item())
    with np.errstate(all="ignore"):
        out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))
    assert F.nll_loss(x, gg.tensor([-100, -100, -100]), reduction="sum").item() == 0.0
    with np.errstate(all="ignore"):
        assert math.isnan(F.nll_loss(x, gg.tensor([1, 1, 2]), weight=t64([1.0, 0, 0, 0], False)).item())
    # -inf log-probabilities off the target (or on an ignored row) do not leak into the loss.
    a = rand(3, 4)
    a[0, 2] = a[1, :] = -math.inf
    out = F.nll_loss(t64(a), gg.tensor([1, -100, 3]))
    assert out.item() == pytest.approx(-(a[0, 1] + a[2, 3]) / 2)
    assert F.nll_loss(t64(rand(0, 4)), gg.tensor(np.zeros(0, np.int64)), reduction="sum").item() == 0


NLL_ERRORS = [
    ((3, 5), [1, 0, 5], {}, IndexError, "Target 5 is out of bounds."),
    ((3, 5), [1, 0, -1], {}, IndexError, "Target -1 is out of bounds."),
    ((3, 5), [1, 0], {}, ValueError, "Expected input batch_size (3) to match target batch_size (2)."),
    ((3, 5), [[1, 0, 2]], {}, ValueError, "Expected input batch_size (3) to match target batch_size (1)."),
    ((5,), [2, 1], {}, ValueError, "For 1D input, 1D target must have size 1, but got target size: 2"),
    ((3, 5), [1.0, 0.0, 2.0], {}, RuntimeError, "expected target dtype to be Long or Byte, but got Float"),
    ((3, 5), [1, 0, 2], {"weight": 4}, RuntimeError,
     "weight tensor should be defined either for all 5 classes or no classes but got weight tensor "
     "of shape: [4]"),
    ((3, 5, 2), [[0, 0], [0, 0]], {}, ValueError,
     "Expected input batch_size (3) to match target batch_size (2)."),
    ((3, 5, 2), [[0, 0, 0]] * 3, {}, RuntimeError, "Expected target size [3, 2], got [3, 3]"),
    ((3, 5, 2, 4), [[0, 0]] * 3, {}, RuntimeError,
     "only batches of spatial targets supported (3D tensors) but got targets of dimension: 2"),
    ((3, 5, 2), [[0, 0]] * 3, {"weight": 3}, RuntimeError,
     "weight tensor should be defined either for all or no classes"),
    ((), 0, {}, ValueError, "Expected 1 or more dimensions (got 0)"),
    ((3, 5), [1, 0, 2], {"reduction": "bad"}, ValueError, "bad is not a valid value for reduction"),
]


@pytest.mark.parametrize("shape,target,kw,exc,msg", NLL_ERRORS)
@pytest.mark.parametrize("fn", [F.nll_loss, F.cross_entropy])
def test_nll_errors(fn, shape, target, kw, exc, msg):
    if "weight" in kw:
        kw = dict(kw, weight=t64(np.ones(kw["weight"]), False))
    if fn is F.cross_entropy and shape == () and target == 0:
        msg, exc = "Expected floating point type for target with class probabilities, got Long", RuntimeError
    with pytest.raises(exc) as info:
        fn(t64(rand(*shape)), gg.tensor(target), **kw)
    assert str(info.value) == msg


def test_cross_entropy_argument_errors():
    x = t64(rand(3, 5))
    with pytest.raises(RuntimeError, match=r"^label_smoothing must be between 0.0 and 1.0. Got: 1.1$"):
        F.cross_entropy(x, gg.tensor([1, 2, 3]), label_smoothing=1.1)
    with pytest.raises(RuntimeError, match="Expected floating point type for target with class "
                                           "probabilities, got Long"):
        F.cross_entropy(x, gg.ones(3, 5, dtype=gg.int64))
    with pytest.raises(NotImplementedError, match="\"log_softmax_lastdim_kernel_impl\" not "
                                                  "implemented for 'Long'"):
        F.cross_entropy(gg.ones(3, 5, dtype=gg.int64), gg.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match=r"nll_loss_nd\(\): argument 'target' \(position 2\) must be "
                                        "Tensor, not list"):
        F.nll_loss(x, [1, 2, 3])
    assert F.cross_entropy(x, gg.tensor([1, 2, 3])).grad_fn.name() == "NllLossBackward0"
    assert F.cross_entropy(t64(rand(2, 5, 3)), gg.tensor(np.zeros((2, 3), np.int64))).grad_fn.name() == \
        "NllLoss2DBackward0"


# ---------------------------------------------------------------- dropout

def test_dropout_reproducible_and_scaled():
    x = gg.ones(200, 50, dtype=gg.float64, requires_grad=True)
    gg.manual_seed(3)
    a = F.dropout(x, 0.3)
    gg.manual_seed(3)
    b = F.dropout(x, 0.3)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    vals = set(np.unique(a.detach().numpy()).tolist())
    assert vals == {0.0, 1 / 0.7}
    assert abs((a.detach().numpy() == 0).mean() - 0.3) < 0.02
    assert a.grad_fn.name() == "MulBackward0"
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), a.detach().numpy())
    assert F.dropout(gg.ones(3), 0.5).dtype is gg.float32


def test_dropout_special_cases():
    x = t64([1.0, -2.0, 3.0])
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    z = F.dropout(x, 1.0)
    np.testing.assert_array_equal(z.detach().numpy(), [0.0, -0.0, 0.0])
    assert np.signbit(z.detach().numpy()[1])
    for p in (1.5, -0.5):
        with pytest.raises(ValueError, match=f"^dropout probability has to be between 0 and 1, but got {p}$"):
            F.dropout(x, p)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        F.dropout(gg.tensor([1, 2]), 0.5)
    y = gg.ones(4, 4)
    out = F.dropout(y, 0.5, inplace=True)
    assert out is y and set(np.unique(y.numpy()).tolist()) <= {0.0, 2.0}


def test_relu_inplace():
    x = gg.tensor([-1.0, 2.0])
    assert F.relu(x, inplace=True) is x
    assert x.tolist() == [0.0, 2.0]


# ---------------------------------------------------------------- against PyTorch

def _run(lib, F_, name, args, kw):
    conv = [lib.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    if conv[0].dtype.is_floating_point:
        conv[0].requires_grad_(True)
    kw = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    try:
        out = getattr(F_, name)(*conv, **kw)
    except Exception as e:  # noqa: BLE001  (the exception is what is compared)
        return type(e).__name__, str(e)
    g = np.random.default_rng(1).uniform(-1, 1, tuple(out.shape))
    out.backward(lib.tensor(g, dtype=out.dtype))
    return (type(out.grad_fn).__name__, tuple(out.shape), np.asarray(out.tolist(), float),
            np.asarray(conv[0].grad.tolist(), float))


TORCH_CASES = [
    ("cross_entropy", (rand(6, 4), np.array([0, 3, -100, 2, 1, 3])),
     {"weight": np.array([0.3, 1.0, 2.0, 0.5]), "ignore_index": -100}),
    ("cross_entropy", (rand(6, 4), np.array([0, 3, 1, 2, 1, 3])),
     {"weight": np.array([0.3, 1.0, 2.0, 0.5]), "ignore_index": 3, "reduction": "none"}),
    ("cross_entropy", (rand(2, 4, 3), np.array([[0, 3, 1], [1, 2, 0]])),
     {"weight": np.array([0.3, 1.0, 2.0, 0.5]), "ignore_index": 1, "label_smoothing": 0.15}),
    ("cross_entropy", (rand(6, 4), np.array([0, 3, 1, 2, 1, 7])), {}),
    ("nll_loss", (rand(6, 4), np.array([0, 3, 1, 2, 1, 3])), {"weight": np.ones(3)}),
    ("layer_norm", (rand(3, 4, 5), (4, 5), rand(4, 5), rand(4, 5)), {"eps": 1e-3}),
    ("layer_norm", (rand(3, 5), (5,)), {}),
    ("layer_norm", (rand(3, 5), (4,)), {}),
    ("linear", (rand(2, 3, 5), rand(4, 5), rand(4)), {}),
    ("softmax", (rand(3, 4), 0), {}),
    ("log_softmax", (rand(3, 4), 1), {}),
    ("gelu", (rand(3, 4),), {"approximate": "tanh"}),
    ("softplus", (rand(3, 4) * 10,), {"beta": 2, "threshold": 5}),
    ("mse_loss", (rand(3, 4), rand(3, 4)), {"reduction": "sum"}),
]


@pytest.mark.parametrize("name,args,kw", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_against_torch(name, args, kw):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    want, got = _run(torch, TF, name, args, kw), _run(gg, F, name, args, kw)
    assert want[:2] == got[:2]
    for w, g in zip(want[2:], got[2:]):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call", [
    lambda x, t, w: F.cross_entropy(x, t, weight=w),
    lambda x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1),
    lambda x, t, w: F.nll_loss(x, t, weight=w, reduction="none"),
    lambda x, t, w: F.nll_loss(x.detach(), t, weight=w),
])
def test_class_weight_that_requires_grad_is_refused_as_in_pytorch(call):
    """nll_loss is not differentiable in its class weights: PyTorch refuses a weight that
    requires grad (with grad mode on), gradgen too instead of computing a gradient for it."""
    x = gg.tensor([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3]], requires_grad=True)
    t, w = gg.tensor([0, 2]), gg.tensor([1.0, 2.0, 0.5], requires_grad=True)
    with pytest.raises(RuntimeError, match="The function 'nll_loss_forward' is not "
                                           "differentiable with respect to argument 'weight'"):
        call(x, t, w)
    with gg.no_grad():
        call(x, t, w)  # (no graph: no check)
