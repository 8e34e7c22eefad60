"""Special values, error messages and call forms checked against PyTorch (the oracle).

Each case runs with ``gradgen`` standing in for ``torch`` and must give PyTorch 2.13's values
and gradients bit for bit where it matters (NaN where NaN, the sign of a zero or an infinity),
or its exception type and message. PyTorch's answers are stored in
``data/torch_special_values.json`` (so the suite checks them without torch installed);
``test_stored_answers_are_torchs`` recomputes them when torch is there, and
``python tests/test_torch_special_values.py`` writes them again. Cases whose operations have a
C lowering are also compiled (``gradgen.compile(..., fullgraph=True)``) and called three
times: the second and later calls run the C kernels, which must agree with eager.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import gradgen

from conftest import needs_cc

try:
    import torch
except ImportError:  # the stored answers stand in for it
    torch = None

ANSWERS = Path(__file__).with_name("data") / "torch_special_values.json"

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------- helpers

def _as_numpy(t: Any) -> np.ndarray:
    if t is None:
        return None
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


def _same(got: Any, want: Any, what: str) -> None:
    """Equal arrays, NaN where NaN, zeros and infinities with the same sign, same dtype."""
    g, w = _as_numpy(got), _as_numpy(want)
    assert (g is None) == (w is None), f"{what}: {g!r} vs {w!r}"
    if g is None:
        return
    assert g.shape == w.shape and g.dtype == w.dtype, f"{what}: {g!r} vs {w!r}"
    if g.dtype.kind == "f":
        same = (g == w) | (np.isnan(g) & np.isnan(w))
        same &= (np.signbit(g) == np.signbit(w)) | np.isnan(g)
        assert same.all(), f"{what}: gradgen {g!r}, torch {w!r}"
    else:
        assert (g == w).all(), f"{what}: gradgen {g!r}, torch {w!r}"


def _grads(lib: Any, fn: Callable, values: list, dtype: str = "float32") -> list:
    """``fn``'s output and the gradients of its sum w.r.t. leaves made from ``values``."""
    xs = [lib.tensor(v, dtype=getattr(lib, dtype), requires_grad=True) for v in values]
    out = fn(lib, *xs)
    out.sum().backward()
    return [out] + [x.grad for x in xs]


# ---------------------------------------------------------------- values and gradients

# name -> (fn(lib, *leaves), leaf values, compiled too)
GRAD_CASES: dict[str, tuple[Callable, list, bool]] = {
    "sign": (lambda lib, x: lib.sign(x), [[NAN, -0.0, 0.0, 2.0, -INF]], True),
    "abs_grad_at_nan": (lambda lib, x: lib.abs(x), [[NAN, -0.0, -2.0, 2.0]], True),
    "clamp": (lambda lib, x: lib.clamp(x, -1.0, 2.0), [[NAN, 1.0, 5.0, -3.0]], True),
    "clamp_min": (lambda lib, x: x.clamp_min(2.0), [[NAN, 1.0, 5.0]], True),
    "clamp_max": (lambda lib, x: lib.clamp(x, max=2.0), [[NAN, 1.0, 5.0]], True),
    "clamp_nan_bound": (lambda lib, x: lib.clamp(x, min=NAN), [[NAN, 1.0, 5.0]], True),
    "clamp_tensor_bounds": (lambda lib, x, lo, hi: lib.clamp(x, lo, hi),
                            [[0.5, 1.0, 5.0, NAN], [2.0, NAN, 0.0, 0.0], [1.0, 0.5, NAN, 1.0]],
                            True),
    "clamp_broadcast_bound": (lambda lib, x, lo: lib.clamp(x, min=lo),
                              [[NAN, 1.0, 5.0], [[0.0], [NAN]]], True),
    "clamp_mixed_bound_shapes": (lambda lib, x, lo, hi: lib.clamp(x, lo, hi),
                                 [[[0.5, NAN, 5.0], [-1.0, 2.0, 0.0]],
                                  [[0.0, 0.0, 6.0], [NAN, 1.0, -2.0]], [1.0, NAN, 3.0]], True),
    "amax_nan": (lambda lib, x: lib.amax(x), [[1.0, NAN, 5.0, 5.0]], True),
    "amin_nan": (lambda lib, x: lib.amin(x), [[1.0, NAN, NAN, 5.0]], True),
    "amax_dim_nan": (lambda lib, x: lib.amax(x, dim=1), [[[1.0, NAN], [5.0, 5.0]]], True),
    "amin_dim_keepdim": (lambda lib, x: x.amin(0, keepdim=True), [[[NAN, 2.0], [2.0, 2.0]]],
                         True),
    "amax_ties_no_nan": (lambda lib, x: lib.amax(x, dim=0), [[[3.0, -0.0], [3.0, 1.0]]], True),
    "max_full_nan": (lambda lib, x: lib.max(x), [[1.0, NAN, NAN, 5.0]], True),
    "min_full_nan": (lambda lib, x: lib.min(x), [[1.0, NAN, 5.0]], True),
    "max_dim_nan": (lambda lib, x: lib.max(x, 1)[0], [[[1.0, NAN, NAN], [5.0, 5.0, 1.0]]], True),
    "min_dim_nan": (lambda lib, x: lib.min(x, 1).values, [[[1.0, NAN], [5.0, 1.0]]], True),
    "norm_inf_nan": (lambda lib, x: lib.norm(x, INF), [[1.0, NAN, -5.0, 5.0]], True),
    "norm_unit_axis_f64": (lambda lib, x: lib.norm(x, dim=1), [[[1e200], [-3.0], [-0.0]]], True),
    "norm_unit_axis_tiny": (lambda lib, x: x.norm(dim=1), [[[1e-30], [-3.0], [0.0]]], True),
    "pow_half": (lambda lib, x: x ** 0.5, [[-0.0, 0.0, -INF, INF, -1.0, 4.0]], True),
    "pow_half_f64": (lambda lib, x: lib.pow(x, 0.5), [[-0.0, 0.0, -INF, 4.0]], True),
    "pow_minus_half": (lambda lib, x: x ** -0.5, [[-0.0, 0.0, -INF, INF, 4.0]], True),
    "pow_three_halves": (lambda lib, x: x ** 1.5, [[-0.0, 0.0, 4.0]], True),
    "pow_other": (lambda lib, x: x ** -1.5 + x ** 2 + x ** -1, [[-0.0, 0.0, 4.0, -INF]], True),
    "sqrt": (lambda lib, x: lib.sqrt(x), [[-0.0, 0.0, -INF, 4.0]], True),
    "rsqrt": (lambda lib, x: lib.rsqrt(x), [[-0.0, 0.0, -INF, 4.0]], True),
    "cat_empty_leaf": (lambda lib, a, e: lib.cat([a, e]), [[1.0, 2.0], []], True),
    "cat_empty_first": (lambda lib, e, a: lib.cat([e, a]), [[], [[1.0, 2.0], [3.0, 4.0]]], True),
    "cat_all_empty": (lambda lib, e, f: lib.cat([e, f]), [[], []], False),
    "cat_empty_dim1": (lambda lib, a, e: lib.cat([a, e], dim=1), [[[1.0, 2.0]], []], True),
}
_F64 = {"pow_half_f64", "norm_unit_axis_f64"}


def _grad_case(lib: Any, name: str) -> list:
    fn, values, _ = GRAD_CASES[name]
    with np.errstate(all="ignore"):
        return _grads(lib, fn, values, "float64" if name in _F64 else "float32")


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_values_and_gradients_match_torch(name: str) -> None:
    got, want = _grad_case(gradgen, name), [_array(r) for r in _answers()["grad"][name]]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        _same(g, w, f"{name} {'output' if i == 0 else f'grad {i - 1}'}")


@pytest.mark.cc
@needs_cc
@pytest.mark.parametrize("name", sorted(n for n, (_, _, c) in GRAD_CASES.items() if c))
def test_compiled_matches_eager(name: str) -> None:
    fn, values, _ = GRAD_CASES[name]
    dtype = "float64" if name in _F64 else "float32"
    with np.errstate(all="ignore"):
        want = _grads(gradgen, fn, values, dtype)
        compiled = gradgen.compile(lambda *xs: fn(gradgen, *xs).sum(), fullgraph=True)
        for call in range(3):
            xs = [gradgen.tensor(v, dtype=getattr(gradgen, dtype), requires_grad=True)
                  for v in values]
            out = compiled(*xs)
            out.backward()
            _same(out, want[0].sum(), f"{name} call {call} output")
            for i, (x, w) in enumerate(zip(xs, want[1:], strict=True)):
                _same(x.grad, w, f"{name} call {call} grad {i}")


# ---------------------------------------------------------------- errors

def _x(lib: Any) -> Any:
    return lib.arange(6.0).reshape(2, 3)


# name -> fn(lib) that must raise the same exception and message in both libraries
ERROR_CASES: dict[str, Callable] = {
    "index_select_dim0": lambda lib: lib.index_select(_x(lib), 0, lib.tensor([2])),
    "index_select_dim0_negative": lambda lib: _x(lib).index_select(0, lib.tensor([-1])),
    "index_select_dim1": lambda lib: lib.index_select(_x(lib), 1, lib.tensor([0, 3])),
    "index_select_dim1_negative": lambda lib: lib.index_select(_x(lib), -1, lib.tensor([-1])),
    "index_select_last_of_3d": lambda lib: lib.zeros(2, 3, 4).index_select(2, lib.tensor([4])),
    "index_select_1d": lambda lib: lib.zeros(3).index_select(0, lib.tensor(3)),
    "index_select_0d_many": lambda lib: lib.tensor(5.0).index_select(0, lib.tensor([0, 0])),
    "index_select_0d_bad": lambda lib: lib.tensor(5.0).index_select(0, lib.tensor([1])),
    "index_select_empty_axis": lambda lib: lib.zeros(0, 3).index_select(0, lib.tensor([0])),
    "index_select_empty_other": lambda lib: lib.zeros(2, 0).index_select(0, lib.tensor([-1])),
    "index_select_grad": lambda lib: lib.zeros(2, 3, requires_grad=True).index_select(
        0, lib.tensor([5])),
    "gather": lambda lib: lib.gather(_x(lib), 1, lib.tensor([[0, 3], [0, 0]])),
    "take": lambda lib: lib.take(_x(lib), lib.tensor([6])),
    "getitem": lambda lib: _x(lib)[lib.tensor([2])],
    "where_float": lambda lib: lib.where(lib.ones(3), lib.zeros(3), lib.ones(3)),
    "where_double": lambda lib: lib.where(lib.ones(3, dtype=lib.float64), lib.zeros(3),
                                          lib.ones(3)),
    "where_long_method": lambda lib: lib.zeros(3).where(lib.ones(3, dtype=lib.int64), 1.0),
}


def _raised(fn: Callable, lib: Any) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        fn(lib)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_errors_match_torch(name: str) -> None:
    got, want = _raised(ERROR_CASES[name], gradgen), _answers()["errors"][name]
    assert [got[0].__name__, got[1]] == want


def test_index_select_still_selects() -> None:
    x = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    for dim, idx in ((0, [1, 0, 1]), (1, [2, 0]), (-1, [1])):
        _same(gradgen.tensor(x).index_select(dim, gradgen.tensor(idx)),
              np.take(np.asarray(x, np.float32), idx, axis=dim), f"dim {dim}")


@pytest.mark.cc
@needs_cc
@pytest.mark.parametrize("dim, bad", [(0, 2), (0, -1), (1, 3), (1, -1)])
def test_compiled_index_select_checks_every_call(dim: int, bad: int) -> None:
    """The compiled call checks its own indices, with eager's error (not numpy's wrap)."""
    def fn(x: Any, i: Any) -> Any:
        return (x.index_select(dim, i) * 2.0).sum()

    compiled = gradgen.compile(fn, fullgraph=True)
    x = gradgen.arange(6.0).reshape(2, 3)
    for _ in range(3):
        assert compiled(x, gradgen.tensor([1, 0])).item() == fn(x, gradgen.tensor([1, 0])).item()
    got = _raised(lambda lib: compiled(x, gradgen.tensor([0, bad])), gradgen)
    assert [got[0].__name__, got[1]] == _answers()["index_select"][f"{dim},{bad}"]


def _index_select_error(lib: Any, dim: int, bad: int) -> tuple[type, str]:
    return _raised(lambda lib: lib.arange(6.0).reshape(2, 3).index_select(
        dim, lib.tensor([0, bad])), lib)


_INDEX_SELECT_BAD = [(0, 2), (0, -1), (1, 3), (1, -1)]


# ---------------------------------------------------------------- call forms

SHAPE_FORMS: dict[str, Callable] = {
    "tile_varargs": lambda x: x.tile(2, 1),
    "tile_tuple": lambda x: x.tile((2, 1)),
    "tile_int": lambda x: x.tile(2),
    "tile_keyword": lambda x: x.tile(dims=[2]),
    "tile_size": lambda x: x.tile(x.shape),
    "permute_varargs": lambda x: x.permute(1, 0),
    "permute_keyword": lambda x: x.permute(dims=[1, 0]),
    "reshape_varargs": lambda x: x.reshape(3, 2),
    "reshape_keyword": lambda x: x.reshape(shape=(3, 2)),
    "view_varargs": lambda x: x.view(3, 2),
    "view_keyword": lambda x: x.view(size=(6,)),
    "expand_varargs": lambda x: x[:1].expand(4, 3),
    "expand_keyword": lambda x: x[:1].expand(size=(4, 3)),
    "broadcast_to_varargs": lambda x: x[:1].broadcast_to(4, 3),
    "broadcast_to_keyword": lambda x: x[:1].broadcast_to(size=(4, 3)),
    "flip_varargs": lambda x: x.flip(0, 1),
    "squeeze_varargs": lambda x: x.reshape(1, 2, 1, 3).squeeze(0, 2),
    "squeeze_keyword": lambda x: x.reshape(1, 2, 1, 3).squeeze(dim=(0, 2)),
    "repeat_varargs": lambda x: x.repeat(2, 1),
    "repeat_keyword": lambda x: x.repeat(repeats=(2, 1)),
    "torch_reshape_keyword": lambda x: (gradgen if isinstance(x, gradgen.Tensor) else torch)
    .reshape(x, shape=(3, 2)),
}


def _form(lib: Any, name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return SHAPE_FORMS[name](lib.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("name", sorted(SHAPE_FORMS))
def test_call_forms_match_torch(name: str) -> None:
    _same(_form(gradgen, name), _array(_answers()["forms"][name]), name)


def _tile_without_dims(lib: Any) -> tuple[type, str]:
    return _raised(lambda lib: lib.zeros(2).tile(), lib)


def test_tile_without_dims_raises_as_torch() -> None:
    got = _tile_without_dims(gradgen)
    assert [got[0].__name__, got[1]] == _answers()["tile without dims"]


# ---------------------------------------------------------------- PyTorch's stored answers

def _record(t: Any) -> dict | None:
    """An array (a tensor's) as JSON: dtype, shape and values (NaN and infinities as Python's
    json writes them, -0.0 kept)."""
    a = _as_numpy(t)
    return None if a is None else {"dtype": a.dtype.name, "shape": list(a.shape),
                                   "values": a.ravel().tolist()}


def _array(r: dict | None) -> np.ndarray | None:
    return None if r is None else np.asarray(r["values"], r["dtype"]).reshape(r["shape"])


def _torch_answers() -> dict:
    """Every case run with PyTorch (what ANSWERS holds)."""
    def error(got: tuple[type, str]) -> list:
        return [got[0].__name__, got[1]]
    return {
        "torch": torch.__version__,
        "grad": {n: [_record(t) for t in _grad_case(torch, n)] for n in sorted(GRAD_CASES)},
        "errors": {n: error(_raised(ERROR_CASES[n], torch)) for n in sorted(ERROR_CASES)},
        "index_select": {f"{d},{b}": error(_index_select_error(torch, d, b))
                         for d, b in _INDEX_SELECT_BAD},
        "forms": {n: _record(_form(torch, n)) for n in sorted(SHAPE_FORMS)},
        "tile without dims": error(_tile_without_dims(torch)),
    }


_STORED: list = []


def _answers() -> dict:
    if not _STORED:
        _STORED.append(json.loads(ANSWERS.read_text()))
    return _STORED[0]


@pytest.mark.skipif(torch is None, reason="PyTorch not installed (the stored answers are used)")
def test_stored_answers_are_torchs() -> None:
    """ANSWERS is what this PyTorch gives now (NaN-aware, signs of zeros included)."""
    now, stored = _torch_answers(), _answers()
    assert sorted(now) == sorted(stored)
    for part in ("errors", "index_select", "tile without dims"):
        assert now[part] == stored[part], part
    for name, records in now["grad"].items():
        for i, (a, b) in enumerate(zip(records, stored["grad"][name], strict=True)):
            _same(_array(a), _array(b), f"{name} {i}")
    for name, r in now["forms"].items():
        _same(_array(r), _array(stored["forms"][name]), name)


if __name__ == "__main__":  # write PyTorch's answers again
    ANSWERS.parent.mkdir(exist_ok=True)
    ANSWERS.write_text(json.dumps(_torch_answers(), indent=1) + "\n")
    print(f"wrote {ANSWERS}")
