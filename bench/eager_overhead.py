"""Eager-mode overhead: gradgen vs hand-written numpy vs PyTorch eager, side by side.

Workloads (forward + backward per iteration, float32):
  seed 2x2      the autograd tutorial's program: out = ((x + 2) * (x + 2) * 3).mean()
  chain20 2x2   a chain of 20 elementwise operations on a 2x2 tensor
  chain20 1000² the same chain on 1000x1000

Run: python bench/eager_overhead.py [--repeat N]   (prints a Markdown table)
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import numpy as np

import gradgen
from tables import fmt

try:
    import torch
    torch.set_num_threads(2)
except ImportError:  # PyTorch is an optional peer
    torch = None


def median_times(fns: dict[str, Callable[[], object]], repeat: int,
                 min_time: float = 0.2) -> dict[str, float]:
    """Median seconds per call of each of ``fns`` over `repeat` rounds. Each function first gets
    a batch size (calls) that takes at least `min_time` / repeat; then every round times one
    batch of each function in turn, so the functions of one table row see the same moments of
    a shared machine (another tenant's burst slows a round of all of them, not one column)."""
    sizes = {}
    for name, fn in fns.items():
        fn()
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            if time.perf_counter() - t0 > min_time / repeat:
                break
            n *= 2
        sizes[name] = n
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            n = sizes[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}


# ------------------------------------------------------------------ seed program

def seed_lib(lib):
    def run():
        x = lib.ones(2, 2, requires_grad=True)
        y = x + 2
        out = (y * y * 3).mean()
        out.backward()
        return x.grad
    return run


def seed_numpy():
    x = np.ones((2, 2), np.float32)
    y = x + np.float32(2)
    z = y * y * np.float32(3)
    _ = z.mean()
    gz = np.full_like(z, 1.0 / z.size)
    gy = gz * np.float32(3) * y * np.float32(2)
    return gy


# ------------------------------------------------------------------ 20-op chain

def chain_lib(lib, n):
    x0 = lib.rand(n, n) + 0.5

    def run():
        x = x0.detach().requires_grad_(True)
        y = x
        for _ in range(4):
            y = (y * 0.9 + 0.1).tanh() * 1.1 - 0.05
        y.sum().backward()
        return x.grad
    return run


def chain_numpy(n):
    x = (np.random.default_rng(0).random((n, n)) + 0.5).astype(np.float32)
    a, b, c, d = (np.float32(v) for v in (0.9, 0.1, 1.1, 0.05))

    def run():
        saved = []
        y = x
        for _ in range(4):
            t = np.tanh(y * a + b)
            saved.append(t)
            y = t * c - d
        g = np.ones_like(y)
        for t in reversed(saved):
            g = g * c * (1 - t * t) * a
        return g
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    rows = [
        ("seed 2x2", seed_lib(gradgen), seed_numpy, seed_lib(torch) if torch else None),
        ("chain of 20 ops, 2x2", chain_lib(gradgen, 2), chain_numpy(2),
         chain_lib(torch, 2) if torch else None),
        ("chain of 20 ops, 1000x1000", chain_lib(gradgen, 1000), chain_numpy(1000),
         chain_lib(torch, 1000) if torch else None),
    ]
    print(f"gradgen {gradgen.__version__}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ", torch not installed")
          + f"; {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}")
    print()
    print("| workload (fwd+bwd) | gradgen eager | hand numpy | PyTorch eager | gradgen / numpy | gradgen / PyTorch |")
    print("|---|---|---|---|---|---|")
    for name, gg, npy, pt in rows:
        t = median_times({"gg": gg, "np": npy, **({"pt": pt} if pt else {})}, args.repeat)
        t_gg, t_np, t_pt = t["gg"], t["np"], t.get("pt", float("nan"))
        print(f"| {name} | {fmt(t_gg)} | {fmt(t_np)} | {fmt(t_pt) if pt else '—'} | "
              f"{t_gg / t_np:.2f}x | {(f'{t_gg / t_pt:.2f}x') if pt else '—'} |")


if __name__ == "__main__":
    main()
