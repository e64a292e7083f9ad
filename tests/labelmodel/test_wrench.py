"""Sanity check on real WRENCH splits (fit unsupervised on train, score test).

Not a tuning target: defaults were chosen on synthetic data. Accuracy is in expectation
over random tie-breaks, as upstream scores it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelmodel import LabelModel, MajorityLabelVoter, expected_accuracy


def _load(folder, split):
    path = folder / f"{split}.json"
    if not path.is_file():
        pytest.skip(f"WRENCH split {path} is absent")
    d = json.loads(path.read_text())
    L = np.array([v["weak_labels"] for v in d.values()])
    y = np.array([v["label"] for v in d.values()])
    return L, y


@pytest.mark.parametrize("name,k", [("youtube", 2), ("trec", 6)])
def test_default_beats_majority_vote_on_wrench(shared_data, name, k):
    folder = shared_data / "wrench" / name
    L, _ = _load(folder, "train")
    Lt, yt = _load(folder, "test")
    lm = LabelModel(cardinality=k).fit(L)
    mv = MajorityLabelVoter(cardinality=k).fit(L)
    acc_lm = expected_accuracy(lm.predict_proba(Lt), yt)
    acc_mv = expected_accuracy(mv.predict_proba(Lt), yt)
    assert acc_lm > acc_mv + 0.01, (acc_lm, acc_mv)
