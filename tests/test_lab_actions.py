"""The lab's non-UI parts without a terminal: progress, stubs and reset, the editor, watch mode's
file snapshots, the brief, the reference view, and the grading bridge (lab.grading)."""
from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest

from grader import workspace
from grader.missions import get
from grader.workspace import display_path
from lab import brief, editor, progress, stubs, watch
from lab.grading import GradeJob, GradeSlot
from lab.messages import CheckpointGraded, GradeFinished, GradeOutput, GradeStarted

MICROGRAD = get("micrograd")


def state_with(results: dict[str, str], mission_id: str = "micrograd") -> dict:
    return {"schema_version": 1, "current_mission": None,
            "missions": {mission_id: {"checkpoints": {k: {"status": v, "message": ""} for k, v in results.items()},
                                      "hints": {}}}}


def test_progress_labels():
    empty = {"missions": {}}
    assert progress.mission_progress(MICROGRAD, empty).label == "not started"
    p = progress.mission_progress(MICROGRAD, state_with({"forward": "not_implemented"}))
    assert (p.passed, p.total, p.started, p.label) == (0, 4, True, "0 of 4 checkpoints")
    p = progress.mission_progress(MICROGRAD, state_with({"forward": "passed", "nn": "failed"}))
    assert p.label == "1 of 4 checkpoints" and not p.done
    done = state_with({c.id: "passed" for c in MICROGRAD.checkpoints})
    assert progress.mission_progress(MICROGRAD, done).label == "done"


def test_bonus_checkpoints_do_not_block_done():
    cps = list(MICROGRAD.checkpoints)
    cps[-1] = dataclasses.replace(cps[-1], bonus=True)
    mission = dataclasses.replace(MICROGRAD, checkpoints=tuple(cps))
    state = state_with({c.id: "passed" for c in cps[:-1]})
    p = progress.mission_progress(mission, state)
    assert p.done and p.total == 3 and p.bonus_total == 1 and p.label == "done · bonus 0 of 1"
    assert p.counts == "3/3 required, bonus 0/1"


def test_suggested_next_is_first_not_done_in_order():
    second = dataclasses.replace(MICROGRAD, id="second", order=2)
    done = state_with({c.id: "passed" for c in MICROGRAD.checkpoints})
    assert progress.suggested_next([MICROGRAD, second], {"missions": {}}) is MICROGRAD
    assert progress.suggested_next([MICROGRAD, second], done) is second
    done["missions"]["second"] = done["missions"]["micrograd"]
    assert progress.suggested_next([MICROGRAD, second], done) is None


def test_first_open_checkpoint_and_files():
    state = state_with({"forward": "passed"})
    assert progress.first_open_checkpoint(MICROGRAD, progress.checkpoint_records(state, "micrograd")).id == "backward"
    assert stubs.shared_files(MICROGRAD, MICROGRAD.checkpoint("forward")) == {"value.py": ["backward"]}
    assert stubs.checkpoints_for_files(MICROGRAD, ["value.py"]) == ["forward", "backward"]
    assert stubs.checkpoints_for_files(MICROGRAD, ["__init__.py"]) == []


def test_hints_shown_tolerates_junk():
    assert progress.hints_shown({"missions": {"micrograd": {"hints": {"forward": 2}}}}, "micrograd") == {"forward": 2}
    assert progress.hints_shown({"missions": {"micrograd": {"hints": {"forward": "x"}}}}, "micrograd") == {"forward": 0}
    assert progress.hints_shown({"missions": {}}, "micrograd") == {}


def test_reset_backs_up_first_and_never_overwrites_a_backup(tmp_path):
    ws, _, _ = workspace.init(tmp_path / "ws", [MICROGRAD])
    target = ws.stub_path(MICROGRAD, "value.py")
    target.write_text("MY WORK 1")
    first = stubs.reset_files(ws, MICROGRAD, ["value.py"])
    assert target.read_text() == (MICROGRAD.stubs_dir / "value.py").read_text()
    assert first.parent == ws.meta / "backups"
    assert (first / "micrograd" / "value.py").read_text() == "MY WORK 1"
    target.write_text("MY WORK 2")
    second = stubs.reset_files(ws, MICROGRAD, ["value.py"])
    assert second != first
    assert (first / "micrograd" / "value.py").read_text() == "MY WORK 1"
    assert (second / "micrograd" / "value.py").read_text() == "MY WORK 2"


def test_reset_of_a_deleted_file_restores_it_without_backup(tmp_path):
    ws, _, _ = workspace.init(tmp_path / "ws", [MICROGRAD])
    ws.stub_path(MICROGRAD, "nn.py").unlink()
    assert stubs.reset_files(ws, MICROGRAD, ["nn.py"]) is None
    assert ws.stub_path(MICROGRAD, "nn.py").is_file()
    with pytest.raises(FileNotFoundError):
        stubs.reset_files(ws, MICROGRAD, ["no_such_stub.py"])


def test_editor_command_order_and_fallbacks(monkeypatch):
    assert editor.editor_command({"VISUAL": "code -w", "EDITOR": "nano"}) == ["code", "-w"]
    assert editor.editor_command({"EDITOR": "emacs -nw"}) == ["emacs", "-nw"]
    monkeypatch.setattr(editor.shutil, "which", lambda name: "/usr/bin/vi" if name == "vi" else None)
    assert editor.editor_command({}) == ["/usr/bin/vi"]
    monkeypatch.setattr(editor.shutil, "which", lambda name: None)
    assert editor.editor_command({"EDITOR": "  "}) is None
    assert not editor.editor_available(["nano"])


def test_snapshot_sees_saves_and_ignores_pycache(tmp_path):
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "a.py").write_text("x = 1")
    before = watch.snapshot(tmp_path)
    (tmp_path / "__pycache__" / "a.cpython.py").write_text("junk")
    (tmp_path / "notes.txt").write_text("not python")
    assert watch.changed_files(before, watch.snapshot(tmp_path)) == []
    (tmp_path / "a.py").write_text("x = 22")
    (tmp_path / "b.py").write_text("")
    assert watch.changed_files(before, watch.snapshot(tmp_path)) == ["a.py", "b.py"]


def test_display_path_uses_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / "ws") == "~/ws"
    assert display_path(tmp_path.parent / "elsewhere").startswith("/")


# -- the grading bridge -------------------------------------------------------------------------
class FakeRun(SimpleNamespace):
    pass


def fake_grade(events):
    def grade(mission, ws, *, reference, checkpoints, on_event, **kwargs):
        for kind, data in events:
            on_event(kind, data)
        return FakeRun(warnings=["w1"], seed=7)
    return grade


def test_job_batches_a_flood_and_records_results(tmp_path, monkeypatch):
    ws, _, _ = workspace.init(tmp_path / "ws", [MICROGRAD])
    flood = [("log", {"line": f"\x1b[31mline {i}\x1b[0m\x07"}) for i in range(20_000)]
    events = [("begin", {"checkpoint": "forward"}), *flood,
              ("checkpoint", {"checkpoint": "forward", "status": "failed", "message": "bad \x1b[1mx\x1b[0m",
                              "duration": 0.5})]
    import grader.runner
    monkeypatch.setattr(grader.runner, "grade", fake_grade(events))
    posted = []
    done = GradeJob(MICROGRAD, ws, posted.append, checkpoints=["forward"]).run()
    assert isinstance(posted[0], GradeStarted) and posted[-1] is done
    logs = [m for m in posted if isinstance(m, GradeOutput)]
    shown = sum(len(m.lines) for m in logs)
    dropped = sum(m.dropped for m in logs)
    assert shown + dropped == 20_000 and shown <= 2_000 and len(logs) < 50     # bounded, nothing silently lost
    assert all("\x1b" not in line and "\x07" not in line for m in logs for line in m.lines)
    graded = [m for m in posted if isinstance(m, CheckpointGraded)]
    assert graded[0].status == "failed" and graded[0].message == "bad x"
    assert ws.state.read()["missions"]["micrograd"]["checkpoints"]["forward"]["status"] == "failed"
    assert done.results == {"forward": "failed"} and done.seed == 7 and "w1" in done.warnings


def test_job_reports_a_grader_failure_without_raising(tmp_path, monkeypatch):
    ws, _, _ = workspace.init(tmp_path / "ws", [MICROGRAD])

    def broken(*a, **k):
        raise OSError("cannot fork")
    import grader.runner
    monkeypatch.setattr(grader.runner, "grade", broken)
    posted = []
    done = GradeJob(MICROGRAD, ws, posted.append).run()
    assert isinstance(done, GradeFinished) and "cannot fork" in done.error and not done.cancelled


def test_job_cancel_stops_at_the_next_event(tmp_path, monkeypatch):
    ws, _, _ = workspace.init(tmp_path / "ws", [MICROGRAD])
    job = None

    def grade(mission, ws_, *, reference, checkpoints, on_event, **kwargs):
        on_event("begin", {"checkpoint": "forward"})
        job.cancel()
        on_event("checkpoint", {"checkpoint": "forward", "status": "crashed", "message": "killed"})
        raise AssertionError("not reached")
    import grader.runner
    monkeypatch.setattr(grader.runner, "grade", grade)
    posted = []
    job = GradeJob(MICROGRAD, ws, posted.append)
    done = job.run()
    assert done.cancelled and done.error is None
    assert "forward" not in ws.state.read()["missions"].get("micrograd", {}).get("checkpoints", {})


def test_slot_allows_one_grade_at_a_time(tmp_path):
    ws, _, _ = workspace.init(tmp_path / "ws", [MICROGRAD])
    slot = GradeSlot()
    a, b = GradeJob(MICROGRAD, ws, print), GradeJob(MICROGRAD, ws, print)
    assert slot.claim(a) and not slot.claim(b) and slot.busy
    a.finished.set()
    assert not slot.busy and slot.claim(b)


def test_cancel_kills_a_real_grade_quickly(tmp_path):
    """A stub stuck in an infinite loop: cancel() ends the grade in seconds, not at the time limit."""
    ws, _, _ = workspace.init(tmp_path / "ws", [MICROGRAD])
    ws.stub_path(MICROGRAD, "value.py").write_text("while True:\n    pass\n")
    posted = []
    job = GradeJob(MICROGRAD, ws, posted.append, checkpoints=["forward"])
    t = threading.Thread(target=job.run)
    t.start()
    deadline = time.monotonic() + 20
    while not any(type(m).__name__ == "CheckpointStarted" for m in posted) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    job.cancel()
    t.join(15)
    assert not t.is_alive() and time.monotonic() - started < 10
    assert posted[-1].cancelled


# -- the reference view shows only what passed checkpoints opened (issue 12 item 3) ------------------
def test_reference_view_hides_what_checkpoints_not_passed_own():
    from lab.reference_code import reference_view
    ref = (MICROGRAD.reference_dir / "value.py").read_text()
    view = reference_view(MICROGRAD, "value.py", passed={"forward"})
    # value.py is graded by forward AND backward: its operations carry their backward closures
    assert view.hidden == {"Value": ("backward",)}
    assert "self.grad += out.grad" not in view.code and "def _backward():" not in view.code
    assert "def build(v)" not in view.code and "reversed(" not in view.code  # backward() itself
    assert "hidden until you pass: Backward" in view.code
    assert "def __init__(self, data, _prev=(), _op=\"\"):" in view.code      # given code stays
    compile(view.code, "value.py", "exec")                                     # still Python
    full = reference_view(MICROGRAD, "value.py", passed={"forward", "backward"})
    assert full.hidden == {} and full.code == ref
    assert reference_view(MICROGRAD, "nn.py", passed={"nn"}).code == (MICROGRAD.reference_dir / "nn.py").read_text()
    nn = reference_view(MICROGRAD, "nn.py", passed={"forward", "backward"})
    assert set(nn.hidden) == {"Module", "Neuron", "Layer", "MLP"} and "random.uniform" not in nn.code


def test_reference_view_splits_a_shared_file_by_what_the_checks_name():
    """gpt's norm.py: LayerNorm belongs to the block checkpoint, RMSNorm to the rmsnorm bonus."""
    from grader.missions import get
    from lab.reference_code import reference_view
    gpt = get("gpt")
    view = reference_view(gpt, "norm.py", passed={"block"})
    assert list(view.hidden) == ["RMSNorm"]
    assert "class LayerNorm" in view.code and "hidden until you pass: Bonus: RMSNorm" in view.code
    compile(view.code, "norm.py", "exec")


# -- a run that ends early says why (issue 12 item 9) -----------------------------------------------
def test_a_done_run_that_stopped_before_its_steps_says_so():
    from lab.training.metrics_stream import RunSummary
    s = RunSummary()
    s.apply({"type": "start", "steps": 100})
    s.apply({"type": "step", "step": 27, "loss": 0.05})
    s.apply({"type": "end", "status": "done", "message": ""})
    assert s.ended_early() and "finished early, after 28 of 100 steps" in s.end_note()
    assert "returned by itself" in s.end_note() and "not an error" in s.end_note()
    s.apply({"type": "end", "status": "done", "message": "every point classified right"})
    assert s.end_note().startswith("every point classified right (finished early")
    full = RunSummary()
    full.apply({"type": "start", "steps": 100})
    full.apply({"type": "step", "step": 99, "loss": 0.05})
    full.apply({"type": "end", "status": "done", "message": ""})
    assert not full.ended_early() and full.end_note() == ""
