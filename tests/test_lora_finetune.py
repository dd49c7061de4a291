"""The long fine-tune of the lora mission's brief (section 8), on this CPU: the reference's LoRA on
MiniLM reaches its held-out target. Slow (`pytest -m slow tests/test_lora_finetune.py`, ~10-25 min on
a shared 2-core box); the default run has the short real version inside the mission's `finetune`
checkpoint instead."""
from __future__ import annotations

import pytest

# brief.md, section 8: the reference's LoRA run measured 0.854 on the 1,007 validation sentences (150 steps of 32);
# the target leaves room for another seed and another machine's float summation order.
TARGET = 0.80


@pytest.mark.slow
def test_reference_lora_finetune_reaches_target():
    import torch
    from engine.lora.finetune import FinetuneConfig, run
    torch.set_num_threads(2)
    result = run(FinetuneConfig(mode="lora"), split="validation")
    assert result["trainable"] / result["total"] < 0.01, result
    assert result["accuracy"] >= TARGET, result
