"""Shared helpers for the project's own tests: build workspaces with planted code and grade them."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from grader import workspace
from grader.missions import Mission, load_all
from grader.runner import grade


def missions() -> list[Mission]:
    found, errors = load_all()
    assert not errors, errors
    return found


def mistakes(mission: Mission) -> list[dict]:
    path = mission.root / "mistakes.toml"
    if not path.exists():
        return []
    return tomllib.loads(path.read_text())["mistake"]


def workspace_with_reference(tmp_path: Path, mission: Mission, patch: dict | None = None) -> workspace.Workspace:
    """A workspace whose package for `mission` is a copy of the reference, with one mistake planted."""
    ws, _, _ = workspace.init(tmp_path / "ws", [mission])
    pkg = ws.package_dir(mission)
    for src in mission.reference_dir.glob("*.py"):
        shutil.copyfile(src, pkg / src.name)
    if patch is not None:
        target = pkg / patch["file"]
        text = target.read_text()
        assert patch["find"] in text, f"mistake {patch['name']!r}: find-text not in {patch['file']}"
        target.write_text(text.replace(patch["find"], patch["replace"]))
    return ws


def matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE | re.DOTALL) is not None


__all__ = ["missions", "mistakes", "workspace_with_reference", "matches", "grade"]
