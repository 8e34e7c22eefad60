"""The operation table driving ``test_sweep.py``: one entry per differentiable operation.

Each :class:`OpEntry` names a gradgen operation (a primitive, a front-end function, a
method, an operator or an ``nn.functional`` composite), a numpy float64 reference for
its forward value, a generator of sample inputs, the PyTorch ``grad_fn`` class name of
its output (hard-coded from torch 2.13.0), the points its samples keep away from
(``kinks``) and whether its second derivative is claimed (``gradgrad``).

Ops are written against the module globals ``gg`` and ``F``, so a torch-gated test can
rebind them to ``torch`` / ``torch.nn.functional`` and check the hard-coded names.
Kink values (where the derivative is a convention) are in ``KINKS``, with PyTorch's
values written out.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.ops import get as prim

INF = math.inf


@dataclass(frozen=True)
class Arg:
    """A tensor argument: its float64 (or integer/bool) values and how it is laid out.

    ``layout`` is ``"c"`` (contiguous), ``"T"`` (``.T`` of a contiguous rank-2 tensor),
    ``"step2"`` (``[::2]`` of a tensor twice as long) or ``"rev"`` (a reversed numpy array:
    negative strides, which gradgen's internals can meet though no public constructor takes them)
    """

    value: np.ndarray
    layout: str = "c"
    grad: bool = True

    def describe(self) -> str:
        v = self.value
        kind = {"f": "f", "i": "i", "b": "b"}[v.dtype.kind]
        tag = "" if self.layout == "c" else "." + self.layout
        return f"{kind}{list(v.shape)}{tag}".replace(" ", "") + ("" if self.grad else "!")


@dataclass
class Sample:
    """One call: positional arguments (Args or plain values) and keyword arguments."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad_fn: str | None = None      # overrides the entry's name for this sample
    gradgrad: bool = True
    desc: str = ""

    def __post_init__(self) -> None:
        if not self.desc:
            parts = [_describe(a) for a in self.args]
            parts += [f"{k}={_describe(v)}" for k, v in self.kwargs.items()]
            self.desc = ",".join(parts)

    @property
    def layouts(self) -> set[str]:
        return {a.layout for a in _flat_args(self.args)}


def _describe(v: Any) -> str:
    if isinstance(v, Arg):
        return v.describe()
    if isinstance(v, tuple):
        return "(" + ",".join(_describe(x) for x in v) + ")"
    if isinstance(v, slice):
        return ":".join("" if x is None else str(x) for x in (v.start, v.stop, v.step))
    if v is Ellipsis:
        return "..."
    return repr(v).replace(" ", "")


def _flat_args(args: Any) -> list[Arg]:
    out: list[Arg] = []
    for a in args:
        if isinstance(a, Arg):
            out.append(a)
        elif isinstance(a, tuple):
            out += _flat_args(a)
    return out


@dataclass
class OpEntry:
    """One differentiable operation of the sweep."""

    name: str
    op: Callable[..., Any]
    ref: Callable[..., Any] | None
    samples: Callable[["OpEntry", np.random.Generator], list[Sample]]
    grad_fn: str | Callable[[Sample], str | None] | None = None
    gradgrad: bool = True
    kinks: tuple[float, ...] = ()
    domain: tuple[float, float] = (-2.0, 2.0)
    scalar: float = 1.5              # the Python scalar used in tensor-scalar samples
    needs: str | None = None         # attribute path that must exist (op still landing)
    xfail: dict[str, str] = field(default_factory=dict)  # "check:desc" (or "check:*") -> reason
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
    fwd_rtol: float = 1e-12
    torch: bool = True               # the op runs unchanged on torch (for the name check)

    def expected_name(self, s: Sample) -> str | None:
        if s.grad_fn is not None:
            return s.grad_fn
        return self.grad_fn(s) if callable(self.grad_fn) else self.grad_fn

    def xfail_reason(self, check: str, s: Sample) -> str | None:
        return self.xfail.get(f"{check}:{s.desc}") or self.xfail.get(f"{check}:*")

    def available(self) -> bool:
        if self.needs is None:
            return True
        obj: Any = gg
        for part in self.needs.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return False
        return True

    def make_samples(self) -> list[Sample]:
        return self.samples(self, np.random.default_rng(zlib.crc32(self.name.encode())))


@dataclass
class KinkCase:
    """The gradient of ``fn(*inputs).sum()`` at a kink, as PyTorch 2.13 defines it.

    ``grads`` holds one expected gradient per input (``None``: the input does not
    require grad).
    """

    name: str
    fn: Callable[..., Any]
    inputs: list
    grads: list
    needs: str | None = None
    xfail: str | None = None


# ---------------------------------------------------------------- sample values

def draw(e: OpEntry, rng: np.random.Generator, shape: tuple, margin: float = 0.15) -> np.ndarray:
    """Uniform values in ``e.domain``, each at least ``margin`` from every kink."""
    lo, hi = e.domain
    v = rng.uniform(lo, hi, shape)
    for k in e.kinks:
        near = np.abs(v - k) < margin
        v = np.where(near, k + np.where(v >= k, 1.0, -1.0) * (margin + rng.uniform(0, 0.1, shape)), v)
    return v


def distinct(rng: np.random.Generator, shape: tuple, positive: bool = False) -> np.ndarray:
    """Values of magnitude in [0.5, 1.5] spaced >= 1/n apart in |x|: no ties, no zeros."""
    n = int(np.prod(shape))
    mags = 0.5 + rng.permutation(n) / max(n, 1)
    signs = 1.0 if positive else rng.choice([-1.0, 1.0], n)
    return (mags * signs).reshape(shape)


UNARY_SHAPES = [(), (1,), (4,), (2, 3), (2, 0, 3), (2, 1, 3, 2)]


def unary(e: OpEntry, rng: np.random.Generator, **kw: Any) -> list[Sample]:
    """Ranks 0-4, size-1 and zero-size dims, and the three strided layouts."""
    out = [Sample((Arg(draw(e, rng, s)),), dict(kw)) for s in UNARY_SHAPES]
    out += [Sample((Arg(draw(e, rng, (3, 2)), "T"),), dict(kw)),
            Sample((Arg(draw(e, rng, (3,)), "step2"),), dict(kw)),
            Sample((Arg(draw(e, rng, (2, 3)), "rev"),), dict(kw))]
    return out


BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((3, 1), (2, 1, 4)),
                 ((), (2, 2)), ((2, 2), ()), ((0, 3), (1, 3)), ((1,), (1,)),
                 ((2, 1, 3, 1), (1, 2, 1, 2))]


def binary(e: OpEntry, rng: np.random.Generator) -> list[Sample]:
    """Broadcasting on either side, tensor-scalar both ways, strided layouts, a constant."""
    d = lambda s: draw(e, rng, s)  # noqa: E731
    out = [Sample((Arg(d(a)), Arg(d(b)))) for a, b in BINARY_SHAPES]
    out += [Sample((Arg(d((2, 3))), e.scalar)), Sample((e.scalar, Arg(d((2, 3))))),
            Sample((Arg(d((3, 2)), "T"), Arg(d((3, 2))))),
            Sample((Arg(d((2, 3))), Arg(d((2, 3)), "rev"))),
            Sample((Arg(d((3,)), "step2"), Arg(d((2, 3))))),
            Sample((Arg(d((2, 3))), Arg(d((3,)), grad=False))),
            Sample((Arg(d((2,)), grad=False), Arg(d((3, 2)), "T")))]
    return out


def apart(e: OpEntry, rng: np.random.Generator) -> list[Sample]:
    """Binary samples whose operands (after broadcasting) never tie."""
    out = []
    for s in binary(e, rng):
        vals = [a.value if isinstance(a, Arg) else np.float64(a) for a in s.args]
        x, y = np.broadcast_arrays(*vals)
        if x.size and np.min(np.abs(x - y)) < 0.05:
            continue
        out.append(s)
    return out


# ---------------------------------------------------------------- numpy references

def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x) if np.size(x) else np.asarray(x, float)


def _ax(dim: Any, a: np.ndarray | None = None) -> Any:
    """numpy's ``axis`` for a gradgen ``dim`` (a 0-d tensor reduces over dim 0 or -1 too)."""
    if a is not None and a.ndim == 0:
        return None
    return tuple(dim) if isinstance(dim, list) else dim


def _softmax(a: np.ndarray, dim: int) -> np.ndarray:
    z = np.exp(a - np.max(a, axis=dim, keepdims=True)) if a.size else a
    return z / np.sum(z, axis=dim, keepdims=True) if a.size else a


def _log_softmax(a: np.ndarray, dim: int) -> np.ndarray:
    if not a.size:
        return a
    m = np.max(a, axis=dim, keepdims=True)
    return a - m - np.log(np.sum(np.exp(a - m), axis=dim, keepdims=True))


def _reduce(values: np.ndarray, reduction: str, weights: np.ndarray | None = None) -> np.ndarray:
    if reduction == "none":
        return values
    if reduction == "sum":
        return np.sum(values)
    return np.sum(values) / (np.sum(weights) if weights is not None else values.size)


def _nll(logp: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    if logp.ndim == 1:
        return _reduce(-logp[target], reduction)
    picked = -np.take_along_axis(logp, target[:, None], axis=1)[:, 0]
    return _reduce(picked, reduction)


def _layer_norm(a: np.ndarray, shape: tuple, w: Any = None, b: Any = None, eps: float = 1e-5) -> np.ndarray:
    axes = tuple(range(a.ndim - len(shape), a.ndim))
    m = np.mean(a, axis=axes, keepdims=True)
    v = np.mean((a - m) ** 2, axis=axes, keepdims=True)
    y = (a - m) / np.sqrt(v + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def _softplus(a: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    return np.where(a * beta > threshold, a, np.log1p(np.exp(a * beta)) / beta)


def _gelu(a: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))
    return 0.5 * a * (1 + _erf(a / math.sqrt(2)))


def _norm(a: np.ndarray, p: Any = 2, dim: Any = None, keepdim: bool = False) -> np.ndarray:
    ax = _ax(dim, a)
    if p == INF:
        return np.max(np.abs(a), axis=ax, keepdims=keepdim)
    return np.sum(np.abs(a) ** p, axis=ax, keepdims=keepdim) ** (1.0 / p)


def _arg_extreme(fn: Callable, a: np.ndarray, dim: int, keepdim: bool) -> np.ndarray:
    return fn(a, axis=dim, keepdims=keepdim).astype(np.int64)



# ---------------------------------------------------------------- elementwise math

def _name_if(cond: Callable[[Sample], bool], yes: str, no: str) -> Callable[[Sample], str]:
    return lambda s: yes if cond(s) else no


def _scalar_left(s: Sample) -> bool:
    return not isinstance(s.args[0], Arg) and not isinstance(s.args[0], np.ndarray)


def _with_scalars(fn: Callable) -> Callable:
    """A numpy reference that accepts Python scalars as float64 operands."""
    return lambda *a, **k: fn(*(np.float64(x) if isinstance(x, (int, float)) else x for x in a), **k)


def _unary_entry(name: str, op: Callable, ref: Callable, grad_fn: str, **kw: Any) -> OpEntry:
    return OpEntry(name, op, ref, unary, grad_fn, **kw)


POS = (0.1, 2.0)
ENTRIES: list[OpEntry] = [
    _unary_entry("neg", lambda x: -x, np.negative, "NegBackward0"),
    _unary_entry("neg_fn", lambda x: gg.neg(x), np.negative, "NegBackward0"),
    _unary_entry("abs", lambda x: gg.abs(x), np.abs, "AbsBackward0", kinks=(0.0,)),
    _unary_entry("abs_builtin", lambda x: abs(x), np.abs, "AbsBackward0", kinks=(0.0,)),
    _unary_entry("exp", lambda x: gg.exp(x), np.exp, "ExpBackward0"),
    _unary_entry("log", lambda x: gg.log(x), np.log, "LogBackward0", domain=POS),
    _unary_entry("log1p", lambda x: x.log1p(), np.log1p, "Log1PBackward0", domain=(-0.8, 2.0)),
    _unary_entry("expm1", lambda x: gg.expm1(x), np.expm1, "Expm1Backward0"),
    _unary_entry("sqrt", lambda x: gg.sqrt(x), np.sqrt, "SqrtBackward0", domain=POS),
    _unary_entry("rsqrt", lambda x: x.rsqrt(), lambda a: 1 / np.sqrt(a), "RsqrtBackward0", domain=POS),
    _unary_entry("sin", lambda x: gg.sin(x), np.sin, "SinBackward0"),
    _unary_entry("cos", lambda x: x.cos(), np.cos, "CosBackward0"),
    _unary_entry("tanh", lambda x: gg.tanh(x), np.tanh, "TanhBackward0"),
    _unary_entry("sigmoid", lambda x: gg.sigmoid(x), lambda a: 1 / (1 + np.exp(-a)), "SigmoidBackward0"),
    _unary_entry("relu", lambda x: gg.relu(x), lambda a: np.maximum(a, 0), "ReluBackward0", kinks=(0.0,)),
    _unary_entry("erf", lambda x: gg.erf(x), _erf, "ErfBackward0", fwd_rtol=1e-14),
    _unary_entry("square", lambda x: gg.square(x), np.square, "PowBackward0"),
    _unary_entry("reciprocal", lambda x: x.reciprocal(), lambda a: 1 / a, "ReciprocalBackward0",
                 kinks=(0.0,)),
    _unary_entry("sign", lambda x: gg.sign(x), np.sign, "SignBackward0", kinks=(0.0,)),
    _unary_entry("log2", lambda x: gg.log2(x), np.log2, "Log2Backward0", domain=POS, fwd_rtol=1e-14),
    _unary_entry("log10", lambda x: x.log10(), np.log10, "Log10Backward0", domain=POS,
                 fwd_rtol=1e-14),
    OpEntry("add", lambda a, b: a + b, _with_scalars(np.add), binary, "AddBackward0"),
    OpEntry("add_alpha", lambda a, b: gg.add(a, b, alpha=2), lambda a, b: a + 2 * b,
            lambda e, r: binary(e, r)[:4], "AddBackward0"),
    OpEntry("sub", lambda a, b: a - b, _with_scalars(np.subtract), binary,
            _name_if(_scalar_left, "RsubBackward1", "SubBackward0")),
    OpEntry("mul", lambda a, b: a * b, _with_scalars(np.multiply), binary, "MulBackward0"),
    OpEntry("div", lambda a, b: a / b, _with_scalars(np.divide), binary,
            _name_if(_scalar_left, "MulBackward0", "DivBackward0"), kinks=(0.0,)),
    OpEntry("maximum", lambda a, b: gg.maximum(a, b), np.maximum,
            lambda e, r: [s for s in apart(e, r) if len(_flat_args(s.args)) == 2],
            "MaximumBackward0"),
    OpEntry("minimum", lambda a, b: gg.minimum(a, b), np.minimum,
            lambda e, r: [s for s in apart(e, r) if len(_flat_args(s.args)) == 2],
            "MinimumBackward0"),
]


def _pow_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    pos = lambda s: r.uniform(0.5, 2.0, s)  # noqa: E731
    mixed = lambda s: draw(e, r, s)  # noqa: E731
    ex = lambda s: r.uniform(-2.0, 2.0, s)  # noqa: E731
    return [Sample((Arg(pos((2, 3))), Arg(ex((2, 3))))),
            Sample((Arg(pos((2, 3))), Arg(ex((3,))))),
            Sample((Arg(pos((3,))), Arg(ex((2, 1, 3))))),
            Sample((Arg(pos(())), Arg(ex((2, 2))))),
            Sample((Arg(pos((0, 2))), Arg(ex((1, 2))))),
            Sample((Arg(pos((3, 2)), "T"), Arg(ex((2,)), "step2"))),
            Sample((Arg(pos((2, 3)), "rev"), Arg(ex((2, 3)), grad=False))),
            Sample((Arg(mixed((2, 3))), 2)), Sample((Arg(mixed((2, 3))), 3.0)),
            Sample((Arg(mixed((2, 1, 3, 2))), 2)), Sample((Arg(pos((2, 3))), 0.5)),
            Sample((Arg(pos((4,))), -1.5)), Sample((Arg(mixed((2, 3))), 0)),
            Sample((Arg(mixed(())), 2)), Sample((1.5, Arg(ex((2, 3))))),
            Sample((Arg(pos((2, 3))), Arg(np.array(2.0))))]


def _pow_name(s: Sample) -> str:
    if _scalar_left(s):
        return "PowBackward2"
    return "PowBackward1" if isinstance(s.args[1], Arg) else "PowBackward0"


def _where_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    c = lambda s: Arg(r.uniform(size=s) > 0.5, grad=False)  # noqa: E731
    d = lambda s, *a: Arg(draw(e, r, s), *a)  # noqa: E731
    return [Sample((c((2, 3)), d((2, 3)), d((2, 3)))), Sample((c((2, 3)), d((3,)), d(()))),
            Sample((c((3,)), d((2, 1)), d((2, 3)))), Sample((c(()), d(()), d(()))),
            Sample((c((2, 3)), d((2, 3)), 0.0)), Sample((c((2, 3)), 1.5, d((2, 3)))),
            Sample((c((0, 3)), d((0, 3)), d((3,)))), Sample((c((2, 1, 3, 2)), d((2, 1, 3, 2)), d((2,)))),
            Sample((c((3, 2)), d((3, 2), "T"), d((3, 2), "rev"))), Sample((c((3,)), d((3,), "step2"), 2.0))]


def _clamp_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    out = []
    for s in unary(e, r):
        out.append(Sample(s.args, {"min": -0.5, "max": 0.5}))
    x = lambda s, *a: Arg(draw(e, r, s), *a)  # noqa: E731
    out += [Sample((x((2, 3)),), {"min": -0.5}), Sample((x((2, 3)),), {"max": 0.5}),
            Sample((x((2, 3)), -0.5)), Sample((x((2, 3)), None, 0.5))]
    # Tensor bounds (ClampBackward0); x keeps away from them (it keeps away from +-0.5).
    lo = lambda s: Arg(-0.5 + r.uniform(-0.05, 0.05, s))  # noqa: E731
    hi = lambda s: Arg(0.5 + r.uniform(-0.05, 0.05, s))  # noqa: E731
    out += [Sample((x((2, 3)), lo((2, 3)), hi((3,)))), Sample((x((2, 3)), lo(()), hi((2, 1)))),
            Sample((x((3,)), lo((2, 3)), None)), Sample((x((3, 2), "T"), None, hi((3, 2))))]
    return out


def _clamp_ref(a: np.ndarray, min: Any = None, max: Any = None) -> np.ndarray:
    if min is not None:
        a = np.where(a < min, min, a)
    if max is not None:
        a = np.where(a > max, max, a)
    return np.asarray(a, np.float64)


ENTRIES += [
    OpEntry("pow", lambda a, b: a ** b, _with_scalars(np.power), _pow_samples, _pow_name),
    OpEntry("pow_fn", lambda a, b: gg.pow(a, b), _with_scalars(np.power),
            lambda e, r: _pow_samples(e, r)[:8], _pow_name),
    OpEntry("where", lambda c, a, b: gg.where(c, a, b), _with_scalars(np.where), _where_samples,
            "WhereBackward0"),
    OpEntry("clamp", lambda x, *a, **k: gg.clamp(x, *a, **k), _clamp_ref, _clamp_samples,
            _name_if(lambda s: any(isinstance(a, Arg) for a in s.args[1:]), "ClampBackward0",
                     "ClampBackward1"), kinks=(-0.5, 0.5)),
    OpEntry("clamp_min", lambda x: x.clamp_min(0.2), lambda a: np.maximum(a, 0.2), unary,
            "ClampMinBackward0", kinks=(0.2,)),
]


# ---------------------------------------------------------------- kinks (PyTorch 2.13's values)

KINKS: list[KinkCase] = [
    KinkCase("relu_at_0", lambda x: gg.relu(x), [[0.0, -1.0, 1.0]], [[0.0, 0.0, 1.0]]),
    KinkCase("abs_at_0", lambda x: gg.abs(x), [[0.0, -1.0, 1.0]], [[0.0, -1.0, 1.0]]),
    KinkCase("sign_everywhere", lambda x: gg.sign(x), [[0.0, -1.0, 1.0]], [[0.0, 0.0, 0.0]]),
    KinkCase("clamp_at_bounds", lambda x: gg.clamp(x, -1.0, 1.0), [[-1.0, 1.0, 0.0, 2.0, -2.0]],
             [[1.0, 1.0, 1.0, 0.0, 0.0]]),
    KinkCase("clamp_min_at_bound", lambda x: x.clamp(min=0.0), [[0.0]], [[1.0]]),
    KinkCase("clamp_tensor_bounds", lambda x, lo, hi: gg.clamp(x, lo, hi),
             [[-1.0, 1.0, 0.5], [-1.0, 0.0, 0.0], [1.0, 1.0, 0.0]],
             [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    KinkCase("maximum_ties_split", lambda x, y: gg.maximum(x, y), [[1.0, 2.0, 3.0], [1.0, 1.0, 4.0]],
             [[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]]),
    KinkCase("minimum_ties_split", lambda x, y: gg.minimum(x, y), [[1.0, 2.0, 3.0], [1.0, 1.0, 4.0]],
             [[0.5, 0.0, 1.0], [0.5, 1.0, 0.0]]),
    KinkCase("sqrt_at_0", lambda x: gg.sqrt(x), [[0.0]], [[INF]]),
    KinkCase("rsqrt_at_0", lambda x: gg.rsqrt(x), [[0.0]], [[-INF]]),
    KinkCase("log_at_0", lambda x: gg.log(x), [[0.0]], [[INF]]),
    KinkCase("log1p_at_-1", lambda x: gg.log1p(x), [[-1.0]], [[INF]]),
    KinkCase("reciprocal_at_0", lambda x: gg.reciprocal(x), [[0.0]], [[-INF]]),
    KinkCase("pow_base_0", lambda x: x ** 2, [[0.0]], [[0.0]]),
    KinkCase("pow_exponent_0", lambda x: x ** 0, [[0.0, 2.0]], [[0.0, 0.0]]),
    KinkCase("pow_half_at_0", lambda x: x ** 0.5, [[0.0]], [[INF]]),
    KinkCase("pow_tensor_at_0", lambda x, y: x ** y, [[0.0, 0.0, 0.0], [2.0, 0.0, -1.0]],
             [[0.0, 0.0, -INF], [0.0, 0.0, -INF]]),
    KinkCase("rpow_base_0", lambda y: 0.0 ** y, [[2.0, 0.0]], [[0.0, 0.0]]),
    KinkCase("where_unselected", lambda c, a: gg.where(c > 0, a, 0.0), [[1.0, -1.0], [2.0, 3.0]],
             [None, [1.0, 0.0]]),
]


# ---------------------------------------------------------------- reductions

RED_SHAPES = [(), (4,), (2, 3), (2, 3, 2), (1, 2, 1, 3), (2, 0, 3)]


def _count(shape: tuple, dim: Any) -> int:
    if dim is None:
        return int(np.prod(shape))
    dims = (dim,) if isinstance(dim, int) else dim
    return int(np.prod([shape[d] for d in dims])) if shape else 1


def reduction(e: OpEntry, rng: np.random.Generator, tuples: bool = True, whole: bool = True,
              min_count: int = 0, nonempty: bool = False, values: Callable | None = None,
              **kw: Any) -> list[Sample]:
    """Whole-tensor and ``dim``/``keepdim`` reductions over ranks 0-4 and strided layouts."""
    val = values or (lambda s: draw(e, rng, s))
    cases: list[tuple[tuple, str, dict]] = []
    for shape in RED_SHAPES:
        n = len(shape)
        if whole:
            cases.append((shape, "c", {}))
        cases.append((shape, "c", {"dim": 0}))
        cases.append((shape, "c", {"dim": -1, "keepdim": True}))
        if n >= 3:
            cases.append((shape, "c", {"dim": 1}))
        if n >= 2 and tuples:
            cases.append((shape, "c", {"dim": (0, -1), "keepdim": n % 2 == 0}))
    cases += [((3, 2), "T", {"dim": 0}), ((3, 2), "T", {"dim": -1, "keepdim": True}),
              ((4,), "step2", {"dim": 0} if not whole else {}), ((2, 3), "rev", {"dim": -1})]
    out = []
    for shape, layout, dims in cases:
        count = _count(shape, dims.get("dim"))
        if count < max(min_count, 1 if nonempty else 0):
            continue
        if nonempty and 0 in shape and dims.get("dim") is None:
            continue
        out.append(Sample((Arg(val(shape), layout),), {**dims, **kw}))
    return out


def _dim_name(yes: str, no: str) -> Callable[[Sample], str]:
    return _name_if(lambda s: "dim" in s.kwargs, yes, no)


def _np_red(fn: Callable) -> Callable:
    return lambda a, dim=None, keepdim=False, **kw: np.asarray(fn(a, axis=_ax(dim, a), keepdims=keepdim, **kw))


def _max_dim_ref(fn: Callable, arg: Callable) -> Callable:
    def ref(a: np.ndarray, dim: Any = None, keepdim: bool = False) -> Any:
        if dim is None:
            return np.asarray(fn(a))
        return (np.asarray(fn(a, axis=_ax(dim, a), keepdims=keepdim)),
                _arg_extreme(arg, a, _ax(dim, a), keepdim))
    return ref


def _mean_ref(a: np.ndarray, dim: Any = None, keepdim: bool = False) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # the mean over an empty dim is nan, as in PyTorch
        return _mean(a, dim, keepdim)


def _mean(a: np.ndarray, dim: Any, keepdim: bool) -> np.ndarray:
    return np.asarray(np.mean(a, axis=_ax(dim, a), keepdims=keepdim)) if a.size else \
        np.asarray(np.sum(a, axis=_ax(dim, a), keepdims=keepdim) / _count(a.shape, dim))


def _logsumexp_ref(a: np.ndarray, dim: Any, keepdim: bool = False) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(np.sum(np.exp(a), axis=_ax(dim, a), keepdims=keepdim)))


def _var_ref(sqrt: bool) -> Callable:
    def ref(a: np.ndarray, dim: Any = None, keepdim: bool = False, correction: float = 1,
            unbiased: Any = None) -> np.ndarray:
        ddof = correction if unbiased is None else int(unbiased)
        v = np.var(a, axis=_ax(dim, a), ddof=ddof, keepdims=keepdim)
        return np.asarray(np.sqrt(v) if sqrt else v)
    return ref


def _distinct_values(rng: np.random.Generator) -> Callable:
    return lambda s: distinct(rng, s)


_single_dim = dict(tuples=False)
ENTRIES += [
    OpEntry("sum", lambda x, **k: x.sum(**k), _np_red(np.sum), reduction,
            _dim_name("SumBackward1", "SumBackward0")),
    OpEntry("sum_fn", lambda x, **k: gg.sum(x, **k), _np_red(np.sum),
            lambda e, r: reduction(e, r, whole=False), "SumBackward1"),
    OpEntry("mean", lambda x, **k: x.mean(**k), _mean_ref, reduction,
            _dim_name("MeanBackward1", "MeanBackward0")),
    OpEntry("prod", lambda x, **k: x.prod(**k), _np_red(np.prod),
            lambda e, r: reduction(e, r, **_single_dim) + [
                Sample((Arg(np.array([0.0, 2.0, 3.0])),)),
                Sample((Arg(np.array([[0.0, 2.0], [0.0, 3.0], [1.5, 0.5]])),), {"dim": 0}),
                Sample((Arg(np.array([[0.0, 2.0, 0.0], [1.0, 3.0, 0.5]])),), {"dim": 1})],
            _dim_name("ProdBackward1", "ProdBackward0")),
    OpEntry("max", lambda x, *a, **k: x.max(*a, **k), _max_dim_ref(np.max, np.argmax),
            lambda e, r: reduction(e, r, nonempty=True, values=_distinct_values(r), **_single_dim),
            _dim_name("MaxBackward0", "MaxBackward1")),
    OpEntry("min", lambda x, **k: gg.min(x, **k), _max_dim_ref(np.min, np.argmin),
            lambda e, r: reduction(e, r, nonempty=True, values=_distinct_values(r), **_single_dim),
            _dim_name("MinBackward0", "MinBackward1")),
    OpEntry("amax", lambda x, **k: x.amax(**k), _np_red(np.max),
            lambda e, r: reduction(e, r, nonempty=True, values=_distinct_values(r)), "AmaxBackward0"),
    OpEntry("amin", lambda x, **k: gg.amin(x, **k), _np_red(np.min),
            lambda e, r: reduction(e, r, nonempty=True, values=_distinct_values(r)), "AminBackward0"),
    OpEntry("var", lambda x, **k: x.var(**k), _var_ref(False),
            lambda e, r: reduction(e, r, min_count=2), "VarBackward0"),
    OpEntry("var_correction0", lambda x, **k: gg.var(x, **k), _var_ref(False),
            lambda e, r: reduction(e, r, min_count=1, correction=0)[::2], "VarBackward0"),
    OpEntry("var_unbiased_false", lambda x, **k: x.var(**k), _var_ref(False),
            lambda e, r: reduction(e, r, min_count=1, unbiased=False)[1::3], "VarBackward0"),
    OpEntry("std", lambda x, **k: x.std(**k), _var_ref(True),
            lambda e, r: reduction(e, r, min_count=2), "StdBackward0"),
    OpEntry("std_correction0", lambda x, **k: gg.std(x, **k), _var_ref(True),
            lambda e, r: reduction(e, r, min_count=1, correction=0)[::2], "StdBackward0"),
    OpEntry("logsumexp", lambda x, **k: x.logsumexp(**k), _logsumexp_ref,
            lambda e, r: reduction(e, r, whole=False), "LogsumexpBackward0"),
    OpEntry("norm", lambda x, *a, **k: x.norm(*a, **k), lambda a, p=2, **k: _norm(a, p, **k),
            lambda e, r: reduction(e, r, min_count=1), "LinalgVectorNormBackward0", kinks=(0.0,)),
    OpEntry("norm_p", lambda x, *a, **k: gg.norm(x, *a, **k),
            lambda a, p=2, **k: _norm(a, p, **k),
            lambda e, r: [Sample(s.args, {"p": p, **s.kwargs}) for p in (1, 3, INF)
                          for s in reduction(e, r, min_count=1, values=_distinct_values(r))[::3]],
            "LinalgVectorNormBackward0", kinks=(0.0,)),
]


# ---------------------------------------------------------------- shape

def _shape_samples(cases: list[tuple]) -> Callable:
    """Samples from (shape, layout, extra positional args, kwargs) tuples."""
    def gen(e: OpEntry, r: np.random.Generator) -> list[Sample]:
        return [Sample((Arg(draw(e, r, shape), layout),) + tuple(args), dict(kw))
                for shape, layout, args, kw in cases]
    return gen


def _view_name(s: Sample) -> str:
    # PyTorch: a view when the strides allow one (ViewBackward0, or ReshapeAliasBackward0 for a
    # strided input), else a copy then _unsafe_view.
    if s.layouts == {"step2"}:
        return "ReshapeAliasBackward0"
    return "UnsafeViewBackward0" if s.layouts - {"c"} else "ViewBackward0"


def _sizes(args: tuple) -> tuple:
    """``f(2, 3)`` or ``f((2, 3))``: the sizes as one tuple."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _np_swap(a: np.ndarray, d0: int, d1: int) -> np.ndarray:
    return np.swapaxes(a, d0, d1)


def _np_squeeze(a: np.ndarray, dim: Any = None) -> np.ndarray:
    if dim is None:
        return np.squeeze(a)
    dims = (dim,) if isinstance(dim, int) else dim
    dims = tuple(d % max(a.ndim, 1) for d in dims if a.ndim and a.shape[d] == 1)
    return np.squeeze(a, dims) if dims else a


def _np_expand(a: np.ndarray, *shape: int) -> np.ndarray:
    lead = len(shape) - a.ndim
    full = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return np.broadcast_to(a, full)


def _np_flatten(a: np.ndarray, start_dim: int = 0, end_dim: int = -1) -> np.ndarray:
    if a.ndim == 0:
        return a.reshape(1)
    s, e = start_dim % a.ndim, end_dim % a.ndim
    return a.reshape(a.shape[:s] + (-1,) + a.shape[e + 1:]) if a.size else \
        a.reshape(a.shape[:s] + (int(np.prod(a.shape[s:e + 1])),) + a.shape[e + 1:])


def _np_split(a: np.ndarray, size: Any, dim: int = 0) -> tuple:
    n = a.shape[dim]
    sizes = list(size) if isinstance(size, (list, tuple)) else [min(size, n - i) for i in range(0, n, size)]
    return tuple(np.split(a, np.cumsum(sizes)[:-1], axis=dim))


def _np_chunk(a: np.ndarray, chunks: int, dim: int = 0) -> tuple:
    n = a.shape[dim]
    return _np_split(a, -(-n // chunks), dim)


def _seq_samples(cases: list[tuple]) -> Callable:
    """Samples for cat/stack: (shapes, layouts, kwargs)."""
    def gen(e: OpEntry, r: np.random.Generator) -> list[Sample]:
        return [Sample(tuple(Arg(draw(e, r, sh), lay) for sh, lay in zip(shapes, layouts)), dict(kw))
                for shapes, layouts, kw in cases]
    return gen


C = "c"
ENTRIES += [
    OpEntry("reshape", lambda x, *shape: x.reshape(*shape), lambda a, *shape: a.reshape(_sizes(shape)),
            _shape_samples([((2, 3), C, (3, 2), {}), ((2, 3), C, (-1,), {}), ((), C, (1, 1), {}),
                            ((1,), C, ((),), {}), ((2, 0, 3), C, (0, 6), {}),
                            ((2, 1, 3, 2), C, (3, -1), {}), ((3, 2), "T", (6,), {}),
                            ((4,), "step2", (2, 2), {}), ((2, 3), "rev", (3, 2), {})]), _view_name),
    OpEntry("view", lambda x, *shape: x.view(*shape), lambda a, *shape: a.reshape(shape),
            _shape_samples([((2, 3), C, (3, 2), {}), ((2, 3), C, (-1,), {}), ((), C, (1,), {}),
                            ((2, 0, 3), C, (3, 0), {}), ((2, 1, 3, 2), C, (2, 3, 2), {})]),
            "ViewBackward0"),
    OpEntry("flatten", lambda x, **k: x.flatten(**k), _np_flatten,
            _shape_samples([((2, 3, 2), C, (), {}), ((2, 3, 2), C, (), {"start_dim": 1}),
                            ((1, 2, 1, 3), C, (), {"start_dim": 1, "end_dim": -2}), ((), C, (), {}),
                            ((2, 0, 3), C, (), {}), ((3, 2), "T", (), {})]),
            lambda s: None if not s.args[0].value.ndim else _view_name(s)),
    OpEntry("transpose", lambda x, d0, d1: x.transpose(d0, d1), _np_swap,
            _shape_samples([((2, 3), C, (0, 1), {}), ((2, 3, 2), C, (-1, 0), {}),
                            ((1, 2, 1, 3), C, (1, 3), {}), ((2, 0, 3), C, (0, 2), {}),
                            ((3, 2), "T", (0, 1), {}), ((4,), "step2", (0, -1), {})]),
            "TransposeBackward0"),
    OpEntry("permute", lambda x, *dims: x.permute(*dims), lambda a, *dims: np.transpose(a, _sizes(dims)),
            _shape_samples([((2, 3, 2), C, (2, 0, 1), {}), ((1, 2, 1, 3), C, (3, 1, 0, 2), {}),
                            ((2, 3), C, (-1, 0), {}), ((), C, ((),), {}), ((2, 0, 3), C, (1, 2, 0), {}),
                            ((2, 3), "rev", (1, 0), {})]), "PermuteBackward0"),
    OpEntry("t", lambda x: x.t(), lambda a: a.T,
            _shape_samples([((2, 3), C, (), {}), ((3,), C, (), {}), ((), C, (), {}),
                            ((0, 2), C, (), {}), ((3, 2), "T", (), {})]),
            "TBackward0"),
    OpEntry("T", lambda x: x.T, lambda a: a.T,
            _shape_samples([((2, 3), C, (), {}), ((3, 2), "T", (), {}), ((2, 4), "rev", (), {})]),
            "PermuteBackward0"),
    OpEntry("unsqueeze", lambda x, d: x.unsqueeze(d), np.expand_dims,
            _shape_samples([((2, 3), C, (0,), {}), ((2, 3), C, (-1,), {}), ((2, 3), C, (1,), {}),
                            ((), C, (0,), {}), ((2, 0, 3), C, (-2,), {}), ((3, 2), "T", (1,), {})]),
            "UnsqueezeBackward0"),
    OpEntry("squeeze", lambda x, *a: x.squeeze(*a), _np_squeeze,
            _shape_samples([((1, 2, 1, 3), C, (), {}), ((1, 2, 1, 3), C, (0,), {}),
                            ((1, 2, 1, 3), C, (-2,), {}), ((2, 3), C, (0,), {}),
                            ((1, 2, 1, 3), C, ((0, 2),), {}), ((), C, (), {}), ((1, 0, 1), C, (), {}),
                            ((1,), "step2", (0,), {})]),
            lambda s: "SqueezeBackward0" if len(s.args) == 1 else
            "SqueezeBackward2" if isinstance(s.args[1], tuple) else "SqueezeBackward1"),
    OpEntry("expand", lambda x, *shape: x.expand(*shape), _np_expand,
            _shape_samples([((3,), C, (2, 3), {}), ((3, 1), C, (3, 4), {}), ((2, 1), C, (-1, 3), {}),
                            ((), C, (2, 2), {}), ((1,), C, (2, 1, 3), {}), ((1, 3), C, (0, 3), {}),
                            ((2, 1, 3, 1), C, (2, 2, 3, 2), {}), ((2, 1), "rev", (2, 3), {}),
                            ((2, 1), "step2", (3, 2, 2), {})]), "ExpandBackward0"),
    OpEntry("expand_as", lambda x, y: x.expand_as(y), lambda a, b: np.broadcast_to(a, b.shape),
            lambda e, r: [Sample((Arg(draw(e, r, (3,))), Arg(np.zeros((2, 3)), grad=False))),
                          Sample((Arg(draw(e, r, (2, 1))), Arg(np.zeros((2, 2, 4)), grad=False)))],
            "ExpandBackward0"),
    OpEntry("broadcast_to", lambda x, shape: gg.broadcast_to(x, shape),
            lambda a, shape: np.broadcast_to(a, shape),
            _shape_samples([((3,), C, ((2, 3),), {}), ((2, 1), C, ((2, 2, 4),), {}),
                            ((), C, ((3,),), {}), ((3, 2), "T", ((2, 3, 2),), {})]), "ExpandBackward0"),
    OpEntry("cat", lambda *xs, **k: gg.cat(list(xs), **k), lambda *a, dim=0: np.concatenate(a, dim),
            _seq_samples([([(2, 3), (1, 3)], [C, C], {}), ([(2, 3), (2, 1), (2, 2)], [C, C, C], {"dim": 1}),
                          ([(2, 3), (2, 3)], [C, "rev"], {"dim": -1}), ([(3,), (0,)], [C, C], {}),
                          ([(2, 0), (2, 3)], [C, C], {"dim": 1}), ([(3, 2), (1, 2)], ["T", C], {}),
                          ([(1, 2, 1, 2), (1, 2, 2, 2)], [C, C], {"dim": -2}), ([(4,)], ["step2"], {})]),
            "CatBackward0"),
    OpEntry("stack", lambda *xs, **k: gg.stack(list(xs), **k), lambda *a, dim=0: np.stack(a, dim),
            _seq_samples([([(2, 3), (2, 3)], [C, C], {}), ([(2, 3), (2, 3)], [C, "rev"], {"dim": -1}),
                          ([(), ()], [C, C], {}), ([(0, 2), (0, 2)], [C, C], {"dim": 1}),
                          ([(3, 2), (3, 2), (3, 2)], ["T", C, C], {"dim": 1}),
                          ([(1, 2, 1)], [C], {"dim": 3})]), "StackBackward0"),
    OpEntry("split", lambda x, *a, **k: x.split(*a, **k), _np_split,
            _shape_samples([((5, 2), C, (2,), {}), ((2, 5), C, ([1, 3, 1],), {"dim": 1}),
                            ((3, 4), C, (2,), {"dim": -1}), ((2, 3), C, (3,), {}),
                            ((3, 2), "T", (1,), {"dim": 0}), ((4,), "step2", ([2, 0, 2],), {})]),
            lambda s: "SplitWithSizesBackward0" if isinstance(s.args[1], list) else "SplitBackward0"),
    OpEntry("split_fn", lambda x, *a, **k: gg.split(x, *a, **k), _np_split,
            _shape_samples([((1, 2, 4, 1), C, (3,), {"dim": 2})]),
            "SplitBackward0"),
    OpEntry("chunk", lambda x, *a, **k: x.chunk(*a, **k), _np_chunk,
            _shape_samples([((5, 2), C, (2,), {}), ((2, 6), C, (3,), {"dim": 1}),
                            ((3, 4), C, (2,), {"dim": -1}), ((2, 3), "rev", (2,), {"dim": 1})]),
            "SplitBackward0"),
]


# ---------------------------------------------------------------- indexing

def _getitem_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    x = lambda s, lay=C: Arg(draw(e, r, s), lay)  # noqa: E731
    i = lambda v: Arg(np.array(v, dtype=np.int64), grad=False)  # noqa: E731
    mask = Arg(np.array([[True, False, True, True], [False, False, True, False],
                         [True, True, False, False]]), grad=False)
    s = slice
    cases = [(x((3, 4)), 1), (x((3, 4)), -1), (x((3, 4)), s(1, None)), (x((3, 4)), s(None, None, 2)),
             (x((3, 4)), (s(None), s(None, None, 2))), (x((3, 4)), (1, 2)), (x((3, 4)), None),
             (x((2, 3, 4)), (Ellipsis, 1)), (x((2, 3, 4)), (None, Ellipsis, s(1, 3))),
             (x((3, 4)), mask), (x((3, 4)), [0, 2]), (x((3, 4)), [-1, 0, -1]),
             (x((3, 4)), (i([0, 1, 2]), i([3, 0, 3]))), (x((3, 4)), i([[0, 0], [2, 1]])),
             (x((2, 3, 4)), (s(None), i([2, 0]))), (x((0, 3)), (s(None), 1)), (x((3, 4)), s(1, 1)),
             (x((3, 4)), s(1, 10)), (x((4, 3), "T"), s(1, None)), (x((3, 4), "rev"), [0, 2]),
             (x((3, 2), "step2"), (s(None), 0)), (x((1, 2, 1, 3)), (0, s(None), None, s(None, None, 2)))]
    return [Sample((a, idx)) for a, idx in cases]


def _index_name(s: Sample) -> str:
    idx = s.args[1]
    parts = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(p, (list, Arg)) for p in parts):
        return "IndexBackward0"
    last = [p for p in parts if p is not Ellipsis][-1]
    return {int: "SelectBackward0", slice: "SliceBackward0", type(None): "UnsqueezeBackward0"}[type(last)]


def _np_gather(a: np.ndarray, dim: int, idx: np.ndarray) -> np.ndarray:
    # PyTorch allows an index smaller than the input off ``dim``: only that corner is read.
    dim %= a.ndim
    corner = tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(idx.shape))
    return np.take_along_axis(a[corner], idx, axis=dim)


_idx = lambda v: Arg(np.array(v, dtype=np.int64), grad=False)  # noqa: E731
ENTRIES += [
    OpEntry("getitem", lambda x, idx: x[idx], lambda a, idx: np.asarray(a[idx]), _getitem_samples,
            _index_name),
    OpEntry("flip", lambda x, dims: x.flip(dims), lambda a, dims: np.flip(a, dims),
            _shape_samples([((2, 3), C, ((0,),), {}), ((2, 3, 2), C, ((0, -1),), {}),
                            ((3, 2), "T", ((1,),), {}), ((0, 2), C, ((1,),), {})]), "FlipBackward0"),
    OpEntry("movedim", lambda x, a, b: gg.movedim(x, a, b), np.moveaxis,
            _shape_samples([((2, 3, 2), C, (0, 2), {}), ((1, 2, 1, 3), C, (-1, 0), {})]),
            "PermuteBackward0"),
    OpEntry("narrow", lambda x, *a: x.narrow(*a),
            lambda a, dim, start, n: np.take(a, range(start, start + n), axis=dim),
            _shape_samples([((3, 4), C, (1, 1, 2), {}), ((3, 4), C, (0, 0, 0), {}),
                            ((4, 3), "T", (-1, 1, 2), {})]), "SliceBackward0"),
    OpEntry("select", lambda x, d, i: x.select(d, i), lambda a, d, i: np.take(a, i, axis=d),
            _shape_samples([((3, 4), C, (1, -1), {}), ((2, 3, 2), C, (0, 1), {}),
                            ((3, 2), "rev", (0, 0), {})]), "SelectBackward0"),
    OpEntry("unbind", lambda x, *a: x.unbind(*a), lambda a, d=0: tuple(np.moveaxis(a, d, 0)),
            _shape_samples([((3, 2), C, (), {}), ((2, 3), C, (1,), {}), ((3, 2), "T", (-1,), {})]),
            "UnbindBackward0"),
    OpEntry("index_select", lambda x, d, i: x.index_select(d, i), lambda a, d, i: np.take(a, i, axis=d),
            lambda e, r: [Sample((Arg(draw(e, r, (3, 4))), 1, _idx([0, 3, 0]))),
                          Sample((Arg(draw(e, r, (3, 4)), "rev"), 0, _idx([2]))),
                          Sample((Arg(draw(e, r, (3,))), 0, _idx([])))], "IndexSelectBackward0"),
    OpEntry("gather", lambda x, d, i: gg.gather(x, d, i), _np_gather,
            lambda e, r: [Sample((Arg(draw(e, r, (3, 4))), 1, _idx([[0, 0], [3, 1], [2, 2]]))),
                          Sample((Arg(draw(e, r, (3, 4))), 0, _idx([[0, 2, 2, 1]]))),
                          Sample((Arg(draw(e, r, (4, 3)), "T"), -1, _idx([[1], [0], [2]]))),
                          Sample((Arg(draw(e, r, (2, 3, 4))), 1, _idx([[[2, 0, 1], [2, 2, 0]]]))),
                          Sample((Arg(draw(e, r, (4,)), "step2"), 0, _idx([3, 0, 0]))),
                          Sample((Arg(draw(e, r, (2, 3)), "rev"), 1, _idx(np.zeros((2, 0), int))))],
            "GatherBackward0"),
    OpEntry("take", lambda x, i: gg.take(x, i), lambda a, i: np.take(a, i),
            lambda e, r: [Sample((Arg(draw(e, r, (3, 4))), _idx([0, 5, 5, 11]))),
                          Sample((Arg(draw(e, r, (2, 3)), "rev"), _idx([[1, 0], [4, 2]])))],
            "TakeBackward0"),
    OpEntry("repeat", lambda x, *s: x.repeat(*s), lambda a, *s: np.tile(a, s),
            _shape_samples([((2, 3), C, (2, 1), {}), ((3,), C, (2, 2), {}), ((3, 2), "T", (1, 2), {})]),
            "RepeatBackward0"),
    OpEntry("mT", lambda x: x.mT, lambda a: np.swapaxes(a, -1, -2),
            _shape_samples([((2, 3, 2), C, (), {}), ((3, 2), "T", (), {})]), "TransposeBackward0"),
    OpEntry("clone", lambda x: x.clone(), lambda a: a.copy(), unary, "CloneBackward0"),
    OpEntry("contiguous", lambda x: x.contiguous(), lambda a: a.copy(),
            lambda e, r: unary(e, r)[-3:], "CloneBackward0"),
    OpEntry("float_double", lambda x: x.float().double(),
            lambda a: a.astype(np.float32).astype(np.float64), lambda e, r: unary(e, r)[:5],
            "ToCopyBackward0", eps=1e-2, gradgrad=False),
]


# ---------------------------------------------------------------- linear algebra

def _mm_samples(cases: list[tuple]) -> Callable:
    def gen(e: OpEntry, r: np.random.Generator) -> list[Sample]:
        return [Sample((Arg(draw(e, r, a), la), Arg(draw(e, r, b), lb)), grad_fn=name)
                for a, la, b, lb, name in cases]
    return gen


ENTRIES += [
    OpEntry("matmul", lambda a, b: gg.matmul(a, b), np.matmul, _mm_samples([
        ((3,), C, (3,), C, "DotBackward0"), ((2, 3), C, (3,), C, "MvBackward0"),
        ((3,), C, (3, 2), C, "SqueezeBackward4"), ((2, 3), C, (3, 2), C, "MmBackward0"),
        ((2, 2, 3), C, (2, 3, 2), C, "UnsafeViewBackward0"),
        ((2, 1, 2, 3), C, (3, 3, 2), C, "UnsafeViewBackward0"),
        ((2, 2, 3), C, (3,), C, "UnsafeViewBackward0"), ((3,), C, (2, 3, 2), C, "UnsafeViewBackward0"),
        ((2, 0), C, (0, 3), C, "MmBackward0"), ((0, 3), C, (3, 2), C, "MmBackward0"),
        ((3, 2), "T", (2, 2), "rev", "MmBackward0"), ((1, 1), C, (1, 1), C, "MmBackward0"),
        ((2, 3), C, (3,), "step2", "MvBackward0")]), None),
    OpEntry("matmul_op", lambda a, b: a @ b, np.matmul, lambda e, r: [
        Sample((Arg(draw(e, r, (2, 3))), Arg(draw(e, r, (3, 2))))),
        Sample((draw(e, r, (2, 3)), Arg(draw(e, r, (3, 2)))), desc="ndarray@f[3,2]")],
        "MmBackward0", torch=False),
    OpEntry("mm", lambda a, b: gg.mm(a, b), np.matmul, _mm_samples([
        ((2, 3), C, (3, 2), C, None), ((1, 1), C, (1, 4), C, None), ((2, 0), C, (0, 3), C, None),
        ((3, 2), "T", (2, 3), "rev", None), ((4, 2), "step2", (2, 3), C, None)]), "MmBackward0"),
    OpEntry("bmm", lambda a, b: gg.bmm(a, b), np.matmul, _mm_samples([
        ((2, 2, 3), C, (2, 3, 2), C, None), ((1, 1, 1), C, (1, 1, 3), C, None),
        ((0, 2, 3), C, (0, 3, 1), C, None), ((2, 1, 3), C, (2, 3, 0), C, None)]), "BmmBackward0"),
    OpEntry("dot", lambda a, b: gg.dot(a, b), np.dot,
            _mm_samples([((3,), C, (3,), "step2", None)]), "DotBackward0"),
    OpEntry("mv", lambda a, b: gg.mv(a, b), np.matmul,
            _mm_samples([((3, 2), "T", (2,), C, None)]), "MvBackward0"),
    OpEntry("outer", lambda a, b: gg.outer(a, b), np.outer,
            _mm_samples([((3,), C, (2,), "rev", None)]), "MulBackward0"),
    OpEntry("trace", lambda x: gg.trace(x), np.trace,
            _shape_samples([((3, 3), C, (), {}), ((2, 4), C, (), {}), ((4, 2), "T", (), {}),
                            ((0, 3), C, (), {}), ((1, 1), C, (), {}), ((3, 2), "step2", (), {})]),
            "TraceBackward0"),
]


# ---------------------------------------------------------------- primitives reached only by VJP rules

def _np_pad(a: np.ndarray, lo: tuple, hi: tuple, interior: tuple) -> np.ndarray:
    shape = tuple(l + h + n + max(n - 1, 0) * i for n, l, h, i in zip(a.shape, lo, hi, interior))
    out = np.zeros(shape)
    out[tuple(slice(l, l + max(n - 1, 0) * (i + 1) + 1, i + 1) if n else slice(0, 0)
              for n, l, i in zip(a.shape, lo, interior))] = a
    return out


def _np_scatter_add(upd: np.ndarray, idx: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    out = np.zeros(shape)
    np.add.at(out, (slice(None),) * axis + (idx,), upd)
    return out


def _np_take_along(a: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    return _np_gather(a, axis, idx)  # negative indices wrap in numpy's fancy indexing


def _np_scatter_add_along(upd: np.ndarray, idx: np.ndarray, axis: int, shape: tuple) -> np.ndarray:
    out = np.zeros(shape)
    grid = list(np.ogrid[tuple(slice(0, k) for k in idx.shape)])
    grid[axis] = idx
    np.add.at(out, tuple(grid), upd)
    return out


def _along_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    """(operand shape, layout, index, kwargs): duplicates, negatives, one index per line,
    an index smaller than the operand off the axis, and nothing selected."""
    cases = [((3, 2), C, [[0, 0], [3, 1], [-1, 2]], {"axis": 1, "shape": (3, 4)}),
             ((3, 1), C, [[1], [0], [-4]], {"axis": 1, "shape": (3, 4)}),
             ((3, 2), "T", [[0, 2], [2, 1], [1, -2]], {"axis": 0, "shape": (3, 3)}),
             ((1, 2, 2), C, [[[0, 2], [1, 1]]], {"axis": 1, "shape": (2, 3, 3)}),
             ((0, 2), C, np.zeros((0, 2), int), {"axis": 1, "shape": (3, 2)})]
    take = e.name == "prim.take_along"
    return [Sample((Arg(draw(e, r, kw["shape"] if take else ushape), lay), _idx(idx)),
                   {"axis": kw["axis"]} if take else kw) for ushape, lay, idx, kw in cases]


ENTRIES += [
    OpEntry("prim.take_along", lambda x, i, **k: prim("take_along")(x, i, **k), _np_take_along,
            _along_samples, "GatherBackward0", torch=False),
    OpEntry("prim.scatter_add_along", lambda u, i, **k: prim("scatter_add_along")(u, i, **k),
            _np_scatter_add_along, _along_samples, "ScatterAddBackward0", torch=False),
    OpEntry("prim.pad", lambda x, **k: prim("pad")(x, **k), _np_pad, _shape_samples([
        ((2, 3), C, (), {"lo": (1, 0), "hi": (0, 2), "interior": (1, 0)}),
        ((), C, (), {"lo": (), "hi": (), "interior": ()}),
        ((0, 2), C, (), {"lo": (1, 1), "hi": (0, 0), "interior": (2, 1)}),
        ((3, 2), "T", (), {"lo": (0, 1), "hi": (1, 0), "interior": (0, 2)})]), torch=False),
    OpEntry("prim.scatter_add", lambda u, i, **k: prim("scatter_add")(u, i, **k), _np_scatter_add,
            lambda e, r: [
                Sample((Arg(draw(e, r, (4,))), _idx([0, 2, 0, 1])), {"shape": (3,), "axis": 0}),
                Sample((Arg(draw(e, r, (2, 2, 3))), _idx([1, 1])), {"shape": (2, 4, 3), "axis": 1}),
                Sample((Arg(draw(e, r, (3, 2)), "T"), _idx([0, -1])), {"shape": (3, 3), "axis": 1})],
            torch=False),
]


# ---------------------------------------------------------------- nn.functional

def _F(name: str) -> str:
    return f"nn.functional.{name}"


def _softmax_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    x = lambda s, lay=C: Arg(draw(e, r, s), lay)  # noqa: E731
    return [Sample((x((2, 3)),), {"dim": -1}), Sample((x((2, 3)),), {"dim": 0}),
            Sample((x((2, 3, 2)),), {"dim": 1}), Sample((x((4,)),), {"dim": 0}),
            Sample((x(()),), {"dim": 0}), Sample((x((2, 0)),), {"dim": 0}),
            Sample((x((1, 2, 1, 3)),), {"dim": -1}), Sample((x((3, 2), "T"),), {"dim": 0}),
            Sample((x((2, 3), "rev"),), {"dim": 1})]


def _linear_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    x = lambda s, lay=C: Arg(draw(e, r, s), lay)  # noqa: E731
    return [Sample((x((3, 4)), x((2, 4)), x((2,))), grad_fn="AddmmBackward0"),
            Sample((x((3, 4)), x((2, 4))), grad_fn="MmBackward0"),
            Sample((x((2, 3, 4)), x((2, 4)), x((2,))), grad_fn="ViewBackward0"),
            Sample((x((4,)), x((2, 4)), x((2,))), grad_fn="ViewBackward0"),
            Sample((x((3, 4), "rev"), x((2, 4), "T"), x(())), grad_fn="AddmmBackward0"),
            Sample((x((0, 4)), x((2, 4)), x((2,))), grad_fn="AddmmBackward0")]


def _ln_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    x = lambda s, lay=C: Arg(draw(e, r, s), lay)  # noqa: E731
    return [Sample((x((2, 3)), (3,))), Sample((x((2, 3, 2)), (3, 2))),
            Sample((x((2, 3)), (3,), x((3,)), x((3,)))), Sample((x((4,)), [4], x((4,)), None)),
            Sample((x((3, 2), "T"), (2,)), {"eps": 1e-3}), Sample((x((0, 3)), (3,), x((3,)), x((3,))))]


def _loss_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    x = lambda s, lay=C, g=True: Arg(draw(e, r, s), lay, g)  # noqa: E731
    return [Sample((x((2, 3)), x((2, 3))), {"reduction": red}) for red in ("mean", "sum", "none")] + [
        Sample((x(()), x((), g=False))), Sample((x((3, 2), "T"), x((3, 2), "rev"))),
        Sample((x((1, 2, 1, 3)), x((1, 2, 1, 3), g=False)), {"reduction": "sum"})]


def _class_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    x = lambda s, lay=C: Arg(draw(e, r, s), lay)  # noqa: E731
    return [Sample((x((3, 4)), _idx([0, 3, 3])), {"reduction": red}) for red in ("mean", "sum", "none")] + [
        Sample((x((4,)), _idx(2))), Sample((x((4, 3), "T"), _idx([2, 0, 1, 1]))),
        Sample((x((2, 3)), _idx([1, 2])), {"reduction": "none"})]


def _mse_ref(a: np.ndarray, b: np.ndarray, reduction: str = "mean") -> np.ndarray:
    return np.asarray(_reduce((a - b) ** 2, reduction))


def _dropout(x: Any, **k: Any) -> Any:
    gg.manual_seed(0)  # the same mask on every call: gradcheck perturbs one input at a time
    return F.dropout(x, **k)


ENTRIES += [
    OpEntry("F.relu", lambda x: F.relu(x), lambda a: np.maximum(a, 0), unary, "ReluBackward0",
            kinks=(0.0,), needs=_F("relu")),
    OpEntry("F.sigmoid", lambda x: F.sigmoid(x), lambda a: 1 / (1 + np.exp(-a)), unary,
            "SigmoidBackward0", needs=_F("sigmoid")),
    OpEntry("F.tanh", lambda x: F.tanh(x), np.tanh, unary, "TanhBackward0", needs=_F("tanh")),
    OpEntry("F.gelu", lambda x, **k: F.gelu(x, **k), _gelu, unary, "GeluBackward0",
            needs=_F("gelu"), fwd_rtol=1e-13),
    OpEntry("F.gelu_tanh", lambda x, **k: F.gelu(x, **k), _gelu,
            lambda e, r: unary(e, r, approximate="tanh"), "GeluBackward0", needs=_F("gelu")),
    OpEntry("F.softplus", lambda x, **k: F.softplus(x, **k), _softplus,
            lambda e, r: unary(e, r) + [Sample(s.args, {"beta": 2.0}) for s in unary(e, r)[3:5]],
            "SoftplusBackward0", needs=_F("softplus")),
    OpEntry("F.softplus_threshold", lambda x, **k: F.softplus(x, **k), _softplus,
            lambda e, r: [Sample(s.args, {"beta": 2.0, "threshold": 2.0}) for s in unary(e, r)],
            "SoftplusBackward0", kinks=(1.0,), needs=_F("softplus")),
    OpEntry("F.softmax", lambda x, **k: F.softmax(x, **k), lambda a, dim: _softmax(a, _ax(dim, a)),
            _softmax_samples, "SoftmaxBackward0", needs=_F("softmax")),
    OpEntry("F.log_softmax", lambda x, **k: F.log_softmax(x, **k),
            lambda a, dim: _log_softmax(a, _ax(dim, a)), _softmax_samples, "LogSoftmaxBackward0",
            needs=_F("log_softmax")),
    OpEntry("F.linear", lambda *a: F.linear(*a),
            lambda x, w, b=None: x @ w.T + (0 if b is None else b), _linear_samples, None,
            needs=_F("linear")),
    OpEntry("F.layer_norm", lambda *a, **k: F.layer_norm(*a, **k),
            lambda a, shape, w=None, b=None, eps=1e-5: _layer_norm(a, tuple(shape), w, b, eps),
            _ln_samples, "NativeLayerNormBackward0", needs=_F("layer_norm")),
    OpEntry("F.mse_loss", lambda a, b, **k: F.mse_loss(a, b, **k), _mse_ref, _loss_samples,
            "MseLossBackward0", needs=_F("mse_loss")),
    OpEntry("F.nll_loss", lambda a, t, **k: F.nll_loss(a, t, **k), _nll, _class_samples,
            "NllLossBackward0", needs=_F("nll_loss")),
    OpEntry("F.cross_entropy", lambda a, t, **k: F.cross_entropy(a, t, **k),
            lambda a, t, reduction="mean": _nll(_log_softmax(a, -1), t, reduction), _class_samples,
            "NllLossBackward0", needs=_F("cross_entropy")),
    OpEntry("F.dropout", _dropout, None, lambda e, r: [
        Sample(s.args, {"p": 0.5}) for s in unary(e, r)] + [Sample(unary(e, r)[3].args, {"p": 1.0})],
        lambda s: "MulBackward0" if s.args[0].value.size else None, needs=_F("dropout")),
    OpEntry("F.dropout_identity", _dropout, lambda a, **k: a, lambda e, r: [
        Sample(unary(e, r)[3].args, {"p": 0.5, "training": False}),
        Sample(unary(e, r)[-1].args, {"p": 0.0})], None, needs=_F("dropout")),
]


# ---------------------------------------------------------------- in-place (on a clone: leaves refuse)

def _inplace(method: str) -> Callable:
    def op(x: Any, *a: Any, **k: Any) -> Any:
        z = x.clone()
        return getattr(z, method)(*a, **k)
    op.__name__ = method
    return op


def _augmented(fn: Callable) -> Callable:
    def op(x: Any, y: Any) -> Any:
        z = x.clone()
        z = fn(z, y)
        return z
    return op


def _iadd(z: Any, y: Any) -> Any:
    z += y
    return z


def _isub(z: Any, y: Any) -> Any:
    z -= y
    return z


def _imul(z: Any, y: Any) -> Any:
    z *= y
    return z


def _idiv(z: Any, y: Any) -> Any:
    z /= y
    return z


def _inplace_samples(e: OpEntry, r: np.random.Generator) -> list[Sample]:
    """The written tensor has the full shape; the other operand broadcasts into it."""
    d = lambda s, lay=C, g=True: Arg(draw(e, r, s), lay, g)  # noqa: E731
    return [Sample((d((2, 3)), d((2, 3)))), Sample((d((2, 3)), d((3,)))), Sample((d((2, 3)), e.scalar)),
            Sample((d(()), d(()))), Sample((d((2, 0, 3)), d((3,)))),
            Sample((d((1, 2, 1, 3)), d((2, 1, 1)))), Sample((d((3, 2), "T"), d((3, 2), "rev"))),
            Sample((d((3,), "step2"), d((3,), g=False)))]


def _through_view(x: Any, y: Any) -> Any:
    z = x.clone()
    z[0].mul_(y)
    return z


def _view_of_view(x: Any, y: Any) -> Any:
    z = x * 1.0
    v = z[:, 1:]
    v[1].add_(y)
    return z * x


_bin_ref = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.divide}
ENTRIES += [OpEntry(m, _inplace(m), _with_scalars(f), _inplace_samples, f"{m[:-1].title()}Backward0",
                    kinks=(0.0,) if m == "div_" else ())
            for m, f in _bin_ref.items()]
ENTRIES += [
    OpEntry("add_alpha_", _inplace("add_"), lambda a, b, alpha: a + alpha * b,
            lambda e, r: [Sample(s.args, {"alpha": 2.0}) for s in _inplace_samples(e, r)[:2]],
            "AddBackward0"),
    OpEntry("iadd", _augmented(_iadd), _with_scalars(np.add), _inplace_samples, "AddBackward0"),
    OpEntry("isub", _augmented(_isub), _with_scalars(np.subtract), _inplace_samples, "SubBackward0"),
    OpEntry("imul", _augmented(_imul), _with_scalars(np.multiply), _inplace_samples, "MulBackward0"),
    OpEntry("idiv", _augmented(_idiv), _with_scalars(np.divide), _inplace_samples, "DivBackward0",
            kinks=(0.0,)),
    OpEntry("zero_", _inplace("zero_"), np.zeros_like, unary, "ZeroBackward0"),
    OpEntry("fill_", _inplace("fill_"), lambda a, v: np.full_like(a, np.asarray(v)),
            lambda e, r: [Sample(s.args + (2.5,)) for s in unary(e, r)] + [
                Sample((Arg(draw(e, r, (2, 3))), Arg(draw(e, r, ()))), grad_fn="FillBackward3"),
                Sample((Arg(draw(e, r, (3, 2)), "T"), Arg(draw(e, r, ()))), grad_fn="FillBackward3")],
            "FillBackward2"),
    OpEntry("copy_", _inplace("copy_"), lambda a, b: np.broadcast_to(b, a.shape).copy(),
            _inplace_samples, "CopyBackwards"),
    OpEntry("clamp_", _inplace("clamp_"), _clamp_ref,
            lambda e, r: [Sample(s.args, {"min": -0.5, "max": 0.5}) for s in unary(e, r)] + [
                Sample(unary(e, r)[3].args, {"min": -0.5}), Sample(unary(e, r)[3].args, {"max": 0.5})],
            "ClampBackward1", kinks=(-0.5, 0.5)),
    OpEntry("mul_through_view", _through_view, lambda a, b: np.concatenate([a[:1] * b, a[1:]]),
            lambda e, r: [Sample((Arg(draw(e, r, (2, 3))), Arg(draw(e, r, (3,))))),
                          Sample((Arg(draw(e, r, (3, 2)), "T"), 2.0))], "CopySlices"),
    OpEntry("add_view_of_view", _view_of_view,
            lambda a, b: (a + np.pad(np.broadcast_to(b, (2,)), ((1, 0),))[None].repeat(3, 0) *
                          (np.arange(3) == 1)[:, None]) * a,
            lambda e, r: [Sample((Arg(draw(e, r, (3, 3))), Arg(draw(e, r, (2,)))))], "MulBackward0"),
]


KINKS += [
    KinkCase("max_all_ties_split", lambda x: x.max(), [[1.0, 3.0, 3.0]], [[0.0, 0.5, 0.5]]),
    KinkCase("min_all_ties_split", lambda x: gg.min(x), [[1.0, 1.0, 3.0]], [[0.5, 0.5, 0.0]]),
    KinkCase("max_dim_tie_to_index", lambda x: x.max(0)[0], [[1.0, 3.0, 3.0]], [[0.0, 1.0, 0.0]]),
    KinkCase("min_dim_tie_to_index", lambda x: x.min(0).values, [[1.0, 1.0, 3.0]], [[1.0, 0.0, 0.0]]),
    KinkCase("amax_ties_split", lambda x: x.amax(), [[1.0, 3.0, 3.0]], [[0.0, 0.5, 0.5]]),
    KinkCase("amin_ties_split", lambda x: x.amin(0), [[1.0, 1.0, 3.0]], [[0.5, 0.5, 0.0]]),
    KinkCase("norm_at_0", lambda x: x.norm(), [[0.0, 0.0]], [[0.0, 0.0]]),
    KinkCase("norm1_at_0", lambda x: x.norm(1), [[0.0, 1.0]], [[0.0, 1.0]]),
    KinkCase("norm3_at_0", lambda x: x.norm(3), [[0.0, 0.0]], [[0.0, 0.0]]),
    KinkCase("norm_dim_row_at_0", lambda x: x.norm(dim=1), [[[0.0, 0.0], [3.0, 4.0]]],
             [[[0.0, 0.0], [0.6, 0.8]]]),
    KinkCase("std_of_constant", lambda x: x.std(), [[1.0, 1.0]], [[0.0, 0.0]]),
    KinkCase("var_of_constant", lambda x: x.var(), [[1.0, 1.0]], [[0.0, 0.0]]),
    KinkCase("prod_one_zero", lambda x: x.prod(), [[0.0, 2.0, 3.0]], [[6.0, 0.0, 0.0]]),
    KinkCase("prod_two_zeros", lambda x: x.prod(), [[0.0, 0.0, 3.0]], [[0.0, 0.0, 0.0]]),
    KinkCase("logsumexp_minus_inf", lambda x: x.logsumexp(0), [[-INF, 0.0]], [[0.0, 1.0]]),
    KinkCase("F.relu_at_0", lambda x: F.relu(x), [[0.0]], [[0.0]], needs=_F("relu")),
    KinkCase("clamp__at_bounds", lambda x: x.clone().clamp_(0.0, 1.0), [[0.0, 1.0]], [[1.0, 1.0]]),
]
