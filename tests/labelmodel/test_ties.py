from __future__ import annotations

import numpy as np
import pytest

from labelmodel import ABSTAIN, probs_to_preds, stable_row_hash


def test_stable_row_hash_is_pinned_and_type_agnostic():
    # blake2b(str(id), digest_size=8), little-endian: these values must never change.
    assert stable_row_hash([0, "a", 123456789]).tolist() == [
        8493733112532773764,
        3405396810240292928,
        3572949765952729982,
    ]
    assert np.array_equal(stable_row_hash(np.array([0, 123456789])), stable_row_hash([0, 123456789]))
    assert stable_row_hash([np.str_("a")])[0] == stable_row_hash(["a"])[0]
    assert stable_row_hash([]).dtype == np.uint64


def test_policies_on_ties_and_clear_rows():
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    assert probs_to_preds(probs, "abstain").tolist() == [ABSTAIN, 2, ABSTAIN]
    assert probs_to_preds(probs, "first").tolist() == [0, 2, 0]
    preds = probs_to_preds(probs, "random", row_ids=["r1", "r2", "r3"])
    assert preds[1] == 2 and preds[0] in (0, 1) and preds[2] in (0, 1, 2)


def test_random_depends_on_row_id_not_position():
    rng = np.random.default_rng(0)
    probs = np.full((400, 3), 1 / 3)
    ids = np.arange(1000, 1400)
    preds = probs_to_preds(probs, "random", row_ids=ids)
    perm = rng.permutation(400)
    assert np.array_equal(probs_to_preds(probs[perm], "random", row_ids=ids[perm]), preds[perm])
    # roughly uniform over the tied classes, and the seed changes the draw
    assert set(np.bincount(preds, minlength=3) > 100) == {True}
    assert not np.array_equal(probs_to_preds(probs, "random", row_ids=ids, seed=1), preds)


def test_row_ids_length_is_checked_and_unknown_policy_is_named():
    with pytest.raises(ValueError, match="row_ids has 1 ids for 2 rows"):
        probs_to_preds(np.full((2, 2), 0.5), "random", row_ids=[1])
    with pytest.raises(ValueError, match="unknown tie_break_policy 'coin-flip'"):
        probs_to_preds(np.full((2, 2), 0.5), "coin-flip")
