"""Shared helpers for the gpt mission's checks (not a test file: pytest does not collect it).

The reference modules come from engine.gpt; learner modules only ever come through grader.seam.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math

import torch

from engine.gpt.config import GPTConfig as RefConfig
from grader.checks import fail


@contextlib.contextmanager
def one_thread():
    """These models are tiny: one thread is as fast as two, and never stalls on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def configs(**kw):
    """(reference config, learner config) with the same values."""
    from grader.seam import learner
    ref = RefConfig(**kw)
    LearnerConfig = learner("config").GPTConfig
    fields = {f.name for f in dataclasses.fields(LearnerConfig)}
    return ref, LearnerConfig(**{k: v for k, v in kw.items() if k in fields})


def randomize_(module: torch.nn.Module, seed: int, std: float = 0.3) -> torch.nn.Module:
    """Move every parameter away from its init (gains away from 1, biases away from 0), so that a
    missing weight or bias, or a swapped one, shows in the output. Tied weights move once."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():          # parameters() yields a tied tensor only once
            p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def load_reference_weights(mod: torch.nn.Module, state: dict, what: str) -> None:
    """load_state_dict(strict) with a message in the brief's terms when the layout differs."""
    if not isinstance(mod, torch.nn.Module):
        fail(f"{what} should be a torch.nn.Module, got {type(mod).__name__}")
    mine = mod.state_dict()
    missing = [k for k in state if k not in mine]
    unexpected = [k for k in mine if k not in state]
    wrong = [f"{k}: yours {tuple(mine[k].shape)}, expected {tuple(v.shape)}"
             for k, v in state.items() if k in mine and mine[k].shape != v.shape]
    if missing or unexpected or wrong:
        layout = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state.items())[:12])
        parts = []
        if missing:
            parts.append(f"missing {missing[:6]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:6]}")
        if wrong:
            parts.append(f"wrong shapes {wrong[:4]}")
        fail(f"{what}: its parameters do not follow the layout in brief.md ({'; '.join(parts)}). "
             f"Expected: {layout}{' ...' if len(state) > 12 else ''}")
    mod.load_state_dict(state, strict=True)


def allclose(a, b, atol: float, rtol: float = 0.0) -> bool:
    """A quiet comparison for diagnosing *which* mistake it is (never the verdict itself)."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return False
    a, b = a.detach().double(), b.detach().double()
    both_nan = a.isnan() & b.isnan()
    same_inf = a.isinf() & b.isinf() & (a == b)
    ok = ((a - b).abs() <= atol + rtol * b.abs()) | both_nan | same_inf
    return bool(ok.all())


def ln(x: float) -> float:
    return math.log(x)
