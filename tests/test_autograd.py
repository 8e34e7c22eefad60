"""The autograd core: PyTorch's errors word for word, graph structure, hooks, grad modes, gradcheck."""
from __future__ import annotations

import re
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd import GradcheckError, gradcheck, gradgradcheck
from gradgen.tensor import Tensor

FREED = "Trying to backward through the graph a second time"
INPLACE = ("one of the variables needed for gradient computation has been modified by an inplace "
           "operation")


def _bump_in_place(t: Tensor) -> None:
    """``with no_grad(): t.add_(1)`` (by hand if the in-place methods are missing)."""
    if hasattr(Tensor, "add_"):
        with gg.no_grad():
            t.add_(1)
    else:
        t._data[...] += 1
        t._version.value += 1


def _leaf(values, dtype=gg.float32) -> Tensor:
    return gg.tensor(values, dtype=dtype, requires_grad=True)


# ----------------------------------------------------------------------------- PyTorch's errors
def _backward_twice():
    x = _leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    y.backward()


def _saved_modified():
    x = _leaf([1.0, 2.0])
    y = x * 2
    z = y.sin()  # saves y
    _bump_in_place(y)
    z.sum().backward()


def _saved_leaf_modified():
    x = _leaf([1.0, 2.0])
    w = x.sin()  # saves the leaf x
    _bump_in_place(x)
    w.sum().backward()


def _nonleaf_requires_grad():
    y = _leaf([1.0]) * 2
    y.requires_grad = False


ERRORS = [
    ("backward twice", _backward_twice, RuntimeError,
     FREED + " (or directly access saved tensors after they have already been freed). Saved "
     "intermediate values of the graph are freed when you call .backward() or autograd.grad(). "
     "Specify retain_graph=True if you need to backward through the graph a second time or if you "
     "need to access saved tensors after calling backward."),
    ("implicit non-scalar", lambda: (_leaf([1.0, 2.0]) * 2).backward(), RuntimeError,
     "grad can be implicitly created only for scalar outputs"),
    ("gradient shape", lambda: (_leaf([[1.0, 2.0], [3.0, 4.0]]) * 2).backward(gg.ones(3)),
     RuntimeError, "Mismatch in shape: grad_output[0] has a shape of torch.Size([3]) and output[0] "
     "has a shape of torch.Size([2, 2])."),
    ("no graph", lambda: gg.ones(2).sum().backward(), RuntimeError,
     "element 0 of tensors does not require grad and does not have a grad_fn"),
    ("int requires_grad", lambda: setattr(gg.ones(2, dtype=gg.int64), "requires_grad", True),
     RuntimeError, "only Tensors of floating point and complex dtype can require gradients"),
    ("bool requires_grad", lambda: setattr(gg.tensor([True]), "requires_grad", True),
     RuntimeError, "only Tensors of floating point and complex dtype can require gradients"),
    ("int requires_grad_", lambda: gg.ones(2, dtype=gg.int32).requires_grad_(), RuntimeError,
     "only Tensors of floating point dtype can require gradients"),
    ("non-leaf requires_grad", _nonleaf_requires_grad, RuntimeError,
     "you can only change requires_grad flags of leaf variables. If you want to use a computed "
     "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."),
    ("saved non-leaf modified", _saved_modified, RuntimeError,
     INPLACE + ": [torch.FloatTensor [2]], which is output 0 of Mul, is at version 1; expected "
     "version 0 instead. Hint: enable anomaly detection to find the operation that failed to compute "
     "its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False)."),
    ("saved leaf modified", _saved_leaf_modified, RuntimeError,
     INPLACE + ": [torch.FloatTensor [2]] is at version 1; expected version 0 instead. Hint: enable "
     "anomaly detection to find the operation that failed to compute its gradient, with "
     "torch.autograd.set_detect_anomaly(True, check_nan=False)."),
    ("grad of unused", lambda: gg.autograd.grad((_leaf([1.0]) * 2).sum(), [_leaf([1.0])]),
     RuntimeError, "The differentiated Tensor at index 0 appears to not have been used in the graph. "
     "Set allow_unused=True if this is the desired behavior."),
    ("grad wrt constant", lambda: gg.autograd.grad((_leaf([1.0]) * 2).sum(), [gg.ones(1)]),
     RuntimeError, "One of the differentiated Tensors does not require grad"),
    ("grad with no inputs", lambda: gg.autograd.grad((_leaf([1.0]) * 2).sum(), []),
     RuntimeError, "`inputs` argument to `grad()` cannot be empty."),
    ("backward with no inputs", lambda: (_leaf([1.0]) * 2).sum().backward(inputs=[]),
     RuntimeError, "`inputs` argument to `backward()` cannot be empty."),
]


@pytest.mark.parametrize("name,fn,exc,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_pytorch_error(name, fn, exc, message):
    with pytest.raises(exc) as info:
        fn()
    assert str(info.value) == message


def test_nonleaf_grad_warns():
    y = _leaf([1.0]) * 2
    with pytest.warns(UserWarning, match=r"The \.grad attribute of a Tensor that is not a leaf Tensor "
                                          r"is being accessed") as caught:
        assert y.grad is None
    assert str(caught[0].message).endswith("pull/30531 for more information.")  # PyTorch 2.13's
    y.retain_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert y.grad is None  # retained: no warning


# ----------------------------------------------------------------------------- backward semantics
def test_grad_accumulates_over_two_backward_calls():
    x = _leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad._data, [3 + 2, 3 + 4])


def test_retain_graph_allows_second_backward():
    x = _leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad._data, [4.0, 8.0])
    with pytest.raises(RuntimeError, match=FREED):
        y.backward()


def test_add_saves_nothing_so_backward_twice_works():
    x = gg.ones(2, 2, requires_grad=True)
    y = x + 2
    y.backward(gg.ones(2, 2))
    y.backward(gg.ones(2, 2))  # AddBackward0 saves nothing: no retain_graph needed, as in PyTorch
    np.testing.assert_allclose(x.grad._data, np.full((2, 2), 2.0))


# A second backward without retain_graph raises exactly where PyTorch 2.13's node saved data: a
# tensor, an index, or the number of `x * 3` / `x / 3` (saved as a tensor); composites' constants
# and shapes are no saved data (`x.mean()`, `x + 3`, `add(alpha=)` backpropagate twice).
SECOND_BACKWARD = [
    ("x * 3", True), ("3 * x", True), ("x / 3", True), ("torch.mul(x, 3)", True),
    ("x.div(3)", True), ("x.clone().mul_(2)", True), ("x.clone().div_(2)", True),
    ("x * torch.tensor(3.)", True), ("3 / x", True), ("x ** 2", True), ("x.abs()", True),
    ("x[torch.tensor([True, False, True])]", True), ("x[[0, 1]]", True),
    ("x.index_select(0, torch.tensor([0, 2]))", True), ("x.std()", True),
    ("x + 3", False), ("x - 3", False), ("-x", False), ("x.mean()", False), ("x.sum(0)", False),
    ("x.mean(0)", False), ("x[1:]", False), ("x.expand(2, 3)", False), ("x.view(3, 1).t()", False),
    ("torch.add(x, x, alpha=2)", False), ("torch.sub(x, x, alpha=2)", False),
]


def _second_backward_raises(torch, expr: str) -> bool:
    x = torch.ones(3, requires_grad=True)
    y = eval(expr, {"torch": torch, "x": x})
    y.sum().backward()
    try:
        y.sum().backward()
    except RuntimeError as e:
        assert FREED in str(e)
        return True
    return False


@pytest.mark.parametrize("expr, raises", SECOND_BACKWARD, ids=[e for e, _ in SECOND_BACKWARD])
def test_second_backward_raises_where_pytorch_saved_data(expr: str, raises: bool) -> None:
    assert _second_backward_raises(gg, expr) is raises


def test_second_backward_table_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    assert [e for e, r in SECOND_BACKWARD if _second_backward_raises(torch, e) is not r] == []


def test_leaf_shared_by_two_outputs_accumulates():
    x = _leaf([1.0, 2.0])
    a, b = x * 2, x * x
    gg.autograd.backward([a.sum(), b.sum()])
    np.testing.assert_allclose(x.grad._data, [2 + 2, 2 + 4])
    x.grad = None
    a, b = x * 2, x * x
    (a + b).sum().backward()
    np.testing.assert_allclose(x.grad._data, [4.0, 6.0])


def test_backward_inputs_restricts_accumulation():
    u, v = _leaf([1.0, 2.0]), _leaf([3.0])
    (u.sum() * v).sum().backward(inputs=[v])
    assert u.grad is None
    np.testing.assert_allclose(v.grad._data, [3.0])
    w = _leaf([1.0])
    (u * 2).sum().backward(inputs=[w])  # unused input: nothing happens, as in PyTorch
    assert w.grad is None


# ----------------------------------------------------------------------------- hooks, retain_grad
def test_leaf_hook_replaces_gradient_and_handle_removes_it():
    p = _leaf([1.0, 2.0])
    seen = []
    handle = p.register_hook(lambda g: g * 10)
    p.register_hook(lambda g: seen.append(g._data.copy()))
    (p * 3).sum().backward()
    np.testing.assert_allclose(p.grad._data, [30.0, 30.0])
    np.testing.assert_allclose(seen[0], [30.0, 30.0])  # hooks chain in registration order
    handle.remove()
    p.grad = None
    (p * 3).sum().backward()
    np.testing.assert_allclose(p.grad._data, [3.0, 3.0])


def test_nonleaf_hook_sees_and_replaces_its_gradient():
    p = _leaf([1.0, 2.0])
    q = p * 2
    seen = []
    q.register_hook(lambda g: seen.append(g._data.copy()))
    q.register_hook(lambda g: g + 1)
    (q * q).sum().backward()
    np.testing.assert_allclose(seen[0], [4.0, 8.0])
    np.testing.assert_allclose(p.grad._data, [10.0, 18.0])


def test_hook_needs_requires_grad():
    with pytest.raises(RuntimeError,
                       match="cannot register a hook on a tensor that doesn't require gradient"):
        gg.ones(2).register_hook(lambda g: g)


@pytest.mark.parametrize("leaf", [True, False])
@pytest.mark.parametrize("hook, exc, message", [
    (lambda g: g.sum(), RuntimeError, "hook '<lambda>' has changed the size of value"),
    (lambda g: g[0], RuntimeError, "hook '<lambda>' has changed the size of value"),
    (lambda g: g.double(), RuntimeError, "hook '<lambda>' has changed the type of value "
                                         "(was torch.FloatTensor got torch.DoubleTensor)"),
    (lambda g: 3, TypeError, "expected Variable, but hook returned 'int'"),
])
def test_hook_results_of_another_size_dtype_or_type_raise_as_in_pytorch(leaf, hook, exc,
                                                                        message) -> None:
    """A hook's replacement must be a tensor of the gradient's size and dtype: PyTorch 2.13's
    errors (the gradient was stored as the hook returned it)."""
    x = gg.ones(3, 4, requires_grad=True)
    h = x if leaf else x * 1.0
    h.register_hook(hook)
    with pytest.raises(exc, match=re.escape(message)):
        (h * 2.0).sum().backward()


def test_retain_grad():
    p = _leaf([1.0, 2.0])
    q = p * 2
    q.retain_grad()
    assert q.retains_grad and not q.is_leaf
    (q * q).sum().backward()
    np.testing.assert_allclose(q.grad._data, [4.0, 8.0])
    np.testing.assert_allclose(p.grad._data, [8.0, 16.0])


# ----------------------------------------------------------------------------- autograd.grad
def test_grad_allow_unused_and_materialize():
    u, v = _leaf([1.0, 2.0]), _leaf([3.0])
    gu, gv = gg.autograd.grad((u * 2).sum(), [u, v], allow_unused=True)
    np.testing.assert_allclose(gu._data, [2.0, 2.0])
    assert gv is None
    gu, gv = gg.autograd.grad((u * 2).sum(), [u, v], materialize_grads=True)
    np.testing.assert_allclose(gv._data, [0.0])
    assert u.grad is None and v.grad is None  # grad() never touches .grad


def test_second_derivative_with_create_graph():
    x = _leaf([1.0, 2.0, -3.0], gg.float64)
    (g,) = gg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    assert g.grad_fn is not None
    np.testing.assert_allclose(g._data, 3 * x._data ** 2)
    (h,) = gg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h._data, 6 * x._data)


def test_backward_create_graph_gives_differentiable_grad():
    x = _leaf([2.0], gg.float64)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad._data, [12.0])


# ----------------------------------------------------------------------------- grad modes
def test_no_grad_builds_no_graph():
    x = _leaf([1.0])
    with gg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf

    @gg.no_grad()
    def double(t):
        return t * 2
    assert not double(x).requires_grad
    assert gg.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = _leaf([1.0])
    with gg.no_grad():
        with gg.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad


def test_set_grad_enabled_function_and_context_manager():
    x = _leaf([1.0])
    try:
        gg.set_grad_enabled(False)
        assert not gg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        gg.set_grad_enabled(True)
    with gg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert gg.is_grad_enabled()
    with gg.no_grad():
        with gg.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not gg.is_grad_enabled()


def test_grad_mode_decorates_without_parentheses_and_generators_per_step():
    """@no_grad / @enable_grad work bare, as in PyTorch; on a generator function the mode
    holds while each step of the generator runs, and the caller's mode in between."""
    x = gg.ones(2, requires_grad=True)

    @gg.no_grad
    def bare():
        return (x * 2).requires_grad

    @gg.no_grad()
    def gen():
        seen = yield (x * 2).requires_grad
        yield (seen, gg.is_grad_enabled(), (x * 2).requires_grad)

    @gg.enable_grad
    def inner():
        return gg.is_grad_enabled()

    assert bare() is False and bare.__name__ == "bare"
    g = gen()
    assert next(g) is False
    assert gg.is_grad_enabled() and (x * 2).requires_grad  # between steps: the caller's mode
    assert g.send("hi") == ("hi", False, False)
    with gg.no_grad():
        assert inner() is True and not gg.is_grad_enabled()
    with pytest.raises(StopIteration):
        next(g)


def test_grad_mode_is_thread_local():
    x = _leaf([1.0])
    disabled, checked = threading.Event(), threading.Event()
    seen = {}

    def other():
        with gg.no_grad():
            seen["other"] = (x * 2).requires_grad
            disabled.set()
            checked.wait(5)

    t = threading.Thread(target=other)
    t.start()
    assert disabled.wait(5)
    seen["main"] = gg.is_grad_enabled() and (x * 2).requires_grad
    checked.set()
    t.join()
    assert seen == {"other": False, "main": True}


# ----------------------------------------------------------------------------- graph structure
def test_long_chain_has_no_recursion_limit():
    x = _leaf(1.0)
    y = x
    n = 100_000
    assert n > sys.getrecursionlimit()
    for _ in range(n):
        y = y * 1.0
    start = time.perf_counter()
    y.backward()
    assert time.perf_counter() - start < 30
    assert x.grad.item() == 1.0
    del y  # tearing down the chain must not overflow the stack either


def test_next_functions_and_names():
    x = gg.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    assert [f.name() for f in (y.grad_fn, z.grad_fn, out.grad_fn)] == \
        ["AddBackward0", "MulBackward0", "MeanBackward0"]
    (acc, k), (none, j) = y.grad_fn.next_functions
    assert type(acc).__name__ == "AccumulateGrad" and acc.variable is x and (k, none, j) == (0, None, 0)
    assert z.grad_fn.next_functions[0][0].name() == "MulBackward0"
    assert z.grad_fn.next_functions[1] == (None, 0)  # the constant 3
    (mul_y, _), (mul_y2, _) = z.grad_fn.next_functions[0][0].next_functions
    assert mul_y is mul_y2 is y.grad_fn
    assert re.fullmatch(r"<AddBackward0 object at 0x[0-9a-f]+>", repr(y.grad_fn))
    assert x.grad_fn is None and x.is_leaf and not y.is_leaf


@pytest.mark.parametrize("make", [lambda x: x[:2], lambda x: (x * 2)[1:], lambda x: x.detach().T])
def test_detach_in_place_refuses_views(make):
    """detach_() of a view raises PyTorch's error (a view shares its base's history)."""
    with pytest.raises(RuntimeError, match=r"^Can't detach views in-place\. Use detach\(\) "
                                           r"instead\. If you are using DistributedDataParallel"):
        make(gg.ones(3, 2, requires_grad=True)).detach_()
    y = gg.ones(3, requires_grad=True) * 2
    assert y.detach_() is y and not y.requires_grad and y.grad_fn is None


def test_detach_shares_storage_and_version():
    x = _leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert np.shares_memory(d._data, x._data)
    d._data[0] = 5.0
    assert x._data[0] == 5.0
    y = x * 2
    assert not y.detach().requires_grad and np.shares_memory(y.detach()._data, y._data)


def test_data_is_not_tracked():
    x = _leaf([1.0, 2.0])
    d = x.data
    assert not d.requires_grad and np.shares_memory(d._data, x._data)
    y = x.sin()
    d._data[0] = 3.0  # writes through .data are invisible to autograd: no version error
    y.sum().backward()
    # No error, and backward silently uses the new value, as in PyTorch.
    np.testing.assert_allclose(x.grad._data, np.cos([3.0, 2.0]).astype(np.float32), rtol=1e-6)


# ----------------------------------------------------------------------------- gradcheck itself
def _mat(shape, seed=0):
    rng = np.random.default_rng(seed)
    return gg.tensor(rng.uniform(0.5, 1.5, shape), dtype=gg.float64, requires_grad=True)


GRADCHECK_CASES = [
    ("scalar out", lambda a: (a * a).sum(), [(2, 3)]),
    ("tuple out", lambda a: (a * a * a, a.exp()), [(2, 3)]),
    ("two inputs", lambda a, b: a * b + a, [(3,), (3,)]),
    ("0-d input", lambda s, a: s * a, [(), (2, 2)]),
    ("zero-size", lambda a: a * 2, [(0, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck_passes(name, fn, shapes):
    inputs = tuple(_mat(s, i) for i, s in enumerate(shapes))
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_gradcheck_non_contiguous_input_is_perturbed_in_place():
    base = np.arange(1.0, 13.0).reshape(3, 4)
    t = Tensor._make(base.T[::2])  # a strided view of base
    t.requires_grad = True
    assert not t.is_contiguous()
    calls = []

    def f(a):
        calls.append(a._data.copy())
        return a * a * a

    assert gradcheck(f, (t,))
    assert any(not np.array_equal(c, base.T[::2]) for c in calls)  # perturbation was visible
    np.testing.assert_array_equal(base, np.arange(1.0, 13.0).reshape(3, 4))  # restored exactly
    assert gradgradcheck(lambda a: a * a * a, (t,), gen_non_contig_grad_outputs=True)


def test_gradcheck_passes_non_tensors_through():
    assert gradcheck(lambda a, k, s: a * k, (_mat((2,)), 3.0, "tag"))


def test_gradcheck_mismatch_message():
    class Wrong(gg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    x = _mat((2, 2))
    with pytest.raises(GradcheckError) as info:
        gradcheck(Wrong.apply, (x,))
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert msg.startswith("Jacobian mismatch for output 0 with respect to input 0,\n"
                          "numerical:tensor([[2.0000, 0.0000")
    assert "\nanalytical:tensor([[3., 0., 0., 0.]," in msg
    assert re.search(r"d output\[0\] element 0 \(index \(0, 0\)\) / d input\[0\] element 0 "
                     r"\(index \(0, 0\)\): numerical 1\.99999\d*, analytical 3\.0\.$", msg)
    assert gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_gradcheck_names_the_mismatching_element():
    def f(a):
        out = a * a
        return out + (a * 0.1).detach() * a.detach() * (gg.tensor([0.0, 0.0, 1.0], dtype=gg.float64))

    x = gg.tensor([1.0, 2.0, 30.0], dtype=gg.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match=r"d output\[0\] element 2 \(index \(2,\)\) / d input\[0\] "
                                             r"element 2 \(index \(2,\)\)"):
        gradcheck(f, (x,))


def test_gradcheck_warns_on_float32_and_requires_some_grad():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="Input #0 requires gradient and is not a double precision"):
        gradcheck(lambda a: a * 2, (x,), eps=1e-3, atol=1e-2)
    with pytest.raises(ValueError,
                       match="gradcheck expects at least one input tensor to require gradient"):
        gradcheck(lambda a: a * 2, (gg.ones(2, dtype=gg.float64),))


def test_gradgradcheck_catches_wrong_second_derivative():
    class BadDouble(gg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * 3 * (a * a).detach()  # right first derivative, no second

    x = _mat((3,))
    assert gradcheck(BadDouble.apply, (x,))
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradgradcheck(BadDouble.apply, (x,))


# ----------------------------------------------------------------------------- against PyTorch
def test_matches_torch():
    torch = pytest.importorskip("torch")

    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * x
        y.retain_grad()
        h = []
        y.register_hook(lambda g: h.append(g.tolist()))
        z = (y * x).sum()
        z.backward(retain_graph=True)
        z.backward()
        (g,) = lib.autograd.grad((x ** 3).sum(), x, create_graph=True)
        (gg2,) = lib.autograd.grad(g.sum(), x)
        names = [type(y.grad_fn).__name__, type(z.grad_fn).__name__,
                 type(y.grad_fn.next_functions[0][0]).__name__, len(y.grad_fn.next_functions)]
        return x.grad.tolist(), y.grad.tolist(), h, gg2.tolist(), names

    assert run(gg) == run(torch)


@pytest.mark.parametrize("name,fn,exc,message", ERRORS[:10], ids=[e[0] for e in ERRORS[:10]])
def test_error_messages_match_torch(name, fn, exc, message):
    torch = pytest.importorskip("torch")
    snippets = {
        "backward twice": lambda: (lambda y: (y.backward(), y.backward()))(
            (torch.tensor([1.0, 2.0], requires_grad=True) ** 2).sum()),
        "implicit non-scalar": lambda: (torch.ones(2, requires_grad=True) * 2).backward(),
        "gradient shape": lambda: (torch.ones(2, 2, requires_grad=True) * 2).backward(torch.ones(3)),
        "no graph": lambda: torch.ones(2).sum().backward(),
        "int requires_grad": lambda: setattr(torch.ones(2, dtype=torch.int64), "requires_grad", True),
        "bool requires_grad": lambda: setattr(torch.tensor([True]), "requires_grad", True),
        "int requires_grad_": lambda: torch.ones(2, dtype=torch.int32).requires_grad_(),
        "non-leaf requires_grad": lambda: setattr(torch.ones(1, requires_grad=True) * 2,
                                                  "requires_grad", False),
        "saved non-leaf modified": _torch_saved_modified(torch),
        "saved leaf modified": _torch_saved_leaf_modified(torch),
    }
    with pytest.raises(exc) as info:
        snippets[name]()
    assert str(info.value) == message


def _torch_saved_modified(torch):
    def run():
        y = torch.tensor([1.0, 2.0], requires_grad=True) * 2
        z = y.sin()
        with torch.no_grad():
            y.add_(1)
        z.sum().backward()
    return run


def _torch_saved_leaf_modified(torch):
    def run():
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        w = x.sin()
        with torch.no_grad():
            x.add_(1)
        w.sum().backward()
    return run
