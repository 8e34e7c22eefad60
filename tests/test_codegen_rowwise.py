"""Row-wise kernels (softmax, log_softmax, layer_norm, cross-entropy, their gradients) and the
memory planner, checked against the IR interpreter.

Programs come from the nn.functional composites traced with ``gradgen.trace``,
differentiated and split by ``gradgen.ad.partition`` (as in tests/test_corpus.py).
Every program here is compiled into one shared object (one ``cc`` run) and run
through cffi's ABI mode, its temporaries placed in the schedule's workspace slots.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.ad import partition, vjp
from gradgen.codegen import HostOp, Kernel, View, build_schedule, render_module
from gradgen.codegen.clower import buffer_ctype
from gradgen.dtypes import float64
from gradgen.ir.builder import Builder
from gradgen.ir.interpreter import run
from gradgen.ir.trace import trace
from gradgen.passes.pipeline import optimize

CC = shutil.which("cc") or shutil.which("gcc")
FLAGS = ["-O2", "-shared", "-fPIC", "-std=gnu11", "-fno-math-errno", "-ffp-contract=off",
         "-fopenmp-simd", "-DGRADGEN_THREADS", "-pthread", "-Wl,-z,nodelete"]
RNG = np.random.default_rng(1)


def _ce_probs(x, t):
    return F.cross_entropy(x, F.softmax(t, dim=1), label_smoothing=0.1)


# name -> (function, argument specs: ("f", shape) float, ("i", shape, n) class indices)
FUNCTIONS = {
    "softmax": (lambda x: F.softmax(x, dim=1), [("f", (5, 7))]),
    "softmax_3d_last": (lambda x: F.softmax(x, dim=-1), [("f", (2, 3, 9))]),
    "softmax_dim0": (lambda x: F.softmax(x, dim=0), [("f", (6, 4))]),
    "softmax_big": (lambda x: F.softmax(x, dim=1), [("f", (64, 600))]),  # parallel rows
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), [("f", (5, 7))]),
    "log_softmax_3d_mid": (lambda x: F.log_softmax(x, dim=1), [("f", (2, 5, 3))]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (7,), w, b), [("f", (5, 7)), ("f", (7,)),
                                                                  ("f", (7,))]),
    "layer_norm_plain": (lambda x: F.layer_norm(x, (3, 4)), [("f", (2, 3, 4))]),
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t), [("f", (5, 7)), ("i", (5,), 7)]),
    "cross_entropy_probs": (_ce_probs, [("f", (4, 6)), ("f", (4, 6))]),
    "mean_rows": (lambda x: x.mean(dim=1), [("f", (5, 7))]),
    "var_rows": (lambda x: x.var(dim=1), [("f", (5, 7))]),
}
# softmax-like programs whose rows may hold -inf
NEG_INF_OK = {"softmax", "softmax_3d_last", "log_softmax", "cross_entropy"}


def _args(specs, d):
    out = []
    for kind, shape, *n in specs:
        if kind == "i":
            out.append(gg.from_numpy(RNG.integers(0, n[0], shape).astype(np.int64)))
        else:
            out.append(gg.from_numpy(RNG.standard_normal(shape).astype(d)).requires_grad_())
    return out


def _programs():
    progs = {}
    for name, (fn, specs) in FUNCTIONS.items():
        for d in (np.float32, np.float64):
            args = _args(specs, d)
            wrt = tuple(i for i, a in enumerate(args) if a.is_floating_point())
            part = partition(vjp(trace(fn, *args), wrt))
            tag = f"{name}-{np.dtype(d).name}"
            progs[tag] = (part, optimize(part.forward), optimize(part.backward))
    return progs


PROGRAMS = _programs()


def _deep_chain(reduce: str = "reduce_sum"):
    """A deep chain over [64,32] (float64): elementwise steps and row sums (or maxima)
    alternating between the two axes, so every step's result is a stored intermediate (with
    sums, a sum over axis 0 is also a column sum of the kernel before it: codegen.colsums)."""
    b = Builder()
    x = b.input((64, 32), float64)
    v = x
    for k in range(8):
        axis = k % 2
        v = b.add("tanh", b.add("mul", v, 1.5))
        s = b.add(reduce, v, axes=(axis,))
        v = b.add("sub", v, b.add("broadcast_in_dim", s, shape=(64, 32), dims=(1 - axis,)))
        v = b.add("exp", b.add("mul", v, 0.1))
    return b.build([b.add("reduce_sum", v, axes=(0, 1))])


EXTRA = {"deep_chain": _deep_chain(), "deep_chain_max": _deep_chain("reduce_max")}


def _all_schedules():
    out = {}
    for tag, (_, fwd, bwd) in PROGRAMS.items():
        out[f"{tag}-fwd"] = fwd
        out[f"{tag}-bwd"] = bwd
    out.update(EXTRA)
    return out


ALL = _all_schedules()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler")
    names = list(ALL)
    scheds = [build_schedule(ALL[n]) for n in names]
    module = render_module(scheds, cache_key="rowwise", prefixes=[f"r{k}_" for k in range(len(names))])
    d = tmp_path_factory.mktemp("rowwise")
    src, lib = d / "m.c", d / "m.so"
    src.write_text(module.source)
    r = subprocess.run([CC, *FLAGS, "-o", str(lib), str(src), "-lmvec", "-lm"],
                       capture_output=True, text=True)
    if r.returncode != 0 and "mvec" in r.stderr:
        r = subprocess.run([CC, *FLAGS, "-o", str(lib), str(src), "-lm"], capture_output=True,
                           text=True)
    assert r.returncode == 0, r.stderr[:4000]
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(module.cdef)
    lib = ffi.dlopen(str(lib))
    lib.gg_set_num_threads(2)  # the parallel rows (softmax_big) run on the thread pool
    return ffi, lib, module, dict(zip(names, scheds))


def _strided(view: View, base: np.ndarray) -> np.ndarray:
    return np.lib.stride_tricks.as_strided(base, view.shape,
                                           tuple(s * base.itemsize for s in view.strides))


def execute(compiled, name: str, inputs: list) -> list:
    """Run one schedule: temporaries in workspace slots (``Schedule.slots``), outputs fresh."""
    ffi, lib, module, scheds = compiled
    sched = scheds[name]
    prefix = f"r{list(scheds).index(name)}_"
    work = [np.full(n, 0xAB, np.uint8) for n in sched.slot_sizes]  # garbage, not zeros
    outs = {o.buffer for o in sched.outputs if isinstance(o, View)}
    mem = {b: np.ascontiguousarray(x) for b, x in zip(sched.inputs, inputs)}

    def array(buf):
        if buf.kind == "const":
            return np.ascontiguousarray(buf.value)
        if buf not in mem:
            aval = buf.var.aval
            if buf in sched.slots:
                assert buf not in outs
                raw = work[sched.slots[buf]][:aval.size * aval.dtype.itemsize]
                mem[buf] = raw.view(aval.dtype.np).reshape(aval.shape)
            else:
                mem[buf] = np.empty(aval.shape, aval.dtype.np)
        return mem[buf]

    for step in sched.steps:
        if isinstance(step, Kernel):
            for buf in step.stores.values():
                mem.pop(buf, None)
            args = [ffi.from_buffer(f"{buffer_ctype(b.var.aval.dtype)}[]", array(b))
                    for b in module.args[prefix + step.name]]
            getattr(lib, prefix + step.name)(*args)
        else:
            ins = [_strided(a, array(a.buffer)) if isinstance(a, View) else a.value
                   for a in step.inputs]
            res = np.asarray(step.eqn.prim.impl(*ins, **step.eqn.params))
            array(step.output)[...] = res
    return [_strided(o, array(o.buffer)).copy() if isinstance(o, View) else o.value
            for o in sched.outputs]


def _check(got, want, rtol):
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(want))
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=rtol)


def _inputs(program, neg_inf: bool) -> list:
    xs = []
    for v in program.inputs:
        a = v.aval
        if a.dtype.is_floating_point:
            x = RNG.standard_normal(a.shape).astype(a.dtype.np)
            if neg_inf and x.ndim == 2 and x.shape[0] >= 3:
                x[0, :] = -np.inf          # a row of -inf: softmax gives NaN, as eager does
                x[1, ::2] = -np.inf        # some -inf entries: exact zeros
            xs.append(x)
        else:
            xs.append(RNG.integers(0, 2, a.shape).astype(a.dtype.np))
    return xs


def _target_inputs(tag, fwd, neg_inf):
    """Forward inputs: floats random, class indices within range."""
    xs = _inputs(fwd, neg_inf)
    fn, specs = FUNCTIONS[tag.rsplit("-", 1)[0]]
    return [RNG.integers(0, s[2], s[1]).astype(np.int64) if s[0] == "i" else x
            for x, s in zip(xs, specs)] + xs[len(specs):]


CASES = [(tag, neg) for tag in PROGRAMS for neg in (False, True)
         if not neg or tag.rsplit("-", 1)[0] in NEG_INF_OK]


@pytest.mark.cc
@pytest.mark.parametrize("tag, neg_inf", CASES)
def test_forward_and_backward_match_interpreter(compiled, tag, neg_inf):
    part, fwd, bwd = PROGRAMS[tag]
    rtol = 1e-10 if tag.endswith("float64") else 1e-4
    xs = _target_inputs(tag, fwd, neg_inf)
    with np.errstate(all="ignore"):
        want_f = run(fwd, *xs)
        got_f = execute(compiled, f"{tag}-fwd", xs)
    for g, w in zip(got_f, want_f, strict=True):
        _check(g, w, rtol)
    # The backward reads the saved inputs, the forward's residuals and the cotangents.
    saved = [xs[i] for i in part.saved_inputs]
    residuals = want_f[part.n_outputs:]
    n_ct = len(bwd.inputs) - len(saved) - len(residuals)
    cts = [RNG.standard_normal(v.aval.shape).astype(v.aval.dtype.np)
           for v in bwd.inputs[len(bwd.inputs) - n_ct:]]
    bx = saved + list(residuals) + cts
    with np.errstate(all="ignore"):
        want_b = run(bwd, *bx)
        got_b = execute(compiled, f"{tag}-bwd", bx)
    for g, w in zip(got_b, want_b, strict=True):
        _check(g, w, rtol)


def _kinds(program):
    sched = build_schedule(program)
    return [type(s).__name__ for s in sched.steps], sched


@pytest.mark.parametrize("name, fwd_kernels, bwd_kernels", [
    ("softmax", 1, 1), ("softmax_3d_last", 1, 1), ("softmax_dim0", 1, 1),
    ("log_softmax", 1, 1), ("layer_norm_plain", 1, None), ("layer_norm", 1, None),
    ("mean_rows", 1, None), ("var_rows", 1, None)])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_row_patterns_are_one_kernel(name, fwd_kernels, bwd_kernels, dt):
    _, fwd, bwd = PROGRAMS[f"{name}-{dt}"]
    kinds, sched = _kinds(fwd)
    assert kinds == ["Kernel"] * fwd_kernels, (kinds, str(fwd))
    if bwd_kernels is not None:
        kinds, _ = _kinds(bwd)
        assert kinds == ["Kernel"] * bwd_kernels, (kinds, str(bwd))


def test_layer_norm_backward_row_part_is_one_kernel():
    """layer_norm's input gradient (two row sums and their broadcasts) is one row-wise kernel;
    the weight/bias gradients reduce over the rows (another axis) in one more. (Their sums come
    first in this backward program, so they are not the row kernel's column sums; in a joint
    program they are: test_codegen_colsums.)"""
    _, _, bwd = PROGRAMS["layer_norm-float32"]
    sched = build_schedule(bwd)
    red = sorted(k.red_axes for k in sched.kernels if k.red_axes is not None)
    assert red == [(0,), (1,)], [(k.domain, k.red_axes) for k in sched.kernels]


def _stored_temporaries(sched):
    outs = {o.buffer for o in sched.outputs if isinstance(o, View)}
    return [b for k in sched.kernels for b in k.stores.values() if b not in outs]


@pytest.mark.parametrize("name", ["layer_norm-float32", "layer_norm-float64"])
def test_layer_norm_gradient_stores_only_per_row_values(name):
    """Rematerialization: the readers of x - mean, rstd broadcast over the row and their
    products recompute them from x and two numbers per row; nothing the size of x is stored
    between kernels."""
    _, _, bwd = PROGRAMS[name]
    sched = build_schedule(bwd)
    rows = bwd.inputs[0].aval.shape[0]
    big = [b.var for b in _stored_temporaries(sched) if b.var.aval.size > rows]
    assert not big, big


def test_rematerialization_never_redoes_transcendentals():
    """deep_chain's steps end in exp/tanh: readers load them rather than recompute them, so
    each exp and tanh of the program runs in exactly one kernel."""
    program = EXTRA["deep_chain"]
    sched = build_schedule(program)
    libm = ("exp", "tanh")
    scheduled = [e for k in sched.kernels for e in k.eqns if e.prim.name in libm]
    assert len(scheduled) == sum(e.prim.name in libm for e in program.eqns) == 16
    assert sum(b.var.aval.size == 64 * 32 for b in _stored_temporaries(sched)) >= 4


def test_cross_entropy_runs_no_gather_on_the_host():
    """The target pick and its gradient are compares inside the row kernels (codegen.onehot);
    nothing runs on the host (the index check is a check kernel)."""
    _, fwd, bwd = PROGRAMS["cross_entropy-float32"]
    for prog, red in ((fwd, (1,)), (bwd, None)):
        kinds, sched = _kinds(prog)
        assert [s.eqn.prim.name for s in sched.steps if isinstance(s, HostOp)] == []
        assert [k.check.prim.name for k in sched.kernels if k.check] == ["check_index"]
        big = [k for k in sched.kernels if k.domain == (5, 7)]
        assert len(big) == 1 and big[0].red_axes == red


def _row_loss_program(with_row_reduction: bool, shape=(8, 128)):
    b = Builder()
    x = b.input(shape, float64)
    y = b.add("tanh", x)
    last, kept = len(shape) - 1, tuple(range(len(shape) - 1))
    if with_row_reduction:  # layer-norm-like: centre each row, then the loss over everything
        m = b.add("mul", b.add("reduce_sum", x, axes=(last,)), 1 / shape[-1])
        y = b.add("sub", x, b.add("broadcast_in_dim", m, shape=shape, dims=kept))
    return b.build([b.add("reduce_sum", b.add("mul", y, y), axes=tuple(range(len(shape))))])


@pytest.mark.parametrize("shape", [(8, 128), (2, 4, 128)])
def test_whole_sum_joins_the_row_kernel(shape):
    """A loss over all rows of a value a row-wise kernel computes is summed per row in that
    kernel and then over the rows (codegen.split), also when the rows are the last axis of a
    [batch, tokens, features] value: the value is never stored."""
    sched = build_schedule(_row_loss_program(True, shape))
    kept = tuple(range(len(shape) - 1))
    assert [(k.domain, k.red_axes) for k in sched.kernels] == \
        [(shape, (len(shape) - 1,)), (shape[:-1], kept)]
    assert all(b.var.aval.size <= 8 for k in sched.kernels for b in k.stores.values())
    xs = [RNG.standard_normal(shape)]
    np.testing.assert_allclose(run(sched.program, *xs)[0],
                               run(_row_loss_program(True, shape), *xs)[0])


def test_whole_sum_without_row_kernel_keeps_one_pass():
    sched = build_schedule(_row_loss_program(False))
    assert [(k.domain, k.red_axes) for k in sched.kernels] == [((8, 128), (0, 1))]


def test_rowwise_c_text_shape():
    """softmax: one row loop, three passes (max, sum of exp, store), float32 sums in double."""
    _, fwd, _ = PROGRAMS["softmax-float32"]
    src = render_module([build_schedule(fwd)], cache_key="k").source
    body = src[src.index("void kernel_0("):]
    assert "row-wise over [5,7], reducing axes (1) in 3 passes per row." in src
    assert body.count("for (int64_t i0") == 1 and body.count("for (int64_t i1") == 3
    assert "double acc1 = 0;" in body and "#pragma omp simd reduction(+:acc1)" in body
    assert "= (float)acc1;" in body
    # exp(x - max) is computed once per element: pass 2 keeps it in a row-local array that
    # pass 3 reads back.
    assert body.count("expf(") == 1 and "float rb0[7];" in body
    assert body.count("rb0[i1 * 1]") == 2


def test_recognition_is_structural_not_by_name():
    """Any reduction whose result is broadcast back along the reduced axes fuses, whatever the
    ops: here min, then a product of (x + min) over the row, then x / prod."""
    b = Builder()
    x = b.input((4, 5), float64)
    m = b.add("reduce_min", x, axes=(1,))
    y = b.add("add", x, b.add("broadcast_in_dim", m, shape=(4, 5), dims=(0,)))
    p = b.add("reduce_prod", y, axes=(1,))
    q = b.add("reshape", b.add("neg", p), shape=(4, 1))
    out = b.add("div", x, b.add("broadcast_in_dim", q, shape=(4, 5), dims=(0, 1)))
    sched = build_schedule(b.build([out]))
    assert len(sched.steps) == 1 and len(sched.kernels[0].eqns) == 8


def test_unrelated_broadcast_is_not_a_row_alias():
    """A reduction result broadcast along *other* axes is not per-row: it is stored and read."""
    b = Builder()
    x = b.input((4, 4), float64)
    s = b.add("reduce_sum", x, axes=(1,))
    out = b.add("mul", x, b.add("broadcast_in_dim", s, shape=(4, 4), dims=(1,)))
    sched = build_schedule(b.build([out]))
    assert len(sched.kernels) == 2
    xs = [RNG.standard_normal((4, 4))]
    np.testing.assert_allclose(run(sched.program, *xs)[0], xs[0] * xs[0].sum(1)[None, :])


# ---------------------------------------------------------------- memory planner

def _temporaries(sched):
    from gradgen.codegen.memory import lifetimes, nbytes
    life = lifetimes(sched)
    return life, sum(nbytes(b) for b in life)


def test_workspace_is_smaller_than_the_intermediates():
    sched = build_schedule(EXTRA["deep_chain_max"])
    life, total = _temporaries(sched)
    assert len(life) >= 8 and len(sched.kernels) >= 8
    assert sched.workspace_bytes <= total // 3, (sched.workspace_bytes, total)
    assert len(sched.slot_sizes) == 2  # a chain needs two slots: one read, one written


@pytest.mark.cc
def test_deep_chain_results_unchanged_in_shared_slots(compiled):
    program = EXTRA["deep_chain"]
    x = RNG.standard_normal((64, 32))
    (got,) = execute(compiled, "deep_chain", [x])
    (want,) = run(program, x)
    _check(got, want, 1e-10)


@pytest.mark.parametrize("name", list(ALL))
def test_slots_never_alias_within_a_step_or_a_lifetime(name):
    from gradgen.codegen.memory import nbytes
    sched = build_schedule(ALL[name])
    life, _ = _temporaries(sched)
    assert set(sched.slots) == set(life)
    outs = {o.buffer for o in sched.outputs if isinstance(o, View)}
    assert not outs & set(sched.slots)
    for b, s in sched.slots.items():
        assert sched.slot_sizes[s] >= nbytes(b)
    for step in sched.steps:
        reads = {v.buffer for v in (step.loads.values() if isinstance(step, Kernel) else
                                    [a for a in step.inputs if isinstance(a, View)])}
        writes = set(step.stores.values()) if isinstance(step, Kernel) else {step.output}
        rs = {sched.slots[b] for b in reads if b in sched.slots}
        ws = [sched.slots[b] for b in writes if b in sched.slots]
        assert not rs & set(ws) and len(ws) == len(set(ws)), step.name
    by_slot = {}
    for b, s in sched.slots.items():
        by_slot.setdefault(s, []).append(life[b])
    for spans in by_slot.values():
        spans.sort()
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans
    offs = sched.slot_offsets
    assert all(o % 64 == 0 for o in offs)
    assert all(offs[j] + sched.slot_sizes[j] <= (offs[j + 1] if j + 1 < len(offs)
                                                  else sched.workspace_bytes)
               for j in range(len(offs)))


# ---------------------------------------------------------------- golden text

GOLDEN_ROW_PROGRAM = """def (%x:f64[2,3]):
  %0:f64[2] = reduce_sum[axes=(1,)] %x  # m.py:1
  %1:f64[2] = div %0, 3.0:f64  # m.py:2
  %2:f64[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %1  # m.py:3
  %3:f64[2,3] = sub %x, %2  # m.py:3
  return %3, %1"""

GOLDEN_ROW_C = '''
/*
 * kernel_0: row-wise over [2,3], reducing axes (1) in 2 passes per row.
 * IR equations:
 *   %1:f64[2] = reduce_sum[axes=(1,)] %0  # m.py:1
 *   %2:f64[2] = div %1, 3.0:f64  # m.py:2
 *   %3:f64[2,3] = broadcast_in_dim[dims=(0,), shape=(2, 3)] %2  # m.py:3
 *   %4:f64[2,3] = sub %0, %3  # m.py:3
 * Source lines: m.py:1, m.py:2, m.py:3
 */
void kernel_0(const double *restrict p0, double *restrict p2, double *restrict p4)
{
    for (int64_t i0 = 0; i0 < 2; i0++) {
        double acc0 = 0;
        #pragma omp simd reduction(+:acc0)
        for (int64_t i1 = 0; i1 < 3; i1++) {
            const double v0 = p0[i0 * 3 + i1];
            acc0 = (acc0 + v0);
        }
        const double v1 = (double)acc0;
        const double v2 = (v1 / 0x1.8000000000000p+1);
        const double v3 = v2;
        p2[i0] = v2;
        #pragma omp simd
        for (int64_t i1 = 0; i1 < 3; i1++) {
            const double v0 = p0[i0 * 3 + i1];
            const double v4 = (v0 - v3);
            p4[i0 * 3 + i1] = v4;
        }
    }
}
'''


def test_golden_rowwise_c():
    """mean-centering: the mean is a per-row scalar (stored: it is an output), x - mean a
    second pass over the row; the broadcast is an alias, never a copy."""
    from gradgen.ir.parser import parse
    src = render_module([build_schedule(parse(GOLDEN_ROW_PROGRAM))], cache_key="golden").source
    assert src.endswith(GOLDEN_ROW_C), src


@pytest.mark.cc
@pytest.mark.parametrize("n", [1000, 1024, 4099])
def test_float32_row_sums_are_as_accurate_as_numpy(n):
    """Row-wise kernels sum float32 in float blocks of SUM_BLOCK elements added into a double:
    on data spanning many magnitudes the error stays within numpy's own (pairwise) float32
    error, measured against float64."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((64, n)) * 10.0 ** rng.integers(-3, 4, (64, n))).astype(np.float32)
    fn = lambda t: ((t - t.mean(1, keepdim=True)) ** 2).sum(1)  # noqa: E731
    got = gg.compile(fn)(gg.from_numpy(x)).numpy()
    exact = fn(gg.from_numpy(x.astype(np.float64))).numpy()
    x32 = x - x.mean(1, keepdims=True, dtype=np.float32)
    numpy_err = np.abs((x32 * x32).sum(1) - exact) / np.abs(exact)
    ours = np.abs(got - exact) / np.abs(exact)
    assert ours.max() <= 4 * numpy_err.max() + 1e-7, (ours.max(), numpy_err.max())


def test_float32_sums_in_row_kernels_are_blocked():
    _, fwd, _ = PROGRAMS["softmax-float32"]
    src = render_module([build_schedule(fwd)], cache_key="k").source
    assert "acc1b[16]" not in src  # rows of 7: shorter than one block, no lanes
    b = Builder()
    x = b.input((4, 1000), gg.float32)
    m = b.add("reduce_sum", x, axes=(1,))
    y = b.add("sub", x, b.add("broadcast_in_dim", m, shape=(4, 1000), dims=(0,)))
    prog = b.build([b.add("reduce_sum", b.add("mul", y, y), axes=(1,))])
    src = render_module([build_schedule(prog)], cache_key="k").source
    assert "float acc0b[16] = {0};" in src and \
        "acc0d[i1l] = (acc0d[i1l] + ((double)acc0b[i1l]));" in src


def test_row_invariant_operands_are_loaded_once_per_row():
    """A pass operand constant along the row (a per-row value broadcast, a scalar) is loaded
    once per row before the passes, not inside a pass loop (gcc left layer norm's gradient
    pass unvectorized with such loads inside: "latch block not empty")."""
    b = Builder()
    x = b.input((4, 1000), gg.float32)
    m = b.input((4,), gg.float32)
    s = b.input((), gg.float32)
    mb = b.add("broadcast_in_dim", m, shape=(4, 1000), dims=(0,))
    sb = b.add("broadcast_in_dim", s, shape=(4, 1000), dims=())
    y = b.add("mul", b.add("sub", x, mb), sb)
    r = b.add("reduce_sum", y, axes=(1,))
    z = b.add("mul", y, b.add("broadcast_in_dim", r, shape=(4, 1000), dims=(0,)))
    prog = b.build([z])
    src = render_module([build_schedule(prog)], cache_key="k").source
    body = src[src.index("for (int64_t i0 = 0; i0 < 4; i0++) {"):]
    first_pass = body.index("#pragma omp simd")
    loads = [line.strip() for line in body.splitlines() if "= p1[i0];" in line or "= p2[0];" in line]
    assert len(loads) == 2, loads  # each once
    assert body.index(loads[0]) < first_pass and body.index(loads[1]) < first_pass


_LONG = 8192 + 1000  # rows longer than ROW_BUFFER_MAX


@pytest.mark.cc
@pytest.mark.parametrize("fn, dtype, rows, kept", [
    (lambda x: gg.exp(gg.tanh(x) * x).amax(1).sum(), np.float64, 3, True),  # libmvec's exp
    (lambda x: gg.exp(gg.tanh(x) * x).amax(1).sum(), np.float64, 1, True),  # (serial kernel)
    (lambda x: gg.sin(x * 0.7).amax(1).sum(), np.float32, 3, True),  # libmvec's sinf (no ties)
    (lambda x: gg.exp(gg.tanh(x) * x).amax(1).sum(), np.float32, 3, True),  # vecmath
    (lambda x: F.softmax(x, 1)[:, :4].sum(), np.float64, 2, True),
    # (the forward keeps the log-sum-exp, the backward's kernel computes exp once)
    (lambda x: F.cross_entropy(x, gg.tensor([3, 0, _LONG - 1])), np.float32, 3, False),
])
def test_long_rows_keep_libm_values_on_the_heap(fn, dtype, rows, kept):
    """Rows longer than ROW_BUFFER_MAX keep a libm value later passes need in a row buffer
    on the heap, as shorter rows do on the stack: computed once, so max's gradient mask
    (x == max(x)) of an exp sees the bits the maximum saw (libmvec may round a vector call and
    a scalar one differently; recomputed, a gradient went missing). The gradients are eager's,
    with no fallback."""
    import warnings  # noqa: PLC0415
    from gradgen.codegen.rowwise import ROW_BUFFER_MAX  # noqa: PLC0415
    assert _LONG > ROW_BUFFER_MAX
    cf = gg.compile(fn)
    value = RNG.uniform(-2.0, 2.0, (rows, _LONG)).astype(dtype)
    for _ in range(2):
        x_e, x_c = gg.tensor(value, requires_grad=True), gg.tensor(value, requires_grad=True)
        fn(x_e).backward()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cf(x_c).backward()
        np.testing.assert_allclose(x_c.grad.numpy(), x_e.grad.numpy(), rtol=1e-4, atol=1e-6)
    spec = cf.inspect()[0]
    assert spec["fallback_reason"] is None
    assert ("/* a row buffer */" in spec["c_source"]) == kept


@pytest.mark.cc
@pytest.mark.parametrize("threads", [1, 2])
def test_a_row_buffer_that_cannot_be_allocated_raises_memory_error(threads):
    """A kernel keeping row buffers on the heap returns whether it could not allocate them;
    both call paths (the generated straight-line call, the general one) raise MemoryError
    naming the kernel, before any output is returned. Simulated: the kernel replaced by one
    reporting the failure."""
    from gradgen.ir.trace_inputs import input_values  # noqa: PLC0415
    from gradgen.runtime.callgen import generated_call  # noqa: PLC0415
    from gradgen.runtime.executor import build_programs  # noqa: PLC0415
    from gradgen.runtime.slots import allocating_step  # noqa: PLC0415
    x = gg.tensor(RNG.uniform(-2.0, 2.0, (3, _LONG)))
    prog = optimize(trace(lambda t: F.softmax(t.exp(), 1) * t.exp(), x))
    ex = build_programs([prog], threads).executables[0]
    args = input_values(prog, x)
    np.testing.assert_allclose(ex(*args)[0], (F.softmax(x.exp(), 1) * x.exp()).numpy(),
                               rtol=1e-12)
    fallible = [k for k, (fn, _) in enumerate(ex._steps) if hasattr(fn, "fail")
                and not hasattr(fn, "status")]
    assert fallible, "the long rows' kernel allocates its row buffers"
    k = fallible[0]
    name = "g0_" + ex.schedule.steps[k].name
    assert ex._module.returns_failure(name)
    ex._steps[k] = (allocating_step(lambda *ptrs: 1, name), ex._steps[k][1])
    with pytest.raises(MemoryError, match=f"compiled kernel {name} could not allocate"):
        ex(*args)
    call = generated_call(ex)
    assert call is not None and f"if K{k}(" in call.source
    with pytest.raises(MemoryError, match=f"compiled kernel {name} could not allocate"):
        call(*args)
