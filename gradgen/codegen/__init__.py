"""The C backend's code generator: IR program -> kernel schedule -> C text (Jinja templates).

>>> from gradgen.dtypes import float64
>>> from gradgen.ir.builder import Builder
>>> from gradgen.codegen import build_schedule, render_module
>>> b = Builder(); x = b.input((4,), float64)
>>> sched = build_schedule(b.build([b.add("reduce_sum", b.add("tanh", x), axes=(0,))]))
>>> [k.name for k in sched.kernels]
['kernel_0']
>>> "void kernel_0(" in render_module([sched], cache_key="demo").source
True
"""
from importlib import import_module
from typing import Any

# Each name loads its module on first use. A process whose lowered programs come from the
# cache (gradgen.runtime.lowering) needs only the data model (steps): it never schedules or
# renders, so it never imports the scheduler, the renderer or Jinja.
_WHERE = {"plan_memory": "memory", "Module": "render", "render_module": "render",
          "Buffer": "steps", "HostOp": "steps", "Kernel": "steps", "Schedule": "steps",
          "View": "steps", "build_schedule": "schedule"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_schedule", "render_module", "Schedule", "Kernel", "HostOp", "Buffer", "View",
           "Module", "plan_memory"]
