"""Small, pure, named IR -> IR passes and the pipeline that runs them."""
from .cse import cse
from .dce import dce
from .fold import fold
from .pipeline import PASSES, optimize
from .simplify import simplify

__all__ = ["PASSES", "optimize", "cse", "dce", "fold", "simplify"]
