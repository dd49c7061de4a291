"""The metrics stream, throughput/MFU, the tailer and device telemetry (NVML and its CPU fallback)."""
from __future__ import annotations

import json
import os
import time

import pytest

from engine.shared import perf
from engine.shared.telemetry import MetricsWriter, parse_line, read_records
from lab.training import formatting as fmt
from lab.training.device_sampling import DeviceMonitor, DeviceSampler, cpu_label
from lab.training.metrics_stream import LineTailer, MetricsTailer, RunSummary


# -- the metrics stream ---------------------------------------------------------------------------
def test_metrics_round_trip(tmp_path):
    path = tmp_path / "run-1" / "metrics.jsonl"
    with MetricsWriter(path, mission="gpt", impl="mine", step_interval_s=0) as w:
        w.start(n_params=1000, n_layer=2, n_head=2, d_model=8, block_size=16, device="cpu",
                peak_flops=1e12, custom="kept")
        w.step(0, 2.5, lr=1e-3, tokens=64, tok_s=640.0)
        w.step(1, float("nan"), lr=1e-3, tokens=64, tok_s=640.0)
        w.eval(1, 2.4, accuracy=0.5)
        w.sample(1, "To be ⏎ or not")
    records = list(read_records(path))
    assert [r["type"] for r in records] == ["start", "step", "step", "eval", "sample", "end"]
    start, step0, step1, ev, sample, end = records
    assert all(r["v"] == 1 for r in records)
    assert start["run"] == "run-1" and start["mission"] == "gpt" and start["impl"] == "mine"
    assert start["custom"] == "kept"
    # flops_per_token = 6N + 12·L·H·Q·T with Q = d_model / n_head
    assert start["flops_per_token"] == 6 * 1000 + 12 * 2 * 2 * 4 * 16
    assert start["flops_counted"] == "6N + 12·L·H·Q·T"   # derived here: the screen says how
    assert step0["loss"] == 2.5 and step0["tok_s"] == 640.0
    assert step0["mfu"] == pytest.approx(640.0 * start["flops_per_token"] / 1e12)
    assert step1["loss"] == "nan"                       # JSON has no NaN: written as a string
    assert ev["val_loss"] == 2.4 and ev["accuracy"] == 0.5
    assert sample["text"] == "To be ⏎ or not"
    assert end["status"] == "done"
    assert path.read_text().endswith("\n")


def test_writer_throttles_steps_but_keeps_the_last(tmp_path):
    path = tmp_path / "r" / "metrics.jsonl"
    w = MetricsWriter(path, step_interval_s=60)
    for k in range(100):
        w.step(k, 1.0 / (k + 1), tokens=10)
    w.eval(100, 0.5)
    w.end("stopped", "interrupted")
    steps = [r["step"] for r in read_records(path) if r["type"] == "step"]
    assert steps == [0, 99]                          # first, then the last one before eval
    assert list(read_records(path))[-1]["status"] == "stopped"


def test_writer_context_manager_records_crash(tmp_path):
    path = tmp_path / "r" / "metrics.jsonl"
    with pytest.raises(ValueError):
        with MetricsWriter(path):
            raise ValueError("bad shape")
    end = list(read_records(path))[-1]
    assert end["status"] == "crashed" and "ValueError: bad shape" in end["message"]


def test_writer_measures_tokens_per_second_after_warmup(tmp_path):
    path = tmp_path / "r" / "metrics.jsonl"
    w = MetricsWriter(path, step_interval_s=0, warmup_steps=2, peak_flops=1e9)
    w.start(n_params=100, device="cpu")
    for k in range(6):
        time.sleep(0.01)
        w.step(k, 1.0, tokens=100)
    w.end()
    steps = [r for r in read_records(path) if r["type"] == "step"]
    assert "tok_s" not in steps[0] and "tok_s" not in steps[1]          # warm-up: not measured
    rates = [r["tok_s"] for r in steps[2:]]
    assert all(1_000 < r < 12_000 for r in rates), rates                # ~100 tokens / 10 ms
    assert steps[-1]["mfu"] == pytest.approx(steps[-1]["tok_s"] * 600 / 1e9)


def test_parse_line_rejects_malformed():
    assert parse_line('{"v": 1, "type": "step", "step": 1, "loss": 2.0, "new_key": [1]}')["new_key"] == [1]
    for bad in ["", "not json", "[1, 2]", '{"v": 2, "type": "step"}', '{"v": 1}', '{"v": 1, "type": 3}',
                '{"v": 1, "type": "st', "[" * 100_000]:
        assert parse_line(bad) is None, bad


def test_read_records_skips_bad_and_partial_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"v": 1, "type": "start"}\ngarbage\n\n{"v": 1, "type": "step", "step": 0, "loss": 1}\n'
                    '{"v": 1, "type": "step", "step": 1, "lo')
    assert [r["type"] for r in read_records(path)] == ["start", "step"]


def test_summary_folds_records_and_ignores_unknown():
    s = RunSummary()
    for r in [{"type": "start", "steps": 10}, {"type": "step", "step": 3, "loss": 1.5, "tok_s": 10.0,
              "mem_alloc": 5}, {"type": "mystery", "x": 1}, {"type": "step", "step": 4, "loss": "nan"},
              {"type": "eval", "step": 4, "val_loss": 1.2}, {"type": "end", "status": "done"}]:
        s.apply(r)
    assert (s.step, s.loss, s.tok_s, s.val_loss, s.status) == (4, None, 10.0, 1.2, "done")
    assert s.nonfinite_at == 4 and s.allocator == {"mem_alloc": 5} and s.total_steps == 10


# -- throughput and MFU ---------------------------------------------------------------------------
def test_flops_per_token_is_nanogpts_formula():
    # GPT-2 small: N = 124M (non-embedding ~85M), L=12, H=12, Q=64, T=1024
    n = 85_000_000
    assert perf.flops_per_token(n, 12, 12, 64, 1024) == 6 * n + 12 * 12 * 12 * 64 * 1024
    assert perf.flops_per_token(1000) == 6000                   # no attention: 6N
    assert perf.flops_per_token_from({"n_params": 10, "n_layer": 1, "n_head": 2, "d_model": 8,
                                      "block_size": 4}) == 60 + 12 * 1 * 2 * 4 * 4
    assert perf.flops_per_token_from({"n_layer": 2}) is None
    assert perf.mfu(1000, 6e9, 1e13) == pytest.approx(0.6)
    assert perf.mfu(1000, 6e9, 0) == 0.0


def test_peak_table_and_override(monkeypatch, tmp_path):
    assert perf.gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989.4e12
    assert perf.gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert perf.gpu_peak_flops("NVIDIA H200") == 989.4e12
    assert perf.gpu_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert perf.gpu_peak_flops("NVIDIA A10G") == 70e12
    assert perf.gpu_peak_flops("NVIDIA A10") == 125e12
    assert perf.gpu_peak_flops("NVIDIA L4") == 121e12
    assert perf.gpu_peak_flops("NVIDIA L40S") is None          # not an L4
    assert perf.gpu_peak_flops("Tesla T4") == 65e12
    assert perf.gpu_peak_flops("NVIDIA GeForce RTX 4090") == 165.2e12
    assert perf.gpu_peak_flops("NVIDIA GeForce RTX 3090") == 71e12
    monkeypatch.setenv(perf.PEAK_ENV, "123")
    assert perf.peak_flops("cpu", cache_dir=tmp_path) == 123.0


def test_cpu_peak_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.delenv(perf.PEAK_ENV, raising=False)
    calls = []
    monkeypatch.setattr(perf, "measure_peak_flops", lambda device="cpu": calls.append(device) or 5e10)
    assert perf.peak_flops("cpu", cache_dir=tmp_path) == 5e10
    assert perf.peak_flops("cpu", cache_dir=tmp_path) == 5e10
    assert calls == ["cpu"]
    assert list(json.loads((tmp_path / "peak_flops.json").read_text()).values()) == [5e10]


def test_cpu_probe_measures_a_plausible_rate():
    flops = perf.measure_peak_flops("cpu", n=128, budget_s=0.05)
    assert 1e8 < flops < 1e14


def test_throughput_meter_skips_warmup_smooths_and_pauses():
    t = [0.0]
    meter = perf.Throughput(warmup=1, alpha=0.5, clock=lambda: t[0], sync=lambda: None)
    t[0] = 5.0                     # a slow first step (compilation, allocation): not counted
    meter.add(100)
    assert meter.rate() is None
    for _ in range(4):
        t[0] += 0.1
        meter.add(100)
    assert meter.rate() == pytest.approx(1000)
    t[0] += 10.0                   # evaluation
    meter.pause()
    t[0] += 0.1
    meter.add(100)
    assert meter.rate() == pytest.approx(1000)      # the 10 s of evaluation are not in it
    t[0] += 0.1
    meter.add(300)
    assert meter.rate() == pytest.approx(0.5 * 3000 + 0.5 * 1000)   # EMA


def test_fmt():
    assert fmt.rate(1234.5) == "1.23k" and fmt.rate(None) == "—" and fmt.rate("nan") == "—"
    assert fmt.percent(0.412) == "41.2%" and fmt.percent(2.9e-7) == "2.9e-05%"
    assert fmt.nbytes(3 << 30) == "3.0 GiB" and fmt.loss("nan") == "nan"
    assert fmt.bar(0.5, 4) == "██░░"


# -- the tailer -----------------------------------------------------------------------------------
def _rec(**kw) -> str:
    return json.dumps({"v": 1, **kw}) + "\n"


def test_tailer_handles_partial_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTailer(path)
    assert tail.poll() == []                                   # no file yet
    line = _rec(type="step", step=0, loss=1.0)
    path.write_text(_rec(type="start") + line[:10])
    assert [r["type"] for r in tail.poll()] == ["start"]
    with open(path, "a") as f:
        f.write(line[10:] + "junk\n" + _rec(type="step", step=1, loss=0.5)[:-1])
    assert [r.get("step") for r in tail.poll()] == [0]         # the garbage line skipped, the last held
    with open(path, "a") as f:
        f.write("\n")
    assert [r.get("step") for r in tail.poll()] == [1]
    assert tail.poll() == []


def test_tailer_restarts_on_truncation_and_rotation(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_rec(type="start") + _rec(type="step", step=0, loss=1.0) + _rec(type="step", step=1, loss=1.0))
    tail = MetricsTailer(path)
    assert len(tail.poll()) == 3 and not tail.reset
    path.write_text(_rec(type="start"))                       # truncated and rewritten, shorter
    assert [r["type"] for r in tail.poll()] == ["start"] and tail.reset
    new = tmp_path / "new.jsonl"
    new.write_text(_rec(type="start") + _rec(type="end", status="done"))
    os.replace(new, path)                                     # rotated: a new inode
    assert [r["type"] for r in tail.poll()] == ["start", "end"] and tail.reset


def test_line_tailer_decodes_bad_bytes(tmp_path):
    path = tmp_path / "output.log"
    path.write_bytes(b"ok\n\xff\xfe broken utf-8\n")
    assert LineTailer(path).poll_lines() == ["ok", "\ufffd\ufffd broken utf-8"]


# -- device telemetry: NVML and the CPU fallback ---------------------------------------------------
class FakeNVMLError(Exception):
    pass


class FakeNotSupported(FakeNVMLError):
    def __str__(self):
        return "Not Supported"


class _Mem:
    def __init__(self, used, total):
        self.used, self.total = used, total


class _Proc:
    def __init__(self, pid, mem):
        self.pid, self.usedGpuMemory = pid, mem


class FakeNVML:
    """Enough of pynvml for the sampler; `fail` maps a function name to the exception it raises."""
    NVMLError = FakeNVMLError
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, fail=None, count=2, pid=None):
        self.fail, self.count, self.pid, self.shutdowns = fail or {}, count, pid, 0

    def _check(self, name):
        if name in self.fail:
            raise self.fail[name]

    def nvmlInit(self):
        self._check("nvmlInit")

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        self._check("nvmlDeviceGetCount")
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return f"NVIDIA H100 80GB HBM3 #{h}"

    def nvmlDeviceGetMemoryInfo(self, h):
        self._check("nvmlDeviceGetMemoryInfo")
        return _Mem((h + 1) << 30, 80 << 30)

    def nvmlDeviceGetUtilizationRates(self, h):
        self._check("nvmlDeviceGetUtilizationRates")
        return type("U", (), {"gpu": 97, "memory": 40})()

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 64

    def nvmlDeviceGetPowerUsage(self, h):
        self._check("nvmlDeviceGetPowerUsage")
        return 612_000

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        self._check("nvmlDeviceGetPowerUsage")
        return 700_000

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        self._check("nvmlDeviceGetComputeRunningProcesses")
        return [_Proc(self.pid, 3 << 30)] if h == 1 and self.pid else []


def test_nvml_gpu_mode_finds_the_runs_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nv = FakeNVML(pid=os.getpid())
    s = DeviceSampler(os.getpid(), nvml=nv).sample()
    assert s.mode == "gpu" and s.gpu_index == 1                # the GPU whose process list has our pid
    assert (s.mem_used, s.mem_total) == (2 << 30, 80 << 30)
    assert (s.util, s.temp_c, s.power_w, s.power_limit_w) == (97.0, 64.0, 612.0, 700.0)
    assert s.proc_gpu_mem == 3 << 30
    assert s.rss and s.rss > 0 and s.alive


def test_nvml_cuda_visible_devices_picks_the_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    s = DeviceSampler(None, nvml=FakeNVML()).sample()
    assert s.mode == "gpu" and s.gpu_index == 1 and s.proc_gpu_mem is None


@pytest.mark.parametrize("fail,reason", [
    ({"nvmlInit": FakeNVMLError("Driver/library version mismatch")}, "version mismatch"),
    ({"nvmlInit": FakeNVMLError("NVML Shared Library Not Found")}, "Library Not Found"),
    ({"nvmlDeviceGetCount": FakeNVMLError("Driver Not Loaded")}, "Driver Not Loaded"),
    ({"nvmlDeviceGetMemoryInfo": FakeNotSupported()}, "Not Supported"),
])
def test_nvml_failures_fall_back_to_cpu(fail, reason):
    nv = FakeNVML(fail=fail)
    sampler = DeviceSampler(os.getpid(), nvml=nv)
    s = sampler.sample()
    assert s.mode == "cpu" and not s.gpu
    assert reason in s.nvml_error                             # kept, for a machine that has a GPU
    assert s.label == cpu_label(s.nvml_error)
    assert s.rss > 0 and s.ram_total > 0 and s.cpu_percent is not None
    assert sampler.sample().mode == "cpu"                     # stays in CPU mode, no retry storm


def test_nvml_no_gpu_and_no_library():
    s = DeviceSampler(None, nvml=FakeNVML(count=0)).sample()
    assert s.mode == "cpu" and "no GPU" in s.nvml_error

    def missing():
        raise ImportError("No module named 'pynvml'")
    s = DeviceSampler(os.getpid(), nvml=missing).sample()
    assert s.mode == "cpu" and "nvidia-ml-py is not installed" in s.nvml_error


def test_cpu_label_shows_nvmls_reason_only_where_an_nvidia_device_exists():
    """On a machine without an NVIDIA device, "NVML Shared Library Not Found" means nothing."""
    assert cpu_label("NVML Shared Library Not Found", nvidia_present=False) == "CPU (no NVIDIA GPU)"
    assert cpu_label("Driver/library version mismatch", nvidia_present=True) == \
        "CPU (NVIDIA GPU not readable: Driver/library version mismatch)"
    assert cpu_label(None, nvidia_present=True) == "CPU (no NVIDIA GPU)"


def test_nvml_optional_fields_not_supported_stay_in_gpu_mode():
    nv = FakeNVML(fail={"nvmlDeviceGetPowerUsage": FakeNotSupported(),
                        "nvmlDeviceGetUtilizationRates": FakeNotSupported(),
                        "nvmlDeviceGetComputeRunningProcesses": FakeNotSupported()})
    s = DeviceSampler(os.getpid(), nvml=nv).sample()
    assert s.mode == "gpu" and s.power_w is None and s.util is None and s.proc_gpu_mem is None
    assert s.mem_total == 80 << 30


def test_nvml_gpu_lost_mid_run_falls_back():
    nv = FakeNVML()
    sampler = DeviceSampler(None, nvml=nv)
    assert sampler.sample().mode == "gpu"
    nv.fail["nvmlDeviceGetMemoryInfo"] = FakeNVMLError("GPU is lost")
    s = sampler.sample()
    assert s.mode == "cpu" and "GPU is lost" in s.label and nv.shutdowns == 1   # a GPU was there: say why


def test_real_nvml_on_this_machine():
    """The real pynvml: here (no NVIDIA driver) the CPU fallback; on a GPU machine, GPU mode."""
    s = DeviceSampler(os.getpid()).sample()
    if s.mode == "gpu":
        assert s.mem_total and s.mem_total > 0
    else:
        assert s.label.startswith("CPU (") and s.rss > 0
        if not os.path.exists("/dev/nvidiactl"):
            assert s.label == "CPU (no NVIDIA GPU)"                # no NVML jargon without a GPU


def test_cpu_mode_sums_the_process_tree():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(50 << 20); time.sleep(30)"])
    try:
        sampler = DeviceSampler(os.getpid(), nvml=FakeNVML(fail={"nvmlInit": FakeNVMLError("no")}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = sampler.sample()
            if s.rss > (50 << 20):
                break
            time.sleep(0.1)
        assert s.rss > (50 << 20)           # this process plus the child's 50 MB
    finally:
        child.kill()
        child.wait()
    assert DeviceSampler(child.pid, nvml=FakeNVML()).sample().alive is False


def test_monitor_thread_delivers_samples():
    got = []
    mon = DeviceMonitor(got.append, pid=os.getpid(), interval=0.05,
                        sampler=DeviceSampler(os.getpid(), nvml=FakeNVML()))
    mon.start()
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    mon.stop()
    assert len(got) >= 3 and got[0].mode == "gpu"
    assert not mon._thread.is_alive()


def test_a_given_flop_count_is_not_labelled_as_derived(tmp_path):
    path = tmp_path / "r" / "metrics.jsonl"
    with MetricsWriter(path, step_interval_s=0) as w:
        w.start(n_params=1000, flops_per_token=2500.0, flops_counted="3 × forward + 2 per trained weight")
    start = next(read_records(path))
    assert start["flops_per_token"] == 2500.0 and start["flops_counted"] == "3 × forward + 2 per trained weight"
    other = tmp_path / "s" / "metrics.jsonl"
    with MetricsWriter(other, step_interval_s=0) as w:
        w.start(n_params=1000, flops_per_token=2500.0)
    assert "flops_counted" not in next(read_records(other))


def test_matmul_weights_counts_each_linear_once_and_no_embedding():
    import torch.nn as nn

    from engine.lora.lora_linear import LoRALinear
    from engine.shared.perf import matmul_weights
    model = nn.Sequential(nn.Embedding(100, 8), nn.Linear(8, 16), nn.Linear(16, 4))
    assert matmul_weights(model) == 8 * 16 + 16 * 4
    model[1] = LoRALinear(model[1], r=2, alpha=4)        # the wrapper is skipped, its base counted
    assert matmul_weights(model) == 8 * 16 + 16 * 4
