"""Mission loading: missions/<id>/mission.toml -> Mission, validated field by field.

Every error names the file and the field (`MissionError`), so a broken mission reads like
"missions/gpt/mission.toml: checkpoints[2].timeout: must be a positive number, got 'soon'".
The format is documented in docs/missions.md. Not handled: missions outside missions/ (no plugin
discovery), TOML includes.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MISSIONS_DIR = Path(__file__).resolve().parent.parent / "missions"
ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")
PKG_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
DEFAULT_TIMEOUT = 60.0
RESERVED_PACKAGES = {"engine", "grader", "lab", "missions", "assets", "tests", "torch", "numpy"}


class MissionError(ValueError):
    """A mission folder is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Checkpoint:
    id: str
    title: str
    checks: tuple[str, ...]
    files: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    forbid_calls: tuple[str, ...] = ()
    bonus: bool = False


TRAIN_OPTIONS = ("model", "mode")   # [train.options] names: `llm-lab train` has a flag for each


@dataclass(frozen=True)
class TrainJob:
    entry: str          # "<module>:<function>" inside the learner package / reference package
    steps: int
    # (name, choices) pairs from [train.options]: keyword arguments of the entry the learner picks
    # with `llm-lab train M --name value`; the first choice is the default (not passed)
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def choices(self, name: str) -> tuple[str, ...]:
        """The values `name` may take, () when the job offers no such option."""
        return dict(self.options).get(name, ())


@dataclass(frozen=True)
class Mission:
    id: str
    title: str
    order: int
    summary: str
    needs: str
    package: str
    reference: str
    root: Path
    checkpoints: tuple[Checkpoint, ...]
    forbid: tuple[str, ...] = ()
    forbid_reason: str = ""   # said when the learner's package imports a module in `forbid`
    train: TrainJob | None = None

    @property
    def brief_path(self) -> Path:
        return self.root / "brief.md"

    @property
    def stubs_dir(self) -> Path:
        return self.root / "stubs"

    @property
    def checks_dir(self) -> Path:
        return self.root / "checks"

    @property
    def reference_dir(self) -> Path:
        """The reference package's folder (engine/<package>)."""
        parts = self.reference.split(".")
        return MISSIONS_DIR.parent.joinpath(*parts)

    def checkpoint(self, cid: str) -> Checkpoint:
        for cp in self.checkpoints:
            if cp.id == cid:
                return cp
        raise KeyError(f"mission {self.id!r} has no checkpoint {cid!r} "
                       f"(it has: {', '.join(c.id for c in self.checkpoints)})")


# -- validation helpers -------------------------------------------------------------------------
class _Fields:
    def __init__(self, data: dict, where: str):
        self.data, self.where = data, where

    def err(self, name: str, msg: str) -> MissionError:
        return MissionError(f"{self.where}{name}: {msg}")

    def get(self, name, kind, *, required=True, default=None, check=None, hint=""):
        if name not in self.data:
            if required:
                raise self.err(name, "is missing" + (f" ({hint})" if hint else ""))
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.err(name, f"must be {names}, got {value!r}")
        if check is not None and not check(value):
            raise self.err(name, f"invalid value {value!r}" + (f" ({hint})" if hint else ""))
        return value

    def str_list(self, name, *, required=False, check=None, hint=""):
        value = self.get(name, list, required=required, default=[])
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.err(f"{name}[{i}]", f"must be a non-empty string, got {item!r}")
            if check is not None and not check(item):
                raise self.err(f"{name}[{i}]", f"invalid value {item!r}" + (f" ({hint})" if hint else ""))
        return tuple(value)


def load_mission(root: Path) -> Mission:
    """Load and validate one mission folder."""
    root = Path(root)
    toml_path = root / "mission.toml"
    where = f"{_display(toml_path)}: "
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissionError(f"{_display(toml_path)}: file is missing") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MissionError(f"{_display(toml_path)}: not valid TOML: {e}") from None

    f = _Fields(data, where)
    mid = f.get("id", str, check=ID_RE.match, hint="lowercase letters, digits and '-'")
    if mid != root.name:
        raise f.err("id", f"{mid!r} does not match the folder name {root.name!r}")
    package = f.get("package", str, check=PKG_RE.match, hint="a Python package name")
    if package in RESERVED_PACKAGES:
        raise f.err("package", f"{package!r} is reserved")
    reference = f.get("reference", str, check=lambda s: s.startswith("engine."),
                      hint="a package under engine/, e.g. 'engine.micrograd'")
    needs = f.get("needs", str, required=False, default="cpu", check=lambda s: s in ("cpu", "gpu"),
                  hint="'cpu' or 'gpu'")
    mission_kw = dict(
        id=mid, package=package, reference=reference, needs=needs, root=root,
        title=f.get("title", str, check=str.strip),
        order=f.get("order", int, check=lambda n: n >= 0),
        summary=f.get("summary", str, required=False, default=""),
        forbid=f.str_list("forbid"),
        forbid_reason=f.get("forbid_reason", str, required=False, default=""),
    )
    # [defaults]: what every checkpoint has unless it says otherwise (forbid_calls add up)
    d = _Fields(f.get("defaults", dict, required=False, default={}), where + "defaults.")
    default_timeout = float(d.get("timeout", (int, float), required=False, default=DEFAULT_TIMEOUT,
                                  check=lambda n: n > 0, hint="seconds, > 0"))
    default_forbid_calls = d.str_list("forbid_calls", check=lambda s: "." in s, hint="a dotted path")

    train = f.get("train", dict, required=False)
    if train is not None:
        t = _Fields(train, where + "train.")
        mission_kw["train"] = TrainJob(
            entry=t.get("entry", str, check=lambda s: re.match(r"^[a-z_][a-z0-9_]*:[A-Za-z_]\w*$", s),
                        hint="'module:function'"),
            steps=t.get("steps", int, required=False, default=100, check=lambda n: n > 0),
            options=_train_options(_Fields(t.get("options", dict, required=False, default={}),
                                           where + "train.options.")))

    raw_cps = f.get("checkpoints", list, hint="at least one [[checkpoints]] table")
    if not raw_cps:
        raise f.err("checkpoints", "must list at least one checkpoint")
    checkpoints, seen = [], set()
    for i, raw in enumerate(raw_cps):
        if not isinstance(raw, dict):
            raise f.err(f"checkpoints[{i}]", "must be a table")
        cp = _load_checkpoint(_Fields(raw, f"{where}checkpoints[{i}]."), root, mid,
                              default_timeout, default_forbid_calls)
        if cp.id in seen:
            raise MissionError(f"{where}checkpoints[{i}].id: duplicate checkpoint id {cp.id!r}")
        seen.add(cp.id)
        checkpoints.append(cp)
    mission_kw["checkpoints"] = tuple(checkpoints)

    if not (root / "brief.md").is_file():
        raise MissionError(f"{_display(root / 'brief.md')}: file is missing")
    if not (root / "stubs").is_dir():
        raise MissionError(f"{_display(root / 'stubs')}: folder is missing")
    return Mission(**mission_kw)


def _train_options(o: _Fields) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for name in o.data:
        if name not in TRAIN_OPTIONS:
            raise o.err(name, f"is not an option `llm-lab train` has a flag for (one of {', '.join(TRAIN_OPTIONS)})")
        values = o.str_list(name, required=True, check=lambda v: re.match(r"^[A-Za-z0-9_.-]+$", v),
                            hint="plain names: letters, digits, _ . -")
        if not values:
            raise o.err(name, "must list at least one value (the first is the default)")
        out.append((name, values))
    return tuple(out)


def _load_checkpoint(c: _Fields, root: Path, mid: str, default_timeout: float,
                     default_forbid_calls: tuple[str, ...]) -> Checkpoint:
    cid = c.get("id", str, check=lambda s: re.match(r"^[a-z][a-z0-9_-]*$", s),
                hint="lowercase letters, digits, '-' and '_'")
    checks = c.str_list("checks", required=True)
    if not checks:
        raise c.err("checks", "must name at least one check file")
    for j, node in enumerate(checks):
        file_part = node.split("::", 1)[0]
        if "/" in file_part or ".." in file_part or not (root / "checks" / file_part).is_file():
            raise c.err(f"checks[{j}]", f"no such check file missions/{mid}/checks/{file_part}")
    files = c.str_list("files")
    for j, name in enumerate(files):
        if ".." in name or not (root / "stubs" / name).is_file():
            raise c.err(f"files[{j}]", f"no such stub missions/{mid}/stubs/{name}")
    return Checkpoint(
        id=cid, title=c.get("title", str, check=str.strip), checks=checks, files=files,
        hints=c.str_list("hints"),
        timeout=float(c.get("timeout", (int, float), required=False, default=default_timeout,
                            check=lambda n: n > 0, hint="seconds, > 0")),
        forbid_calls=tuple(dict.fromkeys(default_forbid_calls + c.str_list(
            "forbid_calls", check=lambda s: "." in s, hint="a dotted path"))),
        bonus=c.get("bonus", bool, required=False, default=False),
    )


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(MISSIONS_DIR.parent))
    except ValueError:
        return str(path)


@lru_cache(maxsize=4)
def _load_all(missions_dir: Path) -> tuple[tuple[Mission, ...], tuple[str, ...]]:
    missions, errors = [], []
    for root in sorted(p for p in missions_dir.iterdir() if (p / "mission.toml").exists()):
        try:
            missions.append(load_mission(root))
        except MissionError as e:
            errors.append(str(e))
    orders: dict[int, str] = {}
    for m in missions:
        if m.order in orders:
            errors.append(f"missions/{m.id}/mission.toml: order: {m.order} is also used by {orders[m.order]!r}")
        orders[m.order] = m.id
    missions.sort(key=lambda m: (m.order, m.id))
    return tuple(missions), tuple(errors)


def load_all(missions_dir: Path | None = None) -> tuple[list[Mission], list[str]]:
    """All valid missions in order, plus one error line per broken mission (never raises)."""
    missions, errors = _load_all(Path(missions_dir or MISSIONS_DIR))
    return list(missions), list(errors)


def get(mission_id: str, missions_dir: Path | None = None) -> Mission:
    missions, errors = load_all(missions_dir)
    for m in missions:
        if m.id == mission_id:
            return m
    for e in errors:
        if e.startswith(f"missions/{mission_id}/"):
            raise MissionError(e)
    raise MissionError(f"no mission {mission_id!r} (known: {', '.join(m.id for m in missions)})")
