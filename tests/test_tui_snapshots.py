"""SVG snapshots of the map and the mission screen at 120x36 and 80x24 (pytest-textual-snapshot).

Deterministic by construction: micrograd only (other missions change independently), HOME set to
the test's folder so the workspace reads "~/ws", and a fixed state.json. Regenerate after a
deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update` and review the diff.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from lab.app import LabApp
from lab.screens.mission import MissionScreen
from tests.tui_helpers import make_workspace, micrograd, wait_for

SIZES = [(120, 36), (80, 24)]
IDS = ["120x36", "80x24"]


def lab(tmp_path, monkeypatch, *, progress: bool) -> LabApp:
    monkeypatch.setenv("HOME", str(tmp_path))
    ws = make_workspace(tmp_path)
    if progress:
        ws.state.record_results("micrograd", [
            SimpleNamespace(checkpoint="forward", status="passed", message=""),
            SimpleNamespace(checkpoint="backward", status="failed",
                            message="test_node_used_twice: Value.backward: (a + a).backward() gave a.grad = 1.0, "
                                    "expected 2.0: looks like the gradient is assigned, not accumulated (+=)"),
        ])
        ws.state.reveal_hint("micrograd", "backward", 3)
    return LabApp(ws.root, missions=[micrograd()], errors=[])


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_map(snap_compare, tmp_path, monkeypatch, size):
    assert snap_compare(lab(tmp_path, monkeypatch, progress=True), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_mission(snap_compare, tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch, progress=True)

    async def open_mission(pilot):
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen) and app.screen.brief_loaded,
                       20, "the brief")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=open_mission)
