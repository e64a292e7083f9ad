"""Parity of the LF statistics with Snorkel 0.10's ``LFAnalysis.lf_summary`` on real label matrices.

The expected numbers are snorkel 0.10's output (``LFAnalysis(L).lf_summary(Y)``, its fractions times the
row count) on the WRENCH youtube and trec training splits in ../shared/data/wrench; the test skips when
that folder is absent. trec is the multi-class case (6 classes), with gold -1 on every fifth row and an
LF that never votes inserted as column 30. Polarity, coverage, overlaps and conflicts come from
``lf_summary``; Correct and Incorrect from the counts ``lakelabel analyze`` and ``fit.json`` use. The
gold accuracy differs from Snorkel's ``Emp. Acc.`` as README "Switching from Snorkel" documents.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs.analysis.stats import _lf_gold_counts_local
from jobs.runtime.metrics import lf_accuracies
from labelmodel.stats import stats_from_matrix
from lf_library.analysis import lf_summary

SNORKEL = {
    "youtube": {
        "rows": 1686,
        "polarity": [[1], [1], [1], [1], [0], [1], [0], [0], [0], [0]],
        "Coverage": [337, 216, 199, 188, 241, 400, 386, 234, 61, 608],
        "Overlaps": [318, 185, 170, 184, 189, 235, 260, 177, 55, 456],
        "Conflicts": [194, 118, 142, 98, 75, 158, 125, 78, 9, 274],
        "Correct": [293, 213, 188, 185, 176, 400, 257, 157, 51, 349],
        "Incorrect": [44, 3, 11, 3, 65, 0, 129, 77, 10, 259],
    },
    "trec": {
        "rows": 5033,
        "polarity": [
            [1], [0], [0], [4], [2], [1], [0], [2], [5], [4], [2], [1], [4], [0], [1], [5], [4], [0], [1], [4], [2],
            [0], [2], [1], [0], [0], [4], [4], [5], [0], [], [2], [5], [1], [0], [5], [0], [5], [5], [3], [5], [5], [0],
            [4], [1], [2], [1], [0], [2], [5], [0], [0], [2], [1], [0], [0], [5], [1], [2], [1], [5], [2], [2], [4],
            [5], [5], [4], [1], [3]
        ],
        "Coverage": [
            36, 246, 2, 19, 64, 9, 61, 25, 356, 24, 25, 43, 2, 75, 41, 17, 13, 42, 24, 10, 6, 2, 45, 64, 2, 55, 118,
            266, 128, 12, 0, 47, 77, 30, 5, 100, 41, 81, 6, 16, 356, 58, 3127, 27, 12, 554, 56, 50, 36, 20, 69, 8, 41,
            311, 440, 3, 25, 33, 9, 45, 6, 83, 16, 266, 356, 303, 84, 107, 34
        ],
        "Overlaps": [
            36, 242, 2, 19, 64, 9, 61, 25, 356, 24, 25, 42, 2, 75, 41, 17, 13, 10, 23, 9, 6, 2, 45, 64, 2, 55, 112, 266,
            126, 10, 0, 45, 76, 30, 5, 3, 41, 34, 6, 15, 356, 58, 1268, 27, 10, 211, 56, 50, 36, 20, 69, 8, 41, 256,
            440, 3, 25, 32, 9, 41, 6, 75, 16, 266, 356, 303, 84, 107, 34
        ],
        "Conflicts": [
            15, 53, 0, 19, 39, 9, 3, 21, 33, 12, 1, 42, 0, 13, 41, 17, 13, 0, 23, 9, 1, 0, 1, 64, 0, 13, 111, 15, 123,
            0, 0, 36, 65, 29, 1, 3, 41, 32, 6, 15, 33, 58, 1008, 15, 9, 51, 56, 6, 3, 20, 12, 3, 1, 233, 100, 3, 22, 32,
            7, 40, 6, 71, 1, 15, 33, 12, 2, 107, 34
        ],
        "Correct": [
            16, 148, 2, 8, 39, 2, 42, 20, 285, 19, 23, 5, 2, 52, 30, 13, 9, 29, 14, 9, 3, 1, 38, 31, 2, 43, 82, 187, 66,
            8, 0, 20, 49, 19, 2, 67, 1, 63, 4, 11, 285, 34, 573, 21, 5, 432, 41, 39, 29, 9, 48, 1, 34, 89, 173, 1, 17,
            23, 5, 3, 3, 15, 14, 187, 285, 247, 60, 30, 28
        ],
        "Incorrect": [
            12, 41, 0, 8, 15, 3, 6, 1, 2, 0, 0, 33, 0, 6, 6, 0, 0, 0, 6, 0, 1, 0, 0, 22, 0, 2, 7, 19, 39, 0, 0, 14, 11,
            3, 3, 2, 35, 1, 2, 1, 2, 11, 1946, 0, 6, 15, 1, 5, 0, 7, 5, 5, 0, 162, 168, 2, 0, 1, 3, 36, 1, 54, 0, 19, 2,
            0, 1, 57, 0
        ],
    },
}


def _matrix(shared_data, task):
    folder = shared_data / "wrench" / task
    if not (folder / "train.json").is_file():
        pytest.skip(f"WRENCH data {folder} is absent (../shared/data/wrench beside the checkout)")
    rows = json.loads((folder / "train.json").read_text())
    L = np.array([r["weak_labels"] for r in rows.values()], dtype=np.int64)
    Y = np.array([r["label"] for r in rows.values()], dtype=np.int64)
    k = len(json.loads((folder / "label.json").read_text()))
    if task == "trec":
        Y[::5] = -1  # rows without gold
        L = np.hstack([L[:, :30], np.full((len(L), 1), -1), L[:, 30:]])  # an LF that never votes
    return L, Y, k


@pytest.mark.parametrize("task", ["youtube", "trec"])
def test_lf_summary_equals_snorkels_on_real_data(shared_data, task):
    L, Y, k = _matrix(shared_data, task)
    ref = SNORKEL[task]
    n, m = L.shape
    assert n == ref["rows"] and m == len(ref["polarity"])
    summary = lf_summary(stats_from_matrix(L, k, [f"lf{j}" for j in range(m)]))
    assert summary["polarity"].tolist() == ref["polarity"]
    for ours, theirs in [("coverage", "Coverage"), ("overlaps", "Overlaps"), ("conflicts", "Conflicts")]:
        # Snorkel divides the same integer counts by the row count: equal to the last bit
        assert summary[ours].tolist() == (np.asarray(ref[theirs]) / n).tolist(), ours

    correct, incorrect = np.asarray(ref["Correct"]), np.asarray(ref["Incorrect"])
    # lakelabel analyze's per-LF gold counts, from the distinct (pattern, gold) rows it collects
    lines, inverse = np.unique(np.hstack([L, Y[:, None]]), axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), minlength=len(lines))
    per_lf = _lf_gold_counts_local(lines[:, :m], lines[:, m], np.full(len(lines), -1), counts)
    per_lf = per_lf.reindex(range(m), fill_value=0)
    assert per_lf["correct"].tolist() == correct.tolist()
    assert (per_lf["gold_voted"] - per_lf["correct"]).tolist() == incorrect.tolist()
    # fit.json's empirical accuracy and gold support, from the patterns and their gold counts
    patterns, inverse = np.unique(L, axis=0, return_inverse=True)
    gold_counts = np.zeros((len(patterns), k), dtype=np.int64)
    has_gold = Y >= 0
    np.add.at(gold_counts, (inverse.ravel()[has_gold], Y[has_gold]), 1)
    accuracy, support = lf_accuracies(patterns, gold_counts)
    assert support.tolist() == (correct + incorrect).tolist()

    # The documented difference: lakelabel's gold accuracy is Correct / (Correct + Incorrect), NaN (null in
    # analysis.json) without a vote on a gold row; Snorkel's Emp. Acc. is Correct / votes, 0 without votes,
    # so a vote on a row without gold counts as wrong there (though not as Incorrect).
    voted_gold = correct + incorrect > 0
    np.testing.assert_allclose(accuracy[voted_gold], correct[voted_gold] / (correct + incorrect)[voted_gold],
                               rtol=0, atol=1e-15)
    assert np.isnan(accuracy[~voted_gold]).all()
    votes = (L >= 0).sum(axis=0)
    snorkel_emp_acc = np.where(votes > 0, correct / np.maximum(votes, 1), 0.0)
    same = (votes == correct + incorrect) & voted_gold
    np.testing.assert_allclose(accuracy[same], snorkel_emp_acc[same], rtol=0, atol=1e-15)
    if task == "youtube":  # every row has gold, every LF votes: the same numbers
        assert same.all()
    else:
        assert (~voted_gold).sum() == 1 and (accuracy[voted_gold & ~same] > snorkel_emp_acc[voted_gold & ~same]).all()
