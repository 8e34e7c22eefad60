"""The C backend's runtime: find and run the C compiler, load built kernels with cffi, and keep
them in a content-addressed disk cache.

Example:
    >>> from gradgen.runtime import get_or_build
    >>> mod = get_or_build(c_source, "void k(float *x, int64_t n);", threads=1)  # doctest: +SKIP
    >>> mod.k(mod.ptr_of(x), x.size)  # doctest: +SKIP
"""
from .cache import CacheEvent, KernelCache, default_cache, get_or_build
from .cachedir import CacheWarning
from .compiler import CompileError, CompilerInfo, CompilerNotFound, find_compiler
from .loader import LoadedModule, LoadError, load

__all__ = [
    "CacheEvent", "CacheWarning", "CompileError", "CompilerInfo", "CompilerNotFound",
    "KernelCache", "LoadError", "LoadedModule", "default_cache", "find_compiler",
    "get_or_build", "load",
]
