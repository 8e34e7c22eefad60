"""gradgen.api: grad / value_and_grad in JAX's style and compile(backend="interpret"|"eager")."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.ad.compiled import CompiledFunctionBackward
from gradgen import compile, grad, value_and_grad
from gradgen.autograd.node import FREED_MESSAGE

from conftest import needs_cc


def t64(*values, rg=False):
    return gg.tensor(np.array(values, dtype=np.float64).reshape(-1) if len(values) != 1
                     else values[0], dtype=gg.float64, requires_grad=rg)


def rand(*shape, rg=False, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    t = gg.from_numpy(a)
    return t.requires_grad_() if rg else t


def eager_grads(fn, *args):
    xs = [a.detach().clone().requires_grad_() for a in args]
    out = fn(*xs)
    return out, gg.autograd.grad(out, xs, allow_unused=True, materialize_grads=True)


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(a.detach().numpy()), np.asarray(b.detach().numpy()),
                               rtol=rtol, atol=1e-14)


# ---------------------------------------------------------------- grad and value_and_grad

def loss3(x, w, b):
    return (gg.tanh(x @ w + b) ** 2).mean()


def test_grad_matches_eager_for_each_argnums_form() -> None:
    x, w, b = rand(4, 3), rand(3, 2, seed=1), rand(2, seed=2)
    _, (gx, gw, gb) = eager_grads(loss3, x, w, b)
    close(grad(loss3)(x, w, b), gx)
    close(grad(loss3, argnums=1)(x, w, b), gw)
    got = grad(loss3, argnums=(2, 0))(x, w, b)
    assert isinstance(got, tuple) and len(got) == 2
    close(got[0], gb), close(got[1], gx)
    close(grad(loss3, argnums=-1)(x, w, b), gb)


def test_value_and_grad_and_aux() -> None:
    x, w, b = rand(4, 3), rand(3, 2, seed=1), rand(2, seed=2)
    value, _ = eager_grads(loss3, x, w, b)
    v, g = value_and_grad(loss3, argnums=(0,))(x, w, b)
    close(v, value)
    assert isinstance(g, tuple) and g[0].shape == x.shape

    def with_aux(x, w, b):
        y = x @ w + b
        return (y ** 2).sum(), {"y": y, "n": 3}

    (v2, aux), gw = value_and_grad(with_aux, argnums=1, has_aux=True)(x, w, b)
    close(aux["y"], x @ w + b)
    assert aux["n"] == 3
    close(v2, ((x @ w + b) ** 2).sum())
    gw2, aux2 = grad(with_aux, argnums=1, has_aux=True)(x, w, b)
    close(gw2, gw)
    assert set(aux2) == {"y", "n"}


def test_grad_of_a_tuple_argument_has_its_structure() -> None:
    params = (rand(3, 2), rand(2, seed=1))
    x = rand(4, 3, seed=2)
    g = grad(lambda p, x: (x @ p[0] + p[1]).sum())(params, x)
    assert isinstance(g, tuple) and [t.shape for t in g] == [(3, 2), (2,)]
    close(g[1], gg.full((2,), 4.0, dtype=gg.float64))


def test_results_do_not_require_grad_without_grad_inputs() -> None:
    g = grad(lambda x: (x * x).sum())(rand(3))
    assert not g.requires_grad and g.grad_fn is None


def test_grad_errors() -> None:
    with pytest.raises(TypeError, match=r"Gradient only defined for scalar-output functions. "
                                        r"Output had shape: \(3,\)"):
        grad(lambda x: x * 2)(rand(3))
    with pytest.raises(TypeError, match=r"grad requires floating-point inputs, but argument 0 "
                                        r"has dtype int64"):
        grad(lambda n: n.sum())(gg.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"argnums 2 is out of range for a function called with "
                                         r"2 positional arguments"):
        grad(lambda x, y: x.sum(), argnums=2)(rand(2), rand(2))
    with pytest.raises(TypeError, match=r"has_aux=True requires the function to return a pair"):
        grad(lambda x: x.sum(), has_aux=True)(rand(2))


_VG_ERRORS = [  # (loss, value_and_grad keywords, exception, message)
    (lambda x: (x * 2).sum().long(), {}, TypeError,
     "Output had shape: () and dtype int64"),
    (lambda x: x * 2, {}, TypeError, "Output had shape: (3,) and dtype float64"),
    (lambda x: (x.sum(), x), {}, TypeError, "The function returned tuple, not a tensor"),
    (lambda x: x.sum(), {"argnums": ()}, ValueError,
     "argnums must name at least one positional argument, got ()"),
    (lambda x: x.sum(), {"has_aux": True}, TypeError,
     "has_aux=True requires the function to return a pair (output, aux)"),
    (lambda x: x[:2] * 2, {"has_aux": True}, TypeError,
     "has_aux=True requires the function to return a pair (output, aux)"),
]


@pytest.mark.parametrize("backend", ["eager", "interpret"])
@pytest.mark.parametrize("loss, kw, exc, message", _VG_ERRORS)
def test_value_and_grad_errors_are_the_same_compiled_or_eager(loss, kw, exc, message,
                                                              backend) -> None:
    """The checks of the loss (a scalar float tensor, a pair with has_aux) and of argnums
    raise the same exception from value_and_grad itself, from the compiled program and from
    its eager fallback (backend="eager")."""
    for f in (value_and_grad(loss, **kw), compile(value_and_grad(loss, **kw), backend=backend)):
        with pytest.raises(exc) as err:
            f(gg.tensor([1.0, 2.0, 3.0], dtype=gg.float64))
        assert message in str(err.value)


@pytest.mark.parametrize("backend", ["eager", "interpret"])
def test_value_and_grad_aux_is_detached_like_the_value(backend) -> None:
    """Without inputs that require grad, the value, the gradients and the aux come back
    detached, compiled or eager (the aux's graph would end at the call's private leaves)."""
    def loss(w, x):
        z = x @ w
        return (z * z).mean(), {"z": z, "n": 3}
    w = gg.tensor([1.0, -2.0, 0.5], dtype=gg.float64)
    x = gg.tensor(np.arange(6.0).reshape(2, 3))
    (v, aux), g = compile(value_and_grad(loss, has_aux=True), backend=backend)(w, x)
    assert aux["n"] == 3
    assert [t.requires_grad for t in (v, aux["z"], g)] == [False] * 3
    np.testing.assert_allclose(aux["z"].numpy(), (x @ w).numpy())


def test_second_derivative_by_nesting_grad() -> None:
    f = lambda x: (x ** 3).sum()  # noqa: E731
    x = t64(0.5, -1.0, 2.0)
    close(grad(lambda x: grad(f)(x).sum())(x), 6 * x)
    close(grad(lambda x: grad(lambda y: (gg.sin(y) * x).sum())(x).sum())(x),
          2 * gg.cos(x) - x * gg.sin(x))


def test_grad_results_are_differentiable_when_inputs_require_grad() -> None:
    x = t64(0.5, -1.0, 2.0, rg=True)
    g = grad(lambda x: (x ** 3).sum())(x)
    assert g.requires_grad
    g.sum().backward()
    close(x.grad, 6 * x)


def test_grad_traces_once_per_signature() -> None:
    calls = []

    def f(x, s):
        calls.append(1)
        return (x * s).sum()

    g = grad(f)
    for _ in range(3):
        g(rand(3), 2.0)
    assert len(calls) == 1
    g(rand(4), 2.0), g(rand(4), 3.0), g(rand(4), 3)  # new shape; new constant; int vs float
    assert len(calls) == 4
    close(g(rand(4), 3.0), gg.full((4,), 3.0, dtype=gg.float64))


def test_grad_falls_back_to_eager_with_a_warning() -> None:
    def f(x):
        return x.sum() * float(x[0])

    g = grad(f)
    with pytest.warns(UserWarning, match="falling back to eager"):
        got = g(t64(2.0, 3.0))
    close(got, t64(2.0, 2.0))  # float() makes x[0] a constant, in eager mode too
    assert "a tensor's value flows into Python" in str(g.fallback.reason)


# ---------------------------------------------------------------- compile

class Counter:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kw):
        self.calls += 1
        return self.fn(*args, **kw)


def mlp(x, w1, b1, w2, b2, t):
    return F.cross_entropy(F.linear(gg.relu(F.linear(x, w1, b1)), w2, b2), t)


def mlp_args(seed=0):
    rng = np.random.default_rng(seed)
    ws = [gg.from_numpy(rng.standard_normal(s)).requires_grad_() for s in [(6, 4), (6,), (3, 6), (3,)]]
    return [gg.from_numpy(rng.standard_normal((5, 4)))] + ws + [gg.tensor([0, 2, 1, 1, 0])]


def test_compile_backward_fills_grad_like_eager() -> None:
    args = mlp_args()
    eager_args = [a.detach().clone().requires_grad_() if a.requires_grad else a for a in args]
    mlp(*eager_args).backward()
    body = Counter(mlp)
    cf = compile(body)
    for step in range(3):
        for a in args[1:5]:
            a.grad = None
        loss = cf(*args)
        assert type(loss.grad_fn) is CompiledFunctionBackward
        assert loss.grad_fn.name() == "CompiledFunctionBackward"
        close(loss, mlp(*eager_args))
        loss.backward()
        for a, e in zip(args[1:5], eager_args[1:5]):
            close(a.grad, e.grad)
    assert body.calls == 1  # traced once, then the interpreted programs ran
    entry = cf.entries()[0]
    assert entry.backward is not None and len(entry.forward.eqns) > 0


def test_compile_accumulates_and_respects_retain_graph() -> None:
    x = t64(1.0, 2.0, rg=True)
    cf = compile(lambda x: (x * x * x).sum())
    y = cf(x)
    y.backward(retain_graph=True)
    y.backward()
    close(x.grad, 2 * 3 * x * x)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    assert FREED_MESSAGE.startswith("Trying to backward")


def test_compile_create_graph_double_backward() -> None:
    x = t64(0.5, -1.0, rg=True)
    cf = compile(lambda x: (gg.sin(x) * x).sum())
    (g,) = gg.autograd.grad(cf(x), x, create_graph=True)
    close(g, gg.sin(x) + x * gg.cos(x))
    g.sum().backward()
    close(x.grad, 2 * gg.cos(x) - x * gg.sin(x))


def test_compile_multiple_outputs_and_structures() -> None:
    x, y = rand(3, 4, rg=True), rand(3, 4, rg=True, seed=1)

    def f(x, y):
        return {"p": x * y, "idx": gg.argmax(x, 1), "pair": (gg.exp(x), 2), "x": x}

    out = compile(f)(x, y)
    ref = f(x.detach(), y.detach())
    assert out["pair"][1] == 2 and out["x"] is x
    close(out["p"], ref["p"]), close(out["pair"][0], ref["pair"][0])
    assert out["idx"].dtype is gg.int64 and not out["idx"].requires_grad
    np.testing.assert_array_equal(out["idx"].numpy(), ref["idx"].numpy())
    (out["p"].sum() + out["pair"][0].sum()).backward()
    close(x.grad, y.detach() + gg.exp(x.detach()))
    close(y.grad, x.detach())


def test_compile_outputs_alias_inputs_as_eager_does() -> None:
    """``x * 1.0`` and ``x + 0.0`` are new tensors in eager (the passes fold them to ``x``: the
    compiled call must still return copies); ``x.reshape(6)`` is a view of ``x`` in eager, and
    compiled too (tests/test_output_views.py)."""
    fn = lambda x: (x * 1.0, x.reshape(6), x + 0.0)  # noqa: E731
    for f in (fn, compile(fn)):
        x = rand(2, 3)
        out = f(x)
        shares = [np.shares_memory(o.numpy(), x.numpy()) for o in out]
        assert shares == [False, True, False]
        out[0].zero_()
        out[2].zero_()
        assert np.all(x.numpy() != 0)


def test_compile_respects_grad_mode_and_requires_grad() -> None:
    body = Counter(lambda x: (x * 2).sum())
    cf = compile(body)
    x = rand(3, rg=True)
    with gg.no_grad():
        y = cf(x)
    assert not y.requires_grad and y.grad_fn is None
    assert cf(x).requires_grad
    assert not cf(rand(3)).requires_grad
    assert body.calls == 3  # three signatures


def test_compile_reads_captured_weights_by_reference() -> None:
    w = t64(1.0, 2.0, rg=True)
    cf = compile(lambda x: (x * w).sum())
    x = t64(3.0, 4.0)
    close(cf(x), t64(11.0))
    with gg.no_grad():
        w.mul_(2) if hasattr(w, "mul_") else w.data.numpy().__imul__(2)
    y = cf(x)
    close(y, t64(22.0))
    y.backward()
    close(w.grad, x)


def test_compile_saved_input_modified_in_place_raises() -> None:
    x = t64(1.0, 2.0, rg=True)
    y = t64(3.0, 4.0)
    out = compile(lambda x, y: (x * y).sum())(x, y)
    y.add_(1) if hasattr(y, "add_") else gg.neg_(y)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


@pytest.mark.parametrize("backend", ["interpret", pytest.param("c", marks=[pytest.mark.cc, needs_cc])])
def test_compile_saved_output_written_in_place_names_its_maker(backend) -> None:
    """exp's backward reads its output; written in place before backward, the error names
    the node that made it -- eager's Exp, the compiled call's own node -- not the write."""
    for fn, maker in ((lambda x: x.exp(), "Exp"),
                      (compile(lambda x: x.exp(), backend=backend), "CompiledFunction")):
        x = t64(0.1, 0.2, rg=True)
        out = fn(x)
        out.mul_(2)
        with pytest.raises(RuntimeError, match=f"which is output 0 of {maker}, is at version 1"):
            out.sum().backward()


def test_compile_hooks_and_retain_grad_on_outputs() -> None:
    x = t64(1.0, 2.0, rg=True)
    h = compile(lambda x: x * 3)(x)
    h.retain_grad()
    h.register_hook(lambda g: g * 10)
    h.sum().backward()
    close(h.grad, t64(10.0, 10.0))
    close(x.grad, t64(30.0, 30.0))


def test_compile_falls_back_once_with_the_reason() -> None:
    body = Counter(lambda x: x * 2 if x.sum().item() > 0 else -x)
    cf = compile(body)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = cf(t64(1.0, 2.0))
        b = cf(t64(1.0, 2.0))
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and "falling back to eager" in msgs[0]
    assert "item()" in msgs[0] and "test_api.py:" in msgs[0]
    assert cf.fallback_reason.where.startswith("test_api.py:")
    close(a, t64(2.0, 4.0)), close(b, t64(2.0, 4.0))
    assert body.calls == 3  # the failed trace, then two eager calls


def _loss_ab(a, b):
    return (a * b.exp()).sum()


@pytest.mark.parametrize("wrap", [lambda f: f, lambda f: value_and_grad(f, argnums=(0, 1))])
def test_one_tensor_as_two_arguments_runs_eagerly_for_that_call_only(wrap) -> None:
    """f(x, x) is not traced (the IR has one input per argument) and runs eagerly; the
    signature is not marked eager, so f(x, y) with distinct tensors still compiles."""
    cf, eager = compile(wrap(_loss_ab), backend="interpret"), wrap(_loss_ab)
    x = gg.tensor([0.5, -1.0], dtype=gg.float64)
    y = gg.tensor([2.0, 0.25], dtype=gg.float64)
    with pytest.warns(UserWarning, match="the same tensor is passed as two arguments"):
        first = cf(x, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # traced and compiled: no warning
        second = cf(x, y)
    assert [spec["fallback_reason"] for spec in cf.inspect()] == [None]
    for got, want in ((first, eager(x, x)), (second, eager(x, y))):
        np.testing.assert_allclose(np.concatenate([t.numpy().ravel() for t in _leaves(got)]),
                                   np.concatenate([t.numpy().ravel() for t in _leaves(want)]),
                                   rtol=1e-12)


def _leaves(tree):
    return [tree] if isinstance(tree, gg.Tensor) else [t for x in tree for t in _leaves(x)]


@pytest.mark.parametrize("name,fn", [
    ("random", lambda x: x * gg.rand(3)),
    ("numpy", lambda x: x * float(x.numpy()[0])),
    ("inplace-input", lambda x: x.exp_()),
])
def test_compile_falls_back_for_each_stop(name, fn) -> None:
    cf = compile(fn)
    x = t64(0.5, 0.25, 0.125)
    with pytest.warns(UserWarning, match="falling back to eager"):
        out = cf(x)
    assert out.shape == (3,)
    assert cf.fallback_reason is not None


def test_compile_backends_and_decorator_forms() -> None:
    body = Counter(lambda x: x + 1)
    eager = compile(body, backend="eager")
    eager(rand(2)), eager(rand(2))
    assert body.calls == 2

    @compile
    def f(x):
        return x * 2

    @compile(backend="interpret")
    def g(x, *, scale):
        return x * scale

    close(f(t64(1.0, 2.0)), t64(2.0, 4.0))
    close(g(t64(1.0, 2.0), scale=3.0), t64(3.0, 6.0))
    assert f.__name__ == "f"
    with pytest.raises(ValueError, match=r"unknown backend 'cuda'; expected one of 'c', 'interpret', 'eager'"):
        compile(lambda x: x, backend="cuda")


def test_compile_inside_a_trace_is_inlined() -> None:
    inner = compile(lambda x: x * 3)
    close(grad(lambda x: inner(x).sum())(t64(1.0, 2.0)), t64(3.0, 3.0))


def test_compile_inside_an_eager_graph_and_two_outputs() -> None:
    x = t64(0.5, 2.0, rg=True)
    cf = compile(lambda y: (y.exp(), (y * y).sum()))
    a, b = cf(x + 1)             # the compiled call's input is an intermediate of an eager graph
    a.sum().backward(retain_graph=True)  # one node serves both outputs (as torch.compile's):
    b.backward()                         # the second pass needs the graph kept; both accumulate
    close(x.grad, gg.exp(x.detach() + 1) + 2 * (x.detach() + 1))


def test_compile_gradients_keep_float32() -> None:
    x = gg.ones(2, 3, requires_grad=True)
    compile(lambda x: (x * 0.5).sum())(x).backward()
    assert x.grad.dtype is gg.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 0.5, np.float32))


def test_grad_outputs_never_alias_inputs() -> None:
    x = t64(1.0, 2.0)
    (value, aux), g = value_and_grad(lambda x: ((x * x).sum(), (x, x * 1.0)), has_aux=True)(x)
    aux[0].zero_() if hasattr(aux[0], "zero_") else gg.zero_(aux[0])
    aux[1].zero_() if hasattr(aux[1], "zero_") else gg.zero_(aux[1])
    close(x, t64(1.0, 2.0))
    close(g, t64(2.0, 4.0))


def test_compile_unhashable_argument_runs_eagerly_and_says_why() -> None:
    body = Counter(lambda x, a: x * 2.0 + (gg.from_numpy(a) if isinstance(a, np.ndarray) else a))
    cf = compile(body)
    with pytest.warns(UserWarning, match="falling back to eager: an argument of type "
                                         "numpy.ndarray is neither a tensor nor a hashable"):
        close(cf(t64(1.0, 2.0, 3.0), np.arange(3.0)), t64(2.0, 5.0, 8.0))
    assert "gradgen.from_numpy" in str(cf.fallback_reason) and body.calls == 1
    for _ in range(3):  # only that call ran eagerly: with a tensor it compiles (traced once)
        close(cf(t64(1.0, 2.0, 3.0), t64(0.0, 1.0, 2.0)), t64(2.0, 5.0, 8.0))
    assert body.calls == 2
