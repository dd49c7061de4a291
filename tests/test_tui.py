"""The lab's Textual app, driven headless with Pilot: navigation, grading, hints, reset, watch mode,
learner code that misbehaves, and the app process never importing torch.

Only micrograd is used (passed to LabApp explicitly), so the tests do not depend on the other
missions, which change independently."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace


from lab.app import LabApp
from lab.messages import GradeFinished
from lab.screens.confirm import ConfirmScreen
from lab.screens.help import HelpScreen
from lab.screens.map import MapScreen
from lab.screens.mission import MissionScreen
from lab.screens.reference import ReferenceScreen
from lab.widgets.checkpoint_detail import CheckpointDetail
from lab.widgets.checkpoint_list import CheckpointList
from lab.widgets.grade_log import MAX_LINES, GradeLog
from lab.widgets.mission_card import MissionCard
from tests.tui_helpers import make_workspace, micrograd, notifications, screen_text, wait_for, wait_idle

SIZE = (120, 36)
REPO = Path(__file__).resolve().parent.parent


def record(ws, **statuses):
    ws.state.record_results("micrograd", [SimpleNamespace(checkpoint=k, status=v, message=f"{k} said {v}")
                                          for k, v in statuses.items()])


def rows(app) -> dict[str, str | None]:
    return {cid: r.status for cid, r in app.screen.query_one(CheckpointList).rows.items()}


def card_status(app, mission_id: str) -> str:
    card = app.screen.query_one(f"#mission-{mission_id}", MissionCard)
    return str(card.query_one(".card-status").render())


async def open_micrograd(pilot, app):
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen), 10, "the mission screen")
    await pilot.pause(0.1)


# -- the map and navigation ---------------------------------------------------------------------
async def test_map_shows_progress_suggestion_gpu_and_broken_missions(tmp_path):
    mg = micrograd()
    gpu = dataclasses.replace(mg, id="gpu-demo", order=2, title="A mission that wants a GPU", needs="gpu")
    later = dataclasses.replace(mg, id="later", order=3, title="A later mission")
    ws = make_workspace(tmp_path)
    record(ws, forward="passed", backward="passed", nn="passed", train="passed")
    ws.state.record_results("gpu-demo", [SimpleNamespace(checkpoint="forward", status="failed", message="")])
    app = LabApp(ws.root, missions=[mg, gpu, later],
                 errors=["missions/broken/mission.toml: order: must be int, got 'x'"])
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, MapScreen)
        cards = list(app.screen.query(MissionCard))
        assert [c.mission.id for c in cards] == ["micrograd", "gpu-demo", "later"]
        assert card_status(app, "micrograd") == "done"
        assert card_status(app, "gpu-demo") == "0 of 4 checkpoints"
        assert card_status(app, "later") == "not started"
        assert [c.has_class("-next") for c in cards] == [False, True, False]   # first not done
        text = screen_text(app.screen)
        assert "GPU · also opens on CPU" in text and "suggested next" in text
        assert "broken/mission.toml: order: must be int" in text
        # the cursor starts on the suggestion; skip ahead to a later mission
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen))
        assert app.screen.mission.id == "later"
        assert ws.state.read()["current_mission"] == "later"
        await pilot.press("escape")
        assert isinstance(app.screen, MapScreen)
        await pilot.press("n")                                    # the suggested next mission
        await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen))
        assert app.screen.mission.id == "gpu-demo"                # a GPU mission opens on CPU
        await pilot.press("escape", "k", "k", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen))
        assert app.screen.mission.id == "micrograd"


async def test_help_screen_lists_every_key_and_the_palette_has_the_actions(tmp_path):
    ws = make_workspace(tmp_path)
    app = LabApp(ws.root, missions=[micrograd()], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        names = [c.title for c in app.get_system_commands(app.screen)]
        for name in ("Grade the whole mission", "Grade the selected checkpoint", "Reveal the next hint of the selected checkpoint"):
            assert name in names
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app.screen)
        for binding in MissionScreen.BINDINGS:
            assert (binding.tooltip or binding.description) in text
        assert "Quit the lab" in text and "Open the suggested next mission" in text
        await pilot.press("escape")
        assert isinstance(app.screen, MissionScreen)


# -- grading ------------------------------------------------------------------------------------
async def test_grading_the_stubs_reads_not_implemented_and_updates_the_map(tmp_path):
    # micrograd without its training checkpoint: one grader child instead of two (test time)
    mg = micrograd()
    mission = dataclasses.replace(mg, checkpoints=tuple(c for c in mg.checkpoints if c.id != "train"))
    ws = make_workspace(tmp_path)
    app = LabApp(ws.root, missions=[mission], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("g")
        assert app.grade_slot.busy
        await pilot.press("down", "up")                           # the UI answers while grading
        await wait_idle(pilot, app)
        assert set(rows(app).values()) == {"not_implemented"}
        saved = ws.state.read()["missions"]["micrograd"]["checkpoints"]
        assert {k: v["status"] for k, v in saved.items()} == dict.fromkeys(rows(app), "not_implemented")
        assert app.screen.query_one(GradeLog).written > 3
        assert "see brief.md" in app.screen.query_one(CheckpointList).rows["forward"].message
        await pilot.press("escape")
        assert card_status(app, "micrograd") == "0 of 3 checkpoints"


async def test_reference_grade_passes_notifies_and_unlocks_the_reference(tmp_path):
    ws = make_workspace(tmp_path)
    record(ws, backward="passed", nn="passed", train="passed")
    app = LabApp(ws.root, missions=[micrograd()], errors=[], reference=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        assert app.screen.selected.id == "forward"                # the first checkpoint not passed
        await pilot.press("r")                                    # not passed yet: refused
        assert isinstance(app.screen, MissionScreen)
        assert any("first" in n for n in notifications(app))
        await pilot.press("c")
        await wait_idle(pilot, app)
        assert rows(app)["forward"] == "passed"
        assert any("passed" in n for n in notifications(app))
        assert any("Mission complete" in n for n in notifications(app))
        await pilot.press("r")
        assert isinstance(app.screen, ReferenceScreen)
        assert "engine/micrograd/value.py" in screen_text(app.screen)
        code = app.screen.query_one(".reference-code").content      # a rich Syntax, read-only
        assert "class Value" in code.code and code.code == (micrograd().reference_dir / "value.py").read_text()
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, MapScreen)
        assert card_status(app, "micrograd") == "done"


async def test_learner_code_that_breaks_shows_as_a_status(tmp_path):
    """A syntax error, a flood of output and an infinite loop: statuses with messages, app alive."""
    mg = micrograd()
    cps = tuple(dataclasses.replace(c, timeout=3) if c.id == "nn" else c for c in mg.checkpoints)
    mission = dataclasses.replace(mg, checkpoints=cps)
    ws = make_workspace(tmp_path)
    pkg = ws.package_dir(mission)
    (pkg / "value.py").write_text("import sys\nfor i in range(100000):\n    print('spam', i, '\\x1b[31mred')\n"
                                  "def broken(:\n")
    nn = (mission.stubs_dir / "nn.py").read_text()
    (pkg / "nn.py").write_text(nn.replace("def __init__(self, nin, nonlin=True):",    # a loop when called
                                          "def __init__(self, nin, nonlin=True):\n        while True:\n            pass", 1))
    app = LabApp(ws.root, missions=[mission], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("c")                                    # forward: syntax error
        await wait_idle(pilot, app)
        assert rows(app)["forward"] in ("error", "failed")
        assert "syntax error" in app.screen.query_one(CheckpointList).rows["forward"].message.lower()
        (pkg / "value.py").write_text((mission.stubs_dir / "value.py").read_text()
                                      + "\nfor i in range(20000):\n    print('spam', i, '\\x1b[31mred')\n")
        await pilot.press("c")                                    # forward: a flood of output
        await wait_idle(pilot, app)
        log = app.screen.query_one(GradeLog)
        assert rows(app)["forward"] == "not_implemented", app.screen.query_one(CheckpointList).rows["forward"]
        assert len(log.lines) <= MAX_LINES
        assert not any("\x1b" in line for line in log.plain_lines)
        await pilot.press("j", "j")                               # nn: an infinite loop
        assert app.screen.selected.id == "nn"
        await pilot.press("c")
        await wait_idle(pilot, app)
        assert rows(app)["nn"] == "timeout", app.screen.query_one(CheckpointList).rows["nn"]
        assert "time limit" in app.screen.query_one(CheckpointList).rows["nn"].message
        assert app.is_running


async def test_stop_and_quit_during_a_grade_do_not_wait_for_the_time_limit(tmp_path):
    ws = make_workspace(tmp_path)
    stub = (micrograd().stubs_dir / "value.py").read_text()          # __add__ loops when called
    ws.stub_path(micrograd(), "value.py").write_text(
        stub.replace("    def __add__(self, other):\n", "    def __add__(self, other):\n        while True:\n            pass\n", 1))
    app = LabApp(ws.root, missions=[micrograd()], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query_one(CheckpointList).rows["forward"].activity == "running",
                       20, "the checkpoint to start")
        started = time.monotonic()
        await pilot.press("s")
        await wait_idle(pilot, app, timeout=15)
        assert time.monotonic() - started < 10
        assert any("stopped" in n for n in notifications(app))
        assert rows(app)["forward"] is None                       # nothing recorded for a stopped grade
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query_one(CheckpointList).rows["forward"].activity == "running",
                       20, "the checkpoint to start")
        job = app.grade_slot.job
        started = time.monotonic()
    assert job.finished.wait(10) and job.cancelled                # quitting mid-grade does not wait
    assert time.monotonic() - started < 10


# -- hints, reset, reference, edit, train -------------------------------------------------------
async def test_hints_reveal_one_at_a_time_and_are_remembered(tmp_path):
    mg = micrograd()
    ws = make_workspace(tmp_path)
    app = LabApp(ws.root, missions=[mg], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        detail = lambda: str(app.screen.query_one(CheckpointDetail).query_one("#detail-text").render())
        hints = mg.checkpoint("forward").hints
        assert hints[0] not in detail()
        await pilot.press("h")
        assert hints[0] in detail() and hints[1] not in detail()
        await pilot.press("h", "h", "h")
        assert all(h in detail() for h in hints)
        assert ws.state.read()["missions"]["micrograd"]["hints"]["forward"] == len(hints)
        assert any(f"All {len(hints)} hints" in n for n in notifications(app))
    app = LabApp(ws.root, missions=[mg], errors=[])               # a new session remembers
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        assert all(h in detail() for h in hints)


async def test_reset_asks_then_backs_up_and_restores_the_stub(tmp_path):
    mg = micrograd()
    ws = make_workspace(tmp_path)
    value = ws.stub_path(mg, "value.py")
    value.write_text("# MY WORK\n")
    app = LabApp(ws.root, missions=[mg], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        assert "also graded by: backward" in screen_text(app.screen)
        await pilot.press("n")
        assert isinstance(app.screen, MissionScreen) and value.read_text() == "# MY WORK\n"
        await pilot.press("x")
        await pilot.press("y")
        await pilot.pause(0.1)
        assert value.read_text() == (mg.stubs_dir / "value.py").read_text()
        backups = list((ws.meta / "backups").glob("*/micrograd/value.py"))
        assert len(backups) == 1 and backups[0].read_text() == "# MY WORK\n"
        assert any("backups" in n for n in notifications(app))


async def test_edit_without_an_editor_or_a_terminal_never_crashes(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path)
    app = LabApp(ws.root, missions=[micrograd()], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        monkeypatch.setenv("EDITOR", "no-such-editor-anywhere")
        monkeypatch.delenv("VISUAL", raising=False)
        await pilot.press("e")
        assert any("no-such-editor-anywhere" in n and "value.py" in n for n in notifications(app))
        monkeypatch.setenv("EDITOR", sys.executable)             # exists, but a headless app cannot suspend
        await pilot.press("e")
        assert any("Open" in n and "value.py" in n for n in notifications(app)[1:])
        assert isinstance(app.screen, MissionScreen)


async def test_train_key_without_the_panels_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lab.training.screen", None)   # the import fails
    ws = make_workspace(tmp_path)
    mg = micrograd()
    no_train = dataclasses.replace(mg, id="no-train", order=2, train=None)
    app = LabApp(ws.root, missions=[mg, no_train], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("t")
        assert any("Train screen could not load" in n for n in notifications(app))
        assert isinstance(app.screen, MissionScreen)
        await pilot.press("escape", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen))
        assert app.screen.mission.id == "no-train"
        assert app.screen.check_action("train", ()) is False      # hidden from the footer


# -- watch mode ---------------------------------------------------------------------------------
async def _watch_regrades_on_save(tmp_path, monkeypatch, *, break_file_events: bool):
    """Watch mode asks for a grade of the saved file's checkpoints (the grade itself is recorded,
    not run: grading is tested above)."""
    if break_file_events:
        import watchfiles

        async def no_events(*args, **kwargs):
            raise OSError("no inotify here")
            yield  # pragma: no cover
        monkeypatch.setattr(watchfiles, "awatch", no_events)
    requested = []
    monkeypatch.setattr(MissionScreen, "start_grade",
                        lambda self, checkpoints=None, reason="": requested.append((checkpoints, reason)) or True)
    mg = micrograd()
    ws = make_workspace(tmp_path)
    # a slow poll when file events are expected, so that only they can fire within the wait below
    app = LabApp(ws.root, missions=[mg], errors=[], watch_poll=0.3 if break_file_events else 30)
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("w")
        assert app.screen.watching
        await pilot.pause(0.6)
        assert requested == []                                      # nothing changed yet
        nn = ws.stub_path(mg, "nn.py")
        nn.write_text(nn.read_text() + "\n# saved\n")
        await wait_for(pilot, lambda: requested, 10, "watch mode to ask for a grade")
        await pilot.pause(0.6)
        assert requested == [(["nn"], "saved nn.py")]              # once, for the saved file's checkpoint
        value = ws.stub_path(mg, "value.py")
        value.write_text(value.read_text() + "\n# saved\n")
        await wait_for(pilot, lambda: len(requested) == 2, 10, "a second grade")
        assert requested[1] == (["forward", "backward"], "saved value.py")
        await pilot.press("w")
        assert not app.screen.watching
        nn.write_text(nn.read_text() + "\n# again\n")
        await pilot.pause(0.8)
        assert len(requested) == 2                                  # watch off: no grade


async def test_watch_mode_ignores_saves_while_a_grade_runs(tmp_path, monkeypatch):
    requested = []
    monkeypatch.setattr(MissionScreen, "start_grade",
                        lambda self, checkpoints=None, reason="": requested.append(checkpoints) or True)
    mg = micrograd()
    ws = make_workspace(tmp_path)
    app = LabApp(ws.root, missions=[mg], errors=[], watch_poll=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("w")
        busy = SimpleNamespace(finished=SimpleNamespace(is_set=lambda: False), mission=mg)
        app.grade_slot.job = busy                                   # a grade (of any mission) is running
        nn = ws.stub_path(mg, "nn.py")
        nn.write_text(nn.read_text() + "\n# saved\n")
        await pilot.pause(0.8)
        assert requested == []
        value = ws.stub_path(mg, "value.py")
        value.write_text(value.read_text() + "\n# saved too\n")
        await pilot.pause(0.8)
        assert requested == []
        app.grade_slot.job = None                                   # it ended: the saves are graded now,
        app.post_message(GradeFinished("another-mission", {}))      # in one grade
        await wait_for(pilot, lambda: requested, 5, "the saves to be picked up")
        await pilot.pause(0.5)
        assert requested == [["forward", "backward", "nn"]]


async def test_watch_mode_regrades_on_save(tmp_path, monkeypatch):
    await _watch_regrades_on_save(tmp_path, monkeypatch, break_file_events=False)


async def test_watch_mode_falls_back_to_polling(tmp_path, monkeypatch):
    await _watch_regrades_on_save(tmp_path, monkeypatch, break_file_events=True)


# -- the app process never imports torch --------------------------------------------------------
NO_TORCH = textwrap.dedent("""
    import asyncio, json, sys, time
    from pathlib import Path
    from grader.missions import get
    from lab.app import LabApp

    async def main(root):
        app = LabApp(Path(root), missions=[get("micrograd")], errors=[])
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("enter")
            await pilot.pause(0.3)
            await pilot.press("c")
            await pilot.pause(0.3)
            deadline = time.monotonic() + 60
            while app.grade_slot.busy and time.monotonic() < deadline:
                await pilot.pause(0.1)
            await pilot.pause(0.3)
            status = app.screen.query_one("CheckpointList").rows["forward"].status
        return status

    status = asyncio.run(main(sys.argv[1]))
    print(json.dumps({"status": status, "torch": "torch" in sys.modules,
                      "numpy": "numpy" in sys.modules}))
""")


def test_the_app_never_imports_torch(tmp_path):
    """Started and graded (torch runs in the grader's child only), in a fresh interpreter."""
    ws = make_workspace(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", NO_TORCH, str(ws.root)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "not_implemented"                   # it really graded
    assert result["torch"] is False


# -- issue 12: keys, focus, the reference view, a corrupt progress file ---------------------------------
async def test_q_goes_back_from_a_mission_and_quits_only_from_the_map(tmp_path):
    ws = make_workspace(tmp_path)
    record(ws, forward="passed")
    app = LabApp(ws.root, missions=[micrograd()], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("q")
        assert isinstance(app.screen, MapScreen) and app.is_running
        await open_micrograd(pilot, app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        assert isinstance(app.screen, MissionScreen) and app.is_running
        await pilot.press("k", "r")                               # forward passed: its reference opens
        await wait_for(pilot, lambda: isinstance(app.screen, ReferenceScreen), 5, "the reference")
        await pilot.press("q")
        assert isinstance(app.screen, MissionScreen)
        await pilot.press("q")
        assert isinstance(app.screen, MapScreen)
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.return_code == 0


async def test_the_brief_has_the_focus_so_pagedown_scrolls_it(tmp_path):
    ws = make_workspace(tmp_path)
    app = LabApp(ws.root, missions=[micrograd()], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await wait_for(pilot, lambda: app.screen.brief_loaded, 20, "the brief")
        pane = app.screen.query_one("#brief-pane")
        assert app.focused is pane
        await pilot.press("pagedown")
        await pilot.pause(0.2)
        assert pane.scroll_y > 0
        await pilot.press("j")                                    # j/k still move between checkpoints
        assert app.screen.selected.id == "backward"


async def test_the_reference_view_shows_only_what_passed_checkpoints_opened(tmp_path):
    ws = make_workspace(tmp_path)
    record(ws, forward="passed")
    app = LabApp(ws.root, missions=[micrograd()], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        await pilot.press("k")                                    # forward (the cursor starts on backward)
        assert app.screen.selected.id == "forward"
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ReferenceScreen), 5, "the reference")
        code = app.screen.query_one(".reference-code").content.code
        assert "hidden until you pass: Backward" in code and "def _backward():" not in code
        assert "Still hidden here: Value" in screen_text(app.screen)


async def test_a_corrupt_progress_file_is_shown_in_the_lab(tmp_path):
    ws = make_workspace(tmp_path)
    record(ws, forward="passed")
    ws.state.path.write_text("{ this is not json")
    edited = "~/ws/micrograd/brief.md has your edits, so llm-lab did not update it"   # from `llm-lab`
    app = LabApp(ws.root, missions=[micrograd()], errors=[], notices=[edited])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert any("not a valid progress file" in n for n in notifications(app))
        notice = app.screen.query_one("#map-notice")
        assert notice.display and "progress starts fresh" in str(notice.render())
        assert edited in str(notice.render())
        assert card_status(app, "micrograd") == "not started"


async def test_a_new_result_reaches_the_map_without_reading_state_json_again(tmp_path, monkeypatch):
    """The mission screen reports what it records; the map updates from the message."""
    from lab.messages import CheckpointGraded
    ws = make_workspace(tmp_path)
    app = LabApp(ws.root, missions=[micrograd()], errors=[])
    async with app.run_test(size=SIZE) as pilot:
        await open_micrograd(pilot, app)
        reads = []
        monkeypatch.setattr(type(ws.state), "read", lambda self: reads.append(1) or {"missions": {}})
        app.screen.post_message(CheckpointGraded("micrograd", "forward", "passed", ""))
        await pilot.pause(0.2)
        await pilot.press("escape")
        assert card_status(app, "micrograd") == "1 of 4 checkpoints"
        assert reads == []
