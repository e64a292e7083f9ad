"""Fill an annotation CSV's ``label`` column from the YouTube raw CSVs' ``CLASS`` column.

Stands in for a person in the README's loop on YouTube: the comments ``lakelabel annotate`` picked
get the label the dataset's authors gave them (``CLASS``: 0 ham, 1 spam). Reads the raw CSVs at
run time (``LAKELABEL_DATA``, default ``../shared/data``); nothing is copied into the repo.

    python benchmarks/youtube_gold_labels.py --todo to_label.csv --out labeled.csv
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

import pandas as pd

NAMES = {"0": "ham", "1": "spam"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--todo", required=True, help="CSV written by `lakelabel annotate --format csv`")
    parser.add_argument("--out", required=True, help="the same rows with label (and annotator) filled")
    parser.add_argument("--data", default=os.environ.get("LAKELABEL_DATA", "../shared/data"),
                        help="folder holding youtube_spam/ (default $LAKELABEL_DATA or ../shared/data)")
    parser.add_argument("--videos", default="Youtube0[1-4]-*.csv", help="raw CSVs to read (default videos 1-4)")
    args = parser.parse_args(argv)
    files = sorted(glob.glob(str(Path(args.data) / "youtube_spam" / args.videos)))
    if not files:
        print(f"no raw CSVs match {Path(args.data) / 'youtube_spam' / args.videos}; pass --data", file=sys.stderr)
        return 2
    raw = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files]).drop_duplicates("COMMENT_ID")
    truth = dict(zip(raw.COMMENT_ID, raw.CLASS.map(NAMES)))
    todo = pd.read_csv(args.todo, dtype=str, keep_default_na=False)
    missing = sorted(set(todo.row_id) - set(truth))
    if missing:
        print(f"{len(missing)} row_id(s) of {args.todo} are not in {files}, e.g. {missing[:3]}", file=sys.stderr)
        return 2
    todo["label"] = todo.row_id.map(truth)
    todo["annotator"] = "uci-class-column"
    todo.to_csv(args.out, index=False)
    print(f"labeled {len(todo)} row(s) -> {args.out}: {todo.label.value_counts().to_dict()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
