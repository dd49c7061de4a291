"""A run's metrics stream, read back: following the files a run appends to, and folding its
records into what the screens show.

    tail = MetricsTailer(run_dir / "metrics.jsonl")      # the records (engine.shared.telemetry)
    out = LineTailer(run_dir / "output.log")             # the run's own printed output
    summary = RunSummary()
    every 250 ms:  for record in tail.poll(): summary.apply(record)

`poll()` reads what was appended since the last call. A last line without its newline is kept back
until it is complete (a writer caught mid-line). A file that shrank (truncated) or was replaced
(a new inode: rotated, or a run restarted under the same name) is read again from the start, and
`reset` is set so the reader can clear what it drew. A file that does not exist yet is not an error.
Not handled: a file replaced by one at least as long between two polls *and* on the same inode.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .formatting import num

MAX_READ = 4 << 20      # bytes per poll at most: a huge backlog is drained over several polls
MAX_LINE = 1 << 20      # a "line" longer than this without a newline is dropped (garbage)


class LineTailer:
    """New complete lines of a text file, a few times a second."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0
        self.inode: tuple[int, int] | None = None
        self.partial = b""
        self.reset = False       # set by poll() when the file was truncated or replaced

    def poll_lines(self) -> list[str]:
        self.reset = False
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        ident = (st.st_dev, st.st_ino)
        if self.inode is not None and (ident != self.inode or st.st_size < self.offset):
            self.offset, self.partial, self.reset = 0, b"", True
        self.inode = ident
        if st.st_size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(MAX_READ)
        except OSError:
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        if len(self.partial) > MAX_LINE:
            self.partial = b""
        return [line.decode("utf-8", "replace") for line in lines]


class MetricsTailer(LineTailer):
    """New records of a metrics.jsonl (engine.shared.telemetry): malformed and partial lines skipped."""

    def poll(self) -> list[dict]:
        from engine.shared.telemetry import parse_line   # lab/ imports engine/ lazily (import boundaries)
        out = []
        for line in self.poll_lines():
            record = parse_line(line)
            if record is not None:
                out.append(record)
        return out


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
    ranks: list = field(default_factory=list)       # a multi-process run's per-rank figures, latest step
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

    def ended_early(self, planned: int | None = None) -> bool:
        """A `done` run whose last step came before the planned number of steps."""
        planned = planned or self.total_steps
        return bool(self.end and self.end.get("status") == "done" and planned
                    and self.step is not None and self.done_steps(planned) < planned)

    def end_note(self, planned: int | None = None) -> str:
        """Why the run ended, in words: the run's own end message, and, for a run that finished
        before its planned steps, that its training function returned early by itself."""
        message = str((self.end or {}).get("message") or "").strip()
        if self.ended_early(planned):
            planned = planned or self.total_steps
            early = (f"finished early, after {self.done_steps(planned)} of {planned} steps: the training "
                     f"function returned by itself (a stopping rule in its code, not an error)")
            return f"{message} ({early})" if message else early
        return message

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
            if isinstance(r.get("ranks"), list):
                self.ranks = [x for x in r["ranks"] if isinstance(x, dict)]
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
