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
_torch_equal = _torch.equal if _torch is not None else None
_item = _torch.Tensor.item if _torch is not None else None
_np_array_equal = _np.array_equal
_np_generic = _np.generic


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


# -- exact values ---------------------------------------------------------------------------------
# Learner values are first reduced to an exact built-in type (or a plain tensor/array), then
# compared here with functions captured at import. A float subclass whose __sub__ returns 0, or an
# object whose __eq__ says True, never reaches a comparison.

def as_float(x, *, what: str) -> float:
    """A learner's number as an exact Python float: int, float, a numpy scalar or a 0-d plain tensor
    (bool is refused: True is not a number of anything)."""
    t = _builtin_type(x)
    if t is float:
        return x
    if t is int:
        return float.__float__(int.__float__(x))
    if t in (_np.float64, _np.float32, _np.float16, _np.int64, _np.int32):
        return float(_np_asarray(x).item())
    if _Tensor is not None and t is _Tensor and x.dim() == 0 and not x.dtype.is_complex and x.dtype != _torch.bool:
        return float(_item(_detach(x)))
    raise CheckFailure(f"{what}: expected a number (float), got {describe(x)}")


def as_int(x, *, what: str) -> int:
    """A learner's count as an exact Python int (a numpy integer or 0-d integer tensor is accepted)."""
    t = _builtin_type(x)
    if t is int:
        return int.__int__(x)
    if t in (_np.int64, _np.int32, _np.int16, _np.int8, _np.uint8):
        return int(_np_asarray(x).item())
    if _Tensor is not None and t is _Tensor and x.dim() == 0 and not x.is_floating_point() and x.dtype != _torch.bool:
        return int(_item(_detach(x)))
    raise CheckFailure(f"{what}: expected an int, got {describe(x)}")


def _plain(x, what: str):
    """Recursively check that x is made only of exact built-ins (None, bool, int, float, str, bytes,
    and lists/tuples/dicts of them) and return it; anything else is refused."""
    t = _builtin_type(x)
    if x is None or t in (bool, int, float, str, bytes):
        return x
    if t in (list, tuple):
        return t(_plain(v, what) for v in x)
    if t is dict:
        return {_plain(k, what): _plain(v, what) for k, v in dict.items(x)}
    raise CheckFailure(f"{what}: expected plain Python values, got {describe(x)} inside")


def expect_equal(got, want, *, what: str) -> None:
    """got == want exactly. want is plain Python data (ints, strs, lists, tuples, dicts, ...) or a
    plain tensor/array; got must have exactly the same types all the way down (a list is not a
    tuple, a numpy int is not an int) and, for tensors/arrays, the same shape, dtype and values."""
    if _Tensor is not None and _builtin_type(want) is _Tensor:
        expect_type(got, _Tensor, what=what)
        if got.dtype != want.dtype:
            raise CheckFailure(f"{what}: expected dtype {want.dtype}, got {got.dtype}")
        expect_shape(got, tuple(want.shape), what=what)
        if not _torch_equal(_to_cpu(_detach(got)), _to_cpu(_detach(want))):
            _first_difference(_as_numpy(got, what), _as_numpy(want, what), what)
        return
    if _builtin_type(want) is _np_ndarray:
        expect_type(got, _np_ndarray, what=what)
        if got.dtype != want.dtype:
            raise CheckFailure(f"{what}: expected dtype {want.dtype}, got {got.dtype}")
        expect_shape(got, want.shape, what=what)
        if not _np_array_equal(got, want):
            _first_difference(got, want, what)
        return
    g, w = _plain(got, what), _plain(want, what)
    if _builtin_type(g) is not _builtin_type(w):
        raise CheckFailure(f"{what}: expected {describe(w)} {_short_repr(w)}, got {describe(g)} {_short_repr(g)}")
    if not _same(g, w):
        if _builtin_type(w) in (list, tuple) and _builtin_type(g) is _builtin_type(w):
            if len(g) != len(w):
                raise CheckFailure(f"{what}: expected {len(w)} items, got {len(g)}: "
                                   f"expected {_short_repr(w)}, got {_short_repr(g)}")
            i = next(i for i in range(len(w)) if not _same(g[i], w[i]))
            raise CheckFailure(f"{what}: first difference at index {i}: expected {_short_repr(w[i])}, "
                               f"got {_short_repr(g[i])} (expected {_short_repr(w)}, got {_short_repr(g)})")
        raise CheckFailure(f"{what}: expected {_short_repr(w)}, got {_short_repr(g)}")


def _same(a, b) -> bool:
    """Structural equality of plain data, with exact types at every level (True != 1 here)."""
    ta, tb = _builtin_type(a), _builtin_type(b)
    if ta is not tb:
        return False
    if ta in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if ta is dict:
        return len(a) == len(b) and all(k in b and _same(v, b[k]) for k, v in dict.items(a))
    if ta is float:
        return float.__eq__(a, b) or (a != a and b != b)
    return a == b   # None, bool, int, str, bytes: built-in __eq__ of exact types


def _short_repr(x, limit: int = 120) -> str:
    r = repr(x)
    return r if len(r) <= limit else r[: limit - 1] + "…"


def _first_difference(g, w, what: str) -> None:
    bad = ~((g == w) | ((g != g) & (w != w)))
    idx = tuple(int(i) for i in _np_argwhere(bad)[0]) if g.ndim else ()
    raise CheckFailure(f"{what}: {int(bad.sum())} of {g.size} values differ (shape {g.shape}); "
                       f"first at {idx}: expected {w[idx].item()!r}, got {g[idx].item()!r}")


def expect_between(x, low: float | None, high: float | None, *, what: str, why: str = "") -> float:
    """low <= x <= high for a learner's number (reduced with as_float first); returns the float.
    `why` says what being outside means, in the learner's terms."""
    v = as_float(x, what=what)
    if not (v == v) or (low is not None and v < low) or (high is not None and v > high):
        rng = (f"at least {low:g}" if high is None else f"at most {high:g}" if low is None
               else f"between {low:g} and {high:g}")
        raise CheckFailure(f"{what}: expected {rng}, got {v:.6g}" + (f"; {why}" if why else ""))
    return v


def check_close(got, want, *, what: str, atol: float, rtol: float = 0.0, check_dtype: bool = True,
                diagnose=None) -> None:
    """expect_close, but when it fails `diagnose(got, want)` may name the classic mistake first: it
    returns a message ("looks like the mask lets position i see i+1") or None for the generic one.
    diagnose runs only on a failure and must itself compare through these helpers or plain numpy
    arrays it made with `to_numpy`."""
    try:
        expect_close(got, want, what=what, atol=atol, rtol=rtol, check_dtype=check_dtype)
    except CheckFailure as generic:
        named = diagnose(got, want) if diagnose is not None else None
        if named:
            raise CheckFailure(f"{what}: {named}") from None
        raise generic from None


def is_close(got, want, *, atol: float, rtol: float = 0.0) -> bool:
    """True when expect_close would pass (for diagnose functions that test a hypothesis)."""
    try:
        expect_close(got, want, what="", atol=atol, rtol=rtol, check_dtype=False)
        return True
    except CheckFailure:
        return False


def to_numpy(x, *, what: str = "value"):
    """A plain float64/int numpy copy of a number, plain tensor or array (exact types only)."""
    return _as_numpy(x, what)
