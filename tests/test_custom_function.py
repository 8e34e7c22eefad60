"""Custom autograd Functions: ctx, saved tensors, several outputs, PyTorch's errors word for word."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gradgen as gg
from gradgen.autograd import Function, gradcheck, gradgradcheck, once_differentiable

FREED = "Trying to backward through the graph a second time"


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


class Exp(Function):  # saves its output
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ScaleAdd(Function):  # non-tensor input, ctx attribute, None gradient for it
    @staticmethod
    def forward(ctx, x, k, y):
        ctx.k = k
        return x * k + y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None, g


class SplitPair(Function):  # two outputs
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2, x * x

    @staticmethod
    def backward(ctx, ga, gb):
        (x,) = ctx.saved_tensors
        return ga * 2 + gb * 2 * x


class MulPair(Function):  # two inputs, two outputs
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b, a + b

    @staticmethod
    def backward(ctx, gp, gs):
        a, b = ctx.saved_tensors
        return gp * b + gs, gp * a + gs


class SetupStyle(Function):  # forward without ctx, context filled in setup_context
    @staticmethod
    def forward(x):
        return x.sin()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()


def _x(shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    return gg.tensor(rng.uniform(0.5, 1.5, shape), dtype=gg.float64, requires_grad=True)


GRADCHECKED = [
    ("Cube", Cube.apply, lambda: (_x(),)),
    ("Exp", Exp.apply, lambda: (_x(),)),
    ("ScaleAdd", ScaleAdd.apply, lambda: (_x(), 2.5, _x(seed=1))),
    ("SplitPair", SplitPair.apply, lambda: (_x(),)),
    ("MulPair", MulPair.apply, lambda: (_x((3,)), _x((3,), 1))),
    ("SetupStyle", SetupStyle.apply, lambda: (_x(),)),
    ("0-d", Cube.apply, lambda: (_x(()),)),
]


@pytest.mark.parametrize("name,fn,make", GRADCHECKED, ids=[c[0] for c in GRADCHECKED])
def test_gradcheck_and_double_backward(name, fn, make):
    assert gradcheck(fn, make())
    assert gradgradcheck(fn, make())


def test_grad_fn_name_and_graph():
    x = _x()
    y = Cube.apply(x)
    assert type(y.grad_fn).__name__ == "CubeBackward" and y.grad_fn.name() == "CubeBackward"
    assert "grad_fn=<CubeBackward>" in repr(y)
    assert re.fullmatch(r"<torch\.autograd\.function\.CubeBackward object at 0x[0-9a-f]+>",
                        repr(y.grad_fn))
    ((acc, nr),) = y.grad_fn.next_functions
    assert nr == 0 and type(acc).__name__ == "AccumulateGrad" and acc.variable is x
    z = ScaleAdd.apply(x * 1, 2.0, gg.ones(2, 3, dtype=gg.float64))
    # (one edge per tensor argument: the number 2.0 has none, as in PyTorch)
    assert [n is None for n, _ in z.grad_fn.next_functions] == [False, True]
    assert z.grad_fn.next_functions[0][0].name() == "MulBackward0"


def test_forward_runs_without_grad_and_sees_needs_input_grad():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, k, b):
            seen["enabled"] = gg.is_grad_enabled()
            seen["needs"] = ctx.needs_input_grad
            out = a * k + b
            seen["inner"] = out.requires_grad
            return out

        @staticmethod
        def backward(ctx, g):
            return g, None, g

    y = Probe.apply(_x(), 2.0, gg.ones(2, 3, dtype=gg.float64))
    assert seen == {"enabled": False, "needs": (True, False, False), "inner": False}
    assert y.requires_grad and gg.is_grad_enabled()


def test_no_graph_without_grad():
    y = Cube.apply(gg.ones(2))
    assert y.grad_fn is None and not y.requires_grad
    with gg.no_grad():
        y = Cube.apply(_x())
    assert y.grad_fn is None and not y.requires_grad


def test_ctx_attributes_are_on_grad_fn():
    y = ScaleAdd.apply(_x(), 4.0, _x(seed=1))
    assert y.grad_fn.k == 4.0


def test_saved_tensors_are_inputs_and_rebuilt_outputs():
    x = _x()
    y = Exp.apply(x)
    (saved,) = y.grad_fn.saved_tensors
    assert saved is not y and saved.grad_fn is y.grad_fn and np.shares_memory(saved._data, y._data)
    (sx,) = Cube.apply(x).grad_fn.saved_tensors
    assert sx is x


def test_saved_tensors_freed_after_backward():
    x = _x()
    y = Cube.apply(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad._data, 2 * 3 * x._data ** 2)
    with pytest.raises(RuntimeError, match=FREED):
        y.backward()
    z = Cube.apply(x)
    z.sum().backward()
    with pytest.raises(RuntimeError, match=FREED):
        z.grad_fn.saved_tensors


def test_function_saving_nothing_can_backward_twice():
    y = ScaleAdd.apply(_x(), 2.0, _x(seed=1)).sum()
    y.backward()
    y.backward()


def test_save_for_backward_accepts_none_rejects_others():
    class SaveNone(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, None)
            return x + 1

        @staticmethod
        def backward(ctx, g):
            x, nothing = ctx.saved_tensors
            assert nothing is None
            return g

    SaveNone.apply(_x()).sum().backward()

    class SaveInt(SaveNone):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x + 1

    with pytest.raises(TypeError, match="save_for_backward can only save variables, but argument 1 "
                                        "is of type int"):
        SaveInt.apply(_x())


def _bump(t):
    with gg.no_grad():
        t.add_(1)


def test_saved_input_modified_in_place():
    x = _x((2,)) * 1
    y = Cube.apply(x)
    _bump(x)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert str(info.value) == (
        "one of the variables needed for gradient computation has been modified by an inplace "
        "operation: [torch.DoubleTensor [2]], which is output 0 of Mul, is at version 1; expected "
        "version 0 instead. Hint: enable anomaly detection to find the operation that failed to "
        "compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def test_saved_output_modified_in_place():
    y = Exp.apply(_x((2,)))
    _bump(y)
    with pytest.raises(RuntimeError, match=r"\[torch.DoubleTensor \[2\]\], which is output 0 of Exp, "
                                           r"is at version 1; expected version 0 instead"):
        y.sum().backward()


def test_multiple_outputs_share_one_node():
    x = _x((3,))
    a, b = SplitPair.apply(x)
    assert a.grad_fn is b.grad_fn and a.grad_fn.name() == "SplitPairBackward"
    assert (a * 1).grad_fn.next_functions[0] == (a.grad_fn, 0)
    assert (b * 1).grad_fn.next_functions[0] == (a.grad_fn, 1)
    seen = []
    b.register_hook(lambda g: seen.append(g._data.copy()))
    a.retain_grad()
    b.retain_grad()
    (a.sum() + (b * 3).sum()).backward()
    np.testing.assert_allclose(x.grad._data, 2 + 3 * 2 * x._data)
    np.testing.assert_allclose(a.grad._data, np.ones(3))
    np.testing.assert_allclose(b.grad._data, np.full(3, 3.0))
    np.testing.assert_allclose(seen[0], np.full(3, 3.0))


def test_unused_output_gets_materialized_zeros_or_none():
    got = {}

    class Record(Function):
        @staticmethod
        def forward(ctx, x, materialize):
            ctx.set_materialize_grads(materialize)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            got["ga"] = ga
            return gb * 3, None

    x = _x((2,))
    Record.apply(x, True)[1].sum().backward()
    np.testing.assert_array_equal(got["ga"]._data, np.zeros(2))
    Record.apply(x, False)[1].sum().backward()
    assert got["ga"] is None
    np.testing.assert_allclose(x.grad._data, [6.0, 6.0])


def test_gradient_through_one_output_only_and_autograd_grad():
    x = _x((3,))
    a, b = SplitPair.apply(x)
    (gx,) = gg.autograd.grad(b.sum(), x)
    np.testing.assert_allclose(gx._data, 2 * x._data)
    (ga,) = gg.autograd.grad((b * a).sum(), a)  # capture at a hidden selector
    np.testing.assert_allclose(ga._data, b._data)


def test_mark_non_differentiable():
    class SumAndCount(Function):
        @staticmethod
        def forward(ctx, x):
            count = (x > 1.0).sum().to(gg.float64)
            ctx.mark_non_differentiable(count)
            return x.sum(), count

        @staticmethod
        def backward(ctx, g, g_count):
            assert not g_count._data.any()
            return g * gg.ones(2, 3, dtype=gg.float64)

    x = _x()
    s, c = SumAndCount.apply(x)
    assert s.requires_grad and not c.requires_grad and c.grad_fn is None
    s.backward()
    np.testing.assert_allclose(x.grad._data, np.ones((2, 3)))


def test_returned_input_is_an_alias():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = _x((2,))
    y = Identity.apply(x)
    assert y is not x and y.grad_fn.name() == "IdentityBackward" and x.is_leaf
    assert np.shares_memory(y._data, x._data)
    y.sum().backward()
    np.testing.assert_allclose(x.grad._data, [2.0, 2.0])


def test_mark_dirty_rebases_the_input():
    class AddOneInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    leaf = _x((2,))
    y = leaf * 2
    out = AddOneInPlace.apply(y)
    # add_ bumps the version and mark_dirty bumps it again, as in PyTorch.
    assert out is y and y.grad_fn.name() == "AddOneInPlaceBackward" and y._version.value == 2
    y.sum().backward()
    np.testing.assert_allclose(leaf.grad._data, [2.0, 2.0])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad has been used in an "
                                           "in-place operation."):
        AddOneInPlace.apply(_x((2,)))


def test_graph_is_freed_without_the_cycle_collector():
    import gc
    import weakref

    x = _x((2,))
    gc.disable()
    try:
        a, b = SplitPair.apply(x)
        single, pair = weakref.ref(Exp.apply(x).grad_fn), weakref.ref(a.grad_fn)
        del a, b
        assert single() is None and pair() is None  # saved outputs do not keep their node alive
    finally:
        gc.enable()


def test_double_backward_through_function():
    x = _x((3,))
    (g,) = gg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g._data, 3 * x._data ** 2)
    (h,) = gg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h._data, 6 * x._data)
    (g,) = gg.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    (h,) = gg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h._data, np.exp(x._data))


def test_once_differentiable_backward_runs_without_grad():
    class Once(Cube):
        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            assert not gg.is_grad_enabled()
            return g * 3 * x * x

    x = _x((2,))
    (g,) = gg.autograd.grad(Once.apply(x).sum(), x, create_graph=True)
    assert not g.requires_grad


def test_gradient_shape_broadcast_is_summed_and_dtype_cast():
    class Broad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return gg.ones(3, 2, 1, dtype=gg.float32)  # expandable to [2, 1] -> summed, cast

    x = _x((2, 1))
    Broad.apply(x).sum().backward()
    assert x.grad.dtype is gg.float64
    np.testing.assert_allclose(x.grad._data, np.full((2, 1), 3.0))


def _function(name, backward, n_inputs=1):
    def forward(ctx, *args):
        return args[0] * 2
    return type(name, (Function,), {"forward": staticmethod(forward),
                                    "backward": staticmethod(backward)})


ERRORS = [
    ("too few", _function("Few", lambda ctx, g: (g,)), lambda f: f.apply(_x(), _x(seed=1)),
     "function FewBackward returned an incorrect number of gradients (expected 2, got 1)"),
    ("too many", _function("Many", lambda ctx, g: (g, g)), lambda f: f.apply(_x()),
     "function ManyBackward returned an incorrect number of gradients (expected 1, got 2)"),
    ("bad shape", _function("BadShape", lambda ctx, g: gg.ones(3, dtype=gg.float64)),
     lambda f: f.apply(_x((2, 2))),
     "Function BadShapeBackward returned an invalid gradient at index 0 - got [3] but expected "
     "shape compatible with [2, 2]"),
    ("not a tensor", _function("NotT", lambda ctx, g: 1.0), lambda f: f.apply(_x()),
     "expected Variable or None (got float)"),
    ("grad for non-tensor", _function("NonVar", lambda ctx, g: (g, g)), lambda f: f.apply(_x(), 2.0),
     "function NonVarBackward returned a gradient different than None at position 2, but the "
     "corresponding forward input was not a Variable"),
]


@pytest.mark.parametrize("name,cls,call,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_backward_result_errors(name, cls, call, message):
    y = call(cls)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert str(info.value) == message


def test_extra_none_gradients_are_accepted():
    Many = _function("ManyNone", lambda ctx, g: (g, None, None))
    x = _x()
    Many.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad._data, np.ones((2, 3)))


LEGACY = ("Legacy autograd function with non-static forward method is deprecated. Please use "
          "new-style autograd function with static forward method. (Example: "
          "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")


def test_legacy_style_raises():
    class Legacy(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g

    with pytest.warns(DeprecationWarning, match="should not be instantiated"):
        fn = Legacy()
    with pytest.raises(RuntimeError) as info:
        fn(_x())
    assert str(info.value) == LEGACY


def test_errors_match_torch():
    torch = pytest.importorskip("torch")

    def make(lib, backward):
        return type("Few", (lib.autograd.Function,), {
            "forward": staticmethod(lambda ctx, *a: a[0] * 2),
            "backward": staticmethod(backward)})

    cases = [
        (lambda lib: lambda ctx, g: (g,), lambda lib, f: f.apply(lib.ones(2, 2, requires_grad=True),
                                                                  lib.ones(2, 2, requires_grad=True))),
        (lambda lib: lambda ctx, g: lib.ones(3),
         lambda lib, f: f.apply(lib.ones(2, 2, requires_grad=True))),
        (lambda lib: lambda ctx, g: 1.0, lambda lib, f: f.apply(lib.ones(2, requires_grad=True))),
        (lambda lib: lambda ctx, g: (g, g),
         lambda lib, f: f.apply(lib.ones(2, requires_grad=True), 2.0)),
    ]
    for backward, call in cases:
        messages = []
        for lib in (gg, torch):
            y = call(lib, make(lib, backward(lib)))
            with pytest.raises(RuntimeError) as info:
                y.sum().backward()
            messages.append(str(info.value))
        assert messages[0] == messages[1]


def test_values_match_torch():
    torch = pytest.importorskip("torch")

    def run(lib):
        class Pair(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * 2, x * x

            @staticmethod
            def backward(ctx, ga, gb):
                (x,) = ctx.saved_tensors
                return ga * 2 + gb * 2 * x

        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        a, b = Pair.apply(x)
        (a.sum() * 2 + (b * b).sum()).backward()
        return x.grad.tolist(), type(a.grad_fn).__name__, a.grad_fn is b.grad_fn, \
            (b * 1).grad_fn.next_functions[0][1]

    assert run(gg) == run(torch)
