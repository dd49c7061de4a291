"""The self-test every mission goes through: its checks are honest.

- the reference (engine/) passes every checkpoint;
- the untouched stubs pass none (each reads not_implemented);
- every planted classic mistake in missions/<id>/mistakes.toml is caught by the checkpoint that owns
  it, with a message that names the mistake.
GPU-only checks may skip on CPU, with a reason that says so.
"""
from __future__ import annotations

import pytest

from grader import workspace
from tests.helpers import grade, matches, missions, mistakes, workspace_with_reference

MISSIONS = missions()
GPU_OR_NET = ("GPU", "CUDA", "cuda", "network")


@pytest.mark.parametrize("mission", MISSIONS, ids=lambda m: m.id)
def test_reference_passes_every_checkpoint(mission):
    run = grade(mission, None, reference=True)
    for r in run.results:
        if r.status == "skipped":
            assert any(w in r.message for w in GPU_OR_NET), f"{r.checkpoint} skipped without a GPU/network reason: {r.message}"
            continue
        assert r.status == "passed", f"reference {mission.id}/{r.checkpoint}: {r.status}: {r.message}\n{run.log[-3000:]}"


@pytest.mark.parametrize("mission", MISSIONS, ids=lambda m: m.id)
def test_untouched_stubs_pass_none(mission, tmp_path):
    ws, _, _ = workspace.init(tmp_path / "ws", [mission])
    run = grade(mission, ws)
    for r in run.results:
        assert r.status in ("not_implemented", "skipped"), f"stub {mission.id}/{r.checkpoint}: {r.status}: {r.message}"
        if r.status == "skipped":
            assert any(w in r.message for w in GPU_OR_NET), r.message


PLANTED = [(m, k) for m in MISSIONS for k in mistakes(m)]


@pytest.mark.parametrize("mission,mistake", PLANTED, ids=[f"{m.id}:{k['name']}" for m, k in PLANTED])
def test_planted_mistake_is_caught(mission, mistake, tmp_path):
    ws = workspace_with_reference(tmp_path, mission, mistake)
    run = grade(mission, ws, checkpoints=[mistake["checkpoint"]])
    (result,) = run.results
    assert result.status == "failed", f"{mistake['name']!r}: {result.status}: {result.message}"
    assert matches(mistake["expect"], result.message), (
        f"{mistake['name']!r} was caught, but the message does not name it "
        f"(expected /{mistake['expect']}/):\n{result.message}")


@pytest.mark.parametrize("mission", MISSIONS, ids=lambda m: m.id)
def test_every_mission_plants_at_least_five_mistakes(mission):
    assert len(mistakes(mission)) >= 5, f"{mission.id} has {len(mistakes(mission))} planted mistakes"
