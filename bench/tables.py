"""How the benchmarks print: times, sizes, one-line reasons, markdown tables, the machine line."""
from __future__ import annotations

import inspect
import os
import platform
import time
from pathlib import Path

import numpy as np

import gradgen


def _short(text: str, n: int = 160) -> str:
    """One line of at most n characters (reasons may hold multi-line array reprs)."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def fmt(t: float) -> str:
    if t >= 1:
        return f"{t:.2f} s"
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def machine(peers: dict, backend: str | None) -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown CPU") \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    gg_threads = gradgen.get_num_threads() if hasattr(gradgen, "get_num_threads") else "?"
    backend = backend or inspect.signature(gradgen.compile).parameters["backend"].default
    torch, jax = peers.get("torch"), peers.get("jax")
    return (f"{time.strftime('%Y-%m-%d %H:%M')}; {platform.platform()}; {cpu}; "
            f"{os.cpu_count()} CPUs; gradgen {gradgen.__version__} backend="
            f"{backend} threads={gg_threads}; numpy {np.__version__}"
            + (f"; torch {torch.__version__} threads={torch.get_num_threads()}" if torch else "")
            + (f"; jax {jax.__version__}" if jax else "") + _load())


def _load() -> str:
    """The 1-minute load average: above ~0.5 on this 2-core machine, timings are contended."""
    return f"; load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
