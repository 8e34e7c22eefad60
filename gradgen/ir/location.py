"""The user's source location: the innermost stack frame outside gradgen (``train.py:14``).

Only the file's base name is kept, so the printed IR is the same wherever the
project lives (snapshot files stay valid across machines and processes).
"""
from __future__ import annotations

import os
import sys

import numpy as np

_GRADGEN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_NUMPY = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
# Standard-library helpers that sit between user code and gradgen (decorators, context managers).
_HELPERS = ("contextlib.py", "functools.py")
_internal: dict[str, bool] = {}


def _is_internal(filename: str) -> bool:
    if filename.startswith(_GRADGEN) or filename.startswith(_NUMPY):
        return True
    return os.path.basename(filename) in _HELPERS and "python3" in filename


def user_frames(frame):
    """The frames outside gradgen (and numpy) from ``frame`` outwards."""
    f = frame
    while f is not None:
        name = f.f_code.co_filename
        internal = _internal.get(name)
        if internal is None:
            internal = _internal[name] = _is_internal(os.path.abspath(name))
        if not internal:
            yield f
        f = f.f_back


def user_location(frame=None) -> str | None:
    """``"file.py:line"`` of the innermost frame outside gradgen (and numpy), or None."""
    for f in user_frames(frame if frame is not None else sys._getframe(1)):
        return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"
    return None
