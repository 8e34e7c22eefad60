"""Where the kernel cache lives, and refusing a directory whose contents others could plant.

Loading a shared object runs its code, so the cache root must be private to the user: a
symlink, a directory owned by another user, or one writable by group or others is refused with
a :class:`CacheWarning`, and a private temporary directory (removed at exit) is used instead.
"""
from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
import warnings
from pathlib import Path


class CacheWarning(UserWarning):
    """The cache directory was refused or unwritable, or an entry was broken and rebuilt."""


def default_root() -> Path:
    """``GRADGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/gradgen``, else ``~/.cache/gradgen``."""
    explicit = os.environ.get("GRADGEN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "gradgen"


def safe_root(root: Path) -> Path:
    """``root`` created private if missing; refused for a private temp dir if it is unsafe."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        if not root.is_dir():
            return _refuse(root, f"it cannot be created ({exc.strerror})")
    st = os.lstat(root)
    if stat.S_ISLNK(st.st_mode):
        return _refuse(root, "it is a symlink")
    if not stat.S_ISDIR(st.st_mode):
        return _refuse(root, "it is not a directory")
    if st.st_uid != os.getuid():
        return _refuse(root, f"it is owned by another user (uid {st.st_uid})")
    if st.st_mode & 0o022:
        mode = stat.S_IMODE(st.st_mode)
        return _refuse(root, f"it is writable by group or others (mode {mode:o})")
    return root


def _refuse(root: Path, why: str) -> Path:
    temp = private_tempdir()
    warnings.warn(f"gradgen: refusing cache directory {root}: {why}; loading a cached shared "
                  f"object runs its code. Using the private temporary cache {temp} instead",
                  CacheWarning, stacklevel=4)
    return temp


def private_tempdir() -> Path:
    """A new directory only this user can use, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="gradgen-cache-"))  # mode 0o700, owned by us
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def write_quietly(path: Path, data: bytes) -> bool:
    """Publish ``data`` as ``path`` by rename (readers see the old file or the new one, never a
    part), creating its folder private; best effort: False when it could not (a read-only
    cache), leaving no temporary file behind."""
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


__all__ = ["CacheWarning", "default_root", "safe_root", "private_tempdir", "write_quietly"]
