"""Throttle: call a widget's redraw at most `fps` times a second, however often data arrives.

    self._redraw = Throttle(self, fps=2.0, draw=self.refresh)
    self._redraw()        # draws now, or once later (one timer at most) if the last draw was recent
"""
from __future__ import annotations

import time
from typing import Callable

from textual.widget import Widget

SLACK_S = 0.1      # a draw due within this long happens now (no extra frame later)


class Throttle:
    def __init__(self, widget: Widget, *, fps: float, draw: Callable[[], object]):
        self.widget, self.period, self.draw = widget, 1.0 / fps, draw
        self.last = 0.0
        self._timer = None

    def __call__(self) -> None:
        if not self.widget.is_mounted:
            return
        wait = self.period - (time.monotonic() - self.last)
        if wait <= SLACK_S:
            self.now()
        elif self._timer is None:
            self._timer = self.widget.set_timer(wait, self._deferred)

    def now(self) -> None:
        self.last = time.monotonic()
        self.draw()

    def _deferred(self) -> None:
        self._timer = None
        self.now()
