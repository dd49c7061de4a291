"""Call tripwires: a checkpoint forbids calls such as torch.nn.functional.scaled_dot_product_attention.

The attribute is replaced by a wrapper before any learner import (so `from x import f` binds the
wrapper); while the checkpoint that forbids it runs, a call with learner code on the stack records a
violation and raises ForbiddenAPI. The same object under other names in the library
(torch._C._nn.scaled_dot_product_attention, torch.nn.modules.activation.MultiheadAttention, ...)
gets the same wrapper. Operator packets such as torch.ops.aten.scaled_dot_product_attention are
wrapped too, with their overloads (`.default`). Wrappers carry no `__wrapped__`.
Not handled: reaching the original through the wrapper's closure or the class wrapper's
`__bases__`, or through ctypes (deliberate; see the trust model).
"""
from __future__ import annotations

import importlib
import sys


class Tripwires:
    def __init__(self, guard):
        self.guard = guard
        self.armed: set[str] = set()
        self.installed: set[str] = set()

    def preinstall(self, dotted_paths: list[str]) -> None:
        for path in dotted_paths:
            if path not in self.installed:
                self._install(path)

    def arm(self, dotted_paths: list[str]) -> None:
        """Arm the tripwires for the checkpoint about to run (installing any not yet installed)."""
        self.preinstall(dotted_paths)
        self.armed.update(dotted_paths)

    def disarm(self) -> None:
        self.armed.clear()

    def _trip(self, path: str) -> None:
        if path in self.armed and self.guard._learner_on_stack(depth=3):
            self.guard._violation(f"{path.rsplit('.', 1)[-1]} is off limits in this checkpoint: the point is "
                                  f"to write it yourself ({path})")

    def _install(self, path: str) -> None:
        owner, name = _resolve_owner(path)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            return   # library not installed, or no such attribute in this version: nothing to guard
        wrapper = self._wrap(path, original)
        setattr(owner, name, wrapper)
        self.installed.add(path)
        top = path.split(".")[0] + "."
        for mod_name, mod in list(sys.modules.items()):
            if mod is not owner and (mod_name + ".").startswith(top):
                try:
                    if getattr(mod, name, None) is original:
                        setattr(mod, name, wrapper)
                except Exception:  # exotic modules may refuse attribute access
                    continue

    def _wrap(self, path: str, original):
        trip = self._trip
        if isinstance(original, type):
            def __init__(self_, *args, **kwargs):
                trip(path)
                original.__init__(self_, *args, **kwargs)
            return type(original.__name__, (original,), {"__init__": __init__, "__module__": original.__module__,
                                                         "__doc__": original.__doc__})
        if type(original).__name__ == "OpOverloadPacket":
            return _TrippedObject(path, original, trip)

        def wrapper(*args, **kwargs):
            trip(path)
            return original(*args, **kwargs)
        wrapper.__name__ = getattr(original, "__name__", path.rsplit(".", 1)[-1])
        wrapper.__qualname__ = getattr(original, "__qualname__", wrapper.__name__)
        wrapper.__doc__ = getattr(original, "__doc__", None)
        wrapper.__module__ = getattr(original, "__module__", None)
        return wrapper


class _TrippedObject:
    """A callable object (an operator packet) whose calls, and whose callable attributes' calls
    (`.default` overloads), trip first."""

    __slots__ = ("_path", "_call", "_trip", "_attrs")

    def __init__(self, path, original, trip):
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_trip", trip)
        object.__setattr__(self, "_call", original.__call__)
        object.__setattr__(self, "_attrs", {n: getattr(original, n) for n in dir(original)
                                            if not n.startswith("__") and _safe_callable(original, n)})

    def __call__(self, *args, **kwargs):
        self._trip(self._path)
        return self._call(*args, **kwargs)

    def __getattr__(self, name):
        attrs = object.__getattribute__(self, "_attrs")
        if name not in attrs:
            raise AttributeError(name)
        target, trip, path = attrs[name], self._trip, self._path

        def overload(*args, **kwargs):
            trip(path)
            return target(*args, **kwargs)
        return overload


def _safe_callable(obj, name: str) -> bool:
    try:
        return callable(getattr(obj, name))
    except Exception:
        return False


def _resolve_owner(path: str):
    """'torch.nn.functional.softmax' -> (torch.nn.functional, 'softmax'); (None, name) if absent."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:-1]:
                owner = getattr(owner, attr)
        except AttributeError:
            return None, parts[-1]
        return owner, parts[-1]
    return None, parts[-1]
