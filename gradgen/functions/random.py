"""Random tensors from one global generator; ``manual_seed`` makes them reproducible."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.record import untraceable
from ..dtypes import as_dtype, bool_, get_default_dtype, int32, int64
from ..tensor import Tensor
from .creation import _leaf, _size
from ._operands import INT_RANGE


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


def _float_dtype(dtype: Any, kernel: str):
    """The dtype of ``rand``/``randn`` values; PyTorch's kernels exist for floating ones only."""
    d = get_default_dtype() if dtype is None else as_dtype(dtype)
    if not d.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{d.scalar_name}\'')
    return d


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform random values in [0, 1)."""
    shape = _size("rand", size)
    d = _float_dtype(dtype, "check_uniform_bounds")
    return _leaf(_rng(generator).random(shape).astype(d.np), requires_grad)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal random values."""
    shape = _size("randn", size)
    d = _float_dtype(dtype, "normal_kernel_cpu")
    return _leaf(_rng(generator).standard_normal(shape).astype(d.np), requires_grad)


def randint(low: int, high: int | None = None, size: Any = None, *, generator: Generator | None = None,
            dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Random integers in [low, high) (``randint(high, size)`` form too)."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    for name, v in (("low", low), ("high", high)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"randint(): argument '{name}' must be int, not {type(v).__name__}")
    shape = _size("randint", (size,))
    d = int64 if dtype is None else as_dtype(dtype)
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")
    if not d.is_floating_point:  # (floating dtypes take any range, as PyTorch's warn)
        lo, hi = (0, 1) if d is bool_ else INT_RANGE[d]
        if high - 1 > hi:
            raise RuntimeError(f"to - 1 is out of bounds for {_C_NAME[d]}")
        if low < lo:
            raise RuntimeError(f"from is out of bounds for {_C_NAME[d]}")
    arr = _rng(generator).integers(low, high, shape, dtype=np.int64).astype(d.np)
    return _leaf(arr, requires_grad)


_C_NAME = {bool_: "bool", int32: "int", int64: "long"}  # (as PyTorch's messages name them)


def _like(values: Tensor, input: Tensor) -> Tensor:
    """``values`` laid out in ``input``'s memory order, as the other ``*_like`` factories."""
    out = np.empty_like(input._data, dtype=values._data.dtype)
    out[...] = values._data
    values._data = out
    return values


def rand_like(input: Tensor, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return _like(rand(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad), input)


def randn_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    return _like(randn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad), input)


def randperm(n: int, *, generator: Generator | None = None, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1``."""
    (n,) = _size("randperm", (n,))
    d = int64 if dtype is None else as_dtype(dtype)
    if d is bool_:
        raise NotImplementedError("\"randperm\" not implemented for 'Bool'")
    return _leaf(_rng(generator).permutation(n).astype(d.np), requires_grad)


def bernoulli_mask(shape: tuple, p_keep: float, dtype: Any, generator: Generator | None = None) -> np.ndarray:
    """A 0/1 array of ``shape`` with ones at probability ``p_keep`` (used by dropout)."""
    return (_rng(generator).random(shape) < p_keep).astype(dtype.np)


FUNCTIONS = ["manual_seed", "seed", "initial_seed", "rand", "randn", "randint", "rand_like",
             "randn_like", "randperm", "Generator", "default_generator"]
