"""Delta tables through the Delta Spark extension (Databricks, clusters with the Delta jars).

:class:`NativeDeltaIO` has the methods of :class:`jobs.delta_io.LocalDeltaIO` and the same
contract: the same DataFrame goes to storage (:func:`jobs.delta_io.schema.frame_to_write`), the
tables get the same schema, commit metadata is one JSON object in ``commitInfo.userMetadata``,
``validate`` sees the rows before anything is visible, and exactly-once writes skip a
transaction already committed. Reads and writes go through ``spark.read.format("delta")`` and
``df.write.format("delta")``; history, restore and table checks through ``delta.tables.DeltaTable``;
cleanup (staging folders, a table a failed job created) through Hadoop's FileSystem, as Spark
resolves the paths.

``delta`` (the delta-spark Python package) is imported inside the methods only: this module
imports without it. :func:`native_delta_missing` decides whether a session can use this path;
:func:`jobs.delta_io.delta_io` calls it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jobs.delta_io.errors import DeltaWriteError, SourceReadError, _summary
from jobs.delta_io.history import (
    _HISTORY_WINDOW,
    _USER_METADATA,
    _WRITE_ID_KEY,
    WriteMode,
    WriteResult,
    _check_write_args,
    _commit_metadata,
    _job_description,
    _metadata_at,
    _metadata_in_history,
    _restored_metadata,
    _txn_in_history,
    _unchanged_in_history,
    _user_metadata,
)
from jobs.delta_io.schema import FrameToWrite, frame_to_write

log = logging.getLogger("jobs.delta_io")

__all__ = ["NativeDeltaIO", "native_delta_missing", "native_delta_unavailable", "DELTA_EXTENSION"]

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_JVM_CLASS = "io.delta.tables.DeltaTable"
# Session conf Delta Spark reads a commit's userMetadata from when the operation has no option
# (RESTORE has none): OptimisticTransaction.getUserMetadata.
_USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
# Staged rows go to <parent>/_lakelabel_staging/<table name>-<write id>, next to the table (see
# _staging_paths); the folder is deleted after each write, and its parent when left empty.
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

# A URI scheme (two or more characters, so a Windows drive letter stays a path), and for
# ``scheme://`` URIs the authority (bucket, container@account, host).
_URI_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+:(?://[^/]*)?)(.*)$")


def _native_path(path: str) -> str:
    """URIs (``dbfs:/``, ``abfss://``, ``s3://``, ``file:/``) as given; local paths absolute."""
    path = str(path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path):
        return path.rstrip("/") or path
    return os.path.abspath(os.path.expanduser(path))


def _staging_paths(root: str, write_id: str) -> tuple[str, str]:
    """``(staging folder, its _lakelabel_staging parent)`` of one write to the table at ``root``.

    Next to the table, not inside it: Databricks refuses to read non-Delta data under a folder
    with a ``_delta_log`` above it (``spark.databricks.delta.formatCheck``). A sibling shares
    the table's storage and credentials.
    """
    found = _URI_PREFIX.match(root)
    prefix, rest = (found.group(1), found.group(2)) if found else ("", root)
    rest = rest.rstrip("/")
    if prefix:
        parent, _, name = rest.rpartition("/")
    else:
        parent, name = os.path.split(rest)
        parent = "" if parent == os.sep else parent
    if not name:
        raise DeltaWriteError(
            f"cannot stage rows for Delta table {root}: it has no parent folder to stage them in next to it; "
            f"put the table in a folder (e.g. {root.rstrip('/')}/votes)"
        )
    folder = f"{prefix}{parent}/{_STAGING_DIR}"
    return f"{folder}/{name}-{write_id}", folder


def _local(path: str) -> str | None:
    if path.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(path).path)
    return None if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path) else path


def _hadoop(spark: Any, path: str) -> tuple[Any, Any] | None:
    """``(FileSystem, Path)`` for ``path`` as Spark resolves it (Hadoop through the session's JVM:
    scheme-less paths on the cluster's default filesystem, e.g. HDFS on YARN, DBFS on Databricks).

    None when the session has no JVM (Spark Connect, or no session); errors of a JVM session
    (no filesystem for the scheme, ...) propagate.
    """
    try:
        jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
    except Exception:  # noqa: BLE001 - Spark Connect: no JVM on the client
        return None
    if jvm is None:
        return None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(conf), hpath


def _remove_tree(spark: Any, path: str) -> None:
    """Delete a folder and everything in it; warn (never raise) when that is not possible.

    Through Hadoop's FileSystem, as Spark resolves ``path``; without a JVM (Spark Connect) the
    driver's local disk for local paths and pyarrow's filesystems for URIs.
    """
    try:
        found = _hadoop(spark, path)
        if found is not None:
            fs, hpath = found
            fs.delete(hpath, True)  # False when there was nothing to delete
            return
        local = _local(path)
        if local is not None:
            if os.path.lexists(local):
                shutil.rmtree(local)
            return
        import pyarrow.fs as pafs

        fs, base = pafs.FileSystem.from_uri(path)
        if fs.get_file_info(base).type != pafs.FileType.NotFound:
            fs.delete_dir(base)
    except Exception as err:  # noqa: BLE001 - cleanup must not hide the error being handled
        log.warning("could not delete %s (%s); delete it by hand", path, _summary(err))


def _remove_if_empty(spark: Any, path: str) -> None:
    """Delete the folder ``path`` if it exists and is empty (resolved like :func:`_remove_tree`)."""
    try:
        found = _hadoop(spark, path)
        if found is not None:
            fs, hpath = found
            if fs.exists(hpath) and len(fs.listStatus(hpath)) == 0:
                fs.delete(hpath, False)
            return
        local = _local(path)
        if local is not None:
            if os.path.isdir(local) and not os.listdir(local):
                os.rmdir(local)
            return
        import pyarrow.fs as pafs

        fs, base = pafs.FileSystem.from_uri(path)
        if fs.get_file_info(base).type == pafs.FileType.Directory and not fs.get_file_info(pafs.FileSelector(base)):
            fs.delete_dir(base)
    except Exception as err:  # noqa: BLE001 - e.g. another write staged into it meanwhile
        log.warning("could not remove the folder %s if empty (%s); delete it by hand when it is", path, _summary(err))


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
    """Delta tables through the Delta Spark extension; the methods of :class:`~jobs.delta_io.LocalDeltaIO`.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        A session with the Delta extension (see :func:`native_delta_missing`).
    """

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    # -- metadata --------------------------------------------------------------------------------

    def table_exists(self, path: str) -> bool:
        """True when ``path`` holds a Delta table with a readable commit."""
        return self._latest_version(_native_path(path)) is not None

    def table_version(self, path: str) -> int | None:
        """The latest version of the Delta table at ``path``, or None when there is no table."""
        return self._latest_version(_native_path(path))

    def sweep_leftovers(self, path: str) -> list[str]:
        """Nothing to sweep: Delta Spark's writes leave their uncommitted files to ``VACUUM``."""
        return []

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
        """``commit_metadata`` of the commit that describes the table.

        See :meth:`jobs.delta_io.LocalDeltaIO.read_metadata`: the newest lakelabel commit when only
        data-neutral commits (OPTIMIZE, VACUUM, ...) followed it.
        """
        root = _native_path(path)
        self._require_table(root)
        table = self._table(root)
        return _metadata_in_history(lambda limit: self._history(table, limit))

    def read_metadata_at(self, path: str, version: int) -> dict[str, Any]:
        """What :meth:`read_metadata` answered when the table was at ``version``; see
        :meth:`jobs.delta_io.LocalDeltaIO.read_metadata_at`."""
        root = _native_path(path)
        latest = self._require_table(root)
        if not 0 <= version <= latest:
            raise SourceReadError(f"cannot load version {version} of Delta table {root}: its versions run up to {latest}")
        table = self._table(root)
        return _metadata_at(lambda limit: self._history(table, limit), latest, version)

    def unchanged_since(self, path: str, version: int | None) -> bool:
        """True when the rows are still those of ``version``; see :meth:`jobs.delta_io.LocalDeltaIO.unchanged_since`."""
        root = _native_path(path)
        latest = self.table_version(root)
        if latest is None:
            return False
        table = self._table(root)
        return _unchanged_in_history(lambda limit: self._history(table, limit), latest, version)

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
        transform: tuple[Callable[[Any], Any], Any] | None = None,
    ) -> WriteResult:
        """Write a DataFrame to a Delta table in one commit with ``df.write.format("delta")``.

        Same parameters and result as :meth:`jobs.delta_io.LocalDeltaIO.write_table` (``transform``:
        ``df.mapInArrow(*transform)`` is written). With
        ``validate``, the rows are first written as Parquet next to the table, to
        ``<parent>/_lakelabel_staging/<table name>-<write id>`` (Databricks refuses to read
        non-Delta data inside a table's folder), ``validate`` gets those files, and only then are
        the staged rows committed; the staging folder (and ``_lakelabel_staging`` when left
        empty) is deleted afterwards, also on failure.

        Exactly-once (``app_id``/``app_version``): Delta Spark skips a commit whose transaction
        is already recorded, and so does this method, reporting ``skipped``. Delta Spark has no
        public API to ask for a table's transaction versions, so before staging anything the
        method looks for lakelabel's record of the transaction in the last 50 commits; a
        transaction committed earlier, or by another writer, is still skipped by Delta, after
        the staging.

        Raises
        ------
        DeltaWriteError
            Delta refused or failed the write (schema or partitioning mismatch, ...), or staging
            failed; the table is unchanged.
        """
        _check_write_args(mode, app_id, app_version, overwrite_schema)
        if transform is not None:
            df = df.mapInArrow(*transform)
        root = _native_path(path)
        spark = df.sparkSession
        previous = self.table_version(root)
        if previous is not None and app_id is not None:
            done = _txn_in_history(self._history(self._table(root), _HISTORY_WINDOW), app_id)
            if done is not None and done >= app_version:  # type: ignore[operator]
                log.info("skip write to %s: %s@%s already committed (table has %s)", root, app_id, app_version, done)
                return WriteResult(path=root, version=None, num_files=0, num_records=0, skipped=True)
        parts = (partition_by,) if isinstance(partition_by, str) else tuple(partition_by)
        if previous is not None and overwrite_schema and not parts:
            # Delta drops the partitioning on overwriteSchema without partitionBy; the local
            # path keeps the table's, and so does this one.
            parts = tuple(self._table(root).detail().select("partitionColumns").first()[0] or ())
        frame = frame_to_write(df)
        write_id = uuid.uuid4().hex
        state = "no table was created" if previous is None else f"the table stays at version {previous}"
        staging, staging_parent = _staging_paths(root, write_id) if validate is not None else (None, None)
        try:
            if staging is not None:
                with _job_description(spark, description):
                    staged, files = self._stage(frame, staging, root, state)
                validate(files)  # type: ignore[misc]
                frame = staged
            options = _write_options(
                user_metadata=_user_metadata(commit_metadata, write_id, app_id, app_version),
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
                try:
                    now = self.table_version(root)
                    if now != previous and self._find_commit(root, write_id, previous) is None:  # another won
                        state = f"the table is at version {now}, another writer's commit"
                except Exception:  # noqa: BLE001 - the write's own error matters more than this wording
                    pass
                raise DeltaWriteError(
                    f"writing Delta table {root} with Delta Spark failed; {state}: {_summary(err)}"
                ) from err
        finally:
            if staging is not None:
                _remove_tree(spark, staging)
                _remove_if_empty(spark, staging_parent)  # type: ignore[arg-type]
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

        ``version=None``: the table did not exist before the job, its folder is removed (through
        Hadoop's FileSystem, as Spark resolves the path). A table already at ``version`` is left
        as it is (Delta restores only to older versions). The restore commit's userMetadata
        carries the restored version's lakelabel metadata and ``lakelabel.restore: reason``, as
        on the local path; where the session refuses the conf that carries it
        (``spark.databricks.delta.commitInfo.userMetadata``), the restore goes ahead without it
        and a warning says so.
        """
        root = _native_path(path)
        if version is None:
            _remove_tree(self.spark, root)
            log.info("removed %s, created by a job that failed (%s)", root, reason)
            return
        latest = self._require_table(root)
        if version == latest:
            log.info("%s is at version %d already; nothing to restore (%s)", root, version, reason)
            return
        table = self._table(root)
        restored = _metadata_at(lambda limit: self._history(table, limit), latest, version)
        metadata = _restored_metadata(restored, reason)
        before, conf_set = None, False
        try:
            before = self.spark.conf.get(_USER_METADATA_CONF, None)
            self.spark.conf.set(_USER_METADATA_CONF, metadata)
            conf_set = True
        except Exception as err:  # noqa: BLE001 - e.g. a serverless or Connect session that refuses the conf
            log.warning(
                "could not set %s (%s): the RESTORE commit of %s will not carry lakelabel's metadata, so stage "
                "summaries read from it come back empty until the next run",
                _USER_METADATA_CONF, _summary(err), root,
            )  # fmt: skip
        try:
            table.restoreToVersion(version)
        finally:
            if conf_set:
                try:
                    if before is None:
                        self.spark.conf.unset(_USER_METADATA_CONF)
                    else:
                        self.spark.conf.set(_USER_METADATA_CONF, before)
                except Exception as err:  # noqa: BLE001
                    log.warning("could not reset %s (%s); later commits of this session may carry "
                                "lakelabel's restore metadata", _USER_METADATA_CONF, _summary(err))
        log.info("restored %s to version %d (%s)", root, version, reason)

    # -- internals -------------------------------------------------------------------------------

    def _stage(self, frame: FrameToWrite, staging: str, root: str, state: str) -> tuple[FrameToWrite, list[str]]:
        """Write ``frame`` as Parquet to ``staging``; return the staged rows and their files."""
        try:
            frame.df.write.mode("errorifexists").parquet(staging)
            staged = frame.df.sparkSession.read.schema(frame.schema).parquet(staging)
            files = sorted(staged.inputFiles())
        except Exception as err:  # noqa: BLE001
            raise DeltaWriteError(f"writing Delta table {root} failed before commit; {state}: {_summary(err)}") from err
        return FrameToWrite(staged, frame.schema), files

    def _delta_table_class(self) -> Any:
        if type(self.spark).__module__.startswith("pyspark.sql.connect"):
            from delta.connect.tables import DeltaTable
        else:
            from delta.tables import DeltaTable
        return DeltaTable

    def _table(self, root: str) -> Any:
        return self._delta_table_class().forPath(self.spark, root)

    @staticmethod
    def _history(table: Any, limit: int) -> list[dict[str, Any]]:
        """History entries, newest first, in the shape of delta-rs' (what the shared helpers read)."""
        rows = table.history(limit).select("version", "operation", "operationParameters", "userMetadata").collect()
        return [row.asDict() for row in rows]

    def _latest_version(self, root: str) -> int | None:
        from pyspark.errors import AnalysisException

        delta_table = self._delta_table_class()
        if not delta_table.isDeltaTable(self.spark, root):
            return None
        try:
            row = delta_table.forPath(self.spark, root).history(1).select("version").first()
        except AnalysisException:
            # A _delta_log without a readable commit (a table being created, or a broken one).
            return None
        return None if row is None else int(row[0])

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
