"""Entry point of the grading child process: `python -I -m grader.child CONFIG_JSON`.

The parent (grader.runner) starts this in a new session with stdin closed and a clean environment.
It reads its configuration, sets limits, installs the guards (forbidden imports and calls), then runs
each checkpoint's hidden checks with pytest and reports every result through the inherited results
pipe, each record stamped with the run's nonce, ending with an end marker. Its stdout/stderr are only
a log for humans; the parent never parses them.
"""
from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        config = json.load(f)
    os.unlink(argv[1])  # learner code cannot re-read the nonce from disk

    from .limits import apply_limits, apply_memory_limit
    apply_limits(config.get("limits", {}))

    fd = os.dup(config["result_fd"])  # a private copy; the inherited number is closed
    os.close(config["result_fd"])
    os.set_inheritable(fd, False)
    nonce = config["nonce"]

    def emit(record: dict, _write=os.write, _dumps=json.dumps, _fd=fd, _nonce=nonce) -> None:
        data = (_dumps({"nonce": _nonce, **record}) + "\n").encode()
        while data:
            n = _write(_fd, data)
            data = data[n:]

    prefix, sys.pycache_prefix = sys.pycache_prefix, None   # installed libraries: their own caches (-B: read only)
    for name in config.get("preload", []):  # e.g. torch: imported before learner code
        __import__(name)
    sys.pycache_prefix = prefix
    import pytest  # noqa: F401  (before learner code)
    from . import checks, seam  # noqa: F401  (captures comparison functions now)
    from .guards import Guard
    from .plugin import GradePlugin

    seam.configure(mode=config["mode"], package=config["package"], reference=config["reference"],
                   workspace=config.get("workspace"))
    learner_roots = [os.path.join(config["workspace"], config["package"])] if config["mode"] == "learner" \
        else [config["reference_dir"]]
    guard = Guard(learner_package=seam.learner_package(), forbid_modules=config.get("forbid", []),
                  forbid_messages=config.get("forbid_messages", {}))
    guard.install_import_guard()
    guard.preinstall(config.get("all_forbid_calls", []))  # before learner code binds names
    apply_memory_limit(config.get("limits", {}).get("memory", 0))

    if config["mode"] == "learner":
        _import_first(config, emit, guard)

    ini = os.path.join(config["private_dir"], "pytest.ini")
    with open(ini, "w") as f:
        f.write("[pytest]\n")
    for cp in config["checkpoints"]:
        emit({"type": "begin", "checkpoint": cp["id"]})
        guard.install_call_tripwires(cp.get("forbid_calls", []))
        plugin = GradePlugin(emit, seed=config["seed"], checkpoint=cp["id"], learner_roots=learner_roots,
                             guard=guard, checks_dir=config["checks_dir"])
        args = [*cp["nodeids"], "-c", ini, "--rootdir", config["checks_dir"], "--noconftest",
                "-p", "no:cacheprovider", "-p", "no:stepwise", "-p", "no:terminal", "-o", "addopts=",
                "-W", "ignore::DeprecationWarning"]
        try:
            pytest.main(args, plugins=[plugin])
        finally:
            guard.remove_call_tripwires()
        emit({"type": "checkpoint_end", "checkpoint": cp["id"]})
    emit({"type": "end", "checkpoints": len(config["checkpoints"])})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: learner atexit hooks and finalizers cannot change anything


def _import_first(config: dict, emit, guard) -> None:
    """Import the learner's modules for these checkpoints once, up front, under the parent's import
    limit: a module that never finishes importing then costs one short wait, not every checkpoint's
    limit. Errors are left for the checks to report (the failed import is retried there)."""
    import importlib
    emit({"type": "import_begin"})
    for name in [config["package"]] + [f"{config['package']}.{m}" for m in config.get("import_first", [])]:
        seen = len(guard.violations)
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - reported by the checks, with the learner's line
            sys.modules.pop(name, None)
        if len(guard.violations) > seen:  # imported anyway (the error was swallowed): import it again in
            sys.modules.pop(name, None)   # the check that needs it, where the violation is reported
    guard.violations.clear()
    emit({"type": "import_end"})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
