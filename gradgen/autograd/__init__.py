"""Reverse-mode automatic differentiation on a recorded tape (``torch.autograd``'s names)."""
from .functional_api import backward, grad
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .node import Node
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .function import Function, FunctionCtx, once_differentiable

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "Node",
           "gradcheck", "gradgradcheck", "GradcheckError", "Function", "FunctionCtx",
           "once_differentiable"]
