"""A compiled ``value_and_grad`` program called with all-tensor arguments: one closure per call.

``gradgen.compile(value_and_grad(loss))`` runs the joint program (loss and gradients in one
executable). For a call whose positional arguments are all tensors, :class:`GradRunner` fixes
once everything its fast key and guards fix, so the usual call is a closure that runs the
executable and wraps its arrays.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autograd.grad_mode import _state
from ..ir.core import Program
from ..ir.tree import unflatten
from ..tensor import Tensor
from .compiled import _CHECK, _COPY, _WRAP


class GradRunner:
    """A compiled ``value_and_grad`` program bound to one fast key (all-tensor arguments).

    Everything the guards fix is decided once: whether the call must stay differentiable
    (then it runs ``slow``, the general path), where each argument's gradient sits among the
    program's outputs, which outputs may need a copy, and the cotangent of ones, held as a
    persistent buffer of the C executable.
    """

    def __init__(self, program: Program, gp: Any, args: tuple, nums: tuple[int, ...],
                 spec: tuple, slow: Callable[[tuple], Any]) -> None:
        _, self.argnums, self.has_aux, self.with_value = spec
        self.program, self.gp, self.slow = program, gp, slow
        self.captured = program.meta["captured"]
        # The fast key and the captured guard fix every requires_grad flag (and grad mode).
        requires = [t._requires_grad for t in self.captured] + [a._requires_grad for a in args]
        grad_of: dict[int, list[int]] = {}
        for j, k in enumerate(gp.wrt):
            grad_of.setdefault(program.meta["argnums"][k], []).append(gp.n_out + j)
        self.positions = [grad_of[i][0] for i in nums if len(grad_of.get(i, ())) == 1]
        self.differentiable = _state.enabled and any(requires) \
            or len(self.positions) != len(nums)  # (a tensor argument without one gradient)
        ct = np.ones(gp.ct.shape, gp.ct.dtype.np)
        run, n_in = gp.run_joint, len(gp.joint.inputs)
        bind = getattr(run, "bind", None)
        if bind is not None:
            self.run = bind({n_in - 1: ct}).callable()
        else:
            self.run = lambda *arrays: run(*arrays, np.ones(ct.shape, ct.dtype))
        owned = getattr(run, "owned", None) or (False,) * len(gp.joint.outputs)
        # Outputs returned as shared arrays (constants, inputs) are copied; others are
        # checked unless the executor made them for this call alone.
        self.plan = [_COPY if k in gp.shared else _WRAP if owned[k] else _CHECK
                     for k in range(len(gp.joint.outputs))]
        self.call = self._direct() or self.__call__

    def _direct(self) -> Callable[[tuple], Any] | None:
        """The call as one closure when nothing needs deciding per call (the usual case: no
        tape, no captured tensors, no aux, every output made by the executable for this call):
        run, wrap the loss and the gradients, return."""
        gp, nums = self.gp, self.positions
        if self.differentiable or self.captured or self.has_aux or \
                any(self.plan[k] != _WRAP for k in [gp.loss, *nums]):
            return None
        run, make, loss, with_value = self.run, Tensor._make, gp.loss, self.with_value
        single = nums[0] if isinstance(self.argnums, int) else None

        def call(args: tuple) -> Any:
            r = run(*[t._data for t in args])
            grads = make(r[single]) if single is not None else tuple([make(r[p]) for p in nums])
            return (make(r[loss]), grads) if with_value else grads
        return call

    def __call__(self, args: tuple) -> Any:
        if self.differentiable:
            return self.slow(args)
        arrays = [t._data for t in args]
        if self.captured:
            arrays += [t._data for t in self.captured]
        results, seen = [], set()
        make = Tensor._make
        for how, a in zip(self.plan, self.run(*arrays)):
            if how == _COPY:
                a = np.array(a)
            elif how == _CHECK:
                if id(a) in seen or a.base is not None or not a.flags.writeable:
                    a = np.array(a)
                seen.add(id(a))
            results.append(make(a))
        gp = self.gp
        value = results[gp.loss]
        if self.has_aux:
            value = (value, unflatten(self.program.meta["out_tree"], results[:gp.n_out])[1])
        grads = results[self.positions[0]] if isinstance(self.argnums, int) else \
            tuple(results[p] for p in self.positions)
        if self.with_value:
            return value, grads
        return (grads, value[1]) if self.has_aux else grads


__all__ = ["GradRunner"]
