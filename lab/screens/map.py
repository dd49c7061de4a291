"""The mission map: every mission in order with its progress; the suggested next one stands out.

Picking a mission posts MissionChosen (the app opens it). Broken missions are listed with their
error and cannot be opened. The map reads state.json once; after that it holds the progress and
updates it from the results the mission screens report (`update_progress`, via the app)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, ListView, Static

from grader.missions import Mission
from grader.workspace import Workspace

from grader.workspace import display_path

from ..progress import mission_progress, suggested_next
from ..messages import MissionChosen
from ..widgets.mission_card import MissionCard


class MapScreen(Screen[None]):
    CSS_PATH = "../styles/map.tcss"
    AUTO_FOCUS = "#missions"
    BINDINGS = [
        Binding("enter", "open", "Open", tooltip="Open the highlighted mission", priority=True),
        Binding("n", "open_next", "Next mission", tooltip="Open the suggested next mission"),
        Binding("j", "cursor(1)", "Down", show=False),
        Binding("k", "cursor(-1)", "Up", show=False),
    ]

    def __init__(self, missions: list[Mission], errors: list[str], workspace: Workspace) -> None:
        super().__init__(id="map")
        self.missions, self.errors, self.workspace = missions, errors, workspace
        self.state: dict = workspace.state.read()
        self.notice = ""            # a warning that stays over the missions (set before the map shows)
        self._suggested: Mission | None = None

    def compose(self) -> ComposeResult:
        state = self.state
        self._suggested = suggested_next(self.missions, state)
        yield Header()
        with Vertical(id="map-body"):
            yield Static(Content.assemble(("Mission map", "bold"),
                                          ("   workspace ", "$text-muted"),
                                          (display_path(self.workspace.root), "$text-muted")),
                         id="map-title")
            notice = Static(self.notice, id="map-notice", markup=False)
            notice.display = bool(self.notice)
            yield notice
            cards = [MissionCard(m, mission_progress(m, state), m is self._suggested) for m in self.missions]
            start = self.missions.index(self._suggested) if self._suggested in self.missions else 0
            yield ListView(*cards, id="missions", initial_index=start if cards else None)
            if not self.missions:
                yield Static("No missions found.", id="no-missions")
            if self.errors:
                yield Static(self._errors_text(), id="broken", markup=False)
        yield Footer()

    def _errors_text(self) -> Content:
        parts: list = [("Broken missions (fix their files; the rest of the lab works):", "bold $error")]
        for e in self.errors:
            parts += ["\n", ("✘ ", "$error"), e]
        return Content.assemble(*parts)

    def update_progress(self, mission_id: str, records: dict[str, dict]) -> None:
        """New results of one mission (a grade recorded them); every card shows where it stands."""
        entry = self.state.setdefault("missions", {}).setdefault(mission_id, {"checkpoints": {}, "hints": {}})
        entry["checkpoints"] = dict(records)
        self._refresh_cards()

    def _refresh_cards(self) -> None:
        state = self.state
        self._suggested = suggested_next(self.missions, state)
        for card in self.query(MissionCard):
            card.set_progress(mission_progress(card.mission, state), card.mission is self._suggested)

    # -- actions -----------------------------------------------------------------------------
    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, MissionCard):
            self.post_message(MissionChosen(event.item.mission.id))

    def action_open(self) -> None:
        lv = self.query_one("#missions", ListView)
        if isinstance(lv.highlighted_child, MissionCard):
            self.post_message(MissionChosen(lv.highlighted_child.mission.id))

    def action_open_next(self) -> None:
        if self._suggested is None:
            self.notify("Every mission is done. Pick any to revisit it.")
            return
        self.post_message(MissionChosen(self._suggested.id))

    def action_cursor(self, step: int) -> None:
        lv = self.query_one("#missions", ListView)
        lv.action_cursor_down() if step > 0 else lv.action_cursor_up()
