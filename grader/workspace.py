"""The learner's workspace: a plain folder holding one package per mission and .llm-lab/.

    ~/llm-lab/
      .llm-lab/state.json   progress (grader.state; one StateStore per Workspace)
      .llm-lab/runs/        training runs (metrics.jsonl each)
      micrograd/            the learner's package for mission micrograd (copied from its stubs)
      micrograd/brief.md    the mission's brief, a read-only copy llm-lab keeps up to date
      mnist_mlp/ ...

Only `init` creates a workspace; `resolve` finds one (a given path, the nearest folder at or above
the current one, or the default) and raises WorkspaceNotFound, saying what to run, when there is
none. `init` copies stubs without ever overwriting a file the learner has.

brief.md: every command that opens a workspace writes each mission's brief into its package folder
(`sync_briefs`), read-only, with a first line recording the hash of what llm-lab wrote. A copy the
learner never edited is replaced when the installed brief changes (llm-lab was updated); a copy
they edited is never overwritten (updates stop for it; deleting it brings the current brief back).
Notes belong in a file of their own (e.g. notes.md): llm-lab never writes one.
Not handled: several workspaces nested in one another (the nearest wins).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .missions import Mission, load_all
from .state import StateStore

MARKER = ".llm-lab"
ENV_VAR = "LLM_LAB_WORKSPACE"
BRIEF = "brief.md"
_BRIEF_HEAD = ("<!-- llm-lab {digest}: the mission's brief, kept up to date by llm-lab. Read-only: an "
               "edited copy stops the updates (delete it to get them back). Keep notes in notes.md. -->\n\n")


class WorkspaceNotFound(FileNotFoundError):
    """No workspace where one was looked for; the message says what to run."""


def default_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path.home() / "llm-lab").expanduser()


def display_path(path: Path) -> str:
    """`path` with the home folder written as ~ (messages and screens stay free of long prefixes)."""
    path = Path(path)
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except (ValueError, RuntimeError):
        return str(path)


@dataclass
class Workspace:
    root: Path
    _store: StateStore | None = field(default=None, init=False, repr=False, compare=False)
    _store_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def meta(self) -> Path:
        return self.root / MARKER

    @property
    def runs(self) -> Path:
        return self.meta / "runs"

    @property
    def state(self) -> StateStore:
        """The workspace's one progress store (its warnings, e.g. a corrupt file moved aside, are
        kept until someone takes them: `state.take_warnings()`)."""
        with self._store_lock:
            if self._store is None:
                self._store = StateStore(self.meta)
            return self._store

    def package_dir(self, mission: Mission) -> Path:
        return self.root / mission.package

    def stub_path(self, mission: Mission, name: str) -> Path:
        return self.package_dir(mission) / name

    def brief_path(self, mission: Mission) -> Path:
        return self.package_dir(mission) / BRIEF


def is_workspace(path: Path) -> bool:
    return (Path(path) / MARKER).is_dir()


def find(start: Path | None = None) -> Workspace | None:
    """The nearest workspace at or above `start` (default: the current folder)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_workspace(folder):
            return Workspace(folder)
    return None


def init(path: Path | None = None, missions: list[Mission] | None = None) -> tuple[Workspace, list[Path], list[Path]]:
    """Create (or top up) a workspace. Returns (workspace, files copied, files kept as they were)."""
    root = Path(path or default_path()).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root)
    ws.meta.mkdir(exist_ok=True)
    missions = list(missions if missions is not None else load_all()[0])
    copied, kept = [], []
    for m in missions:
        for src in sorted(m.stubs_dir.rglob("*")):
            if src.is_dir() or "__pycache__" in src.parts:
                continue
            dest = ws.package_dir(m) / src.relative_to(m.stubs_dir)
            if dest.exists():
                kept.append(dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            copied.append(dest)
    sync_briefs(ws, missions)
    gitignore = ws.meta / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("runs/\nstate.lock\n*.tmp\nbackups/\ncache/\n")
    return ws, copied, kept


def resolve(path: Path | None = None) -> Workspace:
    """The workspace to use: `path` (which must be one), else the nearest at or above the current
    folder, else the default ($LLM_LAB_WORKSPACE or ~/llm-lab) if it is one. Never creates one:
    raises WorkspaceNotFound saying what to run."""
    if path is not None:
        path = Path(path).expanduser()
        if is_workspace(path):
            return Workspace(path.resolve())
        what = "does not exist" if not path.exists() else "is not an llm-lab workspace"
        raise WorkspaceNotFound(f"{path} {what} (create one with `llm-lab init {path}`)")
    found = find()
    if found is not None:
        return found
    target = default_path()
    if is_workspace(target):
        return Workspace(target.resolve())
    raise WorkspaceNotFound(f"no llm-lab workspace in this folder or above it, and none at {display_path(target)}; "
                            f"create one with `llm-lab init` (or `llm-lab init PATH`)")


# -- brief.md ---------------------------------------------------------------------------------
def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def brief_copy(mission: Mission) -> str:
    """What llm-lab writes as <package>/brief.md: a header line with the body's hash, then the brief."""
    body = mission.brief_path.read_text(encoding="utf-8")
    return _BRIEF_HEAD.format(digest=_digest(body)) + body


def _header_digest(text: str) -> tuple[str | None, str]:
    """(the digest in llm-lab's header line or None, the text after the header)."""
    first, sep, rest = text.partition("\n\n")
    if not sep or not first.startswith("<!-- llm-lab "):
        return None, text
    return first[len("<!-- llm-lab "):].split(":", 1)[0], rest


def sync_briefs(ws: Workspace, missions: list[Mission] | None = None) -> list[str]:
    """Write or refresh <package>/brief.md for every mission whose package folder exists.

    Returns notes for the learner: an edited copy that misses an update. Never raises on a file it
    cannot write (the brief is also readable in the lab)."""
    notes = []
    for m in missions if missions is not None else load_all()[0]:
        folder, target = ws.package_dir(m), ws.brief_path(m)
        if not folder.is_dir() or target.is_symlink():
            continue
        try:
            new = brief_copy(m)
            old = target.read_text(encoding="utf-8", errors="replace") if target.exists() else None
            if old == new:
                continue
            if old is not None:
                digest, body = _header_digest(old)
                if digest is None or _digest(body) != digest:          # the learner edited it: keep it
                    if digest != _header_digest(new)[0]:
                        notes.append(f"{display_path(target)} has your edits, so llm-lab did not update it "
                                     "with the current brief (delete it to get that; keep notes in notes.md)")
                    continue
            _write_read_only(target, new)
        except OSError:
            continue
    return notes


def _write_read_only(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".brief-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
