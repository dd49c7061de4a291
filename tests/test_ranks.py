"""grader.ranks: a check's function on real processes; results come back by rank; a crashed, hung or
failing rank fails the check with a message that names it, and never hangs the grader; inside a
rank, learner code meets the same import guard and tripwires as in the grading child."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from grader import ranks
from grader.checks import CheckFailure
from tests import ranks_fns as fns
from tests.helpers import grade, missions, workspace_with_reference


def _pids(tmp_path: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(tmp_path.glob("victim-*.pid"))]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))   # the ranks write their pid files here
    return tmp_path


def test_each_rank_runs_and_returns_its_value():
    got = ranks.run(fns.sum_of_ranks, world=2, args=(10,))
    assert [float(r["sum"]) for r in got] == [21.0, 21.0]        # 10 + 11 on both ranks
    assert got[0]["pid"] != got[1]["pid"] and os.getpid() not in (got[0]["pid"], got[1]["pid"])
    assert [r["omp"] for r in got] == ["1", "1"] and [r["threads"] for r in got] == [1, 1]
    assert [r["calls"] for r in got] == [2, 2] and [r["async"] for r in got] == [1, 1]


def test_a_killed_rank_fails_the_check_naming_it(tmpdir_env):
    started = time.monotonic()
    with pytest.raises(CheckFailure, match=r"rank 1 was killed by SIGKILL"):
        ranks.run(fns.one_rank_dies, world=2, timeout=120)
    assert time.monotonic() - started < 120            # the survivor's failure ended it, not the timeout
    pids = _pids(tmpdir_env)
    assert len(pids) == 2 and all(_gone(p) for p in pids)


def test_a_hung_rank_is_stopped_at_the_deadline_and_its_line_named(tmpdir_env):
    started = time.monotonic()
    with pytest.raises(CheckFailure) as e:
        ranks.run(fns.one_rank_hangs, world=2, timeout=40)
    took = time.monotonic() - started
    assert 40 <= took < 40 + 15, took
    message = str(e.value)
    assert "still running after 40 s" in message and "rank 1" in message, message
    pids = _pids(tmpdir_env)
    assert all(_gone(p) for p in pids), "a hung rank outlived the check"
    if len(pids) == 2:      # both reached the function before the deadline: their lines are known
        assert "rank 1 was at ranks_fns.py line" in message and "(one_rank_hangs)" in message, message


def test_not_implemented_in_a_rank_reads_not_implemented():
    with pytest.raises(NotImplementedError, match=r"^rank 1: average_gradients: see brief.md"):
        ranks.run(fns.one_rank_not_implemented, world=2)


def test_an_exception_is_reported_from_the_rank_that_raised_it():
    # rank 1 then fails too ("connection closed by peer"): that echo is not what is reported
    with pytest.raises(ranks.RankError, match=r"^rank 0: ValueError: shapes do not match"):
        ranks.run(fns.one_rank_raises, world=2)


def test_a_value_that_is_not_plain_data_is_refused():
    with pytest.raises(ranks.RankError, match=r"only tensors and plain data"):
        ranks.run(fns.returns_an_object, world=2)


def test_a_function_the_ranks_cannot_import_is_refused():
    def local(rank, world):
        return rank
    with pytest.raises(ValueError, match="module-level function"):
        ranks.run(local, world=2)


def test_accelerate_launch_gives_two_processes_in_one_group():
    got = ranks.run_accelerate(fns.accel_fn, world=2, args=(10,), preload=("accelerate",))
    assert [r["index"] for r in got] == [0, 1] and [r["n"] for r in got] == [2, 2]
    assert [float(r["sum"]) for r in got] == [21.0, 21.0]
    assert all(r["type"] == "DistributedType.MULTI_CPU" for r in got)


# -- the guard inside ranks (a real grade of the multi-gpu mission) --------------------------------
MISSION = next(m for m in missions() if m.id == "multi-gpu")
INIT = "        self.module = module\n"


def _planted(tmp_path, line: str):
    ws = workspace_with_reference(tmp_path, MISSION, {"name": "planted", "file": "ddp.py", "find": INIT,
                                                      "replace": INIT + line})
    (result,) = grade(MISSION, ws, checkpoints=["ddp"]).results
    return result


def test_learner_code_in_a_rank_cannot_import_the_reference(tmp_path):
    # only DDP() imports it, and DDP() runs only in the ranks
    result = _planted(tmp_path, "        import engine.multi_gpu.ddp as _reference  # noqa\n")
    assert result.status == "failed", (result.status, result.message)
    assert "imports the reference solution" in result.message and "rank" in result.message, result.message


def test_the_checkpoints_tripwires_are_armed_in_the_ranks(tmp_path):
    result = _planted(tmp_path, "        torch.nn.parallel.DistributedDataParallel(module)\n")
    assert result.status == "failed", (result.status, result.message)
    assert "off limits" in result.message and "DistributedDataParallel" in result.message, result.message
