"""Elementwise arithmetic against PyTorch 2.13: a table of expressions and their recorded outcomes
(dtype, shape and values, or the error; see ``torch_tables``), rechecked with torch when installed."""
from __future__ import annotations

import pytest

import gradgen
from torch_tables import mismatches, outcome

# The gradient of the second operand of x / y at (x, y) = (v, v) in dtype d.
DIV_GRAD = ("(lambda y: ((torch.full((1,), {v}, dtype=torch.{d}) / y).sum().backward(), y.grad)[1])"
            "(torch.full((1,), {v}, dtype=torch.{d}, requires_grad=True))")

CASES = [
    # add/sub scale by alpha in the sum's own type; alpha promotes nothing
    ('torch.add(torch.ones(1, dtype=torch.float64), 0.1, alpha=3)', ("float64", (1,), [1.3])),
    ('torch.ones(1, dtype=torch.float64).add_(0.1, alpha=3)', ("float64", (1,), [1.3])),
    ('torch.add(torch.tensor([True, False]), torch.tensor([True, True]), alpha=2)',
     ("bool", (2,), [True, True])),
    ('torch.add(torch.tensor([1, 2], dtype=torch.int32), torch.tensor([True, False]), alpha=2)',
     ("int32", (2,), [3, 2])),
    ('torch.sub(torch.tensor(5, dtype=torch.int32), 2, alpha=2)', ("int32", (), 1)),
    ('torch.sub(torch.tensor(1., dtype=torch.float64), torch.tensor([1, 2, 3], dtype=torch.int32), '
     'alpha=-1.5)', ("float64", (3,), [2.5, 4.0, 5.5])),
    ('torch.add(torch.ones(2, dtype=torch.int64), torch.ones(2, dtype=torch.int64), alpha=2.5)',
     (RuntimeError, 'For integral input tensors, argument alpha must not be a floating point number.')),
    ('torch.add(torch.ones(2, dtype=torch.int64), 1, alpha=1.0)',
     (RuntimeError, 'For integral input tensors, argument alpha must not be a floating point number.')),
    ('torch.add(torch.ones(2), torch.ones(2), alpha=True)',
     (RuntimeError, 'Boolean alpha only supported for Boolean results.')),
    ('torch.tensor([True, False]).add_(True, alpha=2)', ("bool", (2,), [True, True])),
    ('torch.ones(2).sub(torch.ones(2, dtype=torch.float64), alpha=0.5)', ("float64", (2,), [0.5, 0.5])),
    # the gradient of x / y is -g * ((x / y) / y): no y * y to overflow or underflow
    (DIV_GRAD.format(v="1e-25", d="float32"), ("float32", (1,), [-9.999999562023526e+24])),
    (DIV_GRAD.format(v="1e20", d="float32"), ("float32", (1,), [-9.999999682655225e-21])),
    (DIV_GRAD.format(v="1e-300", d="float64"), ("float64", (1,), [-9.999999999999999e+299])),
    (DIV_GRAD.format(v="1e200", d="float64"), ("float64", (1,), [-1e-200])),
]


@pytest.mark.parametrize("expr, want", CASES, ids=[c[0][:90] for c in CASES])
def test_elementwise_matches_torch(expr: str, want) -> None:
    assert repr(outcome(gradgen, expr)) == repr(want)


def test_table_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    assert not mismatches(torch, CASES)
