"""The learner's stub files: which checkpoints grade which file, and putting an original stub back
after backing the learner's version up.

    reset_files(ws, mission, ["value.py"])   # -> .llm-lab/backups/<time>/micrograd/value.py, then the stub

Nothing here imports Textual, torch or numpy. Not handled: files outside the mission's package.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterable

from grader.missions import Checkpoint, Mission
from grader.workspace import Workspace

BACKUPS = "backups"


def shared_files(mission: Mission, checkpoint: Checkpoint) -> dict[str, list[str]]:
    """For each file of `checkpoint`, the other checkpoints that grade the same file."""
    return {name: [c.id for c in mission.checkpoints if c.id != checkpoint.id and name in c.files]
            for name in checkpoint.files}


def checkpoints_for_files(mission: Mission, names: Iterable[str]) -> list[str]:
    """Checkpoints (in mission order) that grade any of the files `names` (package-relative)."""
    names = set(names)
    return [c.id for c in mission.checkpoints if names & set(c.files)]


def backup_files(workspace: Workspace, mission: Mission, names: Iterable[str],
                 stamp: str | None = None) -> Path | None:
    """Copy the learner's current versions of `names` to
    <workspace>/.llm-lab/backups/<time>/<package>/<name>. Returns the backup folder (None if none
    of the files exists). Never overwrites an earlier backup; never follows a link."""
    sources = [(n, workspace.stub_path(mission, n)) for n in names]
    sources = [(n, p) for n, p in sources if p.is_file() and not p.is_symlink()]
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
    closed before any file is replaced, so the learner's work is never lost. A link in the
    workspace is replaced by a plain file, never written through (it could point into the install)."""
    names = list(names)
    for name in names:
        if not (mission.stubs_dir / name).is_file():
            raise FileNotFoundError(f"missions/{mission.id}/stubs/{name} does not exist")
    for name in names:
        _refuse_links(workspace, workspace.stub_path(mission, name).parent)
    folder = backup_files(workspace, mission, names)
    for name in names:
        dest = workspace.stub_path(mission, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink():
            dest.unlink()
        shutil.copyfile(mission.stubs_dir / name, dest)
    return folder


def _refuse_links(workspace: Workspace, folder: Path) -> None:
    """Raise if a folder between the workspace and `folder` is a link (writing there could land
    anywhere, the installed engine included)."""
    root = Path(workspace.root)
    for part in [folder, *folder.parents]:
        if part == root or root not in part.parents:
            break
        if part.is_symlink():
            raise OSError(f"{part} is a link; reset writes only plain folders of your workspace "
                          "(replace the link with a folder)")
