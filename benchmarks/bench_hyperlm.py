"""The pretrained hyper label model (Wu et al., ICLR 2023) beside the default, issue 8.

The hyper label model is one aggregation function (a small graph network over the label
matrix: 4 layers pooling each vote's embedding over its row, its LF and the whole matrix)
trained once on synthetic matrices; it fits nothing per task. Its authors publish the
trained weights on PyPI (``hyperlm`` 0.0.5, MIT, 128 KB checkpoint). Before porting it to
numpy (our inference would be the same forward pass, with the pooling weighted by pattern
counts) this measures whether it would pass issue 8's targets at all: every task of
``bench_quality.py`` (youtube, trec, the 11 crowdsourcing matrices) and the synthetic shapes
of :mod:`_shapes`, scored on the test split as in ``bench_quality.py``.

It aggregates transductively, so it is scored two ways: on the test matrix alone, and on
the train and test matrices together (as ``bench_quality.py`` fits crowd-kit), test rows
scored. Its multi-class inference is one-vs-rest (its own ``infer``).

Needs torch and ``pip install hyperlm==0.0.5`` (not in the ``bench`` extra: its checkpoint
holds numpy scalars, which torch >= 2.6 loads only with ``weights_only=False``; this script
passes that for this one file, from PyPI).

Usage::

    python benchmarks/bench_hyperlm.py [--data DIR] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from _common import REPO_ROOT, expected_accuracy, machine_info, format_machine_info, markdown_table, mean_tie_f1
from _shapes import SHAPES
from bench_quality import _mv_proba, discover_tasks, load_task


def hyper_label_model():
    """The published checkpoint, loaded on the CPU."""
    import torch

    load = torch.load
    torch.load = functools.partial(load, weights_only=False)  # the checkpoint pickles numpy scalars
    try:
        from hyperlm import HyperLabelModel

        return HyperLabelModel(device="cpu")
    finally:
        torch.load = load


def hlm_proba(hlm, L: np.ndarray, k: int) -> np.ndarray:
    """Its probabilities, padded to ``k`` classes (it infers the class count from the votes) and to
    every row: it reads the matrix as sparse votes, so trailing rows without a vote are cut off (they get
    a tie here, 1/k each)."""
    P = hlm.infer(L, return_probs=True)
    if P.shape[1] < k:
        P = np.pad(P, ((0, 0), (0, k - P.shape[1])))
    if len(P) < len(L):
        P = np.vstack([P, np.full((len(L) - len(P), k), 1.0 / k)])
    return P


def problems(data_roots: Sequence[Path], seeds: Sequence[int]):
    for root in data_roots:
        if not root.is_dir():
            print(f"skipping {root}: not found", file=sys.stderr)
            continue
        for name in discover_tasks(root):
            t = load_task(root / name)
            yield name, t.kind, t.L_train, t.L_test, t.y_test, t.cardinality, "acc"
    for name, (gen, metric) in SHAPES.items():
        for seed in seeds:
            Ltr, _, Lte, yte, k = gen(seed)
            yield f"{name}#{seed}", "shape", Ltr, Lte, yte, k, metric


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, nargs="*",
                    default=[REPO_ROOT.parent / "shared/data/wrench", REPO_ROOT.parent / "shared/data/labelmatrices"])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))
    from labelmodel import LabelModel

    hlm = hyper_label_model()
    rows, t0 = [], time.perf_counter()
    for name, kind, Ltr, Lte, y, k, metric in problems(args.data, args.seeds):
        score = (lambda P: 100 * mean_tie_f1(P, y, k)) if metric == "f1" else (lambda P: 100 * expected_accuracy(P, y))
        lm = LabelModel(cardinality=k).fit(Ltr)
        both = hlm_proba(hlm, np.vstack([Ltr, Lte]), k)[len(Ltr):]
        r = [name, kind, metric, score(_mv_proba(Lte, k)), score(lm.predict_proba(Lte)),
             score(hlm_proba(hlm, Lte, k)), score(both)]
        rows.append(r)
        print(f"[{name}] MV {r[3]:.2f} ours {r[4]:.2f} hyperlm {r[5]:.2f} / {r[6]:.2f}", file=sys.stderr, flush=True)
    fmt = [r[:3] + [f"{v:.2f}" for v in r[3:]] for r in rows]
    print(format_machine_info(machine_info()))
    print(f"\n{time.perf_counter() - t0:.0f} s\n")
    print(markdown_table(["task", "kind", "metric", "MV", "ours (default)", "hyperlm (test)", "hyperlm (train+test)"], fmt))
    for kind in ("crowd", "shape"):
        sel = [r for r in rows if r[1] == kind]
        if sel:
            means = np.mean([r[3:] for r in sel], axis=0)
            print(f"\nmean over {len(sel)} {kind} problems: " + ", ".join(
                f"{h} {v:.2f}" for h, v in zip(("MV", "ours", "hyperlm (test)", "hyperlm (train+test)"), means)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
