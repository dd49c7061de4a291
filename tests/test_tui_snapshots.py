"""Every screen of the lab at 120x36 and 80x24: SVG snapshots (pytest-textual-snapshot), and layout
checks that say in words what a snapshot shows (issue 12 item 8: nothing cut, covered or missing).

Deterministic by construction: micrograd (and gpt, for a mission with many checkpoints) only, HOME
set to the test's folder so the workspace reads "~/ws", a fixed state.json, and for the Train screen
a fixed metrics file, a fixed device sample and a fixed clock. Regenerate after a deliberate change
with `pytest tests/test_tui_snapshots.py --snapshot-update`, and look at every changed SVG.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.app import App

from grader.missions import get
from lab.app import LabApp
from lab.screens.confirm import ConfirmScreen
from lab.screens.help import HelpScreen
from lab.screens.mission import MissionScreen
from lab.screens.reference import ReferenceScreen
from lab.training.device_sampling import DeviceSample
from lab.training.screen import TrainScreen
from tests.tui_helpers import make_workspace, micrograd, wait_for

SIZES = [(120, 36), (80, 24)]
IDS = ["120x36", "80x24"]


def workspace_with_progress(tmp_path, monkeypatch, missions=None):
    monkeypatch.setenv("HOME", str(tmp_path))
    ws = make_workspace(tmp_path, missions)
    ws.state.record_results("micrograd", [
        SimpleNamespace(checkpoint="forward", status="passed", message=""),
        SimpleNamespace(checkpoint="backward", status="failed",
                        message="test_node_used_twice: Value.backward: (a + a).backward() gave a.grad = 1.0, "
                                "expected 2.0: looks like the gradient is assigned, not accumulated (+=)"),
    ])
    ws.state.reveal_hint("micrograd", "backward", 3)
    return ws


def lab(tmp_path, monkeypatch, missions=None) -> LabApp:
    missions = missions or [micrograd()]
    ws = workspace_with_progress(tmp_path, monkeypatch, missions)
    return LabApp(ws.root, missions=missions, errors=[])


async def open_first(pilot, app: LabApp, index: int = 0) -> MissionScreen:
    for _ in range(index):
        await pilot.press("down")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen) and app.screen.brief_loaded, 20, "the brief")
    await pilot.pause(0.2)
    return app.screen


LOG = ["── grading the whole mission ──",
       "forward · test_binary_ops: passed",
       "backward · test_node_used_twice: failed — Value.backward: (a + a).backward() gave a.grad = 1.0, expected "
       "2.0: looks like the gradient is assigned, not accumulated (+=); a node used twice must receive two "
       "contributions",
       "── 1 of 4 passed in 3.2 s, seed 7 ──"]


# -- a running Train screen, made deterministic ----------------------------------------------------
class FixedSampler:
    pid = None

    def sample(self) -> DeviceSample:
        return DeviceSample(mode="cpu", label="CPU (no NVIDIA GPU)", time=0.0, rss=310 << 20, cpu_percent=98.0,
                            cpu_count=2, ram_used=6 << 30, ram_total=24 << 30, alive=True,
                            nvml_error="NVML Shared Library Not Found")

    def close(self) -> None:
        pass


class RunningJob:
    """Stands for a run's process that is still going (the screen follows its files)."""
    running, steps, pid, run_id = True, 200, None, "20250101-000000-micrograd-mine-abcd"

    def poll(self):
        return None

    def stop(self, *a):
        pass

    def wait(self, *a):
        return None

    def finalize(self):
        return None


def running_train_app(tmp_path, monkeypatch) -> App:
    import json
    ws = workspace_with_progress(tmp_path, monkeypatch)
    run_dir = ws.runs / RunningJob.run_id
    run_dir.mkdir(parents=True)
    lines = [{"type": "start", "steps": 200, "device": "cpu", "n_params": 337, "n_layer": 2, "d_model": 16,
              "peak_flops": 4.0e11, "flops_per_token": 2022, "flops_counted": "6N + 12·L·H·Q·T"}]
    for k in range(120):
        lines.append({"type": "step", "step": k, "loss": 1.6 * 0.97 ** k + 0.05 * ((k * 7) % 5) / 5,
                      "tok_s": 120.0 + (k % 9), "mfu": 6.0e-7 + 1e-8 * (k % 9)})
        if k % 40 == 39:
            lines.append({"type": "eval", "step": k + 1, "val_loss": 1.7 * 0.97 ** k + 0.1})
    lines.append({"type": "sample", "step": 120, "text": "ROMEO: what light through yonder window breaks?"})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"v": 1, **r}) + "\n" for r in lines))
    (run_dir / "output.log").write_text("step 119: accuracy 0.93\n")
    screen = TrainScreen(micrograd(), ws, show_last_run=False, sampler=FixedSampler(), sample_interval=60)
    screen.clock = lambda: 0.0

    def start():
        screen.attach(run_dir, RunningJob())
        screen.clock = lambda: 83.0                  # 1 min 23 s into the run, whenever it is drawn

    class Host(App):
        def on_mount(self):
            self.push_screen(screen)
            self.call_after_refresh(start)
    return Host()


async def settle_train(pilot):
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TrainScreen) and pilot.app.screen.summary.step == 119,
                   10, "the run's records")
    await pilot.pause(1.2)                       # throttled redraws (2 per second) have happened


# -- snapshots: every screen at both sizes ----------------------------------------------------------
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_map(snap_compare, tmp_path, monkeypatch, size):
    assert snap_compare(lab(tmp_path, monkeypatch), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_mission(snap_compare, tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch)

    async def run_before(pilot):
        screen = await open_first(pilot, app)
        screen.query_one("#log").add_lines(LOG)
        await pilot.pause(0.2)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_mission_with_many_checkpoints(snap_compare, tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch, [micrograd(), get("gpt")])

    async def run_before(pilot):
        await open_first(pilot, app, index=1)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_full_screen_log(snap_compare, tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch)

    async def run_before(pilot):
        screen = await open_first(pilot, app)
        screen.query_one("#log").add_lines(LOG)
        await pilot.press("l")
        await pilot.pause(0.2)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_help(snap_compare, tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch)

    async def run_before(pilot):
        await open_first(pilot, app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "help")
        await pilot.pause(0.2)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_reset_confirmation(snap_compare, tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch)

    async def run_before(pilot):
        await open_first(pilot, app)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the question")
        await pilot.pause(0.2)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_reference(snap_compare, tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch)

    async def run_before(pilot):
        await open_first(pilot, app)
        await pilot.press("k", "r")                                  # forward passed; backward not yet
        await wait_for(pilot, lambda: isinstance(app.screen, ReferenceScreen), 5, "the reference")
        await pilot.pause(0.3)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_running_train_screen(snap_compare, tmp_path, monkeypatch, size):
    assert snap_compare(running_train_app(tmp_path, monkeypatch), terminal_size=size, run_before=settle_train)


# -- the same screens, checked in words -----------------------------------------------------------------
def inside(region, size) -> bool:
    return region.x >= 0 and region.y >= 0 and region.right <= size[0] and region.bottom <= size[1]


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_mission_layout(tmp_path, monkeypatch, size):
    app = lab(tmp_path, monkeypatch)
    async with app.run_test(size=size, notifications=True) as pilot:
        screen = await open_first(pilot, app)
        log, detail, brief = screen.query_one("#log"), screen.query_one("#detail"), screen.query_one("#brief-pane")
        log.add_lines(LOG)
        await pilot.pause(0.3)
        for w in (log, detail, brief):
            assert w.display and w.region.height >= 5 and inside(w.region, size), (w, w.region)
        assert not log.region.overlaps(detail.region) and not brief.region.overlaps(log.region)
        width = log.scrollable_content_region.width
        assert all(len(line.rstrip()) <= width for line in log.plain_lines)          # wrapped, not cut
        assert any("contributions" in line for line in log.plain_lines)
        screen.notify("✔ Forward: the operations: passed", title="Micrograd")
        await pilot.pause(0.5)
        toasts = list(app.screen.query("Toast"))
        assert toasts and all(not t.region.overlaps(brief.region) for t in toasts)     # toasts spare the brief
        await pilot.press("l")                                   # the log full screen: the whole body
        await pilot.pause(0.2)
        assert log.region.width == size[0] and log.region.height >= size[1] - 3
        assert any(len(line.rstrip()) > width for line in log.plain_lines)            # wrapped again, wider


async def test_many_checkpoints_leave_room_for_the_detail_and_the_brief_tables_fit(tmp_path, monkeypatch):
    from textual.widgets._markdown import MarkdownTableCellContents
    app = lab(tmp_path, monkeypatch, [micrograd(), get("gpt")])
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_first(pilot, app, index=1)
        assert screen.query_one("#detail").region.height >= 8
        cells = list(screen.query(MarkdownTableCellContents))
        assert cells
        for cell in cells:                                      # no word of a table cell is cut
            words = str(cell.render()).split() or [""]
            assert max(map(len, words)) <= cell.content_region.width, (str(cell.render()), cell.content_region)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_train_layout(tmp_path, monkeypatch, size):
    from lab.training.widgets.memory_gauges import MemoryGauges
    from lab.training.widgets.metric_card import MetricCard
    from lab.training.widgets.run_status import RunStatus
    app = running_train_app(tmp_path, monkeypatch)
    async with app.run_test(size=size) as pilot:
        await settle_train(pilot)
        screen = app.screen
        parts = {name: screen.query_one(f"#{name}") for name in
                 ("train-plot", "train-sample", "train-toks", "train-mfu", "train-memory", "train-log")}
        for name, w in parts.items():
            assert inside(w.region, size), (name, w.region)
        names = list(parts)
        for i, a in enumerate(names):                           # nothing covers anything else
            for b in names[i + 1:]:
                assert not parts[a].region.overlaps(parts[b].region), (a, b)
        memory = screen.query_one(MemoryGauges)
        shown = [line.plain for line in memory.lines()]
        assert memory.region.height >= len(shown) + 2           # every line of the panel is on screen
        assert "NVML" not in "".join(shown) and "CUDA" not in "".join(shown) and "allocator" not in "".join(shown)
        mfu = screen.query_one("#train-mfu", MetricCard)
        assert mfu.caption == "of peak 400 GFLOP/s"
        assert len(mfu.value.ljust(10) + mfu.caption) <= mfu.content_region.width      # the unit is not cut
        status = screen.query_one(RunStatus)
        assert status.state == "running" and status.render().plain.rstrip().endswith("loss " + status.loss)
