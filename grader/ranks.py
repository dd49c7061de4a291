"""Run a check's function on N real processes (ranks), for missions about distributed training.

    from grader import ranks
    per_rank = ranks.run(rank_fn, world=2, args=(cases,))   # [what rank 0 returned, rank 1's, ...]

`rank_fn(rank, world, *args)` is a module-level function of a file in the mission's checks/ folder
(or any importable module): each rank imports it by name. Each rank is a fresh interpreter
(`python -I -B -m grader.ranks CONFIG`), like a torchrun worker: RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT and OMP_NUM_THREADS=1 in its environment, and the default process group
initialised before rank_fn runs (gloo; or NCCL with one GPU per rank, when asked and there are enough).
The rendezvous store lives in this process (a free port, no race), so a rank that never starts
fails the others' init within `init_timeout`.

Before any learner code runs, a rank has what the grading child has: the seam configured the same
way (mode, package, workspace), the import guard (no reference solution, no forbidden module), the
checkpoint's call tripwires (read from mission.toml for the checks file rank_fn lives in), and its
own log of collective calls (`collectives()`: name, async_op, whether autograd's backward was
running, tensor size), so checks can count them.

Results come back through files in a private folder this process made: each rank torch.save()s its
value, loaded here with weights_only=True (tensors and plain data only), for the check to judge
with grader.checks. Failures always name the rank:

    NotImplementedError in a rank     -> NotImplementedError here (reads not_implemented)
    a forbidden import or call         -> ForbiddenAPI (failed)
    CheckFailure raised in a rank      -> CheckFailure (failed)
    any other exception                -> RankError("rank 1: ValueError in ddp.py line 12 (...): ...")
    a rank that dies (signal, exit)    -> CheckFailure naming the rank and how it died
    still running after `timeout`      -> CheckFailure naming every rank still running and the line
                                          it was at (a faulthandler stack dump), then all are killed
When several ranks fail, the cause is reported, not the echo (a peer's "connection closed" after
rank 1 crashed). The call never waits past `timeout` plus a second or two to collect and kill.
Whatever a rank printed comes back on this process's stdout, prefixed with its rank.

`run_accelerate(...)` starts the same rank bootstrap through `accelerate launch --multi_gpu` (the
launcher the learner would use), which initialises nothing itself: the learner's Accelerator does.

Not handled: ranks on several machines; a rank that handles SIGUSR1 itself (no stack in the
message, it is still killed); learner code in a rank that rewrites the grader in its own process
(the trust model of the grading child applies to each rank).
"""
from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

DEFAULT_TIMEOUT = 150.0     # seconds for all ranks to import, run and report (a busy 2-core box is slow)
INIT_TIMEOUT = 90.0         # seconds for every rank to reach the rendezvous
GRACE = 3.0                 # after one rank fails, how long the others get to report before the kill
LOG_LINES = 30              # lines of each rank's output echoed on this process's stdout
PEER_LOST = ("connection closed by peer", "connection reset", "broken pipe", "timed out", "timeout",
             "socket closed", "read error", "unbound buffer", "recv", "gloo")


class RankError(Exception):
    """An exception (not a check failure) raised by code running in a rank; the message names it."""


# =================================================================================================
# the parent side: start the ranks, wait with a deadline, collect, judge how they ended
# =================================================================================================
def run(fn, *, world: int = 2, args: tuple = (), timeout: float = DEFAULT_TIMEOUT,
        init_timeout: float = INIT_TIMEOUT, backend: str = "gloo", preload: tuple = ()) -> list:
    """Run fn(rank, world, *args) on `world` fresh processes; return each rank's value, by rank.

    backend: "gloo" (CPU tensors; the default, so that results compare closely with a CPU reference
    on any machine), "nccl" (fn must put its tensors on `device()`), or "auto" (NCCL when there is a
    GPU for every rank). preload: installed modules each rank imports up front from their bytecode
    caches (e.g. "torch._dynamo", which torch's DistributedDataParallel and optimizers import)."""
    import torch.distributed as dist
    from datetime import timedelta

    if backend == "auto":
        backend = default_backend(world)
    store = dist.TCPStore("127.0.0.1", 0, world_size=None, is_master=True, wait_for_workers=False,
                          timeout=timedelta(seconds=init_timeout))
    with _Run(fn, world, args, launcher="ranks", backend=backend, timeout=timeout,
              init_timeout=init_timeout, port=store.port, preload=preload) as r:
        for rank in range(world):
            r.start_rank(rank)
        return r.wait()


def run_accelerate(fn, *, world: int = 2, args: tuple = (), timeout: float = DEFAULT_TIMEOUT,
                   mixed_precision: str = "no", gpus: bool = False,
                   preload: tuple = ("accelerate", "torch._dynamo")) -> list:
    """Run fn(rank, world, *args) in each process of `accelerate launch --multi_gpu --num_processes
    world` (one process and no --multi_gpu when world == 1). With gpus=False the launch sees no GPU
    (CUDA_VISIBLE_DEVICES=""), so a script that says Accelerator(cpu=not torch.cuda.is_available())
    runs MULTI_CPU over gloo. fn sets nothing up: the learner's Accelerator initialises the group."""
    with _Run(fn, world, args, launcher="accelerate", backend="", timeout=timeout,
              init_timeout=INIT_TIMEOUT, port=_free_port(), preload=preload) as r:
        r.start_accelerate(mixed_precision=mixed_precision, gpus=gpus)
        return r.wait()


def default_backend(world: int) -> str:
    """NCCL when this machine has a GPU for every rank, else gloo (CPU). Never initialises CUDA here
    (device_count() asks NVML first), so nothing is spoiled for the ranks."""
    try:
        import torch
        if torch.cuda.device_count() >= world:
            return "nccl"
    except Exception:  # noqa: BLE001 - a broken CUDA install means CPU
        pass
    return "gloo"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grading_context(fn) -> dict:
    """What a rank needs to look like the grading child: the seam's mode/package/workspace and the
    guard's rules for the checkpoint whose checks file `fn` lives in (empty outside the grader)."""
    from . import seam
    from .missions import load_all

    config = seam.config()
    if config.get("package") is None:
        return {}
    file = str(Path(sys.modules[fn.__module__].__file__).resolve())
    forbid, messages, calls = [], {}, []
    for m in load_all()[0]:
        if m.package != config["package"] or m.reference != config["reference"]:
            continue
        forbid = list(m.forbid)
        messages = {lib: m.forbid_reason for lib in m.forbid if m.forbid_reason}
        in_checks = Path(file).parent == m.checks_dir.resolve()
        for cp in m.checkpoints:
            # rank functions live in a helper module; tripwires of every checkpoint that uses this
            # folder's files are armed only for the checkpoint running now, found by its check files
            if in_checks and any(_running_check(m.checks_dir / c.split("::")[0]) for c in cp.checks):
                calls += [c for c in cp.forbid_calls if c not in calls]
        reference_dir = str(m.reference_dir)
        break
    else:
        reference_dir = ""
    roots = ([os.path.join(config["workspace"], config["package"])] if config["mode"] == "learner"
             else [reference_dir])
    return {"seam": {k: config[k] for k in ("mode", "package", "reference", "workspace")},
            "forbid": forbid, "forbid_messages": messages, "forbid_calls": calls, "learner_roots": roots}


def _running_check(path: Path) -> bool:
    """Is the checks file `path` on the call stack now (the check that asked for ranks)?"""
    target = str(path.resolve())
    frame = sys._getframe(1)
    while frame is not None:
        if os.path.realpath(frame.f_code.co_filename) == target:
            return True
        frame = frame.f_back
    return False


class _Run:
    """One launch: the private folder, the processes, the deadline, the verdict on how it ended."""

    def __init__(self, fn, world, args, *, launcher, backend, timeout, init_timeout, port, preload=()):
        import torch

        if world < 1:
            raise ValueError(f"world must be at least 1, got {world}")
        module = sys.modules.get(fn.__module__)
        if module is None or not getattr(module, "__file__", None) or fn.__module__ == "__main__" \
                or getattr(module, fn.__qualname__, None) is not fn:
            raise ValueError(f"{fn!r} must be a module-level function of an importable module "
                             "(each rank imports it by name)")
        depth = len(fn.__module__.split("."))
        root = Path(module.__file__).resolve().parents[depth - 1]
        self.world, self.timeout, self.launcher = world, timeout, launcher
        self.dir = tempfile.mkdtemp(prefix="ranks-")
        os.chmod(self.dir, 0o700)
        args_path = os.path.join(self.dir, "args.pt")
        torch.save(tuple(args), args_path)
        self.config = {
            "dir": self.dir, "world": world, "port": port, "backend": backend, "launcher": launcher,
            "init_timeout": init_timeout, "pg_timeout": timeout + 30, "fn": [fn.__module__, fn.__qualname__],
            "path": str(root), "args": args_path, "context": grading_context(fn), "preload": list(preload),
        }
        self.config_path = os.path.join(self.dir, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        self.procs: dict[int, subprocess.Popen] = {}   # rank -> process (own launcher)
        self.launcher_proc: subprocess.Popen | None = None
        self.started = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill_all()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    # -- starting ------------------------------------------------------------------------------
    def _env(self, rank: int | None) -> dict:
        env = dict(os.environ)
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(self.config["port"]), WORLD_SIZE=str(self.world),
                   LOCAL_WORLD_SIZE=str(self.world), TORCH_CPP_LOG_LEVEL="ERROR")
        if rank is not None:
            env.update(RANK=str(rank), LOCAL_RANK=str(rank))
        return env

    def _argv(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-I", "-B", "-X", f"pycache_prefix={os.path.join(self.dir, 'pycache')}",
                "-m", module, *args]

    def start_rank(self, rank: int) -> None:
        self.procs[rank] = subprocess.Popen(
            self._argv("grader.ranks", self.config_path), env=self._env(rank), cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_accelerate(self, *, mixed_precision: str, gpus: bool) -> None:
        env = self._env(None)
        for k in ("RANK", "LOCAL_RANK"):
            env.pop(k, None)
        env["HF_HOME"] = os.path.join(self.dir, "hf")    # no accelerate config file of the user's applies
        # the launcher starts its workers as `python -u -m grader.ranks` (no -I): the environment
        # gives them what the flags would: no bytecode written, no cwd or user site on the path
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=os.path.join(self.dir, "pycache"),
                   PYTHONSAFEPATH="1", PYTHONNOUSERSITE="1")
        for k in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
            env.pop(k, None)
        if not gpus:
            env["CUDA_VISIBLE_DEVICES"] = ""
        spread = ["--multi_gpu"] if self.world > 1 else []
        argv = self._argv("accelerate.commands.launch", *spread, "--num_processes", str(self.world),
                          "--num_machines", "1", "--machine_rank", "0",
                          "--main_process_port", str(self.config["port"]),
                          "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
                          "-m", "grader.ranks", self.config_path)
        log = open(os.path.join(self.dir, "launcher.log"), "wb")
        self.launcher_proc = subprocess.Popen(argv, env=env, cwd=self.dir, stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT)
        log.close()

    # -- waiting -------------------------------------------------------------------------------
    def _file(self, rank: int, kind: str) -> str:
        return os.path.join(self.dir, f"rank{rank}.{kind}")

    def _result(self, rank: int):
        path = self._file(rank, "pt")
        if not os.path.exists(path):
            return None
        import torch
        try:
            return torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 - a result we cannot read is a failure of that rank
            return {"ok": False, "kind": "error", "type": "UnreadableResult", "time": time.time(),
                    "message": f"what this rank returned is not plain data (tensors, numbers, lists, "
                               f"dicts): {str(e).splitlines()[0][:200]}", "where": ""}

    def _exit_codes(self) -> dict[int, int | None]:
        """rank -> exit code (None while running). Under accelerate, ranks are the launcher's
        children: a rank counts as ended when its pid is gone or the launcher has ended."""
        if self.launcher == "ranks":
            return {r: p.poll() for r, p in self.procs.items()}
        launcher_done = self.launcher_proc.poll() is not None
        codes = {}
        for r in range(self.world):
            pid = self._pid(r)
            alive = pid is not None and _alive(pid)
            codes[r] = None if (alive or (pid is None and not launcher_done)) else (
                self.launcher_proc.returncode if launcher_done else 0)
        return codes

    def _pid(self, rank: int) -> int | None:
        try:
            return int(Path(self._file(rank, "pid")).read_text())
        except (OSError, ValueError):
            return None

    def wait(self) -> list:
        deadline = self.started + self.timeout
        results: dict[int, dict] = {}
        first_failure_at = None
        while True:
            codes = self._exit_codes()
            for r in range(self.world):
                if r not in results:
                    res = self._result(r) if (codes[r] is not None or os.path.exists(self._file(r, "pt"))) \
                        else None
                    if res is not None:
                        results[r] = res
            failed = [r for r in range(self.world)
                      if (r in results and not results[r].get("ok")) or (r not in results and codes[r] is not None)]
            if failed and first_failure_at is None:
                first_failure_at = time.monotonic()
            if len(results) == self.world and not failed:
                break
            everyone_done = all(c is not None for c in codes.values())
            if everyone_done or (first_failure_at is not None and time.monotonic() - first_failure_at > GRACE):
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        codes = self._exit_codes()
        running = [r for r in range(self.world) if codes[r] is None and r not in results]
        stacks = self._stacks(running) if running and time.monotonic() >= deadline else {}
        self.kill_all()
        self._echo_logs()
        return self._verdict(results, codes, running, stacks)

    def _stacks(self, running: list[int]) -> dict[int, str]:
        """Ask each rank still running where it is (faulthandler on SIGUSR1), before the kill."""
        for r in running:
            pid = self._pid(r) or (self.procs[r].pid if r in self.procs else None)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGUSR1)
                except ProcessLookupError:
                    pass
        time.sleep(0.5)
        stacks = {}
        for r in running:
            try:
                stacks[r] = Path(self._file(r, "stack")).read_text(errors="replace")
            except OSError:
                stacks[r] = ""
        return stacks

    def kill_all(self) -> None:
        """SIGKILL every rank, the launcher, and everything they started (frozen first)."""
        roots = [p.pid for p in self.procs.values() if p.poll() is None]
        roots += [pid for pid in (self._pid(r) for r in range(self.world)) if pid and _alive(pid)]
        if self.launcher_proc is not None and self.launcher_proc.poll() is None:
            roots.append(self.launcher_proc.pid)
        victims = []
        for pid in roots:
            victims += [pid, *_descendants(pid)]
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in dict.fromkeys(victims):
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        for p in [*self.procs.values(), *([self.launcher_proc] if self.launcher_proc else [])]:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def _echo_logs(self) -> None:
        for r in range(self.world):
            try:
                lines = Path(self._file(r, "log")).read_text(errors="replace").splitlines()
            except OSError:
                continue
            lines = [ln for ln in lines if ln.strip() and not _noise(ln)]
            for line in lines[-LOG_LINES:]:
                print(f"[rank {r}] {line[:300]}")
        if self.launcher_proc is not None:
            try:
                lines = Path(self.dir, "launcher.log").read_text(errors="replace").splitlines()
            except OSError:
                lines = []
            lines = [ln for ln in lines if ln.strip() and not _noise(ln)]
            for line in lines[-LOG_LINES:]:
                print(f"[launcher] {line[:300]}")

    # -- the verdict ---------------------------------------------------------------------------
    def _verdict(self, results: dict, codes: dict, running: list[int], stacks: dict) -> list:
        from .checks import CheckFailure
        from .plugin import ForbiddenAPI

        failures = []   # (priority, time, rank, exception): lowest first is the cause
        for r in range(self.world):
            res = results.get(r)
            if res is not None and not res.get("ok"):
                kind, where = res.get("kind"), res.get("where") or ""
                text = f"rank {r}: " + (f"{where}: " if where and kind != "error" else "") + str(res.get("message"))
                if kind == "forbidden":
                    failures.append((0, res.get("time", 0), r, ForbiddenAPI(text)))
                elif kind == "not_implemented":
                    failures.append((1, res.get("time", 0), r, NotImplementedError(text)))
                elif kind == "check":
                    failures.append((2, res.get("time", 0), r, CheckFailure(text)))
                else:
                    name = res.get("type", "Exception")
                    msg = str(res.get("message"))
                    peer = any(w in msg.lower() for w in PEER_LOST)   # an echo of another rank's end
                    failures.append((5 if peer else 4, res.get("time", 0), r, RankError(
                        f"rank {r}: {name}" + (f" in {where}" if where else "") + f": {msg}")))
            elif res is None and codes.get(r) is not None:
                failures.append((3, 0, r, CheckFailure(f"rank {r} {_death(codes[r])} before it finished"
                                                       + self._log_tail(r))))
        if failures:
            failures.sort(key=lambda f: (f[0], f[1], f[2]))
            raise failures[0][3]
        if running:
            where = "; ".join(f"rank {r} was at {_stack_line(stacks.get(r, ''), self.config)}" for r in running)
            raise CheckFailure(
                f"rank{'s' if len(running) > 1 else ''} {', '.join(map(str, running))} still running after "
                f"{self.timeout:g} s and stopped ({where}). A hang in distributed code is usually a collective "
                "that only some ranks call, or one that waits for a gradient hook that never fires")
        return [results[r]["value"] for r in range(self.world)]

    def _log_tail(self, rank: int) -> str:
        try:
            lines = Path(self._file(rank, "log")).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        lines = [ln.strip() for ln in lines if ln.strip() and not _noise(ln)]
        return f"; its last output: {lines[-1][:300]}" if lines else ""


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited (code {code}: sys.exit or os._exit in your code?)"


def _stack_line(dump: str, config: dict) -> str:
    """'ddp.py line 40 (finish_gradient_synchronization)' for the innermost learner frame of the main
    thread in a faulthandler dump, else the innermost frame of the checks, else 'an unknown line'."""
    roots = [str(Path(r).resolve()) for r in config.get("context", {}).get("learner_roots", []) if r]
    checks = config.get("path", "")
    blocks = dump.split("\n\n") if dump else []
    main = next((b for b in blocks if "Current thread" in b or "most recent call first" in b), "")
    frames = []
    for line in main.splitlines():
        line = line.strip()
        if line.startswith('File "'):
            try:
                path, rest = line[6:].split('", line ', 1)
                lineno, func = rest.split(" in ", 1)
            except ValueError:
                continue
            frames.append((path, lineno.strip(), func.strip()))
    for pool in ([f for f in frames if any(f[0].startswith(r + os.sep) for r in roots)],
                 [f for f in frames if checks and f[0].startswith(checks + os.sep)]):
        if pool:
            path, lineno, func = pool[0]
            return f"{Path(path).name} line {lineno} ({func})"
    return "an unknown line (no stack)"


_NOISE = re.compile(r"^\s*(\[[WIE]\d{4} |return func\(\*args, \*\*kwargs\)|warnings\.warn\()|UserWarning|FutureWarning")


def _noise(line: str) -> bool:
    """Library chatter that says nothing to a learner (torch's C++ log lines and its warnings)."""
    return _NOISE.search(line) is not None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        found += kids
        stack += kids
    return found


# =================================================================================================
# the rank side: what `python -m grader.ranks CONFIG` does in each process
# =================================================================================================
_log: "CollectiveLog | None" = None
_device = None


class CollectiveLog:
    """Every call of a torch.distributed collective or point-to-point op in this rank, in order:
    dicts {"name", "async_op", "in_backward", "numel"}. Calls made inside another counted call
    (all_gather_object uses all_gather) count once."""

    def __init__(self):
        self.calls: list[dict] = []
        self._depth = threading.local()

    def reset(self) -> None:
        self.calls.clear()

    def count(self, name: str | None = None, **where) -> int:
        return sum(1 for c in self.calls if (name is None or c["name"] == name)
                   and all(c[k] == v for k, v in where.items()))


COUNTED = ("all_reduce", "broadcast", "all_gather", "all_gather_into_tensor", "reduce_scatter",
           "reduce_scatter_tensor", "reduce", "gather", "scatter", "all_to_all", "all_to_all_single",
           "send", "recv", "isend", "irecv", "barrier", "all_gather_object", "broadcast_object_list",
           "all_reduce_coalesced", "batch_isend_irecv", "_all_gather_base", "_reduce_scatter_base")


def collectives() -> CollectiveLog:
    """This rank's log of collective calls (only inside a rank)."""
    if _log is None:
        raise RuntimeError("grader.ranks.collectives() works only inside a rank started by grader.ranks")
    return _log


def device():
    """This rank's device: cuda:<local rank> under NCCL, else cpu."""
    import torch
    return _device if _device is not None else torch.device("cpu")


def _install_counters(log: CollectiveLog) -> None:
    """Wrap the collectives in torch.distributed (and distributed_c10d, where they are defined)
    before any learner module binds them, so `from torch.distributed import all_reduce` is counted."""
    import inspect

    import torch
    import torch.distributed as dist
    from torch.distributed import distributed_c10d as c10d

    graph_task = getattr(torch._C, "_current_graph_task_id", lambda: -1)
    for name in COUNTED:
        original = getattr(c10d, name, None) or getattr(dist, name, None)
        if original is None or not callable(original):
            continue
        try:
            sig = inspect.signature(original)
        except (TypeError, ValueError):
            sig = None

        def wrapper(*args, _original=original, _name=name, _sig=sig, **kwargs):
            depth = getattr(log._depth, "n", 0)
            if depth == 0:
                async_op = kwargs.get("async_op", False)
                if _sig is not None and "async_op" not in kwargs:
                    try:
                        async_op = _sig.bind_partial(*args, **kwargs).arguments.get("async_op", False)
                    except TypeError:
                        pass
                first = args[0] if args else next(iter(kwargs.values()), None)
                numel = first.numel() if isinstance(first, torch.Tensor) else \
                    sum(t.numel() for t in first if isinstance(t, torch.Tensor)) if isinstance(first, (list, tuple)) else 0
                log.calls.append({"name": _name, "async_op": bool(async_op) or _name in ("isend", "irecv"),
                                  "in_backward": graph_task() != -1, "numel": int(numel)})
            log._depth.n = depth + 1
            try:
                return _original(*args, **kwargs)
            finally:
                log._depth.n = depth

        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper.__wrapped__ = original
        for mod in (dist, c10d):
            if getattr(mod, name, None) is original:
                setattr(mod, name, wrapper)


def _plain(x, torch):
    """A copy of a rank's value made only of plain tensors on the CPU and built-in data."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if type(t) is not torch.Tensor:
            t = t.as_subclass(torch.Tensor)
        return t.to("cpu").clone()
    if x is None or type(x) in (bool, int, float, str):
        return x
    if type(x) in (list, tuple):
        return type(x)(_plain(v, torch) for v in x)
    if type(x) is dict:
        return {_plain(k, torch): _plain(v, torch) for k, v in x.items()}
    raise TypeError(f"a rank may return only tensors and plain data, got {type(x).__name__}")


def _learner_where(tb, roots: list[str]) -> str:
    found = ""
    for frame, lineno in traceback.walk_tb(tb):
        path = str(Path(frame.f_code.co_filename).resolve())
        for root in roots:
            if root and path.startswith(root + os.sep):
                found = f"{os.path.relpath(path, str(Path(root).parent))} line {lineno} ({frame.f_code.co_qualname})"
    return found


def _rank_main(config_path: str) -> int:
    global _log, _device
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", str(config["world"])))
    out_dir = config["dir"]

    def path(kind: str) -> str:
        return os.path.join(out_dir, f"rank{rank}.{kind}")

    with open(path("pid") + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path("pid") + ".tmp", path("pid"))
    log_fd = os.open(path("log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    import faulthandler
    stack_file = open(path("stack"), "w")
    faulthandler.register(signal.SIGUSR1, file=stack_file, all_threads=True)

    import warnings
    warnings.filterwarnings("ignore", module=r"torch\.distributed.*")
    # Installed libraries load from their own bytecode caches (read-only: -B), which halves the
    # start-up of a rank; the project's files (grader/, engine/, the checks) still compile from
    # source under the private prefix, as in the grading child. (Changes to installed libraries are
    # outside what the grader defends: see grader.tamper.)
    prefix, sys.pycache_prefix = sys.pycache_prefix, None
    import numpy  # noqa: F401
    import pytest  # noqa: F401  (grader.guards needs it)
    import torch
    import torch.distributed as dist
    for name in config.get("preload", []):
        importlib.import_module(name)
    sys.pycache_prefix = prefix

    from . import checks, seam  # noqa: F401  (comparison functions captured before learner code)
    from .checks import CheckFailure
    from .plugin import ForbiddenAPI

    torch.set_num_threads(1)
    ctx = config.get("context") or {}
    guard = None
    if ctx:
        from .guards import Guard
        seam.configure(**ctx["seam"])
        guard = Guard(learner_package=seam.learner_package(), forbid_modules=ctx["forbid"],
                      forbid_messages=ctx["forbid_messages"])
        guard.install_import_guard()
        guard.preinstall(ctx["forbid_calls"])
        guard.install_call_tripwires(ctx["forbid_calls"])
    roots = [str(Path(r).resolve()) for r in ctx.get("learner_roots", []) if r]
    _log = CollectiveLog()
    _install_counters(_log)

    def report(record: dict) -> None:
        torch.save(record, path("pt") + ".tmp")
        os.replace(path("pt") + ".tmp", path("pt"))

    try:
        if config["launcher"] == "ranks":
            from datetime import timedelta
            backend = config["backend"]
            if backend == "nccl":
                torch.cuda.set_device(rank)
                _device = torch.device("cuda", rank)
            store = dist.TCPStore("127.0.0.1", int(config["port"]), is_master=False,
                                  timeout=timedelta(seconds=config["init_timeout"]))
            dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                                    timeout=timedelta(seconds=config["pg_timeout"]))
        sys.path.insert(0, config["path"])
        module_name, qualname = config["fn"]
        fn = importlib.import_module(module_name)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        args = torch.load(config["args"], weights_only=True)
        value = _plain(fn(rank, world, *args), torch)
        if guard is not None and guard.violations:
            raise ForbiddenAPI(guard.violations[0])
        report({"ok": True, "value": value})
    except BaseException as exc:  # noqa: BLE001 - every way a rank can fail is reported
        if guard is not None and guard.violations:
            kind, message = "forbidden", guard.violations[0]
        elif isinstance(exc, ForbiddenAPI):
            kind, message = "forbidden", str(exc)
        elif isinstance(exc, NotImplementedError):
            kind, message = "not_implemented", str(exc) or "still raises NotImplementedError"
        elif isinstance(exc, CheckFailure):
            kind, message = "check", str(exc)
        else:
            kind, message = "error", (str(exc).strip().splitlines() or [""])[0][:500]
        where = _learner_where(exc.__traceback__, roots)
        traceback.print_exc()
        report({"ok": False, "kind": kind, "type": type(exc).__name__, "message": message,
                "where": where, "time": time.time()})
    sys.stdout.flush()
    sys.stderr.flush()
    if config["launcher"] == "ranks" and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass
    os._exit(0)   # no interpreter teardown: learner atexit hooks change nothing


if __name__ == "__main__":
    from grader import ranks as _ranks   # state (the collective log, the device) lives in grader.ranks,
    sys.exit(_ranks._rank_main(sys.argv[1]))   # where rank-side check code imports it from
