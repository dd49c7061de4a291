"""The reference solution of a checkpoint, read-only and syntax highlighted (after a pass only:
the mission screen decides)."""
from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class ReferenceScreen(Screen[None]):
    CSS_PATH = "../styles/reference.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, heading: str, files: list[tuple[str, Path]]) -> None:
        super().__init__()
        self.heading, self.files = heading, files

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="reference-body"):
            yield Static(self.heading, id="reference-heading", markup=False)
            for label, path in self.files:
                yield Static(f"{label}  (read-only)", classes="reference-file", markup=False)
                try:
                    code = path.read_text(encoding="utf-8", errors="replace")
                except OSError as e:
                    yield Static(f"cannot read {path}: {e}", classes="reference-error", markup=False)
                    continue
                yield Static(Syntax(code, "python", line_numbers=True, word_wrap=False,
                                    theme="ansi_dark", background_color="default"),
                             classes="reference-code")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "reference solution"
        self.query_one("#reference-body").focus()
