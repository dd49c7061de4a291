"""Training throughput with the Train screen attached vs headless (goal: 0.97x or better).

    python benchmarks/telemetry.py                              # a small torch loop, 5 rounds
    python benchmarks/telemetry.py --workload micrograd --rounds 3
    python benchmarks/telemetry.py --rounds 5 --steps 4000

Each round runs the same training job twice, in a random order:
  headless  the job child alone (lab.training.job.TrainProcess; nobody reads its metrics)
  panels    the same job under the TrainScreen in a headless Textual app: tailing metrics.jsonl and
            output.log at 3 Hz, sampling the device (NVML or psutil) at 2 Hz, redrawing the loss
            curve, sparklines and gauges
Throughput is the job's own: tokens between its first and last step record over the wall time
between them (the child's clock, so start-up and the app's own start are not counted). The ratio is
panels / headless per round; the median over rounds is printed. The lab process's own CPU use
(seconds of CPU per second of wall time, all its threads) is printed too: it bounds what the panels
can take from training even on a machine with no core to spare, and does not depend on what else
the machine runs, while the ratio does (on a shared machine, use more rounds).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.shared.telemetry import read_records  # noqa: E402
from grader import missions as M  # noqa: E402
from grader.missions import TrainJob  # noqa: E402
from grader.workspace import Workspace  # noqa: E402
from lab.training.job import TrainProcess  # noqa: E402

TORCH_LOOP = '''
import torch

def main(steps=2000, metrics=None):
    """A small MLP regression; every step reports its tokens (rows) and loss."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.ReLU(), torch.nn.Linear(512, 128))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(256, 128), torch.randn(256, 128)
    n = sum(p.numel() for p in model.parameters())
    metrics.start(n_params=n, n_layer=2, d_model=512, device="cpu", steps=steps)
    for k in range(steps):
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        metrics.step(k, loss.item(), lr=0.01, tokens=256)
        if (k + 1) % 500 == 0:
            metrics.eval(k + 1, loss.item())
'''


def setup(workload: str, root: Path, threads: int = 1):
    ws_root = root / "ws"
    (ws_root / ".llm-lab").mkdir(parents=True)
    ws = Workspace(ws_root)
    base = M.get("micrograd")
    if workload == "micrograd":
        return base, ws, "reference"
    pkg = ws_root / "benchloop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(f"THREADS = {threads}\n" + textwrap.dedent(TORCH_LOOP))
    mission = dataclasses.replace(base, id="bench", package="benchloop", title="telemetry benchmark",
                                  train=TrainJob(entry="train:main", steps=2000))
    return mission, ws, "mine"


def throughput(metrics: Path) -> float:
    """tokens/s between the first and the last step record (the child's wall clock)."""
    steps = [r for r in read_records(metrics) if r["type"] == "step"]
    end = [r for r in read_records(metrics) if r["type"] == "end"]
    assert end and end[-1]["status"] == "done", f"the run did not finish: {end}"
    first, last = steps[0], steps[-1]
    t0, t1 = first["time"], last["time"]
    tokens_per_step = float(first.get("tokens", 1))
    return (last["step"] - first["step"]) * tokens_per_step / (t1 - t0)


def run_headless(mission, ws, impl, steps) -> Path:
    job = TrainProcess(mission, ws, impl=impl, steps=steps).start()
    job.wait()
    job.finalize()
    return job.metrics_path


def run_panels(mission, ws, impl, steps) -> tuple[Path, int, float]:
    """The run under the Train screen; also the lab process's CPU seconds per wall second."""
    from lab.training.screen import TrainApp
    from lab.training.widgets.loss_plot import LossPlot

    app = TrainApp(mission, ws, impl=impl, steps=steps, autostart=True, show_last_run=False)

    async def drive():
        async with app.run_test(size=(160, 48)) as pilot:
            screen = app.train_screen
            cpu0, wall0 = time.process_time(), time.perf_counter()
            while screen.summary.end is None:
                await asyncio.sleep(0.5)           # not pilot.pause(): that costs CPU of its own
            cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            return screen.run_dir / "metrics.jsonl", screen.query_one(LossPlot).renders, cpu
    return asyncio.run(drive())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=["torch", "micrograd"], default="torch")
    p.add_argument("--steps", type=int, default=None, help="default: 4000 (torch), 10 (micrograd)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the torch workload")
    args = p.parse_args()
    steps = args.steps or (4000 if args.workload == "torch" else 10)
    ratios, ui_cpu = [], []
    with tempfile.TemporaryDirectory(prefix="llm-lab-bench-") as tmp:
        mission, ws, impl = setup(args.workload, Path(tmp), args.threads)
        print(f"workload {args.workload} ({impl}), {steps} steps, {args.rounds} rounds")
        for r in range(args.rounds):
            order = ["headless", "panels"]
            random.shuffle(order)
            got = {}
            for mode in order:
                t = time.perf_counter()
                if mode == "headless":
                    got[mode] = throughput(run_headless(mission, ws, impl, steps))
                else:
                    path, renders, cpu = run_panels(mission, ws, impl, steps)
                    got[mode] = throughput(path)
                    got["renders"] = renders
                    ui_cpu.append(cpu)
                got[mode + "_wall"] = time.perf_counter() - t
            ratio = got["panels"] / got["headless"]
            ratios.append(ratio)
            print(f"round {r + 1}: headless {got['headless']:,.0f} tok/s, panels {got['panels']:,.0f} tok/s "
                  f"-> {ratio:.3f}x  (lab process {100 * ui_cpu[-1]:.1f}% of a core; loss plot drawn "
                  f"{got['renders']} times in {got['panels_wall']:.1f} s)")
    print(f"median ratio panels/headless: {statistics.median(ratios):.3f}x "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}; goal >= 0.97)")
    print(f"the panels' own CPU: median {100 * statistics.median(ui_cpu):.1f}% of one core "
          f"(the most they can take from training on a machine with no core to spare)")


if __name__ == "__main__":
    main()
