"""The Tensor's Python protocol (conversions to Python numbers, truth value, ...) against
PyTorch 2.13: a table of expressions and their recorded outcomes (see ``torch_tables``)."""
from __future__ import annotations

import pytest

import gradgen
from torch_tables import mismatches, outcome

CASES = [
    ('float(torch.ones(2))', (ValueError, 'only one element tensors can be converted to Python scalars')),
    ('int(torch.ones(2))', (ValueError, 'only one element tensors can be converted to Python scalars')),
    ('float(torch.ones(0))', (ValueError, 'only one element tensors can be converted to Python scalars')),
    ('torch.tensor([torch.ones(2), torch.ones(2)])',
     (ValueError, 'only one element tensors can be converted to Python scalars')),
    ('bool(torch.ones(2))', (RuntimeError, 'Boolean value of Tensor with more than one value is ambiguous')),
    ('bool(torch.ones(0))', (RuntimeError, 'Boolean value of Tensor with no values is ambiguous')),
    ('torch.ones(2).item()', (RuntimeError, 'a Tensor with 2 elements cannot be converted to Scalar')),
    ('torch.ones(0).item()', (RuntimeError, 'a Tensor with 0 elements cannot be converted to Scalar')),
    ('float(torch.ones(1, 1) * 2.5)', 2.5),
    ('int(torch.tensor([[-2.7]]))', -2),
    ('bool(torch.zeros(1))', False),
    ('torch.tensor([3]).item()', 3),
]


@pytest.mark.parametrize("expr, want", CASES, ids=[c[0] for c in CASES])
def test_protocol_matches_torch(expr: str, want) -> None:
    assert repr(outcome(gradgen, expr)) == repr(want)


def test_table_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    assert not mismatches(torch, CASES)
