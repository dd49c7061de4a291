"""The CLI as a user runs it: exit codes, reports, init, and a correct solution in another style."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SOLUTIONS = Path(__file__).parent / "solutions"


def llm_lab(*args, cwd=None, env=None, timeout=600):
    e = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_grade_reference_writes_reports_and_exits_0(tmp_path):
    p = llm_lab("grade", "micrograd", "--reference", "--json", str(tmp_path / "r.json"),
                "--junit", str(tmp_path / "r.xml"))
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["version"] == 1 and doc["ok"] is True
    assert {"llm_lab", "python", "torch", "device", "seeds"} <= set(doc["run"])
    (m,) = doc["missions"]
    assert [r["status"] for r in m["results"]] == ["passed"] * 4
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "0" and suite.get("errors") == "0"


def test_fresh_workspace_grades_not_implemented_and_exits_1(tmp_path):
    ws = tmp_path / "ws"
    assert llm_lab("init", str(ws)).returncode == 0
    assert (ws / ".github" / "workflows" / "llm-lab.yml").exists()
    p = llm_lab("grade", "micrograd", "--json", str(tmp_path / "r.json"), cwd=ws)
    assert p.returncode == 1
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {r["status"] for r in doc["missions"][0]["results"]} == {"not_implemented"}
    state = json.loads((ws / ".llm-lab" / "state.json").read_text())
    assert state["missions"]["micrograd"]["checkpoints"]["forward"]["status"] == "not_implemented"


def test_init_never_overwrites_learner_files(tmp_path):
    ws = tmp_path / "ws"
    llm_lab("init", str(ws))
    mine = ws / "micrograd" / "value.py"
    mine.write_text("# my work\n")
    (ws / "micrograd" / "nn.py").unlink()
    p = llm_lab("init", str(ws))
    assert p.returncode == 0
    assert mine.read_text() == "# my work\n"
    assert (ws / "micrograd" / "nn.py").exists()   # a missing stub is restored


def test_correct_solution_in_another_style_passes(tmp_path):
    ws = tmp_path / "ws"
    llm_lab("init", str(ws))
    for f in (SOLUTIONS / "micrograd").glob("*.py"):
        shutil.copy(f, ws / "micrograd" / f.name)
    p = llm_lab("grade", "micrograd", "--workspace", str(ws))
    assert p.returncode == 0, p.stdout + p.stderr


def test_github_actions_annotations_and_summary(tmp_path):
    ws = tmp_path / "ws"
    llm_lab("init", str(ws))
    (ws / "micrograd" / "value.py").write_text(
        "print('::error::forged %0A')\nraise RuntimeError('::set-output name=x::y\\n::error::boom')\n")
    summary = tmp_path / "summary.md"
    p = llm_lab("grade", "micrograd", "--checkpoint", "forward", "--workspace", str(ws),
                env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert p.returncode == 1
    commands = [line for line in p.stdout.splitlines() if line.startswith("::")]
    assert len(commands) == 1 and commands[0].startswith("::error title=micrograd/forward error::")
    payload = commands[0][len("::error title=micrograd/forward error::"):]
    assert "::" not in payload and "set-output" in payload   # present, but defused
    assert "| micrograd | forward | error |" in summary.read_text()


def test_unknown_mission_and_checkpoint_are_clear_errors(tmp_path):
    p = llm_lab("grade", "nope", "--reference")
    assert p.returncode == 2 and "no mission 'nope'" in p.stdout
    p = llm_lab("grade", "micrograd", "--reference", "--checkpoint", "nope")
    assert p.returncode == 2 and "no checkpoint 'nope'" in p.stdout
