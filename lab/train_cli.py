"""`llm-lab train MISSION [--impl mine|reference] [--headless] [--steps N] [--workspace W]`.

Without --headless: the Train screen (lab.screens.train) in a small app of its own, the run started
at once. With --headless: a rich progress bar with loss, tokens/s and MFU on a terminal; on a plain
stream (CI logs, pipes) one line per second instead, plus eval/sample/end lines and the run's own
output. Ctrl-C (or SIGTERM) stops the run cleanly: the child gets SIGINT and writes `end stopped`; a
second Ctrl-C kills it. Exit code: 0 done, 130 stopped, 1 crashed, 2 the run could not start.
"""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from rich.console import Console

from .training import fmt
from .training.job import TrainError, TrainProcess
from .training.summary import RunSummary
from .training.tailer import LineTailer, MetricsTailer

POLL_S = 0.2
PLAIN_EVERY_S = 1.0
EXIT = {"done": 0, "stopped": 130, "crashed": 1}


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:   # CI logs: no wrapping of long paths at 80 columns
        console = Console(highlight=False, soft_wrap=True)
    return console


def run_train(args) -> int:
    from grader import missions as M
    console = _console()
    try:
        mission = M.get(args.mission)
    except (M.MissionError, KeyError) as e:
        console.print(f"[red]{e}[/]")
        return 2
    if mission.train is None:
        with_train = ", ".join(m.id for m in M.load_all()[0] if m.train is not None)
        console.print(f"[red]mission {mission.id!r} has no training job[/] (no [train] table in its "
                      f"mission.toml). Missions that train: {with_train or 'none'}.")
        return 2
    impl = getattr(args, "impl", None) or "mine"
    try:
        ws = _workspace(args, impl)
    except FileNotFoundError as e:
        console.print(f"[red]{e}[/]")
        return 2
    steps = getattr(args, "steps", None)
    if steps is not None and steps <= 0:
        console.print("[red]--steps must be a positive number[/]")
        return 2
    if getattr(args, "headless", False):
        return run_headless(mission, ws, impl=impl, steps=steps, console=console)
    from .train_app import TrainApp
    app = TrainApp(mission, ws, impl=impl, steps=steps)
    result = app.run()
    end = app.train_screen.last_end
    status = str(end.get("status")) if end else result
    if end:
        message = str(end.get("message") or "")
        console.print(f"run {app.train_screen.run_dir.name if app.train_screen.run_dir else ''}: "
                      f"{status}{': ' + message if message else ''}")
    return EXIT.get(status or "", 0)


def _workspace(args, impl: str):
    from grader import workspace
    given = Path(args.workspace) if getattr(args, "workspace", None) else None
    if impl == "reference":
        # The reference needs no learner files, only a place for its runs: never create one silently.
        try:
            ws, _ = workspace.resolve(given, create=given is not None)
            return ws
        except FileNotFoundError:
            root = Path.home() / ".cache" / "llm-lab" / "reference-workspace"
            (root / workspace.MARKER).mkdir(parents=True, exist_ok=True)
            return workspace.Workspace(root)
    ws, note = workspace.resolve(given, create=True)
    if note:
        print(f"llm-lab: {note}", file=sys.stderr)
    return ws


# -- headless -------------------------------------------------------------------------------------
class _Plain:
    """Line output for a stream that is not a terminal (CI)."""

    def __init__(self, console: Console, total: int):
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
        self.console.print(f"step {s.done_steps(self.total)}/{self.total}  loss {fmt.loss(s.loss_raw)}  "
                           f"tok/s {fmt.rate(s.tok_s)}  mfu {fmt.percent(s.mfu)}")


class _Bar:
    """A rich progress bar for a terminal."""

    def __init__(self, console: Console, total: int, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss [cyan]{task.fields[loss]}[/]"),
                                 TextColumn("tok/s [green]{task.fields[tok_s]}[/]"),
                                 TextColumn("MFU [magenta]{task.fields[mfu]}[/]"), TimeElapsedColumn(),
                                 console=console, refresh_per_second=8)
        self.task = self.progress.add_task(label, total=total, loss="—", tok_s="—", mfu="—")

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
                             tok_s=fmt.rate(s.tok_s), mfu=fmt.percent(s.mfu))


def _describe(r: dict, s: RunSummary) -> str | None:
    kind = r.get("type")
    if kind == "start":
        bits = [f"{k} {r[k]}" for k in ("device", "n_params", "n_layer", "n_head", "d_model", "block_size") if k in r]
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
                 console: Console | None = None) -> int:
    console = console or _console()
    try:
        job = TrainProcess(mission, ws, impl=impl, steps=steps).start()
    except TrainError as e:
        console.print(f"[red]{e}[/]")
        return 2
    console.print(f"[bold]{mission.id}[/] ({impl}) — training {job.steps} steps; run {job.run_id}")
    tail, out = MetricsTailer(job.metrics_path), LineTailer(job.log_path)
    summary = RunSummary()
    view = (_Bar(console, job.steps, f"{mission.id} ({impl})") if console.is_terminal
            else _Plain(console, job.steps))
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)

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
                        job.kill()
            view.update(summary, force=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if job.running and summary.end is not None:
            job.wait(5)                 # it wrote its end record and is exiting
        if job.running:
            job.kill()
        job.finalize()
    for line in out.poll_lines():
        console.print(f"[dim]{_escape(line)}[/]")
    end = summary.end or {}
    status = str(end.get("status", "crashed"))
    style = {"done": "green", "stopped": "yellow"}.get(status, "red")
    message = str(end.get("message") or "")
    last = (f"step {summary.done_steps(job.steps)}, loss {fmt.loss(summary.loss_raw)}, tok/s {fmt.rate(summary.tok_s)}"
            if summary.step is not None else "no steps")
    console.print(f"[{style}]status {status}[/]{': ' + _escape(message) if message else ''} ({last})")
    if summary.nonfinite_at is not None:
        console.print(f"[yellow]the loss was not finite from step {summary.nonfinite_at} on "
                      f"(NaN/inf: a learning rate too high, or a log of 0?)[/]")
    console.print(f"[dim]metrics: {job.metrics_path}[/]")
    return EXIT.get(status, 1)
