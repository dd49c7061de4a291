"""Grade a mission: run its hidden checks in a child process and collect one result per checkpoint.

Process model (see DESIGN.md): the child (grader.child) starts in a new session, stdin closed, a
clean environment and `python -I`; results come back only through a pipe this process created, each
record carrying the run's nonce; the child ends with an end marker. The child's stdout/stderr are
drained into a bounded log (head and tail kept) and never parsed.

A checkpoint that runs past its time limit has the child's whole process group killed and reads
`timeout`; a child that dies without its end marker leaves the checkpoint it was in `crashed`
(whatever its exit code). Either way a fresh child grades the checkpoints still to come.
"""
from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .missions import Checkpoint, Mission
from .state import LAST_WRITTEN
from .workspace import Workspace

STATUSES = ("passed", "failed", "not_implemented", "error", "timeout", "crashed", "oom", "skipped")
TAMPERED = ("the grader's check files were modified while grading (by code under test?); they were "
            "restored — grade again")
STARTUP_TIMEOUT = 90.0     # seconds for a child to start (imports) before its first checkpoint begins
LOG_HEAD, LOG_TAIL = 4_000, 16_000
MEMORY_BUDGET = 6 << 30    # address space a CPU child may add after its imports (bytes)

Event = Callable[[str, dict], None]   # on_event(kind, data): "log", "begin", "result", "checkpoint"


@dataclass
class CheckpointResult:
    mission: str
    checkpoint: str
    title: str
    status: str
    message: str = ""
    duration: float = 0.0
    tests: list[dict] = field(default_factory=list)
    bonus: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class GradeRun:
    mission: str
    mode: str                 # "learner" | "reference"
    seed: int
    results: list[CheckpointResult]
    duration: float
    log: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every required checkpoint passed (bonus checkpoints are optional for the learner)."""
        return all(r.passed or r.bonus for r in self.results)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "results"},
                "results": [asdict(r) for r in self.results]}


def aggregate(tests: list[dict]) -> tuple[str, str]:
    """A checkpoint's status and message from its tests' results."""
    if not tests:
        return "error", "no checks ran for this checkpoint"
    for status in ("oom", "failed", "error", "not_implemented"):
        bad = [t for t in tests if t["status"] == status]
        if bad:
            first = bad[0]
            more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
            return status, f"{_short(first['test'])}: {first['message']}{more}"
    if all(t["status"] == "skipped" for t in tests):
        return "skipped", tests[0]["message"]
    skipped = [t for t in tests if t["status"] == "skipped"]
    note = f"{len(skipped)} check(s) skipped: {skipped[0]['message']}" if skipped else ""
    return "passed", note


def _short(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1] if "::" in nodeid else Path(nodeid).name


class _LogDrain(threading.Thread):
    """Reads the child's stdout+stderr, keeping the first LOG_HEAD and last LOG_TAIL characters."""

    def __init__(self, stream, on_line: Callable[[str], None] | None):
        super().__init__(daemon=True)
        self.stream, self.on_line = stream, on_line
        self.head, self.tail, self.dropped = "", "", 0

    def run(self) -> None:
        for raw in iter(lambda: self.stream.readline(8192), b""):
            line = raw.decode("utf-8", "replace")
            if len(self.head) < LOG_HEAD:
                self.head += line
            else:
                self.tail += line
                if len(self.tail) > 2 * LOG_TAIL:
                    self.dropped += len(self.tail) - LOG_TAIL
                    self.tail = self.tail[-LOG_TAIL:]
            if self.on_line is not None:
                self.on_line(line.rstrip("\n")[:500])

    def text(self) -> str:
        tail = self.tail[-LOG_TAIL:]
        cut = self.dropped + max(0, len(self.tail) - LOG_TAIL)
        return self.head + (f"\n… [{cut} characters of output cut] …\n" if cut else "") + tail


def child_env(private_dir: str, threads: int | None = None) -> dict:
    """A clean environment: only what Python, the libraries and the checks need."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "HF_HOME", "HF_DATASETS_CACHE", "CUDA_VISIBLE_DEVICES",
            "LD_LIBRARY_PATH", "TRITON_INTERPRET", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "VIRTUAL_ENV")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(TMPDIR=private_dir, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1",
               OMP_NUM_THREADS=str(threads or os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1),
               MPLBACKEND="Agg", PYTHONIOENCODING="utf-8", TOKENIZERS_PARALLELISM="false")
    return env


def _preload(mission: Mission) -> list[str]:
    """Heavy libraries the checks use, imported in the child before any learner code."""
    wanted = []
    text = "".join(p.read_text(errors="replace") for p in mission.checks_dir.glob("*.py"))
    for lib in ("numpy", "torch"):
        if f"import {lib}" in text or f"from {lib}" in text:
            wanted.append(lib)
    return wanted


def _has_gpu() -> bool:
    return bool(shutil.which("nvidia-smi")) and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != ""


def grade(mission: Mission, workspace: Workspace | None, *, reference: bool = False,
          checkpoints: list[str] | None = None, seed: int | None = None,
          on_event: Event | None = None, timeout_scale: float = 1.0, parallel: int | None = None,
          cancel: threading.Event | None = None) -> GradeRun:
    """Grade `mission` (the learner's files in `workspace`, or the engine with reference=True).

    Setting `cancel` stops the grade within half a second: the children are killed, and the run
    returned holds only the checkpoints that had finished."""
    emit = on_event or (lambda kind, data: None)
    selected = [mission.checkpoint(c) for c in checkpoints] if checkpoints else list(mission.checkpoints)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    started = time.monotonic()
    results: dict[str, CheckpointResult] = {}
    warnings: list[str] = []
    logs: list[str] = []
    checks_before = _snapshot(mission.checks_dir.glob("*.py"))
    state_before = _snapshot([workspace.state.path]) if workspace is not None else {}
    written_at_start = LAST_WRITTEN.get(str(workspace.state.path)) if workspace is not None else None
    tamper_lock = threading.Lock()

    def verify() -> str | None:
        """Undo what code under test did to the hidden checks or state.json; say what it was."""
        with tamper_lock:
            if _restore(checks_before, also_new_in=mission.checks_dir):
                warnings.append("the check files were modified during grading; they were restored")
                return "checks"
            if workspace is not None:
                path = workspace.state.path
                with workspace.state._locked():
                    # the last legitimate content: what this process (the lab) saved during the grade,
                    # else what was there before it began
                    ours = LAST_WRITTEN.get(str(path))
                    target = ours if ours is not None and ours != written_at_start else state_before[path]
                    if _restore({path: target}):
                        warnings.append("state.json was modified during grading (by code under test?); "
                                        "it was restored")
            return None

    outer_emit = emit

    def emit(kind: str, data: dict) -> None:
        # Before a result leaves the grader (the lab saves results as they arrive), make sure the
        # run that produced it did not rewrite the checks or the progress file.
        if kind == "checkpoint" and verify() == "checks":
            r = results[data["checkpoint"]]
            r.status, r.message = "error", TAMPERED
            data = asdict(r)
        outer_emit(kind, data)

    def run_group(group: list[Checkpoint]) -> None:
        remaining = list(group)
        while remaining and not (cancel is not None and cancel.is_set()):
            _run_child(mission, workspace, reference, remaining, seed, emit, results, warnings, logs,
                       timeout_scale, threads, cancel)
            remaining = [cp for cp in remaining if cp.id not in results]

    groups = _split(selected, parallel if parallel is not None else min(2, os.cpu_count() or 1))
    threads = max(1, (os.cpu_count() or 1) // len(groups))   # torch threads per child: no oversubscription
    workers = [threading.Thread(target=run_group, args=(g,), daemon=True) for g in groups[1:]]
    for w in workers:
        w.start()
    run_group(groups[0])
    for w in workers:
        w.join()
    if verify() == "checks" or any("check files were modified" in w for w in warnings):
        # the hidden checks were rewritten while they ran: no result of this run can be trusted
        for r in results.values():
            r.status, r.message = "error", TAMPERED
    cancelled = cancel is not None and cancel.is_set()
    for cp in selected:  # never let a checkpoint vanish from the verdict
        if cp.id not in results and not cancelled:
            results[cp.id] = CheckpointResult(mission=mission.id, checkpoint=cp.id, title=cp.title,
                                              status="error", message="the grader could not run this "
                                              "checkpoint (see the log)", bonus=cp.bonus)
    ordered = [results[cp.id] for cp in selected if cp.id in results]
    return GradeRun(mission=mission.id, mode="reference" if reference else "learner", seed=seed,
                    results=ordered, duration=round(time.monotonic() - started, 3),
                    log="\n".join(logs), warnings=warnings)


def _split(selected: list[Checkpoint], parallel: int) -> list[list[Checkpoint]]:
    """With two or more cores, the slowest checkpoint (largest time limit, e.g. a training run) gets
    a child of its own, running beside the others; otherwise one child grades them all in order."""
    if parallel < 2 or len(selected) < 2:
        return [list(selected)]
    slowest = max(selected, key=lambda cp: cp.timeout)
    if slowest.timeout <= 60:
        return [list(selected)]
    return [[cp for cp in selected if cp is not slowest], [slowest]]


def _run_child(mission, workspace, reference, todo: list[Checkpoint], seed, emit, results, warnings,
               logs, timeout_scale, threads: int | None = None, cancel: threading.Event | None = None) -> bool:
    private_dir = tempfile.mkdtemp(prefix="llm-lab-grade-")
    os.chmod(private_dir, 0o700)
    read_fd, write_fd = os.pipe()
    nonce = secrets.token_hex(16)
    total_timeout = sum(cp.timeout for cp in todo) * timeout_scale
    config = {
        "nonce": nonce, "result_fd": write_fd, "seed": seed, "private_dir": private_dir,
        "mode": "reference" if reference else "learner", "package": mission.package,
        "reference": mission.reference, "reference_dir": str(mission.reference_dir),
        "workspace": str(workspace.root) if workspace is not None else None,
        "checks_dir": str(mission.checks_dir), "forbid": list(mission.forbid),
        "forbid_messages": {lib: mission.forbid_reason for lib in mission.forbid if mission.forbid_reason},
        "preload": _preload(mission),
        "all_forbid_calls": sorted({p for cp in todo for p in cp.forbid_calls}),
        "limits": {"fsize": 256 << 20, "nofile": 1024,
                   "cpu": int((total_timeout * 2 + 60) * max(1, threads or os.cpu_count() or 1)),
                   "memory": 0 if _has_gpu() else MEMORY_BUDGET},
        "checkpoints": [{"id": cp.id, "forbid_calls": list(cp.forbid_calls),
                         "nodeids": [str(mission.checks_dir / n) for n in cp.checks]} for cp in todo],
    }
    config_path = os.path.join(private_dir, "config.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-m", "grader.child", config_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=child_env(private_dir, threads), cwd=private_dir, pass_fds=(write_fd,), start_new_session=True,
        )
    except OSError as e:
        os.close(read_fd)
        shutil.rmtree(private_dir, ignore_errors=True)
        warnings.append(f"could not start the grading process: {e}")
        _finish(mission, todo[0], "error", f"could not start the grading process: {e}", time.monotonic(),
                [], results, emit)
        return False
    finally:
        os.close(write_fd)
    drain = _LogDrain(proc.stdout, lambda line: emit("log", {"line": line}))
    drain.start()

    by_id = {cp.id: cp for cp in todo}
    current: Checkpoint | None = None
    tests: dict[str, list[dict]] = {}
    expected: dict[str, int] = {}
    begun_at = 0.0
    deadline = time.monotonic() + STARTUP_TIMEOUT
    buffer = b""
    ended = False
    killed_for: str | None = None
    try:
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([read_fd], [], [], min(timeout, 0.5))
            if cancel is not None and cancel.is_set():
                killed_for = "cancel"
                _kill_group(proc)
                break
            if not ready:
                if time.monotonic() >= deadline:
                    killed_for = "timeout"
                    _kill_group(proc)
                    break
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break  # pipe closed: the child exited (or closed it)
            buffer += chunk
            if len(buffer) > 64 << 20:
                warnings.append("the results channel overflowed; the child was stopped")
                _kill_group(proc)
                break
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                record = _parse(line, nonce)
                if record is None:
                    if line.strip():
                        warnings.append("ignored a record on the results channel without this run's nonce")
                    continue
                kind = record.get("type")
                if kind == "begin" and record.get("checkpoint") in by_id:
                    current = by_id[record["checkpoint"]]
                    begun_at = time.monotonic()
                    deadline = begun_at + current.timeout * timeout_scale
                    tests[current.id] = []
                    emit("begin", {"checkpoint": current.id})
                elif kind == "collected" and current is not None:
                    expected[current.id] = int(record.get("count", 0))
                elif kind == "result" and current is not None and record.get("checkpoint") == current.id:
                    t = {k: record.get(k) for k in ("test", "status", "message", "duration", "output")}
                    if t["status"] not in STATUSES:
                        continue
                    tests[current.id].append(t)
                    emit("result", {"checkpoint": current.id, **t})
                    # the log a learner reads: one line per check, then what their code printed
                    note = f" — {t['message'].splitlines()[0][:300]}" if t["message"] else ""
                    emit("log", {"line": f"{current.id} · {_short(t['test'])}: {t['status']}{note}"})
                    for out_line in (t["output"] or "").splitlines()[:40]:
                        emit("log", {"line": f"    │ {out_line[:300]}"})
                elif kind == "checkpoint_end" and current is not None and record.get("checkpoint") == current.id:
                    got = tests[current.id]
                    if expected.get(current.id) == 0 and got:
                        status, message = aggregate(got)   # the check file itself failed to load
                    elif len(got) != expected.get(current.id, -1):
                        status, message = "crashed", (f"the checks reported {len(got)} of "
                                                      f"{expected.get(current.id, '?')} results")
                    else:
                        status, message = aggregate(got)
                    _finish(mission, current, status, message, begun_at, got, results, emit)
                    current = None
                    deadline = time.monotonic() + STARTUP_TIMEOUT
                elif kind == "end":
                    ended = True
            if ended:
                break
    finally:
        os.close(read_fd)
        if proc.poll() is None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
        _kill_group(proc)  # leftovers the learner code may have spawned in the group
        drain.join(timeout=2)
        logs.append(drain.text())
        shutil.rmtree(private_dir, ignore_errors=True)

    if ended:
        return True
    if killed_for == "cancel":
        return False
    # The child stopped early: blame the checkpoint it was in (or the first one if none had begun).
    victim = current or next((cp for cp in todo if cp.id not in results), None)
    if victim is None:
        return False
    got = tests.get(victim.id, [])
    if killed_for == "timeout":
        limit = victim.timeout * timeout_scale if current else STARTUP_TIMEOUT
        status, message = "timeout", f"stopped after {limit:g} s (time limit); an infinite loop, or much too slow?"
    else:
        status, message = _death_reason(proc.returncode, drain.text())
    _finish(mission, victim, status, message, begun_at or time.monotonic(), got, results, emit)
    return False


def _read(path: Path) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def _snapshot(paths) -> dict[Path, bytes | None]:
    snap = {}
    for p in paths:
        try:
            snap[Path(p)] = Path(p).read_bytes()
        except FileNotFoundError:
            snap[Path(p)] = None
    return snap


def _restore(snapshot: dict[Path, bytes | None], also_new_in: Path | None = None) -> bool:
    """Put files back as they were (and remove new *.py files in `also_new_in`); True if any changed."""
    changed = False
    if also_new_in is not None:
        for extra in set(also_new_in.glob("*.py")) - set(snapshot):
            extra.unlink(missing_ok=True)
            changed = True
    for path, content in snapshot.items():
        try:
            now = path.read_bytes()
        except FileNotFoundError:
            now = None
        if now != content:
            changed = True
            if content is None:
                path.unlink(missing_ok=True)
            else:
                tmp = path.with_name(path.name + ".restore.tmp")
                tmp.write_bytes(content)
                os.replace(tmp, path)
    return changed


def _finish(mission, cp, status, message, begun_at, tests, results, emit) -> None:
    results[cp.id] = CheckpointResult(mission=mission.id, checkpoint=cp.id, title=cp.title, status=status,
                                      message=message, duration=round(time.monotonic() - begun_at, 3),
                                      tests=tests, bonus=cp.bonus)
    emit("checkpoint", asdict(results[cp.id]))


def _death_reason(code: int | None, log: str) -> tuple[str, str]:
    tail = log.strip().splitlines()[-1][:300] if log.strip() else ""
    if code is not None and code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if sig == "SIGSEGV":
            return "crashed", "the process crashed with a segmentation fault (SIGSEGV)"
        if sig == "SIGXCPU":
            return "timeout", "stopped: CPU time limit exceeded"
        if sig == "SIGKILL":
            return "oom", "the process was killed (SIGKILL), most likely for using too much memory"
        if sig == "SIGXFSZ":
            return "crashed", "stopped: wrote a file larger than the limit"
        return "crashed", f"the process was killed by {sig}"
    if "MemoryError" in log:
        return "oom", "MemoryError: ran out of memory"
    return "crashed", (f"the process exited (code {code}) before the checks finished: os._exit/sys.exit "
                       f"in learner code?" + (f" Last output: {tail}" if tail else ""))


def _parse(line: bytes, nonce: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("nonce") != nonce:
        return None
    return record


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
