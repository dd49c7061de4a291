"""RunStatus: one line saying what the run is doing: state, step n/N, elapsed, loss, why it ended.

Reactives down: `state` (idle/starting/running/stopping/done/stopped/crashed/finished), `step`,
`total`, `elapsed` (seconds), `loss` (text), `message` (why it ended). One line, cut with an
ellipsis when the terminal is narrow (the run id and the whole message are in the log).
"""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..formatting import duration

STATE_STYLE = {"idle": "dim", "starting": "yellow", "running": "bold green", "stopping": "yellow",
               "done": "bold green", "stopped": "yellow", "crashed": "bold red", "finished": "dim"}
STATE_ICON = {"running": "▶", "done": "✔", "stopped": "■", "crashed": "☠", "starting": "…",
              "stopping": "…", "idle": "·"}


class RunStatus(Widget):
    state: reactive[str] = reactive("idle")
    step: reactive[int | None] = reactive(None)
    total: reactive[int | None] = reactive(None)
    elapsed: reactive[float] = reactive(0.0)
    loss: reactive[str] = reactive("")
    message: reactive[str] = reactive("")

    def render(self) -> Text:
        style = STATE_STYLE.get(self.state, "")
        out = Text.assemble((f"{STATE_ICON.get(self.state, '·')} {self.state}", style))
        if self.step is not None:
            done = min(self.step + 1, self.total) if self.total else self.step + 1
            out.append(f"  step {done}" + (f"/{self.total}" if self.total else ""))
        if self.state not in ("idle",) and self.elapsed:
            out.append(f"  {duration(self.elapsed)}", "dim")
        if self.loss:
            out.append(f"  loss {self.loss}")
        if self.message:
            out.append(f"  {self.message}", style if self.state == "crashed" else "dim")
        out.no_wrap, out.overflow = True, "ellipsis"
        return out
