"""Random tensors from one global generator; ``manual_seed`` makes them reproducible."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.record import untraceable
from ..dtypes import as_dtype, get_default_dtype, int64
from ..tensor import Tensor
from ._operands import shape_arg
from .creation import _leaf


class Generator:
    """A random-number generator (PCG64), seeded like ``torch.Generator``."""

    def __init__(self, device: Any = "cpu") -> None:
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self._rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator so that random tensors repeat."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator non-deterministically and return the seed."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    default_generator.manual_seed(s)
    return s


def initial_seed() -> int:
    return default_generator.initial_seed()


def _rng(generator: Generator | None) -> np.random.Generator:
    untraceable("random number generation")
    return (generator or default_generator)._rng


def _float_dtype(dtype: Any):
    d = get_default_dtype() if dtype is None else as_dtype(dtype)
    if not d.is_floating_point:
        raise TypeError(f"expected a floating dtype for random values, got {d}")
    return d


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform random values in [0, 1)."""
    d = _float_dtype(dtype)
    return _leaf(_rng(generator).random(tuple(shape_arg(size))).astype(d.np), requires_grad)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal random values."""
    d = _float_dtype(dtype)
    return _leaf(_rng(generator).standard_normal(tuple(shape_arg(size))).astype(d.np), requires_grad)


def randint(low: int, high: int | None = None, size: Any = None, *, generator: Generator | None = None,
            dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Random integers in [low, high) (``randint(high, size)`` form too)."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    d = int64 if dtype is None else as_dtype(dtype)
    arr = _rng(generator).integers(low, high, tuple(shape_arg((size,))), dtype=np.int64).astype(d.np)
    return _leaf(arr, requires_grad)


def rand_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randperm(n: int, *, generator: Generator | None = None, dtype: Any = None) -> Tensor:
    d = int64 if dtype is None else as_dtype(dtype)
    return _leaf(_rng(generator).permutation(n).astype(d.np), False)


def bernoulli_mask(shape: tuple, p_keep: float, dtype: Any, generator: Generator | None = None) -> np.ndarray:
    """A 0/1 array of ``shape`` with ones at probability ``p_keep`` (used by dropout)."""
    return (_rng(generator).random(shape) < p_keep).astype(dtype.np)


FUNCTIONS = ["manual_seed", "seed", "initial_seed", "rand", "randn", "randint", "rand_like",
             "randn_like", "randperm", "Generator", "default_generator"]
