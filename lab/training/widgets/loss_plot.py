"""LossPlot: train and validation loss as a braille line plot, with axes and a log-scale toggle.

Why our own widget (about 200 lines) and not a plotting library:
- textual-plotext pins plotext 5.x and reaches into plotext's private modules, so any plotext
  release can break it, and it redraws the whole figure through plotext's string builder each time.
- plotext itself is written for printing to a terminal, not for a widget that resizes.
- A braille canvas (2x4 dots per cell, the same trick plotext and drawille use) is small: it needs
  no dependency, downsamples to exactly the pixels there are, and renders in a few ms, so the
  Train screen can redraw a few times a second without taking time from the training run.

Drawing: the x range is 0..max(planned steps, last step) so a run fills the plot as it goes. Train
points are bucketed per dot column; each column draws the span min..max of its points (the noise
band) joined to the previous column, so thousands of steps read as a line with its spread, at any
width. Validation points are few and drawn as a line of their own colour. Non-finite losses are
skipped. In log scale, values <= 0 are skipped. Redraws are capped at MAX_FPS however often data
arrives.

Reactives down: `log_scale`, `x_max`. Data: `add_train`, `add_val`, `clear`.
Message up: `LossPlot.ScaleChanged` when log_scale flips.
Not handled: zoom and pan, more than two series, a legend per colour-blind palette.
"""
from __future__ import annotations

import math

from rich.text import Text
from textual.message import Message
from textual.strip import Strip
from textual.reactive import reactive
from textual.widget import Widget

from .throttle import Throttle

MAX_FPS = 2.0
MAX_POINTS = 50_000          # older train points are thinned (every other one) beyond this
Y_LABEL_W = 8
TRAIN_STYLE, VAL_STYLE, AXIS_STYLE = "cyan", "bold yellow", "grey50"
_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))   # [row][col] of a braille cell


def _tick(v: float) -> str:
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.4g}"
    return f"{v:.1e}"


class Canvas:
    """Braille dots on a grid of width x height cells; each cell takes the colour of its last series."""

    def __init__(self, width: int, height: int):
        self.w, self.h = max(1, width), max(1, height)
        self.bits = [[0] * self.w for _ in range(self.h)]
        self.style = [[""] * self.w for _ in range(self.h)]

    def dot(self, px: int, py: int, style: str) -> None:
        if 0 <= px < 2 * self.w and 0 <= py < 4 * self.h:
            cy, cx = py // 4, px // 2
            self.bits[cy][cx] |= _BITS[py % 4][px % 2]
            self.style[cy][cx] = style

    def line(self, x0: int, y0: int, x1: int, y1: int, style: str) -> None:
        n = max(abs(x1 - x0), abs(y1 - y0))
        for i in range(n + 1):
            t = i / n if n else 0.0
            self.dot(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t), style)

    def rows(self) -> list[Text]:
        out = []
        for bits, styles in zip(self.bits, self.style):
            row = Text()
            run, run_style = [], None
            for b, s in zip(bits, styles):        # one append per run of one style, not per cell
                s = s if b else ""
                if s != run_style and run:
                    row.append("".join(run), run_style or None)
                    run = []
                run_style = s
                run.append(chr(0x2800 + b) if b else " ")
            if run:
                row.append("".join(run), run_style or None)
            out.append(row)
        return out


class Buckets:
    """The train series bucketed per dot column: {column: [min, max, last]} of the (transformed)
    loss. Kept between redraws and fed only the points added since, while the x range, the width
    and the scale stay the same (a run's x range is its planned steps): a redraw then costs the
    columns, not the points, however long the run."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.cols: dict[int, list[float]] = {}
        self.seen = 0
        self.source: list | None = None

    def update(self, points: list[tuple[float, float]], key: tuple, x0: float, sx: float,
               log_scale: bool) -> dict[int, list[float]]:
        if key != self.key or points is not self.source or len(points) < self.seen:
            self.key, self.source, self.cols, self.seen = key, points, {}, 0
        cols = self.cols
        for x, y in points[self.seen:]:          # the hot loop: kept lean
            if not math.isfinite(y) or (log_scale and y <= 0):
                continue
            if log_scale:
                y = math.log10(y)
            cx = int((x - x0) * sx + 0.5)
            c = cols.get(cx)
            if c is None:
                cols[cx] = [y, y, y]
            else:
                if y < c[0]:
                    c[0] = y
                elif y > c[1]:
                    c[1] = y
                c[2] = y
        self.seen = len(points)
        return cols


def render_plot(train: list[tuple[float, float]], val: list[tuple[float, float]], width: int,
                height: int, *, log_scale: bool = False, x_max: float = 0,
                buckets: Buckets | None = None) -> list[Text]:
    """The plot as `height` lines of `width` cells: y labels, axes, braille curves, x labels.

    buckets: a Buckets kept by the caller between calls on a growing `train` list (None: fresh)."""
    ph, pw = height - 2, width - Y_LABEL_W - 1      # rows for the x axis and its labels
    if ph < 2 or pw < 4:
        return [Text("(too small)", style="dim")]
    if log_scale:
        va = [(x, math.log10(y)) for x, y in val if y > 0 and math.isfinite(y)]
    else:
        va = [(x, y) for x, y in val if math.isfinite(y)]
    firsts = [p[0] for p in (train[:1] + val[:1])]
    lasts = [p[0] for p in (train[-1:] + val[-1:])]
    x0 = min([0.0, *firsts])
    x1 = max([*lasts, float(x_max or 0)])
    if x1 <= x0:
        x1 = x0 + 1
    W, H = 2 * pw, 4 * ph
    sx = (W - 1) / (x1 - x0)
    cols = (buckets or Buckets()).update(train, (W, x0, x1, log_scale), x0, sx, log_scale)
    if not cols and not va:
        blank = [Text(" " * Y_LABEL_W + "│", style=AXIS_STYLE) for _ in range(ph)]
        blank[ph // 2] = blank[ph // 2] + Text("  waiting for the first loss…", style="dim")
        return blank + [Text(" " * Y_LABEL_W + "└" + "─" * pw, style=AXIS_STYLE), Text("")]
    ys = [c[0] for c in cols.values()] + [c[1] for c in cols.values()] + [y for _, y in va]
    lo_y, hi_y = min(ys), max(ys)
    pad = (hi_y - lo_y) * 0.05 or (abs(hi_y) * 0.1 or 0.5)
    y0, y1 = lo_y - pad, hi_y + pad
    if not log_scale and lo_y >= 0 and y0 < 0:
        y0 = 0.0

    def px(x):
        return round((x - x0) * sx)

    def py(y):
        return round((y1 - y) / (y1 - y0) * (H - 1))

    canvas = Canvas(pw, ph)
    # train: per dot column, the span of its points, joined to the previous column's last point
    prev = None
    for cx in sorted(cols):
        lo, hi, last = cols[cx]
        canvas.line(cx, py(lo), cx, py(hi), TRAIN_STYLE)
        if prev is not None:
            canvas.line(prev[0], prev[1], cx, py(last), TRAIN_STYLE)
        prev = (cx, py(last))
    prev = None
    for x, y in va:
        p = (px(x), py(y))
        canvas.dot(*p, VAL_STYLE)
        if prev is not None:
            canvas.line(*prev, *p, VAL_STYLE)
        prev = p

    inv = (lambda v: 10 ** v) if log_scale else (lambda v: v)
    label_rows = {0, ph - 1, (ph - 1) // 2} if ph >= 3 else {0, ph - 1}
    lines = []
    for r, row in enumerate(canvas.rows()):
        if r in label_rows:
            value = inv(y1 - (r * 4 + 1.5) / (H - 1) * (y1 - y0))
            label = Text(_tick(value)[:Y_LABEL_W].rjust(Y_LABEL_W) + "┤", style=AXIS_STYLE)
        else:
            label = Text(" " * Y_LABEL_W + "│", style=AXIS_STYLE)
        lines.append(label + row)
    axis = [" " * Y_LABEL_W + "└"] + ["─"] * pw
    labels = [" "] * (Y_LABEL_W + 1 + pw)
    for frac in (0.0, 0.5, 1.0):
        col = round(frac * (pw - 1))
        axis[1 + col] = "┬"
        value = x0 + frac * (x1 - x0)
        text = _tick(round(value) if x1 - x0 >= 10 else value)
        start = Y_LABEL_W + 1 + col - (len(text) // 2 if 0 < frac < 1 else (len(text) - 1 if frac == 1 else 0))
        start = max(0, min(start, len(labels) - len(text)))
        labels[start:start + len(text)] = list(text)
    lines.append(Text("".join(axis), style=AXIS_STYLE))
    text = "".join(labels).rstrip()
    if len(text) + 7 <= width:
        text += "   step"
    lines.append(Text(text, style=AXIS_STYLE))
    return lines


class LossPlot(Widget):
    """Train and validation loss against step."""


    log_scale: reactive[bool] = reactive(False)
    x_max: reactive[float] = reactive(0.0)

    class ScaleChanged(Message):
        """The y scale was switched (log_scale True: logarithmic)."""

        def __init__(self, log_scale: bool) -> None:
            super().__init__()
            self.log_scale = log_scale

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.train: list[tuple[float, float]] = []
        self.val: list[tuple[float, float]] = []
        self.renders = 0                     # how many times the plot was drawn (tests, benchmarks)
        self._buckets = Buckets()
        self._cache: tuple | None = None
        self._redraw = Throttle(self, fps=MAX_FPS, draw=self.refresh)

    # -- data in --------------------------------------------------------------------------------
    def add_train(self, step: float, loss: float, *, redraw: bool = True) -> None:
        """Append a point; redraw=False for a batch (call request_redraw() after it)."""
        self.train.append((float(step), float(loss)))
        if len(self.train) > MAX_POINTS:
            self.train = self.train[::2]
        if redraw:
            self.request_redraw()

    def add_val(self, step: float, loss: float) -> None:
        self.val.append((float(step), float(loss)))
        self.request_redraw()

    def clear(self) -> None:
        self.train, self.val = [], []
        self.request_redraw()

    def toggle_scale(self) -> None:
        self.log_scale = not self.log_scale

    # -- drawing --------------------------------------------------------------------------------
    def watch_log_scale(self, value: bool) -> None:
        self.post_message(self.ScaleChanged(value))
        self.request_redraw()

    def watch_x_max(self, value: float) -> None:
        self.request_redraw()

    def request_redraw(self) -> None:
        """Refresh now, or once later if the last redraw was less than 1/MAX_FPS ago."""
        self._redraw()

    def _strips(self) -> list[Strip]:
        """The plot's lines as Strips, rebuilt only when the data, the size or the scale changed
        (the Line API: Textual asks for single lines, which come from this cache)."""
        w, h = self.content_size.width, self.content_size.height
        key = (w, h, len(self.train), self.train[-1] if self.train else None, len(self.val),
               self.log_scale, self.x_max)
        if self._cache is None or self._cache[0] != key:
            self.renders += 1
            lines = render_plot(self.train, self.val, w, h - 1, log_scale=self.log_scale, x_max=self.x_max,
                                buckets=self._buckets)
            legend = Text.assemble(("━ train", TRAIN_STYLE), "  ", ("━ val", VAL_STYLE),
                                   ("   log scale" if self.log_scale else "   linear", "dim"))
            console = self.app.console
            strips = [Strip(list(line.render(console, end=""))).adjust_cell_length(w)
                      for line in [legend, *lines]]
            self._cache = (key, strips)
        return self._cache[1]

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        return strips[y] if 0 <= y < len(strips) else Strip.blank(self.content_size.width)
