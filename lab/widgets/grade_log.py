"""The grader's output, streamed: a RichLog that wraps long lines and keeps the last MAX_LINES."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from grader.report import clean_text

MAX_LINES = 2000


class GradeLog(RichLog):
    """`add_lines` writes cleaned lines (ANSI and control bytes stripped, never read as markup),
    wrapped at the log's width; old lines fall off."""

    def __init__(self, *, id: str | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(max_lines=max_lines, id=id, wrap=True, markup=False, highlight=False,
                         auto_scroll=True, min_width=20)
        self.written = 0          # lines written so far (before wrapping)

    def add_lines(self, lines: list[str], dropped: int = 0) -> None:
        if dropped:
            self._write(Text(f"… {dropped} line(s) of output not shown …", style="dim"))
        for line in lines:
            self._write(Text(clean_text(line)))

    def add_note(self, text: str) -> None:
        self._write(Text(f"── {clean_text(text)} ──", style="bold"))

    def _write(self, text: Text) -> None:
        self.written += 1
        self.write(text, scroll_end=True)

    @property
    def plain_lines(self) -> list[str]:
        """What the log shows, line by line (wrapped), as plain text."""
        return [strip.text for strip in self.lines]
