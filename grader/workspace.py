"""The learner's workspace: a plain folder holding one package per mission and .llm-lab/.

    ~/llm-lab/
      .llm-lab/state.json   progress (grader.state)
      .llm-lab/runs/        training runs (metrics.jsonl each)
      micrograd/            the learner's package for mission micrograd (copied from its stubs)
      mnist_mlp/ ...

`init` copies stubs without ever overwriting a file the learner has; `find` walks up from a folder
to the nearest workspace. Not handled: several workspaces nested in one another (the nearest wins).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .missions import Mission, load_all
from .state import StateStore

MARKER = ".llm-lab"
ENV_VAR = "LLM_LAB_WORKSPACE"


def default_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path.home() / "llm-lab").expanduser()


@dataclass
class Workspace:
    root: Path

    @property
    def meta(self) -> Path:
        return self.root / MARKER

    @property
    def runs(self) -> Path:
        return self.meta / "runs"

    @property
    def state(self) -> StateStore:
        return StateStore(self.meta)

    def package_dir(self, mission: Mission) -> Path:
        return self.root / mission.package

    def stub_path(self, mission: Mission, name: str) -> Path:
        return self.package_dir(mission) / name


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
    copied, kept = [], []
    for m in missions if missions is not None else load_all()[0]:
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
    gitignore = ws.meta / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("runs/\nstate.lock\n*.tmp\nbackups/\n")
    return ws, copied, kept


def resolve(path: Path | None = None, *, create: bool = True) -> tuple[Workspace, str | None]:
    """The workspace to use: the given path, else the nearest one, else the default (created).

    Returns (workspace, note) where note says what was created, if anything."""
    if path is not None:
        path = Path(path).expanduser()
        if is_workspace(path):
            return Workspace(path.resolve()), None
        if not create:
            raise FileNotFoundError(f"{path} is not an llm-lab workspace (run `llm-lab init {path}`)")
        ws, copied, _ = init(path)
        return ws, f"created a workspace at {ws.root} ({len(copied)} stub files)"
    found = find()
    if found is not None:
        return found, None
    target = default_path()
    if is_workspace(target):
        return Workspace(target.resolve()), None
    if not create:
        raise FileNotFoundError("no llm-lab workspace here or above; run `llm-lab init`")
    ws, copied, _ = init(target)
    return ws, f"created your workspace at {ws.root} ({len(copied)} stub files); edit the files there"
