"""The content-addressed disk cache of compiled kernels (gradgen.runtime.cache)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_cc

from gradgen.runtime import CacheWarning, CompileError, CompilerNotFound, KernelCache
from gradgen.runtime import cache as cache_mod
from gradgen.runtime import compiler as compiler_mod
from gradgen.runtime.compiler import resolve_compiler_argv
from gradgen.runtime.units import join_units




REPO = Path(__file__).resolve().parents[1]

SRC = """#include <stdint.h>
void twice(const double *restrict x, double *restrict out, int64_t n)
{ for (int64_t i = 0; i < n; i++) out[i] = 2.0 * x[i] + 1.0; }
"""
DECL = "void twice(const double *x, double *out, int64_t n);"

# Runs in a child process: get_or_build, call the kernel, print what happened as JSON.
CHILD = textwrap.dedent("""
    import json, sys, numpy as np
    sys.path.insert(0, sys.argv[1])
    from gradgen.runtime import default_cache
    src, decl, threads = json.loads(sys.stdin.read())
    cache = default_cache()
    mod = cache.get_or_build(src, decl, threads)
    x = np.arange(4.0); out = np.empty(4)
    mod.twice(mod.ptr_of(x), mod.ptr_of(out), 4)
    ev = cache.last_event
    print(json.dumps({"kind": ev.kind, "key": ev.key, "path": str(ev.path), "out": out.tolist()}))
""")


def _child(cache_dir: Path, env: dict | None = None, source: str = SRC, threads: int = 1,
           wait: bool = True):
    full_env = {**os.environ, "GRADGEN_CACHE_DIR": str(cache_dir), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(REPO)], env=full_env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdin.write(json.dumps([source, DECL, threads]))
    proc.stdin.close()
    return _result(proc) if wait else proc


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.wait() == 0, err
    return json.loads(out)


def _call(mod) -> list[float]:
    x, out = np.arange(4.0), np.empty(4)
    mod.twice(mod.ptr_of(x), mod.ptr_of(out), 4)
    return out.tolist()


def _fake_cc(tmp_path: Path) -> Path:
    """A compiler wrapper that logs its calls; GG_CC_FAIL makes it fail, GG_CC_SLEEP slows builds."""
    script = tmp_path / "fake-cc"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$*" >> "$GG_CC_LOG"
        if [ -n "$GG_CC_FAIL" ]; then echo "fake cc: the compiler must not run" >&2; exit 99; fi
        case "$*" in *kernel.so*) [ -n "$GG_CC_SLEEP" ] && sleep "$GG_CC_SLEEP";; esac
        exec {resolve_compiler_argv()[0]} "$@"
        """))
    script.chmod(0o755)
    return script


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name not in ("locks", "compilers"))


EXPECTED = [1.0, 3.0, 5.0, 7.0]


# ---------------------------------------------------------------- hits, misses and keys

@pytest.mark.cc
@needs_cc
def test_miss_then_hit_and_entry_layout(tmp_path) -> None:
    cache = KernelCache(tmp_path / "cache")
    assert stat.S_IMODE(os.stat(cache.root).st_mode) == 0o700
    mod = cache.get_or_build(SRC, DECL, threads=1)
    assert cache.last_event.kind == "miss" and _call(mod) == EXPECTED
    entry = cache.last_event.path
    assert mod.cache_path == entry == cache.entry_path(mod.key)
    assert sorted(os.listdir(entry)) == ["kernel.so", "meta.json", "source.c"]
    assert (entry / "source.c").read_text() == SRC
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["key"] == mod.key and meta["inputs"]["threads"] == 1
    assert {"compiler", "compiler_version", "flags", "gradgen_version", "templates_sha256",
            "python_abi", "platform", "source_sha256"} <= set(meta["inputs"])
    mod2 = cache.get_or_build(SRC, DECL, threads=1)
    assert cache.last_event.kind == "hit" and _call(mod2) == EXPECTED
    assert _entries(cache.root) == [mod.key]  # no staging leftovers


@pytest.mark.cc
@needs_cc
def test_staging_left_by_a_crashed_build_is_swept(tmp_path) -> None:
    """A ``.tmp-*`` directory older than an hour (its process died mid-build) is removed by the
    next build; a recent one (a build in progress) is left alone."""
    cache = KernelCache(tmp_path / "cache")
    old, fresh = cache.root / ".tmp-crashed", cache.root / ".tmp-building"
    for d in (old, fresh):
        d.mkdir()
        (d / "source.c").write_text("/* half */")
    stale = os.stat(old).st_mtime - cache_mod.STALE_STAGING - 60
    os.utime(old, (stale, stale))
    cache.get_or_build(SRC, DECL, threads=1)
    assert not old.exists() and fresh.exists()


@pytest.mark.cc
@needs_cc
def test_keys_stable_across_processes_and_sensitive_to_inputs(tmp_path, monkeypatch) -> None:
    cache = KernelCache(tmp_path / "cache")
    key = cache.key(SRC, 1)
    assert _child(cache.root)["key"] == key
    assert cache.key(SRC + "\n", 1) != key
    assert cache.key(SRC, 2) != key
    monkeypatch.setattr(compiler_mod, "BASE_FLAGS", compiler_mod.BASE_FLAGS + ("-O2",))
    assert cache.key(SRC, 1) != key


@pytest.mark.cc
@needs_cc
def test_hit_in_new_process_runs_no_compiler(tmp_path, monkeypatch) -> None:
    fake = _fake_cc(tmp_path)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("GG_CC_LOG", str(tmp_path / "parent.log"))
    cache = KernelCache(tmp_path / "cache")
    cache.get_or_build(SRC, DECL, threads=1)
    assert "kernel.so" in (tmp_path / "parent.log").read_text()
    child = _child(cache.root, {"GG_CC_FAIL": "1", "GG_CC_LOG": str(tmp_path / "child.log")})
    assert child["kind"] == "hit" and child["out"] == EXPECTED
    assert not (tmp_path / "child.log").exists(), "the child ran the compiler"
    # ...while a miss in such a child does reach the (failing) compiler
    with pytest.raises(AssertionError, match="must not run"):
        _child(cache.root, {"GG_CC_FAIL": "1", "GG_CC_LOG": str(tmp_path / "child.log")},
               source=SRC + "// other\n")


@pytest.mark.cc
@needs_cc
def test_compile_error_publishes_nothing(tmp_path) -> None:
    cache = KernelCache(tmp_path / "cache")
    with pytest.raises(CompileError) as info:
        cache.get_or_build("void f(void) { syntax error }\n", "void f(void);", threads=1)
    assert "error" in info.value.stderr and info.value.source_path.name == "source.c"
    assert _entries(cache.root) == []


def test_compiler_missing_through_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(CompilerNotFound, match="no-such-cc"):
        KernelCache(tmp_path / "cache").get_or_build(SRC, DECL, threads=1)


# ---------------------------------------------------------------- broken entries

@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[Path, str]:
    """A cache holding SRC's entry, built by another process (so this one never maps it)."""
    root = tmp_path_factory.mktemp("filled") / "cache"
    return root, _child(root)["key"]


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:100])


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


CORRUPTIONS = {
    "kernel truncated": lambda e: _truncate(e / "kernel.so"),
    "kernel empty": lambda e: (e / "kernel.so").write_bytes(b""),
    "kernel byte flipped": lambda e: _flip(e / "kernel.so"),
    "kernel deleted": lambda e: (e / "kernel.so").unlink(),
    "meta deleted": lambda e: (e / "meta.json").unlink(),
    "meta truncated": lambda e: _truncate(e / "meta.json"),
    "meta of another key": lambda e: (e / "meta.json").write_text(
        (e / "meta.json").read_text().replace(e.name, "0" * 64)),
    "source edited": lambda e: (e / "source.c").write_text("int evil;\n"),
    "kernel unloadable, meta consistent": lambda e: _unloadable(e),
}


def _unloadable(entry: Path) -> None:
    """A kernel.so whose hash matches meta.json but which is no shared object."""
    garbage = b"\x7fELF not really"
    (entry / "kernel.so").write_bytes(garbage)
    meta = json.loads((entry / "meta.json").read_text())
    meta["kernel_sha256"] = hashlib.sha256(garbage).hexdigest()
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.cc
@needs_cc
@pytest.mark.parametrize("corrupt", list(CORRUPTIONS))
def test_corrupted_entry_is_rebuilt_not_loaded(filled, tmp_path, corrupt) -> None:
    root = tmp_path / "cache"
    shutil.copytree(filled[0], root)
    entry = root / filled[1]
    CORRUPTIONS[corrupt](entry)
    cache = KernelCache(root)
    with pytest.warns(CacheWarning, match="is broken.*rebuilding"):
        mod = cache.get_or_build(SRC, DECL, threads=1)
    assert cache.last_event.kind == "rebuilt" and cache.last_event.reason
    assert _call(mod) == EXPECTED
    assert cache_mod._verify(entry, filled[1]) is None
    assert _entries(root) == [filled[1]]


# ---------------------------------------------------------------- concurrency

@pytest.mark.cc
@needs_cc
def test_racing_processes_build_once_and_both_succeed(tmp_path) -> None:
    fake, log = _fake_cc(tmp_path), tmp_path / "cc.log"
    env = {"CC": str(fake), "GG_CC_LOG": str(log), "GG_CC_SLEEP": "0.3"}
    procs = [_child(tmp_path / "cache", env, wait=False) for _ in range(2)]
    results = [_result(p) for p in procs]
    assert [r["out"] for r in results] == [EXPECTED, EXPECTED]
    assert results[0]["key"] == results[1]["key"]
    assert sorted(r["kind"] for r in results) == ["hit", "miss"]
    assert _entries(tmp_path / "cache") == [results[0]["key"]]
    builds = [line for line in log.read_text().splitlines() if "kernel.so" in line]
    assert len(builds) == 1


@pytest.mark.cc
@needs_cc
def test_publish_losing_the_rename_race_keeps_the_winner(tmp_path) -> None:
    cache = KernelCache(tmp_path / "cache")
    inputs = cache.key_inputs(SRC, 1)
    key = cache_mod._key_of(inputs)
    first = cache_mod._stage(cache.root, SRC, 1, inputs, key)
    second = cache_mod._stage(cache.root, SRC, 1, inputs, key)
    winner_meta = (first / "meta.json").read_text()
    cache_mod._publish(cache.root, key, first)
    cache_mod._publish(cache.root, key, second)  # loses: no error, staging removed
    assert _entries(cache.root) == [key]
    assert (cache.root / key / "meta.json").read_text() == winner_meta


# ---------------------------------------------------------------- location and safety

def test_default_location(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GRADGEN_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache_mod.default_root() == tmp_path / "explicit"
    monkeypatch.delenv("GRADGEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_mod.default_root() == tmp_path / "xdg" / "gradgen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_mod.default_root() == tmp_path / "home" / ".cache" / "gradgen"
    root = cache_mod.default_cache().root
    assert root == tmp_path / "home" / ".cache" / "gradgen"
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def _symlink(tmp_path: Path) -> Path:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    return tmp_path / "link"


def _chmod(mode: int):
    def make(tmp_path: Path) -> Path:
        d = tmp_path / "shared"
        d.mkdir()
        d.chmod(mode)
        return d
    return make


def _foreign(tmp_path: Path) -> Path:
    if os.getuid() != 0:
        pytest.skip("chown to another user needs root")
    d = tmp_path / "foreign"
    d.mkdir(mode=0o700)
    os.chown(d, 4242, 4242)
    return d


UNSAFE = {
    "symlink": (_symlink, "symlink"),
    "world-writable": (_chmod(0o777), "writable by group or others"),
    "group-writable": (_chmod(0o770), "writable by group or others"),
    "other user's": (_foreign, "owned by another user"),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_unsafe_directory_refused_for_private_temp(tmp_path, case) -> None:
    make, why = UNSAFE[case]
    unsafe = make(tmp_path)
    with pytest.warns(CacheWarning, match=f"refusing cache directory.*{why}"):
        cache = KernelCache(unsafe)
    st = os.lstat(cache.root)
    assert cache.root != unsafe and stat.S_ISDIR(st.st_mode)
    assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700


@pytest.mark.cc
@needs_cc
def test_refused_directory_still_builds(tmp_path) -> None:
    with pytest.warns(CacheWarning, match="refusing"):
        cache = KernelCache(_chmod(0o777)(tmp_path))
    assert _call(cache.get_or_build(SRC, DECL, threads=1)) == EXPECTED
    assert list((tmp_path / "shared").iterdir()) == []


# ---------------------------------------------------------------- read-only cache

def _deny_writes_under(monkeypatch, root: Path) -> None:
    """Make creating anything under ``root`` fail with EROFS, as on a read-only mount."""
    real_open, real_mkdir = os.open, os.mkdir
    prefix = str(root)

    def inside(path) -> bool:
        return os.fspath(path).startswith(prefix)

    def fake_open(path, flags, *args, **kw):
        if inside(path) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kw)

    def fake_mkdir(path, *args, **kw):
        if inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_mkdir(path, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


@pytest.mark.cc
@needs_cc
@pytest.mark.parametrize("how", ["simulated EROFS", "chmod 0o500"])
def test_read_only_cache_serves_hits_and_builds_misses_in_temp(filled, tmp_path, monkeypatch,
                                                                how) -> None:
    root = tmp_path / "cache"
    shutil.copytree(filled[0], root)
    if how == "chmod 0o500":
        if os.getuid() == 0:
            pytest.skip("root ignores directory permissions")
        root.chmod(0o500)
    else:
        _deny_writes_under(monkeypatch, root)
    cache = KernelCache(root)
    assert cache.root == root
    assert _call(cache.get_or_build(SRC, DECL, threads=1)) == EXPECTED
    assert cache.last_event.kind == "hit"
    with pytest.warns(CacheWarning, match="not writable.*temporary directory"):
        mod = cache.get_or_build(SRC + "// new\n", DECL, threads=1)
    assert _call(mod) == EXPECTED and cache.last_event.kind == "miss"
    assert root not in mod.cache_path.parents
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per cache, not on every call
        cache.get_or_build(SRC + "// new\n", DECL, threads=1)
        assert cache.last_event.kind == "hit" and cache.last_event.path == mod.cache_path
        cache.get_or_build(SRC + "// newer\n", DECL, threads=1)
        assert cache.last_event.kind == "miss" and root not in cache.last_event.path.parents
    if how == "chmod 0o500":
        root.chmod(0o700)


# ---------------------------------------------------------------- modules of several units

# Two translation units sharing hidden state, as render_module emits them (runtime/units.py).
UNITS_SRC = join_units([
    "#include <stdint.h>\n"
    "__attribute__((visibility(\"hidden\"))) double gg_offset = 1.0;\n",
    "#include <stdint.h>\n"
    "extern __attribute__((visibility(\"hidden\"))) double gg_offset;\n"
    "void twice(const double *restrict x, double *restrict out, int64_t n)\n"
    "{ for (int64_t i = 0; i < n; i++) out[i] = 2.0 * x[i] + gg_offset; }\n",
])


@pytest.mark.cc
@needs_cc
@pytest.mark.parametrize("threads", [1, 2])
def test_units_build_hit_in_new_process_runs_no_compiler(tmp_path, monkeypatch, threads) -> None:
    fake = _fake_cc(tmp_path)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("GG_CC_LOG", str(tmp_path / "parent.log"))
    cache = KernelCache(tmp_path / "cache")
    assert _call(cache.get_or_build(UNITS_SRC, DECL, threads)) == EXPECTED
    calls = (tmp_path / "parent.log").read_text().splitlines()
    assert sum(" -c " in c for c in calls) == 2 and sum("kernel.so" in c for c in calls) == 1
    entry = cache.last_event.path
    assert sorted(p.name for p in entry.iterdir()) == ["kernel.so", "meta.json", "source.c"]
    assert (entry / "source.c").read_text() == UNITS_SRC  # all the C, as hashed into the key
    child = _child(cache.root, {"GG_CC_FAIL": "1", "GG_CC_LOG": str(tmp_path / "child.log")},
                   source=UNITS_SRC, threads=threads)
    assert child["kind"] == "hit" and child["out"] == EXPECTED and child["key"] == entry.name
    assert not (tmp_path / "child.log").exists(), "the child ran the compiler"


@pytest.mark.cc
@needs_cc
def test_compile_error_in_one_unit(tmp_path) -> None:
    cache = KernelCache(tmp_path / "cache")
    bad = join_units(["int gg_fine = 1;\n", "void twice(void) { syntax error }\n"])
    with pytest.raises(CompileError) as info:
        cache.get_or_build(bad, DECL, threads=1)
    err = info.value
    assert "error" in err.stderr and err.source_path.name == "unit1.c"
    assert "syntax error" in str(err) or "unit1.c" in str(err)
    assert _entries(cache.root) == []
