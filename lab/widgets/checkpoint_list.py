"""The checkpoints of a mission with their live status: one option per checkpoint."""
from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from grader.missions import Mission

from ..progress import status_style



@dataclass
class Row:
    """What the list shows for one checkpoint."""
    status: str | None = None     # a grader status, or None (never graded)
    message: str = ""
    activity: str | None = None   # "running" | "queued" | None


class CheckpointList(OptionList):
    """Set `rows` via `set_row`/`set_rows`; highlights post OptionList.OptionHighlighted as usual."""

    def __init__(self, mission: Mission, *, id: str | None = None) -> None:
        self.mission = mission
        self.rows: dict[str, Row] = {c.id: Row() for c in mission.checkpoints}
        self.compact_rows = False
        super().__init__(*[Option(self._prompt(c.id), id=c.id) for c in mission.checkpoints], id=id)

    def set_rows(self, rows: dict[str, Row]) -> None:
        self.rows.update(rows)
        for cid in rows:
            self._refresh_row(cid)
        self.refresh(layout=True)

    def set_row(self, cid: str, **changes) -> None:
        row = self.rows.setdefault(cid, Row())
        for k, v in changes.items():
            setattr(row, k, v)
        self._refresh_row(cid)

    def set_compact(self, compact: bool) -> None:
        """One line per checkpoint (narrow terminals): the message moves to the detail pane."""
        if compact != self.compact_rows:
            self.compact_rows = compact
            for cid in self.rows:
                self._refresh_row(cid)
            self.refresh(layout=True)

    @property
    def selected_id(self) -> str | None:
        if self.highlighted is None:
            return None
        return self.get_option_at_index(self.highlighted).id

    def select_id(self, cid: str) -> None:
        try:
            self.highlighted = self.get_option_index(cid)
        except Exception:
            pass

    def _refresh_row(self, cid: str) -> None:
        try:
            self.replace_option_prompt(cid, self._prompt(cid))
        except Exception:  # an id this list does not have
            pass

    def _prompt(self, cid: str) -> Content:
        cp = self.mission.checkpoint(cid)
        row = self.rows.get(cid, Row())
        shown = row.activity or row.status
        symbol, colour, words = status_style(shown)
        head = Content.assemble((f"{symbol} ", f"bold ${colour}"), (cp.title, "bold"),
                                ("  bonus" if cp.bonus else "", "$text-muted"))
        if self.compact_rows:
            return head
        text = "" if row.activity else " ".join(row.message.split())[:300]
        # one line each (CSS text-wrap: nowrap + ellipsis); the whole message is in the detail pane
        return Content.assemble(head, "\n  ", (words, f"${colour}" if shown else "$text-muted"),
                                (f": {text}" if text else "", "$text-muted"))
