"""The reference solution of a checkpoint, read-only and syntax highlighted: only what the learner's
passes have opened (lab.reference_code decides what; the mission screen opens this after a pass)."""
from __future__ import annotations

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ..reference_code import ReferenceView


class ReferenceScreen(Screen[None]):
    CSS_PATH = "../styles/reference.tcss"
    BINDINGS = [
        Binding("q", "app.pop_screen", "Back", tooltip="Back to the mission"),
        Binding("escape", "app.pop_screen", "Back", show=False),
    ]

    def __init__(self, heading: str, views: list[tuple[str, ReferenceView]]) -> None:
        super().__init__()
        self.heading, self.views = heading, views

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="reference-body"):
            yield Static(self.heading, id="reference-heading", markup=False)
            for label, view in self.views:
                yield Static(f"{label}  (read-only)", classes="reference-file", markup=False)
                if view.error:
                    yield Static(view.error, classes="reference-error", markup=False)
                    continue
                if view.hidden:
                    names = ", ".join(view.hidden)
                    yield Static(f"Still hidden here: {names}. They open once every checkpoint that grades "
                                 f"them has passed (marked “hidden until you pass” below).",
                                 classes="reference-hidden", markup=False)
                yield Static(Syntax(view.code, "python", line_numbers=True, word_wrap=False,
                                    theme="ansi_dark", background_color="default"),
                             classes="reference-code")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "reference solution"
        self.query_one("#reference-body").focus()
