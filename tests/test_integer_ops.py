"""Integer and bool arithmetic where numpy's rules differ from PyTorch's: the expected values
and messages are PyTorch 2.13's (written out: the tests run without PyTorch)."""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg


@pytest.mark.parametrize("make, want", [
    # a negative integer exponent: 1 for a base of 1, +-1 for -1 by parity, else 0
    (lambda: gg.tensor([0, 1, -1, 2, -2, 3]) ** gg.tensor([-1, -3, -3, -2, -1, 2]),
     [0, 1, -1, 0, 0, 9]),
    (lambda: gg.tensor([3, 2]) ** gg.tensor(-1), [0, 0]),
    (lambda: 2 ** gg.tensor([-1, 2]), [0, 4]),
    (lambda: gg.tensor([3, 2]).pow_(gg.tensor([-1, 1])), [0, 2]),
    (lambda: gg.tensor([-1, -1], dtype=gg.int32) ** gg.tensor([-2, -5], dtype=gg.int32),
     np.array([1, -1], np.int32)),
    # bool ** a Python bool stays bool: x ** True is x, x ** False is True
    (lambda: gg.tensor([True, False]) ** True, [True, False]),
    (lambda: gg.tensor([True, False]) ** False, [True, True]),
    (lambda: gg.tensor([True, False]).pow_(True), [True, False]),
])
def test_integer_and_bool_powers_as_in_pytorch(make, want) -> None:
    got, want = make(), np.asarray(want)  # (int64 or bool, unless said)
    np.testing.assert_array_equal(got.numpy(), want)
    assert got.numpy().dtype == want.dtype


@pytest.mark.parametrize("make, exc, message", [
    (lambda: gg.tensor([True, False]) ** gg.tensor([True, False]), NotImplementedError,
     "\"pow\" not implemented for 'Bool'"),
    (lambda: gg.tensor(True) ** gg.tensor([True, False]), NotImplementedError,
     "\"pow\" not implemented for 'Bool'"),
    (lambda: gg.tensor([2, 3]) ** -1, RuntimeError,
     "Integers to negative integer powers are not allowed."),
])
def test_powers_pytorch_refuses(make, exc, message) -> None:
    with pytest.raises(exc) as err:
        make()
    assert str(err.value) == message


_ONE_BOOL = ("Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
             "trying to invert a mask, use the `~` or `logical_not()` operator instead.")
_TWO_BOOLS = ("Subtraction, the `-` operator, with two bool tensors is not supported. Use the "
              "`^` or `logical_xor()` operator instead.")


@pytest.mark.parametrize("make, message", [
    (lambda a, b: a - b, _ONE_BOOL), (lambda a, b: a.sub_(b), _ONE_BOOL),
    (lambda a, b: gg.sub(a, b), _ONE_BOOL), (lambda a, b: b - a, _ONE_BOOL),
    (lambda a, b: a - True, _ONE_BOOL), (lambda a, b: b - b, _TWO_BOOLS),
    (lambda a, b: True - b, _TWO_BOOLS), (lambda a, b: b.sub_(b), _TWO_BOOLS),
])
def test_subtraction_with_bools_is_refused_as_in_pytorch(make, message) -> None:
    a, b = gg.ones(3), gg.tensor([True, False, True])
    with pytest.raises(RuntimeError) as err:
        make(a, b)
    assert str(err.value) == message
