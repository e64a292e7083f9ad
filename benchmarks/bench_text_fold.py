"""What folding whitespace and apostrophes costs keyword and lexicon LFs (session 40).

Keyword, inline lexicon and lexicon-file LFs match their terms in the text as :func:`lf_library.builders.match_text`
gives it: NFC, each whitespace run one space, each apostrophe ``'``. Before session 40 the text was only put in
NFC. This script times the same LFs over the same Arrow batches both ways in one process: "fold" (the shipped
``match_text``) and "nfc only" (the earlier normalization, patched in), CPU seconds per row and LF, the best of
``--repeats`` passes. Two texts: the demo's generated tickets (ASCII, one line each) and the YouTube Spam
Collection's comments repeated to ``--youtube-copies`` times their 1,956 rows (non-ASCII in places, a fifth
with a line break, tab or double space); the YouTube part is skipped when ``--data`` has no ``youtube_spam``.

    python benchmarks/bench_text_fold.py [--rows 200000] [--batch 10000] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
import time
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.demo.data import generate_demo_rows  # noqa: E402
from lf_library import builders, matcher  # noqa: E402
from lf_library.builders import keyword_lf, lexicon_lf  # noqa: E402
from lf_library.lfs import demo  # noqa: E402

SPACE = ("billing", "technical", "shipping", "account")


def nfc_only(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The text as keyword and lexicon LFs saw it before session 40: NFC where a character may change."""
    if not builders._has_non_ascii(col):
        return col
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    mask = pc.match_substring_regex(col, builders._composable()).fill_null(False)
    if not pc.any(mask).as_py():
        return col
    fixed = [None if s is None else unicodedata.normalize("NFC", s) for s in col.filter(mask).to_pylist()]
    return pc.replace_with_mask(col, mask, pa.array(fixed, col.type))


def cpu_per_row(table: pa.Table, lfs: list, batch: int, repeats: int) -> float:
    batches = table.to_batches(max_chunksize=batch)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for b in batches:
            for lf in lfs:
                lf.evaluate_arrow(b)
        best = min(best, time.process_time() - t0)
    return best / table.num_rows / len(lfs) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="demo tickets")
    ap.add_argument("--batch", type=int, default=10_000, help="rows per Arrow batch (apply.batch_size)")
    ap.add_argument("--data", default="../shared/data", help="the folder holding youtube_spam/")
    ap.add_argument("--youtube-copies", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    demo_lfs = [demo.kw_billing_terms, demo.kw_technical_terms, demo.kw_account_terms, demo.lex_context,
                demo.kw_cancel, demo.kw_login_is_technical]
    for lf in demo_lfs:
        lf.label_space = SPACE
    cases = [("demo tickets", generate_demo_rows(args.rows, seed=0).select(["text"]), demo_lfs)]
    files = sorted(glob.glob(os.path.join(args.data, "youtube_spam", "*.csv")))
    if files:
        import pandas as pd

        comments = pd.concat(pd.read_csv(f) for f in files).CONTENT.astype(str).tolist() * args.youtube_copies
        youtube_lfs = [
            keyword_lf("kw", ["subscribe", "my channel", "check out", "please subscribe"], "billing", label_space=SPACE),
            lexicon_lf("lex", {"billing": ["i'm", "don't", "free"], "account": ["love", "song"]}, label_space=SPACE),
        ]
        cases.append(("YouTube comments", pa.table({"text": pa.array(comments, pa.string())}), youtube_lfs))
    else:
        print(f"no {args.data}/youtube_spam/*.csv: the YouTube comments are skipped", file=sys.stderr)

    print(f"# bench_text_fold: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"pyarrow {pa.__version__}; batches of {args.batch} rows, best of {args.repeats}")
    print("| text | rows | LFs | nfc only (us per row and LF) | fold | ratio |")
    print("|---|---|---|---|---|---|")
    shipped = builders.match_text
    for name, table, lfs in cases:
        times = {}
        for mode, fold in (("nfc only", nfc_only), ("fold", shipped)):
            builders.match_text = matcher.match_text = fold
            try:
                times[mode] = cpu_per_row(table, lfs, args.batch, args.repeats)
            finally:
                builders.match_text = matcher.match_text = shipped
        print(f"| {name} | {table.num_rows:,} | {len(lfs)} | {times['nfc only']:.3f} | {times['fold']:.3f} | "
              f"{times['fold'] / times['nfc only']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
