"""The given parts of every stub are the reference's, exactly.

A stub file mixes exercises (bodies that raise NotImplementedError) with complete code the learner
is handed (configs, data loading, training main()). That given code is a copy of the reference's; this
test fails, naming the file and the function, as soon as a copy drifts. Compared: every top-level
function and every method of a top-level class whose body does not raise NotImplementedError, by
ast.dump (signature, decorators and body; comments and the docstring may differ, since a stub's
docstring speaks to the learner). Not compared: class-level assignments, module constants.
"""
from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

from grader.missions import load_all

MISSIONS, _ = load_all()
ROOT = Path(__file__).resolve().parents[1]


def _functions(tree: ast.Module) -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{node.name}.{item.name}"] = item
    return out


def _is_exercise(fn: ast.AST) -> bool:
    for node in ast.walk(fn):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                return True
    return False


def _shape(fn: ast.AST) -> str:
    fn = copy.deepcopy(fn)
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        fn.body = body[1:] or [ast.Pass()]
    return ast.dump(fn)


def drift(stubs_dir: Path, reference_dir: Path) -> list[str]:
    """One line per given function of a stub that is missing from, or differs from, the reference."""
    problems = []
    for stub in sorted(stubs_dir.glob("*.py")):
        ref_path = reference_dir / stub.name
        given = {name: fn for name, fn in _functions(ast.parse(stub.read_text(encoding="utf-8"))).items()
                 if not _is_exercise(fn)}
        if not given:
            continue
        if not ref_path.is_file():
            problems.append(f"{_rel(stub)}: given code ({', '.join(given)}) but no reference file {_rel(ref_path)}")
            continue
        ref = _functions(ast.parse(ref_path.read_text(encoding="utf-8")))
        for name, fn in given.items():
            if name not in ref:
                problems.append(f"{_rel(stub)}: `{name}` is given in the stub but not in {_rel(ref_path)}")
            elif _shape(fn) != _shape(ref[name]):
                problems.append(f"{_rel(stub)}: `{name}` (line {fn.lineno}) differs from {_rel(ref_path)} "
                                f"(line {ref[name].lineno})")
    return problems


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


@pytest.mark.parametrize("mission", MISSIONS, ids=lambda m: m.id)
def test_given_stub_code_is_the_references(mission):
    problems = drift(mission.stubs_dir, mission.reference_dir)
    assert not problems, ("the given (non-exercise) code of a stub drifted from the reference; copy the "
                          "reference's version into the stub:\n" + "\n".join(problems))


def test_drift_is_named(tmp_path):
    stubs, ref = tmp_path / "stubs", tmp_path / "ref"
    stubs.mkdir(), ref.mkdir()
    (ref / "m.py").write_text('def given(x):\n    """ref doc"""\n    return x + 1\n\n\n'
                              'class C:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n')
    (stubs / "m.py").write_text('def given(x):\n    """stub doc"""\n    return x + 1  # same code\n\n\n'
                                'class C:\n    def f(self):\n        raise NotImplementedError("write me")\n\n'
                                '    def g(self):\n        return 3\n\n\ndef extra():\n    pass\n')
    problems = drift(stubs, ref)
    assert len(problems) == 2, problems
    assert "`C.g`" in problems[0] and "differs" in problems[0]
    assert "`extra`" in problems[1] and "not in" in problems[1]
