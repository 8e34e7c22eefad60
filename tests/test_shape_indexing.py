"""Shape and indexing operations: forward values against numpy float64, gradients by gradcheck.

Tables cover every index form (ints, slices with any step, None, ..., masks, index
arrays alone, broadcast together and non-adjacent) and every shape operation over
0-d, size-1, zero-size and rank-4 inputs, contiguous or not (transposed, strided,
reversed). Views are checked for shared memory and a shared version counter;
errors against PyTorch's messages; the last tests compare with PyTorch itself
when it is installed.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd.gradcheck import gradcheck, gradgradcheck
from gradgen.ops import indexing as PI
from gradgen.ops.registry import Aval

S = slice
N = None
E = Ellipsis
M34 = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, False]])
M3 = np.array([True, False, True])
M23 = np.array([[True, False, True], [False, True, True]])

# (shape, index, numpy reference or None when numpy's x[index] is the reference)
GETITEM = [
    ((5,), 2, None), ((5,), -1, None), ((5,), S(1, 4), None), ((5,), S(None, None, 2), None),
    ((5,), S(None, None, -1), None), ((5,), S(4, 0, -2), None), ((5,), S(-2, None), None),
    ((5,), S(10, 20), None), ((5,), S(3, 1), None), ((5,), S(None, None, -3), None),
    ((3, 4), (1, 2), None), ((3, 4), (S(None), 1), None), ((3, 4), (N, 1), None),
    ((3, 4), (E, N), None), ((3, 4), (1, E), None), ((3, 4), (), None), ((3, 4), E, None),
    ((3, 4), (S(None, None, -1), S(1, None, 2)), None), ((3, 4), (S(None), S(None)), None),
    ((), N, None), ((), E, None), ((), (), None), ((), (N, E, N), None),
    ((1,), 0, None), ((1, 1), (0, S(None)), None), ((0, 3), S(None), None),
    ((0, 3), (S(None), 1), None), ((2, 0), 1, None), ((2, 0), (S(None), S(None, None, -1)), None),
    ((2, 3, 4, 5), (1, S(None), N, S(1, 4), -1), None), ((2, 3, 4, 5), (E, 2), None),
    ((2, 3, 4, 5), (S(None, None, -1), E, S(None, None, -2)), None),
    # advanced: one index array
    ((5,), [0, 2, 2], None), ((5,), np.array([-1, 0]), None), ((5,), np.array([[0, 1], [4, 3]]), None),
    ((5,), np.array([], np.int64), None), ((3, 4), (S(None), [3, 0, 3]), None),
    ((3, 4), (S(None, None, -1), [0, 3]), None), ((2, 3, 4), (E, np.array([[1], [3]])), None),
    ((1,), [0, 0, 0], None), ((0, 3), np.array([], np.int64), None),
    # several index arrays, broadcast together, adjacent or not
    ((3, 4), ([0, 2], [1, 3]), None), ((3, 4), (np.array([[0], [2]]), np.array([1, 3])), None),
    ((2, 3, 4), ([0, 1], S(None), [1, 2]), None), ((2, 3, 4), (S(None), [0, 1], [1, -1]), None),
    ((2, 3, 4, 5), ([0, 1], S(None), [1, 2], S(None)), None),
    ((2, 3, 4, 5), (S(None), np.array([[0], [2]]), [1, 3], S(1, 3)), None),
    ((2, 3, 4, 5), ([1], S(None), S(None), [4, 0]), None),
    # PyTorch applies integers before index arrays (numpy treats them as index arrays)
    ((2, 3, 4), (0, S(None), [1, 2]), lambda a: a[0][:, [1, 2]]),
    ((2, 3, 4), ([1, 0], 2, [3, 3]), lambda a: a[:, 2][[1, 0], [3, 3]]),
    ((2, 3, 4), ([1], N, [1]), lambda a: a[:, None][[1], :, [1]]),
    ((2, 3, 4), (S(None), N, [1, 2]), lambda a: a[:, None][:, :, [1, 2]]),
    # boolean masks
    ((3, 4), M34, None), ((3, 4), (S(None), M34[0]), None), ((2, 3, 4), M23, None),
    ((3, 4), (M3, [1, 2]), None), ((2, 3, 4), (S(None), M3, S(1, 3)), None),
    ((3, 4), np.zeros((3, 4), bool), None), ((3, 4), True, lambda a: a[None]),
    ((3, 4), False, lambda a: a[None][:0]), ((), True, lambda a: a[None]),
    ((3, 4), np.array(True), lambda a: a[None]),
]


def _negative_step(idx: Any) -> bool:
    return any(isinstance(i, slice) and i.step is not None and i.step < 0
               for i in (idx if isinstance(idx, tuple) else (idx,)))


# PyTorch refuses negative steps (it has no negative strides): those indices check the refusal.
NEGATIVE_STEPS = [c for c in GETITEM if _negative_step(c[1])]
GETITEM = [c for c in GETITEM if not _negative_step(c[1])]


def _ids(table: list) -> list[str]:
    return [f"{i}-{c[0]}" for i, c in enumerate(table)]


def _values(shape: tuple) -> np.ndarray:
    return (np.arange(int(np.prod(shape)), dtype=np.float64) * 0.5 - 1.0).reshape(shape)


def _layouts(arr: np.ndarray) -> dict[str, np.ndarray]:
    """The same values in four memory layouts (each a view where numpy allows)."""
    nd = arr.ndim
    big = np.zeros(tuple(2 * s for s in arr.shape))
    every_other = (S(None, None, 2),) * nd + (E,)
    big[every_other] = arr
    flip = (S(None, None, -1),) * nd + (E,)
    return {"contiguous": arr, "transposed": np.array(arr.T, order="C").T,
            "strided": big[every_other], "reversed": np.array(arr[flip], order="C")[flip]}


def _gg_index(idx: Any) -> Any:
    """The same index with numpy arrays and lists replaced by gradgen tensors."""
    if isinstance(idx, tuple):
        return tuple(_gg_index(i) for i in idx)
    if isinstance(idx, np.ndarray):
        return gg.tensor(idx.tolist(), dtype=gg.bool if idx.dtype == bool else gg.int64)
    if isinstance(idx, list):
        return gg.tensor(idx, dtype=gg.int64)
    return idx


def _over(arr: np.ndarray) -> gg.Tensor:
    """A tensor over ``arr`` itself; the "reversed" layout has negative strides, which no public
    constructor accepts (as in PyTorch) but kernels and views must still handle (numpy hands
    them to gradgen's internals, e.g. from np.flip)."""
    return gg.from_numpy(arr) if min(arr.strides, default=0) >= 0 else gg.Tensor._make(arr)


def _leaf(arr: np.ndarray) -> gg.Tensor:
    return _over(arr).requires_grad_()


# ---------------------------------------------------------------- getitem


@pytest.mark.parametrize("shape,idx,ref", GETITEM, ids=_ids(GETITEM))
def test_getitem_forward(shape: tuple, idx: Any, ref: Callable | None) -> None:
    base = _values(shape)
    want = base[idx] if ref is None else ref(base)
    for name, arr in _layouts(base).items():
        for index in (idx, _gg_index(idx)):
            got = _over(arr)[index]
            assert got.shape == want.shape, (name, index)
            np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("shape,idx,ref", GETITEM, ids=_ids(GETITEM))
def test_getitem_gradient(shape: tuple, idx: Any, ref: Callable | None) -> None:
    if not np.prod(shape):
        pytest.skip("nothing to differentiate")
    for arr in _layouts(_values(shape)).values():
        x = _leaf(arr)
        assert gradcheck(lambda t: t[_gg_index(idx)], (x,))


def test_getitem_double_backward() -> None:
    x = _leaf(_values((3, 4)))
    for idx in [(S(None, None, 2), 1), ([0, 2, 2], S(1, None)), (np.array([[0], [2]]), [1, 3])]:
        assert gradgradcheck(lambda t: t[_gg_index(idx)] ** 2, (x,))


def test_gather_saves_only_its_indices() -> None:
    x = gg.arange(4.0, dtype=gg.float64).requires_grad_()
    h = x * 2
    y = h[gg.tensor([3, 0])]
    with gg.no_grad():
        h.add_(1)  # PyTorch's IndexBackward0 saves the indices only: this write is harmless
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 0.0, 2.0]


def test_duplicate_indices_accumulate() -> None:
    x = gg.ones(3, dtype=gg.float64, requires_grad=True)
    x[gg.tensor([0, 2, 0, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


BASIC_VIEWS = [0, -1, S(1, None), S(None, None, 2), (E, 1), (N, 0), (1, S(1, None, 2)), ()]


@pytest.mark.parametrize("idx", BASIC_VIEWS, ids=str)
def test_basic_index_is_view(idx: Any) -> None:
    x = gg.arange(12.0).reshape(3, 4)
    v = x[idx]
    assert np.shares_memory(v.numpy(), x.numpy())
    assert v._version is x._version
    v[...] = 100.0
    assert x._version.value == 1
    np.testing.assert_array_equal(x.numpy()[idx], 100.0)


@pytest.mark.parametrize("idx", [[0, 1], (S(None), [1]), np.array([True, False, True])], ids=str)
def test_advanced_index_copies(idx: Any) -> None:
    x = gg.arange(12.0).reshape(3, 4)
    v = x[_gg_index(idx)]
    assert not np.shares_memory(v.numpy(), x.numpy())
    assert v._version is not x._version


def test_logits_target_pattern() -> None:
    logits = _leaf(np.random.default_rng(0).normal(size=(4, 5)))
    target = gg.tensor([1, 0, 4, 4])
    picked = logits[gg.arange(4), target]
    np.testing.assert_array_equal(picked.numpy() if not picked.requires_grad else picked.detach().numpy(),
                                  logits.detach().numpy()[np.arange(4), [1, 0, 4, 4]])
    assert picked.grad_fn.name() == "IndexBackward0"
    assert gradcheck(lambda t: t[gg.arange(4), target], (logits,))


GETITEM_NAMES = [
    (0, "SelectBackward0"), ((0, 1), "SelectBackward0"), (S(1, None), "SliceBackward0"),
    (S(None), "SliceBackward0"), ((S(None), S(0, 2)), "SliceBackward0"), ((S(None), S(0, 3)), "AliasBackward0"),
    ((), "AliasBackward0"), (E, "AliasBackward0"), (N, "UnsqueezeBackward0"), ((0, N), "UnsqueezeBackward0"),
    ((N, 0), "SelectBackward0"), ([0, 1], "IndexBackward0"), (True, "IndexBackward0"),
    (np.array([True, False]), "IndexBackward0"),
]


@pytest.mark.parametrize("idx,name", GETITEM_NAMES, ids=str)
def test_getitem_grad_fn_names(idx: Any, name: str) -> None:
    x = gg.zeros(2, 3, dtype=gg.float64, requires_grad=True) * 1
    assert x[_gg_index(idx)].grad_fn.name() == name


# ---------------------------------------------------------------- shape operations

# (name, gradgen function, numpy reference, input shape, is a view)
SHAPE_OPS = [
    ("reshape", lambda t: t.reshape(4, -1), lambda a: a.reshape(4, -1), (2, 3, 4), True),
    ("reshape_tuple", lambda t: gg.reshape(t, (24,)), lambda a: a.reshape(24), (2, 3, 4), True),
    ("reshape_0d", lambda t: t.reshape(1, 1), lambda a: a.reshape(1, 1), (), True),
    ("reshape_to_0d", lambda t: t.reshape(()), lambda a: a.reshape(()), (1, 1), True),
    ("reshape_empty", lambda t: t.reshape(3, 0, 5), lambda a: a.reshape(3, 0, 5), (0, 5, 3), True),
    ("view", lambda t: t.view(-1, 2), lambda a: a.reshape(-1, 2), (2, 3, 4), True),
    ("view_as", lambda t: t.view_as(gg.zeros(6, 4)), lambda a: a.reshape(6, 4), (2, 3, 4), True),
    ("flatten", lambda t: t.flatten(), lambda a: a.reshape(-1), (2, 3, 4), True),
    ("flatten_mid", lambda t: t.flatten(1, 2), lambda a: a.reshape(2, 12, 1), (2, 3, 4, 1), True),
    ("flatten_0d", lambda t: t.flatten(), lambda a: a.reshape(1), (), True),
    ("unflatten", lambda t: t.unflatten(1, (2, -1)), lambda a: a.reshape(2, 2, 3), (2, 6), True),
    ("transpose", lambda t: t.transpose(0, 2), lambda a: a.transpose(2, 1, 0), (2, 3, 4), True),
    ("swapaxes", lambda t: gg.swapaxes(t, -1, 0), lambda a: a.swapaxes(-1, 0), (2, 3), True),
    ("permute", lambda t: t.permute(2, 0, 1, 3), lambda a: a.transpose(2, 0, 1, 3), (2, 3, 4, 1), True),
    ("permute_tuple", lambda t: gg.permute(t, (1, 0)), lambda a: a.T, (2, 3), True),
    ("t", lambda t: t.t(), lambda a: a.T, (2, 3), True),
    ("t_1d", lambda t: t.t(), lambda a: a, (3,), True),
    ("T", lambda t: t.T, lambda a: a.T, (2, 3), True),
    ("mT", lambda t: t.mT, lambda a: a.swapaxes(-1, -2), (2, 3, 4), True),
    ("movedim", lambda t: t.movedim(0, -1), lambda a: np.moveaxis(a, 0, -1), (2, 3, 4), True),
    ("movedim_multi", lambda t: t.movedim((0, 1), (2, 0)), lambda a: np.moveaxis(a, (0, 1), (2, 0)),
     (2, 3, 4), True),
    ("unsqueeze", lambda t: t.unsqueeze(1), lambda a: a[:, None], (2, 3), True),
    ("unsqueeze_neg", lambda t: t.unsqueeze(-1), lambda a: a[..., None], (2, 3), True),
    ("unsqueeze_0d", lambda t: t.unsqueeze(0), lambda a: a[None], (), True),
    ("squeeze_all", lambda t: t.squeeze(), lambda a: a.squeeze(), (1, 3, 1, 2), True),
    ("squeeze_dim", lambda t: t.squeeze(2), lambda a: a.squeeze(2), (1, 3, 1, 2), True),
    ("squeeze_noop", lambda t: t.squeeze(1), lambda a: a, (1, 3, 1, 2), True),
    ("squeeze_tuple", lambda t: t.squeeze((0, -2)), lambda a: a.squeeze((0, 2)), (1, 3, 1, 2), True),
    ("expand", lambda t: t.expand(2, 3, -1), lambda a: np.broadcast_to(a, (2, 3, 4)), (3, 4), True),
    ("expand_ones", lambda t: t.expand(4, 2, 3), lambda a: np.broadcast_to(a, (4, 2, 3)), (1, 1, 3), True),
    ("expand_as", lambda t: t.expand_as(gg.zeros(2, 4)), lambda a: np.broadcast_to(a, (2, 4)), (4,), True),
    ("broadcast_to", lambda t: gg.broadcast_to(t, (2, 3)), lambda a: np.broadcast_to(a, (2, 3)), (), True),
    ("flip", lambda t: t.flip(0), lambda a: a[::-1], (3, 4), False),
    ("flip_many", lambda t: gg.flip(t, dims=(0, -1)), lambda a: a[::-1, :, ::-1], (2, 3, 4), False),
    ("narrow", lambda t: t.narrow(1, 1, 2), lambda a: a[:, 1:3], (2, 4), True),
    ("narrow_neg", lambda t: t.narrow(-1, -2, 2), lambda a: a[:, 2:4], (2, 4), True),
    ("select", lambda t: t.select(1, -1), lambda a: a[:, -1], (2, 4), True),
    ("repeat", lambda t: t.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)), (2, 3), False),
    ("repeat_zero", lambda t: t.repeat(2, 0), lambda a: np.tile(a, (2, 0)), (3,), False),
    ("tile", lambda t: t.tile((2,)), lambda a: np.tile(a, 2), (2, 3), False),
    ("cat", lambda t: gg.cat([t, t * 2], 1), lambda a: np.concatenate([a, a * 2], 1), (2, 3), False),
    ("cat_neg", lambda t: gg.cat((t, t[:1]), -2), lambda a: np.concatenate([a, a[:1]], 0), (2, 3), False),
    ("cat_empty", lambda t: gg.cat([t, t[:0]]), lambda a: a, (2, 3), False),
    ("cat_legacy_empty", lambda t: gg.cat([gg.zeros(0, dtype=gg.float64), t]), lambda a: a, (2, 3), False),
    ("concat", lambda t: gg.concat([t, t], dim=0), lambda a: np.concatenate([a, a]), (2, 3), False),
    ("stack", lambda t: gg.stack([t, t * 2]), lambda a: np.stack([a, a * 2]), (2, 3), False),
    ("stack_last", lambda t: gg.stack([t, t], -1), lambda a: np.stack([a, a], -1), (2, 3), False),
    ("stack_0d", lambda t: gg.stack([t, t]), lambda a: np.stack([a, a]), (), False),
    ("index_select", lambda t: t.index_select(1, gg.tensor([2, 0, 2])), lambda a: a[:, [2, 0, 2]], (2, 3), False),
    ("take", lambda t: t.take(gg.tensor([[0, 5], [-1, 2]])), lambda a: a.reshape(-1)[[[0, 5], [5, 2]]],
     (2, 3), False),
    ("gather", lambda t: t.gather(1, gg.tensor([[2, 0, 2, 1], [0, 0, 1, 1]])),
     lambda a: np.take_along_axis(a, np.array([[2, 0, 2, 1], [0, 0, 1, 1]]), 1), (2, 3), False),
    ("gather_small", lambda t: t.gather(0, gg.tensor([[1], [0]])), lambda a: a[[1, 0], :1], (2, 3), False),
    ("gather_empty", lambda t: t.gather(1, gg.zeros(2, 0, 3, dtype=gg.int64)), lambda a: a[:, :0], (2, 0, 3), False),
    ("gather_into_empty", lambda t: t.gather(0, gg.zeros(0, 2, dtype=gg.int64)), lambda a: a[:0, :2], (3, 4), False),
]


@pytest.mark.parametrize("name,fn,ref,shape,is_view", SHAPE_OPS, ids=[c[0] for c in SHAPE_OPS])
def test_shape_op_forward(name: str, fn: Callable, ref: Callable, shape: tuple, is_view: bool) -> None:
    base = _values(shape)
    want = ref(base)
    for layout, arr in _layouts(base).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # x.T on non-matrices
            x = _over(arr)
            try:
                got = fn(x)
            except RuntimeError as e:
                assert name.startswith("view") and "view size is not compatible" in str(e), layout
                continue
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want)
        if is_view and layout == "contiguous" and want.size:
            assert np.shares_memory(got.numpy(), x.numpy()) and got._version is x._version, name
        if not is_view and want.size:
            assert not np.shares_memory(got.numpy(), x.numpy()), name


@pytest.mark.parametrize("name,fn,ref,shape,is_view", SHAPE_OPS, ids=[c[0] for c in SHAPE_OPS])
def test_shape_op_gradient(name: str, fn: Callable, ref: Callable, shape: tuple, is_view: bool) -> None:
    for layout, arr in _layouts(_values(shape)).items():
        if name.startswith("view") and layout != "contiguous":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert gradcheck(fn, (_leaf(arr),)), layout


SPLITS = [
    ("split", lambda t: t.split(2, 1), lambda a: [a[:, 0:2], a[:, 2:4], a[:, 4:5]], (2, 5)),
    ("split_sizes", lambda t: gg.split(t, [1, 0, 4], dim=-1), lambda a: [a[:, :1], a[:, 1:1], a[:, 1:]], (2, 5)),
    ("split_big", lambda t: t.split(7), lambda a: [a], (2, 5)),
    ("chunk", lambda t: t.chunk(3, 1), lambda a: [a[:, 0:2], a[:, 2:4], a[:, 4:5]], (2, 5)),
    ("chunk_more", lambda t: gg.chunk(t, 4), lambda a: [a[0:1], a[1:2]], (2, 5)),
    ("chunk_empty", lambda t: t.chunk(2), lambda a: [a, a], (0, 3)),
    ("unbind", lambda t: t.unbind(1), lambda a: [a[:, i] for i in range(3)], (2, 3)),
    ("unbind_empty", lambda t: gg.unbind(t), lambda a: [], (0, 3)),
    ("broadcast_tensors", lambda t: gg.broadcast_tensors(t, t[:1] * 2, t[0, 0]),
     lambda a: np.broadcast_arrays(a, a[:1] * 2, a[0, 0]), (2, 3)),
]


@pytest.mark.parametrize("name,fn,ref,shape", SPLITS, ids=[c[0] for c in SPLITS])
def test_multi_output_ops(name: str, fn: Callable, ref: Callable, shape: tuple) -> None:
    base = _values(shape)
    x = gg.from_numpy(base)
    got, want = fn(x), ref(base)
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(g.numpy(), w)
    if name.startswith(("split", "chunk", "unbind")):
        assert all(np.shares_memory(g.numpy(), base) and g._version is x._version for g in got if g.numel())
    if base.size and want:
        assert gradcheck(lambda t: tuple(o * (i + 1) for i, o in enumerate(fn(t))), (_leaf(base),))


SHAPE_NAMES = [
    (lambda t: t.reshape(6), "ViewBackward0"), (lambda t: t.t().reshape(6), "UnsafeViewBackward0"),
    (lambda t: t.view(3, 2), "ViewBackward0"), (lambda t: t.flatten(), "ViewBackward0"),
    (lambda t: t.unflatten(1, (3, 1)), "ViewBackward0"), (lambda t: t.transpose(0, 1), "TransposeBackward0"),
    (lambda t: t.permute(1, 0), "PermuteBackward0"), (lambda t: t.t(), "TBackward0"),
    (lambda t: t.T, "PermuteBackward0"), (lambda t: t.mT, "TransposeBackward0"),
    (lambda t: t.unsqueeze(0), "UnsqueezeBackward0"), (lambda t: t.squeeze(), "SqueezeBackward0"),
    (lambda t: t.squeeze(0), "SqueezeBackward1"), (lambda t: t.squeeze((0,)), "SqueezeBackward2"),
    (lambda t: t.expand(2, 2, 3), "ExpandBackward0"), (lambda t: gg.cat([t, t]), "CatBackward0"),
    (lambda t: gg.stack([t, t]), "StackBackward0"), (lambda t: t.split(1)[0], "SplitBackward0"),
    (lambda t: t.split([1, 1])[1], "SplitWithSizesBackward0"), (lambda t: t.chunk(2)[0], "SplitBackward0"),
    (lambda t: t.unbind()[0], "UnbindBackward0"), (lambda t: t.flip(0), "FlipBackward0"),
    (lambda t: t.narrow(1, 0, 2), "SliceBackward0"), (lambda t: t.movedim(0, 1), "PermuteBackward0"),
    (lambda t: t.repeat(2, 1), "RepeatBackward0"), (lambda t: t.select(0, 1), "SelectBackward0"),
    (lambda t: t.index_select(0, gg.tensor([1])), "IndexSelectBackward0"),
    (lambda t: t.take(gg.tensor([1])), "TakeBackward0"),
    (lambda t: t.gather(0, gg.tensor([[1]])), "GatherBackward0"),
]


@pytest.mark.parametrize("fn,name", SHAPE_NAMES, ids=[n for _, n in SHAPE_NAMES])
def test_shape_grad_fn_names(fn: Callable, name: str) -> None:
    x = gg.zeros(2, 3, requires_grad=True) * 1
    assert fn(x).grad_fn.name() == name


def test_flatten_and_broadcast_return_input_itself() -> None:
    x = gg.zeros(3)
    assert x.flatten() is x and x.flatten(0, 0) is x
    assert gg.broadcast_tensors(x)[0] is x


def test_cat_promotes() -> None:
    a = gg.ones(2, dtype=gg.int32)
    assert gg.cat([a, gg.ones(1, dtype=gg.int64)]).dtype is gg.int64
    out = gg.cat([a, gg.ones(1, dtype=gg.float64, requires_grad=True)])
    assert out.dtype is gg.float64 and out.tolist() == [1.0, 1.0, 1.0]
    assert gg.stack([gg.ones(2), gg.zeros(2, dtype=gg.float64)]).dtype is gg.float64


def test_flip_owns_its_memory() -> None:
    x = gg.arange(4.0)
    y = x.flip(0)
    y[0] = 10.0
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0] and y._version is not x._version


def test_view_of_view_shares_version_counter() -> None:
    x = gg.arange(24.0)
    v = x.view(2, 3, 4)[1].transpose(0, 1)[::2].unsqueeze(0).expand(2, 2, 3)
    assert v._version is x._version and v._base is x
    x[0] = 5.0
    assert v._version.value == 1


# ---------------------------------------------------------------- primitives

PRIMS = [
    ("slice", lambda t: PI.slice_(t, starts=(1, 0), stops=(3, 4), steps=(1, 3)), lambda a: a[1:3, 0:4:3], (3, 4)),
    ("slice_empty", lambda t: PI.slice_(t, starts=(2, 1), stops=(2, 1), steps=(1, 2)), lambda a: a[2:2, 1:1], (3, 4)),
    ("pad", lambda t: PI.pad(t, lo=(1, 0), hi=(0, 2), interior=(0, 1)), None, (2, 3)),
    ("pad_empty", lambda t: PI.pad(t, lo=(1, 2), hi=(1, 0), interior=(2, 0)), None, (0, 2)),
    ("rev", lambda t: PI.rev(t, axes=(1,)), lambda a: a[:, ::-1], (3, 4)),
    ("concatenate", lambda t: PI.concatenate(t, t * 3, t[:, :1], axis=1),
     lambda a: np.concatenate([a, a * 3, a[:, :1]], 1), (3, 4)),
    ("take", lambda t: PI.take(t, np.array([[2, -1], [0, 0]]), axis=1), lambda a: a[:, [[2, 3], [0, 0]]], (3, 4)),
    ("scatter_add", lambda t: PI.scatter_add(t, np.array([1, -1, 1]), shape=(2,), axis=0), None, (3,)),
    ("scatter_add_2d", lambda t: PI.scatter_add(t, np.array([[0, 2], [2, 2]]), shape=(3, 3), axis=1), None, (3, 2, 2)),
]


def _pad_ref(a: np.ndarray, lo: tuple, hi: tuple, interior: tuple) -> np.ndarray:
    out = np.zeros(tuple(l + h + n + max(n - 1, 0) * i for n, l, h, i in zip(a.shape, lo, hi, interior)))
    out[tuple(S(l, l + (n - 1) * (i + 1) + 1 if n else l, i + 1) for n, l, i in zip(a.shape, lo, interior))] = a
    return out


def test_pad_and_scatter_references() -> None:
    a = _values((2, 3))
    np.testing.assert_array_equal(PRIMS[2][1](gg.from_numpy(a)).numpy(), _pad_ref(a, (1, 0), (0, 2), (0, 1)))
    u = np.array([1.0, 2.0, 4.0])
    np.testing.assert_array_equal(PI.scatter_add(gg.from_numpy(u), np.array([1, -1, 1]), shape=(2,), axis=0).numpy(),
                                  [0.0, 7.0])
    got = PRIMS[8][1](gg.from_numpy(_values((3, 2, 2)))).numpy()
    want = np.zeros((3, 3))
    np.add.at(want, (S(None), np.array([[0, 2], [2, 2]])), _values((3, 2, 2)))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,fn,ref,shape", PRIMS, ids=[p[0] for p in PRIMS])
def test_primitive_gradients(name: str, fn: Callable, ref: Callable | None, shape: tuple) -> None:
    base = _values(shape)
    if ref is not None:
        np.testing.assert_array_equal(fn(gg.from_numpy(base)).numpy(), ref(base))
    if base.size:
        assert gradcheck(fn, (_leaf(base),))
        assert gradgradcheck(lambda t: fn(t) ** 2, (_leaf(base),))


def test_primitive_shape_rules_reject_misuse() -> None:
    f32, f64, i64 = Aval((2, 3), gg.float32), Aval((2, 3), gg.float64), Aval((2,), gg.int64)
    assert PI.take.abstract_eval(f32, Aval((4, 1), gg.int64), axis=1) == Aval((2, 4, 1), gg.float32)
    assert PI.pad.abstract_eval(f32, lo=(1, 0), hi=(0, 2), interior=(0, 1)).shape == (3, 7)
    with pytest.raises(TypeError, match="slice"):
        PI.slice_.abstract_eval(f32, starts=(0, 2), stops=(2, 1), steps=(1, 1))
    with pytest.raises(TypeError, match="non-negative"):
        PI.pad.abstract_eval(f32, lo=(0, -1), hi=(0, 0), interior=(0, 0))
    with pytest.raises(TypeError, match="dtypes differ"):
        PI.concatenate.abstract_eval(f32, f64, axis=0)
    with pytest.raises(TypeError, match="integer"):
        PI.take.abstract_eval(f32, f32, axis=0)
    with pytest.raises(TypeError, match="should have shape"):
        PI.scatter_add.abstract_eval(f32, i64, shape=(5,), axis=0)
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 0 with size 2"):
        PI.take(gg.zeros(2, 3), np.array([0, 2]), axis=0)
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 0 with size 3"):
        PI.scatter_add(gg.zeros(1), np.array([-4]), shape=(3,), axis=0)


# ---------------------------------------------------------------- setitem



def _set(idx: Any) -> Callable:
    def setter(a: np.ndarray, v: Any) -> None:
        a[idx] = v
    return setter


def _set_first_then(idx: Any) -> Callable:
    def setter(a: np.ndarray, v: Any) -> None:
        a[0][idx] = v  # PyTorch's order: the integer selects before the index arrays gather
    return setter


# (shape, index, value builder, numpy setter)
SETITEM = [
    ((3, 4), 1, lambda: 7.0, _set(1)), ((3, 4), (S(None), 2), lambda: np.arange(3.0), _set((S(None), 2))),
    ((3, 4), (S(None, None, 2), S(1, None, 2)), lambda: np.ones((2, 2)) * 5, _set((S(None, None, 2), S(1, None, 2)))),
    ((3, 4), E, lambda: np.arange(4.0), _set(E)), ((3, 4), S(None), lambda: 2.0, _set(E)),
    ((3, 4), (N, 0), lambda: np.ones((1, 1, 4)), _set((N, 0))),
    ((3, 4), [2, 0], lambda: np.arange(8.0).reshape(2, 4), _set([2, 0])),
    ((3, 4), ([0, 2], [1, 3]), lambda: np.array([10.0, 20.0]), _set(([0, 2], [1, 3]))),
    ((2, 3, 4), ([0, 1], S(None), [1, 2]), lambda: np.arange(3.0), _set(([0, 1], S(None), [1, 2]))),
    ((2, 3, 4), (0, S(None), [1, 2]), lambda: np.ones((3, 2)), _set_first_then((S(None), [1, 2]))),
    ((3, 4), M34, lambda: np.arange(6.0), _set(M34)), ((3, 4), (M3, S(1, 3)), lambda: -1.0, _set((M3, S(1, 3)))),
    ((), E, lambda: 3.0, _set(E)), ((), N, lambda: np.array([2.0]), _set(E)),
    ((0, 3), S(None), lambda: 1.0, _set(E)),
]


def _np_set(a: np.ndarray, setter: Callable, value: Any) -> np.ndarray:
    out = a.copy()
    v = np.asarray(value)
    while v.ndim and v.shape[0] == 1 and v.ndim > 1:
        v = v[0]  # PyTorch drops leading size-1 dims of the value
    setter(out, v if out.ndim or v.ndim == 0 else v.reshape(()))
    return out


@pytest.mark.parametrize("shape,idx,value,setter", SETITEM, ids=_ids(SETITEM))
def test_setitem_forward(shape: tuple, idx: Any, value: Callable, setter: Callable) -> None:
    base = _values(shape)
    v = value()
    want = _np_set(base, setter, v)
    for arr in _layouts(base).values():
        x = _over(arr.copy() if arr is base else arr)
        x[_gg_index(idx)] = gg.from_numpy(v) if isinstance(v, np.ndarray) else v
        np.testing.assert_array_equal(x.numpy(), want)
        assert x._version.value == 1


@pytest.mark.parametrize("shape,idx,value,setter", SETITEM, ids=_ids(SETITEM))
def test_setitem_gradient(shape: tuple, idx: Any, value: Callable, setter: Callable) -> None:
    base = _values(shape)
    v = np.asarray(value(), np.float64)
    x, val = _leaf(base), _leaf(v.copy())

    def f(t: gg.Tensor, w: gg.Tensor) -> gg.Tensor:
        h = t * 1.5
        h[_gg_index(idx)] = w
        return h * h

    if base.size:
        assert gradcheck(f, (x, val))
    h = x * 1
    h[_gg_index(idx)] = val
    if isinstance(idx, (list, np.ndarray)):
        assert h.grad_fn.name() == "IndexPutBackward0"
    np.testing.assert_array_equal(h.detach().numpy(), _np_set(base, setter, v))


def test_setitem_records_on_plain_tensor() -> None:
    w = gg.ones(2, dtype=gg.float64, requires_grad=True)
    o = gg.zeros(3, 2, dtype=gg.float64)
    o[1] = w * 3
    assert o.grad_fn.name() == "torch::autograd::CopySlices" and not o.is_leaf and o._version.value == 1
    assert repr(o.grad_fn).startswith("<CopySlices object at")
    (o * gg.arange(6.0, dtype=gg.float64).reshape(3, 2)).sum().backward()
    assert w.grad.tolist() == [6.0, 9.0]


def test_setitem_then_backward_through_old_value() -> None:
    x = gg.arange(6.0, dtype=gg.float64).requires_grad_()
    h = x.exp()  # saves its output: but the write replaces h's history, not its saved data
    h2 = h * 2
    h2[1:3] = 0.0
    h2.sum().backward()
    expected = 2 * np.exp(np.arange(6.0))
    expected[1:3] = 0
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_setitem_retains_grad_moves_to_new_node() -> None:
    x = gg.ones(3, requires_grad=True)
    h = x * 2
    h.retain_grad()
    h[0] = 5.0
    (h * 3).sum().backward()
    assert h.grad.tolist() == [3.0, 3.0, 3.0]
    assert x.grad.tolist() == [0.0, 6.0, 6.0]


def test_setitem_own_view_is_a_noop_write() -> None:
    x = gg.arange(6.0).reshape(2, 3)
    row = x[0]
    row += 1  # in-place on the view, then Python writes it back: x[0] = row
    x[0] = row
    assert x.tolist() == [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]
    y = gg.arange(6.0).reshape(2, 3)
    y[1] += 10
    assert y.tolist() == [[0.0, 1.0, 2.0], [13.0, 14.0, 15.0]]


def test_setitem_casts_like_pytorch() -> None:
    x = gg.zeros(3, dtype=gg.int64)
    x[0] = 2.7
    x[1:] = gg.tensor([1.5, -2.5])
    assert x.tolist() == [2, 1, -2]


def test_setitem_without_grad_mode_on_leaf() -> None:
    x = gg.zeros(3, requires_grad=True)
    with gg.no_grad():
        x[0] = 1.0
    assert x.is_leaf and x.requires_grad and x._version.value == 1 and x.tolist() == [1.0, 0.0, 0.0]


def test_setitem_into_detached_alias() -> None:
    x = gg.zeros(3, requires_grad=True)
    d = x.detach()
    d[0] = 4.0
    assert x.tolist()[0] == 4.0 and x.is_leaf


def test_setitem_into_a_view_rebases_its_base() -> None:
    # PyTorch's CopySlices on the base, the view's grad_fn replayed (see test_inplace_views.py).
    x = gg.zeros(3, requires_grad=True)
    h = x * 1
    v = h[:2]
    v[0] = 1.0
    assert h.tolist() == [1.0, 0.0, 0.0] and h._version.value == 1
    assert h.grad_fn.name() == "torch::autograd::CopySlices" and v.grad_fn.name() == "AsStridedBackward0"
    h.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0]
    z = gg.zeros(3, 2)
    w = gg.ones((), requires_grad=True)
    z[0][0] = w
    assert z.grad_fn.name() == "torch::autograd::CopySlices" and z.requires_grad
    (z * 5).sum().backward()
    assert w.grad.item() == 5.0


# (setup returning (tensor, index, value), exception, message)
SETITEM_ERRORS = [
    (lambda: (gg.zeros(3, requires_grad=True), 0, 1.0), RuntimeError,
     "a view of a leaf Variable that requires grad is being used in an in-place operation."),
    (lambda: (gg.zeros(3, requires_grad=True), [0], 1.0), RuntimeError,
     "a leaf Variable that requires grad is being used in an in-place operation."),
    (lambda: (gg.zeros(3, requires_grad=True), E, 1.0), RuntimeError,
     "a leaf Variable that requires grad is being used in an in-place operation."),
    (lambda: (gg.zeros(3, requires_grad=True)[:2], 0, 1.0), RuntimeError,
     "a view of a leaf Variable that requires grad is being used in an in-place operation."),
    (lambda: (gg.zeros(3, 4), 0, gg.ones(5)), RuntimeError,
     "The expanded size of the tensor (4) must match the existing size (5) at non-singleton "
     "dimension 0.  Target sizes: [4].  Tensor sizes: [5]"),
    (lambda: (gg.zeros(2, 3), 0, gg.ones(2, 3)), RuntimeError,
     "expand(torch.FloatTensor{[2, 3]}, size=[3]): the number of sizes provided (1) must be "
     "greater or equal to the number of dimensions in the tensor (2)"),
    (lambda: (gg.zeros(2, 3), [0], gg.ones(2, 3)), RuntimeError,
     "shape mismatch: value tensor of shape [2, 3] cannot be broadcast to indexing result of shape [1, 3]"),
    (lambda: (gg.zeros(2, 3), [0], gg.ones(3, dtype=gg.float64)), RuntimeError,
     "Index put requires the source and destination dtypes match, got Float for the destination "
     "and Double for the source."),
    (lambda: (gg.zeros(2, 3), 0, [1, 2, 3]), TypeError, "can't assign a list to a torch.FloatTensor"),
    (lambda: (gg.zeros(2, 3), 0, np.ones(3)), TypeError, "can't assign a numpy.ndarray to a torch.FloatTensor"),
    (lambda: (gg.zeros(2, 3), 5, 1.0), IndexError, "index 5 is out of bounds for dimension 0 with size 2"),
]


@pytest.mark.parametrize("setup,exc,msg", SETITEM_ERRORS, ids=[m[:40] for _, _, m in SETITEM_ERRORS])
def test_setitem_errors(setup: Callable, exc: type, msg: str) -> None:
    x, idx, value = setup()
    with pytest.raises(exc) as info:
        x[idx] = value
    assert msg in str(info.value)


def test_setitem_into_expanded_tensor() -> None:
    e = gg.zeros(4).expand(3, 4)
    e[0] = 1.0  # a row of an expanded tensor has no repeated element: PyTorch writes it
    assert e.tolist() == [[1.0] * 4] * 3
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e[:, 0] = 2.0


def test_integer_and_bool_tensors_index_like_floats() -> None:
    x = gg.arange(12).reshape(3, 4)
    assert x[1, 1::2].tolist() == [5, 7] and x[[2, 0], 1].tolist() == [9, 1]
    b = x > 5
    assert b[b].tolist() == [True] * 6 and b[0].dtype is gg.bool
    x[x > 9] = -1
    assert x[2].tolist() == [8, 9, -1, -1]


def test_setitem_overlap_errors() -> None:
    a = gg.arange(6.0).reshape(2, 3)
    with pytest.raises(RuntimeError, match="some elements of the input tensor and the written-to tensor"):
        a[0, :2] = a[0, 1:]
    a[:, 0] = a[:, 1]  # not dense: PyTorch lets it through, and so do we (numpy copies safely)
    assert a.tolist() == [[1.0, 1.0, 2.0], [4.0, 4.0, 5.0]]


# ---------------------------------------------------------------- errors

X = gg.arange(24.0).reshape(2, 3, 4)
V = gg.arange(4.0)
S0 = gg.tensor(3.0)
ERRORS = [
    (lambda: X[5], IndexError, "index 5 is out of bounds for dimension 0 with size 2"),
    (lambda: X[-3], IndexError, "index -3 is out of bounds for dimension 0 with size 2"),
    (lambda: X[:, 5], IndexError, "index 5 is out of bounds for dimension 1 with size 3"),
    (lambda: X[:, [5]], IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    (lambda: X[[0], :, [7]], IndexError, "index 7 is out of bounds for dimension 1 with size 4"),
    (lambda: X[gg.tensor([0]), gg.tensor([-4])], IndexError, "index -4 is out of bounds for dimension 1 with size 3"),
    (lambda: X[0, 0, 0, 0], IndexError, "too many indices for tensor of dimension 3"),
    (lambda: S0[0], IndexError, "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
     "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number"),
    (lambda: X[gg.tensor([1.0])], IndexError, "tensors used as indices must be long, int, byte or bool tensors"),
    (lambda: X[[0, 1], [0, 1, 2]], IndexError,
     "shape mismatch: indexing tensors could not be broadcast together with shapes [2], [3]"),
    (lambda: X[gg.tensor([True, False, True])], IndexError,
     "The shape of the mask [3] at index 0 does not match the shape of the indexed tensor [2, 3, 4] at index 0"),
    (lambda: X[1.5], IndexError, "only integers, slices (`:`), ellipsis (`...`), None and long or byte "
     "Variables are valid indices (got float)"),
    (lambda: X[::0], ValueError, "slice step cannot be zero"),
    (lambda: X.reshape(-1, -1), RuntimeError, "only one dimension can be inferred"),
    (lambda: X.reshape(5, -1), RuntimeError, "shape '[5, -1]' is invalid for input of size 24"),
    (lambda: X.reshape(-2, 12), RuntimeError, "invalid shape dimension -2 at index 0 of shape [-2, 12]"),
    (lambda: gg.zeros(0, 3).reshape(0, -1), RuntimeError, "cannot reshape tensor of 0 elements into shape "
     "[0, -1] because the unspecified dimension size -1 can be any value and is ambiguous"),
    (lambda: X.transpose(0, 1).view(-1), RuntimeError, "view size is not compatible with input tensor's "
     "size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead."),
    (lambda: X.view(5, 5), RuntimeError, "shape '[5, 5]' is invalid for input of size 24"),
    (lambda: X.unflatten(1, (2, 2)), RuntimeError,
     "unflatten: Provided sizes [2, 2] don't multiply up to the size of dim 1 (3) in the input tensor"),
    (lambda: X.flatten(2, 1), RuntimeError, "flatten() has invalid args: start_dim cannot come after end_dim"),
    (lambda: X.permute(0, 1), RuntimeError, "permute(sparse_coo): number of dimensions in the tensor input "
     "does not match the length of the desired ordering of dimensions i.e. input.dim() = 3 is not equal to len(dims) = 2"),
    (lambda: X.permute(0, 0, 1), RuntimeError, "permute(): duplicate dims are not allowed."),
    (lambda: X.t(), RuntimeError, "t() expects a tensor with <= 2 dimensions, but self is 3D"),
    (lambda: V.mT, RuntimeError, "tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor."),
    (lambda: X.transpose(0, 3), IndexError, "Dimension out of range (expected to be in range of [-3, 2], but got 3)"),
    (lambda: X.unsqueeze(4), IndexError, "Dimension out of range (expected to be in range of [-4, 3], but got 4)"),
    (lambda: X.squeeze((0, 0)), RuntimeError, "dim 0 appears multiple times in the list of dims"),
    (lambda: V.expand(-1, 4), RuntimeError,
     "The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension 0"),
    (lambda: V.expand(2, 5), RuntimeError, "The expanded size of the tensor (5) must match the existing size "
     "(4) at non-singleton dimension 1.  Target sizes: [2, 5].  Tensor sizes: [4]"),
    (lambda: X.expand(2, 3), RuntimeError, "expand(torch.FloatTensor{[2, 3, 4]}, size=[2, 3]): the number of "
     "sizes provided (2) must be greater or equal to the number of dimensions in the tensor (3)"),
    (lambda: gg.broadcast_tensors(V, X[0, :, :3]), RuntimeError,
     "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1"),
    (lambda: gg.cat([X[0], V]), RuntimeError, "Tensors must have same number of dimensions: got 2 and 1"),
    (lambda: gg.cat([X[0], X[0, :2, :3]]), RuntimeError, "Sizes of tensors must match except in dimension 0. "
     "Expected size 4 but got size 3 for tensor number 1 in the list."),
    (lambda: gg.cat([]), ValueError, "torch.cat(): expected a non-empty list of Tensors"),
    (lambda: gg.cat([S0, S0]), RuntimeError, "zero-dimensional tensor (at position 0) cannot be concatenated"),
    (lambda: gg.cat(V), TypeError, "cat(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor"),
    (lambda: gg.cat([V, 1]), TypeError, "expected Tensor as element 1 in argument 0, but got int"),
    (lambda: gg.cat([V, V], 1), IndexError, "Dimension out of range (expected to be in range of [-1, 0], but got 1)"),
    (lambda: gg.stack([]), RuntimeError, "stack expects a non-empty TensorList"),
    (lambda: gg.stack([X[0], V]), RuntimeError,
     "stack expects each tensor to be equal size, but got [3, 4] at entry 0 and [4] at entry 1"),
    (lambda: V.split([1, 1]), RuntimeError, "split_with_sizes expects split_sizes to sum exactly to 4 "
     "(input tensor's size at dimension 0), but got split_sizes=[1, 1]"),
    (lambda: V.split(0), RuntimeError, "split_size can only be 0 if dimension size is 0, but got dimension size of 4"),
    (lambda: V.chunk(0), RuntimeError, "chunk expects `chunks` to be greater than 0, got: 0"),
    (lambda: S0.unbind(), IndexError, "Dimension specified as 0 but tensor has no dimensions"),
    (lambda: X.flip(0, 0), RuntimeError, "dim 0 appears multiple times in the list of dims"),
    (lambda: V.narrow(0, 2, 3), RuntimeError, "start (2) + length (3) exceeds dimension size (4)."),
    (lambda: V.narrow(0, -5, 1), IndexError, "start out of range (expected to be in range of [-4, 4], but got -5)"),
    (lambda: S0.narrow(0, 0, 1), RuntimeError, "narrow() cannot be applied to a 0-dim tensor."),
    (lambda: X.movedim((0, 0), (1, 2)), RuntimeError, "movedim: repeated dim in `source` ([0, 0])"),
    (lambda: X.movedim((0, 1), (1,)), RuntimeError, "movedim: Invalid source or destination dims: source "
     "([0, 1] dims) should contain the same number of dims as destination ([1] dims)"),
    (lambda: X.repeat(2), RuntimeError, "Number of dimensions of repeat dims can not be smaller than number "
     "of dimensions of tensor"),
    (lambda: X.select(1, 5), IndexError, "select(): index 5 out of range for tensor of size [2, 3, 4] at dimension 1"),
    (lambda: X.index_select(1, gg.tensor([3])), RuntimeError, "INDICES element is out of DATA bounds, id=3 axis_dim=3"),
    (lambda: X.index_select(1, gg.tensor([[0]])), IndexError, "index_select(): Index is supposed to be a vector"),
    (lambda: V.take(gg.tensor([4])), IndexError, "out of range: tried to access index 4 on a tensor of 4 elements."),
    (lambda: X.gather(1, gg.tensor([0])), RuntimeError, "Index tensor must have the same number of dimensions as input tensor"),
    (lambda: X[0].gather(1, gg.tensor([[4]])), RuntimeError, "index 4 is out of bounds for dimension 1 with size 4"),
]


@pytest.mark.parametrize("fn,exc,msg", ERRORS, ids=[m[:50] for _, _, m in ERRORS])
def test_errors(fn: Callable, exc: type, msg: str) -> None:
    with pytest.raises(exc) as info:
        fn()
    assert str(info.value) == msg


def test_T_warns_like_pytorch() -> None:
    with pytest.warns(UserWarning, match="The use of `x.T` on tensors of dimension other than 2"):
        assert X.T.shape == (4, 3, 2)
    with pytest.warns(UserWarning, match="Tensor.T is deprecated on 0-D tensors"):
        assert S0.T.shape == ()


def test_list_of_sequences_is_a_tuple() -> None:
    with pytest.warns(UserWarning, match="Using a non-tuple sequence for multidimensional indexing"):
        out = X[[[0, 1], [0, 1]]]
    assert out.shape == (2, 4)


def test_repeated_ellipsis_matches_nothing_after_the_first() -> None:
    assert X[..., 0, ...].shape == (2, 3) and X[0, ..., 0, ...].shape == (3,)


# ---------------------------------------------------------------- against PyTorch

TORCH_INDEXES = [
    "[0]", "[0, 1]", "[1:]", "[:, 1:]", "[None]", "[..., None]", "[:, ::2, 1]", "[torch.tensor(1)]",
    "[torch.tensor([1])]", "[[0, 1]]", "[0, :, [1, 2]]", "[[0], :, [1, 2]]", "[:, [0, 1], [1, 2]]",
    "[[1], None, [1]]", "[:, None, [1, 2]]", "[[[0, 1]], [[0], [1]]]", "[torch.tensor([True, False])]",
    "[:, torch.tensor([True, False, True])]", "[True]", "[False]", "[()]", "[:]", "[:, 0:3]",
    "[[0, 1], torch.tensor([True, False, True])]", "[1:0]", "[[]]", "[..., 0, ...]",
    "[torch.tensor([[True, False, True], [True, True, False]])]",
]


@pytest.mark.parametrize("expr", TORCH_INDEXES)
def test_getitem_against_torch(expr: str) -> None:
    torch = pytest.importorskip("torch")
    base = _values((2, 3, 4))
    tx = torch.tensor(base, requires_grad=True)
    gx = gg.tensor(base, dtype=gg.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_out = eval("(tx * 1)" + expr, {"torch": torch, "tx": tx})
        g_out = eval("(gx * 1)" + expr, {"torch": gg, "gx": gx})
    assert tuple(g_out.shape) == tuple(t_out.shape)
    np.testing.assert_array_equal(g_out.detach().numpy(), t_out.detach().numpy())
    assert g_out.grad_fn.name() == t_out.grad_fn.name()
    weights = np.random.default_rng(1).normal(size=tuple(t_out.shape))
    (t_out * torch.tensor(weights)).sum().backward()
    (g_out * gg.tensor(weights, dtype=gg.float64)).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy())


TORCH_SETITEMS = [
    ("[0]", "5.0"), ("[:, 1]", "w[:2]"), ("[[0, 1], [1, 2]]", "w[:2]"), ("[x > 0]", "7.0"),
    ("[..., ::2]", "w[:, :2]"), ("[0, :, [1, 3]]", "w[:, 1:3]"), ("[...]", "w"), ("[:]", "3.0"),
    ("[None, 1]", "w[0, 0]"),
]


@pytest.mark.parametrize("idx,value", TORCH_SETITEMS)
def test_setitem_against_torch(idx: str, value: str) -> None:
    torch = pytest.importorskip("torch")
    base = _values((2, 3, 4))
    wbase = _values((3, 4)) + 10

    def run(lib: Any, x: Any, w: Any) -> Any:
        h = x * 2
        exec(f"h{idx} = {value}", {"h": h, "x": x, "w": w})
        (h * h).sum().backward()
        return h

    tx, tw = torch.tensor(base, requires_grad=True), torch.tensor(wbase, requires_grad=True)
    gx = gg.tensor(base, dtype=gg.float64, requires_grad=True)
    gw = gg.tensor(wbase, dtype=gg.float64, requires_grad=True)
    th, gh = run(torch, tx, tw), run(gg, gx, gw)
    np.testing.assert_array_equal(gh.detach().numpy(), th.detach().numpy())
    assert gh.grad_fn.name() == th.grad_fn.name()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy())
    if tw.grad is None:
        assert gw.grad is None
    else:
        np.testing.assert_allclose(gw.grad.numpy(), tw.grad.numpy())


def test_shape_ops_against_torch() -> None:
    torch = pytest.importorskip("torch")
    exprs = ["x.reshape(6, -1)", "x.transpose(0, 1).reshape(-1)", "x.flatten(1)", "x.permute(2, 0, 1)",
             "x.unsqueeze(-1)", "x[:, :1].squeeze()", "x[:, :1].squeeze(1)", "x[:, :1].squeeze((0, 1))",
             "x[0, 0].expand(2, -1)", "torch.cat([x, x], -1)", "torch.stack([x, x], 1)", "x.flip(0, 2)",
             "x.narrow(2, 1, 2)", "x.movedim((0, 1), (2, 0))", "x.repeat(2, 1, 1, 2)", "x.mT",
             "x.unflatten(2, (2, -1))", "x.chunk(2, 2)[1]", "x.split([1, 2], 1)[1]", "x.unbind(2)[3]",
             "x.gather(2, torch.tensor([[[0, 3]]]).expand(2, 3, 2))", "x.index_select(1, torch.tensor([2, 0]))"]
    base = _values((2, 3, 4))
    for expr in exprs:
        tx = torch.tensor(base, requires_grad=True)
        gx = gg.tensor(base, dtype=gg.float64, requires_grad=True)
        t_out = eval(expr, {"torch": torch, "x": tx * 1})
        g_out = eval(expr, {"torch": gg, "x": gx * 1})
        assert tuple(g_out.shape) == tuple(t_out.shape), expr
        np.testing.assert_array_equal(g_out.detach().numpy(), t_out.detach().numpy(), err_msg=expr)
        assert g_out.grad_fn.name() == t_out.grad_fn.name(), expr


@pytest.mark.parametrize("shape,idx,ref", NEGATIVE_STEPS, ids=_ids(NEGATIVE_STEPS))
def test_negative_steps_are_refused_as_in_pytorch(shape: tuple, idx: Any, ref: Any) -> None:
    x = _leaf(_values(shape))
    for index in (idx, _gg_index(idx)):
        with pytest.raises(ValueError, match="^step must be greater than zero$"):
            x[index]
        with pytest.raises(ValueError, match="^step must be greater than zero$"):
            x.detach()[index] = 1.0


@pytest.mark.parametrize("make", [gg.from_numpy, gg.tensor, gg.as_tensor])
def test_negative_strides_are_refused_as_in_pytorch(make: Callable) -> None:
    with pytest.raises(ValueError, match="^At least one stride in the given numpy array is "
                                         "negative, and tensors with negative strides"):
        make(np.arange(6.0).reshape(2, 3)[:, ::-1])
    assert make(np.arange(6.0)[::2]).tolist() == [0.0, 2.0, 4.0]  # positive strides are fine


def test_errors_against_torch() -> None:
    torch = pytest.importorskip("torch")
    exprs = ["x[5]", "x[:, [5]]", "x[[0], [5]]", "x[0, 0, 0, 0]", "x.reshape(5, -1)", "x.view(-1, 7)",
             "x.transpose(0, 1).view(-1)", "x.permute(0, 0, 1)", "x.expand(2, 3)", "x[0].expand(3, 5)",
             "torch.cat([x, x[0]])", "torch.cat([x, x[:, :2]], 2)", "torch.stack([x, x[0]])",
             "x.split([1, 2], 2)", "x.narrow(1, 2, 2)", "x[torch.tensor([[True, False, True]])]",
             "x.gather(1, torch.tensor([[[3]]]))", "x.take(torch.tensor([24]))", "x[::-1]",
             "x[:, 1:, ::-2]", "x[[0, 1], ::-1]", "x.__setitem__((0, slice(None, None, -1)), 1.0)",
             "torch.from_numpy(np.zeros((2, 3))[:, ::-1])", "torch.tensor(np.zeros(3)[::-1])",
             "torch.as_tensor(np.zeros(3)[::-1])"]
    for expr in exprs:
        with pytest.raises(Exception) as t_info:
            eval(expr, {"torch": torch, "x": torch.zeros(2, 3, 4), "np": np})
        with pytest.raises(Exception) as g_info:
            eval(expr, {"torch": gg, "x": gg.zeros(2, 3, 4), "np": np})
        assert type(g_info.value) is type(t_info.value), expr
        assert str(g_info.value) == str(t_info.value), expr


# ---------------------------------------------------------------- tracing

def _traced_fn(x: gg.Tensor, i: gg.Tensor, j: gg.Tensor, k: gg.Tensor) -> tuple:
    a = x[i, j]
    b = x.flip(1)[1:, j]
    c = x.gather(1, k[None].expand(3, -1))
    h = x * 2
    h[i, 1:] = a[:, None] * 10
    h[0] = 5.0
    return a, b, c, h.sum(0), gg.cat([x, x[:1]]).flip(0), gg.stack(x.unbind(1)).chunk(2)[1]


def test_traced_indexing_follows_the_index_tensors() -> None:
    from gradgen.ir import check, run
    from gradgen.ir.trace_inputs import input_values
    x = gg.tensor(np.arange(12.0).reshape(3, 4))
    prog = check(gg.trace(_traced_fn, x, gg.tensor([0, 2]), gg.tensor([1, -1]), gg.tensor([1, 2])))
    args = (x, gg.tensor([2, 1]), gg.tensor([3, 0]), gg.tensor([3, 0]))
    got = run(prog, *input_values(prog, *args))
    for g, w in zip(got, _traced_fn(*args)):
        np.testing.assert_array_equal(g, w.numpy())


# ---------------------------------------------------------------- random indexes against PyTorch

def _random_index(rng: np.random.Generator, shape: tuple, lib: Any) -> tuple:
    items = []
    for i in range(int(rng.integers(1, 4))):
        n = shape[min(i, len(shape) - 1)] if shape else 1
        r = rng.random()
        if r < 0.2:
            items.append(int(rng.integers(-n - 1, n + 1)))
        elif r < 0.45:
            pick = [None, int(rng.integers(-n - 1, n + 2))]
            items.append(slice(pick[int(rng.integers(2))], pick[int(rng.integers(2))] if rng.random() < 0.5
                               else None, [None, 1, 2, 3][int(rng.integers(4))]))
        elif r < 0.55:
            items.append(None)
        elif r < 0.6 and Ellipsis not in items:
            items.append(Ellipsis)
        elif r < 0.85:
            items.append(lib.tensor(rng.integers(-max(n, 1), max(n, 1), int(rng.integers(0, 4))).tolist(),
                                    dtype=lib.int64))
        else:
            items.append(lib.tensor((rng.random(n) < 0.5).tolist(), dtype=lib.bool))
    return tuple(items)


def _outcome(fn: Callable) -> tuple:
    try:
        return ("ok",) + fn()
    except Exception as e:  # noqa: BLE001  (the error itself is compared)
        return ("error", type(e).__name__, str(e))


@pytest.mark.parametrize("seed", range(4))
def test_random_indexes_against_torch(seed: int) -> None:
    """Random index tuples: values, grad_fn names, gradients and errors (reads and writes)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    for _ in range(150):
        shape = tuple(int(s) for s in rng.integers(0, 4, int(rng.integers(0, 5))))
        state = rng.bit_generator.state
        base = _values(shape)
        results = []
        for lib in (torch, gg):
            rng.bit_generator.state = state
            index = _random_index(rng, shape, lib)
            x = lib.tensor(base, dtype=lib.float64, requires_grad=True)

            def read() -> tuple:
                out = (x * 1)[index]
                (out * 2).sum().backward()
                return tuple(out.shape), out.detach().numpy().tolist(), out.grad_fn.name(), x.grad.numpy().tolist()

            def write() -> tuple:
                h = x * 1
                h[index] = -7.0
                (h * 3).sum().backward()
                return h.detach().numpy().tolist(), h.grad_fn.name(), x.grad.numpy().tolist()

            x.grad = None
            r = _outcome(read)
            x.grad = None
            results.append((r, _outcome(write)))
        assert results[0] == results[1], (shape, index)


@pytest.mark.parametrize("make", [
    lambda h: h.tile(1), lambda h: h.tile((1, 1)), lambda h: h.tile((1, 1, 1)),
    lambda h: h.repeat(1, 1), lambda h: h.repeat(2, 1),  # (3, 1) -> (6, 1): stride 0 inside
    lambda h: h.T.repeat(1, 2), lambda h: h.T.repeat(3, 1), lambda h: h.repeat(1, 1, 2),
])
def test_repeat_owns_its_memory_as_in_pytorch(make: Callable) -> None:
    """repeat/tile copy (PyTorch's RepeatBackward0 result is a new contiguous tensor), also
    when every repeat is 1 or only size-1 axes repeat (a reshape alone would be a view): a
    write into the result leaves the input alone, and the gradient is the repeats' sum."""
    x = gg.tensor([[1.0], [2.0], [3.0]], requires_grad=True)
    h = x * 1.0
    y = make(h)
    assert not np.shares_memory(y.detach().numpy(), h.detach().numpy()) and y.is_contiguous()
    assert type(y.grad_fn).__name__ == "RepeatBackward0"
    count = y.numel() // 3
    y.add_(100.0)
    np.testing.assert_array_equal(h.detach().numpy(), [[1.0], [2.0], [3.0]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 1), float(count)))


def test_contiguous_copy_of_an_expanded_tensor_is_c_contiguous() -> None:
    """clone/contiguous keep the memory order of a dense tensor (a transpose stays one) but
    give an expanded (stride-0) tensor row-major storage, as PyTorch does."""
    e = gg.ones(1, 3).expand(2, 3)
    assert e.contiguous().is_contiguous() and e.clone().is_contiguous()
    t = gg.arange(6.0).reshape(2, 3).T
    assert not t.clone().is_contiguous() and t.contiguous().is_contiguous()
    # the PyTorch idiom: transpose, contiguous, view (contiguous copied in memory order)
    np.testing.assert_array_equal(t.contiguous().view(6).numpy(), [0, 3, 1, 4, 2, 5])
