"""gradgen.nn: neural-network building blocks (functional API)."""
from . import functional  # noqa: F401
