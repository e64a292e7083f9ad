"""Incremental apply: after a sequence of LF and source edits, the votes equal a --force run's.

One module fixture runs the sequence on a Delta source (local Delta path: changed rows from Delta
time travel) and a shorter one on a Parquet source (changed rows from stored content hashes).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from deltalake import DeltaTable, write_deltalake

from jobs import apply_lfs, delta_io
from lf_library import ABSTAIN, LFRegistry, keyword_lf, labeling_function, regex_lf, sql_lf
from lf_library.errors import LFErrorRateExceeded
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

pytestmark = pytest.mark.spark

LABELS = ("neg", "pos")
VOTE_COLUMNS = ["row_id", "lf_name", "lf_version", "vote", "error", "error_kind"]


@labeling_function()
def stars(x):
    if x.stars is None:
        return ABSTAIN
    return 1 if x.stars >= 4 else 0 if x.stars <= 2 else ABSTAIN


@labeling_function(name="picky")
def picky(x):
    if "meh" in x.text:
        raise ValueError("meh is not an opinion")
    return 1 if "love" in x.text else ABSTAIN


@labeling_function(name="picky")
def picky_broken(x):
    raise ValueError("always")


def registry(*lfs) -> LFRegistry:
    reg = LFRegistry(LABELS)
    for lf in lfs:
        reg.register(lf)
    return reg


GOOD = keyword_lf("good_words", ["great", "love"], "pos")
GOOD_V2 = keyword_lf("good_words", ["great", "love", "fine"], "pos")
BAD = keyword_lf("bad_words", ["awful", "hate"], "neg")
EXCLAIM = regex_lf("exclaim", r"!{2,}", "pos")
SHORT = sql_lf("short_text", "length(text) < 12", "neg")
MEH = keyword_lf("meh_words", ["meh", "ok"], "neg")


def votes(spark, cfg) -> set[tuple]:
    df = delta_io.read_table(spark, cfg.table_path("votes")).select(*VOTE_COLUMNS).toPandas()
    return set(df.itertuples(index=False, name=None))


def stats(applied) -> dict[str, tuple[int, int]]:
    return {lf.name: (lf.votes, lf.errors) for lf in applied.lfs}


@pytest.fixture(scope="module")
def delta_sequence(spark, tmp_path_factory):
    """Apply results and votes of each step of an edit sequence on a Delta source, then --force."""
    tmp = tmp_path_factory.mktemp("incr_delta")
    src = str(tmp / "src")
    rows = make_rows(40).drop(columns=["gold"])
    for i in range(4):  # four files, so a delete rewrites one of them
        write_deltalake(src, rows.iloc[i * 10:(i + 1) * 10], mode="append")
    cfg = make_cfg(tmp, src)
    cfg = replace(cfg, source=replace(cfg.source, format="delta", gold_column=None),
                  apply=replace(cfg.apply, max_error_rate=0.5))
    steps = {}

    def step(name, reg, **kw):
        result = apply_lfs.run(spark, cfg, run_id=name, registry=reg, **kw)
        steps[name] = (result, votes(spark, cfg), delta_io.table_version(cfg.table_path("votes")))
        return result

    step("full", registry(GOOD, BAD, EXCLAIM, SHORT, stars, picky))
    step("same", registry(GOOD, BAD, EXCLAIM, SHORT, stars, picky))
    step("change_lf", registry(GOOD_V2, BAD, EXCLAIM, SHORT, stars, picky))
    step("add_remove_lf", registry(GOOD_V2, BAD, SHORT, stars, picky, MEH))
    more = make_rows(46).iloc[40:].assign(text=lambda d: d.text + " love", id=lambda d: "n" + d.id)
    write_deltalake(src, more.drop(columns=["gold"]), mode="append")
    DeltaTable(src).delete("id IN ('r011', 'r012', 'r025')")
    DeltaTable(src).update(updates={"text": "'awful, meh !!'"}, predicate="id = 'r031'")
    step("edit_rows", registry(GOOD_V2, BAD, SHORT, stars, picky, MEH))
    before = delta_io.table_version(cfg.table_path("votes"))
    with pytest.raises(LFErrorRateExceeded, match="picky"):
        apply_lfs.run(spark, cfg, run_id="broken", registry=registry(GOOD_V2, BAD, SHORT, stars, picky_broken, MEH))
    steps["broken_version"] = before, delta_io.table_version(cfg.table_path("votes"))
    step("force", registry(GOOD_V2, BAD, SHORT, stars, picky, MEH), force=True)
    steps["votes_path"] = cfg.table_path("votes")
    return steps


def test_unchanged_lfs_are_not_run(delta_sequence):
    full, same, change = (delta_sequence[k][0] for k in ("full", "same", "change_lf"))
    assert full.applied_lfs == ("bad_words", "exclaim", "good_words", "picky", "short_text", "stars")
    assert full.applied_rows == 40 and not full.reused_lfs
    assert same.skipped  # nothing changed: the votes are reused as a whole
    # ... and its summary says that nothing ran, not what the apply that wrote the votes ran.
    assert same.applied_lfs == () and same.reused_lfs == full.applied_lfs and same.applied_rows == 0
    assert same.row_changes == {"method": f"votes up to date: reused votes v{same.votes_version}"}
    assert change.applied_lfs == ("good_words",)
    assert change.reused_lfs == ("bad_words", "exclaim", "picky", "short_text", "stars")
    assert change.applied_rows == 40
    # Votes of the reused LFs stay those of the first run; good_words' are new.
    old = {v for v in delta_sequence["full"][1] if v[1] != "good_words"}
    assert old <= delta_sequence["change_lf"][1]
    assert any(v[1] == "good_words" and v[0] == "r005" for v in delta_sequence["change_lf"][1])  # "meh, fine"


def test_added_and_removed_lfs(delta_sequence):
    result, rows, _ = delta_sequence["add_remove_lf"]
    assert result.applied_lfs == ("meh_words",)
    assert "exclaim" not in result.lf_names and not any(v[1] == "exclaim" for v in rows)
    assert result.row_changes["removed_lfs"] == ["exclaim"]
    assert {v[1] for v in rows} == {"bad_words", "good_words", "meh_words", "picky", "short_text", "stars"}


def test_new_gone_and_changed_rows(delta_sequence):
    result, rows, _ = delta_sequence["edit_rows"]
    assert result.applied_lfs == () and result.n_rows == 43
    assert result.row_changes["reapplied"] == 7  # 6 new rows and r031
    assert result.row_changes["gone"] == 3
    assert result.applied_rows == 7
    assert "Delta time travel" in result.row_changes["method"]
    ids = {v[0] for v in rows}
    assert not ids & {"r011", "r012", "r025"}
    assert ("r031", "bad_words") in {(v[0], v[1]) for v in rows}
    assert any(v[0] == "r031" and v[1] == "picky" and v[4] for v in rows)  # the edit made picky raise


def test_incremental_equals_force(delta_sequence):
    incremental, forced = delta_sequence["edit_rows"], delta_sequence["force"]
    assert forced[0].applied_lfs == forced[0].lf_names and forced[0].row_changes["method"] == "full apply: --force"
    assert incremental[1] == forced[1]
    assert stats(incremental[0]) == stats(forced[0])
    assert [s.error_samples for s in incremental[0].lfs] == [s.error_samples for s in forced[0].lfs]


def test_each_apply_is_one_commit_and_a_failure_keeps_the_votes(delta_sequence):
    versions = [delta_sequence[k][2] for k in ("full", "same", "change_lf", "add_remove_lf", "edit_rows")]
    assert versions == [0, 0, 1, 2, 3]
    before, after = delta_sequence["broken_version"]
    assert before == after == 3
    # Changing good_words replaced its partition only: the other LFs' files are the same files.
    files = {v: set(DeltaTable(delta_sequence["votes_path"], version=v).file_uris()) for v in (0, 1)}
    assert {f for f in files[0] if "lf_name=good_words" not in f} == {f for f in files[1] if "lf_name=good_words" not in f}
    assert not {f for f in files[0] if "lf_name=good_words" in f} & files[1]


def test_parquet_source_uses_row_hashes(spark, tmp_path, monkeypatch):
    rows = make_rows(30)
    src = write_source(tmp_path, rows)
    cfg = make_cfg(tmp_path, src)
    reg = registry(GOOD, BAD, stars)
    first = apply_lfs.run(spark, cfg, run_id="p1", registry=reg)
    assert first.row_hashes_version == 0
    edited = pd.concat([rows.iloc[2:], make_rows(33).iloc[30:].assign(id=lambda d: "n" + d.id)])
    edited.loc[edited.id == "r010", "text"] = "awful"
    (tmp_path / "src" / "part-0.parquet").unlink()
    edited.to_parquet(tmp_path / "src" / "part-1.parquet", index=False)
    second = apply_lfs.run(spark, cfg, run_id="p2", registry=reg)
    assert second.row_changes["reapplied"] == 4 and second.row_changes["gone"] == 2
    assert "not a Delta table" in second.row_changes["method"] and second.applied_lfs == ()
    incremental = votes(spark, cfg)
    forced = apply_lfs.run(spark, cfg, run_id="p3", registry=reg, force=True)
    assert votes(spark, cfg) == incremental and stats(second) == stats(forced)
    # The forced apply read the rows the stored hashes are of: it kept them (it wrote the table again, as big as
    # the votes, on every full apply).
    hashes_table = DeltaTable(cfg.table_path("votes") + "_row_hashes")
    assert forced.row_hashes_version == second.row_hashes_version == hashes_table.version()
    # An apply whose votes fail their checks (an LF over the error budget) stores no row hashes: the hashes
    # table is not committed to at all (an audit, session 23: it was written, then restored, two versions
    # for a refused apply), and the votes are unchanged.
    hashes = cfg.table_path("votes") + "_row_hashes"
    stored, version = sorted(DeltaTable(hashes).to_pandas()["__id"]), DeltaTable(hashes).version()
    make_rows(40).iloc[33:].assign(id=lambda d: "m" + d.id).to_parquet(tmp_path / "src" / "part-2.parquet", index=False)
    with pytest.raises(LFErrorRateExceeded):
        apply_lfs.run(spark, cfg, run_id="p4", registry=registry(GOOD, BAD, stars, picky_broken))
    assert sorted(DeltaTable(hashes).to_pandas()["__id"]) == stored and votes(spark, cfg) == incremental
    assert DeltaTable(hashes).version() == version
    # An apply that fails after it stored them (here its votes commit) puts them back.
    from jobs.delta_io import local

    real = local.LocalDeltaIO._commit

    def lost(self, root, *args, **kwargs):
        if root.rstrip("/").endswith("/votes"):
            raise RuntimeError("the votes commit failed")
        return real(self, root, *args, **kwargs)

    monkeypatch.setattr(local.LocalDeltaIO, "_commit", lost)
    with pytest.raises(Exception, match="the votes commit failed"):
        apply_lfs.run(spark, cfg, run_id="p5", registry=reg)
    assert sorted(DeltaTable(hashes).to_pandas()["__id"]) == stored and votes(spark, cfg) == incremental
    assert DeltaTable(hashes).history(1)[0]["operation"] == "RESTORE"


def test_parquet_appends_read_only_the_added_files(spark, tmp_path, caplog):
    """Files only added to a Parquet source: their rows are the new rows (no full hash comparison)."""
    import logging

    from lf_library.errors import InputDataError

    rows = make_rows(30)
    src = write_source(tmp_path, rows)
    cfg = make_cfg(tmp_path, src)
    reg = registry(GOOD, BAD, stars)
    apply_lfs.run(spark, cfg, run_id="a1", registry=reg)
    make_rows(36).iloc[30:].to_parquet(tmp_path / "src" / "part-1.parquet", index=False)
    with caplog.at_level(logging.INFO, logger="jobs.apply_lfs"):
        second = apply_lfs.run(spark, cfg, run_id="a2", registry=reg)
    # Every LF ran on the 6 new rows; the line said "applying no LF" until an operator misread it.
    names = ", ".join(sorted(lf.name for lf in reg.lfs))
    assert (f"apply: incremental, 0 LF(s) new or changed, {len(reg.lfs)} unchanged, 0 removed: running {names} on "
            "the 6 new or changed row(s) only") in caplog.messages, caplog.messages
    assert "1 file(s) appended" in second.row_changes["method"], second.row_changes
    assert second.applied_rows == 6 and second.n_rows == 36 and second.applied_lfs == ()
    hashes = delta_io.read_table(spark, cfg.table_path("votes") + "_row_hashes").toPandas()
    assert sorted(hashes["__id"]) == [f"r{i:03d}" for i in range(36)]
    incremental = votes(spark, cfg)
    forced = apply_lfs.run(spark, cfg, run_id="a3", registry=reg, force=True)
    assert votes(spark, cfg) == incremental and stats(second) == stats(forced)
    # An edited file is not an append: every row's hash is compared, and the edit is reapplied.
    edited = make_rows(36).iloc[30:].assign(text="awful")
    edited.to_parquet(tmp_path / "src" / "part-1.parquet", index=False)
    third = apply_lfs.run(spark, cfg, run_id="a4", registry=reg)
    assert "compared by content hash" in third.row_changes["method"] and third.row_changes["reapplied"] == 6
    # An added file that reuses an id fails naming the file and the id; the votes stay as they were.
    before = votes(spark, cfg)
    make_rows(3).to_parquet(tmp_path / "src" / "part-2.parquet", index=False)
    with pytest.raises(InputDataError, match=r"part-2\.parquet reuse id\(s\) 'r000'"):
        apply_lfs.run(spark, cfg, run_id="a5", registry=reg)
    assert votes(spark, cfg) == before


@pytest.fixture(scope="module")
def two_runs(spark, tmp_path_factory):
    """Two pipeline runs on a Delta source (rows appended between them): ``(cfg, first, second)``."""
    from jobs import pipeline

    tmp = tmp_path_factory.mktemp("verify")
    src = str(tmp / "src")
    write_deltalake(src, make_rows(40), mode="append")
    cfg = make_cfg(tmp, src)
    cfg = replace(cfg, source=replace(cfg.source, format="delta"))
    first = pipeline.run(spark, cfg, run_id="v1", registry=registry(GOOD, BAD, SHORT, stars)).summary
    write_deltalake(src, make_rows(50).iloc[40:].assign(id=lambda d: "n" + d.id), mode="append")
    second = pipeline.run(spark, cfg, run_id="v2", registry=registry(GOOD, BAD, SHORT, stars)).summary
    return cfg, first, second


def test_verify_rebuilds_a_past_run(spark, two_runs):
    from jobs import verify

    cfg, first, second = two_runs
    assert second["tables"]["votes"]["version"] == 1 and second["source"]["rows"] == 50
    # The run summary says what apply computed: no LF rerun on every row, the 10 appended rows only.
    assert second["apply"]["applied_rows"] == 10 and second["apply"]["applied_lfs"] == []
    assert sorted(second["apply"]["reused_lfs"]) == sorted(lf["name"] for lf in second["lfs"])
    assert first["apply"]["applied_rows"] == 40 and len(first["apply"]["applied_lfs"]) == 4
    checked = verify.run(spark, cfg, run_id="v1")
    assert checked["verified"] and checked["counts"] == {"rows": 40, "differences": 0}
    assert checked["tables"]["source"]["version"] == 0 and checked["tables"]["labels"]["version"] == 0
    assert verify.run(spark, cfg, run_id="v2")["counts"]["rows"] == 50


def test_verify_names_what_differs(spark, two_runs, tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from jobs import verify
    from lf_library.errors import ConfigError, InputDataError

    cfg, _, _ = two_runs
    with pytest.raises(ConfigError, match="run 'nope' has no summary"):
        verify.run(spark, cfg, run_id="nope")
    # Corrupt the data file of labels v1 in place: flip one row's label.
    files = DeltaTable(cfg.table_path("labels"), version=1).file_uris()
    target = next(f for f in files if pq.read_table(f.removeprefix("file://")).num_rows)
    path = target.removeprefix("file://")
    table = pq.read_table(path)
    labels = table.column("label").to_pylist()
    labels[0] = 1 - labels[0] if labels[0] in (0, 1) else 0
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label",
                                    pc.cast(labels, table.schema.field("label").type)), path)
    with pytest.raises(InputDataError, match=r"does not match run v2's rebuild .*1 row\(s\) with another label; e.g. row id"):
        verify.run(spark, cfg, run_id="v2")


def test_a_run_after_an_incremental_apply_groups_the_votes_once(spark, tmp_path, monkeypatch):
    """A drill (session 23): after an incremental apply (no row masks) aggregate and write each grouped the
    whole votes table by row; the run now groups it once for both. A full apply's masks are read, not grouped,
    and so are those of an incremental apply that changes no LF (session 24: jobs.incremental_masks); one that
    drops an LF groups the votes once, in its apply, into masks that aggregate and write read (jobs.grouped_masks)."""
    from jobs import aggregate, pipeline

    grouped = []
    real = aggregate.mask_frame
    monkeypatch.setattr(aggregate, "mask_frame", lambda *a, **k: grouped.append(1) or real(*a, **k))
    src = str(tmp_path / "src")
    write_deltalake(src, make_rows(40), mode="append")
    cfg = make_cfg(tmp_path, src)
    cfg = replace(cfg, source=replace(cfg.source, format="delta"))
    pipeline.run(spark, cfg, run_id="g1", registry=registry(GOOD, BAD, SHORT, stars))
    assert grouped == []  # the full apply's masks
    write_deltalake(src, make_rows(50).iloc[40:].assign(id=lambda d: "n" + d.id), mode="append")
    second = pipeline.run(spark, cfg, run_id="g2", registry=registry(GOOD, BAD, SHORT, stars)).summary
    assert second["apply"]["row_changes"]["reapplied"] == 10 and grouped == []  # masks carried and added
    assert DeltaTable(cfg.table_path("labels")).to_pandas().shape[0] == 50
    third = pipeline.run(spark, cfg, run_id="g3", registry=registry(GOOD, BAD, SHORT)).summary  # an LF dropped
    assert third["apply"]["row_changes"]["removed_lfs"] == ["stars"] and grouped == [1]
    assert DeltaTable(cfg.table_path("labels")).to_pandas().shape[0] == 50


def test_a_source_id_widened_between_runs_is_a_full_apply(spark, tmp_path):
    """A Delta source rewritten with its id column widened (int -> bigint, schema_mode overwrite): the incremental
    commit failed with a schema mismatch whose fix named lakelabel's internals, exit 2, until --force (a drill,
    session 26). Votes of another id type are not kept: the apply is a full one and says why."""
    import pyarrow as pa

    src = str(tmp_path / "src")
    rows = pd.DataFrame({"id": [1, 2, 3], "text": ["great", "awful", "meh"], "stars": [5, 1, None]})
    write_deltalake(src, pa.table({"id": pa.array(rows.id, pa.int32()), "text": rows.text,
                                   "stars": pa.array(rows.stars, pa.float64())}))
    cfg = make_cfg(tmp_path, src)
    cfg = replace(cfg, source=replace(cfg.source, format="delta", gold_column=None))
    reg = registry(GOOD, BAD, stars)
    apply_lfs.run(spark, cfg, run_id="narrow", registry=reg)
    wider = pd.concat([rows, pd.DataFrame({"id": [4], "text": ["love"], "stars": [4.0]})]).astype({"id": "int64"})
    write_deltalake(src, wider, mode="overwrite", schema_mode="overwrite")
    result = apply_lfs.run(spark, cfg, run_id="wide", registry=reg)
    assert result.row_changes["method"] == "full apply: the id column's type changed (int -> bigint)"
    assert dict(delta_io.read_table(spark, cfg.table_path("votes")).dtypes)["row_id"] == "bigint"
    assert {(r[0], r[1], r[3]) for r in votes(spark, cfg)} == {
        (1, "good_words", 1), (1, "stars", 1), (2, "bad_words", 0), (2, "stars", 0), (4, "good_words", 1), (4, "stars", 1)}


def test_a_value_moved_to_the_next_column_is_a_changed_row(spark, tmp_path):
    """Spark's hashes skip a null argument, so (subject='x', body=null) and (subject=null, body='x') hashed
    equal: an edit that moved the text to the next column was "0 row(s) new or changed" and kept its old votes
    (an incremental drill, session 38)."""
    from jobs.delta_io.changes import HASH_COLUMN, row_hashes

    before = spark.createDataFrame([("r1", "love it", None)], "id string, subject string, body string")
    after = spark.createDataFrame([("r1", None, "love it")], "id string, subject string, body string")
    assert row_hashes(before, "id").first()[HASH_COLUMN] != row_hashes(after, "id").first()[HASH_COLUMN]
    # End to end on a Parquet source (changed rows from the stored hashes): the moved rows are reapplied.
    rows = pd.DataFrame({"id": [f"r{i}" for i in range(6)], "subject": ["love it", "fine", None, "love", "ok", None],
                         "body": [None, None, "love this", None, "meh", "great"]})
    src = write_source(tmp_path, rows)
    cfg = make_cfg(tmp_path, src)
    cfg = replace(cfg, source=replace(cfg.source, gold_column=None))
    reg = registry(sql_lf("body_love", "body LIKE '%love%'", "pos"))
    apply_lfs.run(spark, cfg, run_id="m1", registry=reg)
    moved = rows.assign(subject=[None, None, None, None, "ok", None],
                        body=["love it", "fine", "love this", "love", "meh", "great"])
    moved.to_parquet(tmp_path / "src" / "part-0.parquet", index=False)
    second = apply_lfs.run(spark, cfg, run_id="m2", registry=reg)
    assert second.row_changes["reapplied"] == 3, second.row_changes
    assert {(r[0], r[3]) for r in votes(spark, cfg)} == {("r0", 1), ("r2", 1), ("r3", 1)}


def test_an_appended_csv_file_that_changes_the_inferred_schema_reapplies_every_row(spark, tmp_path):
    """With CSV's inferSchema an added file can change a column's type, and so how the old files' rows read: codes
    007 and 010 were ints (7, 10) until a file added A12, then strings ('007'). The appends-only path reapplied the
    new file's rows only, and the old rows kept the votes of their ints (an incremental drill, session 38)."""
    src = tmp_path / "csv"
    src.mkdir()
    (src / "a.csv").write_text("id,code\nr1,007\nr2,010\nr3,200\n")
    cfg = make_cfg(tmp_path, str(src))
    cfg = replace(cfg, source=replace(cfg.source, format="csv", gold_column=None,
                                      options={"inferSchema": "true", "header": "true"}))
    reg = registry(sql_lf("leading_zero", "cast(code AS string) LIKE '0%'", "pos"), sql_lf("any", "true", "neg"))
    apply_lfs.run(spark, cfg, run_id="c1", registry=reg)
    assert {r[0] for r in votes(spark, cfg) if r[1] == "leading_zero"} == set()  # 7, 10 and 200 as ints
    (src / "b.csv").write_text("id,code\nr4,A12\n")
    second = apply_lfs.run(spark, cfg, run_id="c2", registry=reg)
    assert "compared by content hash" in second.row_changes["method"] and second.row_changes["reapplied"] == 4
    incremental = votes(spark, cfg)
    assert {r[0] for r in incremental if r[1] == "leading_zero"} == {"r1", "r2"}
    apply_lfs.run(spark, cfg, run_id="c3", registry=reg, force=True)
    assert votes(spark, cfg) == incremental


def test_row_hashes_an_older_lakelabel_stored_are_compared_once(spark, tmp_path, monkeypatch):
    """Hashes stored before the null flags (no scheme in their commit) cannot be trusted for appends: the next apply
    compares every row, says why, and every row counts as changed that once; the appends-only path is back after."""
    import pyspark.sql.functions as F

    from jobs.delta_io import changes
    from jobs.delta_io.changes import HASH_COLUMN

    def old_hashes(df, id_column):  # the hash before session 38
        return df.select(F.col(id_column).alias(changes._ID), F.xxhash64(*[F.col(c) for c in df.columns])
                         .alias(HASH_COLUMN))

    src = write_source(tmp_path, make_rows(20))
    cfg = make_cfg(tmp_path, src)
    reg = registry(GOOD, BAD, stars)
    with monkeypatch.context() as m:
        m.setattr(changes, "row_hashes", old_hashes)
        m.setattr(changes, "SCHEME_KEY", "lakelabel.not_written_then")
        apply_lfs.run(spark, cfg, run_id="u1", registry=reg)
    make_rows(24).iloc[20:].to_parquet(tmp_path / "src" / "part-1.parquet", index=False)
    second = apply_lfs.run(spark, cfg, run_id="u2", registry=reg)
    assert second.row_changes["method"].endswith("(hashed by an older lakelabel, which missed a value moved between "
                                                 "two columns: every row counts as changed this once)"), second.row_changes
    assert second.row_changes["reapplied"] == 24
    incremental = votes(spark, cfg)
    make_rows(26).iloc[24:].to_parquet(tmp_path / "src" / "part-2.parquet", index=False)
    third = apply_lfs.run(spark, cfg, run_id="u3", registry=reg)
    assert "1 file(s) appended" in third.row_changes["method"] and third.applied_rows == 2, third.row_changes
    after = votes(spark, cfg)
    assert after >= incremental
    apply_lfs.run(spark, cfg, run_id="u4", registry=reg, force=True)
    assert votes(spark, cfg) == after


def test_a_delta_append_deleted_again_is_no_change(spark, tmp_path):
    """Rows appended and deleted again between two applies leave the same data files: the method said "0 file(s)
    appended, their rows are new" (an incremental drill, session 38)."""
    src = str(tmp_path / "src")
    write_deltalake(src, make_rows(10).drop(columns=["gold"]))
    cfg = make_cfg(tmp_path, src)
    cfg = replace(cfg, source=replace(cfg.source, format="delta", gold_column=None))
    reg = registry(GOOD, BAD)
    apply_lfs.run(spark, cfg, run_id="d1", registry=reg)
    write_deltalake(src, make_rows(12).iloc[10:].drop(columns=["gold"]), mode="append")
    DeltaTable(src).delete("id IN ('r010', 'r011')")
    second = apply_lfs.run(spark, cfg, run_id="d2", registry=reg)
    assert second.row_changes["method"] == ("Delta time travel v0 -> v2: the same data files as then: the commits in "
                                            "between changed no row"), second.row_changes
    assert second.row_changes["reapplied"] == 0 and second.applied_rows == 0
