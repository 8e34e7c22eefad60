"""A compiled call answers what eager answers in the cases a trace could get wrong: the layout of
its arguments (strides are part of the signature), a Python float's sign of zero (part of the
key and of the guards), and the sign of zeros through the simplifier, a fused loss's scaled
gradients and max(dim). Each case compares compiled calls (after the trace and warm) with
eager, bit for bit where signs of zero are the point."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from conftest import needs_cc

BACKENDS = ["interpret", pytest.param("c", marks=needs_cc)]


def _layouts():
    base = gg.arange(24.0).reshape(4, 6)
    return {"contiguous": gg.arange(24.0).reshape(6, 4), "transposed": base.T,
            "step-sliced": gg.arange(48.0).reshape(12, 4)[::2]}


def _outcome(f, x):
    try:
        return f(x).tolist()
    except RuntimeError as e:
        return str(e)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("first", ["contiguous", "transposed", "step-sliced"])
def test_view_and_contiguity_answer_for_each_layout(backend: str, first: str) -> None:
    fns = {"view": lambda x: x.view(-1) * 2.0,
           "is_contiguous": lambda x: x * (1.0 if x.is_contiguous() else -1.0)}
    for name, f in fns.items():
        cf = gg.compile(f, backend=backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the view of a strided input falls back, warning)
            for _ in range(2):
                _outcome(cf, _layouts()[first])
            for layout, x in _layouts().items():
                assert _outcome(cf, x) == _outcome(f, x), (name, first, layout)


@pytest.mark.parametrize("backend", BACKENDS)
def test_contiguous_output_aliases_as_in_eager(backend: str) -> None:
    cf = gg.compile(lambda x: x.contiguous(), backend=backend)
    for first in ("contiguous", "transposed"):
        for _ in range(2):
            cf(_layouts()[first])
        for layout in ("contiguous", "transposed"):
            for f in (cf, lambda x: x.contiguous()):
                x = _layouts()[layout]
                before = x.tolist()
                f(x)[0, 1] = 99.0
                wrote = x.tolist() != before
                assert wrote is (layout == "contiguous"), (first, layout)


@pytest.mark.parametrize("backend", BACKENDS)
def test_negative_zero_arguments_and_globals_trace_again(backend: str) -> None:
    cf = gg.compile(lambda x, a: x / a, backend=backend)
    x = gg.tensor([1.0, -1.0])
    for a in (0.0, 0.0, -0.0, -0.0, 0.0):
        assert cf(x, a).tolist() == (x / a).tolist(), a
    global SCALE
    cg = gg.compile(lambda x: x / SCALE, backend=backend)
    for SCALE in (0.0, 0.0, -0.0, -0.0):
        assert cg(x).tolist() == (x / SCALE).tolist(), SCALE


SCALE = 0.0


def _signs(t: gg.Tensor) -> list:
    return [(v, math.copysign(1.0, v)) for v in t.reshape(-1).tolist()]


SIGNED_ZERO_PROGRAMS = {
    "1 / x.sum(-1) over a size-1 axis": lambda x: 1.0 / x.sum(-1),
    "x + 0.0": lambda x: (x + 0.0).reshape(-1),
    "0.0 + x": lambda x: (0.0 + x).reshape(-1),
    "0.0 - x": lambda x: (0.0 - x).reshape(-1),
    "x.mean(-1)": lambda x: x.mean(-1),
    "x.max(-1).values": lambda x: x.max(-1)[0],
    "1 / x[0, 0].sum() (a sum over no axis)": lambda x: 1.0 / x[0, 0].sum(),
    "nll_loss of a 1-D input, loss -0.0 + 0": lambda x: 1.0 / F.nll_loss(x[1:, 0], gg.tensor(0)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SIGNED_ZERO_PROGRAMS))
def test_signs_of_zero_as_in_eager(backend: str, name: str) -> None:
    f = SIGNED_ZERO_PROGRAMS[name]
    cf = gg.compile(f, backend=backend)
    for grad in (False, True):
        x = gg.tensor([[-0.0], [0.0], [2.0]], requires_grad=grad)
        for _ in range(3):
            got = cf(x)
        assert _signs(got) == _signs(f(x)), (name, grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cotangent", [-3.0, -0.0, 0.0, 2.5])
def test_fused_gradients_keep_the_sign_of_zero(backend: str, cotangent: float) -> None:
    def loss(x):
        return x.clamp(min=0.0).sum()

    cf = gg.compile(loss, backend=backend)
    grads = []
    for f in (loss, cf, cf, cf):
        x = gg.tensor([-1.0, 2.0, 3.0], requires_grad=True)
        (f(x) * cotangent).backward()
        grads.append(_signs(x.grad))
    assert grads[1:] == [grads[0]] * 3


def test_max_along_a_dim_keeps_negative_zero() -> None:
    x = gg.tensor([[-0.0, -0.0, -1.0], [1.0, 3.0, 3.0]], requires_grad=True)
    values, index = x.max(1)
    assert _signs(values) == [(-0.0, -1.0), (3.0, 1.0)] and index.tolist() == [0, 1]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
