"""Who may import whom (docs/architecture.md, "Parts and who may import whom"), checked on the source:

- lab/ never imports torch, numpy or engine at module level (start-up stays light; the heavy work
  happens in child processes or behind a lazy import inside a function);
- grader/ never imports lab/ (anywhere); its keeper imports only the standard library;
- engine/ never imports lab/ or grader/ (anywhere); engine/shared/ never imports a reference;
- the stubs a learner starts from import nothing of engine/ but engine.shared.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def sources(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)


def _imported(node: ast.AST, path: Path) -> list[str]:
    """Absolute top-level names an Import/ImportFrom node imports ('' for relative imports)."""
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [""] if node.level else [(node.module or "").split(".")[0]]
    return []


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
           (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(path: Path) -> list[tuple[int, str]]:
    """Imports that run when the module is imported: top level, and inside top-level if/try/with
    blocks (but not `if TYPE_CHECKING:`), never inside functions or classes' methods."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []

    def visit(stmts):
        for node in stmts:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.extend((node.lineno, name) for name in _imported(node, path))
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)   # a class body runs at import time too
    visit(tree.body)
    return found


def all_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [(node.lineno, name) for node in ast.walk(tree) for name in _imported(node, path)]


def offenders(package: str, forbidden: set[str], *, module_level_only: bool) -> list[str]:
    out = []
    for path in sources(package):
        imports = module_level_imports(path) if module_level_only else all_imports(path)
        for line, name in imports:
            if name in forbidden:
                out.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return out


def test_the_scanner_sees_what_it_should(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
                     "try:\n    import numpy as np\nexcept ImportError:\n    np = None\n"
                     "def f():\n    import engine.gpt\nclass C:\n    from engine import data\n"
                     "from . import sibling\n")
    names = [n for _, n in module_level_imports(probe)]
    assert "numpy" in names and "engine" in names and "" in names
    assert "torch" not in names                         # TYPE_CHECKING only
    assert [n for _, n in all_imports(probe)].count("engine") == 2


def test_lab_never_imports_torch_numpy_or_engine_at_module_level():
    assert sources("lab"), "no lab sources found"
    assert offenders("lab", {"torch", "numpy", "engine"}, module_level_only=True) == []


def test_grader_never_imports_lab():
    assert offenders("grader", {"lab"}, module_level_only=False) == []


def test_engine_never_imports_lab_or_grader():
    assert offenders("engine", {"lab", "grader"}, module_level_only=False) == []


def _engine_imports(path: Path) -> list[tuple[int, str]]:
    """Dotted absolute imports of engine.* in a file (all of them, at any depth)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "engine"]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "engine":
            found += [(node.lineno, f"{node.module}.{a.name}" if node.module == "engine" else node.module)
                      for a in node.names]
    return found


def _shared(name: str) -> bool:
    return name == "engine.shared" or name.startswith("engine.shared.")


def test_shared_infrastructure_never_imports_a_reference():
    bad = [f"{p.relative_to(REPO)}:{line} imports {name}" for p in sources("engine/shared")
           for line, name in _engine_imports(p) if not _shared(name)]
    assert bad == []


def test_stubs_import_nothing_of_engine_but_shared():
    stubs = sorted((REPO / "missions").glob("*/stubs/**/*.py"))
    assert stubs, "no stubs found"
    bad = [f"{p.relative_to(REPO)}:{line} imports {name}" for p in stubs
           for line, name in _engine_imports(p) if not _shared(name)]
    assert bad == []


def test_the_keeper_imports_only_the_standard_library():
    names = {n for _, n in all_imports(REPO / "grader" / "keeper.py")}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names - set(sys.stdlib_module_names)


def test_importing_the_lab_loads_no_torch():
    """The same at run time, in a fresh interpreter (other tests' imports cannot leak in): every
    module of lab/ imported, and still no torch, numpy or engine."""
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                     for p in sources("lab") if p.name != "__main__.py")
    code = (f"import sys, json, importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps({m: m in sys.modules for m in ('torch', 'numpy', 'engine')}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"torch": False, "numpy": False, "engine": False}
