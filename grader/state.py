"""Progress of a learner: <workspace>/.llm-lab/state.json.

    {"schema_version": 1, "current_mission": "micrograd",
     "missions": {"micrograd": {"checkpoints": {"forward": {"status": "passed", "time": 1732..., "message": ""}},
                                "hints": {"forward": 1}}}}

Writes are atomic (temp file in the same folder, fsync, os.replace) and happen under an exclusive
lock (fcntl.flock on state.lock), read-modify-write inside it, so two lab processes never lose each
other's updates and a kill -9 at any moment leaves either the old or the new file. A file that is
not valid JSON of this schema is moved aside to state.json.corrupt-<time> and reported, never
silently dropped: the report waits in `warnings` until a front end takes it (`take_warnings()`, so
it is shown once). Use one store per workspace (grader.workspace.Workspace.state) so that the
report reaches whoever reads next. Not handled: network file systems without flock.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator



class StateLocked(TimeoutError):
    """The state lock was not free within the time limit."""

SCHEMA_VERSION = 1
LAST_WRITTEN: dict[str, bytes] = {}   # path -> bytes this process last wrote (to tell our writes from others')


def empty_state() -> dict:
    return {"schema_version": SCHEMA_VERSION, "current_mission": None, "missions": {}}


def _valid(data) -> bool:
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        return False
    missions = data.get("missions")
    if not isinstance(missions, dict):
        return False
    for m in missions.values():
        if not isinstance(m, dict) or not isinstance(m.get("checkpoints", {}), dict) \
                or not isinstance(m.get("hints", {}), dict):
            return False
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in m.get("hints", {}).values()):
            return False
        if not all(isinstance(c, dict) and isinstance(c.get("status", ""), str)
                   for c in m.get("checkpoints", {}).values()):
            return False
    cur = data.get("current_mission")
    return cur is None or isinstance(cur, str)


class StateStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / "state.json"
        self.lock_path = self.folder / "state.lock"
        self.warnings: list[str] = []   # e.g. "state.json was corrupt; backed up to ..." (until taken)

    def take_warnings(self) -> list[str]:
        """The warnings not shown yet (a front end shows them, once)."""
        taken, self.warnings[:] = list(self.warnings), []
        return taken

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> dict:
        """The current state (a fresh empty one if there is none). Never raises on a bad file."""
        with self.locked():
            return self._read_unlocked()

    def _read_unlocked(self) -> dict:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return empty_state()
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            data = None
        if _valid(data):
            return data
        backup = self.path.with_name(f"state.json.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.replace(self.path, backup)
        self.warnings.append(f"{self.path} was not a valid progress file (damaged, or written by another "
                             f"version); it was moved to {backup.name} and your progress starts fresh. Your "
                             "files are untouched: grade again to see where you are.")
        return empty_state()

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def update(self) -> Iterator[dict]:
        """Read-modify-write under the lock: `with store.update() as s: s[...] = ...`."""
        with self.locked():
            data = self._read_unlocked()
            yield data
            self._write_unlocked(data)

    def _write_unlocked(self, data: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.folder)
        try:
            payload = json.dumps(data, indent=1, sort_keys=True).encode()
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            LAST_WRITTEN[str(self.path)] = payload
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename durable
            dfd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    @contextlib.contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the state lock. With a `timeout` (the grader, while code under test runs: a process
        it started must not hang llm-lab), StateLocked after that many seconds of waiting; without
        one, a plain blocking (fair) wait, as between two lab processes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            if timeout is None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            else:
                self._flock_within(lock, timeout)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _flock_within(self, lock, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateLocked(f"{self.lock_path} is held by another process for over {timeout:g} s; "
                                      "is another llm-lab grading this workspace?") from None
                time.sleep(0.05)

    # -- convenience ------------------------------------------------------------------------
    def record_results(self, mission_id: str, results) -> None:
        """Store the last status/time/message of each graded checkpoint."""
        with self.update() as s:
            m = s["missions"].setdefault(mission_id, {"checkpoints": {}, "hints": {}})
            cps = m.setdefault("checkpoints", {})
            for r in results:
                cps[r.checkpoint] = {"status": r.status, "time": time.time(), "message": r.message[:2000]}

    def reveal_hint(self, mission_id: str, checkpoint_id: str, available: int) -> int:
        """Reveal one more hint (up to `available`); returns how many are now revealed."""
        with self.update() as s:
            hints = s["missions"].setdefault(mission_id, {"checkpoints": {}, "hints": {}}).setdefault("hints", {})
            hints[checkpoint_id] = min(available, int(hints.get(checkpoint_id, 0)) + 1)
            return hints[checkpoint_id]

    def set_current(self, mission_id: str) -> None:
        with self.update() as s:
            s["current_mission"] = mission_id
