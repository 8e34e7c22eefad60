"""Benchmark of the compiler's middle end: trace + differentiate + passes of a ~1,000-equation program.

Not a timed test: it prints how long each stage takes (goal: the whole path well
under one second). The program is a residual MLP of tanh/sigmoid blocks with
layer-norm-like rescaling, sized so the traced forward program has about 1,000
equations; the gradient program is roughly three times that.

Run: python bench/bench_ir.py [--repeat N] [--blocks B]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import gradgen as gg
from gradgen.ad import partition, vjp
from gradgen.ir.trace import trace
from gradgen.passes import optimize


def make_model(blocks: int) -> tuple[Callable[..., Any], list]:
    """A function of (x, weights...) whose traced program has ~25 equations per block."""
    gg.manual_seed(0)
    weights = [gg.randn(16, 16) * 0.2 for _ in range(blocks)]

    def model(x, *ws):
        h = x
        for w in ws:
            z = h @ w
            z = (z - z.mean(-1, keepdim=True)) / gg.sqrt(z.var(-1, keepdim=True) + 1e-5)
            h = h + gg.tanh(z) * gg.sigmoid(z * 0.5 + 1.0)
        return (h * h).mean()

    return model, [gg.randn(8, 16)] + weights


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=40)
    args = ap.parse_args()
    model, inputs = make_model(args.blocks)
    t_trace, program = timed(lambda: trace(model, *inputs), args.repeat)
    wrt = tuple(range(len(program.inputs)))
    t_vjp, joint = timed(lambda: vjp(program, wrt), args.repeat)
    t_opt, opt = timed(lambda: optimize(joint), args.repeat)
    t_part, part = timed(lambda: partition(opt), args.repeat)
    t_halves, _ = timed(lambda: (optimize(part.forward), optimize(part.backward)), args.repeat)
    total = t_trace + t_vjp + t_opt + t_part + t_halves
    print(f"program: {len(program.eqns)} equations; gradient program: {len(joint.eqns)} "
          f"-> {len(opt.eqns)} after passes; forward {len(part.forward.eqns)}, backward "
          f"{len(part.backward.eqns)}, residuals {part.n_residuals}")
    print("| stage | median ms |")
    print("|---|---|")
    for name, t in [("trace", t_trace), ("vjp (differentiate)", t_vjp), ("passes (optimize)", t_opt),
                    ("partition", t_part), ("passes on the two halves", t_halves), ("total", total)]:
        print(f"| {name} | {t * 1e3:.1f} |")


if __name__ == "__main__":
    main()
