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
        time.sleep(0.15 + 0.037 * round_)
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
