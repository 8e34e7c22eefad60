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
