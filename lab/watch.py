"""Watch mode: notice when the learner saves a file of a mission's package.

    watcher = FileWatcher(folder, on_change, poll=1.0).start()   # on_change(["value.py"]) from a thread
    ...
    watcher.stop()

A thread compares {file: (mtime, size)} snapshots of the package's Python files (no __pycache__)
and calls `on_change` with the files that changed since the last call. It looks when file events
arrive (watchfiles, in a second thread) and every `poll` seconds whatever happens (file events do
not arrive on some network drives and containers). The mission screen passes a function that posts
messages.FilesSaved; what to grade, and when, is the screen's business.
Not handled: files outside the package folder; a save and its revert between two looks.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

Snapshot = dict[str, tuple[int, int]]
DEBOUNCE_MS = 200


def snapshot(folder: Path) -> Snapshot:
    """{relative path: (mtime_ns, size)} of the Python files under `folder` (no __pycache__)."""
    out: Snapshot = {}
    try:
        paths = list(Path(folder).rglob("*.py"))
    except OSError:
        return out
    for p in paths:
        if "__pycache__" in p.parts:
            continue
        try:
            st = p.stat()
        except OSError:
            continue
        out[p.relative_to(folder).as_posix()] = (st.st_mtime_ns, st.st_size)
    return out


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


class FileWatcher:
    def __init__(self, folder: Path, on_change: Callable[[list[str]], object], *, poll: float = 1.0):
        self.folder, self.on_change, self.poll = Path(folder), on_change, poll
        self.events_work: bool | None = None      # None: not known yet; False: polling only
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._baseline: Snapshot = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> "FileWatcher":
        self._baseline = snapshot(self.folder)
        for target, name in ((self._look_loop, "llm-lab-watch"), (self._events_loop, "llm-lab-watch-events")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def _look_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if self._stop.is_set():
                return
            current = snapshot(self.folder)
            changed = changed_files(self._baseline, current)
            if changed:
                self._baseline = current
                try:
                    self.on_change(changed)
                except Exception:  # the receiver went away (screen closed): stop quietly
                    self.stop()

    def _events_loop(self) -> None:
        try:
            from watchfiles import PythonFilter, watch
            for _changes in watch(self.folder, watch_filter=PythonFilter(), debounce=DEBOUNCE_MS, step=50,
                                  stop_event=self._stop, rust_timeout=500, yield_on_timeout=False):
                self.events_work = True
                self._wake.set()
        except Exception:  # no file events here (no inotify, a network drive): the poll carries on
            self.events_work = False
