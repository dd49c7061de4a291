"""The bridge between grader.runner.grade (blocking, called in a worker thread) and the UI.

A GradeJob runs one grade and turns the grader's events into typed messages (lab.messages) posted
through `post` (a thread-safe MessagePump.post_message). Events may come from several threads (the
grader runs a slow checkpoint's child beside the others, and drains each child's output in a thread
of its own). It also
- records each checkpoint's result in state.json as soon as it arrives (so progress survives the
  learner leaving the screen, or quitting, mid-grade);
- batches the child's output: at most one GradeOutput every LOG_INTERVAL seconds, holding the last
  LOG_BATCH lines, with a count of the lines it dropped (a flood of prints never floods the UI);
- can be cancelled: cancel() sets the grader's cancel event; grade() kills its children and
  returns within half a second with the checkpoints that had finished.

Not handled: several grades of one process at once (the app allows one at a time).
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from types import SimpleNamespace
from typing import Callable

from grader.missions import Mission
from grader.report import clean_text
from grader.workspace import Workspace

from .messages import CheckpointGraded, CheckpointStarted, GradeFinished, GradeOutput, GradeStarted

LOG_BATCH = 500
LOG_INTERVAL = 0.1
LINE_MAX = 500


class GradeCancelled(Exception):
    """Raised from the grader's event callback to stop a cancelled grade."""


class GradeJob:
    def __init__(self, mission: Mission, workspace: Workspace, post: Callable[[object], object], *,
                 checkpoints: list[str] | None = None, reference: bool = False, record: bool = True,
                 reason: str = "") -> None:
        self.mission, self.workspace, self.post = mission, workspace, post
        self.checkpoints = list(checkpoints) if checkpoints else [c.id for c in mission.checkpoints]
        self.reference, self.record, self.reason = reference, record, reason
        self.results: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pending: deque[str] = deque(maxlen=LOG_BATCH)
        self._dropped = 0
        self._last_flush = 0.0
        self._cancel = threading.Event()
        self.finished = threading.Event()

    # -- running (worker thread) ----------------------------------------------------------------
    def run(self) -> GradeFinished:
        started = time.monotonic()
        error, cancelled, warnings, seed = None, False, [], None
        self.post(GradeStarted(self.mission.id, tuple(self.checkpoints), self.reason))
        try:
            from grader.runner import grade   # lazily: keeps the app's start-up light

            if not self.reference:
                warnings += self._integrity_warnings()
            run = grade(self.mission, None if self.reference else self.workspace,
                        reference=self.reference, checkpoints=self.checkpoints, on_event=self._on_event,
                        cancel=self._cancel)
            cancelled = self._cancel.is_set()
            warnings += run.warnings
            seed = run.seed
        except GradeCancelled:
            cancelled = True
        except Exception as e:  # the grader failed (not the learner's code): report, never crash
            if self._cancel.is_set():
                cancelled = True
            else:
                error = f"{type(e).__name__}: {e}"
                for line in traceback.format_exc().splitlines():
                    self._add_line(line)
        finally:
            self._flush(force=True)
        done = GradeFinished(self.mission.id, dict(self.results), round(time.monotonic() - started, 2),
                             warnings, error, cancelled, seed)
        self.finished.set()
        self.post(done)
        return done

    def cancel(self) -> None:
        """Stop the grade as soon as possible (the grader kills its children)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- the grader's events (grading thread, and the log drain thread for "log") ----------------
    def _on_event(self, kind: str, data: dict) -> None:
        if kind == "log":
            self._add_line(str(data.get("line", "")))
            if time.monotonic() - self._last_flush >= LOG_INTERVAL:
                self._flush()
            return
        self._check_cancel()
        if kind == "begin":
            self._flush(force=True)
            self.post(CheckpointStarted(self.mission.id, data["checkpoint"]))
        elif kind == "checkpoint":
            cid, status = data["checkpoint"], data["status"]
            message = clean_text(str(data.get("message") or ""))
            if self.record:
                self.workspace.state.record_results(
                    self.mission.id, [SimpleNamespace(checkpoint=cid, status=status, message=message)])
            self.results[cid] = status
            self._flush(force=True)
            self.post(CheckpointGraded(self.mission.id, cid, status, message, float(data.get("duration") or 0)))

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise GradeCancelled()   # stop handling events; grade() itself stops on the event

    def _add_line(self, line: str) -> None:
        text = clean_text(line).replace("\t", "    ")
        with self._lock:
            for part in text.split("\n") or [""]:
                if len(self._pending) == self._pending.maxlen:
                    self._dropped += 1
                self._pending.append(part[:LINE_MAX])

    def _flush(self, force: bool = False) -> None:
        with self._lock:
            if not self._pending and not self._dropped:
                return
            if not force and time.monotonic() - self._last_flush < LOG_INTERVAL:
                return
            lines, dropped = list(self._pending), self._dropped
            self._pending.clear()
            self._dropped = 0
            self._last_flush = time.monotonic()
            # posted under the lock: batches from the grading and the log threads keep their order
            self.post(GradeOutput(self.mission.id, lines, dropped))

    def _integrity_warnings(self) -> list[str]:
        try:
            from grader.integrity import scan
            return scan(self.workspace.root)
        except Exception:  # a warning scan never stops a grade
            return []


class GradeSlot:
    """One grade at a time for the whole app; screens share one slot (given to them at creation)."""

    def __init__(self) -> None:
        self.job: GradeJob | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.finished.is_set()

    def claim(self, job: GradeJob) -> bool:
        if self.busy:
            return False
        self.job = job
        return True

    def cancel(self) -> bool:
        if self.busy:
            self.job.cancel()
            return True
        return False
