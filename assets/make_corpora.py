"""Build the small real data sets in assets/ from the packages and the repository they come from.

Run once, by hand; the outputs are committed, so nothing here runs at lab time.

    pip download --no-deps --no-binary :all: -d /tmp/src \\
        vaderSentiment==3.3.2 chatterbot-corpus==1.3.3 better-profanity==0.7.0 openai-whisper==20250625
    curl -L -o /tmp/src/isoflops_curves.json \\
        https://raw.githubusercontent.com/stanford-cs336/assignment3-scaling/09d205bde59e5c533368c0209dc86a4d5e4323ea/data/isoflops_curves.json
    python assets/make_corpora.py /tmp/src

What it writes (each folder has a README.md naming source, licence and row counts, and a licence file):
  movie_reviews/{train,validation,test}.parquet  Rotten Tomatoes sentences with mean human valence
  qa_pairs/qa_pairs.jsonl                        English question -> answer pairs (chatterbot-corpus)
  profanity/words.jsonl                          better-profanity's word list
  scaling/isoflops_curves.jsonl                  CS336 assignment 3's 72 isoFLOP training runs
  gpt2_tokenizer/gpt2.tiktoken                   GPT-2's 50,256 BPE ranks (from openai-whisper)
scaling/constants.json (published fits) and the README files are written by hand, not by this script.
It is deterministic: running it again gives the same files.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240613                 # the movie-review split permutation (any fixed number would do)
NEUTRAL_BAND = 0.5              # |mean valence| below this: raters did not agree on a side, dropped
SPLIT_SHARES = (0.8, 0.1, 0.1)  # train / validation / test
R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"  # tiktoken's own check


def _sdist(src: Path, prefix: str) -> tarfile.TarFile:
    found = sorted(src.glob(f"{prefix}*.tar.gz"))
    if not found:
        sys.exit(f"no {prefix}*.tar.gz in {src}: run the pip download line in this script's docstring")
    return tarfile.open(found[-1])


def _member(tar: tarfile.TarFile, suffix: str) -> bytes:
    for m in tar.getmembers():
        if m.name.endswith(suffix):
            return tar.extractfile(m).read()
    sys.exit(f"{suffix} not found in {tar.name}")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# -- movie reviews --------------------------------------------------------------------------------
def movie_reviews(src: Path) -> None:
    """The 10,605 sentences of movieReviewSnippets_GroundTruth.txt (id, mean valence, text), which sits
    in a tarball inside the vaderSentiment sdist. Label 1 if valence >= +0.5, 0 if <= -0.5; sentences
    in between and second copies of a sentence are dropped; the rest is split 80/10/10 at random."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    inner = _member(_sdist(src, "vaderSentiment-3.3.2"), "hutto_ICWSM_2014.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(inner)) as tar:
        raw = _member(tar, "movieReviewSnippets_GroundTruth.txt").decode("utf-8")
    rows, seen, dropped_neutral, dropped_dup = [], set(), 0, 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        _, valence, text = line.split("\t")
        text, valence = text.strip(), float(valence)
        if abs(valence) < NEUTRAL_BAND:
            dropped_neutral += 1
            continue
        if text in seen:
            dropped_dup += 1
            continue
        seen.add(text)
        rows.append((text, round(valence, 6), int(valence > 0)))
    order = np.random.default_rng(SEED).permutation(len(rows))
    n_train, n_val = int(SPLIT_SHARES[0] * len(rows)), int(SPLIT_SHARES[1] * len(rows))
    parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_val],
             "test": order[n_train + n_val:]}
    out = HERE / "movie_reviews"
    out.mkdir(exist_ok=True)
    schema = pa.schema([("text", pa.string()), ("valence", pa.float64()), ("label", pa.int64())])
    for split, idx in parts.items():
        idx = sorted(int(i) for i in idx)        # keep the source order inside a split
        table = pa.table({"text": [rows[i][0] for i in idx], "valence": [rows[i][1] for i in idx],
                          "label": [rows[i][2] for i in idx]}, schema=schema)
        pq.write_table(table, out / f"{split}.parquet", compression="zstd")
        pos = sum(rows[i][2] for i in idx)
        print(f"movie_reviews/{split}: {len(idx)} rows ({pos} positive, {len(idx) - pos} negative)")
    print(f"movie_reviews: {dropped_neutral} near-neutral and {dropped_dup} repeated sentences dropped")
    (out / "LICENSE.txt").write_bytes(_member(_sdist(src, "vaderSentiment-3.3.2"), "vaderSentiment-3.3.2/LICENSE.txt"))


# -- question / answer pairs ----------------------------------------------------------------------
def qa_pairs(src: Path) -> None:
    """The first two turns of every English conversation in chatterbot-corpus, as (question, answer,
    category); exact repeats dropped (tech_support.yml repeats 10 pairs 105 times each)."""
    import yaml

    tar = _sdist(src, "chatterbot_corpus-1.3.3")
    files = sorted((m for m in tar.getmembers()
                    if "/chatterbot_corpus/data/english/" in m.name and m.name.endswith(".yml")),
                   key=lambda m: m.name)
    rows, seen, skipped = [], set(), 0
    for m in files:
        doc = yaml.safe_load(tar.extractfile(m).read().decode("utf-8"))
        category = str(doc["categories"][0])
        for conv in doc["conversations"]:
            if not isinstance(conv, list) or len(conv) < 2:   # one malformed entry in trivia.yml
                skipped += 1
                continue
            q, a = " ".join(str(conv[0]).split()), " ".join(str(conv[1]).split())
            if (q, a) in seen:
                continue
            seen.add((q, a))
            rows.append({"question": q, "answer": a, "category": category})
    _write_jsonl(HERE / "qa_pairs" / "qa_pairs.jsonl", rows)
    print(f"qa_pairs: {len(rows)} rows from {len(files)} files ({skipped} malformed entries skipped)")


# -- profanity ------------------------------------------------------------------------------------
def profanity(src: Path) -> None:
    raw = _member(_sdist(src, "better_profanity-0.7.0"), "better_profanity/profanity_wordlist.txt")
    words = [w.strip() for w in raw.decode("utf-8").splitlines() if w.strip()]
    _write_jsonl(HERE / "profanity" / "words.jsonl", [{"word": w} for w in words])
    print(f"profanity: {len(words)} words")


# -- scaling runs ---------------------------------------------------------------------------------
def isoflops(src: Path) -> None:
    path = src / "isoflops_curves.json"
    if not path.is_file():
        sys.exit(f"{path} missing: run the curl line in this script's docstring")
    runs = json.loads(path.read_text())
    rows = [{"compute_budget": float(r["compute_budget"]), "parameters": int(r["parameters"]),
             "final_loss": float(r["final_loss"])} for r in runs]
    _write_jsonl(HERE / "scaling" / "isoflops_curves.jsonl", rows)
    print(f"scaling: {len(rows)} runs, {len({r['compute_budget'] for r in rows})} compute budgets")


# -- GPT-2's BPE ranks ----------------------------------------------------------------------------
def gpt2_ranks(src: Path) -> None:
    tar = _sdist(src, "openai_whisper-20250625")
    data = _member(tar, "whisper/assets/gpt2.tiktoken")
    if hashlib.sha256(data).hexdigest() != R50K_SHA256:
        sys.exit("whisper/assets/gpt2.tiktoken does not have the sha256 tiktoken expects for GPT-2")
    out = HERE / "gpt2_tokenizer"
    out.mkdir(exist_ok=True)
    (out / "gpt2.tiktoken").write_bytes(data)
    (out / "LICENSE.txt").write_bytes(_member(tar, "openai_whisper-20250625/LICENSE"))
    print(f"gpt2_tokenizer: {len(data.splitlines())} ranks, sha256 matches tiktoken's r50k_base")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    source = Path(sys.argv[1])
    for build in (movie_reviews, qa_pairs, profanity, isoflops, gpt2_ranks):
        build(source)
