"""In-place writes through views of tensors that require grad: PyTorch's CopySlices and view replay.

Each scenario is written once against a module ``T`` (gradgen or torch) and returns
what a user can observe: values, gradients, grad_fn names, version counts. gradgen's
observations are checked against PyTorch 2.13's, recorded below (``EXPECTED``) and,
when torch is installed, against a live run. Gradients of the recorded writes are
also checked with gradcheck/gradgradcheck.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd import gradcheck, gradgradcheck


def _ver(t: Any) -> int:
    v = t._version
    return v if isinstance(v, int) else v.value


def _name(t: Any) -> str | None:
    fn = t.grad_fn
    return None if fn is None else fn.name()


def _grad(t: Any) -> Any:
    return None if t.grad is None else t.grad.tolist()


def _leaf(T: Any, shape: tuple, start: float = 1.0) -> Any:
    n = int(np.prod(shape))
    return T.tensor(np.arange(start, start + n).reshape(shape), dtype=T.float64, requires_grad=True)


def _weights(T: Any, shape: tuple) -> Any:
    n = int(np.prod(shape))
    return T.tensor(np.arange(1.0, n + 1).reshape(shape) % 5 + 1, dtype=T.float64)


# ---------------------------------------------------------------- scenarios


def clone_row_mul(T):
    x = _leaf(T, (2, 3))
    z = x.clone()
    v = z[0]
    v.mul_(2)
    names = (_name(z), _name(v), _ver(z), _ver(v))
    (z * _weights(T, (2, 3))).sum().backward()
    return {"z": z.tolist(), "names": names, "x.grad": _grad(x)}


def column_iadd(T):
    w = _leaf(T, (3,))
    z = T.zeros(3, 4, dtype=T.float64)
    z[:, 1] += w
    names = (_name(z), _ver(z))
    (z * _weights(T, (3, 4))).sum().backward()
    return {"z": z.tolist(), "names": names, "w.grad": _grad(w)}


def view_iadd_then_use(T):
    w = _leaf(T, (3,))
    z = T.zeros(3, 4, dtype=T.float64)
    t = z[:, 1]
    t += w
    names = (_name(z), _name(t), _ver(z), t.requires_grad, t.is_leaf)
    (t * t).sum().backward()
    return {"z": z.tolist(), "names": names, "w.grad": _grad(w)}


def setitem_row(T):
    w = _leaf(T, (4,))
    h = T.zeros(3, 4, dtype=T.float64)
    h[0] = w * 2
    names = (_name(h), _ver(h))
    (h * _weights(T, (3, 4))).sum().backward()
    return {"h": h.tolist(), "names": names, "w.grad": _grad(w)}


def setitem_into_view(T):
    x = _leaf(T, (3, 4))
    w = _leaf(T, (2,))
    y = x * 1
    v = y[1]
    v[1:3] = w * w
    names = (_name(y), _name(v), _ver(y))
    (y * _weights(T, (3, 4))).sum().backward()
    return {"y": y.tolist(), "names": names, "x.grad": _grad(x), "w.grad": _grad(w)}


def view_of_view(T):
    x = _leaf(T, (3, 4))
    w = _leaf(T, (3,))
    y = x * 1
    a = y[:, 1:]
    b = a[1]
    b.mul_(w)
    names = (_name(y), _name(a), _name(b), _ver(y), _ver(a))
    (y * _weights(T, (3, 4))).sum().backward()
    return {"y": y.tolist(), "a": a.tolist(), "names": names, "x.grad": _grad(x),
            "w.grad": _grad(w)}


def transposed_view(T):
    x = _leaf(T, (2, 3))
    w = _leaf(T, (2,))
    y = x * 1
    t = y.t()
    t[1].mul_(w)
    t.add_(1)
    names = (_name(y), _name(t), _ver(y))
    (y * _weights(T, (2, 3))).sum().backward()
    return {"y": y.tolist(), "t": t.tolist(), "names": names, "x.grad": _grad(x),
            "w.grad": _grad(w)}


def strided_add_on_non_leaf(T):
    x = _leaf(T, (6,))
    y = x * 3
    r = y[::2]
    r.add_(1)
    names = (_name(y), _name(r), _ver(y))
    (y * y).sum().backward()
    return {"y": y.tolist(), "names": names, "x.grad": _grad(x)}


def stale_view_regenerated(T):
    x = _leaf(T, (2, 3))
    y = x * 2
    v = y.view(6)
    y.mul_(3)
    names = (_name(v), _ver(v))
    v.sum().backward()
    return {"v": v.tolist(), "names": names, "x.grad": _grad(x)}


def stale_view_as_root(T):
    x = _leaf(T, (2, 3))
    y = x * 2
    v = y[1]
    y.mul_(x.detach() + 1)
    v.backward(T.ones(3, dtype=T.float64))
    return {"v": v.tolist(), "names": (_name(v),), "x.grad": _grad(x)}


def two_views_modified(T):
    x = _leaf(T, (3,))
    y = x * 1
    v1 = y[:2]
    v2 = y[1:]
    v1.mul_(2)
    v2.mul_(3)
    names = (_name(v1), _name(v2), _name(y), _ver(y))
    (y * T.arange(3.0, dtype=T.float64)).sum().backward()
    return {"y": y.tolist(), "v1": v1.tolist(), "names": names, "x.grad": _grad(x)}


def backward_through_view_and_base(T):
    x = _leaf(T, (2, 3))
    w = _leaf(T, (3,))
    y = x * 1
    v = y[1]
    v.mul_(w)
    (v * v).sum().backward(retain_graph=True)
    first = (_grad(x), _grad(w))
    (y * _weights(T, (2, 3))).sum().backward()
    return {"first": first, "x.grad": _grad(x), "w.grad": _grad(w), "names": (_name(v), _name(y))}


def retain_graph_twice(T):
    x = _leaf(T, (2, 2))
    y = x.exp()
    z = y * 1
    z[0].mul_(x[1])
    s = (z * z).sum()
    s.backward(retain_graph=True)
    s.backward()
    return {"z": np.round(z.detach().numpy(), 10).tolist(),
            "x.grad": np.round(x.grad.numpy(), 8).tolist()}


def write_then_read_sibling(T):
    w = _leaf(T, (4,))
    z = T.zeros(3, 4, dtype=T.float64)
    v = z[0]
    z[1] = w
    names = (v.requires_grad, v.is_leaf, _name(v), _name(z))
    (z[1] * v + z[1]).sum().backward()
    return {"names": names, "w.grad": _grad(w)}


def retained_grad_of_base(T):
    x = _leaf(T, (2, 3))
    y = x * 1
    y.retain_grad()
    y[0].mul_(2)
    (y * 3).sum().backward()
    return {"y.grad": _grad(y), "x.grad": _grad(x)}


def unsqueezed_and_reshaped(T):
    x = _leaf(T, (2, 3))
    y = x * 1
    u = y.unsqueeze(0)
    u.add_(1)
    r = y.view(3, 2)
    r[2].mul_(5)
    names = (_name(u), _name(r), _name(y), _ver(y))
    (y * _weights(T, (2, 3))).sum().backward()
    return {"y": y.tolist(), "names": names, "x.grad": _grad(x)}


def detached_view_write(T):
    x = _leaf(T, (3,))
    w = _leaf(T, (2,))
    d = x.detach()
    e = d[0:2]
    e.add_(w)
    names = (_name(d), _name(e), _name(x), x.is_leaf)
    (d * 2).sum().backward()
    return {"x": x.tolist(), "names": names, "w.grad": _grad(w), "x.grad": _grad(x)}


def saved_output_through_view(T):
    x = _leaf(T, (2, 3))
    y = x * 1
    v = y[0]
    v.exp_()
    y.sum().backward()
    return {"x.grad": np.round(x.grad.numpy(), 10).tolist(), "names": (_name(v), _name(y))}


def view_of_leaf_refused(T):
    x = _leaf(T, (3,))
    x[:2].mul_(2)


def view_made_under_no_grad_refused(T):
    x = _leaf(T, (3,))
    y = x * 1
    with T.no_grad():
        n = y[:2]
    n.mul_(2)


def plain_view_made_under_no_grad_refused(T):
    z = T.zeros(3, 4, dtype=T.float64)
    with T.no_grad():
        n = z[0]
    n.add_(_leaf(T, (4,)))


def broadcast_view_refused(T):
    y = _leaf(T, (2, 3)) * 1
    y.expand(2, 2, 3).add_(1)


def saved_output_overwritten(T):
    x = _leaf(T, (2, 3))
    y = x * 1
    v = y[0]
    v.exp_()
    v.add_(1)
    y.sum().backward()


def under_no_grad_not_recorded(T):
    x = _leaf(T, (2, 3))
    y = x * 1
    with T.no_grad():
        y[0].mul_(2)
        y.t()[1].add_(1)
    names = (_name(y), _ver(y))
    y.sum().backward()
    return {"y": y.tolist(), "names": names, "x.grad": _grad(x)}


SCENARIOS: dict[str, Callable] = {f.__name__: f for f in (
    view_of_leaf_refused, view_made_under_no_grad_refused, plain_view_made_under_no_grad_refused,
    broadcast_view_refused, saved_output_overwritten, under_no_grad_not_recorded,
    clone_row_mul, column_iadd, view_iadd_then_use, setitem_row, setitem_into_view, view_of_view,
    transposed_view, strided_add_on_non_leaf, stale_view_regenerated, stale_view_as_root,
    two_views_modified, backward_through_view_and_base, retain_graph_twice,
    write_then_read_sibling, retained_grad_of_base, unsqueezed_and_reshaped, detached_view_write,
    saved_output_through_view)}

# PyTorch 2.13.0's observations of the scenarios (tuples printed as lists).
EXPECTED: dict[str, Any] = {
    'view_of_leaf_refused':
        ['raises',
         'RuntimeError',
         'a view of a leaf Variable that requires grad is being used in an in-place operation.'],
    'view_made_under_no_grad_refused':
        ['raises',
         'RuntimeError',
         'A view was created in no_grad mode and is being modified inplace with grad mode enabled. '
         'Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify '
         'your code by moving both the view and the inplace either both inside the no_grad block '
         "(if you don't want the inplace to be tracked) or both outside (if you want the inplace "
         'to be tracked).'],
    'plain_view_made_under_no_grad_refused':
        ['raises',
         'RuntimeError',
         'A view was created in no_grad mode and is being modified inplace with grad mode enabled. '
         'Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify '
         'your code by moving both the view and the inplace either both inside the no_grad block '
         "(if you don't want the inplace to be tracked) or both outside (if you want the inplace "
         'to be tracked).'],
    'broadcast_view_refused':
        ['raises',
         'RuntimeError',
         'unsupported operation: more than one element of the written-to tensor refers to a single '
         'memory location. Please clone() the tensor before performing the operation.'],
    'saved_output_overwritten':
        ['raises',
         'RuntimeError',
         'one of the variables needed for gradient computation has been modified by an inplace '
         'operation: [torch.DoubleTensor [3]], which is output 0 of Exp, is at version 2; expected '
         'version 1 instead. Hint: enable anomaly detection to find the operation that failed to '
         'compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).'],
    'under_no_grad_not_recorded':
        {'y': [[2.0, 5.0, 6.0], [4.0, 6.0, 6.0]],
         'names': ['MulBackward0', 2],
         'x.grad': [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]},
    'clone_row_mul':
        {'z': [[2.0, 4.0, 6.0], [4.0, 5.0, 6.0]],
         'names': ['torch::autograd::CopySlices', 'AsStridedBackward0', 1, 1],
         'x.grad': [[4.0, 6.0, 8.0], [5.0, 1.0, 2.0]]},
    'column_iadd':
        {'z': [[0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]],
         'names': ['torch::autograd::CopySlices', 2],
         'w.grad': [3.0, 2.0, 1.0]},
    'view_iadd_then_use':
        {'z': [[0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]],
         'names': ['torch::autograd::CopySlices', 'AsStridedBackward0', 1, True, False],
         'w.grad': [2.0, 4.0, 6.0]},
    'setitem_row':
        {'h': [[2.0, 4.0, 6.0, 8.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
         'names': ['torch::autograd::CopySlices', 1],
         'w.grad': [4.0, 6.0, 8.0, 10.0]},
    'setitem_into_view':
        {'y': [[1.0, 2.0, 3.0, 4.0], [5.0, 1.0, 4.0, 8.0], [9.0, 10.0, 11.0, 12.0]],
         'names': ['torch::autograd::CopySlices', 'AsStridedBackward0', 1],
         'x.grad': [[2.0, 3.0, 4.0, 5.0], [1.0, 0.0, 0.0, 4.0], [5.0, 1.0, 2.0, 3.0]],
         'w.grad': [4.0, 12.0]},
    'view_of_view':
        {'y': [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 14.0, 24.0], [9.0, 10.0, 11.0, 12.0]],
         'a': [[2.0, 3.0, 4.0], [6.0, 14.0, 24.0], [10.0, 11.0, 12.0]],
         'names': ['torch::autograd::CopySlices', 'AsStridedBackward0', 'AsStridedBackward0', 1, 1],
         'x.grad': [[2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 6.0, 12.0], [5.0, 1.0, 2.0, 3.0]],
         'w.grad': [12.0, 21.0, 32.0]},
    'transposed_view':
        {'y': [[2.0, 3.0, 4.0], [5.0, 11.0, 7.0]],
         't': [[2.0, 5.0], [3.0, 11.0], [4.0, 7.0]],
         'names': ['torch::autograd::CopySlices', 'AsStridedBackward0', 2],
         'x.grad': [[2.0, 3.0, 4.0], [5.0, 2.0, 2.0]],
         'w.grad': [6.0, 5.0]},
    'strided_add_on_non_leaf':
        {'y': [4.0, 6.0, 10.0, 12.0, 16.0, 18.0],
         'names': ['torch::autograd::CopySlices', 'AsStridedBackward0', 1],
         'x.grad': [24.0, 36.0, 60.0, 72.0, 96.0, 108.0]},
    'stale_view_regenerated':
        {'v': [6.0, 12.0, 18.0, 24.0, 30.0, 36.0],
         'names': ['AsStridedBackward0', 1],
         'x.grad': [[6.0, 6.0, 6.0], [6.0, 6.0, 6.0]]},
    'stale_view_as_root':
        {'v': [40.0, 60.0, 84.0],
         'names': ['AsStridedBackward0'],
         'x.grad': [[0.0, 0.0, 0.0], [10.0, 12.0, 14.0]]},
    'two_views_modified':
        {'y': [2.0, 12.0, 9.0],
         'v1': [2.0, 12.0],
         'names': ['AsStridedBackward0', 'AsStridedBackward0', 'torch::autograd::CopySlices', 2],
         'x.grad': [0.0, 6.0, 6.0]},
    'backward_through_view_and_base':
        {'first': [[[0.0, 0.0, 0.0], [8.0, 40.0, 108.0]], [32.0, 100.0, 216.0]],
         'x.grad': [[2.0, 3.0, 4.0], [13.0, 42.0, 114.0]],
         'w.grad': [52.0, 105.0, 228.0],
         'names': ['AsStridedBackward0', 'torch::autograd::CopySlices']},
    'retain_graph_twice':
        {'z': [[8.1548454854, 29.5562243957], [20.0855369232, 54.5981500331]],
         'x.grad': [[266.00601956, 3494.28160212], [1702.38384716, 12797.4023487]]},
    'write_then_read_sibling':
        {'names': [True, False, 'AsStridedBackward0', 'torch::autograd::CopySlices'],
         'w.grad': [1.0, 1.0, 1.0, 1.0]},
    'retained_grad_of_base':
        {'y.grad': [[3.0, 3.0, 3.0], [3.0, 3.0, 3.0]],
         'x.grad': [[6.0, 6.0, 6.0], [3.0, 3.0, 3.0]]},
    'unsqueezed_and_reshaped':
        {'y': [[2.0, 3.0, 4.0], [5.0, 30.0, 35.0]],
         'names': ['AsStridedBackward0', 'AsStridedBackward0', 'torch::autograd::CopySlices', 2],
         'x.grad': [[2.0, 3.0, 4.0], [5.0, 5.0, 10.0]]},
    'detached_view_write':
        {'x': [2.0, 4.0, 3.0],
         'names': ['torch::autograd::CopySlices', 'AsStridedBackward0', None, True],
         'w.grad': [2.0, 2.0],
         'x.grad': None},
    'saved_output_through_view':
        {'x.grad': [[2.7182818285, 7.3890560989, 20.0855369232], [1.0, 1.0, 1.0]],
         'names': ['AsStridedBackward0', 'torch::autograd::CopySlices']},
}


def _plain(v: Any) -> Any:
    """Tuples as lists, as the recorded observations print them."""
    if isinstance(v, (tuple, list)):
        return [_plain(a) for a in v]
    if isinstance(v, dict):
        return {k: _plain(a) for k, a in v.items()}
    return v


def observe(scenario: Callable, T: Any) -> Any:
    """What ``scenario(T)`` lets a user observe (tuples as lists), or ["raises", exception
    type, message]. Shared with the other recorded-PyTorch scenario tables."""
    try:
        return _plain(scenario(T))
    except Exception as err:  # noqa: BLE001  (the error is the observation)
        return ["raises", type(err).__name__, str(err)]


def _observe(name: str, T: Any) -> Any:
    return observe(SCENARIOS[name], T)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_matches_recorded_pytorch(name: str) -> None:
    assert _observe(name, gg) == EXPECTED[name]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_matches_live_pytorch(name: str) -> None:
    torch = pytest.importorskip("torch")
    assert _observe(name, gg) == _observe(name, torch)


# ---------------------------------------------------------------- gradients of recorded writes


def _row_times_w(x, w):
    y = x * 1
    y[0].mul_(w)
    return y * y


def _view_chain(x, w):
    y = x.sin()
    y.t()[1:].add_(w[1:, None])  # a transposed, sliced view; the write broadcasts
    a = y[:, ::2]
    a[1].mul_(w[:2])
    return y * a.sum()


def _setitem_into_view(x, w):
    y = x * 2
    v = y.view(6)
    v[1:4] = w * w
    return y.sin()


def _stale_view(x, w):
    y = x * w[:3]
    v = y[1]
    y.mul_(w[2])  # rebases y: v is stale and replayed when used
    return v * v


GRADCHECKED = [_row_times_w, _view_chain, _setitem_into_view, _stale_view]


def _inputs(T):
    rng = np.random.default_rng(5)
    x = T.tensor(rng.uniform(0.5, 1.5, (2, 3)), requires_grad=True)
    w = T.tensor(rng.uniform(0.5, 1.5, (3,)), requires_grad=True)
    return x, w


@pytest.mark.parametrize("fn", GRADCHECKED)
def test_gradcheck_through_copyslices(fn: Callable) -> None:
    x, w = _inputs(gg)
    assert gradcheck(fn, (x, w))
    assert gradgradcheck(fn, (x, w))


@pytest.mark.parametrize("fn", GRADCHECKED)
def test_gradchecked_functions_match_pytorch(fn: Callable) -> None:
    torch = pytest.importorskip("torch")
    x, w = _inputs(torch)
    assert torch.autograd.gradcheck(fn, (x, w))
    gx, gw = _inputs(gg)
    out, ref = fn(gx, gw), fn(x, w)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    assert out.grad_fn.name() == ref.grad_fn.name()
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), x.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gw.grad.numpy(), w.grad.numpy(), rtol=1e-12)
