"""One line over the checkpoint list: progress, watch mode, what the grader is doing (if anything)."""
from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static


class MissionStatus(Static):
    progress_label: reactive[str] = reactive("")
    watching: reactive[bool] = reactive(False)
    activity: reactive[str] = reactive("")      # "" when idle, else e.g. "grading forward"

    def render(self) -> Content:
        watch = ("◉ watching", "bold $success") if self.watching else ("○ watch off", "$text-muted")
        parts = [(self.progress_label, "bold"), (" · ", "$text-muted"), watch]
        if self.activity:
            parts += [(" · ", "$text-muted"), (self.activity, "bold $primary")]
        return Content.assemble(*parts)
