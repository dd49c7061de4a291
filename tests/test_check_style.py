"""A lint over every mission's hidden checks (missions/*/checks/*.py): verdicts go through the
grader's captured helpers (grader/checks.py), never through a raw comparison of the learner's values.

Why: learner code runs in the same process as the checks. It can patch torch.allclose or
numpy.testing, or return a float subclass whose __sub__ returns 0 or an object whose __eq__ says
True; a raw comparison then turns a failure into a pass. The helpers were captured before any learner
module was imported, and they reduce values to exact built-in types first.

What is flagged
  R1  `assert` statements (anywhere in a check file).
  R2  calls to comparison functions (anywhere): torch.equal / allclose / isclose, torch.testing.*,
      numpy allclose / isclose / array_equal / array_equiv, numpy.testing.*, math.isclose, and methods
      of those names on any object (`t.allclose(u)`), whatever the import alias.
  R3  in a verdict position, a comparison (==, !=, <, <=, >, >=, in, not in) unless every operand is
      exact: a literal, a call to len / as_int / as_float / expect_between, arithmetic of exact values,
      or a name bound only to exact values in its function (or at module level). `is` is never
      flagged. An `abs(a - b) <= tol` comparison is named as such. In an if's test (not in expect()),
      membership (`key in seen`) and comparisons with a string literal (`kind == "error"`) are taken
      for dispatch and left alone.

A verdict position is
  - the condition of `expect(condition, message)`;
  - the test of an `if` whose branch skips the rest of a check (a bare `return`, `continue`);
  - the test of an `if` whose branch fails (`fail(...)`, `raise`) when no other verdict (a call to
    expect*, check*, fail) follows in the same function: then this comparison alone decides.
An `if` that only picks a message before a later helper call, and code that computes expected
values or messages (diagnose functions), are not verdict positions.

Opt-out, for a comparison that is safe for a reason the lint cannot see: a comment on the flagged
line (or the first line of its statement) `# raw-ok: <why>`, e.g. `# raw-ok: both are reference tensors`.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK_FILES = sorted(ROOT.glob("missions/*/checks/*.py"))

BANNED = {"torch.equal", "torch.allclose", "torch.isclose", "numpy.allclose", "numpy.isclose",
          "numpy.array_equal", "numpy.array_equiv", "math.isclose"}
BANNED_PREFIXES = ("torch.testing.", "numpy.testing.", "unittest.")
BANNED_METHODS = {"allclose", "isclose", "equal", "array_equal", "array_equiv", "assert_close",
                  "assert_allclose", "assert_array_equal", "assert_equal", "assert_almost_equal"}
EXACT_CALLS = {"len", "as_int", "as_float", "expect_between", "isinstance", "type", "id", "hasattr", "callable"}
EXACT_IF_ARGS = {"int", "float", "str", "bool", "round", "abs", "min", "max"}   # exact when their args are
ABS_CALLS = {"abs", "numpy.abs", "numpy.absolute", "numpy.fabs", "math.fabs", "torch.abs"}
RAW_OK = re.compile(r"#\s*raw-ok:\s*\S")
COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted module path, from the file's imports (np -> numpy, allclose -> numpy.allclose)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id)
    return ".".join([head] + parts[::-1])


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


class _Scope:
    """Which names are bound only to exact values, in one function (falling back to module level)."""

    def __init__(self, body_owner: ast.AST, parent: "_Scope | None"):
        self.parent = parent
        self.bindings: dict[str, list[ast.AST | None]] = {}     # None: a binding of unknown value
        if isinstance(body_owner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = body_owner.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                self.bindings.setdefault(arg.arg, []).append(None)
        for node in _walk_own(body_owner):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    self._bind(t, node.value)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                self._bind(node.target, node.value)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                self._bind(node.target, None)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        self._bind(item.optional_vars, None)
            elif isinstance(node, ast.NamedExpr):
                self._bind(node.target, node.value)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.bindings.setdefault(node.name, []).append(None)

    def _bind(self, target, value):
        if isinstance(target, ast.Name):
            self.bindings.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._bind(t, None)

    def exact_name(self, name: str, seen: frozenset = frozenset()) -> bool:
        if name in seen:
            return False
        if name in self.bindings:
            return all(v is not None and self.exact(v, seen | {name}) for v in self.bindings[name])
        return self.parent is not None and self.parent.exact_name(name, seen)

    def exact(self, node: ast.AST, seen: frozenset = frozenset()) -> bool:
        if isinstance(node, (ast.Constant, ast.JoinedStr)):
            return True
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return all(self.exact(e, seen) for e in node.elts)
        if isinstance(node, ast.Name):
            return self.exact_name(node.id, seen)
        if isinstance(node, ast.BinOp):
            return self.exact(node.left, seen) and self.exact(node.right, seen)
        if isinstance(node, ast.UnaryOp):
            return self.exact(node.operand, seen)
        if isinstance(node, ast.BoolOp):
            return all(self.exact(v, seen) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.exact(node.body, seen) and self.exact(node.orelse, seen)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in EXACT_CALLS:
                return True
            if node.func.id in EXACT_IF_ARGS:
                return all(self.exact(a, seen) for a in node.args) and not node.keywords
        return False


def _walk_own(owner: ast.AST):
    """The nodes of owner's body, not descending into nested functions, lambdas or classes."""
    stack = list(ast.iter_child_nodes(owner))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def _is_verdict_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = _call_name(node)
    return name is not None and (name.startswith("expect") or name.startswith("check") or name == "fail")


def _branch_kind(stmts: list[ast.stmt]) -> str | None:
    """'skip' if the branch ends a check early, 'fail' if it fails, else None (direct statements only)."""
    kind = None
    for s in stmts:
        if isinstance(s, ast.Continue) or (isinstance(s, ast.Return) and (
                s.value is None or (isinstance(s.value, ast.Constant) and s.value.value is None))):
            return "skip"
        if isinstance(s, ast.Raise) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                                        and _call_name(s.value) in ("fail", "skip", "xfail")):
            kind = "fail"
    return kind


class _Lint(ast.NodeVisitor):
    def __init__(self, path: Path, source: str):
        self.path, self.lines = path, source.splitlines()
        self.tree = ast.parse(source, filename=str(path))
        self.aliases = _aliases(self.tree)
        self.problems: list[str] = []
        self.scope = _Scope(self.tree, None)
        self.function: ast.AST | None = None
        self.statement: ast.stmt | None = None

    def report(self, node: ast.AST, message: str) -> None:
        first = self.statement.lineno if self.statement is not None else node.lineno
        last = getattr(node, "end_lineno", node.lineno) or node.lineno
        if any(RAW_OK.search(self.lines[i - 1]) for i in range(min(first, node.lineno), last + 1)
               if 0 < i <= len(self.lines)):
            return
        rel = self.path.relative_to(ROOT)
        self.problems.append(f"{rel}:{node.lineno}: {message}: {ast.unparse(node)[:100]}")

    # -- scopes and statements --------------------------------------------------------------------
    def _visit_function(self, node):
        outer = (self.scope, self.function)
        self.scope, self.function = _Scope(node, self.scope), node
        self.generic_visit(node)
        self.scope, self.function = outer

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _visit_function

    def visit(self, node):
        if not isinstance(node, ast.stmt):
            return super().visit(node)
        outer, self.statement = self.statement, node
        try:
            return super().visit(node)
        finally:
            self.statement = outer

    # -- R1 ----------------------------------------------------------------------------------------
    def visit_Assert(self, node):
        self.report(node, "assert statement in a check (use grader.checks: expect, expect_equal, ...)")
        self.generic_visit(node)

    # -- R2 ----------------------------------------------------------------------------------------
    def visit_Call(self, node):
        name = _dotted(node.func, self.aliases)
        if name is not None and (name in BANNED or name.startswith(BANNED_PREFIXES)):
            self.report(node, f"{name} compares outside the captured helpers (use expect_close / expect_equal "
                              "/ is_close)")
        elif (isinstance(node.func, ast.Attribute) and node.func.attr in BANNED_METHODS
              and (name is None or not name.startswith("grader."))):
            self.report(node, f".{node.func.attr}() compares outside the captured helpers (use expect_close / "
                              "expect_equal / is_close)")
        if isinstance(node.func, ast.Name) and node.func.id == "expect" and node.args:
            self._verdict(node.args[0], "the condition of expect()")
        self.generic_visit(node)

    # -- R3 ----------------------------------------------------------------------------------------
    def visit_If(self, node):
        orelse = node.orelse if not (len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If)) else []
        kinds = {_branch_kind(node.body), _branch_kind(orelse)}
        if "skip" in kinds:
            self._verdict(node.test, "an if that ends the check early", strict=False)
        elif "fail" in kinds and not self._verdict_follows(node):
            self._verdict(node.test, "an if whose fail() is the last verdict of its function", strict=False)
        self.generic_visit(node)

    def _verdict_follows(self, node: ast.If) -> bool:
        owner = self.function if self.function is not None else self.tree
        end = node.end_lineno or node.lineno
        return any(_is_verdict_call(n) and n.lineno > end for n in _walk_own(owner))

    def _verdict(self, condition: ast.AST, where: str, strict: bool = True) -> None:
        """Flag the raw comparisons in `condition`. Not strict (an if's test): dispatch on a string
        literal (`kind == "error"`) and membership (`key in seen`) count as control flow."""
        stack = [condition]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Lambda):
                continue
            if isinstance(node, ast.Compare) and any(isinstance(op, COMPARE_OPS) for op in node.ops):
                operands = [node.left, *node.comparators]
                if not strict and (any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) or any(
                        isinstance(o, ast.Constant) and isinstance(o.value, str) for o in operands)):
                    stack.extend(ast.iter_child_nodes(node))
                    continue
                if any(self._abs_difference(o) for o in operands):
                    self.report(node, f"abs(a - b) compared with a tolerance in {where} (a float subclass "
                                      "decides its own __sub__; use expect_close / is_close)")
                elif not all(self.scope.exact(o) for o in operands):
                    self.report(node, f"raw comparison decides the verdict in {where} (reduce with as_float / "
                                      "as_int first, or use expect_equal / expect_between / is_close)")
            stack.extend(ast.iter_child_nodes(node))

    def _abs_difference(self, node: ast.AST) -> bool:
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                name = _dotted(n.func, self.aliases)
                arg = n.args[0] if n.args else (n.func.value if isinstance(n.func, ast.Attribute)
                                                 and n.func.attr == "abs" else None)
                if (name in ABS_CALLS or (isinstance(n.func, ast.Attribute) and n.func.attr == "abs")) and \
                        isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Sub):
                    return True
        return False


def lint_source(source: str, path: Path | None = None) -> list[str]:
    linter = _Lint(path or ROOT / "missions" / "example" / "checks" / "test_example.py", source)
    linter.visit(linter.tree)
    return linter.problems


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: str(p.relative_to(ROOT / "missions")))
def test_check_file_compares_only_through_helpers(path):
    problems = lint_source(path.read_text(encoding="utf-8"), path)
    assert not problems, ("raw comparisons of values in a check file (see tests/test_check_style.py for the "
                          "rules and the `# raw-ok: <why>` opt-out):\n" + "\n".join(problems))


# -- the lint itself: what it flags, and what it leaves alone -------------------------------------
FLAGGED = {
    "assert": "def test_x():\n    assert f() == 3\n",
    "torch.allclose": "import torch\ndef test_x():\n    ok = torch.allclose(a, b)\n",
    "aliased numpy.testing": "from numpy import testing as npt\ndef test_x():\n    npt.assert_allclose(a, b)\n",
    "from-import allclose": "from numpy import allclose\ndef test_x():\n    allclose(a, b)\n",
    "tensor method": "def test_x():\n    if t.allclose(u):\n        pass\n",
    "math.isclose": "import math\ndef test_x():\n    math.isclose(a, b)\n",
    "expect(==)": "def test_x():\n    got = f()\n    expect(got == [1, 2], 'm')\n",
    "expect(all(==))": "def test_x():\n    expect(all(g == 0.0 for g in grads), 'm')\n",
    "expect(str ==)": "def test_x():\n    expect(tok.decode(ids) == 'abc', 'm')\n",
    "early pass": "def test_x():\n    got = f()\n    if got == 3:\n        return\n    fail('m')\n",
    "continue past a check": "def test_x():\n    for g in gs:\n        if g != 0:\n            continue\n        expect_equal(g, 1, what='g')\n",
    "last verdict": "def test_x():\n    correct = sum(f())\n    if correct != 30:\n        fail('m')\n",
    "abs difference": "def test_x():\n    g = f()\n    if not abs(g - 1.0) <= 1e-6:\n        fail('m')\n",
    "np.abs difference": "import numpy as np\ndef test_x():\n    expect(bool((np.abs(a - b) < 1e-6).all()), 'm')\n",
    "else branch fails": "def test_x():\n    if f() < 3:\n        pass\n    else:\n        fail('m')\n",
}

CLEAN = {
    "helpers": "def test_x():\n    expect_equal(f(), [1, 2], what='f')\n    check_close(g(), 1.0, what='g', atol=0)\n",
    "diagnosis before a helper": ("def test_x():\n    got = f()\n    if got.shape == (3, 2):\n        fail('transposed')\n"
                                  "    expect_close(got, want, what='f', atol=0)\n"),
    "exact values": ("TARGET = 0.9\ndef test_x():\n    acc = as_float(f(), what='a')\n    n = len(g())\n"
                     "    if acc < TARGET or n != 3:\n        fail('m')\n"),
    "is": "def test_x():\n    ok = f()\n    if ok is not True:\n        fail('m')\n",
    "control flow": "def test_x():\n    for i in range(10):\n        if i % 2 == 0:\n            total = i\n",
    "dispatch": ("def test_x():\n    for role, p in f():\n        if role == 'bias' or p in seen:\n            continue\n"
                 "        expect_close(p, 0.0, what='p', atol=0)\n"),
    "search loop": "def test_x():\n    for k in range(3):\n        if f(k) < 1:\n            break\n",
    "diagnose function": ("def _why(g, w):\n    if abs(g - w) < 1e-3:\n        return 'close'\n    return None\n"
                          "def test_x():\n    check_close(f(), 1.0, what='f', atol=0, diagnose=_why)\n"),
    "diagnose lambda": "def test_x():\n    check_close(f(), 1.0, what='f', atol=0, diagnose=lambda g, w: 'x' if g == 2 else None)\n",
    "opt-out": "import torch\ndef test_x():\n    ok = torch.equal(a, b)   # raw-ok: both are reference tensors\n",
    "grader helper named equal": "from grader import checks\ndef test_x():\n    checks.expect_equal(a, b, what='x')\n",
}


@pytest.mark.parametrize("name", sorted(FLAGGED))
def test_lint_flags(name):
    assert lint_source(FLAGGED[name]), f"the lint missed: {name}"


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_lint_leaves_alone(name):
    assert lint_source(CLEAN[name]) == [], f"the lint fired on: {name}"


def test_opt_out_needs_a_reason():
    assert lint_source("def test_x():\n    assert x  # raw-ok:\n")
