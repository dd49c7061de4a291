"""Run-time guards inside the grading child.

- Import guard: an import *made by a learner module* of a forbidden module raises ForbiddenAPI with
  the mission's message ("no frameworks: numpy only"), whatever the form: `import x`, `from x import
  y`, `__import__(name)` with or without globals, importlib.import_module, importlib.__import__.
  The rule for engine/ is one line: learner code may import engine.shared, never anything else
  under engine/ (the references of every mission).
- Reference files: an audit hook refuses to open any file of the references while learner code is
  on the stack (exec(open(...).read()), importlib.util.spec_from_file_location, ...), and the
  learner finder (grader.loader) refuses workspace files that are links to installed files.
- Call tripwires: a checkpoint can forbid calls such as torch.nn.functional.scaled_dot_product_attention;
  the attribute is replaced by a wrapper (before any learner import, so `from x import f` binds the
  wrapper) that raises when learner code is on the call stack while that checkpoint runs.
Every violation is also recorded, so learner code that swallows the exception still fails.
Call tripwires live in grader.tripwires.
Not handled: learner code that reaches a forbidden function through ctypes or by reading the
original object out of a closure; this is a guard against shortcuts, not a sandbox.
"""
from __future__ import annotations

import builtins
import importlib
import os
import sys
import types
from pathlib import Path

from .missions import load_all
from .plugin import ForbiddenAPI
from .tripwires import Tripwires

GRADING_INTERNALS = {"grader", "pytest", "_pytest", "pluggy"}
SHARED = "engine.shared"   # the one part of engine/ learner code may import; every other part is a reference


ENGINE = Path(__file__).resolve().parent.parent / "engine"


def _reference_packages() -> list[str]:
    return [m.reference for m in load_all()[0]]


def reference_file(path: str, own: str = "") -> bool:
    """`path` (after links) is a file of a reference package: under engine/ but neither in
    engine/shared/ nor in `own` (the package being graded, in --reference mode)."""
    real = Path(os.path.realpath(path))
    try:
        rel = real.relative_to(ENGINE)
    except ValueError:
        return False
    return len(rel.parts) > 1 and rel.parts[0] not in ("shared", "__pycache__", own)


class Guard:
    def __init__(self, *, learner_package: str, forbid_modules: list[str], forbid_messages: dict | None = None):
        self.pkg = learner_package
        self.forbid = list(forbid_modules)
        self.messages = forbid_messages or {}
        self.references = [r for r in _reference_packages() if r != learner_package]
        self.violations: list[str] = []
        self._auditing = False
        self.tripwires = Tripwires(self)

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
        for forbidden in self.forbid:   # a package ("torch") or a part of one ("torch.ao")
            if name == forbidden or name.startswith(forbidden + "."):
                return self.messages.get(forbidden) or f"importing {forbidden} is not allowed in this mission"
        return None

    def _violation(self, message: str):
        self.violations.append(message)
        raise ForbiddenAPI(message)

    def _caller(self, depth: int = 2) -> str | None:
        return sys._getframe(depth).f_globals.get("__name__")

    def _check(self, importer: str | None, name: str, fromlist=()) -> None:
        if not self._is_learner(importer):
            return
        for full in (name, *(f"{name}.{item}" for item in (fromlist or ()) if item != "*")):
            reason = self._forbidden_reason(full)
            if reason:
                self._violation(f"{importer}: {reason}")

    def install_import_guard(self) -> None:
        """Guard every import statement and function, and every open of a reference file."""
        original_import, original_import_module = builtins.__import__, importlib.import_module
        original_bootstrap_import = importlib.__import__
        guard = self

        def guarded(original):
            def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
                if level == 0 and type(name) is str:
                    importer = (globals.get("__name__") if type(globals) is dict else None) or guard._caller()
                    if guard._is_learner(importer):
                        guard._check(importer, name, fromlist)
                        module = original(name, globals, locals, fromlist, level)
                        if name.split(".")[0] == "engine" and getattr(module, "__name__", "") == "engine":
                            return guard._engine_view(importer)  # `import engine.shared.data` binds `engine`
                        return module
                return original(name, globals, locals, fromlist, level)
            return guarded_import

        def guarded_import_module(name, package=None):
            importer = guard._caller()
            if guard._is_learner(importer) and type(name) is str and not name.startswith("."):
                guard._check(importer, name)
                if name == "engine":
                    return guard._engine_view(importer)
            return original_import_module(name, package)

        guarded_import_module.__name__ = guarded_import_module.__qualname__ = "import_module"
        builtins.__import__ = guarded(original_import)
        importlib.__import__ = guarded(original_bootstrap_import)
        importlib.import_module = guarded_import_module
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple) -> None:
        """Refuse to open a reference file (or a link to one) while learner code is on the stack."""
        if event != "open" or not args or type(args[0]) not in (str, bytes):
            return
        if self._auditing or not self._learner_on_stack(depth=1):
            return
        self._auditing = True   # the checks below open nothing, but stay safe from re-entry
        try:
            path = args[0] if type(args[0]) is str else args[0].decode(errors="replace")
            if reference_file(path, own=self.pkg.split('.')[1] if self.pkg.startswith('engine.') else ''):
                self._violation(f"{self._learner_frame_name()}: your code reads the reference solution's files "
                                f"({path}); write it yourself")
        finally:
            self._auditing = False

    def _learner_frame_name(self) -> str:
        frame = sys._getframe(1)
        while frame is not None and not self._is_learner(frame.f_globals.get("__name__")):
            frame = frame.f_back
        return frame.f_globals.get("__name__") if frame is not None else self.pkg

    def _learner_on_stack(self, depth: int = 2) -> bool:
        frame = sys._getframe(depth)
        while frame is not None:
            if self._is_learner(frame.f_globals.get("__name__")):
                return True
            frame = frame.f_back
        return False

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


    # -- calls: see grader.tripwires ----------------------------------------------------------------
    def preinstall(self, dotted_paths: list[str]) -> None:
        self.tripwires.preinstall(dotted_paths)

    def install_call_tripwires(self, dotted_paths: list[str]) -> None:
        self.tripwires.arm(dotted_paths)

    def remove_call_tripwires(self) -> None:
        self.tripwires.disarm()
