"""Device sampling for the Train screen: what the GPU (or CPU) the run uses is doing, sampled in
the lab process about twice a second (no torch here, ever). The run's own figures (loss, tokens/s,
PyTorch's allocator) come from its metrics stream instead (metrics_stream.py).

GPU mode, through NVML (nvidia-ml-py, `import pynvml`): memory used/total, utilisation, temperature
and power of the run's GPU, and the memory NVML attributes to the run's processes.
CPU mode, through psutil: RSS and CPU% of the run's process tree, and the machine's RAM.

Every NVML failure (no nvidia-ml-py, no libnvidia-ml, no GPU, a driver/library mismatch, a query
that is NotSupported on the essentials) falls back to CPU mode, labelled "CPU (no NVIDIA GPU)". The
NVML reason is kept in `nvml_error`, and shown only where an NVIDIA device exists (/dev/nvidiactl:
then a failing NVML is news; on a machine without one, "library not found" is noise). The
process-tree RSS/CPU is sampled in both modes. A query that fails on an optional field (temperature, power, utilisation, processes;
some boards or containers do not expose them) only blanks that field.

Which GPU is "the run's": the one whose NVML process list holds a pid of the run's tree (found once);
until then the first of $CUDA_VISIBLE_DEVICES (an index or a GPU-UUID), else GPU 0.
Inside a container NVML may report host pids; then no process matches and the per-process memory
reads "n/a". Not handled: MIG slices (the whole GPU is shown), runs spread over several GPUs.

Allocator vs device memory (see ALLOCATOR_VS_DEVICE): the run's step records carry PyTorch's own
counts (tensors it holds, their peak, what its caching allocator reserved); NVML sees everything on
the GPU, including the CUDA context (a few hundred MB) and the allocator's cache.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil

SAMPLE_INTERVAL_S = 0.5
ALLOCATOR_VS_DEVICE = ("allocator = tensors PyTorch holds; "
                       "device = everything the process/GPU uses, incl. CUDA context and cache")


@dataclass
class DeviceSample:
    mode: str                               # "gpu" | "cpu"
    label: str                              # what is shown, or why the GPU is not
    time: float = field(default_factory=time.time)
    gpu_index: int | None = None
    gpu_name: str | None = None
    mem_used: int | None = None             # GPU memory used on the device (bytes; NVML)
    mem_total: int | None = None
    util: float | None = None               # % of time a kernel ran (NVML's "GPU utilisation")
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    proc_gpu_mem: int | None = None         # GPU memory NVML attributes to the run's processes
    rss: int | None = None                  # resident memory of the run's process tree (bytes)
    cpu_percent: float | None = None        # CPU of the run's process tree (100 = one core)
    cpu_count: int = field(default_factory=lambda: os.cpu_count() or 1)
    ram_used: int | None = None             # the machine's RAM
    ram_total: int | None = None
    alive: bool = False                     # the run's process exists
    nvml_error: str | None = None           # why not GPU mode (CPU mode only)

    @property
    def gpu(self) -> bool:
        return self.mode == "gpu"


def _import_pynvml():
    import pynvml  # nvidia-ml-py
    return pynvml


class DeviceSampler:
    """One sample at a time of the GPU (or CPU) a run uses. Not thread-safe: use one thread.

    nvml: the NVML module, or a function returning it (tests pass a fake); default imports pynvml.
    """

    def __init__(self, pid: int | None = None, *, nvml: Any = None, proc_module=psutil):
        self.pid = pid
        self._nvml_source = nvml if nvml is not None else _import_pynvml
        self._psutil = proc_module
        self.nvml = None
        self.nvml_error: str | None = None      # why CPU mode (None: not tried yet, or GPU mode)
        self._handle = None
        self._index: int | None = None
        self._name: str | None = None
        self._pinned = False                    # the GPU was found through the run's pids
        self._had_gpu = False                   # GPU mode worked once (then a failure is news)
        self._procs: dict[int, Any] = {}

    # -- NVML -----------------------------------------------------------------------------------
    def _init_nvml(self) -> None:
        if self.nvml is not None or self.nvml_error is not None:
            return
        try:
            src = self._nvml_source
            mod = src if hasattr(src, "nvmlInit") else src()
            mod.nvmlInit()
            count = mod.nvmlDeviceGetCount()
            if count < 1:
                raise RuntimeError("NVML sees no GPU")
            self.nvml = mod
            self._select(self._visible_index(mod, count))
        except ImportError:
            self._fail("nvidia-ml-py is not installed")
        except Exception as e:  # NVMLError_* (LibraryNotFound, DriverNotLoaded, ...), anything else
            self._fail(_reason(e))

    def _fail(self, reason: str) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
        self.nvml, self._handle = None, None
        self.nvml_error = reason

    def _visible_index(self, mod, count: int) -> int:
        first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
        if first.isdigit() and int(first) < count:
            return int(first)
        if first.startswith(("GPU-", "MIG-")):
            for i in range(count):
                try:
                    uuid = _text(mod.nvmlDeviceGetUUID(mod.nvmlDeviceGetHandleByIndex(i)))
                    if uuid.startswith(first[:40]):
                        return i
                except Exception:
                    continue
        return 0

    def _select(self, index: int) -> None:
        self._index = index
        self._handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        try:
            self._name = _text(self.nvml.nvmlDeviceGetName(self._handle))
        except Exception:
            self._name = f"GPU {index}"

    def _find_run_gpu(self, pids: set[int]) -> None:
        """Pin the GPU whose process list holds one of the run's pids."""
        if self._pinned or not pids:
            return
        for i in range(self.nvml.nvmlDeviceGetCount()):
            try:
                procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.nvml.nvmlDeviceGetHandleByIndex(i))
            except Exception:
                return
            if any(p.pid in pids for p in procs):
                if i != self._index:
                    self._select(i)
                self._pinned = True
                return

    def _gpu_fields(self, pids: set[int]) -> dict:
        nv = self.nvml
        self._find_run_gpu(pids)
        h = self._handle
        mem = nv.nvmlDeviceGetMemoryInfo(h)          # essential: a failure means CPU mode
        out: dict = {"mem_used": int(mem.used), "mem_total": int(mem.total)}
        out["util"] = _optional(lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu))
        out["temp_c"] = _optional(lambda: float(nv.nvmlDeviceGetTemperature(h, getattr(nv, "NVML_TEMPERATURE_GPU", 0))))
        out["power_w"] = _optional(lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0)
        out["power_limit_w"] = _optional(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0)
        if pids:
            def proc_mem():
                used = [p.usedGpuMemory for p in nv.nvmlDeviceGetComputeRunningProcesses(h) if p.pid in pids]
                used = [u for u in used if isinstance(u, int)]
                return sum(used) if used else None
            out["proc_gpu_mem"] = _optional(proc_mem)
        return out

    # -- processes ------------------------------------------------------------------------------
    def _tree(self) -> list:
        if self.pid is None:
            return []
        ps = self._psutil
        try:
            root = self._procs.get(self.pid) or ps.Process(self.pid)
            members = [root, *root.children(recursive=True)]
        except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
            return []
        tree = []
        for p in members:
            cached = self._procs.get(p.pid)
            tree.append(cached if cached is not None and _same(cached, p) else p)
        self._procs = {p.pid: p for p in tree}  # keep the objects: cpu_percent measures since last call
        return tree

    def _process_fields(self) -> tuple[dict, set[int]]:
        ps = self._psutil
        tree = self._tree()
        rss, cpu, pids = 0, 0.0, set()
        for p in tree:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    cpu += p.cpu_percent(None)
                pids.add(p.pid)
            except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
                continue
        out: dict = {"alive": bool(pids)}
        if pids:
            out.update(rss=rss, cpu_percent=cpu)
        try:
            vm = ps.virtual_memory()
            out.update(ram_used=int(vm.total - vm.available), ram_total=int(vm.total))
        except Exception:
            pass
        return out, pids

    # -- the sample -----------------------------------------------------------------------------
    def sample(self) -> DeviceSample:
        self._init_nvml()
        proc, pids = self._process_fields()
        if self.nvml is not None:
            try:
                gpu = self._gpu_fields(pids)
                self._had_gpu = True
                return DeviceSample(mode="gpu", label=f"{self._name} (GPU {self._index})",
                                    gpu_index=self._index, gpu_name=self._name, **gpu, **proc)
            except Exception as e:  # the GPU went away, or memory info is NotSupported
                self._fail(_reason(e))
        return DeviceSample(mode="cpu", label=cpu_label(self.nvml_error, self._had_gpu or None),
                            nvml_error=self.nvml_error, **proc)

    def close(self) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
            self.nvml = None


class DeviceMonitor:
    """Samples in a background thread every `interval` seconds and hands each sample to `callback`
    (called on that thread: use a thread-safe hand-off such as Textual's post_message)."""

    def __init__(self, callback: Callable[[DeviceSample], None], *, pid: int | None = None,
                 interval: float = SAMPLE_INTERVAL_S, sampler: DeviceSampler | None = None):
        self.sampler = sampler or DeviceSampler(pid)
        self.callback, self.interval = callback, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="llm-lab-telemetry")

    def set_pid(self, pid: int | None) -> None:
        self.sampler.pid = pid

    def start(self) -> "DeviceMonitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        self.sampler.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.callback(self.sampler.sample())
            except Exception:
                pass  # telemetry must never take the lab down
            self._stop.wait(self.interval)


def cpu_label(nvml_error: str | None, nvidia_present: bool | None = None) -> str:
    """"CPU (no NVIDIA GPU)", or with NVML's reason where an NVIDIA device exists but NVML failed."""
    if nvidia_present is None:
        nvidia_present = os.path.exists("/dev/nvidiactl")
    if nvidia_present and nvml_error:
        return f"CPU (NVIDIA GPU not readable: {nvml_error})"
    return "CPU (no NVIDIA GPU)"


def _optional(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # NVMLError_NotSupported, NoPermission, ...
        return None


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text if text else type(e).__name__


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _same(a, b) -> bool:
    try:
        return a.create_time() == b.create_time()
    except Exception:
        return False
