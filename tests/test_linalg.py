"""Matrix products: values against numpy float64, gradients by gradcheck, PyTorch's names/errors."""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd import gradcheck, gradgradcheck
from gradgen.ops import Aval, get
from gradgen.dtypes import float32, float64, int64
from torch_tables import mismatches, outcome

RNG = np.random.default_rng(1234)


def leaf(shape, requires_grad=True, dtype=np.float64, transposed=False):
    """A float64 leaf tensor; ``transposed`` gives a non-contiguous view with that shape."""
    if transposed and len(shape) >= 2:
        base = RNG.standard_normal(shape[:-2] + (shape[-1], shape[-2])).astype(dtype)
        arr = np.swapaxes(base, -1, -2)
    else:
        arr = RNG.standard_normal(shape).astype(dtype)
    t = gg.from_numpy(arr)
    return t.requires_grad_(requires_grad)


# (shape of input, shape of other, grad_fn name when both require grad)
MATMUL_CASES = [
    ((3,), (3,), "DotBackward0"),
    ((2, 3), (3, 4), "MmBackward0"),
    ((3,), (3, 4), "SqueezeBackward4"),
    ((2, 3), (3,), "MvBackward0"),
    ((5, 2, 3), (5, 3, 4), "UnsafeViewBackward0"),
    ((5, 2, 3), (3, 4), "UnsafeViewBackward0"),
    ((2, 3), (5, 3, 4), "CloneBackward0"),
    ((5, 2, 3), (3,), "UnsafeViewBackward0"),
    ((3,), (5, 3, 4), "UnsafeViewBackward0"),
    ((2, 1, 2, 3), (5, 3, 4), "UnsafeViewBackward0"),
    ((1, 2, 3), (5, 3, 4), "CloneBackward0"),
    ((5, 2, 3), (1, 3, 4), "UnsafeViewBackward0"),
    ((4, 1, 2, 3), (1, 5, 3, 2), "UnsafeViewBackward0"),
    ((3,), (2, 2, 3, 1), "UnsafeViewBackward0"),
    ((0, 3), (3, 4), "MmBackward0"),
    ((2, 0), (0, 4), "MmBackward0"),
    ((0,), (0,), "DotBackward0"),
    ((0, 2, 3), (3, 4), "UnsafeViewBackward0"),
    ((2, 3), (0, 3, 4), "TransposeBackward0"),
]


@pytest.mark.parametrize("a,b,name", MATMUL_CASES)
@pytest.mark.parametrize("transposed", [False, True])
def test_matmul_values_and_names(a, b, name, transposed):
    x, y = leaf(a, transposed=transposed), leaf(b, transposed=transposed)
    out = gg.matmul(x, y)
    want = np.matmul(x.detach().numpy(), y.detach().numpy())
    assert out.shape == want.shape and out.dtype is gg.float64
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12, atol=1e-12)
    if not transposed:
        assert type(out.grad_fn).__name__ == name
    assert (x @ y).shape == out.shape


@pytest.mark.parametrize("a,b,_", [c for c in MATMUL_CASES if 0 not in c[0] + c[1]])
@pytest.mark.parametrize("which", [(True, True), (True, False), (False, True)])
def test_matmul_gradcheck(a, b, _, which):
    x, y = leaf(a, which[0]), leaf(b, which[1])
    assert gradcheck(gg.matmul, (x, y))


@pytest.mark.parametrize("a,b", [((2, 3), (3, 4)), ((3,), (3,)), ((2, 3), (5, 3, 4)),
                                 ((5, 2, 3), (3,))])
def test_matmul_non_contiguous_gradcheck_and_gradgradcheck(a, b):
    x, y = leaf(a, transposed=True), leaf(b, transposed=True)
    assert gradcheck(gg.matmul, (x, y))
    assert gradgradcheck(gg.matmul, (x, y))


def test_zero_size_gradients_are_zero_shaped():
    x, y = leaf((2, 0)), leaf((0, 4))
    out = x @ y
    np.testing.assert_array_equal(out.detach().numpy(), np.zeros((2, 4)))
    out.sum().backward()
    assert x.grad.shape == (2, 0) and y.grad.shape == (0, 4)


def test_broadcast_batch_gradient_is_summed():
    x, y = leaf((4, 1, 2, 3)), leaf((5, 3, 2))
    (x @ y).sum().backward()
    g = np.ones((4, 5, 2, 2))
    xd, yd = x.detach().numpy(), y.detach().numpy()
    want_x = (g @ np.swapaxes(yd, -1, -2)).sum(axis=1, keepdims=True)
    want_y = (np.swapaxes(np.broadcast_to(xd, (4, 5, 2, 3)), -1, -2) @ g).sum(axis=0)
    np.testing.assert_allclose(x.grad.numpy(), want_x, rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), want_y, rtol=1e-12)


# (function, input shape, other shape) for the dedicated products
PRODUCTS = [
    (gg.mm, (2, 3), (3, 4), "MmBackward0"),
    (gg.bmm, (4, 2, 3), (4, 3, 5), "BmmBackward0"),
    (gg.dot, (5,), (5,), "DotBackward0"),
    (gg.mv, (2, 3), (3,), "MvBackward0"),
    (gg.outer, (2,), (3,), "MulBackward0"),
    (gg.ger, (3,), (2,), "MulBackward0"),
]


@pytest.mark.parametrize("fn,a,b,name", PRODUCTS)
def test_products(fn, a, b, name):
    x, y = leaf(a), leaf(b)
    out = fn(x, y)
    xd, yd = x.detach().numpy(), y.detach().numpy()
    want = np.outer(xd, yd) if fn in (gg.outer, gg.ger) else np.matmul(xd, yd)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12)
    assert type(out.grad_fn).__name__ == name
    assert gradcheck(fn, (x, y))
    method = getattr(x, fn.__name__)
    np.testing.assert_allclose(method(y).detach().numpy(), want, rtol=1e-12)


def test_matmul_gradgradcheck():
    assert gradgradcheck(gg.matmul, (leaf((3, 2, 4)), leaf((4, 3))))
    assert gradgradcheck(gg.bmm, (leaf((2, 2, 3)), leaf((2, 3, 2))))


@pytest.mark.parametrize("dt", [gg.int64, gg.int32])
def test_integer_products(dt):
    a = np.arange(6).reshape(2, 3)
    b = np.arange(12).reshape(3, 4) - 5
    x, y = gg.tensor(a, dtype=dt), gg.tensor(b, dtype=dt)
    v, w = gg.tensor(b[:, 0], dtype=dt), gg.tensor(a[1], dtype=dt)
    for out, want in ((x @ y, a @ b), (gg.mv(x, v), a @ b[:, 0]), (gg.dot(v, w), b[:, 0] @ a[1]),
                      (gg.ones(2, 2, 3, dtype=dt) @ y, np.ones((2, 2, 3)) @ b)):
        assert out.dtype is dt
        np.testing.assert_array_equal(out.numpy(), want)


def test_float32_stays_float32():
    x = gg.ones(2, 3)
    assert (x @ gg.ones(3)).dtype is gg.float32


ERRORS = [
    (gg.matmul, (2, 3), (4, 5), RuntimeError, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    (gg.matmul, (3,), (4,), RuntimeError,
     "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of "
     "elements, but got 3 and 4 elements respectively"),
    (gg.matmul, (2, 3), (4,), RuntimeError, "size mismatch, got input (2), mat (2x3), vec (4)"),
    (gg.matmul, (3,), (4, 5), RuntimeError, "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x5)"),
    (gg.matmul, (2, 2, 3), (2, 4, 5), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4]."),
    (gg.matmul, (2, 2, 3), (3, 4, 5), RuntimeError,
     "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0"),
    (gg.matmul, (7, 2, 3), (4, 5), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (14x3 and 4x5)"),
    (gg.matmul, (2, 5, 2, 3), (4,), RuntimeError, "size mismatch, got input (20), mat (20x3), vec (4)"),
    (gg.matmul, (), (3,), RuntimeError,
     "both arguments to matmul need to be at least 1D, but they are 0D and 1D"),
    (gg.mm, (3,), (3, 5), RuntimeError, "self must be a matrix"),
    (gg.mm, (2, 3), (3,), RuntimeError, "mat2 must be a matrix"),
    (gg.mm, (2, 3), (4, 5), RuntimeError, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    (gg.bmm, (2, 3), (3, 3, 5), RuntimeError, "batch1 must be a 3D tensor"),
    (gg.bmm, (2, 2, 3), (3, 5), RuntimeError, "batch2 must be a 3D tensor"),
    (gg.bmm, (2, 2, 3), (3, 3, 5), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [3, 3]."),
    (gg.dot, (3, 1), (3,), RuntimeError, "1D tensors expected, but got 2D and 1D tensors"),
    (gg.mv, (2, 3), (4, 1), RuntimeError, "vector + matrix @ vector expected, got 1, 2, 2"),
    (gg.outer, (2, 2), (3,), RuntimeError, "outer: Expected 1-D argument self, but got 2-D"),
    (gg.outer, (2,), (3, 3), RuntimeError, "outer: Expected 1-D argument vec2, but got 2-D"),
]


@pytest.mark.parametrize("fn,a,b,exc,msg", ERRORS)
def test_shape_errors(fn, a, b, exc, msg):
    with pytest.raises(exc) as info:
        fn(leaf(a, False), leaf(b, False))
    assert str(info.value) == msg


DTYPE_ERRORS = [
    (gg.matmul, (2, 3), (3, 4), "expected m1 and m2 to have the same dtype, but got: float != double"),
    (gg.matmul, (3,), (3,), "dot : expected both vectors to have same dtype, but found Float and Double"),
    (gg.matmul, (2, 3), (3,),
     "addmv input tensors must have the same dtype, but got Double, Float, and Double"),
    (gg.matmul, (2, 2, 3), (2, 3, 4), "expected scalar type Float but found Double"),
    (gg.dot, (3,), (4,), "dot : expected both vectors to have same dtype, but found Float and Double"),
]


@pytest.mark.parametrize("fn,a,b,msg", DTYPE_ERRORS)
def test_mixed_dtypes_raise_like_pytorch(fn, a, b, msg):
    with pytest.raises(RuntimeError) as info:
        fn(leaf(a, False, np.float32), leaf(b, False))
    assert str(info.value) == msg


def test_bool_and_type_errors():
    b = gg.ones(2, 3, dtype=gg.bool)
    with pytest.raises(NotImplementedError, match="\"addmm_impl_cpu_\" not implemented for 'Bool'"):
        b @ gg.ones(3, 2, dtype=gg.bool)
    with pytest.raises(NotImplementedError, match="\"bmm\" not implemented for 'Bool'"):
        gg.ones(2, 2, 3, dtype=gg.bool) @ gg.ones(2, 3, 3, dtype=gg.bool)
    with pytest.raises(TypeError, match=r"matmul\(\): argument 'input' \(position 1\) must be "
                                        r"Tensor, not list"):
        gg.matmul([1.0], gg.ones(1))
    with pytest.raises(TypeError, match=r"mm\(\): argument 'mat2' \(position 2\) must be Tensor, not int"):
        gg.mm(gg.ones(2, 2), 3)
    with pytest.raises(TypeError, match=r"matmul\(\): argument 'other' \(position 1\)"):
        gg.ones(2).matmul(3)
    with pytest.raises(TypeError, match="unsupported operand"):
        gg.ones(2, 2) @ [1.0, 2.0]


def test_numpy_operands():
    x = gg.ones(2, 3, dtype=gg.float64)
    a = np.arange(3.0)
    np.testing.assert_array_equal((x @ a).numpy(), np.ones((2, 3)) @ a)
    np.testing.assert_array_equal((np.ones((4, 2)) @ x).numpy(), np.full((4, 3), 2.0))


def test_primitive_shape_rule():
    mm = get("matmul")
    assert mm.abstract_eval(Aval((5, 2, 3), float32), Aval((5, 3, 4), float32)) == Aval((5, 2, 4), float32)
    assert mm.abstract_eval(Aval((2, 3), int64), Aval((3, 1), int64)) == Aval((2, 1), int64)
    for a, b in [(Aval((3,), float32), Aval((3, 1), float32)),
                 (Aval((2, 2, 3), float32), Aval((3, 4), float32)),
                 (Aval((2, 3), float32), Aval((4, 1), float32)),
                 (Aval((2, 3), float32), Aval((3, 1), float64)),
                 (Aval((2, 3), gg.bool), Aval((3, 1), gg.bool))]:
        with pytest.raises(TypeError, match="matmul"):
            mm.abstract_eval(a, b)


# ---------------------------------------------------------------- against PyTorch

TORCH_SHAPES = [(3,), (4,), (2, 3), (3, 4), (4, 5), (5, 2, 3), (5, 3, 4), (1, 2, 3), (1, 3, 4),
                (2, 1, 2, 3), (2, 5, 3, 4), (5, 4, 4), (0, 3), (0, 2, 3), (3, 3)]


def _outcome(lib, a, b, rg):
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal(a), dtype=lib.float64, requires_grad=rg[0])
    y = lib.tensor(rng.standard_normal(b), dtype=lib.float64, requires_grad=rg[1])
    try:
        out = lib.matmul(x, y)
    except Exception as e:  # noqa: BLE001  (comparing the exception itself)
        return type(e).__name__, str(e)
    grads = None
    if out.requires_grad:
        out.sum().backward()
        grads = [None if t.grad is None else np.asarray(t.grad.tolist()) for t in (x, y)]
    name = type(out.grad_fn).__name__ if out.grad_fn is not None else None
    return tuple(out.shape), name, np.asarray(out.tolist()), grads


def test_matmul_against_torch_all_pairs():
    torch = pytest.importorskip("torch")
    for a in TORCH_SHAPES:
        for b in TORCH_SHAPES:
            for rg in ((False, False), (True, False), (False, True), (True, True)):
                want, got = _outcome(torch, a, b, rg), _outcome(gg, a, b, rg)
                assert want[:2] == got[:2], (a, b, rg)
                if len(want) == 4:
                    np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=1e-12)
                    for g, w in zip(got[3] or (), want[3] or ()):
                        assert (g is None) == (w is None)
                        if w is not None:
                            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_only_the_needed_operand_is_saved():
    # a @ w with only a requiring grad saves w alone: changing a in place afterwards does
    # not invalidate the backward (as in PyTorch, whose mm saves self only for mat2's grad).
    x, w = leaf((2, 3)), leaf((3, 4), requires_grad=False)
    a = x * 1.0
    out = a @ w
    a.mul_(2.0)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 4)) @ w.numpy().T, rtol=1e-12)
    y = leaf((3, 4))
    b = x * 1.0
    out = b @ y
    b.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# torch.trace of a matrix (gradgen.trace of a function traces it instead): values, dtypes, errors.
TRACE_CASES = [
    ('torch.trace(torch.arange(12.).reshape(3, 4))', ('float32', (), 15.0)),
    ('torch.arange(12.).reshape(4, 3).t().trace()', ('float32', (), 12.0)),
    ('torch.trace(torch.ones(2, 2, dtype=torch.int32))', ('int64', (), 2)),
    ('torch.trace(torch.ones(0, 3))', ('float32', (), 0.0)),
    ('torch.trace(torch.ones(3))', (RuntimeError, 'trace: expected a matrix, but got tensor with dim 1')),
    ('torch.trace(torch.ones(()))', (RuntimeError, 'trace: expected a matrix, but got tensor with dim 0')),
    ('torch.trace(torch.ones(2, 2, dtype=torch.bool))',
     (NotImplementedError, '"trace" not implemented for \'Bool\'')),
    ('torch.trace(2.0)', (TypeError, "trace(): argument 'input' (position 1) must be Tensor, not float")),
    ('torch.trace(torch.ones(2, 2), torch.ones(2, 2))',
     (TypeError, 'trace() takes 1 positional argument but 2 were given')),
    ('torch.trace(torch.ones(2, 3, requires_grad=True)).grad_fn.name()', 'TraceBackward0'),
]


@pytest.mark.parametrize("expr, want", TRACE_CASES, ids=[c[0] for c in TRACE_CASES])
def test_matrix_trace_matches_torch(expr: str, want) -> None:
    assert repr(outcome(gg, expr)) == repr(want)


def test_matrix_trace_table_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    assert not mismatches(torch, TRACE_CASES)


def test_matrix_trace_gradient_and_ir_trace_share_the_name() -> None:
    x = leaf((3, 5), transposed=True)
    assert gradcheck(gg.trace, (x,)) and gradgradcheck(gg.trace, (x,))
    assert "reduce_sum" in str(gg.trace(lambda m: m.trace(), gg.ones(2, 2)))
