"""The metrics stream: JSON Lines that a training run writes and the lab reads.

One object per line, each with "v": 1 and a "type":

    start   run, mission, impl, n_params, n_layer, n_head, d_model, block_size, device, peak_flops
    step    step, loss, lr, tokens, dt_ms, tok_s, mfu, mem_alloc, mem_peak, mem_reserved, time
    eval    step, val_loss
    sample  step, text
    end     status ("done" | "stopped" | "crashed"), message

Writers flush every line they write and throttle `step` records to a few per second, so logging never
slows training; the last step before eval/sample/end is always written. Readers skip malformed lines
and ignore keys they do not know (see `read_records`).

A learner's own training script can use it too:

    from engine.shared.telemetry import open_run
    metrics = open_run(mission="gpt", impl="mine")      # path from $LLM_LAB_METRICS, else a no-op
    metrics.start(n_params=..., n_layer=4, ...)
    for step in ...:
        metrics.step(step, loss=loss.item(), lr=lr, tokens=B * T)
    metrics.end("done")

The writer fills in what a training loop need not compute itself (see engine.shared.perf):

    tok_s         when a step gives `tokens` but no `tok_s`: wall time between step() calls, the GPU
                  synchronised before the clock is read, warm-up steps skipped, EMA-smoothed
    mfu           when the start record allows flops_per_token (n_params, and for attention n_layer,
                  n_head, d_model, block_size) and a peak_flops is known
    mem_alloc, mem_peak, mem_reserved   PyTorch's CUDA allocator, when this process uses CUDA
    peak_flops    in `start`, when the writer was given a resolver (the lab's train job does that)

Values a caller passes always win. Not handled: several writers on one file (one run, one writer),
rotation of very long runs.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from . import perf

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
                 run: str | None = None, step_interval_s: float = STEP_INTERVAL_S,
                 peak_flops: float | Callable[[str], float] | None = None, warmup_steps: int = 2):
        """peak_flops: a number (FLOP/s) or a function of the start record's device that finds it
        (e.g. engine.shared.perf.peak_flops); None: only a peak_flops the start record carries is used."""
        self.path = Path(path) if path else None
        self.mission, self.impl = mission, impl
        self.run = run or (self.path.parent.name if self.path else "")
        self.step_interval_s = step_interval_s
        self._file: IO[str] | None = None
        self._last_step_t = -math.inf
        self._pending: dict | None = None
        self._ended = False
        self._peak_resolver = peak_flops
        self.peak_flops: float | None = peak_flops if isinstance(peak_flops, (int, float)) else None
        self.flops_per_token: float | None = None
        self.meter = perf.Throughput(warmup=warmup_steps)
        self._pending_meter = False
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)

    # -- records -------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended

    def start(self, **info: Any) -> None:
        if info.get("peak_flops") is None and self.peak_flops is None and callable(self._peak_resolver) \
                and info.get("device"):
            try:
                self.peak_flops = float(self._peak_resolver(str(info["device"])))
            except Exception:  # a failed probe must never stop training
                self.peak_flops = None
        if isinstance(info.get("peak_flops"), (int, float)):
            self.peak_flops = float(info["peak_flops"])
        elif self.peak_flops:
            info["peak_flops"] = self.peak_flops
        self.flops_per_token = perf.flops_per_token_from(info)
        if self.flops_per_token is not None and "flops_per_token" not in info:
            info["flops_per_token"] = self.flops_per_token
            info.setdefault("flops_counted", "6N + 12·L·H·Q·T")     # how: shown beside the figure
        self._write({"type": "start", "run": self.run, "mission": self.mission, "impl": self.impl,
                     "time": time.time(), **info})

    def step(self, step: int, loss: float, **fields: Any) -> None:
        """A training step. Throttled: only written if STEP_INTERVAL_S passed since the last one."""
        record = {"type": "step", "step": int(step), "loss": float(loss), "time": time.time(), **fields}
        measure = "tok_s" not in fields and isinstance(fields.get("tokens"), (int, float))
        if measure:
            self.meter.add(fields["tokens"])
        now = time.monotonic()
        if now - self._last_step_t >= self.step_interval_s:
            self._last_step_t = now
            self._pending = None
            self._write(self._complete(record, self.meter.rate() if measure else None))
        else:
            self._pending, self._pending_meter = record, measure

    def eval(self, step: int, val_loss: float, **fields: Any) -> None:
        self._flush_pending()
        self.meter.pause()  # evaluation time is not training time
        self._write({"type": "eval", "step": int(step), "val_loss": float(val_loss), **fields})

    def sample(self, step: int, text: str) -> None:
        self._flush_pending()
        self.meter.pause()
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
            tok_s = self.meter.rate(sync=False, at_last_step=True) if self._pending_meter else None
            self._write(self._complete(record, tok_s))

    def _complete(self, record: dict, tok_s: float | None) -> dict:
        """Add tok_s (measured), mfu and allocator memory where the caller did not give them."""
        if tok_s is not None:
            record["tok_s"] = tok_s
        if "mfu" not in record and self.flops_per_token and self.peak_flops \
                and isinstance(record.get("tok_s"), (int, float)):
            record["mfu"] = perf.mfu(record["tok_s"], self.flops_per_token, self.peak_flops)
        for key, value in perf.allocator_memory().items():
            record.setdefault(key, value)
        return record

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
