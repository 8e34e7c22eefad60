"""Recycled outputs of the generated call (gradgen/runtime/callgen.py): an array the caller
dropped is written again by a later call; one the caller still holds, in any way, never is."""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg

pytestmark = pytest.mark.cc


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _executable():
    from gradgen.ir.trace import trace  # noqa: PLC0415
    from gradgen.runtime.executor import build_programs  # noqa: PLC0415
    program = trace(lambda x, y: (gg.exp(x) * y, (x * y).sum(), x - y),
                    gg.ones(3, 4), gg.ones(3, 4))
    (ex,) = build_programs([program], 1).executables
    fast = ex.callable()
    assert fast is not ex and all(ex.owned)
    return ex, fast


def _inputs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))


def test_dropped_outputs_are_written_again() -> None:
    ex, fast = _executable()
    first = fast(*_inputs(0))
    addresses = [_address(a) for a in first]
    del first
    args = _inputs(1)
    again = fast(*args)
    assert [_address(a) for a in again] == addresses
    for got, want in zip(again, ex(*args), strict=True):
        np.testing.assert_array_equal(got, want)


_HOLDERS = {
    "the array": lambda a: a,
    "a view": lambda a: a[...],
    "a reshaped view": lambda a: a.reshape(-1),
    "a memoryview": memoryview,
    "a tensor": gg.from_numpy,
    "a list": lambda a: [a],
    "np.asarray": np.asarray,
}


@pytest.mark.parametrize("holder", sorted(_HOLDERS))
def test_held_outputs_are_never_written(holder: str) -> None:
    ex, fast = _executable()
    results = fast(*_inputs(0))
    held = [_HOLDERS[holder](a) for a in results]
    kept = [a.copy() for a in results]
    del results
    for seed in range(1, 5):  # past both arrays a slot keeps
        args = _inputs(seed)
        for got, want in zip(fast(*args), ex(*args), strict=True):
            np.testing.assert_array_equal(got, want)
    for h, want in zip(held, kept, strict=True):
        h = h[0] if isinstance(h, list) else h
        got = h.numpy() if isinstance(h, gg.Tensor) else np.asarray(h)
        np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_results_held_until_the_next_call_use_two_arrays() -> None:
    """``loss, g = step(x)`` holds each result while the next call runs: the call before's
    arrays are free by then, so each slot alternates between two arrays."""
    ex, fast = _executable()
    seen: list[set] = [set() for _ in range(3)]
    results, kept = None, None
    for seed in range(8):
        args = _inputs(seed)
        previous, results = results, fast(*args)
        if previous is not None:  # the held results were not written by this call
            _assert_equal(previous, kept)
        _assert_equal(results, ex(*args))
        for a, s in zip(results, seen, strict=True):
            s.add(_address(a))
        kept = [a.copy() for a in results]
        del previous
    assert [len(s) for s in seen] == [2, 2, 2]


def _assert_equal(got: list, want: list) -> None:
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def _loss(x, w, b):
    return (gg.tanh(x @ w + b) ** 2).mean()


@pytest.mark.parametrize("variant", ["value_and_grad", "fn and backward"])
def test_a_training_loop_keeps_every_result(variant: str) -> None:
    """Every loss and gradient a compiled training loop returned, kept in lists, still holds
    its own step's value at the end (as eager computes it), whatever the loop dropped."""
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((8, 5)).astype(np.float32))
    w0, b0 = rng.standard_normal((5, 3)).astype(np.float32), np.zeros(3, np.float32)

    def train(step) -> list:
        w, b = gg.tensor(w0, requires_grad=True), gg.tensor(b0, requires_grad=True)
        kept = []
        for k in range(6):
            loss, (gw, gb) = step(w, b)
            kept.append((loss, gw, gb) if k % 2 else (loss.clone(), gw.clone(), gb.clone()))
            with gg.no_grad():
                w -= 0.5 * gw
                b -= 0.5 * gb
        return kept

    def eager(w, b):
        loss = _loss(x, w, b)
        gw, gb = gg.autograd.grad(loss, (w, b))
        return loss.detach(), (gw, gb)

    if variant == "value_and_grad":
        vg = gg.compile(gg.value_and_grad(lambda w, b: _loss(x, w, b), argnums=(0, 1)),
                        fullgraph=True)
        step = lambda w, b: vg(w.detach(), b.detach())  # noqa: E731
    else:
        f = gg.compile(lambda w, b: _loss(x, w, b), fullgraph=True)

        def step(w, b):
            w.grad = b.grad = None
            loss = f(w, b)
            loss.backward()
            return loss.detach(), (w.grad, b.grad)
    for got, want in zip(train(step), train(eager), strict=True):
        for g, e in zip(got, want, strict=True):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)


def test_large_outputs_are_made_each_call() -> None:
    """Only outputs up to RECYCLED_BYTES are kept between calls (a large one would hold memory
    for an allocation its kernel's time dwarfs)."""
    from gradgen.ir.trace import trace  # noqa: PLC0415
    from gradgen.runtime.callgen import RECYCLED_BYTES  # noqa: PLC0415
    from gradgen.runtime.executor import build_programs  # noqa: PLC0415
    n = RECYCLED_BYTES // 4 + 1  # float32 elements: just over the limit
    program = trace(lambda x: (gg.exp(x), x.sum()), gg.ones(n))
    (ex,) = build_programs([program], 1).executables
    fast = ex.callable()
    kept = fast.source.splitlines()[1]  # the names the call keeps between calls
    big, small = (f"o{s}" for s, _, _, _ in ex._fresh)  # (exp's output, then the sum's)
    assert f"{small}," in kept and f"{big}," not in kept
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    for _ in range(3):
        _assert_equal(fast(x), ex(x))
