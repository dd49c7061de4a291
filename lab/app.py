"""The lab: a Textual app on a learner's workspace.

    LabApp(workspace_root).run()

The mission map is the first screen; picking a mission installs (once) and pushes its
MissionScreen, which keeps running (a grade, watch mode) while the learner is elsewhere. Screens
post messages up (MissionChosen, ProgressChanged, GradeFinished); the app passes missions, the
workspace and the shared grade slot down. `q` quits from the map; on other screens it goes back.
Start-up imports Textual and grader's loader only: the mission screen (Markdown), the grader runner
and watchfiles load when first needed, torch never.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from grader.missions import Mission, load_all
from grader.workspace import Workspace, display_path

from .grading import GradeSlot
from .messages import GradeFinished, MissionChosen, ProgressChanged
from .screens.map import MapScreen


WARM_UP_AFTER = 0.8   # seconds after start-up


class LabApp(App[None]):
    TITLE = "llm-lab"
    CSS_PATH = "styles/app.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Quit the lab (a running grade is stopped)"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="Every key of the lab"),
    ]

    def __init__(self, workspace_root: Path, *, missions: list[Mission] | None = None,
                 errors: list[str] | None = None, reference: bool = False, watch_poll: float = 1.0,
                 notices: list[str] | None = None) -> None:
        """`missions`/`errors` default to grader.missions.load_all(); tests pass a fixed list.
        `reference=True` grades engine/ instead of the workspace (a test and demo hook; results
        are recorded like any other). `watch_poll` is the watch mode's mtime poll, in seconds.
        `notices`: what the learner must know on opening (e.g. an edited brief.md not updated)."""
        super().__init__()
        self.workspace = Workspace(Path(workspace_root))
        if missions is None:
            missions, loaded_errors = load_all()
            errors = list(loaded_errors) + list(errors or [])
        self.missions = list(missions)
        self.mission_errors = list(errors or [])
        self.reference = reference
        self.watch_poll = watch_poll
        self.grade_slot = GradeSlot()
        self.notices = list(notices or [])
        self.map_screen = MapScreen(self.missions, self.mission_errors, self.workspace)

    def on_mount(self) -> None:
        warnings = self.notices + self.workspace.state.take_warnings()   # e.g. a corrupt state.json
        self.map_screen.notice = "\n".join(f"⚠ {w}" for w in warnings)
        self.push_screen(self.map_screen)   # pushed (not the default screen) so its CSS_PATH loads
        self.set_timer(WARM_UP_AFTER, self._warm_up)   # after the first paint, not competing with it
        self.sub_title = display_path(self.workspace.root)
        for warning in warnings:
            self.notify(warning, severity="warning", timeout=30)

    @work(thread=True, exit_on_error=False, group="warm-up")
    def _warm_up(self) -> None:
        """Once the map is up, import what opening a mission needs (Markdown, the grader's
        runner), so the first mission opens without that wait."""
        import importlib
        for name in ("lab.screens.mission", "textual.widgets._markdown", "grader.runner"):
            try:
                importlib.import_module(name)
            except Exception:
                pass

    # -- navigation --------------------------------------------------------------------------
    def mission(self, mission_id: str) -> Mission | None:
        return next((m for m in self.missions if m.id == mission_id), None)

    def on_mission_chosen(self, message: MissionChosen) -> None:
        self.open_mission(message.mission_id)

    def open_mission(self, mission_id: str) -> None:
        mission = self.mission(mission_id)
        if mission is None:
            self.notify(f"No mission {mission_id!r}.", severity="error")
            return
        from .screens.mission import MissionScreen   # lazily: Markdown is not needed for the map

        name = f"mission:{mission.id}"
        if not self.is_screen_installed(name):
            self.install_screen(MissionScreen(mission, self.workspace, self.grade_slot,
                                              reference=self.reference, watch_poll=self.watch_poll), name)
        if self.screen is not self.get_screen(name):
            self.push_screen(name)
        try:
            self.workspace.state.set_current(mission.id)
        except OSError:
            pass

    def on_progress_changed(self, message: ProgressChanged) -> None:
        self.map_screen.update_progress(message.mission_id, message.records)

    def on_grade_finished(self, message: GradeFinished) -> None:
        """The grade slot is free: a mission whose saves waited for it grades them now."""
        from .screens.mission import MissionScreen
        for screen in list(self._installed_screens.values()):
            if isinstance(screen, MissionScreen):
                screen.grade_saved_files()

    # -- help, command palette, quit ---------------------------------------------------------
    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        from .screens.mission import MissionScreen

        def keys(bindings: Iterable) -> list[tuple[str, str]]:
            out = []
            for b in bindings:
                b = b if isinstance(b, Binding) else Binding(*b)
                key = b.key_display or ", ".join(self.get_key_display(Binding(k.strip(), b.action))
                                                 for k in b.key.split(","))
                out.append((key, b.tooltip or b.description))
            return out

        return [("Everywhere", keys(self.BINDINGS) + [("ctrl+p", "Command palette: every action by name")]),
                ("Mission map", [("↑ ↓", "Move between missions")] + keys(MapScreen.BINDINGS)),
                ("Mission", [("pgup pgdn", "Scroll the brief"),
                             ("tab", "Move between brief, checkpoints, detail, log")]
                 + keys(MissionScreen.BINDINGS))]

    def action_help(self) -> None:
        from .screens.help import HelpScreen
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_sections()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette lists the current screen's actions (with their keys) before the system ones."""
        seen = set()
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not b.description or b.action in seen or not active.enabled or b.system:
                continue
            seen.add(b.action)
            name = b.tooltip or b.description
            yield SystemCommand(name, f"key: {self.get_key_display(b)}",
                                partial(self.run_action, b.action, active.node))
        yield from super().get_system_commands(screen)

    def exit(self, *args, **kwargs) -> None:
        self.stop_background_work()
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        # however the app ends (exit, a crash, a test harness's shutdown): never wait for a grade
        self.grade_slot.cancel()

    def stop_background_work(self) -> None:
        """Stop a running grade (kills its child) and every watcher, so quitting never waits."""
        self.grade_slot.cancel()
        for screen in list(self._installed_screens.values()):
            if getattr(screen, "watching", False):
                screen.watching = False
