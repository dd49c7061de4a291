"""MetricCard: one live number (tokens/s, MFU) with its recent history as a sparkline.

Reactives down: `value` (the text shown), `caption`. Data: `push(x)` appends to the sparkline
(the last HISTORY values; non-finite values are skipped; `update=False` + `update_sparkline()` for
a batch). Uses Textual's own Sparkline. The number
line is drawn by the card itself (not a Label), so a new value repaints one line and never
triggers a layout pass: the card updates a few times a second while training runs.
"""
from __future__ import annotations

import math
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Sparkline

from .throttle import Throttle

HISTORY = 120
SPARK_FPS = 2.0      # the sparkline redraws at most this often (it is the card's costly part)


class _ValueLine(Widget):
    """The card's first line: its value in bold, then its caption, dim (read from the card)."""

    def render(self) -> Text:
        card = self.parent
        return Text.assemble((card.value.ljust(10), "bold"), (card.caption, "dim"),
                             no_wrap=True, overflow="ellipsis")


class MetricCard(Widget):
    value: reactive[str] = reactive("—", repaint=False)
    caption: reactive[str] = reactive("", repaint=False)

    def __init__(self, title: str, *, caption: str = "", name: str | None = None, id: str | None = None,
                 classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = title
        self.history: deque[float] = deque(maxlen=HISTORY)
        self._spark = Throttle(self, fps=SPARK_FPS, draw=self._draw_sparkline)
        self.set_reactive(MetricCard.caption, caption)

    def compose(self) -> ComposeResult:
        yield _ValueLine(classes="value-line")
        yield Sparkline([], summary_function=max)

    def _repaint_line(self) -> None:
        if self.is_mounted:
            self.query_one(_ValueLine).refresh()

    def watch_value(self, value: str) -> None:
        self._repaint_line()

    def watch_caption(self, caption: str) -> None:
        self._repaint_line()

    def push(self, x: float | None, *, update: bool = True) -> None:
        """Append to the history; update=False for a batch (call update_sparkline() after it)."""
        if x is None or not math.isfinite(x):
            return
        self.history.append(float(x))
        if update:
            self.update_sparkline()

    def update_sparkline(self) -> None:
        """Show the history now, or once later if the last redraw was less than 1/SPARK_FPS ago."""
        self._spark()

    def _draw_sparkline(self) -> None:
        self.query_one(Sparkline).data = list(self.history)

    def clear(self) -> None:
        self.history.clear()
        self.value = "—"
        if self.is_mounted:
            self._spark.now()
