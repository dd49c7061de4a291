"""The mission loader names the file and the field for every malformed mission.toml."""
from __future__ import annotations

import shutil

import pytest

from grader.missions import MISSIONS_DIR, MissionError, load_all, load_mission


@pytest.fixture
def mission_dir(tmp_path):
    root = tmp_path / "micrograd"
    shutil.copytree(MISSIONS_DIR / "micrograd", root)
    return root


def _edit(root, old, new):
    p = root / "mission.toml"
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("old,new,field", [
    ('id = "micrograd"', 'id = "Micro Grad"', "id"),
    ('order = 1', 'order = "first"', "order"),
    ('needs = "cpu"', 'needs = "tpu"', "needs"),
    ('package = "micrograd"', 'package = "engine"', "package"),
    ('reference = "engine.micrograd"', 'reference = "micrograd"', "reference"),
    ('timeout = 30', 'timeout = -1', "checkpoints[0].timeout"),
    ('checks = ["test_forward.py"]', 'checks = ["test_nope.py"]', "checks[0].checks[0]"),
    ('files = ["value.py"]', 'files = ["nope.py"]', "checkpoints[0].files[0]"),
    ('entry = "train:main"', 'entry = "train"', "train.entry"),
    ('title = "Forward: the operations"', 'title = 3', "checkpoints[0].title"),
])
def test_errors_name_file_and_field(mission_dir, old, new, field):
    _edit(mission_dir, old, new)
    with pytest.raises(MissionError) as e:
        load_mission(mission_dir)
    msg = str(e.value)
    assert "mission.toml" in msg and field.split(".")[-1].split("[")[0] in msg, msg


def test_not_toml(mission_dir):
    (mission_dir / "mission.toml").write_text("id = [unclosed")
    with pytest.raises(MissionError, match="mission.toml: not valid TOML"):
        load_mission(mission_dir)


def test_duplicate_checkpoint(mission_dir):
    _edit(mission_dir, 'id = "backward"', 'id = "forward"')
    with pytest.raises(MissionError, match=r"checkpoints\[1\]\.id: duplicate"):
        load_mission(mission_dir)


def test_missing_brief(mission_dir):
    (mission_dir / "brief.md").unlink()
    with pytest.raises(MissionError, match="brief.md: file is missing"):
        load_mission(mission_dir)


def test_a_broken_mission_does_not_hide_the_others(tmp_path, mission_dir):
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "mission.toml").write_text('id = "broken"\n')
    missions, errors = load_all(tmp_path)
    assert [m.id for m in missions] == ["micrograd"]
    assert len(errors) == 1 and "broken/mission.toml" in errors[0] or "mission.toml" in errors[0]


def test_real_missions_load_cleanly():
    missions, errors = load_all()
    assert not errors, errors
    assert missions[0].id == "micrograd"


@pytest.mark.parametrize("options,field,says", [
    ('colour = ["red"]', "train.options.colour", "not an option `llm-lab train` has a flag for"),
    ('model = []', "train.options.model", "at least one value"),
    ('model = "big"', "train.options.model", "must be list"),
    ('model = ["big model"]', "train.options.model[0]", "invalid value"),
])
def test_train_options_are_checked(mission_dir, options, field, says):
    p = mission_dir / "mission.toml"
    text = p.read_text()
    at = text.index("[train]")
    end = text.index("\n\n", at)
    p.write_text(text[:end] + f"\n\n[train.options]\n{options}\n" + text[end:])
    with pytest.raises(MissionError) as e:
        load_mission(mission_dir)
    assert field in str(e.value) and says in str(e.value), str(e.value)


def test_train_options_load_with_the_first_value_as_default():
    lora = next(m for m in load_all()[0] if m.id == "lora")
    assert lora.train.choices("model") == ("minilm", "smollm2")
    assert lora.train.choices("mode")[0] == "lora" and "qlora" in lora.train.choices("mode")
    assert lora.train.choices("colour") == ()
