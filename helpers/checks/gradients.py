"""Numeric gradients, as in cs231n's ``gradient_check.py``, for checking backward passes."""
from __future__ import annotations

import numpy as np


def eval_numerical_gradient(f, x, verbose=False, h=1e-5):
    """Centred-difference gradient of a scalar function.

    f: callable taking x and returning a float.
    x: (any shape) float64 array; modified in place during the evaluation and restored.
    Returns grad: same shape as x.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numeric gradient of an array-valued function, contracted with upstream ``df``.

    f: callable taking x and returning an array y.
    x: (any shape) float64 array; modified in place during the evaluation and restored.
    df: array of y's shape, the upstream gradient dL/dy.
    Returns dx: x's shape, sum(df * dy/dx).
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old - h
        neg = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, seed=0):
    """Compare ``analytic_grad`` with centred differences at a few random entries.

    Returns the largest relative error seen.
    """
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        num = (fxph - fxmh) / (2 * h)
        ana = analytic_grad[ix]
        worst = max(worst, abs(num - ana) / max(1e-12, abs(num) + abs(ana)))
    return worst
