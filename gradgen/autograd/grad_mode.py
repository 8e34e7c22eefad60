"""Grad mode: whether operations record autograd nodes (thread-local, as in PyTorch)."""
from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable, TypeVar

from .node import _typename

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    enabled: bool = True


_state = _State()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return _state.enabled


class _GradModeContext:
    """Base for the grad-mode context managers; instances also decorate functions (a
    generator function gets the mode around each of its steps, as in PyTorch)."""

    _target: bool

    def __enter__(self) -> None:
        self._prev = _state.enabled
        _state.enabled = self._target

    def __exit__(self, *exc: Any) -> None:
        _state.enabled = self._prev

    def __call__(self, fn: F) -> F:
        target = self._target
        if inspect.isgeneratorfunction(fn):
            return _generator(fn, target)  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = _state.enabled
            _state.enabled = target
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev
        return wrapper  # type: ignore[return-value]


class _Bare(_GradModeContext):
    """A mode that also decorates without parentheses: ``@no_grad`` as ``@no_grad()``."""

    def __new__(cls, orig_func: Callable | None = None) -> Any:
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


def _generator(fn: Callable, target: bool) -> Callable:
    """``fn`` (a generator function) with grad mode ``target`` while each step of its
    generator runs, and the caller's mode between steps."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = fn(*args, **kwargs)

        def step(how: Callable, *a: Any) -> Any:
            prev = _state.enabled
            _state.enabled = target
            try:
                return how(*a)
            finally:
                _state.enabled = prev
        try:
            response = step(gen.send, None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    step(gen.close)
                    raise
                except BaseException as exc:  # thrown in by the caller: into fn's generator
                    response = step(gen.throw, exc)
                else:
                    response = step(gen.send, request)
        except StopIteration as done:
            return done.value
    return wrapper


class no_grad(_Bare):
    """Context manager and decorator that disables gradient recording.

    >>> import gradgen as gg
    >>> x = gg.ones(2, requires_grad=True)
    >>> with gg.no_grad():
    ...     (x * 2).requires_grad
    False
    """

    _target = False


class enable_grad(_Bare):
    """Context manager and decorator that enables gradient recording."""

    _target = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``; takes effect immediately, and as a context manager restores it."""

    def __init__(self, mode: bool) -> None:
        if mode is not True and mode is not False:
            raise TypeError("set_grad_enabled(): argument 'enabled' (position 1) must be bool, "
                            f"not {_typename(mode)}")
        self._target = mode
        self._prev = _state.enabled
        _state.enabled = self._target

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        _state.enabled = self._prev

    def __call__(self, fn: F) -> F:
        # Used as a decorator the constructor's immediate effect is undone.
        _state.enabled = self._prev
        return super().__call__(fn)
