"""``gradcheck`` and ``gradgradcheck``: analytical gradients against central differences.

Follows ``torch.autograd.gradcheck``'s slow mode. The numerical Jacobian of every
output with respect to every input that requires grad is built by perturbing
each input element in place, through the tensor's own numpy view, so a
non-contiguous input (a transposed or sliced view) is perturbed exactly where
``func`` reads it. The analytical Jacobian is built row by row from
vector-Jacobian products: ``autograd.grad`` with a one-hot ``grad_output`` for
each output element. Jacobians are laid out like PyTorch's: one row per input
element, one column per output element.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from .functional_api import grad as _grad


class GradcheckError(RuntimeError):
    """Error raised by :func:`gradcheck` and :func:`gradgradcheck`."""


def _as_tuple(x: Any) -> tuple:
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _is_tensor(x: Any) -> bool:
    from ..tensor import Tensor  # noqa: PLC0415
    return isinstance(x, Tensor)


def _diff_inputs(inputs: tuple) -> list:
    return [t for t in inputs if _is_tensor(t) and t._requires_grad]


def _check_inputs(inputs: tuple) -> None:
    found = False
    for idx, t in enumerate(inputs):
        if not (_is_tensor(t) and t._requires_grad):
            continue
        if t._data.dtype != np.float64:
            warnings.warn(
                f"Input #{idx} requires gradient and is not a double precision floating point or "
                "complex. This check will likely fail if all the inputs are not of double "
                "precision floating point or complex. ", UserWarning, stacklevel=4)
        d = t._data
        if d.size and not all(st != 0 or sz <= 1 for st, sz in zip(d.strides, d.shape)):
            raise RuntimeError(
                f"The {idx}th input has a dimension with stride 0. gradcheck only supports inputs "
                "that are non-overlapping to be able to compute the numerical gradients correctly. "
                "You should call .contiguous on the input before passing it to gradcheck.")
        found = True
    if not found:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of them have requires_grad=True.")


def _float_outputs(out: tuple) -> list[np.ndarray | None]:
    """float64 copies of the floating-point outputs (None for the others)."""
    res = []
    for o in out:
        if _is_tensor(o) and o._data.dtype.kind == "f":
            res.append(np.array(o._data, dtype=np.float64))
        else:
            res.append(None)
    return res


def _numerical_jacobians(func: Callable, inputs: tuple, out: tuple, eps: float) -> list[list]:
    """``jac[j][i]``: (numel of input i, numel of output j) float64 arrays, central differences."""
    diff = _diff_inputs(inputs)
    jac: list[list] = [[None] * len(diff) for _ in out]
    for i, t in enumerate(diff):
        data = t._data  # the tensor's own view: writing it changes what func reads
        if not data.flags.writeable:
            raise RuntimeError(f"gradcheck cannot perturb input {i}: its memory is read-only")
        cols = [np.zeros((data.size, o._data.size)) if _is_tensor(o) else None for o in out]
        for k, idx in enumerate(np.ndindex(data.shape)):
            orig = data[idx].copy()
            data[idx] = orig - eps
            lo = _float_outputs(_as_tuple(func(*inputs)))
            data[idx] = orig + eps
            hi = _float_outputs(_as_tuple(func(*inputs)))
            data[idx] = orig
            for j, (a, b) in enumerate(zip(lo, hi)):
                if a is not None and b is not None:
                    cols[j][k] = ((b - a) / (2 * eps)).reshape(-1)
        for j in range(len(out)):
            jac[j][i] = cols[j]
    return jac


def _one_hot(o: Any, k: int) -> Any:
    from ..tensor import Tensor  # noqa: PLC0415
    z = np.zeros(o._data.shape, o._data.dtype)
    z.reshape(-1)[k] = 1
    return Tensor._make(z)


def _analytical_jacobian(o: Any, diff: list, check_grad_dtypes: bool) -> list[np.ndarray]:
    """Rows of vector-Jacobian products of output ``o``: (numel of input, numel of o) per input."""
    jac = [np.zeros((t._data.size, o._data.size)) for t in diff]
    for k in range(o._data.size):
        grads = _grad(o, diff, _one_hot(o, k), retain_graph=True, allow_unused=True)
        for i, (g, t) in enumerate(zip(grads, diff)):
            if g is None:
                continue
            if g._data.shape != t._data.shape:
                raise GradcheckError("Analytical gradient has incorrect size")
            if check_grad_dtypes and g._data.dtype != t._data.dtype:
                raise GradcheckError("Gradient has dtype mismatch")
            jac[i][:, k] = g._data.reshape(-1)
    return jac


def _first_mismatch(a: np.ndarray, n: np.ndarray, rtol: float, atol: float) -> tuple[int, int]:
    bad = ~np.isclose(a, n, rtol=rtol, atol=atol, equal_nan=False)
    r, c = np.argwhere(bad)[0]
    return int(r), int(c)


def _mismatch_message(a: np.ndarray, n: np.ndarray, j: int, i: int, out: Any, inp: Any,
                      rtol: float, atol: float) -> str:
    from ..tensor import Tensor  # noqa: PLC0415
    num = Tensor._make(n.astype(out._data.dtype))
    ana = Tensor._make(a.astype(inp._data.dtype))
    r, c = _first_mismatch(a, n, rtol, atol)
    in_idx = tuple(int(v) for v in np.unravel_index(r, inp._data.shape))
    out_idx = tuple(int(v) for v in np.unravel_index(c, out._data.shape))
    bad = int((~np.isclose(a, n, rtol=rtol, atol=atol)).sum())
    return (f"Jacobian mismatch for output {j:d} with respect to input {i:d},\n"
            f"numerical:{num}\nanalytical:{ana}\n\n"
            f"{bad} of {a.size} entries differ (rtol={rtol}, atol={atol}); the first is "
            f"d output[{j}] element {c} (index {out_idx}) / d input[{i}] element {r} "
            f"(index {in_idx}): numerical {float(n[r, c])!r}, analytical {float(a[r, c])!r}.")


def _zero_grad_checks(outputs: list, diff: list, check_undefined_grad: bool) -> None:
    """Backward with all-zero grad_outputs must give zero (or no) gradients of the right kind."""
    from ..tensor import Tensor  # noqa: PLC0415
    zeros = [Tensor._make(np.zeros(o._data.shape, o._data.dtype)) for o in outputs]
    try:
        grads = _grad(outputs, diff, zeros, retain_graph=True, allow_unused=True)
    except RuntimeError as e:
        if not check_undefined_grad:
            raise
        raise GradcheckError("Expected backward function to handle undefined output grads. "
                             'Please look at "Notes about undefined output gradients" in '
                             '"tools/autograd/derivatives.yaml"') from e
    for g, t in zip(grads, diff):
        if g is None:
            continue
        if np.any(g._data != 0):
            raise GradcheckError("backward not multiplied by grad_output")
        if g._data.dtype != t._data.dtype:
            raise GradcheckError("grad is incorrect type")
        if g._data.shape != t._data.shape:
            raise GradcheckError("grad is incorrect size")


def _gradcheck(func: Callable, inputs: tuple, eps: float, atol: float, rtol: float,
               nondet_tol: float, check_undefined_grad: bool, check_grad_dtypes: bool,
               check_backward_ad: bool) -> bool:
    _check_inputs(inputs)
    out = _as_tuple(func(*inputs))
    diff = _diff_inputs(inputs)
    numerical = _numerical_jacobians(func, inputs, out, eps)
    outputs = [(j, o) for j, o in enumerate(out) if _is_tensor(o) and o._requires_grad]
    if not outputs:
        for row in numerical:
            for n in row:
                if n is not None and np.any(n != 0):
                    raise GradcheckError("Numerical gradient for function expected to be zero")
        return True
    if not check_backward_ad:
        return True
    for j, o in outputs:
        analytical = _analytical_jacobian(o, diff, check_grad_dtypes)
        again = _analytical_jacobian(o, diff, check_grad_dtypes)
        for a, b in zip(analytical, again):
            if a.size and np.abs(a - b).max() > nondet_tol:
                raise GradcheckError(
                    "Backward is not reentrant, i.e., running backward with same input and "
                    "grad_output multiple times gives different values, although analytical "
                    f"gradient matches numerical gradient.The tolerance for nondeterminism was "
                    f"{nondet_tol}.")
        for i, (a, n) in enumerate(zip(analytical, numerical[j])):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                raise GradcheckError(_mismatch_message(a, n, j, i, o, diff[i], rtol, atol))
    _zero_grad_checks([o for _, o in outputs], diff, check_undefined_grad)
    return True


def gradcheck(func: Callable[..., Any], inputs: Any, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None) -> bool:
    """Check analytical gradients of ``func`` at ``inputs`` against central differences.

    Returns True, or raises :class:`GradcheckError` naming the output, the input and the
    first mismatching element (returns False instead with ``raise_exception=False``).
    ``fast_mode`` and ``check_batched_grad`` are accepted and ignored (the full
    Jacobian is always compared); forward-mode AD is not supported.

    >>> import gradgen as gg
    >>> x = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
    >>> gg.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    if check_forward_ad or check_batched_forward_grad:
        raise NotImplementedError("gradgen has no forward-mode AD: use check_forward_ad=False")
    args = (func, _as_tuple(inputs), eps, atol, rtol, nondet_tol, check_undefined_grad,
            check_grad_dtypes, check_backward_ad)
    if not raise_exception:
        try:
            return _gradcheck(*args)
        except GradcheckError:
            return False
    return _gradcheck(*args)


def _random_grad_output(o: Any, rng: np.random.Generator, non_contiguous: bool) -> Any:
    from ..tensor import Tensor  # noqa: PLC0415
    dtype = o._data.dtype if o._data.dtype.kind == "f" else np.dtype(np.float64)
    values = rng.uniform(-1, 1, o._data.shape).astype(dtype)
    if non_contiguous and values.size > 1:
        holder = np.zeros(values.shape + (2,), dtype)
        holder[..., 0] = values
        values = holder[..., 0]
    t = Tensor._make(values)
    t._requires_grad = True
    return t


def gradgradcheck(func: Callable[..., Any], inputs: Any, grad_outputs: Any = None, *,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False) -> bool:
    """Gradcheck the backward of ``func``: second derivatives against central differences.

    The function checked maps (inputs, grad_outputs) to the gradients of ``func``'s
    outputs computed with ``create_graph=True``. Without ``grad_outputs``, random ones
    in [-1, 1) that require grad are used (from a fixed seed, so failures reproduce).

    >>> import gradgen as gg
    >>> x = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
    >>> gg.autograd.gradgradcheck(lambda t: t * t * t, (x,))
    True
    """
    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        outs = [o for o in _as_tuple(func(*inputs)) if _is_tensor(o) and o._requires_grad]
        grad_outputs = tuple(_random_grad_output(o, rng, gen_non_contig_grad_outputs) for o in outs)
    else:
        grad_outputs = _as_tuple(grad_outputs)
    n_out = len(grad_outputs)
    diff_idx = {i for i, x in enumerate(inputs) if _is_tensor(x) and x._requires_grad}

    def new_func(*args: Any) -> tuple:
        input_args = args[:len(args) - n_out]
        outputs = [o for o in _as_tuple(func(*input_args)) if _is_tensor(o) and o._requires_grad]
        diff_args = [x for i, x in enumerate(input_args) if i in diff_idx]
        grads = _grad(outputs, diff_args, list(args[len(args) - n_out:]), create_graph=True,
                      allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(new_func, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol,
                     check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes)


__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]
