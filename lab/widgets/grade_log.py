"""The grader's output, streamed: a Log with a line cap."""
from __future__ import annotations

from textual.widgets import Log

from grader.report import clean_text

MAX_LINES = 2000


class GradeLog(Log):
    """`add_lines` writes cleaned lines (ANSI and control bytes stripped); old lines fall off."""

    def __init__(self, *, id: str | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(max_lines=max_lines, id=id, auto_scroll=True)

    def add_lines(self, lines: list[str], dropped: int = 0) -> None:
        if dropped:
            self.write_line(f"… {dropped} line(s) of output not shown …")
        if lines:
            self.write_lines([clean_text(line) for line in lines])
        self._follow()

    def add_note(self, text: str) -> None:
        self.write_line(f"── {clean_text(text)} ──")
        self._follow()

    def _follow(self) -> None:
        # Log scrolls on write, but against the size before the new lines: follow after the refresh
        if self.auto_scroll:
            self.call_after_refresh(self.scroll_end, animate=False)
