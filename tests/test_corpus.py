"""The IR path against eager autograd, over every primitive, every composite and 40+ programs.

For each entry: trace the function, differentiate the program (``vjp``), and
check with the interpreter that the forward outputs and the gradients equal
eager autograd's (float64: rtol 1e-10; float32: rtol 1e-5) -- for the raw
gradient program, after the pass pipeline, and split by ``partition`` into
forward and backward programs. Second derivatives: differentiating the
gradient program again equals eager ``create_graph=True`` double backward.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.ad import partition, vjp
from gradgen.ad.reverse import active_outputs
from gradgen.autograd import grad as eager_grad
from gradgen.ir import check, run
from gradgen.ir.trace import trace
from gradgen.ir.tree import flatten
from gradgen.ops import PRIMITIVES
from gradgen.passes import optimize

from gradgen.ops import elementwise as E
from gradgen.ops import indexing as I
from gradgen.ops import linalg as L
from gradgen.ops import reduce as R
from gradgen.ops import shape as S

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def make_args(specs: tuple, dtype: type, seed: int) -> list:
    """Tensors from specs: ("f", shape) normal, ("p", shape) in [0.5, 2], ("i", shape, n) ints
    in [0, n), ("b", shape) bools, ("u", shape) uniform in (-0.9, 0.9), ("c", value) as is."""
    rng = np.random.default_rng(seed)
    args = []
    for kind, *rest in specs:
        if kind == "c":
            args.append(rest[0])
            continue
        shape = rest[0]
        if kind == "f":
            a = rng.standard_normal(shape).astype(dtype)
        elif kind == "p":
            a = rng.uniform(0.5, 2.0, shape).astype(dtype)
        elif kind == "u":
            a = rng.uniform(-0.9, 0.9, shape).astype(dtype)
        elif kind == "i":
            a = rng.integers(0, rest[1], shape).astype(np.int64)
        elif kind == "b":
            a = rng.random(shape) < 0.5
        else:
            raise ValueError(kind)
        args.append(gg.from_numpy(np.array(a)))
    return args


def _tensors(args: list) -> list:
    return flatten(tuple(args))[0]


def _fresh(args: list) -> list:
    """Copies of the argument tensors (same structure), floating ones requiring grad."""
    out = []
    for a in args:
        if isinstance(a, gg.Tensor):
            t = gg.from_numpy(a.numpy().copy())
            out.append(t.requires_grad_() if t.is_floating_point() else t)
        else:
            out.append(a)
    return out


def _close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    tol = TOL.get(want.dtype.type, dict(rtol=0, atol=0))
    np.testing.assert_allclose(got, want, err_msg=what, equal_nan=True, **tol)


class Case:
    """One corpus entry run both ways."""

    def __init__(self, fn, specs, dtype, seed: int = 0) -> None:
        self.fn, self.dtype = fn, dtype
        self.args = make_args(specs, dtype, seed)
        self.rng = np.random.default_rng(seed + 100)
        # eager
        xs = _fresh(self.args)
        self.leaves = [t for t in _tensors(xs) if t.is_floating_point()]
        outs = _tensors([fn(*xs)])
        self.eager_outs = [o.detach().numpy() for o in outs]
        self.diff = [o.requires_grad for o in outs]
        self.cts = [self._like(o.numpy(force=True)) for o, d in zip(outs, self.diff) if d]
        diff_outs = [o for o, d in zip(outs, self.diff) if d]
        if diff_outs and self.leaves:
            gs = eager_grad(diff_outs, self.leaves, [gg.from_numpy(c) for c in self.cts],
                            create_graph=True, allow_unused=True, materialize_grads=True)
        else:
            gs = [gg.zeros_like(t) for t in self.leaves]
        self.eager_grads = [g.detach().numpy() for g in gs]
        self.grad_diff = [g.requires_grad for g in gs]
        self.vs = [self._like(g.detach().numpy()) for g, d in zip(gs, self.grad_diff) if d]
        g2 = [g for g, d in zip(gs, self.grad_diff) if d]
        if g2:
            h = eager_grad(g2, self.leaves, [gg.from_numpy(v) for v in self.vs],
                           allow_unused=True, materialize_grads=True)
            self.eager_second = [x.numpy() for x in h]
        else:
            self.eager_second = [np.zeros_like(t.detach().numpy()) for t in self.leaves]
        # IR
        self.program = check(trace(fn, *_fresh(self.args)))
        ins = _tensors(self.args)
        self.inputs = [t.numpy() for t in ins]
        self.wrt = tuple(i for i, t in enumerate(ins) if t.is_floating_point())
        self.seeds = tuple(k for k, d in enumerate(self.diff) if d)

    def _like(self, a: np.ndarray) -> np.ndarray:
        return self.rng.standard_normal(a.shape).astype(a.dtype)

    def joint(self):
        return check(vjp(self.program, self.wrt, self.seeds))


def _check_first_order(c: Case, joint) -> None:
    n = len(c.program.outputs)
    res = run(joint, *c.inputs, *c.cts)
    for k, (got, want) in enumerate(zip(res[:n], c.eager_outs, strict=True)):
        _close(got, want, f"output {k}")
    for k, (got, want) in enumerate(zip(res[n:], c.eager_grads, strict=True)):
        _close(got, want, f"gradient {k}")


def _check_partition(c: Case, joint) -> None:
    part = partition(joint)
    fwd, bwd = check(optimize(part.forward)), check(optimize(part.backward))
    res = run(fwd, *c.inputs)
    n = part.n_outputs
    for k, (got, want) in enumerate(zip(res[:n], c.eager_outs, strict=True)):
        _close(got, want, f"forward output {k}")
    saved = [c.inputs[i] for i in part.saved_inputs]
    grads = run(bwd, *saved, *res[n:], *c.cts)
    for k, (got, want) in enumerate(zip(grads, c.eager_grads, strict=True)):
        _close(got, want, f"backward gradient {k}")


def _check_second_order(c: Case) -> None:
    joint = c.joint()
    n = len(c.program.outputs)
    grad_pos = [n + j for j in range(len(c.wrt))]
    act = active_outputs(joint, c.wrt)
    assert [act[p] for p in grad_pos] == c.grad_diff, "second-order activity differs from eager"
    seeds = tuple(p for p, d in zip(grad_pos, c.grad_diff) if d)
    joint2 = check(optimize(vjp(joint, c.wrt, seeds)))
    res = run(joint2, *c.inputs, *c.cts, *c.vs)
    for k, (got, want) in enumerate(zip(res[len(joint.outputs):], c.eager_second, strict=True)):
        _close(got, want, f"second derivative {k}")


def run_case(fn, specs, dtype=np.float64, second: bool = True) -> None:
    c = Case(fn, specs, dtype)
    assert list(active_outputs(c.program, c.wrt)) == c.diff, "activity differs from eager"
    joint = c.joint()
    _check_first_order(c, joint)
    _check_first_order(c, check(optimize(joint)))
    if c.seeds:
        _check_partition(c, check(optimize(joint)))
    if second and c.seeds:
        _check_second_order(c)


# ---------------------------------------------------------------- the corpus tables
# Entries: (name, fn, specs, options). Names start with the primitive or function covered.

def f(*shape):
    return ("f", shape)


def p(*shape):
    return ("p", shape)


def u(*shape):
    return ("u", shape)


def i(shape, n):
    return ("i", shape, n)


def b(*shape):
    return ("b", shape)


def c(value):
    return ("c", value)


NO2 = {"second": False}


def _other_float(x):
    return gg.float32 if x.dtype is gg.float64 else gg.float64


def _unary_prims():
    dom = {"log": p, "log1p": p, "sqrt": p}
    out = []
    for name in ["neg", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "logistic",
                 "erf", "abs", "sign"]:
        prim = PRIMITIVES[name]
        out.append((name, (lambda prim: lambda x: prim(x))(prim), (dom.get(name, f)(3, 4),), {}))
    return out


def _binary_prims():
    out = []
    for name in ["add", "sub", "mul", "div", "pow", "max", "min"]:
        prim = PRIMITIVES[name]
        first = p if name == "pow" else f
        second = p if name == "div" else f
        out.append((name, (lambda prim: lambda x, y: prim(x, y))(prim), (first(3, 4), second(3, 4)), {}))
        out.append((name + "/literal", (lambda prim: lambda x: prim(x, 1.5))(prim), (first(3, 4),), {}))
    return out


def _compare_prims():
    out = []
    for name in ["lt", "le", "gt", "ge", "eq", "ne"]:
        prim = PRIMITIVES[name]
        out.append((name, (lambda prim: lambda x, y: (E.select(prim(x, y), x, y), prim(x, y)))(prim),
                    (f(3, 4), f(3, 4)), {}))
    return out


PRIMITIVE_CASES = _unary_prims() + _binary_prims() + _compare_prims() + [
    ("and", lambda x, y: E.select(E.logical_and(E.lt(x, 0.0), E.gt(y, 0.0)), x, y), (f(3, 4), f(3, 4)), {}),
    ("or", lambda x, y: E.select(E.logical_or(E.lt(x, 0.0), E.gt(y, 0.0)), x, y), (f(3, 4), f(3, 4)), {}),
    ("not", lambda x, m: E.select(E.logical_not(m), x, 0.0), (f(3, 4), b(3, 4)), {}),
    ("select", lambda m, x, y: E.select(m, x, y), (b(3, 4), f(3, 4), f(3, 4)), {}),
    ("select/literal", lambda m, x: E.select(m, x, 2.0), (b(3, 4), f(3, 4)), {}),
    ("convert", lambda x: E.convert(x, dtype=_other_float(x)), (f(3, 4),), {}),
    ("convert/int", lambda x: E.mul(x, E.convert(E.convert(x, dtype=gg.int64), dtype=x.dtype)),
     (f(3, 4),), {}),
    ("stop_gradient", lambda x: E.mul(E.stop_gradient(x), x), (f(3, 4),), {}),
    ("broadcast_in_dim", lambda x: S.broadcast_in_dim(x, shape=(2, 3, 4), dims=(1, 2)), (f(3, 1),), {}),
    ("broadcast_in_dim/scalar", lambda x: S.broadcast_in_dim(x, shape=(2, 3), dims=()), (f(),), {}),
    ("reshape", lambda x: S.reshape(x, shape=(2, 6)), (f(3, 4),), {}),
    ("transpose", lambda x: S.transpose(x, perm=(2, 0, 1)), (f(2, 3, 4),), {}),
    ("reduce_sum", lambda x: R.reduce_sum(x, axes=(0, 2)), (f(2, 3, 4),), {}),
    ("reduce_max", lambda x: R.reduce_max(x, axes=(1,)), (f(3, 4),), {}),
    ("reduce_min", lambda x: R.reduce_min(x, axes=(0, 1)), (f(3, 4),), {}),
    ("reduce_prod", lambda x: R.reduce_prod(x, axes=(1,)), (p(3, 4),), {}),
    ("argmax", lambda x, y: I.take(y, R.argmax(x, axis=0), axis=0), (f(3, 4), f(3)), {}),
    ("argmin", lambda x, y: I.take(y, R.argmin(x, axis=1), axis=0), (f(3, 4), f(4)), {}),
    ("slice", lambda x: I.slice_(x, starts=(1, 0), stops=(3, 4), steps=(1, 2)), (f(3, 4),), {}),
    ("pad", lambda x: I.pad(x, lo=(1, 0), hi=(0, 2), interior=(1, 0)), (f(3, 4),), {}),
    ("rev", lambda x: I.rev(x, axes=(1,)), (f(3, 4),), {}),
    ("concatenate", lambda x, y: I.concatenate(x, y, axis=1), (f(3, 4), f(3, 2)), {}),
    ("take", lambda x, k: I.take(x, k, axis=1), (f(3, 4), i((2, 5), 4)), {}),
    ("scatter_add", lambda x, k: I.scatter_add(x, k, shape=(3, 4), axis=1), (f(3, 5), i((5,), 4)), {}),
    ("take_along", lambda x, k: I.take_along(x, k, axis=1), (f(3, 4), i((3, 2), 4)), {}),
    ("take_along/onehot", lambda x, k: I.take_along(x, k, axis=1), (f(3, 4), i((3, 1), 4)), {}),
    ("take_along/axis0", lambda x, k: I.take_along(x, k, axis=0), (f(3, 4), i((1, 4), 3)), {}),
    ("scatter_add_along", lambda u, k: I.scatter_add_along(u, k, axis=1, shape=(3, 4)),
     (f(3, 5), i((3, 5), 4)), {}),
    ("scatter_add_along/onehot", lambda u, k: I.scatter_add_along(u, k, axis=1, shape=(3, 4)),
     (f(3, 1), i((3, 1), 4)), {}),
    ("check_index", lambda x, k: I.take_along(x, I.check_index(k, size=4, axis=1, mode="target"),
                                              axis=1), (f(3, 4), i((3, 1), 4)), {}),
    ("matmul", lambda x, y: L.matmul(x, y), (f(3, 4), f(4, 2)), {}),
    ("matmul/batched", lambda x, y: L.matmul(x, y), (f(2, 3, 4), f(2, 4, 5)), {}),
]


def _fn(name):
    return getattr(gg, name)


def _unary_functions():
    dom = {"log": p, "log1p": p, "sqrt": p, "rsqrt": p, "log2": p, "log10": p, "reciprocal": p}
    names = ["neg", "negative", "abs", "absolute", "sign", "reciprocal", "rsqrt", "exp", "log", "log1p",
             "expm1", "sqrt", "sin", "cos", "tanh", "sigmoid", "erf", "relu", "log2", "log10", "square",
             "clone"]
    return [(n, (lambda n: lambda x: _fn(n)(x))(n), (dom.get(n, f)(3, 4),), {}) for n in names]


def _binary_functions():
    names = ["add", "sub", "mul", "div", "true_divide", "divide", "subtract", "multiply", "maximum",
             "minimum", "pow"]
    out = []
    for n in names:
        first = p if n == "pow" else f
        second = p if "div" in n else f
        out.append((n, (lambda n: lambda x, y: _fn(n)(x, y))(n), (first(2, 3, 4), second(3, 4)), {}))
        out.append((n + "/scalar", (lambda n: lambda x: _fn(n)(x, 2.0))(n), (first(3, 4),), {}))
    return out


COMPOSITE_CASES = _unary_functions() + _binary_functions() + [
    ("add/alpha", lambda x, y: gg.add(x, y, alpha=2.5), (f(3, 4), f(4)), {}),
    ("sub/rsub", lambda x: 2.0 - x, (f(3, 4),), {}),
    ("pow/exponent-tensor", lambda x, y: gg.pow(x, y), (p(3, 4), f(3, 4)), {}),
    ("pow/scalar-base", lambda y: gg.pow(2.0, y), (f(3, 4),), {}),
    ("pow/int-exponent", lambda x: gg.pow(x, 3), (f(3, 4),), {}),
    ("where", lambda x, y: gg.where(x > 0, x, y), (f(3, 4), f(4)), {}),
    ("where/scalar", lambda m, x: gg.where(m, x, 0.5), (b(3, 4), f(3, 4)), {}),
    ("clamp", lambda x: gg.clamp(x, -0.5, 0.5), (f(3, 4),), {}),
    ("clamp/tensor-bounds", lambda x, lo, hi: gg.clamp(x, lo, hi - 0.0) + 0 * lo,
     (f(3, 4), ("u", (3, 4)), p(3, 4)), {}),
    ("clip", lambda x: gg.clip(x, max=0.2), (f(3, 4),), {}),
    ("clamp_min", lambda x: gg.clamp_min(x, 0.0), (f(3, 4),), {}),
    ("clamp_max", lambda x: gg.clamp_max(x, 0.0), (f(3, 4),), {}),
    ("sum", lambda x: gg.sum(x), (f(3, 4),), {}),
    ("sum/dim-keepdim", lambda x: gg.sum(x, dim=(0, 2), keepdim=True), (f(2, 3, 4),), {}),
    ("mean", lambda x: gg.mean(x), (f(3, 4),), {}),
    ("mean/dim", lambda x: gg.mean(x, -1, keepdim=True), (f(3, 4),), {}),
    ("prod", lambda x: gg.prod(x), (p(3, 4),), {}),
    ("prod/dim", lambda x: gg.prod(x, 1, keepdim=True), (p(3, 4),), {}),
    ("max", lambda x: gg.max(x), (f(3, 4),), {}),
    ("max/dim", lambda x: gg.max(x, dim=1), (f(3, 4),), {}),
    ("max/other", lambda x, y: gg.max(x, y), (f(3, 4), f(3, 4)), {}),
    ("min", lambda x: gg.min(x), (f(3, 4),), {}),
    ("min/dim-keepdim", lambda x: gg.min(x, dim=0, keepdim=True), (f(3, 4),), {}),
    ("amax", lambda x: gg.amax(x, dim=(0, 1)), (f(2, 3, 4),), {}),
    ("amin", lambda x: gg.amin(x, dim=-1, keepdim=True), (f(3, 4),), {}),
    ("var", lambda x: gg.var(x), (f(3, 4),), {}),
    ("var/dim", lambda x: gg.var(x, dim=1, keepdim=True, correction=0), (f(3, 4),), {}),
    ("std", lambda x: gg.std(x), (f(3, 4),), {}),
    ("std/dim", lambda x: gg.std(x, dim=0), (f(3, 4),), {}),
    ("logsumexp", lambda x: gg.logsumexp(x, 1), (f(3, 4),), {}),
    ("logsumexp/keepdim", lambda x: gg.logsumexp(x, (0, 1), keepdim=True), (f(3, 4),), {}),
    ("norm", lambda x: gg.norm(x), (f(3, 4),), {}),
    ("norm/p1-dim", lambda x: gg.norm(x, p=1, dim=1), (f(3, 4),), {}),
    ("norm/p3", lambda x: gg.norm(x, p=3, dim=0, keepdim=True), (f(3, 4),), {}),
    ("reshape", lambda x: gg.reshape(x, (4, -1)), (f(2, 3, 4),), {}),
    ("flatten", lambda x: gg.flatten(x, 1), (f(2, 3, 4),), {}),
    ("unflatten", lambda x: gg.unflatten(x, 1, (2, 2)), (f(3, 4),), {}),
    ("transpose", lambda x: gg.transpose(x, 0, 2), (f(2, 3, 4),), {}),
    ("swapaxes", lambda x: gg.swapaxes(x, 0, 1), (f(3, 4),), {}),
    ("swapdims", lambda x: gg.swapdims(x, 1, 2), (f(2, 3, 4),), {}),
    ("permute", lambda x: gg.permute(x, (1, 2, 0)), (f(2, 3, 4),), {}),
    ("t", lambda x: gg.t(x), (f(3, 4),), {}),
    ("movedim", lambda x: gg.movedim(x, 0, -1), (f(2, 3, 4),), {}),
    ("moveaxis", lambda x: gg.moveaxis(x, (0, 1), (2, 0)), (f(2, 3, 4),), {}),
    ("unsqueeze", lambda x: gg.unsqueeze(x, 1), (f(3, 4),), {}),
    ("squeeze", lambda x: gg.squeeze(x), (f(3, 1, 4),), {}),
    ("squeeze/dim", lambda x: gg.squeeze(x, 1), (f(3, 1, 4),), {}),
    ("broadcast_to", lambda x: gg.broadcast_to(x, (2, 3, 4)), (f(3, 1),), {}),
    ("broadcast_tensors", lambda x, y: gg.broadcast_tensors(x, y), (f(3, 1), f(4)), {}),
    ("cat", lambda x, y: gg.cat([x, y], 1), (f(3, 4), f(3, 2)), {}),
    ("concat", lambda x, y: gg.concat((x, y)), (f(3, 4), f(1, 4)), {}),
    ("concatenate", lambda x, y: gg.concatenate([x, y], dim=-1), (f(3, 4), f(3, 1)), {}),
    ("stack", lambda x, y: gg.stack([x, y], 1), (f(3, 4), f(3, 4)), {}),
    ("flip", lambda x: gg.flip(x, (0, 2)), (f(2, 3, 4),), {}),
    ("tile", lambda x: gg.tile(x, (2, 1, 3)), (f(3, 4),), {}),
    ("select", lambda x: gg.select(x, 1, -1), (f(3, 4),), {}),
    ("narrow", lambda x: gg.narrow(x, 1, 1, 2), (f(3, 4),), {}),
    ("split", lambda x: gg.split(x, 2, dim=1), (f(3, 5),), {}),
    ("split/sections", lambda x: gg.split(x, [1, 2], dim=0), (f(3, 5),), {}),
    ("chunk", lambda x: gg.chunk(x, 2, 1), (f(3, 4),), {}),
    ("unbind", lambda x: gg.unbind(x, 1), (f(3, 4),), {}),
    ("index_select", lambda x, k: gg.index_select(x, 0, k), (f(3, 4), i((5,), 3)), {}),
    ("take", lambda x, k: gg.take(x, k), (f(3, 4), i((2, 3), 12)), {}),
    ("gather", lambda x, k: gg.gather(x, 1, k), (f(3, 4), i((3, 2), 4)), {}),
    ("matmul", lambda x, y: gg.matmul(x, y), (f(2, 3, 4), f(4, 5)), {}),
    ("matmul/vector", lambda x, y: gg.matmul(x, y), (f(4), f(2, 4, 3)), {}),
    ("mm", lambda x, y: gg.mm(x, y), (f(3, 4), f(4, 2)), {}),
    ("bmm", lambda x, y: gg.bmm(x, y), (f(2, 3, 4), f(2, 4, 5)), {}),
    ("dot", lambda x, y: gg.dot(x, y), (f(4), f(4)), {}),
    ("mv", lambda x, y: gg.mv(x, y), (f(3, 4), f(4)), {}),
    ("outer", lambda x, y: gg.outer(x, y), (f(3), f(4)), {}),
    ("ger", lambda x, y: gg.ger(x, y), (f(3), f(4)), {}),
    ("trace", lambda x: gg.trace(x), (f(3, 4),), {}),
    ("trace/method-transposed", lambda x: x.t().trace() * x.sum(), (f(4, 3),), {}),
    ("F.relu", lambda x: F.relu(x), (f(3, 4),), {}),
    ("F.sigmoid", lambda x: F.sigmoid(x), (f(3, 4),), {}),
    ("F.tanh", lambda x: F.tanh(x), (f(3, 4),), {}),
    ("F.gelu", lambda x: F.gelu(x), (f(3, 4),), {}),
    ("F.gelu/tanh", lambda x: F.gelu(x, approximate="tanh"), (f(3, 4),), {}),
    ("F.softplus", lambda x: F.softplus(x * 8, beta=2.0, threshold=5.0), (f(3, 4),), {}),
    ("F.softmax", lambda x: F.softmax(x, dim=1), (f(3, 4),), {}),
    ("F.log_softmax", lambda x: F.log_softmax(x, dim=0), (f(3, 4),), {}),
    ("F.linear", lambda x, w, b_: F.linear(x, w, b_), (f(2, 3, 4), f(5, 4), f(5)), {}),
    ("F.linear/no-bias", lambda x, w: F.linear(x, w), (f(3, 4), f(5, 4)), {}),
    ("F.layer_norm", lambda x, w, b_: F.layer_norm(x, (4,), w, b_), (f(3, 4), f(4), f(4)), {}),
    ("F.layer_norm/2d", lambda x: F.layer_norm(x, (3, 4)), (f(2, 3, 4),), {}),
    ("F.mse_loss", lambda x, y: F.mse_loss(x, y), (f(3, 4), f(3, 4)), {}),
    ("F.mse_loss/sum", lambda x, y: F.mse_loss(x, y, reduction="sum"), (f(3, 4), f(3, 4)), {}),
    ("F.nll_loss", lambda x, t: F.nll_loss(x, t), (f(5, 4), i((5,), 4)), {}),
    # (class weights are not differentiable: PyTorch refuses a weight that requires grad)
    ("F.nll_loss/weight-none",
     lambda x, t, w: F.nll_loss(x, t, weight=w.detach(), reduction="none"),
     (f(5, 4), i((5,), 4), p(4)), {}),
    ("F.cross_entropy", lambda x, t: F.cross_entropy(x, t), (f(5, 4), i((5,), 4)), {}),
    ("F.cross_entropy/smoothing", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
     (f(5, 4), i((5,), 4)), {}),
    ("F.cross_entropy/probabilities", lambda x, t: F.cross_entropy(x, F.softmax(t, 1)),
     (f(5, 4), f(5, 4)), {}),
    ("F.dropout", lambda x: F.dropout(x, 0.5, training=False) * x, (f(3, 4),), {}),
]

# Front-end functions with nothing to differentiate (boolean or integer results, comparisons).
EXCLUDED_FUNCTIONS = {
    "lt", "le", "gt", "ge", "eq", "ne", "less", "less_equal", "greater", "greater_equal", "not_equal",
    "logical_and", "logical_or", "logical_not", "isnan", "isinf", "isfinite", "equal", "allclose",
    "argmax", "argmin", "all", "any", "count_nonzero",
}
# In-place functions are checked under tracing in tests/test_inplace.py; creation and random
# functions take no tensor operands, so there is nothing of theirs to trace.
EXCLUDED_MODULES = ("inplace", "creation", "random")  # no tensor operands: nothing to trace


def composite_names() -> set:
    """Every exported differentiable-looking front-end function (math, shape, nn.functional, ...)."""
    from gradgen.functions import MODULES
    names = set()
    for mod in MODULES:
        if mod.__name__.rsplit(".", 1)[-1] not in EXCLUDED_MODULES:
            names.update(getattr(mod, "FUNCTIONS", []))
    names.update("F." + n for n in getattr(F, "__all__", []))
    return names


# ---------------------------------------------------------------- multi-operation programs

def _log_softmax(z, dim=-1):
    return z - gg.logsumexp(z, dim, keepdim=True)


def _softmax(z, dim=-1):
    e = gg.exp(z - gg.amax(z, dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)


def _cross_entropy(logits, target):
    n = logits.shape[0]
    return -_log_softmax(logits)[gg.arange(n), target].mean()


def mlp_ce(x, w1, b1, w2, b2, t):
    h = gg.relu(x @ w1 + b1)
    return _cross_entropy(h @ w2 + b2, t)


def mlp_tanh_mse(x, w1, b1, w2, y):
    return ((gg.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()


def layer_norm(x, g, beta):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / gg.sqrt(var + 1e-5) * g + beta


def attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / 8 ** 0.5
    return _softmax(scores) @ v


def multihead(x, wq, wk, wv):
    def heads(t):
        return t.reshape(2, 3, 2, 4).permute(0, 2, 1, 3)
    q, k, v = heads(x @ wq), heads(x @ wk), heads(x @ wv)
    out = _softmax(q @ k.transpose(-1, -2) * 0.5) @ v
    return out.permute(0, 2, 1, 3).reshape(2, 3, 8)


def rnn(xs, w, u, b0):
    h = gg.zeros(2, 4, dtype=xs.dtype)
    for t in range(3):
        h = gg.tanh(xs[t] @ w + h @ u + b0)
    return h.sum()


def deep_chain(x):
    for k in range(25):
        x = gg.sin(x) * 1.1 + 0.1 * x if k % 2 else gg.tanh(x) - 0.3 * x * x
    return x


def fan_out(x):
    y = x * x
    z = y * y + y * x + gg.exp(-y)
    return z + y.sum() * x


def conv1d(x, w):
    n = x.shape[1] - w.shape[0] + 1
    return gg.stack([x[:, j:j + n] * w[j] for j in range(w.shape[0])], 0).sum(0)


def maxpool(x):
    return x.reshape(2, 3, 2).amax(-1)


def huber(x, y):
    d = gg.abs(x - y)
    return gg.where(d < 0.5, 0.5 * d * d, 0.5 * (d - 0.25)).mean()


def bce(x, t):
    s = gg.sigmoid(x)
    return -(t * gg.log(s) + (1 - t) * gg.log(1 - s)).mean()


def gelu(x):
    return 0.5 * x * (1 + gg.erf(x / 2 ** 0.5))


def no_grad_inside(x):
    with gg.no_grad():
        scale = x.abs().amax()
    return x / scale + x.detach() * x


def transformer_block(x, wq, wk, wv, w1, w2, g, beta):
    h = F.layer_norm(x, (8,), g, beta)
    att = F.softmax((h @ wq) @ (h @ wk).transpose(-1, -2) / 8 ** 0.5, dim=-1) @ (h @ wv)
    x = x + att
    return x + F.linear(F.gelu(F.linear(F.layer_norm(x, (8,)), w1)), w2)


def classifier(x, w1, b1, w2, b2, t):
    return F.cross_entropy(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), t)


def multi_output(x, y):
    return {"sum": (x * y).sum(), "prod": x * y, "idx": gg.argmax(x, 1), "pair": (x.exp(), 3)}


PROGRAM_CASES = [
    ("mlp_ce", mlp_ce, (f(4, 5), f(5, 8), f(8), f(8, 3), f(3), i((4,), 3)), {}),
    ("mlp_tanh_mse", mlp_tanh_mse, (f(4, 5), f(5, 6), f(6), f(6, 2), f(4, 2)), {}),
    ("layer_norm", layer_norm, (f(3, 6), f(6), f(6)), {}),
    ("softmax", lambda x: _softmax(x, 0), (f(4, 3),), {}),
    ("log_softmax_nll", lambda x, t: _cross_entropy(x, t), (f(5, 4), i((5,), 4)), {}),
    ("attention", attention, (f(2, 3, 8), f(2, 4, 8), f(2, 4, 5)), {}),
    ("multihead", multihead, (f(2, 3, 8), f(8, 8), f(8, 8), f(8, 8)), {}),
    ("matmul_chain", lambda a, b_, c_: gg.tanh(a @ b_) @ c_ @ c_.T, (f(3, 4), f(4, 5), f(5, 5)), {}),
    ("heavy_broadcast", lambda a, b_, c_: (a + b_ * c_) * a - c_ / (1.5 + b_ * b_),
     (f(3, 1, 5), f(4, 1), f(5)), {}),
    ("broadcast_scalar_tensor", lambda a, s: a * s + s * s, (f(3, 4), f()), {}),
    ("reductions_keepdim", lambda x: x - x.mean(1, keepdim=True) + x.sum((0, 2), keepdim=True),
     (f(2, 3, 4),), {}),
    ("standardize", lambda x: (x - x.mean(0)) / x.std(0, keepdim=True), (f(5, 3),), {}),
    ("max_along_dim", lambda x, y: x.max(1).values * y + x.max(1, keepdim=True)[0].sum(),
     (f(3, 4), f(3)), {}),
    ("minmax_mix", lambda x, y: gg.maximum(x, y) - gg.minimum(x, 0.2 * y) + x.min(), (f(3, 4), f(3, 4)), {}),
    ("where_clamp_max", lambda x, y: gg.where(x > y, gg.clamp(x, -1, 1), gg.maximum(x, y) * 2),
     (f(3, 4), f(4)), {}),
    ("indexing_basic", lambda x: x[1:, ::2] * x[0, 1] + x[-1].sum(), (f(3, 4),), {}),
    ("indexing_advanced", lambda x, k: x[k, 1:] * x[k].sum(), (f(4, 3), i((5,), 4)), {}),
    ("indexing_two_arrays", lambda x, r, k: x[r, k] + x[:, k].sum(0), (f(4, 3), i((3,), 4), i((3,), 3)), {}),
    ("gather_scatter", lambda x, k: gg.gather(x, 1, k) * gg.index_select(x, 1, k[0]).sum(1, keepdim=True),
     (f(3, 4), i((3, 2), 4)), {}),
    ("cat_stack_split", lambda x, y: gg.stack(gg.split(gg.cat([x, y * 2], 1), 3, 1)[::-1], 0),
     (f(2, 4), f(2, 2)), {}),
    ("chunk_cat", lambda x: gg.cat(gg.chunk(x, 3, 0)[::-1], 0) * x, (f(6, 2),), {}),
    ("unbind_stack", lambda x: gg.stack([t * (j + 1) for j, t in enumerate(gg.unbind(x, 1))], 0),
     (f(3, 4),), {}),
    ("fan_out", fan_out, (f(3, 4),), {}),
    ("deep_chain", deep_chain, (f(3, 4),), {}),
    ("rnn", rnn, (f(3, 2, 3), f(3, 4), f(4, 4), f(4)), {}),
    ("conv1d", conv1d, (f(2, 8), f(3)), {}),
    ("maxpool", maxpool, (f(2, 6),), {}),
    ("meanpool_flatten", lambda x: x.reshape(2, 2, 3).mean(1).flatten(), (f(4, 3),), {}),
    ("huber", huber, (f(3, 4), f(3, 4)), {}),
    ("bce", bce, (f(6,), ("u", (6,))), {}),
    ("gelu", gelu, (f(3, 4),), {}),
    ("silu_softplus", lambda x: x * gg.sigmoid(x) + gg.log1p(gg.exp(x)), (f(3, 4),), {}),
    ("l2_normalize", lambda x: x / x.norm(dim=1, keepdim=True), (f(3, 4),), {}),
    ("cosine", lambda x, y: (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1)), (f(3, 4), f(3, 4)), {}),
    ("polynomial", lambda x, a: a[0] + a[1] * x + a[2] * x ** 2 + a[3] * x ** 3, (f(5,), f(4)), {}),
    ("pow_tensor_tensor", lambda x, y: (x ** y).sum() + (y ** 2) @ x, (p(4,), f(4)), {}),
    ("bmm_chain", lambda a, b_: gg.bmm(gg.bmm(a, b_), b_.transpose(1, 2)).sum(), (f(2, 3, 4), f(2, 4, 4)), {}),
    ("outer_mv", lambda m, v: gg.outer(gg.mv(m, v), v) + gg.dot(v, v), (f(4, 4), f(4)), {}),
    ("transpose_chain", lambda x: x.permute(2, 0, 1).transpose(0, 1).reshape(4, 6).t() * 2,
     (f(2, 3, 4),), {}),
    ("flip_slices", lambda x: gg.flip(x, 1)[:, 1:] * x[:, :3], (f(3, 4),), {}),
    ("tile_repeat", lambda x: gg.tile(x, (2, 2)) * x.repeat(2, 2), (f(2, 3),), {}),
    ("squeeze_unsqueeze", lambda x: x.unsqueeze(0).unsqueeze(-1).squeeze(0) * x.unsqueeze(-1),
     (f(3, 4),), {}),
    ("broadcast_tensors_sum", lambda x, y: sum(t.sum() for t in gg.broadcast_tensors(x, y)),
     (f(3, 1), f(1, 4)), {}),
    ("logsumexp_multi", lambda x: gg.logsumexp(x, (0, 2)) * x.mean(), (f(2, 3, 4),), {}),
    ("prod_reduce", lambda x: x.prod(1) + x.prod(), (p(3, 4),), {}),
    ("var_mixed", lambda x: x.var(0) * x.var() + x.var(1, correction=0).sum(), (f(4, 3),), {}),
    ("detach_mix", lambda x: (x.detach() * x).sum() + x.sum(), (f(3, 4),), {}),
    ("no_grad_inside", no_grad_inside, (f(3, 4),), {}),
    ("multi_output", multi_output, (f(3, 4), f(3, 4)), {}),
    ("python_constant_arg", lambda x, s: x * s + s, (f(3, 4), c(2.5)), {}),
    ("int_input_mix", lambda x, n: x * n + (n * 2).sum(), (f(3, 4), i((3, 4), 5)), {}),
    ("masked_fill", lambda x, m: gg.where(m, gg.zeros_like(x), x) * x, (f(3, 4), b(3, 4)), {}),
    ("relu_net", lambda x, w: gg.relu(gg.relu(x @ w) @ w.T).sum(), (f(3, 4), f(4, 4)), {}),
    ("abs_sign", lambda x: gg.abs(x) * gg.sign(x) + gg.abs(x).sqrt(), (f(3, 4),), {}),
    ("constant_output", lambda x: (x.sum(), gg.ones(2), x.shape), (f(3, 4),), {}),
    ("identity_output", lambda x, y: (x, x * y), (f(3, 4), f(3, 4)), {}),
    ("transformer_block", transformer_block,
     (f(2, 3, 8), f(8, 8), f(8, 8), f(8, 8), f(16, 8), f(8, 16), f(8), f(8)), {}),
    ("classifier_F", classifier, (f(6, 5), f(7, 5), f(7), f(3, 7), f(3), i((6,), 3)), {}),
    ("mse_softplus", lambda x, y: F.mse_loss(F.softplus(x), y) + F.log_softmax(x, 1).mean(),
     (f(4, 3), f(4, 3)), {}),
]


def _params(cases: list) -> list:
    return [pytest.param(fn, specs, kw, id=name) for name, fn, specs, kw in cases]


@pytest.mark.parametrize("fn,specs,kw", _params(PRIMITIVE_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_primitive(fn, specs, kw, dtype) -> None:
    run_case(fn, specs, dtype, **kw)


@pytest.mark.parametrize("fn,specs,kw", _params(COMPOSITE_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_composite(fn, specs, kw, dtype) -> None:
    run_case(fn, specs, dtype, **kw)


@pytest.mark.parametrize("fn,specs,kw", _params(PROGRAM_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_program(fn, specs, kw, dtype) -> None:
    run_case(fn, specs, dtype, **kw)


def test_corpus_has_forty_programs() -> None:
    assert len(PROGRAM_CASES) >= 40


def test_every_primitive_is_covered() -> None:
    covered = {name.split("/")[0] for name, *_ in PRIMITIVE_CASES}
    missing = sorted(set(PRIMITIVES) - covered)
    assert not missing, f"primitives without a corpus entry: {missing}"


def test_every_composite_is_covered() -> None:
    covered = {name.split("/")[0] for name, *_ in COMPOSITE_CASES}
    missing = sorted(composite_names() - covered - set(EXCLUDED_FUNCTIONS))
    assert not missing, f"front-end functions without a corpus entry: {missing}"
