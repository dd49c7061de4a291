"""The lora mission's training entry (engine.lora.train.main, what `llm-lab train lora` runs): a
couple of real steps stream start/step/eval records and leave a small adapter file behind."""
from __future__ import annotations

from engine.shared.telemetry import MetricsWriter, read_records


def test_train_main_streams_metrics_and_saves_adapter(tmp_path, monkeypatch):
    import torch
    import engine.lora.train as train
    torch.set_num_threads(1)
    monkeypatch.setattr(train, "EVAL_SENTENCES", 16)        # a real evaluation, kept short
    path = tmp_path / "run" / "metrics.jsonl"
    path.parent.mkdir()
    with MetricsWriter(path, mission="lora", impl="reference") as writer:
        result = train.main(steps=2, metrics=writer)
    records = list(read_records(path))
    kinds = [r["type"] for r in records]
    assert kinds[0] == "start" and "step" in kinds and "eval" in kinds, kinds
    start = records[0]
    assert 0 < start["trainable_params"] < 0.01 * start["n_params"], start
    steps = [r for r in records if r["type"] == "step"]
    assert all(r["tokens"] > 0 and 0.0 <= r["accuracy"] <= 1.0 for r in steps), steps
    ev = [r for r in records if r["type"] == "eval"][-1]
    assert 0.0 <= ev["val_acc"] <= 1.0 and ev["val_loss"] > 0, ev
    adapter = tmp_path / "run" / "adapter.pt"
    assert adapter.is_file() and result["adapter_bytes"] == adapter.stat().st_size
    assert 200_000 < adapter.stat().st_size < 1_000_000, adapter.stat().st_size   # ~300 KB, never the base
