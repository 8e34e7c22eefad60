"""The sha256 of a tree of files, remembered across processes by the files' identities.

Cache keys hold the hash of gradgen's own sources and of its templates, so a change to either
can never load a stale kernel. Reading and hashing ~100 files costs a few milliseconds, a
tenth of a warm start's budget; a memo file beside the cache keeps the hash together with each
file's (size, mtime, ctime, inode). A later process that finds every file with the same
identity uses the memo's hash after a few ``stat`` calls. Any write to a file changes its
ctime (which no user call can set back), so a changed file never matches. A file changed within
the filesystem's timestamp granularity of the memo being written could: the memo is written
only when every file is at least :data:`SETTLED` seconds old (git's "racy" rule); until then
each process hashes the contents.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from .cachedir import write_quietly

SETTLED = 2.0  # seconds: files younger than this are hashed, not memoized


def tree_hash(folder: str, suffix: str, memo: Path | None) -> str:
    """sha256 over the relative names and contents of the files under ``folder`` whose names
    end with ``suffix`` (``__pycache__`` skipped); ``memo`` is the memo file (None: none)."""
    files = sorted(_files(folder, "", suffix))
    idents = [[rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino] for rel, st in files]
    known = _read(memo)
    if known is not None and known.get("files") == idents and isinstance(known.get("sha256"), str):
        return known["sha256"]
    h = hashlib.sha256()
    for rel, _ in files:
        with open(os.path.join(folder, rel), "rb") as f:
            data = f.read()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    digest = h.hexdigest()
    newest = max((st.st_ctime_ns for _, st in files), default=0)
    if memo is not None and newest < time.time_ns() - SETTLED * 1e9:
        _write(memo, {"files": idents, "sha256": digest})
    return digest


def _files(folder: str, prefix: str, suffix: str) -> list[tuple[str, os.stat_result]]:
    found = []
    with os.scandir(folder) as entries:  # (pathlib's rglob costs twice the whole hash)
        for e in entries:
            if e.is_dir(follow_symlinks=False) and e.name != "__pycache__":
                found += _files(e.path, f"{prefix}{e.name}/", suffix)
            elif e.name.endswith(suffix):
                found.append((prefix + e.name, e.stat()))
    return found


def _read(memo: Path | None) -> dict | None:
    if memo is None:
        return None
    try:
        data = json.loads(memo.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(memo: Path, data: dict) -> None:
    """Publish ``data`` by rename; best effort (a read-only cache just hashes every time)."""
    write_quietly(memo, json.dumps(data).encode())


__all__ = ["tree_hash", "SETTLED"]
