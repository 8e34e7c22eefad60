"""Compiled Jinja templates kept in the cache directory, so a process does not compile them again.

Compiling the C templates costs about 100 ms per process, paid on the first cold compile of
every new process. Jinja can keep the compiled bytecode of each template (a marshalled code
object) in a *bytecode cache*; this one lives in ``<cache root>/jinja`` -- the same private,
verified-safe directory as the kernels, since loading bytecode runs it. Each file is the
sha256 of its payload followed by the payload Jinja wrote, published by rename; a file that is
missing, truncated or corrupt is ignored (the template compiles as before and the file is
written again), and a directory that cannot be written only means templates compile per
process. Jinja itself rejects bytecode of another template source or another Python version.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2

from .cache import default_cache
from .cachedir import write_quietly

_DIGEST = 32  # bytes of sha256


class TemplateBytecodeCache(jinja2.BytecodeCache):
    """Jinja's bytecode of each template in ``directory``, one checksummed file per template."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            pass  # a read-only cache: every load misses, every dump is dropped

    def _path(self, bucket: Any) -> Path:
        return self.directory / f"{bucket.key}.bc"

    def load_bytecode(self, bucket: Any) -> None:
        try:
            data = self._path(bucket).read_bytes()
        except OSError:
            return
        payload = data[_DIGEST:]
        if len(data) > _DIGEST and hashlib.sha256(payload).digest() == data[:_DIGEST]:
            bucket.bytecode_from_string(payload)

    def dump_bytecode(self, bucket: Any) -> None:
        payload = bucket.bytecode_to_string()
        write_quietly(self._path(bucket), hashlib.sha256(payload).digest() + payload)


_caches: dict[Path, TemplateBytecodeCache] = {}


def use_bytecode_cache() -> None:
    """Give the renderer's Jinja environment the bytecode cache of the current cache root."""
    from ..codegen import render  # noqa: PLC0415  (only when rendering)
    root = default_cache().root
    cache = _caches.get(root)
    if cache is None:
        cache = _caches[root] = TemplateBytecodeCache(root / "jinja")
    render.environment().bytecode_cache = cache


__all__ = ["TemplateBytecodeCache", "use_bytecode_cache"]
