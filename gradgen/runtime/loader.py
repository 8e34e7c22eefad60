"""Loading a built shared object with cffi in ABI mode and calling its kernels with numpy arrays.

Why ABI mode (``ffi.cdef`` + ``ffi.dlopen``) rather than API mode (``ffi.set_source`` +
``ffi.compile``):

- Compile latency. API mode builds a CPython extension through setuptools: a generated wrapper C
  file, Python headers, distutils machinery -- about 0.5 s for a small module on this machine,
  against 0.05 s for ``cc -O3 -shared`` on the kernel source alone. The cold-compile budget is
  0.5 s per workload, so API mode would spend all of it before our own code is compiled.
- Per-call overhead is comparable, though not equal. Measured on this machine (2-core EPYC
  Zen 4, cffi 2.0, CPython 3.11) for a 4-argument kernel
  ``void k(const float*, const float*, float*, int64_t)`` on 2x2 float32 arrays:

      argument passing, per call                        ABI mode   API mode
      pointers precomputed once (LoadedModule.pointer)   0.71 µs    0.29 µs
      ffi.from_buffer("float[]", a) for each array       1.96 µs    0.97 µs
      ffi.cast("float *", a.ctypes.data) for each array  6.4 µs     --
      (np.add(a, b, out=c), for scale: 0.49 µs)

  ABI mode's libffi dispatch costs about 0.4 µs more per call; API mode costs 0.5 s more per
  build (0.58 s against 0.06 s). With precomputed pointers a compiled call of a few kernels stays
  within a few µs, so latency wins.
- ABI mode also needs no Python headers and produces a plain shared object that any process can
  ``dlopen`` from the disk cache, independent of the interpreter that built it.

The callers that matter (compiled functions) keep their workspace and parameter buffers alive, so
their pointers are converted once and a kernel call is just ``fn(p0, p1, p2, n)``.

Out-of-line ABI mode for loading: parsing the declarations (``ffi.cdef``, pycparser) costs about
45 ms per process. So the cache parses them once, when it builds an entry, and keeps the small
Python module cffi emits for them (:func:`ffi_module_text`: ``set_source(name, None)``, the
declarations as pre-parsed type tables); loading with it (``load(..., ffi_module=text)``) needs
only ``_cffi_backend``, and the kernels are still opened with ``ffi.dlopen`` and called the same way.
"""
from __future__ import annotations

import io

from pathlib import Path
from typing import Any, Callable

import numpy as np

_POINTER = {
    np.dtype(np.float32): "float *",
    np.dtype(np.float64): "double *",
    np.dtype(np.int64): "int64_t *",
    np.dtype(np.int32): "int32_t *",
    np.dtype(np.uint8): "uint8_t *",
    np.dtype(np.bool_): "uint8_t *",  # kernels take booleans as bytes (see clower.buffer_ctype)
}
_ARRAY = {dt: ct.replace(" *", "[]") for dt, ct in _POINTER.items()}


# Every loaded library, kept for the life of the process. cffi closes a library when its object
# dies, but a module's code may still run after that: the detached worker threads of its thread
# pool (templates/threadpool.c.jinja) and its pthread_atfork handler. Unmapping it under them
# crashes the process (seen as segfaults in test teardown), so kernel modules are never closed.
_RESIDENT: list[Any] = []


class LoadError(OSError):
    """A shared object could not be loaded, or lacks a function its declarations name."""


class LoadedModule:
    """A shared object opened with cffi; each declared function is an attribute of ``lib``.

    All declared functions are looked up at load time, so a missing symbol fails here (and a
    broken cache entry is detected) rather than on the first call, and calls skip ``dlsym``.

    Example:
        >>> mod = load("kernel.so", "void add(const float *x, float *y, int64_t n);")  # doctest: +SKIP
        >>> mod.functions["add"](mod.ptr_of(x), mod.ptr_of(y), x.size)  # doctest: +SKIP
    """

    def __init__(self, path: Path, declarations: str, ffi_module: str | None = None) -> None:
        self.path = Path(path)
        self.declarations = declarations
        self.key: str | None = None          # set by the cache
        self.cache_path: Path | None = None  # the cache entry directory, set by the cache
        try:
            self.ffi = _parsed(declarations) if ffi_module is None else _out_of_line(ffi_module)
            self.lib = self.ffi.dlopen(str(self.path))
            self.functions: dict[str, Callable[..., Any]] = {
                name: getattr(self.lib, name) for name in dir(self.lib)
            }
            _RESIDENT.append(self.lib)
        except Exception as exc:  # OSError, a missing symbol, bad declarations or ffi module
            raise LoadError(f"cannot load {self.path}: {exc}") from None
        self._keep: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            return self.__dict__["functions"][name]
        except KeyError:
            raise AttributeError(f"module {self.path.name} has no function {name!r}") from None

    def returns_failure(self, name: str) -> bool:
        """Whether function ``name`` returns a failure flag (a kernel whose row buffers are
        allocated on the heap: nonzero when they could not be) rather than nothing."""
        return self.ffi.typeof(self.functions[name]).result.kind != "void"

    def ptr_of(self, arr: np.ndarray) -> Any:
        """A typed pointer to ``arr``'s data for one call (``ffi.from_buffer``; C-contiguous only).

        The pointer keeps ``arr`` alive as long as it lives itself.
        """
        return self.ffi.from_buffer(_ARRAY[arr.dtype], arr)

    def pointer(self, arr: np.ndarray) -> Any:
        """A typed pointer to a *persistent* buffer, converted once and reused for every call.

        ``arr`` is kept alive by this module, so the pointer stays valid while the module lives.
        """
        if not arr.flags.c_contiguous:
            raise ValueError("pointer() needs a C-contiguous array")
        self._keep.append(arr)
        return self.ffi.cast(_POINTER[arr.dtype], arr.ctypes.data)


def load(path: Path | str, declarations: str, ffi_module: str | None = None) -> LoadedModule:
    """Open the shared object at ``path`` in cffi's ABI mode with the C ``declarations``.

    ``ffi_module``, the text :func:`ffi_module_text` made of the same declarations, spares
    parsing them again (out-of-line ABI mode).

    Raises:
        LoadError: the file is not a loadable shared object or lacks a declared function.
    """
    return LoadedModule(Path(path), declarations, ffi_module)


FFI_MODULE_NAME = "_gradgen_kernels"


def ffi_module_text(declarations: str) -> str:
    """The Python source of cffi's out-of-line ABI-mode module for ``declarations``.

    Raises:
        cffi.CDefError: the declarations do not parse.
    """
    import cffi  # noqa: PLC0415  (pycparser: only when an entry is built)
    from cffi.recompiler import make_py_source  # noqa: PLC0415  (emit_python_code, quietly)
    ffi = cffi.FFI()
    ffi.cdef(declarations)
    ffi.set_source(FFI_MODULE_NAME, None)
    out = io.StringIO()
    make_py_source(ffi, FFI_MODULE_NAME, out)
    return out.getvalue()


def _parsed(declarations: str) -> Any:
    import cffi  # noqa: PLC0415
    ffi = cffi.FFI()
    ffi.cdef(declarations)
    return ffi


def _out_of_line(text: str) -> Any:
    """The ``ffi`` object the emitted module defines (it only calls ``_cffi_backend.FFI``).

    The text comes from a verified cache entry in a private directory, as the shared object
    itself does.
    """
    namespace: dict[str, Any] = {"__name__": FFI_MODULE_NAME}
    exec(compile(text, f"<{FFI_MODULE_NAME}>", "exec"), namespace)  # noqa: S102
    return namespace["ffi"]
