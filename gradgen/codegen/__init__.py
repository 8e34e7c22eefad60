"""The C backend's code generator: IR program -> kernel schedule -> C text (Jinja templates).

>>> from gradgen.dtypes import float64
>>> from gradgen.ir.builder import Builder
>>> b = Builder(); x = b.input((4,), float64)
>>> sched = build_schedule(b.build([b.add("reduce_sum", b.add("tanh", x), axes=(0,))]))
>>> [k.name for k in sched.kernels]
['kernel_0']
>>> "void kernel_0(" in render_module([sched], cache_key="demo").source
True
"""
from .memory import plan_memory
from .render import Module, render_module
from .schedule import Buffer, HostOp, Kernel, Schedule, View, build_schedule

__all__ = ["build_schedule", "render_module", "Schedule", "Kernel", "HostOp", "Buffer", "View",
           "Module", "plan_memory"]
