"""The `llm-lab` command. Fast to start: no torch, no Textual until a subcommand needs it.

    llm-lab                      open the lab (Textual) on the workspace (asks before creating one)
    llm-lab init [PATH]          create a workspace (never overwrites your files)
    llm-lab missions             list missions and your progress
    llm-lab grade [MISSION] [--all] [--checkpoint ID] [--reference] [--json F] [--junit F]
    llm-lab train MISSION [--impl mine|reference] [--headless] [--steps N] [--model M] [--mode M]
    llm-lab models [...]         the models missions use (engine.shared.models)

Only `init` creates a workspace (and bare `llm-lab`, after asking): every other command needs an
existing one (`--workspace PATH`, else the nearest folder at or above this one, else the default)
and says so when there is none.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from grader.missions import MissionError

# theme colour of lab.progress.STATUS_STYLE -> rich colour
_RICH = {"success": "green", "error": "red", "warning": "yellow", "accent": "magenta",
         "foreground-muted": "dim", "primary": "blue", "foreground": "white"}
USAGE_HINT = "Run `llm-lab` with no command to open the lab (the mission map) on your workspace."


def _console():
    from rich.console import Console
    return Console(highlight=False)


def version() -> str:
    from importlib import metadata
    try:
        return metadata.version("llm-lab")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


# -- workspaces -----------------------------------------------------------------------------------
def _found(args):
    from grader import workspace
    given = getattr(args, "workspace", None)
    return workspace.resolve(Path(given) if given else None)


def _workspace(args):
    """The existing workspace this command works on (see the module docstring), its brief.md
    copies refreshed; prints what the learner must know (an edited brief, a corrupt progress file)."""
    from grader import workspace
    ws = _found(args)
    for note in workspace.sync_briefs(ws):
        print(f"llm-lab: note: {note}", file=sys.stderr)
    ws.state.read()
    for warning in ws.state.take_warnings():
        print(f"llm-lab: warning: {warning}", file=sys.stderr)
    return ws


def _create(path: Path | None, ci_source: str | None = None):
    from grader import ci, workspace
    ws, copied, kept = workspace.init(path)
    target = ws.root / ".github" / "workflows" / "llm-lab.yml"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(ci.workflow(ci_source or ci.install_source()))
    return ws, copied, kept


def cmd_init(args) -> int:
    from grader import ci
    from grader.workspace import display_path
    ws, copied, kept = _create(Path(args.path) if args.path else None, args.ci_source)
    console = _console()
    console.print(f"[bold]Workspace:[/] {ws.root}")
    console.print(f"  {len(copied)} stub file(s) copied, {len(kept)} of yours kept as they were; "
                  "each mission's brief is in its folder as brief.md.")
    workflow = (ws.root / ".github" / "workflows" / "llm-lab.yml").read_text()
    if f"|| ''" in workflow:
        console.print(f"  [yellow]CI:[/] set the repository variable {ci.SOURCE_VAR} to where llm-lab comes from "
                      "(e.g. git+https://github.com/<owner>/llm-lab@main); see .github/workflows/llm-lab.yml.")
    console.print(f"  Next: [bold]cd {display_path(ws.root)}[/] and run [bold]llm-lab[/] (or `llm-lab grade micrograd`).")
    return 0


def cmd_tui(args) -> int:
    from grader import workspace
    notes: list[str] = []
    try:
        ws = _found(args)
        notes = workspace.sync_briefs(ws)          # shown in the lab (a print would be painted over)
    except workspace.WorkspaceNotFound as e:
        if getattr(args, "workspace", None):
            raise
        target = workspace.default_path()
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print(f"llm-lab: {e}", file=sys.stderr)
            return 2
        try:
            answer = input(f"No llm-lab workspace in this folder or above it. Create one at "
                           f"{workspace.display_path(target)} (a folder with every mission's starting files "
                           f"and your progress)? [Y/n] ")
        except EOFError:
            answer = "n"
        if answer.strip().lower() not in ("", "y", "yes"):
            print("Nothing created. `llm-lab init PATH` makes a workspace where you like.")
            return 1
        ws, copied, _ = _create(target)
        print(f"Created your workspace at {ws.root} ({len(copied)} starting files); opening the lab…")
    from lab.app import LabApp
    LabApp(ws.root, notices=notes).run()
    return 0


# -- missions and grading -------------------------------------------------------------------------
def cmd_missions(args) -> int:
    from grader import workspace
    from grader.missions import load_all
    from lab.progress import mission_progress
    missions, errors = load_all()
    console = _console()
    try:
        ws = _workspace(args)
    except workspace.WorkspaceNotFound as e:
        if getattr(args, "workspace", None):
            raise
        ws = None
        console.print(f"[dim]{e}: progress not shown[/]")
    state = ws.state.read() if ws else {"missions": {}}
    if ws:
        console.print(f"[dim]workspace {workspace.display_path(ws.root)}[/]")
    for m in missions:
        gpu = " [dim](GPU)[/]" if m.needs == "gpu" else ""
        counts = mission_progress(m, state).counts
        console.print(f"{m.order:>2}. [bold]{m.id:<12}[/] {counts:<28} {m.title}{gpu}")
    for e in errors:
        console.print(f"[red]broken mission:[/] {e}")
    return 1 if errors else 0


def _select(args, console):
    """The missions to grade, or an exit code."""
    from grader import missions as M
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
            return 2, errors
    else:
        console.print("[red]name a mission (llm-lab grade micrograd) or use --all[/]; `llm-lab grade --help` lists them")
        return 2, errors
    if args.checkpoint:
        for mission in selected:
            try:
                mission.checkpoint(args.checkpoint)
            except KeyError as e:
                console.print(f"[red]{e.args[0]}[/]")
                return 2, errors
    return selected, errors


def _printer(console, order: list[str]):
    """An on_event that prints each checkpoint's line, in mission order (the slowest checkpoint
    runs beside the others and may finish first)."""
    from grader import report
    from lab.progress import status_style
    finished: dict[str, dict] = {}
    lock = threading.Lock()

    def on_event(kind, data):
        if kind != "checkpoint":
            return
        with lock:
            finished[data["checkpoint"]] = data
            ready = []
            while order and order[0] in finished:
                ready.append(finished[order.pop(0)])
        for d in ready:
            sym, colour, _ = status_style(d["status"])
            style = _RICH.get(colour, "white")
            bonus = " [dim](bonus)[/]" if d.get("bonus") else ""
            msg = report.clean_text(d["message"]).strip().replace("\n", " ")
            console.print(f"  [{style}]{sym} {d['checkpoint']:<14} {d['status']:<16}[/] "
                          f"[dim]{d['duration']:.1f}s[/]{bonus} {msg[:300]}")
    return on_event


def cmd_grade(args) -> int:
    from grader import report
    from grader.runner import grade
    console = _console()
    selected, errors = _select(args, console)
    if isinstance(selected, int):
        return selected
    ws = None if args.reference else _workspace(args)
    warnings: list[str] = _integrity_warnings(ws.root) if ws is not None else []
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")
    runs = []
    for mission in selected:
        cps = [args.checkpoint] if args.checkpoint else None
        label = "reference" if args.reference else str(ws.root)
        console.print(f"[bold]{mission.id}[/] — {mission.title} [dim]({label})[/]")
        order = [c.id for c in mission.checkpoints if not cps or c.id in cps]
        run = grade(mission, ws, reference=args.reference, checkpoints=cps, seed=args.seed,
                    on_event=_printer(console, order))
        runs.append(run)
        if ws is not None:
            ws.state.record_results(mission.id, run.results)
    for w in dict.fromkeys(w for r in runs for w in r.warnings):
        console.print(f"[yellow]warning:[/] {report.clean_text(w)}")
    for w in ws.state.take_warnings() if ws is not None else []:
        console.print(f"[yellow]warning:[/] {w}")
    warnings += [w for r in runs for w in r.warnings]
    ok = all(r.ok for r in runs) and not errors
    results = [r for run in runs for r in run.results]
    console.print(f"[bold]{report.totals(results)}[/] in {sum(r.duration for r in runs):.1f}s"
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
    from lab.training.command import run_train
    return run_train(args)


def cmd_models(args) -> int:
    """`llm-lab models ...`: handed to engine.shared.models.cli (imported only now: it may load
    heavy libraries)."""
    try:
        from engine.shared.models import cli
    except ImportError as e:
        print(f"llm-lab: `llm-lab models` is not available in this install of llm-lab "
              f"(engine.shared.models.cli is missing: {e})", file=sys.stderr)
        return 2
    result = cli(list(args.args))
    return result if isinstance(result, int) else 0


# -- the parser ----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog may be computed when help is asked for (`epilog_from`)."""

    epilog_from = None

    def format_help(self) -> str:
        if self.epilog_from is not None:
            self.epilog = self.epilog_from()
        return super().format_help()


def _grade_epilog() -> str:
    """`grade --help` ends with the missions there are (read only when help is asked for)."""
    from grader.missions import load_all
    missions, errors = load_all()
    lines = ["missions:"]
    for m in missions:
        required = sum(not c.bonus for c in m.checkpoints)
        bonus = len(m.checkpoints) - required
        extra = f" + {bonus} bonus" if bonus else ""
        lines.append(f"  {m.id:<12} {m.title} ({required} checkpoints{extra})")
    lines += [f"  (broken: {e})" for e in errors]
    return "\n".join(lines) + ("\n\nexamples:\n  llm-lab grade micrograd\n"
                               "  llm-lab grade gpt --checkpoint attention\n"
                               "  llm-lab grade --all --junit report.xml --json report.json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llm-lab", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="From micrograd to a mini-GPT you trained yourself.\n\n" + USAGE_HINT,
        epilog="examples:\n  llm-lab                      open the lab\n"
               "  llm-lab init ~/llm-lab       create a workspace\n"
               "  llm-lab grade micrograd      grade one mission from the shell\n"
               "  llm-lab train micrograd --headless")
    p.add_argument("--version", action="version", version=f"llm-lab {version()}")
    p.add_argument("--workspace", help="workspace folder (default: nearest above, else ~/llm-lab); "
                                       "it must exist: only `llm-lab init` creates one")
    sub = p.add_subparsers(dest="cmd", title="commands", metavar="COMMAND", parser_class=_Parser)
    s = sub.add_parser("init", help="create a workspace with every mission's stubs and briefs")
    s.add_argument("path", nargs="?")
    s.add_argument("--ci-source", metavar="REQ", help="where the CI workflow installs llm-lab from (a pip "
                                                      "requirement, e.g. git+https://github.com/<owner>/llm-lab@main)")
    s.set_defaults(func=cmd_init)
    s = sub.add_parser("missions", help="list missions and your progress")
    s.add_argument("--workspace", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_missions)
    s = sub.add_parser("grade", help="run a mission's hidden checks",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.epilog_from = _grade_epilog
    s.add_argument("mission", nargs="?", help="a mission id (listed below)")
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
    s.add_argument("--model", help="which model, where the mission offers a choice (lora: minilm, smollm2)")
    s.add_argument("--mode", help="which method, where the mission offers a choice (lora: lora, qlora, probe, full)")
    s.add_argument("--workspace", help="workspace folder", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_train)
    s = sub.add_parser("models", help="the models missions use: list them, fetch one (e.g. SmolLM2)",
                       add_help=False)
    s.add_argument("args", nargs="*", help="handed to the models command (`llm-lab models --help`: its own help)")
    s.set_defaults(func=cmd_models)
    return p


def _command_at(argv: list[str]) -> int | None:
    """Where the command word is in argv (after the global options), or None."""
    i = 0
    while i < len(argv):
        if argv[i] == "--workspace":
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    at = _command_at(argv)
    if at is not None and argv[at] == "models":    # its arguments, --help included, are its own
        args = build_parser().parse_args(argv[:at + 1])
        args.args = argv[at + 1:]
    else:
        args = build_parser().parse_args(argv)
    func = getattr(args, "func", cmd_tui)
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, NotADirectoryError, PermissionError, MissionError) as e:
        print(f"llm-lab: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
