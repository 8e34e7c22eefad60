"""Render a kernel schedule as one C module through the Jinja templates in ``templates/``.

The templates own the C skeleton (includes, signatures, loop nests, pragmas);
this module computes what goes into them: loop extents after merging axes that
every access walks contiguously, index arithmetic for each strided access, and
the per-element expressions of :mod:`gradgen.codegen.clower`. Elementwise
kernels render here; one-pass reductions (row, column-block and chunked forms) get
their context from :mod:`gradgen.codegen.reductions` (``reduction.c.jinja``), and
row-wise kernels (passes over each row, per-row scalars between them) from
:mod:`gradgen.codegen.rowwise` (``rowwise.c.jinja``).

Names: a value ``%12`` of the IR (as printed with numbers only) is ``v12`` in C,
the buffer holding it ``p12``; accumulators are ``acc0``...; kernels keep their
schedule names (``kernel_0``...) after an optional identifier prefix.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

import jinja2

from .. import __version__
from .._resources import templates_dir
from ..ir.core import Eqn, Literal, Program, Var
from ..ir.printer import print_program
from ..runtime.units import join_units
from . import checks, clower, gemm, reductions, rowwise
from .layout import numel, worth_threads
from .layout import access_strides as _access_strides, coalesce as _coalesce, index as _index
from .schedule import Kernel, Schedule, contiguous
from .steps import is_iota

_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_env: list[jinja2.Environment] = []


def sanitize(text: str) -> str:
    """``text`` reduced to the characters C comments may carry: ``[A-Za-z0-9_.:-]``."""
    return _SAFE.sub("_", text)


def environment() -> jinja2.Environment:
    """The one Jinja environment over ``templates/`` (runtime.templates adds a bytecode cache)."""
    if not _env:
        _env.append(jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())), undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False))
    return _env[0]


def _location(loc: str | None) -> str | None:
    """A source location as file basename and line, in safe characters only."""
    return None if loc is None else sanitize(re.split(r"[\\/]", loc)[-1])


def anonymized(program: Program) -> tuple[str, dict[int, str]]:
    """The program's text with every value numbered (no user names) and safe locations;
    also each equation's line, keyed by ``id(eqn)``."""
    new: dict[Var, Var] = {v: Var(v.id, v.aval) for v in program.inputs}
    eqns = []
    for e in program.eqns:
        new[e.out] = Var(e.out.id, e.out.aval)
        eqns.append(Eqn(e.prim, tuple(new.get(a, a) if isinstance(a, Var) else a for a in e.inputs),
                        new[e.out], e.params, _location(e.loc)))
    outs = [new.get(a, a) if isinstance(a, Var) else a for a in program.outputs]
    text = print_program(Program(list(new[v] for v in program.inputs), eqns, outs))
    lines = text.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("def ")) + 1
    return text, {id(e): lines[first + k].strip() for k, e in enumerate(program.eqns)}


@dataclass
class Module:
    """A rendered C module: its source, the cffi declarations, each schedule's kernel names,
    and each kernel's buffers in parameter order (inputs, then outputs)."""

    source: str
    cdef: str
    functions: list[list[str]]
    args: dict[str, list]


class _KernelText:
    """The template context of one kernel."""

    def __init__(self, k: Kernel, sched: Schedule, prefix: str, lines: dict[int, str]) -> None:
        self.k, self.sched = k, sched
        self.num = sched.numbers
        self.name = prefix + k.name
        self.lines = lines

    def v(self, a) -> str:
        if isinstance(a, Literal) and a.aval.ndim == 0:
            return clower.constant(a.value, a.aval.dtype)
        if a in self.k.consts:
            return clower.constant(self.k.consts[a].value, a.aval.dtype)
        return f"v{self.key(a)}"

    def key(self, a) -> int:
        """The number naming operand ``a`` (an array literal: that of its constant buffer)."""
        return self.num[self.k.loads[a].buffer.var] if isinstance(a, Literal) else self.num[a]

    def p(self, buf) -> str:
        return f"p{self.num[buf.var]}"

    def load(self, a, view, index: str) -> dict:
        """The statement loading operand ``a`` from ``view`` at element offset ``index``. An
        iota constant (its elements 0, 1, 2, ... in memory order, as the one-hot lowering's
        positions along a row) is its offset itself: no load."""
        ctype = clower.ctype(a.aval.dtype)
        expr = f"({ctype})({index})" if is_iota(view) else f"{self.p(view.buffer)}[{index}]"
        return {"kind": "let", "ctype": ctype, "name": self.v(a), "expr": expr}

    def let(self, e: Eqn) -> dict:
        """The statement computing equation ``e``'s value (a per-row alias: its operand)."""
        expr = self.v(e.inputs[0]) if e.prim.c_lowering.get("view") else \
            clower.elementwise(e, [self.v(a) for a in e.inputs])
        return {"kind": "let", "ctype": clower.ctype(e.out.aval.dtype), "name": self.v(e.out),
                "expr": expr}

    def context(self) -> dict:
        if self.k.gemm is not None:
            body = gemm.body(self)
        elif self.k.check is not None:
            body = checks.body(self)
        else:
            body = self.body() if rowwise.is_simple(self.k) else rowwise.body(self)
        # heap_arrays: row buffers allocated per piece of rows (a row-wise kernel's long rows)
        return {"gemm": None, "heap_arrays": [], **body,
                **self.header(body["params_in"], body["params_out"])}

    def line(self, e: Eqn) -> str:
        """Equation ``e`` as the IR text prints it (the program's, or what it stands for)."""
        got = self.lines.get(id(e))
        if got is not None:
            return got
        of = self.sched.derived.get(id(e))
        if of is not None:  # a column sum's total from its partials (codegen.colsums)
            return f"{self.lines[id(of[0])]}  ({of[1]})"
        return f"(copy of {self.v(e.inputs[0]).replace('v', '%', 1)})"

    def header(self, ins: list, outs: list) -> dict:
        """Name, parameters (buffers read, then written, by value number) and comment parts."""
        k = self.k
        ins = {self.p(b): b for b in ins}
        outs = {self.p(b): b for b in outs}
        params = [{"ctype": clower.buffer_ctype(b.var.aval.dtype), "name": n, "const": True}
                  for n, b in sorted(ins.items(), key=lambda nb: self.num[nb[1].var])]
        params += [{"ctype": clower.buffer_ctype(b.var.aval.dtype), "name": n, "const": False}
                   for n, b in sorted(outs.items(), key=lambda nb: self.num[nb[1].var])]
        eqn_lines = [self.line(e) for e in k.eqns]
        eqn_lines += [f"{self.lines[id(c.eqn)]}  (partial sums per block of {c.block} rows: "
                      f"%{self.num[c.partial]})" for c in k.column_sums]
        eqns = k.eqns + [c.eqn for c in k.column_sums]
        sources = sorted({_location(e.loc) for e in eqns if e.loc},
                         key=lambda s: (s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[-1])
                                        if s.rsplit(":", 1)[-1].isdigit() else 0))
        return {"name": self.name, "params": params, "eqn_lines": eqn_lines, "sources": sources,
                "domain": list(k.domain), "red_axes": list(k.red_axes or ()),
                "buffers": [ins[q["name"]] if q["const"] else outs[q["name"]] for q in params]}

    def body(self) -> dict:
        """The loop nest of an elementwise kernel (one-pass reductions: :mod:`.reductions`)."""
        k = self.k
        if reductions.is_reduction_kernel(k.eqns):
            return reductions.body(self)
        dom = k.domain
        loads = sorted(k.loads.items(), key=lambda kv: self.key(kv[0]))
        stores = sorted(k.stores.items(), key=lambda vb: self.num[vb[0]])
        accesses = [_access_strides(view.shape, view.strides, dom) for _, view in loads]
        accesses += [contiguous(dom) for _ in stores]
        ext, acc, _ = _coalesce(list(dom), [list(s) for s in accesses], len(dom))
        loops = [{"var": f"i{j}", "extent": n} for j, n in enumerate(ext)]
        idx = [_index(s) for s in acc]
        body = [self.load(v, view, idx[j]) for j, (v, view) in enumerate(loads)]
        body += [self.let(e) for e in k.eqns]
        for j, (v, buf) in enumerate(stores):
            body.append({"kind": "store", "ptr": self.p(buf), "index": idx[len(loads) + j],
                         "value": self.v(v)})
        return {"template": "elementwise.c.jinja", "kind": "elementwise", "outer": loops,
                "inner": [], "body": body, "accs": [], "finals": [],
                "parallel": worth_threads(numel(dom), body) and bool(loops), "simd_reduction": None,
                "params_in": [view.buffer for _, view in loads],
                "params_out": list(k.stores.values())}


def render_module(schedules: Sequence[Schedule], cache_key: str,
                  prefixes: Sequence[str] | None = None, split: bool = False) -> Module:
    """One C module holding the kernels of ``schedules`` (e.g. a forward and a backward
    program); kernel names get ``prefixes[i]`` (identifiers) to stay distinct.

    With ``split``, a large module comes as two translation units in one text
    (:mod:`gradgen.runtime.units`; :func:`unit_groups` decides), which only
    ``gradgen.runtime.compiler.build_shared`` knows how to build; else it is one C file."""
    prefixes = list(prefixes) if prefixes is not None else [""] * len(schedules)
    if len(prefixes) != len(schedules) or not all(p == "" or _IDENT.match(p) for p in prefixes):
        raise ValueError("render_module: one identifier prefix per schedule")
    kernels, texts, functions = [], [], []
    for sched, prefix in zip(schedules, prefixes):
        text, lines = anonymized(sched.program)
        texts.append(text)
        ks = [_KernelText(k, sched, prefix, lines).context() for k in sched.kernels]
        kernels.extend(ks)
        functions.append([k["name"] for k in ks])
    names = [k["name"] for k in kernels]
    if len(set(names)) != len(names):
        raise ValueError("render_module: kernel names collide; give each schedule a prefix")
    env = environment()
    texts_of = [env.get_template(k["template"]).render(k=k) for k in kernels]
    common = {"cache_key": sanitize(cache_key), "gradgen_version": sanitize(__version__),
              "ir_text": "\n\n".join(texts)}
    groups = unit_groups([_compile_cost(t) for t in texts_of]) if split else \
        [list(range(len(kernels)))]
    units = [{"index": i, "count": len(groups), "pool": any(k["parallel"] for k in kernels),
              "blas": gemm.module_context(kernels)["gemm_blas"]} for i in range(len(groups))]
    sources = [_render_unit(env, common, [kernels[j] for j in g], [texts_of[j] for j in g],
                            unit if len(groups) > 1 else None)
               for g, unit in zip(groups, units)]
    source = sources[0] if len(sources) == 1 else join_units(sources)
    cdef = env.get_template("cdef.c.jinja").render(kernels=kernels)
    return Module(source, cdef, functions, {k["name"]: k["buffers"] for k in kernels})


def _render_unit(env: jinja2.Environment, common: dict, kernels: list[dict],
                 kernel_texts: list[str], unit: dict | None) -> str:
    """One translation unit: the shared prelude and ``kernels`` (already rendered)."""
    exprs = [s["expr"] for k in kernels for s in k["body"] if "expr" in s]
    return env.get_template("module.c.jinja").render(
        **common, libm=clower.simd_libm(exprs), vecmath=clower.vecmath(exprs), kernels=kernels,
        kernel_texts=kernel_texts,
        unit=unit, **gemm.module_context(kernels))


# What a kernel costs gcc -O3, in lines of C code (its comment excluded): a matmul row call
# (gg_rows_*) inlines and unrolls two register tiles, and gcc versions and unrolls each
# `omp simd` loop (vector body, epilogues), each worth tens of lines (fitted on the MLP and
# layer-norm workloads' kernels; a rough guide, enough to balance two units).
_ROWS_COST, _SIMD_COST = 40, 30
# Two units pay from about this cost (gcc takes about 0.05 s + 0.6 ms per unit of cost, so
# 0.3 s and more): below it the second compiler's start, the prelude compiled twice and the
# separate link eat the gain of the second core.
SPLIT_COST = 500


def _compile_cost(kernel_text: str) -> int:
    code = kernel_text[kernel_text.find("*/"):]
    return (code.count("\n") + _ROWS_COST * code.count("gg_rows_")
            + _SIMD_COST * code.count("omp simd"))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def unit_groups(costs: Sequence[int], cores: int | None = None) -> list[list[int]]:
    """The kernels (indices, in order) of each translation unit: one unit, or two of about
    equal cost (longest first to the lighter one) when the module is worth compiling on two
    cores side by side and this machine has them."""
    cores = usable_cores() if cores is None else cores
    if cores < 2 or len(costs) < 2 or sum(costs) < SPLIT_COST:
        return [list(range(len(costs)))]
    groups: list[list[int]] = [[], []]
    load = [0, 0]
    for j in sorted(range(len(costs)), key=lambda j: -costs[j]):
        lighter = load.index(min(load))
        groups[lighter].append(j)
        load[lighter] += costs[j]
    return [sorted(g) for g in groups]


__all__ = ["Module", "render_module", "unit_groups", "SPLIT_COST", "anonymized", "sanitize", "environment"]
