"""``explain``: the prior plus the per-LF contributions give predict_proba, on every route."""

from __future__ import annotations

import numpy as np
import pytest

from labelmodel import LabelModel, MajorityLabelVoter
from labelmodel.explain import softmax
from tests.labelmodel.synthetic import sample_symmetric, sample_unipolar


def _unipolar(k: int = 3) -> np.ndarray:
    lf_class = np.array([0, 0, 1, 1, 2, 2][: 2 * k])
    m = len(lf_class)
    L, _ = sample_unipolar(3000, lf_class, np.full(m, 0.5), np.full(m, 0.05), np.full(k, 1 / k), seed=3)
    return L


def _check_rows(lm: LabelModel, L: np.ndarray) -> str:
    probs = lm.predict_proba(L)
    rows = np.unique(L, axis=0)  # every distinct pattern, the all-abstain row included
    kinds = set()
    for row in rows:
        e = lm.explain(row)
        i = int(np.flatnonzero((L == row).all(axis=1))[0])
        np.testing.assert_allclose(softmax(e.logits), probs[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(e.probabilities, probs[i], rtol=0, atol=1e-12)
        abstained = row == -1
        assert np.isnan(e.weights[abstained]).all() and not np.isnan(e.weights[~abstained]).any()
        kinds.add(e.combine)
    assert kinds == {"softmax"}
    return lm.fit_info_["chosen"]


def test_precision_route_contributions_add_up():
    L = _unipolar()
    lm = LabelModel(3, seed=0).fit(L)
    assert lm.params_.kind == "bump"
    assert _check_rows(lm, L) == "dawid_skene"
    # a one-class LF's vote adds only to the class it votes, by its weight
    row = np.full(L.shape[1], -1)
    row[0] = 0
    e = lm.explain(row)
    assert e.contributions[0, 0] == pytest.approx(lm.params_.weights[0, 0])
    assert (e.contributions[0, 1:] == 0).all() and (e.contributions[1:] == 0).all()
    assert e.weights[0] == pytest.approx(lm.params_.weights[0, 0])


def test_confusion_route_contributions_add_up():
    L, _ = sample_symmetric(3000, np.array([0.8, 0.7, 0.75, 0.6]), np.full(4, 0.7), np.array([0.5, 0.3, 0.2]), seed=1)
    lm = LabelModel(3, seed=0).fit(L)
    assert lm.params_.kind == "table"
    assert _check_rows(lm, L) == "confusion"
    # abstaining is uninformative in the confusion model: an abstain contributes exactly zero
    row = np.array([0, -1, -1, -1])
    assert np.abs(lm.explain(row).contributions[1:]).max() < 1e-12


def test_majority_vote_counts_votes():
    mv = MajorityLabelVoter(3).fit(_unipolar())
    e = mv.explain(np.array([0, -1, 1, 1, -1, -1]))
    assert e.combine == "majority"
    assert e.contributions.sum(axis=0).tolist() == [1.0, 2.0, 0.0]
    np.testing.assert_allclose(e.probabilities, [0.0, 1.0, 0.0])


def test_explain_checks_the_row():
    lm = LabelModel(3, seed=0).fit(_unipolar())
    with pytest.raises(ValueError, match="6 LF columns|fitted on 6"):
        lm.explain([0, 1])
    with pytest.raises(ValueError, match="votes"):
        lm.explain([5, -1, -1, -1, -1, -1])
