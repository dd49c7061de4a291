"""The `llm-lab` command. Fast to start: no torch, no Textual until a subcommand needs it.

    llm-lab                      open the lab (Textual) on the workspace
    llm-lab init [PATH]          create a workspace (never overwrites your files)
    llm-lab missions             list missions and your progress
    llm-lab grade [MISSION] [--all] [--checkpoint ID] [--reference] [--json F] [--junit F]
    llm-lab train MISSION [--impl mine|reference] [--headless] [--steps N]
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

STATUS_STYLE = {"passed": ("✔", "green"), "failed": ("✘", "red"), "not_implemented": ("…", "yellow"),
                "error": ("!", "red"), "timeout": ("⏱", "magenta"), "crashed": ("☠", "magenta"),
                "oom": ("▲", "magenta"), "skipped": ("-", "dim")}


def _console():
    from rich.console import Console
    return Console(highlight=False)


def cmd_init(args) -> int:
    from grader import workspace
    ws, copied, kept = workspace.init(Path(args.path) if args.path else None)
    _write_workflow(ws.root)
    console = _console()
    console.print(f"[bold]Workspace:[/] {ws.root}")
    console.print(f"  {len(copied)} stub file(s) copied, {len(kept)} of yours kept as they were.")
    console.print("  Next: [bold]cd " + str(ws.root) + "[/] and run [bold]llm-lab[/] (or `llm-lab grade micrograd`).")
    return 0


def _write_workflow(root: Path) -> None:
    from grader.ci import WORKFLOW
    target = root / ".github" / "workflows" / "llm-lab.yml"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(WORKFLOW)


def _resolve_workspace(args, *, create=True):
    from grader import workspace
    ws, note = workspace.resolve(Path(args.workspace) if getattr(args, "workspace", None) else None, create=create)
    if note:
        print(f"llm-lab: {note}", file=sys.stderr)
    return ws


def cmd_missions(args) -> int:
    from grader.missions import load_all
    missions, errors = load_all()
    ws = _resolve_workspace(args, create=False) if args.workspace else None
    state = ws.state.read() if ws else {"missions": {}}
    console = _console()
    for m in missions:
        cps = state["missions"].get(m.id, {}).get("checkpoints", {})
        done = sum(cps.get(c.id, {}).get("status") == "passed" for c in m.checkpoints)
        gpu = " [dim](GPU)[/]" if m.needs == "gpu" else ""
        console.print(f"{m.order:>2}. [bold]{m.id:<12}[/] {done}/{len(m.checkpoints)}  {m.title}{gpu}")
    for e in errors:
        console.print(f"[red]broken mission:[/] {e}")
    return 1 if errors else 0


def cmd_grade(args) -> int:
    from grader import missions as M
    from grader import report
    from grader.runner import grade
    console = _console()
    all_missions, errors = M.load_all()
    for e in errors:
        console.print(f"[red]broken mission:[/] {e}")
    if args.all:
        selected = all_missions
    elif args.mission:
        try:
            selected = [M.get(args.mission)]
        except M.MissionError as e:
            console.print(f"[red]{e}[/]")
            return 2
    else:
        console.print("[red]name a mission (llm-lab grade micrograd) or use --all[/]")
        return 2
    ws = None if args.reference else _resolve_workspace(args)
    runs, warnings = [], []
    if ws is not None:
        warnings += ws.state.warnings + _integrity_warnings(ws.root)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")
    for mission in selected:
        cps = [args.checkpoint] if args.checkpoint else None
        if cps:
            try:
                mission.checkpoint(args.checkpoint)
            except KeyError as e:
                console.print(f"[red]{e.args[0]}[/]")
                return 2
        label = "reference" if args.reference else str(ws.root)
        console.print(f"[bold]{mission.id}[/] — {mission.title} [dim]({label})[/]")

        order = [c.id for c in mission.checkpoints if not cps or c.id in cps]
        finished: dict[str, dict] = {}
        lock = threading.Lock()

        def on_event(kind, data):
            # checkpoints may finish out of order (the slowest runs beside the others): print in order
            if kind != "checkpoint":
                return
            with lock:
                finished[data["checkpoint"]] = data
                ready = []
                while order and order[0] in finished:
                    ready.append(finished[order.pop(0)])
            for d in ready:
                sym, style = STATUS_STYLE.get(d["status"], ("?", "white"))
                msg = report.clean_text(d["message"]).strip().replace("\n", " ")
                console.print(f"  [{style}]{sym} {d['checkpoint']:<14} {d['status']:<16}[/] "
                              f"[dim]{d['duration']:.1f}s[/] {msg[:300]}")
        run = grade(mission, ws, reference=args.reference, checkpoints=cps, seed=args.seed, on_event=on_event)
        runs.append(run)
        if ws is not None:
            ws.state.record_results(mission.id, run.results)
        warnings += run.warnings
    for w in dict.fromkeys(w for r in runs for w in r.warnings):
        console.print(f"[yellow]warning:[/] {report.clean_text(w)}")
    ok = all(r.ok for r in runs) and not errors
    passed = sum(r.passed for run in runs for r in run.results)
    total = sum(len(run.results) for run in runs)
    console.print(f"[bold]{passed}/{total} checkpoints passed[/] in {sum(r.duration for r in runs):.1f}s"
                  f" (seed {', '.join(str(r.seed) for r in runs)})")
    if args.json:
        report.to_json(runs, args.json, warnings)
    if args.junit:
        report.to_junit(runs, args.junit)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        ann = report.github_annotations(runs)
        if ann:
            print(ann)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(report.markdown_summary(runs))
    return 0 if ok else 1


def _integrity_warnings(root: Path) -> list[str]:
    from grader.integrity import scan
    return scan(root)


def cmd_train(args) -> int:
    from lab.train_cli import run_train
    return run_train(args)


def cmd_tui(args) -> int:
    ws = _resolve_workspace(args)
    from lab.app import LabApp
    LabApp(ws.root).run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llm-lab", description="From micrograd to a mini-GPT you trained yourself.")
    p.add_argument("--workspace", help="workspace folder (default: nearest above, else ~/llm-lab)")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("init", help="create a workspace with every mission's stubs")
    s.add_argument("path", nargs="?")
    s.set_defaults(func=cmd_init)
    s = sub.add_parser("missions", help="list missions and progress")
    s.add_argument("--workspace", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_missions)
    s = sub.add_parser("grade", help="run a mission's hidden checks")
    s.add_argument("mission", nargs="?")
    s.add_argument("--all", action="store_true", help="grade every mission")
    s.add_argument("--checkpoint", help="grade one checkpoint")
    s.add_argument("--workspace", help="workspace folder", default=argparse.SUPPRESS)
    s.add_argument("--reference", action="store_true", help="grade the reference implementation (engine/)")
    s.add_argument("--json", metavar="FILE", help="write a JSON report")
    s.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    s.add_argument("--seed", type=int, help="seed for the checks' random inputs (default: fresh)")
    s.set_defaults(func=cmd_grade)
    s = sub.add_parser("train", help="run a mission's training job")
    s.add_argument("mission")
    s.add_argument("--impl", choices=["mine", "reference"], default="mine")
    s.add_argument("--headless", action="store_true", help="plain progress output, no TUI")
    s.add_argument("--steps", type=int)
    s.add_argument("--workspace", help="workspace folder", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func = getattr(args, "func", cmd_tui)
    from grader.missions import MissionError
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, NotADirectoryError, PermissionError, MissionError) as e:
        print(f"llm-lab: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
