"""The Train screen: start a mission's training job and watch it live.

    TrainScreen(mission, workspace)           pushed by the mission screen with `t`
    TrainApp(mission, workspace).run()        `llm-lab train MISSION`: the screen alone, run started

Panels: the loss curve (train and validation, log-scale toggle), a multi-process run's ranks side
by side (loss, tokens/s, memory, communication time per rank; hidden otherwise), tokens/s and MFU
as numbers and sparklines, memory gauges (GPU through NVML, else CPU RAM; next to PyTorch's allocator figures),
the latest sample, and the run's log (its own output and the run's events).
Keys: s start, x stop (also Ctrl-C), l log scale, i mine/reference, q or escape back.

How data gets here (docs/architecture.md, process model): the run is a child process (job.py) that
writes <workspace>/.llm-lab/runs/<run-id>/metrics.jsonl and output.log; a timer tails both a few
times a second (metrics_stream.py) on the event loop (small local reads); a thread samples the
device at ~2 Hz (device_sampling.py) and posts `messages.DeviceSampled`. Widgets get data
through reactives and methods; they post typed messages up (ImplToggle.Changed, LossPlot.ScaleChanged).

On opening, the mission's last run (if any) is shown until a new one starts. Leaving the screen
(escape, or the app quitting) stops a run still going: SIGINT, so it ends with `end stopped`.
Not handled: a run that keeps going in the background after the screen is closed.
"""
from __future__ import annotations

import time
from pathlib import Path

from rich.markup import escape
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Static

from grader.missions import Mission
from grader.workspace import Workspace

from ..messages import DeviceSampled
from . import formatting as fmt
from .device_sampling import DeviceMonitor
from .job import STOP_GRACE_S, TrainError, TrainProcess, latest_run
from .metrics_stream import LineTailer, MetricsTailer, RunSummary
from .widgets.impl_toggle import ImplToggle
from .widgets.loss_plot import LossPlot
from .widgets.memory_gauges import MemoryGauges
from .widgets.metric_card import MetricCard
from .widgets.rank_table import RankTable
from .widgets.run_status import RunStatus

POLL_S = 0.33          # tail the metrics and the log this often (3 Hz)
SMALL_W, SMALL_H = 100, 30   # below either, the -small layout (80x24: a shorter log, a tighter column)


class TrainScreen(Screen):
    CSS_PATH = "../styles/train.tcss"
    TITLE = "Train"
    BINDINGS = [
        Binding("s", "start", "Start", tooltip="Start a training run"),
        Binding("x", "stop", "Stop", tooltip="Stop the run (it ends with status 'stopped')"),
        Binding("ctrl+c", "interrupt", "Stop", show=False),
        Binding("l", "log_scale", "Log scale", tooltip="Switch the loss axis between linear and log"),
        Binding("i", "impl", "mine/reference", tooltip="Train your code or the reference"),
        Binding("q", "back", "Back", tooltip="Leave the Train screen (a running run is stopped)"),
        Binding("escape", "back", "Back", show=False, tooltip="Leave the Train screen (a running run is stopped)"),
    ]

    def __init__(self, mission: Mission, workspace: Workspace, *, impl: str = "mine",
                 steps: int | None = None, autostart: bool = False, exit_on_back: bool = False,
                 sample_interval: float | None = None, show_last_run: bool = True, sampler=None,
                 options: dict[str, str] | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None):
        """Only (mission, workspace) are needed. impl/steps: the first run's settings; autostart:
        start it on mount (llm-lab train); exit_on_back: escape quits the app (the screen is the
        app's only one); sample_interval: device sampling period (None: device_sampling's default);
        sampler: what samples the device (None: a DeviceSampler; tests pass a fixed one); options:
        the [train.options] choices every run of this screen takes (`llm-lab train lora --model smollm2`)."""
        super().__init__(name=name, id=id, classes=classes)
        self.mission, self.workspace = mission, workspace
        self.impl, self.steps, self.options = impl, steps, dict(options or {})
        self.autostart, self.exit_on_back, self.show_last_run = autostart, exit_on_back, show_last_run
        self.sample_interval, self.sampler = sample_interval, sampler
        self.clock = time.monotonic               # elapsed time is read from this (tests fix it)
        self.job: TrainProcess | None = None
        self.run_dir: Path | None = None
        self.summary = RunSummary()
        self.last_end: dict | None = None
        self._tail: MetricsTailer | None = None
        self._out: LineTailer | None = None
        self._monitor: DeviceMonitor | None = None
        self._started = 0.0
        self._warned_nan = False

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="train-top"):
            yield RunStatus(id="train-status")
            yield ImplToggle(self.impl, id="train-impl")
        with Horizontal(id="train-main"):
            with Vertical(id="train-left"):
                yield LossPlot(id="train-plot")
                yield RankTable(id="train-ranks")
                yield Static("[dim]no sample yet[/]", id="train-sample")
            with Vertical(id="train-right"):
                yield MetricCard("tokens/s", caption="wall time, smoothed", id="train-toks")
                yield MetricCard("MFU", caption="of the device's peak", id="train-mfu")
                yield MemoryGauges(id="train-memory")
        yield RichLog(id="train-log", max_lines=2000, wrap=True, markup=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.mission.id} — {self.mission.title}"
        self.query_one("#train-plot", LossPlot).border_title = "loss"
        self.query_one("#train-sample", Static).border_title = "latest sample"
        self.query_one("#train-log", RichLog).border_title = "log"
        self._monitor = DeviceMonitor(lambda s: self.post_message(DeviceSampled(s)), sampler=self.sampler,
                                      **({"interval": self.sample_interval} if self.sample_interval else {}))
        self._monitor.start()
        self.set_interval(POLL_S, self.poll)
        self.call_after_refresh(self._ready)    # log once the log knows its width

    def _ready(self) -> None:
        if self.mission.train is None:
            self._log(f"[red]{self.mission.id} has no training job[/] (no [train] in its mission.toml)")
            return
        steps = self.steps or self.mission.train.steps
        self._log(f"[bold]{escape(self.mission.id)}[/]: {steps} steps of {self.mission.train.entry}. "
                  "[b]s[/] start, [b]x[/] stop, [b]l[/] log scale, [b]i[/] mine/reference.")
        for name, choices in self.mission.train.options:
            chosen = self.options.get(name, choices[0])
            self._log(f"[dim]--{name} {escape(chosen)} (choices: {escape(', '.join(choices))}; from the shell: "
                      f"llm-lab train {escape(self.mission.id)} --{name} {escape(choices[-1])})[/]")
        if self.autostart:
            self.action_start()
        elif self.show_last_run and self.run_dir is None:
            last = latest_run(self.workspace, self.mission)
            if last is not None:
                self._log(f"[dim]showing the last run, {last.name}[/]")
                self.attach(last)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < SMALL_W or event.size.height < SMALL_H, "-small")

    def on_screen_resume(self) -> None:
        self.set_class(self.app.size.width < SMALL_W or self.app.size.height < SMALL_H, "-small")

    def on_unmount(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
        self._stop_and_wait()

    # -- runs -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    @property
    def planned_steps(self) -> int | None:
        """The steps the run shown was started for."""
        if self.job is not None:
            return self.job.steps
        return self.summary.total_steps or (self.mission.train.steps if self.mission.train else None)

    def attach(self, run_dir: Path, job: TrainProcess | None = None) -> None:
        """Show the run in `run_dir` (follow it while it grows). `job`: the process writing it."""
        self.run_dir, self.job = Path(run_dir), job
        self._tail = MetricsTailer(self.run_dir / "metrics.jsonl")
        self._out = LineTailer(self.run_dir / "output.log")
        self.summary = RunSummary()
        self._warned_nan = False
        self.query_one(LossPlot).clear()
        for card in self.query(MetricCard):
            card.clear()
        self.query_one(MemoryGauges).allocator = {}
        self.query_one(RankTable).ranks = []
        self.query_one("#train-sample", Static).update("[dim]no sample yet[/]")
        status = self.query_one(RunStatus)
        status.step, status.loss, status.message = None, "", ""
        status.state = "starting" if job is not None else "finished"
        self._started = self.clock()
        self.poll()

    def action_start(self) -> None:
        if self.running:
            self.notify("A run is already going; x stops it.", severity="warning")
            return
        if self.mission.train is None:
            self.notify(f"{self.mission.id} has no training job.", severity="error")
            return
        try:
            job = TrainProcess(self.mission, self.workspace, impl=self.impl, steps=self.steps,
                               options=self.options).start()
        except (TrainError, OSError) as e:
            self._log(f"[red]{escape(str(e))}[/]")
            self.notify(str(e), severity="error")
            return
        self.attach(job.run_dir, job)
        self.query_one(LossPlot).x_max = job.steps
        status = self.query_one(RunStatus)
        status.total = job.steps
        self.query_one(ImplToggle).disabled = True
        if self._monitor is not None:
            self._monitor.set_pid(job.pid)
        chosen = "".join(f", {k} {v}" for k, v in job.options.items())
        self._log(f"started run {job.run_id} ({self.impl}, {job.steps} steps{escape(chosen)})")

    def action_stop(self) -> None:
        if not self.running:
            self.notify("No run is going.", severity="information")
            return
        self.job.stop()
        self.query_one(RunStatus).state = "stopping"
        self._log("[yellow]stopping…[/] (SIGINT to the run; killed if still there after "
                  f"{STOP_GRACE_S:g} s)")

    def action_interrupt(self) -> None:
        """Ctrl-C: stop the run if one is going (like `llm-lab train --headless`), else leave."""
        if self.running:
            self.action_stop()
        else:
            self.action_back()

    def action_log_scale(self) -> None:
        self.query_one(LossPlot).toggle_scale()

    def action_impl(self) -> None:
        if self.running:
            self.notify("Stop the run first; the choice applies to the next run.", severity="warning")
            return
        self.query_one(ImplToggle).flip()

    def action_back(self) -> None:
        self._stop_and_wait()
        if self.exit_on_back:
            self.app.exit(self.last_end.get("status") if self.last_end else None)
        else:
            self.app.pop_screen()

    def _stop_and_wait(self) -> None:
        """Stop a running run and give it the grace period to write its end record."""
        job = self.job
        if job is None or not job.running:
            return
        job.stop()
        job.wait(STOP_GRACE_S + 1)
        end = job.finalize()
        if end is not None and self.summary.end is None:
            self.last_end = end

    # -- messages up ----------------------------------------------------------------------------
    def on_impl_toggle_changed(self, message: ImplToggle.Changed) -> None:
        self.impl = message.impl
        self._log(f"next run trains [b]{message.impl}[/]")

    def on_loss_plot_scale_changed(self, message: LossPlot.ScaleChanged) -> None:
        self.query_one(LossPlot).border_title = "loss (log scale)" if message.log_scale else "loss"

    def on_device_sampled(self, message: DeviceSampled) -> None:
        self.query_one(MemoryGauges).sample = message.sample

    # -- the tail -------------------------------------------------------------------------------
    def poll(self) -> None:
        """Read what the run appended; finish the run if its process is gone."""
        if self._tail is None:
            return
        log = self.query_one(RichLog)
        for line in self._out.poll_lines():
            log.write(f"[dim]{escape(line)}[/]")
        records = self._tail.poll()
        if self._tail.reset:
            self.summary = RunSummary()
            self.query_one(LossPlot).clear()
        self._ingest(records)
        if self.job is not None and self.summary.end is None:
            self.query_one(RunStatus).elapsed = float(int(self.clock() - self._started))  # 1 repaint/s
            if self.job.poll() is not None:
                self.job.finalize()              # writes `crashed` if the child left no end record
                self._ingest(self._tail.poll())

    def _ingest(self, records: list[dict]) -> None:
        """Fold a batch of records in: data per record, widgets once per batch (a backlog of
        thousands of records, e.g. a finished run being opened, costs one repaint)."""
        if not records:
            return
        s = self.summary
        plot, status = self.query_one(LossPlot), self.query_one(RunStatus)
        toks, mfu = self.query_one("#train-toks", MetricCard), self.query_one("#train-mfu", MetricCard)
        stepped = False
        for r in records:
            s.apply(r)
            kind = r["type"]
            if kind == "step":
                stepped = True
                if s.step is not None and s.loss is not None:
                    plot.add_train(s.step, s.loss, redraw=False)
                elif s.loss is None and not self._warned_nan:
                    self._warned_nan = True
                    self._log(f"[red]loss is {escape(str(r.get('loss')))} at step {s.step}[/]: NaN/inf "
                              "(a learning rate too high, a log of 0, an exploding gradient?)")
                if "tok_s" in r:
                    toks.push(s.tok_s, update=False)
                if "mfu" in r:
                    mfu.push(s.mfu, update=False)
            else:
                self._event(r)
        if stepped:
            plot.request_redraw()
            toks.value, mfu.value = fmt.rate(s.tok_s), fmt.percent(s.mfu)
            toks.update_sparkline()
            mfu.update_sparkline()
            if s.allocator:
                self.query_one(MemoryGauges).allocator = dict(s.allocator)
            if s.ranks:
                self.query_one(RankTable).ranks = list(s.ranks)
            status.step, status.loss = s.step, fmt.loss(s.loss_raw)
            if status.state in ("starting", "idle"):
                status.state = "running"

    def _event(self, r: dict) -> None:
        """start / eval / sample / end: rare, shown as they come."""
        s, kind = self.summary, r["type"]
        plot, status = self.query_one(LossPlot), self.query_one(RunStatus)
        if kind == "start":
            if s.total_steps:
                plot.x_max = status.total = s.total_steps
            elif self.job is not None:
                s.start["steps"] = self.job.steps
            plot.clear()
            if status.state in ("starting", "idle"):
                status.state = "running"
            bits = fmt.start_bits(r)
            peak = fmt.num(r.get("peak_flops"))
            if peak:
                bits.append(f"peak {fmt.flops(peak)}")
            if fmt.num(r.get("flops_per_token")):
                how = f" ({r['flops_counted']})" if isinstance(r.get("flops_counted"), str) else ""
                bits.append(f"{fmt.rate(r.get('flops_per_token'))} FLOP/token{how}")
            self._log(f"start: {escape(', '.join(bits))}")
            self.query_one("#train-mfu", MetricCard).caption = (
                f"of peak {fmt.flops(peak)}" if peak else "no peak FLOP/s known")
        elif kind == "eval":
            if s.val_loss is not None and s.val_step is not None:
                plot.add_val(s.val_step, s.val_loss)
            extra = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in r.items() if k not in ("v", "type", "step", "val_loss"))
            self._log(f"[b]eval[/] step {r.get('step')}: val loss {fmt.loss(r.get('val_loss'))}"
                      + (f"  [dim]{escape(extra)}[/]" if extra else ""))
        elif kind == "sample":
            sample = self.query_one("#train-sample", Static)
            sample.update(escape(str(r.get("text", ""))[-2000:]) or "[dim](empty)[/]")
            sample.border_title = f"latest sample (step {r.get('step')})"
        elif kind == "end":
            st, msg = str(r.get("status", "")), s.end_note(self.planned_steps)
            short = "returned early by itself (see the log)" if s.ended_early(self.planned_steps) else msg
            status.state, status.message = st or "finished", short[:200]
            self.last_end = dict(r)
            self.query_one(ImplToggle).disabled = False
            style = {"done": "green", "stopped": "yellow"}.get(st, "red")
            self._log(f"[{style}]run {st}[/]" + (f": {escape(msg)}" if msg else ""))
            if self.job is not None:
                self.notify(f"run {st}" + (f": {msg[:160]}" if msg else ""),
                            severity="error" if st == "crashed" else "information")

    def _log(self, text: str) -> None:
        log = self.query_one(RichLog)
        width = log.scrollable_content_region.width
        log.write(text, width=width if width > 10 else None)


class TrainApp(App[str | None]):
    """`llm-lab train MISSION` without --headless: the Train screen alone, its run started at once.
    The screen is pushed on mount (a screen's CSS_PATH is not loaded for an app's default screen);
    q or escape quits with the last run's end status."""

    TITLE = "llm-lab train"

    def __init__(self, mission: Mission, workspace: Workspace, *, impl: str = "mine",
                 steps: int | None = None, autostart: bool = True, **screen_kw) -> None:
        super().__init__()
        self.train_screen = TrainScreen(mission, workspace, impl=impl, steps=steps, autostart=autostart,
                                        exit_on_back=True, **screen_kw)

    def on_mount(self) -> None:
        self.push_screen(self.train_screen)
