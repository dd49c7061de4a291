"""Finite differences: check a hand-written gradient against the definition of the derivative.

    df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2h)          (central difference)

Brief, section 4: why central and not one-sided, how big h should be, and why grad_check needs both
a relative and an absolute tolerance.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

TINY = 1e-12


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of f() with respect to the float array x (any shape).

    f takes no arguments: it reads x, which you change in place one entry at a time (np.ndindex
    visits every index) and restore, so on return x holds exactly its original values.
    Returns a float64 array shaped like x.
    """
    raise NotImplementedError("numerical_gradient: see brief.md, section 4 (Gradient checking)")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max over entries of |a - b| / max(|a| + |b|, TINY), as a Python float."""
    raise NotImplementedError("relative_error: see brief.md, section 4 (Gradient checking)")


def grad_check(f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, h: float = 1e-5,
               rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    """True when `analytic` matches the numerical gradient of f() with respect to x everywhere:
    same shape, and |analytic - numerical| <= atol + rtol·|numerical| entry by entry.
    Returns a Python bool (not np.bool_); a wrong shape returns False rather than raising."""
    raise NotImplementedError("grad_check: see brief.md, section 4 (Gradient checking)")
