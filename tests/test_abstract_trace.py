"""Abstract tracing (``trace(fn, *args, abstract=True)``, what ``gradgen.compile`` traces with).

Oracle: the real trace. Over the corpus programs, the IR tests' corpus and the six benchmark
workloads the abstract trace gives the very same IR text without stopping; every read of a
value it does not have stops it, and the program then is the real trace's (same text, same
stop, same fallback); no garbage ever reaches user data.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import gradgen as gg
import test_corpus as corpus
import test_ir_trace as ir_corpus
from gradgen import compile
from gradgen.autograd import record
from gradgen.ir.printer import print_program
from gradgen.ir.trace import TraceError, trace
from gradgen.runtime import filehash

# The benchmark's workloads, when the repository's bench/ is beside tests/ (not when the tests
# run from a copy against an installed wheel, as CI's second stage does).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
try:
    import bench_compiled as bench  # noqa: E402
except ImportError:
    bench = None


def _both(fn, make):
    """(real program or error, abstract program or error) of ``fn`` on fresh ``make()``."""
    out = []
    for abstract in (False, True):
        try:
            out.append(trace(fn, *make(), abstract=abstract))
        except Exception as err:  # noqa: BLE001
            out.append(err)
    return out


def _cases():
    for name, fn, specs, _ in corpus.PRIMITIVE_CASES + corpus.COMPOSITE_CASES + corpus.PROGRAM_CASES:
        for dtype in (np.float64, np.float32):
            args = corpus.make_args(specs, dtype, 0)
            yield f"{name}-{np.dtype(dtype).name}", fn, lambda a=args: corpus._fresh(a)
    for fn, make in ir_corpus.CORPUS:
        yield f"ir-{fn.__name__}", fn, make
    for w in bench.WORKLOADS if bench is not None else ():
        arrays = w.make(np.random.default_rng(0))
        yield f"bench-{w.name}", bench.gradgen_loss(w), \
            lambda w=w, a=arrays: bench._tensors(gg, w, a, True)


def test_corpus_and_benchmarks_trace_abstractly_to_the_same_ir() -> None:
    n, differ, stopped = 0, [], []
    for name, fn, make in _cases():
        real, abstract = _both(fn, make)
        n += 1
        if isinstance(real, Exception) or isinstance(abstract, Exception):
            if type(real) is not type(abstract) or str(real) != str(abstract):
                differ.append(f"{name}: {real!r} vs {abstract!r}")
            continue
        if abstract.meta["trace"] != "abstract":
            stopped.append(f"{name}: {abstract.meta['abstract_stop']}")
        if print_program(real) != print_program(abstract):
            differ.append(name)
    assert n > 500
    assert not differ, differ
    assert not stopped, stopped


# ---------------------------------------------------------------- what stops it

W = gg.tensor(np.arange(6.0).reshape(2, 3))  # a captured tensor
LOG: list = []


def _bool_index(x):
    return x[(x.sum() > 0)]  # a 0-d boolean index: its value decides the shape


def _allclose(x):
    return x * 2 if gg.allclose(x * 1, x) else x


def _inplace_captured(x):
    W[0].add_(1)  # through a view: a write into memory holding values (an input's)
    return x * W


def _inplace_factory(x):
    buf = gg.zeros(2, 3, dtype=x.dtype)
    buf[0] = x[0]
    return buf * 2


def _assign_data(x):
    W.data = W * 1
    return x + W


def _escape(x):
    y = x * 2
    LOG.append(y)
    return y + 1


def _matmul_mismatch(x):
    return x @ x  # [2,3] @ [2,3]: eager's own error


STOPS = [
    (_bool_index, "0-d boolean tensor"),
    (_allclose, "allclose"),
    (_inplace_factory, "in-place write into memory holding values"),
    (_assign_data, "assigning .data"),
    (_escape, "outlived it"),
]


def _x():
    return gg.tensor(np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]]))


@pytest.mark.parametrize("fn,why", STOPS, ids=[f.__name__ for f, _ in STOPS])
def test_a_value_read_stops_the_abstract_trace_and_the_real_one_decides(fn, why) -> None:
    w0 = W.detach().numpy().copy()
    real, abstract = _both(fn, lambda: (_x(),))
    W.data = gg.tensor(w0)  # undo the real traces' writes: abstract's must leave none
    LOG.clear()
    assert abstract.meta["trace"] == "real" and why in abstract.meta["abstract_stop"]
    assert print_program(abstract) == print_program(real)


def test_in_place_on_a_captured_tensor_writes_only_real_values() -> None:
    w0 = W.detach().numpy().copy()
    with pytest.raises(TraceError, match="in-place mutation of a program input"):
        trace(_inplace_captured, _x(), abstract=True)
    # Neither trace wrote: the real one stops before a write into an input's memory, so a
    # compiled call falling back to eager writes once, as eager does.
    np.testing.assert_array_equal(W.detach().numpy(), w0)


def test_an_escaped_tensor_holds_the_real_values() -> None:
    LOG.clear()
    x = _x()
    trace(_escape, x, abstract=True)
    assert len(LOG) == 2  # the function ran twice (abstract, then real): documented
    for y in LOG:
        np.testing.assert_array_equal(y.numpy(), x.numpy() * 2)
    LOG.clear()


def test_an_escaped_copy_with_a_history_is_the_real_tensor() -> None:
    kept = []

    def fn(x):
        y = (x * 2).flip(0)  # flip copies the data: a tensor the abstract trace made by copy
        kept.append(y)
        return y.sum()
    x = _x().requires_grad_()
    program = trace(fn, x, abstract=True)
    assert program.meta["trace"] == "real" and len(kept) == 2
    np.testing.assert_array_equal(kept[0].detach().numpy(), x.detach().numpy()[::-1] * 2)
    kept[0].sum().backward()  # its history is the real trace's: gradients are right
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_eager_errors_come_from_the_real_trace() -> None:
    real, abstract = _both(_matmul_mismatch, lambda: (_x(),))
    assert type(abstract) is type(real) and str(abstract) == str(real)


@pytest.mark.parametrize("fn", [lambda x: x.sum().item() * x, lambda x: x * gg.rand(2, 3)])
def test_a_stop_a_real_trace_makes_too_is_raised_at_once(fn) -> None:
    calls = []

    def body(x):
        calls.append(1)
        return fn(x)
    real, abstract = _both(body, lambda: (_x(),))
    assert isinstance(abstract, TraceError) and type(abstract) is TraceError
    assert (abstract.reason, abstract.where) == (real.reason, real.where)
    assert len(calls) == 2  # one real trace, one abstract: no second try


def test_compile_first_call_runs_fn_once_and_matches_eager() -> None:
    calls = []

    def loss(x, w):
        calls.append(1)
        return (gg.tanh(x * w) * gg.sigmoid(x)).sum()
    cf = compile(loss, backend="interpret")
    x, w = _x().requires_grad_(), _x()
    out = cf(x, w)
    out.backward()
    xe = _x().requires_grad_()
    want = loss(xe, w)
    want.backward()
    assert len(calls) == 2 and cf.fallback_reason is None  # one trace, one eager reference
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), xe.grad.numpy(), rtol=1e-10)


def test_compile_falls_back_as_before_when_the_abstract_trace_stops() -> None:
    calls = []

    def body(x):
        calls.append(1)
        return _inplace_factory(x)  # abstract stops, the real trace goes through
    cf = compile(body, backend="interpret")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cf(_x())
    np.testing.assert_array_equal(out.numpy(), _inplace_factory(_x()).numpy())
    assert len(calls) == 2 and cf.entries()[0].program.meta["trace"] == "real"


def test_no_values_outside_a_trace_read_normally() -> None:
    arr = np.ones(3).view(record.NoValues)
    assert record.abstract[0] is None and record.values(arr, "test") is arr


# ---------------------------------------------------------------- the tree hash memo

def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("a = 1\n")
    (root / "sub" / "b.py").write_text("b = 2\n")
    (root / "c.txt").write_text("ignored")
    return root


def test_tree_hash_memo_is_written_only_for_settled_files(tmp_path, monkeypatch) -> None:
    root, memo = _tree(tmp_path), tmp_path / "memo" / "h.json"
    plain = filehash.tree_hash(str(root), ".py", None)
    assert filehash.tree_hash(str(root), ".py", memo) == plain and not memo.exists()  # racy
    monkeypatch.setattr(filehash.time, "time_ns", lambda: 10**20)  # every file long settled
    assert filehash.tree_hash(str(root), ".py", memo) == plain and memo.exists()
    def no_reading(*args, **kwargs):
        raise AssertionError("a memo hit reads no file contents")
    monkeypatch.setattr(filehash, "open", no_reading, raising=False)
    assert filehash.tree_hash(str(root), ".py", memo) == plain  # from the memo


def test_tree_hash_sees_an_edit_and_ignores_a_broken_memo(tmp_path, monkeypatch) -> None:
    root, memo = _tree(tmp_path), tmp_path / "memo" / "h.json"
    monkeypatch.setattr(filehash.time, "time_ns", lambda: 10**20)
    before = filehash.tree_hash(str(root), ".py", memo)
    (root / "a.py").write_text("a = 10\n")  # another size, mtime and ctime
    after = filehash.tree_hash(str(root), ".py", memo)
    assert after != before and after == filehash.tree_hash(str(root), ".py", None)
    memo.write_text("{not json")
    assert filehash.tree_hash(str(root), ".py", memo) == after


def test_python_abi_is_sysconfigs() -> None:
    import sysconfig

    from gradgen.runtime.compiler import python_abi
    assert python_abi() == (sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag)


def test_prefetched_compiler_is_identified_once(monkeypatch) -> None:
    from gradgen.runtime import compiler
    calls = []
    info = compiler.CompilerInfo(("/bin/cc-test",), "cc-test 1.0", True, False)

    def identify(argv):
        calls.append(argv)
        return info
    monkeypatch.setattr(compiler, "_memo", {})
    monkeypatch.setattr(compiler, "resolve_compiler_argv", lambda: ("/bin/cc-test",))
    monkeypatch.setattr(compiler, "_identify", identify)
    compiler.prefetch_compiler(None)
    assert compiler.find_compiler(None) is info and compiler.find_compiler(None) is info
    assert len(calls) == 1
