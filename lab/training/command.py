"""`llm-lab train MISSION [--impl mine|reference] [--headless] [--steps N] [--model M] [--mode M] [--workspace W]`.

--model and --mode pick among the choices a mission's [train.options] offers (lora: --model
smollm2, --mode qlora); a mission that offers none refuses them.

Checks the arguments, finds the workspace, then runs the Train screen (screen.py, in a small app of
its own, the run started at once) or, with --headless, the plain progress output (headless.py).
Exit code: 0 done, 130 stopped, 1 crashed, 2 the run could not start.
"""
from __future__ import annotations

from pathlib import Path


def run_train(args) -> int:
    from grader import missions as M

    from .headless import EXIT, console_for_output, run_headless
    console = console_for_output()
    try:
        mission = M.get(args.mission)
    except (M.MissionError, KeyError) as e:
        console.print(f"[red]{e}[/]")
        return 2
    if mission.train is None:
        with_train = ", ".join(m.id for m in M.load_all()[0] if m.train is not None)
        console.print(f"[red]mission {mission.id!r} has no training job[/] (no [train] table in its "
                      f"mission.toml). Missions that train: {with_train or 'none'}.")
        return 2
    impl = getattr(args, "impl", None) or "mine"
    try:
        ws = workspace_for(args, impl)
    except FileNotFoundError as e:
        console.print(f"[red]{e}[/]")
        return 2
    steps = getattr(args, "steps", None)
    if steps is not None and steps <= 0:
        console.print("[red]--steps must be a positive number[/]")
        return 2
    from grader.missions import TRAIN_OPTIONS

    from .job import TrainError, check_options
    try:
        options = check_options(mission, {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k, None)})
    except TrainError as e:
        console.print(f"[red]{e}[/]")
        return 2
    if getattr(args, "headless", False):
        return run_headless(mission, ws, impl=impl, steps=steps, console=console, options=options)
    from .screen import TrainApp
    app = TrainApp(mission, ws, impl=impl, steps=steps, options=options)
    result = app.run()
    screen = app.train_screen
    end = screen.last_end
    status = str(end.get("status")) if end else result
    if end:
        note = screen.summary.end_note(screen.planned_steps)
        run = f"run {screen.run_dir.name}: " if screen.run_dir is not None else ""
        console.print(f"{run}{status}{': ' + note if note else ''}")
    return EXIT.get(status or "", 0)


def workspace_for(args, impl: str):
    """The workspace a run writes into. `--workspace` must be one (only `llm-lab init` creates
    one); without it, the nearest. The reference needs no learner files, only a place for its runs:
    without any workspace it uses a cache folder of its own."""
    from grader import workspace
    given = Path(args.workspace) if getattr(args, "workspace", None) else None
    try:
        ws = workspace.resolve(given)
    except workspace.WorkspaceNotFound:
        if impl != "reference" or given is not None:
            raise
        root = Path.home() / ".cache" / "llm-lab" / "reference-workspace"
        (root / workspace.MARKER).mkdir(parents=True, exist_ok=True)
        return workspace.Workspace(root)
    workspace.sync_briefs(ws)
    return ws
