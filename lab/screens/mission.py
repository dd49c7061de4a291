"""A mission: its brief, its checkpoints with live status, hints, the grader's log, and the actions
(grade, grade one checkpoint, watch, edit, hint, reference, reset, train).

Grading runs in a thread worker (lab.grading.GradeJob) that posts typed messages back here; the
app stays responsive and whatever the learner's code does shows as a checkpoint status. The app
keeps one MissionScreen per mission installed, so a grade or watch mode keeps going while the
learner is back on the map.
"""
from __future__ import annotations

import subprocess
import threading

from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, OptionList

from grader.missions import Checkpoint, Mission
from grader.workspace import Workspace

from ..actions import (Progress, changed_files, checkpoint_records, checkpoints_for_files, editor_available,
                       editor_command, first_open_checkpoint, hints_revealed, label_code_fences, mission_progress,
                       reference_path, reset_files, shared_files, snapshot)
from ..grading import GradeJob, GradeSlot
from ..messages import (CheckpointGraded, CheckpointStarted, GradeFinished, GradeOutput, GradeStarted,
                        ProgressChanged)
from ..widgets.checkpoint_detail import CheckpointDetail
from ..widgets.checkpoint_list import CheckpointList, Row
from ..widgets.grade_log import GradeLog
from ..widgets.mission_status import MissionStatus

def _has_gpu() -> bool:
    import shutil
    return shutil.which("nvidia-smi") is not None


NARROW = 100      # columns below which the brief stacks over the checkpoints
SHORT = 30        # rows below which the log pane shrinks
WATCH_DEBOUNCE_MS = 200


class MissionScreen(Screen[None]):
    CSS_PATH = "../styles/mission.tcss"
    AUTO_FOCUS = "#checkpoints"
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?", tooltip="Every key of the lab"),
        Binding("g", "grade", "Grade", tooltip="Grade the whole mission"),
        Binding("c", "grade_checkpoint", "Check", tooltip="Grade the selected checkpoint"),
        Binding("w", "toggle_watch", "Watch", tooltip="Watch mode on/off: every save regrades"),
        Binding("e", "edit", "Edit", tooltip="Open the selected checkpoint's file in your $EDITOR"),
        Binding("h", "hint", "Hint", tooltip="Reveal the next hint of the selected checkpoint"),
        Binding("r", "reference", "Ref", tooltip="Read the reference solution (after a pass)"),
        Binding("x", "reset", "Reset", tooltip="Reset the selected checkpoint's files to the stubs (backed up)"),
        Binding("t", "train", "Train", tooltip="Open the Train screen (missions with a training job)"),
        Binding("s", "stop", "Stop", tooltip="Stop the running grade"),
        Binding("l", "log", "Log", tooltip="The grader's log full screen (l again to return)"),
        Binding("escape", "back", "Back", show=False, tooltip="Back to the mission map"),
        Binding("j", "cursor(1)", "Next checkpoint", show=False),
        Binding("k", "cursor(-1)", "Previous checkpoint", show=False),
    ]

    watching: reactive[bool] = reactive(False, init=False)
    grading: reactive[bool] = reactive(False, init=False)

    def __init__(self, mission: Mission, workspace: Workspace, slot: GradeSlot, *,
                 reference: bool = False, watch_poll: float = 1.0) -> None:
        super().__init__(id=f"mission-screen-{mission.id}")
        self.mission, self.workspace, self.slot = mission, workspace, slot
        self.reference, self.watch_poll = reference, watch_poll
        self.selected: Checkpoint = mission.checkpoints[0]
        self._job: GradeJob | None = None
        self._in_progress: list[str] = []
        self._done_before = False
        self._baseline: dict = {}
        self._stop_watch: threading.Event | None = None
        self._poll_timer = None

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="mission-body"):
            with VerticalScroll(id="brief-pane"):
                yield Markdown(id="brief")
            with Vertical(id="side"):
                yield MissionStatus(id="status")
                yield CheckpointList(self.mission, id="checkpoints")
                yield CheckpointDetail(id="detail")
                yield GradeLog(id="log")
        yield Footer(compact=True)

    def _brief_text(self) -> str:
        try:
            return label_code_fences(self.mission.brief_path.read_text(encoding="utf-8", errors="replace"))
        except OSError as e:
            return f"# {self.mission.title}\n\n*The brief could not be read: {e}*"

    def on_mount(self) -> None:
        self.brief_loaded = False
        self.call_after_refresh(self._load_brief)   # the screen shows first; the brief follows
        self.sub_title = self.mission.title + (" · GPU mission: its GPU-only checks skip on this machine"
                                               if self.mission.needs == "gpu" and not _has_gpu() else "")
        self.query_one("#brief-pane").can_focus = True
        self.query_one("#log", GradeLog).border_title = "grader log"
        state = self.workspace.state.read()
        self._load_rows(state)
        cp = first_open_checkpoint(self.mission, state)
        self.query_one(CheckpointList).select_id(cp.id)
        self.selected = cp
        self._update_detail(state)

    async def _load_brief(self) -> None:
        await self.query_one("#brief", Markdown).update(self._brief_text())
        self.brief_loaded = True

    def on_resize(self, event: Resize) -> None:
        narrow = event.size.width < NARROW
        self.set_class(narrow, "-narrow")
        self.set_class(event.size.height < SHORT, "-short")
        self.query_one(CheckpointList).set_compact(narrow)
        self.query_one(Footer).show_command_palette = not narrow

    def on_screen_resume(self) -> None:
        self.set_class(self.app.size.width < NARROW, "-narrow")
        self.set_class(self.app.size.height < SHORT, "-short")

    def on_unmount(self) -> None:
        self._set_watch(False)
        if self._job is not None and self.slot.job is self._job:
            self.slot.cancel()

    # -- state -> widgets --------------------------------------------------------------------
    def _load_rows(self, state: dict) -> None:
        records = checkpoint_records(state, self.mission.id)
        rows = {c.id: Row(status=records.get(c.id, {}).get("status"),
                          message=str(records.get(c.id, {}).get("message") or ""))
                for c in self.mission.checkpoints}
        self.query_one(CheckpointList).set_rows(rows)
        self._update_progress(state)

    def _update_progress(self, state: dict | None = None) -> Progress:
        progress = mission_progress(self.mission, state if state is not None else self.workspace.state.read())
        self.query_one(MissionStatus).progress_label = progress.label
        return progress

    def _update_detail(self, state: dict | None = None) -> None:
        state = state if state is not None else self.workspace.state.read()
        cp = self.selected
        row = self.query_one(CheckpointList).rows.get(cp.id, Row())
        detail = self.query_one(CheckpointDetail)
        detail.border_title = cp.title
        detail.show(
            cp, row.activity or row.status, row.message,
            hints_revealed(state, self.mission.id, cp.id), self.mission.package,
            can_read_reference=row.status == "passed" and bool(cp.files))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id:
            self.selected = self.mission.checkpoint(event.option.id)
            self._update_detail()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_grade_checkpoint()

    def watch_watching(self, on: bool) -> None:
        self.query_one(MissionStatus).watching = on
        self._set_watch(on)

    def watch_grading(self, on: bool) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "train":
            return self.mission.train is not None
        if action == "stop":
            return self.grading
        return True

    # -- grading -----------------------------------------------------------------------------
    def start_grade(self, checkpoints: list[str] | None = None, reason: str = "") -> bool:
        """Grade `checkpoints` (all when None) in a worker thread. False if a grade is running."""
        job = GradeJob(self.mission, self.workspace, self.post_message, checkpoints=checkpoints,
                       reference=self.reference, reason=reason)
        if not self.slot.claim(job):
            running = self.slot.job.mission.id if self.slot.job else "?"
            self.notify(f"A grade of {running} is running; wait for it or press s to stop it.",
                        severity="warning")
            return False
        self._job = job
        self._done_before = mission_progress(self.mission, self.workspace.state.read()).done
        self.grading = True
        if self.watching:
            self._baseline = snapshot(self.workspace.package_dir(self.mission))
        lst = self.query_one(CheckpointList)
        for cid in job.checkpoints:
            lst.set_row(cid, activity="queued")
        self._update_detail()
        self._in_progress.clear()
        self._show_activity()
        self._run_job(job)
        return True

    @work(thread=True, group="grade", exit_on_error=False, name="grade")
    def _run_job(self, job: GradeJob) -> None:
        job.run()

    def on_grade_started(self, message: GradeStarted) -> None:
        message.stop()
        what = "the whole mission" if len(message.checkpoints) == len(self.mission.checkpoints) \
            else ", ".join(message.checkpoints)
        mode = " (reference)" if self.reference else ""
        self.query_one(GradeLog).add_note(f"grading {what}{mode}" + (f": {message.reason}" if message.reason else ""))

    def on_checkpoint_started(self, message: CheckpointStarted) -> None:
        message.stop()
        self.query_one(CheckpointList).set_row(message.checkpoint, activity="running")
        if message.checkpoint not in self._in_progress:
            self._in_progress.append(message.checkpoint)
        self._show_activity()
        if message.checkpoint == self.selected.id:
            self._update_detail()

    def _show_activity(self) -> None:
        if self.grading:
            what = ", ".join(self._in_progress) if self._in_progress else "starting the grader"
            self.query_one(MissionStatus).activity = f"grading {what}…" if self._in_progress else f"{what}…"

    def on_grade_output(self, message: GradeOutput) -> None:
        message.stop()
        self.query_one(GradeLog).add_lines(message.lines, message.dropped)

    def on_checkpoint_graded(self, message: CheckpointGraded) -> None:
        message.stop()
        lst = self.query_one(CheckpointList)
        before = lst.rows.get(message.checkpoint, Row()).status
        lst.set_row(message.checkpoint, status=message.status, message=message.message, activity=None)
        if message.checkpoint in self._in_progress:
            self._in_progress.remove(message.checkpoint)
        self._show_activity()
        cp = self.mission.checkpoint(message.checkpoint)
        if message.status == "passed" and before != "passed":
            self.notify(f"✔ {cp.title}: passed", title=self.mission.title)
        state = self.workspace.state.read()
        self._update_progress(state)
        if message.checkpoint == self.selected.id:
            self._update_detail(state)
        self.post_message(ProgressChanged(self.mission.id))

    def on_grade_finished(self, message: GradeFinished) -> None:
        message.stop()
        lst = self.query_one(CheckpointList)
        for cid, row in lst.rows.items():
            if row.activity:
                if message.error:   # the grader itself failed: say so on the checkpoints it left
                    lst.set_row(cid, activity=None, status="error", message=f"the grader failed: {message.error}")
                else:
                    lst.set_row(cid, activity=None)
        log = self.query_one(GradeLog)
        for w in message.warnings:
            log.add_note(f"warning: {w}")
        passed = sum(s == "passed" for s in message.results.values())
        if message.cancelled:
            log.add_note("grade stopped")
            self.notify("Grade stopped.", severity="warning")
        elif message.error:
            log.add_note(f"the grader failed: {message.error}")
            self.notify(f"The grader failed: {message.error}", severity="error", timeout=10)
        else:
            seed = f", seed {message.seed}" if message.seed is not None else ""
            log.add_note(f"{passed} of {len(message.results)} passed in {message.duration:.1f} s{seed}")
        self.grading = False
        self._in_progress.clear()
        self.query_one(MissionStatus).activity = ""
        state = self.workspace.state.read()
        progress = self._update_progress(state)
        self._update_detail(state)
        if progress.done and not self._done_before and not message.cancelled:
            self.notify(f"Mission complete: {self.mission.title}. Every checkpoint passed!",
                        title="★ mission complete", timeout=10)
        self.post_message(ProgressChanged(self.mission.id))
        if self.watching:
            self.call_after_refresh(self._check_files)

    # -- actions -----------------------------------------------------------------------------
    def action_grade(self) -> None:
        self.start_grade(None)

    def action_grade_checkpoint(self) -> None:
        self.start_grade([self.selected.id])

    def action_stop(self) -> None:
        if self._job is not None and self.slot.job is self._job and self.slot.cancel():
            self.query_one(MissionStatus).activity = "stopping…"

    def action_back(self) -> None:
        if self.maximized is not None:
            self.minimize()
        else:
            self.app.pop_screen()

    def action_log(self) -> None:
        log = self.query_one(GradeLog)
        if self.maximized is log:
            self.minimize()
        else:
            self.maximize(log, container=False)
            log.focus()

    def action_cursor(self, step: int) -> None:
        lst = self.query_one(CheckpointList)
        lst.action_cursor_down() if step > 0 else lst.action_cursor_up()

    def action_hint(self) -> None:
        cp = self.selected
        total = len(cp.hints)
        shown = hints_revealed(self.workspace.state.read(), self.mission.id, cp.id)
        if total == 0:
            self.notify(f"“{cp.title}” has no hints.")
            return
        if shown >= total:
            self.notify(f"All {total} hints of “{cp.title}” are shown.")
            return
        n = self.workspace.state.reveal_hint(self.mission.id, cp.id, total)
        self._update_detail()
        self.query_one(CheckpointDetail).scroll_end(animate=False)
        self.notify(cp.hints[n - 1], title=f"Hint {n}/{total}: {cp.title}", timeout=12)

    def action_reference(self) -> None:
        cp = self.selected
        row = self.query_one(CheckpointList).rows.get(cp.id, Row())
        if row.status != "passed":
            self.notify(f"Pass “{cp.title}” first: its reference solution opens after a pass.",
                        severity="warning")
            return
        if not cp.files:
            self.notify(f"“{cp.title}” has no files to compare.")
            return
        from .reference import ReferenceScreen
        ref = self.mission.reference.replace(".", "/")
        files = [(f"{ref}/{name}", reference_path(self.mission, name)) for name in cp.files]
        self.app.push_screen(ReferenceScreen(f"Reference solution: {cp.title}", files))

    def action_reset(self) -> None:
        cp = self.selected
        if not cp.files:
            self.notify(f"“{cp.title}” has no files to reset.")
            return
        shared = shared_files(self.mission, cp)
        lines = ["Put the original stub back for:"]
        for name, others in shared.items():
            also = f"  (also graded by: {', '.join(others)})" if others else ""
            lines.append(f"  {self.mission.package}/{name}{also}")
        lines += ["", "Your current version is copied to .llm-lab/backups/<time>/ first; nothing is lost."]
        from .confirm import ConfirmScreen
        self.app.push_screen(ConfirmScreen(f"Reset “{cp.title}”?", "\n".join(lines), yes="Reset"),
                             callback=lambda ok: self._reset(cp, ok))

    def _reset(self, cp: Checkpoint, ok: bool | None) -> None:
        if not ok:
            return
        try:
            backup = reset_files(self.workspace, self.mission, cp.files)
        except OSError as e:
            self.notify(f"Could not reset: {e}", severity="error")
            return
        where = f"; your version is in {backup.relative_to(self.workspace.root)}" if backup else ""
        self.query_one(GradeLog).add_note(f"reset {', '.join(cp.files)}{where}")
        self.notify(f"Reset {', '.join(cp.files)} to the stub{where}.", timeout=8)

    def action_edit(self) -> None:
        cp = self.selected
        names = list(cp.files) or ["__init__.py"]
        paths = [self.workspace.stub_path(self.mission, n) for n in names]
        missing = [p for p in paths if not p.exists()]
        if missing:
            self.notify(f"{missing[0]} is missing; press x to restore the stub.", severity="warning")
            return
        where = " ".join(str(p) for p in paths)
        cmd = editor_command()
        if cmd is None or not editor_available(cmd):
            name = f"“{cmd[0]}” was not found" if cmd else "no editor found ($EDITOR is not set)"
            self.notify(f"{name}. Open {where} in your editor.", severity="warning", timeout=12)
            return
        error: str | None = None
        try:
            with self.app.suspend():
                try:
                    subprocess.call([*cmd, *map(str, paths)])
                except OSError as e:
                    error = str(e)
        except SuspendNotSupported:
            self.notify(f"Cannot hand the terminal to an editor here. Open {where} in your editor.",
                        severity="warning", timeout=12)
            return
        if error:
            self.notify(f"The editor failed ({error}). Open {where} yourself.", severity="error", timeout=12)

    def action_train(self) -> None:
        if self.mission.train is None:
            self.notify(f"{self.mission.id} has no training job.")
            return
        try:
            from .train import TrainScreen
        except Exception:   # the panels are optional (and another module's business)
            self.notify("training panels not available", severity="warning")
            return
        self.app.push_screen(TrainScreen(self.mission, self.workspace))

    def action_toggle_watch(self) -> None:
        self.watching = not self.watching
        if self.watching:
            self.notify("Watch mode on: every save regrades the checkpoints of that file.")
        else:
            self.notify("Watch mode off.")

    # -- watch mode --------------------------------------------------------------------------
    def _set_watch(self, on: bool) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
            self._stop_watch = None
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if on:
            self._baseline = snapshot(self.workspace.package_dir(self.mission))
            self._stop_watch = threading.Event()
            self._watch_files(self._stop_watch)
            # the fallback when file events do not arrive (network drives, some containers)
            self._poll_timer = self.set_interval(self.watch_poll, self._check_files)

    @work(group="watch", exclusive=True, exit_on_error=False, name="watch")
    async def _watch_files(self, stop: threading.Event) -> None:
        folder = self.workspace.package_dir(self.mission)
        try:
            from watchfiles import PythonFilter, awatch
            async for _changes in awatch(folder, watch_filter=PythonFilter(), debounce=WATCH_DEBOUNCE_MS,
                                         step=50, stop_event=stop, rust_timeout=500):
                if stop.is_set():
                    return
                self._check_files()
        except Exception as e:  # no file events here: the mtime poll carries on alone
            self.log.warning(f"watchfiles unavailable ({e}); polling file times instead")

    def _check_files(self) -> None:
        """Regrade if the package's files changed since the last grade (called on file events and
        by the poll). Ignored while a grade runs; the change is picked up when it ends."""
        if not self.watching or self.slot.busy:
            return
        current = snapshot(self.workspace.package_dir(self.mission))
        changed = changed_files(self._baseline, current)
        if not changed:
            return
        self._baseline = current
        cps = checkpoints_for_files(self.mission, changed) or None
        self.start_grade(cps, reason=f"saved {', '.join(changed)}")
