"""Numbers as the Train screen and the headless output show them."""
from __future__ import annotations

import functools
import math

_RATE = (("G", 1e9), ("M", 1e6), ("k", 1e3))
_FLOPS = (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6))
_BYTES = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def num(value) -> float | None:
    """A finite float from a record field ("nan" strings and missing keys give None)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _scaled(x: float, units, spec: str, sep: str) -> str | None:
    """x in the largest unit it reaches ("1.23k"), or None below the smallest."""
    for unit, scale in units:
        if abs(x) >= scale:
            return f"{x / scale:{spec}}{sep}{unit}"
    return None


def _number(show):
    """`show` gets a finite float (via num); a missing or non-finite value shows as a dash."""
    @functools.wraps(show)
    def wrapper(value) -> str:
        x = num(value)
        return "—" if x is None else show(x)
    return wrapper


@_number
def rate(x: float) -> str:
    """12.3, 1.23k, 45.6M (tokens/s)."""
    return _scaled(x, _RATE, ".3g", "") or f"{x:.3g}"


@_number
def percent(fraction: float) -> str:
    """MFU as a percentage, readable from 40% down to a micrograd's 0.00002%."""
    p = 100 * fraction
    if p == 0:
        return "0%"
    return f"{p:.1f}%" if abs(p) >= 0.1 else f"{p:.2g}%"


@_number
def flops(v: float) -> str:
    """989 TFLOP/s, 4.2 GFLOP/s (a dash for none)."""
    if v <= 0:
        return "—"
    return _scaled(v, _FLOPS, ".3g", " ") or f"{v:.3g} FLOP/s"


@_number
def nbytes(x: float) -> str:
    """4.0 GiB, 512 B."""
    return _scaled(x, _BYTES, ".1f", " ") or f"{int(x)} B"


def loss(x) -> str:
    v = num(x)
    if v is None:
        return "nan" if x is not None else "—"
    return f"{v:.4f}" if abs(v) >= 1e-3 else f"{v:.3e}"


def duration(seconds: float) -> str:
    s = int(max(0, seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def bar(fraction: float | None, width: int = 16) -> str:
    """A text gauge: ██████░░░░."""
    if fraction is None or not math.isfinite(fraction):
        return "░" * width
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def ranks_line(ranks: list[dict]) -> str:
    """One line for a multi-process run's ranks: 'rank 0 4.9k tok/s comm 12% · rank 1 …'."""
    bits = []
    for i, r in enumerate(ranks):
        c, step = num(r.get("comm_ms")), num(r.get("step_ms"))
        share = f" comm {100 * c / step:.0f}%" if c is not None and step else ""
        bits.append(f"rank {r.get('rank', i)} {rate(r.get('tok_s'))} tok/s{share}")
    return " · ".join(bits)


START_KEYS = ("model", "mode", "device", "world", "backend", "n_params", "n_layer", "n_head", "d_model", "block_size")


def start_bits(r: dict) -> list[str]:
    """A start record's description: 'model X, device cpu, n_params 1000, trainable 2.44M (1.78%), …'."""
    bits = [f"{k} {r[k]}" for k in START_KEYS if k in r]
    if num(r.get("trainable_params")) is not None:
        pct = num(r.get("trainable_pct"))
        bits.append(f"trainable {rate(r['trainable_params'])}" + (f" ({pct:.3g}%)" if pct is not None else ""))
    return bits
