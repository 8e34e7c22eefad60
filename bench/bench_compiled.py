"""Compiled gradgen against eager gradgen, hand-written numpy, PyTorch and JAX, side by side.

Each workload is timed as forward + backward per iteration (float32, median over
rounds in which the row's columns take turns); every column's gradients are checked against
gradgen eager first.
Workloads: the seed 2x2 program; the chain (tanh(x*w+b)*sigmoid(x) + exp(-x*x)).sum()
on 1024x1024 and 64x64; a 2-layer MLP (128x784 -> 256 relu -> 10, cross-entropy);
layer_norm over 512x1024; softmax cross-entropy over 4096x1000 (defined in workloads.py).
Also per workload: cold compile (empty cache, first call, fresh process), the same for a new
workload (templates compiled before), warm start (new process, filled cache) and peak traced
memory of compiled vs eager.

Run: python bench/bench_compiled.py [--backend c|interpret] [--repeat N] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

import gradgen
from tables import _load, _short, fmt, fmt_bytes, machine, table
from workloads import BY_NAME, GOALS, SEED_FN_GOAL, WORKLOADS, Workload, _jax_ops, _ops

# Only numpy and gradgen are imported at module level: the cold/warm-start children run
# this file, and importing torch/jax there would inflate "time from process start".
REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ runners (each returns grads)

def _tensors(lib: Any, w: Workload, arrays: list, requires_grad: bool) -> list:
    out = []
    for i, a in enumerate(arrays):
        t = lib.tensor(a.copy())
        out.append(t.requires_grad_() if requires_grad and i in w.argnums else t)
    return out


def backward_runner(fn: Callable, tensors: list, argnums: tuple[int, ...]) -> Callable:
    """fn(*tensors).backward(), the PyTorch way: gradgen eager/compiled, torch eager/compiled."""
    diff = [tensors[i] for i in argnums]

    def run():
        for t in diff:
            t.grad = None
        fn(*tensors).backward()
        return [t.grad for t in diff]
    return run


def _compile(fn: Callable, backend: str | None) -> Any:
    return gradgen.compile(fn) if backend is None else gradgen.compile(fn, backend=backend)


def gradgen_loss(w: Workload) -> Callable:
    o = _ops(gradgen)
    return lambda *a: w.loss(o, *a)


def make_compiled(w: Workload, arrays: list, variant: str, backend: str | None):
    """(compiled function, runner) for variant "fn" (compile + .backward()) or "vg"."""
    loss = gradgen_loss(w)
    if variant == "fn":
        cf = _compile(loss, backend)
        return cf, backward_runner(cf, _tensors(gradgen, w, arrays, True), w.argnums)
    cf = _compile(gradgen.value_and_grad(loss, argnums=w.argnums), backend)
    plain = _tensors(gradgen, w, arrays, False)
    return cf, lambda: cf(*plain)[1]


def _fallback_of(cf: Any, caught: list) -> str | None:
    reason = getattr(cf, "fallback_reason", None)
    if reason is not None:
        return _short(f"{type(reason).__name__}: {reason}", 300)
    for m in caught:
        if "falling back to eager" in str(m.message):
            return _short(m.message, 300)
    return None


def columns(w: Workload, arrays: list, backend: str | None, peers: dict) -> dict:
    """name -> runner, or the string reason it is unavailable."""
    cols: dict[str, Any] = {}
    cols["gradgen eager"] = backward_runner(gradgen_loss(w), _tensors(gradgen, w, arrays, True),
                                            w.argnums)
    for variant, label in (("fn", "compile(fn) + backward"), ("vg", "compile(value_and_grad)")):
        try:
            cols[label] = make_compiled(w, arrays, variant, backend)
        except Exception as err:  # the C backend may not be wired yet: report, keep going
            cols[label] = f"{type(err).__name__}: {err}"
    cols["hand numpy"] = lambda: w.numpy(*arrays)
    torch, jax = peers.get("torch"), peers.get("jax")
    if torch is None:
        cols["PyTorch eager"] = cols["torch.compile"] = "not installed or --no-peers"
    else:
        tloss = lambda *a, _o=_ops(torch): w.loss(_o, *a)  # noqa: E731
        tt = lambda: [torch.from_numpy(a.copy()).requires_grad_(i in w.argnums)  # noqa: E731
                      for i, a in enumerate(arrays)]
        cols["PyTorch eager"] = backward_runner(tloss, tt(), w.argnums)
        cols["torch.compile"] = backward_runner(torch.compile(tloss), tt(), w.argnums)
    if jax is None:
        cols["jax.jit(value_and_grad)"] = "not installed or --no-peers"
    else:
        jf = jax.jit(jax.value_and_grad(lambda *a, _o=_jax_ops(): w.loss(_o, *a), w.argnums))
        ja = [jax.numpy.asarray(a) for a in arrays]
        cols["jax.jit(value_and_grad)"] = lambda: jax.block_until_ready(jf(*ja)[1])
    return cols


def _np(g: Any) -> np.ndarray:
    if hasattr(g, "detach"):
        g = g.detach()
    return np.asarray(g.numpy() if hasattr(g, "numpy") else g)


def check(name: str, col: str, got: list, ref: list) -> str | None:
    """None if `got` matches the gradgen eager gradients, else a one-line description."""
    try:
        assert len(got) == len(ref), f"{len(got)} gradients, expected {len(ref)}"
        for k, (g, r) in enumerate(zip(got, ref)):
            g, r = _np(g), _np(r)
            assert g.shape == r.shape, f"gradient {k}: shape {g.shape}, expected {r.shape}"
            scale = float(np.abs(r).max()) if r.size else 1.0
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * max(scale, 1e-3),
                                       err_msg=f"gradient {k}")
    except AssertionError as err:
        return _short(err, 300)
    return None


# ------------------------------------------------------------------ measurement

def time_workload(w: Workload, backend: str | None, peers: dict, repeat: int,
                  median_times: Callable) -> tuple[dict, list[str], dict]:
    """Cells of one table row, the notes (mismatches, fallbacks) to print under it, and the
    times (seconds) of the columns that ran and agreed. Every column is run and checked first;
    the ones that agree are then timed together, interleaved (``median_times``)."""
    arrays = w.make(np.random.default_rng(0))
    cells, notes, timed = {}, [], {}
    cols = columns(w, arrays, backend, peers)
    ref = [_np(g) for g in cols["gradgen eager"]()]
    for col, entry in cols.items():
        if isinstance(entry, str):
            cells[col] = f"n/a ({_short(entry, 80)})"
            continue
        cf, run = entry if isinstance(entry, tuple) else (None, entry)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                run()  # first call: traces/compiles
                got = run()
            fell = _fallback_of(cf, caught) if cf is not None else None
            if fell:
                cells[col] = "n/a (eager fallback)"
                notes.append(f"{w.name} / {col}: fell back to eager: {fell}")
                continue
            bad = check(w.name, col, list(got), ref)
        except Exception as err:
            cells[col] = f"n/a ({_short(f'{type(err).__name__}: {err}', 80)})"
            continue
        if bad:
            notes.append(f"GRADIENT MISMATCH {w.name} / {col} vs gradgen eager: {bad}")
            cells[col] = "✗ (not timed)"
        else:
            timed[col] = run
    times = median_times(timed, repeat)
    for col, t in times.items():
        cells[col] = fmt(t)
    return {col: cells[col] for col in cols}, notes, times


def goal_row(name: str, times: dict) -> list[str] | None:
    """Issue 4's goal for ``name`` against the compiled columns, as ratios to hand numpy."""
    numpy_t = times.get("hand numpy")
    if name not in GOALS or not numpy_t:
        return None
    issue_numpy, goal = GOALS[name]
    fn_goal = SEED_FN_GOAL if name == "seed 2x2" else goal
    cells = [name]
    for col, g in (("compile(value_and_grad)", goal), ("compile(fn) + backward", fn_goal)):
        t = times.get(col)
        cells += [f"{t / numpy_t:.2f}" if t else "n/a", f"{g / issue_numpy:.2f}",
                  "yes" if t and t / numpy_t <= g / issue_numpy else "no"]
    return cells


def first_call_child(name: str, variant: str, backend: str | None) -> None:
    """In a fresh process: time the first compiled call (forward + backward), print JSON."""
    w = BY_NAME[name]
    arrays = w.make(np.random.default_rng(0))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cf, run = make_compiled(w, arrays, variant, backend)
            run()
            err = _fallback_of(cf, caught)
        except Exception as e:
            err = _short(f"{type(e).__name__}: {e}")
    t1 = time.perf_counter()
    print(json.dumps({"first_call": t1 - t0, "end": time.time(), "error": err}))


def prime_bytecode() -> None:
    """Compile gradgen's and this directory's Python to bytecode, as ``pip install`` does for a
    package: the compile-latency cells then time compiling the user's function, not gradgen's
    modules (which a process with PYTHONDONTWRITEBYTECODE set would recompile every start)."""
    import gradgen as package
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(package.__file__).parent),
                    str(Path(__file__).parent)], check=True, stdout=subprocess.DEVNULL)


def startup(w: Workload, variant: str, backend: str | None,
            cache_root: Path) -> tuple[str, str, str]:
    """(cold first call with an empty cache; the same for a new workload of a user who compiled
    before -- the cache holds the templates' bytecode and the compiler's identity, which are
    per machine, and no kernels; warm start: new process with the filled cache)."""
    base = cache_root / "bench" / f"{w.name.split()[0]}-{w.name.split()[-1]}-{variant}"
    cache, later = base, base.with_name(base.name + "-later")
    for d in (cache, later):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True, mode=0o700)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--first-call", w.name, variant]
    cmd += ["--backend", backend] if backend else []
    out = []
    for run in ("cold", "warm", "later"):
        if run == "later":
            for part in ("jinja", "compilers"):
                if (cache / part).is_dir():
                    shutil.copytree(cache / part, later / part)
        env = dict(os.environ, GRADGEN_CACHE_DIR=str(later if run == "later" else cache))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode kept (prime_bytecode)
        launched = time.time()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode or not lines:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return (f"n/a (child failed: {_short(last, 80)})",) * 3
        r = json.loads(lines[-1])
        if r["error"]:
            return ("n/a (eager fallback, see above)",) * 3
        out.append((r["first_call"], r["end"] - launched))
    (cold, _), (warm_call, warm_total), (later_cold, _) = out
    return fmt(cold), fmt(later_cold), \
        f"{fmt(warm_call)} first call, {fmt(warm_total)} from process start"


def peak_memory(w: Workload, backend: str | None) -> tuple[str, str, str]:
    """tracemalloc peaks of one steady-state iteration: eager, compiled(fn); and what the
    compiled function keeps between calls (workspace, programs). numpy allocations are
    traced; memory malloc'ed inside C kernels is not."""
    arrays = w.make(np.random.default_rng(0))
    eager = backward_runner(gradgen_loss(w), _tensors(gradgen, w, arrays, True), w.argnums)
    tracemalloc.start()
    try:
        e_peak = _iteration_peak(eager)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = tracemalloc.get_traced_memory()[0]
            try:
                cf, run = make_compiled(w, arrays, "fn", backend)
                run()
                run()
            except Exception as err:
                return fmt_bytes(e_peak), f"n/a ({type(err).__name__})", "n/a"
            if _fallback_of(cf, []):
                return fmt_bytes(e_peak), "n/a (eager fallback)", "n/a"
            kept = tracemalloc.get_traced_memory()[0] - base
            c_peak = _iteration_peak(run)
    finally:
        tracemalloc.stop()
    return fmt_bytes(e_peak), fmt_bytes(c_peak), fmt_bytes(kept)


def _iteration_peak(run: Callable) -> int:
    run()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    run()
    return tracemalloc.get_traced_memory()[1] - base


# ------------------------------------------------------------------ report

def load_peers(skip: bool) -> dict:
    peers: dict[str, Any] = {}
    if skip:
        return peers
    try:
        import torch
        torch.set_num_threads(2)
        peers["torch"] = torch
    except ImportError:
        pass
    try:
        import jax
        peers["jax"] = jax
    except ImportError:
        pass
    return peers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("c", "interpret"), default=None,
                    help="gradgen.compile backend (default: gradgen.compile's default)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", nargs="*", help="workload names (prefix match)", default=None)
    ap.add_argument("--cache-dir", type=Path, default=REPO / "build" / "cache")
    ap.add_argument("--no-peers", action="store_true", help="skip PyTorch and JAX")
    ap.add_argument("--no-startup", action="store_true", help="skip cold/warm start and memory")
    ap.add_argument("--first-call", nargs=2, metavar=("WORKLOAD", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.first_call:
        return first_call_child(*args.first_call, args.backend)
    os.environ["GRADGEN_CACHE_DIR"] = str(args.cache_dir)
    args.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    from eager_overhead import median_times  # bench/ is sys.path[0] when run as a script

    peers = load_peers(args.no_peers)
    work = [w for w in WORKLOADS if not args.only or any(w.name.startswith(o) for o in args.only)]
    print(f"# gradgen compiled benchmark\n\n{machine(peers, args.backend)}\n")
    print("Forward + backward per iteration, float32, median of "
          f"{args.repeat} rounds, the columns of a row timed in turn in each round. ✗ = gradients "
          "disagree with gradgen eager (not timed).\n")
    rows, notes, header, goals = [], [], None, []
    for w in work:
        cells, n, times = time_workload(w, args.backend, peers, args.repeat, median_times)
        header = header or list(cells)
        rows.append([w.name] + [cells[c] for c in header])
        notes += n
        goals.append(goal_row(w.name, times))
        print(f"  ... {w.name} done", file=sys.stderr, flush=True)
    print(table(["workload"] + header, rows))
    print(f"\n(after the timings{_load()})\n")
    for n in notes:
        print(f"- {n}")
    print("\n## Against issue 4's goals, as ratios to hand numpy measured in the same run\n")
    print(table(["workload", "value_and_grad / numpy", "goal", "met", "fn+backward / numpy",
                 "goal", "met"], [g for g in goals if g]))
    if args.no_startup:
        return
    print("\n## Compile latency (fresh process per cell; cache in "
          f"{args.cache_dir / 'bench'})\n")
    prime_bytecode()
    srows = []
    for w in work:
        srows.append([w.name, *startup(w, "fn", args.backend, args.cache_dir),
                      *startup(w, "vg", args.backend, args.cache_dir)])
    print(table(["workload", "cold compile(fn) (+backward)", "new workload, fn",
                 "warm start compile(fn)", "cold compile(value_and_grad)", "new workload, vg",
                 "warm start compile(value_and_grad)"], srows))
    print("\n(cold: empty cache; new workload: a cache holding only what any earlier compile on "
          "this machine leaves -- the templates' bytecode and the C compiler's identity; warm: "
          "the workload's own entries)")
    print("\n## Peak memory per iteration (tracemalloc: numpy and Python allocations)\n")
    mrows = [[w.name, *peak_memory(w, args.backend)] for w in work]
    print(table(["workload", "gradgen eager peak", "compile(fn) peak",
                 "compile(fn) kept between calls"], mrows))


if __name__ == "__main__":
    main()
