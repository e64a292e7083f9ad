"""Fused keyword LFs (lf_library.fused): one matcher pass gives exactly the votes of each LF on its own."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from lf_library import LFRegistry, keyword_lf, labeling_function
from lf_library.apply import evaluate_batch
from lf_library.fused import FUSE_MIN_LFS, evaluate_fused, keyword_groups
from lf_library.tags import tag_keyword_lf

WORDS = ["refund", "login", "app", "crash", "log in", "money back", "error", "Invoice", "charged", "pay", "payment",
         "x_1", "2fa", "re", "fund", "c++", "naïve", "caf"]  # fmt: skip
NOISE = ["", " ", ",", ".", "!", "-", "_", "a", "1", "é", "ſ", "K", "İ", "😀", "\u0301", "\n"]


def corpus(n: int, seed: int) -> list[str | None]:
    """Texts built from the keywords, their case variants and glue that tests every boundary rule."""
    rng = random.Random(seed)
    texts: list[str | None] = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 6)):
            w = rng.choice(WORDS + NOISE)
            w = w.upper() if rng.random() < 0.2 else w
            parts.append(w + (rng.choice(NOISE) if rng.random() < 0.3 else ""))
        texts.append(None if rng.random() < 0.03 else rng.choice(["", " "]).join(parts))
    return texts


def registry() -> LFRegistry:
    reg = LFRegistry(["no", "yes", "maybe"])
    rng = random.Random(1)
    for j in range(3 * FUSE_MIN_LFS):  # one group of ASCII whole-word keywords, overlapping across LFs
        reg.register(keyword_lf(f"kw_{j}", rng.sample(WORDS[:14], rng.randint(1, 3)), j % 3))
    for j in range(FUSE_MIN_LFS):  # a second group: substring matching
        reg.register(keyword_lf(f"sub_{j}", rng.sample(WORDS[:14], 2), j % 2, whole_word=False))
    for j in range(FUSE_MIN_LFS):  # a third: case-sensitive
        reg.register(keyword_lf(f"cs_{j}", rng.sample(WORDS[:14], 2), 1, case_sensitive=True))
    reg.register(keyword_lf("kw_plus", ["c++", "app"], 2))  # an edge keyword: runs on its own
    reg.register(keyword_lf("kw_unicode", ["naïve", "login"], 0))  # a non-ASCII keyword: on its own
    reg.register(keyword_lf("kw_other_field", ["vip"], 1, field="tier"))  # too few on its field: on its own

    @labeling_function(fields=["text"])
    def py_fails_on_crash(x):
        if x.text and "crash" in x.text:
            raise ValueError("no crashes please")
        return -1

    reg.register(py_fails_on_crash)
    return reg


def test_fused_votes_equal_each_lf_alone():
    reg = registry()
    lfs = reg.lfs
    groups = keyword_groups(lfs)
    assert sorted(len(g.columns) for g in groups) == [FUSE_MIN_LFS, FUSE_MIN_LFS, 3 * FUSE_MIN_LFS]
    fused = {int(j) for g in groups for j in g.columns}
    assert {lfs[j].name for j in range(len(lfs)) if j not in fused} == {"kw_plus", "kw_unicode", "kw_other_field",
                                                                       "py_fails_on_crash"}
    texts = corpus(3000, seed=0)
    batch = pa.record_batch({"text": pa.array(texts, pa.string()),
                             "tier": pa.array([random.Random(i).choice(["vip", "free"]) for i in range(3000)])})
    alone = evaluate_batch(lfs, batch, cardinality=3)
    together = evaluate_fused(lfs, batch, cardinality=3,
                              evaluate=lambda some: evaluate_batch(some, batch, cardinality=3))
    np.testing.assert_array_equal(together.votes, alone.votes)
    assert together.votes.dtype == alone.votes.dtype
    assert together.errors == alone.errors and alone.errors  # the Python LF's errors keep their LF index
    # Every group votes somewhere and abstains somewhere, and non-ASCII rows are in the corpus.
    for g in groups:
        block = alone.votes[:, g.columns]
        assert (block >= 0).any() and (block < 0).any()
    assert any(t and not t.isascii() for t in texts)


def test_fused_on_ascii_rows_alone_and_on_sliced_arrays():
    """Batches without non-ASCII rows take the matcher's votes only; slices of a shared buffer work."""
    reg = registry()
    texts = [t for t in corpus(2000, seed=3) if t is None or t.isascii()]
    col = pa.array(texts, pa.string()).slice(7, len(texts) - 20)
    batch = pa.table({"text": col, "tier": pa.array(["free"] * len(col))})
    alone = evaluate_batch(reg.lfs, batch, cardinality=3)
    together = evaluate_fused(reg.lfs, batch, cardinality=3,
                              evaluate=lambda some: evaluate_batch(some, batch, cardinality=3))
    np.testing.assert_array_equal(together.votes, alone.votes)


def test_few_keyword_lfs_are_not_fused():
    lfs = [tag_keyword_lf(f"t_{j}", "refund", ["refund"]) for j in range(FUSE_MIN_LFS - 1)]
    assert keyword_groups(lfs) == []
    calls = []
    batch = pa.table({"text": pa.array(["refund"])})

    def evaluate(some):
        calls.append(len(some))
        return evaluate_batch(some, batch, cardinality=2)

    assert evaluate_fused(lfs, batch, cardinality=2, evaluate=evaluate).votes.tolist() == [[1] * (FUSE_MIN_LFS - 1)]
    assert calls == [FUSE_MIN_LFS - 1]


@pytest.mark.parametrize("min_lfs", [1, 2])
def test_group_of_one_keyword_shared_by_lfs_of_different_labels(min_lfs):
    lfs = [tag_keyword_lf("present", "refund", ["refund"]), tag_keyword_lf("absent", "refund", ["Refund"], present=False)]
    batch = pa.table({"text": pa.array(["a REFUND now", "refunds", None, "refund,"])})
    out = evaluate_fused(lfs, batch, cardinality=2, min_lfs=min_lfs,
                         evaluate=lambda some: evaluate_batch(some, batch, cardinality=2))
    assert out.votes.tolist() == [[1, 0], [-1, -1], [-1, -1], [1, 0]]
