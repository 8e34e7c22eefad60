"""Functional gradients in JAX's style, built on the IR: ``grad`` and ``value_and_grad``.

Both trace the function once per input signature (shapes, dtypes, requires_grad
flags, grad mode, and the values of non-tensor arguments) and run the optimized
gradient program; when tracing stops they compute the same result with eager
autograd.
"""
from __future__ import annotations


import functools
import math
from typing import Any, Callable, Sequence

import numpy as np

from .ad.cache import Fallback, TraceCache, inputs_of, signature
from .ad.evaluate import evaluate
from .ad.reverse import vjp
from .autograd import record
from .autograd.engine import any_node
from .autograd.functional_api import grad as _autograd_grad
from .autograd.grad_mode import _state, enable_grad
from .autograd.record import TraceBusy, TraceError
from .ir.core import Program, Var
from .ir.errors import IRError
from .ir.interpreter import run
from .ir.tree import flatten, unflatten
from .passes.pipeline import optimize
from .tensor import Tensor


BACKENDS = ("c", "interpret", "eager")
# What stops a trace: TraceError (the tracer's typed stop), IRError (a malformed program) and
# NotImplementedError (front-end operations that refuse to run under a trace, e.g. in-place ones).
_STOPS = (TraceError, IRError, NotImplementedError)


# ---------------------------------------------------------------- grad and value_and_grad

def _check_argnums(argnums: int | Sequence[int], nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError("argnums must name at least one positional argument, got ()")
    for i in nums:
        if not isinstance(i, int) or not -nargs <= i < nargs:
            raise ValueError(f"argnums {argnums!r} is out of range for a function called with "
                             f"{nargs} positional arguments")
    return tuple(i % nargs for i in nums)


def _check_diff_args(args: tuple, nums: tuple[int, ...]) -> None:
    for i in nums:
        leaves, _ = flatten(args[i])
        if not leaves:
            raise TypeError(f"argument {i} is differentiated (argnums) but holds no tensor: "
                            f"{type(args[i]).__name__}")
        for t in leaves:
            if not t.dtype.is_floating_point:
                raise TypeError("grad requires floating-point inputs, but argument "
                                f"{i} has dtype {t.dtype.name}")


def _loss_index(program: Program, has_aux: bool) -> tuple[int, Any]:
    """Where the loss is among the traced program's outputs, and the aux structure: the checks
    of :func:`_split_result` on the program's output structure (output positions as leaves)."""
    shaped = unflatten(program.meta["out_tree"], list(range(len(program.outputs))))
    return _split_result(shaped, has_aux,
                         lambda k: program.outputs[k].aval if type(k) is int else None)


def _split_result(result: Any, has_aux: bool,
                  aval_of: Callable[[Any], Any] = lambda t: t if isinstance(t, Tensor) else None
                  ) -> tuple[Any, Any]:
    """(loss, aux) of what the function returned, checked: a pair with ``has_aux``, a loss that
    is a one-element float tensor (``aval_of(leaf)``: its shape and dtype, None if no tensor)."""
    if has_aux:
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError("has_aux=True requires the function to return a pair (output, aux)")
        out, aux = result
    else:
        out, aux = result, None
    aval = aval_of(out)
    if aval is None:
        raise TypeError("Gradient only defined for scalar-output functions. The function "
                        f"returned {type(out).__name__}, not a tensor")
    if math.prod(aval.shape) != 1 or not aval.dtype.is_floating_point:
        raise TypeError("Gradient only defined for scalar-output functions. Output had shape: "
                        f"{tuple(aval.shape)} and dtype {aval.dtype.name}")
    return out, aux


class _GradProgram:
    """The optimized gradient program of one signature and where its pieces are."""

    def __init__(self, program: Program, nums: tuple[int, ...], has_aux: bool,
                 lower: Callable | None = None) -> None:
        self.loss, self.aux = _loss_index(program, has_aux)
        self.wrt = tuple(k for k, a in enumerate(program.meta["argnums"]) if a in nums)
        self.joint = optimize(vjp(program, self.wrt, seeds=(self.loss,)))
        # One program computes the value and the gradients: compiled as one module.
        self.native = lower([self.joint]) if lower is not None else None
        joint = self.joint
        self.run_joint = self.native.executables[0] if self.native is not None else \
            (lambda *arrays: run(joint, *arrays))
        self.n_out = len(program.outputs)
        self.ct = program.outputs[self.loss].aval
        ins = set(self.joint.inputs)
        # Outputs the interpreter returns as shared arrays (constants, inputs): copied out.
        self.shared = {k for k, a in enumerate(self.joint.outputs) if type(a) is not Var or a in ins}

    # Attributes not kept with a lowering: the executables (rebuilt from the lowered module)
    # and the aux structure (taken from the current trace).
    LIVE = ("native", "run_joint", "aux")

    def state(self) -> dict:
        """What a lowering cache keeps of this program (everything but :attr:`LIVE`)."""
        return {k: v for k, v in vars(self).items() if k not in self.LIVE}

    @classmethod
    def restore(cls, state: dict, native: Any, aux: Any) -> "_GradProgram":
        """The program of :meth:`state` with a loaded native build: no differentiation (what a
        warm start skips)."""
        gp = cls.__new__(cls)
        vars(gp).update(state)
        gp.aux, gp.native, gp.run_joint = aux, native, native.executables[0]
        return gp


def value_and_grad(fn: Callable, argnums: int | Sequence[int] = 0,
                   has_aux: bool = False) -> Callable:
    """A function returning ``(fn(*args), gradient of fn with respect to args[argnums])``.

    JAX's convention: ``fn`` returns a scalar (or ``(scalar, aux)`` with
    ``has_aux``, giving ``((value, aux), grads)``); gradients have the shapes
    of the arguments (a tuple of them when ``argnums`` is a tuple). When an
    input requires grad, the results carry grad_fns, so grads of grads work.

    >>> import gradgen as gg
    >>> from gradgen import value_and_grad
    >>> value_and_grad(lambda x: (x * x).sum())(gg.tensor([1.0, 2.0]))
    (tensor(5.), tensor([2., 4.]))
    """
    fallback = Fallback(fn, "value_and_grad")
    cache: dict[tuple, TraceCache] = {}

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        nums = _check_argnums(argnums, len(args))
        _check_diff_args(args, nums)
        value, per_arg = _value_and_grads(args, nums)
        return value, (per_arg[0] if isinstance(argnums, int) else tuple(per_arg))

    def _value_and_grads(args: tuple, nums: tuple[int, ...]) -> tuple[Any, list]:
        if record.tracing():  # inside a trace: eager autograd, which the trace records
            return _eager_value_and_grad(fn, args, nums, has_aux, traced=True)
        try:
            key = signature(args)
        except TypeError as err:
            fallback.note(TypeError(f"an argument cannot key the trace cache: {err}"))
            return _eager_value_and_grad(fn, args, nums, has_aux)
        if key in fallback.eager_keys:
            return _eager_value_and_grad(fn, args, nums, has_aux)
        c = cache.setdefault(nums, TraceCache(lambda p: _GradProgram(p, nums, has_aux),
                                                  grad_mode=True))
        try:
            program, gp = c.get(fn, args, key)
        except TraceBusy:  # another thread is tracing: eager this time
            return _eager_value_and_grad(fn, args, nums, has_aux)
        except _STOPS as err:
            fallback.note(err, key)
            return _eager_value_and_grad(fn, args, nums, has_aux)
        return _run_grad(program, gp, args, nums, has_aux)

    wrapper.fallback = fallback  # type: ignore[attr-defined]
    # compile() recognizes the wrapper and compiles value and gradients as one program.
    wrapper._gradgen_grad_spec = (fn, argnums, has_aux, True)  # type: ignore[attr-defined]
    return wrapper


def _run_grad(program: Program, gp: _GradProgram, args: tuple, nums: tuple[int, ...],
              has_aux: bool) -> Any:
    inputs = inputs_of(program, args)
    ct = np.ones(gp.ct.shape, gp.ct.dtype.np)
    if _state.enabled and any(t._requires_grad for t in inputs):
        results = evaluate(gp.joint, *inputs, Tensor._make(ct))  # differentiable
    else:
        results, seen = [], set()
        for k, a in enumerate(gp.run_joint(*[t._data for t in inputs], ct)):
            if k in gp.shared or id(a) in seen or a.base is not None or not a.flags.writeable:
                a = np.array(a)
            seen.add(id(a))
            results.append(Tensor._make(a))
    outs, grads = results[:gp.n_out], results[gp.n_out:]
    value = outs[gp.loss]
    if has_aux:
        value = (value, unflatten(program.meta["out_tree"], outs)[1])
    per_arg: dict[int, list] = {i: [] for i in nums}
    for k, g in zip(gp.wrt, grads):
        per_arg[program.meta["argnums"][k]].append(g)
    return value, [unflatten(flatten(args[i])[1], per_arg[i]) for i in nums]


def _eager_value_and_grad(fn: Callable, args: tuple, nums: tuple[int, ...], has_aux: bool,
                          traced: bool = False) -> Any:
    """The same result computed with eager autograd (fallback, and under an active trace)."""
    args = list(args)
    targets: list[Tensor] = []
    toggled: list[Tensor] = []
    differentiable = traced or _state.enabled and any(
        t._requires_grad for t in flatten(tuple(args))[0])
    for i in nums:
        leaves, tree = flatten(args[i])
        new = []
        for t in leaves:
            if t._requires_grad:
                new.append(t)
            elif traced:  # keep the traced value: the outer trace differentiates through it
                t._requires_grad = True
                toggled.append(t)
                new.append(t)
            else:
                new.append(t.detach().requires_grad_())
        targets.extend(new)
        args[i] = unflatten(tree, new)
    try:
        with enable_grad():
            out, aux = _split_result(fn(*args), has_aux)
            # A tensor fn captured that requires grad (a model's weight) makes the result
            # differentiable too, as the traced program's (whose inputs include it).
            differentiable = differentiable or _state.enabled and _reaches_other_leaf(
                out, targets)
            grads = _autograd_grad(out, targets, create_graph=differentiable, allow_unused=True,
                                   materialize_grads=True)
    finally:
        for t in toggled:
            t._requires_grad = False
    if not differentiable:  # (aux too: its graph ends at this call's private leaves)
        grads = tuple(g.detach() for g in grads)
        out = out.detach()
        leaves, tree = flatten(aux)
        aux = unflatten(tree, [t.detach() for t in leaves])
    per, k = [], 0
    for i in nums:
        leaves, tree = flatten(args[i])
        per.append(unflatten(tree, list(grads[k:k + len(leaves)])))
        k += len(leaves)
    value = (out, aux) if has_aux else out
    return value, per


def _reaches_other_leaf(out: Any, targets: list) -> bool:
    """Whether ``out``'s graph reaches a leaf requiring grad other than ``targets``."""
    mine = {id(t) for t in targets}
    return any_node([getattr(out, "_grad_fn", None)],
                    lambda n: getattr(n, "variable", None) is not None
                    and id(n.variable) not in mine)


def grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of scalar ``fn`` with respect to ``args[argnums]``.

    With ``has_aux`` it returns ``(grads, aux)``. See :func:`value_and_grad`.

    >>> import gradgen as gg
    >>> from gradgen import grad
    >>> grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(gg.tensor([1.0, 2.0]), gg.tensor([3.0, 4.0]))
    (tensor([3., 4.]), tensor([1., 2.]))
    """
    vg = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        value, grads = vg(*args)
        return (grads, value[1]) if has_aux else grads

    wrapper.fallback = vg.fallback  # type: ignore[attr-defined]
    wrapper._gradgen_grad_spec = (fn, argnums, has_aux, False)  # type: ignore[attr-defined]
    return wrapper



__all__ = ["grad", "value_and_grad"]
