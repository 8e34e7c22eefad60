"""The lowering cache: what differentiation, the passes, the schedule and the renderer made of a
traced program, kept on disk so that a new process goes from its trace straight to loading the
built kernels (a *warm start*).

A compiled call in a new process must trace its function (the trace is what the guards and the
inputs come from), but everything after the trace -- reverse-mode AD, the passes, the kernel
schedule, rendering the C module (Jinja) -- is a pure function of:

- the traced program: its IR text (values, types, parameters, source locations) with the full
  sha256 of every array constant, and the trace facts AD reads (``argnums``, ``requires_grad``);
- the *mode*: ``compile(fn)`` with which inputs need gradients, or ``compile(value_and_grad)``
  with its ``argnums``, ``has_aux`` and the loss's position;
- the thread count (it changes the rendered loops) and the default dtype;
- gradgen itself: the sha256 of every ``.py`` file of the package (an edited checkout never reuses
  a stale lowering; the version number alone does not change with editable installs), the
  templates' hash, and the Python and numpy versions (pickles).

The sha256 of all that keys an entry ``<cache root>/lowerings/<key>/`` holding ``lowering.pkl``
(the AD results the caller names, and the :class:`~gradgen.runtime.executor.Lowered` module:
schedules, kernel arguments, C source and declarations) and ``meta.json`` (the key's inputs and
the pickle's sha256, written last). Entries reuse the kernel cache's mechanisms
(:mod:`gradgen.runtime.cache`): the same private root, staging directories published by
rename, sha256 verification before use; a broken entry (truncated, corrupt, unpicklable) is
warned about, discarded and rebuilt; a read-only root is read but never written.

Pickles hold gradgen's own data classes only (IR, schedule), numpy arrays and plain values:
primitives and dtypes are pickled by name and resolved in the registry; the traced program's
live objects (captured tensors, argument and result structure) are never stored but taken
from the current trace; the unpickler refuses every other global. A lowering that cannot be
pickled that way (e.g. an unusual parameter value) is simply not kept. A program whose
parameters are not plain values (ints, floats, tuples, dtypes, ...) gets no key at all, as
their text might not identify them.

Example:
    >>> cache = lowering_cache()  # doctest: +SKIP
    >>> facts = {"mode": "compile", "requires_grad": [True]}
    >>> key = lowering_key(program, facts, threads=2)  # doctest: +SKIP
    >>> cache.load(key, program)  # doctest: +SKIP
    None
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import __version__
from ..codegen.steps import Kernel
from ..dtypes import bool_, dtype, float32, float64, get_default_dtype, int32, int64
from ..ir.core import Program
from ..ir.printer import constant_table, print_program
from ..ops.registry import PRIMITIVES, Primitive
from ..tensor import Tensor
from .cache import (_DENIED, CacheWarning, KernelCache, _discard, _key_lock, _key_of, _publish,
                    check_entry, default_cache, stage, templates_hash, memo_path)
from .filehash import tree_hash

FORMAT = 2
AREA = "lowerings"
FILES = (("lowering.pkl", "lowering_sha256"),)
# Keys of a traced program's meta that hold live objects of this process: never pickled.
LIVE_META = ("captured", "captured_sources", "value_guards", "in_tree", "out_tree")
_DTYPES = {d.short: d for d in (bool_, int32, int64, float32, float64)}
_ALLOWED = {
    "gradgen.ir.core": {"Var", "Literal", "Eqn", "Program"},
    "gradgen.ops.registry": {"Aval"},
    "gradgen.codegen.steps": {"Buffer", "View", "ColumnSum", "Kernel", "HostOp", "Schedule"},
    "gradgen.runtime.executor": {"Lowered"},
    "numpy": {"dtype", "ndarray"},
    "numpy._core.numeric": {"_frombuffer"}, "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "builtins": {"slice"},
}


class LoweringKey(NamedTuple):
    """A lowering's cache key and the inputs hashed into it (kept in its meta.json)."""

    key: str
    inputs: dict


@dataclass(frozen=True)
class LoweringEvent:
    """What the last lookup or store did: ``kind`` is hit, miss, stored, rebuilt or unstored."""

    kind: str
    key: str
    path: Path
    reason: str | None = None


# ---------------------------------------------------------------- keys

def lowering_key(program: Program, facts: dict, threads: int) -> LoweringKey | None:
    """The key of lowering the traced ``program`` in mode ``facts`` (JSON-able) for ``threads``
    threads; None when the program's text cannot identify it (a parameter that is no plain
    value)."""
    text = program_text(program)
    if text is None:
        return None
    meta = program.meta
    inputs = {
        "format": FORMAT,
        "program_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "trace": {k: list(meta[k]) for k in ("argnums", "requires_grad") if k in meta},
        "facts": facts,
        "threads": threads,
        "default_dtype": get_default_dtype().short,  # (bare Python floats the IR builder meets)
        "gradgen_version": __version__,
        "gradgen_sources_sha256": sources_hash(),
        "templates_sha256": templates_hash(),
        "python": f"{sys.implementation.cache_tag} {sys.version}",
        "numpy": np.__version__,
    }
    return LoweringKey(_key_of(inputs), inputs)


def program_text(program: Program) -> str | None:
    """The program's IR text followed by the full sha256 of each array constant (the text
    shows large ones by a short digest only); None if a parameter is no plain value."""
    if not all(_plain(v) for e in program.eqns for v in e.params.values()):
        return None
    lines = [print_program(program)]
    for name, arr in constant_table(program).items():
        h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
        lines.append(f"{name} sha256:{h.hexdigest()}")
    return "\n".join(lines)


def _plain(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, float, str, dtype, np.bool_, np.number)):
        return True
    return isinstance(v, (tuple, list)) and all(_plain(x) for x in v)


_sources: list[str] = []


def sources_hash() -> str:
    """sha256 over the relative names and contents of gradgen's ``.py`` files (once per process;
    remembered beside the cache by the files' identities, see :mod:`.filehash`)."""
    if not _sources:
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _sources.append(tree_hash(package, ".py", memo_path("sources")))
    return _sources[0]


# ---------------------------------------------------------------- pickles

class _Pickler(pickle.Pickler):
    """Primitives and dtypes by name; the trace's live meta by reference; tensors refused."""

    def __init__(self, file: io.BytesIO, live: dict) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.live = live

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Primitive):
            if PRIMITIVES.get(obj.name) is not obj:
                raise pickle.PicklingError(f"primitive {obj.name!r} is not the registry's")
            return ("prim", obj.name)
        if isinstance(obj, dtype):
            return ("dtype", obj.short)
        if isinstance(obj, Tensor):
            raise pickle.PicklingError("a tensor is reachable from the lowering")
        if type(obj) is dict and "captured" in obj and obj["captured"] is self.live.get("captured"):
            kept = {k: v for k, v in obj.items() if k not in LIVE_META}
            return ("meta", kept, tuple(k for k in LIVE_META if k in obj))
        return None


class _Unpickler(pickle.Unpickler):
    """The inverse of :class:`_Pickler`; refuses every global but the allowed classes."""

    def __init__(self, file: io.BytesIO, live: dict) -> None:
        super().__init__(file)
        self.live = live

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0]
        if kind == "prim" and PRIMITIVES.get(pid[1]) is not None:
            return PRIMITIVES[pid[1]]
        if kind == "dtype" and pid[1] in _DTYPES:
            return _DTYPES[pid[1]]
        if kind == "meta":
            return {**pid[1], **{k: self.live[k] for k in pid[2]}}
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")

    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a lowering")


def dumps(value: Any, program: Program) -> bytes:
    """``value`` pickled for the lowering cache (live parts of ``program.meta`` by reference)."""
    out = io.BytesIO()
    _Pickler(out, program.meta).dump(value)
    return out.getvalue()


def loads(data: bytes, program: Program) -> Any:
    """The inverse of :func:`dumps`, with the live meta of ``program`` (the current trace)."""
    return _Unpickler(io.BytesIO(data), program.meta).load()


def _with_orders(lowered: Any) -> tuple:
    """``lowered`` plus each schedule's ``order`` and ``derived`` by equation (they are keyed
    by ``id(eqn)``)."""
    orders = []
    for s in lowered.schedules:
        eqns = {id(e): e for e in s.program.eqns}
        for step in s.steps:
            for e in step.eqns if isinstance(step, Kernel) else [step.eqn]:
                eqns[id(e)] = e
        orders.append(([(eqns[i], pos) for i, pos in s.order.items() if i in eqns],
                       [(eqns[i], of) for i, of in s.derived.items() if i in eqns]))
    return lowered, orders


def _restore_orders(lowered: Any, orders: list) -> Any:
    for s, (pairs, derived) in zip(lowered.schedules, orders):
        s.order = {id(e): pos for e, pos in pairs}
        s.derived = {id(e): of for e, of in derived}
    return lowered


# ---------------------------------------------------------------- the store

class LoweringCache:
    """Lowering entries under ``<kernel cache root>/lowerings``; see the module docstring."""

    def __init__(self, kernels: KernelCache) -> None:
        self.kernels = kernels
        self.root = kernels.root / AREA
        self.last_event: LoweringEvent | None = None
        self._broken: dict[str, str] = {}  # key -> why its entry was discarded

    def load(self, key: LoweringKey, program: Program) -> tuple[Any, Any] | None:
        """``(state, lowered)`` stored under ``key`` for the trace ``program``; None on a miss.
        A broken entry is warned about (CacheWarning) and discarded: a miss."""
        entry = self.root / key.key
        if not entry.exists():
            return self._event("miss", key, None)
        checked = check_entry(entry, key.key, FILES)
        if isinstance(checked, str):
            return self._reject(key, checked)
        from .executor import Lowered  # noqa: PLC0415  (the executor loads it next anyway)
        try:
            state, (lowered, orders) = loads(checked[1]["lowering.pkl"], program)
            if not isinstance(state, dict) or not isinstance(lowered, Lowered):
                raise TypeError("it holds no (state, lowered module) pair")
            lowered = _restore_orders(lowered, orders)
        except Exception as exc:  # noqa: BLE001  (whatever is wrong, the entry is unusable)
            return self._reject(key, f"it does not unpickle: {type(exc).__name__}: {exc}")
        self._event("hit", key, None)
        return state, lowered

    def save(self, key: LoweringKey, program: Program, state: Any, lowered: Any) -> None:
        """Keep ``state`` and ``lowered`` under ``key``; never raises (not keeping them only
        costs the next process the work)."""
        if self.kernels.read_only:
            return
        try:
            data = dumps((state, _with_orders(lowered)), program)
            loads(data, program)  # what cannot be read back under the rules is not kept
        except Exception as exc:  # noqa: BLE001
            self._event("unstored", key, f"{type(exc).__name__}: {exc}")
            return
        try:
            self.root.mkdir(mode=0o700, exist_ok=True)
            staging = stage(self.root, key.key, key.inputs, lambda d: _write(d, data))
            _publish(self.root, key.key, staging)
        except OSError as exc:
            if exc.errno in _DENIED:
                self.kernels.note_read_only(exc, "lowered programs are not kept", stacklevel=3)
            else:
                warnings.warn(f"gradgen: cannot keep a lowered program in {self.root} ({exc})",
                              CacheWarning, stacklevel=3)
            return
        why = self._broken.pop(key.key, None)
        self._event("stored" if why is None else "rebuilt", key, why)

    def _reject(self, key: LoweringKey, why: str) -> None:
        entry = self.root / key.key
        warnings.warn(f"gradgen: cache entry {entry} is broken ({why}); rebuilding it",
                      CacheWarning, stacklevel=2)
        self._broken[key.key] = why
        try:
            with _key_lock(self.kernels.root, key.key):
                _discard(entry, self.root)
        except OSError as exc:  # not discarded: the rebuilt entry cannot replace it either
            if exc.errno in _DENIED:
                self.kernels.note_read_only(exc, "lowered programs are not kept", stacklevel=3)
        return self._event("miss", key, why)

    def _event(self, kind: str, key: LoweringKey, reason: str | None) -> None:
        self.last_event = LoweringEvent(kind, key.key, self.root / key.key, reason)


def _write(directory: Path, data: bytes) -> dict:
    (directory / "lowering.pkl").write_bytes(data)
    return {"lowering_sha256": hashlib.sha256(data).hexdigest()}


_caches: dict[int, LoweringCache] = {}


def lowering_cache() -> LoweringCache:
    """The lowering cache beside :func:`~gradgen.runtime.cache.default_cache`."""
    kernels = default_cache()
    cache = _caches.get(id(kernels))
    if cache is None or cache.kernels is not kernels:
        cache = _caches[id(kernels)] = LoweringCache(kernels)
    return cache


__all__ = ["LoweringCache", "LoweringEvent", "LoweringKey", "lowering_cache", "lowering_key",
           "program_text", "sources_hash", "dumps", "loads"]
