"""The metrics stream: JSON Lines that a training run writes and the lab reads.

One object per line, each with "v": 1 and a "type":

    start   run, mission, impl, n_params, n_layer, n_head, d_model, block_size, device, peak_flops
    step    step, loss, lr, tokens, dt_ms, tok_s, mfu, mem_alloc, mem_peak, mem_reserved
    eval    step, val_loss
    sample  step, text
    end     status ("done" | "stopped" | "crashed"), message

Writers flush every line they write and throttle `step` records to a few per second, so logging never
slows training; the last step before eval/sample/end is always written. Readers skip malformed lines
and ignore keys they do not know (see `read_records`).

A learner's own training script can use it too:

    from engine.telemetry import open_run
    metrics = open_run(mission="gpt", impl="mine")      # path from $LLM_LAB_METRICS, else a no-op
    metrics.start(n_params=..., n_layer=4, ...)
    for step in ...:
        metrics.step(step, loss=loss.item(), lr=lr, tokens=B * T)
    metrics.end("done")

Not handled: several writers on one file (one run, one writer), rotation of very long runs.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import IO, Any, Iterator

VERSION = 1
STEP_INTERVAL_S = 0.2  # at most ~5 step records a second
METRICS_ENV = "LLM_LAB_METRICS"


def _clean(value: Any) -> Any:
    """JSON has no NaN/Inf: write them as strings so a reader can still show them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsWriter:
    """Appends records to a metrics.jsonl file. Use as a context manager or call end()."""

    def __init__(self, path: str | os.PathLike | None, *, mission: str = "", impl: str = "",
                 run: str | None = None, step_interval_s: float = STEP_INTERVAL_S):
        self.path = Path(path) if path else None
        self.mission, self.impl = mission, impl
        self.run = run or (self.path.parent.name if self.path else "")
        self.step_interval_s = step_interval_s
        self._file: IO[str] | None = None
        self._last_step_t = -math.inf
        self._pending: dict | None = None
        self._ended = False
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)

    # -- records -------------------------------------------------------------------------------
    def start(self, **info: Any) -> None:
        self._write({"type": "start", "run": self.run, "mission": self.mission, "impl": self.impl,
                     "time": time.time(), **info})

    def step(self, step: int, loss: float, **fields: Any) -> None:
        """A training step. Throttled: only written if STEP_INTERVAL_S passed since the last one."""
        record = {"type": "step", "step": int(step), "loss": float(loss), **fields}
        now = time.monotonic()
        if now - self._last_step_t >= self.step_interval_s:
            self._last_step_t = now
            self._pending = None
            self._write(record)
        else:
            self._pending = record

    def eval(self, step: int, val_loss: float, **fields: Any) -> None:
        self._flush_pending()
        self._write({"type": "eval", "step": int(step), "val_loss": float(val_loss), **fields})

    def sample(self, step: int, text: str) -> None:
        self._flush_pending()
        self._write({"type": "sample", "step": int(step), "text": str(text)})

    def end(self, status: str = "done", message: str = "") -> None:
        if self._ended:
            return
        self._flush_pending()
        self._write({"type": "end", "status": status, "message": message, "time": time.time()})
        self._ended = True
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- plumbing ------------------------------------------------------------------------------
    def _flush_pending(self) -> None:
        if self._pending is not None:
            record, self._pending = self._pending, None
            self._write(record)

    def _write(self, record: dict) -> None:
        if self._file is None:
            return
        line = json.dumps({"v": VERSION, **{k: _clean(v) for k, v in record.items()}},
                          ensure_ascii=False)
        self._file.write(line + "\n")  # line-buffered: one flush per record

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is KeyboardInterrupt:
            self.end("stopped", "interrupted")
        elif exc_type is not None:
            self.end("crashed", f"{exc_type.__name__}: {exc}")
        else:
            self.end("done")


def open_run(*, mission: str = "", impl: str = "mine", path: str | None = None) -> MetricsWriter:
    """The writer for this run: the path given, else $LLM_LAB_METRICS, else a writer that drops all."""
    return MetricsWriter(path or os.environ.get(METRICS_ENV) or None, mission=mission, impl=impl)


def parse_line(line: str) -> dict | None:
    """One record, or None for a malformed, partial or foreign line."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("v") != VERSION or not isinstance(record.get("type"), str):
        return None
    return record


def read_records(path: str | os.PathLike) -> Iterator[dict]:
    """Every well-formed record of a metrics file, in order."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.endswith("\n"):
                record = parse_line(line)
                if record is not None:
                    yield record
