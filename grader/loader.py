"""Importing the learner's package from a workspace: only that package, always from source.

Used by the grader's child (grader.seam) and the training job (grader.train_child). Not handled: packages
spread over several folders, compiled extension modules in the workspace.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
from pathlib import Path


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles from the source file every time; never reads or writes __pycache__."""

    def get_code(self, fullname):
        source = self.get_data(self.path)
        return compile(source, self.path, "exec", dont_inherit=True)


class LearnerFinder(importlib.abc.MetaPathFinder):
    """Finds `package` and its submodules in `folder` (the workspace's package folder), nothing else:
    no other file in the workspace can shadow a library, and sources are always read fresh."""

    def __init__(self, package: str, folder: Path):
        self.package, self.folder = package, Path(folder)

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.package and not fullname.startswith(self.package + "."):
            return None
        base = self.folder.joinpath(*fullname.split(".")[1:])
        if (base / "__init__.py").is_file():
            init = base / "__init__.py"
            return importlib.util.spec_from_file_location(
                fullname, init, loader=_FreshSourceLoader(fullname, str(init)),
                submodule_search_locations=[str(base)])
        if base.is_dir():  # a package folder without __init__.py: a namespace package
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [str(base)]
            return spec
        file = base.with_suffix(".py")
        if file.is_file():
            return importlib.util.spec_from_file_location(fullname, file,
                                                          loader=_FreshSourceLoader(fullname, str(file)))
        return None
