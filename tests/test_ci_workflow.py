"""The CI workflow `llm-lab init` writes (grader/ci.py), as a learner's repository runs it.

- Its text: torch pinned like the README, llm-lab never installed by its bare name (that name on
  PyPI is another project), the source a learner finds obvious (their llm-lab's repository and
  commit, or the LLM_LAB_SOURCE variable), a clear error when there is none.
- Run for real: the workflow's own steps, in a clean virtual environment (with the system's
  packages visible, so that torch is not downloaded again), installing llm-lab from a wheel built
  from this checkout, as a package (not editable). The grade step runs its command on one mission
  instead of --all (the same flags; grading every mission's stubs takes minutes).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from grader import ci

REPO = Path(__file__).resolve().parent.parent
GRADE = "llm-lab grade --all --workspace . --junit report.xml --json report.json"


def steps(text: str) -> tuple[dict, list[dict]]:
    doc = yaml.safe_load(text)
    job = doc["jobs"]["grade"]
    return job["env"], job["steps"]


def github_env(env: dict, variables: dict) -> dict:
    """The job's env as GitHub evaluates it (only the `vars.X || 'default'` form is used)."""
    out = {}
    for key, value in env.items():
        m = re.fullmatch(r"\$\{\{ vars\.(\w+) \|\| '([^']*)' \}\}", str(value))
        out[key] = (variables.get(m.group(1)) or m.group(2)) if m else str(value)
    return out


# -- the text ---------------------------------------------------------------------------------------
def test_torch_is_pinned_like_the_readme_and_llm_lab_is_never_installed_by_name():
    readme = (REPO / "README.md").read_text()
    pins = set(re.findall(r"torch==([0-9.]+)", readme))
    assert pins == {ci.TORCH}
    text = ci.workflow("git+https://github.com/someone/llm-lab@abc123")
    env, run = steps(text)
    commands = [s["run"] for s in run if "run" in s]
    assert commands[0] == f'python -m pip install "torch=={ci.TORCH}" --index-url https://download.pytorch.org/whl/cpu'
    assert 'python -m pip install "$LLM_LAB_SOURCE"' in commands[1]
    assert not re.search(r"pip install[^\n]*['\" ]llm-lab['\" \n]", text)          # the PyPI name: never
    assert github_env(env, {})["LLM_LAB_SOURCE"] == "git+https://github.com/someone/llm-lab@abc123"
    assert github_env(env, {"LLM_LAB_SOURCE": "git+https://github.com/me/llm-lab@main"})["LLM_LAB_SOURCE"] == \
        "git+https://github.com/me/llm-lab@main"                                     # the variable wins
    assert commands[2] == GRADE
    with pytest.raises(ValueError):
        ci.workflow("x' }} evil")


def test_without_a_source_the_install_step_says_how_to_set_one(tmp_path):
    env, run = steps(ci.workflow(None))
    install = [s for s in run if s.get("name") == "Install llm-lab"][0]["run"]
    out = subprocess.run(["bash", "-e", "-c", install], env={**os.environ, **github_env(env, {})},
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and out.stdout.startswith("::error title=llm-lab source::Set the repository variable")


def test_the_source_is_where_this_llm_lab_came_from(tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert ci.source_from_direct_url({"url": "https://github.com/me/llm-lab.git",
                                      "vcs_info": {"vcs": "git", "commit_id": sha}}) == \
        f"git+https://github.com/me/llm-lab.git@{sha}"                            # pip install git+...
    assert ci.source_from_direct_url({"url": "https://example.org/llm_lab-0.1.0-py3-none-any.whl",
                                      "archive_info": {}}) == "https://example.org/llm_lab-0.1.0-py3-none-any.whl"
    clone = tmp_path / "llm-lab"
    clone.mkdir()
    git = lambda *a: subprocess.run(["git", "-C", str(clone), *a], capture_output=True, text=True, check=True)
    git("init", "-q")
    assert ci.source_from_direct_url({"url": clone.as_uri(), "dir_info": {"editable": True}}) is None  # no commit
    (clone / "README.md").write_text("x")
    git("add", "README.md")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    assert ci.source_from_direct_url({"url": clone.as_uri(), "dir_info": {}}) is None   # no remote CI can reach
    git("remote", "add", "origin", "git@github.com:me/llm-lab.git")
    head = git("rev-parse", "HEAD").stdout.strip()
    assert ci.source_from_direct_url({"url": clone.as_uri(), "dir_info": {"editable": True}}) == \
        f"git+https://github.com/me/llm-lab.git@{head}"                           # a clone: its origin, pinned


def test_init_writes_the_workflow_with_the_source(tmp_path):
    from lab.cli import main
    assert main(["init", str(tmp_path / "ws"), "--ci-source", "git+https://github.com/me/llm-lab@v1"]) == 0
    text = (tmp_path / "ws" / ".github" / "workflows" / "llm-lab.yml").read_text()
    assert "vars.LLM_LAB_SOURCE || 'git+https://github.com/me/llm-lab@v1'" in text


# -- run for real --------------------------------------------------------------------------------------
def test_the_workflow_installs_llm_lab_as_a_package_and_grades(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "build", "dist", "*.egg-info",
                                                             ".pytest_cache", ".llm-lab", "tests"))
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("llm_lab-*.whl")
    venv = tmp_path / "venv"
    # without a pip of its own, `python -m pip` is the system's, installing into the venv, and the venv
    # does not shadow the system's setuptools (which torch requires) with an older one
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=300)
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LLM_LAB_WORKSPACE")}
    base.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", HOME=str(home))

    repo = tmp_path / "learner-repo"
    workflow_text = None
    env, run = None, None

    def step(script: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env={**base, **github_env(env, {"LLM_LAB_SOURCE": str(wheel)})},
                              capture_output=True, text=True, timeout=timeout)

    # the workflow as `llm-lab init` writes it, here with no source of its own: the variable sets it
    workflow_text = ci.workflow(None)
    env, run = steps(workflow_text)
    commands = [s["run"] for s in run if "run" in s]
    for script in commands[:2]:                                  # torch, then llm-lab from the wheel
        out = step(script, tmp_path)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    where = subprocess.run(["python", "-c", "import lab, grader, missions; print(lab.__file__)"], env=base,
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr   # the package, not this checkout
    assert shutil.which("llm-lab", path=base["PATH"]) == str(venv / "bin" / "llm-lab")
    init = subprocess.run(["llm-lab", "init", str(repo)], env=base, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert init.returncode == 0 and (repo / "micrograd" / "value.py").is_file(), init.stdout + init.stderr
    assert (repo / ".github" / "workflows" / "llm-lab.yml").is_file()
    assert commands[2] == GRADE
    out = step(GRADE.replace("--all", "micrograd"), repo)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]                # stubs: not passed
    doc = json.loads((repo / "report.json").read_text())
    assert doc["ok"] is False and {r["status"] for r in doc["missions"][0]["results"]} == {"not_implemented"}
    suite = ET.parse(repo / "report.xml").getroot().find("testsuite")
    assert suite.get("name") == "micrograd" and suite.get("failures") == "4"


def test_the_readme_installs_llm_lab_as_a_package_for_learners_and_editable_for_developers():
    """A learner is not developing llm-lab: the start command installs it as a package (compiled at
    install time: the first paint is not spent compiling), the test command stays editable."""
    readme = (REPO / "README.md").read_text()

    def block_after(heading: str) -> str:
        return readme.split(heading, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    start, tests = block_after("## Start"), block_after("## Run the tests")
    assert "python -m pip install . && llm-lab" in start and " -e " not in start
    assert f"torch=={ci.TORCH}" in start and f"torch=={ci.TORCH}" in tests
    assert "python -m pip install -e '.[test]'" in tests
