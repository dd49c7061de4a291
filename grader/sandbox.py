"""One sandboxed child process, the same for grading and for training (docs/architecture.md).

A Sandbox is a child that runs untrusted (learner) code:
- in a private folder (mode 0700) that is its TMPDIR, its cwd unless told otherwise, and the only
  place its bytecode caches go (`-X pycache_prefix`): nothing it compiles lands next to installed
  files, and no cache planted there is ever read by it;
- with a clean environment (`clean_env`), stdin closed, in a new session, under `python -I -B`;
- under the keeper (grader.keeper), so that stopping it, or llm-lab dying, kills every descendant,
  even ones that left the process group;
- its stdout+stderr drained into a bounded log (head and tail kept) and never parsed.
`close()` always kills what is left and removes the private folder.
Resource limits are applied by the child itself (grader.limits), after its own imports.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Callable

LOG_HEAD, LOG_TAIL = 4_000, 16_000
MEMORY_BUDGET = 6 << 30    # address space a CPU child may add after its imports (bytes)
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "HF_HOME", "HF_DATASETS_CACHE", "CUDA_VISIBLE_DEVICES",
            "LD_LIBRARY_PATH", "TRITON_INTERPRET", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR",
            "VIRTUAL_ENV", "LLM_LAB_CACHE")


def has_gpu() -> bool:
    """An NVIDIA GPU is visible to children (nvidia-smi present and not hidden by CUDA_VISIBLE_DEVICES)."""
    return bool(shutil.which("nvidia-smi")) and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != ""


def clean_env(private_dir: str, threads: int | None = None) -> dict:
    """Only what Python, the libraries and the checks need; offline hub; one BLAS pool size; Triton's
    interpreter where there is no GPU."""
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(TMPDIR=private_dir, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1",
               OMP_NUM_THREADS=str(threads or os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1),
               MPLBACKEND="Agg", PYTHONIOENCODING="utf-8", TOKENIZERS_PARALLELISM="false",
               PYTHONPYCACHEPREFIX=os.path.join(private_dir, "pycache"))
    if not has_gpu():   # on a CPU, Triton kernels can only run in its interpreter (set before @triton.jit)
        env.setdefault("TRITON_INTERPRET", "1")
    return env


def python_argv(private_dir: str, module: str, *args: str, unbuffered: bool = False) -> list[str]:
    """`python -I -B [-u] -X pycache_prefix=<private>/pycache -m module args...`"""
    return [sys.executable, "-I", "-B", *(["-u"] if unbuffered else []),
            "-X", f"pycache_prefix={os.path.join(private_dir, 'pycache')}", "-m", module, *args]


class LogDrain(threading.Thread):
    """Reads a stream line by line, keeping the first LOG_HEAD and last LOG_TAIL characters."""

    def __init__(self, stream, on_line: Callable[[str], None] | None = None):
        super().__init__(daemon=True)
        self.stream, self.on_line = stream, on_line
        self.head, self.tail, self.dropped = "", "", 0

    def run(self) -> None:
        for raw in iter(lambda: self.stream.readline(8192), b""):
            line = raw.decode("utf-8", "replace")
            if len(self.head) < LOG_HEAD:
                self.head += line
            else:
                self.tail += line
                if len(self.tail) > 2 * LOG_TAIL:
                    self.dropped += len(self.tail) - LOG_TAIL
                    self.tail = self.tail[-LOG_TAIL:]
            if self.on_line is not None:
                self.on_line(line.rstrip("\n")[:500])

    def text(self) -> str:
        tail = self.tail[-LOG_TAIL:]
        cut = self.dropped + max(0, len(self.tail) - LOG_TAIL)
        return self.head + (f"\n… [{cut} characters of output cut] …\n" if cut else "") + tail


class Sandbox:
    """Start with `start(argv_after_python_module...)`; stop with `kill()`; always `close()`."""

    def __init__(self, *, prefix: str = "llm-lab-", private_dir: str | None = None):
        self.private_dir = private_dir or tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.private_dir, 0o700)
        self.proc: subprocess.Popen | None = None

    def start(self, argv: list[str], *, env: dict, cwd: str | None = None, pass_fds: tuple[int, ...] = (),
              stdout=subprocess.PIPE) -> subprocess.Popen:
        keeper = python_argv(self.private_dir, "grader.keeper", str(os.getpid()),
                             ",".join(str(fd) for fd in pass_fds), "--", *argv)
        self.proc = subprocess.Popen(keeper, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd or self.private_dir, pass_fds=pass_fds,
                                     start_new_session=True)
        return self.proc

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def signal_group(self, sig: int) -> None:
        """Send `sig` to the child's process group (SIGINT: a graceful stop the child may handle)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """Kill the child and every descendant: the keeper sweeps its tree, then the group dies."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)   # the keeper kills its whole tree, then exits
                self.proc.wait(timeout=3)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self.signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def close(self, grace: float = 5.0) -> None:
        """Wait up to `grace` seconds for a clean exit, kill what is left, remove the private folder."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        shutil.rmtree(self.private_dir, ignore_errors=True)


def death_reason(code: int | None, log: str) -> tuple[str, str]:
    """(status, message) for a child that ended before it said it was done."""
    tail = log.strip().splitlines()[-1][:300] if log.strip() else ""
    if code is not None and code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if sig == "SIGSEGV":
            return "crashed", "the process crashed with a segmentation fault (SIGSEGV)"
        if sig == "SIGXCPU":
            return "timeout", "stopped: CPU time limit exceeded"
        if sig == "SIGKILL":
            return "oom", "the process was killed (SIGKILL), most likely for using too much memory"
        if sig == "SIGXFSZ":
            return "crashed", "stopped: wrote a file larger than the limit"
        return "crashed", f"the process was killed by {sig}"
    if "MemoryError" in log:
        return "oom", "MemoryError: ran out of memory"
    return "crashed", (f"the process exited (code {code}) before it finished: os._exit/sys.exit "
                       f"in learner code?" + (f" Last output: {tail}" if tail else ""))
