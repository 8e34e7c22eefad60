"""An output that is a view of an input, or of another output, is a view after compilation
too, as in eager.

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
    # copies in eager: never the input's memory
    "flip": lambda x: x.flip(0),
    "view of a flip": lambda x: x.flip(1)[0],
    "flip of a view": lambda x: x[1].flip(0),
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
            else:  # a copy in eager: a write into the input must not reach it
                assert not np.shares_memory(g.numpy(), x_c.numpy()), (name, call)
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
            outs = _leaves(f(x))
            total = sum((o * (k + 2.0)).sum() for k, o in enumerate(outs))
            total.backward()
            grads.append((x.grad.numpy(), [type(o.grad_fn).__name__ for o in outs]))
        np.testing.assert_array_equal(grads[1][0], grads[0][0])
        # the views' nodes too (x[0]: SelectBackward0); a computed value's is the call's
        assert [c if c == "CompiledFunctionBackward" else e
                for c, e in zip(grads[1][1], grads[0][1])] == grads[1][1]


def _twice(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda x: fn(x * 2.0)


OUTPUT_CASES: dict[str, Callable[..., Any]] = {
    "select": _twice(lambda y: (y, y[0])),
    "transpose, base last": _twice(lambda y: (y.T, y)),
    "flattened": _twice(lambda y: (y, y.view(-1))),
    "view of a view output": _twice(lambda y: (y, y[1], y[1][1:])),
    # equal values, not views: separate tensors (the passes merge the products)
    "views of an input and an output": lambda x: (x[0], x * 3.0, (x * 3.0)[1]),
    "a view before an equal value": lambda x: ((x * 3.0)[1], x * 3.0),
    "two views": _twice(lambda y: (y[:, 1], y, y.unsqueeze(0))),
}


def _run(f: Callable, write: bool) -> tuple[list, np.ndarray]:
    """Outputs (as arrays) and x.grad after writing through the last output (when ``write``)
    and differentiating a weighted sum of all outputs."""
    x = gg.arange(6.0).reshape(2, 3).requires_grad_()
    outs = _leaves(f(x))
    if write:
        outs[-1].mul_(10.0)
    total = sum((o * (k + 2.0)).sum() for k, o in enumerate(outs))
    total.backward()
    return [o.detach().numpy().copy() for o in outs], x.grad.numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("name", list(OUTPUT_CASES))
def test_views_of_other_outputs_as_in_eager(name: str, write: bool, backend: str) -> None:
    """Memory shared between outputs as in eager, a write through one seen by the other, and
    the gradients through both (after that write) equal to eager's."""
    fn = OUTPUT_CASES[name]
    cf = gg.compile(fn, backend=backend)
    for call in range(3):
        x_e, x_c = gg.arange(6.0).reshape(2, 3), gg.arange(6.0).reshape(2, 3)
        want, got = _leaves(fn(x_e)), _leaves(cf(x_c))
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            for w2, g2 in zip(want[i + 1:], got[i + 1:]):
                shared = np.shares_memory(w.numpy(), w2.numpy())
                assert np.shares_memory(g.numpy(), g2.numpy()) == shared, (name, call, i)
        (w_out, w_grad), (g_out, g_grad) = _run(fn, write), _run(cf, write)
        for w, g in zip(w_out, g_out, strict=True):
            np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(g_grad, w_grad)
    assert cf.inspect()[0]["fallback_reason"] is None
