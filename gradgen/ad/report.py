"""What ``compiled_fn.inspect()`` reports: per specialization its guards as text, the forward
and gradient IR, the generated C, the cache path, how it was traced and which BLAS it calls;
per signature that runs eagerly, the reason."""
from __future__ import annotations

from ..ir.core import Program
from ..ir.printer import print_program
from ..transforms import _GradProgram
from .cache import Fallback, TraceCache


def report(cache: TraceCache, fallback: Fallback) -> list[dict]:
    """``compiled_fn.inspect()``: one dict per specialization of ``cache`` and per signature
    ``fallback`` runs eagerly (see :meth:`gradgen.api.CompiledFunction.inspect`)."""
    out = []
    for key, (program, _, entry) in cache.entries.items():
        if isinstance(entry, _GradProgram):
            fwd, grad_ir = program, entry.joint
        else:
            fwd, grad_ir = entry.forward, entry.backward
        native = entry.native
        source = native.source if native is not None else None
        lazy = getattr(entry, "forward_native", None)  # a loss's forward, compiled when needed
        if lazy is not None and source is not None:
            source = lazy.source + "\n" + source
        trace = program.meta.get("trace")
        if trace == "real" and program.meta.get("abstract_stop"):
            trace = f"real (the abstract trace stopped: {program.meta['abstract_stop']})"
        out.append({
            "guards": _guard_lines(key, program), "forward_ir": print_program(fwd),
            "gradient_ir": print_program(grad_ir) if grad_ir is not None else None,
            "c_source": source,
            "cache_path": str(native.cache_path) if native is not None and
            native.cache_path is not None else None,
            "fallback_reason": None, "trace": trace, "blas": _blas_of(source),
            "fused": getattr(entry, "run_fused", None) is not None})
    for key, err in fallback.eager_keys.items():
        out.append({"guards": _guard_lines(key, None), "forward_ir": None,
                       "gradient_ir": None, "c_source": None, "cache_path": None,
                       "fallback_reason": f"{type(err).__name__}: {err}", "trace": None,
                       "blas": None, "fused": False})
    return out


def _blas_of(source: str | None) -> str | None:
    """Which BLAS a module calls (gradgen.runtime.blas), when it has a matmul that may."""
    if source is None or "gg_set_blas" not in source:
        return None
    from ..runtime.blas import describe  # noqa: PLC0415  (only modules with matmuls need it)
    return describe()


def _guard_lines(key: tuple, program: Program | None) -> list[str]:
    """A specialization's guards as text: argument types, grad mode, default dtype, captured
    tensors and the variables they came from, other values fn read, threads."""
    sig, extra, threads = key
    lines = []
    kw = extra is not None and len(extra) == 4 and isinstance(extra[2], bool)
    for what, (tree, leaves, _, _) in [("argument", sig)] + ([("keyword", extra)] if kw else []):
        for i, (shape, dt, rg, strides) in enumerate(leaves):
            step = tuple(s // dt.itemsize for s in strides)
            lines.append(f"tensor {what} {i}: shape {tuple(shape)}, dtype {dt}, requires_grad={rg}"
                         f", strides {step}")
        lines.append(f"{what} structure and constants: {tree!r}")
    lines.append(f"grad mode: {'enabled' if sig[2] else 'disabled'}")
    lines.append(f"default dtype: {sig[3]}")
    if extra is not None and not kw:
        lines.append(f"argnums: {extra}")
    if program is not None:
        sources = program.meta.get("captured_sources") or [None] * len(program.meta["captured"])
        for j, (t, src) in enumerate(zip(program.meta["captured"], sources)):
            read = "" if src is None else (f", still bound to global {src[2]!r}" if
                                           src[0] == "global" else ", still in fn's closure cell")
            lines.append(f"captured tensor {j}: the object at 0x{id(t):x}{read}, shape "
                         f"{tuple(t._data.shape)}, dtype {t._data.dtype}, "
                         f"requires_grad={t._requires_grad}")
        for kind, _, name, v, by_identity in program.meta.get("value_guards") or ():
            what = "global" if kind == "global" else "closure variable"
            same = f"is the object it was ({type(v).__name__})" if by_identity else \
                f"== {repr(v)[:60]}"
            lines.append(f"{what} {name!r} {same}")
    if threads is not None:
        lines.append(f"threads: {threads}")
    return lines


__all__ = ["report"]
