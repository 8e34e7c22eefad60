"""Warm starts: a new process with a filled cache goes from its trace straight to the built kernels.

The lowering cache (gradgen.runtime.lowering) keeps what AD, the passes, the schedule and the
renderer made of a traced program; kernel entries keep the cffi module of their declarations
(out-of-line ABI mode), and Jinja's compiled templates live in the cache too. Checked here: a
warm process neither renders (no Jinja import), nor parses C declarations (no pycparser), nor
runs the compiler, and returns eager's results and the cold process's inspect(); every fact
in the key misses when changed; broken entries are rebuilt with a warning; a read-only cache
degrades; the kernels' argument types are those the declarations give.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jinja2
import numpy as np
import pytest
from conftest import needs_cc

import gradgen as gg
from gradgen import compile, value_and_grad
from gradgen._resources import templates_dir
from gradgen.ir.trace import trace
from gradgen.runtime import CacheWarning
from gradgen.runtime.cache import check_entry, default_cache
from gradgen.runtime.compiler import resolve_compiler_argv
from gradgen.runtime.loader import load
from gradgen.runtime.lowering import FILES, lowering_cache
from gradgen.runtime.templates import TemplateBytecodeCache




pytestmark = [pytest.mark.cc, needs_cc]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cache_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GRADGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRADGEN_DISABLE_COMPILE", raising=False)
    return tmp_path / "cache"


# ---------------------------------------------------------------- a new process

# The child's functions live in a module file, so their source locations (part of the IR, hence
# of the key) are the same in both processes. One closes over a tensor (a captured input).
MODULE = textwrap.dedent("""
    import gradgen as gg
    W = gg.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)

    def chain(x, b):
        return (gg.tanh(x * W + b) * gg.sigmoid(x) + gg.exp(-x * x)).sum()

    def ce(z, t):
        return gg.nn.functional.cross_entropy(z, t)

    def ln(x, w, b):  # its weight gradient is a column sum of the row kernel (codegen.colsums)
        return (gg.nn.functional.layer_norm(x, (64,), w, b) * x).sum()
""")

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import gradgen as gg
    from gradgen.runtime.lowering import lowering_cache
    import workload

    def run():
        x = gg.tensor([[0.3, -1.2, 0.7], [2.0, -0.1, 0.4]], requires_grad=True)
        b = gg.tensor([0.1, -0.2, 0.3], requires_grad=True)
        z, t = gg.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), gg.tensor([2, 0])
        cf = gg.compile(workload.chain)
        cf(x, b).backward()
        events = [lowering_cache().last_event.kind]
        vg = gg.compile(gg.value_and_grad(workload.ce))
        value, grad = vg(z, t)
        events.append(lowering_cache().last_event.kind)
        rng = np.random.default_rng(0)
        lx, lw, lb = [gg.tensor(rng.standard_normal(s).astype(np.float32))
                      for s in ((40, 64), (64,), (64,))]
        ln = gg.compile(gg.value_and_grad(workload.ln, argnums=(0, 1, 2)))
        ln_value, ln_grads = ln(lx, lw, lb)
        events.append(lowering_cache().last_event.kind)
        ln_eager = gg.value_and_grad(workload.ln, argnums=(0, 1, 2))(lx, lw, lb)
        xe, be = x.detach().requires_grad_(), b.detach().requires_grad_()
        workload.chain(xe, be).backward()
        ze = z.detach().requires_grad_()
        ve = workload.ce(ze, t)
        ve.backward()
        strip = lambda r: {k: v for k, v in r.items() if k != "guards"}
        return {"events": events, "fallbacks": [str(f.fallback_reason) for f in (cf, vg, ln)],
                "compiled": [x.grad.tolist(), b.grad.tolist(), value.item(), grad.tolist(),
                             ln_value.item()] + [g.tolist() for g in ln_grads],
                "eager": [xe.grad.tolist(), be.grad.tolist(), ve.item(), ze.grad.tolist(),
                          ln_eager[0].item()] + [g.tolist() for g in ln_eager[1]],
                "inspect": [strip(r) for r in cf.inspect() + vg.inspect() + ln.inspect()],
                "modules": sorted(m for m in ("jinja2", "pycparser", "cffi",
                                              "gradgen.codegen.render", "gradgen.codegen.schedule")
                                  if m in sys.modules)}

    print(json.dumps(run()))
""")


def _fake_cc(tmp_path: Path) -> Path:
    """A compiler wrapper logging its calls; GG_CC_FAIL makes it fail."""
    script = tmp_path / "fake-cc"
    script.write_text(f'#!/bin/sh\necho "$*" >> "$GG_CC_LOG"\n'
                      f'if [ -n "$GG_CC_FAIL" ]; then exit 99; fi\n'
                      f'exec {resolve_compiler_argv()[0]} "$@"\n')
    script.chmod(0o755)
    return script


def _child(tmp_path: Path, cache: Path, **env: str) -> dict:
    full = {**os.environ, "GRADGEN_CACHE_DIR": str(cache), "CC": str(tmp_path / "fake-cc"),
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), **env}
    proc = subprocess.run([sys.executable, "-c", CHILD], env=full, capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_new_process_runs_first_call_without_rendering_or_compiler(tmp_path, cache_root) -> None:
    (tmp_path / "workload.py").write_text(MODULE)
    _fake_cc(tmp_path)
    cold = _child(tmp_path, cache_root, GG_CC_LOG=str(tmp_path / "cold.log"))
    assert cold["events"] == ["stored", "stored", "stored"]
    assert "jinja2" in cold["modules"] and (tmp_path / "cold.log").exists()
    warm = _child(tmp_path, cache_root, GG_CC_LOG=str(tmp_path / "warm.log"), GG_CC_FAIL="1")
    assert warm["events"] == ["hit", "hit", "hit"] and warm["fallbacks"] == ["None"] * 3
    assert not (tmp_path / "warm.log").exists(), "the warm process ran the compiler"
    # no rendering, no scheduling, no C declarations parsed (cffi's out-of-line ABI mode)
    assert warm["modules"] == [], warm["modules"]
    for got, want in zip(warm["compiled"], warm["eager"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert warm["compiled"] == cold["compiled"]
    assert warm["inspect"] == cold["inspect"]
    assert "partial sums per block of" in warm["inspect"][-1]["c_source"]
    for r in warm["inspect"]:
        assert r["forward_ir"].startswith("def ") and r["gradient_ir"].startswith("def ")
        assert "void g0_kernel_0(" in r["c_source"] and r["fallback_reason"] is None
        assert Path(r["cache_path"], "kernel.so").exists()


# ---------------------------------------------------------------- what the key holds

C100 = np.linspace(-1.0, 1.0, 100).astype(np.float32)  # > INLINE_LIMIT: printed by digest only


def _with_const(c: np.ndarray):
    def loss(x, w):
        return (gg.tanh(x * w) * gg.from_numpy(c)).sum()
    return loss


BASE = _with_const(C100)


def _other_code(x, w):
    return (gg.sin(x * w) * gg.from_numpy(C100)).sum()


def _tensors(shape=(2, 100), requires=(True, False)) -> list:
    rng = np.random.default_rng(0)
    return [gg.from_numpy(rng.standard_normal(shape).astype(np.float32)).requires_grad_(r)
            for r in requires]


def _changed_const() -> np.ndarray:
    c = C100.copy()
    c[77] += 1.0
    return c


# (name, fn, mode, argnums, tensors, threads): each differs from the base in one fact.
VARIANTS = [
    ("shape", BASE, "fn", 0, lambda: _tensors((3, 100)), None),
    ("requires_grad", BASE, "fn", 0, lambda: _tensors(requires=(True, True)), None),
    ("mode", BASE, "vg", 0, _tensors, None),
    ("threads", BASE, "fn", 0, _tensors, "other"),
    ("constant content", _with_const(_changed_const()), "fn", 0, _tensors, None),
    ("function code", _other_code, "fn", 0, _tensors, None),
]


def _run(fn, mode: str, argnums: int, args: list):
    """A fresh compiled function's first call (so the lowering cache is asked) and eager's."""
    if mode == "fn":
        out = compile(fn)(*args)
        grads = gg.autograd.grad(out, [a for a in args if a.requires_grad]) \
            if out.requires_grad else ()
        return [out, *grads], lowering_cache().last_event.kind
    value, grad = compile(value_and_grad(fn, argnums=argnums))(*args)
    return [value, grad], lowering_cache().last_event.kind


def _eager(fn, mode: str, argnums: int, args: list) -> list:
    leaves = [a.detach().requires_grad_(a.requires_grad or (mode == "vg" and i == argnums))
              for i, a in enumerate(args)]
    out = fn(*leaves)
    wrt = [a for a in leaves if a.requires_grad]
    return [out, *gg.autograd.grad(out, wrt)]


def _check(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,fn,mode,argnums,make,threads", VARIANTS,
                         ids=[v[0] for v in VARIANTS])
def test_changing_a_fact_of_the_key_misses(name, fn, mode, argnums, make, threads) -> None:
    got, kind = _run(BASE, "fn", 0, _tensors())
    assert kind == "stored"
    assert _run(BASE, "fn", 0, _tensors())[1] == "hit"  # unchanged: served from the cache
    old = gg.get_num_threads()
    try:
        if threads:
            gg.set_num_threads(1 if old > 1 else 2)
        args = make()
        got, kind = _run(fn, mode, argnums, args)
        assert kind == "stored", f"{name}: the changed key hit"
        _check(got, _eager(fn, mode, argnums, args))
        got, kind = _run(fn, mode, argnums, make())  # the variant's own entry now serves it
        assert kind == "hit"
        _check(got, _eager(fn, mode, argnums, args))
    finally:
        gg.set_num_threads(old)


def test_argnums_and_equal_constants() -> None:
    args = _tensors(requires=(False, False))
    assert _run(BASE, "vg", 0, args)[1] == "stored"
    got, kind = _run(BASE, "vg", 1, args)
    assert kind == "stored"
    _check(got, _eager(BASE, "vg", 1, args))
    # A constant equal in content (another array) is the same program: a hit.
    assert _run(_with_const(C100.copy()), "vg", 1, args)[1] == "hit"


def test_captured_tensors_come_from_the_current_trace() -> None:
    def make(w):
        return lambda x: (gg.tanh(x) * w).sum()
    x = gg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    for k, w in enumerate([gg.tensor([1.0, 2.0, 3.0], requires_grad=True),
                           gg.tensor([-4.0, 0.5, 7.0], requires_grad=True)]):
        out = compile(make(w))(x)
        assert lowering_cache().last_event.kind == ("stored", "hit")[k]
        gx, gw = gg.autograd.grad(out, [x, w])
        t, wn = np.tanh(x.detach().numpy()), w.detach().numpy()
        np.testing.assert_allclose(out.item(), (t * wn).sum(), rtol=1e-6)
        np.testing.assert_allclose(gw.numpy(), t, rtol=1e-6)
        np.testing.assert_allclose(gx.numpy(), (1 - t ** 2) * wn, rtol=1e-6)


# ---------------------------------------------------------------- broken entries and read-only

def _rewrite_pickle(data: bytes):
    def corrupt(entry: Path) -> None:
        (entry / "lowering.pkl").write_bytes(data)
        meta = json.loads((entry / "meta.json").read_text())
        meta["lowering_sha256"] = hashlib.sha256(data).hexdigest()
        (entry / "meta.json").write_text(json.dumps(meta))
    return corrupt


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "pickle truncated": lambda e: (e / "lowering.pkl").write_bytes(
        (e / "lowering.pkl").read_bytes()[:50]),
    "pickle byte flipped": lambda e: _flip(e / "lowering.pkl"),
    "pickle deleted": lambda e: (e / "lowering.pkl").unlink(),
    "meta deleted": lambda e: (e / "meta.json").unlink(),
    "meta of another key": lambda e: (e / "meta.json").write_text(
        (e / "meta.json").read_text().replace(e.name, "0" * 64)),
    "garbage with a consistent hash": _rewrite_pickle(b"not a pickle"),
    "a foreign global with a consistent hash": _rewrite_pickle(pickle.dumps(warnings.warn)),
    "another value with a consistent hash": _rewrite_pickle(pickle.dumps(({}, ([], [])))),
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS))
def test_corrupted_lowering_is_rebuilt_with_a_warning(corrupt) -> None:
    args = _tensors()
    _run(BASE, "fn", 0, args)
    event = lowering_cache().last_event
    assert event.kind == "stored"
    CORRUPTIONS[corrupt](event.path)
    with pytest.warns(CacheWarning, match="is broken.*rebuilding"):
        got, kind = _run(BASE, "fn", 0, args)
    assert kind == "rebuilt" and lowering_cache().last_event.reason
    _check(got, _eager(BASE, "fn", 0, args))
    assert not isinstance(check_entry(event.path, event.key, FILES), str)
    assert _run(BASE, "fn", 0, args)[1] == "hit"


def test_lowering_hit_rebuilds_a_missing_kernel_from_its_source() -> None:
    args = _tensors()
    _run(BASE, "fn", 0, args)
    kernels = default_cache()
    kernel_entry = kernels.last_event.path
    for f in kernel_entry.iterdir():
        f.unlink()
    kernel_entry.rmdir()
    got, kind = _run(BASE, "fn", 0, args)
    assert kind == "hit" and kernels.last_event.kind == "miss"
    assert kernels.last_event.path == kernel_entry
    _check(got, _eager(BASE, "fn", 0, args))


def test_read_only_lowerings_degrade(cache_root, monkeypatch) -> None:
    real_mkdir = os.mkdir
    lowerings = str(cache_root / "lowerings")

    def fake_mkdir(path, *args, **kw):
        if os.fspath(path).startswith(lowerings):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_mkdir(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    args = _tensors()
    with pytest.warns(CacheWarning, match="not writable.*lowered programs are not kept"):
        got, kind = _run(BASE, "fn", 0, args)
    assert kind == "miss"
    _check(got, _eager(BASE, "fn", 0, args))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once
        got, kind = _run(BASE, "fn", 0, args)
    assert kind == "miss"
    _check(got, _eager(BASE, "fn", 0, args))


# ---------------------------------------------------------------- cffi module and templates

def test_out_of_line_module_gives_the_declared_argument_types() -> None:
    from gradgen.runtime.executor import lower_programs
    x = gg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=gg.float64)
    i = gg.tensor([1, 0])
    program = trace(lambda x, i: (gg.exp(x) * (i > 0).double().unsqueeze(1)).sum(), x, i)
    lowered = lower_programs([program])
    module = default_cache().get_or_build(lowered.source, lowered.cdef, 1)
    parsed = load(module.path, lowered.cdef)  # pycparser on the declarations
    assert not hasattr(module.ffi, "cdef"), "the cached module should load out of line"
    assert sorted(module.functions) == sorted(parsed.functions)
    for name, fn in module.functions.items():
        assert str(module.ffi.typeof(fn)) == str(parsed.ffi.typeof(parsed.functions[name]))
    assert {"double", "int64_t"} <= {a.cname.rstrip(" *") for fn in module.functions.values()
                                     for a in module.ffi.typeof(fn).args}


def test_template_bytecode_cache(tmp_path) -> None:
    def env() -> jinja2.Environment:
        return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                                  bytecode_cache=TemplateBytecodeCache(tmp_path / "jinja"),
                                  undefined=jinja2.StrictUndefined)
    compiled = []

    def counting() -> jinja2.Environment:
        e = env()
        e.compile = lambda *a, **k: compiled.append(a) or jinja2.Environment.compile(e, *a, **k)
        return e
    name = "cdef.c.jinja"
    first = env().get_template(name)
    (stored,) = (tmp_path / "jinja").glob("*.bc")
    counting().get_template(name)
    assert compiled == []  # loaded from the bytecode cache
    _flip(stored)
    assert counting().get_template(name).render(kernels=[]) == first.render(kernels=[])
    assert len(compiled) == 1  # the corrupt file was ignored and the template compiled again
