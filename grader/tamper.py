"""What code under test may have changed outside its workspace, found and undone.

- The mission's hidden check files: snapshotted before a grade, restored (and any new file there
  removed) before each result leaves the grader.
- state.json: restored to the last content a trusted process wrote (the lab's saves during the grade)
  or else to what it was before.
- The install (grader/, lab/, engine/, the mission's folder): fingerprinted before and after. A
  bytecode file that does not hold its source's code (a planted cache that the next `llm-lab` would
  run) is deleted and voids the grade; a changed source file is reported by name. Grading children never read or
  write caches beside installed files (grader.sandbox sets a private pycache prefix), so any change
  there came from code under test (or from you editing the project while it grades).
Not handled: changes to other installed packages (torch, numpy: reinstall them), or to files a
learner process changes and changes back before the grade ends.
"""
from __future__ import annotations

import hashlib
import marshal
import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


# -- files restored ---------------------------------------------------------------------------
def snapshot(paths) -> dict[Path, bytes | None]:
    snap = {}
    for p in paths:
        try:
            snap[Path(p)] = Path(p).read_bytes()
        except FileNotFoundError:
            snap[Path(p)] = None
    return snap


def restore(snap: dict[Path, bytes | None], also_new_in: Path | None = None) -> bool:
    """Put files back as they were (and remove new *.py files in `also_new_in`); True if any changed."""
    changed = False
    if also_new_in is not None:
        for extra in set(also_new_in.glob("*.py")) - set(snap):
            extra.unlink(missing_ok=True)
            changed = True
    for path, content in snap.items():
        try:
            now = path.read_bytes()
        except FileNotFoundError:
            now = None
        if now != content:
            changed = True
            if content is None:
                path.unlink(missing_ok=True)
            else:
                tmp = path.with_name(path.name + ".restore.tmp")
                tmp.write_bytes(content)
                os.replace(tmp, path)
    return changed


# -- the install ------------------------------------------------------------------------------
def install_roots(mission_root: Path, reference_dir: Path) -> list[Path]:
    """What a grade must leave as it found: the trusted code and this mission's own files."""
    return [PROJECT / "grader", PROJECT / "lab", PROJECT / "engine" / "shared", reference_dir, mission_root]


def fingerprint(roots: list[Path]) -> dict[str, str]:
    """path -> sha1 of every file under `roots` (bytecode caches included)."""
    out = {}
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    with open(path, "rb") as f:
                        out[path] = hashlib.sha1(f.read()).hexdigest()
                except OSError:
                    continue
    return out


def _source_of(pyc: Path) -> Path:
    """x/__pycache__/name.cpython-311[.opt-1].pyc -> x/name.py"""
    return pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")


def honest_bytecode(pyc: Path) -> bool:
    """The cache holds exactly what its source compiles to (code objects compared, not bytes)."""
    source = _source_of(pyc)
    try:
        code = marshal.loads(pyc.read_bytes()[16:])
        return code == compile(source.read_bytes(), str(source), "exec", dont_inherit=True)
    except Exception:  # unreadable, not bytecode, no source, a source that no longer compiles
        return False


def check_install(before: dict[str, str], roots: list[Path]) -> tuple[list[str], bool]:
    """Compare the install with `before`; delete planted bytecode. Returns one message per problem,
    and whether bytecode was planted (which voids the verdict: it can only come from code under test;
    a changed source file may be your own edit, so it is reported and the verdict stands)."""
    after = fingerprint(roots)
    problems, code_changed = [], False
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            continue
        p = Path(path)
        rel = os.path.relpath(path, PROJECT)
        if p.suffix == ".pyc" and "__pycache__" in p.parts:
            if path in after and not honest_bytecode(p):
                p.unlink(missing_ok=True)
                code_changed = True
                problems.append(f"{rel}: a bytecode cache that does not match its source was written into "
                                f"the install during grading; it was deleted")
            continue   # a cache Python itself (re)wrote, or one that was removed: harmless
        what = "removed" if path not in after else "created" if path not in before else "changed"
        problems.append(f"{rel} was {what} during grading (by code under test? If you edited it "
                        f"yourself, grade again)")
    return problems, code_changed
