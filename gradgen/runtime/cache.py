"""The content-addressed disk cache of compiled kernels.

Key: sha256 over everything that can change the binary -- the generated source, the compiler's
path and ``--version`` line, the flags and libraries, the thread setting, gradgen's version, a
hash of the Jinja templates, the Python ABI tag and the platform (including the host CPU, as
builds use ``-march=native``). Keys are plain JSON hashed, hence identical across processes.

Layout under the cache root (``GRADGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/gradgen``, else
``~/.cache/gradgen``)::

    <key>/source.c  <key>/kernel.so  <key>/meta.json   one entry per key, published by rename
    locks/<key>.lock                                   per-key flock
    compilers/<fingerprint>.json                       remembered compiler identities
    lowerings/<key>/lowering.pkl, meta.json            lowered programs (runtime/lowering.py)
    jinja/<template key>.bc                            compiled templates (runtime/templates.py)
    .tmp-*                                             entries being built

``meta.json`` also holds the cffi module emitted for the entry's declarations (out-of-line ABI
mode, :mod:`gradgen.runtime.loader`): loading a cached entry parses no C declarations.

Loading a shared object runs its code, so the root must be private: a symlink, a directory owned
by another user, or one writable by group or others is refused with a :class:`CacheWarning` and
a private temporary cache is used instead. An entry is trusted only when ``meta.json`` (written
last) names its key and the sha256 of ``kernel.so``, ``source.c`` and the cffi module match;
anything else is warned about and rebuilt. A read-only cache still serves hits; a miss is built
in a private temporary cache, with a warning.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import sysconfig
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .. import __version__
from .._resources import templates_dir
from .cachedir import CacheWarning, default_root, private_tempdir, safe_root
from .compiler import build_shared, find_compiler, host_cpu_id, python_abi
from .compiler import prefetch_compiler as _prefetch
from .filehash import tree_hash
from .loader import LoadedModule, LoadError, ffi_module_text, load

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)
# A kernel entry's files and the meta.json fields holding their sha256.
KERNEL_FILES = (("kernel.so", "kernel_sha256"), ("source.c", "source_sha256"))


@dataclass(frozen=True)
class CacheEvent:
    """What the last :meth:`KernelCache.get_or_build` did: ``kind`` is hit, miss or rebuilt."""

    kind: str
    key: str
    path: Path                # the entry directory the module was loaded from
    reason: str | None = None  # why an entry was rebuilt, or why a temporary cache was used


class KernelCache:
    """A cache root plus the logic to look up, build, verify and publish entries.

    Example:
        >>> cache = KernelCache()  # doctest: +SKIP
        >>> mod = cache.get_or_build(c_source, "void k(float *x, int64_t n);", threads=1)  # doctest: +SKIP
        >>> cache.last_event.kind  # doctest: +SKIP
        'miss'
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = safe_root(Path(root) if root is not None else default_root())
        self.last_event: CacheEvent | None = None
        self._fallback: Path | None = None  # private temp cache used when root is read-only
        self._read_only_reason: str | None = None

    def key_inputs(self, source: str, threads: int) -> dict:
        """The inputs hashed into the key (also stored in each entry's ``meta.json``)."""
        info = find_compiler(self.root / "compilers")
        return {
            "source_sha256": _sha256(source.encode()),
            "compiler": info.path,
            "compiler_args": list(info.argv[1:]),
            "compiler_version": info.version,
            "flags": info.flags(threads),
            "libs": info.libs(),
            "threads": threads,
            "gradgen_version": __version__,
            "templates_sha256": templates_hash(),
            "python_abi": python_abi(),
            "platform": f"{sysconfig.get_platform()}/{host_cpu_id()}",
        }

    def key(self, source: str, threads: int) -> str:
        """The cache key of ``source`` built for ``threads`` threads."""
        return _key_of(self.key_inputs(source, threads))

    def entry_path(self, key: str) -> Path:
        """The directory holding the entry of ``key`` (it may not exist)."""
        return self.root / key

    def get_or_build(self, source: str, declarations: str, threads: int) -> LoadedModule:
        """Load the compiled ``source`` from the cache, compiling and publishing it on a miss.

        Concurrent processes asking for the same key wait on a per-key lock and reuse the
        winner's entry. The returned module carries ``key`` and ``cache_path``; what happened is
        in :attr:`last_event`.

        Raises:
            CompilerNotFound, CompileError: no compiler, or the compiler rejected ``source``.
        """
        inputs = self.key_inputs(source, threads)
        key = _key_of(inputs)
        entry = self.entry_path(key)
        module = _try_load(entry, key, declarations)  # fast path: no lock for a good entry
        if isinstance(module, LoadedModule):
            return self._done(module, CacheEvent("hit", key, entry))
        if self._read_only_reason is not None:  # already found unwritable: warned once
            return self._build_in_temp(source, declarations, threads, inputs, key)
        try:
            with _key_lock(self.root, key):
                return self._build_locked(source, declarations, threads, inputs, key)
        except OSError as exc:
            if exc.errno not in _DENIED:
                raise
            self.note_read_only(exc, "compiling in a temporary directory instead")
            return self._build_in_temp(source, declarations, threads, inputs, key)

    def note_read_only(self, exc: OSError, instead: str, stacklevel: int = 2) -> None:
        """Remember that the root is not writable (``exc``); warn once, saying what is done."""
        if self._read_only_reason is None:
            self._read_only_reason = f"cache directory {self.root} is not writable ({exc.strerror})"
            warnings.warn(f"gradgen: {self._read_only_reason}; {instead}", CacheWarning,
                          stacklevel=stacklevel + 1)

    @property
    def read_only(self) -> bool:
        """Whether writing to the root already failed (entries are then only read)."""
        return self._read_only_reason is not None

    def _build_locked(self, source: str, declarations: str, threads: int, inputs: dict,
                      key: str) -> LoadedModule:
        entry = self.entry_path(key)
        found = _try_load(entry, key, declarations)  # another process may have built it meanwhile
        if isinstance(found, LoadedModule):
            return self._done(found, CacheEvent("hit", key, entry))
        if found is not None:
            warnings.warn(f"gradgen: cache entry {entry} is broken ({found}); rebuilding it",
                          CacheWarning, stacklevel=3)
            _discard(entry, self.root)
        _publish(self.root, key, _stage(self.root, source, threads, inputs, key, declarations))
        module = _try_load(entry, key, declarations)
        if not isinstance(module, LoadedModule):
            raise LoadError(f"freshly built cache entry {entry} does not load: {module}")
        kind = "miss" if found is None else "rebuilt"
        return self._done(module, CacheEvent(kind, key, entry, found))

    def _build_in_temp(self, source: str, declarations: str, threads: int, inputs: dict,
                       key: str) -> LoadedModule:
        """The read-only case: entries live in a private temp cache for this process."""
        if self._fallback is None:
            self._fallback = private_tempdir()
        entry, kind = self._fallback / key, "hit"
        module = _try_load(entry, key, declarations)
        if not isinstance(module, LoadedModule):
            _discard(entry, self._fallback)
            _publish(self._fallback, key,
                     _stage(self._fallback, source, threads, inputs, key, declarations))
            module, kind = _try_load(entry, key, declarations), "miss"
            if not isinstance(module, LoadedModule):
                raise LoadError(f"freshly built cache entry {entry} does not load: {module}")
        return self._done(module, CacheEvent(kind, key, entry, self._read_only_reason))

    def _done(self, module: LoadedModule, event: CacheEvent) -> LoadedModule:
        module.key, module.cache_path = event.key, event.path
        self.last_event = event
        return module


_default: dict[tuple, KernelCache] = {}


def default_cache() -> KernelCache:
    """The process-wide cache for the current environment (re-resolved when the env changes)."""
    env = tuple(os.environ.get(v) for v in ("GRADGEN_CACHE_DIR", "XDG_CACHE_HOME", "HOME"))
    cache = _default.get(env)
    if cache is None:
        cache = _default[env] = KernelCache()
    return cache


def prefetch_compiler() -> None:
    """Start identifying the C compiler for :func:`default_cache` in the background (a cold
    build about to generate C needs it afterwards; see ``compiler.prefetch_compiler``)."""
    _prefetch(default_cache().root / "compilers")


def get_or_build(source: str, declarations: str, threads: int) -> LoadedModule:
    """:meth:`KernelCache.get_or_build` on :func:`default_cache`."""
    return default_cache().get_or_build(source, declarations, threads)


_templates_hash: list[str] = []


def templates_hash() -> str:
    """sha256 over the Jinja templates' relative names and contents, computed once per process
    (remembered beside the cache by the files' identities, see :mod:`.filehash`)."""
    if not _templates_hash:
        folder = templates_dir()
        if isinstance(folder, os.PathLike):
            digest = tree_hash(os.fspath(folder), ".jinja", memo_path("templates"))
        else:  # templates inside an archive: no stat to remember them by
            h = hashlib.sha256()
            for name, data in sorted(_template_files(folder, "")):
                h.update(f"{name}\0{len(data)}\0".encode())
                h.update(data)
            digest = h.hexdigest()
        _templates_hash.append(digest)
    return _templates_hash[0]


def memo_path(name: str) -> Path | None:
    """The memo file of a tree hash ``name`` in the default cache (None if it cannot be): beside
    the compiler's identity memos, as what gradgen itself is feeds the keys the same way."""
    try:
        return default_cache().root / "compilers" / f"gradgen-{name}.json"
    except OSError:
        return None


def _template_files(folder, prefix: str) -> Iterator[tuple[str, bytes]]:
    for item in folder.iterdir():
        if item.is_dir():
            yield from _template_files(item, f"{prefix}{item.name}/")
        elif item.name.endswith(".jinja"):
            yield prefix + item.name, item.read_bytes()


def _key_of(inputs: dict) -> str:
    return _sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verify(entry: Path, key: str) -> str | None:
    """None if the kernel entry ``entry`` is complete and untampered, else what is wrong."""
    checked = check_entry(entry, key, KERNEL_FILES)
    return checked if isinstance(checked, str) else None


def check_entry(entry: Path, key: str, files: tuple[tuple[str, str], ...]
                ) -> tuple[dict, dict[str, bytes]] | str:
    """``(meta, {name: contents})`` of a complete, untampered entry, else what is wrong with it.

    ``files`` pairs each file with the meta.json field holding its sha256; an emitted cffi
    module kept in meta.json is checked against ``ffi_sha256`` too.
    """
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except FileNotFoundError:
        return "meta.json is missing"
    except (OSError, ValueError) as exc:
        return f"meta.json is unreadable ({exc})"
    if not isinstance(meta, dict) or meta.get("key") != key:
        return "meta.json names another key"
    contents = {}
    for name, field in files:
        try:
            contents[name] = (entry / name).read_bytes()
        except OSError:
            return f"{name} is missing"
        if _sha256(contents[name]) != meta.get(field):
            return f"{name} does not match its sha256 in meta.json"
    ffi = meta.get("ffi_module")
    if ffi is not None and (not isinstance(ffi, str) or
                            _sha256(ffi.encode()) != meta.get("ffi_sha256")):
        return "the cffi module in meta.json does not match its sha256"
    return meta, contents


def _try_load(entry: Path, key: str, declarations: str) -> LoadedModule | str | None:
    """The loaded entry; None if there is no entry; else why the entry is broken."""
    if not entry.exists():
        return None
    checked = check_entry(entry, key, KERNEL_FILES)
    if isinstance(checked, str):
        return checked
    meta = checked[0]
    # The emitted module stands for the declarations it was made of, and only for those.
    same = meta.get("declarations_sha256") == _sha256(declarations.encode())
    try:
        return load(entry / "kernel.so", declarations, meta.get("ffi_module") if same else None)
    except LoadError as exc:
        return str(exc)


def _stage(root: Path, source: str, threads: int, inputs: dict, key: str,
           declarations: str | None = None) -> Path:
    """Build a kernel entry in a fresh temp dir inside ``root``; meta.json is written last.
    With ``declarations``, meta.json keeps the cffi module emitted for them."""
    def write(staging: Path) -> dict:
        (staging / "source.c").write_text(source)
        fields = {}
        with ThreadPoolExecutor(1) as pool:
            # The declarations are parsed here, once, instead of on every load -- in a thread,
            # while the compiler runs (about 45 ms of pycparser, hidden behind the build).
            ffi = pool.submit(ffi_module_text, declarations) if declarations is not None else None
            build_shared(find_compiler(root / "compilers"), staging / "source.c",
                         staging / "kernel.so", threads)
            if ffi is not None:
                text = ffi.result()
                fields = {"declarations_sha256": _sha256(declarations.encode()),
                          "ffi_module": text, "ffi_sha256": _sha256(text.encode())}
        so = (staging / "kernel.so").read_bytes()
        return {"kernel_sha256": _sha256(so), "source_sha256": _sha256(source.encode()), **fields}
    return stage(root, key, inputs, write)


def stage(root: Path, key: str, inputs: dict, write: Callable[[Path], dict]) -> Path:
    """A new entry in a fresh temp dir inside ``root``: ``write(dir)`` makes its files and
    returns meta.json's fields for them; meta.json is written (and synced) last. Staging
    directories a crashed process left behind (older than ``STALE_STAGING`` seconds) go first."""
    _sweep_stale(root)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        meta = {"key": key, "inputs": inputs, **write(staging)}
        _write_synced(staging / "meta.json", json.dumps(meta, indent=1, sort_keys=True))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


STALE_STAGING = 3600.0  # seconds: a build takes well under a minute


def _sweep_stale(root: Path) -> None:
    """Remove ``.tmp-*`` staging directories left by processes that died mid-build."""
    limit = time.time() - STALE_STAGING
    try:
        items = [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    except OSError:
        return
    for p in items:
        try:
            if p.is_dir() and not p.is_symlink() and p.stat().st_mtime < limit:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _publish(root: Path, key: str, staging: Path) -> None:
    """Rename ``staging`` into place; when another process won the race, keep the winner."""
    try:
        os.rename(staging, root / key)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)  # lost the race: the winner's entry is used


def _discard(entry: Path, root: Path) -> None:
    """Move a broken entry out of the way atomically, then delete it."""
    if not entry.exists():
        return
    trash = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-trash-"))
    os.rename(entry, trash / "entry")
    shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def _key_lock(root: Path, key: str) -> Iterator[None]:
    """Hold an exclusive flock on ``locks/<key>.lock`` (lock files are kept: deleting them races)."""
    locks = root / "locks"
    locks.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
