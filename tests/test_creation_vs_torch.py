"""tensor(), as_tensor() and the factories against PyTorch 2.13.

The expected results (dtype, shape and values, or the exception type and the first line of its
message) were recorded from PyTorch 2.13 CPU; ``test_tables_match_torch`` recomputes them when
torch is installed, so a wrong table entry cannot hide a wrong gradgen result.
"""
from __future__ import annotations

import math
from math import inf, nan

import numpy as np
import pytest

import gradgen
import gradgen as gg
from torch_tables import mismatches, outcome

INF = math.inf

# (expression with `torch` and `np` in scope, expected outcome)
CASES = [
    ('torch.tensor([np.float64(1.5)])', ("float64", (1,), [1.5])),
    ('torch.tensor([np.int32(3)])', ("int32", (1,), [3])),
    ('torch.as_tensor([np.float64(1.5), np.float64(2)])', ("float64", (2,), [1.5, 2.0])),
    ('torch.tensor(np.float64(1.5))', ("float64", (), 1.5)),
    ('torch.tensor([np.float32(1), 2.5])', ("float32", (2,), [1.0, 2.5])),
    ('torch.tensor([np.int32(1), 2])', ("int64", (2,), [1, 2])),
    ('torch.tensor([np.float64(1), np.int32(2)])', ("float64", (2,), [1.0, 2.0])),
    ('torch.tensor([np.int64(1), np.float32(2)])', ("float32", (2,), [1.0, 2.0])),
    ('torch.tensor([np.int32(1), 2.5])', ("float32", (2,), [1.0, 2.5])),
    ('torch.tensor([[np.int32(1)], [2]])', ("int64", (2, 1), [[1], [2]])),
    ('torch.tensor([np.bool_(True)])', ("bool", (1,), [True])),
    ('torch.tensor([np.float32(2.5)], dtype=torch.int64)',
     (TypeError, "'numpy.float32' object cannot be interpreted as an integer")),
    ('torch.tensor([np.float32(2.5)], dtype=torch.bool)',
     (TypeError, "'numpy.float32' object cannot be interpreted as an integer")),
    ('torch.tensor([np.float64(2.5)], dtype=torch.int32)', ("int32", (1,), [2])),
    ('torch.tensor([np.int64(2**40)], dtype=torch.int32)',
     (RuntimeError, 'value cannot be converted to type int32 without overflow')),
    ('torch.tensor(np.float32(2.5), dtype=torch.int64)',
     (TypeError, "'numpy.float32' object cannot be interpreted as an integer")),
    ("torch.tensor(np.float64(float('nan')), dtype=torch.int32)",
     (RuntimeError, 'value cannot be converted to type int32 without overflow')),
    ('torch.tensor([np.array([1., 2.])])', ("float64", (1, 2), [[1.0, 2.0]])),
    ('torch.tensor([np.array([1, 2], dtype=np.int32)])', ("int32", (1, 2), [[1, 2]])),
    ('torch.tensor([np.array([1, 2], dtype=np.int32), [3.5, 4]])',
     ("float32", (2, 2), [[1.0, 2.0], [3.5, 4.0]])),
    ('torch.tensor([(), np.array([], dtype=np.int64)])', ("float32", (2, 0), [[], []])),
    ('torch.tensor([np.array([1.5, 2.5], dtype=np.float32)], dtype=torch.int64)',
     (TypeError, "'numpy.float32' object cannot be interpreted as an integer")),
    ('torch.tensor([np.array(1.), np.array(2.)])', (TypeError, 'len() of unsized object')),
    ('torch.tensor([torch.tensor([1.]), torch.tensor([2.])])', ("float32", (2,), [1.0, 2.0])),
    ('torch.tensor([torch.tensor([[1.]]), torch.tensor([[2.]])])', ("float32", (2,), [1.0, 2.0])),
    ('torch.tensor([torch.tensor(1.), torch.tensor(2.)])', ("float32", (2,), [1.0, 2.0])),
    ('torch.tensor([[torch.tensor(1.)], [torch.tensor(2.)]])', ("float32", (2, 1), [[1.0], [2.0]])),
    ('torch.tensor([torch.tensor([1.]), 2.])', ("float32", (2,), [1.0, 2.0])),
    ('torch.tensor([torch.tensor(1, dtype=torch.int32), 2])', ("int64", (2,), [1, 2])),
    ('torch.tensor([torch.tensor(1, dtype=torch.float64), 2])', ("float64", (2,), [1.0, 2.0])),
    ('torch.tensor([torch.tensor(True), 2])', ("int64", (2,), [1, 2])),
    ('torch.tensor([[1, 2], torch.tensor([3, 4])])', ("int64", (2, 2), [[1, 2], [3, 4]])),
    ('torch.tensor([torch.tensor(1.), torch.tensor(2.)], dtype=torch.int64)',
     (TypeError, 'only integer tensors of a single element can be converted to an index')),
    ('torch.tensor([torch.tensor([1.]), torch.tensor([2.])], dtype=torch.int64)',
     (TypeError, 'only integer tensors of a single element can be converted to an index')),
    ('torch.tensor([torch.tensor(1.5), torch.tensor(2)], dtype=torch.bool)',
     (TypeError, 'only integer tensors of a single element can be converted to an index')),
    ('torch.tensor([torch.tensor(1), torch.tensor(2)], dtype=torch.bool)',
     ("bool", (2,), [True, True])),
    ('torch.tensor([torch.tensor(True), torch.tensor(2)], dtype=torch.int32)', ("int32", (2,), [1, 2])),
    ('torch.tensor(range(3))', ("int64", (3,), [0, 1, 2])),
    ('torch.as_tensor(range(3))', ("int64", (3,), [0, 1, 2])),
    ('torch.tensor(range(0))', ("float32", (0,), [])),
    ('torch.tensor([range(2), range(2)])', ("int64", (2, 2), [[0, 1], [0, 1]])),
    ('torch.tensor([[], []])', ("float32", (2, 0), [[], []])),
    ('torch.tensor([[], [1]])', ("float32", (2, 0), [[], []])),
    ('torch.tensor([[1], []])', (ValueError, 'expected sequence of length 1 at dim 1 (got 0)')),
    ('torch.tensor([[], [None]], dtype=torch.float32)', ("float32", (2, 0), [[], []])),
    ('torch.tensor([])', ("float32", (0,), [])),
    ('torch.tensor([], dtype=torch.int64)', ("int64", (0,), [])),
    ('torch.tensor([[[]]])', ("float32", (1, 1, 0), [[[]]])),
    ('torch.tensor([[1, 2], (3, 4)])', ("int64", (2, 2), [[1, 2], [3, 4]])),
    ('torch.tensor([[1, 2], 3])', (TypeError, 'not a sequence')),
    ('torch.tensor([[1], 2], dtype=torch.float32)', (TypeError, 'not a sequence')),
    ('torch.tensor([1, [2, 3]])', (TypeError, "'list' object cannot be interpreted as an integer")),
    ('torch.tensor([1., [2]])', (TypeError, 'must be real number, not list')),
    ('torch.tensor([1, [2]], dtype=torch.bool)',
     (TypeError, "'list' object cannot be interpreted as an integer")),
    ('torch.tensor([[1, 2], [3]])', (ValueError, 'expected sequence of length 2 at dim 1 (got 1)')),
    ('torch.tensor([[1], [2, 3]])', (ValueError, 'expected sequence of length 1 at dim 1 (got 2)')),
    ('torch.tensor([[[1, 2]], [[3]]])', (ValueError, 'expected sequence of length 2 at dim 2 (got 1)')),
    ('torch.tensor([np.array([1, 2]), np.array([1, 2, 3])])',
     (ValueError, 'expected sequence of length 2 at dim 1 (got 3)')),
    ("torch.tensor('abc')", (TypeError, "new(): invalid data type 'str'")),
    ("torch.tensor('abc', dtype=torch.bool)", (TypeError, "new(): invalid data type 'str'")),
    ("torch.tensor(b'ab')", (TypeError, "new(): invalid data type 'bytes'")),
    ("torch.tensor(['a'])", (ValueError, "too many dimensions 'str'")),
    ("torch.tensor([[1, 2], 'ab'])", (TypeError, "new(): invalid data type 'str'")),
    ("torch.tensor([[1, 2], 'ab'], dtype=torch.float32)", (TypeError, 'must be real number, not str')),
    ("torch.tensor([b'ab'])", (TypeError, "new(): invalid data type 'bytes'")),
    ("torch.tensor([b'ab'], dtype=torch.float32)", ("float32", (1, 2), [[97.0, 98.0]])),
    ("torch.tensor([1, 'a'], dtype=torch.float64)", (TypeError, 'must be real number, not str')),
    ('torch.tensor(None)', (RuntimeError, 'Could not infer dtype of NoneType')),
    ('torch.tensor([None])', (RuntimeError, 'Could not infer dtype of NoneType')),
    ('torch.tensor([1, None])', (RuntimeError, 'Could not infer dtype of NoneType')),
    ('torch.tensor([None, [1, 2]])', (RuntimeError, 'Could not infer dtype of NoneType')),
    ("torch.tensor([['a'], None])", (ValueError, "too many dimensions 'str'")),
    ('torch.tensor(None, dtype=torch.float64)', (TypeError, 'must be real number, not NoneType')),
    ('torch.tensor([None], dtype=torch.float64)', (TypeError, 'must be real number, not NoneType')),
    ('torch.tensor([None], dtype=torch.int64)',
     (TypeError, "'NoneType' object cannot be interpreted as an integer")),
    ('torch.tensor({1, 2})', (RuntimeError, 'Could not infer dtype of set')),
    ('torch.tensor((x for x in range(3)))', (RuntimeError, 'Could not infer dtype of generator')),
    ('torch.tensor([1, object()])', (RuntimeError, 'Could not infer dtype of object')),
    ('torch.tensor([1e300], dtype=torch.int64)',
     (RuntimeError, 'value cannot be converted to type int64 without overflow')),
    ('torch.tensor([2**64])', (ValueError, 'Overflow when unpacking long long')),
    ('torch.tensor([2**63])', (ValueError, 'Overflow when unpacking long long')),
    ('torch.tensor([-2**63])', ("int64", (1,), [-9223372036854775808])),
    ('torch.tensor([-2**63 - 1])', (ValueError, 'Overflow when unpacking long long')),
    ('torch.tensor(2**64)', (ValueError, 'Overflow when unpacking long long')),
    ('torch.tensor([2**64], dtype=torch.float32)', ("float32", (1,), [1.8446744073709552e+19])),
    ('torch.tensor([2**63], dtype=torch.float64)', ("float64", (1,), [9.223372036854776e+18])),
    ('torch.tensor([2**40], dtype=torch.int32)',
     (RuntimeError, 'value cannot be converted to type int32 without overflow')),
    ('torch.tensor([2**31 - 1, -2**31], dtype=torch.int32)',
     ("int32", (2,), [2147483647, -2147483648])),
    ('torch.tensor([2**31], dtype=torch.int32)',
     (RuntimeError, 'value cannot be converted to type int32 without overflow')),
    ('torch.tensor([1e10], dtype=torch.int32)',
     (RuntimeError, 'value cannot be converted to type int32 without overflow')),
    ("torch.tensor([float('nan')], dtype=torch.int64)",
     (RuntimeError, 'value cannot be converted to type int64 without overflow')),
    ("torch.tensor([float('inf')], dtype=torch.int32)",
     (RuntimeError, 'value cannot be converted to type int32 without overflow')),
    ("torch.tensor(float('nan'), dtype=torch.int64)",
     (RuntimeError, 'value cannot be converted to type int64 without overflow')),
    ('torch.tensor([1.7, -1.7], dtype=torch.int64)', ("int64", (2,), [1, -1])),
    ('torch.tensor([True, 2.5], dtype=torch.int64)', ("int64", (2,), [1, 2])),
    ("torch.tensor([float('nan'), 0.0, 2], dtype=torch.bool)", ("bool", (3,), [True, False, True])),
    ('torch.tensor([2**70], dtype=torch.bool)', ("bool", (1,), [True])),
    ('torch.tensor(3, dtype=torch.bool)', ("bool", (), True)),
    ('torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)', ("int32", (2, 2), [[1, 2], [3, 4]])),
    ('torch.tensor([[1.5, 2], [3, 4]])', ("float32", (2, 2), [[1.5, 2.0], [3.0, 4.0]])),
    ('torch.tensor([[True, False]])', ("bool", (1, 2), [[True, False]])),
    ('torch.tensor([True, 2])', ("int64", (2,), [1, 2])),
    ('torch.tensor(2.5)', ("float32", (), 2.5)),
    ('torch.tensor(True)', ("bool", (), True)),
    ('torch.tensor(7)', ("int64", (), 7)),
    ('torch.arange(-3)', (RuntimeError, 'upper bound and lower bound inconsistent with step sign')),
    ('torch.arange(5, 0)', (RuntimeError, 'upper bound and lower bound inconsistent with step sign')),
    ('torch.arange(5, 5)', ("int64", (0,), [])),
    ('torch.arange(0.2, 0.5, -1)',
     (RuntimeError, 'upper bound and lower bound inconsistent with step sign')),
    ('torch.arange(1, 0.99999999, 1e-9)',
     (RuntimeError, 'upper bound and lower bound inconsistent with step sign')),
    ('torch.arange(0., 1., 0.5, dtype=torch.int64)', (ValueError, 'step must be nonzero')),
    ('torch.arange(0., 1., 0.5, dtype=torch.int32)', ("int32", (2,), [0, 0])),
    ('torch.arange(0.5, 3.7, dtype=torch.int64)', ("int64", (3,), [0, 1, 2])),
    ('torch.arange(0.5, 3.7, dtype=torch.int32)', ("int32", (4,), [0, 1, 2, 3])),
    ('torch.arange(-0.5, 3.7, dtype=torch.int32)', ("int32", (5,), [0, 1, 2, 3, 4])),
    ('torch.arange(0.7, 3.2, 0.9, dtype=torch.int32)', ("int32", (3,), [0, 0, 0])),
    ('torch.arange(3.7, 0.5, -1, dtype=torch.int64)', ("int64", (3,), [3, 2, 1])),
    ('torch.arange(0.5, 0.2, dtype=torch.int64)',
     (RuntimeError, 'upper bound and lower bound inconsistent with step sign')),
    ('torch.arange(0, 1, 0)', (RuntimeError, 'step must be nonzero')),
    ("torch.arange(0, 1, float('nan'))", (RuntimeError, 'step must be nonzero')),
    ("torch.arange(0, 1, float('inf'))", ("float32", (0,), [])),
    ('torch.arange(torch.tensor(3))', ("int64", (3,), [0, 1, 2])),
    ('torch.arange(torch.tensor(3.))', ("float32", (3,), [0.0, 1.0, 2.0])),
    ('torch.arange(torch.tensor(3., dtype=torch.float64))', ("float32", (3,), [0.0, 1.0, 2.0])),
    ('torch.arange(torch.tensor(True))', ("int64", (1,), [0])),
    ('torch.arange(torch.tensor(1), torch.tensor(4.5))', ("float32", (4,), [1.0, 2.0, 3.0, 4.0])),
    ('torch.arange(0, torch.tensor(4), torch.tensor(2))', ("int64", (2,), [0, 2])),
    ('torch.arange(torch.tensor([3]))',
     (TypeError, "arange(): argument 'end' (position 1) must be Number, not Tensor")),
    ('torch.arange(torch.tensor(1.5, requires_grad=True))',
     (TypeError, "arange(): argument 'end' (position 1) must be Number, not Tensor")),
    ('torch.arange(np.int32(3))', ("int64", (3,), [0, 1, 2])),
    ('torch.arange(np.float64(3))', ("float32", (3,), [0.0, 1.0, 2.0])),
    ('torch.arange(np.bool_(True))', ("float32", (1,), [0.0])),
    ('torch.arange(True)', ("int64", (1,), [0])),
    ("torch.arange(0, float('inf'))", (RuntimeError, 'unsupported range: 0 -> inf')),
    ("torch.arange(float('-inf'), 0)", (RuntimeError, 'unsupported range: -inf -> 0')),
    ("torch.arange(0, float('nan'))", (RuntimeError, 'unsupported range: 0 -> nan')),
    ("torch.arange(0.5, float('inf'), dtype=torch.int64)",
     (RuntimeError, 'unsupported range: 0.5 -> inf')),
    ('torch.arange(0, 1e300)', (RuntimeError, 'invalid size, possible overflow?')),
    ('torch.arange(1e300, dtype=torch.int32)', (RuntimeError, 'invalid size, possible overflow?')),
    ('torch.arange(1e300, dtype=torch.int64)',
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ('torch.arange(2**63)',
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ('torch.arange(0, 1e300, 1e300, dtype=torch.int32)',
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ('torch.arange(0, 1e10, 1e9, dtype=torch.int32)',
     ("int32", (10,), [0, 1000000000, 2000000000, -1294967296, -294967296, 705032704,
                      1705032704, -1589934592, -589934592, 410065408])),
    ('torch.arange(0, 5, dtype=torch.bool)',
     (NotImplementedError, '"arange_cpu" not implemented for \'Bool\'')),
    ('torch.arange(None)',
     (TypeError, "arange(): argument 'end' (position 1) must be Number, not NoneType")),
    ("torch.arange('a')", (TypeError, "arange(): argument 'end' (position 1) must be Number, not str")),
    ('torch.arange(0, 3, None)',
     (TypeError, ('arange() received an invalid combination of arguments - got '
                  '(int, int, NoneType), but expected one of:'))),
    ('torch.arange(end=4)', ("int64", (4,), [0, 1, 2, 3])),
    ('torch.arange(start=1, end=4)', ("int64", (3,), [1, 2, 3])),
    ('torch.arange(1, 4, step=2)', ("int64", (2,), [1, 3])),
    ('torch.arange(10, 0, -3)', ("int64", (4,), [10, 7, 4, 1])),
    ('torch.arange(10., 0, -3)', ("float32", (4,), [10.0, 7.0, 4.0, 1.0])),
    ('torch.arange(0, 10, 3, dtype=torch.float32)', ("float32", (4,), [0.0, 3.0, 6.0, 9.0])),
    ('torch.arange(1, 2.5, 0.5)', ("float32", (3,), [1.0, 1.5, 2.0])),
    ('torch.arange(0, 1, 0.25, dtype=torch.float64)', ("float64", (4,), [0.0, 0.25, 0.5, 0.75])),
    ('torch.zeros(-1)', (RuntimeError, 'zeros: Dimension size must be non-negative.')),
    ('torch.zeros(2, -1, 3)', (RuntimeError, 'zeros: Dimension size must be non-negative.')),
    ('torch.zeros((-1,))', (RuntimeError, 'zeros: Dimension size must be non-negative.')),
    ('torch.ones(-1)', (RuntimeError, 'Trying to create tensor with negative dimension -1: [-1]')),
    ('torch.ones(2, -3)',
     (RuntimeError, 'Trying to create tensor with negative dimension -3: [2, -3]')),
    ('torch.empty(-1)', (RuntimeError, 'Trying to create tensor with negative dimension -1: [-1]')),
    ('torch.empty((2, -1))',
     (RuntimeError, 'Trying to create tensor with negative dimension -1: [2, -1]')),
    ('torch.zeros(2.5)',
     (TypeError, "zeros(): argument 'size' (position 1) must be tuple of ints, not float")),
    ('torch.ones((2.5, 3))',
     (TypeError, ("ones(): argument 'size' (position 1) must be tuple of ints, "
                  'but found element of type float at pos 0'))),
    ('torch.zeros(2, 2.5)',
     (TypeError, ("zeros(): argument 'size' failed to unpack the object at pos "
                  '2 with error "type must be tuple of ints,but got float"'))),
    ('torch.zeros(None)',
     (TypeError, "zeros(): argument 'size' (position 1) must be tuple of ints, not NoneType")),
    ('torch.zeros(True)',
     (TypeError, "zeros(): argument 'size' (position 1) must be tuple of ints, not bool")),
    ('tuple(torch.empty(2, 3).shape)', (2, 3)),
    ('torch.zeros([2, 3])', ("float32", (2, 3), [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])),
    ('torch.zeros(())', ("float32", (), 0.0)),
    ('torch.zeros(np.int64(2))', ("float32", (2,), [0.0, 0.0])),
    ('torch.full(2, 3)',
     (TypeError, "full(): argument 'size' (position 1) must be tuple of ints, not int")),
    ('torch.full(2, 3.)',
     (TypeError, "full(): argument 'size' (position 1) must be tuple of ints, not int")),
    ('torch.full((2.5,), 3)',
     (TypeError, ("full(): argument 'size' (position 1) must be tuple of ints, "
                  'but found element of type float at pos 0'))),
    ('torch.full((-1,), 3)',
     (RuntimeError, 'Trying to create tensor with negative dimension -1: [-1]')),
    ('torch.full((2, -1), 3)',
     (RuntimeError, 'Trying to create tensor with negative dimension -1: [2, -1]')),
    ('torch.full((2,), None)',
     (TypeError, "full(): argument 'fill_value' (position 2) must be Number, not NoneType")),
    ("torch.full((2,), 'a')",
     (TypeError, "full(): argument 'fill_value' (position 2) must be Number, not str")),
    ('torch.full((2,), [1])',
     (TypeError, "full(): argument 'fill_value' (position 2) must be Number, not list")),
    ('torch.full((2,), True)', ("bool", (2,), [True, True])),
    ('torch.full([2], 3)', ("int64", (2,), [3, 3])),
    ('torch.full((), 3)', ("int64", (), 3)),
    ('torch.full((2,), np.float64(1.5))', ("float32", (2,), [1.5, 1.5])),
    ('torch.full((2,), np.int32(1))', ("int64", (2,), [1, 1])),
    ('torch.full((2,), np.bool_(True))', ("float32", (2,), [1.0, 1.0])),
    ('torch.full((2,), torch.tensor(1.5, dtype=torch.float64))', ("float32", (2,), [1.5, 1.5])),
    ('torch.full((2,), torch.tensor(2, dtype=torch.int32))', ("int64", (2,), [2, 2])),
    ('torch.full((2,), torch.tensor([2]))',
     (TypeError, "full(): argument 'fill_value' (position 2) must be Number, not Tensor")),
    ('torch.full((2,), 2**63)',
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ('torch.full((2,), 1e300)',
     (RuntimeError, 'value cannot be converted to type float without overflow')),
    ("torch.full((2,), float('inf'))", ("float32", (2,), [INF, INF])),
    ('torch.full((2,), 1e300, dtype=torch.float64)', ("float64", (2,), [1e+300, 1e+300])),
    ('torch.full((2,), 1e300, dtype=torch.int64)',
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ("torch.full((2,), float('nan'), dtype=torch.int64)",
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ('torch.full((2,), 2**31, dtype=torch.int32)',
     (RuntimeError, 'value cannot be converted to type int without overflow')),
    ('torch.full((2,), -2.5, dtype=torch.int32)', ("int32", (2,), [-2, -2])),
    ("torch.full((2,), float('nan'), dtype=torch.bool)", ("bool", (2,), [True, True])),
    ('torch.full_like(torch.ones(2), None)',
     (TypeError, "full_like(): argument 'fill_value' (position 2) must be Number, not NoneType")),
    ('torch.full_like(torch.ones(2), 1e300)',
     (RuntimeError, 'value cannot be converted to type float without overflow')),
    ('torch.full_like(torch.ones(2, dtype=torch.int32), 3e9)',
     (RuntimeError, 'value cannot be converted to type int without overflow')),
    ('torch.full_like(torch.ones(2, dtype=torch.int64), 2.7)', ("int64", (2,), [2, 2])),
    ('torch.full_like(torch.ones(2), True)', ("float32", (2,), [1.0, 1.0])),
    ('torch.eye(-1)', (RuntimeError, 'n must be greater or equal to 0, got -1')),
    ('torch.eye(2, -1)', (RuntimeError, 'm must be greater or equal to 0, got -1')),
    ('torch.eye(2.5)', (TypeError, "eye(): argument 'n' (position 1) must be int, not float")),
    ('torch.eye(2, 2.5)',
     (TypeError, ('eye() received an invalid combination of arguments - got '
                  '(int, float), but expected one of:'))),
    ('torch.eye(True)', (TypeError, "eye(): argument 'n' (position 1) must be int, not bool")),
    ('torch.eye(None)', (TypeError, "eye(): argument 'n' (position 1) must be int, not NoneType")),
    ("torch.eye('a')", (TypeError, "eye(): argument 'n' (position 1) must be int, not str")),
    ('torch.eye(np.float64(2))',
     (TypeError, "eye(): argument 'n' (position 1) must be int, not numpy.float64")),
    ('torch.eye(0)', ("float32", (0, 0), [])),
    ('torch.eye(3, 2)', ("float32", (3, 2), [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])),
    ('torch.eye(np.int64(2), np.int32(3))', ("float32", (2, 3), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])),
    ('torch.eye(torch.tensor(2))', ("float32", (2, 2), [[1.0, 0.0], [0.0, 1.0]])),
    ('torch.eye(n=2, m=3)', ("float32", (2, 3), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])),
    ('torch.eye(3, dtype=torch.int64)', ("int64", (3, 3), [[1, 0, 0], [0, 1, 0], [0, 0, 1]])),
    ('torch.linspace(0, 1, -1)', (RuntimeError, 'number of steps must be non-negative')),
    ('torch.linspace(0, 1, 2.5)',
     (TypeError, ('linspace() received an invalid combination of arguments - '
                  'got (int, int, float), but expected one of:'))),
    ('torch.linspace(0, 1, True)',
     (TypeError, ('linspace() received an invalid combination of arguments - '
                  'got (int, int, bool), but expected one of:'))),
    ('torch.linspace(0, 1, None)',
     (TypeError, ('linspace() received an invalid combination of arguments - '
                  'got (int, int, NoneType), but expected one of:'))),
    ('torch.linspace(0, 1, 0)', ("float32", (0,), [])),
    ('torch.linspace(0, 1, 1)', ("float32", (1,), [0.0])),
    ('torch.linspace(0, 1, 5)', ("float32", (5,), [0.0, 0.25, 0.5, 0.75, 1.0])),
    ('torch.linspace(0, 1, np.int64(3))', ("float32", (3,), [0.0, 0.5, 1.0])),
    ('torch.linspace(0, 1, torch.tensor(3))', ("float32", (3,), [0.0, 0.5, 1.0])),
    ('torch.linspace(0, 1, 3, dtype=torch.bool)',
     (NotImplementedError, '"linspace_cpu" not implemented for \'Bool\'')),
    ('torch.linspace(0, 1e39, 3)',
     (RuntimeError, 'value cannot be converted to type float without overflow')),
    ('torch.linspace(0, 1e10, 3, dtype=torch.int32)',
     (RuntimeError, 'value cannot be converted to type int without overflow')),
    ('torch.linspace(0, 1e300, 3, dtype=torch.float64)', ("float64", (3,), [0.0, 5e+299, 1e+300])),
    ('torch.linspace(-1, 10, 4, dtype=torch.int32)', ("int32", (4,), [-1, 2, 6, 10])),
    ('torch.zeros()', (TypeError, 'zeros() missing 1 required positional arguments: "size"')),
    ('torch.empty(dtype=torch.float64)',
     (TypeError, 'empty() missing 1 required positional arguments: "size"')),
    ('torch.randn()',
     (TypeError, 'randn() received an invalid combination of arguments - got (), but expected one '
                 'of:')),
    ('torch.ones(())', ("float32", (), 1.0)),
    # the ends truncated first, then counted from both ends in double and truncated
    ('torch.linspace(-3.7, 10, 4, dtype=torch.int64)', ("int64", (4,), [-3, 1, 5, 10])),
    ('torch.linspace(5, -0.5, 5, dtype=torch.int64)', ("int64", (5,), [5, 3, 2, 1, 0])),
    ('torch.linspace(-7.9, 7.9, 7, dtype=torch.int32)', ("int32", (7,), [-7, -4, -2, 0, 2, 4, 7])),
    ('torch.linspace(0, 100, 50, dtype=torch.int64)[23:27]', ("int64", (4,), [46, 48, 51, 53])),
    # non-finite ends, one step, the sign of a zero end
    ("torch.linspace(float('inf'), 1., 5)", ("float32", (5,), [nan, nan, inf, inf, nan])),
    ("torch.linspace(1, float('-inf'), 4)", ("float32", (4,), [nan, -inf, nan, nan])),
    ("torch.linspace(2.5, float('nan'), 1)", ("float32", (1,), [2.5])),
    ('torch.linspace(3., -0., 2)', ("float32", (2,), [3.0, 0.0])),
    ('torch.linspace(torch.tensor(1.), torch.tensor(3), 3)', ("float32", (3,), [1.0, 2.0, 3.0])),
    ('torch.linspace(torch.tensor([1.]), 2, 3)',
     (RuntimeError, 'linspace only supports 0-dimensional start and end tensors, but got start '
                    'with 1 dimension(s).')),
    ('torch.linspace(0, torch.ones(1, 1), 3)',
     (RuntimeError, 'linspace only supports 0-dimensional start and end tensors, but got end '
                    'with 2 dimension(s).')),
    ('torch.zeros(1.5, 2)', (TypeError, 'zeros() takes 1 positional argument but 2 were given')),
    ('torch.zeros((2, torch.tensor(1.5)))',
     (TypeError, ("zeros(): argument 'size' failed to unpack the object at pos "
                  '2 with error "type must be tuple of ints,but got Tensor"'))),
    ('torch.zeros((2, torch.tensor(3)))', ("float32", (2, 3), [[0.0] * 3] * 2)),
    # *_like keep the input's memory order (preserve_format): a transposed input, a transposed result
    ('torch.zeros_like(torch.ones(2, 3).T).is_contiguous()', False),
    ('torch.ones_like(torch.ones(2, 3, 4).transpose(1, 2), dtype=torch.int32).is_contiguous()', False),
    ('torch.empty_like(torch.ones(4, 2)[::2]).is_contiguous()', True),
    ('torch.full_like(torch.ones(2, 3).T, 7).is_contiguous()', False),
    ('torch.rand_like(torch.ones(2, 3).T).is_contiguous()', False),
    ('torch.randn_like(torch.ones(3, 1).expand(3, 4)).is_contiguous()', True),
    ('torch.zeros_like(torch.ones(2, 3).T).view(-1)',
     (RuntimeError, ('view size is not compatible with input tensor\'s size and stride (at least one '
                     'dimension spans across two contiguous subspaces). Use .reshape(...) instead.'))),
    ('torch.full_like(torch.ones(2, 3).T, 7)', ("float32", (3, 2), [[7.0, 7.0]] * 3)),
    # random tensors: their argument checks, dtypes and shapes (values only where fixed)
    ('torch.randint(5, 0, (2,))',
     (RuntimeError, "random_ expects 'from' to be less than 'to', but got from=5 >= to=0")),
    ('torch.randint(0, (2,))',
     (RuntimeError, "random_ expects 'from' to be less than 'to', but got from=0 >= to=0")),
    ('torch.randint(0, 2**40, (2,), dtype=torch.int32)',
     (RuntimeError, 'to - 1 is out of bounds for int')),
    ('torch.randint(-2**40, 0, (2,), dtype=torch.int32)',
     (RuntimeError, 'from is out of bounds for int')),
    ('torch.randint(0, 5, (2,), dtype=torch.bool)', (RuntimeError, 'to - 1 is out of bounds for bool')),
    ('torch.randint(0, 1, (2,), dtype=torch.bool)', ("bool", (2,), [False, False])),
    ('torch.randint(3, 4, (2,), dtype=torch.float64)', ("float64", (2,), [3.0, 3.0])),
    ('torch.randint(7, 8, (1, 2))', ("int64", (1, 2), [[7, 7]])),
    ('torch.randint(0, 5, (-1,))',
     (RuntimeError, 'Trying to create tensor with negative dimension -1: [-1]')),
    ('torch.randint(0, 5, (2, 1.5))',
     (TypeError, ("randint(): argument 'size' failed to unpack the object at pos "
                  '2 with error "type must be tuple of ints,but got float"'))),
    ('torch.randint(0, 5, (2,), requires_grad=True)',
     (RuntimeError, 'Only Tensors of floating point and complex dtype can require gradients')),
    ('torch.rand(2, dtype=torch.int64)',
     (NotImplementedError, '"check_uniform_bounds" not implemented for \'Long\'')),
    ('torch.randn(2, dtype=torch.int32)',
     (NotImplementedError, '"normal_kernel_cpu" not implemented for \'Int\'')),
    ('torch.rand(2, -1)', (RuntimeError, 'Trying to create tensor with negative dimension -1: [2, -1]')),
    ('torch.randn((2, 1.5))',
     (TypeError, ("randn(): argument 'size' failed to unpack the object at pos "
                  '2 with error "type must be tuple of ints,but got float"'))),
    ("torch.rand('a')", (TypeError, "rand(): argument 'size' (position 1) must be tuple of ints, not str")),
    ('tuple(torch.rand(2, 3).shape)', (2, 3)),
    ('tuple(torch.randn((4,), dtype=torch.float64).shape)', (4,)),
    ('torch.randperm(-1)', (RuntimeError, 'Trying to create tensor with negative dimension -1: [-1]')),
    ('torch.randperm(3, dtype=torch.bool)', (NotImplementedError, '"randperm" not implemented for \'Bool\'')),
    ('torch.randperm(3, requires_grad=True)',
     (RuntimeError, 'Only Tensors of floating point and complex dtype can require gradients')),
    ('sorted(torch.randperm(5).tolist())', [0, 1, 2, 3, 4]),
    ('torch.randperm(1, dtype=torch.float64)', ("float64", (1,), [0.0])),
]

# The same under set_default_dtype(float64): Python floats and empty lists follow the default.
DEFAULT_FLOAT64_CASES = [
    ('torch.tensor([1.5])', ("float64", (1,), [1.5])),
    ('torch.tensor([np.float32(1), 2.5])', ("float64", (2,), [1.0, 2.5])),
    ('torch.tensor([np.float32(1), np.float32(2)])', ("float32", (2,), [1.0, 2.0])),
    ('torch.tensor([torch.tensor(1.5), 2])', ("float64", (2,), [1.5, 2.0])),
    ('torch.tensor([])', ("float64", (0,), [])),
    ('torch.tensor([[], [1]])', ("float64", (2, 0), [[], []])),
    ('torch.arange(0.5)', ("float64", (1,), [0.0])),
    ('torch.full((1,), 2.5)', ("float64", (1,), [2.5])),
    ('torch.linspace(0, 1, 3)', ("float64", (3,), [0.0, 0.5, 1.0])),
]


@pytest.fixture
def default_float64():
    old = gradgen.get_default_dtype()
    gradgen.set_default_dtype(gradgen.float64)
    yield
    gradgen.set_default_dtype(old)


@pytest.mark.parametrize("expr, want", CASES, ids=[c[0] for c in CASES])
def test_creation_matches_torch(expr: str, want) -> None:
    assert repr(outcome(gradgen, expr)) == repr(want)  # repr: NaN equals NaN, 1 differs from 1.0


@pytest.mark.parametrize("expr, want", DEFAULT_FLOAT64_CASES, ids=[c[0] for c in DEFAULT_FLOAT64_CASES])
def test_creation_default_float64(expr: str, want, default_float64) -> None:
    assert repr(outcome(gradgen, expr)) == repr(want)


def test_numpy_bool_into_integer_dtype() -> None:
    # numpy names its bool type differently across versions ('numpy.bool' in 2.x)
    with pytest.raises(TypeError, match="object cannot be interpreted as an integer$"):
        gradgen.tensor([np.bool_(True), 2])


def test_fast_path_values() -> None:
    rng = np.random.default_rng(0)
    floats = rng.standard_normal((50, 7))
    ints = rng.integers(-10**12, 10**12, (3, 4, 5))
    t = gradgen.tensor(floats.tolist())
    assert t.dtype is gradgen.float32
    np.testing.assert_array_equal(t.numpy(), floats.astype(np.float32))
    t = gradgen.tensor(ints.tolist())
    assert t.dtype is gradgen.int64
    np.testing.assert_array_equal(t.numpy(), ints)
    t = gradgen.tensor([floats[0], floats[1]], dtype=gradgen.float64)  # a list of arrays
    np.testing.assert_array_equal(t.numpy(), floats[:2])
    t = gradgen.tensor(list(range(1000)), dtype=gradgen.int32)
    assert t.dtype is gradgen.int32 and t.numpy()[-1] == 999


def test_arrays_and_tensors_copy_or_share() -> None:
    a = np.arange(6.0).reshape(2, 3)
    t = gradgen.tensor(a)
    a[0, 0] = 7.0
    assert t.dtype is gradgen.float64 and t.numpy()[0, 0] == 0.0
    assert gradgen.as_tensor(a).numpy()[0, 0] == 7.0  # as_tensor shares a numpy array
    assert gradgen.tensor(a, dtype=gradgen.int32).dtype is gradgen.int32
    x = gradgen.tensor([1.5, 2.5], requires_grad=True)
    y = gradgen.tensor([x[0], x[1] * 2])  # tensors inside a list are read as numbers
    assert not y.requires_grad and y.tolist() == [1.5, 5.0]


@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy.ndarrays")
def test_tables_match_torch() -> None:
    torch = pytest.importorskip("torch")
    wrong = mismatches(torch, CASES)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        wrong += mismatches(torch, DEFAULT_FLOAT64_CASES)
    finally:
        torch.set_default_dtype(old)
    assert not wrong


def test_as_tensor_of_a_tensor_in_another_dtype_stays_in_the_graph() -> None:
    """as_tensor(t, dtype=other) is t.to(other) in PyTorch: a copy through ToCopyBackward0
    whose gradient reaches t (a new leaf lost it); the same dtype returns t itself."""
    a = gg.ones(2, requires_grad=True)
    assert gg.as_tensor(a) is a and gg.as_tensor(a, dtype=gg.float32) is a
    b = gg.as_tensor(a, dtype=gg.float64)
    assert b.dtype is gg.float64 and type(b.grad_fn).__name__ == "ToCopyBackward0"
    (b * 3).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 3.0])
    assert a.grad.dtype is gg.float32
