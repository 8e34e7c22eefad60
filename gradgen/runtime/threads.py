"""How many threads compiled kernels use: ``gradgen.set_num_threads(n)`` / ``get_num_threads()``.

The default is the number of CPUs this process may run on (``os.sched_getaffinity``).
The setting is part of every kernel cache key and of each compiled function's guards (a
build for one thread has no threads at all), so changing it makes the next compiled call
load or build the matching binary. Each built module runs its parallel loops on its own
small thread pool (``templates/threadpool.c.jinja``), sized when the module is loaded.
"""
from __future__ import annotations

import os

_threads: list[int] = []


def _default() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux: all CPUs
        return max(1, os.cpu_count() or 1)


def get_num_threads() -> int:
    """The number of threads compiled kernels run on.

    >>> import gradgen as gg
    >>> gg.get_num_threads() >= 1
    True
    """
    if not _threads:
        _threads.append(_default())
    return _threads[0]


def set_num_threads(n: int) -> None:
    """Run compiled kernels on ``n`` threads (1 = no threads at all).

    >>> import gradgen as gg
    >>> old = gg.get_num_threads(); gg.set_num_threads(1); gg.get_num_threads()
    1
    >>> gg.set_num_threads(old)
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads(): argument 'n' must be int, not {type(n).__name__}")
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, got {n}")
    if _threads:
        _threads[0] = n
    else:
        _threads.append(n)


__all__ = ["get_num_threads", "set_num_threads"]
