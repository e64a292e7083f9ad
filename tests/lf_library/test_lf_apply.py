"""evaluate_batch, to_long_votes, required_columns and class_id (pure pyarrow, no Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lf_library import (
    ABSTAIN,
    InputDataError,
    LFConfigError,
    LFError,
    LFRegistry,
    keyword_lf,
    labeling_function,
    sql_lf,
)
from lf_library.apply import (
    BatchVotes,
    LFRowError,
    class_id,
    evaluate_batch,
    required_columns,
    to_long_votes,
    vote_dtype,
    votes_schema,
)

SPACE = ["a", "b", "c"]


@pytest.fixture
def batch():
    return pa.record_batch(
        {
            "id": pa.array([10, 11, 12, 13], pa.int64()),
            "text": ["free money", "hello", None, "zero"],
            "n": [1, 2, 0, 4],
        }
    )


def register(*lfs):
    reg = LFRegistry(SPACE)
    for lf in lfs:
        reg.register(lf)
    return reg.lfs


def test_python_vectorized_and_keyword_lfs_fill_one_column_each(batch):
    @labeling_function(fields=["n"])
    def lf_even(x):
        return 0 if x.n % 2 == 0 else ABSTAIN

    @labeling_function(vectorized=True, fields=["n"])
    def lf_vec(df):
        return np.where(df["n"] > 1, 2, ABSTAIN)

    lfs = register(lf_even, lf_vec, keyword_lf("kw_free", ["free"], "b"))
    bv = evaluate_batch(lfs, batch, cardinality=3)
    assert [lf.name for lf in lfs] == ["kw_free", "lf_even", "lf_vec"]
    assert bv.votes.dtype == np.int8
    assert bv.votes.tolist() == [[1, -1, -1], [-1, 0, 2], [-1, 0, -1], [-1, 0, 2]]
    assert bv.errors == []
    assert vote_dtype(127) == np.int8 and vote_dtype(128) == np.int16


def test_a_raising_row_abstains_and_leaves_an_error_record(batch):
    @labeling_function(fields=["n"])
    def lf_div(x):
        return 1 if 4 / x.n > 1 else 0

    @labeling_function(fields=["text"])
    def lf_text(x):
        return 2 if "e" in x.text else ABSTAIN

    lfs = register(lf_div, lf_text)
    bv = evaluate_batch(lfs, batch, cardinality=3)
    assert bv.votes.tolist() == [[1, 2], [1, 2], [-1, -1], [0, 2]]
    assert bv.errors == [
        LFRowError(0, 2, "exception", "ZeroDivisionError: division by zero"),
        LFRowError(1, 2, "exception", "TypeError: argument of type 'NoneType' is not iterable"),
    ]
    assert bv.error_counts().tolist() == [1, 1]


def test_out_of_space_and_non_int_votes_become_error_records(batch):
    @labeling_function(fields=["n"])
    def lf_bad(x):
        return {1: 7, 2: "b", 0: True}.get(x.n, 2)

    bv = evaluate_batch(register(lf_bad), batch, cardinality=3)
    assert bv.votes[:, 0].tolist() == [-1, -1, -1, 2]
    assert [(e.row_index, e.kind, e.message) for e in bv.errors] == [
        (0, "out_of_space", "returned 7; label space is 0..2 (a, b, c)"),
        (1, "out_of_space", "returned 'b' (str), a class name; return its id 1 (LABEL_SPACE.index('b')) or -1 (ABSTAIN)"),
        (2, "out_of_space", "returned True (bool); expected an int class id or -1 (ABSTAIN); label space is 0..2 (a, b, c)"),
    ]


def test_whole_floats_and_numpy_strings_get_the_fix(batch):
    """A drill: `np.where(..., 1.0, -1.0)` said only "expected an int class id", and a numpy string's hint read
    LABEL_SPACE.index(np.str_('a'))."""
    @labeling_function(vectorized=True, fields=["n"])
    def lf_floats(df):
        return np.where(df["n"] > 1, 1.0, -1.0)

    bv = evaluate_batch(register(lf_floats), batch, cardinality=3)
    assert bv.errors and bv.errors[0].message.startswith(
        f"returned {np.float64(-1.0)!r} (float64); votes are int class ids: return int(...) (a vectorized LF: .astype(int)")

    @labeling_function(fields=["n"])
    def lf_np_name(x):
        return np.str_("b")

    bv = evaluate_batch(register(lf_np_name), batch, cardinality=3)
    assert bv.errors[0].message == (f"returned {np.str_('b')!r} (str), a class name; return its id 1 "
                                    "(LABEL_SPACE.index('b')) or -1 (ABSTAIN)")


def test_out_of_range_ints_take_the_vectorized_check(batch):
    @labeling_function(vectorized=True, fields=["n"])
    def lf_vec(df):
        return df["n"].to_numpy() - 2

    bv = evaluate_batch(register(lf_vec), batch, cardinality=3)
    assert bv.votes[:, 0].tolist() == [-1, 0, -1, 2]
    assert [(e.row_index, e.message) for e in bv.errors] == [(2, "returned -2; label space is 0..2 (a, b, c)")]


def test_vectorized_lf_that_raises_is_rerun_row_by_row(batch):
    @labeling_function(vectorized=True, fields=["n"])
    def lf_picky(df):
        if (df["n"] == 0).any():
            raise ValueError("n must not be 0\nsecond line")
        return np.full(len(df), 1)

    @labeling_function(vectorized=True, fields=["n"])
    def lf_series(df):  # a fresh Series (index 0..), as pd.Series(np.where(...)) gives
        if (df["n"] == 0).any():
            raise ValueError("n must not be 0")
        return pd.Series(np.where(df["n"].to_numpy() > 1, 2, 1))

    lfs = register(lf_picky, lf_series)
    bv = evaluate_batch(lfs, batch, cardinality=3)
    assert [lf.name for lf in lfs] == ["lf_picky", "lf_series"]
    assert bv.votes[:, 0].tolist() == [1, 1, -1, 1]
    assert bv.votes[:, 1].tolist() == [1, 2, -1, 2]  # each row alone still lines up (a review, session 18)
    assert bv.errors == [LFRowError(0, 2, "exception", "ValueError: n must not be 0 second line"),
                         LFRowError(1, 2, "exception", "ValueError: n must not be 0")]


def test_vectorized_result_is_lined_up_by_its_index_or_fails_every_row(batch):
    """An operator drill (session 18): a shuffled Series was taken by position, so its votes
    landed on other rows with exit 0; a result of the wrong length was retried row by row and
    reported as an error rate."""

    @labeling_function(vectorized=True, fields=["n"])
    def lf_shuffled(df):
        return (df["n"] % 3).sample(frac=1.0, random_state=0)  # right values, shuffled index

    @labeling_function(vectorized=True, fields=["n"])
    def lf_filtered(df):
        votes = df["n"] % 3
        return votes[votes != 0]  # drops rows: fewer values than rows

    @labeling_function(vectorized=True, fields=["n"])
    def lf_reset(df):
        return (df["n"] % 3).iloc[::-1].reset_index(drop=True).set_axis(range(7, 11))  # another index

    @labeling_function(vectorized=True)
    def lf_short(df):
        return [1]

    lfs = register(lf_shuffled, lf_filtered, lf_reset, lf_short)
    col = {lf.name: j for j, lf in enumerate(lfs)}
    bv = evaluate_batch(lfs, batch, cardinality=3)
    assert bv.votes[:, col["lf_shuffled"]].tolist() == [1, 2, 0, 1]  # n % 3, each on its own row
    errors = {name: [e for e in bv.errors if e.lf_index == j] for name, j in col.items()}
    assert errors["lf_shuffled"] == []
    for name in ("lf_filtered", "lf_reset", "lf_short"):
        assert (bv.votes[:, col[name]] == -1).all()
        assert [e.row_index for e in errors[name]] == [0, 1, 2, 3] and {e.kind for e in errors[name]} == {"out_of_space"}
    assert errors["lf_filtered"][0].message == (
        "returned a Series of 3 values whose index is not the DataFrame's (4 rows); "
        "return one vote per row, e.g. a Series on df.index or an array in row order")
    assert errors["lf_reset"][0].message.startswith("returned a Series of 4 values whose index is not the DataFrame's")
    assert errors["lf_short"][0].message == ("returned 1 value(s) for a DataFrame of 4 rows; return one vote per row, "
                                   "in the DataFrame's order")
    from lf_library.apply import NOT_ONE_VOTE_PER_ROW  # the apply job leads its error with these

    assert all(NOT_ONE_VOTE_PER_ROW.match(errors[name][0].message) for name in ("lf_filtered", "lf_reset", "lf_short"))


def test_messages_are_one_line_of_at_most_200_chars(batch):
    @labeling_function(fields=["n"])
    def lf_long(x):
        raise RuntimeError("x" * 500 + "\n" + "y")

    bv = evaluate_batch(register(lf_long), batch, cardinality=3)
    assert len(bv.errors) == 4
    msg = bv.errors[0].message
    assert len(msg) == 200 and "\n" not in msg and msg.startswith("RuntimeError: xxx") and msg.endswith("...")


def test_fields_limit_the_row_and_missing_fields_fail_loudly(batch):
    @labeling_function(fields=["text"])
    def lf_sneaky(x):
        return 1 if x.n else 0

    bv = evaluate_batch(register(lf_sneaky), batch, cardinality=3)
    assert bv.errors[0].message == "AttributeError: row has no column 'n'; available columns: 'text'"

    @labeling_function(fields=["author"])
    def lf_author(x):
        return 1

    with pytest.raises(InputDataError, match=r"LF 'lf_author' reads column\(s\) \['author'\] that the input lacks"):
        evaluate_batch(register(lf_author), batch, cardinality=3)


def test_precomputed_sql_votes_are_read_from_their_column(batch):
    sql = sql_lf("sql_big", "n > 1", "c")

    @labeling_function()
    def lf_sees(x):
        assert "__sql" not in x  # precomputed columns are not source columns
        return ABSTAIN

    lfs = register(sql, lf_sees)
    with_votes = batch.append_column("__sql", pa.array([None, 2, -1, 5], pa.int32()))
    bv = evaluate_batch(lfs, with_votes, precomputed={"sql_big": "__sql"}, cardinality=3)
    assert bv.votes[:, 1].tolist() == [-1, 2, -1, -1]
    assert [(e.lf_index, e.row_index, e.message) for e in bv.errors] == [(1, 3, "returned 5; label space is 0..2 (a, b, c)")]
    with pytest.raises(LFError, match=r"LF 'sql_big' is a sql LF, which runs on Spark; compute lf.spark_column\(\)"):
        evaluate_batch(lfs, batch, cardinality=3)


def test_label_space_must_match_cardinality(batch):
    lfs = register(keyword_lf("kw", ["x"], 0))
    with pytest.raises(LFConfigError, match=r"LF 'kw' has 3 classes \['a', 'b', 'c'\] but the batch is evaluated with cardinality=2"):
        evaluate_batch(lfs, batch, cardinality=2)


def test_a_pandas_dataframe_is_refused_with_the_conversion(batch):
    # Snorkel's PandasLFApplier(lfs).apply(df) habit; before: 'DataFrame' object has no attribute 'schema'
    lfs = register(keyword_lf("kw", ["free"], 0))
    with pytest.raises(TypeError, match=r"evaluate_batch takes a pyarrow RecordBatch or Table, not a DataFrame: pass "
                                        r"pa.RecordBatch.from_pandas\(df, preserve_index=False\)"):
        evaluate_batch(lfs, batch.to_pandas(), cardinality=3)
    df = batch.to_pandas()
    assert evaluate_batch(lfs, pa.RecordBatch.from_pandas(df, preserve_index=False), cardinality=3).votes[:, 0].tolist() == [0, -1, -1, -1]


def test_to_long_votes_keeps_votes_and_errors_in_row_then_lf_order(batch):
    @labeling_function(fields=["n"])
    def lf_div(x):
        return 1 if 4 / x.n > 1 else ABSTAIN

    lfs = register(lf_div, keyword_lf("kw_free", ["free", "zero"], "a"))
    bv = evaluate_batch(lfs, batch, cardinality=3)
    out = to_long_votes(lfs, batch.column("id"), bv)
    assert out.schema == votes_schema(pa.int64())
    v = {lf.name: lf.version for lf in lfs}
    assert out.to_pylist() == [
        {"row_id": 10, "lf_name": "kw_free", "lf_version": v["kw_free"], "vote": 0, "error": None, "error_kind": None},
        {"row_id": 10, "lf_name": "lf_div", "lf_version": v["lf_div"], "vote": 1, "error": None, "error_kind": None},
        {"row_id": 11, "lf_name": "lf_div", "lf_version": v["lf_div"], "vote": 1, "error": None, "error_kind": None},
        {"row_id": 12, "lf_name": "lf_div", "lf_version": v["lf_div"], "vote": -1,
         "error": "ZeroDivisionError: division by zero", "error_kind": "exception"},
        {"row_id": 13, "lf_name": "kw_free", "lf_version": v["kw_free"], "vote": 0, "error": None, "error_kind": None},
    ]


def test_to_long_votes_in_lf_then_row_order_has_the_same_rows(batch):
    @labeling_function(fields=["n"])
    def lf_div(x):
        return 1 if 4 / x.n > 1 else ABSTAIN

    lfs = register(lf_div, keyword_lf("kw_free", ["free", "zero"], "a"))
    bv = evaluate_batch(lfs, batch, cardinality=3)
    by_row = to_long_votes(lfs, batch.column("id"), bv).to_pylist()
    by_lf = to_long_votes(lfs, batch.column("id"), bv, order="lf").to_pylist()
    order = {lf.name: j for j, lf in enumerate(lfs)}
    assert by_lf == sorted(by_row, key=lambda r: (order[r["lf_name"]], r["row_id"]))
    assert by_lf != by_row and by_lf[-1]["error"] == "ZeroDivisionError: division by zero"


def test_to_long_votes_passes_string_ids_through_and_may_be_empty():
    lfs = register(keyword_lf("kw", ["never"], 0))
    bv = BatchVotes(votes=np.full((2, 1), -1, dtype=np.int8))
    out = to_long_votes(lfs, pa.array(["a", "b"]), bv)
    assert out.num_rows == 0 and out.schema.field("row_id").type == pa.string()
    with pytest.raises(InputDataError, match=r"got 3 row ids for a batch of 2 rows"):
        to_long_votes(lfs, pa.array(["a", "b", "c"]), bv)


def test_required_columns():
    @labeling_function(fields=["text", "n"])
    def lf_a(x):
        return 1

    @labeling_function()
    def lf_all(x):
        return 1

    kw = keyword_lf("kw", ["x"], 0, field="title")
    assert required_columns([lf_a, kw, sql_lf("s", "n > 1", 0)]) == {"text", "n", "title"}
    assert required_columns([lf_a, lf_all]) is None
    assert required_columns([sql_lf("s", "n > 1", 0)]) == set()


def test_class_id():
    assert class_id("b", SPACE) == 1
    assert class_id(np.int64(2), SPACE) == 2 and class_id(5, None) == 5
    with pytest.raises(LFConfigError, match=r"LF 'x': label 'd' is not in the label space \['a', 'b', 'c'\]"):
        class_id("d", SPACE, lf_name="x")
    with pytest.raises(LFConfigError, match=r"label 3 is outside the label space 0\.\.2 \(a, b, c\)"):
        class_id(3, SPACE)
    with pytest.raises(LFConfigError, match=r"label -1 is negative"):
        class_id(-1, SPACE)
    with pytest.raises(LFConfigError, match=r"label 'a' is a class name but no label space is known"):
        class_id("a", None)
