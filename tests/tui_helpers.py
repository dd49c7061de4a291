"""Helpers for the lab's Textual tests: a workspace with micrograd only, and waiting on the app."""
from __future__ import annotations

import time
from pathlib import Path

from grader import workspace
from grader.missions import get


def micrograd():
    return get("micrograd")


def make_workspace(tmp_path: Path, missions=None):
    ws, _, _ = workspace.init(tmp_path / "ws", missions or [micrograd()])
    return ws


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "condition"):
    """Let the app run until `condition()` is true (or fail after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


async def wait_idle(pilot, app, timeout: float = 60.0):
    await pilot.pause(0.1)
    await wait_for(pilot, lambda: not app.grade_slot.busy, timeout, "the grade to finish")
    await pilot.pause(0.2)   # let the GradeFinished message be handled


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


def screen_text(screen) -> str:
    """All the text the screen's Static/Label widgets hold (for assertions, not for layout)."""
    from textual.widgets import Static
    parts = []
    for w in screen.query(Static):
        try:
            parts.append(str(w.render()))
        except Exception:
            pass
    return "\n".join(parts)


__all__ = ["micrograd", "make_workspace", "wait_for", "wait_idle", "notifications", "screen_text"]
