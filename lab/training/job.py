"""The training job: starting, stopping and finishing a run's child process (the lab's side of
grader.train_child).

    job = TrainProcess(mission, workspace, impl="mine", steps=200)
    job.start()                 # <ws>/.llm-lab/runs/<run-id>/{metrics.jsonl, output.log}
    ...                         # tail job.metrics_path; job.poll() is None while it runs
    job.stop()                  # SIGINT to the process group, SIGKILL after the grace period
    job.kill(reason)            # SIGKILL now (llm-lab itself is going away: `reason` says why)
    job.finalize()              # after it exited: the end record (written here if the child died
                                # without one: crashed, or stopped if llm-lab ended it)

A run the lab ends itself (stop, or kill with a reason) reads `stopped` with the lab's reason, never
`crashed` with "killed by SIGKILL (out of memory...)": that one is kept for a kill from outside.

The child is a grader.sandbox.Sandbox, the same as a grading child's: `python -I -u -m
grader.train_child ...` under the keeper, in a new session (a Ctrl-C in the terminal does not reach
it; stopping it reaches everything it spawned, even what left its process group), with stdin
closed, a clean environment, a private temp folder and its output in output.log. The learner's
code runs only in that child, never in the lab. Every child still running when the lab exits is
killed (atexit), and the keeper kills the run if the lab dies without running atexit.
Not handled: reattaching to a run a previous lab process started (its curves can still be read
from its metrics.jsonl; `latest_run`).
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

from grader.missions import Mission
from grader.sandbox import Sandbox, clean_env, python_argv
from grader.workspace import Workspace

STOP_GRACE_S = 5.0
IMPLS = ("mine", "reference")
_live: set["TrainProcess"] = set()


class TrainError(RuntimeError):
    """A run cannot start (a mission without [train], a missing package); the message says why."""


def new_run_id(mission: Mission, impl: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{mission.id}-{impl}-{secrets.token_hex(2)}"


def runs_of(workspace: Workspace, mission: Mission) -> list[Path]:
    """This mission's run folders, oldest first."""
    if not workspace.runs.is_dir():
        return []
    found = [p for p in workspace.runs.iterdir() if p.is_dir() and f"-{mission.id}-" in p.name
             and (p / "metrics.jsonl").exists()]
    return sorted(found, key=lambda p: p.name)


def latest_run(workspace: Workspace, mission: Mission) -> Path | None:
    runs = runs_of(workspace, mission)
    return runs[-1] if runs else None


def end_record(metrics_path: Path) -> dict | None:
    """The run's end record, if it has one."""
    from engine.shared.telemetry import read_records   # lab/ imports engine/ lazily (import boundaries)
    try:
        ends = [r for r in read_records(metrics_path) if r["type"] == "end"]
    except OSError:
        return None
    return ends[-1] if ends else None


def append_end(metrics_path: Path, status: str, message: str) -> dict:
    """Write an end record for a child that could not (killed): after a newline if the file ends
    mid-line, so that the torn line stays a malformed line the readers skip."""
    from engine.shared.telemetry import VERSION
    record = {"v": VERSION, "type": "end", "status": status, "message": message, "time": time.time(),
              "by": "lab"}
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    with open(metrics_path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        torn = False
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        f.write((b"\n" if torn else b"") + (json.dumps(record) + "\n").encode())
    return record


def death_message(code: int | None, log_tail: str = "") -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (out of memory, or killed from outside)" if name == "SIGKILL" else ""
        return f"the training process was killed by {name}{why} before it finished"
    last = log_tail.strip().splitlines()[-1][:300] if log_tail.strip() else ""
    return f"the training process exited (code {code}) without ending its run" + (f": {last}" if last else "")


def check_options(mission: Mission, options: dict[str, str]) -> dict[str, str]:
    """The options as given, once each is one the mission's [train.options] offers (TrainError otherwise)."""
    for name, value in options.items():
        choices = mission.train.choices(name)
        if not choices:
            offered = ", ".join(f"--{n}" for n, _ in mission.train.options)
            raise TrainError(f"{mission.id}'s training has no --{name} choice"
                             + (f" (it offers {offered})" if offered else " (it offers none)"))
        if value not in choices:
            raise TrainError(f"--{name} must be one of {', '.join(choices)} for {mission.id}, not {value!r}")
    return dict(options)


class TrainProcess:
    """One training run of one mission, in a child process."""

    def __init__(self, mission: Mission, workspace: Workspace, *, impl: str = "mine",
                 steps: int | None = None, run_id: str | None = None, options: dict[str, str] | None = None):
        if mission.train is None:
            raise TrainError(f"mission {mission.id!r} has no training job "
                             f"(no [train] table in missions/{mission.id}/mission.toml)")
        if impl not in IMPLS:
            raise TrainError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.mission, self.workspace, self.impl = mission, workspace, impl
        self.steps = int(steps or mission.train.steps)
        if self.steps <= 0:
            raise TrainError(f"steps must be positive, got {self.steps}")
        self.options = check_options(mission, options or {})
        self.run_id = run_id or new_run_id(mission, impl)
        self.run_dir = workspace.runs / self.run_id
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.log_path = self.run_dir / "output.log"
        self.sandbox: Sandbox | None = None
        self.proc: subprocess.Popen | None = None
        self.stopping = False
        self.kill_reason: str | None = None     # set when the lab SIGKILLs the run on purpose
        self.started_at: float | None = None
        self._end: dict | None = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    def command(self, private_dir: str) -> list[str]:
        t = self.mission.train
        cmd = python_argv(private_dir, "grader.train_child", "--mission", self.mission.id, unbuffered=True)
        cmd += ["--impl", self.impl, "--package", self.mission.package, "--reference", self.mission.reference,
               "--entry", t.entry, "--steps", str(self.steps), "--metrics", str(self.metrics_path),
               "--run", self.run_id, "--cache-dir", str(self.workspace.meta / "cache")]
        for name, value in self.options.items():
            cmd += ["--option", f"{name}={value}"]
        if self.impl == "mine":
            cmd += ["--workspace", str(self.workspace.root)]
        return cmd

    def start(self) -> "TrainProcess":
        if self.proc is not None:
            raise TrainError("this run has already started")
        if self.impl == "mine" and not self.workspace.package_dir(self.mission).is_dir():
            raise TrainError(f"{self.mission.package}/ is missing from your workspace "
                             f"({self.workspace.root}); run `llm-lab init` to restore the stubs")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox = Sandbox(prefix="llm-lab-train-")
        with open(self.log_path, "ab") as log:
            self.proc = self.sandbox.start(self.command(self.sandbox.private_dir), stdout=log,
                                           env=clean_env(self.sandbox.private_dir), cwd=str(self.run_dir))
        self.started_at = time.monotonic()
        _live.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def wait(self, timeout: float | None = None) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Ask the run to stop (SIGINT to its group: the child writes `end stopped`); SIGKILL the
        group if it is still there after `grace` seconds. Returns at once."""
        if not self.running:
            return
        self.stopping = True
        self.sandbox.signal_group(signal.SIGINT)

        def later():
            if self.wait(grace) is None:
                self.kill()
        threading.Thread(target=later, daemon=True, name=f"stop-{self.run_id}").start()

    def kill(self, reason: str | None = None) -> None:
        """SIGKILL the run's process group now. `reason`: why the lab did it (recorded as the run's
        end, status stopped); None after a stop() that was not obeyed within the grace period."""
        if reason is not None and self.running:
            self.kill_reason = reason
        if self.sandbox is not None:
            self.sandbox.kill()

    def finalize(self) -> dict | None:
        """Once the child has exited: its end record, written here if it left none. None while
        it still runs. Also kills anything left in its process group and removes its temp folder."""
        code = self.poll()
        if code is None:
            return None
        with self._lock:
            if self._end is not None:
                return self._end
            self.sandbox.close(grace=0)  # leftovers the run spawned; its private folder
            record = end_record(self.metrics_path)
            if record is None:
                if self.kill_reason is not None:
                    record = append_end(self.metrics_path, "stopped", f"ended by llm-lab: {self.kill_reason}")
                elif self.stopping and code != -signal.SIGKILL:
                    record = append_end(self.metrics_path, "stopped", "stopped before the run could end itself")
                elif self.stopping:
                    record = append_end(self.metrics_path, "stopped",
                                        f"did not stop within {STOP_GRACE_S:g} s; killed")
                else:
                    record = append_end(self.metrics_path, "crashed", death_message(code, self.log_tail()))
            self._end = record
            _live.discard(self)
            return record

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


@atexit.register
def _kill_live() -> None:
    for job in list(_live):
        if job.running:
            job.kill("llm-lab exited while the run was going")
        job.finalize()
