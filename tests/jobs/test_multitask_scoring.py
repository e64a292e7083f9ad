"""The multi-task write's scoring per distinct vote pattern equals the label model's predict on every row (no Spark)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pytest

from jobs.multitask_labels import distinct_rows, score_by_pattern
from labelmodel import LabelModel, LabelModelConfig, MajorityLabelVoter


def _votes(rng: np.random.Generator, n: int, m: int, k: int, p_vote: float) -> np.ndarray:
    L = rng.integers(0, k, size=(n, m))
    L[rng.random((n, m)) > p_vote] = -1
    return L.astype(np.int8)


@pytest.mark.parametrize(("m", "k"), [(10, 2), (3, 4), (45, 2), (30, 5)])  # the last two: rows compared as bytes
def test_distinct_rows(m, k):
    L = _votes(np.random.default_rng(m * k), 2_000, m, k, 0.1)
    distinct, inverse = distinct_rows(L, k)
    np.testing.assert_array_equal(distinct[inverse], L)
    assert len(distinct) == len(np.unique(L, axis=0))
    empty, none = distinct_rows(L[:0], k)
    assert empty.shape == (0, m) and none.shape == (0,)


@pytest.mark.parametrize("policy", ["abstain", "first", "random", "true-random"])
@pytest.mark.parametrize("label_unvoted", [False, True])
def test_score_by_pattern_equals_predict(policy, label_unvoted):
    rng = np.random.default_rng(1)
    k, m = 3, 8
    L = _votes(rng, 5_000, m, k, 0.15)
    ids = np.array([f"r{i}" for i in range(len(L))], dtype=object)
    for model in (LabelModel(cardinality=k, config=LabelModelConfig(label_unvoted=label_unvoted)),
                  MajorityLabelVoter(cardinality=k, config=LabelModelConfig(label_unvoted=label_unvoted))):
        model.fit(L.astype(np.int64))
        row_ids = ids if policy == "random" else None
        np.random.seed(7)
        want, want_probs = model.predict(L.astype(np.int64), return_probs=True, tie_break_policy=policy,
                                         row_ids=row_ids)
        np.random.seed(7)
        got, got_probs, confidence, n_votes = score_by_pattern(model, L, tie_break_policy=policy, row_ids=row_ids)
        np.testing.assert_array_equal(got_probs, want_probs)  # bit for bit: a row's probabilities are its votes'
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(confidence, want_probs.max(axis=1))
        np.testing.assert_array_equal(n_votes, (L >= 0).sum(axis=1))
        assert (got >= 0).any() and (label_unvoted or (got == -1).any())


@pytest.mark.parametrize("id_type", [pa.int64(), pa.string()])
def test_group_table_cuts_sorted_votes_into_rows(id_type, monkeypatch):
    """One partition of the grouping by row: each id's codes sorted, ids without votes get [], strays dropped."""
    from jobs.vote_groups import group_table

    monkeypatch.setattr("jobs.vote_groups._OUT_ROWS", 7)  # several output batches

    rng = np.random.default_rng(3)
    ids = list(range(200))
    votes = [(i, c) for i in ids for c in rng.choice(40, size=int(rng.integers(0, 6)), replace=False)]
    votes += [(1000, 3), (1001, 5)]  # votes of rows that are not in ids
    rows = [(i, -1, [i % 2, -1]) for i in ids] + [(i, int(c), None) for i, c in votes]
    order = rng.permutation(len(rows))
    cast = str if id_type == pa.string() else int
    table = pa.table({"row_id": pa.array([cast(rows[j][0]) for j in order], id_type),
                      "code": pa.array([rows[j][1] for j in order], pa.int32()),
                      "golds": pa.array([rows[j][2] for j in order], pa.list_(pa.int32()))})  # fmt: skip
    batches = list(group_table(table))
    assert len(batches) == -(-len(ids) // 7)
    out = pa.Table.from_batches(batches)
    got = {r["row_id"]: (r["pattern"], r["golds"]) for r in out.to_pylist()}
    want = {cast(i): (sorted(int(c) for j, c in votes if j == i), [i % 2, -1]) for i in ids}
    assert got == want
    assert out.schema.field("pattern").type == pa.list_(pa.int32())
    assert list(group_table(table.filter(pa.compute.equal(table["code"], -1)).select(["row_id", "code"]))) != []
