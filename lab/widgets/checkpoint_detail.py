"""The selected checkpoint in full: status, the grader's whole message, its files and the hints
revealed so far."""
from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from grader.missions import Checkpoint

from ..progress import status_style


class CheckpointDetail(VerticalScroll):
    """Call `show(...)` with what to display (attributes down)."""

    def compose(self):
        yield Static("", id="detail-text")

    def show(self, checkpoint: Checkpoint, status: str | None, message: str, hints_shown: int,
             package: str, can_read_reference: bool, brief: str = "brief.md") -> None:
        symbol, colour, words = status_style(status)
        parts: list = [(f"{symbol} {words}", f"bold ${colour}")]
        if message:
            parts += ["\n", (message.strip(), "$foreground")]
        if checkpoint.files:
            files = ", ".join(f"{package}/{f}" for f in checkpoint.files)
            parts += ["\n", ("files: ", "$text-muted"), files]
        parts += ["\n", ("brief: ", "$text-muted"), f"{package}/{brief}"]
        total = len(checkpoint.hints)
        for i, hint in enumerate(checkpoint.hints[:hints_shown], 1):
            parts += ["\n", (f"hint {i}/{total}: ", "bold $warning"), hint]
        if total == 0:
            parts += ["\n", ("no hints for this checkpoint", "$text-muted")]
        elif hints_shown < total:
            parts += ["\n", (f"h: hint {hints_shown + 1} of {total}", "$text-muted")]
        if can_read_reference:
            parts += ["\n", ("r: read the reference solution", "$text-muted")]
        self.query_one("#detail-text", Static).update(Content.assemble(*parts))
