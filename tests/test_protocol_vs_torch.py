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
    ('torch.tensor(1.5).size(0)', (IndexError, 'Dimension specified as 0 but tensor has no dimensions')),
    ('torch.tensor(1.5).size(-1)', (IndexError, 'Dimension specified as -1 but tensor has no dimensions')),
    ('torch.ones(2).size(3)',
     (IndexError, 'Dimension out of range (expected to be in range of [-1, 0], but got 3)')),
    ('1.0 in torch.tensor(1.0)', True),
    ('2.0 in torch.ones(2, 2) * 2', True),
    ('9 in torch.zeros(2, 2)', False),
    ('torch.ones(2) in torch.ones(3, 2)', True),
    ("'a' in torch.ones(2)",
     (RuntimeError, "Tensor.__contains__ only supports Tensor or scalar, but you passed in a <class 'str'>.")),
    ("format(torch.ones(2), '>30')", (TypeError, 'unsupported format string passed to Tensor.__format__')),
    ("f'{torch.ones(1):.2f}'", (TypeError, 'unsupported format string passed to Tensor.__format__')),
    ("f'{torch.ones(()):.2f}'", '1.00'),
    ("format(torch.ones(2), '')", 'tensor([1., 1.])'),
    ('torch.tensor(1.5).mT', ("float32", (), 1.5)),
    ('torch.tensor(1.5, requires_grad=True).flip(0)', ("float32", (), 1.5)),
    ('type(torch.tensor(1.5, requires_grad=True).flip(-1).grad_fn).__name__', 'FlipBackward0'),
    ('torch.tensor(1.5).flip(1)',
     (IndexError, 'Dimension out of range (expected to be in range of [-1, 0], but got 1)')),
    ('torch.sign(torch.tensor([True, False]))', ("bool", (2,), [True, False])),
    ('repr((lambda x: (x.__setitem__(0, 5.), x)[1])(torch.ones(2, requires_grad=True).clone()))',
     'tensor([5., 1.], grad_fn=<CopySlices>)'),
    ('repr(torch.ones(2, 3, 4).shape[1:])', 'torch.Size([3, 4])'),
    ('repr(torch.ones(2, 3).shape + (5,))', 'torch.Size([2, 3, 5])'),
    ('repr((1,) + torch.ones(2, 3).shape)', 'torch.Size([1, 2, 3])'),
    ('repr(torch.ones(2).shape * 2)', 'torch.Size([2, 2])'),
    ('torch.ones(2, 3).shape[-1]', 3),
    ('torch.ones(2).shape + [5]', (TypeError, 'can only concatenate tuple (not list) to torch.Size')),
    ('torch.arange(6.).reshape(2, 3).requires_grad_().zero_()',
     (RuntimeError, 'a view of a leaf Variable that requires grad is being used in an in-place operation.')),
    ('torch.ones(2).requires_grad_().zero_()',
     (RuntimeError, 'a leaf Variable that requires grad is being used in an in-place operation.')),
    ('(y := torch.zeros(2), y.copy_(torch.ones(2, requires_grad=True)), y.grad_fn.name())[2]',
     'torch::autograd::CopyBackwards'),
    ('repr((y := torch.zeros(2), y.copy_(torch.ones(2, requires_grad=True)))[1])',
     'tensor([1., 1.], grad_fn=<CopyBackwards>)'),
]


@pytest.mark.parametrize("expr, want", CASES, ids=[c[0] for c in CASES])
def test_protocol_matches_torch(expr: str, want) -> None:
    assert repr(outcome(gradgen, expr)) == repr(want)


@pytest.mark.filterwarnings("ignore:Tensor.mT is deprecated on 0-D tensors")
def test_table_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    assert not mismatches(torch, CASES)
