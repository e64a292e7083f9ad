"""Per-term counts of keyword and lexicon LFs (``analyze``'s ``terms``), per Arrow batch, against Python's re."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from jobs.analysis import terms
from lf_library import LFRegistry, keyword_lf, lexicon_file_lf, lexicon_lf

SPACE = ("ham", "spam")
TEXTS = ["Free money now, subscribe!", "a lovely song", None, "SUBSCRIBE to my channel", "free-ish music",
         "freedom song", "Check out my song, subscribe", "café song"]
GOLD = [1, 0, -1, 1, -1, 0, 1, 0]
LABEL = [1, 0, -1, 0, 1, 0, 0, 0]


def _lfs(tmp_path):
    (tmp_path / "terms.csv").write_text("term,class\nsubscribe,spam\nchannel,spam\nsong,ham\nnever seen,ham\n",
                                        encoding="utf-8")
    lfs = [keyword_lf("kw", ["free", "subscribe", "unused"], "spam"),
           lexicon_lf("lex", {"spam": ["check out", "money"], "ham": ["song", "café"]}),
           lexicon_file_lf("file", tmp_path / "terms.csv")]
    registry = LFRegistry(SPACE)
    for lf in lfs:
        registry.register(lf)
    return lfs


def _expected(words, classes):
    """Whole word, case ignored: the LFs' defaults, written with Python's re."""
    hit = np.array([[t is not None and re.search(rf"(?i)(?<!\w){re.escape(w)}(?!\w)", t) is not None for w in words]
                    for t in TEXTS])
    gold, label, classes = np.array(GOLD), np.array(LABEL), np.array(classes)
    sole = hit & (hit.sum(axis=1) == 1)[:, None]
    return {j: {"rows": int(hit[:, j].sum()), "sole": int(sole[:, j].sum()),
                "gold_rows": int((hit[:, j] & (gold >= 0)).sum()),
                "gold_correct": int((hit[:, j] & (gold == classes[j])).sum()),
                "label_agree": int((hit[:, j] & (label == classes[j])).sum())}
            for j in range(len(words)) if hit[:, j].any()}


def test_counts_per_term_equal_python_re_for_every_kind(tmp_path):
    lfs = _lfs(tmp_path)
    batch = pa.RecordBatch.from_pydict({"__t0": pa.array(TEXTS, pa.string()), "gold": pa.array(GOLD, pa.int32()),
                                        "label": pa.array(LABEL, pa.int32())})
    out = terms.count_batch(batch, lfs, ["text"]).to_pylist()
    for i, lf in enumerate(lfs):
        words, classes = terms._terms_of(lf)
        got = {r["term"]: {k: r[k] for k in terms._COUNTS} for r in out if r["lf"] == i}
        assert got == _expected(words, classes.tolist()), lf.name


def test_the_section_lists_top_and_dead_terms_and_says_why_an_lf_is_left_out(tmp_path):
    lfs = _lfs(tmp_path)
    run_versions = {lf.name: lf.version for lf in lfs}
    big = keyword_lf("big", [f"w{i}" for i in range(terms.MAX_TERMS_ONE_BY_ONE + 1)], "spam", label_space=SPACE)
    changed = keyword_lf("changed", ["free"], "spam", label_space=SPACE)
    kept, skipped = terms.term_lfs([*lfs, big, changed], {**run_versions, "big": big.version, "changed": "0" * 12})
    assert kept == lfs
    assert [s["lf"] for s in skipped] == ["big", "changed"]
    assert "1,001 terms" in skipped[0]["reason"] and "changed since the run" in skipped[1]["reason"]
    counts = {(0, 0): {"rows": 3, "sole": 1, "gold_rows": 2, "gold_correct": 1, "label_agree": 2},
              (0, 1): {"rows": 3, "sole": 3, "gold_rows": 3, "gold_correct": 3, "label_agree": 1}}
    entry = terms.describe_lf(lfs[0], 0, counts, SPACE, listed=1)
    assert entry["n_terms"] == 3 and entry["dead"] == ["unused"] and entry["n_dead"] == 1
    assert [t["term"] for t in entry["top"]] == ["free"]  # ties on rows: by term; listed=1 keeps one
    assert entry["top"][0]["gold_precision"] == 0.5 and entry["top"][0]["class"] == "spam"


@pytest.mark.spark
def test_term_counts_on_spark_read_a_field_with_a_dot_in_its_name(spark):
    """The pass selects the LFs' fields by name: `body.text` is a column, not a struct's field."""
    lf = keyword_lf("kw", ["free", "song"], "spam", field="body.text", label_space=SPACE)
    source = spark.createDataFrame([("r1", "free song"), ("r2", "a song"), ("r3", None)], "id string, `body.text` string")
    scored = spark.createDataFrame([("r1", 1, 1), ("r2", 0, 1), ("r3", -1, -1)], "row_id string, gold int, label int")
    counts = terms.term_counts(spark, [lf], source, "id", scored)
    assert counts == {(0, 0): {"rows": 1, "sole": 0, "gold_rows": 1, "gold_correct": 1, "label_agree": 1},
                      (0, 1): {"rows": 2, "sole": 1, "gold_rows": 2, "gold_correct": 1, "label_agree": 2}}
