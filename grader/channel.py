"""The results channel: a pipe the grader owns, read as JSON lines stamped with the run's nonce.

Bounded on every side, so nothing on it can crash or bloat llm-lab: a line over MAX_LINE bytes, JSON
nested deeper than MAX_DEPTH, or any record past MAX_RECORDS is dropped; lines without this run's
nonce are counted, never parsed further, and reported once. Not handled: a child that learns the
nonce from its own memory (deliberate rewriting of the grader; see the trust model).
"""
from __future__ import annotations

import json
import os
import select

MAX_LINE = 256 << 10      # bytes in one record (a check's output is clipped to 2,000 characters)
MAX_DEPTH = 16            # nesting of a record's JSON (ours is 2 deep)
MAX_RECORDS = 20_000      # records in one child's life (a checkpoint sends a few per check)
MAX_BUFFER = 1 << 20      # bytes waiting for a newline


def _depth_ok(raw: bytes) -> bool:
    """Nesting of arrays/objects at most MAX_DEPTH, counted before json.loads can recurse (brackets
    inside strings do not count: a check's captured output may hold any text)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return True
    depth, in_string, escaped = 0, False, False
    for b in raw:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:      # backslash
                escaped = True
            elif b == 0x22:      # closing quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif b in (0x5D, 0x7D):
            depth -= 1
    return True


class Channel:
    """Reads records from `fd` (the read end of the pipe); `read(timeout)` returns a list of records,
    or None once the pipe is closed."""

    def __init__(self, fd: int, nonce: str):
        self.fd, self.nonce = fd, nonce
        self.buffer = b""
        self.records = 0
        self.foreign = 0       # lines without this run's nonce
        self.dropped = 0       # our lines refused for size, depth or count

    def read(self, timeout: float) -> list[dict] | None:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        chunk = os.read(self.fd, 65536)
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > MAX_BUFFER:   # a line with no end in sight
            self.buffer, self.dropped = b"", self.dropped + 1
        out = []
        for line in lines:
            record = self._parse(line)
            if record is not None:
                out.append(record)
        return out

    def _parse(self, line: bytes) -> dict | None:
        if not line.strip():
            return None
        if len(line) > MAX_LINE or not _depth_ok(line):
            self.dropped += 1
            return None
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            self.foreign += 1
            return None
        if type(record) is not dict or record.get("nonce") != self.nonce:
            self.foreign += 1
            return None
        if self.records >= MAX_RECORDS:
            self.dropped += 1
            return None
        self.records += 1
        return record

    def warnings(self) -> list[str]:
        out = []
        if self.foreign:
            out.append(f"ignored {self.foreign} record(s) on the results channel without this run's nonce")
        if self.dropped:
            out.append(f"dropped {self.dropped} oversized or excess record(s) on the results channel")
        return out

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
