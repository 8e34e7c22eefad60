"""The IR: typed SSA programs of registry primitives — build, print, parse, check, run.

Tracing lives in :mod:`gradgen.ir.trace` (exported as ``gradgen.trace``).
"""
from .core import Atom, Eqn, Literal, Program, Var
from .errors import IRError
from .builder import Builder, building
from .interpreter import run
from .printer import constant_table, print_program
from .parser import parse
from .checker import check
from .tree import flatten, unflatten

__all__ = ["Atom", "Eqn", "Literal", "Program", "Var", "IRError", "Builder", "building", "run",
           "constant_table", "print_program", "parse", "check", "flatten", "unflatten"]
