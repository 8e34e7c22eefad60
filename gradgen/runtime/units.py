"""A generated C module as several translation units in one text.

A large module compiles faster as two translation units built side by side (one gcc per core,
then one link) than as one. The renderer (:func:`gradgen.codegen.render.render_module`) then
emits every unit, each opened by a marker line, in one text: that text is what the cache key
hashes, what ``source.c`` of a cache entry holds and what ``inspect()`` shows, so nothing
downstream of the renderer needs to know; only :func:`gradgen.runtime.compiler.build_shared`
cuts it apart again. A text whose first line is not a marker is one unit, as before.

The marker is a whole line of fixed form; generated comments never start a line with ``/* ====``
(their lines start with `` *``), and no user-supplied text reaches the C.
"""
from __future__ import annotations

import re
from typing import Sequence

_MARK = "/* ==== gradgen translation unit {index} of {count}: {name} ==== */"
_MARK_RE = re.compile(r"^/\* ==== gradgen translation unit (\d+) of (\d+): (unit\d+\.c) ==== \*/\n",
                      re.MULTILINE)


def unit_name(index: int) -> str:
    """The file name of unit ``index`` (0-based) inside a build directory."""
    return f"unit{index}.c"


def join_units(texts: Sequence[str]) -> str:
    """One text holding the translation units ``texts``, each after its marker line."""
    if len(texts) < 2:
        raise ValueError("join_units: a module of several units needs at least two")
    return "".join(
        _MARK.format(index=i + 1, count=len(texts), name=unit_name(i)) + "\n" + text
        for i, text in enumerate(texts)
    )


def split_units(source: str) -> list[tuple[str, str]] | None:
    """``[(file name, text)]`` of the units in ``source``; None when it is a single unit.

    Raises:
        ValueError: the markers are not numbered 1..n in order (a damaged or hand-edited text).
    """
    if not source.startswith("/* ==== gradgen translation unit "):
        return None
    marks = list(_MARK_RE.finditer(source))
    if not marks or marks[0].start() != 0:
        raise ValueError("malformed translation-unit marker on the first line")
    count = len(marks)
    for i, m in enumerate(marks):
        if (int(m.group(1)), int(m.group(2)), m.group(3)) != (i + 1, count, unit_name(i)):
            raise ValueError(f"translation-unit marker {i + 1} of {count} is out of order")
    ends = [m.start() for m in marks[1:]] + [len(source)]
    return [(m.group(3), source[m.end():end]) for m, end in zip(marks, ends)]


__all__ = ["join_units", "split_units", "unit_name"]
