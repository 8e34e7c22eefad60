"""Locations of data files shipped inside the gradgen package."""

from __future__ import annotations

from importlib.resources import files

try:
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10: the abc module moved to importlib.resources in 3.11
    from importlib.abc import Traversable


def templates_dir() -> Traversable:
    """Return the directory of gradgen's Jinja C templates (the resource package ``gradgen.templates``).

    The top-level ``templates/`` folder is mapped onto ``gradgen.templates`` at install time,
    so this works the same for a wheel install and an editable install.

    Example:
        >>> from gradgen._resources import templates_dir
        >>> templates_dir().joinpath("module_header.c.jinja").is_file()
        True
    """
    return files("gradgen.templates")
