"""An output that is a view of an input is a view after compilation too, as in eager.

Eager returns ``x[0]`` or ``x.reshape(6)`` sharing ``x``'s memory: an in-place write through the
result reaches ``x`` (and the other way round), and its grad_fn is the view's node. The compiled
call makes such outputs again from the input with the same view primitives instead of returning
the kernels' copy. Each case is checked against eager: memory shared, writes seen both ways,
gradients equal.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import gradgen as gg
from conftest import needs_cc

G = gg.arange(6.0).reshape(2, 3)

CASES: dict[str, Callable[..., Any]] = {
    "select": lambda x: x[0],
    "reshape": lambda x: x.reshape(6),
    "transpose": lambda x: x.T,
    "strided slice": lambda x: x[:, ::2],
    "chain": lambda x: x.T[1:].unsqueeze(0),
    "view and a value": lambda x: (x[1], (x * 2).sum()),
    "same view twice": lambda x: (x[0], x[0]),
    "view of a captured global": lambda x: (G[1] * 1.0 + x[0], G[1]),
}

BACKENDS = ["interpret", pytest.param("c", marks=needs_cc)]


def _leaves(out: Any) -> list:
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_view_outputs_share_memory_as_in_eager(name: str, backend: str) -> None:
    fn = CASES[name]
    cf = gg.compile(fn, backend=backend)
    for call in range(3):  # the first call (traced) and later ones (compiled)
        x_e, x_c = gg.arange(6.0).reshape(2, 3), gg.arange(6.0).reshape(2, 3)
        want, got = _leaves(fn(x_e)), _leaves(cf(x_c))
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
            if np.shares_memory(w.numpy(), x_e.numpy()):
                assert np.shares_memory(g.numpy(), x_c.numpy()), (name, call)
                w.add_(10.0)
                g.add_(10.0)
                np.testing.assert_array_equal(x_c.numpy(), x_e.numpy())
    assert cf.inspect()[0]["fallback_reason"] is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [n for n in CASES if "global" not in n])
def test_view_outputs_gradients_as_in_eager(name: str, backend: str) -> None:
    fn = CASES[name]
    cf = gg.compile(fn, backend=backend)
    for _ in range(2):
        grads = []
        for f in (fn, cf):
            x = gg.arange(6.0).reshape(2, 3).requires_grad_()
            total = sum((o * (k + 2.0)).sum() for k, o in enumerate(_leaves(f(x))))
            total.backward()
            grads.append(x.grad.numpy())
        np.testing.assert_array_equal(grads[1], grads[0])
