"""Grade a mission: its hidden checks run in sandboxed children, one result per checkpoint.

    mission data -> a sandboxed child (grader.sandbox) running grader.child -> records on the results
    channel (grader.channel) -> CheckpointResult / GradeRun (grader.results) -> reports (grader.report)

Time limits, all enforced here: the child has STARTUP_LIMIT to start; in learner mode its package
must import within IMPORT_LIMIT (else every checkpoint still to grade reads `timeout` at once); each
checkpoint has its own limit; and the child as a whole has the sum of them, which no record extends.
On a timeout the child and every descendant are killed; a child that dies without its end marker
leaves the checkpoint it was in `crashed` (or `oom`, `timeout` from the signal), and a fresh child
grades the checkpoints still to come. See docs/architecture.md for the process model.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import asdict
from typing import Callable

from . import tamper
from .channel import Channel
from .missions import Checkpoint, Mission
from .results import STATUSES, CheckpointResult, GradeRun, aggregate, short_name
from .sandbox import MEMORY_BUDGET, LogDrain, Sandbox, clean_env, death_reason, has_gpu, python_argv
from .state import LAST_WRITTEN, StateLocked
from .workspace import Workspace

STARTUP_LIMIT = 90.0   # seconds for a child to start (imports) before it imports learner code
IMPORT_LIMIT = 30.0    # seconds for the learner's package to import (scaled like checkpoint limits)
TAMPERED = ("the grader's check files were modified while grading (by code under test?); they were "
            "restored — grade again")

Event = Callable[[str, dict], None]   # on_event(kind, data): "log", "begin", "result", "checkpoint"


def grade(mission: Mission, workspace: Workspace | None, *, reference: bool = False,
          checkpoints: list[str] | None = None, seed: int | None = None,
          on_event: Event | None = None, timeout_scale: float = 1.0, parallel: int | None = None,
          cancel: threading.Event | None = None) -> GradeRun:
    """Grade `mission` (the learner's files in `workspace`, or the engine with reference=True).

    Setting `cancel` stops the grade within half a second: the children are killed, and the run
    returned holds only the checkpoints that had finished."""
    selected = [mission.checkpoint(c) for c in checkpoints] if checkpoints else list(mission.checkpoints)
    g = _Grade(mission, workspace, reference=reference,
               seed=seed if seed is not None else secrets.randbelow(2**31),
               on_event=on_event, timeout_scale=timeout_scale, cancel=cancel)
    groups = _split(selected, parallel if parallel is not None else min(2, os.cpu_count() or 1))
    threads = max(1, (os.cpu_count() or 1) // len(groups))   # torch threads per child: no oversubscription
    workers = [threading.Thread(target=g.run_group, args=(grp, threads), daemon=True) for grp in groups[1:]]
    for w in workers:
        w.start()
    g.run_group(groups[0], threads)
    for w in workers:
        w.join()
    return g.finish(selected)


def _split(selected: list[Checkpoint], parallel: int) -> list[list[Checkpoint]]:
    """With two or more cores, the slowest checkpoint (largest time limit, e.g. a training run) gets
    a child of its own, running beside the others; otherwise one child grades them all in order."""
    if parallel < 2 or len(selected) < 2:
        return [list(selected)]
    slowest = max(selected, key=lambda cp: cp.timeout)
    if slowest.timeout <= 60:
        return [list(selected)]
    return [[cp for cp in selected if cp is not slowest], [slowest]]


class _Grade:
    """The state of one grade shared by its children: results, warnings, logs, tamper watch."""

    def __init__(self, mission, workspace, *, reference, seed, on_event, timeout_scale, cancel):
        self.mission, self.workspace, self.reference, self.seed = mission, workspace, reference, seed
        self.timeout_scale, self.cancel = timeout_scale, cancel
        self.outer_emit = on_event or (lambda kind, data: None)
        self.started = time.monotonic()
        self.results: dict[str, CheckpointResult] = {}
        self.warnings: list[str] = []
        self.logs: list[str] = []
        self.lock = threading.Lock()
        self.checks_before = tamper.snapshot(mission.checks_dir.glob("*.py"))
        self.roots = tamper.install_roots(mission.root, mission.reference_dir)
        self.install_before = tamper.fingerprint(self.roots)
        self.state_path = workspace.state.path if workspace is not None else None
        self.state_before = tamper.snapshot([self.state_path]) if self.state_path else {}
        self.written_at_start = LAST_WRITTEN.get(str(self.state_path)) if self.state_path else None
        self.checks_tampered = False

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    # -- results leave through here ---------------------------------------------------------------
    def emit(self, kind: str, data: dict) -> None:
        self.outer_emit(kind, data)

    def finish_checkpoint(self, cp: Checkpoint, status: str, message: str, begun_at: float,
                          tests: list[dict]) -> None:
        """Record a checkpoint's result; before it leaves the grader (the lab saves results as they
        arrive), make sure the run that produced it did not rewrite the checks or the progress file."""
        if self.verify():
            status, message = "error", TAMPERED
        r = CheckpointResult(mission=self.mission.id, checkpoint=cp.id, title=cp.title, status=status,
                             message=message, duration=round(time.monotonic() - begun_at, 3), tests=tests,
                             bonus=cp.bonus)
        with self.lock:
            self.results[cp.id] = r
        self.emit("checkpoint", asdict(r))

    def verify(self) -> bool:
        """Undo what code under test did to the hidden checks or state.json; True if the checks changed."""
        with self.lock:
            if tamper.restore(self.checks_before, also_new_in=self.mission.checks_dir):
                self.checks_tampered = True
                self.warnings.append("the check files were modified during grading; they were restored")
            if self.state_path is not None:
                self._restore_state()
            return self.checks_tampered

    def _restore_state(self, timeout: float = 2.0) -> None:
        try:
            with self.workspace.state.locked(timeout):
                # the last legitimate content: what this process (the lab) saved during the grade,
                # else what was there before it began
                ours = LAST_WRITTEN.get(str(self.state_path))
                target = ours if ours is not None and ours != self.written_at_start \
                    else self.state_before[self.state_path]
                if tamper.restore({self.state_path: target}):
                    self.warnings.append("state.json was modified during grading (by code under test?); "
                                         "it was restored")
        except StateLocked:   # checked again when the grade ends and its processes are gone
            self.warnings.append("state.json's lock was held by another process during grading (a "
                                 "process your code started?)")

    # -- children -----------------------------------------------------------------------------------
    def run_group(self, group: list[Checkpoint], threads: int) -> None:
        remaining = list(group)
        while remaining and not self.cancelled():
            _Child(self, remaining, threads).run()
            remaining = [cp for cp in remaining if cp.id not in self.results]

    def finish(self, selected: list[Checkpoint]) -> GradeRun:
        if self.verify():  # the hidden checks were rewritten while they ran: trust no result of this run
            for r in self.results.values():
                r.status, r.message = "error", TAMPERED
        problems, planted = tamper.check_install(self.install_before, self.roots)
        self.warnings.extend(problems)
        if planted:   # code the grader or the next grade runs was replaced: no verdict stands
            for r in self.results.values():
                r.status, r.message = "error", f"the install was modified during grading: {problems[0]}"
        for cp in selected:  # never let a checkpoint vanish from the verdict
            if cp.id not in self.results and not self.cancelled():
                self.results[cp.id] = CheckpointResult(
                    mission=self.mission.id, checkpoint=cp.id, title=cp.title, status="error",
                    message="the grader could not run this checkpoint (see the log)", bonus=cp.bonus)
        return GradeRun(mission=self.mission.id, mode="reference" if self.reference else "learner",
                        seed=self.seed, results=[self.results[cp.id] for cp in selected if cp.id in self.results],
                        duration=round(time.monotonic() - self.started, 3), log="\n".join(self.logs),
                        warnings=list(dict.fromkeys(self.warnings)))


class _Child:
    """One grading child for `todo` (in order): start it, follow its records, blame its death."""

    def __init__(self, grade: _Grade, todo: list[Checkpoint], threads: int):
        self.g, self.todo, self.threads = grade, todo, threads
        self.by_id = {cp.id: cp for cp in todo}
        self.current: Checkpoint | None = None
        self.phase = "startup"          # startup -> import -> checks
        self.tests: dict[str, list[dict]] = {}
        self.expected: dict[str, int] = {}
        self.begun_at = time.monotonic()
        scale = grade.timeout_scale
        self.deadline = time.monotonic() + STARTUP_LIMIT
        self.hard_deadline = time.monotonic() + STARTUP_LIMIT + IMPORT_LIMIT * scale \
            + sum(cp.timeout for cp in todo) * scale
        self.ended = False
        self.killed_for: str | None = None

    def config(self, sandbox: Sandbox, nonce: str, write_fd: int) -> dict:
        g, m = self.g, self.g.mission
        total = sum(cp.timeout for cp in self.todo) * g.timeout_scale
        files = sorted({f for cp in self.todo for f in cp.files})
        return {
            "nonce": nonce, "result_fd": write_fd, "seed": g.seed, "private_dir": sandbox.private_dir,
            "mode": "reference" if g.reference else "learner", "package": m.package,
            "reference": m.reference, "reference_dir": str(m.reference_dir),
            "workspace": str(g.workspace.root) if g.workspace is not None else None,
            "checks_dir": str(m.checks_dir), "forbid": list(m.forbid),
            "forbid_messages": {lib: m.forbid_reason for lib in m.forbid if m.forbid_reason},
            "preload": _preload(m), "import_first": [f.removesuffix(".py") for f in files],
            "all_forbid_calls": sorted({p for cp in self.todo for p in cp.forbid_calls}),
            "limits": {"fsize": 256 << 20, "nofile": 1024,
                       "cpu": int((total * 2 + 60) * max(1, self.threads)),
                       "memory": 0 if has_gpu() else MEMORY_BUDGET},
            "checkpoints": [{"id": cp.id, "forbid_calls": list(cp.forbid_calls),
                             "nodeids": [str(m.checks_dir / n) for n in cp.checks]} for cp in self.todo],
        }

    def run(self) -> None:
        sandbox = Sandbox(prefix="llm-lab-grade-")
        read_fd, write_fd = os.pipe()
        nonce = secrets.token_hex(16)
        config_path = os.path.join(sandbox.private_dir, "config.json")
        with open(config_path, "w") as f:
            json.dump(self.config(sandbox, nonce, write_fd), f)
        channel = Channel(read_fd, nonce)
        try:
            proc = sandbox.start(python_argv(sandbox.private_dir, "grader.child", config_path),
                                 env=clean_env(sandbox.private_dir, self.threads), pass_fds=(write_fd,))
        except OSError as e:
            channel.close()
            sandbox.close(grace=0)
            self.g.warnings.append(f"could not start the grading process: {e}")
            self.g.finish_checkpoint(self.todo[0], "error", f"could not start the grading process: {e}",
                                     time.monotonic(), [])
            return
        finally:
            os.close(write_fd)
        drain = LogDrain(proc.stdout, lambda line: self.g.emit("log", {"line": line}))
        drain.start()
        try:
            self.follow(channel, sandbox)
        finally:
            channel.close()
            sandbox.close()
            drain.join(timeout=2)
            with self.g.lock:
                self.g.logs.append(drain.text())
                self.g.warnings.extend(channel.warnings())
        if not self.ended and self.killed_for != "cancel":
            self.blame(proc.returncode, drain.text())

    def follow(self, channel: Channel, sandbox: Sandbox) -> None:
        while not self.ended:
            now = time.monotonic()
            if self.g.cancelled():
                self.killed_for = "cancel"
            elif now >= min(self.deadline, self.hard_deadline):
                self.killed_for = "timeout"
            if self.killed_for:
                sandbox.kill()
                return
            records = channel.read(min(0.5, min(self.deadline, self.hard_deadline) - now))
            if records is None:
                return   # the pipe closed: the child exited (or closed it)
            for record in records:
                self.handle(record)

    def handle(self, record: dict) -> None:
        kind, cid = record.get("type"), record.get("checkpoint")
        scale = self.g.timeout_scale
        if kind == "import_begin" and self.phase == "startup":
            self.phase, self.deadline = "import", time.monotonic() + IMPORT_LIMIT * scale
        elif kind == "begin" and cid in self.by_id and cid not in self.tests:
            self.phase, self.current = "checks", self.by_id[cid]
            self.begun_at = time.monotonic()
            self.deadline = self.begun_at + self.current.timeout * scale
            self.tests[cid] = []
            self.g.emit("begin", {"checkpoint": cid})
        elif self.current is None or cid != self.current.id:
            if kind == "end":
                self.ended = True
        elif kind == "collected":
            self.expected[cid] = _int(record.get("count"))
        elif kind == "result":
            self.result(record)
        elif kind == "checkpoint_end":
            got = self.tests[cid]
            if self.expected.get(cid) == 0 and got:
                status, message = aggregate(got)   # the check file itself failed to load
            elif len(got) != self.expected.get(cid, -1):
                status, message = "crashed", (f"the checks reported {len(got)} of "
                                              f"{self.expected.get(cid, '?')} results")
            else:
                status, message = aggregate(got)
            self.g.finish_checkpoint(self.current, status, message, self.begun_at, got)
            self.current = None
            self.deadline = time.monotonic() + STARTUP_LIMIT

    def result(self, record: dict) -> None:
        t = {k: record.get(k) for k in ("test", "status", "message", "duration", "output")}
        if t["status"] not in STATUSES or not all(type(t[k]) is str for k in ("test", "message", "output")):
            return
        cid = self.current.id
        self.tests[cid].append(t)
        self.g.emit("result", {"checkpoint": cid, **t})
        # the log a learner reads: one line per check, then what their code printed
        note = f" — {t['message'].splitlines()[0][:300]}" if t["message"] else ""
        self.g.emit("log", {"line": f"{cid} · {short_name(t['test'])}: {t['status']}{note}"})
        for out_line in t["output"].splitlines()[:40]:
            self.g.emit("log", {"line": f"    │ {out_line[:300]}"})

    def blame(self, code: int | None, log: str) -> None:
        """The child stopped early: blame the checkpoint it was in, or, if the learner's package never
        finished importing, every checkpoint still to grade."""
        scale = self.g.timeout_scale
        if self.phase == "import" and self.killed_for == "timeout":
            message = (f"your package did not finish importing within {IMPORT_LIMIT * scale:g} s: an infinite "
                       "loop or a long computation at module level (outside any function)?")
            for cp in self.todo:
                if cp.id not in self.g.results:
                    self.g.finish_checkpoint(cp, "timeout", message, time.monotonic(), [])
            return
        victim = self.current or next((cp for cp in self.todo if cp.id not in self.g.results), None)
        if victim is None:
            return
        if self.killed_for == "timeout":
            if self.current is None:
                limit = f"{STARTUP_LIMIT:g} s (start-up limit)"
            elif time.monotonic() >= self.hard_deadline:
                limit = "the grade's total time limit"
            else:
                limit = f"{victim.timeout * scale:g} s (time limit)"
            status, message = "timeout", f"stopped after {limit}; an infinite loop, or much too slow?"
        else:
            status, message = death_reason(code, log)
        self.g.finish_checkpoint(victim, status, message, self.begun_at, self.tests.get(victim.id, []))


def _int(x) -> int:
    return x if type(x) is int else -1


def _preload(mission: Mission) -> list[str]:
    """Heavy libraries the checks use, imported in the child before any learner code."""
    text = "".join(p.read_text(errors="replace") for p in mission.checks_dir.glob("*.py"))
    return [lib for lib in ("numpy", "torch", "transformers", "peft", "bitsandbytes")
            if f"import {lib}" in text or f"from {lib}" in text]
