"""Reductions: forward values against numpy float64, gradients against central differences.

The main table sweeps every reduction over shapes (0-d, size-1, zero-size, rank up to 4),
dims (None, single, negative, tuples, empty tuple) and keepdim. Sample points avoid
ties and zeros; ties, zeros, NaN and infinities have their own tests, written against
PyTorch's rules. The last tests compare with PyTorch itself when it is installed.
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd.gradcheck import gradcheck, gradgradcheck

INF = math.inf
SHAPES = [(), (1,), (5,), (3, 1), (2, 3), (2, 0, 3), (2, 3, 4), (2, 1, 3, 2)]


def _dims(shape: tuple) -> list[Any]:
    """None, every single dim (positive and negative), a pair of dims, and ()."""
    n = len(shape)
    out: list[Any] = [None, ()]
    out += [d for d in range(-max(n, 1), max(n, 1))]
    if n >= 2:
        out += [(0, -1)]
    if n >= 3:
        out += [(-2, 0), (1, 2, 0)]
    return out


def _axes(dim: Any, ndim: int, empty_is_all: bool = True) -> tuple[int, ...]:
    if dim is None or (dim == () and empty_is_all):
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else dim
    return tuple(sorted({d % ndim for d in dims})) if ndim else ()


def _sample(shape: tuple, seed: int = 0) -> np.ndarray:
    """Distinct values of magnitude in [0.5, 1.5], mixed signs: no ties, no zeros."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    mags = 0.5 + rng.permutation(n) / max(n, 1)
    return (mags * rng.choice([-1.0, 1.0], n)).reshape(shape)


def _leaf(a: np.ndarray, requires_grad: bool = True) -> gg.Tensor:
    return gg.from_numpy(np.array(a, dtype=np.float64)).requires_grad_(requires_grad)


# ---------------------------------------------------------------- numpy references

def _ref_var(x: np.ndarray, axes: tuple, c: float) -> np.ndarray:
    n = int(np.prod([x.shape[a] for a in axes]))
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.sum(x, axis=axes, keepdims=True) / n
        return np.sum((x - m) ** 2, axis=axes) / max(0.0, n - c)


def _ref_norm(x: np.ndarray, axes: tuple, p: float) -> np.ndarray:
    a = np.abs(x)
    if p == INF:
        return np.max(a, axis=axes)
    if p == -INF:
        return np.min(a, axis=axes)
    if p == 0:
        return np.sum(a != 0, axis=axes).astype(x.dtype)
    return np.sum(a ** p, axis=axes) ** (1.0 / p)


class Op(NamedTuple):
    name: str
    run: Callable[[gg.Tensor, Any, bool], gg.Tensor]        # (x, dim, keepdim) -> tensor
    ref: Callable[[np.ndarray, tuple], np.ndarray]           # (x, axes) -> array
    needs_nonempty: bool = False      # max-like: an empty reduced dim is an error
    single_dim: bool = False          # takes one int dim (or None)
    diff: bool = True
    empty_is_all: bool = True


OPS = [
    Op("sum", lambda x, d, k: x.sum(d, k) if d is not None or k else x.sum(),
       lambda a, ax: np.sum(a, axis=ax)),
    Op("mean", lambda x, d, k: gg.mean(x, d, k) if d is not None or k else x.mean(),
       lambda a, ax: np.sum(a, axis=ax) / max(1, int(np.prod([a.shape[i] for i in ax])))
       if all(a.shape[i] for i in ax) else np.full(np.sum(a, axis=ax).shape, np.nan)),
    Op("prod", lambda x, d, k: x.prod(d, k) if d is not None or k else x.prod(),
       lambda a, ax: np.prod(a, axis=ax), single_dim=True),
    Op("amax", lambda x, d, k: gg.amax(x, d if d is not None else (), k),
       lambda a, ax: np.max(a, axis=ax), needs_nonempty=True),
    Op("amin", lambda x, d, k: x.amin(d if d is not None else (), keepdim=k),
       lambda a, ax: np.min(a, axis=ax), needs_nonempty=True),
    Op("max_dim", lambda x, d, k: x.max(d, k).values if d is not None else x.max(),
       lambda a, ax: np.max(a, axis=ax), needs_nonempty=True, single_dim=True),
    Op("min_dim", lambda x, d, k: gg.min(x, d, keepdim=k)[0] if d is not None else gg.min(x),
       lambda a, ax: np.min(a, axis=ax), needs_nonempty=True, single_dim=True),
    Op("argmax", lambda x, d, k: gg.argmax(x, d, k),
       lambda a, ax: _ref_arg(np.argmax, a, ax), needs_nonempty=True, single_dim=True,
       diff=False),
    Op("argmin", lambda x, d, k: x.argmin(dim=d, keepdim=k),
       lambda a, ax: _ref_arg(np.argmin, a, ax), needs_nonempty=True, single_dim=True,
       diff=False),
    Op("var", lambda x, d, k: x.var(d, keepdim=k), lambda a, ax: _ref_var(a, ax, 1)),
    Op("var_c0", lambda x, d, k: gg.var(x, d, correction=0, keepdim=k),
       lambda a, ax: _ref_var(a, ax, 0)),
    Op("std", lambda x, d, k: gg.std(x, d, True, k) if d is not None or k else x.std(),
       lambda a, ax: np.sqrt(_ref_var(a, ax, 1))),
    Op("std_c0.5", lambda x, d, k: x.std(d, correction=0.5, keepdim=k),
       lambda a, ax: np.sqrt(_ref_var(a, ax, 0.5))),
    Op("logsumexp", lambda x, d, k: x.logsumexp(d if d is not None else (), k),
       lambda a, ax: np.log(np.sum(np.exp(a), axis=ax))),
    Op("norm", lambda x, d, k: x.norm(dim=d, keepdim=k) if d is None or isinstance(d, int)
       or len(d) <= 2 else x.norm(2, d, k), lambda a, ax: _ref_norm(a, ax, 2)),
    Op("norm1", lambda x, d, k: gg.norm(x, 1, d, k), lambda a, ax: _ref_norm(a, ax, 1)),
    Op("norm3", lambda x, d, k: gg.norm(x, 3, d, k), lambda a, ax: _ref_norm(a, ax, 3)),
    Op("norm0.5", lambda x, d, k: gg.norm(x, 0.5, d, k), lambda a, ax: _ref_norm(a, ax, 0.5)),
    Op("norm-1.5", lambda x, d, k: gg.norm(x, -1.5, d, k), lambda a, ax: _ref_norm(a, ax, -1.5),
       needs_nonempty=True),
    Op("norm_inf", lambda x, d, k: gg.norm(x, INF, d, k), lambda a, ax: _ref_norm(a, ax, INF),
       needs_nonempty=True),
    Op("norm_-inf", lambda x, d, k: x.norm(-INF, d, k), lambda a, ax: _ref_norm(a, ax, -INF),
       needs_nonempty=True),
    Op("norm0", lambda x, d, k: gg.norm(x, 0, d, k), lambda a, ax: _ref_norm(a, ax, 0)),
    Op("all", lambda x, d, k: gg.all(x, d, k) if d is not None or k else x.all(),
       lambda a, ax: np.all(a > 0, axis=ax), diff=False, empty_is_all=False),
    Op("any", lambda x, d, k: x.any(d, k) if d is not None or k else gg.any(x),
       lambda a, ax: np.any(a > 0, axis=ax), diff=False, empty_is_all=False),
    Op("count_nonzero", lambda x, d, k: gg.count_nonzero(x, d),
       lambda a, ax: np.count_nonzero(a > 0, axis=ax), diff=False),
]


def _ref_arg(fn: Callable, a: np.ndarray, ax: tuple) -> np.ndarray:
    if a.ndim == 0:
        return np.array(0)
    if len(ax) == a.ndim and a.ndim > 1:
        return fn(a.reshape(-1))
    return fn(a, axis=ax[0])


def _cases() -> list:
    cases = []
    for op, shape in itertools.product(OPS, SHAPES):
        for dim, keepdim in itertools.product(_dims(shape), (False, True)):
            if op.single_dim and not (dim is None or isinstance(dim, int)):
                continue
            if op.name in ("max_dim", "min_dim") and dim is None and keepdim:
                continue  # max() has no keepdim
            axes = _axes(dim, len(shape), op.empty_is_all)
            if op.needs_nonempty and any(shape[a] == 0 for a in axes):
                continue
            if op.name == "count_nonzero" and keepdim:
                continue
            cases.append(pytest.param(op, shape, dim, keepdim,
                                      id=f"{op.name}-{shape}-{dim}-{keepdim}"))
    return cases


CASES = _cases()


def _expected(op: Op, a: np.ndarray, dim: Any, keepdim: bool) -> np.ndarray:
    if op.name in ("all", "any", "count_nonzero"):
        a = a > 0  # their inputs are 0/1 below; `> 0` turns them into truth values
    axes = _axes(dim, a.ndim, op.empty_is_all)
    with np.errstate(all="ignore"):
        ref = np.asarray(op.ref(a, axes))
    if keepdim and op.name != "count_nonzero":
        kept = axes if not (op.single_dim and dim is None) else tuple(range(a.ndim))
        ref = ref.reshape([1 if i in kept else s for i, s in enumerate(a.shape)])
    return ref


def _input(op: Op, shape: tuple) -> np.ndarray:
    a = _sample(shape)
    if op.name in ("all", "any", "count_nonzero"):
        a = (a > 0).astype(np.float64)  # some zeros, some ones
    return a


@pytest.mark.parametrize("op, shape, dim, keepdim", CASES)
def test_forward_matches_numpy(op: Op, shape: tuple, dim: Any, keepdim: bool) -> None:
    a = _input(op, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degrees-of-freedom warnings are tested on their own
        out = op.run(_leaf(a, False), dim, keepdim)
    ref = _expected(op, a, dim, keepdim)
    assert tuple(out.shape) == ref.shape
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref.astype(np.float64),
                               rtol=1e-12, atol=1e-12)


def _well_defined(op: Op, shape: tuple, dim: Any) -> bool:
    """Var/std need N > correction for a finite gradient."""
    axes = _axes(dim, len(shape))
    n = int(np.prod([shape[a] for a in axes]))
    return not (op.name.startswith(("var", "std")) and n <= 1)


# keepdim only adds a reshape: checked with gradients on one shape, forward on all.
GRAD_CASES = [c for c in CASES if c.values[0].diff and _well_defined(*c.values[:3])
              and (not c.values[3] or c.values[1] == (2, 3))]


@pytest.mark.parametrize("op, shape, dim, keepdim", GRAD_CASES)
def test_gradcheck(op: Op, shape: tuple, dim: Any, keepdim: bool) -> None:
    x = _leaf(_sample(shape))
    assert gradcheck(lambda t: op.run(t, dim, keepdim), (x,))


GRADGRAD_OPS = {"sum", "mean", "prod", "var", "logsumexp", "norm", "norm3", "norm1", "std"}
GRADGRAD_CASES = [c for c in GRAD_CASES if c.values[0].name in GRADGRAD_OPS
                  and c.values[1] in ((), (5,), (2, 3), (2, 1, 3, 2)) and not c.values[3]]


@pytest.mark.parametrize("op, shape, dim, keepdim", GRADGRAD_CASES)
def test_gradgradcheck(op: Op, shape: tuple, dim: Any, keepdim: bool) -> None:
    x = _leaf(_sample(shape, seed=1))
    assert gradgradcheck(lambda t: op.run(t, dim, keepdim), (x,))


# ---------------------------------------------------------------- ties, zeros, NaN, inf

def _grad(fn: Callable[[gg.Tensor], gg.Tensor], data: list) -> np.ndarray:
    x = gg.tensor(data, dtype=gg.float64, requires_grad=True)
    with np.errstate(all="ignore"):  # log(0), inf * 0: numpy warns where PyTorch is silent
        fn(x).sum().backward()
    return x.grad.numpy()


NAN = math.nan
TIE_CASES = [  # (id, function, input, PyTorch's gradient)
    ("max_ties_split", lambda t: t.max(), [1., 3., 3., 2.], [0, .5, .5, 0]),
    ("min_ties_split", lambda t: gg.min(t), [[1., 0.], [0., 0.]], [[0, 1 / 3], [1 / 3, 1 / 3]]),
    ("amax_ties_split", lambda t: t.amax(1), [[1., 3., 3.], [4., 4., 4.]],
     [[0, .5, .5], [1 / 3, 1 / 3, 1 / 3]]),
    ("amin_ties_split", lambda t: t.amin((0, 1)), [[1., 3.], [1., 2.]], [[.5, 0], [.5, 0]]),
    ("max_dim_first_index", lambda t: t.max(0).values, [1., 3., 3., 2.], [0, 1, 0, 0]),
    ("min_dim_first_index", lambda t: t.min(1, True)[0], [[2., 1., 1.]], [[0, 1, 0]]),
    ("max_nan_shares", lambda t: t.max(), [1., NAN, 3., NAN], [0, .5, 0, .5]),
    ("max_dim_nan_index", lambda t: t.max(0).values, [1., NAN, 3., NAN], [0, 1, 0, 0]),
    ("prod_one_zero", lambda t: t.prod(), [1., 0., 3., 2.], [0, 6, 0, 0]),
    ("prod_two_zeros", lambda t: t.prod(), [1., 0., 3., 0.], [0, 0, 0, 0]),
    ("prod_dim_zeros", lambda t: t.prod(1), [[2., 0., 3.], [0., 5., 0.], [2., 3., 4.]],
     [[0, 6, 0], [0, 0, 0], [12, 8, 6]]),
    ("std_constant_zero_grad", lambda t: t.std(), [1., 1., 1.], [0, 0, 0]),
    ("norm_zero_vector", lambda t: t.norm(), [0., 0.], [0, 0]),
    ("norm1_zero_vector", lambda t: t.norm(1), [0., 0.], [0, 0]),
    ("norm3_zero_vector", lambda t: t.norm(3), [0., 0.], [0, 0]),
    ("norm_half_zero_elem", lambda t: t.norm(0.5), [0., 1.], [0, 1]),
    ("norm_neg1_zero_elem", lambda t: t.norm(-1), [0., 1.], [0, 0]),
    ("norm_neg1", lambda t: t.norm(-1), [2., 1.], [1 / 9, 4 / 9]),
    ("norm_inf_ties", lambda t: t.norm(INF), [-2., 2., 1.], [-.5, .5, 0]),
    ("norm_-inf_ties", lambda t: t.norm(-INF), [-2., 2., 1., -1.], [0, 0, .5, -.5]),
    ("norm1_sign", lambda t: t.norm(1), [-2., 0., 1., -1.], [-1, 0, 1, -1]),
    ("logsumexp_-inf_row", lambda t: t.logsumexp(0), [-INF, -INF], [NAN, NAN]),
    ("logsumexp_+inf", lambda t: t.logsumexp(0), [INF, 1.], [NAN, 0]),
    ("logsumexp_softmax", lambda t: t.logsumexp(0), [1000., 1000.], [.5, .5]),
]


@pytest.mark.parametrize("fn, data, expected", [pytest.param(*c[1:], id=c[0]) for c in TIE_CASES])
def test_gradient_rule(fn: Callable, data: list, expected: list) -> None:
    np.testing.assert_allclose(_grad(fn, data), np.array(expected, np.float64), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("data", [[[1., 0., 3., 2.]], [[1., 0., 3., 0.]], [[0., 0., 0., 2.]]],
                         ids=["one_zero", "two_zeros", "three_zeros"])
def test_prod_with_zeros_gradcheck_and_gradgradcheck(data: list) -> None:
    x = gg.tensor(data, dtype=gg.float64, requires_grad=True)
    assert gradcheck(lambda t: t.prod(1), (x,))
    assert gradgradcheck(lambda t: t.prod(1), (x,))
    assert gradgradcheck(lambda t: t.prod(), (x,))


VALUE_CASES = [  # (id, thunk, expected repr)
    ("argmax_first_tie", lambda: gg.tensor([[1., 5., 5., 2.]]).argmax(1), "tensor([1])"),
    ("argmin_first_tie", lambda: gg.argmin(gg.tensor([[1., .5, .5]]), -1, True), "tensor([[1]])"),
    ("argmax_nan_is_max", lambda: gg.argmax(gg.tensor([1., NAN, 5., NAN])), "tensor(1)"),
    ("argmin_nan_is_min", lambda: gg.argmin(gg.tensor([1., NAN, 0., NAN])), "tensor(1)"),
    ("max_nan", lambda: gg.tensor([[1., 2.], [NAN, 0.]]).max(), "tensor(nan)"),
    ("amin_nan", lambda: gg.amin(gg.tensor([[1., 2.], [NAN, 0.]]), 1), "tensor([1., nan])"),
    ("logsumexp_-inf", lambda: gg.logsumexp(gg.tensor([-INF, -INF]), 0), "tensor(-inf)"),
    ("logsumexp_inf", lambda: gg.logsumexp(gg.tensor([-INF, INF]), 0), "tensor(inf)"),
    ("logsumexp_nan", lambda: gg.logsumexp(gg.tensor([1., NAN]), 0), "tensor(nan)"),
    ("logsumexp_large", lambda: gg.logsumexp(gg.tensor([1000., 1000.]), 0), "tensor(1000.6932)"),
    ("logsumexp_empty", lambda: gg.logsumexp(gg.zeros(0, 2), 0), "tensor([-inf, -inf])"),
    ("logsumexp_int", lambda: gg.logsumexp(gg.tensor([[1, 2], [3, 4]]), 0),
     "tensor([3.1269, 4.1269])"),
    ("any_nan_true", lambda: gg.any(gg.tensor([0., NAN])), "tensor(True)"),
    ("all_empty", lambda: gg.all(gg.zeros(0)), "tensor(True)"),
    ("any_empty", lambda: gg.any(gg.zeros(0)), "tensor(False)"),
    ("all_empty_dim", lambda: gg.all(gg.zeros(0, 3), 0), "tensor([True, True, True])"),
    ("any_empty_dim", lambda: gg.zeros(0, 3).any(0), "tensor([False, False, False])"),
    ("any_dim_empty_tuple", lambda: gg.any(gg.tensor([0., 2.]), ()), "tensor([False,  True])"),
    ("all_keepdim_none", lambda: gg.ones(2, 2).all(None, True), "tensor([[True]])"),
    ("sum_empty", lambda: gg.sum(gg.zeros(0)), "tensor(0.)"),
    ("prod_empty", lambda: gg.prod(gg.zeros(0)), "tensor(1.)"),
    ("mean_empty", lambda: gg.mean(gg.zeros(0)), "tensor(nan)"),
    ("count_nonzero_empty", lambda: gg.count_nonzero(gg.zeros(0, 2), 0), "tensor([0, 0])"),
    ("norm_empty", lambda: gg.norm(gg.zeros(0, 2), dim=0), "tensor([0., 0.])"),
    ("norm_-inf_empty_other_dim", lambda: gg.norm(gg.zeros(0, 2), -INF, 1), "tensor([])"),
    ("max_dim_empty_other", lambda: gg.zeros(0, 3).max(1, True).values.shape,
     "torch.Size([0, 1])"),
    ("sum_int32_is_int64", lambda: gg.tensor([1, 2], dtype=gg.int32).sum(), "tensor(3)"),
    ("sum_bool_is_int64", lambda: gg.tensor([True, True]).sum(), "tensor(2)"),
    ("prod_bool_is_int64", lambda: gg.tensor([True, False]).prod(), "tensor(0)"),
    ("prod_int32_is_int64", lambda: gg.prod(gg.tensor([3, 2], dtype=gg.int32)), "tensor(6)"),
    ("prod_dtype", lambda: gg.prod(gg.tensor([1, 2]), dtype=gg.float32), "tensor(2.)"),
    ("max_int32_keeps", lambda: gg.tensor([1, 2], dtype=gg.int32).max(),
     "tensor(2, dtype=torch.int32)"),
    ("amax_bool_keeps", lambda: gg.amax(gg.tensor([True, False]), 0), "tensor(True)"),
    ("max_dim_int", lambda: gg.max(gg.tensor([1, 2]), 0),
     "torch.return_types.max(\nvalues=tensor(2),\nindices=tensor(1))"),
    ("count_nonzero_bool", lambda: gg.count_nonzero(gg.tensor([True, False])), "tensor(1)"),
    ("all_int", lambda: gg.tensor([1, 2], dtype=gg.int32).all(), "tensor(True)"),
    ("max_other", lambda: gg.max(gg.tensor([1., 4.]), gg.tensor([3., 2.])), "tensor([3., 4.])"),
    ("min_other_kw", lambda: gg.min(gg.tensor([1., 4.]), other=gg.tensor([3., 2.])),
     "tensor([1., 2.])"),
    ("max_0d_dim", lambda: gg.max(gg.tensor(2.), 0, True),
     "torch.return_types.max(\nvalues=tensor(2.),\nindices=tensor(0))"),
    ("argmax_0d_keepdim", lambda: gg.argmax(gg.tensor(3.), 0, keepdim=True), "tensor(0)"),
    ("argmax_flat_keepdim", lambda: gg.tensor([[1., 3.], [3., 2.]]).argmax(keepdim=True),
     "tensor([[1]])"),
    ("var_positional", lambda: gg.var(gg.tensor([1., 2.]), 0, True, True), "tensor([0.5000])"),
    ("var_unbiased_only", lambda: gg.var(gg.tensor([1., 2.]), False), "tensor(0.2500)"),
    ("var_correction_bool", lambda: gg.std(gg.ones(2, 3), correction=True), "tensor(0.)"),
    ("std_unbiased_kw", lambda: gg.ones(2, 3).std(0, False, True), "tensor([[0., 0., 0.]])"),
    ("var_correction_0.5", lambda: gg.var(gg.tensor([[1., 3.], [3., 2.]]), correction=0.5),
     "tensor(0.7857)"),
    ("var_empty", lambda: gg.var(gg.zeros(0)), "tensor(nan)"),
    ("var_one_elem", lambda: gg.var(gg.tensor([1.]), 0), "tensor(nan)"),
    ("var_dof_negative", lambda: gg.var(gg.tensor([1., 2.]), correction=3), "tensor(inf)"),
    ("var_dof_negative_const", lambda: gg.var(gg.tensor([1., 1.]), correction=3), "tensor(nan)"),
    ("norm_fro_two_dims", lambda: gg.norm(gg.tensor([[3., 4.]]), 'fro', (0, 1)), "tensor(5.)"),
    ("norm_p1_two_dims", lambda: gg.norm(gg.tensor([[3., -4.]]), 1, (0, 1)), "tensor(7.)"),
    ("norm_p0", lambda: gg.norm(gg.tensor([3., 0., 4.]), 0), "tensor(2.)"),
    ("norm_keepdim_none", lambda: gg.norm(gg.ones(2, 2), keepdim=True), "tensor([[2.]])"),
    ("norm_dtype", lambda: gg.norm(gg.tensor([3., 4.]), dtype=gg.float64),
     "tensor(5., dtype=torch.float64)"),
    ("sum_dim_empty_tuple", lambda: gg.ones(2, 2).sum(()), "tensor(4.)"),
    ("amax_dim_list", lambda: gg.amax(gg.tensor([[1., 3.], [3., 2.]]), [1, 0]), "tensor(3.)"),
]


@pytest.mark.parametrize("thunk, expected", [pytest.param(*c[1:], id=c[0]) for c in VALUE_CASES])
def test_values(thunk: Callable, expected: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert repr(thunk()) == expected


def test_dof_warning() -> None:
    for fn, name in ((gg.var, "var"), (gg.std, "std")):
        with pytest.warns(UserWarning, match=rf"^{name}\(\): degrees of freedom is <= 0\. "
                          r"Correction should be strictly less than the reduction factor "
                          r"\(input numel divided by output numel\)\.$"):
            fn(gg.ones(1, 2), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gg.var(gg.ones(2, 2), 0)


def test_max_dim_returns_values_and_indices() -> None:
    x = gg.tensor([[1., 3.], [3., 2.]], requires_grad=True)
    r = x.max(dim=1, keepdim=True)
    values, indices = r
    assert r.values is values and r.indices is indices and r[0] is values and len(r) == 2
    assert isinstance(r, tuple)
    assert indices.dtype is gg.int64 and indices.grad_fn is None
    assert repr(r) == ("torch.return_types.max(\nvalues=tensor([[3.],\n        [3.]], "
                       "grad_fn=<MaxBackward0>),\nindices=tensor([[1],\n        [0]]))")
    assert repr(gg.min(gg.tensor([1., 0.]), 0)).startswith("torch.return_types.min(\n")


def test_dtypes_of_results() -> None:
    i32 = gg.tensor([[1, 2]], dtype=gg.int32)
    assert gg.argmax(i32).dtype is gg.int64
    assert i32.amin(1).dtype is gg.int32 and i32.min(1).values.dtype is gg.int32
    assert gg.count_nonzero(i32).dtype is gg.int64
    assert i32.any().dtype is gg.bool and gg.all(i32, 1).dtype is gg.bool
    assert gg.logsumexp(i32, 1).dtype is gg.float32
    assert gg.ones(2, dtype=gg.float64).norm().dtype is gg.float64
    assert gg.sum(gg.ones(2), dtype=gg.int64).dtype is gg.int64


# ---------------------------------------------------------------- grad_fn names

X = [[1., 3.], [3., 2.]]
NAME_CASES = [
    ("sum", lambda t: t.sum(), "SumBackward0"),
    ("sum_dim", lambda t: t.sum(1), "SumBackward1"),
    ("sum_none", lambda t: gg.sum(t, None), "SumBackward1"),
    ("mean", lambda t: t.mean(), "MeanBackward0"),
    ("mean_dim", lambda t: t.mean(()), "MeanBackward1"),
    ("prod", lambda t: t.prod(), "ProdBackward0"),
    ("prod_dim", lambda t: t.prod(1, keepdim=True), "ProdBackward1"),
    ("prod_dtype", lambda t: gg.prod(t, 1, dtype=gg.float64), "ProdBackward1"),
    ("max", lambda t: t.max(), "MaxBackward1"),
    ("min", lambda t: gg.min(t), "MinBackward1"),
    ("max_dim", lambda t: t.max(0).values, "MaxBackward0"),
    ("min_dim_keepdim", lambda t: t.min(0, True).values, "MinBackward0"),
    ("max_other", lambda t: gg.max(t, gg.ones(2)), "MaximumBackward0"),
    ("amax", lambda t: t.amax(), "AmaxBackward0"),
    ("amin", lambda t: gg.amin(t, 0, True), "AminBackward0"),
    ("var", lambda t: t.var(), "VarBackward0"),
    ("var_keepdim", lambda t: t.var(1, keepdim=True), "VarBackward0"),
    ("std", lambda t: gg.std(t, 1, correction=0), "StdBackward0"),
    ("logsumexp", lambda t: t.logsumexp(1), "LogsumexpBackward0"),
    ("logsumexp_keepdim", lambda t: t.logsumexp(1, True), "LogsumexpBackward0"),
    ("norm", lambda t: t.norm(), "LinalgVectorNormBackward0"),
    ("norm_inf_dim", lambda t: gg.norm(t, INF, 1, True), "LinalgVectorNormBackward0"),
    ("norm_p0", lambda t: t.norm(0), "LinalgVectorNormBackward0"),
    ("norm_p3", lambda t: t.norm(3), "LinalgVectorNormBackward0"),
]


@pytest.mark.parametrize("fn, name", [pytest.param(*c[1:], id=c[0]) for c in NAME_CASES])
def test_grad_fn_name(fn: Callable, name: str) -> None:
    out = fn(gg.tensor(X, requires_grad=True))
    assert out.grad_fn.name() == name
    assert repr(out).endswith(f"grad_fn=<{name}>)")


def test_no_grad_results() -> None:
    x = gg.tensor(X, requires_grad=True)
    for out in (x.argmax(), x.argmin(1), x.all(), x.any(0), x.count_nonzero(), x.max(1).indices):
        assert out.grad_fn is None and not out.requires_grad


# ---------------------------------------------------------------- errors

E = gg.zeros(0, 3)
ERROR_CASES = [  # (id, thunk, exception type, PyTorch's message)
    ("max_empty", lambda: gg.max(gg.zeros(0)), RuntimeError,
     "max(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
     "reduction dim with the 'dim' argument."),
    ("min_empty", lambda: gg.zeros(0).min(), RuntimeError,
     "min(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
     "reduction dim with the 'dim' argument."),
    ("amax_empty", lambda: gg.amax(E), RuntimeError,
     "amax(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
     "reduction dim with the 'dim' argument."),
    ("max_empty_dim", lambda: gg.max(E, -2), IndexError,
     "max(): Expected reduction dim 0 to have non-zero size."),
    ("min_empty_dim", lambda: E.min(0), IndexError,
     "min(): Expected reduction dim 0 to have non-zero size."),
    ("amax_empty_dim", lambda: gg.amax(E, -2), IndexError,
     "amax(): Expected reduction dim -2 to have non-zero size."),
    ("amin_empty_dims", lambda: gg.amin(E, (1, 0)), IndexError,
     "amin(): Expected reduction dim 0 to have non-zero size."),
    ("argmax_empty", lambda: gg.argmax(gg.zeros(0)), IndexError,
     "argmax(): Expected reduction dim to be specified for input.numel() == 0."),
    ("argmin_empty_dim", lambda: gg.argmin(E, 0), IndexError,
     "argmin(): Expected reduction dim 0 to have non-zero size."),
    ("argmax_bool", lambda: gg.argmax(gg.tensor([True])), RuntimeError,
     "argmax(): does not support bool input"),
    ("argmax_tuple", lambda: gg.argmax(gg.ones(2), (0,)), TypeError,
     "argmax(): argument 'dim' (position 2) must be int, not tuple"),
    ("dim_out_of_range", lambda: gg.ones(2, 2).max(2), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("dim_out_of_range_0d", lambda: gg.argmax(gg.tensor(3.), 1), IndexError,
     "Dimension out of range (expected to be in range of [-1, 0], but got 1)"),
    ("dim_repeated", lambda: gg.amax(gg.ones(2, 2), (0, -2)), RuntimeError,
     "dim 0 appears multiple times in the list of dims"),
    ("dim_repeated_sum", lambda: gg.ones(2, 2).sum((1, 1)), RuntimeError,
     "dim 1 appears multiple times in the list of dims"),
    ("mean_int", lambda: gg.mean(gg.tensor([1, 2])), RuntimeError,
     "mean(): could not infer output dtype. Input dtype must be either a floating point or "
     "complex dtype. Got: Long"),
    ("var_int", lambda: gg.var(gg.tensor([1, 2])), RuntimeError,
     "std and var only support floating point and complex dtypes"),
    ("std_int", lambda: gg.tensor([1, 2]).std(), RuntimeError,
     "std and var only support floating point and complex dtypes"),
    ("norm_int", lambda: gg.norm(gg.tensor([1, 2])), RuntimeError,
     "linalg.vector_norm: Expected a floating point or complex tensor as input. Got Long"),
    ("norm_inf_empty", lambda: gg.norm(E, INF), RuntimeError,
     "linalg.vector_norm cannot compute the inf norm on an empty tensor because the operation "
     "does not have an identity"),
    ("norm_neg_empty_dim", lambda: gg.norm(E, -1.0, (1, 0)), RuntimeError,
     "linalg.vector_norm cannot compute the -1 norm on the dimension 0because this dimension is "
     "empty and the operation does not have an identity"),
    ("norm_fro_three_dims", lambda: gg.norm(gg.ones(2, 2, 2), 'fro', (0, 1, 2)), RuntimeError,
     "linalg.matrix_norm: dim must be a 2-tuple. Got 0 1 2"),
    ("norm_bad_order", lambda: gg.norm(gg.ones(2, 2), 'abc'), RuntimeError,
     "linalg.matrix_norm: Order abc not supported."),
    ("logsumexp_no_dim", lambda: gg.logsumexp(gg.ones(2)), TypeError,
     'logsumexp() missing 1 required positional arguments: "dim"'),
    ("max_tuple_dim", lambda: gg.max(gg.ones(2), (0,)), TypeError,
     "max() received an invalid combination of arguments - got (Tensor, tuple), but expected "
     "one of:\n * (Tensor input, *, Tensor out = None)\n * (Tensor input, Tensor other, *, "
     "Tensor out = None)\n * (Tensor input, int dim, bool keepdim = False, *, tuple of Tensors "
     "out = None)\n"),
    ("prod_tuple_dim", lambda: gg.prod(gg.ones(2), (0,)), TypeError,
     "prod() received an invalid combination of arguments - got (Tensor, tuple), but expected "
     "one of:\n * (Tensor input, *, torch.dtype dtype = None)\n * (Tensor input, int dim, bool "
     "keepdim = False, *, torch.dtype dtype = None, Tensor out = None)\n"),
    ("var_float_dim", lambda: gg.var(gg.ones(2), 1.5), TypeError,
     "var() received an invalid combination of arguments - got (Tensor, float), but expected "
     "one of:\n"),
]


@pytest.mark.parametrize("thunk, exc, message", [pytest.param(*c[1:], id=c[0])
                                                 for c in ERROR_CASES])
def test_error_message(thunk: Callable, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        thunk()
    assert str(info.value).startswith(message)
    if not message.endswith("one of:\n"):
        assert str(info.value) == message


# ---------------------------------------------------------------- against PyTorch itself

def _grad_of(m: Any, fn: Callable, data: list) -> Any:
    x = m.tensor(data, dtype=m.float64, requires_grad=True)
    fn(x).sum().backward()
    return x.grad


TORCH_CASES = [  # thunks of the module (torch or gradgen); results compared by repr
    lambda m: m.tensor([[1., 3.], [3., 2.]], requires_grad=True).max(1),
    lambda m: m.min(m.tensor([[1., 3.], [0., 2.]], requires_grad=True), 0, keepdim=True),
    lambda m: m.tensor([[1., 3.], [3., 2.]], requires_grad=True).amax(-1, True),
    lambda m: m.prod(m.tensor([[1., 3.], [3., 2.]], requires_grad=True), 0),
    lambda m: m.tensor([[1., 3.], [3., 2.]], requires_grad=True).var(1, keepdim=True),
    lambda m: m.std(m.tensor([[1., 3.], [3., 2.]], requires_grad=True), correction=0),
    lambda m: m.logsumexp(m.tensor([[1., 3.], [3., 2.]], requires_grad=True), (0, 1)),
    lambda m: m.tensor([[1., 3.], [-3., 2.]], requires_grad=True).norm(p=3, dim=0),
    lambda m: m.norm(m.tensor([[1., 3.], [-3., 2.]], requires_grad=True), -INF),
    lambda m: m.tensor([[1., 0.], [3., 2.]]).all(1, keepdim=True),
    lambda m: m.count_nonzero(m.tensor([[1., 0.], [3., 2.]]), (0, -1)),
    lambda m: m.argmin(m.tensor([[1., 0.], [3., 2.]]), 0, True),
    lambda m: m.var(m.tensor([[1., 2.]]), 0),
    lambda m: _grad_of(m, lambda t: t.max(), [[1., 3.], [3., 2.]]),
    lambda m: _grad_of(m, lambda t: t.max(1).values, [[1., 3.], [3., 3.]]),
    lambda m: _grad_of(m, lambda t: t.amin(0), [[1., 3.], [1., 3.]]),
    lambda m: _grad_of(m, lambda t: t.prod(1), [[1., 0., 2.], [0., 3., 0.]]),
    lambda m: _grad_of(m, lambda t: t.std(0), [[1., 3.], [1., 2.]]),
    lambda m: _grad_of(m, lambda t: t.norm(dim=1), [[0., 0.], [3., 4.]]),
    lambda m: _grad_of(m, lambda t: t.norm(0.5), [[0., 1.], [2., 4.]]),
    lambda m: _grad_of(m, lambda t: t.logsumexp(1), [[INF, 1.], [1., 2.]]),
    lambda m: m.max(m.zeros(0, 3), 0),
    lambda m: m.amax(m.zeros(0, 3), (1, 0)),
    lambda m: m.norm(m.zeros(0, 2), INF, -2),
    lambda m: m.var(m.tensor([1, 2])),
]


@pytest.mark.parametrize("thunk", TORCH_CASES)
def test_matches_torch(thunk: Callable) -> None:
    torch = pytest.importorskip("torch")

    def run(m: Any) -> str:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                return repr(thunk(m))
        except Exception as e:  # noqa: BLE001  (the error text is what is compared)
            return f"{type(e).__name__}: {e}"

    assert run(gg) == run(torch)


@pytest.mark.parametrize("make, dtype", [
    (lambda t: t.sum(dtype=gg.int32), gg.int32), (lambda t: t.sum(0, dtype=gg.int32), gg.int32),
    (lambda t: t.prod(dtype=gg.int32), gg.int32), (lambda t: t.sum(), gg.int64),
    (lambda t: t.bool().sum(), gg.int64), (lambda t: t.float().sum(), gg.float32),
])
def test_integer_sums_keep_the_requested_dtype(make, dtype) -> None:
    """sum/prod(dtype=int32) are int32 (numpy's reductions widen int32 to int64 unless told);
    an integer or bool sum without dtype is int64, as in PyTorch."""
    t = gg.tensor([[1, 2], [3, 4]], dtype=gg.int32)
    r = make(t)
    assert r.dtype is dtype and r.numpy().dtype == dtype.np
