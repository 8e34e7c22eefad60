"""Reverse-mode AD of IR programs (``vjp``) and the forward/backward split (``partition``)."""
from .partition import Partition, partition
from .evaluate import evaluate
from .reverse import vjp

__all__ = ["vjp", "partition", "Partition", "evaluate"]
