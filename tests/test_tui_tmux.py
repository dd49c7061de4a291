"""Real-terminal tests under tmux (skipped where tmux is not installed):
- bare `llm-lab` where there is no workspace asks before creating one; the map paints, micrograd
  opens, `e` hands the terminal to $EDITOR and comes back, `q` goes back to the map, `q` there quits;
- `llm-lab train micrograd --headless` draws its progress bar and ends `done` (exit 0).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {out.stderr}")
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "lab", check=False)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if text in shown:
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear within {timeout} s; the screen was:\n{shown}")
            time.sleep(0.1)


def _env(tmp_path: Path, **extra: str) -> str:
    env = {"HF_HUB_OFFLINE": "1", "TERM": "xterm-256color", "PYTHONPATH": str(REPO), "HOME": str(tmp_path), **extra}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def _llm_lab() -> str:
    exe = shutil.which("llm-lab")
    return shlex.quote(exe) if exe else f"{shlex.quote(sys.executable)} -m lab"


def test_llm_lab_in_a_real_terminal(tmp_path):
    ws = tmp_path / "ws"
    editor = tmp_path / "editor.sh"                                 # an "editor" that saves and quits
    editor.write_text('#!/bin/sh\necho "# saved by the editor" >> "$1"\n')
    editor.chmod(0o755)
    env = _env(tmp_path, LLM_LAB_WORKSPACE=str(ws), EDITOR=str(editor))
    script = f"cd {shlex.quote(str(tmp_path))} && env {env} {_llm_lab()}; echo LAB-EXIT=$?; sleep 30"
    tmux = Tmux(f"llm-lab-test-{os.getpid()}")
    try:
        tmux("new-session", "-d", "-s", "lab", "-x", "120", "-y", "36", script)
        shown = tmux.wait_for("[Y/n]")                              # asks before creating a workspace
        assert "No llm-lab workspace" in shown and not ws.exists()
        tmux("send-keys", "-t", "lab", "y", "Enter")
        shown = tmux.wait_for("Mission map")
        assert "Micrograd" in shown and "suggested next" in shown
        assert (ws / ".llm-lab").is_dir() and (ws / "micrograd" / "value.py").is_file()
        assert (ws / "micrograd" / "brief.md").is_file()            # the brief, beside the code
        tmux("send-keys", "-t", "lab", "Enter")
        tmux.wait_for("Forward: the operations")                    # the checkpoint list
        tmux.wait_for("watch off")                                  # the status line
        tmux.wait_for("backpropagation")                            # the brief
        assert "g Grade" in tmux.screen() and "q Back" in tmux.screen()   # the footer
        tmux("send-keys", "-t", "lab", "e")                         # the app suspends, the editor runs
        deadline = time.monotonic() + 10
        value = ws / "micrograd" / "value.py"
        while "# saved by the editor" not in value.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "# saved by the editor" in value.read_text()
        tmux.wait_for("watch off")                                  # and the lab is back
        tmux("send-keys", "-t", "lab", "q")                         # q: back to the map, not out
        tmux.wait_for("Mission map")
        assert "LAB-EXIT" not in tmux.screen()
        tmux("send-keys", "-t", "lab", "q")                         # q on the map quits
        tmux.wait_for("LAB-EXIT=0")
    finally:
        tmux("kill-server", check=False)


def test_headless_training_in_a_real_terminal(tmp_path):
    """`llm-lab train micrograd --headless` on a terminal: the rich progress bar, then `done`."""
    from engine.shared.telemetry import read_records
    from grader import workspace
    from grader.missions import get
    ws, _, _ = workspace.init(tmp_path / "ws", [get("micrograd")])
    command = f"{_llm_lab()} train micrograd --headless --impl reference --steps 3"
    script = f"cd {shlex.quote(str(ws.root))} && env {_env(tmp_path)} {command}; echo TRAIN-EXIT=$?; sleep 30"
    tmux = Tmux(f"llm-lab-train-{os.getpid()}")
    try:
        tmux("new-session", "-d", "-s", "lab", "-x", "120", "-y", "36", script)
        shown = tmux.wait_for("TRAIN-EXIT=", timeout=120)
        assert "TRAIN-EXIT=0" in shown, shown
        assert "Traceback" not in shown and "status done" in shown and "3/3" in shown
        (run,) = [p for p in ws.runs.iterdir() if p.is_dir()]
        end = list(read_records(run / "metrics.jsonl"))[-1]
        assert end["type"] == "end" and end["status"] == "done", end
    finally:
        tmux("kill-server", check=False)
