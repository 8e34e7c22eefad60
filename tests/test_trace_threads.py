"""A trace records only its own thread: other threads' operations during it run eagerly, unseen.

Each scenario pauses a traced function midway (an Event) while another thread does something
with tensors; the other thread must get eager's results and errors, and the traced function
must compile the program it ran, with no fallback caused by the other thread. Interpreter
backend: no C compiler involved.
"""
from __future__ import annotations

import threading
import warnings
from typing import Any, Callable

import numpy as np
import pytest

import gradgen as gg


def _other_eager(box: dict) -> None:
    a = gg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = (a * 3 + 1).sum()
    b.backward()
    box["item"] = (b.item(), a.grad.tolist())  # item(): a value read would stop a trace


def _other_inplace(box: dict) -> None:
    a = gg.zeros(3)
    a.add_(2.0)  # an in-place op: stops a trace that sees it
    a[1] = 5.0
    v = a.view(3)
    v.mul_(2.0)
    box["item"] = a.tolist()


def _other_new_tensor(box: dict) -> None:
    box["t"] = gg.tensor(np.arange(3.0))  # made during the trace, by another thread
    box["item"] = box["t"].sum().item()


def _other_compiled(box: dict) -> None:
    g = gg.compile(lambda x: (x * x).sum(), backend="interpret")
    x = gg.tensor([1.0, 2.0])
    box["item"] = g(x).item()  # the trace is busy: runs eagerly this time
    box["compiled"] = g
    box["x"] = x


def _other_value_and_grad(box: dict) -> None:
    vg = gg.value_and_grad(lambda x: (x * x).sum())
    v, gx = vg(gg.tensor([1.0, 2.0]))
    box["item"] = (v.item(), gx.tolist())


def _other_untraceable(box: dict) -> None:
    a = gg.tensor([1.0, -2.0])
    box["item"] = bool((a > 0).any())  # a value into Python control flow


SCENARIOS: list[tuple[str, Callable[[dict], None], Any]] = [
    ("eager ops, backward and item()", _other_eager, (21.0, [3.0, 3.0, 3.0])),
    ("in-place writes and view writes", _other_inplace, [4.0, 10.0, 4.0]),
    ("a new tensor from data", _other_new_tensor, 3.0),
    ("a compiled function needing a trace", _other_compiled, 5.0),
    ("value_and_grad", _other_value_and_grad, (5.0, [2.0, 4.0])),
    ("a value read into Python", _other_untraceable, True),
]


def _paused_trace(other: Callable[[dict], None]) -> tuple[Any, dict, Any]:
    """Compile f, whose trace waits while ``other`` runs in a second thread."""
    inside, done, box = threading.Event(), threading.Event(), {}

    def pause() -> None:
        inside.set()
        assert done.wait(10), "the other thread did not finish"

    @gg.compile
    def f(x: gg.Tensor) -> gg.Tensor:
        y = x * 2
        pause()
        return (y + 1).sum()

    def run_other() -> None:
        inside.wait(10)
        try:
            other(box)
        except BaseException as err:  # reported by the main thread
            box["error"] = err
        finally:
            done.set()

    t = threading.Thread(target=run_other)
    t.start()
    out = f(gg.ones(3))
    t.join(10)
    return f, box, out


@pytest.mark.parametrize("name,other,expected", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_other_thread_unseen_by_trace(name: str, other: Callable, expected: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback would warn
        f, box, out = _paused_trace(other)
    assert "error" not in box, repr(box.get("error"))
    assert box["item"] == expected
    assert out.item() == 9.0
    (spec,) = f.inspect()
    assert spec["fallback_reason"] is None
    assert spec["trace"] == "abstract"  # the other thread's value reads did not stop it
    assert "pause" not in spec["forward_ir"]
    ops = [line.split("=")[1].split()[0].split("[")[0]
           for line in spec["forward_ir"].splitlines() if "=" in line]
    assert ops == ["mul", "add", "reduce_sum"]


def test_compiled_in_other_thread_compiles_on_a_later_call() -> None:
    f, box, _ = _paused_trace(_other_compiled)
    g, x = box["compiled"], box["x"]
    assert g.inspect() == []  # the busy trace left no entry and no fallback reason
    assert g(x).item() == 5.0
    (spec,) = g.inspect()
    assert spec["fallback_reason"] is None and spec["forward_ir"] is not None


def test_nested_trace_in_one_thread_still_refused() -> None:
    from gradgen.autograd.record import TraceError
    from gradgen.ir.trace import trace

    def outer(x: gg.Tensor) -> gg.Tensor:
        trace(lambda y: y + 1, x)
        return x

    with pytest.raises(TraceError, match="nested tracing is not supported"):
        trace(outer, gg.ones(2))


@pytest.mark.parametrize("make", ["op", "factory"])
def test_tensor_made_by_another_thread_during_the_trace_stops_it(make: str) -> None:
    """fn hands work on its input to a thread it starts: the result, made by another thread
    during the trace, would be captured as a constant of the first call -- the trace stops and
    fn runs eagerly, right on every call."""
    def f(x: gg.Tensor) -> gg.Tensor:
        box: dict = {}
        work = (lambda: box.setdefault("y", x * 2)) if make == "op" else \
            (lambda: box.setdefault("y", gg.tensor(x.numpy() * 2)))
        t = threading.Thread(target=work)
        t.start()
        t.join()
        return (box["y"] + 1).sum()

    cf = gg.compile(f, backend="interpret")
    with pytest.warns(UserWarning, match="falling back to eager: a tensor another thread made"):
        got = [cf(gg.full((3,), v)).item() for v in (1.0, 2.0, 3.0)]
    assert got == [9.0, 15.0, 21.0]
    (spec,) = cf.inspect()
    assert "another thread made during the trace" in spec["fallback_reason"]
