"""RankTable: the ranks of a multi-process run side by side, one column per rank.

Attribute down: `ranks`, the `ranks` list of the run's latest step record (engine/multi_gpu/train.py
writes it; any job may): [{"rank", "loss", "tok_s", "mem_rss", "mem_alloc", "mem_device",
"comm_ms", "step_ms"}, ...], every key optional. Rows: the rank's loss on its shard, its tokens/s
(and the sum over ranks), its memory (the device's used memory per GPU where the rank reports it,
else PyTorch's allocator on CUDA, else the process's RSS on a CPU), and the time it spent waiting on
communication (ms, and its share of the step). The widget hides itself while `ranks` is empty, so
single-process missions never see it.
Not handled: more ranks than the width holds (columns are cut at the right edge; a run of 8 GPUs on
a 100-column terminal shows about 6).
"""
from __future__ import annotations

from rich.table import Table
from textual.reactive import reactive
from textual.widget import Widget

from .. import formatting as fmt


def memory(rank: dict) -> tuple[str, str]:
    """(figure, what it measures) for one rank: the most telling figure the rank reported."""
    for key, label in (("mem_device", "GPU used"), ("mem_alloc", "allocator"), ("mem_rss", "RSS")):
        value = fmt.num(rank.get(key))
        if value:                       # 0 means "not measured here" (mem_alloc on a CPU)
            return fmt.nbytes(value), label
    return "—", "memory"


def comm(rank: dict) -> str:
    """'3.1ms 12%': time in communication and its share of the whole step."""
    c, step = fmt.num(rank.get("comm_ms")), fmt.num(rank.get("step_ms"))
    if c is None:
        return "—"
    share = f" {100 * c / step:.0f}%" if step else ""
    return f"{c:.1f}ms{share}"


def table(ranks: list[dict]) -> Table:
    """Metrics as rows, ranks as columns, plus an `all` column (loss mean, tokens/s sum)."""
    t = Table(box=None, padding=(0, 0, 0, 2), show_edge=False, header_style="bold")
    t.add_column("", style="bold", no_wrap=True)
    for i, r in enumerate(ranks):
        t.add_column(f"rank {r.get('rank', i)}", justify="right", no_wrap=True)
    t.add_column("all", justify="right", style="bold", no_wrap=True)
    losses = [fmt.num(r.get("loss")) for r in ranks]
    rates = [fmt.num(r.get("tok_s")) for r in ranks]
    finite = [x for x in losses if x is not None]
    t.add_row("loss", *(fmt.loss(r.get("loss")) for r in ranks),
              fmt.loss(sum(finite) / len(finite)) if finite else "—")
    t.add_row("tok/s", *(fmt.rate(x) for x in rates),
              fmt.rate(sum(rates)) if None not in rates else "—")
    mems = [memory(r) for r in ranks]
    labels = {label for _, label in mems}
    t.add_row(labels.pop() if len(labels) == 1 else "memory", *(m for m, _ in mems), "")
    t.add_row("comm", *(comm(r) for r in ranks), "")
    return t


class RankTable(Widget):
    ranks: reactive[list] = reactive(list, layout=True)

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = "ranks"
        self.display = False

    def watch_ranks(self, ranks: list) -> None:
        self.display = bool(ranks)
        if ranks:
            self.border_title = f"ranks ({len(ranks)} processes)"

    def render(self) -> Table:
        return table([r for r in self.ranks if isinstance(r, dict)])
