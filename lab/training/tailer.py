"""Following a file another process appends to: the metrics stream and the run's output log.

    tail = MetricsTailer(run_dir / "metrics.jsonl")
    every 250 ms:  for record in tail.poll(): ...        # only complete, well-formed new records

`poll()` reads what was appended since the last call. A last line without its newline is kept back
until it is complete (a writer caught mid-line). A file that shrank (truncated) or was replaced
(a new inode: rotated, or a run restarted under the same name) is read again from the start, and
`reset` is set so the reader can clear what it drew. A file that does not exist yet is not an error.
Not handled: a file replaced by one at least as long between two polls *and* on the same inode.
"""
from __future__ import annotations

import os
from pathlib import Path

MAX_READ = 4 << 20      # bytes per poll at most: a huge backlog is drained over several polls
MAX_LINE = 1 << 20      # a "line" longer than this without a newline is dropped (garbage)


class LineTailer:
    """New complete lines of a text file, a few times a second."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0
        self.inode: tuple[int, int] | None = None
        self.partial = b""
        self.reset = False       # set by poll() when the file was truncated or replaced

    def poll_lines(self) -> list[str]:
        self.reset = False
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        ident = (st.st_dev, st.st_ino)
        if self.inode is not None and (ident != self.inode or st.st_size < self.offset):
            self.offset, self.partial, self.reset = 0, b"", True
        self.inode = ident
        if st.st_size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(MAX_READ)
        except OSError:
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        if len(self.partial) > MAX_LINE:
            self.partial = b""
        return [line.decode("utf-8", "replace") for line in lines]


class MetricsTailer(LineTailer):
    """New records of a metrics.jsonl (engine.shared.telemetry): malformed and partial lines skipped."""

    def poll(self) -> list[dict]:
        from engine.shared.telemetry import parse_line   # lab/ imports engine/ lazily (import boundaries)
        out = []
        for line in self.poll_lines():
            record = parse_line(line)
            if record is not None:
                out.append(record)
        return out
