"""Every key of the lab, by screen (built from the screens' own bindings, so it never drifts)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

Section = tuple[str, list[tuple[str, str]]]   # (title, [(key, what it does)])


class HelpScreen(ModalScreen[None]):
    AUTO_FOCUS = "#help-body"
    CSS_PATH = "../styles/modal.tcss"
    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def __init__(self, sections: list[Section]) -> None:
        super().__init__(classes="modal")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static("Keys", id="dialog-title")
            with VerticalScroll(id="help-body"):
                for title, keys in self.sections:
                    yield Static(Content.assemble((title, "bold $accent")), classes="help-section")
                    for key, what in keys:
                        yield Static(Content.assemble((f"{key:>10}", "bold $primary"), "  ", what),
                                     classes="help-key")
            yield Static("escape closes · ctrl+p: command palette (every action by name)", id="help-foot")

    def action_close(self) -> None:
        self.dismiss(None)
