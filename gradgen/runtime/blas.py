"""Finding, at run time, the BLAS numpy itself uses, for the generated modules' large matmuls.

Generated modules link no BLAS: they export ``gg_set_blas(sgemm, dgemm, ilp64)`` and the
loader hands them the addresses of CBLAS ``sgemm``/``dgemm`` found here (or NULL: the module
then runs its own loops, correct at every size). So the build needs no BLAS, headers or link
flags, and the cache key does not depend on one.

Where: the shared library providing numpy's BLAS is already loaded in the process (numpy's
``_multiarray_umath`` links it), so it is looked up among the process's loaded objects
(``/proc/self/maps``), else in numpy's ``numpy.libs`` directory (wheels bundle OpenBLAS
there), and opened with ``RTLD_NOLOAD``: the same copy numpy uses, never a second one (which
would start threads of its own). Symbols, by preference:

- ``scipy_cblas_sgemm64_`` / ``scipy_cblas_dgemm64_``: numpy >= 2 wheels (scipy-openblas64,
  ILP64: 64-bit integer arguments);
- ``cblas_sgemm64_``: other ILP64 OpenBLAS builds; ``scipy_cblas_sgemm`` / ``cblas_sgemm``:
  LP64 (32-bit integer arguments).

Anything else (Accelerate, MKL under other names) is not found: :func:`describe` says so and
large matmuls run a plain loop. ``GRADGEN_BLAS=0`` turns the lookup off.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

# (sgemm, dgemm, ILP64) in order of preference.
SYMBOLS = (
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True),
    ("cblas_sgemm64_", "cblas_dgemm64_", True),
    ("scipy_cblas_sgemm", "scipy_cblas_dgemm", False),
    ("cblas_sgemm", "cblas_dgemm", False),
)


@dataclass(frozen=True)
class Blas:
    """A CBLAS found in the process: its library, gemm symbols and addresses."""

    library: str
    sgemm_symbol: str
    dgemm_symbol: str
    ilp64: bool
    sgemm: int  # function addresses
    dgemm: int


_found: list = []  # [Blas | None, reason] once looked up


def find() -> Blas | None:
    """The BLAS numpy uses, or None (see :func:`describe` for why). Looked up once.

    Example:
        >>> b = find()
        >>> b is None or b.sgemm != 0
        True
    """
    if not _found:
        _found.extend(_lookup())
    return _found[0]


def describe() -> str:
    """One line: which BLAS large matmuls call, or why none (they then run a plain loop)."""
    b = find()
    if b is None:
        return f"no BLAS: {_found[1]}; large matmuls run a plain loop"
    width = "ILP64" if b.ilp64 else "LP64"
    return f"{b.sgemm_symbol}/{b.dgemm_symbol} ({width}) from {b.library}"


def install(module) -> None:
    """Hand ``module`` (a loaded module exporting ``gg_set_blas``) the BLAS, or NULL."""
    set_blas = module.functions.get("gg_set_blas")
    if set_blas is None:
        return
    b = find()
    ffi = module.ffi
    if b is None:
        set_blas(ffi.NULL, ffi.NULL, 0)
    else:
        set_blas(ffi.cast("void *", b.sgemm), ffi.cast("void *", b.dgemm), int(b.ilp64))


def _lookup() -> tuple[Blas | None, str]:
    if os.environ.get("GRADGEN_BLAS", "1").strip().lower() in ("0", "off", "no", "false"):
        return None, "turned off by GRADGEN_BLAS"
    candidates = _candidates()
    if not candidates:
        return None, "no BLAS library among the loaded objects or in numpy.libs"
    for path in candidates:
        try:
            lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)
        except OSError:
            continue
        for s, d, ilp64 in SYMBOLS:
            fs, fd = getattr(lib, s, None), getattr(lib, d, None)
            if fs is not None and fd is not None:
                address = ctypes.cast(fs, ctypes.c_void_p).value
                daddress = ctypes.cast(fd, ctypes.c_void_p).value
                return Blas(path, s, d, ilp64, address, daddress), ""
    return None, f"no CBLAS sgemm/dgemm symbol in {', '.join(candidates)}"


def _candidates() -> list[str]:
    """Loaded shared objects that look like a BLAS, then numpy's bundled ones."""
    import numpy  # noqa: PLC0415

    out: list[str] = []
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        maps = []
    for line in maps:
        path = line.split(maxsplit=5)[-1] if len(line.split()) >= 6 else ""
        if "blas" in Path(path).name.lower() and path not in out:
            out.append(path)
    libs = Path(numpy.__file__).parent.parent / "numpy.libs"
    if libs.is_dir():
        out += [str(p) for p in sorted(libs.glob("*blas*")) if str(p) not in out]
    return out


__all__ = ["Blas", "find", "describe", "install", "SYMBOLS"]
