"""Importing the learner's package from a workspace: only that package, always from source.

Used by the grader's child (grader.seam) and the training job (grader.train_child). Not handled: packages
spread over several folders, compiled extension modules in the workspace.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
from pathlib import Path


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles from the source file every time; never reads or writes __pycache__."""

    def get_code(self, fullname):
        source = self.get_data(self.path)
        return compile(source, self.path, "exec", dont_inherit=True)


INSTALL = Path(__file__).resolve().parent.parent   # the project: engine/, grader/, missions/, lab/


class LinkedFileError(ImportError):
    """A workspace file is a link into the installed project (e.g. to the reference solution)."""


def _installed_inodes() -> set[tuple[int, int]]:
    found = set()
    for top in ("engine", "grader", "missions", "lab"):
        for path in (INSTALL / top).rglob("*.py"):
            try:
                st = path.stat()
                found.add((st.st_dev, st.st_ino))
            except OSError:
                continue
    return found


def refuse_links(file: Path, folder: Path) -> None:
    """A learner module must be a file of its own: not a symbolic link leading out of the package
    folder, and not a hard link to an installed file."""
    real = Path(os.path.realpath(file))
    if any(real.is_relative_to(INSTALL / top) for top in ("engine", "grader", "missions", "lab")):
        raise LinkedFileError(f"{file.name} in your workspace leads into the installed project ({real}); "
                              "learner files must be your own files, not links (replace it with a real file)")
    if not real.is_relative_to(Path(os.path.realpath(folder))):
        raise LinkedFileError(f"{file.name} in your workspace is a link to {real}; learner files must be "
                              "your own files, not links (replace it with a real file)")
    st = real.stat()
    if st.st_nlink > 1 and (st.st_dev, st.st_ino) in _installed_inodes():
        raise LinkedFileError(f"{file.name} in your workspace is a hard link to a file of the installed "
                              "project; learner files must be your own (replace it with a real file)")


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
            refuse_links(init, self.folder)
            return importlib.util.spec_from_file_location(
                fullname, init, loader=_FreshSourceLoader(fullname, str(init)),
                submodule_search_locations=[str(base)])
        if base.is_dir():  # a package folder without __init__.py: a namespace package
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [str(base)]
            return spec
        file = base.with_suffix(".py")
        if file.is_file():
            refuse_links(file, self.folder)
            return importlib.util.spec_from_file_location(fullname, file,
                                                          loader=_FreshSourceLoader(fullname, str(file)))
        return None
