"""A tensor's values in Python: ``numpy()``, ``item()``, ``tolist()``, conversions to numbers
(``bool``/``int``/``float``/``__index__``), ``len``, iteration, ``in`` and ``format``, with PyTorch's
errors. Each stops an active trace: the value leaves the program."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..autograd.record import untraceable
from ..tensor import Tensor
from .inplace_checks import _NUMBERS


def numpy(self, *, force: bool = False) -> np.ndarray:
    untraceable("a tensor's value flows into Python: numpy()")
    if self._requires_grad and not force:
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                           "Use tensor.detach().numpy() instead.")
    return self._data


def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
    untraceable("an operation outside the registry: numpy applied to a tensor's data")
    arr = self.numpy()
    if dtype is not None and np.dtype(dtype) != arr.dtype:
        return arr.astype(dtype)
    return arr.copy() if copy else arr


def item(self) -> Any:
    untraceable("a tensor's value flows into Python: item()")
    if self._data.size != 1:
        raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
    return self._data.reshape(()).item()


def tolist(self) -> Any:
    untraceable("a tensor's value flows into Python: tolist()")
    return self._data.tolist()


def __len__(self) -> int:
    if self._data.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self._data.shape[0]


def __contains__(self, element: Any) -> bool:
    if not isinstance(element, (Tensor,) + _NUMBERS):
        raise RuntimeError("Tensor.__contains__ only supports Tensor or scalar, but you passed "
                           f"in a {type(element)}.")
    return bool((element == self).any())


def __iter__(self) -> Iterator[Tensor]:
    if self._data.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    untraceable("iteration over a tensor (its length becomes a Python value)")
    return iter(self.unbind(0))


def _scalar_value(self, what: str) -> Any:
    untraceable(f"a tensor's value flows into Python: {what.lower()}()")
    n = self._data.size
    if n != 1:
        if what != "Boolean":
            raise ValueError("only one element tensors can be converted to Python scalars")
        raise RuntimeError("Boolean value of Tensor with "
                           f"{'no values' if n == 0 else 'more than one value'} is ambiguous")
    return self._data.reshape(()).item()


def __bool__(self) -> bool:
    return bool(self._scalar_value("Boolean"))


def __float__(self) -> float:
    return float(self._scalar_value("float"))


def __int__(self) -> int:
    return int(self._scalar_value("int"))


def __index__(self) -> int:
    untraceable("a tensor's value flows into Python: used as an index")
    if self._data.dtype.kind not in "iub" or self._data.size != 1:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return int(self._data.reshape(()).item())


def __format__(self, spec: str) -> str:
    untraceable("a tensor's value flows into Python: formatting (print/repr/str)")
    if self._data.ndim == 0:
        return format(self._data.item(), spec)
    if spec:  # (PyTorch falls back to object.__format__)
        raise TypeError("unsupported format string passed to Tensor.__format__")
    return str(self)


METHODS = {"numpy": numpy, "__array__": __array__, "item": item, "tolist": tolist,
           "__len__": __len__, "__contains__": __contains__, "__iter__": __iter__,
           "_scalar_value": _scalar_value, "__bool__": __bool__, "__float__": __float__,
           "__int__": __int__, "__index__": __index__, "__format__": __format__}
