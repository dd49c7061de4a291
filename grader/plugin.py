"""The pytest plugin that runs inside the grading child: fixtures for checks and result reporting.

Each test's outcome is classified (passed / failed / not_implemented / error / skipped) and turned
into a message in the learner's terms, then handed to `emit` (the grader's own channel, never
stdout). Not handled: xfail (checks never use it).
"""
from __future__ import annotations

import os
import sys
import traceback
import types
import zlib
from pathlib import Path

import pytest

from .checks import CheckFailure

OUTPUT_LIMIT = 2000  # characters of a test's captured output kept in its result


def _walk_code(code, found: set[int], keep: list) -> None:
    if id(code) in found:
        return
    found.add(id(code))
    keep.append(code)
    for const in code.co_consts:
        if type(const) is types.CodeType:
            _walk_code(const, found, keep)


class ForbiddenAPI(AssertionError):
    """Learner code used an API the checkpoint forbids (an import or a call)."""


def _clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… [{len(text) - limit} characters cut] …\n{text[-half:]}"


class GradePlugin:
    def __init__(self, emit, *, seed: int, checkpoint: str, learner_roots: list[str], guard=None,
                 checks_dir: str | None = None):
        self.emit, self._seed, self.checkpoint, self.guard = emit, seed, checkpoint, guard
        self.trusted_dirs = [str(Path(d).resolve()) for d in (checks_dir, Path(__file__).parent) if d]
        self.learner_roots = [str(Path(r).resolve()) for r in learner_roots]
        self.collected = 0
        self.reported: set[str] = set()

    # -- fixtures -------------------------------------------------------------------------------
    @pytest.fixture
    def seed(self, request) -> int:
        """The run's seed mixed with the test's id: fresh inputs each run, reproducible from the seed."""
        return (self._seed ^ zlib.crc32(request.node.nodeid.split("::")[-1].encode())) & 0x7FFFFFFF

    @pytest.fixture
    def rng(self, seed):
        import numpy as np
        return np.random.default_rng(seed)

    # -- collection -----------------------------------------------------------------------------
    def pytest_collectreport(self, report):
        if report.failed:
            self._send(report.nodeid or "collection", "error",
                       "the check file could not be loaded (this is a grader bug, not yours): "
                       + _clip(str(report.longrepr)), 0.0, "")

    def pytest_collection_finish(self, session):
        self.collected = len(session.items)
        self.emit({"type": "collected", "checkpoint": self.checkpoint, "count": self.collected})

    # -- outcomes -------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        original = call.excinfo   # before pytest's unittest plugin swaps a SkipTest for its own skip
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            status, message = self._classify(report, call, original)
            if self.guard is not None and self.guard.violations:
                # a forbidden import/call happened, even if learner code caught the exception
                status, message = "failed", self.guard.violations[0]
                self.guard.violations.clear()
            out = "".join(s for s in (report.capstdout, report.capstderr) if s)
            self._send(item.nodeid, status, message, report.duration, out)

    def _send(self, nodeid, status, message, duration, output):
        if nodeid in self.reported:
            return
        self.reported.add(nodeid)
        self.emit({"type": "result", "checkpoint": self.checkpoint, "test": nodeid, "status": status,
                   "message": _clip(message), "duration": round(duration, 4), "output": _clip(output)})

    def _classify(self, report, call, original=None) -> tuple[str, str]:
        if report.passed:
            return "passed", ""
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            raised = original or call.excinfo
            if raised is None or not self._raised_by_checks(raised.tb):
                # only the checks may skip (no GPU, no network); learner code may not
                where = self._learner_frame(raised.tb) if raised else ""
                return "failed", (f"{where or 'your code'}: learner code may not skip a check "
                                  f"({reason.removeprefix('Skipped: ')})")
            return "skipped", reason.removeprefix("Skipped: ")
        exc = call.excinfo.value if call.excinfo else None
        if exc is None:
            return "error", _clip(str(report.longrepr))
        where = self._learner_frame(call.excinfo.tb)
        if isinstance(exc, NotImplementedError):
            msg = str(exc) or "still raises NotImplementedError"
            return "not_implemented", f"{where}: {msg}" if where else msg
        if isinstance(exc, ForbiddenAPI):
            return "failed", str(exc)
        if isinstance(exc, CheckFailure):
            return "failed", str(exc)
        if isinstance(exc, AssertionError):
            # a bare assert inside a check or in learner code: keep pytest's explanation short
            text = str(exc).strip() or "an assertion failed"
            return "failed", (f"{where}: " if where else "") + text.splitlines()[0][:500]
        if isinstance(exc, SyntaxError) and exc.filename:
            return "error", (f"syntax error in {self._rel(exc.filename)} line {exc.lineno}: {exc.msg}")
        if isinstance(exc, MemoryError):
            return "oom", "MemoryError: the code asked for more memory than the grader allows"
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
            return "oom", f"CUDA out of memory: {str(exc).splitlines()[0] if str(exc) else ''}"
        if isinstance(exc, RecursionError):
            return "error", f"{where}: RecursionError (infinite recursion?)"
        name = type(exc).__name__
        text = str(exc).splitlines()[0][:500] if str(exc) else ""
        return "error", f"{name} in {where}: {text}" if where else f"{name}: {text}"

    def _raised_by_checks(self, tb) -> bool:
        """The skip was raised by genuine check (or grader) code: the innermost frame outside pytest
        and unittest runs a code object that belongs to a module loaded from the checks folder or
        grader/ (by identity: code compiled elsewhere under a check's file name does not count)."""
        frames = [frame for frame, _ in traceback.walk_tb(tb)]
        for frame in reversed(frames):
            module = frame.f_globals.get("__name__", "") if type(frame.f_globals) is dict else ""
            if module.split(".")[0] in ("_pytest", "pytest", "unittest"):
                continue
            return id(frame.f_code) in self._genuine_code()
        return False

    def _genuine_code(self) -> set[int]:
        found: set[int] = set()
        keep: list = []
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None) if type(module) is types.ModuleType else None
            if type(file) is not str or not any(str(Path(file).resolve()).startswith(d + os.sep)
                                                for d in self.trusted_dirs):
                continue
            for obj in list(vars(module).values()):
                for fn in (vars(obj).values() if isinstance(obj, type) else (obj,)):
                    fn = getattr(fn, "__func__", fn)
                    code = getattr(fn, "__code__", None) if type(fn) is types.FunctionType else None
                    if code is not None:
                        _walk_code(code, found, keep)
        self._keep = keep   # hold the code objects so their ids stay theirs
        return found

    def _rel(self, filename: str) -> str:
        path = str(Path(filename).resolve())
        for root in self.learner_roots:
            if path.startswith(root + os.sep):
                return os.path.relpath(path, str(Path(root).parent))
        return Path(filename).name

    def _learner_frame(self, tb) -> str:
        """'value.py line 12 (Value.__mul__)' for the deepest frame in learner code, or ''."""
        found = ""
        for frame, lineno in traceback.walk_tb(tb):
            path = str(Path(frame.f_code.co_filename).resolve())
            if any(path.startswith(root + os.sep) for root in self.learner_roots):
                found = f"{self._rel(path)} line {lineno} ({frame.f_code.co_qualname if sys.version_info >= (3, 11) else frame.f_code.co_name})"
        return found
