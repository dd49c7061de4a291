"""Assertions for hidden checks, with messages in the learner's terms.

Every helper names what was checked (`what=`), the shape, expected vs got. The functions they compare
with are captured when this module is imported, which the grader does before any learner module is
imported, so monkeypatching numpy.testing or torch.allclose from learner code changes nothing.
Not handled: complex numbers, sparse tensors.
"""
from __future__ import annotations

import math
import sys

import numpy as _np

_np_asarray, _np_isfinite, _np_abs, _np_argwhere = _np.asarray, _np.isfinite, _np.abs, _np.argwhere
_np_ndarray = _np.ndarray
_builtin_type, _builtin_isinstance = type, isinstance

# torch is captured only if it was imported before us (the grader preloads it for missions whose
# checks use it); checks that use torch always import it themselves first.
_torch = sys.modules.get("torch")
_Tensor = _torch.Tensor if _torch is not None else None
_detach = _torch.Tensor.detach if _torch is not None else None
_to_cpu = _torch.Tensor.cpu if _torch is not None else None
_to_numpy = _torch.Tensor.numpy if _torch is not None else None
_float = _torch.Tensor.float if _torch is not None else None


class CheckFailure(AssertionError):
    """A check failed; the message is shown to the learner as is."""


def fail(message: str) -> None:
    raise CheckFailure(message)


_np_bool = _np.bool_


def expect(condition: bool, message: str) -> None:
    """condition must be exactly True (a bool or numpy bool), never a truthy object."""
    if not (condition is True or (_builtin_type(condition) is _np_bool and condition)):
        raise CheckFailure(message)


def describe(x) -> str:
    t = _builtin_type(x)
    if _Tensor is not None and t is _Tensor:
        return f"{t.__name__}(shape={tuple(x.shape)}, dtype={x.dtype}, device={x.device})"
    if t is _np_ndarray:
        return f"ndarray(shape={x.shape}, dtype={x.dtype})"
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__name__


def expect_type(obj, expected_type, *, what: str) -> None:
    """Exact type: subclasses (e.g. a Tensor subclass with __torch_function__, an object whose
    __eq__ always says True) are refused."""
    types_ = expected_type if _builtin_isinstance(expected_type, tuple) else (expected_type,)
    if _builtin_type(obj) not in types_:
        names = " or ".join(t.__name__ for t in types_)
        raise CheckFailure(f"{what}: expected exactly {names}, got {describe(obj)}")


def _as_numpy(x, what: str):
    if _Tensor is not None and _builtin_isinstance(x, _Tensor):
        if _builtin_type(x) is not _Tensor:
            raise CheckFailure(f"{what}: expected a plain torch.Tensor, got a subclass {describe(x)}")
        x = _detach(x)
        if x.is_floating_point() and x.dtype != _torch.float64:
            x = _float(x)
        return _to_numpy(_to_cpu(x))
    if _builtin_type(x) in (int, float, bool):
        return _np_asarray(x, dtype=float)
    if _builtin_isinstance(x, _np_ndarray) and _builtin_type(x) is _np_ndarray:
        return x
    if _builtin_isinstance(x, (list, tuple)):
        return _np_asarray(x)
    raise CheckFailure(f"{what}: expected a number or array, got {describe(x)}")


def _shape_of(x):
    if _builtin_type(x) in (int, float, bool):
        return ()
    return tuple(x.shape) if hasattr(x, "shape") else None


def expect_shape(x, shape, *, what: str) -> None:
    got = _shape_of(x)
    if got != tuple(shape):
        hint = ""
        if got is not None and len(got) != len(shape) and math.prod(got or (1,)) == math.prod(shape or (1,)):
            hint = " (same number of elements: a missing or extra dimension, e.g. (N,1) vs (N,))"
        raise CheckFailure(f"{what}: expected shape {tuple(shape)}, got {got}{hint}")


def expect_finite(x, *, what: str) -> None:
    a = _as_numpy(x, what)
    finite = _np_isfinite(a)
    if not finite.all():
        idx = tuple(int(i) for i in _np_argwhere(~finite)[0]) if a.ndim else ()
        bad = a[idx] if a.ndim else a
        raise CheckFailure(f"{what}: contains {bad} at index {idx} "
                           f"({int((~finite).sum())} of {a.size} values are NaN or Inf)")


def expect_close(got, want, *, what: str, atol: float, rtol: float = 0.0, check_dtype: bool = True) -> None:
    """got ≈ want elementwise: |got - want| <= atol + rtol·|want|, with strict shape (no broadcasting),
    exact container type (same as want's) and, for arrays/tensors, the same dtype."""
    if _Tensor is not None and _builtin_isinstance(want, _Tensor):
        expect_type(got, _Tensor, what=what)
        if check_dtype and got.dtype != want.dtype:
            raise CheckFailure(f"{what}: expected dtype {want.dtype}, got {got.dtype}")
        if got.device != want.device:
            raise CheckFailure(f"{what}: expected device {want.device}, got {got.device}")
    elif _builtin_isinstance(want, _np_ndarray):
        expect_type(got, _np_ndarray, what=what)
        if check_dtype and got.dtype != want.dtype:
            raise CheckFailure(f"{what}: expected dtype {want.dtype}, got {got.dtype}")
    elif _builtin_type(want) in (int, float):
        if _builtin_type(got) not in (int, float):
            raise CheckFailure(f"{what}: expected a Python number, got {describe(got)}")
    expect_shape(got, _shape_of(want), what=what)
    g, w = _as_numpy(got, what), _as_numpy(want, what)
    expect_finite(g, what=what) if _np_isfinite(w).all() else None
    err = _np_abs(g.astype(float) - w.astype(float))
    bound = atol + rtol * _np_abs(w.astype(float))
    bad = ~(err <= bound)
    if bad.any():
        if g.ndim == 0:
            raise CheckFailure(f"{what}: expected {float(w):.10g}, got {float(g):.10g} "
                               f"(difference {float(err):.3g}, tolerance {float(bound):.3g})")
        idx = tuple(int(i) for i in _np_argwhere(bad)[0])
        raise CheckFailure(f"{what}: {int(bad.sum())} of {g.size} values differ (shape {g.shape}); "
                           f"first at {idx}: expected {float(w[idx]):.6g}, got {float(g[idx]):.6g} "
                           f"(max difference {float(err.max()):.3g}, tolerance atol={atol:g} rtol={rtol:g})")


def snapshot(x):
    """A private copy of an input, to prove later that the learner's function did not mutate it."""
    if _Tensor is not None and _builtin_isinstance(x, _Tensor):
        return _torch.Tensor.clone(_detach(x))
    if _builtin_isinstance(x, _np_ndarray):
        return _np_ndarray.copy(x)
    return x


def expect_unchanged(before, after, *, what: str) -> None:
    """`after` (the input after the call) must equal `before` (its snapshot) bit for bit."""
    a, b = _as_numpy(after, what), _as_numpy(before, what)
    if a.shape != b.shape or not ((a == b) | ((a != a) & (b != b))).all():
        raise CheckFailure(f"{what}: the function mutated its input in place; compute a new result "
                           "and leave the inputs as they were")
