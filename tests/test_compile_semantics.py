"""A compiled function behaves as the same function run eagerly in the ways realistic programs
lean on (found by a round of scenario fuzzing): the grad mode it is called in, copies it
returns, autograd calls and hooks inside it, writes it makes. Each case runs the function
eagerly and compiled (traced, then warm) and compares what the caller sees."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradgen as gg
from conftest import needs_cc

BACKENDS = ["interpret", pytest.param("c", marks=needs_cc)]


def _same(got, want) -> None:
    """Equal structure and flags, values within float64's tolerance (libm may differ by an ulp)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, list):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=0)
        else:
            assert g == w


def _quiet(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (cases that fall back warn once)
        return f(*args)


def _branch_on_grad_mode(x):
    return x.exp() if gg.is_grad_enabled() else x.sin()


def _branch_on_requires_grad(x):
    y = x * 2
    return y + 1 if y.requires_grad else y - 1


def _enable_grad_inside(x):
    with gg.enable_grad():
        return (x * 2).sum()


def _no_grad_inside(x):
    with gg.no_grad():
        y = x * 3
    return (x * y).sum()


GRAD_MODE_FNS = [_branch_on_grad_mode, _branch_on_requires_grad, _enable_grad_inside,
                 _no_grad_inside]


def _run_in_mode(f, enabled: bool):
    x = gg.tensor([0.5, -1.0, 2.0], dtype=gg.float64, requires_grad=True)
    with gg.set_grad_enabled(enabled):
        out = f(x)
    seen = [out.tolist(), out.requires_grad]
    if out.requires_grad:
        out.sum().backward()
        seen.append(x.grad.tolist())
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("enabled", [False, True])
@pytest.mark.parametrize("f", GRAD_MODE_FNS, ids=[f.__name__ for f in GRAD_MODE_FNS])
def test_fn_runs_in_the_callers_grad_mode(backend: str, enabled: bool, f) -> None:
    cf = gg.compile(f, backend=backend)
    want = _run_in_mode(f, enabled)
    for _ in range(3):  # traced, then warm
        _same(_quiet(_run_in_mode, cf, enabled), want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_and_grad_differentiates_under_no_grad(backend: str) -> None:
    loss = lambda x: (x.sin() * x).sum()  # noqa: E731
    x = gg.tensor([0.5, -1.0, 2.0], dtype=gg.float64)
    want = [t.tolist() for t in gg.value_and_grad(loss)(x)]
    for f in (gg.value_and_grad(loss), gg.compile(gg.value_and_grad(loss), backend=backend)):
        for _ in range(3):
            with gg.no_grad():
                value, grad = f(x)
            _same([value.tolist(), grad.tolist()], want)


# ---------------------------------------------------------------- what the output shares

def _w():
    return gg.tensor([10.0, 20.0, 30.0], requires_grad=True)


# (fn(x, W), whether eager's output shares memory with x, with W)
SHARING = {
    "x.clone().detach()": (lambda x, W: x.clone().detach(), False, False),
    "x.detach().clone()": (lambda x, W: x.detach().clone(), False, False),
    "W.clone().detach()": (lambda x, W: W.clone().detach(), False, False),
    "(x * 1).detach()": (lambda x, W: (x * 1).detach(), False, False),
    "x.detach()": (lambda x, W: x.detach(), True, False),
    "W.data": (lambda x, W: W.data, False, True),
    "W.detach()[1:]": (lambda x, W: W.detach()[1:], False, True),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SHARING))
def test_an_output_shares_memory_exactly_when_eagers_does(backend: str, name: str) -> None:
    op, shares_x, shares_w = SHARING[name]
    W = _w()
    cf = gg.compile(lambda x: op(x, W), backend=backend)
    for call in range(3):
        x = gg.tensor([1.0, 2.0, 3.0], requires_grad=call == 2)
        out = _quiet(cf, x)
        with gg.no_grad():
            out.add_(100.0)
        assert (x.tolist()[-1] > 100) is shares_x, call
        assert (W.tolist()[-1] > 100) is shares_w, call
        if shares_w:
            with gg.no_grad():
                W.sub_(100.0)


# ---------------------------------------------------------------- writes fn makes

WRITES = {  # fn(x, W) writing into an argument's or a captured tensor's memory
    "x.detach().mul_(2)": lambda x, W: (x.detach().mul_(2), (x * W).sum())[1],
    "W.detach().add_(x)": lambda x, W: (W.detach().add_(x), (x * W).sum())[1],
    "W[0].add_(1) under no_grad": lambda x, W: (_no_grad_write(W), (x * W).sum())[1],
    "W.data.mul_(0.5) after the loss": lambda x, W: ((x * W).sum(), W.data.mul_(0.5))[0],
    "x.data.clamp_(-0.5, 0.5)": lambda x, W: (x.data.clamp_(-0.5, 0.5), (x * W).sum())[1],
    "W.data.copy_(x)": lambda x, W: (W.data.copy_(x), (x * W).sum())[1],
}


def _no_grad_write(W):
    with gg.no_grad():
        W[0].add_(1.0)


def _steps(f, W, n=3):
    seen = []
    for k in range(n):
        x = gg.tensor([0.25, 0.75, -1.0]) * (k + 1)
        loss = f(x)
        seen.append((float(loss), W.tolist(), x.tolist()))
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(WRITES))
def test_writes_into_inputs_happen_once_per_call(backend: str, name: str) -> None:
    """A trace stops before a write into an argument's or captured tensor's memory (through
    detach(), .data or a view): the call falls back to eager, which writes once."""
    body = WRITES[name]
    W = gg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    want = _steps(lambda x: body(x, W), W)
    W = gg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    got = _quiet(_steps, gg.compile(lambda x: body(x, W), backend=backend), W)
    assert got == want


# ---------------------------------------------------------------- autograd inside fn
# Each case: fn(x, W) -> loss; the driver backpropagates the loss (when it requires grad) and
# records the loss, x.grad, W.grad and the kept tensors' .grad over several calls.

KEPT: list = []


def _hook_on_intermediate(x, W):
    h = x * W
    h.register_hook(lambda g: g * 3)
    return h.sin().sum()


def _hook_on_argument(x, W):
    x.register_hook(lambda g: g * 2)
    return (x * W).exp().sum()


def _retain_grad_intermediate(x, W):
    h = (x * W).tanh()
    h.retain_grad()
    KEPT.append(h)
    return (h * h).sum()


def _leaf_made_inside(x, W):
    b = gg.ones(3, dtype=x.dtype, requires_grad=True)
    KEPT.append(b)
    return (x * W + b).sum()


def _requires_grad_on_a_copy(x, W):
    v = x.detach().clone().requires_grad_()
    KEPT.append(v)
    return (v * W).sum()


def _backward_inside_returns_grad(x, W):
    (x * W).sum().backward()
    return W.grad.sum() * 1.0


def _train_step(x, W):
    loss = ((x * W).tanh() ** 2).sum()
    loss.backward()
    with gg.no_grad():
        W.sub_(0.1 * W.grad)
        W.grad = None
    return loss.detach()


def _reads_grad(x, W):
    return (W.detach() - 0.1 * W.grad).sum() if W.grad is not None else x.sum() * 0.0


def _gradient_penalty(op):
    def f(x, W):
        y = op(x * W).sum()
        g, = gg.autograd.grad(y, x, create_graph=True)
        return y + (g ** 2).sum()
    f.__name__ = f"_gradient_penalty_{op.__name__}"
    return f


def _sqrt_of_positive(t):
    return (t * t + 1).sqrt()


def _grad_inside(x, W):  # no create_graph: the value of tanh's gradient, read from its output
    y = (x * W).tanh().sum()
    g, = gg.autograd.grad(y, x)
    return (g * W).sum()


INSIDE = [_hook_on_intermediate, _hook_on_argument, _retain_grad_intermediate,
          _leaf_made_inside, _requires_grad_on_a_copy, _backward_inside_returns_grad,
          _train_step, _reads_grad, _grad_inside] + \
    [_gradient_penalty(op) for op in (gg.tanh, gg.exp, gg.sigmoid, _sqrt_of_positive, gg.sin)]


def _autograd_run(f):
    W = gg.tensor([0.5, -1.0, 0.7], dtype=gg.float64, requires_grad=True)
    seen = []
    for k in range(4):
        KEPT.clear()
        x = gg.tensor([0.1, 0.2, 0.3], dtype=gg.float64, requires_grad=True) * (k + 1)
        x = x.detach().requires_grad_()
        loss = f(x, W)
        if loss.requires_grad:
            loss.backward()
        grads = [t.grad.tolist() if t.grad is not None else None for t in [x, W] + KEPT]
        seen.append([float(loss), grads, W.tolist()])
        if f is _reads_grad and W.grad is not None:
            W.grad = None  # PyTorch's zero_grad(): the next backward makes a new .grad
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f", INSIDE, ids=[f.__name__ for f in INSIDE])
def test_autograd_inside_fn_as_eager(backend: str, f) -> None:
    """Hooks, retain_grad, new leaves, backward() and .grad inside fn stop the trace (the call
    runs eagerly, once); autograd.grad inside fn is traced, differentiably with create_graph."""
    want = _autograd_run(f)
    got = _quiet(_autograd_run, gg.compile(f, backend=backend))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g[0], w[0], rtol=1e-10)
        assert [v is None for v in g[1]] == [v is None for v in w[1]]
        for gv, wv in zip(g[1], w[1]):
            if wv is not None:
                np.testing.assert_allclose(gv, wv, rtol=1e-10)
        np.testing.assert_allclose(g[2], w[2], rtol=1e-10)


# ---------------------------------------------------------------- how fn is called

class _Model:
    def __init__(self, scale: float) -> None:
        self.w = gg.tensor([1.0, -2.0], dtype=gg.float64).mul(scale).requires_grad_()

    @gg.compile
    def loss(self, x):
        return (x * self.w).tanh().sum()


def test_compile_decorates_a_method() -> None:
    """``@compile`` on a method binds like a function (one specialization per instance)."""
    models = [_Model(1.0), _Model(-3.0)]
    for _ in range(3):
        for m in models:
            m.w.grad = None
            x = gg.tensor([0.5, 0.25], dtype=gg.float64)
            m.loss(x).backward()
            w = m.w.detach().requires_grad_()
            (x * w).tanh().sum().backward()
            np.testing.assert_allclose(m.w.grad.numpy(), w.grad.numpy(), rtol=1e-12)
    assert isinstance(_Model.loss, gg.api.CompiledFunction)
    assert all(e["fallback_reason"] is None for e in _Model.loss.inspect())


STEP = 0


def _counts_calls(x):
    global STEP
    STEP += 1
    return x * STEP


def _counts_calls_then_stops(x):
    global STEP
    STEP += 1
    if x.sum().item() > 0:  # a value read: the trace stops after the assignment
        return x * STEP
    return x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f", [_counts_calls, _counts_calls_then_stops],
                         ids=["assigns", "assigns-then-stops"])
def test_a_variable_fn_assigns_is_assigned_once_per_call(backend: str, f) -> None:
    """fn assigning a global it reads cannot be compiled (the program would not assign it): the
    trace sets it back and the call runs fn eagerly, so each call assigns it once."""
    global STEP
    STEP = 0
    want = [f(gg.tensor([1.0, 2.0])).tolist() for _ in range(3)]
    STEP = 0
    cf = gg.compile(f, backend=backend)
    assert [_quiet(cf, gg.tensor([1.0, 2.0])).tolist() for _ in range(3)] == want
    assert STEP == 3
    if f is _counts_calls:
        assert "assigns to the variable 'STEP'" in str(cf.fallback_reason)


def _loss_with_weight(b, x):
    return ((x @ _WEIGHT + b) ** 2).mean()


_WEIGHT = gg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=gg.float64, requires_grad=True)


@pytest.mark.parametrize("how", ["value_and_grad", "compiled", "backend=eager"])
def test_value_and_grad_of_a_captured_weight_is_differentiable_on_every_path(how: str) -> None:
    """A captured tensor requiring grad makes value and gradients differentiable, whether the
    program was traced or the eager path ran (it used to return them detached)."""
    vg = {"value_and_grad": gg.value_and_grad(_loss_with_weight),
          "compiled": gg.compile(gg.value_and_grad(_loss_with_weight)),
          "backend=eager": gg.compile(gg.value_and_grad(_loss_with_weight), backend="eager")}[how]
    b = gg.tensor([0.5, -0.5], dtype=gg.float64)
    x = gg.tensor([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]], dtype=gg.float64)
    for _ in range(2):
        _WEIGHT.grad = None
        value, g = vg(b, x)
        assert value.requires_grad and g.requires_grad
        (value + g.sum()).backward()
        w = _WEIGHT.detach().requires_grad_()
        bb = b.clone().requires_grad_()
        v2 = ((x @ w + bb) ** 2).mean()
        g2, = gg.autograd.grad(v2, bb, create_graph=True)
        (v2 + g2.sum()).backward()
        np.testing.assert_allclose(_WEIGHT.grad.numpy(), w.grad.numpy(), rtol=1e-12)


MULTI_VIEWS = {"x.split(1)[0]": lambda x: x.split(1)[0],
               "x.unbind(0)[1]": lambda x: x.unbind(0)[1],
               "x.chunk(3, 1)[2]": lambda x: x.chunk(3, 1)[2]}


def _written_then_used(f):
    x = gg.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], requires_grad=True)
    out = f(x)
    with gg.no_grad():
        out.add_(100)
    try:
        out.sum().backward()
        return "no error"
    except RuntimeError as e:
        return str(e).split(" is a view")[0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(MULTI_VIEWS))
def test_an_output_of_split_keeps_its_multi_view_restriction(backend: str, name: str) -> None:
    f = MULTI_VIEWS[name]
    want = _written_then_used(f)
    assert want.startswith("Output ")
    cf = gg.compile(f, backend=backend)
    for _ in range(3):
        assert _written_then_used(cf) == want
