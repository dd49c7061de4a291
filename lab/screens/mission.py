"""A mission: its brief, its checkpoints with live status, hints, the grader's log, and the actions
(grade, grade one checkpoint, watch, edit, hint, reference, reset, train).

The screen reads state.json once, when it opens; after that it holds the mission's records and
updates them from messages: CheckpointGraded (a grade, run by lab.grading.GradeJob in a thread),
FilesSaved (watch mode, lab.watch), the hints it reveals itself. Each result it records is
reported up with ProgressChanged so the map follows. The app keeps one MissionScreen per mission
installed, so a grade or watch mode keeps going while the learner is back on the map.

Layout (lab/styles/mission.tcss): the brief on the left with the keyboard focus (PageDown scrolls
it; j/k move between checkpoints), the checkpoints, the selected one's detail and the grader log on
the right. Below NARROW columns the brief stacks over the rest and the detail and the log sit side
by side; with many checkpoints, or few rows, each checkpoint takes one line.
"""
from __future__ import annotations

import shutil
import subprocess

from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, OptionList

from grader.missions import Checkpoint, Mission
from grader.workspace import BRIEF, Workspace

from ..brief import brief_markdown
from ..editor import editor_available, editor_command
from ..grading import GradeJob, GradeSlot
from ..messages import (CheckpointGraded, CheckpointStarted, FilesSaved, GradeFinished, GradeOutput, GradeStarted,
                        ProgressChanged)
from ..progress import Progress, checkpoint_records, first_open_checkpoint, hints_shown, progress_of
from ..stubs import checkpoints_for_files, reset_files, shared_files
from ..watch import FileWatcher
from ..widgets.checkpoint_detail import CheckpointDetail
from ..widgets.checkpoint_list import CheckpointList, Row
from ..widgets.grade_log import GradeLog
from ..widgets.mission_status import MissionStatus

NARROW = 100      # columns below which the brief stacks over the checkpoints
SHORT = 30        # rows below which the layout tightens (class -short)
LIST_SHARE = 0.4  # two lines per checkpoint while the list takes at most this share of the rows


class MissionScreen(Screen[None]):
    CSS_PATH = "../styles/mission.tcss"
    AUTO_FOCUS = "#brief-pane"
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?", tooltip="Every key of the lab"),
        Binding("g", "grade", "Grade", tooltip="Grade the whole mission"),
        Binding("c", "grade_checkpoint", "Check", tooltip="Grade the selected checkpoint"),
        Binding("w", "toggle_watch", "Watch", tooltip="Watch mode on/off: every save regrades"),
        Binding("e", "edit", "Edit", tooltip="Open the selected checkpoint's file in your $EDITOR"),
        Binding("h", "hint", "Hint", tooltip="Reveal the next hint of the selected checkpoint"),
        Binding("r", "reference", "Ref", tooltip="Read the reference solution (what your passes opened)"),
        Binding("x", "reset", "Reset", tooltip="Reset the selected checkpoint's files to the stubs (backed up)"),
        Binding("t", "train", "Train", tooltip="Open the Train screen (missions with a training job)"),
        Binding("s", "stop", "Stop", tooltip="Stop the running grade"),
        Binding("l", "log", "Log", tooltip="The grader's log full screen (l again to return)"),
        Binding("q", "back", "Back", tooltip="Back to the mission map (q there quits)"),
        Binding("escape", "back", "Back", show=False, tooltip="Back to the mission map"),
        Binding("j", "cursor(1)", "Next checkpoint", show=False, tooltip="Select the next checkpoint"),
        Binding("k", "cursor(-1)", "Previous checkpoint", show=False, tooltip="Select the previous checkpoint"),
    ]

    watching: reactive[bool] = reactive(False, init=False)
    grading: reactive[bool] = reactive(False, init=False)

    def __init__(self, mission: Mission, workspace: Workspace, slot: GradeSlot, *,
                 reference: bool = False, watch_poll: float = 1.0) -> None:
        super().__init__(id=f"mission-screen-{mission.id}")
        self.mission, self.workspace, self.slot = mission, workspace, slot
        self.reference, self.watch_poll = reference, watch_poll
        self.selected: Checkpoint = mission.checkpoints[0]
        self.records: dict[str, dict] = {}        # {checkpoint: {"status", "message"}} as last graded
        self.hints: dict[str, int] = {}           # {checkpoint: hints revealed}
        self.brief_loaded = False
        self._job: GradeJob | None = None
        self._in_progress: list[str] = []
        self._done_before = False
        self._watcher: FileWatcher | None = None
        self._saved: set[str] = set()             # saved while a grade ran: graded when it ends

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="mission-body"):
            with VerticalScroll(id="brief-pane"):
                yield Markdown(id="brief")
            with Vertical(id="side"):
                yield MissionStatus(id="status")
                yield CheckpointList(self.mission, id="checkpoints")
                with Container(id="panes"):
                    yield CheckpointDetail(id="detail")
                    yield GradeLog(id="log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self._load_brief)   # the screen shows first; the brief follows
        self.sub_title = self.mission.title + (" · GPU mission: its GPU-only checks skip on this machine"
                                               if self.mission.needs == "gpu" and not _has_gpu() else "")
        self.query_one("#brief-pane").can_focus = True
        self.query_one("#log", GradeLog).border_title = "grader log"
        state = self.workspace.state.read()
        self.records = checkpoint_records(state, self.mission.id)
        self.hints = hints_shown(state, self.mission.id)
        self._load_rows()
        cp = first_open_checkpoint(self.mission, self.records)
        self.query_one(CheckpointList).select_id(cp.id)
        self.selected = cp
        self._update_detail()
        self._fit(self.app.size.width, self.app.size.height)

    async def _load_brief(self) -> None:
        await self.query_one("#brief", Markdown).update(brief_markdown(self.mission))
        self.brief_loaded = True

    def on_resize(self, event: Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def on_screen_resume(self) -> None:
        self._fit(self.app.size.width, self.app.size.height)

    def _fit(self, width: int, height: int) -> None:
        narrow = width < NARROW
        self.set_class(narrow, "-narrow")
        self.set_class(height < SHORT, "-short")
        two_lines = 2 * len(self.mission.checkpoints) + 2 <= LIST_SHARE * height
        self.query_one(CheckpointList).set_compact(narrow or not two_lines)
        self.query_one(Footer).show_command_palette = not narrow

    def on_unmount(self) -> None:
        self._set_watch(False)
        if self._job is not None and self.slot.job is self._job:
            self.slot.cancel()

    # -- held state -> widgets ---------------------------------------------------------------
    def _load_rows(self) -> None:
        rows = {c.id: Row(status=self.records.get(c.id, {}).get("status"),
                          message=str(self.records.get(c.id, {}).get("message") or ""))
                for c in self.mission.checkpoints}
        self.query_one(CheckpointList).set_rows(rows)
        self._update_progress()

    @property
    def progress(self) -> Progress:
        return progress_of(self.mission, self.records)

    def _update_progress(self) -> Progress:
        progress = self.progress
        self.query_one(MissionStatus).progress_label = progress.label
        return progress

    def _passed(self) -> set[str]:
        return {cid for cid, r in self.records.items() if r.get("status") == "passed"}

    def _update_detail(self) -> None:
        cp = self.selected
        row = self.query_one(CheckpointList).rows.get(cp.id, Row())
        detail = self.query_one(CheckpointDetail)
        detail.border_title = cp.title
        detail.show(cp, row.activity or row.status, row.message, self.hints.get(cp.id, 0), self.mission.package,
                    can_read_reference=row.status == "passed" and bool(cp.files), brief=BRIEF)

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
        self._done_before = self.progress.done
        self.grading = True
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
        cid = message.checkpoint
        lst = self.query_one(CheckpointList)
        before = self.records.get(cid, {}).get("status")
        if self._job is None or self._job.record:
            self.records[cid] = {"status": message.status, "message": message.message}
        lst.set_row(cid, status=message.status, message=message.message, activity=None)
        if cid in self._in_progress:
            self._in_progress.remove(cid)
        self._show_activity()
        if message.status == "passed" and before != "passed":
            self.notify(f"✔ {self.mission.checkpoint(cid).title}: passed", title=self.mission.title)
        self._update_progress()
        if cid == self.selected.id:
            self._update_detail()
        self.post_message(ProgressChanged(self.mission.id, dict(self.records)))

    def on_grade_finished(self, message: GradeFinished) -> None:
        # not stopped: the app hears it too (another mission's saves may be waiting for the slot)
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
        for w in self.workspace.state.take_warnings():
            log.add_note(f"warning: {w}")
            self.notify(w, severity="warning", timeout=20)
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
        progress = self._update_progress()
        self._update_detail()
        if progress.done and not self._done_before and not message.cancelled:
            self.notify(f"Mission complete: {self.mission.title}. Every required checkpoint passed!",
                        title="★ mission complete", timeout=10)
        self.grade_saved_files()

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
        total, shown = len(cp.hints), self.hints.get(cp.id, 0)
        if total == 0:
            self.notify(f"“{cp.title}” has no hints.")
            return
        if shown >= total:
            self.notify(f"All {total} hints of “{cp.title}” are shown.")
            return
        n = self.workspace.state.reveal_hint(self.mission.id, cp.id, total)
        self.hints[cp.id] = n
        self._update_detail()
        self.query_one(CheckpointDetail).scroll_end(animate=False)
        self.notify(cp.hints[n - 1], title=f"Hint {n}/{total}: {cp.title}", timeout=12)

    def action_reference(self) -> None:
        cp = self.selected
        if self.records.get(cp.id, {}).get("status") != "passed":
            self.notify(f"Pass “{cp.title}” first: its reference solution opens after a pass.",
                        severity="warning")
            return
        if not cp.files:
            self.notify(f"“{cp.title}” has no files to compare.")
            return
        from ..reference_code import reference_view
        from .reference import ReferenceScreen
        ref = self.mission.reference.replace(".", "/")
        views = [(f"{ref}/{name}", reference_view(self.mission, name, self._passed())) for name in cp.files]
        self.app.push_screen(ReferenceScreen(f"Reference solution: {cp.title}", views))

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
            from ..training.screen import TrainScreen
        except Exception as e:   # a broken install of the panels must not take the lab down
            self.notify(f"The Train screen could not load: {e}", severity="warning")
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
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        self._saved.clear()
        if on:
            self._watcher = FileWatcher(self.workspace.package_dir(self.mission),
                                        lambda names: self.post_message(FilesSaved(self.mission.id, names)),
                                        poll=self.watch_poll).start()

    def on_files_saved(self, message: FilesSaved) -> None:
        message.stop()
        if not self.watching:
            return
        self._saved.update(message.names)
        self.grade_saved_files()

    def grade_saved_files(self) -> None:
        """Grade the checkpoints of the files saved since the last grade, unless a grade is running
        (then this is called again when it ends: here, or by the app for another mission's grade)."""
        if not self.watching or not self._saved or self.slot.busy:
            return
        names, self._saved = sorted(self._saved), set()
        cps = checkpoints_for_files(self.mission, names) or None
        self.start_grade(cps, reason=f"saved {', '.join(names)}")


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None
