"""The GitHub Actions workflow `llm-lab init` writes into a workspace (.github/workflows/llm-lab.yml).

On every push it installs CPU torch (pinned: TORCH, the version the README installs), then llm-lab
itself, then grades every mission; the JUnit and JSON reports are uploaded.

Where llm-lab comes from: llm-lab is not on PyPI (a different project owns that name there), so
the workflow installs it the way pip installs any project from its repository:

    python -m pip install "git+https://github.com/<owner>/llm-lab@<commit>"

`llm-lab init` writes that source itself when it can tell where the running llm-lab came from
(`install_source`): the git URL and commit pip recorded (`pip install git+...`), or, for a clone
(`pip install .` or `-e .`), its `origin` remote and the commit checked out. A repository variable
LLM_LAB_SOURCE overrides it (any pip requirement: a git URL with a branch or tag, a wheel's URL).
With neither, the install step fails with a message saying how to set it.
Not handled: self-hosted GPU runners (GPU checks skip on CI), private repositories (pip needs a token).
"""
from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

TORCH = "2.13.0"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
SOURCE_VAR = "LLM_LAB_SOURCE"
MISSING_SOURCE = ("::error title=llm-lab source::Set the repository variable LLM_LAB_SOURCE to where llm-lab "
                  "comes from, e.g. git+https://github.com/<owner>/llm-lab@main (Settings, Secrets and "
                  "variables, Actions, Variables)")

_TEMPLATE = """\
name: llm-lab
on: [push, pull_request, workflow_dispatch]
jobs:
  grade:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    env:
      # Where llm-lab is installed from (it is not on PyPI): written by `llm-lab init`; the
      # repository variable LLM_LAB_SOURCE overrides it, e.g. git+https://github.com/<owner>/llm-lab@main
      LLM_LAB_SOURCE: ${{{{ vars.LLM_LAB_SOURCE || '{source}' }}}}
      HF_HUB_OFFLINE: "1"
      HF_DATASETS_OFFLINE: "1"
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install torch {torch} (CPU)
        run: python -m pip install "torch=={torch}" --index-url {index}
      - name: Install llm-lab
        run: |
          if [ -z "$LLM_LAB_SOURCE" ]; then echo "{missing}"; exit 1; fi
          python -m pip install "$LLM_LAB_SOURCE"
      - name: Grade
        run: llm-lab grade --all --workspace . --junit report.xml --json report.json
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: llm-lab-report
          path: |
            report.xml
            report.json
"""


def workflow(source: str | None) -> str:
    """The workflow text; `source` is a pip requirement for llm-lab (None: the variable must be set)."""
    if source and ("'" in source or "\n" in source):
        raise ValueError(f"an llm-lab source cannot contain quotes or newlines: {source!r}")
    return _TEMPLATE.format(source=source or "", torch=TORCH, index=TORCH_INDEX, missing=MISSING_SOURCE)


def install_source(dist: str = "llm-lab") -> str | None:
    """How CI can install the llm-lab running now, as a pip requirement, or None if unknown."""
    try:
        raw = metadata.distribution(dist).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    return source_from_direct_url(json.loads(raw)) if raw else None


def source_from_direct_url(info: dict) -> str | None:
    """PEP 610's direct_url.json -> a pip requirement that installs the same code elsewhere."""
    url = str(info.get("url") or "")
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") == "git" and url:
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"git+{url}" + (f"@{commit}" if commit else "")
    if isinstance(info.get("archive_info"), dict) and url.startswith(("https://", "http://")):
        return url
    if url.startswith("file://"):
        return clone_source(Path(unquote(urlparse(url).path)))
    return None


def clone_source(folder: Path) -> str | None:
    """A git clone's origin remote (as https) at its checked-out commit, or None."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None

    remote, commit = git("remote", "get-url", "origin"), git("rev-parse", "HEAD")
    if not remote or not commit:
        return None
    if remote.startswith("git@") and ":" in remote:            # git@github.com:owner/repo.git
        host, path = remote[4:].split(":", 1)
        remote = f"https://{host}/{path}"
    if not remote.startswith(("https://", "http://")):
        return None                                             # a local path: CI cannot reach it
    return f"git+{remote}@{commit}"
