"""The one seam between hidden checks and the learner's code.

    from grader.seam import learner
    Value = learner("value").Value

In learner mode `learner("value")` imports `<package>.value` from the workspace; in reference mode
it imports `<reference>.value` (engine/). The grader's child process configures the seam before any
check runs; nothing else in a check touches the workspace. Not handled: learner modules in
sub-packages (names are one level deep: "value", "model").
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

from grader.loader import LearnerFinder

from .checks import CheckFailure

_config: dict = {"mode": "reference", "package": None, "reference": None, "workspace": None}


class LearnerFileMissing(ImportError):
    pass


def configure(*, mode: str, package: str, reference: str, workspace: str | None) -> None:
    if mode not in ("learner", "reference"):
        raise ValueError(mode)
    _config.update(mode=mode, package=package, reference=reference, workspace=workspace)
    if mode == "learner" and workspace:
        # Only the learner's package is importable from the workspace (nothing else there can
        # shadow a library), and always from source (no stale .pyc after a quick edit).
        sys.meta_path.insert(0, LearnerFinder(package, Path(workspace).resolve() / package))


def config() -> dict:
    """A copy of the seam's configuration (mode, package, reference, workspace): what a rank
    process needs to configure its own seam the same way (grader.ranks)."""
    return dict(_config)


def mode() -> str:
    return _config["mode"]


def learner_package() -> str:
    """The package name whose modules count as learner code in this run."""
    return _config["package"] if _config["mode"] == "learner" else _config["reference"]


def learner(name: str) -> types.ModuleType:
    """The learner's module `name` (or the reference's, in --reference mode)."""
    if _config["package"] is None:
        raise RuntimeError("grader.seam is not configured (checks run only inside the grader)")
    if _config["mode"] == "reference":
        return importlib.import_module(f"{_config['reference']}.{name}")
    full = f"{_config['package']}.{name}"
    path = Path(_config["workspace"]) / _config["package"] / f"{name}.py"
    if not path.is_file():
        raise LearnerFileMissing(f"{_config['package']}/{name}.py is missing from your workspace "
                                 f"({path}); `llm-lab init` restores missing stubs")
    module = importlib.import_module(full)
    if type(module) is not types.ModuleType:
        raise CheckFailure(f"{_config['package']}/{name}.py replaced its own module object (its class is "
                           f"{type(module).__name__}); the grader accepts only plain modules. Remove the trick.")
    if "__getattr__" in vars(module):
        raise CheckFailure(f"{_config['package']}/{name}.py defines a module-level __getattr__; "
                           "the grader does not accept modules that answer every attribute. Remove it.")
    return module
