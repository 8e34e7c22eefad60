"""Shared pytest setup for gradgen's tests."""

from __future__ import annotations

import os
import tempfile

import pytest

from gradgen.runtime.compiler import CompilerNotFound, resolve_compiler_argv


def have_cc() -> bool:
    """Whether a C compiler is found (``$CC``, cc or gcc)."""
    try:
        resolve_compiler_argv()
    except CompilerNotFound:
        return False
    return True


# Tests that build C themselves: skipped (not failed) on a machine without a compiler.
needs_cc = pytest.mark.skipif(not have_cc(), reason="no C compiler found")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cc: needs a C compiler")
    # Compiled kernels go to a private per-run cache, never the user's ~/.cache/gradgen.
    # Tests that need their own cache set GRADGEN_CACHE_DIR themselves (monkeypatch).
    if "GRADGEN_CACHE_DIR" not in os.environ:
        os.environ["GRADGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="gradgen-test-cache-")
    # numpy's floating-point error state is left at its defaults on purpose: tests that care
    # about overflow/invalid warnings say so locally with np.errstate.
