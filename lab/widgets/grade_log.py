"""The grader's output, streamed: a RichLog that wraps long lines at its width (wrapped again when
its width changes, e.g. shown full screen) and keeps the last MAX_LINES."""
from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from grader.report import clean_text

MAX_LINES = 2000


class GradeLog(RichLog):
    """`add_lines` writes cleaned lines (ANSI and control bytes stripped, never read as markup)."""

    def __init__(self, *, id: str | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(max_lines=max_lines, id=id, wrap=True, markup=False, highlight=False,
                         auto_scroll=True, min_width=20)
        self.written = 0                                    # lines written so far (before wrapping)
        self._texts: deque[Text] = deque(maxlen=max_lines)  # what to wrap again on a new width
        self._wrapped_at = 0

    def add_lines(self, lines: list[str], dropped: int = 0) -> None:
        if dropped:
            self._write(Text(f"… {dropped} line(s) of output not shown …", style="dim"))
        for line in lines:
            self._write(Text(clean_text(line)))

    def add_note(self, text: str) -> None:
        self._write(Text(f"── {clean_text(text)} ──", style="bold"))

    def _write(self, text: Text) -> None:
        self.written += 1
        self._texts.append(text)
        self._render(text)

    def _render(self, text: Text) -> None:
        width = self.scrollable_content_region.width
        self.write(text, width=width if width >= self.min_width else None, scroll_end=True)

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if self._texts and self._wrapped_at and width != self._wrapped_at:
            self.clear()
            for text in self._texts:
                self._render(text)
        self._wrapped_at = width

    @property
    def plain_lines(self) -> list[str]:
        """What the log shows, line by line (wrapped), as plain text."""
        return [strip.text for strip in self.lines]
