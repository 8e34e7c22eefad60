"""The Tensor: a numpy array plus autograd state, with PyTorch's names and semantics.

Arithmetic, reductions, shape and indexing methods are defined as functions in
``gradgen.functions`` and attached here by ``gradgen.functions.install_methods``;
this file holds what is intrinsic to a tensor: its data, dtype and shape, its
autograd state (``requires_grad``, ``grad``, ``grad_fn``, hooks, version counter),
its repr, hash and pickling.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any, Callable

import numpy as np

from .dtypes import _BY_NP, dtype as _dtype, float32, float64, int32, int64, bool_
from .autograd.node import AccumulateGrad, Node, RemovableHandle, _typename
from .autograd import record as _record
from .autograd.record import untraceable
from .autograd import accumulate as _accumulate, functional_api as _functional_api
from .autograd.engine import run_unit as _run_unit
from .shape_types import _CPU, Size, device

# Why a trace stops (see record.untraceable): autograd state a compiled program does not hold.
_GRAD_READ = ("reading .grad inside fn (backward() replaces or updates it between calls, which "
              "a compiled program would not see; pass the gradient as an argument)")
_LEAF_INSIDE = ("requires_grad set inside fn (a new leaf: a compiled program's differentiable "
                "inputs are its arguments and captured tensors)")
_BACKWARD_INSIDE = ("backward() inside fn (it writes the leaves' .grad, which a compiled program "
                    "cannot; call backward() on the compiled function's result, or use "
                    "autograd.grad inside fn)")

_NONLEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
    "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
    "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead. See "
    "github.com/pytorch/pytorch/pull/30531 for more information.")


class _VersionCounter:
    """Counts in-place writes to a storage; shared by a tensor and all its views."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tensor:
    """A multi-dimensional array that records operations for automatic differentiation."""

    # _view_op: for a differentiable view, [base, view steps, made in grad mode, version,
    # output index, made by a custom Function] -- how to replay it from its base once a write
    # made it stale (see record.refresh_view); the index is set on an output of split/chunk/
    # unbind made in grad mode, or a view or input a custom Function returned (and 0 on views
    # of one): PyTorch refuses writes into those and cannot replay them.
    __slots__ = ("_data", "_requires_grad", "_grad_fn", "_grad", "_version", "_base",
                 "_view_op", "_accumulator", "_retains_grad", "__weakref__")
    # numpy must defer to our reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None

    def __init__(self, data: Any = None) -> None:
        from .functions.from_data import _to_array  # noqa: PLC0415
        arr = _to_array([] if data is None else data, None)
        if arr.dtype.kind != "f":
            arr = arr.astype(float32.np)
        Tensor._init(self, arr, None, _VersionCounter())

    @staticmethod
    def _init(t: "Tensor", data: np.ndarray, grad_fn: Node | None, counter: _VersionCounter) -> None:
        t._data = data
        t._requires_grad = grad_fn is not None
        t._grad_fn = grad_fn
        t._grad = None
        t._version = counter
        t._base = None
        t._view_op = None
        t._accumulator = None
        t._retains_grad = False

    @staticmethod
    def _make(data: np.ndarray, grad_fn: Node | None = None,
              counter: _VersionCounter | None = None) -> "Tensor":
        t = Tensor.__new__(Tensor)
        Tensor._init(t, data, grad_fn, counter if counter is not None else _VersionCounter())
        return t

    # ------------------------------------------------------------ type and shape
    @property
    def dtype(self) -> _dtype:
        return _BY_NP[self._data.dtype]

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None) -> Any:
        if dim is None:
            return Size(self._data.shape)
        if self._data.ndim == 0:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def ndimension(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    def nelement(self) -> int:
        return self._data.size

    def element_size(self) -> int:
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    @property
    def device(self) -> device:
        return _CPU

    @property
    def is_cuda(self) -> bool:
        return False

    # ------------------------------------------------------------ autograd state
    @property
    def requires_grad(self) -> bool:
        if self._view_op is not None:
            _record.refresh_view(self, flag_only=True)  # a view of a base written in place since
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag is not True and flag is not False:
            raise RuntimeError("requires_grad must be a bool")
        if self._grad_fn is not None:
            if flag:
                return
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().")
        if flag and self._data.dtype.kind != "f":
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients")
        if flag and not self._requires_grad:
            _record.untraceable(_LEAF_INSIDE)
        self._requires_grad = flag

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place (a leaf's, or a non-leaf's to True); returns self."""
        if requires_grad is not True and requires_grad is not False:
            raise TypeError("requires_grad_(): argument 'requires_grad' (position 1) must be bool, "
                            f"not {_typename(requires_grad)}")
        if requires_grad and self._grad_fn is None and self._data.dtype.kind != "f":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self) -> Node | None:
        if self._view_op is not None:
            _record.refresh_view(self)
        fn = self._grad_fn
        # A multi-output custom Function routes each output through a hidden selector node.
        return getattr(fn, "_visible", fn)

    @property
    def is_leaf(self) -> bool:
        if self._view_op is not None:
            _record.refresh_view(self)
        return self._grad_fn is None

    @property
    def grad(self) -> "Tensor | None":
        _record.untraceable(_GRAD_READ)
        if self._grad_fn is not None and not self._retains_grad and self._grad is None:
            warnings.warn(_NONLEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        if value is not None:
            _accumulate.check_grad(self, value)
        self._grad = value

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` during backward."""
        _record.untraceable("retain_grad() inside fn (a compiled program has no .grad to keep)")
        if self._view_op is not None:
            _record.refresh_view(self)  # a stale view: retain on its current grad_fn
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        self._grad_fn._retains = weakref.ref(self)

    def register_hook(self, hook: Callable[["Tensor"], "Tensor | None"]) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a result replaces it."""
        _record.untraceable("register_hook() inside fn (a compiled program runs no hook)")
        if self._view_op is not None:
            _record.refresh_view(self)  # a stale view: hook its current grad_fn
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_fn is not None:
            return self._grad_fn._add_pre_hook(hook)
        acc = self._get_accumulator()
        # The leaf normally holds its AccumulateGrad weakly; once it carries hooks it must live
        # as long as the leaf, or the next graph would get a fresh accumulator without them.
        self._accumulator = lambda: acc
        return acc._add_pre_hook(hook)

    def _get_accumulator(self) -> AccumulateGrad:
        acc = self._accumulator() if self._accumulator is not None else None
        if acc is None:
            acc = AccumulateGrad(self)
            self._accumulator = weakref.ref(acc)
        return acc

    # What AccumulateGrad and the retain_grad hook do to .grad (autograd/accumulate.py).
    _accumulate_grad = _accumulate.accumulate_grad
    _store_retained_grad = _accumulate.store_retained_grad

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Any = None) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of graph leaves."""
        _record.untraceable(_BACKWARD_INSIDE)
        if self._view_op is not None:
            _record.refresh_view(self)
        node = self._grad_fn
        if gradient is None and inputs is None and not create_graph and node is not None \
                and self._data.size == 1 and self._data.dtype.kind == "f" \
                and _run_unit(node, bool(retain_graph)):
            return  # the node held the gradients for the implicit one (a compiled loss's)
        _functional_api.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """A tensor sharing storage (and version counter) that is not part of any graph."""
        from .ops.elementwise import stop_gradient  # noqa: PLC0415
        return stop_gradient(self)

    def detach_(self) -> "Tensor":
        if self._view_op is not None and self._base is not None:
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. If you are using "
                "DistributedDataParallel (DDP) for training, and gradient_as_bucket_view is set "
                "as True, gradients are views of DDP buckets, and hence detach_() cannot be "
                "called on these gradients. To fix this error, please refer to the "
                "Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.")
        self._grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> "Tensor":
        # Shares storage but not the version counter: writes through .data are invisible to autograd.
        out = Tensor._make(self._data)
        if _record.tracer[0] is not None and _record.tracing():
            _record.data_made[0](self, out)
        return out

    @data.setter
    def data(self, value: "Tensor") -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {_typename(value)}")
        if self._requires_grad and value._data.dtype.kind != "f":
            raise RuntimeError("data set to a tensor that requires gradients must be floating "
                               "point or complex dtype")
        self._data = _record.values(value._data, "assigning .data")

    # ------------------------------------------------------------ Python protocol
    # (numpy(), item(), conversions to numbers, len/iter/in, format: functions/python_values.py)
    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        from .printing import tensor_repr  # noqa: PLC0415
        untraceable("a tensor's value flows into Python: formatting (print/repr/str)")
        name = None
        if self._view_op is not None:
            try:
                _record.refresh_view(self)  # a stale view shows its current grad_fn
            except RuntimeError:  # an output of split/chunk/unbind whose base was written
                name = "Invalid"
        if name is not None or self._grad_fn is not None:
            # (the class name, as PyTorch prints it: C++-only nodes' name() is qualified)
            node = self._grad_fn
            suffix = f"grad_fn=<{name or type(getattr(node, '_visible', node)).__name__}>"
        elif self._requires_grad:
            suffix = "requires_grad=True"
        else:
            suffix = None
        return tensor_repr(self._data, self.dtype, suffix)

    __str__ = __repr__

    def __reduce_ex__(self, proto: int) -> Any:
        return (_rebuild, (self._data, self._requires_grad))

    def __deepcopy__(self, memo: dict) -> "Tensor":
        if self._grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support "
                               "the deepcopy protocol at the moment.")
        t = Tensor._make(self._data.copy())
        t._requires_grad = self._requires_grad
        if self._grad is not None:
            t._grad = Tensor._make(self._grad._data.copy())
        memo[id(self)] = t
        return t


_record.Tensor = Tensor
_record._VersionCounter = _VersionCounter


def _rebuild(data: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(data)
    t._requires_grad = requires_grad
    return t


def _wrap_dim(dim: int, ndim: int) -> int:
    """Normalize a possibly negative ``dim`` for a rank-``ndim`` tensor, PyTorch's error on misuse."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim + n if dim < 0 else dim


__all__ = ["Tensor", "Size", "device", "float32", "float64", "int32", "int64", "bool_"]


_functional_api.Tensor = _accumulate.Tensor = Tensor  # (see gradgen.autograd.functional_api)
