"""MemoryGauges: device memory (NVML, or RAM in CPU mode) next to PyTorch's allocator memory.

Reactives down: `sample` (a lab.training.device_sampling.DeviceSample, ~2 Hz) and `allocator` (the
mem_alloc / mem_peak / mem_reserved of the run's latest step record, present when the run uses
CUDA). On a GPU the last line says in one sentence why the two differ (ALLOCATOR_VS_DEVICE); on a
CPU there is no allocator to compare, so neither line is shown.
"""
from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .. import formatting as fmt
from ..device_sampling import ALLOCATOR_VS_DEVICE, DeviceSample

BAR_W = 7
LABEL_W = 10
_UNITS = {"TiB": 1 << 40, "GiB": 1 << 30, "MiB": 1 << 20, "KiB": 1 << 10}


def amount(used, total) -> str:
    """'41.0/80.0 GiB' (one unit), or just the used figure without a total."""
    if fmt.num(used) is None:
        return "n/a"
    if not fmt.num(total):
        return fmt.nbytes(used)
    t = fmt.nbytes(total)
    scale = _UNITS.get(t.split()[-1])
    return f"{used / scale:.1f}/{t}" if scale else f"{fmt.nbytes(used)}/{t}"


def gauge(label: str, used, total, style: str = "green") -> Text:
    frac = (used / total) if (fmt.num(used) is not None and fmt.num(total)) else None
    if frac is not None and frac > 0.9:
        style = "red"
    return Text.assemble((label.ljust(LABEL_W), "bold"), (fmt.bar(frac, BAR_W), style), " ",
                         amount(used, total), no_wrap=True, overflow="ellipsis")


def note(text: str) -> Text:
    return Text(" " * LABEL_W + text, style="dim", no_wrap=True, overflow="ellipsis")


class MemoryGauges(Widget):
    sample: reactive[DeviceSample | None] = reactive(None, repaint=False)
    allocator: reactive[dict] = reactive(dict, repaint=False)

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = "memory"
        self._shown: list[str] = []

    def _update(self) -> None:
        """Repaint only when the text changes (a sample every 0.5 s mostly reads the same); lay
        out again only when the number of lines does."""
        shown = [line.plain for line in self.lines()]
        if shown != self._shown:
            self.refresh(layout=len(shown) != len(self._shown))
            self._shown = shown

    def watch_sample(self) -> None:
        self._update()

    def watch_allocator(self) -> None:
        self._update()

    def lines(self) -> list[Text]:
        s, a = self.sample, self.allocator or {}
        out: list[Text] = []
        if s is None:
            out.append(Text("sampling…", style="dim"))
        elif s.gpu:
            out.append(Text(s.label, style="bold green"))
            out.append(gauge("device", s.mem_used, s.mem_total))
            bits = [f"util {s.util:.0f}%" if s.util is not None else "",
                    f"{s.temp_c:.0f}°C" if s.temp_c is not None else "",
                    (f"{s.power_w:.0f}" + (f"/{s.power_limit_w:.0f}" if s.power_limit_w else "") + " W")
                    if s.power_w is not None else ""]
            if any(bits):
                out.append(note("  ".join(b for b in bits if b)))
            out.append(gauge("run (GPU)", s.proc_gpu_mem, s.mem_total))
            if s.proc_gpu_mem is None:
                out.append(note("NVML gives no per-process figure"))
        else:
            out.append(Text(s.label, style="bold"))
            out.append(gauge("RAM", s.ram_used, s.ram_total))
        if s is not None:
            if s.alive:
                out.append(gauge("run RSS", s.rss, s.ram_total, style="cyan"))
                if s.cpu_percent is not None:
                    cpu = 5 * round(s.cpu_percent / 5)           # steadier, and fewer repaints
                    out.append(note(f"CPU ~{cpu}% of {s.cpu_count * 100}%"))
            else:
                out.append(Text.assemble(("run".ljust(LABEL_W), "bold"), ("no process", "dim")))
        if a.get("mem_alloc") is not None:
            total = s.mem_total if (s is not None and s.gpu) else a.get("mem_reserved")
            out.append(gauge("allocator", a["mem_alloc"], total, style="magenta"))
            out.append(note(f"peak {fmt.nbytes(a.get('mem_peak'))}, reserved {fmt.nbytes(a.get('mem_reserved'))}"))
        if s is not None and s.gpu:
            out.append(Text(ALLOCATOR_VS_DEVICE, style="dim italic"))
        return out

    def render(self) -> Group:
        return Group(*self.lines())
