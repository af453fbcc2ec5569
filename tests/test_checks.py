"""helpers.checks: the shared comparison tools and numeric gradients."""
import numpy as np
import pytest

from helpers import checks
from helpers.checks import CheckFailed


def test_rel_error_matches_cs231n_definition():
    assert checks.rel_error([1.0, 2.0], [1.0, 2.0]) == 0
    assert checks.rel_error([1.0], [3.0]) == pytest.approx(0.5)


def test_expect_shape_names_both_shapes():
    with pytest.raises(CheckFailed, match=r"shape \(2, 3\), expected \(3, 2\)"):
        checks.expect_shape(np.zeros((2, 3)), (3, 2), "out", "f")


def test_expect_close_passes_and_reports_worst_element():
    exp = np.arange(6.0).reshape(2, 3)
    assert checks.expect_close(exp * (1 + 1e-12), exp, "out", "f") < 1e-7
    bad = exp.copy()
    bad[1, 2] = 100
    with pytest.raises(CheckFailed, match=r"worst at out\[1, 2\]: got 100, expected 5"):
        checks.expect_close(bad, exp, "out", "f")


def test_expect_close_names_a_known_mistake():
    exp = np.ones(4)
    with pytest.raises(CheckFailed, match="Most likely: forgot the bias"):
        checks.expect_close(np.zeros(4), exp, "out", "f", mistakes={"forgot the bias": np.zeros(4)})


def test_none_and_nan_get_their_own_messages():
    with pytest.raises(CheckFailed, match="does not `return`"):
        checks.expect_shape(None, (1,), "out", "f")
    with pytest.raises(CheckFailed, match=r"NaN or inf \(first at index \(1,\)\)"):
        checks.expect_close(np.array([1.0, np.nan]), np.ones(2), "out", "f")


def test_call_turns_not_implemented_into_a_hint():
    def todo(x):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.call(todo, 1)
    with pytest.raises(ZeroDivisionError):       # the student's own errors propagate
        checks.call(lambda x: 1 / 0, 1)


def test_numeric_gradients_agree_with_analytic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    w = rng.normal(size=(4, 2))
    df = rng.normal(size=(3, 2))
    dx_num = checks.eval_numerical_gradient_array(lambda v: v @ w, x, df)
    assert checks.rel_error(dx_num, df @ w.T) < 1e-8
    g = checks.eval_numerical_gradient(lambda v: float(np.sum(v ** 2)), x.copy())
    assert checks.rel_error(g, 2 * x) < 1e-8
    assert checks.grad_check_sparse(lambda v: float(np.sum(v ** 3)), x.copy(), 3 * x ** 2) < 1e-6
    assert checks.grad_check_sparse(lambda v: float(np.sum(v ** 3)), x.copy(), 2 * x ** 2) > 1e-2
