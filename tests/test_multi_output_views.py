"""In-place writes into the views split/chunk/unbind return (PyTorch's multi-output views).

PyTorch refuses a differentiable in-place write into such a view (or into a view of it, or
through a view indexing takes of it), naming the node, and any use of one after its base (or
a sibling) was written in place; writes under no_grad, into pieces of tensors nothing
differentiates, and into detached pieces are allowed. Each scenario runs against a module
``T`` (gradgen or torch); gradgen's observations are checked against PyTorch 2.13's, recorded
below and, when torch is installed, against a live run.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

import gradgen as gg
from test_inplace_views import observe


def _b(T):
    a = T.tensor([1.0, 2.0, 3.0, 4.0], dtype=T.float64, requires_grad=True)
    return a, a * 2


def split_output_mul_(T):
    _, b = _b(T)
    b.split(2)[1].mul_(2)


def split_sizes_output_add_(T):
    _, b = _b(T)
    b.split([1, 3])[0].add_(1)


def chunk_output_of_leaf(T):
    a, _ = _b(T)
    a.chunk(2)[0].zero_()


def unbind_output_copy_(T):
    _, b = _b(T)
    b.unbind()[2].copy_(T.tensor(5.0, dtype=T.float64))


def plain_split_written_with_grad_operand(T):
    y = T.ones(4, dtype=T.float64)
    w = T.ones(2, dtype=T.float64, requires_grad=True)
    y.split(2)[0].mul_(w)


def plain_chunk_written(T):
    y = T.ones(4, dtype=T.float64)
    u, _ = y.chunk(2)
    u.add_(1)
    return {"y": y.tolist()}


def split_written_under_no_grad(T):
    a, b = _b(T)
    p = b.split(2)[0]
    with T.no_grad():
        p.mul_(3)
    b.sum().backward()
    return {"b": b.tolist(), "a.grad": a.grad.tolist()}


def split_made_under_no_grad(T):
    _, b = _b(T)
    with T.no_grad():
        p = b.split(2)[0]
    p.mul_(3)


def split_detached_written(T):
    _, b = _b(T)
    p = b.split(2)[0].detach()
    p.mul_(3)
    return {"b": b.tolist()}


def split_setitem_select(T):
    _, b = _b(T)
    b.reshape(2, 2).split(1)[0][0, 1] = 7.0


def split_setitem_slice(T):
    _, b = _b(T)
    b.split(2)[0][0:1] = 7.0


def split_setitem_unsqueeze(T):
    _, b = _b(T)
    b.split(2)[0][None] = 7.0


def split_setitem_whole(T):
    _, b = _b(T)
    b.split(2)[0][...] = 7.0


def split_setitem_mask(T):
    _, b = _b(T)
    p = b.split(2)[0]
    p[p > 2] = 7.0


def _stale(T):
    a, b = _b(T)
    p = b.split(2)[0]
    b.mul_(2)
    return a, b, p


def write_after_base_written(T):
    _, _, p = _stale(T)
    p.mul_(2)


def use_after_base_written(T):
    _, _, p = _stale(T)
    p + 1


def grad_fn_after_base_written(T):
    _, _, p = _stale(T)
    p.grad_fn


def backward_after_base_written(T):
    _, _, p = _stale(T)
    p.sum().backward()


def detach_and_flags_after_base_written(T):
    _, _, p = _stale(T)
    return {"detached": (p.detach() + 1).tolist(), "requires_grad": p.requires_grad}


def base_written_under_no_grad(T):
    _, b = _b(T)
    p = b.split(2)[0]
    with T.no_grad():
        b.mul_(2)
    p.grad_fn


def plain_base_written_with_grad_operand(T):
    y = T.ones(4, dtype=T.float64)
    w = T.ones(4, dtype=T.float64, requires_grad=True)
    p = y.split(2)[0]
    y.mul_(w)
    p + 1


def sibling_written_through_detach(T):
    _, b = _b(T)
    p, q = b.split(2)
    q.detach().mul_(2)
    p.grad_fn


def view_of_split_output_written(T):
    _, b = _b(T)
    b.split(2)[0][0:1].mul_(2)


def view_of_unbind_output_written(T):
    _, b = _b(T)
    b.reshape(2, 2).unbind()[1].unsqueeze(0).add_(1)


def repr_after_base_written(T):
    _, _, p = _stale(T)
    return {"repr": repr(p)}


def retain_grad_after_base_written(T):
    _, _, p = _stale(T)
    p.retain_grad()


def stale_slice_view_repr_and_retain_grad(T):
    a, b = _b(T)
    v = b[0:2]
    b.mul_(2)
    text = repr(v)
    v.retain_grad()
    v.sum().backward()
    return {"repr": text, "v.grad": v.grad.tolist(), "a.grad": a.grad.tolist()}


SCENARIOS: dict[str, Callable] = {f.__name__: f for f in (
    split_output_mul_,
    split_sizes_output_add_,
    chunk_output_of_leaf,
    unbind_output_copy_,
    plain_split_written_with_grad_operand,
    plain_chunk_written,
    split_written_under_no_grad,
    split_made_under_no_grad,
    split_detached_written,
    split_setitem_select,
    split_setitem_slice,
    split_setitem_unsqueeze,
    split_setitem_whole,
    split_setitem_mask,
    write_after_base_written,
    use_after_base_written,
    grad_fn_after_base_written,
    backward_after_base_written,
    detach_and_flags_after_base_written,
    base_written_under_no_grad,
    plain_base_written_with_grad_operand,
    sibling_written_through_detach,
    view_of_split_output_written,
    view_of_unbind_output_written,
    repr_after_base_written,
    retain_grad_after_base_written,
    stale_slice_view_repr_and_retain_grad,
)}

EXPECTED: dict[str, Any] = {'split_output_mul_': ['raises',
                       'RuntimeError',
                       'Output 1 of Split is a view and is being modified inplace. This view '
                       'is the output of a function that returns multiple views. Such '
                       'functions do not allow the output views to be modified inplace. You '
                       'should replace the inplace operation by an out-of-place one.'],
 'split_sizes_output_add_': ['raises',
                             'RuntimeError',
                             'Output 0 of SplitWithSizes is a view and is being modified '
                             'inplace. This view is the output of a function that returns '
                             'multiple views. Such functions do not allow the output views to '
                             'be modified inplace. You should replace the inplace operation by '
                             'an out-of-place one.'],
 'chunk_output_of_leaf': ['raises',
                          'RuntimeError',
                          'Output 0 of Split is a view and is being modified inplace. This '
                          'view is the output of a function that returns multiple views. Such '
                          'functions do not allow the output views to be modified inplace. You '
                          'should replace the inplace operation by an out-of-place one.'],
 'unbind_output_copy_': ['raises',
                         'RuntimeError',
                         'Output 2 of Unbind is a view and is being modified inplace. This '
                         'view is the output of a function that returns multiple views. Such '
                         'functions do not allow the output views to be modified inplace. You '
                         'should replace the inplace operation by an out-of-place one.'],
 'plain_split_written_with_grad_operand': ['raises',
                                           'RuntimeError',
                                           'A view was created in no_grad mode and is being '
                                           'modified inplace with grad mode enabled. This view '
                                           'is the output of a function that returns multiple '
                                           'views. Such functions do not allow the output '
                                           'views to be modified inplace. You should replace '
                                           'the inplace operation by an out-of-place one.'],
 'plain_chunk_written': {'y': [2.0, 2.0, 1.0, 1.0]},
 'split_written_under_no_grad': {'b': [6.0, 12.0, 6.0, 8.0], 'a.grad': [2.0, 2.0, 2.0, 2.0]},
 'split_made_under_no_grad': ['raises',
                              'RuntimeError',
                              'A view was created in no_grad mode and is being modified '
                              'inplace with grad mode enabled. Given that this use case is '
                              'ambiguous and error-prone, it is forbidden. You can clarify '
                              'your code by moving both the view and the inplace either both '
                              "inside the no_grad block (if you don't want the inplace to be "
                              'tracked) or both outside (if you want the inplace to be '
                              'tracked).'],
 'split_detached_written': {'b': [6.0, 12.0, 6.0, 8.0]},
 'split_setitem_select': ['raises',
                          'RuntimeError',
                          'Output 0 of Select is a view and is being modified inplace. This '
                          'view is the output of a function that returns multiple views. Such '
                          'functions do not allow the output views to be modified inplace. You '
                          'should replace the inplace operation by an out-of-place one.'],
 'split_setitem_slice': ['raises',
                         'RuntimeError',
                         'Output 0 of Slice is a view and is being modified inplace. This view '
                         'is the output of a function that returns multiple views. Such '
                         'functions do not allow the output views to be modified inplace. You '
                         'should replace the inplace operation by an out-of-place one.'],
 'split_setitem_unsqueeze': ['raises',
                             'RuntimeError',
                             'Output 0 of Unsqueeze is a view and is being modified inplace. '
                             'This view is the output of a function that returns multiple '
                             'views. Such functions do not allow the output views to be '
                             'modified inplace. You should replace the inplace operation by an '
                             'out-of-place one.'],
 'split_setitem_whole': ['raises',
                         'RuntimeError',
                         'Output 0 of Split is a view and is being modified inplace. This view '
                         'is the output of a function that returns multiple views. Such '
                         'functions do not allow the output views to be modified inplace. You '
                         'should replace the inplace operation by an out-of-place one.'],
 'split_setitem_mask': ['raises',
                        'RuntimeError',
                        'Output 0 of Split is a view and is being modified inplace. This view '
                        'is the output of a function that returns multiple views. Such '
                        'functions do not allow the output views to be modified inplace. You '
                        'should replace the inplace operation by an out-of-place one.'],
 'write_after_base_written': ['raises',
                              'RuntimeError',
                              'Output 0 of Split is a view and is being modified inplace. This '
                              'view is the output of a function that returns multiple views. '
                              'Such functions do not allow the output views to be modified '
                              'inplace. You should replace the inplace operation by an '
                              'out-of-place one.'],
 'use_after_base_written': ['raises',
                            'RuntimeError',
                            'Output 0 of Split is a view and its base or another view of its '
                            'base has been modified inplace. This view is the output of a '
                            'function that returns multiple views. Such functions do not allow '
                            'the output views to be modified inplace. You should replace the '
                            'inplace operation by an out-of-place one.'],
 'grad_fn_after_base_written': ['raises',
                                'RuntimeError',
                                'Output 0 of Split is a view and its base or another view of '
                                'its base has been modified inplace. This view is the output '
                                'of a function that returns multiple views. Such functions do '
                                'not allow the output views to be modified inplace. You should '
                                'replace the inplace operation by an out-of-place one.'],
 'backward_after_base_written': ['raises',
                                 'RuntimeError',
                                 'Output 0 of Split is a view and its base or another view of '
                                 'its base has been modified inplace. This view is the output '
                                 'of a function that returns multiple views. Such functions do '
                                 'not allow the output views to be modified inplace. You '
                                 'should replace the inplace operation by an out-of-place '
                                 'one.'],
 'detach_and_flags_after_base_written': {'detached': [5.0, 9.0], 'requires_grad': True},
 'base_written_under_no_grad': ['raises',
                                'RuntimeError',
                                'Output 0 of Split is a view and its base or another view of '
                                'its base has been modified inplace. This view is the output '
                                'of a function that returns multiple views. Such functions do '
                                'not allow the output views to be modified inplace. You should '
                                'replace the inplace operation by an out-of-place one.'],
 'plain_base_written_with_grad_operand': ['raises',
                                          'RuntimeError',
                                          'A view was created in no_grad mode and its base or '
                                          'another view of its base has been modified inplace '
                                          'with grad mode enabled. This view is the output of '
                                          'a function that returns multiple views. Such '
                                          'functions do not allow the output views to be '
                                          'modified inplace. You should replace the inplace '
                                          'operation by an out-of-place one.'],
 'sibling_written_through_detach': ['raises',
                                    'RuntimeError',
                                    'Output 0 of Split is a view and its base or another view '
                                    'of its base has been modified inplace. This view is the '
                                    'output of a function that returns multiple views. Such '
                                    'functions do not allow the output views to be modified '
                                    'inplace. You should replace the inplace operation by an '
                                    'out-of-place one.'],
 'view_of_split_output_written': ['raises',
                                  'RuntimeError',
                                  'Output 0 of Slice is a view and is being modified inplace. '
                                  'This view is the output of a function that returns multiple '
                                  'views. Such functions do not allow the output views to be '
                                  'modified inplace. You should replace the inplace operation '
                                  'by an out-of-place one.'],
 'view_of_unbind_output_written': ['raises',
                                   'RuntimeError',
                                   'Output 0 of Unsqueeze is a view and is being modified '
                                   'inplace. This view is the output of a function that '
                                   'returns multiple views. Such functions do not allow the '
                                   'output views to be modified inplace. You should replace '
                                   'the inplace operation by an out-of-place one.'],
 'repr_after_base_written': {'repr': 'tensor([4., 8.], dtype=torch.float64, '
                                     'grad_fn=<Invalid>)'},
 'retain_grad_after_base_written': ['raises',
                                    'RuntimeError',
                                    'Output 0 of Split is a view and its base or another view '
                                    'of its base has been modified inplace. This view is the '
                                    'output of a function that returns multiple views. Such '
                                    'functions do not allow the output views to be modified '
                                    'inplace. You should replace the inplace operation by an '
                                    'out-of-place one.'],
 'stale_slice_view_repr_and_retain_grad': {'repr': 'tensor([4., 8.], dtype=torch.float64, '
                                                   'grad_fn=<AsStridedBackward0>)',
                                           'v.grad': [1.0, 1.0],
                                           'a.grad': [4.0, 4.0, 0.0, 0.0]}}


def _observe(name: str, T: Any) -> Any:
    return observe(SCENARIOS[name], T)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_recorded_pytorch(name: str) -> None:
    assert _observe(name, gg) == EXPECTED[name]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_live_pytorch(name: str) -> None:
    torch = pytest.importorskip("torch")
    assert _observe(name, gg) == _observe(name, torch)
