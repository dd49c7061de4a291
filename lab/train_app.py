"""A small app around the Train screen for `llm-lab train MISSION` (without --headless).

    TrainApp(mission, workspace, impl="mine", steps=None).run()  -> the run's end status or None

The screen is pushed on mount (a screen's CSS_PATH is not loaded for an app's default screen) and
starts the run at once; escape (or Ctrl-C when no run is going) quits with the last end status.
"""
from __future__ import annotations

from textual.app import App

from grader.missions import Mission
from grader.workspace import Workspace

from .screens.train import TrainScreen


class TrainApp(App[str | None]):
    TITLE = "llm-lab train"

    def __init__(self, mission: Mission, workspace: Workspace, *, impl: str = "mine",
                 steps: int | None = None, autostart: bool = True, **screen_kw) -> None:
        super().__init__()
        self.train_screen = TrainScreen(mission, workspace, impl=impl, steps=steps, autostart=autostart,
                                        exit_on_back=True, **screen_kw)

    def on_mount(self) -> None:
        self.push_screen(self.train_screen)
