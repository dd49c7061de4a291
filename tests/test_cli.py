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


# -- issue 12: the first hour at the shell ----------------------------------------------------------
def test_help_says_bare_llm_lab_opens_the_lab_and_there_is_a_version():
    p = llm_lab("--help")
    assert p.returncode == 0 and "Run `llm-lab` with no command to open the lab" in p.stdout
    assert "models" in p.stdout and "init" in p.stdout
    p = llm_lab("--version")
    from importlib.metadata import version
    assert p.returncode == 0 and p.stdout.strip() == f"llm-lab {version('llm-lab')}"


def test_grade_help_lists_the_missions():
    from grader.missions import load_all
    p = llm_lab("grade", "--help")
    assert p.returncode == 0
    for m in load_all()[0]:
        assert f"  {m.id} " in p.stdout and m.title in p.stdout
    assert "(7 checkpoints + 4 bonus)" in p.stdout                   # gpt: bonus counted apart


def test_a_workspace_path_that_is_not_one_is_an_error_and_nothing_is_created(tmp_path):
    typo = tmp_path / "typo"
    for args in (["--workspace", str(typo), "grade", "micrograd"], ["grade", "micrograd", "--workspace", str(typo)],
                 ["missions", "--workspace", str(typo)], ["--workspace", str(typo)],
                 ["train", "micrograd", "--headless", "--workspace", str(typo)]):
        p = llm_lab(*args, cwd=tmp_path, env={"HOME": str(tmp_path)})
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert f"{typo} does not exist (create one with `llm-lab init {typo}`)" in p.stdout + p.stderr
        assert not typo.exists()
    assert not (tmp_path / "llm-lab").exists()


def test_outside_a_workspace_commands_say_so_and_create_nothing(tmp_path):
    env = {"HOME": str(tmp_path), "LLM_LAB_WORKSPACE": ""}
    p = llm_lab("grade", "micrograd", cwd=tmp_path, env=env)
    assert p.returncode == 2 and "no llm-lab workspace" in p.stderr and "llm-lab init" in p.stderr
    p = llm_lab(cwd=tmp_path, env=env)                               # bare llm-lab, no terminal to ask on
    assert p.returncode == 2 and "llm-lab init" in p.stderr
    assert not (tmp_path / "llm-lab").exists()                       # ~/llm-lab was not made behind our back


def test_missions_inside_a_workspace_shows_its_progress(tmp_path):
    from types import SimpleNamespace

    from grader.missions import get
    from grader.workspace import Workspace
    from lab.progress import mission_progress
    ws = tmp_path / "ws"
    assert llm_lab("init", str(ws)).returncode == 0
    store = Workspace(ws).state
    store.record_results("micrograd", [SimpleNamespace(checkpoint="forward", status="passed", message="")])
    store.record_results("gpt", [SimpleNamespace(checkpoint="attention", status="passed", message=""),
                                 SimpleNamespace(checkpoint="rope", status="passed", message=""),
                                 SimpleNamespace(checkpoint="mha", status="failed", message="")])
    p = llm_lab("missions", cwd=ws / "micrograd")                    # from inside: the nearest workspace
    assert p.returncode in (0, 1), p.stderr
    lines = {line.split()[1]: line for line in p.stdout.splitlines() if line[:3].strip().rstrip(".").isdigit()}
    assert "1/4 required" in lines["micrograd"]
    assert "1/7 required, bonus 1/4" in lines["gpt"]
    # the map counts the same way (one Progress for both)
    state = store.read()
    assert mission_progress(get("gpt"), state).label == "1 of 7 checkpoints · bonus 1 of 4"
    assert mission_progress(get("gpt"), state).counts == "1/7 required, bonus 1/4"


def test_bonus_checkpoints_are_never_failures(tmp_path):
    """bpe's sentencepiece checkpoint is a bonus: not implemented, it is skipped in JUnit, a
    notice (not an error) on GitHub, counted apart in the totals, and the run still exits 0."""
    ws = tmp_path / "ws"
    llm_lab("init", str(ws))
    summary = tmp_path / "summary.md"
    p = llm_lab("grade", "bpe", "--checkpoint", "sentencepiece", "--junit", str(tmp_path / "r.xml"), cwd=ws,
                env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "COLUMNS": "200"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "checkpoints passed: required 0/0, bonus 0/1" in p.stdout
    assert "::error" not in p.stdout and "::notice title=bpe/sentencepiece not_implemented (bonus" in p.stdout
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "1")
    case = suite.find("testcase")
    assert case.find("failure") is None and "bonus checkpoint (optional)" in case.find("skipped").get("message")
    assert "| bpe | sentencepiece (bonus) | not_implemented |" in summary.read_text()


def test_junit_marks_bonus_results_skipped_or_passed_and_totals_count_them_apart(tmp_path):
    from dataclasses import dataclass, field

    from grader import report

    @dataclass
    class R:
        checkpoint: str
        status: str
        bonus: bool = False
        message: str = "m"
        duration: float = 0.1

        @property
        def passed(self):
            return self.status == "passed"

    @dataclass
    class Run:
        mission: str
        results: list = field(default_factory=list)
        duration: float = 1.0

    run = Run("gpt", [R("attention", "passed"), R("mha", "failed"), R("model", "timeout"),
                      R("rope", "passed", bonus=True), R("gqa", "failed", bonus=True),
                      R("swiglu", "crashed", bonus=True), R("rmsnorm", "skipped", bonus=True)])
    report.to_junit([run], str(tmp_path / "r.xml"))
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("7", "1", "1", "3")
    kinds = {c.get("name"): [e.tag for e in c] for c in suite.findall("testcase")}
    assert kinds == {"attention": [], "mha": ["failure"], "model": ["error"], "rope": [], "gqa": ["skipped"],
                     "swiglu": ["skipped"], "rmsnorm": ["skipped"]}
    assert report.totals(run.results) == "checkpoints passed: required 1/3, bonus 1/4"


def test_a_corrupt_progress_file_is_reported_once(tmp_path):
    ws = tmp_path / "ws"
    llm_lab("init", str(ws))
    (ws / ".llm-lab" / "state.json").write_text('{"schema_version": 1, "missions": {"micro')
    p = llm_lab("grade", "micrograd", "--checkpoint", "forward", cwd=ws)
    assert p.stderr.count("was not a valid progress file") == 1, p.stderr
    assert "progress starts fresh" in p.stderr and len(list((ws / ".llm-lab").glob("state.json.corrupt-*"))) == 1
    p = llm_lab("missions", cwd=ws)
    assert "not a valid progress file" not in p.stdout + p.stderr     # once: the fresh file is fine


def test_llm_lab_models_hands_its_arguments_to_the_models_command(monkeypatch, capsys):
    """`llm-lab models ...` calls engine.shared.models.cli(argv), imported only then."""
    import types

    from lab import cli
    calls = []
    fake = types.ModuleType("engine.shared.models")
    fake.cli = lambda argv: calls.append(argv) or 3
    monkeypatch.setitem(sys.modules, "engine.shared.models", fake)
    assert cli.main(["models", "fetch", "smollm2", "--help"]) == 3
    assert calls == [["fetch", "smollm2", "--help"]]
    assert cli.main(["models"]) == 3 and calls[-1] == []
    assert cli.main(["models", "--help"]) == 3 and calls[-1] == ["--help"]    # its own help, not ours
    monkeypatch.setitem(sys.modules, "engine.shared.models", types.ModuleType("engine.shared.models"))
    assert cli.main(["models", "list"]) == 2                         # no cli() in it: a clear error
    assert "`llm-lab models` is not available" in capsys.readouterr().err
