"""A learner's progress as the lab shows it: each checkpoint's last status, each mission's count of
required and bonus checkpoints passed, and the suggested next mission.

Works on grader data (Mission, the state dict of grader.state) only, so the CLI (`llm-lab missions`,
`llm-lab grade`) and the screens count the same way. Nothing here imports Textual, torch or numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from grader.missions import Checkpoint, Mission

# status -> (symbol, theme colour variable, words shown to the learner)
STATUS_STYLE: dict[str | None, tuple[str, str, str]] = {
    None: ("○", "foreground-muted", "not graded yet"),
    "passed": ("✔", "success", "passed"),
    "failed": ("✘", "error", "failed"),
    "not_implemented": ("…", "warning", "not implemented yet"),
    "error": ("!", "error", "error"),
    "timeout": ("⏱", "accent", "timed out"),
    "crashed": ("☠", "accent", "crashed"),
    "oom": ("▲", "accent", "out of memory"),
    "skipped": ("-", "foreground-muted", "skipped"),
    "running": ("◌", "primary", "grading…"),
    "queued": ("·", "primary", "waiting to be graded"),
}


def status_style(status: str | None) -> tuple[str, str, str]:
    return STATUS_STYLE.get(status, ("?", "foreground", str(status)))


@dataclass(frozen=True)
class Progress:
    passed: int          # required (non-bonus) checkpoints passed
    total: int           # required checkpoints
    started: bool        # any checkpoint graded at least once
    bonus_passed: int = 0
    bonus_total: int = 0

    @property
    def done(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def label(self) -> str:
        """What the map shows: "done", "not started" or "2 of 7 checkpoints", then the bonus."""
        if self.done:
            text = "done"
        elif not self.started:
            text = "not started"
        else:
            text = f"{self.passed} of {self.total} checkpoints"
        if self.bonus_total:
            text += f" · bonus {self.bonus_passed} of {self.bonus_total}"
        return text

    @property
    def counts(self) -> str:
        """What the CLI shows: "2/7 required, bonus 0/4"."""
        text = f"{self.passed}/{self.total} required"
        return text + (f", bonus {self.bonus_passed}/{self.bonus_total}" if self.bonus_total else "")


def checkpoint_records(state: Mapping, mission_id: str) -> dict[str, dict]:
    """{checkpoint id: {"status", "message", "time"}} as last graded (empty if never)."""
    m = state.get("missions", {}).get(mission_id, {})
    cps = m.get("checkpoints", {}) if isinstance(m, dict) else {}
    return {k: dict(v) for k, v in cps.items() if isinstance(v, dict)}


def hints_shown(state: Mapping, mission_id: str) -> dict[str, int]:
    """{checkpoint id: hints revealed} (junk entries read as 0)."""
    m = state.get("missions", {}).get(mission_id, {})
    hints = m.get("hints", {}) if isinstance(m, dict) else {}
    out = {}
    for cid, n in (hints.items() if isinstance(hints, dict) else ()):
        try:
            out[cid] = max(0, int(n))
        except (TypeError, ValueError):
            out[cid] = 0
    return out


def progress_of(mission: Mission, records: Mapping[str, Mapping]) -> Progress:
    """The mission's progress from its checkpoint records (checkpoint_records)."""
    required = [c for c in mission.checkpoints if not c.bonus]
    bonus = [c for c in mission.checkpoints if c.bonus]

    def passed(cps: list[Checkpoint]) -> int:
        return sum(records.get(c.id, {}).get("status") == "passed" for c in cps)

    return Progress(passed=passed(required), total=len(required),
                    started=any(c.id in records for c in mission.checkpoints),
                    bonus_passed=passed(bonus), bonus_total=len(bonus))


def mission_progress(mission: Mission, state: Mapping) -> Progress:
    return progress_of(mission, checkpoint_records(state, mission.id))


def suggested_next(missions: Iterable[Mission], state: Mapping) -> Mission | None:
    """The first mission, in order, that is not done (None when all are)."""
    for m in missions:
        if not mission_progress(m, state).done:
            return m
    return None


def first_open_checkpoint(mission: Mission, records: Mapping[str, Mapping]) -> Checkpoint:
    """The first checkpoint not passed (the first one when all are)."""
    for cp in mission.checkpoints:
        if records.get(cp.id, {}).get("status") != "passed":
            return cp
    return mission.checkpoints[0]
