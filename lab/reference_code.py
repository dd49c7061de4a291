"""The part of a reference file a learner has earned: the Reference view shows only that.

    view = reference_view(mission, "value.py", passed={"forward"})
    view.code        # the reference source, with the bodies not earned yet replaced by a note
    view.hidden      # {"Value": ("backward",)}: what stays hidden, and which checkpoints open it

Derived from the mission's own data, no extra field: an *exercise* is a function or method whose
stub raises NotImplementedError (or that the stub does not have at all); everything else is given
code the learner already has, shown as is. Each exercise belongs to a top-level unit (a function,
or a class with all its methods), and a unit belongs to the checkpoints that grade its file and
whose check files name it (the unit's name or one of its methods'); when none names it, to every
checkpoint that grades the file. A unit's exercise bodies are shown once all its checkpoints have
passed. Sharing a file is therefore conservative: micrograd's Value holds the forward operations
and their backward closures, so it opens when both forward and backward have passed.
Not handled: exercises nested deeper than a class's methods (their enclosing method is the unit).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.missions import Mission

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class ReferenceView:
    name: str                                    # package-relative file name
    code: str                                    # what may be shown
    hidden: dict[str, tuple[str, ...]] = field(default_factory=dict)   # unit -> checkpoint ids it waits for
    error: str | None = None                     # the file could not be read


def _raises_not_implemented(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Raise) and n.exc is not None:
            exc = n.exc.func if isinstance(n.exc, ast.Call) else n.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                return True
    return False


def _functions(tree: ast.Module) -> dict[str, ast.AST]:
    """{qualified name: node} of top-level functions and of methods of top-level classes."""
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, _FUNCS):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, _FUNCS):
                    out[f"{node.name}.{item.name}"] = item
    return out


def exercises(reference: ast.Module, stub: ast.Module | None) -> set[str]:
    """Qualified names of the reference's functions the learner writes."""
    given = {q for q, n in _functions(stub).items() if not _raises_not_implemented(n)} if stub else set()
    return {q for q in _functions(reference) if q not in given}


def _check_text(mission: Mission, checkpoint) -> str:
    texts = []
    for entry in checkpoint.checks:
        path = mission.checks_dir / entry.split("::", 1)[0]
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return "\n".join(texts)


def owners(mission: Mission, name: str, unit: str, methods: list[str]) -> tuple[str, ...]:
    """The checkpoints a unit of file `name` belongs to (see the module's docstring)."""
    graders = [c for c in mission.checkpoints if name in c.files]
    words = [unit] + [m for m in methods if not (m.startswith("__") and m.endswith("__"))]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b")
    naming = [c for c in graders if pattern.search(_check_text(mission, c))]
    return tuple(c.id for c in (naming or graders))


def reference_view(mission: Mission, name: str, passed: set[str]) -> ReferenceView:
    path = mission.reference_dir / name
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
        tree = ast.parse(source)
    except (OSError, SyntaxError) as e:
        return ReferenceView(name, "", error=f"cannot read {path}: {e}")
    try:
        stub = ast.parse((mission.stubs_dir / name).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError):
        stub = None
    todo = exercises(tree, stub)
    lines = source.splitlines(keepends=True)
    cuts: list[tuple[int, int, str]] = []         # (first line index, end index, replacement)
    hidden: dict[str, tuple[str, ...]] = {}
    titles = {c.id: c.title for c in mission.checkpoints}
    for node in tree.body:
        if isinstance(node, _FUNCS):
            unit, members = node.name, [(node.name, node)]
        elif isinstance(node, ast.ClassDef):
            unit = node.name
            members = [(f"{node.name}.{i.name}", i) for i in node.body if isinstance(i, _FUNCS)]
        else:
            continue
        mine = [(q, n) for q, n in members if q in todo]
        if not mine:
            continue
        needed = owners(mission, name, unit, [q.split(".")[-1] for q, _ in members])
        missing = tuple(c for c in needed if c not in passed)
        if not missing:
            continue
        hidden[unit] = missing
        note = "hidden until you pass: " + "; ".join(titles.get(c, c) for c in missing)
        for _q, fn in mine:
            cuts.append(_body_cut(fn, lines, note))
    for start, end, text in sorted(cuts, reverse=True):
        lines[start:end] = [text]
    return ReferenceView(name, "".join(lines), hidden)


def _body_cut(fn: ast.AST, lines: list[str], note: str) -> tuple[int, int, str]:
    """Replace a function's body (after its docstring, if any) by `...  # note`."""
    body = fn.body
    first = body[0]
    if first.lineno == fn.lineno:                 # `def f(): return x` on one line: drop it whole
        start = (fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno) - 1
        line = lines[start]
        indent = line[:len(line) - len(line.lstrip())]
        return start, fn.end_lineno, f"{indent}# {fn.name}: {note}\n"
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str) and len(body) > 1:
        start = first.end_lineno                  # keep the docstring
        indent_from = body[1]
    else:
        start = first.lineno - 1
        indent_from = first
    line = lines[indent_from.lineno - 1]
    indent = line[:len(line) - len(line.lstrip())]
    return start, fn.end_lineno, f"{indent}...  # {note}\n"


def reference_path(mission: Mission, name: str) -> Path:
    return mission.reference_dir / name
