"""Real text and numbers for the missions, read through `datasets` from small files in assets/.

    from engine.shared.corpora import movie_reviews, qa_pairs, gpt2_encoding
    reviews = movie_reviews()          # DatasetDict train 8,056 / validation 1,007 / test 1,007
    reviews["train"][0]                # {'text': ..., 'valence': 2.27, 'label': 1}
    qa = qa_pairs()                    # Dataset: question, answer, category (897 rows)
    enc = gpt2_encoding()              # GPT-2's own BPE, offline: enc.encode("Hello world") == [15496, 995]

What each set is (assets/<folder>/README.md has the source, licence, counts and the script):
  movie_reviews()    Rotten Tomatoes sentences, each with the mean valence (-3.9 .. +3.9) that about 20
                     human raters gave it (Hutto & Gilbert 2014, shipped in the vaderSentiment sdist).
                     label = 1 (positive) if valence >= +0.5, 0 (negative) if valence <= -0.5; the 533
                     sentences in between were dropped when the files were made, because raters did not
                     agree on a side and a 0/1 label there would be a coin toss. Splits are fixed.
  qa_pairs()         English question -> answer pairs from chatterbot-corpus (first two turns of each
                     conversation; repeats dropped).
  profanity_words()  better-profanity's 916-word list (for reward models and filters).
  isoflops_runs()    CS336 assignment 3's 72 training runs: compute_budget (FLOP), parameters,
                     final_loss; 9 budgets x 8 model sizes.
  scaling_constants()  published fits: Kaplan 2020, Hoffmann 2022 (Chinchilla, approach 3) and the
                     2024 refit by Besiroglu et al.
  gpt2_encoding()    tiktoken.Encoding with GPT-2's 50,256 ranks + <|endoftext|> = 50256
                     (gpt2_ranks(): the ranks alone, {token bytes: id}).
With a network, imdb() and hh_rlhf() fetch larger sets from the Hugging Face hub once and keep a copy
in $LLM_LAB_CACHE (default ~/.cache/llm-lab); offline and not yet cached they raise DataUnavailable
with the reason, never hang.

Not handled: other languages of chatterbot-corpus, the per-rater scores of the movie sentences (only
their mean), streaming of the hub sets, partial downloads (a failed fetch leaves no copy behind).
"""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

from .data import _cache_dir, _datasets, _offline_reason, _say_once, assets_dir

NEUTRAL_BAND = 0.5              # |valence| < 0.5 was dropped from movie_reviews (see above)
MOVIE_SPLITS = ("train", "validation", "test")
MOVIE_ROWS = {"train": 8056, "validation": 1007, "test": 1007}
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_EOT = "<|endoftext|>"
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"  # = tiktoken's r50k_base


class DataUnavailable(RuntimeError):
    """A data set that needs the network is not cached and the network is not there."""


def _load(builder: str, files: dict[str, Path], features=None):
    """A DatasetDict of local files through datasets.load_dataset; if no cache folder is writable, the
    same rows through an in-memory Arrow table (still a datasets.Dataset)."""
    datasets = _datasets()
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing data file(s) {missing}: reinstall llm-lab or rebuild with "
                                "assets/make_corpora.py (see its docstring)")
    try:
        return datasets.load_dataset(builder, data_files={k: str(p) for k, p in files.items()},
                                     features=features)
    except (OSError, PermissionError):
        import pyarrow.json as pj
        import pyarrow.parquet as pq
        read = pq.read_table if builder == "parquet" else pj.read_json
        ds = datasets.DatasetDict({k: datasets.Dataset(read(str(p))) for k, p in files.items()})
        return ds.cast(features) if features is not None else ds


def movie_reviews():
    """Rotten Tomatoes review sentences with human valence: DatasetDict with splits train (8,056),
    validation (1,007), test (1,007); columns text (str), valence (float, mean rating, -3.9 .. +3.9),
    label (int: 1 positive if valence >= +0.5, 0 negative if <= -0.5; near-neutral ones are not in)."""
    datasets = _datasets()
    folder = assets_dir() / "movie_reviews"
    features = datasets.Features({"text": datasets.Value("string"), "valence": datasets.Value("float64"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    return _load("parquet", {s: folder / f"{s}.parquet" for s in MOVIE_SPLITS}, features)


def qa_pairs():
    """English question/answer pairs (chatterbot-corpus 1.3.3): Dataset with question, answer, category."""
    return _load("json", {"train": assets_dir() / "qa_pairs" / "qa_pairs.jsonl"})["train"]


def profanity_words() -> list[str]:
    """better-profanity 0.7.0's word list (916 entries, lower case, some with spaces)."""
    return list(_load("json", {"train": assets_dir() / "profanity" / "words.jsonl"})["train"]["word"])


def isoflops_runs():
    """CS336 (2025) assignment 3's isoFLOP runs: Dataset of 72 rows with compute_budget (FLOP, float),
    parameters (int) and final_loss (float)."""
    return _load("json", {"train": assets_dir() / "scaling" / "isoflops_curves.jsonl"})["train"]


def scaling_constants() -> dict:
    """Published scaling-law fits as plain data: {"kaplan2020": {...}, "hoffmann2022": {...},
    "besiroglu2024": {...}}; each names its paper, units and formula. E.g.
    scaling_constants()["hoffmann2022"]["alpha"] == 0.34."""
    return json.loads((assets_dir() / "scaling" / "constants.json").read_text(encoding="utf-8"))


def gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's 50,256 mergeable ranks {token bytes: id} from assets/gpt2_tokenizer/gpt2.tiktoken (checked
    against the sha256 tiktoken itself expects for GPT-2's r50k_base). Ids 0..255 are the single
    bytes, but not in byte order; <|endoftext|> (50256) is not in it."""
    path = assets_dir() / "gpt2_tokenizer" / "gpt2.tiktoken"
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != GPT2_RANKS_SHA256:
        raise ValueError(f"{path} is not GPT-2's rank file (sha256 differs); reinstall llm-lab")
    ranks = {}
    for line in data.splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return ranks


def gpt2_encoding():
    """GPT-2's own tokenizer as a tiktoken.Encoding, offline: GPT-2's split pattern, gpt2_ranks(), and
    <|endoftext|> = 50256. gpt2_encoding().encode("Hello world") == [15496, 995]."""
    import tiktoken
    ranks = gpt2_ranks()
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                             special_tokens={GPT2_EOT: len(ranks)}, explicit_n_vocab=len(ranks) + 1)


# -- larger sets, with a network ------------------------------------------------------------------
def _hub(name: str, hub_id: str, offline_alternative: str):
    """A hub data set as a DatasetDict, fetched once and kept in $LLM_LAB_CACHE/datasets/<name>."""
    datasets = _datasets()
    cached = _cache_dir() / "datasets" / name
    if (cached / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(cached))
    reason = _offline_reason()
    if reason is not None:
        raise DataUnavailable(f"{name} ({hub_id}) is not cached and the hub is unavailable: {reason}. "
                              f"Connect once to fetch it; offline, {offline_alternative}")
    _say_once(name, f"{name}: fetching {hub_id} from the Hugging Face hub (once)")
    ds = datasets.load_dataset(hub_id)
    tmp = cached.with_name(cached.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    tmp.replace(cached)
    return datasets.load_from_disk(str(cached))


def imdb():
    """IMDB reviews (stanfordnlp/imdb: 25,000 train / 25,000 test / 50,000 unlabelled; text, label),
    fetched once; offline and not cached: DataUnavailable."""
    return _hub("imdb", "stanfordnlp/imdb", "movie_reviews() has 10,070 rated review sentences bundled")


def hh_rlhf():
    """Anthropic HH-RLHF preference pairs (Anthropic/hh-rlhf: train / test; chosen, rejected),
    fetched once; offline and not cached: DataUnavailable."""
    return _hub("hh-rlhf", "Anthropic/hh-rlhf", "qa_pairs() and profanity_words() are bundled")
