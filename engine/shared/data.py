"""Data loaders for the missions: MNIST digits and the Shakespeare text, read through `datasets`.

    from engine.shared.data import load_mnist, load_text
    X, y = load_mnist("train")          # X: (4000, 784) uint8, y: (4000,) int64 - the bundled subset
    X, y = load_mnist("test", full=True) # (10000, 784) from the Hugging Face hub when online, cached
    text = load_text("train")            # str, ~4.6 MB of Shakespeare

Both go through `datasets.load_dataset` on the bundled files in assets/, so the same code path reads
the full MNIST from the hub ("ylecun/mnist") when a network is there. The bundled data always works
offline; asking for the full set offline prints one line and falls back to it, it never hangs:
HF_HUB_OFFLINE / HF_DATASETS_OFFLINE are honoured, and the hub is probed with a short timeout first.

Set LLM_LAB_MNIST_FULL=1 to make full=True the default. The full set is cached as uint8 arrays in
$LLM_LAB_CACHE (default ~/.cache/llm-lab), so a second load is instant.

Not handled: other MNIST mirrors, partial downloads (a failed download falls back to the subset),
other text corpora. Decoding the hub's PNG images needs Pillow.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np

MNIST_HUB_ID = "ylecun/mnist"
MNIST_SPLITS = {"train": "train", "test": "test", "val": "test"}
TEXT_SPLITS = ("train", "val")
PROBE_TIMEOUT_S = 3.0

_said: set[str] = set()


def assets_dir() -> Path:
    """The assets/ folder: package data next to engine/, found through importlib when installed."""
    try:
        from importlib.resources import files
        path = Path(str(files("assets")))
        if (path / "mnist").is_dir():
            return path
    except (ImportError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent.parent / "assets"


def _say_once(key: str, message: str) -> None:
    if key not in _said:
        _said.add(key)
        print(f"[llm-lab data] {message}", file=sys.stderr, flush=True)


def _datasets():
    """Import `datasets` lazily (it takes about a second) and keep it quiet."""
    import datasets
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


# -- MNIST ------------------------------------------------------------------------------------------
def load_mnist(split: str = "train", *, full: bool | None = None,
               scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split: X (N, 784) row-major 28x28, y (N,) int64 in 0..9.

    split: "train" or "test" ("val" is an alias of "test").
    full:  False -> the bundled subset (4,000 train / 1,000 test, stratified, see assets/mnist);
           True  -> the full 60,000 / 10,000 from the hub, falling back to the subset offline;
           None  -> True if the environment variable LLM_LAB_MNIST_FULL is "1".
    scale: False -> X is uint8 in 0..255; True -> float32 in [0, 1].
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"load_mnist: split must be one of {sorted(MNIST_SPLITS)}, got {split!r}")
    split = MNIST_SPLITS[split]
    if full is None:
        full = os.environ.get("LLM_LAB_MNIST_FULL") == "1"
    X = y = None
    if full:
        X, y = _full_mnist(split)
    if X is None:
        X, y = _bundled_mnist(split)
        if not full:
            _say_once("mnist-bundled", "MNIST: using the bundled subset (4,000 train / 1,000 test); "
                      "load_mnist(..., full=True) fetches the full 60k/10k when online")
    return (X.astype(np.float32) / 255.0 if scale else X), y


def _bundled_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    datasets = _datasets()
    path = assets_dir() / "mnist" / f"{split}.parquet"
    try:
        ds = datasets.load_dataset("parquet", data_files={split: str(path)}, split=split)
        table = ds.with_format("numpy")[:]
        pixels, labels = table["pixels"], table["label"]
    except OSError:  # no writable cache folder: stream the file instead (no cache needed)
        ds = datasets.load_dataset("parquet", data_files={split: str(path)}, split=split, streaming=True)
        rows = list(ds)
        pixels = np.array([r["pixels"] for r in rows])
        labels = np.array([r["label"] for r in rows])
    return np.ascontiguousarray(pixels, dtype=np.uint8), np.asarray(labels, dtype=np.int64)


def _offline_reason() -> str | None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    try:
        socket.create_connection((name, int(port or 443)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        return f"{name} is not reachable ({type(e).__name__})"
    return None


def _cache_dir() -> Path:
    return Path(os.environ.get("LLM_LAB_CACHE") or Path.home() / ".cache" / "llm-lab")


def _full_mnist(split: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    cached = _cache_dir() / f"mnist-full-{split}.npz"
    if cached.is_file():
        with np.load(cached) as f:
            return f["X"], f["y"]
    fallback = "using the bundled subset (4,000 train / 1,000 test) instead"
    reason = _offline_reason()
    if reason is not None:
        _say_once("mnist-offline", f"MNIST: full data set unavailable: {reason}; {fallback}")
        return None, None
    try:
        from PIL import Image  # the hub stores each digit as a PNG
    except ImportError:
        _say_once("mnist-pil", f"MNIST: decoding the full set needs Pillow (a dependency of llm-lab; reinstall it); {fallback}")
        return None, None
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    try:
        import io
        datasets = _datasets()
        _say_once("mnist-fetch", f"MNIST: fetching the full {split} split from {MNIST_HUB_ID} (once)")
        ds = datasets.load_dataset(MNIST_HUB_ID, split=split)
        ds = ds.cast_column("image", datasets.Image(decode=False))
        X = np.stack([np.asarray(Image.open(io.BytesIO(img["bytes"])), dtype=np.uint8).reshape(784)
                      for img in ds["image"]])
        y = np.asarray(ds["label"], dtype=np.int64)
    except Exception as e:  # network drop, hub change: never leave the learner without data
        _say_once("mnist-error", f"MNIST: fetching the full set failed ({type(e).__name__}: {e}); {fallback}")
        return None, None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, X=X, y=y)
    except OSError:
        pass
    return X, y


# -- text -------------------------------------------------------------------------------------------
def text_path(split: str = "train") -> Path:
    """The bundled Shakespeare file of a split ("train" or "val")."""
    if split not in TEXT_SPLITS:
        raise ValueError(f"load_text: split must be one of {TEXT_SPLITS}, got {split!r}")
    return assets_dir() / "shakespeare" / f"{split}.txt"


def load_text(split: str = "train") -> str:
    """The Shakespeare corpus of one split as one string (train ~4.6 MB, val ~0.46 MB; see
    assets/shakespeare/README.md). Read through `datasets` in streaming mode: no cache is written."""
    path = text_path(split)
    ds = _datasets().load_dataset("text", data_files={split: str(path)}, split=split,
                                  sample_by="document", streaming=True)
    return "".join(row["text"] for row in ds)
