"""The shipped LF modules: the demo set behaves as designed, the YouTube set loads and fires."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from jobs.demo.data import LABEL_SPACE as DEMO_DATA_LABELS
from jobs.demo.data import generate_demo_rows
from labelmodel import LabelModel, MajorityLabelVoter
from lf_library import ABSTAIN, load_registry
from lf_library.apply import evaluate_batch

DEMO = "lf_library.lfs.demo"
YOUTUBE = "lf_library.lfs.youtube"
YOUTUBE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "youtube_spam"
ALL_KINDS = {"python", "vectorized", "keyword", "regex", "sql", "lexicon"}

# Intended accuracy band of each non-SQL demo LF (measured ~100k rows; see lf_library/lfs/demo.py).
DEMO_BANDS = {
    "kw_billing_terms": (0.88, 1.0),
    "kw_technical_terms": (0.88, 1.0),
    "re_shipping_tracking": (0.80, 0.95),
    "kw_account_terms": (0.65, 0.85),
    "lex_context": (0.50, 0.70),
    "py_order_number": (0.35, 0.50),
    "py_overcharged": (0.70, 0.88),
    "vec_platform": (0.55, 0.72),
    "kw_login_is_technical": (0.0, 0.25),  # worse than random (1/k = 0.25)
    "kw_cancel": (0.52, 0.70),
}


def _accuracy(votes: np.ndarray, y: np.ndarray) -> float:
    voted = votes != ABSTAIN
    return float((votes[voted] == y[voted]).mean())


@pytest.fixture(scope="module")
def demo_registry():
    return load_registry([DEMO])


@pytest.fixture(scope="module")
def demo_table():
    return generate_demo_rows(20_000, seed=11)


@pytest.fixture(scope="module")
def demo_votes(demo_registry, demo_table):
    lfs = [lf for lf in demo_registry if lf.kind != "sql"]
    batch = demo_table.combine_chunks().to_batches()[0]
    return lfs, evaluate_batch(lfs, batch, cardinality=demo_registry.cardinality)


def test_demo_registry_loads_with_every_kind(demo_registry):
    assert demo_registry.label_space == DEMO_DATA_LABELS
    assert len(demo_registry) == 12
    assert len(set(demo_registry.names)) == len(demo_registry)
    assert {lf.kind for lf in demo_registry} == ALL_KINDS
    assert set(DEMO_BANDS) == {lf.name for lf in demo_registry if lf.kind != "sql"}
    assert all(re.fullmatch(r"[0-9a-f]{12}", v) for v in demo_registry.versions.values())


def test_demo_lf_accuracies_are_in_their_bands(demo_votes, demo_table):
    lfs, bv = demo_votes
    y = demo_table["true_label_id"].to_numpy()
    for j, lf in enumerate(lfs):
        votes = bv.votes[:, j]
        coverage = float((votes != ABSTAIN).mean())
        lo, hi = DEMO_BANDS[lf.name]
        assert coverage > 0.03, f"{lf.name} coverage {coverage:.3f}"
        assert lo <= _accuracy(votes, y) <= hi, f"{lf.name} accuracy {_accuracy(votes, y):.3f} not in [{lo}, {hi}]"


def test_demo_raising_lf_fails_on_a_small_fraction(demo_votes, demo_table):
    lfs, bv = demo_votes
    names = [lf.name for lf in lfs]
    failing = {names[e.lf_index] for e in bv.errors}
    assert failing == {"py_overcharged"}
    rate = len(bv.errors) / demo_table.num_rows
    assert 0.002 < rate < 0.01  # well under the default 5% error threshold
    assert all(e.kind == "exception" and e.message.startswith("ZeroDivisionError") for e in bv.errors)
    failed_rows = [e.row_index for e in bv.errors]
    assert (bv.votes[failed_rows, names.index("py_overcharged")] == ABSTAIN).all()
    assert all("$0 " in demo_table["text"][i].as_py() for i in failed_rows)


def test_demo_label_model_beats_majority_vote(demo_votes, demo_table):
    _, bv = demo_votes
    L = bv.votes.astype(np.int64)
    y = demo_table["true_label_id"].to_numpy()
    row_ids = demo_table["ticket_id"].to_numpy(zero_copy_only=False)
    covered = (L != ABSTAIN).any(axis=1)
    lm = LabelModel(cardinality=4, seed=0).fit(L)
    mv = MajorityLabelVoter(cardinality=4)
    lm_pred = lm.predict(L, tie_break_policy="random", row_ids=row_ids)
    mv_pred = mv.predict(L, tie_break_policy="random", row_ids=row_ids)
    lm_acc = float((lm_pred[covered] == y[covered]).mean())
    mv_acc = float((mv_pred[covered] == y[covered]).mean())
    assert lm_acc > mv_acc + 0.04, f"label model {lm_acc:.3f} vs majority vote {mv_acc:.3f}"
    # The two worst LFs (true precision 0.18, worse than random, and 0.43) are the two the model
    # trusts least. (The default precision model does not push the worse-than-random one below
    # 1/k here: its wrong votes all land on one class, which only the full confusion model sees.)
    names = [lf.name for lf in demo_votes[0]]
    least_trusted = {names[j] for j in np.argsort(lm.estimated_accuracies())[:2]}
    assert least_trusted == {"kw_login_is_technical", "py_order_number"}


@pytest.mark.spark
def test_demo_sql_lfs_run_on_spark(spark, demo_registry, demo_table):
    sample = demo_table.slice(0, 1_000).to_pandas()
    sql_lfs = [lf for lf in demo_registry if lf.kind == "sql"]
    assert [lf.name for lf in sql_lfs] == ["sql_free_chat", "sql_phone_urgent"]
    df = spark.createDataFrame(sample)
    got = df.select(*[lf.spark_column().alias(lf.name) for lf in sql_lfs]).toPandas()
    phone_urgent = (sample.channel == "phone") & (sample.priority >= 3)
    free_chat = (sample.channel == "chat") & (sample.customer_tier == "free")
    np.testing.assert_array_equal(got["sql_phone_urgent"].to_numpy(), np.where(phone_urgent, 1, ABSTAIN))
    np.testing.assert_array_equal(got["sql_free_chat"].to_numpy(), np.where(free_chat, 2, ABSTAIN))


# --- YouTube ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def youtube_comments() -> pd.DataFrame:
    files = sorted(YOUTUBE_DIR.glob("Youtube0*.csv"))
    if not files:
        pytest.skip(f"YouTube Spam Collection CSVs not found in {YOUTUBE_DIR}")
    assert len(files) == 5
    frames = [pd.read_csv(f).assign(video=i + 1) for i, f in enumerate(files)]
    return pd.concat(frames, ignore_index=True)


def test_youtube_registry_loads():
    registry = load_registry([YOUTUBE])
    assert registry.label_space == ("ham", "spam")
    assert len(registry) >= 10
    assert {lf.kind for lf in registry} == ALL_KINDS
    assert all(lf.fields is None or list(lf.fields) == ["CONTENT"] for lf in registry if lf.kind != "sql")


def test_youtube_lfs_fire_and_beat_random_on_videos_1_to_4(youtube_comments):
    registry = load_registry([YOUTUBE])
    lfs = [lf for lf in registry if lf.kind != "sql"]
    batch = pa.RecordBatch.from_pandas(youtube_comments[["COMMENT_ID", "CONTENT"]], preserve_index=False)
    bv = evaluate_batch(lfs, batch, cardinality=2)
    assert bv.errors == []
    y = youtube_comments["CLASS"].to_numpy()
    fit = youtube_comments["video"].to_numpy() <= 4
    for j, lf in enumerate(lfs):
        votes = bv.votes[:, j]
        assert (votes != ABSTAIN).mean() > 0, f"{lf.name} never votes"
        assert _accuracy(votes[fit], y[fit]) > 0.6, f"{lf.name} accuracy on videos 1-4"


@pytest.mark.spark
def test_youtube_sql_lf_runs_on_spark(spark, youtube_comments):
    (lf,) = [lf for lf in load_registry([YOUTUBE]) if lf.kind == "sql"]
    df = spark.createDataFrame(youtube_comments[["COMMENT_ID", "CONTENT"]])
    votes = np.array([r[0] for r in df.select(lf.spark_column()).collect()])
    expected = np.where(youtube_comments["CONTENT"].str.len() < 20, 0, ABSTAIN)
    np.testing.assert_array_equal(votes, expected)
