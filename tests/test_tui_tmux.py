"""A real-terminal smoke test: `llm-lab` under tmux in a fresh workspace; the map paints, micrograd
opens, `e` hands the terminal to $EDITOR and comes back, q quits with status 0. Skipped where tmux is not installed."""
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


def test_llm_lab_in_a_real_terminal(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    editor = tmp_path / "editor.sh"                                 # an "editor" that saves and quits
    editor.write_text('#!/bin/sh\necho "# saved by the editor" >> "$1"\n')
    editor.chmod(0o755)
    exe = shutil.which("llm-lab")
    command = shlex.quote(exe) if exe else f"{shlex.quote(sys.executable)} -m lab"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in {
        "LLM_LAB_WORKSPACE": str(ws), "HF_HUB_OFFLINE": "1", "TERM": "xterm-256color",
        "PYTHONPATH": str(REPO), "HOME": str(tmp_path), "EDITOR": str(editor)}.items())
    script = f"cd {shlex.quote(str(ws))} && env {env} {command}; echo LAB-EXIT=$?; sleep 30"
    tmux = Tmux(f"llm-lab-test-{os.getpid()}")
    try:
        tmux("new-session", "-d", "-s", "lab", "-x", "120", "-y", "36", script)
        shown = tmux.wait_for("Mission map")
        assert "Micrograd" in shown and "suggested next" in shown
        assert (ws / ".llm-lab").is_dir() and (ws / "micrograd" / "value.py").is_file()
        tmux("send-keys", "-t", "lab", "Enter")
        tmux.wait_for("Forward: the operations")                    # the checkpoint list
        tmux.wait_for("watch off")                                  # the status line
        tmux.wait_for("backpropagation")                            # the brief
        assert "g Grade" in tmux.screen()                           # the footer
        tmux("send-keys", "-t", "lab", "e")                         # the app suspends, the editor runs
        deadline = time.monotonic() + 10
        value = ws / "micrograd" / "value.py"
        while "# saved by the editor" not in value.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "# saved by the editor" in value.read_text()
        tmux.wait_for("watch off")                                  # and the lab is back
        tmux("send-keys", "-t", "lab", "q")
        tmux.wait_for("LAB-EXIT=0")
    finally:
        tmux("kill-server", check=False)
