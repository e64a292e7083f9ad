"""Delta tables without the Delta jars: Spark writes Parquet, delta-rs commits, Spark reads back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from jobs.delta_io import (
    DeltaWriteError,
    LocalDeltaIO,
    SourceReadError,
    check_readable_locally,
    read_metadata,
    read_source,
    read_table,
    table_exists,
    table_version,
    write_table,
)

pytestmark = pytest.mark.spark

SCHEMA = "id long, text string, score double"


def frame(spark, rows: list[tuple], ddl: str):
    """A DataFrame from literal rows, built through Arrow (no Python worker round trip)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = spark.createDataFrame([], ddl).schema
    arrow = to_arrow_schema(schema)
    return spark.createDataFrame(pa.Table.from_pylist([dict(zip(arrow.names, r)) for r in rows], schema=arrow), schema)


def rows_of(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def delta_rows(path: Path, columns: list[str], version: int | None = None) -> list[tuple]:
    table = DeltaTable(str(path), version=version).to_pyarrow_table()
    return sorted(tuple(r[c] for c in columns) for r in table.to_pylist())


def data_files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*.parquet")}


def test_create_append_overwrite_round_trip(spark, tmp_path):
    path = tmp_path / "t"
    first = [(1, "a", 0.5), (2, 'quote " and\nnewline', None), (3, None, 1.5)]
    assert table_version(str(path)) is None and not table_exists(str(path))

    created = write_table(
        frame(spark, first, SCHEMA).repartition(6), str(path), mode="append", commit_metadata={"run_id": "r1"}
    )
    appended = write_table(frame(spark, [(4, "d", 2.0)], SCHEMA), str(path), mode="append")
    overwritten = write_table(
        frame(spark, [(9, "z", 9.0)], SCHEMA), str(path), mode="overwrite", commit_metadata={"run_id": "r3"}
    )

    assert (created.version, appended.version, overwritten.version) == (0, 1, 2)
    assert (created.num_records, appended.num_records, overwritten.num_records) == (3, 1, 1)
    # Six Spark partitions, three rows: one file per non-empty partition.
    assert created.num_files == 3 and not created.skipped
    assert table_version(str(path)) == 2 and table_exists(str(path))
    cols = ["id", "text", "score"]
    for version, expected in [(0, first), (1, first + [(4, "d", 2.0)]), (2, [(9, "z", 9.0)])]:
        assert rows_of(read_table(spark, str(path), version=version)) == sorted(expected)
        assert delta_rows(path, cols, version) == sorted(expected)
    latest = read_table(spark, str(path))
    assert latest.columns == cols and rows_of(latest) == [(9, "z", 9.0)]
    assert read_metadata(str(path)) == {"run_id": "r3"}
    stats = DeltaTable(str(path), version=0).get_add_actions(flatten=True)
    assert sum(pa.table(stats).column("num_records").to_pylist()) == 3


def test_partitioned_write_uses_hive_dirs_and_reads_back_typed(spark, tmp_path):
    path = tmp_path / "p"
    long_text = "x" * 40
    rows = [
        (1, "a b/c=%", 2024, dt.datetime(2024, 1, 1, 0, 0, 0, 1)),
        (2, "a b/c=%", 2025, dt.datetime(2024, 1, 2)),
        (3, None, 2025, None),
        (4, "plain", 2024, dt.datetime(2024, 1, 3)),
        (5, "plain", 2024, dt.datetime(2024, 1, 4)),
    ]
    df = frame(spark, rows, "id long, src string, year int, ts timestamp").coalesce(1)
    df = df.selectExpr("id", "src", "year", "ts", f"'{long_text}' AS text")
    scanned: list[int] = []
    result = write_table(
        df,
        str(path),
        mode="overwrite",
        partition_by=["src", "year"],
        validate=lambda files: scanned.append(spark.read.parquet(*files).count()),
    )

    # One Spark partition, four partition values: one file each, partition columns left out of the files.
    assert result.num_files == 4 and result.num_records == 5 and scanned == [5]
    dirs = {str(Path(f).parent) for f in data_files(path)}
    assert "src=__HIVE_DEFAULT_PARTITION__/year=2025" in dirs
    assert "src=a b%2Fc%3D%25/year=2024" in dirs
    some_file = next(path.rglob("*.parquet"))
    assert pa.parquet.read_schema(some_file).names == ["id", "ts", "text"]

    back = read_table(spark, str(path))
    assert back.columns == ["id", "src", "year", "ts", "text"]
    assert dict(back.dtypes)["year"] == "int"
    expected = sorted(r + (long_text,) for r in rows)
    assert rows_of(back) == expected
    assert delta_rows(path, back.columns) == sorted(
        r[:3] + (r[3].replace(tzinfo=dt.timezone.utc) if r[3] else None, long_text) for r in rows
    )
    # Footer stats: the max timestamp rounds up to the next millisecond, long strings keep no max.
    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pylist()
    first = next(a for a in actions if a["num_records"] == 1 and a["partition.year"] == 2024 and a["min.id"] == 1)
    assert first["max.ts"] > dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=dt.timezone.utc)
    assert first["null_count.ts"] == 0 and first.get("max.text") is None


def test_partition_values_of_a_delta_rs_table_are_the_logs(spark, tmp_path):
    """delta-rs percent-encodes a partition value's UTF-8 bytes (``lang=%C3%A9`` for é); Spark decodes each ``%XX``
    as one character (Ã©), so a source read with Spark's partition discovery had other values than the table (a
    drill, session 26: an SQL LF on the partition column silently missed those rows). The log's values win."""
    import pandas as pd

    path = str(tmp_path / "src")
    rows = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "lang": ["é", "日本", "a b/c", None, "en", "é"],
                         "day": pd.to_datetime(["2024-01-01 10:30", "2024-01-02", "2024-01-02", "2024-01-03",
                                                "2024-01-03", "2024-01-04"], format="mixed")})
    write_deltalake(path, rows, partition_by=["lang", "day"])
    assert (tmp_path / "src" / "lang=%C3%A9").is_dir()
    back = read_table(spark, path)
    assert back.columns == ["id", "lang", "day"]
    assert rows_of(back) == [tuple(r) for r in rows.astype(object).where(rows.notna(), None).itertuples(index=False)]
    assert back.where("lang = 'é'").count() == 2
    io = LocalDeltaIO()
    some = [f for f in io.snapshot_files(path) if "%C3%A9" in f or "lang=en" in f]
    assert sorted(io.read_table(spark, path, files=some).toPandas()["lang"]) == ["en", "é", "é"]


def test_empty_dataframe_creates_table_with_schema(spark, tmp_path):
    path = tmp_path / "empty"
    df = frame(spark, [], "id long, day date, tags array<string>, p string")
    result = write_table(df, str(path), mode="append", partition_by=["p"])

    assert (result.version, result.num_files, result.num_records) == (0, 0, 0)
    back = read_table(spark, str(path))
    assert back.count() == 0
    assert back.dtypes == [("id", "bigint"), ("day", "date"), ("tags", "array<string>"), ("p", "string")]
    assert DeltaTable(str(path)).metadata().partition_columns == ["p"]


def test_app_transaction_commits_exactly_once(spark, tmp_path):
    path = tmp_path / "once"
    df = frame(spark, [(1, "a", 1.0)], SCHEMA)
    spark.sparkContext.setJobDescription("outer job")
    first = write_table(df, str(path), mode="append", app_id="labels", app_version=7, description="write labels")
    assert spark.sparkContext.getLocalProperty("spark.job.description") == "outer job"
    spark.sparkContext.setJobDescription(None)
    files = data_files(path)
    again = write_table(df, str(path), mode="append", app_id="labels", app_version=7)
    older = write_table(df, str(path), mode="append", app_id="labels", app_version=3)

    assert first.version == 0 and not first.skipped
    assert again == older == type(again)(path=str(path), version=None, num_files=0, num_records=0, skipped=True)
    assert data_files(path) == files and table_version(str(path)) == 0
    newer = write_table(df, str(path), mode="append", app_id="labels", app_version=8)
    assert newer.version == 1 and DeltaTable(str(path)).transaction_version("labels") == 8
    assert read_table(spark, str(path)).count() == 2


def test_validate_failure_deletes_files_and_keeps_table(spark, tmp_path):
    path = tmp_path / "v"
    write_table(frame(spark, [(1, "a", 1.0)], SCHEMA), str(path), mode="append")
    before = data_files(path)
    seen: list[str] = []

    def reject(files: list[str]) -> None:
        seen.extend(files)
        rows = spark.read.parquet(*files).count()
        raise ValueError(f"error rate too high in {rows} new rows")

    new = frame(spark, [(2, "b", 2.0), (3, "c", 3.0)], SCHEMA)
    with pytest.raises(ValueError, match="error rate too high in 2 new rows"):
        write_table(new, str(path), mode="append", validate=reject)

    assert seen and all(f.startswith("file:///") for f in seen)
    assert data_files(path) == before and table_version(str(path)) == 0
    assert rows_of(read_table(spark, str(path))) == [(1, "a", 1.0)]


def test_failed_task_deletes_files_of_the_other_tasks(spark, tmp_path):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    path = tmp_path / "f"
    write_table(frame(spark, [(1, "a", 1.0)], SCHEMA), str(path), mode="append")
    before = data_files(path)

    @F.udf(T.DoubleType())
    def boom(i):
        return 1.0 / (i - 57)

    df = spark.range(0, 100, numPartitions=4).select("id", F.lit("t").alias("text"), boom("id").alias("score"))
    with pytest.raises(DeltaWriteError, match=r"before commit; the table stays at version 0: .*ZeroDivisionError"):
        write_table(df, str(path), mode="append")
    assert data_files(path) == before and table_version(str(path)) == 0


def test_failed_write_to_a_partitioned_table_leaves_no_new_empty_folders(spark, tmp_path):
    """An operator drill found ``votes/lf_name=boom/`` and the like, empty, after a failed apply on an
    existing votes table: the files were deleted, their new partition folders were not."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    path = tmp_path / "p"
    write_table(frame(spark, [(1, "a", 1.0)], SCHEMA), str(path), mode="append", partition_by=["text"])
    (path / "text=kept_empty").mkdir()  # a folder the table had before: not this write's to remove
    folders = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_dir())

    @F.udf(T.DoubleType())
    def boom(i):
        return 1.0 / (i - 57)

    df = spark.range(0, 100, numPartitions=4).select("id", F.concat(F.lit("t"), (F.col("id") % 7).cast("string"))
                                                     .alias("text"), boom("id").alias("score"))
    with pytest.raises(DeltaWriteError, match=r"before commit; the table stays at version 0"):
        write_table(df, str(path), mode="append", partition_by=["text"])
    assert sorted(p.relative_to(path) for p in path.rglob("*") if p.is_dir()) == folders
    assert table_version(str(path)) == 0


def test_schema_and_partitioning_mismatch_are_refused(spark, tmp_path):
    path = tmp_path / "s"
    write_table(frame(spark, [(1, "a", 1.0)], SCHEMA), str(path), mode="append")
    table_id = DeltaTable(str(path)).metadata().id

    narrower = frame(spark, [(2, "b", 2.0, "x")], "id int, Text string, score double, extra string")
    with pytest.raises(DeltaWriteError, match=r"cannot append to Delta table .*/s: .*column 'id' is long in the table "
                       r"but integer in the DataFrame; column 'text' is missing .*'Text' is not in the table "
                       r"\(the table has 'text'.*overwrite_schema=True"):  # fmt: skip
        write_table(narrower, str(path), mode="append")
    with pytest.raises(DeltaWriteError, match="cannot overwrite to Delta table"):
        write_table(narrower, str(path), mode="overwrite")
    with pytest.raises(DeltaWriteError, match=r"partitioned by \[\], but the write asks for \['text'\]"):
        write_table(frame(spark, [(2, "b", 2.0)], SCHEMA), str(path), mode="append", partition_by=["text"])
    with pytest.raises(ValueError, match="overwrite_schema=True needs mode='overwrite'"):
        write_table(narrower, str(path), mode="append", overwrite_schema=True)
    assert table_version(str(path)) == 0

    replaced = write_table(narrower, str(path), mode="overwrite", overwrite_schema=True)
    assert replaced.version == 1 and DeltaTable(str(path)).metadata().id == table_id
    assert rows_of(read_table(spark, str(path))) == [(2, "b", 2.0, "x")]
    repartitioned = write_table(narrower, str(path), mode="overwrite", overwrite_schema=True, partition_by=["extra"])
    assert repartitioned.version == 2 and DeltaTable(str(path)).metadata().partition_columns == ["extra"]
    assert rows_of(read_table(spark, str(path))) == [(2, "b", 2.0, "x")]


def test_read_source_detects_formats_and_fingerprints_data(spark, tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text('id,text\n1,"say ""hi""\nthere"\n2,plain\n')
    df, info = read_source(spark, str(csv))
    assert info.format == "csv" and info.version is None and info.path == csv.as_uri()
    assert df.dtypes == [("id", "string"), ("text", "string")]
    assert rows_of(df) == [("1", 'say "hi"\nthere'), ("2", "plain")]
    typed, _ = read_source(spark, str(csv), options={"inferSchema": "true"})
    assert dict(typed.dtypes)["id"] == "int"

    csv.write_text("id,text\n1,changed\n")
    _, changed = read_source(spark, str(csv), format="csv")
    assert changed.fingerprint.startswith("files:") and changed.fingerprint != info.fingerprint

    pq_dir = tmp_path / "pq"
    frame(spark, [(1, "a", 1.0)], SCHEMA).write.parquet(str(pq_dir))
    pdf, pinfo = read_source(spark, str(pq_dir))
    assert pinfo.format == "parquet" and rows_of(pdf) == [(1, "a", 1.0)]

    table = tmp_path / "delta"
    write_table(frame(spark, [(1, "a", 1.0)], SCHEMA), str(table), mode="append")
    ddf, dinfo = read_source(spark, str(table))
    table_id = DeltaTable(str(table)).metadata().id
    assert (dinfo.format, dinfo.version, dinfo.fingerprint) == ("delta", 0, f"delta:{table_id}@0")
    write_table(frame(spark, [(2, "b", 2.0)], SCHEMA), str(table), mode="append")
    ddf2, dinfo2 = read_source(spark, str(table), format="delta")
    assert dinfo2.fingerprint == f"delta:{table_id}@1" and ddf2.count() == 2 and ddf.count() == 1
    old, old_info = read_source(spark, str(table), options={"versionAsOf": "0"})
    assert old_info.version == 0 and old.count() == 1

    with pytest.raises(SourceReadError, match=r"source .*nope does not exist; expected a Delta table directory"):
        read_source(spark, str(tmp_path / "nope"))
    with pytest.raises(SourceReadError, match=r"is not a Delta table: .*_delta_log is missing"):
        read_source(spark, str(pq_dir), format="delta")
    with pytest.raises(SourceReadError, match="is a Delta table; reading its directory as parquet"):
        read_source(spark, str(table), format="parquet")
    with pytest.raises(SourceReadError, match="no Delta table at"):
        read_table(spark, str(pq_dir))


class MountedIO(LocalDeltaIO):
    """Serves ``dbfs:/`` tables from a local folder, the way the native IO reads them through Spark
    on Databricks (pyarrow cannot open dbfs:/, so read_source hands such paths to the IO)."""

    def __init__(self, mount: Path) -> None:
        super().__init__()
        self.mount = mount

    def _on_disk(self, path: str) -> str:
        return str(self.mount) + path.removeprefix("dbfs:")

    def table_exists(self, path: str) -> bool:
        return super().table_exists(self._on_disk(path))

    def describe_table(self, path: str, *, version: int | None = None) -> tuple[str, int]:
        return super().describe_table(self._on_disk(path), version=version)

    def read_table(self, spark, path: str, *, version: int | None = None):
        return super().read_table(spark, self._on_disk(path), version=version)


def test_a_delta_source_at_a_dbfs_uri_keeps_its_uri_in_lineage(spark, tmp_path):
    write_table(frame(spark, [(1, "a", 1.0)], SCHEMA), str(tmp_path / "lake" / "src"), mode="append")
    df, info = read_source(spark, "dbfs:/lake/src", io=MountedIO(tmp_path))
    assert (info.path, info.format, info.version) == ("dbfs:/lake/src", "delta", 0) and df.count() == 1


def test_tables_the_local_reader_cannot_read_are_refused(spark, tmp_path):
    data = pa.table({"id": [1, 2], "text": ["a", "b"]})
    mapped = tmp_path / "mapped"
    write_deltalake(str(mapped), data, configuration={"delta.columnMapping.mode": "name"})
    with pytest.raises(SourceReadError, match=r"uses column mapping \(delta.columnMapping.mode=name.*Delta Spark"):
        read_table(spark, str(mapped))
    with pytest.raises(DeltaWriteError, match="cannot append to .*column mapping"):
        write_table(frame(spark, [(3, "c")], "id long, text string"), str(mapped), mode="append")

    # The deletion-vector feature without vectors (Databricks' default) reads fine...
    dv = tmp_path / "dv"
    write_deltalake(str(dv), data, configuration={"delta.enableDeletionVectors": "true"})
    assert "deletionVectors" in DeltaTable(str(dv)).protocol().reader_features
    assert rows_of(read_table(spark, str(dv))) == [(1, "a"), (2, "b")]
    # ...but files that carry deletion vectors would bring deleted rows back.
    protocol = DeltaTable(str(dv)).protocol()
    with pytest.raises(SourceReadError, match=r"has deletion vectors on 2 file\(s\).*REORG TABLE"):
        check_readable_locally(str(dv), protocol, {}, files_with_deletion_vectors=2)


def test_bad_arguments_name_the_valid_values(spark, tmp_path):
    df = frame(spark, [(1, "a", 1.0)], SCHEMA)
    with pytest.raises(ValueError, match="mode must be one of append, overwrite; got 'upsert'"):
        write_table(df, str(tmp_path / "x"), mode="upsert")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="app_id and app_version go together"):
        write_table(df, str(tmp_path / "x"), mode="append", app_id="a")
    with pytest.raises(DeltaWriteError, match=r"partition column 'nope' is not a column .*: id, text, score"):
        write_table(df, str(tmp_path / "x"), mode="append", partition_by=["nope"])
    with pytest.raises(ValueError, match="format must be one of delta, parquet, csv, auto"):
        read_source(spark, str(tmp_path), format="json")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    meta_path = tmp_path / "m"
    write_table(df, str(meta_path), mode="append", commit_metadata={"a": "1"})
    log_line = (meta_path / "_delta_log" / "00000000000000000000.json").read_text().splitlines()[0]
    assert json.loads(json.loads(log_line)["commitInfo"]["userMetadata"])["a"] == "1"


def test_a_table_feature_delta_rs_cannot_read_is_named(tmp_path):
    """A table whose protocol names a reader feature delta-rs does not know (a newer Delta engine's): exit 1 with
    "DeltaError: Kernel error: Unsupported: Feature 'x' is not supported" (a drill, session 26). Now bad input
    naming the table, the feature and what reads it."""
    import pandas as pd

    path = tmp_path / "src"
    write_deltalake(str(path), pd.DataFrame({"id": [1], "text": ["a"]}))
    (path / "_delta_log" / "00000000000000000001.json").write_text(
        json.dumps({"commitInfo": {"timestamp": 1, "operation": "SET TBLPROPERTIES"}}) + "\n" + json.dumps(
            {"protocol": {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["fancyNewThing"],
                          "writerFeatures": ["fancyNewThing"]}}) + "\n")
    with pytest.raises(SourceReadError, match=rf"Delta table {path} uses the table feature 'fancyNewThing', which "
                                              r"deltalake [\d.]+ \(lakelabel's local Delta reader\) does not support "
                                              r"\(.*\); run with the Delta Spark extension"):
        LocalDeltaIO().describe_table(str(path))


def test_a_version_whose_files_a_vacuum_removed_is_refused_naming_it(spark, tmp_path):
    """A year of daily runs and a VACUUM (README "Disk over time"): diff and explain of a run older than the
    retention read its version's files, which Spark reported only once a job ran (PATH_NOT_FOUND, exit 1)."""
    path = tmp_path / "labels"
    write_deltalake(str(path), pa.table({"id": [1, 2]}))
    write_deltalake(str(path), pa.table({"id": [3]}), mode="overwrite")
    DeltaTable(str(path)).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(SourceReadError, match=r"version 0 of Delta table .*/labels cannot be read: 1 of its 1 data "
                                              r"file\(s\) are gone, .* A VACUUM removed .* at version \d"):
        read_table(spark, str(path), version=0)
    assert rows_of(read_table(spark, str(path))) == [(3,)]
    # A file of the latest version gone: damage, not a VACUUM.
    Path(DeltaTable(str(path)).file_uris()[0]).unlink()
    with pytest.raises(SourceReadError, match=r"labels v\d+ cannot be read: 1 of its 1 .* the table is damaged"):
        read_table(spark, str(path))


@pytest.mark.parametrize("folder", ["my lake", "lac-ü", "100%", "lake #1?"])
def test_a_lakehouse_path_with_a_space_or_a_non_ascii_letter_reads(spark, tmp_path, folder):
    """delta-rs's file_uris() percent-encodes the table's folder: a lakehouse under 'my lake' failed its first
    read (Spark's PATH_NOT_FOUND, exit 1; the demo itself), and the vacuum check called the table damaged (a
    review, session 27). Partition folders keep their own escapes (a value 'a b' is the folder p=a%20b). Under
    'lake #1?' an incremental read (files=) named a file of the table as not one of it: _normalize cut the file://
    form at the '#' (a drill, session 28)."""
    from jobs.delta_io import LocalDeltaIO

    path = tmp_path / folder / "votes"
    rows = pa.table({"id": [1, 2, 3, 4], "p": ["a b", "ü", "x/y", "plain"]})
    write_deltalake(str(path), rows, partition_by=["p"])
    write_deltalake(str(path / ".." / "flat"), rows)
    for table in (path, tmp_path / folder / "flat"):
        assert sorted(rows_of(read_table(spark, str(table)).select("id", "p"))) == [
            (1, "a b"), (2, "ü"), (3, "x/y"), (4, "plain")]
        files = LocalDeltaIO().snapshot_files(str(table))
        assert files and all(Path(f).exists() for f in files), files
        one = LocalDeltaIO().snapshot_actions(str(table))[0]["uri"]  # what incremental reads pass as files=
        assert rows_of(LocalDeltaIO().read_table(spark, str(table), files=[one]).select("id"))
    # The vacuum check under such a folder: an old version's files gone is named as the vacuum's doing.
    write_deltalake(str(path), rows.slice(0, 1), mode="overwrite")
    DeltaTable(str(path)).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(SourceReadError, match=r"version 0 of Delta table .* cannot be read: 4 of its 4 data file\(s\) "
                                              r"are gone, .* A VACUUM removed"):
        read_table(spark, str(path), version=0)
    assert rows_of(read_table(spark, str(path)).select("id")) == [(1,)]


def test_a_table_under_a_folder_with_a_hash_keeps_its_commit_metadata(tmp_path):
    """deltalake 1.6's history() is empty under a folder named with a '#': the demo under such a lakehouse exited 2,
    its own labels table "not written by lakelabel" (a drill, session 28). The commit files answer instead."""
    from deltalake import CommitProperties

    from jobs.delta_io import LocalDeltaIO

    path = tmp_path / "lake #1" / "labels"
    for n in (1, 2):
        meta = json.dumps({"lakelabel.write": n})
        write_deltalake(str(path), pa.table({"id": [n]}), mode="append",
                        commit_properties=CommitProperties(custom_metadata={"userMetadata": meta}))
    io = LocalDeltaIO()
    assert io.read_metadata(str(path))["lakelabel.write"] == 2
    assert io.read_metadata_at(str(path), 0)["lakelabel.write"] == 1


def test_a_table_under_a_folder_with_a_percent_escape_is_refused_naming_it(tmp_path):
    """delta-rs decodes '%20' in a local path: the demo under '/tmp/100%20' wrote its first commit, then exited 1
    with "Kernel error: File not found" (a drill, session 28). Refused before anything is written, naming the fix."""
    from jobs.delta_io import LocalDeltaIO

    path = tmp_path / "lake%201" / "votes"
    write_deltalake(str(tmp_path / "votes"), pa.table({"id": [1]}))  # delta-rs itself fails writing it there
    path.parent.mkdir()
    (tmp_path / "votes").rename(path)
    refused = r"Delta table .*/lake%201/votes: its path holds '%20', which delta-rs .* rename the folder"
    for call in (LocalDeltaIO().table_exists, LocalDeltaIO().table_version, LocalDeltaIO().snapshot_files):
        with pytest.raises(SourceReadError, match=refused):
            call(str(path))
    assert LocalDeltaIO().table_exists(str(tmp_path / "100% sure" / "votes")) is False


def test_odd_paths_a_review_found(tmp_path):
    """A review of the odd-path fixes: a path delta-rs cannot open (a percent escape) is not driver-readable, so
    `gold import` with Spark's Delta IO takes it (it raised); under a '#' folder, where history() is empty, the
    commit files' fallback skips a garbled old commit that a checkpoint covers (a JSONDecodeError)."""
    from jobs.delta_io import LocalDeltaIO
    from jobs.delta_io.logs import table_history

    assert LocalDeltaIO().driver_readable(str(tmp_path / "x%20" / "gold")) is False
    path = tmp_path / "a #b" / "t"
    for i in range(5):
        write_deltalake(str(path), pa.table({"id": [i]}), mode="append")
    DeltaTable(str(path)).create_checkpoint()
    first = path / "_delta_log" / f"{1:020d}.json"
    first.write_text('{"commitInfo": {garbled\n' + first.read_text())
    table = DeltaTable(str(path))
    assert table.history() == []  # deltalake 1.6 under a '#' folder
    assert [e["version"] for e in table_history(table, str(path))] == [4, 3, 2, 1, 0]
