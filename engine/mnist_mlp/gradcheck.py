"""Finite differences: check a hand-written gradient against the definition of the derivative.

For a scalar function f of an array x, each partial derivative is approximately

    df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2h)

This central difference has error O(h²); the one-sided (f(x + h e_i) - f(x)) / h has error O(h),
far worse for the same h. In float64, h around 1e-5 balances that error against round-off (each f()
carries ~1e-16·|f| of rounding, which the division by 2h magnifies).

Two ways to read the comparison of an analytic gradient a with the numerical one n:

    relative error   max_i |a_i - n_i| / max(|a_i| + |n_i|, tiny)    scale-free, for reporting
    grad_check       every |a_i - n_i| <= atol + rtol·|n_i|          the pass/fail decision

The relative error alone misleads where the true gradient is 0 (a ReLU that is off): there a = 0
and n is round-off, so the ratio is 1 although nothing is wrong. The atol term absorbs that.

Not handled: complex inputs, functions with noise (dropout), float32 (use h around 1e-3 there),
kinks such as ReLU at 0 inside [x - h, x + h] (move the test point instead).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

TINY = 1e-12


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of f() with respect to the float array x (any shape).

    f takes no arguments: it reads x, which is changed in place one entry at a time and restored,
    so on return x holds exactly its original values. Returns a float64 array shaped like x.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max over entries of |a - b| / max(|a| + |b|, TINY), as a Python float."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), TINY)))


def grad_check(f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, h: float = 1e-5,
               rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    """True when `analytic` matches the numerical gradient of f() with respect to x everywhere:
    same shape, and |analytic - numerical| <= atol + rtol·|numerical| entry by entry."""
    numeric = numerical_gradient(f, x, h)
    if np.shape(analytic) != x.shape:
        return False
    return bool(np.all(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric)))
