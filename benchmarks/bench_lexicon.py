"""Lexicon LF throughput: 100 vs 100,000 terms over 1M rows, file lexicons vs the RE2 ``lexicon_lf``.

Synthetic text: rows of 12 words drawn from a Zipf-distributed vocabulary of 200,000 random
lowercase words (3-9 letters). Lexicons: terms drawn uniformly from the same vocabulary less its
1,000 most frequent words (``--skip-frequent``; lexicons rarely hold stop words), one in five a
two-word phrase, split between two classes, written to a CSV file and loaded with
``lexicon_file_lf`` -- the path the apply job runs, batch by batch (``evaluate_arrow`` on Arrow
batches of ``--batch`` rows, as ``apply.batch_size``). The RE2 ``lexicon_lf`` builder is timed too;
with 100k terms it is too slow for 1M rows, so it runs on ``--re2-rows`` rows and its rate is
reported as such.

    python benchmarks/bench_lexicon.py [--rows 1000000] [--batch 10000] [--out lexicon.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lf_library import LFRegistry, lexicon_file_lf, lexicon_lf  # noqa: E402
from lf_library.matcher import _CACHE  # noqa: E402

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    lengths = rng.integers(3, 10, size)
    letters = rng.choice(LETTERS, size=(size, 9))
    return list(dict.fromkeys("".join(row[:n]) for row, n in zip(letters, lengths)))


def texts(rng: np.random.Generator, vocab: list[str], n: int, words: int = 12) -> pa.Array:
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    idx = rng.choice(len(vocab), size=(n, words), p=p)
    v = np.array(vocab, dtype=object)
    return pa.array([" ".join(row) for row in v[idx]], pa.large_string())


def lexicon_terms(rng: np.random.Generator, vocab: list[str], n: int, skip: int) -> list[tuple[str, str]]:
    """``n`` terms from the vocabulary without its ``skip`` most frequent words (stop words)."""
    picks = rng.integers(skip, len(vocab), size=(n * 2, 2))
    out: dict[str, str] = {}
    for i, (a, b) in enumerate(picks):
        term = f"{vocab[a]} {vocab[b]}" if i % 5 == 0 else vocab[a]
        out.setdefault(term, "spam" if len(out) % 2 else "ham")
        if len(out) == n:
            break
    return list(out.items())


def timed(lf, column: pa.Array, batch: int) -> tuple[float, float, int]:
    """Seconds for the first batch (builds the matcher), for all batches, and voted rows."""
    covered = 0
    t0 = time.perf_counter()
    first = None
    for start in range(0, len(column), batch):
        table = pa.table({"text": column.slice(start, batch)})
        covered += int((lf.evaluate_arrow(table) >= 0).sum())
        if first is None:
            first = time.perf_counter() - t0
    return first or 0.0, time.perf_counter() - t0, covered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 100_000])
    parser.add_argument("--re2-rows", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-frequent", type=int, default=1000,
                        help="leave the N most frequent words out of the lexicons, as stop words are (0: keep them)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    vocab = vocabulary(rng, 200_000)
    column = texts(rng, vocab, args.rows)
    print(f"data: {args.rows} rows, {len(vocab)} words in the vocabulary, {time.perf_counter() - t:.1f}s", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            terms = lexicon_terms(rng, vocab, n, args.skip_frequent)
            path = Path(tmp) / f"lexicon_{n}.csv"
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["term", "class"])
                w.writerows(terms)
            t = time.perf_counter()
            lf = LFRegistry(["ham", "spam"]).register(lexicon_file_lf(f"lex_{n}", path))
            load_s = time.perf_counter() - t
            _CACHE.clear()
            first, total, covered = timed(lf, column, args.batch)
            row = {"engine": "aho-corasick (lexicon_file_lf)", "terms": n, "rows": args.rows, "load_s": load_s,
                   "first_batch_s": first, "total_s": total, "rows_per_s": args.rows / total,
                   "steady_rows_per_s": (args.rows - args.batch) / max(total - first, 1e-9),
                   "coverage": covered / args.rows}
            results.append(row)
            print(json.dumps(row), flush=True)
            by_class: dict[str, list[str]] = {}
            for term, cls in terms:
                by_class.setdefault(cls, []).append(term)
            re2_rows = args.rows if n <= 1000 else min(args.re2_rows, args.rows)
            t = time.perf_counter()
            re2 = LFRegistry(["ham", "spam"]).register(lexicon_lf(f"re2_{n}", by_class))
            load_s = time.perf_counter() - t
            first, total, covered = timed(re2, column.slice(0, re2_rows), args.batch)
            row = {"engine": "RE2 (lexicon_lf)", "terms": n, "rows": re2_rows, "load_s": load_s,
                   "first_batch_s": first, "total_s": total, "rows_per_s": re2_rows / total,
                   "coverage": covered / re2_rows}
            results.append(row)
            print(json.dumps(row), flush=True)
    aho = {r["terms"]: r["rows_per_s"] for r in results if r["engine"].startswith("aho")}
    if len(aho) >= 2:
        small, large = min(aho), max(aho)
        print(f"throughput ratio {small} terms / {large} terms: {aho[small] / aho[large]:.2f}x "
              f"(matcher build included)")
    info = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "command": " ".join(["python", *sys.argv]),
    }
    print(json.dumps(info))
    if args.out:
        Path(args.out).write_text(json.dumps({"info": info, "results": results}, indent=1))
    print("\n| engine | terms | rows | rows/s | rows/s after 1st batch | load file s | first batch s | coverage |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        steady = f"{r['steady_rows_per_s']:,.0f}" if "steady_rows_per_s" in r else "-"
        print(f"| {r['engine']} | {r['terms']:,} | {r['rows']:,} | {r['rows_per_s']:,.0f} | {steady} | {r['load_s']:.2f} "
              f"| {r['first_batch_s']:.2f} | {r['coverage']:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
