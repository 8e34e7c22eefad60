"""Shared pytest setup for gradgen's tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cc: needs a C compiler")
    # numpy's floating-point error state is left at its defaults on purpose: tests that care
    # about overflow/invalid warnings say so locally with np.errstate.
