"""What a grade produces: a status per check, a result per checkpoint, a run per mission.

A checkpoint's status is the worst of its checks' (`aggregate`); a run is `ok` when every required
checkpoint passed (bonus checkpoints never fail a run). Reports (grader.report) and the lab read
these types; nothing here runs code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUSES = ("passed", "failed", "not_implemented", "error", "timeout", "crashed", "oom", "skipped")
WORST_FIRST = ("oom", "failed", "error", "not_implemented")


@dataclass
class CheckpointResult:
    mission: str
    checkpoint: str
    title: str
    status: str
    message: str = ""
    duration: float = 0.0
    tests: list[dict] = field(default_factory=list)
    bonus: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class GradeRun:
    mission: str
    mode: str                 # "learner" | "reference"
    seed: int
    results: list[CheckpointResult]
    duration: float
    log: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every required checkpoint passed (bonus checkpoints are optional for the learner)."""
        return all(r.passed or r.bonus for r in self.results)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "results"},
                "results": [asdict(r) for r in self.results]}


def aggregate(tests: list[dict]) -> tuple[str, str]:
    """A checkpoint's status and message from its checks' results: the worst status wins."""
    if not tests:
        return "error", "no checks ran for this checkpoint"
    for status in WORST_FIRST:
        bad = [t for t in tests if t["status"] == status]
        if bad:
            more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
            return status, f"{short_name(bad[0]['test'])}: {bad[0]['message']}{more}"
    if all(t["status"] == "skipped" for t in tests):
        return "skipped", tests[0]["message"]
    skipped = [t for t in tests if t["status"] == "skipped"]
    note = f"{len(skipped)} check(s) skipped: {skipped[0]['message']}" if skipped else ""
    return "passed", note


def short_name(nodeid: str) -> str:
    """'test_ops.py::test_double' -> 'test_double'."""
    return nodeid.split("::", 1)[-1] if "::" in nodeid else Path(nodeid).name
