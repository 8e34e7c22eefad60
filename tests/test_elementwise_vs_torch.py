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
    # a Python int no Scalar holds (beyond int64 and uint64) is refused wherever it goes
    ('torch.ones(2) + 10**20', (OverflowError, 'int too big to convert')),
    ('-2**64 * torch.ones(2)', (OverflowError, "can't convert negative int to unsigned")),
    ('torch.ones(2).clamp(max=2**64)', (OverflowError, 'int too big to convert')),
    ('torch.where(torch.ones(2) > 0, 1., 10**20)', (OverflowError, 'int too big to convert')),
    ('torch.ones(2).fill_(10**20)', (OverflowError, 'int too big to convert')),
    ('torch.add(torch.ones(2), 1, alpha=2**64)', (OverflowError, 'int too big to convert')),
    ('torch.ones(2) ** 10**20', (OverflowError, 'int too big to convert')),
    ('torch.ones(2) + (2**64 - 1)', ("float32", (2,), [1.8446744073709552e+19] * 2)),
    ('torch.tensor([1, 2]) > -2**63', ("bool", (2,), [True, True])),
    # in place too: alpha=True or 1.0 is no int 1
    ('torch.tensor([2, 3]).add_(-1, alpha=True)',
     (RuntimeError, 'Boolean alpha only supported for Boolean results.')),
    ('torch.ones(2).sub_(1, alpha=True)',
     (RuntimeError, 'Boolean alpha only supported for Boolean results.')),
    ('torch.tensor([2, 3]).add_(1, alpha=1.0)',
     (RuntimeError, 'For integral input tensors, argument alpha must not be a floating point number.')),
    ('torch.tensor([True]).add_(True, alpha=True)', ("bool", (1,), [True])),
    ('torch.tensor([True, False]).add_(True, alpha=2)', ("bool", (2,), [True, True])),
    ('torch.ones(2).sub(torch.ones(2, dtype=torch.float64), alpha=0.5)', ("float64", (2,), [0.5, 0.5])),
    # the gradient of x / y is -g * ((x / y) / y): no y * y to overflow or underflow
    (DIV_GRAD.format(v="1e-25", d="float32"), ("float32", (1,), [-9.999999562023526e+24])),
    (DIV_GRAD.format(v="1e20", d="float32"), ("float32", (1,), [-9.999999682655225e-21])),
    (DIV_GRAD.format(v="1e-300", d="float64"), ("float64", (1,), [-9.999999999999999e+299])),
    (DIV_GRAD.format(v="1e200", d="float64"), ("float64", (1,), [-1e-200])),
    # broadcasting errors name the last mismatching dim, as PyTorch's (it checks from the end)
    ('torch.zeros(2, 3) * torch.ones(3, 2)',
     (RuntimeError, 'The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1')),
    ('torch.zeros(2, 3, 4).expand(5, 2, 3)',
     (RuntimeError, ('The expanded size of the tensor (3) must match the existing size (4) at '
                     'non-singleton dimension 2.  Target sizes: [5, 2, 3].  Tensor sizes: [2, 3, 4]'))),
    # allclose/equal take tensors (allclose: of one dtype)
    ('torch.allclose(torch.ones(2), 1.0)',
     (TypeError, "allclose(): argument 'other' (position 2) must be Tensor, not float")),
    ('torch.allclose(1.0, torch.ones(2))',
     (TypeError, "allclose(): argument 'input' (position 1) must be Tensor, not float")),
    ('torch.equal(torch.ones(2), 1.0)', (TypeError, "equal(): argument 'other' (position 2) must be Tensor, not float")),
    ('torch.allclose(torch.ones(2, dtype=torch.int64), torch.ones(2))', (RuntimeError, 'Long did not match Float')),
    ('torch.allclose(torch.ones(2), torch.ones(2, dtype=torch.float64))', (RuntimeError, 'Float did not match Double')),
    ('torch.allclose(torch.ones(2), torch.ones(3))',
     (RuntimeError, 'The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0')),
    ('torch.allclose(torch.ones(2), torch.ones(2, 1))', True),
    ('torch.equal(torch.ones(2), torch.ones(2, dtype=torch.int64))', True),
    # fill_ refuses a number its dtype cannot hold
    ('torch.ones(2, dtype=torch.int32).fill_(2**31)',
     (RuntimeError, 'value cannot be converted to type int without overflow')),
    ("torch.ones(2, dtype=torch.int64).fill_(float('nan'))",
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ('torch.ones(2).fill_(1e39)', (RuntimeError, 'value cannot be converted to type float without overflow')),
    ("torch.ones(2).fill_(float('inf'))", ("float32", (2,), [float('inf')] * 2)),
    ('torch.ones(2, dtype=torch.bool).fill_(2)', ("bool", (2,), [True, True])),
    ('torch.ones(1, dtype=torch.int32).fill_(-2**31)', ("int32", (1,), [-2147483648])),
    # & and | of bools are logical; reflected and in-place forms too
    ('torch.tensor([True, False]) & torch.tensor([True, True])', ("bool", (2,), [True, False])),
    ('True & torch.tensor([True, False])', ("bool", (2,), [True, False])),
    ('False | torch.tensor([True, False])', ("bool", (2,), [True, False])),
    ('(lambda m: (m.__iand__(torch.tensor([False, True])), m)[1])(torch.tensor([True, True]))',
     ("bool", (2,), [False, True])),
    ('(lambda m, a: (a.__ior__(torch.tensor([True, False])), m)[1])'
     '(*(lambda m: (m, m[:2]))(torch.tensor([False, False, True])))', ("bool", (3,), [True, False, True])),
    # a Python int an integer tensor cannot hold wraps in arithmetic, is refused by where/clamp
    ('torch.tensor([1, 2], dtype=torch.int32) + 2**31', ("int32", (2,), [-2147483647, -2147483646])),
    ('torch.tensor([1, 2], dtype=torch.int32) * 2**40', ("int32", (2,), [0, 0])),
    ('torch.tensor([1, 2]) + 2**63', ("int64", (2,), [-9223372036854775807, -9223372036854775806])),
    ('torch.tensor([1, 2]) + 2**64 + 1', (OverflowError, 'int too big to convert')),
    ('torch.tensor([1, 2], dtype=torch.int32).add_(2**33)', ("int32", (2,), [1, 2])),
    ('torch.tensor([1, 2], dtype=torch.int32) < 2**40', ("bool", (2,), [False, False])),
    ('torch.where(torch.tensor([True, False]), torch.tensor([1, 2], dtype=torch.int32), 2**40)',
     (RuntimeError, 'value cannot be converted to type int without overflow')),
    ('torch.tensor([1, 2], dtype=torch.int32).clamp(0, 2**40)',
     (RuntimeError, 'value cannot be converted to type int without overflow')),
    ('torch.ones(2).clamp(min=1.7e308)', (RuntimeError, 'value cannot be converted to type float without overflow')),
    ('torch.where(torch.tensor([True, False]), torch.ones(2), 1.7e308)',
     (RuntimeError, 'value cannot be converted to type float without overflow')),
    ('torch.ones(2).clamp(max=1e30)', ("float32", (2,), [1.0, 1.0])),
    # number-first operators are PyTorch's rsub and reciprocal-times; the functions are sub and div
    ('type((2 - torch.ones(2, requires_grad=True)).grad_fn).__name__', 'RsubBackward1'),
    ('type(torch.sub(2, torch.ones(2, requires_grad=True)).grad_fn).__name__', 'SubBackward0'),
    ('type((2 / torch.ones(2, requires_grad=True)).grad_fn).__name__', 'MulBackward0'),
    ('type(torch.div(2, torch.ones(2, requires_grad=True)).grad_fn).__name__', 'DivBackward0'),
    ('0.0 / torch.full((1,), 1e-45)', ("float32", (1,), [float('nan')])),
    ('3.0 / torch.tensor([7.0, 0.1, -0.0])', ("float32", (3,), [0.4285714626312256, 30.0, float('-inf')])),
    ('2 / torch.tensor([4, 8])', ("float32", (2,), [0.5, 0.25])),
    # operations PyTorch has no bool kernel for
    ('torch.abs(torch.tensor([True, False]))', (NotImplementedError, '"abs_cpu" not implemented for \'Bool\'')),
    ('torch.relu(torch.tensor([True]))', (RuntimeError, 'Boolean inputs not supported for relu')),
    ('+torch.tensor([True])', (RuntimeError, 'The `+` operator, on a bool tensor is not supported.')),
    ('torch.clamp(torch.tensor([True]), False, True)',
     (NotImplementedError, '"clamp_scalar_cpu" not implemented for \'Bool\'')),
    ('torch.clamp(torch.tensor([True]), torch.tensor([False]), torch.tensor([True]))',
     (NotImplementedError, '"clamp_cpu" not implemented for \'Bool\'')),
    ('+torch.tensor([1, -2])', ("int64", (2,), [1, -2])),
    ('torch.abs(torch.tensor([-3], dtype=torch.int32))', ("int32", (1,), [3])),
    ('torch.tensor([2, 3]) ** np.int32(-2)', (RuntimeError, 'Integers to negative integer powers are not allowed.')),
    ('torch.tensor([2, 3]) ** np.int64(2)', ("int64", (2,), [4, 9])),
]


@pytest.mark.parametrize("expr, want", CASES, ids=[c[0][:90] for c in CASES])
def test_elementwise_matches_torch(expr: str, want) -> None:
    assert repr(outcome(gradgen, expr)) == repr(want)


# Where PyTorch computes integer bitwise results gradgen refuses (it offers & | ~ on bools only):
# never a bool answer for an integer operand.
REFUSED = ['torch.tensor([True, False]) & torch.tensor([1, 2])', 'torch.tensor([True]) | 2',
           '1 | torch.tensor([True])', 'torch.tensor([1, 2]) & torch.tensor([1, 2])',
           'torch.tensor([True]) & torch.ones(1)']


@pytest.mark.parametrize("expr", REFUSED)
def test_integer_bitwise_is_refused(expr: str) -> None:
    with pytest.raises(TypeError, match="on bool tensors and bools only"):
        eval(expr, {"torch": gradgen})


def test_table_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    assert not mismatches(torch, CASES)
