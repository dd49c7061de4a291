"""Throughput and MFU: how many tokens a second, and how much of the machine that is.

MFU (model FLOPs utilisation) is the arithmetic the model needs divided by what the device could do:

    flops_per_token = 6·N + 12·L·H·Q·T          (nanoGPT's estimate, from the PaLM paper, appendix B)
    mfu             = tokens_per_s · flops_per_token / peak_flops

    N  parameters (the matmul weights)      each is used once forward (a multiply and an add: 2 FLOPs)
                                            and twice backward (grad of input, grad of weight: 4)
                                            -> 6·N FLOPs per token
    L  layers, H heads, Q head dim, T block size
                                            attention's q·kᵀ and att·v have no parameters: per token,
                                            per layer, per head, 2·Q·T FLOPs each forward, x3 with the
                                            backward -> 12·L·H·Q·T
    peak_flops                              the device's dense bf16/fp16 tensor-core peak (a table of
                                            common GPUs, below), or on a CPU one core's fp32 matmul
                                            rate x the run's threads, measured once by
                                            `measure_peak_flops` and cached

Tokens per second come from wall time (`Throughput`): synchronise the GPU before reading the clock
(CUDA runs ahead of Python), skip the first steps (allocator warm-up, autotuning, lazy init) and
smooth with an exponential moving average.

No torch at import: the lab and the metrics writer import this module; torch is only touched when a
CUDA device is named (the CPU probe runs numpy in a child process).
Not handled: sparse peaks (2:4 sparsity doubles the datasheet number; we use dense), fp8 peaks,
several GPUs in one run (the peak of one device; multiply by the world size yourself), AMD/Apple.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

PROBE_VERSION = 2                        # part of the cache key: a changed probe measures again
PEAK_ENV = "LLM_LAB_PEAK_FLOPS"          # set to a number (FLOP/s) to override every lookup
CACHE_ENV = "LLM_LAB_CACHE"              # folder for the cached CPU probe (default ~/.cache/llm-lab)

# Dense bf16 (fp16 where the card has no bf16) tensor-core peaks with fp32 accumulation, in TFLOP/s,
# from NVIDIA's datasheets. Matched against the device name in order: put specific names first.
GPU_PEAK_TFLOPS: list[tuple[str, float]] = [
    (r"H200", 989.4),                     # H200 SXM (same compute as H100 SXM)
    (r"H100.*(PCIe|PCIE)", 756.0),        # H100 PCIe
    (r"H100.*NVL", 835.0),                # H100 NVL
    (r"H100", 989.4),                     # H100 SXM ("NVIDIA H100 80GB HBM3")
    (r"A100", 312.0),                     # A100 SXM4 and PCIe, 40 and 80 GB
    (r"A10G", 70.0),                      # AWS's A10G; no NVIDIA datasheet, commonly quoted figure
    (r"\bA10\b", 125.0),                  # A10
    (r"\bL4\b", 121.0),                   # L4
    (r"\bT4\b", 65.0),                    # T4 (fp16; Turing has no bf16)
    (r"RTX 4090", 165.2),                 # GeForce RTX 4090 (fp16/bf16 with fp32 accumulate)
    (r"RTX 3090", 71.0),                  # GeForce RTX 3090 (fp16/bf16 with fp32 accumulate)
]


# -- the formula ----------------------------------------------------------------------------------
def flops_per_token(n_params: int, n_layer: int = 0, n_head: int = 0, head_dim: int = 0,
                    block_size: int = 0) -> float:
    """Training FLOPs per token: 6·N + 12·L·H·Q·T. Without attention (an MLP) only 6·N remains."""
    return 6 * n_params + 12 * n_layer * n_head * head_dim * block_size


def matmul_weights(module) -> int:
    """Weights of every linear layer in `module` (whatever has in_features and out_features: nn.Linear,
    HF's Conv1D, an NF4 layer), counted once: a LoRA wrapper (it has an `A`) is skipped, its base is
    counted. Embeddings are lookups, not matmuls, and count nothing."""
    return sum(m.in_features * m.out_features for m in module.modules()
               if hasattr(m, "in_features") and hasattr(m, "out_features") and not hasattr(m, "A"))


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation, a fraction (0.4 means 40% of the device's peak)."""
    if not peak_flops or peak_flops <= 0 or not tokens_per_s or not flops_per_token:
        return 0.0
    return tokens_per_s * flops_per_token / peak_flops


def flops_per_token_from(info: dict) -> float | None:
    """flops_per_token from a `start` record's fields (n_params, n_layer, n_head, d_model or head_dim,
    block_size), or None without n_params. A missing attention field drops the attention term."""
    if isinstance(info.get("flops_per_token"), (int, float)):
        return float(info["flops_per_token"])
    n = info.get("n_params")
    if not isinstance(n, (int, float)) or n <= 0:
        return None
    layers, heads, block = (info.get(k) or 0 for k in ("n_layer", "n_head", "block_size"))
    head_dim = info.get("head_dim") or ((info.get("d_model") or 0) // heads if heads else 0)
    try:
        return float(flops_per_token(int(n), int(layers), int(heads), int(head_dim), int(block)))
    except (TypeError, ValueError):
        return float(6 * n)


# -- peak FLOP/s ----------------------------------------------------------------------------------
def gpu_peak_flops(name: str) -> float | None:
    """The table's peak for a GPU product name (torch.cuda.get_device_name or NVML), else None."""
    for pattern, tflops in GPU_PEAK_TFLOPS:
        if re.search(pattern, name, re.IGNORECASE):
            return tflops * 1e12
    return None


def peak_flops(device="cpu", *, cache_dir: str | os.PathLike | None = None) -> float:
    """Peak FLOP/s of `device`: "cpu", "cuda", "cuda:1", a torch.device, or a GPU name.

    GPUs: the table above (an unknown GPU is measured with a bf16 matmul, then cached). CPU: an fp32
    matmul probe (a few hundred ms, `measure_peak_flops`), cached per CPU model and thread count.
    $LLM_LAB_PEAK_FLOPS, when set, wins over both.
    """
    override = os.environ.get(PEAK_ENV)
    if override:
        try:
            return float(override)
        except ValueError:
            pass
    dev = str(device)
    if dev.startswith("cuda"):
        import torch  # a CUDA run has torch loaded already
        index = int(dev.split(":")[1]) if ":" in dev else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        return gpu_peak_flops(name) or _cached(f"gpu|{name}|bf16|probe={PROBE_VERSION}",
                                               lambda: measure_peak_flops(dev), cache_dir)
    if dev == "cpu" or dev.startswith("cpu"):
        threads = _cpu_threads()
        key = f"cpu|{_cpu_model()}|threads={threads}|probe={PROBE_VERSION}"
        return _cached(key, measure_peak_flops, cache_dir)
    table = gpu_peak_flops(dev)
    if table:
        return table
    return 0.0  # unknown (mps, xla, ...): MFU reads 0 rather than a made-up number


_CPU_PROBE = """
import sys, time
n, budget = int(sys.argv[1]), float(sys.argv[2])
try:
    import numpy as np
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
except ImportError:
    import torch
    torch.set_num_threads(1)
    a = torch.randn(n, n)
a @ a
best, start = float("inf"), time.perf_counter()
while time.perf_counter() - start < budget:
    t0 = time.perf_counter()
    a @ a
    best = min(best, time.perf_counter() - t0)
print(2 * n ** 3 / best)
"""


def measure_peak_flops(device: str = "cpu", n: int = 384, budget_s: float = 0.25) -> float:
    """Peak FLOP/s measured: the best of square matmuls (2·n³ FLOPs each) for about budget_s s.

    CPU: one core's fp32 matmul rate (numpy's BLAS, else torch), times the threads a run uses. One
    thread is measured, in a fresh process with one BLAS thread, because a multi-threaded probe on a
    busy machine waits on its slowest thread and can read 50x low; the best of many short multiplies
    finds the core's real rate. GPU: bf16 through torch (the first multiply warms up).
    """
    if str(device).startswith("cpu"):
        import subprocess
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-I", "-c", _CPU_PROBE, str(n), str(budget_s)], env=env,
                             capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        per_core = float(out.stdout.strip().splitlines()[-1])
        return per_core * _cpu_threads()
    import torch
    a = torch.randn(8 * n, 8 * n, device=device, dtype=torch.bfloat16)
    return _best(lambda: a @ a, a.shape[0], budget_s, torch.cuda.synchronize)


def _best(matmul, n: int, budget_s: float, sync) -> float:
    sync()
    matmul()  # warm-up
    sync()
    best, start = math.inf, time.perf_counter()
    for _ in range(50):
        t0 = time.perf_counter()
        matmul()
        sync()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return 2 * n ** 3 / best


def cache_path(cache_dir: str | os.PathLike | None = None) -> Path:
    base = cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llm-lab"
    return Path(base) / "peak_flops.json"


def _cached(key: str, measure, cache_dir) -> float:
    path = cache_path(cache_dir)
    try:
        table = json.loads(path.read_text())
        if isinstance(table.get(key), (int, float)) and table[key] > 0:
            return float(table[key])
    except (OSError, ValueError, AttributeError):
        table = {}
    value = float(measure())
    if value < 1e9:
        return value  # implausible (a starved probe): use it for this run, measure again next time
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**(table if isinstance(table, dict) else {}), key: value}, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: measure again next time
    return value


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_threads() -> int:
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


# -- throughput -----------------------------------------------------------------------------------
def synchronize() -> None:
    """Wait for queued GPU work (CUDA runs asynchronously), only if this process already uses CUDA."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def allocator_memory() -> dict:
    """PyTorch's CUDA allocator: bytes in tensors now, their peak, and reserved by the caching
    allocator. Empty without CUDA in use."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return {}
    return {"mem_alloc": torch.cuda.memory_allocated(), "mem_peak": torch.cuda.max_memory_allocated(),
            "mem_reserved": torch.cuda.memory_reserved()}


class Throughput:
    """Tokens per second from wall time, over windows, smoothed with an EMA.

        meter = Throughput()
        for step in ...:
            train_step()
            meter.add(tokens)             # cheap: adds to the current window
            if time_to_log:
                tok_s = meter.rate()      # synchronises the GPU, closes the window, returns the EMA

    The first `warmup` steps are not counted. `pause()` excludes time spent elsewhere (evaluation).
    """

    def __init__(self, warmup: int = 2, alpha: float = 0.3, clock=time.perf_counter, sync=synchronize):
        self.warmup, self.alpha, self.clock, self.sync = warmup, alpha, clock, sync
        self.steps = 0
        self.ema: float | None = None
        self._tokens = 0.0
        self._t0: float | None = None
        self._t_last: float | None = None

    def add(self, tokens: float) -> None:
        self.steps += 1
        now = self.clock()
        if self.steps <= self.warmup or self._t0 is None:
            self._t0, self._tokens = now, 0.0    # the window starts after the warm-up steps
            self._t_last = now
            return
        self._tokens += tokens
        self._t_last = now

    def rate(self, *, sync: bool = True, at_last_step: bool = False) -> float | None:
        """Close the window and return the smoothed tokens/s (None during warm-up).

        at_last_step: end the window at the last add() rather than now (for a record written late)."""
        if self._t0 is None or self._tokens <= 0:
            return self.ema
        if sync:
            self.sync()
        end = self._t_last if at_last_step else self.clock()
        dt = end - self._t0
        if dt <= 0:
            return self.ema
        current = self._tokens / dt
        self.ema = current if self.ema is None else self.alpha * current + (1 - self.alpha) * self.ema
        self._t0, self._tokens = end, 0.0
        return self.ema

    def pause(self) -> None:
        """Restart the window now: time since the last step (evaluation, sampling) is not counted."""
        if self._t0 is not None:
            self._tokens = 0.0
            self._t0 = self._t_last = self.clock()
