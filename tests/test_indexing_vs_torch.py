"""Indexing (``x[i]``, ``x[i] = v``), take, index_select and gather against PyTorch 2.13.

Each row is an expression (``torch`` and ``np`` in scope; a write is spelled
``(x := ..., x.__setitem__(index, value))[0]``, which gives x after the write) and what
PyTorch 2.13 CPU made of it: dtype, shape and values, or the exception type and the first
line of its message. ``test_tables_match_torch`` recomputes the table when torch is
installed, so a wrong entry cannot hide a wrong gradgen result.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradgen
from torch_tables import mismatches, outcome

PARTIAL = (RuntimeError, "unsupported operation: some elements of the input tensor and the "
                         "written-to tensor refer to a single memory location. Please clone() the "
                         "tensor before performing the operation.")
LEAF = (RuntimeError, "a leaf Variable that requires grad is being used in an in-place operation.")
VIEW_OF_LEAF = (RuntimeError, "a view of a leaf Variable that requires grad is being used in an "
                              "in-place operation.")
INVALID_0D = (IndexError, "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                          "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")


def put_dtypes(dst: str, src: str) -> tuple:
    return (RuntimeError, f"Index put requires the source and destination dtypes match, got {dst} "
                          f"for the destination and {src} for the source.")


def not_an_index(name: str) -> tuple:
    return (IndexError, "only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                        f"Variables are valid indices (got {name})")


# (expression, PyTorch's outcome)
CASES = [
    # A2: a lone Python bool in __setitem__ is basic: True writes into x.unsqueeze(0)
    # (converting the dtype, as copy_ does), False writes nothing and checks nothing
    ('(x := torch.zeros(3, dtype=torch.int64), x.__setitem__(True, torch.tensor([1.5, 2.5, '
     '3.5])))[0]',
     ('int64', (3,), [1, 2, 3])),
    ('(x := torch.zeros(2, 2), x.__setitem__(True, torch.tensor([1, 2])))[0]',
     ('float32', (2, 2), [[1.0, 2.0], [1.0, 2.0]])),
    ('(x := torch.zeros(3), x.__setitem__(True, torch.ones(3, 3)))[0]',
     (RuntimeError, 'The expanded size of the tensor (1) must match the existing size (3) at '
                    'non-singleton dimension 0.  Target sizes: [1, 3].  Tensor sizes: [3, 3]')),
    ('(x := torch.zeros(3), x.__setitem__(False, torch.ones(7)))[0]',
     ('float32', (3,), [0.0, 0.0, 0.0])),
    ('(x := torch.zeros(3), x.__setitem__(False, torch.ones(3, dtype=torch.int64)))[0]',
     ('float32', (3,), [0.0, 0.0, 0.0])),
    ('(x := torch.zeros(3), x.__setitem__(False, [1.0]))[0]',
     (TypeError, "can't assign a list to a torch.FloatTensor")),
    ('(x := torch.zeros(3, requires_grad=True), x.__setitem__(False, 1.0))[0].grad_fn', None),
    ('(x := torch.zeros(3, requires_grad=True) * 1, x.__setitem__(False, 2.0), '
     'type(x.grad_fn).__name__)[2]',
     'MulBackward0'),
    ('(v := torch.ones(3, requires_grad=True), x := torch.zeros(3, requires_grad=True) * 1, '
     'x.__setitem__(False, v), x.sum().backward(), v.grad)[4]',
     None),
    ('(x := torch.zeros(3, requires_grad=True) * 1, x.__setitem__(True, 2.0), '
     'type(x.grad_fn).__name__)[2]',
     'CopySlices'),
    ('(x := torch.zeros(3, requires_grad=True), x.__setitem__(True, 1.0))[0]', VIEW_OF_LEAF),
    ('(x := torch.zeros(2, 3), x.__setitem__((0, True), torch.tensor([1, 2, 3])))[0]',
     put_dtypes('Float', 'Long')),
    ('(x := torch.zeros(2, 3), x.__setitem__((0, True), 5.0))[0]',
     ('float32', (2, 3), [[5.0, 5.0, 5.0], [0.0, 0.0, 0.0]])),
    ('(x := torch.zeros(3), x.__setitem__(torch.tensor(True), torch.tensor([1, 2, 3])))[0]',
     put_dtypes('Float', 'Long')),
    # A3: one bool mask and a one-element value: PyTorch's masked_fill_(mask, value.item())
    # converts the dtype and skips the overlap check; anything else must match dtypes
    ('(x := torch.zeros(3), x.__setitem__(torch.tensor([True, False, True]), '
     'torch.tensor([7])))[0]',
     ('float32', (3,), [7.0, 0.0, 7.0])),
    ('(x := torch.zeros(3, dtype=torch.int64), x.__setitem__(torch.tensor([True, False, True]), '
     'torch.tensor(2.7)))[0]',
     ('int64', (3,), [2, 0, 2])),
    ('(x := torch.zeros(3, 4, dtype=torch.int64), x.__setitem__(torch.tensor([False, True, '
     'True]), torch.full((1,), 2.7)))[0]',
     ('int64', (3, 4), [[0, 0, 0, 0], [2, 2, 2, 2], [2, 2, 2, 2]])),
    ('(x := torch.zeros(2, 3), x.__setitem__([True, False], torch.tensor([1.5], '
     'dtype=torch.float64)))[0]',
     ('float32', (2, 3), [[1.5, 1.5, 1.5], [0.0, 0.0, 0.0]])),
    ('(x := torch.zeros(2, 3, 2), x.__setitem__((1, torch.tensor([False, False, True])), '
     'torch.tensor([[9]])))[0]',
     ('float32', (2, 3, 2),
      [[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0], [9.0, 9.0]]])),
    ('(x := torch.zeros(2, 3), x.__setitem__(torch.tensor([[True, False, True], [False, False, '
     'True]]), torch.tensor(7, dtype=torch.float64)))[0]',
     ('float32', (2, 3), [[7.0, 0.0, 7.0], [0.0, 0.0, 7.0]])),
    ('(x := torch.zeros(3), x.__setitem__((torch.tensor([True, False, True]), None), '
     'torch.tensor([7])))[0]',
     ('float32', (3,), [7.0, 0.0, 7.0])),
    ('(x := torch.zeros(3), x.__setitem__(torch.tensor([True, False, True]), '
     'torch.tensor([True])))[0]',
     ('float32', (3,), [1.0, 0.0, 1.0])),
    ('(x := torch.zeros(3, dtype=torch.bool), x.__setitem__(torch.tensor([True, False, True]), '
     'torch.tensor([2.5])))[0]',
     ('bool', (3,), [True, False, True])),
    ('(x := torch.arange(4.), x.__setitem__(torch.tensor([True, False, True, False]), x[3:]))[0]',
     ('float32', (4,), [3.0, 1.0, 3.0, 3.0])),
    ('(b := torch.tensor([True, False, True]), b.__setitem__(b, False))[0]',
     ('bool', (3,), [False, False, False])),
    ('(v := torch.tensor([2.], dtype=torch.float64, requires_grad=True), x := torch.zeros(3), '
     'x.__setitem__(torch.tensor([True, False, True]), v), type(x.grad_fn).__name__, '
     'x.sum().backward(), str(v.grad.dtype), v.grad.tolist())[3:]',
     ('IndexPutBackward0', None, 'torch.float64', [2.0])),
    ('(x := torch.zeros(3), x.__setitem__(torch.tensor([True, False, True]), torch.tensor([7, '
     '8])))[0]',
     put_dtypes('Float', 'Long')),
    ('(x := torch.zeros(3), x.__setitem__(torch.tensor([0, 2]), torch.tensor([7])))[0]',
     put_dtypes('Float', 'Long')),
    ('(x := torch.zeros(3), x.__setitem__(torch.tensor(True), torch.tensor([7])))[0]',
     put_dtypes('Float', 'Long')),
    ('(x := torch.zeros(3), x.__setitem__((True, torch.tensor([True, False, True])), '
     'torch.tensor([7])))[0]',
     put_dtypes('Float', 'Long')),
    ('(x := torch.zeros(3), x.__setitem__(torch.tensor([True, False]), torch.tensor([7])))[0]',
     (IndexError, 'The shape of the mask [2] at index 0 does not match the shape of the indexed '
                  'tensor [3] at index 0')),
    # A4: a value (or index) sharing memory with the written region: copy_'s check for basic
    # indices; index_put_'s stricter one (the same layout too) for index tensors
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__(Ellipsis, x.T))[0]', PARTIAL),
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__(slice(None), x.t()))[0]', PARTIAL),
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__(torch.tensor([0, 1]), x.T))[0]', PARTIAL),
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__(torch.tensor([0, 1]), x))[0]', PARTIAL),
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__(torch.tensor([1]), x[0]))[0]', PARTIAL),
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__((1, torch.tensor([1, 0])), x[0]))[0]',
     ('float32', (2, 2), [[0.0, 1.0], [1.0, 0.0]])),
    ('(x := torch.arange(4.), x.__setitem__(torch.tensor([0, 1]), x[2:]))[0]', PARTIAL),
    ('(x := torch.arange(4.), x.__setitem__(torch.tensor([0, 1]), x[::2]))[0]',
     ('float32', (4,), [0.0, 2.0, 2.0, 3.0])),
    ('(x := torch.arange(3), x.__setitem__(x, 5))[0]', PARTIAL),
    ('(x := torch.arange(3), x.__setitem__(x[:2], torch.tensor([5, 6])))[0]', PARTIAL),
    ('(x := torch.arange(4.), x.__setitem__(slice(1, None), x[:3]))[0]', PARTIAL),
    ('(x := torch.arange(4.), x.__setitem__(slice(0, 2), x[2:]))[0]',
     ('float32', (4,), [2.0, 3.0, 2.0, 3.0])),
    ('(x := torch.arange(4.), x.__setitem__(slice(None), x))[0]',
     ('float32', (4,), [0.0, 1.0, 2.0, 3.0])),
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__(slice(1, None), x[0]))[0]',
     ('float32', (2, 2), [[0.0, 1.0], [0.0, 1.0]])),
    ('(x := torch.arange(4.).reshape(2, 2), x.__setitem__(1, x[0]))[0]',
     ('float32', (2, 2), [[0.0, 1.0], [0.0, 1.0]])),
    ('(x := torch.arange(4.).reshape(2, 2), x.copy_(x.T))[0]', PARTIAL),
    ('(x := torch.arange(4.), x.__setitem__(slice(0, 1), x[0]))[0]', ('float32', (4,), [0.0, 1.0, 2.0, 3.0])),
    ('(x := torch.arange(6.).reshape(3, 2), x.__setitem__(slice(None), x.T.T))[0]',
     ('float32', (3, 2), [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])),
    ('(b := torch.tensor([True, False, True]), b.__setitem__(b, torch.tensor([False, False])))[0]', PARTIAL),
    # C2: a 0-d tensor: PyTorch's fast paths for a lone int or slice, else its count of indices
    ('torch.tensor(1.5)[0]', INVALID_0D),
    ('torch.tensor(1.5)[np.int64(0)]', INVALID_0D),
    ('torch.tensor(1.5)[3]', (IndexError, 'index 3 is out of bounds for dimension 0 with size 0')),
    ('torch.tensor(1.5)[-1]', (IndexError, 'index -1 is out of bounds for dimension 0 with size 0')),
    ('torch.tensor(1.5)[np.int64(3)]',
     (IndexError, 'index 3 is out of bounds for dimension 0 with size 0')),
    ('torch.tensor(1.5)[1:2]', (IndexError, 'slice() cannot be applied to a 0-dim tensor.')),
    ('torch.tensor(1.5)[:]', (IndexError, 'slice() cannot be applied to a 0-dim tensor.')),
    ('torch.tensor(1.5)[::-1]', (ValueError, 'step must be greater than zero')),
    ('torch.tensor(1.5)[torch.tensor(0)]', (IndexError, 'too many indices for tensor of dimension 0')),
    ('torch.tensor(1.5)[0.5]', (IndexError, 'too many indices for tensor of dimension 0')),
    ("torch.tensor(1.5)['a']", (IndexError, 'too many indices for tensor of dimension 0')),
    ('torch.tensor(1.5)[[0]]', (IndexError, 'too many indices for tensor of dimension 0')),
    ('torch.tensor(1.5)[(3,)]', (IndexError, 'too many indices for tensor of dimension 0')),
    ('torch.tensor(1.5)[None, 0]', (IndexError, 'too many indices for tensor of dimension 0')),
    ('torch.tensor(1.5)[None]', ('float32', (1,), [1.5])),
    ('torch.tensor(1.5)[...]', ('float32', (), 1.5)),
    ('(x := torch.tensor(1.5), x.__setitem__(3, 1.0))[0]',
     (IndexError, 'index 3 is out of bounds for dimension 0 with size 0')),
    ('(x := torch.tensor(1.5), x.__setitem__(slice(1, 2), 1.0))[0]',
     (IndexError, 'slice() cannot be applied to a 0-dim tensor.')),
    ('torch.arange(3.)[0, 0.5]', (IndexError, 'too many indices for tensor of dimension 1')),
    ('torch.arange(3.)[0.5]', not_an_index('float')),
    ('torch.arange(3.)[np.float64(1.0)]', not_an_index('numpy.float64')),
    # C3: __setitem__ checks the value before the index bounds (autograd's leaf check before
    # both for index tensors); out-of-bounds indices are found in the kernel's order
    ('(x := torch.zeros(2, 3), x.__setitem__(torch.tensor([0, 5]), torch.ones(2, 3, '
     'dtype=torch.float64)))[0]',
     put_dtypes('Float', 'Double')),
    ('(x := torch.zeros(2, 3), x.__setitem__(torch.tensor([0, 5]), torch.ones(7)))[0]',
     (RuntimeError, 'shape mismatch: value tensor of shape [7] cannot be broadcast to indexing '
                    'result of shape [2, 3]')),
    ('(x := torch.zeros(2, 3), x.__setitem__(torch.tensor([0, 1]), torch.ones(7, '
     'dtype=torch.float64)))[0]',
     (RuntimeError, 'shape mismatch: value tensor of shape [7] cannot be broadcast to indexing '
                    'result of shape [2, 3]')),
    ('(x := torch.zeros(2, 3), x.__setitem__(5, [1.0]))[0]',
     (TypeError, "can't assign a list to a torch.FloatTensor")),
    ("(x := torch.zeros(2, 3), x.__setitem__((0, 9), 'a'))[0]",
     (TypeError, "can't assign a str to a torch.FloatTensor")),
    ('(x := torch.zeros(2, 3), x.__setitem__(torch.tensor([0.5]), [1.0]))[0]',
     (TypeError, "can't assign a list to a torch.FloatTensor")),
    ('(x := torch.zeros(2, 3), x.__setitem__(torch.tensor([0.5]), torch.ones(7)))[0]',
     (IndexError, 'tensors used as indices must be long, int, byte or bool tensors')),
    ('(x := torch.zeros(2, 3), x.__setitem__((torch.tensor([0, 1]), torch.tensor([0, 1, 2])), '
     'torch.ones(7)))[0]',
     (IndexError, 'shape mismatch: indexing tensors could not be broadcast together with shapes '
                  '[2], [3]')),
    ('(x := torch.zeros(2, 0), x.__setitem__((slice(None), torch.tensor([0, 1])), '
     'torch.ones(7)))[0]',
     (IndexError, 'index is out of bounds for dimension with size 0')),
    ('(x := torch.zeros(2, 3), x.__setitem__(torch.tensor([True, False, True]), '
     'torch.ones(7)))[0]',
     (IndexError, 'The shape of the mask [3] at index 0 does not match the shape of the indexed '
                  'tensor [2, 3] at index 0')),
    ('(x := torch.zeros(2, 3), x.__setitem__((5, torch.tensor([0, 1])), torch.ones(7)))[0]',
     (IndexError, 'index 5 is out of bounds for dimension 0 with size 2')),
    ('(x := torch.zeros(2, 3, requires_grad=True), x.__setitem__(torch.tensor([0, 5]), '
     'torch.ones(7)))[0]',
     LEAF),
    ('(x := torch.zeros(2, 3, requires_grad=True), x.__setitem__(torch.tensor([True, False, '
     'True]), 1.0))[0]',
     LEAF),
    ('(x := torch.zeros(2, 3, requires_grad=True), x.__setitem__((0, torch.tensor([0, 5])), '
     '1.0))[0]',
     VIEW_OF_LEAF),
    ('(x := torch.zeros(2, 3, requires_grad=True), x.__setitem__(0, torch.ones(7)))[0]',
     (RuntimeError, 'The expanded size of the tensor (3) must match the existing size (7) at '
                    'non-singleton dimension 0.  Target sizes: [3].  Tensor sizes: [7]')),
    ('torch.zeros(2, 3, 4)[torch.tensor([[0], [2]]), torch.tensor([1, 3, 0])]',
     (IndexError, 'index 3 is out of bounds for dimension 1 with size 3')),
    ('torch.zeros(2, 3, 4)[torch.tensor([[2], [0]]), torch.tensor([1, 3, 0])]',
     (IndexError, 'index 2 is out of bounds for dimension 0 with size 2')),
    ('torch.zeros(2, 3, 4)[torch.tensor([[0], [2]]), :, torch.tensor([1, 7, 0])]',
     (IndexError, 'index 7 is out of bounds for dimension 1 with size 4')),
    ('torch.zeros(2, 3, 4)[torch.tensor([0, 5]), 1, torch.tensor([9, 0])]',
     (IndexError, 'index 9 is out of bounds for dimension 1 with size 4')),
    ('torch.zeros(2, 3)[torch.tensor([[0, 1], [-7, 8]])]',
     (IndexError, 'index -7 is out of bounds for dimension 0 with size 2')),
    ('(x := torch.zeros(2, 3, 4), x.__setitem__((torch.tensor([[0], [2]]), torch.tensor([1, 3, '
     '0])), 1.0))[0]',
     (IndexError, 'index 3 is out of bounds for dimension 1 with size 3')),
    ('(x := torch.zeros(2, 3, 4), x.__setitem__((torch.tensor([0, 5]), 1, torch.tensor([9, 0])), '
     'torch.ones(2, 4)))[0]',
     (RuntimeError, 'shape mismatch: value tensor of shape [2, 4] cannot be broadcast to indexing '
                    'result of shape [2]')),
    # C4: take / index_select / gather argument errors, in PyTorch's order (dim first)
    ('torch.take([1, 2], torch.tensor([0]))',
     (TypeError, "take(): argument 'input' (position 1) must be Tensor, not list")),
    ('torch.gather([1.0], 0, torch.tensor([0]))',
     (TypeError, "gather(): argument 'input' (position 1) must be Tensor, not list")),
    ('torch.index_select(None, 0, torch.tensor([0]))',
     (TypeError, "index_select(): argument 'input' (position 1) must be Tensor, not NoneType")),
    ('torch.take(torch.arange(4.), torch.tensor([1], dtype=torch.int32))',
     (RuntimeError, 'take(): Expected a long tensor for index, but got Int')),
    ('torch.arange(4.).take(torch.tensor([0.0]))',
     (RuntimeError, 'take(): Expected a long tensor for index, but got Float')),
    ('torch.arange(4.).take(torch.tensor([True]))',
     (RuntimeError, 'take(): Expected a long tensor for index, but got Bool')),
    ('torch.zeros(0).take(torch.tensor([0]))',
     (IndexError, 'take(): tried to take from an empty tensor')),
    ('torch.zeros(0, 3).take(torch.tensor([-1]))',
     (IndexError, 'take(): tried to take from an empty tensor')),
    ('torch.zeros(0).take(torch.tensor([], dtype=torch.int64))', ('float32', (0,), [])),
    ('torch.arange(4.).take([0])',
     (TypeError, "take(): argument 'index' (position 1) must be Tensor, not list")),
    ('torch.arange(4.).take(torch.tensor([[9, -9]]))',
     (IndexError, 'out of range: tried to access index 9 on a tensor of 4 elements.')),
    ('torch.arange(4.).index_select(0, [0])',
     (TypeError, "index_select(): argument 'index' (position 2) must be Tensor, not list")),
    ('torch.arange(4.).index_select(0, 0)',
     (TypeError, "index_select(): argument 'index' (position 2) must be Tensor, not int")),
    ('torch.arange(4.).index_select(0, torch.tensor([0.0]))',
     (RuntimeError, 'index_select(): Expected dtype int32 or int64 for index')),
    ('torch.arange(4.).index_select(5, torch.tensor([0.0]))',
     (IndexError, 'Dimension out of range (expected to be in range of [-1, 0], but got 5)')),
    ('torch.arange(4.).index_select(5, torch.tensor([[0, 1]]))',
     (IndexError, 'Dimension out of range (expected to be in range of [-1, 0], but got 5)')),
    ('torch.arange(4.).index_select(0, torch.tensor([[0.5]]))',
     (IndexError, 'index_select(): Index is supposed to be a vector')),
    ('torch.tensor(2.).index_select(3, torch.tensor([0]))',
     (IndexError, 'Dimension out of range (expected to be in range of [-1, 0], but got 3)')),
    ('torch.arange(4.).index_select(0, torch.tensor([3, 1], dtype=torch.int32))',
     ('float32', (2,), [3.0, 1.0])),
    ('torch.arange(4.).gather(0, [0])',
     (TypeError, "gather(): argument 'index' (position 2) must be Tensor, not list")),
    ('torch.arange(4.).gather(5, torch.tensor([0.0]))',
     (IndexError, 'Dimension out of range (expected to be in range of [-1, 0], but got 5)')),
    ('torch.arange(4.).gather(5, torch.tensor([[0]]))',
     (IndexError, 'Dimension out of range (expected to be in range of [-1, 0], but got 5)')),
    ('torch.arange(4.).gather(0, torch.tensor([0.0]))',
     (RuntimeError, 'gather(): Expected dtype int32/int64 for index')),
    # C7: gather by an empty index checks only dim: an empty result of the index's shape
    ('torch.zeros(0).gather(0, torch.zeros(0, 1, dtype=torch.int64))', ('float32', (0, 1), [])),
    ('torch.zeros(2).gather(0, torch.zeros(0, 1, dtype=torch.int64))', ('float32', (0, 1), [])),
    ('torch.zeros(0, 3).gather(0, torch.zeros(0, dtype=torch.int64))', ('float32', (0,), [])),
    ('torch.zeros(2, 3).gather(1, torch.zeros(0, 5, 7, dtype=torch.int64))',
     ('float32', (0, 5, 7), [])),
    ('torch.zeros(2, 3).gather(1, torch.zeros(0, dtype=torch.float32))', ('float32', (0,), [])),
    ('torch.tensor(2.).gather(0, torch.zeros(0, 2, dtype=torch.int64))', ('float32', (0, 2), [])),
    ('torch.zeros(2, 3).gather(5, torch.zeros(0, dtype=torch.int64))',
     (IndexError, 'Dimension out of range (expected to be in range of [-2, 1], but got 5)')),
    ('type(torch.zeros(2, requires_grad=True).gather(0, torch.zeros(0, 1, '
     'dtype=torch.int64)).grad_fn).__name__',
     'GatherBackward0'),
    ('(x := torch.ones(2, 3, requires_grad=True), x.gather(1, torch.zeros(0, 3, '
     'dtype=torch.int64)).sum().backward(), x.grad)[2]',
     ('float32', (2, 3), [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])),
    # C8: numpy bools are no index; ints beyond int64 overflow
    ('torch.arange(3.)[np.bool_(True)]', not_an_index('numpy.bool')),
    ('(x := torch.zeros(3), x.__setitem__(np.bool_(True), 1.0))[0]', not_an_index('numpy.bool')),
    ('torch.arange(3.)[np.True_, 0]', (IndexError, 'too many indices for tensor of dimension 1')),
    ('torch.arange(3.)[(np.True_,)]', not_an_index('numpy.bool')),
    ('torch.arange(3.)[np.array(True)]', ('float32', (1, 3), [[0.0, 1.0, 2.0]])),
    ('torch.arange(3.)[2**63]', (ValueError, 'Overflow when unpacking long long')),
    ('torch.arange(3.)[-2**63-1]', (ValueError, 'Overflow when unpacking long long')),
    ('torch.arange(3.)[2**63-1]',
     (IndexError, 'index 9223372036854775807 is out of bounds for dimension 0 with size 3')),
    ('torch.arange(3.)[np.uint64(2**63)]', (ValueError, 'Overflow when unpacking long long')),
    ('torch.arange(6.).reshape(2, 3)[0, 2**63]', (ValueError, 'Overflow when unpacking long long')),
    ('torch.arange(6.).reshape(2, 3)[5, 2**63]',
     (IndexError, 'index 5 is out of bounds for dimension 0 with size 2')),
    ('torch.arange(3.)[[2**63]]', (ValueError, 'Overflow when unpacking long long')),
    ('torch.arange(3.)[[2**64 - 1]]', (ValueError, 'Overflow when unpacking long long')),
    ('torch.arange(3.)[[2**70]]', (ValueError, 'Overflow when unpacking long long')),
    ('torch.tensor(1.5)[2**63]', (ValueError, 'Overflow when unpacking long long')),
    ('(x := torch.zeros(3), x.__setitem__(2**63, 1.0))[0]',
     (ValueError, 'Overflow when unpacking long long')),
    # D3: gather / index_select of a 0-d input (or by a 0-d index) return a new tensor
    ('torch.tensor(2., requires_grad=True).gather(0, torch.tensor(0))._base is None', True),
    ('torch.tensor(2.).index_select(0, torch.tensor([0]))._base is None', True),
    ('torch.tensor(2.).index_select(0, torch.tensor(0))._base is None', True),
    ('torch.arange(3.).gather(0, torch.tensor(1))._base is None', True),
    ('torch.arange(3.).gather(0, torch.tensor(1))', ('float32', (), 1.0)),
    ('torch.tensor(2.).gather(0, torch.tensor(0))', ('float32', (), 2.0)),
    ('torch.tensor(2.).index_select(0, torch.tensor(0))', ('float32', (), 2.0)),
    ('type(torch.tensor(2., requires_grad=True).gather(0, torch.tensor(0)).grad_fn).__name__',
     'GatherBackward0'),
    ('type(torch.tensor(2., requires_grad=True).index_select(0, '
     'torch.tensor([0])).grad_fn).__name__',
     'IndexSelectBackward0'),
    ('(x := torch.arange(3., requires_grad=True), x.gather(0, torch.tensor(1)).backward(), '
     'x.grad)[2]',
     ('float32', (3,), [0.0, 1.0, 0.0])),
    ('(x := torch.tensor(3., requires_grad=True), x.index_select(0, torch.tensor(0)).backward(), '
     'x.grad)[2]',
     ('float32', (), 1.0)),
    # a number the tensor's dtype cannot hold is refused, as fill_ refuses it
    ('(x := torch.ones(2), x.__setitem__(0, 1e39))',
     (RuntimeError, 'value cannot be converted to type float without overflow')),
    ('(x := torch.ones(2, dtype=torch.int32), x.__setitem__(0, 2**40))',
     (RuntimeError, 'value cannot be converted to type int without overflow')),
    ("(x := torch.ones(2, dtype=torch.int64), x.__setitem__(torch.tensor([True, False]), float('nan')))",
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ("(x := torch.arange(4), x.__setitem__(5, float('nan')))",  # (before the index is checked)
     (RuntimeError, 'value cannot be converted to type int64_t without overflow')),
    ("(x := torch.ones(3, requires_grad=True), x.__setitem__(0, 1e39))",
     (RuntimeError, 'value cannot be converted to type float without overflow')),
    ("(x := torch.ones(2), x.__setitem__(0, float('inf')), x)[2]", ('float32', (2,), [float('inf'), 1.0])),
    ('(x := torch.ones(2, dtype=torch.bool), x.__setitem__(0, 5), x)[2]', ('bool', (2,), [True, True])),
]


def _outcome(mod, expr: str):
    with warnings.catch_warnings():  # int(NaN)-style casts and the list-as-tuple deprecation
        warnings.simplefilter("ignore")
        return outcome(mod, expr)


@pytest.mark.parametrize("expr, want", CASES, ids=[c[0] for c in CASES])
def test_indexing_matches_torch(expr: str, want) -> None:
    assert repr(_outcome(gradgen, expr)) == repr(want)


def test_tables_match_torch() -> None:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not mismatches(torch, CASES)


def test_python_true_write_reaches_the_gradient() -> None:
    """x[True] = v is x.unsqueeze(0)[...] = v: CopySlices, and v's gradient sums the broadcast."""
    v = gradgen.tensor([2.0], dtype=gradgen.float64, requires_grad=True)
    w = gradgen.ones(2, 3, requires_grad=True)
    x = w * 1
    x[True] = v
    (x * gradgen.arange(6.0).reshape(2, 3)).sum().backward()
    assert v.grad.tolist() == [15.0] and w.grad.tolist() == [[0.0] * 3] * 2


def test_mask_fill_from_another_dtype_reaches_the_gradient() -> None:
    """PyTorch's masked_fill_ dispatch converts the value; its gradient comes back in its dtype."""
    v = gradgen.tensor(3.0, dtype=gradgen.float64, requires_grad=True)
    x = gradgen.zeros(2, 2, requires_grad=True) * 1
    x[gradgen.tensor([[True, False], [True, True]])] = v
    assert type(x.grad_fn).__name__ == "IndexPutBackward0" and x.tolist() == [[3.0, 0.0], [3.0, 3.0]]
    x.sum().backward()
    assert v.grad.dtype is gradgen.float64 and v.grad.item() == 3.0


def test_unreadable_overlap_is_written_from_a_copy() -> None:
    """Where PyTorch cannot tell (a strided value) gradgen writes from a copy, as if cloned."""
    x = gradgen.arange(5.0)
    x[::2] = x[:3]
    np.testing.assert_array_equal(x.numpy(), [0.0, 1.0, 1.0, 3.0, 2.0])
