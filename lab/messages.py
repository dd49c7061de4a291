"""Every message of the lab, in one place (a test checks each one has a handler).

Workers run in threads (grading, watch mode, device sampling) and talk to the UI only through these
(post_message is thread-safe). Screens post ProgressChanged and MissionChosen up to the app.
Widgets' own messages (ImplToggle.Changed, LossPlot.ScaleChanged) live with their widget, as in
Textual itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from .training.device_sampling import DeviceSample


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
    """New results for `mission_id` were recorded: `records` is its {checkpoint: record} now."""

    def __init__(self, mission_id: str, records: dict[str, dict]) -> None:
        super().__init__()
        self.mission_id, self.records = mission_id, records


class MissionChosen(Message):
    """The learner picked a mission on the map."""

    def __init__(self, mission_id: str) -> None:
        super().__init__()
        self.mission_id = mission_id


class FilesSaved(Message):
    """Watch mode saw `names` (package-relative) change in `mission_id`'s package."""

    def __init__(self, mission_id: str, names: list[str]) -> None:
        super().__init__()
        self.mission_id, self.names = mission_id, names


class DeviceSampled(Message):
    """A device sample (GPU through NVML, or CPU) from the Train screen's sampling thread."""

    def __init__(self, sample: "DeviceSample") -> None:
        super().__init__()
        self.sample = sample
