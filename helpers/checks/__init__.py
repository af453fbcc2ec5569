"""Student-facing checkers: one module per quiz, sharing the tools below.

Each quiz module defines ``check_<function>(fn)`` that raises :class:`CheckFailed`
(an ``AssertionError``) with a specific message, or prints one ``✔`` line.
"""
from ._compare import (CheckFailed, as_array, call, expect_close, expect_equal,
                       expect_finite, expect_shape, fail, passed, rel_error)
from .gradients import (eval_numerical_gradient, eval_numerical_gradient_array,
                        grad_check_sparse)

__all__ = ["CheckFailed", "as_array", "call", "expect_close", "expect_equal", "expect_finite",
           "expect_shape", "fail", "passed", "rel_error", "eval_numerical_gradient",
           "eval_numerical_gradient_array", "grad_check_sparse"]
