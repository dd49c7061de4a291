"""Integrity warnings: files and variables that would steer pytest or Python if the grader honoured
them. The grader never does (its child runs `python -I`, with its own pytest.ini, --noconftest and
plugin autoload off, and only the learner's package importable from the workspace); these warnings
just tell the learner that such files have no effect. Not handled: files outside the workspace.
"""
from __future__ import annotations

import os
from pathlib import Path

_NAMES = {"conftest.py": "conftest.py", "pytest.ini": "pytest.ini", "sitecustomize.py": "sitecustomize.py",
          "usercustomize.py": "usercustomize.py"}
_SECTIONS = {"pyproject.toml": "[tool.pytest", "setup.cfg": "[tool:pytest]", "tox.ini": "[pytest]"}
_SKIP_DIRS = {".git", ".llm-lab", "__pycache__", ".venv", "venv", "node_modules"}


def scan(root: Path, environ: dict | None = None, limit: int = 2000) -> list[str]:
    env = os.environ if environ is None else environ
    found: list[str] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            seen += 1
            if seen > limit:
                break
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if name in _NAMES or name.endswith(".pth"):
                found.append(f"{rel} is in your workspace; it has no effect on grading")
            elif name in _SECTIONS:
                try:
                    text = Path(dirpath, name).read_text(errors="replace")
                except OSError:
                    continue
                if _SECTIONS[name] in text:
                    found.append(f"{rel} has a pytest section; it has no effect on grading")
    for var in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        if env.get(var):
            found.append(f"${var} is set; it has no effect on grading")
    return found
