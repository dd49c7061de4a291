"""A run folded from its records: what the headless output and the Train screen show."""
from __future__ import annotations

from dataclasses import dataclass, field

from .fmt import num


@dataclass
class RunSummary:
    start: dict = field(default_factory=dict)
    step: int | None = None
    loss: float | None = None
    loss_raw: object = None               # as written ("nan" stays visible)
    tok_s: float | None = None
    mfu: float | None = None
    val_loss: float | None = None
    val_step: int | None = None
    sample: str | None = None
    allocator: dict = field(default_factory=dict)   # mem_alloc / mem_peak / mem_reserved
    end: dict | None = None
    nonfinite_at: int | None = None       # first step whose loss was NaN/inf
    records: int = 0

    @property
    def status(self) -> str:
        if self.end is not None:
            return str(self.end.get("status", "ended"))
        return "running" if self.start or self.step is not None else "waiting"

    @property
    def total_steps(self) -> int | None:
        steps = self.start.get("steps")
        return int(steps) if isinstance(steps, (int, float)) else None

    def done_steps(self, total: int | None = None) -> int:
        """Steps done, for "step n/N": step + 1 (loops count from 0), at most N (some count from 1)."""
        if self.step is None:
            return 0
        total = total or self.total_steps
        return min(self.step + 1, total) if total else self.step + 1

    def apply(self, r: dict) -> None:
        """Fold one record in. Unknown types and keys are ignored."""
        self.records += 1
        kind = r.get("type")
        if kind == "start":
            self.__init__()            # a start record begins a fresh run
            self.records = 1
            self.start = dict(r)
        elif kind == "step":
            self.step = _int(r.get("step"), self.step)
            self.loss_raw = r.get("loss")
            self.loss = num(r.get("loss"))
            if self.loss is None and self.nonfinite_at is None:
                self.nonfinite_at = self.step
            self.tok_s = num(r.get("tok_s")) if "tok_s" in r else self.tok_s
            self.mfu = num(r.get("mfu")) if "mfu" in r else self.mfu
            for key in ("mem_alloc", "mem_peak", "mem_reserved"):
                if num(r.get(key)) is not None:
                    self.allocator[key] = num(r[key])
        elif kind == "eval":
            self.val_loss, self.val_step = num(r.get("val_loss")), _int(r.get("step"), self.val_step)
        elif kind == "sample":
            self.sample = str(r.get("text", ""))
        elif kind == "end":
            self.end = dict(r)


def _int(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
