"""The training job's child process: run a mission's train entry and stream its metrics.

    python -I -u -m grader.train_child --mission micrograd --impl mine --package micrograd \\
        --reference engine.micrograd --entry train:main --steps 100 \\
        --metrics <ws>/.llm-lab/runs/<run-id>/metrics.jsonl --workspace <ws>

impl "mine" imports the learner's package from the workspace through a meta-path finder that
answers for that one package only (nothing else in the workspace can shadow a library), always from
source; impl "reference" imports engine.<package>. The entry is called as
`entry(steps=N, metrics=writer, **options)` (each `--option name=value`: a choice the mission's
[train.options] offers, e.g. model=smollm2) and the run ALWAYS ends with an `end` record:

    done      the entry returned
    stopped   SIGINT or SIGTERM (both raise KeyboardInterrupt here); exit code 130
    crashed   any other exception: its type, message and the last line of learner code; exit code 1

Only SIGKILL (or a power cut) leaves no end record; the lab writes `crashed` for it then
(lab.training.job). It imports nothing of lab/ (see docs/architecture.md).
Not handled: entries that spawn their own worker processes and do not stop them on
KeyboardInterrupt (the lab kills the whole process group after a grace period anyway).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import signal
import sys
import traceback
from pathlib import Path

from engine.shared import perf
from .loader import LearnerFinder
from engine.shared.telemetry import MetricsWriter

EXIT_DONE, EXIT_CRASHED, EXIT_STOPPED = 0, 1, 130


def load_entry(entry: str, *, impl: str, package: str, reference: str, workspace: str | None):
    """The entry function: "train:main" -> <package>.train.main (mine) or <reference>.train.main."""
    module_name, func_name = entry.split(":", 1)
    if impl == "mine":
        if not workspace:
            raise ValueError("impl 'mine' needs a workspace")
        folder = Path(workspace).resolve() / package
        if not folder.is_dir():
            raise FileNotFoundError(f"{package}/ is missing from your workspace ({folder}); "
                                    "`llm-lab init` restores the stubs")
        sys.meta_path.insert(0, LearnerFinder(package, folder))
        full = f"{package}.{module_name}"
    else:
        full = f"{reference}.{module_name}"
    module = importlib.import_module(full)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise AttributeError(f"{full} has no function {func_name}() (the mission's [train] entry)")
    return func


def call_entry(func, steps: int, writer: MetricsWriter, options: dict[str, str] | None = None):
    """entry(steps=..., metrics=..., **options), leaving out steps and metrics when its signature
    does not take them. An option it does not take is an error that says so (the learner chose it)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = {}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {}
    if "steps" in params or var_kw:
        kwargs["steps"] = steps
    if "metrics" in params or var_kw:
        kwargs["metrics"] = writer
    for name, value in (options or {}).items():
        if params and name not in params and not var_kw:
            raise TypeError(f"{getattr(func, '__qualname__', 'the entry')}() takes no `{name}` argument, so "
                            f"--{name} {value} cannot reach it (the mission's train.py gives it one: "
                            "`llm-lab init` restores a missing train.py)")
        kwargs[name] = value
    return func(**kwargs)


def parse_options(pairs: list[str]) -> dict[str, str]:
    """["model=smollm2", ...] -> {"model": "smollm2", ...}"""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--option takes name=value, got {pair!r}")
        out[name] = value
    return out


def crash_message(exc: BaseException, package: str | None = None) -> str:
    """'ValueError: bad shape (micrograd/train.py:42 in train)': the message and, when the learner's
    code is on the stack, the deepest line of it."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if package and f"{os.sep}{package}{os.sep}" in f.filename] or frames[-1:]
    if mine:
        f = mine[-1]
        text += f" ({Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno} in {f.name})"
    return text[:2000]


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    # The lab stops a run with SIGINT to its process group (SIGTERM from elsewhere): both become
    # KeyboardInterrupt. SIGINT is set explicitly: an ignored SIGINT is inherited from a parent.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    writer = MetricsWriter(args.metrics, mission=args.mission, impl=args.impl, run=args.run,
                           peak_flops=lambda device: perf.peak_flops(device, cache_dir=args.cache_dir))
    try:
        try:
            func = load_entry(args.entry, impl=args.impl, package=args.package,
                              reference=args.reference, workspace=args.workspace)
            call_entry(func, args.steps, writer, parse_options(args.option))
        except KeyboardInterrupt:
            writer.end("stopped", "stopped by the user")
            print("llm-lab: run stopped", file=sys.stderr, flush=True)
            return EXIT_STOPPED
        except BaseException as exc:  # SystemExit included: the entry must return
            message = crash_message(exc, args.package if args.impl == "mine" else None)
            if isinstance(exc, NotImplementedError):
                message = "not implemented yet: " + message
            traceback.print_exc()
            writer.end("crashed", message)
            return EXIT_CRASHED
        writer.end("done")
        return EXIT_DONE
    except KeyboardInterrupt:  # a second interrupt while ending: the end record is already written
        writer.end("stopped", "stopped by the user")
        return EXIT_STOPPED


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m grader.train_child", description="Run a mission's training job.")
    p.add_argument("--mission", required=True)
    p.add_argument("--impl", choices=["mine", "reference"], required=True)
    p.add_argument("--package", required=True, help="the learner's package name")
    p.add_argument("--reference", required=True, help="the reference package, e.g. engine.micrograd")
    p.add_argument("--entry", required=True, help="module:function inside the package")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a keyword argument for the entry ([train.options] of the mission)")
    p.add_argument("--metrics", required=True, help="metrics.jsonl to write")
    p.add_argument("--run", default=None, help="run id (default: the metrics file's folder name)")
    p.add_argument("--workspace", default=None)
    p.add_argument("--cache-dir", default=None, help="where the CPU peak FLOP/s probe is cached")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
