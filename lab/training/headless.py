"""`llm-lab train MISSION --headless`: a run's progress as plain output, no Textual.

On a terminal: a rich progress bar with loss, tokens/s and MFU, and the run's events printed above
it. On a plain stream (CI logs, pipes): one line per second instead, plus eval/sample/end lines and
the run's own output. Ctrl-C (or SIGTERM) stops the run cleanly: the child gets SIGINT and writes
`end stopped`; a second Ctrl-C kills it. Should this process fail, the run is ended with that reason
(status stopped), never left to read as killed by the system.
"""
from __future__ import annotations

import signal
import time

from rich.console import Console

from . import formatting as fmt
from .job import TrainError, TrainProcess
from .metrics_stream import LineTailer, MetricsTailer, RunSummary

POLL_S = 0.2
PLAIN_EVERY_S = 1.0
EXIT = {"done": 0, "stopped": 130, "crashed": 1}


def console_for_output() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:   # CI logs: no wrapping of long paths at 80 columns
        console = Console(highlight=False, soft_wrap=True)
    return console


class _Lines:
    """Line output for a stream that is not a terminal (CI): a progress line every second."""

    def __init__(self, console: Console, total: int, label: str = ""):
        self.console, self.total, self.last, self.shown = console, total, 0.0, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def print(self, text: str) -> None:
        self.console.print(text)

    def update(self, s: RunSummary, force: bool = False) -> None:
        now = time.monotonic()
        if s.step is None or s.step == self.shown or (not force and now - self.last < PLAIN_EVERY_S):
            return
        self.last, self.shown = now, s.step
        ranks = f"  [{fmt.ranks_line(s.ranks)}]" if s.ranks else ""
        self.console.print(f"step {s.done_steps(self.total)}/{self.total}  loss {fmt.loss(s.loss_raw)}  "
                           f"tok/s {fmt.rate(s.tok_s)}  mfu {fmt.percent(s.mfu)}" + _escape(ranks))


class _Bar(_Lines):
    """A rich progress bar for a terminal; events print above it."""

    def __init__(self, console: Console, total: int, label: str = ""):
        super().__init__(console, total, label)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss [cyan]{task.fields[loss]}[/]"),
                                 TextColumn("tok/s [green]{task.fields[tok_s]}[/]"),
                                 TextColumn("MFU [magenta]{task.fields[mfu]}[/]"), TimeElapsedColumn(),
                                 TextColumn("[dim]{task.fields[ranks]}[/]"),
                                 console=console, refresh_per_second=8)
        self.task = self.progress.add_task(label, total=total, loss="—", tok_s="—", mfu="—", ranks="")

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def print(self, text: str) -> None:
        self.progress.console.print(text)

    def update(self, s: RunSummary, force: bool = False) -> None:
        if s.step is None:
            return
        self.progress.update(self.task, completed=s.done_steps(self.total), loss=fmt.loss(s.loss_raw),
                             tok_s=fmt.rate(s.tok_s), mfu=fmt.percent(s.mfu),
                             ranks=_escape(fmt.ranks_line(s.ranks)))


def _describe(r: dict, s: RunSummary) -> str | None:
    kind = r.get("type")
    if kind == "start":
        bits = fmt.start_bits(r)
        peak = fmt.num(r.get("peak_flops"))
        if peak:
            bits.append(f"peak {fmt.flops(peak)}")
        return f"[dim]start[/] run {r.get('run', '')}: " + ", ".join(bits)
    if kind == "eval":
        return f"[bold]eval[/] step {r.get('step')}: val loss {fmt.loss(r.get('val_loss'))}"
    if kind == "sample":
        text = str(r.get("text", "")).strip().replace("\n", " ⏎ ")
        return f"[bold]sample[/] step {r.get('step')}: [italic]{_escape(text[:200])}[/]"
    return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)


def run_headless(mission, ws, *, impl: str = "mine", steps: int | None = None,
                 console: Console | None = None, options: dict[str, str] | None = None) -> int:
    console = console or console_for_output()
    try:
        job = TrainProcess(mission, ws, impl=impl, steps=steps, options=options).start()
    except TrainError as e:
        console.print(f"[red]{e}[/]")
        return 2
    chosen = "".join(f", {k} {v}" for k, v in job.options.items())
    console.print(f"[bold]{mission.id}[/] ({impl}{chosen}) — training {job.steps} steps; run {job.run_id}")
    tail, out = MetricsTailer(job.metrics_path), LineTailer(job.log_path)
    summary = RunSummary()
    view = (_Bar if console.is_terminal else _Lines)(console, job.steps, f"{mission.id} ({impl})")
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C must stop the run even where SIGINT came in ignored (a parent shell's background job:
    # Python then keeps SIG_IGN and Ctrl-C would do nothing)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def drain() -> None:
        for line in out.poll_lines():
            view.print(f"[dim]{_escape(line)}[/]")
        for record in tail.poll():
            summary.apply(record)
            if record["type"] == "start" and summary.total_steps is None:
                summary.start["steps"] = job.steps
            text = _describe(record, summary)
            if text:
                view.print(text)
        view.update(summary)

    interrupts = 0
    failure = "llm-lab train --headless stopped following the run"
    try:
        with view:
            while summary.end is None:
                try:
                    drain()
                    if summary.end is None and job.poll() is not None:
                        end = job.finalize()      # writes `crashed` if the child left no end record
                        drain()
                        if summary.end is None:   # the metrics file could not be read back
                            summary.apply(end or {"type": "end", "status": "crashed", "message": ""})
                    elif summary.end is None:
                        time.sleep(POLL_S)
                except KeyboardInterrupt:
                    interrupts += 1
                    if interrupts == 1:
                        view.print("[yellow]stopping the run… (Ctrl-C again to kill it)[/]")
                        job.stop()
                    else:
                        view.print("[red]killing the run[/]")
                        job.kill("killed by a second Ctrl-C")
            view.update(summary, force=True)
    except BaseException as e:          # this process failed: end the run saying so, then report
        failure = f"llm-lab train --headless failed ({type(e).__name__}: {e})"
        raise
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        if job.running and summary.end is not None:
            job.wait(5)                 # it wrote its end record and is exiting
        if job.running:
            job.kill(failure)
        job.finalize()
    for line in out.poll_lines():
        console.print(f"[dim]{_escape(line)}[/]")
    end = summary.end or {}
    status = str(end.get("status", "crashed"))
    style = {"done": "green", "stopped": "yellow"}.get(status, "red")
    message = summary.end_note(job.steps)
    last = (f"step {summary.done_steps(job.steps)}, loss {fmt.loss(summary.loss_raw)}, tok/s {fmt.rate(summary.tok_s)}"
            if summary.step is not None else "no steps")
    console.print(f"[{style}]status {status}[/]{': ' + _escape(message) if message else ''} ({last})")
    if summary.nonfinite_at is not None:
        console.print(f"[yellow]the loss was not finite from step {summary.nonfinite_at} on "
                      f"(NaN/inf: a learning rate too high, or a log of 0?)[/]")
    console.print(f"[dim]metrics: {job.metrics_path}[/]")
    return EXIT.get(status, 1)
