"""The per-LF time budget names the row a hung LF was on (no Spark: the executor-side function)."""

from __future__ import annotations

import time

import pyarrow as pa

from lf_library import ABSTAIN, labeling_function
from lf_library.budget import TIMEOUT_KIND, LFBudget, evaluate_within_budget


@labeling_function(fields=["text"])
def sleeps_on_hang(x):
    if "hang" in x.text:
        time.sleep(60)
    return ABSTAIN


@labeling_function(fields=["text"])
def votes_pos(x):
    return 1


def test_a_row_wise_lf_that_hangs_is_named_with_its_row():
    batch = pa.RecordBatch.from_pydict({"text": ["a", "b", "c", "d", "this one will hang", "e"]})
    started = time.perf_counter()
    result = evaluate_within_budget([votes_pos, sleeps_on_hang], batch, LFBudget(0.5), precomputed={}, cardinality=2)
    assert time.perf_counter() - started < 30  # cut short, not 60 s
    assert [(e.lf_index, e.row_index, e.kind) for e in result.errors] == [(1, 4, TIMEOUT_KIND)]
    # The LF that ran out abstains on the whole batch; the other keeps its votes.
    assert result.votes[:, 1].tolist() == [ABSTAIN] * 6 and result.votes[:, 0].tolist() == [1] * 6
