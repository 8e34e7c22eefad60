"""A tensor's shape type and its device: both print as PyTorch's do."""
from __future__ import annotations

from typing import Any


class Size(tuple):
    """A tensor's shape: a tuple that prints as ``torch.Size([2, 2])``."""

    def __repr__(self) -> str:
        return f"torch.Size([{', '.join(map(str, self))}])"

    __str__ = __repr__

    # Slices, sums and repeats of a Size are Sizes (x.shape[1:] prints as torch.Size([...])).
    def __getitem__(self, index: Any) -> Any:
        r = tuple.__getitem__(self, index)
        return Size(r) if isinstance(index, slice) else r

    def __add__(self, other: Any) -> "Size":
        if not isinstance(other, tuple):
            raise TypeError(f"can only concatenate tuple (not {type(other).__name__}) to torch.Size")
        return Size(tuple.__add__(self, other))

    def __radd__(self, other: Any) -> "Size":
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(other, self))

    def __mul__(self, n: Any) -> "Size":
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


class device:
    """The device a tensor lives on; gradgen tensors live on the CPU."""

    type = "cpu"
    index = None

    def __init__(self, spec: Any = "cpu") -> None:
        if str(spec).split(":")[0] != "cpu":
            raise RuntimeError(f"gradgen runs on the CPU only; got device {spec!r}")

    def __repr__(self) -> str:
        return "device(type='cpu')"

    def __str__(self) -> str:
        return "cpu"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, device) or other == "cpu"

    def __hash__(self) -> int:
        return hash("cpu")


_CPU = device()
