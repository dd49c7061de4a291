"""The lab's shape (issue 11), checked on its source:
- the training path lives in lab/training/ alone, with names that say what each file is;
- every message is in lab/messages.py (or nested in its widget, Textual's way) and has a handler;
- styles live in .tcss files, and every CSS_PATH names one that exists;
- `duplicates` (a tool on PATH where the project is developed) finds no pair of places in lab/.
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parent.parent / "lab"


def sources() -> list[Path]:
    return sorted(p for p in LAB.rglob("*.py") if "__pycache__" not in p.parts)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def message_classes() -> list[tuple[Path, str, str | None]]:
    """(file, class, enclosing class or None) of every Message subclass defined in lab/."""
    found = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def visit(body, outer):
            for node in body:
                if isinstance(node, ast.ClassDef):
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                    if "Message" in bases:
                        found.append((path, node.name, outer))
                    visit(node.body, node.name)
        visit(tree.body, None)
    return found


def test_the_training_path_is_one_folder():
    names = {p.relative_to(LAB).as_posix() for p in sources()}
    assert {"training/command.py", "training/headless.py", "training/screen.py", "training/job.py",
            "training/metrics_stream.py", "training/device_sampling.py"} <= names
    outside = [n for n in names if not n.startswith("training/") and re.search(r"train|telemetry|tailer", n)]
    assert outside == []                                     # no train_app.py, train_cli.py, screens/train.py
    assert [n for n in names if "telemetry" in n] == []      # one metrics stream, one device sampler


def test_every_message_lives_in_messages_py_and_has_a_handler():
    code = "\n".join(p.read_text(encoding="utf-8") for p in sources())
    classes = message_classes()
    assert classes
    for path, name, outer in classes:
        if outer is None:
            assert path.name == "messages.py", f"{path.relative_to(LAB)} defines message {name}"
        handler = f"on_{snake(outer) + '_' if outer else ''}{snake(name)}"
        assert f"def {handler}(" in code, f"{name} is posted but nothing handles it ({handler})"


def test_every_posted_message_is_one_of_ours():
    known = {name for _, name, _ in message_classes()}
    posted = set()
    for path in sources():
        posted |= set(re.findall(r"post_message\((?:self\.)?(\w+)\(", path.read_text(encoding="utf-8")))
    assert posted and posted <= known, posted - known


def test_styles_are_in_tcss_files():
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in ("DEFAULT_CSS", "CSS"):
                        raise AssertionError(f"{path.relative_to(LAB)}:{node.lineno} holds styles; "
                                             "put them in lab/styles/*.tcss")
                    if isinstance(target, ast.Name) and target.id == "CSS_PATH":
                        css = (path.parent / ast.literal_eval(node.value)).resolve()
                        assert css.suffix == ".tcss" and css.is_file(), css


@pytest.mark.skipif(shutil.which("duplicates") is None, reason="the `duplicates` tool is not installed here")
def test_no_duplicated_code_in_the_lab():
    out = subprocess.run(["duplicates", "--repo", str(LAB)], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("no duplicates"), out.stdout
