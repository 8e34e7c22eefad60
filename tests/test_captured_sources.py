"""Captured tensors and Python scalars are guarded by the variable fn read them from.

A tensor fn reads from a global or from its closure is captured by the compiled program (an
input read by reference). Rebinding that variable to another tensor -- ``W = W - lr * g`` --
must not leave the program using the old one: the guard fails and the next call traces again,
as fn would read the new tensor. Writing into the tensor in place needs no new trace. A Python
scalar fn reads from its globals or closure (a coefficient, a flag steering control flow) is
baked into the program: changing it traces again too. Each case runs a sequence of updates and
compares every compiled call with ``fn`` run eagerly.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import gradgen as gg
from conftest import needs_cc

W = gg.ones(3)
B = gg.zeros(3)
UNRELATED = gg.ones(3)
SCALE = 2.0
FLAG = True
CALLS = 0
NAN = float("nan")
ACT = gg.relu


def _with_global(x: gg.Tensor) -> gg.Tensor:
    return (x * W + B).sum()


def _helper(x: gg.Tensor) -> gg.Tensor:
    return x * W


def _through_helper(x: gg.Tensor) -> gg.Tensor:
    return (_helper(x) + 1).sum()


def _scaled(x: gg.Tensor) -> gg.Tensor:
    return (x * SCALE).sum() if FLAG else (x - SCALE).sum()


def _activated(x: gg.Tensor) -> gg.Tensor:
    return ACT(x - 1.0).sum()


def _swap_act(k: int) -> None:
    global ACT
    ACT = (gg.tanh, gg.sigmoid, gg.relu, gg.tanh)[k]


def _counting(x: gg.Tensor) -> gg.Tensor:
    global CALLS
    CALLS += 1  # a side effect of fn's Python: a compiled call would not run it
    return (x * NAN).sum() if NAN != NAN else x.sum()


def _rebind_scale(k: int) -> None:
    global SCALE
    SCALE = SCALE + 1.5


def _flip_flag(k: int) -> None:
    global FLAG
    FLAG = not FLAG


def _same_values(k: int) -> None:
    global SCALE, NAN
    SCALE, NAN = 2.0, float("nan")


def _rebind_w(k: int) -> None:
    global W
    W = gg.full((3,), float(k + 2))


def _rebind_b(k: int) -> None:
    global B
    B = B + 1.0


def _write_w(k: int) -> None:
    with gg.no_grad():
        W.mul_(2.0)


def _rebind_unrelated(k: int) -> None:
    global UNRELATED
    UNRELATED = gg.full((3,), float(k))


def _reset() -> None:
    global W, B, UNRELATED, SCALE, FLAG, CALLS, ACT
    W, B, UNRELATED, SCALE, FLAG, CALLS = gg.ones(3), gg.zeros(3), gg.ones(3), 2.0, True, 0
    ACT = gg.relu


# name -> (fn, update between calls, traces expected after the first call)
CASES: dict[str, tuple[Callable, Callable[[int], None], bool]] = {
    "global rebound": (_with_global, _rebind_w, True),
    "second global rebound": (_with_global, _rebind_b, True),
    "global read in a helper, rebound": (_through_helper, _rebind_w, True),
    "global written in place": (_with_global, _write_w, False),
    "another global rebound": (_with_global, _rebind_unrelated, False),
    "scalar global rebound": (_scaled, _rebind_scale, True),
    "flag steering control flow": (_scaled, _flip_flag, True),
    "scalars rebound to equal values (NaN too)": (_scaled, _same_values, False),
    "function global rebound": (_activated, _swap_act, True),
}


def _run(fn: Callable, update: Callable[[int], None], backend: str) -> tuple[list, list, Any]:
    cf = gg.compile(fn, backend=backend)
    x = gg.tensor([1.0, 2.0, 3.0])
    got, want = [], []
    for k in range(4):
        got.append(cf(x).item())
        want.append(fn(x).item())
        update(k)
    return got, want, cf


@pytest.mark.parametrize("name", list(CASES))
def test_rebinding_a_captured_variable_retraces(name: str) -> None:
    _reset()
    fn, update, retraces = CASES[name]
    got, want, cf = _run(fn, update, "interpret")
    assert got == want
    assert (cf._cache.retraces > 0) == retraces
    (spec,) = cf.inspect()
    assert spec["fallback_reason"] is None


def test_guards_are_listed_by_inspect() -> None:
    _reset()
    cf2 = gg.compile(_scaled, backend="interpret")
    cf2(gg.ones(3))
    lines = cf2.inspect()[0]["guards"]
    assert "global 'SCALE' == 2.0" in lines and "global 'FLAG' == True" in lines
    cf3 = gg.compile(_activated, backend="interpret")
    cf3(gg.ones(3))
    assert "global 'ACT' is the object it was (function)" in cf3.inspect()[0]["guards"]


@pytest.mark.parametrize("kind", ["tensor", "scalar"])
def test_closure_variable_rebound(kind: str) -> None:
    v: Any = gg.ones(3) if kind == "tensor" else 2.0

    def f(x: gg.Tensor) -> gg.Tensor:
        return (x * v).sum()

    cf = gg.compile(f, backend="interpret")
    x = gg.tensor([1.0, 2.0, 3.0])
    for k in range(3):
        assert cf(x).item() == f(x).item()
        v = gg.full((3,), float(k + 5)) if kind == "tensor" else v * 3  # rebinds f's cell
    assert cf._cache.retraces == 2
    if kind == "tensor":
        assert "still in fn's closure cell" in "\n".join(cf.inspect()[0]["guards"])
    else:
        assert "closure variable 'v' == 2.0" not in cf.inspect()[0]["guards"]  # (now 18.0)
        assert "closure variable 'v' == 18.0" in cf.inspect()[0]["guards"]


def test_value_and_grad_follows_a_rebound_global() -> None:
    _reset()
    vg = gg.compile(gg.value_and_grad(_with_global), backend="interpret")
    for k in range(3):
        x = gg.tensor([1.0, 2.0, 3.0])
        value, grad = vg(x)
        assert value.item() == _with_global(x).item()
        np.testing.assert_array_equal(grad.numpy(), W.numpy())
        _rebind_w(k)


def test_backward_reaches_the_rebound_parameter() -> None:
    """A captured parameter rebound to a new leaf: .backward() fills the new leaf's grad."""
    global W
    W = gg.ones(3, requires_grad=True)
    cf = gg.compile(_with_global, backend="interpret")
    x = gg.tensor([1.0, 2.0, 3.0])
    for k in range(3):
        cf(x).backward()
        np.testing.assert_array_equal(W.grad.numpy(), x.numpy())
        W = gg.full((3,), float(k), requires_grad=True)
    _reset()


def test_a_global_fn_assigns_is_assigned_once_per_call() -> None:
    """A counter fn increments: a compiled program would not increment it, so the trace sets it
    back and every call runs fn eagerly (once), as eager would."""
    _reset()
    cf = gg.compile(_counting, backend="interpret")
    x = gg.tensor([1.0, 2.0])
    with pytest.warns(UserWarning, match="assigns to the variable 'CALLS'"):
        results = [cf(x).item() for _ in range(4)]
    assert np.isnan(results).all() and CALLS == 4


def test_value_and_grad_follows_a_rebound_scalar() -> None:
    _reset()
    vg = gg.compile(gg.value_and_grad(_scaled), backend="interpret")
    x = gg.tensor([1.0, 2.0, 3.0])
    for k in range(3):
        value, grad = vg(x)
        assert value.item() == _scaled(x).item()
        np.testing.assert_array_equal(grad.numpy(), np.full(3, SCALE, np.float32))
        _rebind_scale(k)


@needs_cc
def test_c_backend_follows_a_rebound_global() -> None:
    _reset()
    got, want, cf = _run(_with_global, _rebind_w, "c")
    assert got == want and cf._cache.retraces == 3


@pytest.mark.parametrize("backend", ["interpret", pytest.param("c", marks=needs_cc)])
def test_default_dtype_is_part_of_the_signature(backend: str) -> None:
    """Factories and Python floats inside fn take the default dtype, which a trace bakes in:
    changing it selects another specialization, as eager's result dtype changes."""
    def f(x: gg.Tensor) -> gg.Tensor:
        return (x + gg.ones(3)).sum() + 0.1

    cf = gg.compile(f, backend=backend)
    y = gg.ones(3, dtype=gg.float32)
    try:
        for d in (gg.float32, gg.float64, gg.float32):
            gg.set_default_dtype(d)
            got, want = cf(y), f(y)
            assert got.dtype == want.dtype == d and got.item() == pytest.approx(want.item())
    finally:
        gg.set_default_dtype(gg.float32)
    assert len(cf.inspect()) == 2
    assert {line for spec in cf.inspect() for line in spec["guards"]
            if line.startswith("default dtype")} == {"default dtype: torch.float32",
                                                     "default dtype: torch.float64"}


def test_a_variable_changing_every_call_falls_back_to_eager() -> None:
    """Past ``max_specializations`` guard failures for one signature, the function runs
    eagerly for it (each new trace would be thrown away again), with a warning."""
    _reset()
    cf = gg.compile(_scaled, backend="interpret", max_specializations=3)
    x = gg.tensor([1.0, 2.0, 3.0])
    with pytest.warns(UserWarning, match="falling back to eager: this signature was traced again"):
        for k in range(6):
            assert cf(x).item() == _scaled(x).item()
            _rebind_scale(k)
    assert cf._cache.retraces == 3
    assert "keeps changing" in cf.inspect()[-1]["fallback_reason"]
