"""Real data and models ship and work offline: every asset loads in a clean environment with the hub
switched off, has the row counts its README documents and a licence file, the tiny GPT-2 reaches the
validation loss its README reports and writes recognisable text, and MiniLM's sentence embeddings
put "a great film" nearer "a wonderful movie" than "a tax form".

One child process (python -I, empty HOME, HF_HUB_OFFLINE=1) loads everything once, so torch and
transformers are imported once; the tests read its JSON report.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
TINY = ASSETS / "models" / "tiny-gpt2"

# folder -> {file or split: rows}; the same numbers are written in each folder's README.md
ROWS = {
    "movie_reviews": {"train": 8056, "validation": 1007, "test": 1007},
    "qa_pairs": {"qa_pairs.jsonl": 897},
    "profanity": {"words.jsonl": 916},
    "scaling": {"isoflops_curves.jsonl": 72},
    "gpt2_tokenizer": {"gpt2.tiktoken": 50256},
}

CHILD = r'''
import json, sys, time
t0 = time.perf_counter()
import engine.shared.corpora as C
import engine.shared.models as M
r = {"heavy_on_import": sorted(m for m in ("torch", "transformers", "datasets") if m in sys.modules)}

t = time.perf_counter()
rev = C.movie_reviews()
r["movie_rows"] = {s: rev[s].num_rows for s in rev}
r["movie_columns"] = rev["train"].column_names
r["movie_label_names"] = rev["train"].features["label"].names
rows = [x for s in rev for x in rev[s]]
r["movie_types"] = sorted({(type(x["text"]).__name__, type(x["valence"]).__name__, type(x["label"]).__name__) for x in rows})
r["movie_label_rule_breaks"] = sum((x["label"] == 1) != (x["valence"] >= 0.5) or (x["label"] == 0) != (x["valence"] <= -0.5) for x in rows)
r["movie_valence_range"] = [min(x["valence"] for x in rows), max(x["valence"] for x in rows)]
texts = {s: set(rev[s]["text"]) for s in rev}
r["movie_split_overlap"] = len(texts["train"] & texts["test"]) + len(texts["train"] & texts["validation"]) + len(texts["validation"] & texts["test"])
qa = C.qa_pairs()
r["qa_rows"], r["qa_columns"] = qa.num_rows, qa.column_names
r["qa_empty"] = sum(not x["question"].strip() or not x["answer"].strip() for x in qa)
r["profanity_rows"] = len(C.profanity_words())
runs = C.isoflops_runs()
r["isoflops_rows"], r["isoflops_columns"] = runs.num_rows, runs.column_names
budgets = {}
for x in runs:
    budgets[x["compute_budget"]] = budgets.get(x["compute_budget"], 0) + 1
r["isoflops_per_budget"] = sorted(budgets.values())
r["constants"] = C.scaling_constants()
enc = C.gpt2_encoding()
r["gpt2_hello"] = enc.encode("Hello world")
r["gpt2_eot"] = enc.encode("<|endoftext|>", allowed_special="all")
try:
    C.imdb()
    r["imdb_offline"] = "loaded"
except C.DataUnavailable as e:
    r["imdb_offline"] = str(e)
r["data_seconds"] = time.perf_counter() - t

import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer, GPT2LMHeadModel
torch.set_num_threads(1)

t = time.perf_counter()
path = M.tiny_gpt2_path()
tok = AutoTokenizer.from_pretrained(path)
model = GPT2LMHeadModel.from_pretrained(path).eval()
r["tiny_load_seconds"] = time.perf_counter() - t
r["tiny_conv1d"] = type(model.transformer.h[0].attn.c_attn).__name__
r["tiny_params"] = sum(p.numel() for p in model.parameters())
T, n = model.config.n_positions, json.loads((path / "eval.json").read_text())["first_windows"]
val = (M.assets_dir() / "shakespeare" / "val.txt").read_text(encoding="utf-8")
ids = torch.tensor(tok(val[:60000])["input_ids"][: n * T + 1])
windows = torch.stack([ids[i * T: i * T + T + 1] for i in range(n)])
with torch.no_grad():
    logits = model(input_ids=windows[:, :-1]).logits
r["tiny_val_loss_first_windows"] = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()).item()
r["tiny_roundtrip"] = tok.decode(tok("Friends, Romans, caf\u00e9 \U0001F600")["input_ids"])
torch.manual_seed(0)
prompt = tok(["ROMEO:\n"] * 3, return_tensors="pt")
out = model.generate(**prompt, max_new_tokens=100, do_sample=True, top_k=50, temperature=0.8,
                     pad_token_id=tok.eos_token_id)
r["tiny_samples"] = [tok.decode(o[prompt["input_ids"].shape[1]:], skip_special_tokens=True) for o in out]

t = time.perf_counter()
mpath = M.minilm_path()
mtok = AutoTokenizer.from_pretrained(mpath)
enc_model = AutoModel.from_pretrained(mpath).eval()
r["minilm_load_seconds"] = time.perf_counter() - t
sentences = ["a great film", "a wonderful movie", "a tax form"]
batch = mtok(sentences, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = enc_model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
emb = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
r["minilm_cos_wonderful"] = float(emb[0] @ emb[1])
r["minilm_cos_tax"] = float(emb[0] @ emb[2])
r["smollm2_path"] = None if M.smollm2_path() is None else str(M.smollm2_path())
r["encoder_minilm"] = str(M.encoder_path("minilm"))
try:
    M.encoder_path("distilbert")
    r["encoder_distilbert"] = "returned"
except M.ModelUnavailable as e:
    r["encoder_distilbert"] = str(e)
r["total_seconds"] = time.perf_counter() - t0
print("REPORT " + json.dumps(r))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    home = tmp_path_factory.mktemp("clean-home")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LLM_LAB_CACHE": str(home / "llm-lab"),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-I", "-c", CHILD], cwd=home, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"the offline child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("REPORT "):])


def _readme(folder: str) -> str:
    return (ASSETS / folder / "README.md").read_text(encoding="utf-8")


# -- files, licences, documentation -------------------------------------------------------------------
@pytest.mark.parametrize("folder", [*ROWS, "models/tiny-gpt2"])
def test_each_asset_has_a_readme_and_a_licence(folder):
    path = ASSETS / folder
    assert (path / "README.md").is_file(), f"{folder}: README.md missing"
    assert (path / "LICENSE.txt").is_file() and (path / "LICENSE.txt").stat().st_size > 200, f"{folder}: LICENSE.txt missing"
    text = _readme(folder)
    for word in ("Source", "Licence", "How it was made"):
        assert f"## {word}" in text, f"{folder}/README.md has no '## {word}' section"
    assert re.search(r"python assets/make_\w+\.py", text), f"{folder}/README.md does not name the script that made it"


@pytest.mark.parametrize("folder", ROWS)
def test_documented_row_counts_are_in_the_readme(folder):
    text = _readme(folder)
    for name, rows in ROWS[folder].items():
        assert f"{rows:,}" in text, f"{folder}/README.md does not state the {rows:,} rows of {name}"


def test_file_row_counts():
    assert len((ASSETS / "gpt2_tokenizer" / "gpt2.tiktoken").read_bytes().splitlines()) == 50256
    for folder in ("qa_pairs", "profanity", "scaling"):
        for name, rows in ROWS[folder].items():
            lines = (ASSETS / folder / name).read_text(encoding="utf-8").splitlines()
            assert len(lines) == rows, f"{folder}/{name}: {len(lines)} lines, README says {rows}"


# -- data sets, loaded offline ----------------------------------------------------------------------
def test_importing_the_loaders_is_light(report):
    assert report["heavy_on_import"] == [], f"engine.shared.corpora/models import {report['heavy_on_import']} at module level"


def test_movie_reviews(report):
    assert report["movie_rows"] == ROWS["movie_reviews"]
    assert report["movie_columns"] == ["text", "valence", "label"]
    assert report["movie_label_names"] == ["negative", "positive"]
    assert report["movie_types"] == [["str", "float", "int"]]
    assert report["movie_label_rule_breaks"] == 0, "label is not 1 for valence >= 0.5 and 0 for <= -0.5"
    low, high = report["movie_valence_range"]
    assert -3.9 <= low <= -3.5 and 3.5 <= high <= 3.95, (low, high)
    assert report["movie_split_overlap"] == 0, "a sentence is in two splits"


def test_qa_profanity_isoflops(report):
    assert (report["qa_rows"], report["qa_columns"], report["qa_empty"]) == (897, ["question", "answer", "category"], 0)
    assert report["profanity_rows"] == 916
    assert report["isoflops_rows"] == 72
    assert sorted(report["isoflops_columns"]) == ["compute_budget", "final_loss", "parameters"]
    assert report["isoflops_per_budget"] == [8] * 9, "9 compute budgets x 8 model sizes"


def test_scaling_constants_are_the_published_ones(report):
    c = report["constants"]
    h, b, k = c["hoffmann2022"], c["besiroglu2024"], c["kaplan2020"]
    assert (h["E"], h["A"], h["B"], h["alpha"], h["beta"]) == (1.69, 406.4, 410.7, 0.34, 0.28)
    assert (b["E"], b["A"], b["B"], b["alpha"], b["beta"]) == (1.8172, 482.01, 2085.43, 0.3478, 0.3658)
    assert (k["loss_vs_params"]["alpha_N"], k["loss_vs_params"]["N_c"]) == (0.076, 8.8e13)
    assert (k["loss_vs_data"]["alpha_D"], k["loss_vs_data"]["D_c"]) == (0.095, 5.4e13)


def test_gpt2_tokenizer_offline(report):
    assert report["gpt2_hello"] == [15496, 995]
    assert report["gpt2_eot"] == [50256]


def test_hub_sets_say_clearly_that_they_are_offline(report):
    msg = report["imdb_offline"]
    assert "HF_HUB_OFFLINE" in msg and "movie_reviews()" in msg, msg


# -- models -----------------------------------------------------------------------------------------
def _eval_record() -> dict:
    return json.loads((TINY / "eval.json").read_text(encoding="utf-8"))


def test_tiny_gpt2_validation_loss_matches_its_readme(report):
    rec = _eval_record()
    readme = _readme("models/tiny-gpt2")
    assert f"{rec['val_loss']:.4f}" in readme, "models/tiny-gpt2/README.md does not state eval.json's val_loss"
    assert f"{rec['val_loss_first_windows']:.4f}" in readme
    # 1e-3: the same weights and tokens; only float summation order (BLAS build, threads) may differ,
    # which moves a mean cross-entropy by ~1e-6. A different model or tokenizer moves it by > 0.05.
    assert abs(report["tiny_val_loss_first_windows"] - rec["val_loss_first_windows"]) < 1e-3, (
        report["tiny_val_loss_first_windows"], rec["val_loss_first_windows"])


def test_tiny_gpt2_is_a_real_hf_gpt2(report):
    assert report["tiny_conv1d"] == "Conv1D"
    assert report["tiny_params"] == _eval_record()["parameters"]
    assert report["tiny_roundtrip"] == "Friends, Romans, caf\u00e9 \U0001F600", "the byte-level tokenizer does not round-trip"


def test_tiny_gpt2_writes_recognisable_text(report):
    """Most words of three samples (100 tokens each, temperature 0.8) are words of Shakespeare's
    vocabulary: 0.67-0.80 measured over five seeds. A freshly initialised model with the same
    tokenizer strings BPE pieces together at random and scores 0.37-0.43."""
    samples = report["tiny_samples"]
    known = set(re.findall(r"[a-z']+", (ASSETS / "shakespeare" / "train.txt").read_text(encoding="utf-8").lower()))
    words = [w for s in samples for w in re.findall(r"[a-z']+", s.lower())]
    assert len(words) >= 60, f"too few words in the samples: {samples!r}"
    share = sum(w in known for w in words) / len(words)
    assert share >= 0.6, f"only {share:.0%} of the samples' words are real words: {samples!r}"


def test_minilm_embeddings_rank_by_meaning(report):
    assert report["minilm_cos_wonderful"] > report["minilm_cos_tax"] + 0.3, report
    assert report["encoder_minilm"].endswith("model")


def test_optional_and_hub_models_say_why_they_are_absent(report):
    assert report["smollm2_path"] is None        # empty cache in the clean environment
    assert "HF_HUB_OFFLINE" in report["encoder_distilbert"] and "minilm" in report["encoder_distilbert"]


def test_models_cli_lists_every_model(capsys):
    from engine.shared import models
    assert models.cli(["models"]) == 0
    out = capsys.readouterr().out
    for name in models.MODELS:
        assert name in out
    line = {row.split()[0]: row for row in out.splitlines() if row.strip()}
    assert " yes " in line["tiny-gpt2"] and " yes " in line["minilm"], out
    assert models.cli(["fetch", "nonsense"]) == 2
    assert models.cli(["path", "tiny-gpt2"]) == 0
    assert capsys.readouterr().out.strip().endswith("tiny-gpt2")


def test_smollm2_when_fetched():
    """Optional: only after `llm-lab models fetch smollm2` (needs the network once); CI never fetches it."""
    from engine.shared.models import smollm2_path
    path = smollm2_path()
    if path is None:
        pytest.skip("smollm2 not fetched (llm-lab models fetch smollm2 needs the network once)")
    code = ("import sys, torch; from transformers import AutoModelForCausalLM, AutoTokenizer; p = sys.argv[1]; "
            "tok = AutoTokenizer.from_pretrained(p); m = AutoModelForCausalLM.from_pretrained(p).eval(); "
            "x = tok.apply_chat_template([{'role': 'user', 'content': 'What is the capital of France?'}], "
            "add_generation_prompt=True, return_tensors='pt', return_dict=True); "
            "out = m.generate(**x, max_new_tokens=16, do_sample=False); "
            "print(tok.decode(out[0, x['input_ids'].shape[1]:], skip_special_tokens=True))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Paris" in proc.stdout, proc.stdout
