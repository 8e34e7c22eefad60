"""Finding the C compiler, knowing who it is, and building a shared object with it.

The compiler is run directly (argument list, no shell), not through setuptools: building one small
C file with ``gcc -O3 -shared`` takes about 0.05 s against 0.5 s through cffi's API mode.

What the compiler *is* (its path, ``--version`` line, and whether POSIX threads and glibc's vector
math library link) feeds the cache key, so it is worked out once per process and also remembered on
disk beside the cache, keyed by the compiler file's identity: a new process that finds its kernels
in the cache never runs the compiler at all, not even ``cc --version``.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .cachedir import write_quietly
from .units import split_units

# -ffp-contract=off: eager numpy never fuses a*b+c into an FMA, so neither may we (results must match
# eager bit for bit where eager is exact). -fno-math-errno + -fopenmp-simd let gcc call libmvec's
# vector exp/log/tanh for `#pragma omp simd` loops without -ffast-math (NaN/inf/-0.0 stay IEEE).
# Not -fno-trapping-math: it lets gcc turn (double)(int64_t)x into trunc(x), which keeps the sign
# of a zero the integer conversion drops (float selects are bitwise blends instead, see
# templates/module.c.jinja, so they vectorize under -ftrapping-math).
BASE_FLAGS: tuple[str, ...] = (
    "-O3", "-march=native", "-fPIC", "-shared", "-std=c11",
    "-fno-math-errno", "-fopenmp-simd", "-ffp-contract=off",
)

_PROBE_PTHREAD = ("#include <pthread.h>\n"
                  "static void *run(void *a) { return a; }\n"
                  "int gradgen_probe(void) { pthread_t t; return pthread_create(&t, 0, run, 0); }\n")
_PROBE_MVEC = "int gradgen_probe(void) { return 0; }\n"


class CompilerNotFound(RuntimeError):
    """No usable C compiler: ``CC`` names a missing program, or neither cc nor gcc is on PATH."""


class CompileError(RuntimeError):
    """The C compiler rejected a source file; carries its stderr, the source path and the command."""

    def __init__(self, source_path: Path, command: list[str], returncode: int, stderr: str) -> None:
        self.source_path = Path(source_path)
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(
            f"C compiler failed (exit {returncode}) on {self.source_path}:\n{stderr.strip()}"
        )


@dataclass(frozen=True)
class CompilerInfo:
    """Everything about the compiler that can change a binary built with it."""

    argv: tuple[str, ...]  # resolved program path first, then any extra words from CC
    version: str           # first line of `--version`
    pthread: bool          # `-pthread` compiles and links (the kernels' thread pool)
    mvec: bool             # `-lmvec` (glibc's vector math) links

    @property
    def path(self) -> str:
        return self.argv[0]

    def flags(self, threads: int) -> list[str]:
        """Compile flags for a build running ``threads`` threads: more than one turns on the
        modules' thread pool (``templates/threadpool.c.jinja``); one builds it out entirely."""
        return [*BASE_FLAGS, *self._thread_flags(threads)]

    def object_flags(self, threads: int) -> list[str]:
        """:meth:`flags` for compiling one translation unit of several (``-c``, nothing to link)."""
        return [*(f for f in BASE_FLAGS if f != "-shared"), "-c",
                *(f for f in self._thread_flags(threads) if not f.startswith("-Wl,"))]

    def link_flags(self, threads: int) -> list[str]:
        """:meth:`flags` for linking the objects of several translation units."""
        return ["-shared", *(f for f in self._thread_flags(threads) if f != "-DGRADGEN_THREADS")]

    def _thread_flags(self, threads: int) -> list[str]:
        flags = []
        if threads > 1 and self.pthread:
            flags += ["-DGRADGEN_THREADS", "-pthread"]
            if sys.platform.startswith("linux"):
                # nodelete: a module's pool threads run its code; unloading it under them would
                # crash the process (the loader also keeps every module for the process's life).
                flags.append("-Wl,-z,nodelete")
        return flags

    def libs(self) -> list[str]:
        """Libraries to link, placed after the source on the command line."""
        return ["-lm", "-lmvec"] if self.mvec else ["-lm"]


_memo: dict[tuple[str | None, str], CompilerInfo] = {}
_identifying = threading.Lock()  # one identification at a time (see prefetch_compiler)


def resolve_compiler_argv() -> tuple[str, ...]:
    """The compiler command: ``CC`` (split like a shell would) else cc, else gcc, on PATH.

    Raises:
        CompilerNotFound: ``CC`` names a program that does not exist, or none is on PATH.
    """
    cc = os.environ.get("CC")
    if cc is not None and cc.strip():
        words = shlex.split(cc)
        found = shutil.which(words[0])
        if found is None:
            raise CompilerNotFound(
                f"C compiler {words[0]!r} (from the CC environment variable) was not found"
            )
        return (found, *words[1:])
    for name in ("cc", "gcc"):
        found = shutil.which(name)
        if found is not None:
            return (found,)
    raise CompilerNotFound("no C compiler found: neither cc nor gcc is on PATH and CC is not set")


def find_compiler(memo_dir: Path | None = None) -> CompilerInfo:
    """Find the C compiler and identify it, once per process (and once per machine via ``memo_dir``).

    ``memo_dir`` is a private directory where the identity is remembered, keyed by the
    compiler file's path, inode, size and mtime and the host CPU, so later processes skip
    running ``--version`` and the pthread/libmvec probes.

    Example:
        >>> find_compiler().flags(1)[:2]
        ['-O3', '-march=native']
    """
    cache_key = (os.environ.get("CC"), os.environ.get("PATH", ""))
    info = _memo.get(cache_key)
    if info is None:
        with _identifying:  # a prefetch may be at it: wait for its answer rather than redo it
            info = _memo.get(cache_key)
            if info is None:
                argv = resolve_compiler_argv()
                info = _load_memo(argv, memo_dir)
                if info is None:
                    info = _identify(argv)
                    _store_memo(info, memo_dir)
                _memo[cache_key] = info
    return info


def prefetch_compiler(memo_dir: Path | None = None) -> None:
    """Start :func:`find_compiler` in a background thread, unless its answer is known.

    A cold build needs the compiler's identity (``--version`` and two link probes, about
    0.1 s of subprocesses when ``memo_dir`` does not remember it) only after generating
    the C source; started first, the probes run while Python renders. Any failure is left
    for the caller's own ``find_compiler`` to raise.
    """
    if (os.environ.get("CC"), os.environ.get("PATH", "")) in _memo:
        return
    threading.Thread(target=_find_quietly, args=(memo_dir,), daemon=True,
                     name="gradgen-find-compiler").start()


def _find_quietly(memo_dir: Path | None) -> None:
    try:
        find_compiler(memo_dir)
    except Exception:  # noqa: BLE001  (reported by the build that needs the compiler)
        pass


def build_shared(info: CompilerInfo, source: Path, output: Path, threads: int) -> None:
    """Compile ``source`` into the shared object ``output``.

    A source of several translation units (:mod:`.units`) is cut into ``unit<i>.c`` files beside
    it, compiled side by side (one compiler per unit) and linked; they and their objects are
    removed again after a successful build.

    Raises:
        CompileError: the compiler exited non-zero (its stderr is kept on the exception; for a
            unit, ``source_path`` is that unit's file, left in place).
    """
    units = split_units(Path(source).read_text())
    if units is None:
        command = [*info.argv, *info.flags(threads), "-o", str(output), str(source),
                   *info.libs()]
        proc = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise CompileError(source, command, proc.returncode, proc.stderr)
        return
    _build_units(info, Path(source).parent, units, Path(output), threads)


def _build_units(info: CompilerInfo, folder: Path, units: list[tuple[str, str]], output: Path,
                 threads: int) -> None:
    """Compile each unit to an object concurrently, then link them into ``output``."""
    paths = [folder / name for name, _ in units]
    for path, (_, text) in zip(paths, units):
        path.write_text(text)
    objects = [path.with_suffix(".o") for path in paths]
    commands = [[*info.argv, *info.object_flags(threads), "-o", str(obj), str(path)]
                for path, obj in zip(paths, objects)]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for c in commands]
    # Awaited in turn: a unit with over a pipe's worth of diagnostics waits for the ones before
    # it to finish, which only costs time on a failing build.
    results = [(proc, *proc.communicate()) for proc in procs]
    for path, command, (proc, _, stderr) in zip(paths, commands, results):
        if proc.returncode != 0:
            raise CompileError(path, command, proc.returncode, stderr)
    command = [*info.argv, *info.link_flags(threads), "-o", str(output), *map(str, objects),
               *info.libs()]
    proc = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise CompileError(paths[0], command, proc.returncode, proc.stderr)
    for path in [*paths, *objects]:
        path.unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def host_cpu_id() -> str:
    """A short identity of this CPU: binaries are built with -march=native, so it belongs in keys.
    (Once per process: a warm start reads /proc/cpuinfo once, not per key.)"""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        import platform
        return platform.processor() or platform.machine()
    wanted = ("vendor_id", "model name", "cpu family", "model\t", "flags", "Features", "CPU part")
    lines = []
    for line in text.splitlines():
        if not line.strip():
            break  # first processor only
        if line.startswith(wanted):
            lines.append(line)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def python_abi() -> str:
    """The interpreter's SOABI (``cpython-311-x86_64-linux-gnu``), read from the extension
    suffix ``.cpython-311-x86_64-linux-gnu.so`` when it has that form: asking sysconfig
    loads its whole build-time data, a millisecond of every warm start."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        parts = suffix.split(".")
        if len(parts) == 3 and parts[1] and parts[2] == "so":
            return parts[1]
    return sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag


def _identify(argv: tuple[str, ...]) -> CompilerInfo:
    try:
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise CompilerNotFound(f"C compiler {argv[0]!r} cannot be run: {exc}") from None
    lines = (proc.stdout or proc.stderr).splitlines()
    if proc.returncode != 0 or not lines:
        raise CompilerNotFound(
            f"C compiler {argv[0]!r} does not answer --version (exit {proc.returncode}): "
            f"{proc.stderr.strip()[:200]}"
        )
    with ThreadPoolExecutor(2) as pool:  # the two probes are independent: run them side by side
        pthread = pool.submit(_probe, argv, _PROBE_PTHREAD, ["-pthread"], [])
        mvec = pool.submit(_probe, argv, _PROBE_MVEC, [], ["-lm", "-lmvec"])
        return CompilerInfo(tuple(argv), lines[0].strip(), pthread.result(), mvec.result())


def _probe(argv: tuple[str, ...], source: str, flags: list[str], libs: list[str]) -> bool:
    with tempfile.TemporaryDirectory(prefix="gradgen-probe-") as tmp:
        src = Path(tmp, "probe.c")
        src.write_text(source)
        command = [*argv, "-fPIC", "-shared", *flags, "-o", str(Path(tmp, "probe.so")), str(src),
                   *libs]
        try:
            proc = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL)
        except OSError:
            return False
        return proc.returncode == 0


def _fingerprint(argv: tuple[str, ...]) -> str:
    st = os.stat(argv[0])
    ident = [list(argv), os.path.realpath(argv[0]), st.st_dev, st.st_ino, st.st_size,
             st.st_mtime_ns, host_cpu_id()]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


def _load_memo(argv: tuple[str, ...], memo_dir: Path | None) -> CompilerInfo | None:
    if memo_dir is None:
        return None
    try:
        data = json.loads((memo_dir / f"{_fingerprint(argv)}.json").read_text())
        info = CompilerInfo(tuple(data["argv"]), data["version"], data["pthread"], data["mvec"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if info.argv == argv and isinstance(info.version, str) else None


def _store_memo(info: CompilerInfo, memo_dir: Path | None) -> None:
    """Remember ``info`` on disk; best effort (a read-only cache simply re-identifies next time)."""
    if memo_dir is not None:
        write_quietly(memo_dir / f"{_fingerprint(info.argv)}.json",
                      json.dumps(asdict(info)).encode())
