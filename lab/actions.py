"""What the lab does that is not UI: progress from state.json, the suggested mission, resetting a
stub (after a backup), finding the learner's editor, watching a package's files.

Everything here works on grader data (Mission, Workspace, the state dict) and plain files, so it is
tested without a terminal. Nothing here imports Textual, torch or numpy.
"""
from __future__ import annotations

import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from grader.missions import Checkpoint, Mission
from grader.workspace import Workspace

BACKUPS = "backups"
# status -> (symbol, theme colour variable, words shown to the learner)
STATUS_STYLE: dict[str | None, tuple[str, str, str]] = {
    None: ("○", "foreground-muted", "not graded yet"),
    "passed": ("✔", "success", "passed"),
    "failed": ("✘", "error", "failed"),
    "not_implemented": ("…", "warning", "not implemented yet"),
    "error": ("!", "error", "error"),
    "timeout": ("⏱", "accent", "timed out"),
    "crashed": ("☠", "accent", "crashed"),
    "oom": ("▲", "accent", "out of memory"),
    "skipped": ("-", "foreground-muted", "skipped"),
    "running": ("◌", "primary", "grading…"),
    "queued": ("·", "primary", "waiting to be graded"),
}


def status_style(status: str | None) -> tuple[str, str, str]:
    return STATUS_STYLE.get(status, ("?", "foreground", str(status)))


# -- progress ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    passed: int          # required (non-bonus) checkpoints passed
    total: int           # required checkpoints
    started: bool        # any checkpoint graded at least once
    bonus_passed: int = 0
    bonus_total: int = 0

    @property
    def done(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def label(self) -> str:
        if self.done:
            text = "done"
        elif not self.started:
            text = "not started"
        else:
            text = f"{self.passed} of {self.total} checkpoints"
        if self.bonus_total and self.bonus_passed:
            text += f" (+{self.bonus_passed} bonus)"
        return text


def checkpoint_records(state: Mapping, mission_id: str) -> dict[str, dict]:
    """{checkpoint id: {"status", "message", "time"}} as last graded (empty if never)."""
    m = state.get("missions", {}).get(mission_id, {})
    cps = m.get("checkpoints", {}) if isinstance(m, dict) else {}
    return {k: v for k, v in cps.items() if isinstance(v, dict)}


def hints_revealed(state: Mapping, mission_id: str, checkpoint_id: str) -> int:
    m = state.get("missions", {}).get(mission_id, {})
    try:
        return max(0, int(m.get("hints", {}).get(checkpoint_id, 0)))
    except (AttributeError, TypeError, ValueError):
        return 0


def mission_progress(mission: Mission, state: Mapping) -> Progress:
    records = checkpoint_records(state, mission.id)
    required = [c for c in mission.checkpoints if not c.bonus]
    bonus = [c for c in mission.checkpoints if c.bonus]

    def passed(cps: list[Checkpoint]) -> int:
        return sum(records.get(c.id, {}).get("status") == "passed" for c in cps)

    return Progress(passed=passed(required), total=len(required),
                    started=any(c.id in records for c in mission.checkpoints),
                    bonus_passed=passed(bonus), bonus_total=len(bonus))


def suggested_next(missions: Iterable[Mission], state: Mapping) -> Mission | None:
    """The first mission, in order, that is not done (None when all are)."""
    for m in missions:
        if not mission_progress(m, state).done:
            return m
    return None


def first_open_checkpoint(mission: Mission, state: Mapping) -> Checkpoint:
    records = checkpoint_records(state, mission.id)
    for cp in mission.checkpoints:
        if records.get(cp.id, {}).get("status") != "passed":
            return cp
    return mission.checkpoints[0]


def shared_files(mission: Mission, checkpoint: Checkpoint) -> dict[str, list[str]]:
    """For each file of `checkpoint`, the other checkpoints that grade the same file."""
    return {name: [c.id for c in mission.checkpoints if c.id != checkpoint.id and name in c.files]
            for name in checkpoint.files}


def checkpoints_for_files(mission: Mission, names: Iterable[str]) -> list[str]:
    """Checkpoints (in mission order) that grade any of the files `names` (package-relative)."""
    names = set(names)
    return [c.id for c in mission.checkpoints if names & set(c.files)]


# -- reset with backup ------------------------------------------------------------------------
def backup_files(workspace: Workspace, mission: Mission, names: Iterable[str],
                 stamp: str | None = None) -> Path | None:
    """Copy the learner's current versions of `names` to
    <workspace>/.llm-lab/backups/<time>/<package>/<name>. Returns the backup folder (None if none
    of the files exists). Never overwrites an earlier backup."""
    sources = [(n, workspace.stub_path(mission, n)) for n in names]
    sources = [(n, p) for n, p in sources if p.is_file()]
    if not sources:
        return None
    base = workspace.meta / BACKUPS
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    folder, k = base / stamp, 1
    while folder.exists():
        k += 1
        folder = base / f"{stamp}-{k}"
    for name, src in sources:
        dest = folder / mission.package / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    return folder


def reset_files(workspace: Workspace, mission: Mission, names: Iterable[str]) -> Path | None:
    """Put the original stubs of `names` back, after backing the learner's versions up.

    Returns the backup folder (None when there was nothing to back up). The backup is written and
    closed before any file is replaced, so the learner's work is never lost."""
    names = list(names)
    for name in names:
        if not (mission.stubs_dir / name).is_file():
            raise FileNotFoundError(f"missions/{mission.id}/stubs/{name} does not exist")
    folder = backup_files(workspace, mission, names)
    for name in names:
        dest = workspace.stub_path(mission, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mission.stubs_dir / name, dest)
    return folder


def reference_path(mission: Mission, name: str) -> Path:
    return mission.reference_dir / name


# -- the editor -------------------------------------------------------------------------------
def editor_command(env: Mapping[str, str] | None = None) -> list[str] | None:
    """The learner's editor: $VISUAL, then $EDITOR, then nano, then vi; None if there is none."""
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


# -- watching files ---------------------------------------------------------------------------
Snapshot = dict[str, tuple[int, int]]


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


def label_code_fences(markdown: str, default: str = "text") -> str:
    """Give every unlabelled ``` fence a language. Unlabelled fences make Textual's Markdown guess
    one with pygments, which loads every lexer (over a second on first use)."""
    out, inside = [], None
    for line in markdown.splitlines(keepends=True):
        stripped = line.lstrip()
        fence = stripped[:3] if stripped.startswith(("```", "~~~")) else None
        if fence and inside is None:
            marker = stripped[:len(stripped) - len(stripped.lstrip(fence[0]))]
            if not stripped[len(marker):].strip():
                line = line[:len(line) - len(stripped)] + marker + default + ("\n" if line.endswith("\n") else "")
            inside = marker
        elif fence and inside is not None and stripped.rstrip().startswith(inside) \
                and not stripped.strip().lstrip(inside[0]):
            inside = None
        out.append(line)
    return "".join(out)


def display_path(path: Path) -> str:
    """`path` with the home folder written as ~ (keeps screens free of machine-specific prefixes)."""
    path = Path(path)
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except (ValueError, RuntimeError):
        return str(path)
