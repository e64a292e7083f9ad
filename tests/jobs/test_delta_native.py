"""Choosing the Delta path, and the contract both paths share (schemas, commit metadata).

The native path needs the Delta Spark jars, which cannot be downloaded here: its round trips are
marked ``cluster_native`` and skip with the reason where the shared session lacks the extension.
Everything the two paths share runs here on the local path.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from pyspark.sql.pandas.types import from_arrow_schema

from jobs import pipeline
from jobs.delta_io import history as delta_history
from jobs.runtime.config_loading import config_from_dict
from jobs.delta_io import (
    DeltaWriteError,
    LocalDeltaIO,
    delta_io,
    frame_to_write,
    read_metadata,
    read_table,
    stored_schema,
    write_table,
)
from jobs.delta_io.native import (
    NativeDeltaIO,
    _jvm_loads_delta,
    _python_has_delta,
    _remove_if_empty,
    _remove_tree,
    _staging_paths,
    _write_options,
    native_delta_missing,
    native_delta_unavailable,
)
from jobs.apply_lfs import votes_table_schema
from jobs.write_labels import labels_schema
from lf_library.errors import ConfigError

pytestmark = pytest.mark.spark

EXT = "io.delta.sql.DeltaSparkSessionExtension"
NO_JARS = "the Delta jars are not on the classpath (the JVM cannot load io.delta.tables.DeltaTable)"
NO_PACKAGE = "the delta-spark Python package is not installed (import delta.tables failed)"


def no_extension(value: str | None) -> str:
    return f"spark.sql.extensions ({value or 'unset'}) does not include {EXT}"


# How to run the cluster_native tests on a machine that reaches Maven Central (tests/conftest.py).
OPT_IN = (
    "or on local Spark with LAKELABEL_TEST_DELTA_PACKAGES=io.delta:delta-spark_4.1_2.13:4.4.1 set and "
    "`pip install delta-spark`"
)


@pytest.fixture
def session_without_delta(spark):
    """The shared session, for tests that assert what a session WITHOUT Delta Spark gets.

    They skip where the suite's session has Delta (Databricks, or LAKELABEL_TEST_DELTA_PACKAGES).
    """
    extensions = spark.conf.get("spark.sql.extensions", None) or ""
    present = [
        what
        for what, there in [
            ("the Delta jars", _jvm_loads_delta(spark)),
            (f"spark.sql.extensions={extensions}", EXT in extensions),
            ("the delta-spark Python package", _python_has_delta()),
            ("a Databricks runtime", bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))),
        ]
        if there
    ]
    if present:
        pytest.skip(f"checks a session without Delta Spark, but this one has {', '.join(present)}")
    return spark


# --------------------------------------------------------------------------------------------
# selection


def test_auto_and_local_choose_the_local_path_without_the_extension(session_without_delta, monkeypatch):
    spark = session_without_delta
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert type(delta_io(spark, "auto")) is LocalDeltaIO
    assert type(delta_io(spark, "local")) is LocalDeltaIO
    assert type(delta_io(spark)) is LocalDeltaIO
    assert type(delta_io(None, "auto")) is LocalDeltaIO


def test_native_without_the_extension_names_what_is_missing_and_the_fix(session_without_delta, monkeypatch):
    spark = session_without_delta
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    with pytest.raises(ConfigError) as err:
        delta_io(spark, "native")
    assert str(err.value) == (
        f"tables.delta_io = 'native' needs the Delta Spark extension, but {NO_JARS}; {no_extension(None)}; "
        f"{NO_PACKAGE}. Fix: install `lakelabel[delta]` (delta-spark) and start Spark with the Delta jars of your "
        f"Spark version (e.g. --packages io.delta:delta-spark_4.1_2.13:4.4.1 for Spark 4.1), spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension and "
        f"spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog (or run on Databricks); "
        f"or set tables.delta_io: local (or auto)"
    )
    with pytest.raises(ConfigError, match="needs the Delta Spark extension, but there is no Spark session"):
        delta_io(None, "native")


def test_bad_delta_io_values_are_rejected_naming_the_key_and_the_valid_values(spark):
    invalid = r"^tables.delta_io = '{}' is not valid; choose one of: auto, local, native$"
    with pytest.raises(ConfigError, match=invalid.format("delta")):
        config_from_dict({"tables": {"delta_io": "delta"}})
    assert config_from_dict({}).tables.delta_io == "auto"
    assert config_from_dict({"tables": {"delta_io": "native"}}).tables.delta_io == "native"
    with pytest.raises(ConfigError, match=invalid.format("spark")):
        delta_io(spark, "spark")  # type: ignore[arg-type]


def test_detection_reads_the_extension_setting_runtime_jars_and_package():
    cluster = {"spark.sql.extensions": f"com.example.Other, {EXT}"}
    has_all = dict(jvm_class_loadable=True, python_package=True)
    assert native_delta_missing(extensions=cluster["spark.sql.extensions"], databricks_runtime=None, **has_all) == []
    assert native_delta_missing(extensions="com.example.Other", databricks_runtime=None, **has_all) == [
        no_extension("com.example.Other")
    ]
    # Jars and extension present, Python API absent (pip install without the [delta] extra).
    assert native_delta_missing(
        extensions=EXT, databricks_runtime=None, jvm_class_loadable=True, python_package=False
    ) == [NO_PACKAGE]
    # Spark Connect cannot ask the JVM: the extension setting decides.
    remote = native_delta_missing(extensions=EXT, databricks_runtime=None, jvm_class_loadable=None, python_package=True)
    assert remote == []
    # A Databricks runtime ships and configures Delta.
    on_databricks = native_delta_missing(
        extensions=None, databricks_runtime="15.4", jvm_class_loadable=None, python_package=True
    )
    assert on_databricks == []


def test_detection_of_a_live_session_without_delta(session_without_delta, monkeypatch):
    spark = session_without_delta
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert native_delta_unavailable(spark) == [NO_JARS, no_extension(None), NO_PACKAGE]
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    assert native_delta_unavailable(spark) == [NO_PACKAGE]
    assert native_delta_unavailable(None) == ["there is no Spark session"]


def test_native_write_options():
    assert _write_options(user_metadata="{}", overwrite_schema=False, app_id=None, app_version=None) == {
        "userMetadata": "{}"
    }
    assert _write_options(user_metadata='{"a": "1"}', overwrite_schema=True, app_id="labels", app_version=7) == {
        "userMetadata": '{"a": "1"}',
        "overwriteSchema": "true",
        "txnAppId": "labels",
        "txnVersion": "7",
    }


# --------------------------------------------------------------------------------------------
# the shared schema contract


def spark_fields(schema) -> list[tuple]:
    return [(f.name, f.dataType, f.nullable) for f in schema]


def arrow_fields(schema: pa.Schema) -> list[tuple]:
    return [(f.name, str(f.type), f.nullable) for f in schema]


CONTRACTS = {
    "votes": votes_table_schema(pa.string()),
    "labels": labels_schema(pa.string()),
}


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_both_paths_prepare_the_same_frame_and_the_local_table_keeps_the_contract(spark, tmp_path, name):
    contract = CONTRACTS[name]
    expected = from_arrow_schema(stored_schema(contract))
    # Every column of the stored contract is nullable: Delta Spark stores DataFrame writes so.
    assert [f.name for f in expected] == contract.names and all(f.nullable for f in expected)
    df = spark.createDataFrame(pa.Table.from_pylist([], schema=contract).to_pandas(), from_arrow_schema(contract))
    frame = frame_to_write(df)
    assert spark_fields(frame.schema) == spark_fields(expected)

    # Local path: the table reads back with the contract, through Spark and through delta-rs.
    path = tmp_path / name
    LocalDeltaIO().write_table(df, str(path), mode="overwrite", overwrite_schema=True)
    assert spark_fields(read_table(spark, str(path)).schema) == spark_fields(expected)
    assert arrow_fields(pa.schema(DeltaTable(str(path)).schema().to_arrow())) == arrow_fields(stored_schema(contract))

    # Native path: the staged rows that validate() sees and Delta Spark commits are that frame
    # (staging is plain Parquet: it runs without the Delta jars), staged next to the table.
    staging, parent = _staging_paths(str(path), "w1")
    assert parent == str(tmp_path / "_lakelabel_staging") and staging == f"{parent}/{name}-w1"
    staged, files = NativeDeltaIO(spark)._stage(frame, staging, str(path), "n/a")
    assert spark_fields(staged.schema) == spark_fields(staged.df.schema) == spark_fields(expected)
    assert files and all(f.startswith("file:") and "/_lakelabel_staging/" in f and f"/{name}/" not in f for f in files)
    _remove_tree(spark, staging)
    _remove_if_empty(spark, parent)
    assert not Path(parent).exists()


# --------------------------------------------------------------------------------------------
# commit metadata


def log_commit(path: Path, version: int) -> dict:
    lines = (path / "_delta_log" / f"{version:020d}.json").read_text().splitlines()
    return next(json.loads(line)["commitInfo"] for line in lines if "commitInfo" in line)


def test_commit_metadata_is_one_json_object_in_user_metadata(spark, tmp_path):
    path = tmp_path / "m"
    df = spark.createDataFrame([(1, "a")], "id long, text string")
    first = {"lakelabel.run_id": "r1", "lakelabel.apply": json.dumps({"note": 'quote " and ünïcode'})}
    write_table(df, str(path), mode="overwrite", commit_metadata=first)
    write_table(df, str(path), mode="append", commit_metadata={"lakelabel.run_id": "r2", "lakelabel.write": "{}"})

    stored = json.loads(log_commit(path, 0)["userMetadata"])
    assert {k: v for k, v in stored.items() if k != "lakelabel.writeId"} == first
    assert len(stored["lakelabel.writeId"]) == 32
    assert "lakelabel.run_id" not in log_commit(path, 0)  # nothing at the top of commitInfo
    assert read_metadata(str(path)) == {"lakelabel.run_id": "r2", "lakelabel.write": "{}"}

    # Restoring carries the restored version's lakelabel metadata, plus the reason.
    LocalDeltaIO().restore_table(str(path), 0, reason="run r3 failed")
    assert DeltaTable(str(path)).version() == 2 and read_table(spark, str(path)).count() == 1
    assert read_metadata(str(path)) == {**first, "lakelabel.restore": "run r3 failed"}
    assert log_commit(path, 2)["operation"] == "RESTORE"


def test_metadata_written_by_other_tools_reads_back(tmp_path):
    data = pa.table({"id": [1]})
    foreign = tmp_path / "foreign"
    write_deltalake(str(foreign), data, commit_properties=CommitProperties(custom_metadata={"userMetadata": "nightly"}))
    assert read_metadata(str(foreign)) == {"userMetadata": "nightly"}
    # Tables written before lakelabel moved its keys into userMetadata.
    legacy = tmp_path / "legacy"
    keys = {"lakelabel.run_id": "old", "lakelabel.writeId": "abc"}
    write_deltalake(str(legacy), data, commit_properties=CommitProperties(custom_metadata=keys))
    assert read_metadata(str(legacy)) == {"lakelabel.run_id": "old"}


def lakelabel_write(spark, path: Path, run_id: str, mode: str = "append", **kwargs):
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id long, text string")
    return write_table(df, str(path), mode=mode, commit_metadata={"lakelabel.run_id": run_id}, **kwargs)


def test_data_neutral_commits_keep_lakelabel_metadata_and_a_data_change_hides_it(spark, tmp_path):
    path = tmp_path / "t"
    io = LocalDeltaIO()
    lakelabel_write(spark, path, "r1")
    lakelabel_write(spark, path, "r2")
    assert DeltaTable(str(path)).optimize.compact().get("numFilesRemoved", 0) >= 2  # compaction committed
    DeltaTable(str(path)).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    ops = [h["operation"] for h in DeltaTable(str(path)).history()]
    assert ops == ["VACUUM END", "VACUUM START", "OPTIMIZE", "WRITE", "CREATE TABLE"]
    # Databricks' auto compaction and VACUUM commit like this; the rows are those of version 1.
    assert io.read_metadata(str(path)) == read_metadata(str(path)) == {"lakelabel.run_id": "r2"}
    assert io.unchanged_since(str(path), 1) and io.unchanged_since(str(path), 4)
    assert not io.unchanged_since(str(path), 0) and not io.unchanged_since(str(path), 5)
    assert not io.unchanged_since(str(path), None) and not io.unchanged_since(str(tmp_path / "none"), 0)

    # Another writer changed the rows: lakelabel's summary no longer describes them.
    write_deltalake(str(path), pa.table({"id": [3], "text": ["c"]}), mode="append")
    assert read_metadata(str(path)) == {} and not io.unchanged_since(str(path), 1)
    # Restoring version 4 (the VACUUM END commit) brings back the summary that described it.
    io.restore_table(str(path), 4, reason="run r3 failed")
    assert read_metadata(str(path)) == {"lakelabel.run_id": "r2", "lakelabel.restore": "run r3 failed"}
    # Its rows are those of version 1 again (4 held them), not those of version 0 (a row fewer) or 5.
    assert io.unchanged_since(str(path), 1) and io.unchanged_since(str(path), 4)
    assert not io.unchanged_since(str(path), 0) and not io.unchanged_since(str(path), 5)
    # A restore to the current version commits nothing.
    io.restore_table(str(path), 6, reason="nothing to restore")
    assert DeltaTable(str(path)).version() == 6 and read_table(spark, str(path)).count() == 4
    # An operator's RESTOREs (no lakelabel metadata of their own): to the other writer's version 5, then back
    # to version 4 (VACUUM removed the files of older versions): its summary describes the table again.
    DeltaTable(str(path)).restore(5)
    assert read_metadata(str(path)) == {} and io.unchanged_since(str(path), 5) and not io.unchanged_since(str(path), 1)
    DeltaTable(str(path)).restore(4)
    assert read_metadata(str(path)) == io.read_metadata(str(path)) == {"lakelabel.run_id": "r2"}
    assert io.unchanged_since(str(path), 1) and not io.unchanged_since(str(path), 5)


def test_exactly_once_writes_record_their_transaction_in_the_metadata(spark, tmp_path):
    path = tmp_path / "t"
    lakelabel_write(spark, path, "r1", app_id="labels", app_version=3)
    stored = json.loads(log_commit(path, 0)["userMetadata"])
    assert (stored["lakelabel.txnAppId"], stored["lakelabel.txnVersion"]) == ("labels", "3")
    assert read_metadata(str(path)) == {"lakelabel.run_id": "r1"}  # bookkeeping keys stay hidden
    assert DeltaTable(str(path)).transaction_version("labels") == 3
    # What the native path checks before staging (Delta Spark has no API for txn versions).
    lakelabel_write(spark, path, "r2")
    history = DeltaTable(str(path)).history()
    assert delta_history._txn_in_history(history, "labels") == 3
    assert delta_history._txn_in_history(history, "other") is None
    assert lakelabel_write(spark, path, "r3", app_id="labels", app_version=3).skipped
    # A restore keeps the restored version's metadata, never its transaction.
    LocalDeltaIO().restore_table(str(path), 0, reason="test")
    assert read_metadata(str(path)) == {"lakelabel.run_id": "r1", "lakelabel.restore": "test"}
    assert "lakelabel.txnAppId" not in json.loads(log_commit(path, 2)["userMetadata"])


def test_local_pipeline_run_keeps_the_contract_and_stays_completed_after_optimize(spark, tmp_path):
    """One local pipeline run, checked three ways (each used to pay for a run of its own).

    1. Its tables keep the contract. 2. ``write`` alone is a no-op after an OPTIMIZE of the votes.
    3. After an OPTIMIZE of both tables the run is still completed: rerun, it is reused.
    """
    from jobs import write_labels

    cfg = pipeline_cfg(tmp_path, "local")
    first = pipeline.run(spark, cfg, run_id="opt").summary
    # 1. the pipeline tables keep the contract on the local path
    for name, contract in CONTRACTS.items():
        table = cfg.table_path(name)
        assert spark_fields(read_table(spark, table).schema) == spark_fields(from_arrow_schema(stored_schema(contract)))
        assert arrow_fields(pa.schema(DeltaTable(table).schema().to_arrow())) == arrow_fields(stored_schema(contract))
        assert read_metadata(table)["lakelabel.run_id"] == "opt"
    # 2. write alone is a no-op after an optimize of the votes
    DeltaTable(cfg.table_path("votes")).optimize.compact()
    assert DeltaTable(cfg.table_path("votes")).version() > first["tables"]["votes"]["version"]
    written = write_labels.run(spark, cfg, run_id="opt", model_run_id="opt")
    assert written.skipped and written.labels_version == first["tables"]["labels"]["version"]
    assert DeltaTable(cfg.table_path("labels")).version() == first["tables"]["labels"]["version"]
    # 3. a completed run stays completed after optimize (and a table property change) of both tables
    for name in ("votes", "labels"):
        table = DeltaTable(cfg.table_path(name))
        table.optimize.compact()
        table.alter.set_table_properties({"delta.logRetentionDuration": "interval 30 days"})
        assert DeltaTable(cfg.table_path(name)).version() > first["tables"][name]["version"]
    again = pipeline.run(spark, cfg, run_id="opt").summary
    assert again == {**json.loads(json.dumps(first, default=str)), "reused": True}
    # Stages run on their own still find the apply summary behind the data-neutral commits, and
    # a new run reuses the votes.
    assert read_metadata(cfg.table_path("votes"))["lakelabel.run_id"] == "opt"
    assert pipeline.run(spark, cfg, run_id="opt2").summary["tables"]["votes"]["reused"] is True


# --------------------------------------------------------------------------------------------
# native staging and cleanup (plain files: runs without the Delta jars)


def test_staging_goes_next_to_the_table():
    assert _staging_paths("dbfs:/lake/votes", "w1") == (
        "dbfs:/lake/_lakelabel_staging/votes-w1",
        "dbfs:/lake/_lakelabel_staging",
    )
    assert _staging_paths("dbfs:/votes", "w1")[0] == "dbfs:/_lakelabel_staging/votes-w1"
    assert _staging_paths("abfss://c@acct.dfs.core.windows.net/lake/labels", "w1")[0] == (
        "abfss://c@acct.dfs.core.windows.net/lake/_lakelabel_staging/labels-w1"
    )
    assert _staging_paths("s3://bucket/votes/", "w1")[0] == "s3://bucket/_lakelabel_staging/votes-w1"
    assert _staging_paths("file:///tmp/lake/votes", "w1")[0] == "file:///tmp/lake/_lakelabel_staging/votes-w1"
    assert _staging_paths("/Volumes/main/ml/lake/votes", "w1")[0] == "/Volumes/main/ml/lake/_lakelabel_staging/votes-w1"
    assert _staging_paths("/votes", "w1")[0] == "/_lakelabel_staging/votes-w1"
    with pytest.raises(DeltaWriteError, match=r"table s3://bucket: it has no parent folder .* put the table in"):
        _staging_paths("s3://bucket", "w1")


@pytest.mark.parametrize("through", ["hadoop", "local"])
def test_cleanup_removes_the_staging_folder_and_its_empty_parent(spark, tmp_path, through):
    session = spark if through == "hadoop" else None  # None: no JVM, as on Spark Connect
    staging, parent = _staging_paths(str(tmp_path / "votes"), "w1")
    other, _ = _staging_paths(str(tmp_path / "labels"), "w2")
    for folder in (staging, other):
        Path(folder, "part-0.parquet").parent.mkdir(parents=True)
        Path(folder, "part-0.parquet").write_bytes(b"x")
    _remove_tree(session, staging)
    _remove_if_empty(session, parent)  # another write still stages there: kept
    assert not Path(staging).exists() and Path(other, "part-0.parquet").exists()
    _remove_tree(session, other)
    _remove_if_empty(session, parent)
    assert not Path(parent).exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    _remove_tree(session, staging)  # already gone: nothing to do, no warning
    _remove_if_empty(session, parent)


def test_cleanup_failures_are_logged_with_the_path(spark, caplog):
    with caplog.at_level(logging.WARNING, logger="jobs.delta_io"):
        _remove_tree(spark, "nosuchfs://bucket/lake/_lakelabel_staging/votes-w1")
        _remove_if_empty(spark, "nosuchfs://bucket/lake/_lakelabel_staging")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("could not delete nosuchfs://bucket/lake/_lakelabel_staging/votes-w1 (")
    assert messages[1].startswith("could not remove the folder nosuchfs://bucket/lake/_lakelabel_staging if empty (")


# --------------------------------------------------------------------------------------------
# native round trip (needs the Delta Spark jars)

TEXTS = [
    "love it, great", "awful, hate it", "ok", "great!!", "hate", "meh", "love love", "awful", "great but awful", "-",
]  # fmt: skip


def pipeline_cfg(tmp_path: Path, delta_io_mode: str):
    source = tmp_path / "src"
    if not source.exists():
        source.mkdir()
        rows = [
            {"id": f"r{i:03d}", "text": TEXTS[i % len(TEXTS)], "stars": None if i % 7 == 0 else (i % 5) + 1,
             "gold": "pos" if "great" in TEXTS[i % len(TEXTS)] or "love" in TEXTS[i % len(TEXTS)] else "neg"}
            for i in range(30)
        ]  # fmt: skip
        pd.DataFrame(rows).astype({"stars": "Int64"}).to_parquet(source / "part-0.parquet", index=False)
    return config_from_dict(
        {
            "lakehouse": str(tmp_path / f"lake-{delta_io_mode}"),
            "source": {"path": str(source), "format": "parquet", "id_column": "id", "gold_column": "gold"},
            "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
            "tables": {"delta_io": delta_io_mode},
            "mlflow": {"enabled": False},
        }
    )


def table_rows(df, drop: str | None = None) -> list[str]:
    """Rows as sorted canonical JSON (array columns and nulls compare exactly)."""
    if drop in df.columns:
        df = df.drop(drop)
    return sorted(json.dumps(r.asDict(recursive=True), sort_keys=True, default=str) for r in df.collect())


@pytest.fixture
def native_spark(spark):
    missing = native_delta_unavailable(spark)
    if missing:
        pytest.skip(
            "Delta Spark jars not on the classpath (Maven Central unreachable here); runs on Databricks or a "
            "cluster with io.delta:delta-spark_4.1_2.13 (or delta-spark_2.13 for Spark 4.0) and the Delta extension "
            f"configured, {OPT_IN} ({'; '.join(missing)})"
        )
    return spark


@pytest.mark.cluster_native
def test_pipeline_native_and_local_write_the_same_tables(native_spark, tmp_path):
    spark = native_spark
    local_cfg, native_cfg = pipeline_cfg(tmp_path, "local"), pipeline_cfg(tmp_path, "native")
    local_io, native_io = delta_io(spark, "local"), delta_io(spark, "native")
    assert type(native_io) is NativeDeltaIO and type(delta_io(spark, "auto")) is NativeDeltaIO
    local = pipeline.run(spark, local_cfg, run_id="same").summary
    native = pipeline.run(spark, native_cfg, run_id="same").summary
    assert native["metrics"] == local["metrics"]
    assert native["tables"]["votes"]["version"] == local["tables"]["votes"]["version"] == 0

    for name in ("votes", "labels"):
        lt, nt = local_cfg.table_path(name), native_cfg.table_path(name)
        assert not (Path(nt) / "_lakelabel_staging").exists() and not (Path(nt).parent / "_lakelabel_staging").exists()
        ldf, ndf = local_io.read_table(spark, lt), native_io.read_table(spark, nt)
        assert spark_fields(ndf.schema) == spark_fields(ldf.schema)
        # The model path lives under each lakehouse; everything else is equal.
        assert table_rows(ndf, drop="label_model") == table_rows(ldf, drop="label_model")
        assert table_rows(local_io.read_table(spark, nt)) == table_rows(ndf)  # delta-rs reads Delta Spark's table
        # Either reader reads the other's commit metadata, the same way.
        lmeta, nmeta = local_io.read_metadata(lt), native_io.read_metadata(nt)
        assert local_io.read_metadata(nt) == nmeta and native_io.read_metadata(lt) == lmeta
        assert set(nmeta) == set(lmeta) and nmeta["lakelabel.run_id"] == "same"

    lw = json.loads(local_io.read_metadata(local_cfg.table_path("labels"))["lakelabel.write"])
    nw = json.loads(native_io.read_metadata(native_cfg.table_path("labels"))["lakelabel.write"])
    assert {k: v for k, v in nw.items() if k != "label_model"} == {k: v for k, v in lw.items() if k != "label_model"}
    # The completed-run check and the reuse of votes work on the native path too.
    again = pipeline.run(spark, native_cfg, run_id="same").summary
    assert again == {**json.loads(json.dumps(native, default=str)), "reused": True}


@pytest.mark.cluster_native
def test_native_write_validate_exactly_once_and_restore(native_spark, tmp_path):
    spark = native_spark
    io = NativeDeltaIO(spark)
    path = str(tmp_path / "t")
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id long, text string")
    first = {"lakelabel.run_id": "r1"}
    created = io.write_table(df, path, mode="overwrite", commit_metadata=first, app_id="t", app_version=1)
    assert (created.version, created.num_records, created.skipped) == (0, 2, False)

    def reject(files: list[str]) -> None:
        raise ValueError(f"too many errors in {spark.read.parquet(*files).count()} rows")

    # Already committed: skipped before anything is staged, so validate never runs.
    again = io.write_table(df, path, mode="append", app_id="t", app_version=1, validate=reject)
    assert again.skipped and again.version is None and io.table_version(path) == 0

    with pytest.raises(ValueError, match="too many errors in 2 rows"):
        io.write_table(df, path, mode="append", validate=reject)
    assert io.table_version(path) == 0 and not (tmp_path / "_lakelabel_staging").exists()

    io.write_table(df.limit(1), path, mode="overwrite", commit_metadata={"lakelabel.run_id": "r2"})
    assert io.read_metadata(path) == {"lakelabel.run_id": "r2"}
    io.restore_table(path, 1, reason="nothing to do")  # already at version 1: no RESTORE commit
    assert io.table_version(path) == 1
    io.restore_table(path, 0, reason="run r3 failed")
    assert io.read_metadata(path) == {"lakelabel.run_id": "r1", "lakelabel.restore": "run r3 failed"}
    assert io.read_table(spark, path).count() == 2
    assert delta_io.LocalDeltaIO().read_metadata(path) == io.read_metadata(path)
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None

    # A data-neutral commit (like Databricks' auto compaction: OPTIMIZE) keeps the rows, so
    # lakelabel's metadata still describes the table.
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.logRetentionDuration' = 'interval 30 days')")
    assert io.table_version(path) == 3 and io.unchanged_since(path, 2) and not io.unchanged_since(path, 1)
    assert io.unchanged_since(path, 0)  # the RESTORE brought back version 0's rows
    assert io.read_metadata(path) == {"lakelabel.run_id": "r1", "lakelabel.restore": "run r3 failed"}

    # A _delta_log without a commit is no table.
    (tmp_path / "empty" / "_delta_log").mkdir(parents=True)
    assert not io.table_exists(str(tmp_path / "empty")) and io.table_version(str(tmp_path / "empty")) is None
