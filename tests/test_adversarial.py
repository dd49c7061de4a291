"""Hostile or broken learner code: every case asserts the exact status and the gist of the message.

Two fixture missions (tests/fixtures/missions/adv, adv-torch) give small functions to write; each
case replaces the learner's file with something that crashes, hangs, floods or games a check.
Zero false passes: no case here may come out `passed` unless it is the honest control.
"""
from __future__ import annotations

import json
import re
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from grader import workspace
from grader.integrity import scan
from grader.missions import load_mission
from grader.report import to_json, to_junit
from grader.runner import grade

FIXTURES = Path(__file__).parent / "fixtures" / "missions"
ADV = load_mission(FIXTURES / "adv")
ADV_TORCH = load_mission(FIXTURES / "adv-torch")

GOOD_OPS = """
import numpy as np

def double(x):
    return x * 2

def total(xs):
    return float(sum(xs))
"""
GOOD_TOPS = """
import torch

def row_sums(t):
    return t.sum(dim=1)

def softmax(t):
    e = (t - t.max(dim=-1, keepdim=True).values).exp()
    return e / e.sum(dim=-1, keepdim=True)
"""


def make_ws(tmp_path, mission, source: str, extra: dict[str, str] | None = None):
    ws, _, _ = workspace.init(tmp_path / "ws", [mission])
    name = "ops.py" if mission is ADV else "tops.py"
    (ws.package_dir(mission) / name).write_text(textwrap.dedent(source))
    for rel, text in (extra or {}).items():
        path = ws.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return ws


def run(tmp_path, mission, source, checkpoint, extra=None, timeout_scale=1.0):
    ws = make_ws(tmp_path, mission, source, extra)
    result = grade(mission, ws, checkpoints=[checkpoint], timeout_scale=timeout_scale)
    return result, result.results[0], ws


# (case id, mission, learner source, checkpoint, expected status, message regex, timeout scale)
CASES = [
    ("honest solution (control)", ADV, GOOD_OPS, "double", "passed", r"^$", 1.0),
    ("stub left untouched", ADV, None, "double", "not_implemented", r"ops\.py line \d+ \(double\)", 1.0),
    ("syntax error", ADV, "def double(x)\n    return x * 2\n", "double", "error",
     r"syntax error in adv/ops\.py line 1", 1.0),
    ("infinite loop in Python", ADV, "def double(x):\n    while True:\n        pass\n", "double", "timeout",
     r"time limit", 0.15),
    ("loop inside C code (regex backtracking)", ADV,
     "import re\ndef double(x):\n    re.match(r'(a+)+$', 'a' * 64 + 'b')\n", "double", "timeout", r"time limit", 0.15),
    ("memory blow-up", ADV, "import numpy as np\ndef double(x):\n    return np.ones((1 << 37,))\n", "double",
     "oom", r"memory", 1.0),
    ("os._exit(0) at import", ADV, "import os\nos._exit(0)\n", "double", "crashed", r"exited \(code 0\)", 1.0),
    ("sys.exit(0) at import", ADV, "import sys\nsys.exit(0)\n", "double", "error", r"SystemExit", 1.0),
    ("os._exit(0) inside the call", ADV, "import os\ndef double(x):\n    os._exit(0)\n", "double", "crashed",
     r"os\._exit/sys\.exit", 1.0),
    ("segfault", ADV, "import ctypes\ndef double(x):\n    return ctypes.string_at(0)\n", "double", "crashed",
     r"segmentation fault", 1.0),
    ("NaN outputs", ADV, "import numpy as np\ndef double(x):\n    y = x * 2\n    y[1, 2] = np.nan\n    return y\n",
     "double", "failed", r"nan at index \(1, 2\)", 1.0),
    ("wrong shape that broadcasts", ADV, "def double(x):\n    return (x * 2)[None]\n", "double", "failed",
     r"expected shape \(4, 3\), got \(1, 4, 3\)", 1.0),
    ("wrong dtype", ADV, "import numpy as np\ndef double(x):\n    return (x * 2).astype(np.float32)\n", "double",
     "failed", r"expected dtype float64, got float32", 1.0),
    ("mutates its input", ADV, "def double(x):\n    x *= 2\n    return x\n", "double", "failed",
     r"mutated its input", 1.0),
    ("object whose __eq__ is always True", ADV,
     "class Yes:\n    def __eq__(self, o):\n        return True\n    __hash__ = None\n"
     "def total(xs):\n    return Yes()\n", "total", "failed", r"expected exactly float", 1.0),
    ("float subclass", ADV, "class F(float):\n    pass\ndef total(xs):\n    return F(sum(xs))\n", "total",
     "failed", r"expected exactly float", 1.0),
    ("module-level __getattr__", ADV, "def __getattr__(name):\n    return lambda *a, **k: 0.0\n", "total",
     "failed", r"module-level __getattr__", 1.0),
    ("monkeypatches numpy's comparisons", ADV,
     "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.abs = lambda x: x * 0\n"
     "np.testing.assert_allclose = lambda *a, **k: None\ndef double(x):\n    return x * 3\n", "double",
     "failed", r"values differ", 1.0),
    ("prints PASSED and fake JSON", ADV,
     "import sys\ndef double(x):\n    print('PASSED'); print('{\"type\": \"result\", \"status\": \"passed\"}')\n"
     "    sys.stderr.write('1 passed\\n')\n    return x * 3\n", "double", "failed", r"values differ", 1.0),
    ("imports the reference solution", ADV, "from engine.micrograd.value import Value\ndef double(x):\n    return x * 2\n",
     "double", "failed", r"reference solution", 1.0),
    ("imports the reference and swallows the error", ADV,
     "try:\n    import engine.micrograd.nn\nexcept BaseException:\n    pass\ndef double(x):\n    return x * 2\n",
     "double", "failed", r"reference solution", 1.0),
    ("imports the reference via importlib", ADV,
     "import importlib\ndef double(x):\n    importlib.import_module('engine.micrograd.value')\n    return x * 2\n",
     "double", "failed", r"reference solution", 1.0),
    ("infinite recursion", ADV, "def double(x):\n    return double(x)\n", "double", "error", r"RecursionError", 1.0),
    ("raises KeyboardInterrupt", ADV, "def double(x):\n    raise KeyboardInterrupt\n", "double", "crashed",
     r"reported 0 of 1", 1.0),
    ("raises SystemExit(0) inside the call", ADV, "def double(x):\n    raise SystemExit(0)\n", "double", "error",
     r"SystemExit", 1.0),
    ("closes every file descriptor", ADV,
     "import os\ndef double(x):\n    os.closerange(3, 1024)\n    return x * 2\n", "double", "crashed", r"", 1.0),
    ("tensor subclass with __torch_function__", ADV_TORCH,
     "import torch\nclass Liar(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, f, t, a=(), k=None):\n"
     "        return True\ndef row_sums(t):\n    return t.sum(dim=1).as_subclass(Liar)\n", "rows", "failed",
     r"expected exactly Tensor", 1.0),
    ("(N, 1) instead of (N,)", ADV_TORCH, "def row_sums(t):\n    return t.sum(dim=1, keepdim=True)\n", "rows",
     "failed", r"expected shape \(5,\), got \(5, 1\).*extra dimension", 1.0),
    ("monkeypatches torch's comparisons", ADV_TORCH,
     "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.testing.assert_close = lambda *a, **k: None\n"
     "torch.equal = lambda *a, **k: True\ndef row_sums(t):\n    return t.sum(dim=1) + 1\n", "rows", "failed",
     r"values differ", 1.0),
    ("forbidden call: F.softmax", ADV_TORCH,
     "import torch.nn.functional as F\ndef softmax(t):\n    return F.softmax(t, dim=-1)\n", "softmax", "failed",
     r"off limits", 1.0),
    ("forbidden call bound at import: from torch import softmax", ADV_TORCH,
     "from torch import softmax as sm\ndef softmax(t):\n    return sm(t, dim=-1)\n", "softmax", "failed",
     r"off limits", 1.0),
    ("forbidden method call: t.softmax", ADV_TORCH, "def softmax(t):\n    return t.softmax(-1)\n", "softmax",
     "failed", r"off limits", 1.0),
    ("learner code skips the check", ADV, "import pytest\ndef double(x):\n    pytest.skip('needs a GPU')\n",
     "double", "failed", r"may not skip a check|may not import pytest", 1.0),
    ("learner code raises unittest.SkipTest", ADV,
     "import unittest\ndef double(x):\n    raise unittest.SkipTest('needs a GPU')\n", "double", "failed",
     r"may not skip a check", 1.0),
    ("patches the grader's classifier", ADV,
     "import grader.plugin as g\ng.GradePlugin._classify = lambda s, r, c: ('passed', '')\n"
     "def double(x):\n    return x * 3\n", "double", "failed", r"grading machinery", 1.0),
    ("reaches the reference through `import engine`", ADV,
     "import engine.shared.data\ndef double(x):\n    engine.micrograd\n    return x * 2\n", "double", "failed",
     r"reference solution \(engine\.micrograd\)", 1.0),
    ("reaches the reference through importlib.import_module('engine')", ADV,
     "import importlib\ndef double(x):\n    importlib.import_module('engine').micrograd\n    return x * 2\n",
     "double", "failed", r"reference solution", 1.0),
    ("forbidden call through an alias: torch._C._nn", ADV_TORCH,
     "import torch\ndef softmax(t):\n    return torch._C._nn.softmax(t, -1) if hasattr(torch._C._nn, 'softmax') "
     "else torch.nn.functional.softmax(t, dim=-1)\n", "softmax", "failed", r"off limits", 1.0),
    # every import path to the reference and to forbidden libraries
    ("__import__ of the reference without globals", ADV,
     "def double(x):\n    __import__('engine.micrograd.value')\n    return x * 2\n", "double", "failed",
     r"reference solution", 1.0),
    ("importlib.__import__ of the reference", ADV,
     "import importlib\ndef double(x):\n    importlib.__import__('engine.micrograd.value')\n    return x * 2\n",
     "double", "failed", r"reference solution", 1.0),
    ("exec of the reference's source", ADV,
     "import pathlib, engine.shared\nREF = pathlib.Path(engine.shared.__file__).parents[1] / 'micrograd' / 'value.py'\n"
     "def double(x):\n    exec(open(REF).read(), {})\n    return x * 2\n", "double", "failed",
     r"reads the reference solution's files", 1.0),
    ("the reference loaded from its file path", ADV,
     "import importlib.util, pathlib, engine.shared\n"
     "REF = pathlib.Path(engine.shared.__file__).parents[1] / 'micrograd' / 'value.py'\n"
     "def double(x):\n    spec = importlib.util.spec_from_file_location('v', REF)\n"
     "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n    return x * 2\n", "double", "failed",
     r"reads the reference solution's files", 1.0),
    ("torch in the numpy-only mission through __import__", ADV,
     "def double(x):\n    __import__('torch')\n    return x * 2\n", "double", "failed", r"numpy only", 1.0),
    # tripwires expose no original and cover operator packets
    ("tripwire's __wrapped__", ADV_TORCH,
     "import torch.nn.functional as F\ndef softmax(t):\n    return F.softmax.__wrapped__(t, dim=-1)\n", "softmax",
     "error", r"__wrapped__", 1.0),
    ("forbidden aten operator", ADV_TORCH,
     "import torch\ndef softmax(t):\n    return torch.ops.aten._softmax(t, -1, False)\n", "softmax", "failed",
     r"off limits", 1.0),
    ("forbidden aten overload .default", ADV_TORCH,
     "import torch\ndef softmax(t):\n    return torch.ops.aten._softmax.default(t, -1, False)\n", "softmax",
     "failed", r"off limits", 1.0),
    # the seam and skips
    ("module whose class is swapped", ADV,
     "import sys, types\nclass M(types.ModuleType):\n    def __getattr__(self, n):\n        return lambda *a: a[0] * 2\n"
     "sys.modules[__name__].__class__ = M\n", "double", "failed", r"plain modules", 1.0),
    ("SkipTest compiled under a check's file name", ADV,
     "import pathlib, engine.shared\nCHECK = str(pathlib.Path(engine.shared.__file__).parents[2] / 'tests' / 'fixtures' / "
     "'missions' / 'adv' / 'checks' / 'test_ops.py')\n"
     "def double(x):\n    exec(compile('import unittest\\nraise unittest.SkipTest(\"needs a GPU\")', CHECK, 'exec'))\n",
     "double", "failed", r"may not skip a check", 1.0),
    ("wrong dtype tensor", ADV_TORCH, "import torch\ndef row_sums(t):\n    return t.sum(dim=1).double()\n", "rows",
     "failed", r"expected dtype torch\.float32, got torch\.float64", 1.0),
]


@pytest.mark.parametrize("name,mission,source,checkpoint,status,pattern,scale", CASES, ids=[c[0] for c in CASES])
def test_hostile_behaviour(tmp_path, name, mission, source, checkpoint, status, pattern, scale):
    if source is None:
        ws, _, _ = workspace.init(tmp_path / "ws", [mission])
        r = grade(mission, ws, checkpoints=[checkpoint]).results[0]
    else:
        _, r, _ = run(tmp_path, mission, source, checkpoint, timeout_scale=scale)
    assert r.status == status, f"{name}: expected {status}, got {r.status}: {r.message}"
    import re
    assert re.search(pattern, r.message, re.IGNORECASE | re.DOTALL), f"{name}: message {r.message!r} !~ /{pattern}/"


def test_honest_torch_control(tmp_path):
    ws = make_ws(tmp_path, ADV_TORCH, GOOD_TOPS)
    run_ = grade(ADV_TORCH, ws)
    assert [r.status for r in run_.results] == ["passed", "passed"], [(r.status, r.message) for r in run_.results]


def test_forged_records_on_every_fd_are_ignored(tmp_path):
    source = ("import os\ndef double(x):\n    rec = b'{\"nonce\": \"forged\", \"type\": \"end\"}\\n'\n"
              "    for fd in range(3, 64):\n        try:\n            os.write(fd, rec)\n        except OSError:\n"
              "            pass\n    return x * 3\n")
    result, r, _ = run(tmp_path, ADV, source, "double")
    assert r.status == "failed", (r.status, r.message)
    assert any("nonce" in w for w in result.warnings), result.warnings


def test_output_flood_is_bounded_and_escaped(tmp_path):
    source = ("import sys\ndef double(x):\n    for _ in range(20000):\n"
              "        print('\\x1b[31mPASSED\\x1b]0;title\\x07' + 'x' * 500)\n"
              "    sys.__stdout__.write('y' * 5_000_000)\n    return x * 2\n")
    result, r, _ = run(tmp_path, ADV, source, "double")
    assert r.status == "passed", (r.status, r.message)
    assert len(r.tests[0]["output"]) < 5000
    assert len(result.log) < 60_000, len(result.log)
    r.message = r.tests[0]["output"]  # put learner output where reports carry text
    to_junit([result], str(tmp_path / "r.xml"))
    to_json([result], str(tmp_path / "r.json"))
    xml = (tmp_path / "r.xml").read_text()
    assert "\x1b" not in xml and "\x07" not in xml
    json.loads((tmp_path / "r.json").read_text())


def test_state_file_edits_by_learner_code_change_nothing(tmp_path):
    source = ("import json, pathlib\nstate = pathlib.Path(__file__).resolve().parents[1] / '.llm-lab' / 'state.json'\n"
              "state.write_text(json.dumps({'schema_version': 1, 'current_mission': None, 'missions': "
              "{'adv': {'checkpoints': {'double': {'status': 'passed'}}, 'hints': {}}}}))\n"
              "def double(x):\n    return x * 3\n")
    ws = make_ws(tmp_path, ADV, source)
    ws.state.set_current("adv")
    before = ws.state.path.read_bytes()
    result = grade(ADV, ws, checkpoints=["double"])
    assert result.results[0].status == "failed"
    assert ws.state.path.read_bytes() == before
    assert any("state.json" in w for w in result.warnings)


def test_check_files_rewritten_by_learner_code_are_restored(tmp_path):
    source = ("import sys, pathlib\ndef double(x):\n    for m in list(sys.modules.values()):\n"
              "        f = getattr(m, '__file__', '') or ''\n        if f.endswith('test_ops.py'):\n"
              "            pathlib.Path(f).write_text('def test_double():\\n    pass\\ndef test_total():\\n    pass\\n')\n"
              "    return x * 3\ndef total(xs):\n    return 0.0\n")
    original = (ADV.checks_dir / "test_ops.py").read_bytes()
    ws = make_ws(tmp_path, ADV, source)
    result = grade(ADV, ws)
    assert (ADV.checks_dir / "test_ops.py").read_bytes() == original
    assert all(r.status != "passed" for r in result.results), [(r.status, r.message) for r in result.results]
    assert any("check files were modified" in w for w in result.warnings)


@pytest.mark.parametrize("rel,text", [
    ("conftest.py", "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
                    "    out = yield\n    out.get_result().outcome = 'passed'\n"),
    ("adv/conftest.py", "import pytest\n@pytest.fixture(autouse=True)\ndef cheat():\n    pytest.skip('cheat')\n"),
    ("pytest.ini", "[pytest]\naddopts = -p no:python\n"),
    ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = '--co'\n"),
    ("sitecustomize.py", "import numpy\nnumpy.ndarray = object\n"),
    ("evil.pth", "import os; os._exit(0)\n"),
])
def test_workspace_pytest_and_site_files_have_no_effect(tmp_path, rel, text):
    ws = make_ws(tmp_path, ADV, "def double(x):\n    return x * 3\n", {rel: text})
    r = grade(ADV, ws, checkpoints=["double"]).results[0]
    assert r.status == "failed", (r.status, r.message)
    assert any(rel.split("/")[-1] in w for w in scan(ws.root)), scan(ws.root)


def test_pytest_env_variables_have_no_effect(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "--collect-only")
    monkeypatch.setenv("PYTEST_PLUGINS", "nonexistent_plugin_xyz")
    ws = make_ws(tmp_path, ADV, "def double(x):\n    return x * 3\n")
    r = grade(ADV, ws, checkpoints=["double"]).results[0]
    assert r.status == "failed", (r.status, r.message)
    assert {"$PYTEST_ADDOPTS is set; it has no effect on grading",
            "$PYTEST_PLUGINS is set; it has no effect on grading"} <= set(scan(ws.root))


def test_background_processes_are_killed(tmp_path):
    pidfile = tmp_path / "pid"
    source = (f"import subprocess\ndef double(x):\n    p = subprocess.Popen(['sleep', '300'])\n"
              f"    open({str(pidfile)!r}, 'w').write(str(p.pid))\n    return x * 2\n")
    run(tmp_path, ADV, source, "double")
    pid = int(pidfile.read_text())
    import psutil
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break  # dead; only waiting for init to reap it
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"background process {pid} outlived grading")


def test_a_crash_in_one_checkpoint_leaves_the_next_graded(tmp_path):
    source = "import os\ndef double(x):\n    os._exit(3)\ndef total(xs):\n    return float(sum(xs))\n"
    ws = make_ws(tmp_path, ADV, source)
    result = grade(ADV, ws)
    assert [r.status for r in result.results] == ["crashed", "passed"]


def test_cancel_stops_a_hung_grade_promptly(tmp_path):
    import threading
    ws = make_ws(tmp_path, ADV, "def double(x):\n    while True:\n        pass\n")
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    t0 = time.monotonic()
    result = grade(ADV, ws, checkpoints=["double"], cancel=cancel)
    assert time.monotonic() - t0 < 8      # the checkpoint's own limit is 20 s
    assert result.results == []           # nothing finished, nothing claimed


def test_lab_saves_during_a_grade_survive_a_tampering_checkpoint(tmp_path):
    """The lab records each result as it arrives; learner code forging state.json afterwards is undone
    back to the lab's save, not to the state before the grade."""
    source = ("import json, pathlib\ndef double(x):\n    return x * 2\ndef total(xs):\n"
              "    state = pathlib.Path(__file__).resolve().parents[1] / '.llm-lab' / 'state.json'\n"
              "    state.write_text(json.dumps({'schema_version': 1, 'current_mission': None, 'missions': {}}))\n"
              "    return float(sum(xs))\n")
    ws = make_ws(tmp_path, ADV, source)

    def on_event(kind, data):   # what the lab does: save each checkpoint's result as it arrives
        if kind == "checkpoint":
            from types import SimpleNamespace
            ws.state.record_results("adv", [SimpleNamespace(**data)])

    result = grade(ADV, ws, on_event=on_event, parallel=1)
    saved = ws.state.read()["missions"]["adv"]["checkpoints"]
    assert saved["double"]["status"] == "passed" and saved["total"]["status"] == "passed"
    assert any("state.json" in w for w in result.warnings)


# -- links into the install ------------------------------------------------------------------------
REFERENCE_VALUE = Path(__file__).resolve().parents[1] / "engine" / "micrograd" / "value.py"


def test_workspace_file_symlinked_to_the_reference_is_refused(tmp_path):
    ws = make_ws(tmp_path, ADV, GOOD_OPS)
    target = ws.package_dir(ADV) / "ops.py"
    target.unlink()
    target.symlink_to(REFERENCE_VALUE)
    r = grade(ADV, ws, checkpoints=["double"]).results[0]
    assert r.status == "error" and re.search(r"ops\.py in your workspace leads into the installed project", r.message), r


def test_workspace_file_hard_linked_to_an_installed_file_is_refused():
    # a hard link needs the same file system as the install: the workspace lives beside it, briefly
    import shutil
    import tempfile
    root = Path(tempfile.mkdtemp(dir=REFERENCE_VALUE.parents[2], prefix=".adv-hardlink-"))
    try:
        ws = make_ws(root, ADV, GOOD_OPS)
        target = ws.package_dir(ADV) / "ops.py"
        target.unlink()
        os.link(REFERENCE_VALUE, target)
        r = grade(ADV, ws, checkpoints=["double"]).results[0]
        assert r.status == "error" and "hard link to a file of the installed project" in r.message, r
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the install is never changed by a grade ---------------------------------------------------------
def test_planted_bytecode_in_the_install_is_deleted_and_voids_the_grade(tmp_path):
    target = Path(__file__).resolve().parents[1] / "grader" / "__pycache__" / "ci.cpython-311.pyc"
    source = ("import importlib.util, marshal, pathlib, sys\n"
              f"PYC = pathlib.Path({str(target)!r})\n"
              "def double(x):\n"
              "    src = PYC.parent.parent / 'ci.py'\n"
              "    code = compile(src.read_text() + '\\nPLANTED = True\\n', str(src), 'exec')\n"
              "    st = src.stat()\n"
              "    head = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, 'little') + "
              "int(st.st_mtime).to_bytes(4, 'little') + (st.st_size & 0xFFFFFFFF).to_bytes(4, 'little')\n"
              "    PYC.parent.mkdir(exist_ok=True)\n"
              "    PYC.write_bytes(head + marshal.dumps(code))\n"
              "    return x * 2\n")
    result, r, _ = run(tmp_path, ADV, source, "double")
    if target.exists():   # Python may write an honest cache later; never the planted one
        import marshal
        assert "PLANTED" not in marshal.loads(target.read_bytes()[16:]).co_names
    assert r.status == "error" and "bytecode cache that does not match its source" in r.message, r
    assert any("grader/__pycache__/ci.cpython-311.pyc" in w for w in result.warnings), result.warnings


def test_grading_children_keep_caches_private(tmp_path):
    before = {p for p in (Path(__file__).resolve().parents[1] / "engine").rglob("*.pyc")}
    result, r, _ = run(tmp_path, ADV, "import engine.shared.data\n" + GOOD_OPS, "double")
    after = {p for p in (Path(__file__).resolve().parents[1] / "engine").rglob("*.pyc")}
    assert r.status == "passed", r
    assert after - before == set(), sorted(after - before)


# -- hangs and crashes of the grader itself ----------------------------------------------------------
def test_a_package_that_never_imports_fails_every_checkpoint_at_once(tmp_path):
    ws = make_ws(tmp_path, ADV, "while True:\n    pass\n")
    t0 = time.monotonic()
    result = grade(ADV, ws, timeout_scale=0.1, parallel=1)   # import limit 3 s; checkpoints 2 s each
    elapsed = time.monotonic() - t0
    assert [r.status for r in result.results] == ["timeout", "timeout"], result.results
    assert all("did not finish importing" in r.message for r in result.results)
    assert elapsed < 20, elapsed   # one wait, not one per checkpoint


def test_nested_and_foreign_records_cannot_crash_or_bloat_the_grader(tmp_path):
    source = ("import os\ndef double(x):\n    deep = b'[' * 200000 + b']' * 200000 + b'\\n'\n"
              "    junk = b'{\"type\": \"result\", \"status\": \"passed\"}\\n' * 50000\n"
              "    for fd in range(3, 64):\n        try:\n            os.write(fd, deep)\n"
              "            os.write(fd, junk)\n        except OSError:\n            pass\n    return x * 3\n")
    result, r, _ = run(tmp_path, ADV, source, "double")
    assert r.status == "failed", (r.status, r.message)
    assert len(json.dumps(result.to_dict())) < 200_000
    assert sum("without this run's nonce" in w for w in result.warnings) <= 1, result.warnings


def _wait_dead(pid: int, seconds: float) -> bool:
    import psutil
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_a_grandchild_that_leaves_the_process_group_is_killed(tmp_path):
    pidfile = tmp_path / "pid"
    source = ("import os, subprocess\ndef double(x):\n"
              "    p = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
              f"    open({str(pidfile)!r}, 'w').write(str(p.pid))\n    return x * 2\n")
    run(tmp_path, ADV, source, "double")
    assert _wait_dead(int(pidfile.read_text()), 5), "a setsid grandchild outlived grading"


def test_killing_llm_lab_kills_the_grade(tmp_path):
    import subprocess
    import sys
    pidfile = tmp_path / "pid"
    ws = make_ws(tmp_path, ADV, "import os\ndef double(x):\n"
                 f"    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n    while True:\n        pass\n")
    script = ("import sys; from grader.runner import grade; from grader.missions import load_mission; "
              "from grader.workspace import Workspace; from pathlib import Path; "
              f"grade(load_mission(Path({str(FIXTURES / 'adv')!r})), Workspace(Path({str(ws.root)!r})), "
              "checkpoints=['double'])")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pidfile.exists(), "the grade never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_dead(int(pidfile.read_text()), 5), "the grading child outlived llm-lab"


def test_no_temp_folder_outlives_a_grade(tmp_path, monkeypatch):
    import tempfile
    private = tmp_path / "tmp"     # this test's own temp root: other grades on the machine don't count
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    run(tmp_path, ADV, "def double(x):\n    while True:\n        pass\n", "double", timeout_scale=0.1)
    run(tmp_path / "b", ADV, "import os\ndef double(x):\n    os._exit(3)\n", "double")
    assert sorted(p.name for p in private.iterdir()) == []


def test_a_process_holding_the_state_lock_cannot_hang_the_grader(tmp_path):
    lock = tmp_path / "ws" / ".llm-lab" / "state.lock"
    holder = f"import fcntl, time\nf = open({str(lock)!r}, 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\ntime.sleep(300)\n"
    source = ("import fcntl, subprocess, sys, time\ndef double(x):\n"
              f"    subprocess.Popen([sys.executable, '-c', {holder!r}], start_new_session=True)\n"
              f"    with open({str(lock)!r}, 'a') as f:\n        for _ in range(300):\n"
              "            try:\n                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
              "                fcntl.flock(f, fcntl.LOCK_UN)\n                time.sleep(0.1)\n"
              "            except BlockingIOError:\n                break\n    return x * 3\n"
              "def total(xs):\n    time.sleep(5)\n    return 0.0\n")
    t0 = time.monotonic()   # both checkpoints in one child: the holder lives on while `total` runs
    ws = make_ws(tmp_path, ADV, source)
    result = grade(ADV, ws, parallel=1)
    assert [r.status for r in result.results] == ["failed", "failed"], result.results
    assert time.monotonic() - t0 < 60
    assert any("lock was held" in w for w in result.warnings), result.warnings
    with ws.state.locked(timeout=5):   # the holder died with the grade
        pass


def test_a_forbidden_subpackage_is_refused_and_its_siblings_are_not(tmp_path):
    from dataclasses import replace
    mission = replace(ADV_TORCH, forbid=("torch.ao",), forbid_reason="quantise it yourself")
    ok = make_ws(tmp_path / "ok", mission, "import torch.nn\n" + GOOD_TOPS)
    assert grade(mission, ok, checkpoints=["rows"]).results[0].status == "passed"
    bad = make_ws(tmp_path / "bad", mission, "import torch.ao.quantization\n" + GOOD_TOPS)
    r = grade(mission, bad, checkpoints=["rows"]).results[0]
    assert r.status == "failed" and "quantise it yourself" in r.message, r
