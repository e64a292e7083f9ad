"""Delta tables through the Delta Spark extension (Databricks, clusters with the Delta jars).

:class:`NativeDeltaIO` has the methods of :class:`jobs._delta.LocalDeltaIO` and the same
contract: the same DataFrame goes to storage (:func:`jobs._delta_schema.frame_to_write`), the
tables get the same schema, commit metadata is one JSON object in ``commitInfo.userMetadata``,
``validate`` sees the rows before anything is visible, and exactly-once writes skip a
transaction already committed. Reads and writes go through ``spark.read.format("delta")`` and
``df.write.format("delta")``; history, restore and table checks through ``delta.tables.DeltaTable``.

``delta`` (the delta-spark Python package) is imported inside the methods only: this module
imports without it. :func:`native_delta_missing` decides whether a session can use this path;
:func:`jobs._delta.delta_io` calls it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jobs._delta import (
    _USER_METADATA,
    _WRITE_ID_KEY,
    WriteMode,
    WriteResult,
    _check_write_args,
    _commit_metadata,
    _job_description,
    _public_metadata,
    _restored_metadata,
    _user_metadata,
)
from jobs._delta_errors import DeltaWriteError, SourceReadError, _summary
from jobs._delta_schema import FrameToWrite, frame_to_write

log = logging.getLogger("jobs._delta")

__all__ = ["NativeDeltaIO", "native_delta_missing", "native_delta_unavailable", "DELTA_EXTENSION"]

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_JVM_CLASS = "io.delta.tables.DeltaTable"
# Session conf Delta Spark reads a commit's userMetadata from when the operation has no option
# (RESTORE has none): OptimisticTransaction.getUserMetadata.
_USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
# Under the table, so it shares the table's storage and credentials; Delta never lists it (it
# reads the log) and VACUUM skips directories starting with an underscore.
_STAGING_DIR = "_lakelabel_staging"


# --------------------------------------------------------------------------------------------
# detection


def native_delta_missing(
    *,
    extensions: str | None,
    databricks_runtime: str | None,
    jvm_class_loadable: bool | None,
    python_package: bool,
) -> list[str]:
    """What a session lacks for the native Delta path; empty when it has everything.

    Parameters
    ----------
    extensions : str or None
        The session's ``spark.sql.extensions`` (comma-separated class names).
    databricks_runtime : str or None
        ``DATABRICKS_RUNTIME_VERSION``: a Databricks runtime ships Delta and configures it.
    jvm_class_loadable : bool or None
        Whether the JVM loads ``io.delta.tables.DeltaTable``; None when it cannot be asked
        (Spark Connect), then the extension setting decides.
    python_package : bool
        Whether ``delta.tables`` (delta-spark's Python API) imports.

    Returns
    -------
    list of str
        One phrase per missing piece, e.g. ``"the Delta jars are not on the classpath ..."``.
    """
    missing = []
    if not databricks_runtime:
        if jvm_class_loadable is False:
            missing.append(f"the Delta jars are not on the classpath (the JVM cannot load {DELTA_JVM_CLASS})")
        listed = [name.strip() for name in (extensions or "").split(",")]
        if DELTA_EXTENSION not in listed:
            missing.append(f"spark.sql.extensions ({extensions or 'unset'}) does not include {DELTA_EXTENSION}")
    if not python_package:
        missing.append("the delta-spark Python package is not installed (import delta.tables failed)")
    return missing


def native_delta_unavailable(spark: Any) -> list[str]:
    """:func:`native_delta_missing` for a live session (empty list: the native path works)."""
    if spark is None:
        return ["there is no Spark session"]
    try:
        extensions = spark.conf.get("spark.sql.extensions", None)
    except Exception:  # noqa: BLE001 - a stopped or remote session; treat as unset
        extensions = None
    return native_delta_missing(
        extensions=extensions,
        databricks_runtime=os.environ.get("DATABRICKS_RUNTIME_VERSION"),
        jvm_class_loadable=_jvm_loads_delta(spark),
        python_package=_python_has_delta(),
    )


def _jvm_loads_delta(spark: Any) -> bool | None:
    try:
        jvm = spark._jvm  # classic sessions only; Spark Connect has no JVM on the client
    except Exception:  # noqa: BLE001
        return None
    if jvm is None:
        return None
    from py4j.java_gateway import JavaClass

    # The same lookup delta.tables makes (jvm.io.delta.tables.DeltaTable.forPath): a missing
    # class resolves to a JavaPackage instead of a JavaClass.
    return isinstance(jvm.io.delta.tables.DeltaTable, JavaClass)


def _python_has_delta() -> bool:
    try:
        import delta.tables  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or a delta-spark built for another pyspark
        return False
    return True


# --------------------------------------------------------------------------------------------
# paths and files


def _native_path(path: str) -> str:
    """URIs (``dbfs:/``, ``abfss://``, ``s3://``, ``file:/``) as given; local paths absolute."""
    path = str(path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path):
        return path.rstrip("/") or path
    return os.path.abspath(os.path.expanduser(path))


def _local(path: str) -> str | None:
    if path.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(path).path)
    return None if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path) else path


def _hadoop(spark: Any, path: str) -> tuple[Any, Any] | None:
    try:
        jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        return hpath.getFileSystem(conf), hpath
    except Exception:  # noqa: BLE001 - Spark Connect: no JVM on the client
        return None


def _remove_tree(spark: Any, path: str) -> None:
    """Delete a folder and everything in it; warn (never raise) when that is not possible."""
    local = _local(path)
    try:
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
            return
        found = _hadoop(spark, path)
        if found is not None:
            fs, hpath = found
            fs.delete(hpath, True)
            return
        import pyarrow.fs as pafs

        fs, base = pafs.FileSystem.from_uri(path)
        fs.delete_dir(base)
    except Exception as err:  # noqa: BLE001 - cleanup must not hide the error being handled
        log.warning("could not delete %s (%s); delete it by hand", path, _summary(err))


def _remove_if_empty(spark: Any, path: str) -> None:
    local = _local(path)
    try:
        if local is not None:
            os.rmdir(local)
            return
        found = _hadoop(spark, path)
        if found is not None:
            fs, hpath = found
            if fs.exists(hpath) and len(fs.listStatus(hpath)) == 0:
                fs.delete(hpath, False)
    except Exception:  # noqa: BLE001 - not empty, or gone: either way nothing to do
        pass


def _write_options(
    *, user_metadata: str, overwrite_schema: bool, app_id: str | None, app_version: int | None
) -> dict[str, str]:
    """The ``df.write.format("delta")`` options of a write (``mode``/``partitionBy`` aside)."""
    options = {"userMetadata": user_metadata}
    if overwrite_schema:
        options["overwriteSchema"] = "true"
    if app_id is not None:
        # Delta skips the write, without error, when txnVersion is not above the table's
        # recorded version for txnAppId.
        options["txnAppId"] = app_id
        options["txnVersion"] = str(app_version)
    return options


# --------------------------------------------------------------------------------------------
# the IO


class NativeDeltaIO:
    """Delta tables through the Delta Spark extension; the methods of :class:`~jobs._delta.LocalDeltaIO`.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        A session with the Delta extension (see :func:`native_delta_missing`).
    """

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    # -- metadata --------------------------------------------------------------------------------

    def table_exists(self, path: str) -> bool:
        """True when ``path`` holds a Delta table."""
        return bool(self._delta_table_class().isDeltaTable(self.spark, _native_path(path)))

    def table_version(self, path: str) -> int | None:
        """The latest version of the Delta table at ``path``, or None when there is no table."""
        root = _native_path(path)
        if not self.table_exists(root):
            return None
        row = self._table(root).history(1).select("version").first()
        return None if row is None else int(row[0])

    def describe_table(self, path: str, *, version: int | None = None) -> tuple[str, int]:
        """``(table id, version)`` of a snapshot; raises :class:`SourceReadError` when absent."""
        root = _native_path(path)
        latest = self._require_table(root)
        if version is not None and not 0 <= version <= latest:
            raise SourceReadError(
                f"cannot load version {version} of Delta table {root}: its versions run up to {latest}"
            )
        table_id = self._table(root).detail().select("id").first()[0]
        return str(table_id), latest if version is None else int(version)

    def read_metadata(self, path: str) -> dict[str, Any]:
        """``commit_metadata`` of the latest commit: the JSON object in ``commitInfo.userMetadata``."""
        root = _native_path(path)
        self._require_table(root)
        row = self._table(root).history(1).select("userMetadata").first()
        return {} if row is None else _public_metadata({_USER_METADATA: row[0]})

    # -- read ----------------------------------------------------------------------------------

    def read_table(self, spark: Any, path: str, *, version: int | None = None) -> Any:
        """Read a Delta table snapshot with ``spark.read.format("delta")`` (``versionAsOf``).

        Deletion vectors and column mapping are honoured by Delta Spark.

        Raises
        ------
        SourceReadError
            No table at ``path``, or no such version.
        """
        root = _native_path(path)
        self._require_table(root)
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", str(int(version)))
        try:
            return reader.load(root)
        except Exception as err:  # noqa: BLE001 - AnalysisException, Py4JJavaError, ...
            which = "the latest version" if version is None else f"version {version}"
            raise SourceReadError(
                f"cannot read {which} of Delta table {root} with Delta Spark: {_summary(err)}"
            ) from err

    # -- write ---------------------------------------------------------------------------------

    def write_table(
        self,
        df: Any,
        path: str,
        *,
        mode: WriteMode,
        partition_by: Sequence[str] = (),
        overwrite_schema: bool = False,
        app_id: str | None = None,
        app_version: int | None = None,
        commit_metadata: Mapping[str, str] | None = None,
        validate: Callable[[list[str]], None] | None = None,
        description: str | None = None,
    ) -> WriteResult:
        """Write a DataFrame to a Delta table in one commit with ``df.write.format("delta")``.

        Same parameters and result as :meth:`jobs._delta.LocalDeltaIO.write_table`. With
        ``validate``, the rows are first written as Parquet to ``<table>/_lakelabel_staging/<id>``
        (invisible to Delta readers), ``validate`` gets those files, and only then are the staged
        rows committed; the staging folder is deleted afterwards, also on failure. An
        exactly-once write (``app_id``/``app_version``) that Delta skips reports ``skipped``.

        Raises
        ------
        DeltaWriteError
            Delta refused or failed the write (schema or partitioning mismatch, ...); the table
            is unchanged.
        """
        _check_write_args(mode, app_id, app_version, overwrite_schema)
        root = _native_path(path)
        spark = df.sparkSession
        previous = self.table_version(root)
        parts = (partition_by,) if isinstance(partition_by, str) else tuple(partition_by)
        if previous is not None and overwrite_schema and not parts:
            # Delta drops the partitioning on overwriteSchema without partitionBy; the local
            # path keeps the table's, and so does this one.
            parts = tuple(self._table(root).detail().select("partitionColumns").first()[0] or ())
        frame = frame_to_write(df)
        write_id = uuid.uuid4().hex
        state = "no table was created" if previous is None else f"the table stays at version {previous}"
        staging = f"{root}/{_STAGING_DIR}/{write_id}" if validate is not None else None
        try:
            if staging is not None:
                with _job_description(spark, description):
                    staged, files = self._stage(frame, staging, root, state)
                validate(files)
                frame = staged
            options = _write_options(
                user_metadata=_user_metadata(commit_metadata, write_id),
                overwrite_schema=overwrite_schema,
                app_id=app_id,
                app_version=app_version,
            )
            writer = frame.df.write.format("delta").mode(mode).options(**options)
            if parts:
                writer = writer.partitionBy(*parts)
            try:
                with _job_description(spark, description):
                    writer.save(root)
            except Exception as err:  # noqa: BLE001 - AnalysisException, Py4JJavaError, ...
                raise DeltaWriteError(
                    f"writing Delta table {root} with Delta Spark failed; {state}: {_summary(err)}"
                ) from err
        finally:
            if staging is not None:
                _remove_tree(spark, staging)
                _remove_if_empty(spark, f"{root}/{_STAGING_DIR}")
                if previous is None and not self.table_exists(root):
                    _remove_if_empty(spark, root)
        commit = self._find_commit(root, write_id, previous)
        if commit is None:
            if app_id is not None and self.table_version(root) == previous:
                log.info("skip write to %s: %s@%s already committed", root, app_id, app_version)
                return WriteResult(path=root, version=None, num_files=0, num_records=0, skipped=True)
            # Our commit is beyond the history window searched; report the latest version.
            return WriteResult(path=root, version=self.table_version(root), num_files=0, num_records=0)
        metrics = commit["operationMetrics"] or {}
        result = WriteResult(
            path=root,
            version=int(commit["version"]),
            num_files=int(metrics.get("numFiles", 0)),
            num_records=int(metrics.get("numOutputRows", 0)),
        )
        log.info("wrote %s: %d file(s), %d row(s), version %s", root, result.num_files, result.num_records,
                 result.version)
        return result

    # -- restore -------------------------------------------------------------------------------

    def restore_table(self, path: str, version: int | None, *, reason: str) -> None:
        """Put a table back to ``version`` (``DeltaTable.restoreToVersion``) after a later stage failed.

        ``version=None``: the table did not exist before the job, its folder is removed. The
        restore commit's userMetadata carries the restored version's lakelabel metadata and
        ``lakelabel.restore: reason``, as on the local path.
        """
        from pyspark.sql import functions as F

        root = _native_path(path)
        if version is None:
            _remove_tree(self.spark, root)
            log.info("removed %s, created by a job that failed (%s)", root, reason)
            return
        table = self._table(root)
        rows = table.history().where(F.col("version") == version).select("userMetadata").collect()
        metadata = _restored_metadata({_USER_METADATA: rows[0][0]} if rows else {}, reason)
        before = self.spark.conf.get(_USER_METADATA_CONF, None)
        self.spark.conf.set(_USER_METADATA_CONF, metadata)
        try:
            table.restoreToVersion(version)
        finally:
            if before is None:
                self.spark.conf.unset(_USER_METADATA_CONF)
            else:
                self.spark.conf.set(_USER_METADATA_CONF, before)
        log.info("restored %s to version %d (%s)", root, version, reason)

    # -- internals -------------------------------------------------------------------------------

    def _stage(self, frame: FrameToWrite, staging: str, root: str, state: str) -> tuple[FrameToWrite, list[str]]:
        """Write ``frame`` as Parquet to ``staging``; return the staged rows and their files."""
        try:
            frame.df.write.mode("errorifexists").parquet(staging)
        except Exception as err:  # noqa: BLE001
            raise DeltaWriteError(f"writing Delta table {root} failed before commit; {state}: {_summary(err)}") from err
        staged = frame.df.sparkSession.read.schema(frame.schema).parquet(staging)
        return FrameToWrite(staged, frame.schema), sorted(staged.inputFiles())

    def _delta_table_class(self) -> Any:
        if type(self.spark).__module__.startswith("pyspark.sql.connect"):
            from delta.connect.tables import DeltaTable
        else:
            from delta.tables import DeltaTable
        return DeltaTable

    def _table(self, root: str) -> Any:
        return self._delta_table_class().forPath(self.spark, root)

    def _require_table(self, root: str) -> int:
        version = self.table_version(root)
        if version is None:
            raise SourceReadError(
                f"no Delta table at {root} (expected a directory with a _delta_log holding commits); "
                f"check the path or write the table first"
            )
        return version

    def _find_commit(self, root: str, write_id: str, previous: int | None, window: int = 1000) -> Any:
        latest = self.table_version(root)
        if latest is None:
            return None
        since = latest - (-1 if previous is None else previous)
        history = self._table(root).history(max(1, min(since, window)))
        for row in history.select("version", "userMetadata", "operationMetrics").collect():
            if _commit_metadata({_USER_METADATA: row["userMetadata"]}).get(_WRITE_ID_KEY) == write_id:
                return row
        return None
