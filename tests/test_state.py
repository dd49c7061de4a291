"""Progress survives kill -9 at any moment, concurrent writers, and corrupt files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from grader.state import SCHEMA_VERSION, StateStore, _valid

WRITER = textwrap.dedent("""
    import sys, time
    from grader.state import StateStore
    store = StateStore(sys.argv[1])
    tag = sys.argv[2]
    i = 0
    while True:
        with store.update() as s:
            m = s["missions"].setdefault("m" + tag, {"checkpoints": {}, "hints": {}})
            m["checkpoints"]["c"] = {"status": "passed", "time": time.time(), "message": "x" * 5000 + str(i)}
            m["hints"]["c"] = i
        i += 1
""")


def test_kill_9_at_any_moment_leaves_valid_json(tmp_path):
    folder = tmp_path / ".llm-lab"
    for round_ in range(12):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), "0"])
        deadline = time.monotonic() + 30                   # started and writing (a busy machine starts slowly)
        while not (folder / "state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05 + 0.037 * round_)
        p.send_signal(signal.SIGKILL)
        p.wait()
        data = json.loads((folder / "state.json").read_text())
        assert _valid(data)
    assert not list(folder.glob("state.json.corrupt-*"))


def test_two_processes_do_not_lose_each_others_updates(tmp_path):
    folder = tmp_path / ".llm-lab"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), tag]) for tag in ("1", "2")]
    time.sleep(2.0)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    data = StateStore(folder).read()
    assert {"m1", "m2"} <= set(data["missions"])   # neither writer overwrote the other's mission
    assert data["missions"]["m1"]["hints"]["c"] > 0 and data["missions"]["m2"]["hints"]["c"] > 0


def test_corrupt_file_is_backed_up_and_reported(tmp_path):
    folder = tmp_path / ".llm-lab"
    folder.mkdir()
    (folder / "state.json").write_text('{"schema_version": 1, "missions": {"micro')
    store = StateStore(folder)
    assert store.read()["missions"] == {}
    backups = list(folder.glob("state.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_text().startswith('{"schema_version": 1')
    assert store.warnings and "moved to" in store.warnings[0]


def test_wrong_schema_is_treated_as_corrupt(tmp_path):
    folder = tmp_path / ".llm-lab"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"schema_version": 99, "missions": {}}))
    store = StateStore(folder)
    assert store.read()["schema_version"] == SCHEMA_VERSION
    assert store.warnings


def test_hints_are_remembered_and_capped(tmp_path):
    store = StateStore(tmp_path / ".llm-lab")
    assert [store.reveal_hint("micrograd", "forward", 2) for _ in range(3)] == [1, 2, 2]
    assert StateStore(tmp_path / ".llm-lab").read()["missions"]["micrograd"]["hints"]["forward"] == 2


def test_entries_of_the_wrong_type_are_treated_as_corrupt(tmp_path):
    folder = tmp_path / ".llm-lab"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"schema_version": 1, "current_mission": None, "missions": {
        "micrograd": {"checkpoints": {"forward": "passed"}, "hints": {"forward": "a"}}}}))
    store = StateStore(folder)
    assert store.read()["missions"] == {}
    assert store.warnings and list(folder.glob("state.json.corrupt-*"))


# -- one store per workspace (issue 10 item 6, issue 12 item 4) -----------------------------------
def test_a_workspace_has_one_store_and_a_corrupt_file_is_reported_once(tmp_path):
    from grader.workspace import Workspace
    ws = Workspace(tmp_path)
    (tmp_path / ".llm-lab").mkdir()
    (tmp_path / ".llm-lab" / "state.json").write_text("{not json")
    assert ws.state is ws.state                               # the warning is not lost on a fresh store
    assert ws.state.read()["missions"] == {}
    taken = ws.state.take_warnings()
    assert len(taken) == 1 and "state.json.corrupt-" in taken[0] and "progress starts fresh" in taken[0]
    assert ws.state.take_warnings() == []                     # shown once
    ws.state.read()
    assert ws.state.take_warnings() == []                     # the fresh file is not corrupt


# -- finding a workspace never creates one ----------------------------------------------------------
def test_resolve_never_creates_a_workspace(tmp_path, monkeypatch):
    import pytest

    from grader import workspace
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLM_LAB_WORKSPACE", str(tmp_path / "default"))
    with pytest.raises(workspace.WorkspaceNotFound, match="does not exist.*llm-lab init"):
        workspace.resolve(tmp_path / "typo")
    (tmp_path / "plain").mkdir()
    with pytest.raises(workspace.WorkspaceNotFound, match="is not an llm-lab workspace"):
        workspace.resolve(tmp_path / "plain")
    with pytest.raises(workspace.WorkspaceNotFound, match="llm-lab init"):
        workspace.resolve(None)
    assert not (tmp_path / "typo").exists() and not (tmp_path / "default").exists()
    assert not (tmp_path / "plain" / ".llm-lab").exists()
    ws, _, _ = workspace.init(tmp_path / "default", [])
    assert workspace.resolve(None).root == ws.root            # the default, once it exists
    (ws.root / "micrograd").mkdir()
    monkeypatch.chdir(ws.root / "micrograd")
    assert workspace.resolve(None).root == ws.root            # the nearest above


# -- brief.md beside the code (issue 12 item 7) ------------------------------------------------------
def _mission_copy(tmp_path):
    """micrograd, with its brief in a folder of the test's own (so that it can be 'updated')."""
    import dataclasses
    import shutil

    from grader.missions import get
    mg = get("micrograd")
    root = tmp_path / "missions" / "micrograd"
    shutil.copytree(mg.root, root)
    return dataclasses.replace(mg, root=root)


def test_the_brief_is_written_beside_the_code_read_only_and_kept_in_sync(tmp_path):
    import stat

    from grader import workspace
    mission = _mission_copy(tmp_path)
    ws, _, _ = workspace.init(tmp_path / "ws", [mission])
    brief = ws.brief_path(mission)
    text = brief.read_text()
    assert brief.parent == ws.package_dir(mission) and text.startswith("<!-- llm-lab ")
    assert text.endswith(mission.brief_path.read_text())      # the whole brief, as the lab shows it
    assert "notes.md" in text.splitlines()[0]
    assert not brief.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)   # read-only
    assert workspace.sync_briefs(ws, [mission]) == [] and brief.read_text() == text  # nothing to do

    mission.brief_path.write_text(mission.brief_path.read_text() + "\n## A new section\n")   # llm-lab updated
    assert workspace.sync_briefs(ws, [mission]) == []
    assert brief.read_text().endswith("## A new section\n")  # an unedited copy follows the update


def test_a_brief_the_learner_edited_is_never_overwritten(tmp_path):
    from grader import workspace
    mission = _mission_copy(tmp_path)
    ws, _, _ = workspace.init(tmp_path / "ws", [mission])
    brief = ws.brief_path(mission)
    brief.chmod(0o644)
    mine = brief.read_text() + "\nMY NOTE: the += matters\n"
    brief.write_text(mine)
    assert workspace.sync_briefs(ws, [mission]) == []         # no update to miss: nothing to say
    mission.brief_path.write_text(mission.brief_path.read_text() + "\n## A new section\n")
    notes = workspace.sync_briefs(ws, [mission])
    assert brief.read_text() == mine                          # kept, word for word
    assert len(notes) == 1 and "has your edits" in notes[0] and "delete it" in notes[0]
    workspace.init(tmp_path / "ws", [mission])                # init keeps it too
    assert brief.read_text() == mine
    brief.unlink()                                            # deleting it brings the current brief back
    workspace.sync_briefs(ws, [mission])
    assert brief.read_text().endswith("## A new section\n")
