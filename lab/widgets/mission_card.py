"""One mission on the map: title, summary, a progress bar and its status."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Label, ListItem, ProgressBar

from grader.missions import Mission

from ..progress import Progress


class MissionCard(ListItem):
    """A list item for `mission`; `set_progress` updates it (attributes down, nothing up)."""

    def __init__(self, mission: Mission, progress: Progress, suggested: bool = False) -> None:
        super().__init__(id=f"mission-{mission.id}", classes="mission-card")
        self.mission = mission
        self.progress = progress
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        m = self.mission
        with Horizontal(classes="card-head"):
            yield Label(Content.assemble((f"{m.order:>2}  ", "$text-muted"), (m.title, "bold")),
                        classes="card-title")
            if m.needs == "gpu":
                yield Label("GPU · also opens on CPU", classes="card-gpu")
            yield Label("▶ suggested next" if self.suggested else "", classes="card-next")
        if m.summary:
            yield Label(m.summary, classes="card-summary")
        with Horizontal(classes="card-progress"):
            bar = ProgressBar(total=max(1, self.progress.total), show_eta=False, show_percentage=False,
                              classes="card-bar")
            bar.progress = self.progress.passed
            yield bar
            yield Label(self.progress.label, classes="card-status")
        self._set_classes()

    def _set_classes(self) -> None:
        progress = self.progress
        self.set_class(self.suggested, "-next")
        self.set_class(progress.done, "-done")
        self.set_class(progress.started and not progress.done, "-started")

    def set_progress(self, progress: Progress, suggested: bool) -> None:
        self.progress, self.suggested = progress, suggested
        self._set_classes()
        if not self.is_mounted:
            return
        self.query_one(".card-bar", ProgressBar).update(total=max(1, progress.total), progress=progress.passed)
        self.query_one(".card-status", Label).update(progress.label)
        self.query_one(".card-next", Label).update("▶ suggested next" if suggested else "")
