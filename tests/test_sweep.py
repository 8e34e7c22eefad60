"""The table-driven sweep: every differentiable operation of ``op_db.ENTRIES`` on every sample.

For each (entry, sample): the forward value against the entry's numpy float64
reference, ``gradcheck`` (central differences in float64), ``gradgradcheck`` where the
entry claims a second derivative, and the output's ``grad_fn`` class name against
PyTorch's. Samples cover 0-d, size-1 and zero-size dims, rank up to 4, broadcasting
both ways, Python scalars on either side, ``dim``/``keepdim``/negative dims and
strided inputs (``.T``, ``[::2]`` views, reversed arrays with negative strides), away from
kinks; ``KINKS`` checks the derivative conventions at the kinks themselves. A last
test asserts every primitive with a VJP rule is used by some entry's graph.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd.gradcheck import gradcheck, gradgradcheck
from gradgen.ops import PRIMITIVES

import op_db
from op_db import ENTRIES, KINKS, Arg, OpEntry, Sample

CASES: list[tuple[OpEntry, Sample, str]] = []
_seen: Counter = Counter()
for _e in ENTRIES:
    for _s in _e.make_samples():
        _id = f"{_e.name}-{_s.desc}"
        _seen[_id] += 1
        CASES.append((_e, _s, _id if _seen[_id] == 1 else f"{_id}#{_seen[_id]}"))


def _params(check: str, only: Any = None) -> list:
    out = []
    for e, s, ident in CASES:
        if only is not None and not only(e, s):
            continue
        reason = e.xfail_reason(check, s)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(e, s, id=ident, marks=marks))
    return out


# ---------------------------------------------------------------- building inputs

def build(arg: Arg, lib: Any = gg) -> Any:
    """A leaf tensor holding ``arg.value``, laid out as ``arg.layout`` (a real strided view)."""
    v = np.asarray(arg.value)
    if arg.layout == "c":
        t = lib.from_numpy(v.copy())
    elif arg.layout == "T":
        assert v.ndim == 2
        t = lib.from_numpy(np.ascontiguousarray(v.T)).T
    elif arg.layout == "step2":
        big = np.zeros((2 * v.shape[0],) + v.shape[1:], v.dtype)
        big[::2] = v
        t = lib.from_numpy(big)[::2]
    elif arg.layout == "rev":  # negative strides: numpy makes them, no public constructor takes them
        if lib is not gg:
            raise ValueError("PyTorch has no tensors with negative strides")
        t = gg.Tensor._make(np.ascontiguousarray(v[::-1])[::-1])
    else:
        raise ValueError(arg.layout)
    if arg.layout != "c" and v.size > 1:
        assert not t.is_contiguous(), f"layout {arg.layout} of {v.shape} is contiguous"
    if arg.grad:
        t.requires_grad_()
    return t


def build_args(args: Iterable, lib: Any = gg) -> tuple:
    return tuple(build(a, lib) if isinstance(a, Arg)
                 else build_args(a, lib) if isinstance(a, tuple) else a for a in args)


def ref_args(args: Iterable) -> tuple:
    return tuple(np.array(a.value) if isinstance(a, Arg)
                 else ref_args(a) if isinstance(a, tuple) else a for a in args)


def _outputs(out: Any) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _require(e: OpEntry) -> None:
    if not e.available():
        pytest.skip(f"{e.needs} is not implemented yet")


def _call(e: OpEntry, s: Sample) -> Any:
    return e.op(*build_args(s.args), **s.kwargs)


# ---------------------------------------------------------------- the sweep

@pytest.mark.parametrize("e,s", _params("fwd", lambda e, s: e.ref is not None))
def test_forward_matches_numpy(e: OpEntry, s: Sample) -> None:
    _require(e)
    got = _outputs(_call(e, s))
    want = _outputs(e.ref(*ref_args(s.args), **s.kwargs))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert isinstance(g, gg.Tensor)
        assert tuple(g.shape) == w.shape, f"shape {tuple(g.shape)} != numpy's {w.shape}"
        assert g.detach().numpy().dtype == w.dtype, f"dtype {g.dtype} != numpy's {w.dtype}"
        np.testing.assert_allclose(g.detach().numpy(), w, rtol=e.fwd_rtol, atol=1e-14)


@pytest.mark.parametrize("e,s", _params("grad"))
def test_gradcheck(e: OpEntry, s: Sample) -> None:
    _require(e)
    kw = s.kwargs
    assert gradcheck(lambda *a: e.op(*a, **kw), build_args(s.args), eps=e.eps, atol=e.atol,
                     rtol=e.rtol)


def _gradgrad_picks() -> set[int]:
    """The samples gradgradcheck runs on: it costs ~(numel in + numel out)^2 backward passes,
    so per entry every other small sample, plus the first strided one."""
    picks: set[int] = set()
    for e in ENTRIES:
        if not e.gradgrad:
            continue
        mine = [s for f, s, _ in CASES if f is e and s.gradgrad]
        small = [s for s in mine if sum(a.value.size for a in op_db._flat_args(s.args)) <= 12]
        picks |= {id(s) for s in small[::2]}
        picks |= {id(s) for s in [s for s in small if s.layouts - {"c"}][:1]}
    return picks


_GRADGRAD = _gradgrad_picks()


@pytest.mark.parametrize("e,s", _params("gradgrad", lambda e, s: id(s) in _GRADGRAD))
def test_gradgradcheck(e: OpEntry, s: Sample) -> None:
    _require(e)
    kw = s.kwargs
    assert gradgradcheck(lambda *a: e.op(*a, **kw), build_args(s.args), eps=e.eps, atol=e.atol,
                         rtol=e.rtol)


@pytest.mark.parametrize("e,s", _params("name", lambda e, s: e.expected_name(s) is not None))
def test_grad_fn_name_matches_pytorch(e: OpEntry, s: Sample) -> None:
    _require(e)
    want = e.expected_name(s)
    outs = [o for o in _outputs(_call(e, s)) if o.requires_grad]
    assert outs, "no output requires grad"
    for o in outs:
        assert type(o.grad_fn).__name__ == want


# ---------------------------------------------------------------- kinks

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0) and friends, on purpose
@pytest.mark.parametrize("k", [pytest.param(k, id=k.name, marks=[pytest.mark.xfail(
    strict=True, reason=k.xfail)] if k.xfail else []) for k in KINKS])
def test_kink_convention(k: op_db.KinkCase) -> None:
    if k.needs and not OpEntry(k.name, None, None, None, needs=k.needs).available():
        pytest.skip(f"{k.needs} is not implemented yet")
    xs = [gg.tensor(np.array(v, dtype=np.float64), requires_grad=want is not None)
          for v, want in zip(k.inputs, k.grads)]
    out = k.fn(*xs)
    diff = [x for x in xs if x.requires_grad]
    grads = gg.autograd.grad(out.sum(), diff, allow_unused=True)
    wants = [np.array(w, dtype=np.float64) for w in k.grads if w is not None]
    for g, w in zip(grads, wants):
        got = np.zeros_like(w) if g is None else g.detach().numpy()
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=0)  # infinities must match exactly


def test_dropout_forward_keeps_or_scales() -> None:
    """F.dropout has no numpy reference (its mask is random): each element is 0 or x/(1-p)."""
    if not hasattr(op_db.F, "dropout"):
        pytest.skip("nn.functional.dropout is not implemented yet")
    x = gg.from_numpy(np.linspace(0.5, 2.0, 200))
    y = op_db.F.dropout(x, 0.25).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], x.numpy()[kept] / 0.75, rtol=1e-15)
    assert 0 < kept.sum() < 200


# ---------------------------------------------------------------- registry coverage

def _prims_of(out: Any) -> set[str]:
    seen, names, stack = set(), set(), [o.grad_fn for o in _outputs(out)
                                        if isinstance(o, gg.Tensor) and o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        p = getattr(node, "prim", None)
        if p is not None:
            names.add(p.name)
        stack.extend(n for n, _ in node.next_functions)
    return names


def test_every_primitive_with_a_vjp_has_a_sweep_entry() -> None:
    used: set[str] = set()
    for e, s, _ in CASES:
        if e.available() and e.xfail_reason("fwd", s) is None:
            used |= _prims_of(_call(e, s))
    with_vjp = {name for name, p in PRIMITIVES.items() if p.vjp is not None}
    missing = sorted(with_vjp - used)
    assert not missing, f"primitives with a VJP rule but no sweep entry: {missing}"


def test_table_covers_the_sample_space() -> None:
    """The samples really include 0-d, zero-size, rank-4, strided and scalar-left inputs."""
    shapes = [a.value.shape for _, s, _ in CASES for a in op_db._flat_args(s.args)]
    assert () in shapes and any(0 in sh for sh in shapes) and any(len(sh) == 4 for sh in shapes)
    layouts = {lay for _, s, _ in CASES for lay in s.layouts}
    assert {"c", "T", "step2", "rev"} <= layouts
    assert any(op_db._scalar_left(s) for _, s, _ in CASES)


# ---------------------------------------------------------------- the table against PyTorch

@pytest.mark.filterwarnings("ignore:.*degrees of freedom")  # torch's, on zero-size var/std
def test_hard_coded_names_match_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table's grad_fn names are PyTorch 2.13's (runs only where torch is installed)."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(op_db, "gg", torch)
    monkeypatch.setattr(op_db, "F", torch.nn.functional)
    wrong = []
    for e, s, ident in CASES:
        want = e.expected_name(s)
        if want is None or not e.torch or "rev" in s.layouts:
            continue
        try:
            out = e.op(*build_args(s.args, torch), **s.kwargs)
        except Exception as exc:  # noqa: BLE001  (reported below with the sample's id)
            wrong.append(f"{ident}: torch raised {type(exc).__name__}: {exc}")
            continue
        outs = [o for o in _outputs(out) if isinstance(o, torch.Tensor) and o.requires_grad]
        names = {type(o.grad_fn).__name__ for o in outs}
        if names != {want}:
            wrong.append(f"{ident}: table {want}, torch {names}")
    assert not wrong, "\n".join(wrong)
