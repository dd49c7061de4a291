"""Result documents: a versioned JSON report and JUnit XML for CI systems.

Learner output inside messages is escaped by the writers (json, xml.etree), never interpolated into
markup; control characters that XML 1.0 cannot carry are replaced.

Bonus checkpoints are optional: a bonus not passed is never a failure or an error. JUnit marks it
<skipped> (with its status and message), GitHub gets a ::notice instead of an ::error, and totals
count required and bonus checkpoints apart ("required 2/7, bonus 0/4").
Not handled: JUnit's optional <properties> per test case.
"""
from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
import xml.etree.ElementTree as ET
from importlib import metadata

REPORT_VERSION = 1
_XML_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")


def clean_text(text: str) -> str:
    """Strip ANSI escapes and control bytes (keeps newlines and tabs)."""
    return _XML_BAD.sub("\ufffd", _ANSI.sub("", text or ""))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def run_info(runs) -> dict:
    return {"llm_lab": _version("llm-lab"), "python": platform.python_version(),
            "torch": _version("torch"), "platform": platform.platform(), "time": time.time(),
            "device": "cuda" if os.path.exists("/dev/nvidia0") else "cpu",
            "seeds": {r.mission: r.seed for r in runs}}


def to_json(runs, path: str, warnings: list[str] | None = None) -> None:
    doc = {"version": REPORT_VERSION, "run": run_info(runs),
           "ok": all(r.ok for r in runs), "warnings": list(warnings or []),
           "missions": [r.to_dict() for r in runs]}
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=True)  # lone surrogates from learner text stay writable
    os.replace(tmp, path)


FAILURES = ("failed", "not_implemented")
ERRORS = ("error", "timeout", "crashed", "oom")


def _bonus(r) -> bool:
    return bool(getattr(r, "bonus", False))


def totals(results) -> str:
    """"checkpoints passed: required 2/7, bonus 0/4" (the bonus part only when there are some)."""
    required = [r for r in results if not _bonus(r)]
    bonus = [r for r in results if _bonus(r)]
    text = f"checkpoints passed: required {sum(r.passed for r in required)}/{len(required)}"
    return text + (f", bonus {sum(r.passed for r in bonus)}/{len(bonus)}" if bonus else "")


def junit_verdict(r) -> tuple[str | None, str]:
    """(JUnit element for a result: None (passed) / failure / error / skipped, its message)."""
    msg = clean_text(r.message)
    if r.status == "skipped":
        return "skipped", msg
    if r.passed:
        return None, msg
    if _bonus(r):
        return "skipped", f"bonus checkpoint (optional), not passed: {r.status}: {msg}"
    return ("failure" if r.status in FAILURES else "error"), msg


def to_junit(runs, path: str) -> None:
    suites = ET.Element("testsuites", name="llm-lab")
    for run in runs:
        verdicts = [junit_verdict(r) for r in run.results]
        count = {kind: sum(v[0] == kind for v in verdicts) for kind in ("failure", "error", "skipped")}
        suite = ET.SubElement(suites, "testsuite", name=run.mission, tests=str(len(run.results)),
                              failures=str(count["failure"]), errors=str(count["error"]),
                              skipped=str(count["skipped"]), time=f"{run.duration:.3f}")
        for r, (kind, msg) in zip(run.results, verdicts):
            case = ET.SubElement(suite, "testcase", classname=f"llm_lab.{run.mission.replace('-', '_')}",
                                 name=r.checkpoint, time=f"{r.duration:.3f}")
            if kind == "skipped":
                ET.SubElement(case, "skipped", message=msg[:500])
            elif kind is not None:
                ET.SubElement(case, kind, message=f"{r.status}: {msg[:500]}", type=r.status).text = msg
    tree = ET.ElementTree(suites)
    tmp = f"{path}.tmp"
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


def github_annotations(runs) -> str:
    """::error lines for GitHub Actions; learner text is escaped so it never becomes a command."""
    def esc(s: str) -> str:
        s = clean_text(s).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return s.replace("::", ":\u200b:")
    lines = []
    for run in runs:
        for r in run.results:
            if not r.passed and r.status != "skipped":
                level, extra = ("notice", " (bonus, optional)") if _bonus(r) else ("error", "")
                title = esc(f"{run.mission}/{r.checkpoint} {r.status}{extra}").replace(",", "%2C")
                lines.append(f"::{level} title={title}::{esc(r.message[:1000])}")
    return "\n".join(lines)


def markdown_summary(runs) -> str:
    def cell(s: str) -> str:
        return clean_text(s).replace("|", "\\|").replace("\n", " ")[:300]
    rows = ["| mission | checkpoint | status | message |", "|---|---|---|---|"]
    for run in runs:
        for r in run.results:
            name = r.checkpoint + (" (bonus)" if _bonus(r) else "")
            rows.append(f"| {cell(run.mission)} | {cell(name)} | {r.status} | {cell(r.message)} |")
    return "\n".join(rows) + "\n"
