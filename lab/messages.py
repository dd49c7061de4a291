"""Typed messages the lab's workers and screens post upwards.

Grading runs in a thread; it talks to the UI only through these (post_message is thread-safe).
"""
from __future__ import annotations

from textual.message import Message


class GradeStarted(Message):
    """A grade began: `checkpoints` are about to be graded, in order."""

    def __init__(self, mission_id: str, checkpoints: tuple[str, ...], reason: str = "") -> None:
        super().__init__()
        self.mission_id, self.checkpoints, self.reason = mission_id, checkpoints, reason


class GradeOutput(Message):
    """New lines of the grader's output (already cleaned); `dropped` lines were not shown."""

    def __init__(self, mission_id: str, lines: list[str], dropped: int = 0) -> None:
        super().__init__()
        self.mission_id, self.lines, self.dropped = mission_id, lines, dropped


class CheckpointStarted(Message):
    def __init__(self, mission_id: str, checkpoint: str) -> None:
        super().__init__()
        self.mission_id, self.checkpoint = mission_id, checkpoint


class CheckpointGraded(Message):
    """One checkpoint's result (already recorded in state.json): status, message, duration."""

    def __init__(self, mission_id: str, checkpoint: str, status: str, message: str,
                 duration: float = 0.0) -> None:
        super().__init__()
        self.mission_id, self.checkpoint = mission_id, checkpoint
        self.status, self.message, self.duration = status, message, duration


class GradeFinished(Message):
    """A grade ended. `error` is set when the grader itself failed (not the learner's code);
    `cancelled` when it was stopped."""

    def __init__(self, mission_id: str, results: dict[str, str], duration: float = 0.0,
                 warnings: list[str] | None = None, error: str | None = None,
                 cancelled: bool = False, seed: int | None = None) -> None:
        super().__init__()
        self.mission_id, self.results, self.duration = mission_id, results, duration
        self.warnings, self.error, self.cancelled, self.seed = list(warnings or []), error, cancelled, seed


class ProgressChanged(Message):
    """state.json changed for `mission_id` (a result was recorded, a stub reset)."""

    def __init__(self, mission_id: str) -> None:
        super().__init__()
        self.mission_id = mission_id


class MissionChosen(Message):
    """The learner picked a mission on the map."""

    def __init__(self, mission_id: str) -> None:
        super().__init__()
        self.mission_id = mission_id
