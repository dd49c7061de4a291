"""How fast the lab starts: import time of the lab package and launch-to-first-paint of the map.

    python benchmarks/startup.py [--runs N]

Figures (median of N runs, each in a fresh interpreter, on a fresh temp workspace):
- import: `import lab.app` (wall time minus a bare interpreter's start, and `-X importtime`'s
  cumulative figure for lab.app);
- first paint, headless: process start to the map's first refresh (Textual's headless driver);
- first paint, terminal: `llm-lab` under tmux (120x36) until "Mission map" shows on the pane
  (includes tmux's own redraw; polled every 10 ms); skipped without tmux.
- open a mission: key press to the mission screen's checkpoint list on the pane (tmux).
- with --cold: the first launch as a learner meets it (tmux), from a copy of this checkout with no
  bytecode (what an editable install gives: every module of lab/, grader/ and engine/ compiles on
  first use), and from a wheel installed into a fresh venv (pip compiles at install time; what the
  README's start command gives).
Goal: first paint within 0.5 s. Prints the figures; not part of the test run.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL = 0.5

HEADLESS = r"""
import sys
from pathlib import Path
from lab.app import LabApp
from lab.screens.map import MapScreen

resume = getattr(MapScreen, "on_screen_resume", None)

def on_screen_resume(self):
    if resume is not None:
        resume(self)
    def painted():
        print("PAINTED", flush=True)
        self.app.exit()
    self.call_after_refresh(painted)

MapScreen.on_screen_resume = on_screen_resume
LabApp(Path(sys.argv[1])).run(headless=True)
"""


def fresh_workspace() -> Path:
    from grader import workspace
    root = Path(tempfile.mkdtemp(prefix="llm-lab-bench-")) / "ws"
    workspace.init(root)
    return root


def timed(cmd: list[str], marker: str | None = None) -> float:
    """Seconds from spawning `cmd` until `marker` appears on its stdout (or until it exits)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
    if marker is None:
        proc.wait()
        return time.perf_counter() - start
    for line in proc.stdout:
        if marker in line:
            elapsed = time.perf_counter() - start
            break
    else:
        raise RuntimeError(f"{marker!r} never appeared (exit {proc.wait()})")
    proc.wait(timeout=20)
    return elapsed


def import_times(runs: int) -> tuple[float, float]:
    bare = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(runs))
    wall = statistics.median(timed([sys.executable, "-c", "import lab.app"]) for _ in range(runs))
    cumulative = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import lab.app"], cwd=REPO,
                             capture_output=True, text=True)
        m = re.search(r"\|\s*(\d+)\s*\|\s*lab\.app$", out.stderr, re.M)
        if m:
            cumulative.append(int(m.group(1)) / 1e6)
    return wall - bare, statistics.median(cumulative) if cumulative else float("nan")


def headless_paint(runs: int, root: Path) -> float:
    return statistics.median(timed([sys.executable, "-c", HEADLESS, str(root)], "PAINTED") for _ in range(runs))


def tmux_times(runs: int, root: Path, command: str | None = None, env: str = "") -> tuple[float, float] | None:
    if shutil.which("tmux") is None:
        return None
    exe = shutil.which("llm-lab")
    command = command or (shlex.quote(exe) if exe else f"{shlex.quote(sys.executable)} -m lab")
    socket = ""

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True).stdout

    def wait(text: str, since: float, timeout: float = 20) -> float:
        while text not in tmux("capture-pane", "-p", "-t", "b"):
            if time.perf_counter() - since > timeout:
                raise RuntimeError(f"{text!r} never appeared under tmux:\n" + tmux("capture-pane", "-p", "-t", "b"))
            time.sleep(0.01)
        return time.perf_counter() - since

    paints, opens = [], []
    for i in range(runs):
        socket = f"llm-lab-bench-{os.getpid()}-{i}"    # a server of its own per run
        try:
            script = (f"cd {shlex.quote(str(root))} && env LLM_LAB_WORKSPACE={shlex.quote(str(root))} "
                      f"HF_HUB_OFFLINE=1 {env} {command}; sleep 10")
            start = time.perf_counter()
            tmux("new-session", "-d", "-s", "b", "-x", "120", "-y", "36", script)
            paints.append(wait("Mission map", start))
            time.sleep(1.5)                       # a learner reads the map first
            start = time.perf_counter()
            tmux("send-keys", "-t", "b", "Enter")
            opens.append(wait("watch off", start))
        finally:
            tmux("kill-server")
    return statistics.median(paints), statistics.median(opens)


def cold_times(root: Path) -> tuple[float, float] | None:
    """First launch (tmux) from a bytecode-free copy of the checkout, and from an installed wheel."""
    if shutil.which("tmux") is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="llm-lab-cold-"))
    try:
        src = tmp / "src"
        shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "build", "dist",
                                                                 "*.egg-info", "tests", ".pytest_cache"))
        editable = tmux_times(1, root, f"{shlex.quote(sys.executable)} -m lab", env=f"PYTHONPATH={shlex.quote(str(src))}")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp / "wheels"), str(src)], check=True, capture_output=True)
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
        wheel = next((tmp / "wheels").glob("llm_lab-*.whl"))
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                       check=True, capture_output=True)
        installed = tmux_times(1, root, shlex.quote(str(venv / "bin" / "llm-lab")))
        return editable[0], installed[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cold", action="store_true", help="also time the first launch without bytecode, and installed")
    args = p.parse_args()
    root = fresh_workspace()
    wall, cumulative = import_times(args.runs)
    print(f"import lab.app            {wall * 1000:7.0f} ms wall over a bare interpreter "
          f"({cumulative * 1000:.0f} ms by -X importtime)")
    paint = headless_paint(args.runs, root)
    print(f"first paint (headless)    {paint * 1000:7.0f} ms from process start   "
          f"{'OK' if paint <= GOAL else 'OVER'} (goal {GOAL * 1000:.0f} ms)")
    real = tmux_times(args.runs, root)
    if real is None:
        print("first paint (terminal)    skipped: tmux is not installed")
    else:
        print(f"first paint (tmux 120x36) {real[0] * 1000:7.0f} ms from launch to the map on the pane   "
              f"{'OK' if real[0] <= GOAL else 'OVER'} (goal {GOAL * 1000:.0f} ms)")
        print(f"open a mission (tmux)     {real[1] * 1000:7.0f} ms from Enter to its checkpoint list")
    if args.cold:
        cold = cold_times(root)
        if cold is not None:
            print(f"first launch, no bytecode {cold[0] * 1000:7.0f} ms (a checkout run as an editable install)")
            print(f"first launch, installed   {cold[1] * 1000:7.0f} ms (a wheel installed like the README says)")
    print(f"(median of {args.runs} runs; python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
