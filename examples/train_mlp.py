"""Train a small MLP with a compiled loss step, on a synthetic 10-class problem it generates.

The labels come from a fixed random "teacher" network, so the problem is learnable but
not linear. The loss and its gradients are one compiled program:
``gradgen.compile(gradgen.value_and_grad(loss, argnums=...))``; the SGD update runs
under ``no_grad``. At the end the script times a compiled step, and the PyTorch-style
``loss = gradgen.compile(loss_fn)(...); loss.backward()``, against the same step in eager
autograd. If the compiler is unavailable, ``gradgen.compile`` runs the
step eagerly and says why; the script then still trains, and prints the reason.

Run: python examples/train_mlp.py [--steps N] [--small] [--backend c|interpret|eager]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import gradgen
import gradgen.nn.functional as F

# The repository's examples and benchmarks keep their kernel cache in the git-ignored build/.
os.environ.setdefault("GRADGEN_CACHE_DIR", str(Path(__file__).resolve().parent.parent / "build" / "cache"))


def make_data(n: int, dim: int, classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ~ N(0, 1) and labels = argmax of a random tanh teacher network."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    a = rng.standard_normal((dim, 64)) / np.sqrt(dim)
    b = rng.standard_normal((64, classes))
    y = np.argmax(np.tanh(x @ a * 2.0) @ b, axis=1)
    return x, y.astype(np.int64)


def init_params(dim: int, hidden: int, classes: int, rng: np.random.Generator) -> list:
    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return gradgen.tensor(rng.uniform(-bound, bound, shape).astype(np.float32))
    return [uniform((dim, hidden), dim), uniform((hidden,), dim),
            uniform((hidden, classes), hidden), uniform((classes,), hidden)]


def logits(w1, b1, w2, b2, x):
    return F.relu(x @ w1 + b1) @ w2 + b2


def loss_fn(w1, b1, w2, b2, x, y):
    return F.cross_entropy(logits(w1, b1, w2, b2, x), y)


def accuracy(params: list, x: gradgen.Tensor, y: gradgen.Tensor) -> float:
    with gradgen.no_grad():
        return (logits(*params, x).argmax(1) == y).float().mean().item()


def eager_step(params: list, x: gradgen.Tensor, y: gradgen.Tensor) -> tuple:
    """The same loss and gradients with eager autograd (the tape), for the speed comparison."""
    ps = [p.detach().requires_grad_() for p in params]
    loss = loss_fn(*ps, x, y)
    loss.backward()
    return loss, [p.grad for p in ps]


def backward_step(compiled_loss, params: list, x: gradgen.Tensor, y: gradgen.Tensor) -> tuple:
    """The PyTorch way: ``loss = compiled_loss(...)`` then ``loss.backward()`` into ``.grad``
    (after its first differentiated call, a compiled loss computes its gradients in the same
    pass as the loss: the backward hands them out)."""
    for p in params:
        p.grad = None
    loss = compiled_loss(*params, x, y)
    loss.backward()
    return loss, [p.grad for p in params]


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="SGD steps (default 400; 60 with --small)")
    ap.add_argument("--small", action="store_true", help="a small, quick problem (for tests)")
    ap.add_argument("--backend", default=None, help="gradgen.compile backend (default: its default)")
    ap.add_argument("--lr", type=float, default=0.5)
    args = ap.parse_args()
    n, dim, hidden, batch = (1024, 16, 32, 128) if args.small else (8192, 32, 256, 256)
    steps = args.steps if args.steps is not None else (60 if args.small else 400)
    classes = 10
    rng = np.random.default_rng(0)
    x_np, y_np = make_data(n, dim, classes, rng)
    x_all, y_all = gradgen.tensor(x_np), gradgen.tensor(y_np)
    params = init_params(dim, hidden, classes, rng)

    vg = gradgen.value_and_grad(loss_fn, argnums=(0, 1, 2, 3))
    step = gradgen.compile(vg) if args.backend is None else gradgen.compile(vg, backend=args.backend)
    print(f"MLP {dim} -> {hidden} relu -> {classes}, {n} samples, batch {batch}, {steps} steps, "
          f"SGD lr {args.lr}; compile backend: {getattr(step, 'backend', '?')}")

    every = max(1, steps // 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(steps):
            lo = (i * batch) % (n - batch + 1)  # a fixed batch size: every step hits the same specialization
            loss, grads = step(*params, x_all[lo:lo + batch], y_all[lo:lo + batch])
            with gradgen.no_grad():
                for p, g in zip(params, grads):
                    p -= args.lr * g
            if i % every == 0 or i == steps - 1:
                print(f"step {i:4d}  loss {loss.item():.4f}")
    reason = getattr(step, "fallback_reason", None)
    if reason is None:
        reason = next((str(w.message) for w in caught if "falling back to eager" in str(w.message)), None)
    print(f"final accuracy on all {n} samples: {accuracy(params, x_all, y_all):.1%}")
    if reason is not None:
        print(f"note: the compiled step ran eagerly ({' '.join(str(reason).split())[:200]})")

    xb, yb = x_all[:batch], y_all[:batch]
    c_loss, c_grads = step(*params, xb, yb)
    e_loss, e_grads = eager_step(params, xb, yb)
    backend = {} if args.backend is None else {"backend": args.backend}
    compiled_loss = gradgen.compile(loss_fn, **backend)
    leaves = [p.detach().requires_grad_() for p in params]
    for _ in range(2):  # the second call is fused (the first one's loss was differentiated)
        b_loss, b_grads = backward_step(compiled_loss, leaves, xb, yb)
    same = all(np.allclose(c.numpy(), e.numpy(), rtol=1e-4, atol=1e-6)
               for got in (c_grads, b_grads) for c, e in zip(got, e_grads))
    reps = 10 if args.small else 50
    t_c = median_ms(lambda: step(*params, xb, yb), reps)
    t_b = median_ms(lambda: backward_step(compiled_loss, leaves, xb, yb), reps)
    t_e = median_ms(lambda: eager_step(params, xb, yb), reps)
    label = f"compile(value_and_grad, backend={getattr(step, 'backend', '?')})"
    label += "" if reason is None else " (fell back to eager)"
    print(f"step time (loss + gradients, median of {reps}): {label} {t_c:.3f} ms, compile(loss) + "
          f"backward() {t_b:.3f} ms, eager autograd {t_e:.3f} ms, speed-up {t_e / t_c:.2f}x; "
          f"gradients match eager: {same}")


if __name__ == "__main__":
    main()
