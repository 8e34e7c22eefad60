"""Flattening nested Python structures of tensors (tuples, lists, dicts) and rebuilding them.

A tree description is plain data: ``("leaf", i)`` is the i-th flattened tensor,
``("const", value)`` a non-tensor value kept as is, ``("seq", type, children)``
a tuple, list or namedtuple, ``("dict", type, keys, children)`` a dict.

>>> from gradgen.tensor import Tensor
>>> import numpy as np
>>> a, b = Tensor._make(np.zeros(1)), Tensor._make(np.ones(1))
>>> leaves, tree = flatten({"loss": a, "parts": (b, 3)})
>>> len(leaves), tree
(2, ('dict', <class 'dict'>, ('loss', 'parts'), (('leaf', 0), ('seq', <class 'tuple'>, (('leaf', 1), ('const', 3))))))
>>> unflatten(tree, ["A", "B"])
{'loss': 'A', 'parts': ('B', 3)}
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

Tree = tuple


def _default_is_leaf(x: Any) -> bool:
    from ..tensor import Tensor  # noqa: PLC0415
    return isinstance(x, Tensor)


def _is_size(x: Any) -> bool:
    from ..tensor import Size  # noqa: PLC0415
    return isinstance(x, Size)


def flatten(obj: Any, is_leaf: Callable[[Any], bool] = _default_is_leaf) -> tuple[list, Tree]:
    """``obj`` as (leaves in order, tree description)."""
    leaves: list = []
    return leaves, _flatten(obj, leaves, is_leaf)


def _flatten(obj: Any, leaves: list, is_leaf: Callable[[Any], bool]) -> Tree:
    if is_leaf(obj):
        leaves.append(obj)
        return ("leaf", len(leaves) - 1)
    if isinstance(obj, (tuple, list)) and not _is_size(obj):  # a Size is a value, kept whole
        return ("seq", type(obj), tuple(_flatten(x, leaves, is_leaf) for x in obj))
    if isinstance(obj, dict):
        keys = tuple(obj)
        return ("dict", type(obj), keys, tuple(_flatten(obj[k], leaves, is_leaf) for k in keys))
    return ("const", obj)


def unflatten(tree: Tree, leaves: Sequence[Any]) -> Any:
    """Rebuild the structure ``tree`` describes, with ``leaves`` in place of its tensors."""
    kind = tree[0]
    if kind == "leaf":
        return leaves[tree[1]]
    if kind == "const":
        return tree[1]
    if kind == "seq":
        cls, items = tree[1], [unflatten(t, leaves) for t in tree[2]]
        if cls is tuple or cls is list:
            return cls(items)
        if hasattr(cls, "_fields"):  # namedtuple
            return cls(*items)
        return cls(items)
    cls, keys, children = tree[1], tree[2], tree[3]
    return cls((k, unflatten(c, leaves)) for k, c in zip(keys, children))


def leaf_count(tree: Tree) -> int:
    """How many leaves ``tree`` holds."""
    kind = tree[0]
    if kind == "leaf":
        return 1
    if kind == "const":
        return 0
    return sum(leaf_count(t) for t in tree[-1])


def same_tree(a: Tree, b: Tree) -> bool:
    """Whether two descriptions have one structure and equal constants (arrays by identity)."""
    if a[0] != b[0] or len(a) != len(b):
        return False
    if a[0] == "leaf":
        return a[1] == b[1]
    if a[0] == "const":
        if a[1] is b[1]:
            return True
        try:
            return type(a[1]) is type(b[1]) and bool(a[1] == b[1])
        except (ValueError, TypeError):  # arrays and other values without a plain truth value
            return False
    if a[1] is not b[1] or (a[0] == "dict" and a[2] != b[2]):
        return False
    return len(a[-1]) == len(b[-1]) and all(same_tree(x, y) for x, y in zip(a[-1], b[-1]))
