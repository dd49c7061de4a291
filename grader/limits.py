"""Resource limits for the grading child (POSIX rlimits).

Core dumps off; file size, open files and CPU time capped; on CPU-only runs the address space is
capped at the child's current size plus a budget (so a memory blow-up ends in MemoryError -> `oom`
instead of swapping the machine). GPU runs skip the address-space cap (CUDA maps huge virtual
ranges) and report CUDA out-of-memory as such. Not handled: Windows (no resource module).
"""
from __future__ import annotations

import os

try:
    import resource
except ImportError:  # pragma: no cover
    resource = None


def _set(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(kind, (value, hard))
    except (ValueError, OSError):
        pass


def vm_size() -> int:
    """Current virtual memory size of this process in bytes (Linux)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def apply_limits(limits: dict) -> None:
    if resource is None:
        return
    _set(resource.RLIMIT_CORE, 0)
    if limits.get("fsize"):
        _set(resource.RLIMIT_FSIZE, int(limits["fsize"]))
    if limits.get("nofile"):
        _set(resource.RLIMIT_NOFILE, int(limits["nofile"]))
    if limits.get("cpu"):
        _set(resource.RLIMIT_CPU, int(limits["cpu"]))


def apply_memory_limit(budget_bytes: int) -> None:
    """Cap the address space at the current size plus `budget_bytes` (call after heavy imports)."""
    if resource is None or not budget_bytes:
        return
    _set(resource.RLIMIT_AS, vm_size() + int(budget_bytes))
