"""The grad_fn of a compiled call's outputs (named as in PyTorch): see gradgen/ad/compiled.py.

It runs the entry's backward program on the residuals its call saved -- or, for a fused call
of a loss, hands out the gradients that call computed, scaled by the cotangent -- and raises as
eager mode does when a tensor its backward reads was written in place, or when it runs again
after its graph was freed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..autograd.grad_mode import _state
from ..autograd.node import FREED_MESSAGE, Node, modified, modified_message
from ..tensor import Tensor
from .evaluate import evaluate

if TYPE_CHECKING:
    from .compiled import CompiledEntry


class CompiledFunctionBackward(Node):
    """The grad_fn of a compiled call's outputs: runs the backward program (named as in PyTorch).

    One node per call. It receives a single output's gradient directly, or, with
    several differentiable outputs, a 0-d token from each output's selector, which
    has put that output's gradient in ``_slots`` (as for a multi-output Function).
    """

    __slots__ = ("_entry", "_inputs", "_residuals", "_guards", "_outputs_guarded", "_only",
                 "_slots", "stealable", "_applied", "_unit", "_gave_unit", "_counted")
    holds_unit = True  # a fused call's node keeps its gradients: see unit_grads

    def _init(self, entry: CompiledEntry, inputs: Sequence[Tensor], outs: Sequence[Tensor],
              residuals: Sequence, unit: list | None = None) -> None:
        self._entry = entry
        self._inputs = inputs
        self._residuals = residuals
        self.stealable = None
        self._only = entry._only
        self._slots = [None] * len(entry.seeds) if entry._only is None else None
        # Tensors whose memory the backward reads: an in-place write to one of them
        # before backward must raise, as in eager mode.
        guards = [(inputs[i], inputs[i]._version.value) for i in entry.saved_inputs]
        self._guards = guards
        self._outputs_guarded = ()
        self._applied = entry.run_fused is None  # (an entry that never fuses keeps no score)
        # A fused call's gradients, for a cotangent of one.
        self._unit = unit
        self._gave_unit = False
        self._counted = unit is not None  # among the entry's fused calls awaiting a backward
        if unit is not None:
            entry.fused_node(pending=1)
        if entry.fresh_residuals or unit is not None:
            return
        # (an output that is a view of another is made after this: its base is here)
        tensors = list(inputs) + [t for t in outs if t is not None]
        owned = {id(t._data) for t in tensors}
        # A residual can share memory with a tensor only if it is that tensor's array or a view.
        shared = [r for r in residuals if r.base is not None or id(r) in owned]
        if shared:
            for t in tensors:
                if any(np.may_share_memory(t._data, r) for r in shared):
                    guards.append((t, t._version.value))
            self._outputs_guarded = [t for t, _ in guards if any(t is o for o in outs)]

    def apply(self, grad: Any) -> tuple:
        self.stealable = None
        entry = self._entry
        self._settle()
        if self._only is not None:
            cts: list = [None] * len(entry.seeds)
            cts[self._only] = grad
        else:  # taken first, so a failing pass leaves no stale gradient behind
            cts, self._slots = self._slots, [None] * len(self._slots)
        if self._residuals is None:
            raise RuntimeError(FREED_MESSAGE)
        stale = modified(self._guards)
        if stale is not None:  # (an output of this call is named as this node's, as in eager)
            made_here = any(stale[0] is t for t in self._outputs_guarded)
            raise RuntimeError(modified_message(*stale, producer=self if made_here else None))
        if self._only is None and any(g is None for g in cts):
            return self._partial(cts)
        if _state.enabled:  # create_graph=True: run the gradient program on tensors
            return self._differentiable(cts)
        if self._unit is not None:
            scaled = self._scaled(grad._data.item())
            if scaled is not None:
                return scaled
        inputs = self._inputs
        make = Tensor._make
        if entry.fused:  # the gradient program (again, for a fused call's cotangent <= 0, inf, NaN)
            shape, dt = entry._zero_cts[0]
            ct = grad._data
            if ct.dtype != dt or ct.shape != shape:
                ct = np.asarray(ct, dtype=dt).reshape(shape)
            grads = entry.run_backward(*[t._data for t in inputs], ct)[entry.n_outputs:]
            self.stealable = entry.grads_owned
            return tuple([None if z else make(g) for g, z in zip(grads, entry.zero_grads)])
        if len(cts) == 1 and grad is not None and self._only is not None:
            arrays = [grad._data]  # the usual case: one output, its gradient
        else:
            arrays = [np.zeros(shape, dt) if g is None else g._data
                      for g, (shape, dt) in zip(cts, entry._zero_cts)]
        grads = entry.run_backward(*[inputs[i]._data for i in entry.saved_inputs],
                                   *self._residuals, *arrays)
        outs = tuple([None if z else make(g) for g, z in zip(grads, entry.zero_grads)])
        self.stealable = entry.grads_owned  # per gradient: made for this call alone
        return outs

    def unit_grads(self) -> tuple | None:
        """``apply`` of a cotangent of one for a fused call: the gradients it kept. None when
        ``apply`` must run instead (no kept gradients, or it raises: graph freed, an input
        written in place since)."""
        if self._unit is None or self._residuals is None or modified(self._guards) is not None:
            return None
        self.stealable = None
        self._settle()
        return self._scaled(1.0)

    def _settle(self) -> None:
        if not self._applied:  # a loss differentiated: fuse the next call
            self._applied = True
            self._entry.fused_node(True, -1 if self._counted else 0)
            self._counted = False

    def _scaled(self, s: float) -> tuple | None:
        """A fused call's gradients for cotangent ``s``: the kept ones for a cotangent of
        one, times it for another positive finite number; None for zero, a negative number,
        inf or NaN (the gradient program runs on it, as eager would: a masked-out gradient
        stays +0.0, not 0 * -3 = -0.0 or 0 * inf = NaN)."""
        if s == 1.0:
            grads = self._unit
            self._gave_unit = True  # stealable once released (see release)
        elif s > 0.0 and s - s == 0.0:
            grads = [u * s for u in self._unit]
            self.stealable = (True,) * len(grads)
        else:
            return None
        make = Tensor._make
        return tuple([None if z else make(g) for g, z in zip(grads, self._entry.zero_grads)])

    def _partial(self, cts: list) -> tuple:
        """A backward that reached only some outputs: as eager, only they contribute -- the
        gradient program of those outputs alone, evaluated on tensors (no zero cotangent times
        an infinite partial, and a leaf reached only through the others gets no gradient)."""
        entry = self._entry
        live = [k for k, g in enumerate(cts) if g is not None]
        joint, zero = entry.partial_joint(tuple(entry.seeds[k] for k in live))
        results = evaluate(joint, *self._inputs, *[cts[k] for k in live])[entry.n_outputs:]
        return tuple(None if z else g for g, z in zip(results, zero))

    def _differentiable(self, cts: list) -> tuple:
        entry = self._entry
        cts = [Tensor._make(np.zeros(shape, dt)) if g is None else g
               for g, (shape, dt) in zip(cts, entry._zero_cts)]
        results = evaluate(entry.joint, *self._inputs, *cts)[entry.n_outputs:]
        return tuple(None if z else g for g, z in zip(results, entry.zero_grads))

    def __del__(self) -> None:
        # A loss dropped without a backward (an evaluation loop without no_grad): stop fusing,
        # which would compute gradients nobody asks for.
        if not getattr(self, "_applied", True):
            try:
                self._entry.fused_node(False, -1 if self._counted else 0)
            except Exception:  # noqa: BLE001  (interpreter shutdown: nothing left to decide)
                pass

    def release(self) -> None:
        self._residuals = None
        if self._gave_unit:  # the kept gradients went out and cannot be asked for again
            self.stealable = (True,) * len(self._unit)
        self._unit = None


__all__ = ["CompiledFunctionBackward"]
