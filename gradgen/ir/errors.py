"""The error raised for malformed IR programs (checker, parser, interpreter)."""
from __future__ import annotations


class IRError(RuntimeError):
    """An IR program is malformed; the message names the offending equation or line."""
