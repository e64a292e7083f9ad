"""Delta tables without the Delta jars: Spark tasks write Parquet, delta-rs commits.

Spark's Delta data source needs the ``delta-spark`` jars, which are not always reachable. The
local path here needs only pyspark, pyarrow and deltalake (delta-rs):

* writing: every Spark task writes its rows as Parquet files straight into the table directory
  (hive-style ``col=value/`` directories, partition columns left out of the files) and returns
  one metadata row per file (path, size, partition values, row count, stats from the Parquet
  footer); the driver commits all files in ONE delta-rs transaction. Until that commit the
  files are invisible to readers, and any failure before it deletes them.
* reading: ``spark.read.parquet`` over the files of the chosen snapshot, with the schema from
  the Delta log (so empty tables and partition columns come back with the right types).

:class:`LocalDeltaIO` holds that path; :class:`jobs._delta_native.NativeDeltaIO` has the same
methods through the Delta Spark extension (Databricks, clusters with the Delta jars).
:func:`delta_io` picks one for a session (config ``tables.delta_io``). The module-level functions
delegate to a default :class:`LocalDeltaIO`.

Both paths store lakelabel's ``commit_metadata`` the same way: one JSON object in
``commitInfo.userMetadata`` (Delta Spark's write option ``userMetadata``; delta-rs'
``CommitProperties(custom_metadata={"userMetadata": ...})`` writes the same field), so
:meth:`~LocalDeltaIO.read_metadata` reads back the same dict whichever path wrote the table.

The helpers live next to this module: ``_delta_files`` (the executor-side Parquet writer, file
naming, footer stats, partition values, filesystem helpers), ``_delta_schema`` (schema conversion,
compatibility checks, the write plan), ``_delta_source`` (:func:`read_source`) and
``_delta_errors``. Import the public names from here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from jobs import _delta_source
from jobs._delta_errors import DeltaWriteError, SourceReadError, _summary
from jobs._delta_files import (
    _FILES_DDL,
    _check_hive_layout,
    _delete_files,
    _filesystem,
    _normalize,
    _spark_path,
    _TaskWriter,
)
from jobs._delta_schema import (
    FrameToWrite,
    _check_writable_locally,
    _plan_write,
    _WritePlan,
    check_readable_locally,
    frame_to_write,
    stored_schema,
)
from jobs._delta_source import SourceFormat, SourceInfo

if TYPE_CHECKING:
    from jobs._delta_native import NativeDeltaIO

log = logging.getLogger(__name__)

__all__ = [
    "DeltaWriteError",
    "SourceReadError",
    "WriteResult",
    "SourceInfo",
    "LocalDeltaIO",
    "DeltaIOMode",
    "delta_io",
    "FrameToWrite",
    "frame_to_write",
    "stored_schema",
    "write_table",
    "read_table",
    "table_version",
    "table_exists",
    "read_metadata",
    "restore_table",
    "read_source",
    "check_readable_locally",
]

WriteMode = Literal["append", "overwrite"]
_WRITE_MODES = ("append", "overwrite")
DeltaIOMode = Literal["auto", "local", "native"]
_IO_MODES = ("auto", "local", "native")

# Identifies a write's own commit in the history; stored inside the userMetadata JSON.
_WRITE_ID_KEY = "lakelabel.writeId"
# An exactly-once write's (app_id, app_version), also in the userMetadata JSON: Delta Spark has no
# public API that reads a table's transaction versions, so the native path looks for these.
_TXN_APP_KEY = "lakelabel.txnAppId"
_TXN_VERSION_KEY = "lakelabel.txnVersion"
# lakelabel's bookkeeping keys: in every commit it writes, never part of read_metadata's answer.
_INTERNAL_KEYS = frozenset({_WRITE_ID_KEY, _TXN_APP_KEY, _TXN_VERSION_KEY})
_USER_METADATA = "userMetadata"
# How many commits read_metadata, unchanged_since and the native exactly-once check look back.
_HISTORY_WINDOW = 50
# Operations that leave a table's rows as they were (Delta Spark's DeltaOperations and delta-rs use
# these names): file compaction (OPTIMIZE, Databricks auto compaction and predictive optimization),
# deletion-vector purges (REORG), VACUUM, and table property, protocol, constraint and statistics
# changes. Commits of these sit between a lakelabel commit and the latest version without making
# that commit's metadata stale.
_DATA_NEUTRAL_OPERATIONS = frozenset(
    {
        "OPTIMIZE", "REORG", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "UNSET TBLPROPERTIES",
        "UPGRADE PROTOCOL", "ADD CONSTRAINT", "DROP CONSTRAINT", "COMPUTE STATS", "CLUSTER BY", "Empty Commit",
    }
)  # fmt: skip
# commitInfo keys written by Delta engines themselves; read_metadata's fallback for tables written
# before the metadata moved into userMetadata treats everything else as the caller's metadata.
_ENGINE_COMMIT_KEYS = frozenset(
    {
        "timestamp", "operation", "operationParameters", "operationMetrics", "engineInfo", "clientVersion",
        "version", "readVersion", "isolationLevel", "isBlindAppend", "userId", "userName", "txnId",
        "inCommitTimestamp", "job", "notebook", "clusterId", "tags", _USER_METADATA, _WRITE_ID_KEY,
    }
)  # fmt: skip


@dataclass(frozen=True)
class WriteResult:
    """Outcome of :func:`write_table`.

    ``version`` is the committed table version, or None when the write was ``skipped``
    because the ``(app_id, app_version)`` transaction was already committed.
    """

    path: str
    version: int | None
    num_files: int
    num_records: int
    skipped: bool = False


@contextmanager
def _job_description(spark: Any, description: str | None) -> Iterator[None]:
    try:
        sc = spark.sparkContext if description else None
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext; the description is cosmetic
        sc = None
    if sc is None:
        yield
        return
    previous = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription(description)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.job.description", previous)


def _user_metadata(
    commit_metadata: Mapping[str, str] | None,
    write_id: str,
    app_id: str | None = None,
    app_version: int | None = None,
) -> str:
    """The ``commitInfo.userMetadata`` string of a lakelabel commit: one JSON object."""
    meta = {**dict(commit_metadata or {}), _WRITE_ID_KEY: write_id}
    if app_id is not None:
        meta.update({_TXN_APP_KEY: app_id, _TXN_VERSION_KEY: str(app_version)})
    return json.dumps(meta, sort_keys=True)


def _commit_metadata(commit: Mapping[str, Any]) -> dict[str, Any]:
    """lakelabel's metadata of one history entry (delta-rs dict or a Delta Spark history row).

    Parses the ``userMetadata`` JSON object, write id included. A ``userMetadata`` that is not
    a JSON object (set by another tool) comes back as ``{"userMetadata": text}``; commits without
    one (written before lakelabel moved its keys from the top of ``commitInfo`` into
    ``userMetadata``) give those top-level keys.
    """
    raw = commit.get(_USER_METADATA)
    if raw is not None:
        try:
            parsed = json.loads(raw)
        except (TypeError, ValueError):
            parsed = None
        return dict(parsed) if isinstance(parsed, dict) else {_USER_METADATA: raw}
    return {k: v for k, v in commit.items() if k not in _ENGINE_COMMIT_KEYS or k == _WRITE_ID_KEY}


def _public_metadata(commit: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _commit_metadata(commit).items() if k not in _INTERNAL_KEYS}


def _is_lakelabel_commit(commit: Mapping[str, Any]) -> bool:
    return any(str(key).startswith("lakelabel.") for key in _commit_metadata(commit))


def _metadata_in_history(history: Callable[[int], Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """read_metadata's answer from ``history(limit)`` (history entries, newest first).

    The metadata of the newest lakelabel commit, when every commit after it (within
    ``_HISTORY_WINDOW``) is data-neutral (OPTIMIZE, VACUUM, ...: ``_DATA_NEUTRAL_OPERATIONS``), so
    it still describes the table's rows. Otherwise, as for tables lakelabel never wrote, the
    latest commit's metadata: a commit by another writer that changed the rows hides lakelabel's,
    so its stage summary is not trusted for rows it does not describe.
    """
    entries = list(history(1))
    if entries and not _is_lakelabel_commit(entries[0]):
        entries = list(history(_HISTORY_WINDOW))
    return _describing_metadata(entries)


def _metadata_at(history: Callable[[int], Sequence[Mapping[str, Any]]], latest: int, version: int) -> dict[str, Any]:
    """What read_metadata answered when the table was at ``version`` (for a restore to it)."""
    entries = [e for e in history(latest - version + _HISTORY_WINDOW) if int(e.get("version", -1)) <= version]
    return _describing_metadata(entries)


def _describing_metadata(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    for entry in entries:
        if _is_lakelabel_commit(entry):
            return _public_metadata(entry)
        if entry.get("operation") not in _DATA_NEUTRAL_OPERATIONS:
            break
    return _public_metadata(entries[0]) if entries else {}


def _unchanged_in_history(
    history: Callable[[int], Sequence[Mapping[str, Any]]], latest: int | None, version: int | None
) -> bool:
    """unchanged_since's answer: every commit after ``version`` up to ``latest`` is data-neutral."""
    if latest is None or version is None or not 0 <= version <= latest:
        return False
    if version == latest:
        return True
    if latest - version > _HISTORY_WINDOW:
        return False
    later = [entry for entry in history(latest - version) if int(entry.get("version", -1)) > version]
    return len(later) == latest - version and all(e.get("operation") in _DATA_NEUTRAL_OPERATIONS for e in later)


def _txn_in_history(history: Sequence[Mapping[str, Any]], app_id: str) -> int | None:
    """The app_version of the newest lakelabel commit in ``history`` that recorded ``app_id``."""
    for entry in history:
        meta = _commit_metadata(entry)
        if meta.get(_TXN_APP_KEY) == app_id:
            try:
                return int(meta[_TXN_VERSION_KEY])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _restored_metadata(metadata: Mapping[str, Any], reason: str) -> str:
    """userMetadata of a restore commit: the lakelabel keys of the restored version's metadata
    (:func:`_metadata_at`), plus the reason, so read_metadata (the stage summaries) sees what the
    table holds."""
    kept = {k: str(v) for k, v in metadata.items() if k.startswith("lakelabel.")}
    kept["lakelabel.restore"] = reason
    return json.dumps(kept, sort_keys=True)


def _check_write_args(mode: str, app_id: str | None, app_version: int | None, overwrite_schema: bool) -> None:
    if mode not in _WRITE_MODES:
        raise ValueError(f"mode must be one of {', '.join(_WRITE_MODES)}; got {mode!r}")
    if (app_id is None) != (app_version is None):
        raise ValueError("app_id and app_version go together: pass both for an exactly-once commit, or neither")
    if app_version is not None and (type(app_version) is not int or app_version < 0):
        raise ValueError(f"app_version must be an int >= 0; got {app_version!r}")
    if overwrite_schema and mode != "overwrite":
        raise ValueError("overwrite_schema=True needs mode='overwrite'; appends never change the table schema")


def _column(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


# --------------------------------------------------------------------------------------------
# public API


class LocalDeltaIO:
    """Delta tables through pyarrow Parquet files and delta-rs commits (no Delta jars needed).

    Parameters
    ----------
    compression : {"snappy", "zstd"}
        Parquet codec of the data files.
    storage_options : mapping, optional
        delta-rs storage options for object stores (pyarrow reads its credentials from the
        environment).
    """

    def __init__(
        self,
        *,
        compression: Literal["snappy", "zstd"] = "snappy",
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        if compression not in ("snappy", "zstd"):
            raise ValueError(f"compression must be 'snappy' or 'zstd'; got {compression!r}")
        self.compression = compression
        self.storage_options = dict(storage_options) if storage_options else None

    # -- metadata --------------------------------------------------------------------------------

    def table_exists(self, path: str) -> bool:
        """True when ``path`` holds a Delta table (a ``_delta_log`` with at least one commit)."""
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(_normalize(path), self.storage_options)

    def table_version(self, path: str) -> int | None:
        """The latest version of the Delta table at ``path``, or None when there is no table."""
        dt = self._load(_normalize(path))
        return None if dt is None else dt.version()

    def describe_table(self, path: str, *, version: int | None = None) -> tuple[str, int]:
        """``(table id, version)`` of a snapshot; raises :class:`SourceReadError` when absent."""
        dt = self._load_for_read(_normalize(path), version)
        return str(dt.metadata().id), dt.version()

    def read_metadata(self, path: str) -> dict[str, Any]:
        """``commit_metadata`` of the commit that describes the table: the JSON object in ``commitInfo.userMetadata``.

        That is the newest lakelabel commit when only data-neutral commits (OPTIMIZE, VACUUM,
        property changes: Databricks auto compaction and predictive optimization add these) came
        after it, within the last 50 commits; otherwise the latest commit's metadata.
        """
        root = _normalize(path)
        dt = self._load_for_read(root, None)
        return _metadata_in_history(lambda limit: dt.history(limit=limit))

    def unchanged_since(self, path: str, version: int | None) -> bool:
        """True when the table's rows are still those of ``version``: every later commit (within the
        last 50) is data-neutral (OPTIMIZE, VACUUM, ...). False when there is no table or no such version.
        """
        dt = self._load(_normalize(path))
        if dt is None:
            return False
        return _unchanged_in_history(lambda limit: dt.history(limit=limit), dt.version(), version)

    # -- read ----------------------------------------------------------------------------------

    def read_table(self, spark: Any, path: str, *, version: int | None = None) -> Any:
        """Read a Delta table snapshot as a Spark DataFrame, without the Delta jars.

        Parameters
        ----------
        spark : pyspark.sql.SparkSession
        path : str
            Table directory or URI.
        version : int, optional
            Snapshot to read; default the latest.

        Returns
        -------
        pyspark.sql.DataFrame
            Columns in table order with the types of the Delta schema.

        Raises
        ------
        SourceReadError
            No table at ``path``, no such version, or a table the local reader cannot read
            correctly (column mapping, deletion vectors); see :func:`check_readable_locally`.
        """
        from pyspark.sql.pandas.types import from_arrow_schema

        root = _normalize(path)
        dt = self._load_for_read(root, version)
        protocol = dt.protocol()
        with_dv = 0
        if "deletionVectors" in (protocol.reader_features or []):
            with_dv = pa.RecordBatchReader.from_stream(dt.deletion_vectors()).read_all().num_rows
        check_readable_locally(root, protocol, dt.metadata().configuration, files_with_deletion_vectors=with_dv)
        arrow = pa.schema(dt.schema().to_arrow())
        schema = from_arrow_schema(arrow, prefer_timestamp_ntz=True)
        files = dt.file_uris()
        if not files:
            return spark.createDataFrame([], schema)
        parts = dt.metadata().partition_columns
        if parts:
            _check_hive_layout(root, parts, files)
        df = spark.read.schema(schema).option("basePath", _spark_path(root)).parquet(*map(_spark_path, files))
        return df.select(*[_column(name) for name in arrow.names])

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
        """Write a DataFrame to a Delta table in one atomic commit.

        Spark tasks write one Parquet file per Spark partition (and partition value) into the
        table directory; the driver then commits them all in a single delta-rs transaction,
        creating the table when absent. Until the commit no reader sees the files; on any
        failure before it they are deleted and the table stays at its previous version.

        Parameters
        ----------
        df : pyspark.sql.DataFrame
            Rows to write.
        path : str
            Table directory or URI.
        mode : {"append", "overwrite"}
            Add files, or replace all files of the table.
        partition_by : sequence of str
            Partition columns of a new table (hive-style ``col=value/`` directories). For an
            existing table, empty means its partitioning; anything else must equal it unless
            ``overwrite_schema``.
        overwrite_schema : bool
            With ``mode="overwrite"``: replace the table's schema and partitioning by the
            DataFrame's.
        app_id, app_version : str, int, optional
            Exactly-once commits: the commit records the transaction ``(app_id, app_version)``,
            and a write whose ``app_version`` is not above the table's recorded version for
            ``app_id`` is skipped without writing anything.
        commit_metadata : mapping of str to str, optional
            Stored as a JSON object in ``commitInfo.userMetadata``; read back with
            :meth:`read_metadata`. Read when the commit is made, after ``validate``.
        validate : callable, optional
            Called with the written files before the commit, as absolute URIs that Spark's
            readers take (``spark.read.parquet(*files)``, e.g. to check error rates); if it
            raises, the files are deleted and the exception propagates.
        description : str, optional
            Spark job description shown in the UI while the files are written.

        Returns
        -------
        WriteResult

        Raises
        ------
        DeltaWriteError
            Schema or partitioning mismatch, a table feature the local writer cannot honour, or
            a failed Spark job or commit (the table is unchanged).
        """
        _check_write_args(mode, app_id, app_version, overwrite_schema)
        root = _normalize(path)
        _filesystem(root, DeltaWriteError)
        dt = self._load(root)
        previous = None if dt is None else dt.version()
        if dt is not None and app_id is not None:
            done = dt.transaction_version(app_id)
            if done is not None and done >= app_version:  # type: ignore[operator]
                log.info("skip write to %s: %s@%s already committed (table has %s)", root, app_id, app_version, done)
                return WriteResult(path=root, version=None, num_files=0, num_records=0, skipped=True)
        if dt is not None:
            _check_writable_locally(root, dt, mode)
        parts = (partition_by,) if isinstance(partition_by, str) else tuple(partition_by)
        plan = _plan_write(df, root, dt, mode, parts, overwrite_schema)
        write_id = uuid.uuid4().hex
        task = _TaskWriter(
            root=root,
            write_id=write_id,
            data_schema=plan.file_schema,
            partition_columns=plan.partition_by,
            not_null=plan.not_null,
            compression=self.compression,
        )
        state = "no table was created" if previous is None else f"the table stays at version {previous}"
        try:
            with _job_description(df.sparkSession, description):
                frame = frame_to_write(df, plan.arrow_schema.names)
                rows = frame.df.mapInArrow(task, _FILES_DDL).collect()
        except Exception as err:
            _delete_files(root, [], write_id)
            raise DeltaWriteError(f"writing Delta table {root} failed before commit; {state}: {_summary(err)}") from err
        rel_paths = [row["path"] for row in rows]
        try:
            if validate is not None:
                validate([_spark_path(f"{root}/{rel}") for rel in rel_paths])
        except BaseException:
            _delete_files(root, rel_paths, write_id)
            raise
        from deltalake import CommitProperties, Transaction
        from deltalake.transaction import AddAction

        adds = [
            AddAction(
                path=row["path"],  # the literal relative path: delta-rs percent-encodes it in the log
                size=row["size"],
                partition_values=json.loads(row["partition_values"]),
                modification_time=row["modification_time"],
                data_change=True,
                stats=row["stats"],
            )
            for row in rows
        ]
        props = CommitProperties(
            custom_metadata={_USER_METADATA: _user_metadata(commit_metadata, write_id, app_id, app_version)},
            app_transactions=[Transaction(app_id, app_version)] if app_id is not None else None,
        )
        try:
            self._commit(root, dt, plan, adds, props)
        except Exception as err:
            if self._find_commit(root, write_id, previous) is None:
                _delete_files(root, rel_paths, write_id)
                raise DeltaWriteError(
                    f"committing {len(adds)} file(s) to Delta table {root} failed; the files were deleted and "
                    f"{state}: {_summary(err)}"
                ) from err
            log.warning("commit to %s raised after it was written (%s); keeping it", root, _summary(err))
        version = self._find_commit(root, write_id, previous)
        if version is None:  # our commit is beyond the history window searched; report the latest
            version = self.table_version(root)
        num_records = sum(row["num_records"] for row in rows)
        log.info("wrote %s: %d file(s), %d row(s), version %s", root, len(adds), num_records, version)
        return WriteResult(path=root, version=version, num_files=len(adds), num_records=num_records)

    # -- internals -------------------------------------------------------------------------------

    def _load(self, root: str) -> Any:
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(root, self.storage_options):
            return None
        return DeltaTable(root, storage_options=self.storage_options)

    def _load_for_read(self, root: str, version: int | None) -> Any:
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(root, self.storage_options):
            raise SourceReadError(
                f"no Delta table at {root} (expected a directory with a _delta_log holding commits); "
                f"check the path or write the table first"
            )
        try:
            return DeltaTable(root, version=version, storage_options=self.storage_options)
        except Exception as err:  # noqa: BLE001 - delta-rs raises several types for a bad version
            raise SourceReadError(f"cannot load version {version} of Delta table {root}: {_summary(err)}") from err

    def _commit(self, root: str, dt: Any, plan: _WritePlan, adds: list, props: Any) -> None:
        from deltalake.transaction import create_table_with_add_actions

        parts = list(plan.partition_by) or None
        if plan.action in ("create", "replace"):
            create_table_with_add_actions(
                root,
                plan.delta_schema,
                adds,
                mode="error" if plan.action == "create" else "overwrite",
                partition_by=parts,
                storage_options=self.storage_options,
                commit_properties=props,
            )
        else:
            dt.create_write_transaction(
                adds, mode=plan.action, schema=plan.delta_schema, partition_by=parts, commit_properties=props
            )

    def _find_commit(self, root: str, write_id: str, previous: int | None, window: int = 1000) -> int | None:
        dt = self._load(root)
        if dt is None:
            return None
        since = dt.version() - (-1 if previous is None else previous)
        for commit in dt.history(limit=max(1, min(since, window))):
            if _commit_metadata(commit).get(_WRITE_ID_KEY) == write_id:
                return int(commit["version"])
        return None

    # -- restore -------------------------------------------------------------------------------

    def restore_table(self, path: str, version: int | None, *, reason: str) -> None:
        """Put a table back to ``version`` after a later stage of the same job failed.

        ``version=None`` means the table did not exist before the job: its folder is removed.
        Delta records the restore as a new commit whose content equals ``version``; its
        userMetadata carries the restored version's lakelabel metadata and
        ``lakelabel.restore: reason``.
        """
        from deltalake import CommitProperties, DeltaTable

        root = _normalize(path)
        if version is None:
            import pyarrow.fs as pafs

            fs, base = _filesystem(root, DeltaWriteError)
            if fs.get_file_info(base).type == pafs.FileType.Directory:
                fs.delete_dir(base)
            log.info("removed %s, created by a job that failed (%s)", root, reason)
            return
        dt = DeltaTable(root, storage_options=self.storage_options)
        latest = dt.version()
        if latest == version:
            # Delta refuses to restore the latest version; the table already holds it.
            log.info("%s is at version %d already; nothing to restore (%s)", root, version, reason)
            return
        restored = _metadata_at(lambda limit: dt.history(limit=limit), latest, version)
        props = CommitProperties(custom_metadata={_USER_METADATA: _restored_metadata(restored, reason)})
        dt.restore(version, commit_properties=props)
        log.info("restored %s to version %d (%s)", root, version, reason)


_DEFAULT_IO = LocalDeltaIO()


_ANNOUNCED: set[tuple[str, str]] = set()


def delta_io(spark: Any, mode: DeltaIOMode = "auto") -> LocalDeltaIO | NativeDeltaIO:
    """The Delta reader/writer for ``spark``, chosen by ``mode`` (config ``tables.delta_io``).

    Parameters
    ----------
    spark : pyspark.sql.SparkSession or None
        The session the jobs run on; None (no Spark, e.g. the fit stage) gives the local path
        unless ``mode`` is ``"native"``.
    mode : {"auto", "local", "native"}
        ``"auto"``: :class:`~jobs._delta_native.NativeDeltaIO` when the session has the Delta
        Spark extension (see :func:`jobs._delta_native.native_delta_missing`), else
        :class:`LocalDeltaIO`. ``"local"``: always the local path. ``"native"``: the Delta Spark
        extension, or a :class:`~lf_library.errors.ConfigError` saying what is missing.

    Returns
    -------
    LocalDeltaIO or NativeDeltaIO
        Both have the same methods. The choice is logged once per process at INFO.
    """
    from jobs._delta_native import NativeDeltaIO, native_delta_unavailable
    from lf_library.errors import ConfigError

    if mode not in _IO_MODES:
        raise ConfigError(f"tables.delta_io = {mode!r} is not valid; choose one of: {', '.join(_IO_MODES)}")
    io: LocalDeltaIO | NativeDeltaIO = _DEFAULT_IO
    why = "tables.delta_io: local"
    if mode != "local":
        missing = native_delta_unavailable(spark)
        if not missing:
            io, why = NativeDeltaIO(spark), f"tables.delta_io: {mode}, the session has the Delta Spark extension"
        elif mode == "native":
            raise ConfigError(
                f"tables.delta_io = 'native' needs the Delta Spark extension, but {'; '.join(missing)}. Fix: "
                f"install `lakelabel[delta]` (delta-spark) and start Spark with the Delta jars of your Spark version "
                f"(e.g. --packages io.delta:delta-spark_4.1_2.13:4.4.1 for Spark 4.1), "
                f"spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension and spark.sql.catalog.spark_catalog="
                f"org.apache.spark.sql.delta.catalog.DeltaCatalog (or run on Databricks); or set tables.delta_io: "
                f"local (or auto)"
            )
        else:
            why = f"tables.delta_io: auto, no Delta Spark extension ({'; '.join(missing)})"
    key = (mode, type(io).__name__)
    if key not in _ANNOUNCED:
        _ANNOUNCED.add(key)
        path = "native Delta (delta-spark)" if type(io) is not LocalDeltaIO else "local Delta (pyarrow + delta-rs)"
        log.info("Delta tables through %s: %s", path, why)
    return io


def read_source(
    spark: Any,
    path: str,
    *,
    format: SourceFormat = "auto",
    options: Mapping[str, str] | None = None,
    io: LocalDeltaIO | NativeDeltaIO | None = None,
) -> tuple[Any, SourceInfo]:
    """Read a Delta table, Parquet or CSV source and describe it for lineage.

    ``format="auto"``: a directory with ``_delta_log/`` is Delta; a ``.csv`` file or a directory
    of only CSV files is CSV; anything else is Parquet. CSV defaults: ``header=true``,
    ``multiLine=true``, ``escape='"'``, ``inferSchema=false`` (``options`` override them).
    Delta sources accept the option ``versionAsOf``. ``io`` reads Delta tables (default the
    local path; the jobs pass :func:`delta_io`'s choice).

    Returns
    -------
    (pyspark.sql.DataFrame, SourceInfo)

    Raises
    ------
    SourceReadError
        Missing path, a path of the wrong kind for ``format``, or data Spark cannot read.
    """
    return _delta_source.read_source(spark, path, format=format, options=options, io=io or _DEFAULT_IO)


def write_table(
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
    """Write ``df`` to the Delta table at ``path`` in one commit; see :meth:`LocalDeltaIO.write_table`."""
    return _DEFAULT_IO.write_table(
        df,
        path,
        mode=mode,
        partition_by=partition_by,
        overwrite_schema=overwrite_schema,
        app_id=app_id,
        app_version=app_version,
        commit_metadata=commit_metadata,
        validate=validate,
        description=description,
    )


def read_table(spark: Any, path: str, *, version: int | None = None) -> Any:
    """Read a Delta table snapshot with Spark; see :meth:`LocalDeltaIO.read_table`."""
    return _DEFAULT_IO.read_table(spark, path, version=version)


def table_version(path: str) -> int | None:
    """Latest version of the Delta table at ``path``, or None when there is none."""
    return _DEFAULT_IO.table_version(path)


def table_exists(path: str) -> bool:
    """True when ``path`` holds a Delta table."""
    return _DEFAULT_IO.table_exists(path)


def read_metadata(path: str) -> dict[str, Any]:
    """lakelabel's commit metadata of the Delta table at ``path``; see :meth:`LocalDeltaIO.read_metadata`."""
    return _DEFAULT_IO.read_metadata(path)


def restore_table(path: str, version: int | None, *, reason: str) -> None:
    """Put a table back to ``version``; see :meth:`LocalDeltaIO.restore_table`."""
    _DEFAULT_IO.restore_table(path, version, reason=reason)
