"""What is particular to a *loss* (one differentiable output with one element, floating point):
recognizing one, which inputs its gradients read, and its forward program compiled lazily.

See :mod:`gradgen.ad.compiled` for how a loss's calls run (plain or fused).
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

from ..ir.core import Program, Var
from ..ir.interpreter import run as interpret
from .partition import ancestors

if TYPE_CHECKING:
    from .compiled import CompiledEntry

Runner = Callable[..., list]


class LazyForward:
    """The forward runner of a loss whose forward program is compiled only when a call first
    needs it: most calls of a loss are fused (the joint program gives the loss), so a first
    compile builds the joint program alone. Until built it says no output is known to be made
    by the call (``owned``), so calls check the output as for any executable."""

    owned = (False,)

    def __init__(self, entry: "CompiledEntry") -> None:
        self.entry = entry

    def __call__(self, *arrays: Any) -> list:
        entry = self.entry
        run = entry.run_forward if entry.run_forward is not self else self.build()
        return run(*arrays)

    def build(self) -> Runner:
        """Compile the forward (``lower_forward``) and make it the entry's ``run_forward``;
        should that fail, the IR interpreter runs it (correct, and slower), with a warning
        saying why -- or, under ``compile(fullgraph=True)``, the failure is raised."""
        entry = self.entry
        try:
            if entry._lower_forward is None:
                raise RuntimeError("this entry was given no way to build it")
            entry.forward_native = entry._lower_forward(entry.forward)
            run = entry.forward_native.executables[0].callable()
        except Exception as exc:  # any failure: the interpreter gives the loss
            if entry.strict:
                raise
            warnings.warn(f"gradgen.compile: the loss-only forward could not be compiled "
                          f"({type(exc).__name__}: {exc}); calls that need the loss alone run "
                          "its IR in the interpreter", RuntimeWarning, stacklevel=4)
            forward = entry.forward
            run = lambda *arrays: interpret(forward, *arrays)  # noqa: E731
        entry.run_forward = run
        return run


def is_scalar_loss(program: Program, seeds: tuple[int, ...]) -> bool:
    """Whether ``program`` returns one differentiable value with one element (a loss): its
    gradients are the fused program's times the cotangent, a number."""
    if len(program.outputs) != 1 or seeds != (0,):
        return False
    aval = program.outputs[0].aval
    return aval.size == 1 and aval.dtype.is_floating_point


def read_by_gradients(joint: Program) -> tuple[int, ...]:
    """The inputs of gradient program ``joint`` whose values its gradients depend on: written
    in place before a backward, they make it raise (as a saved tensor does in eager mode)."""
    n_in, n_out = joint.meta["n_primal_inputs"], joint.meta["n_primal_outputs"]
    need = ancestors({a for a in joint.outputs[n_out:] if type(a) is Var},
                      {e.out: e for e in joint.eqns})
    return tuple(i for i, v in enumerate(joint.inputs[:n_in]) if v in need)


__all__ = ["LazyForward", "is_scalar_loss", "read_by_gradients"]
