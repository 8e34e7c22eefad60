"""The primitive registry and every primitive (importing this package registers them all)."""
from . import registry
from .registry import PRIMITIVES, Aval, Primitive, aval_of, defprim, get, register
from . import elementwise, shape, reduce, indexing, linalg  # noqa: F401  (registration side effects)

__all__ = ["PRIMITIVES", "Aval", "Primitive", "aval_of", "defprim", "get", "register", "registry"]
