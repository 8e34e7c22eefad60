"""``gradgen.compile``: run a function as traced, optimized, compiled programs.

The function is traced once per input signature (shapes, dtypes, requires_grad
flags, grad mode, and the values of non-tensor arguments); ``compile`` runs the
optimized forward program (as C kernels by default) and attaches a grad_fn
running the backward program. When tracing or compiling stops (a tensor's value
flowing into Python, random numbers, no C compiler, ...) the call runs eagerly
instead, with one warning per function saying why.
"""
from __future__ import annotations


import functools
import os
import types
from typing import Any, Callable


from .ad.cache import (Fallback, SpecializationLimit, TraceCache, _signature, fast_signature,
                       inputs_of, signature)
from .ad.compiled import CompiledEntry
from .ad.grad_runner import GradRunner
from .ad.report import report
from .autograd import record
from .autograd.record import TraceBusy
from .ir.core import Program
from .ir.tree import flatten
from .passes.pipeline import optimize
from .runtime.threads import get_num_threads

from .transforms import (BACKENDS, _STOPS, _check_argnums, _check_diff_args, _eager_value_and_grad,
                         _GradProgram, _loss_index, _run_grad)

# ---------------------------------------------------------------- compile

class NativeFailure(RuntimeError):
    """The C backend could not build a specialization; ``cause`` is the underlying error."""

    def __init__(self, cause: Exception) -> None:
        self.cause = cause
        super().__init__(f"C backend: {type(cause).__name__}: {cause}")


def _native(step: Callable, *args: Any) -> Any:
    """``step(*args)``, any failure a :class:`NativeFailure` (the call falls back to eager)."""
    try:
        return step(*args)
    except Exception as exc:  # when in doubt, fall back: never run a half-built module
        raise NativeFailure(exc) from exc


class _CLower:
    """The C backend's ``lower`` for one specialization, backed by the lowering cache.

    :meth:`restore` loads what an earlier process kept for this trace and mode (``facts``):
    the caller's AD state and the lowered module, whose kernels then come from the kernel
    cache -- no AD, passes, scheduling or rendering (a warm start). Otherwise calling it lowers
    programs to one C module (cache or compiler) with an executable each, and :meth:`save`
    keeps the caller's AD state with that lowering for the next process.
    """

    def __init__(self, program: Program, facts: dict, threads: int | None = None) -> None:
        from .runtime.lowering import lowering_cache, lowering_key  # no codegen, no jinja
        self.program, self.facts, self.lowered = program, facts, None
        self.threads = get_num_threads() if threads is None else threads
        self.cache = lowering_cache()
        try:
            self.key = lowering_key(program, facts, self.threads)
        except OSError:  # gradgen's own files unreadable: no key, no lowering cache
            self.key = None

    def restore(self) -> tuple[Any, Any] | None:
        """``(AD state, native build)`` of a kept lowering, else None."""
        hit = self.cache.load(self.key, self.program) if self.key is not None else None
        if hit is None:
            return None
        from .runtime.executor import load_lowered
        return hit[0], _native(load_lowered, hit[1], self.threads)

    def __call__(self, programs: list[Program]) -> Any:
        from .runtime.cache import prefetch_compiler
        from .runtime.executor import load_lowered, lower_programs
        prefetch_compiler()  # its subprocesses run while the C is generated
        self.lowered = _native(lower_programs, programs)
        return _native(load_lowered, self.lowered, self.threads)

    def save(self, state: Any) -> None:
        if self.key is not None and self.lowered is not None:
            self.cache.save(self.key, self.program, state, self.lowered)

    def part(self, name: str) -> Callable[[Program], Any]:
        """``build(program)``: the native build of one more program of this trace (a loss's
        forward alone), made when first needed, kept in the lowering cache under this
        lowering's facts plus ``name``, with the same thread count."""
        def build(program: Program) -> Any:
            lower = _CLower(self.program, {**self.facts, "part": name}, self.threads)
            hit = lower.restore()
            if hit is not None:
                return hit[1]
            native = lower([program])
            lower.save({})
            return native
        return build


# The switch is read on every call, so setting it mid-run takes effect at once. os.environ.get
# costs about half a microsecond (key encoding through the Mapping layer), a tenth of a compiled
# call's budget: read os.environ's own backing dict, with the keys and values it stores.
_DISABLE = os.environ.encodekey("GRADGEN_DISABLE_COMPILE")
_ENABLED_VALUES = (os.environ.encodevalue(""), os.environ.encodevalue("0"))


def _compile_disabled() -> bool:
    data = getattr(os.environ, "_data", None)
    if data is None:  # not CPython's os._Environ
        return os.environ.get("GRADGEN_DISABLE_COMPILE", "") not in ("", "0")
    return data.get(_DISABLE, _ENABLED_VALUES[0]) not in _ENABLED_VALUES


class CompiledFunction:
    """``fn`` specialized per input signature; see :func:`compile`.

    Inspection: ``inspect()`` describes every specialization; ``entries()`` lists
    the compiled entries (each with ``program``, ``forward``, ``backward``);
    ``fallback_reason`` is why the last eager call ran eagerly.
    """

    def __init__(self, fn: Callable, backend: str = "c", fullgraph: bool = False,
                 max_specializations: int = 8) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"gradgen.compile: unknown backend {backend!r}; expected one of "
                             + ", ".join(repr(b) for b in BACKENDS))
        if isinstance(max_specializations, bool) or not isinstance(max_specializations, int) \
                or max_specializations < 1:
            raise ValueError("gradgen.compile: max_specializations must be a positive int, got "
                             f"{max_specializations!r}")
        functools.update_wrapper(self, fn, updated=())  # name and doc only: fn's attributes stay fn's
        self.fn = fn
        self.backend = backend
        self.fullgraph = bool(fullgraph)
        self.max_specializations = max_specializations
        self._lower = _CLower if backend == "c" else None
        self._grad_spec = getattr(fn, "_gradgen_grad_spec", None)
        self._fallback = Fallback(fn, "compile", stacklevel=5)  # warn at the user's call
        # The first call's result comes from the compiled program: trace without values.
        self._cache = TraceCache(self._entry, max_specializations, abstract=True,
                                 grad_mode=self._grad_spec is not None)

    @property
    def fallback_reason(self) -> Exception | None:
        return self._fallback.reason

    def entries(self) -> list[Any]:
        return [entry for _, _, entry in self._cache.entries.values()]

    def _entry(self, program: Program) -> CompiledEntry:
        """The compiled entry of a new trace: from the lowering cache, else built (and kept)."""
        requires = _requires(program)
        if self._lower is None:
            return CompiledEntry(program, requires, optimize)
        lower = self._lower(program, {"mode": "compile", "requires_grad": list(requires)})
        forward = lower.part("loss forward")  # (used for a loss only)
        hit = lower.restore()
        if hit is not None:
            entry = CompiledEntry.restore(program, optimize, *hit, forward)
        else:
            entry = CompiledEntry(program, requires, optimize, lower, forward)
            lower.save(entry.ad_state())
        entry.strict = self.fullgraph
        return entry

    def _grad_entry(self, program: Program, nums: tuple, has_aux: bool) -> _GradProgram:
        """The joint program of a new ``value_and_grad`` trace: from the lowering cache, else
        built (and kept)."""
        if self._lower is None:
            return _GradProgram(program, nums, has_aux, None)
        loss, aux = _loss_index(program, has_aux)
        lower = self._lower(program, {"mode": "value_and_grad", "argnums": list(nums),
                                      "has_aux": has_aux, "loss": loss})
        hit = lower.restore()
        if hit is not None:
            return _GradProgram.restore(*hit, aux)
        gp = _GradProgram(program, nums, has_aux, lower)
        lower.save(gp.state())
        return gp

    def _key(self, sig: tuple, extra: Any = None) -> tuple:
        """(argument signature, keyword signature or argnums, thread count for the C backend)."""
        return (sig, extra, get_num_threads() if self._lower is not None else None)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """``@gradgen.compile`` on a method: bound to an instance, a call passes it as the first
        argument (one set of specializations per instance; its tensors are read by reference)."""
        return self if obj is None else types.MethodType(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.backend == "eager" or (record.tracer[0] is not None and record.tracing()) or \
                _compile_disabled():
            if self._grad_spec is not None and not kwargs and not record.tracing():
                return self._eager_grad(args)  # value_and_grad would trace: eager autograd
            return self.fn(*args, **kwargs)  # under a trace, the outer trace records fn inline
        fast = None
        if not kwargs:
            # All-tensor positional arguments: one pass makes the key, one lookup finds the
            # entry; only the captured tensors are left to check.
            fast = fast_signature(args)
            if fast is not None:
                fast = (fast, get_num_threads() if self._lower is not None else None)
                hit = self._cache.fast.get(fast)
                # (guard None: the program read no variable that could change)
                if hit is not None and (hit[1] is None or hit[1]()):
                    return hit[2](args)
            if self._grad_spec is not None:
                return self._call_grad(args, fast)
        return self._call(args, kwargs, fast)

    def _call(self, args: tuple, kwargs: dict, fast: tuple | None) -> Any:
        """The general path: key by flattening, look up (or trace and build), run."""
        fn = self.fn
        flat = None
        try:
            if kwargs:
                key = self._key(signature(args), signature((kwargs,)))
                fn = functools.partial(self.fn, **kwargs)
            else:
                flat = flatten(args)
                key = self._key(_signature(flat))
        except TypeError as err:
            return self._eager(err, None, args, kwargs)
        if key in self._fallback.eager_keys:
            return self.fn(*args, **kwargs)
        if kwargs and flatten((kwargs,))[0]:
            return self._eager(TypeError("tensors passed as keyword arguments are not traced"),
                               key, args, kwargs)
        try:
            program, entry = self._cache.get(fn, args, key)
        except TraceBusy:  # another thread is tracing: eager this time, compiled later
            return self.fn(*args, **kwargs)
        except _STOPS + (SpecializationLimit, NativeFailure) as err:
            return self._eager(err, key, args, kwargs)
        if fast is not None:
            self._cache.index_fast(fast, key, entry.run_args)
        return entry.call(inputs_of(program, args, flat[0] if flat is not None else None))

    def _call_grad(self, args: tuple, fast: tuple | None = None) -> Any:
        """``compile(value_and_grad(loss))`` (or of ``grad``): the joint program, compiled."""
        loss, argnums, has_aux, _ = self._grad_spec
        nums = _check_argnums(argnums, len(args))
        _check_diff_args(args, nums)
        try:
            key = self._key(signature(args), nums)
        except TypeError as err:
            key, failed = None, err
        else:
            failed = self._fallback.eager_keys.get(key)
        if failed is None:
            try:
                program, gp = self._cache.get(loss, args, key,
                                              lambda p: self._grad_entry(p, nums, has_aux))
            except TraceBusy as err:  # another thread is tracing: eager this time
                failed = err
            except _STOPS + (SpecializationLimit, NativeFailure) as err:
                self._note(err, key)
                failed = err
        if failed is not None:
            return self._grad_result(*_eager_value_and_grad(loss, args, nums, has_aux))
        slow = functools.partial(self._run_grad, program, gp, nums)
        if fast is not None:
            self._cache.index_fast(fast, key, GradRunner(program, gp, args, nums,
                                                         self._grad_spec, slow).call)
        return slow(args)

    def _eager_grad(self, args: tuple) -> Any:
        """``value_and_grad``/``grad`` of the loss by eager autograd (the tape), no tracing."""
        loss, argnums, has_aux, _ = self._grad_spec
        nums = _check_argnums(argnums, len(args))
        _check_diff_args(args, nums)
        return self._grad_result(*_eager_value_and_grad(loss, args, nums, has_aux))

    def _run_grad(self, program: Program, gp: _GradProgram, nums: tuple, args: tuple) -> Any:
        return self._grad_result(*_run_grad(program, gp, args, nums, self._grad_spec[2]))

    def _grad_result(self, value: Any, per: list) -> Any:
        _, argnums, has_aux, with_value = self._grad_spec
        grads = per[0] if isinstance(argnums, int) else tuple(per)
        if with_value:
            return value, grads
        return (grads, value[1]) if has_aux else grads

    def _note(self, err: Exception, key: Any) -> None:
        if self.fullgraph:  # fullgraph=True: every reason to fall back is an error
            if isinstance(err, NativeFailure):
                raise err.cause
            raise err
        self._fallback.note(err, key)

    def _eager(self, err: Exception, key: Any, args: tuple, kwargs: dict) -> Any:
        self._note(err, key)
        return self.fn(*args, **kwargs)

    def inspect(self) -> list[dict]:
        """One dict per specialization: ``guards`` (lines of text), ``forward_ir`` and
        ``gradient_ir`` (IR text; for ``compile(value_and_grad(f))`` the forward is the traced
        program and the gradient the joint program), ``c_source`` (for ``compile(fn)`` of a
        loss: the joint program's module, after the loss-only forward's once a call has needed
        it), ``cache_path`` (the cache entry directory) and ``fallback_reason`` (None when
        compiled); ``trace``: how the program was traced ("abstract", or "real" and why the
        abstract trace stopped); ``blas``: which BLAS the module's large matmuls call, or why
        none (None: it has none); ``fused``: whether the first call and calls after a
        differentiated one run ``gradient_ir`` alone (the joint program of a loss, its
        cotangent held at one). Signatures that run eagerly are listed too, with their reason
        and no programs."""
        return report(self._cache, self._fallback)


def _requires(program: Program) -> tuple[bool, ...]:
    # (Called under no_grad, fn was traced in that mode: its outputs are cut from the inputs'
    # gradients unless fn turned grad mode on itself, as eager would record them.)
    return tuple(program.meta["requires_grad"])


def compile(fn: Callable | None = None, *, backend: str = "c", fullgraph: bool = False,
            max_specializations: int = 8) -> Any:
    """Compile ``fn``: trace it on the first call per input signature, then run the programs.

    Each signature (input shapes, dtypes, requires_grad flags, grad mode,
    default dtype, non-tensor arguments, thread count) is traced once into a
    forward program and, when an input requires grad, a backward program; its
    guard also checks the shape and dtype of captured tensors, that the globals
    and closure variables ``fn`` read them from still hold them, and that the
    other values ``fn`` read from its globals and closure are unchanged (a
    rebinding traces again). Later calls whose guards hold run them
    without running ``fn``'s Python. Outputs that need gradients get a
    ``CompiledFunctionBackward`` grad_fn running the backward program, so
    ``loss.backward()`` fills ``.grad`` exactly as eager mode does
    (``create_graph=True`` evaluates the gradient program with eager
    primitives, so second derivatives are eager's). When ``fn`` returns a loss
    (one floating-point element), the backward program is the joint gradient
    program, and once a call's loss has been differentiated later calls are
    *fused*: they run that program with a cotangent of one, so loss and
    gradients come from one pass and ``backward()`` only hands the gradients
    out (see :mod:`gradgen.ad.compiled`). The first call's result
    comes from the programs too: its trace computes no values (an abstract
    trace, see :mod:`gradgen.ir.abstract`) unless it has to read one, and then
    ``fn`` is traced again on the real data (its side effects, a print, run twice).

    Backends: ``"c"`` (default) fuses the programs into C kernels, built once
    and kept in the disk cache (``GRADGEN_CACHE_DIR``); matmul is a kernel too
    (a generated loop, or the BLAS numpy uses for large products); operations
    the schedule keeps out of kernels -- general indexing, and any primitive
    without a C lowering -- run as their numpy implementation between
    kernels. ``"interpret"`` runs the programs in the reference interpreter;
    ``"eager"`` (or the environment variable ``GRADGEN_DISABLE_COMPILE=1``)
    calls ``fn`` directly.

    Eager fallback: when tracing stops, the C generator refuses a program
    (e.g. an unsupported dtype), no C compiler is found or it fails, or more
    than ``max_specializations`` signatures are seen, the call runs ``fn``
    eagerly; one warning per function says why ("falling back to eager"), and
    ``inspect()`` / ``fallback_reason`` keep the reason. Signatures already
    compiled keep running compiled. ``fullgraph=True`` raises instead.

    ``compile(value_and_grad(loss, argnums))`` (or of ``grad``) compiles the
    value and the gradients as one program: one call, no tape.

    >>> import gradgen as gg
    >>> from gradgen.api import compile
    >>> f = compile(lambda x: (x * x).sum(), backend="interpret")
    >>> x = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> f(x).backward(); x.grad
    tensor([2., 4.])
    """
    if fn is None:
        return lambda f: CompiledFunction(f, backend, fullgraph, max_specializations)
    return CompiledFunction(fn, backend, fullgraph, max_specializations)


__all__ = ["compile", "CompiledFunction", "signature", "NativeFailure"]

