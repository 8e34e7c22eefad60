"""Every registry primitive and every front-end/composite corpus case, compiled to C, equals eager.

Issue 4's acceptance: ``gradgen.compile(fn, fullgraph=True)`` (any fallback is an error) runs each
entry of ``PRIMITIVE_CASES`` and ``COMPOSITE_CASES`` (tests/test_corpus.py) in float32 and float64,
twice with fresh inputs of the same signature (the second call runs the compiled kernels), and
its forward outputs and the leaf gradients of ``.backward()`` on a weighted scalar reduction of
the outputs match eager's (float64 rtol 1e-10; float32 rtol 1e-5, 1e-4 when the programs reduce;
NaN/inf positions and the sign of zeros equal). ``compile(value_and_grad(loss))`` of the same
reduction must give the same value and gradients. The elementwise primitives also run on inputs
holding NaN, +-inf and -0.0.

Compile latency dominates (about 0.2 s per module), so cases are checked in groups: one compiled
function runs a whole group (the weighted reduction is its one differentiable output; see Group),
and each case's test reads its slice of the group's results. A
group that cannot be compiled as a whole (fallback, trace error) is not a verdict on its cases:
each of its cases then compiles on its own, and reports its own error. Cases marked ``xfail``
always run on their own, so a known failure never hides the others.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradgen as gg
from gradgen import compile, value_and_grad
from gradgen.ad import vjp
from gradgen.ad.reverse import active_outputs
from gradgen.ir.printer import print_program
from gradgen.ir.trace import trace
from gradgen.ir.tree import flatten

from test_compile_c import HAS_CC, Counter, _close, _rtol
from test_corpus import COMPOSITE_CASES, PRIMITIVE_CASES, _fresh, make_args

pytestmark = [pytest.mark.cc, pytest.mark.skipif(not HAS_CC, reason="no C compiler")]

GROUP_SIZE = 40
DTYPES = {"f64": np.float64, "f32": np.float32}

# Elementwise primitives, also run on inputs with NaN, +-inf and -0.0 (the "/special" variants).
# convert/int is left out: a NaN or inf cast to int64 is undefined behaviour in C and
# platform-specific in numpy, so there is no eager answer to match.
_ELEMENTWISE = {"neg", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "logistic",
                "erf", "abs", "sign", "add", "sub", "mul", "div", "pow", "max", "min", "lt", "le",
                "gt", "ge", "eq", "ne", "and", "or", "not", "select", "convert", "stop_gradient"}
_SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e-3, -0.25])

# Cases that may fall back to eager for a documented data-dependent reason (boolean masks,
# random numbers): compiled with fullgraph=False, checked for equality all the same.
DATA_DEPENDENT: dict[str, str] = {}

# name -> reason: known failures. These run alone unless listed in XFAIL_IN_GROUP (failures
# that only show when the case shares a compiled module with other cases).
XFAIL: dict[str, str] = {}
XFAIL_IN_GROUP: set[str] = set()


def _cases() -> list[tuple[str, object, tuple, bool]]:
    out = []
    for name, fn, specs, _ in PRIMITIVE_CASES:
        out.append(("prim:" + name, fn, specs, False))
        if name.split("/")[0] in _ELEMENTWISE and name != "convert/int":
            out.append(("prim:" + name + "/special", fn, specs, True))
    out += [("fn:" + name, fn, specs, False) for name, fn, specs, _ in COMPOSITE_CASES]
    return out


CASES = _cases()
BY_NAME = {c[0]: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"


def _args(specs: tuple, dtype: type, seed: int, special: bool) -> list:
    """make_args' tensors; with ``special``, float operands hold NaN/inf/-0.0 (each operand
    rolled differently, so special values meet each other and ordinary ones)."""
    args = make_args(specs, dtype, seed)
    if not special:
        return args
    out = []
    for k, a in enumerate(args):
        if isinstance(a, gg.Tensor) and a.is_floating_point():
            vals = np.roll(_SPECIAL, k * (5 if seed == 0 else 3))
            vals = np.resize(vals, a.shape) if a.ndim else vals[:1].reshape(())
            a = gg.from_numpy(vals.astype(dtype))
        out.append(a)
    return out


def _weights(outs: list, seed: int) -> list:
    """Fixed random weights for the floating outputs: the scalar loss is sum((o * w).sum())."""
    rng = np.random.default_rng(1000 + seed)
    return [gg.from_numpy(rng.standard_normal(o.shape).astype(o.numpy(force=True).dtype))
            if o.is_floating_point() else None for o in outs]


def _loss(outs: list, weights: list):
    terms = [(o * w).sum() for o, w in zip(outs, weights) if w is not None]
    return sum(terms[1:], terms[0]) if terms else None


def _reduces(fn, args: list) -> bool:
    """Whether the forward or gradient program reduces (the float32 tolerance is 1e-4 then)."""
    xs = _fresh(args)
    program = trace(fn, *xs)
    ins = flatten(tuple(args))[0]
    wrt = tuple(k for k, t in enumerate(ins) if t.is_floating_point())
    seeds = tuple(k for k, d in enumerate(active_outputs(program, wrt)) if d)
    text = print_program(program) + (print_program(vjp(program, wrt, seeds)) if seeds else "")
    return any(w in text for w in ("reduce_", "matmul"))


class Result:
    """One case on one input set: outputs, leaf grads (None where eager leaves them None), loss."""

    def __init__(self, outs, grads, loss) -> None:
        self.outs, self.grads, self.loss = outs, grads, loss


def _numpy(t):
    return None if t is None else t.detach().numpy().copy()


def _eager(fn, args: list, seed: int) -> tuple[Result, list]:
    xs = _fresh(args)
    leaves = [t for t in flatten(tuple(xs))[0] if t.is_floating_point()]
    outs = flatten((fn(*xs),))[0]
    weights = _weights(outs, seed)
    loss = _loss(outs, weights)
    if loss is not None and loss.requires_grad:
        loss.backward()
    return Result([_numpy(o) for o in outs], [_numpy(x.grad) for x in leaves], _numpy(loss)), weights


# ---------------------------------------------------------------- running a group of cases

class Group:
    """Cases run as one compiled function of all their inputs (and loss weights).

    The function returns ``(loss, per-case losses, outputs)`` with only ``loss``
    differentiable: the backward of a compiled call gets a zero cotangent for each
    output no gradient reached (see ``test_multi_output_backward_unused_output``),
    so a group returning every case's outputs would test those zero products
    (0 * inf) instead of each case's own gradients.
    """

    def __init__(self, names: list[str], dtype: type, fullgraph: bool = True) -> None:
        self.names, self.dtype, self.fullgraph = names, dtype, fullgraph
        self.error: Exception | None = None
        self.results: dict[str, list] = {n: [] for n in names}  # per seed: (want, got, vg)
        self.fallback = None

    def _body(self, arity: list[int], counts: list[int]):
        fns = [BY_NAME[n][1] for n in self.names]
        n_in = sum(arity)

        def loss(*flat_and_weights):
            flat, ws = flat_and_weights[:n_in], list(flat_and_weights[n_in:])
            per, outs, pos = [], [], 0
            for f, n in zip(fns, arity):
                o = flatten((f(*flat[pos:pos + n]),))[0]
                w = [ws.pop(0) if t.is_floating_point() else None for t in o]
                term = _loss(o, w)
                per.append(term if term is not None else gg.zeros((), dtype=self.dtype))
                outs += o
                pos += n
            return sum(per[1:], per[0]), (tuple(per), tuple(outs))
        return loss

    def run(self) -> "Group":
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                self._run()
        except Exception as err:  # noqa: BLE001 -- reported by the cases' tests
            self.error = err
        return self

    def _run(self) -> None:
        cf = vg = body = None
        for seed in (0, 1):
            per = [_args(BY_NAME[n][2], self.dtype, seed, BY_NAME[n][3]) for n in self.names]
            flat = [a for args in per for a in args]
            wants, weights = zip(*[_eager(BY_NAME[n][1], a, seed) for n, a in zip(self.names, per)])
            ws = [w for ws_ in weights for w in ws_ if w is not None]
            if cf is None:
                body = Counter(self._body([len(a) for a in per], [len(w.outs) for w in wants]))

                def detached(*a, body=body):
                    total, (losses, outs) = body(*a)
                    return total, tuple(t.detach() for t in losses), tuple(t.detach() for t in outs)
                cf = compile(detached, fullgraph=self.fullgraph)
                floats = tuple(k for k, t in enumerate(flat) if t.is_floating_point())
                vg = compile(value_and_grad(body, argnums=floats, has_aux=True),
                             fullgraph=self.fullgraph)
            gots = self._compiled(cf, flat, ws, per, wants)
            vgs = self._value_and_grad(vg, flat, ws, per, wants)
            for n, w, g, v in zip(self.names, wants, gots, vgs):
                self.results[n].append((w, g, v))
        self.fallback = cf.fallback_reason or vg.fallback_reason
        if self.fallback is None:
            assert body.calls == 2, "a second call re-ran the function's Python"

    @staticmethod
    def _split(items: list, per: list, wants: list) -> list:
        """Per-case slices of the flat outputs (one slice per case, as many as eager gave)."""
        out, pos = [], 0
        for want in wants:
            out.append(items[pos:pos + len(want.outs)])
            pos += len(want.outs)
        return out

    def _compiled(self, cf, flat, ws, per, wants) -> list[Result]:
        xs = _fresh(flat)
        total, losses, outs = cf(*xs, *ws)
        if total.requires_grad:
            total.backward()
        res, start = [], 0
        for args, o, loss in zip(per, self._split(list(outs), per, wants), losses):
            leaves = [t for t in xs[start:start + len(args)] if t.is_floating_point()]
            res.append(Result([_numpy(t) for t in o], [_numpy(x.grad) for x in leaves], _numpy(loss)))
            start += len(args)
        return res

    def _value_and_grad(self, vg, flat, ws, per, wants) -> list[Result]:
        (total, (losses, outs)), grads = vg(*[t.detach() for t in flat], *ws)
        res, gi = [], 0
        for args, o, loss in zip(per, self._split(list(outs), per, wants), losses):
            nf = sum(t.is_floating_point() for t in args)
            res.append(Result([_numpy(t) for t in o], [_numpy(g) for g in grads[gi:gi + nf]],
                              _numpy(loss)))
            gi += nf
        return res


def _groups() -> dict[str, tuple[int, list[str]]]:
    """Case name -> (group index, members): cases in CASES order, GROUP_SIZE at a time; xfail and
    data-dependent cases alone."""
    alone = (set(XFAIL) - XFAIL_IN_GROUP) | set(DATA_DEPENDENT)
    plain = [n for n, *_ in CASES if n not in alone]
    out = {}
    chunks = [plain[k:k + GROUP_SIZE] for k in range(0, len(plain), GROUP_SIZE)]
    chunks += [[n] for n, *_ in CASES if n in alone]
    for k, members in enumerate(chunks):
        for n in members:
            out[n] = (k, members)
    return out


GROUPS = _groups()
_DONE: dict[tuple, Group] = {}


def _group_for(name: str, dtype: type) -> Group:
    k, members = GROUPS[name]
    key = (k, dtype)
    if key not in _DONE:
        _DONE[key] = Group(members, dtype, fullgraph=name not in DATA_DEPENDENT).run()
    group = _DONE[key]
    if group.error is not None and len(members) > 1:
        # The group as a whole did not compile: the case on its own gives its own verdict.
        key = (name, dtype)
        if key not in _DONE:
            _DONE[key] = Group([name], dtype).run()
        group = _DONE[key]
    return group


# ---------------------------------------------------------------- comparison

def _same(got, want, reduces: bool, what: str) -> None:
    """allclose at the tolerance of the result's own dtype (convert changes it), equal NaN/inf
    positions, and equal signs of zeros (-0.0 behaves as in eager)."""
    if want is None or got is None:
        assert got is None and want is None, f"{what}: got {got!r}, eager {want!r}"
        return
    _close(got, want, _rtol(want.dtype.type, reduces), what)
    if want.dtype.kind == "f":
        zero = want == 0
        np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]),
                                      err_msg=f"{what}: sign of zeros")


def _check(group: Group, name: str, dtype: type) -> None:
    if group.error is not None:
        raise group.error
    if group.fallback is not None and name not in DATA_DEPENDENT:
        raise AssertionError(f"fell back to eager: {group.fallback}")
    fn, specs, special = BY_NAME[name][1:]
    with np.errstate(all="ignore"):
        reduces = _reduces(fn, _args(specs, dtype, 0, special))
    for seed, (want, got, vg) in enumerate(group.results[name]):
        for k, (g, w) in enumerate(zip(got.outs, want.outs, strict=True)):
            _same(g, w, reduces, f"call {seed}: output {k}")
        _same(got.loss, want.loss, True, f"call {seed}: loss")
        for k, (g, w) in enumerate(zip(got.grads, want.grads, strict=True)):
            _same(g, w, reduces, f"call {seed}: .grad of leaf {k}")
        for k, (g, w) in enumerate(zip(vg.outs, want.outs, strict=True)):
            _same(g, w, reduces, f"call {seed}: value_and_grad aux output {k}")
        _same(vg.loss, want.loss, True, f"call {seed}: value_and_grad value")
        for k, (g, w) in enumerate(zip(vg.grads, want.grads, strict=True)):
            w = np.zeros_like(g) if w is None else w  # value_and_grad materializes zeros
            _same(g, w, reduces, f"call {seed}: value_and_grad gradient {k}")


def _params() -> list:
    out = []
    for name, *_ in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[name])] if name in XFAIL else []
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize("name", _params())
def test_compiled_equals_eager(name: str, dtype: type) -> None:
    _check(_group_for(name, dtype), name, dtype)


def test_every_case_is_in_the_sweep() -> None:
    names = {n for n, *_ in CASES}
    assert {"prim:" + n for n, *_ in PRIMITIVE_CASES} <= names
    assert {"fn:" + n for n, *_ in COMPOSITE_CASES} <= names
    assert all(n in names for n in XFAIL) and all(n in names for n in DATA_DEPENDENT)


# ---------------------------------------------------------------- multi-output compiled functions
# The group functions above return one differentiable output; these check what a function with
# several outputs does on its own.

def _two_outputs(x, y):
    return gg.exp(x), -y


def _leaves():
    x = gg.tensor([float("inf"), 1.0], dtype=gg.float64, requires_grad=True)
    y = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
    return x, y


def _check_same(got, want) -> None:
    """Equal up to rounding (the C kernels' exp may differ by an ulp), with equal zero signs."""
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-14)
    np.testing.assert_array_equal(np.signbit(got.numpy()), np.signbit(want.numpy()))


def test_multi_output_backward(monkeypatch) -> None:
    # One backward pass runs the backward program once, with every output's cotangent:
    # no 0 * inf = nan from a zero cotangent, no -0.0 + 0.0 losing the sign.
    from gradgen.ad.compiled import CompiledFunctionBackward
    calls = []
    apply = CompiledFunctionBackward.apply
    monkeypatch.setattr(CompiledFunctionBackward, "apply",
                        lambda self, g: calls.append(1) or apply(self, g))
    cf = compile(_two_outputs, fullgraph=True)
    for weight in (1.0, -0.0):
        grads = []
        for f in (_two_outputs, cf):
            x, y = _leaves()
            a, b = f(x, y)
            with np.errstate(all="ignore"):
                (a.sum() * weight + b.sum()).backward()
            grads.append((x.grad, y.grad))
        for got, want in zip(*grads):
            _check_same(got, want)
        assert np.isinf(grads[1][0].numpy()[0]) == (weight == 1.0)  # (-0.0 * inf is nan)
    assert len(calls) == 2


def test_multi_output_grad_fn_and_graph() -> None:
    cf = compile(_two_outputs, fullgraph=True)
    x, y = _leaves()
    a, b = cf(x, y)
    # Like PyTorch: both outputs show the call's one node, at output index 0 and 1.
    assert a.grad_fn is b.grad_fn and a.grad_fn.name() == "CompiledFunctionBackward"
    assert a.sum().grad_fn.next_functions == ((a.grad_fn, 0),)
    assert b.sum().grad_fn.next_functions == ((a.grad_fn, 1),)
    seen = []
    b.register_hook(lambda g: seen.append(g.numpy().tolist()))
    loss = a.sum() + 3 * b.sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert seen == [[3.0, 3.0], [3.0, 3.0]]
    np.testing.assert_array_equal(y.grad.numpy(), [-6.0, -6.0])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_multi_output_saved_tensor_check() -> None:
    for f in (_two_outputs, compile(_two_outputs, fullgraph=True)):
        x, y = _leaves()
        a, b = f(x, y)
        a.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            (a.sum() + b.sum()).backward()


def test_multi_output_create_graph() -> None:
    def f(x, y):
        return gg.exp(x), y * y * y

    want = None
    for fn in (f, compile(f, fullgraph=True)):
        x = gg.tensor([0.5, 1.0], dtype=gg.float64, requires_grad=True)
        y = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
        a, b = fn(x, y)
        gx, gy = gg.autograd.grad(a.sum() + b.sum(), (x, y), create_graph=True)
        (gx.sum() + gy.sum()).backward()
        got = (x.grad, y.grad)
        want = want or got
        for g, w in zip(got, want):
            _check_same(g, w)


def test_multi_output_backward_unused_output() -> None:
    """A backward from one output of a compiled call: as in eager, only that output contributes
    (a leaf reached only through the other gets no .grad, and no zero cotangent meets an
    infinite partial), also with create_graph and for the other output afterwards."""
    x, y = _leaves()
    a, b = compile(_two_outputs, fullgraph=True)(x, y)
    with np.errstate(all="ignore"):
        b.sum().backward(retain_graph=True)
    assert x.grad is None, x.grad  # eager: None
    np.testing.assert_array_equal(y.grad.numpy(), [-1.0, -1.0])
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.exp([np.inf, 1.0]))
    np.testing.assert_array_equal(y.grad.numpy(), [-1.0, -1.0])
    x, y = _leaves()
    a, b = compile(lambda x, y: (gg.exp(x) * y, y * y), fullgraph=True)(x, y)
    (gy,) = gg.autograd.grad(b.sum(), [y], create_graph=True)
    np.testing.assert_array_equal(gy.detach().numpy(), [2.0, 4.0])
    assert gy.requires_grad


def test_namedtuple_output() -> None:
    cf = compile(lambda x: gg.max(x, dim=1), fullgraph=True)
    x = gg.randn(3, 4, dtype=gg.float64)
    got, want = cf(x), gg.max(x, dim=1)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
