"""The learner's editor: $VISUAL, then $EDITOR, then nano, then vi.

The mission screen suspends the app, runs the editor on the checkpoint's files and resumes.
Nothing here imports Textual. Not handled: editors that fork and return at once (`code` without -w):
the lab comes back while the editor is still open, which is harmless.
"""
from __future__ import annotations

import os
import shlex
import shutil
from typing import Mapping


def editor_command(env: Mapping[str, str] | None = None) -> list[str] | None:
    """The learner's editor as a command line; None if there is none."""
    env = os.environ if env is None else env
    for var in ("VISUAL", "EDITOR"):
        value = (env.get(var) or "").strip()
        if value:
            try:
                cmd = shlex.split(value)
            except ValueError:
                cmd = [value]
            if cmd:
                return cmd
    for name in ("nano", "vi"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def editor_available(cmd: list[str]) -> bool:
    return bool(cmd) and shutil.which(cmd[0]) is not None
