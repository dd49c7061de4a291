"""Run-time tripwires inside the grading child.

- Import guard: an `import` (or importlib.import_module) *made by a learner module* of a forbidden
  module raises ForbiddenAPI with the mission's message ("no frameworks: numpy only"). Forbidden for
  every mission: the reference packages of all missions (engine.micrograd, engine.gpt, ...). Shared
  infrastructure (engine.shared) stays importable.
- Call tripwires: a checkpoint can forbid calls such as torch.nn.functional.scaled_dot_product_attention;
  the attribute is replaced by a wrapper (before any learner import, so `from x import f` binds the
  wrapper) that raises when learner code is on the call stack while that checkpoint runs.
Every violation is also recorded, so learner code that swallows the exception still fails.
Not handled: learner code that reaches a forbidden function through ctypes or by reading the
original object out of a closure; this is a guard against shortcuts, not a sandbox.
"""
from __future__ import annotations

import builtins
import functools
import importlib
import sys
import types

from .missions import load_all
from .plugin import ForbiddenAPI

GRADING_INTERNALS = {"grader", "pytest", "_pytest", "pluggy"}
SHARED = "engine.shared"   # the one part of engine/ learner code may import; every other part is a reference


def _reference_packages() -> list[str]:
    return [m.reference for m in load_all()[0]]


class Guard:
    def __init__(self, *, learner_package: str, forbid_modules: list[str], forbid_messages: dict | None = None):
        self.pkg = learner_package
        self.forbid = list(forbid_modules)
        self.messages = forbid_messages or {}
        self.references = [r for r in _reference_packages() if r != learner_package]
        self.violations: list[str] = []
        self._armed: set[str] = set()
        self._installed: dict[str, tuple[object, str, object]] = {}

    # -- imports ------------------------------------------------------------------------------
    def _is_learner(self, module_name: str | None) -> bool:
        return bool(module_name) and (module_name == self.pkg or module_name.startswith(self.pkg + "."))

    def _forbidden_reason(self, name: str) -> str | None:
        top = name.split(".")[0]
        if top in GRADING_INTERNALS:
            return (f"learner code may not import {top} (the grading machinery); "
                    "a solution never needs it")
        if top == "engine" and name != "engine" and not (name == SHARED or name.startswith(SHARED + ".")):
            return (f"your code imports the reference solution ({name}); write it yourself "
                    "(importing engine references from learner code is forbidden)")
        for ref in self.references:
            if name == ref or name.startswith(ref + "."):
                return (f"your code imports the reference solution ({name}); write it yourself "
                        "(importing engine references from learner code is forbidden)")
        if top in self.forbid:
            return self.messages.get(top) or f"importing {top} is not allowed in this mission"
        return None

    def _violation(self, message: str):
        self.violations.append(message)
        raise ForbiddenAPI(message)

    def install_import_guard(self) -> None:
        original_import = builtins.__import__
        original_import_module = importlib.import_module
        guard = self

        def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
            if level == 0 and globals is not None and guard._is_learner(globals.get("__name__")):
                for full in (name, *(f"{name}.{item}" for item in (fromlist or ()) if item != "*")):
                    reason = guard._forbidden_reason(full)
                    if reason:
                        guard._violation(f"{globals.get('__name__')}: {reason}")
                module = original_import(name, globals, locals, fromlist, level)
                if name.split(".")[0] == "engine" and getattr(module, "__name__", "") == "engine":
                    return guard._engine_view(globals.get("__name__"))  # `import engine.shared.data` binds `engine`
                return module
            return original_import(name, globals, locals, fromlist, level)

        @functools.wraps(original_import_module)
        def guarded_import_module(name, package=None):
            caller = sys._getframe(1).f_globals.get("__name__")
            if guard._is_learner(caller) and not name.startswith("."):
                reason = guard._forbidden_reason(name)
                if reason:
                    guard._violation(f"{caller}: {reason}")
                if name == "engine":
                    return guard._engine_view(caller)
            return original_import_module(name, package)

        builtins.__import__ = guarded_import
        importlib.import_module = guarded_import_module

    def _engine_view(self, importer: str):
        """What learner code sees as `engine`: the shared infrastructure and nothing else."""
        view = types.ModuleType("engine", "llm-lab's shared infrastructure: engine.shared")
        guard = self

        def __getattr__(attr):
            if attr == "shared":
                return importlib.import_module(SHARED)
            guard._violation(f"{importer}: your code reaches into the reference solution (engine.{attr}); "
                             "write it yourself (importing engine references from learner code is forbidden)")
        view.__getattr__ = __getattr__
        return view

    # -- calls --------------------------------------------------------------------------------
    def _learner_on_stack(self) -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if self._is_learner(frame.f_globals.get("__name__")):
                return True
            frame = frame.f_back
        return False

    def install_call_tripwires(self, dotted_paths: list[str]) -> None:
        """Arm the tripwires for the checkpoint about to run (installing any not yet installed)."""
        for path in dotted_paths:
            if path not in self._installed:
                self._install_one(path)
            self._armed.add(path)

    def remove_call_tripwires(self) -> None:
        self._armed.clear()

    def preinstall(self, dotted_paths: list[str]) -> None:
        for path in dotted_paths:
            if path not in self._installed:
                self._install_one(path)

    def _install_one(self, path: str) -> None:
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                owner = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr in parts[i:-1]:
                owner = getattr(owner, attr)
            break
        else:
            return  # library not installed: nothing to guard
        name = parts[-1]
        original = getattr(owner, name, None)
        if original is None:
            return
        guard = self
        message = (f"{path.rsplit('.', 1)[-1]} is off limits in this checkpoint: the point is to write it "
                   f"yourself ({path})")
        if isinstance(original, type):
            def __init__(self_, *args, **kwargs):
                if path in guard._armed and guard._learner_on_stack():
                    guard._violation(message)
                original.__init__(self_, *args, **kwargs)
            wrapper = type(original.__name__, (original,), {"__init__": __init__, "__module__": original.__module__})
        else:
            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                if path in guard._armed and guard._learner_on_stack():
                    guard._violation(message)
                return original(*args, **kwargs)
        setattr(owner, name, wrapper)
        self._installed[path] = (owner, name, original)
        # the same object under other names in the library (torch._C._nn.scaled_dot_product_attention,
        # torch.nn.modules.activation.MultiheadAttention, ...) gets the same wrapper
        top = parts[0] + "."
        for mod_name, mod in list(sys.modules.items()):
            if mod is not owner and (mod_name + ".").startswith(top):
                try:
                    if getattr(mod, name, None) is original:
                        setattr(mod, name, wrapper)
                except Exception:  # exotic modules may refuse attribute access
                    continue
