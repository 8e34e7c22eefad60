"""What backward does to ``.grad``: PyTorch's AccumulateGrad (a leaf's) and retain_grad hook (a
non-leaf's), and the checks of ``t.grad = value``. Bound to Tensor as its ``_accumulate_grad``
and ``_store_retained_grad`` methods."""
from __future__ import annotations

from typing import Any

import numpy as np

from .grad_mode import _state
from .record import values

# Bound by gradgen.tensor once Tensor is defined (see functional_api).
Tensor: Any = None


def accumulate_grad(self: Any, g: Any, steal: bool = False) -> None:
    """Add ``g`` into ``.grad`` as PyTorch's AccumulateGrad does; ``steal``: ``g`` is referred
    to by nothing else, so a first gradient can be kept as it is rather than copied."""
    values(g._data, "backward() into a leaf's .grad")
    if not self._requires_grad:  # switched off since the graph was built: no .grad
        return
    old = self._grad
    if _state.enabled:  # create_graph: a recorded copy, or a recorded out-of-place sum
        if old is not None:
            self._grad = old + g
        elif g._requires_grad:  # (PyTorch's clone_obey_contract: a copy_ into a new tensor)
            self._grad = Tensor._make(np.empty(g._data.shape, g._data.dtype)).copy_(g)
        else:
            self._grad = Tensor._make(np.array(g._data, order="C"))
    elif old is None:
        self._grad = g if steal else Tensor._make(np.array(g._data, order="C"))
    else:  # in place, into the same object (even one that requires grad), unrecorded
        od = old._data
        try:
            np.add(od, g._data, out=od)
        except (ValueError, TypeError):  # add_ raises PyTorch's errors (a broadcast .grad,
            old.add_(g)                  # another shape or dtype)
        else:
            old._version.value += 1


def store_retained_grad(self: Any, g: Any, create_graph: bool) -> None:
    """A retained non-leaf's ``.grad``: a copy of the first gradient (recorded under
    create_graph), then out-of-place sums, as PyTorch's retain_grad hook."""
    values(g._data, "backward() into a retained .grad")
    old = self._grad
    if create_graph:
        self._grad = g.clone() if old is None else old + g
    elif old is None:
        self._grad = Tensor._make(np.array(g._data, order="C"))
    elif old._data.shape == g._data.shape:
        self._grad = Tensor._make(old._data + g._data)
    else:
        self._grad = old + g


# The names PyTorch's .grad setter gives dtypes: C++ type names for the gradient's, ScalarType
# names for the tensor's.
_CPP_TYPE = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
             "bool": "bool"}


def check_grad(t: Any, value: Any) -> None:
    """PyTorch 2.13's checks (and messages) for ``t.grad = value``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                        f"{type(value).__name__}")
    if value is t:
        raise RuntimeError("can't assign Variable as its own grad")
    if value._data.dtype != t._data.dtype:
        raise RuntimeError(
            f"attempting to assign a gradient with dtype '{_CPP_TYPE[value.dtype.name]}' to a "
            f"tensor with grad_dtype '{t.dtype.scalar_name}'. The gradient must match the "
            "tensor's grad_dtype (defaults to the tensor's dtype). You can set the tensor's "
            "grad_dtype attribute with a specific dtype, or None to allow any dtype. Set "
            "grad_dtype with caution. Diverging the dtypes of a tensor and its gradient may "
            "break downstream systems that assume they match.")
    if value._data.shape != t._data.shape:
        raise RuntimeError(
            f"attempting to assign a gradient of size '[{', '.join(map(str, value.shape))}]' to a "
            f"tensor of size '[{', '.join(map(str, t.shape))}]'. Please ensure that the gradient "
            "and the tensor are the same size")
