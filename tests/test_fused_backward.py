"""compile(fn) + backward on a scalar loss: the fused call, checked against eager.

When the previous call's output of a specialization was differentiated, the next call runs the
fused program (loss and gradients at once) and its node scales the kept gradients by the
cotangent. Each case runs several calls (the first is the plain forward, later ones fused) with
cotangents 1, 2.5, -0.0, inf and NaN, and compares every gradient with eager mode: values within
the float tolerances, NaN and inf positions equal. Then the autograd behaviours a fused node must
keep: retain_graph and the freed error, in-place writes between forward and backward,
create_graph, autograd.grad, hooks, several calls in one graph, a call never differentiated.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from conftest import needs_cc

BACKENDS = ["interpret", pytest.param("c", marks=needs_cc)]
RNG = np.random.default_rng(7)
W_GLOBAL = gg.tensor(RNG.standard_normal((3, 4)), requires_grad=True)


def _chain(x, w, b):
    return (gg.tanh(x * w + b) * gg.sigmoid(x) + gg.exp(-x * x)).sum()


# name -> (loss, argument shapes, dtype); arguments past the first `n_grad` do not require grad.
CASES: dict[str, tuple[Callable, list, str, int]] = {
    "chain f32": (_chain, [(5, 6), (5, 6), (6,)], "float32", 3),
    "chain f64": (_chain, [(5, 6), (5, 6), (6,)], "float64", 3),
    "relu matmul mean": (lambda x, w: gg.relu(x @ w).mean(), [(4, 3), (3, 5)], "float32", 2),
    "cross entropy": (lambda z, t: F.cross_entropy(z, t), [(6, 5), "target"], "float32", 1),
    "float64 loss of float32": (lambda x, w: (x.double() * w.double()).sum(), [(4,), (4,)],
                                "float32", 2),
    "shape (1, 1)": (lambda x: (x * x).sum(dim=(0, 1), keepdim=True), [(3, 2)], "float32", 1),
    "captured global": (lambda x: (x @ W_GLOBAL).sum(), [(2, 3)], "float64", 1),
    "unused input": (lambda x, w: (x * 3.0).sum(), [(3,), (3,)], "float32", 2),
}
COTANGENTS = [1.0, 2.5, -0.0, float("inf"), float("nan")]


def _args(shapes: list, dtype: str, n_grad: int) -> list:
    out = []
    for i, s in enumerate(shapes):
        if s == "target":
            out.append(gg.tensor(RNG.integers(0, 5, size=6)))
        else:
            out.append(gg.tensor(RNG.standard_normal(s).astype(dtype), requires_grad=i < n_grad))
    return out


def _grads(loss_fn: Callable, args: list, g: float, extra: list) -> list:
    """Gradients of every argument that requires grad (and of `extra` leaves) after
    ``loss_fn(*args).backward(g)``; None for a leaf no gradient reached."""
    leaves = [a for a in args if a.requires_grad] + extra
    for t in leaves:
        t.grad = None
    out = loss_fn(*args)
    out.backward(gg.full(out.shape, g, dtype=out.dtype))
    return [None if t.grad is None else t.grad.numpy().copy() for t in leaves]


def _close(got: list, want: list, dtype: str) -> None:
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-5, 1e-6)
    for a, b in zip(got, want):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)  # NaN/inf positions equal too


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_fused_calls_match_eager_for_every_cotangent(name: str, backend: str) -> None:
    fn, shapes, dtype, n_grad = CASES[name]
    args = _args(shapes, dtype, n_grad)
    extra = [W_GLOBAL] if "global" in name else []
    cf = gg.compile(fn, backend=backend)
    fused_calls = 0
    for g in COTANGENTS:
        want = _grads(fn, args, g, extra)
        for _ in range(2):  # the second call after a backward runs the fused program
            got = _grads(cf, args, g, extra)
            _close(got, want, dtype)
        fused_calls += cf(*args).grad_fn._unit is not None
    assert fused_calls == len(COTANGENTS)
    assert cf.inspect()[0]["fallback_reason"] is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_implicit_backward_hands_the_kept_gradients_to_the_leaves(
        name: str, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``loss.backward()`` (no gradient given) of a fused call: the node's kept gradients go
    straight to the leaves (autograd.engine.run_unit, no cotangent made, no engine pass), and
    ``.grad`` accumulates over calls as eager's does."""
    fn, shapes, dtype, n_grad = CASES[name]
    args = _args(shapes, dtype, n_grad)
    leaves = [a for a in args if a.requires_grad] + ([W_GLOBAL] if "global" in name else [])

    def grads(f: Callable, calls: int) -> list:
        for t in leaves:
            t.grad = None
        for _ in range(calls):
            f(*args).backward()
        return [None if t.grad is None else t.grad.numpy().copy() for t in leaves]

    want = grads(fn, 3)
    cf = gg.compile(fn, backend=backend)
    grads(cf, 1)
    from gradgen.autograd import functional_api
    monkeypatch.setattr(functional_api, "backward", lambda *a, **k: pytest.fail("engine ran"))
    _close(grads(cf, 3), want, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_implicit_backward_checks_what_the_engine_checks(backend: str) -> None:
    """What the implicit backward of a fused call leaves to the general path: a loss whose data
    was replaced by a non-scalar, a hooked loss, a leaf whose .grad is itself differentiable."""
    cf, x, w = _fused_loss(backend)
    loss = cf(x, w)
    assert loss.grad_fn._unit is not None
    loss.data = gg.ones(3, dtype=gg.float64)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        loss.backward()
    for f in (cf.fn, cf):
        x.grad = w.grad = None
        seen = []
        loss = f(x, w)
        loss.register_hook(lambda g: seen.append(g.item()) or g * 3)
        loss.backward()
        assert seen == [1.0]
        got = [x.grad.numpy().copy(), w.grad.numpy().copy()]
        want = got if f is cf.fn else want
    _close(got, want, "float64")
    for f in (cf.fn, cf):  # added in place: the same object, still requiring grad (as in PyTorch)
        g = x.grad = gg.ones(4, 5, dtype=gg.float64).requires_grad_()
        f(x, w).backward()
        assert x.grad is g and x.grad.requires_grad
        _close([x.grad.detach().numpy()], [want[0] / 3 + 1], "float64")


def _fused_loss(backend: str) -> tuple[Callable, gg.Tensor, gg.Tensor]:
    """A compiled chain loss whose next call is fused (one call differentiated already)."""
    x, w, b = _args([(4, 5), (4, 5), (5,)], "float64", 3)
    cf = gg.compile(lambda x, w: _chain(x, w, b), backend=backend)
    cf(x, w).backward()
    return cf, x, w


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_loss_dropped_undifferentiated_turns_fusing_off_until_a_backward(backend: str) -> None:
    cf, x, w = _fused_loss(backend)
    assert cf(x, w).grad_fn._unit is not None  # after a backward: fused
    # ...that loss was dropped without a backward, so the next call is the plain forward,
    assert cf(x, w).grad_fn._unit is None
    loss = cf(x, w)
    assert loss.grad_fn._unit is None
    loss.backward()  # ...and once a loss is differentiated again, fused again
    assert cf(x, w).grad_fn._unit is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_losses_kept_undifferentiated_do_not_pile_up_gradients(backend: str) -> None:
    from gradgen.ad.compiled import FUSED_PENDING

    cf, x, w = _fused_loss(backend)
    kept = [cf(x, w) for _ in range(FUSED_PENDING + 5)]  # e.g. an eval loop without no_grad
    fused = [loss.grad_fn._unit is not None for loss in kept]
    assert fused == [True] * FUSED_PENDING + [False] * 5  # then plain calls: no gradients held
    kept[0].backward()  # one of them differentiated: fuse again
    assert cf(x, w).grad_fn._unit is not None
    kept.clear()  # dropped without a backward: plain until a backward runs
    assert cf(x, w).grad_fn._unit is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_calls_summed_before_one_backward_all_fuse(backend: str) -> None:
    cf, x, w = _fused_loss(backend)
    y = _args([(4, 5)], "float64", 1)[0]
    for step in range(3):
        losses = [cf(x, w), cf(y, w), cf(x * 2.0, w)]
        assert [loss.grad_fn._unit is not None for loss in losses] == [True] * 3, step
        for t in (x, y, w):
            t.grad = None
        sum(losses).backward()
    got = [t.grad.numpy().copy() for t in (x, y, w)]
    for t in (x, y, w):
        t.grad = None
    sum([cf.fn(x, w), cf.fn(y, w), cf.fn(x * 2.0, w)]).backward()
    _close(got, [t.grad.numpy() for t in (x, y, w)], "float64")


@pytest.mark.parametrize("backend", BACKENDS)
def test_retain_graph_accumulates_and_a_freed_node_raises(backend: str) -> None:
    cf, x, w = _fused_loss(backend)
    x.grad = w.grad = None
    want = [g * 3 for g in _grads(lambda x, w: cf(x, w), [x, w], 1.0, [])]
    loss = cf(x, w)
    assert loss.grad_fn._unit is not None
    x.grad = w.grad = None
    loss.backward(retain_graph=True)
    loss.backward(retain_graph=True)
    loss.backward()
    _close([x.grad.numpy(), w.grad.numpy()], want, "float64")
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()
    # .grad (possibly the node's own array, handed over) written in place: later calls unaffected
    x.grad.zero_()
    _close(_grads(cf, [x, w], 1.0, []), [g / 3 for g in want], "float64")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["saved input", "input not saved"])
def test_inplace_write_before_backward_as_in_eager(backend: str, case: str) -> None:
    """Writing an input between forward and backward: where eager raises, so does every compiled
    call; where eager does not (exp keeps its output, not x), a compiled call gives eager's
    gradients or raises the same error (its backward may recompute exp from x, as
    torch.compile's may), never other numbers -- and fused calls do as plain ones."""
    fn = (lambda x, w: (gg.exp(x) * 2.0).sum() + w.sum()) if case == "input not saved" \
        else (lambda x, w: (x * w).sum())
    cf = gg.compile(fn, backend=backend)
    results = []
    for f in (fn, cf, cf, cf):  # eager, then plain, fused, fused
        x, w = _args([(3,), (3,)], "float64", 2)
        x0 = x.detach().numpy().copy()
        loss = f(x, w)
        with gg.no_grad():
            x.add_(1.0)
        try:
            loss.backward()
            results.append("ok")
            np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(x0) if case ==
                                       "input not saved" else w.detach().numpy(), rtol=1e-12)
        except RuntimeError as err:
            assert "modified by an inplace operation" in str(err)
            results.append("raised")
            cf(x, w).backward()  # the next call is fused as after any backward
    assert results[0] == ("raised" if case == "saved input" else "ok")
    assert results[1] == results[2] == results[3] or results[0] == "raised", results
    assert "ok" not in results[1:] or results[0] == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_create_graph_through_a_fused_call_gives_eager_second_derivatives(backend: str) -> None:
    fn = lambda x: (gg.tanh(x) * x * x).sum()  # noqa: E731
    cf = gg.compile(fn, backend=backend)
    x = _args([(4,)], "float64", 1)[0]
    cf(x).backward()
    want = []
    for f in (fn, cf):
        loss = f(x)
        (gx,) = gg.autograd.grad(loss, x, create_graph=True)
        (hx,) = gg.autograd.grad(gx.sum(), x)
        want.append((gx.detach().numpy(), hx.numpy()))
    np.testing.assert_allclose(want[1][0], want[0][0], rtol=1e-12)
    np.testing.assert_allclose(want[1][1], want[0][1], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_hooks_and_several_calls_in_one_graph(backend: str) -> None:
    cf, x, w = _fused_loss(backend)
    eager = cf.fn
    y = _args([(4, 5)], "float64", 1)[0]
    # autograd.grad for a subset of the inputs
    (gx,) = gg.autograd.grad(cf(x, w), x)
    (ex,) = gg.autograd.grad(eager(x, w), x)
    np.testing.assert_allclose(gx.numpy(), ex.numpy(), rtol=1e-12)
    # a hook on a leaf sees (and may replace) the fused gradient
    want = [2 * g for g in _grads(eager, [x, w], 1.0, [])[:1]]
    handle = x.register_hook(lambda g: g * 2)
    cf(x, w).backward()
    x.grad = w.grad = None
    cf(x, w).backward()
    _close([x.grad.numpy()], want, "float64")
    handle.remove()
    # an input made by eager ops: the gradient flows on through its graph
    for f in (eager, cf):
        x.grad = w.grad = None
        f(x * 3.0, w.tanh()).backward()
        got = [x.grad.numpy().copy(), w.grad.numpy().copy()]
        want = got if f is eager else want
    _close(got, want, "float64")
    # two calls in one graph: each node gets its own cotangent
    cf(x, w).backward()
    for t in (x, y, w):
        t.grad = None
    (2 * eager(x, w) - eager(y, w)).backward()
    want = [t.grad.numpy().copy() for t in (x, y, w)]
    for t in (x, y, w):
        t.grad = None
    (2 * cf(x, w) - cf(y, w)).backward()
    _close([t.grad.numpy() for t in (x, y, w)], want, "float64")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_entry_restored_from_its_state_fuses_as_the_original(backend: str) -> None:
    """A warm start rebuilds the entry from its AD state and the loaded build
    (CompiledEntry.restore): its plain and fused calls give the original's gradients."""
    from gradgen.ad.compiled import CompiledEntry
    from gradgen.passes.pipeline import optimize

    cf, x, w = _fused_loss(backend)
    entry = cf.entries()[0]
    again = CompiledEntry.restore(entry.program, optimize, entry.ad_state(), entry.native)
    assert again.fused and (again.run_fused is not None)
    want = _grads(cf, [x, w], 2.0, [])
    fused = []
    for _ in range(3):
        loss = again.run_args((x, w))  # (with the captured tensor)
        fused.append(loss.grad_fn._unit is not None)
        x.grad = w.grad = None
        loss.backward(gg.tensor(2.0, dtype=gg.float64))
        _close([x.grad.numpy(), w.grad.numpy()], want, "float64")
    assert fused == [True, True, True]  # a loss's first call is fused too


@needs_cc
def test_the_loss_only_forward_is_compiled_when_a_call_first_needs_it() -> None:
    """A first compile of a loss builds its joint program alone (the first call is fused); the
    loss-only forward is compiled by the first call that needs it (after a loss was dropped
    undifferentiated), kept in the lowering cache, and shown by inspect() once built."""
    fn = lambda x, w: _chain(x, w, 0.5)  # noqa: E731
    x, w = _args([(4, 5), (4, 5)], "float32", 2)
    want = fn(x, w).item()
    cf = gg.compile(fn)
    loss = cf(x, w)
    entry = cf.entries()[0]
    assert loss.grad_fn._unit is not None
    assert len(entry.native.executables) == 1 and entry.forward_native is None
    source = cf.inspect()[0]["c_source"]
    loss.backward()
    loss = cf(x, w)
    del loss  # dropped undifferentiated: the next call needs the loss alone
    assert entry.forward_native is None
    loss = cf(x, w)
    assert loss.grad_fn._unit is None and entry.forward_native is not None
    np.testing.assert_allclose(loss.item(), want, rtol=1e-5)
    assert cf.inspect()[0]["c_source"] == entry.forward_native.source + "\n" + source
    # a second compiled function of the same trace finds both builds in the lowering cache
    again = gg.compile(fn)
    again(x, w)
    assert again.entries()[0].native.source == entry.native.source
    forward = again.entries()[0].run_forward
    assert again.entries()[0]._lower_forward(entry.forward).source == entry.forward_native.source
    assert again.entries()[0].run_forward is forward  # (building a part does not rebind)


@needs_cc
def test_a_loss_only_forward_that_cannot_be_compiled_runs_in_the_interpreter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """...with a warning; under fullgraph=True the failure is raised."""
    from gradgen.ad.compiled import CompiledEntry
    from gradgen.api import _CLower
    from gradgen.passes.pipeline import optimize

    def fail(program):
        raise RuntimeError("simulated compiler failure")

    fn = lambda x, w: _chain(x, w, 0.5)  # noqa: E731
    x, w = _args([(4, 5), (4, 5)], "float64", 2)
    cf = gg.compile(fn)
    cf(x, w)
    entry = cf.entries()[0]
    again = CompiledEntry.restore(entry.program, optimize, entry.ad_state(), entry.native, fail)
    again.fused_node(differentiated=False)  # as after a loss dropped undifferentiated
    with pytest.warns(RuntimeWarning, match="loss-only forward could not be compiled.*simulated"):
        loss = again.run_args((x, w))
    assert loss.grad_fn._unit is None
    np.testing.assert_allclose(loss.item(), fn(x, w).item(), rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), _grads(fn, [x, w], 1.0, [])[1], rtol=1e-12)
    # compile(fullgraph=True): the failure is raised instead
    monkeypatch.setattr(_CLower, "part", lambda self, name: fail)
    strict = gg.compile(fn, fullgraph=True)
    strict(x, w)  # fused, dropped undifferentiated: the next call needs the loss alone
    with pytest.raises(RuntimeError, match="simulated"):
        strict(x, w)
