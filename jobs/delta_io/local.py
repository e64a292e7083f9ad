"""Delta tables without the Delta jars: Spark tasks write Parquet, delta-rs commits.

Spark's Delta data source needs the ``delta-spark`` jars, which are not always reachable.
:class:`LocalDeltaIO` needs only pyspark, pyarrow and deltalake (delta-rs):

* writing: every Spark task writes its rows as Parquet files straight into the table directory
  (hive-style ``col=value/`` directories, partition columns left out of the files) and returns
  one metadata row per file (path, size, partition values, row count, stats from the Parquet
  footer); the driver commits all files in ONE delta-rs transaction. Until that commit the
  files are invisible to readers, and any failure before it deletes them.
* reading: ``spark.read.parquet`` over the files of the chosen snapshot, with the schema from
  the Delta log (so empty tables and partition columns come back with the right types).

Import it from :mod:`jobs.delta_io`.
"""

from __future__ import annotations

import contextlib
import json
import os
import logging
import uuid
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa

from jobs.delta_io.errors import DeltaWriteError, SourceReadError, _summary
from jobs.delta_io.files import (
    _FILES_DDL,
    _check_hive_layout,
    _misread_partitions,
    _delete_files,
    _filesystem,
    _gone_files,
    _normalize,
    _remove_empty_dirs,
    _spark_path,
    _TaskWriter,
)
from jobs.delta_io.logs import check_path_opens, open_table, table_history
from jobs.delta_io.leftovers import WriterLock, delete_strays, local_root, sweep
from jobs.delta_io.history import (
    _DATA_NEUTRAL_OPERATIONS,
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
    _unchanged_in_history,
    _user_metadata,
)
from jobs.delta_io.schema import (
    by_name,
    _check_writable_locally,
    _plan_write,
    _WritePlan,
    check_readable_locally,
    frame_to_write,
)

# Log under the public module's name, as before the split, so logging config keyed on it still applies.
log = logging.getLogger("jobs.delta_io")

# Commits that replace data files with others of the same rows (a compaction, a deletion-vector purge).
_REWRITING_OPERATIONS = frozenset({"OPTIMIZE", "REORG"})

__all__ = ["LocalDeltaIO", "cancel_jobs", "job_group"]


def cancel_jobs(spark: Any, group: str, wait_seconds: float = 10.0) -> None:
    """Cancel the running Spark jobs of job group ``group`` and wait (at most ``wait_seconds``) until their tasks
    have stopped, so the files deleted next are not followed by one a task was still finishing (a drill, session
    23: a SIGTERM in the write left one such file in the labels folder). The wait is for the group's tasks
    themselves: a cancelled or failed stage stops being active at once, while its killed tasks (a Python worker
    in the middle of a batch) run on for seconds."""
    try:
        sc = spark.sparkContext
        sc.cancelJobGroup(group)
        tracker, deadline = sc.statusTracker(), time.monotonic() + wait_seconds
        quiet = None  # since when no task of the group was seen running
        while time.monotonic() < deadline:
            if _group_running(tracker, group):
                quiet = None
            elif quiet is None:
                quiet = time.monotonic()
            elif time.monotonic() - quiet >= _SETTLE_SECONDS:
                return
            time.sleep(0.05)
    except BaseException:  # noqa: BLE001 - best effort while unwinding; the next write sweeps leftovers
        pass


@contextlib.contextmanager
def job_group(spark: Any, name: str) -> Iterator[None]:
    """Run the block's Spark jobs in a job group: when the block raises (a failed task, Ctrl-C, SIGTERM), the group
    is cancelled and its tasks waited for (:func:`cancel_jobs`) before the error goes on, so the caller's cleanup
    deletes files no task still writes. The group is the stage's (``lakelabel:apply``, set by
    :func:`jobs.runtime.session.describe`: its earlier jobs have ended, and the progress lines count its tasks),
    else one of its own (``lakelabel:<name>-<random>``, cleared after). Without a SparkContext (Spark Connect) the
    block just runs."""
    try:
        sc = spark.sparkContext
        previous = sc.getLocalProperty(_JOB_GROUP)
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        yield
        return
    group = previous or f"lakelabel:{name}-{uuid.uuid4().hex[:8]}"
    sc.setLocalProperty(_JOB_GROUP, group)
    try:
        yield
    except BaseException:
        cancel_jobs(spark, group)
        raise
    finally:
        with contextlib.suppress(Exception):  # best effort while unwinding
            sc.setLocalProperty(_JOB_GROUP, previous)


_JOB_GROUP = "spark.jobGroup.id"


def context_stopped(spark: Any) -> bool:
    """Whether the session's SparkContext stopped (or its JVM is gone) under a running job.

    spark-submit's JVM stops the context when it gets a SIGTERM, under the Python driver: the write's job then
    fails ("SparkContext was shut down") without its tasks cancelled or waited for (:func:`cancel_jobs` has no
    context left), and an executor's Python worker finished its files after the write deleted its own (a drill,
    session 26: 13 vote files, no lock file, so no sweep for 24 hours)."""
    try:
        sc = spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext to ask
        return False
    try:
        return bool(sc._jsc.sc().isStopped())
    except Exception:  # noqa: BLE001 - the JVM is gone with it
        return True


# The status tracker shows a task that started within spark.ui.liveUpdate.period (100 ms) only after it, and
# the cancelling is asynchronous: a group is taken as stopped once nothing of it ran for longer than that.
_SETTLE_SECONDS = 0.3


def _group_running(tracker: Any, group: str) -> bool:
    """Whether a job of ``group`` is still running (its cancelling not yet done) or a task of it still runs."""
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        if info is None:
            continue
        if info.status == "RUNNING":
            return True
        for stage in info.stageIds:
            stage_info = tracker.getStageInfo(stage)
            if stage_info is not None and stage_info.numActiveTasks > 0:
                return True
    return False


def data_files(dt: Any, root: str) -> list[str]:
    """The snapshot ``dt``'s data files as local paths (``root`` a local table folder) or URIs (an object store).

    delta-rs's ``file_uris()`` percent-encodes the table's own folder (``/data/my%20lake/votes/...``, its
    ``table_uri`` encoded), which neither Spark (Hadoop does not decode a path) nor the file system finds: a
    lakehouse whose path had a space, a ``%`` or a non-ASCII letter failed its first read. A local file is the
    literal ``root`` in place of that prefix; the rest, the partition folders as on disk, stays as it is.
    """
    uris = list(dt.file_uris())
    if not local_root(root):
        return uris
    encoded = dt.table_uri.removeprefix("file://").rstrip("/")
    return [root + u[len(encoded):] if u.startswith(encoded + "/") else u for u in uris]


def _check_files_there(root: str, dt: Any, version: int | None, files: Sequence[str]) -> None:
    """Refuse, naming the table and version, a snapshot whose local data files are gone, before Spark plans the read
    (its PATH_NOT_FOUND is exit 1 and names neither: diff or explain of a run older than a VACUUM's retention). A
    stat per file: about 10 ms for the 2,526 files of a votes table after 101 daily runs."""
    gone = _gone_files(files)
    if not gone:
        return
    what = f"{len(gone)} of its {len(files)} data file(s) are gone, e.g. {gone[0]}"
    if version is not None and version < (latest := open_table(root).version()):
        raise SourceReadError(
            f"version {version} of Delta table {root} cannot be read: {what}. A VACUUM removed the files of versions "
            f"older than its retention (the table is at version {latest}), so the runs that wrote or read this "
            f"version can no longer be diffed, explained or verified; pick a later run, or keep more versions "
            f"(a longer retention) before the next VACUUM"
        )
    raise SourceReadError(
        f"Delta table {root} v{dt.version()} cannot be read: {what}, though its latest version still names them; "
        f"the table is damaged: restore the files (or the table) from a backup"
    )


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

        root = _normalize(path)
        check_path_opens(root)
        return DeltaTable.is_deltatable(root, self.storage_options)

    def table_version(self, path: str) -> int | None:
        """The latest version of the Delta table at ``path``, or None when there is no table."""
        dt = self._load(_normalize(path))
        return None if dt is None else dt.version()

    def sweep_leftovers(self, path: str) -> list[str]:
        """Delete the files killed lakelabel writes left in the table at ``path`` (every write does so first; a
        job that finds the table up to date and writes nothing calls this, so a kill's files do not wait for the
        next write); return their paths."""
        root = _normalize(path)
        if not local_root(root):  # an object store: no files of killed writes are swept there (nor by writes)
            return []
        dt = self._load(root)
        try:
            return [] if dt is None else sweep(root, self._write_ids(dt, root), data_files(dt, root))
        except OSError as err:  # a table this user may read but not write: the job wrote nothing there anyway
            log.warning("could not delete the files a killed write left in %s: %s", root, err)
            return []

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
        return _metadata_in_history(lambda limit: table_history(dt, root, limit))

    def read_metadata_at(self, path: str, version: int) -> dict[str, Any]:
        """What :meth:`read_metadata` answered when the table was at ``version`` (time travel on its history)."""
        root = _normalize(path)
        dt = self._load_for_read(root, None)
        latest = dt.version()
        if not 0 <= version <= latest:
            raise SourceReadError(f"cannot load version {version} of Delta table {root}: its versions run up to {latest}")
        return _metadata_at(lambda limit: table_history(dt, root, limit), latest, version)

    def unchanged_since(self, path: str, version: int | None) -> bool:
        """True when the table's rows are still those of ``version``: every later commit (within the
        last 50) is data-neutral (OPTIMIZE, VACUUM, ...). False when there is no table or no such version.
        """
        root = _normalize(path)
        dt = self._load(root)
        if dt is None:
            return False
        return _unchanged_in_history(lambda limit: table_history(dt, root, limit), dt.version(), version)

    # -- read ----------------------------------------------------------------------------------

    def snapshot_files(self, path: str, *, version: int | None = None) -> list[str]:
        """The data files of a snapshot (default the latest), as :meth:`read_table` reads them: local paths for a
        local table (:func:`data_files`), URIs for an object store."""
        root = _normalize(path)
        return data_files(self._load_for_read(root, version), root)

    def snapshot_actions(self, path: str, *, version: int | None = None) -> list[dict[str, Any]]:
        """The add actions of a snapshot, one dict per data file.

        Keys as delta-rs' flattened ``get_add_actions``: ``path`` (relative, as in the log),
        ``size_bytes``, ``num_records``, ``partition.<col>``, ``min.<col>``, ``max.<col>``; plus
        ``uri``, the file as Spark's readers and :meth:`read_table` (``files=``) take it.
        """
        root = _normalize(path)
        dt = self._load_for_read(root, version)
        actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
        for action in actions:
            # The log's path, escapes and all: read_table(files=) matches it through _normalize, whose one decoding
            # gives the folder on disk, the path data_files lists.
            action["uri"] = _spark_path(f"{root}/{action['path']}")
        return actions

    def read_table(
        self, spark: Any, path: str, *, version: int | None = None, files: Sequence[str] | None = None
    ) -> Any:
        """Read a Delta table snapshot as a Spark DataFrame, without the Delta jars.

        Parameters
        ----------
        spark : pyspark.sql.SparkSession
        path : str
            Table directory or URI.
        version : int, optional
            Snapshot to read; default the latest.
        files : sequence of str, optional
            Read only these files of the snapshot (URIs from :meth:`snapshot_files`); default all.

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
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        root = _normalize(path)
        dt = self._readable_snapshot(root, version)
        arrow = pa.schema(dt.schema().to_arrow())
        schema = from_arrow_schema(arrow, prefer_timestamp_ntz=True)
        all_files = data_files(dt, root)
        if files is None:
            files = all_files
        else:
            known = {_normalize(f): f for f in all_files}
            unknown = sorted(f for f in files if _normalize(f) not in known)
            if unknown:
                raise SourceReadError(
                    f"{unknown[0]} is not a data file of version {dt.version()} of Delta table {root}; "
                    f"list the files with snapshot_files()"
                )
            files = [known[_normalize(f)] for f in files]
        if not files:
            return spark.createDataFrame([], schema)
        _check_files_there(root, dt, version, files)
        parts = dt.metadata().partition_columns
        fixes: dict[str, dict[str, Any]] = {}
        if parts:
            _check_hive_layout(root, parts, files)
            actions = pa.table(dt.get_add_actions(flatten=False)).select(["path", "partition"]).to_pylist()
            fixes = _misread_partitions(root, parts, files, actions)
        df = spark.read.schema(schema).option("basePath", _spark_path(root)).parquet(*map(_spark_path, files))
        for column, fix in fixes.items():  # folder names Spark decodes wrongly: the log's values (one read still)
            lookup = F.create_map(*[F.lit(x) for pair in fix.items() for x in pair])
            df = df.withColumn(column, F.coalesce(lookup[by_name(column)], by_name(column)))
        return df.select(*[by_name(name) for name in arrow.names])

    def read_arrow(
        self, path: str, *, version: int | None = None, columns: Sequence[str] | None = None
    ) -> tuple[pa.Table, int]:
        """Read a Delta table snapshot into driver memory with delta-rs, without Spark.

        For small tables (the gold table: labels people gave). Same checks as :meth:`read_table`.

        Returns
        -------
        (pyarrow.Table, int)
            The rows (only ``columns`` when given) and the version read.
        """
        dt = self._readable_snapshot(_normalize(path), version)
        return dt.to_pyarrow_table(columns=list(columns) if columns is not None else None), dt.version()

    def driver_readable(self, path: str) -> bool:
        """Whether :meth:`read_arrow` reads ``path`` as Spark would: a local path or ``file:`` URI
        whose table, if there is one yet, has no column mapping and no deletion vectors."""
        root = _normalize(path)
        if not os.path.isabs(root):
            return False  # an object store or dbfs: Spark has the credentials and the mounts
        try:
            if not self.table_exists(root):
                return True
            self._readable_snapshot(root, None)
        except SourceReadError:  # also a path delta-rs cannot open (check_path_opens): Spark's Delta IO may
            return False
        return True

    def _readable_snapshot(self, root: str, version: int | None) -> Any:
        """The ``DeltaTable`` at ``version``, after :func:`check_readable_locally`."""
        dt = self._load_for_read(root, version)
        protocol = dt.protocol()
        with_dv = 0
        if "deletionVectors" in (protocol.reader_features or []):
            with_dv = pa.RecordBatchReader.from_stream(dt.deletion_vectors()).read_all().num_rows
        check_readable_locally(root, protocol, dt.metadata().configuration, files_with_deletion_vectors=with_dv)
        return dt

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
        remove_files: Sequence[str] = (),
        transform: tuple[Callable[[Any], Any], Any] | None = None,
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
        remove_files : sequence of str
            With ``mode="append"``: data files (relative paths, ``path`` of
            :meth:`snapshot_actions`) the same commit removes, so rows are replaced file by file
            (copy-on-write) in one transaction. The commit fails if another writer removed them.
        transform : (function, schema), optional
            Write ``df.mapInArrow(function, schema)`` instead of ``df``. Here the function runs in
            the task that writes the files, so its rows reach Parquet without a round trip
            through the JVM (one Python pass instead of two).

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
        if remove_files and mode != "append":
            raise ValueError("remove_files needs mode='append'; an overwrite removes every file already")
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
        plan = _plan_write(df.mapInArrow(*transform) if transform else df, root, dt, mode, parts, overwrite_schema)
        write_id = uuid.uuid4().hex
        # Files a killed lakelabel write left (also before the table's first commit).
        sweep(root, self._write_ids(dt, root) if dt is not None else set(),
              data_files(dt, root) if dt is not None else [])
        try:
            with WriterLock(root, write_id) as lock:  # tells the next write's sweep that these files are in flight
                try:
                    return self._write_files_and_commit(
                        df, root, dt, plan, write_id, previous, commit_metadata, validate, description, app_id,
                        app_version, tuple(remove_files), transform[0] if transform else None,
                    )
                except BaseException:
                    if context_stopped(df.sparkSession):  # its tasks were neither cancelled nor waited for
                        lock.keep()
                        log.warning("the Spark context stopped under the write to %s: a file its tasks still finish "
                                    "is deleted by the next write to the table", root)
                    raise
        except BaseException:
            if previous is None:  # "no table was created": no folder of empty partition folders either
                _remove_empty_dirs(root)
            raise

    def _write_files_and_commit(
        self, df: Any, root: str, dt: Any, plan: _WritePlan, write_id: str, previous: int | None,
        commit_metadata: Mapping[str, str] | None, validate: Callable[[list[str]], None] | None,
        description: str | None, app_id: str | None, app_version: int | None,
        remove_files: tuple[str, ...] = (),
        transform: Callable[[Any], Any] | None = None,
    ) -> WriteResult:
        task = _TaskWriter(
            root=root,
            write_id=write_id,
            data_schema=plan.file_schema,
            partition_columns=plan.partition_by,
            not_null=plan.not_null,
            compression=self.compression,
            transform=transform,
        )
        state = "no table was created" if previous is None else f"the table stays at version {previous}"
        try:
            # In a job group: a failed task or a signal stops its other tasks before their files are deleted.
            with _job_description(df.sparkSession, description), job_group(df.sparkSession, "write"):
                # With a transform, its output columns are put in table order by the task.
                frame = df if transform is not None else frame_to_write(df, plan.arrow_schema.names).df
                rows = frame.mapInArrow(task, _FILES_DDL).collect()
        except Exception as err:
            _delete_files(root, [], write_id)
            raise DeltaWriteError(f"writing Delta table {root} failed before commit; {state}: {_summary(err)}") from err
        except BaseException:  # Ctrl-C or SIGTERM: the tasks stopped (job_group), delete what they wrote
            _delete_files(root, [], write_id)
            raise
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
        # A commit that removes files of the snapshot it read: named ones (an incremental votes commit), or all of
        # them (an overwrite: a full apply, the row hashes). A "replace" reads the latest snapshot as it commits.
        removes = bool(remove_files) or plan.action == "overwrite"
        # An exactly-once write (app_id: a gold import) is a blind append of its own rows, and a restore would not take
        # back its app transaction (a review: the retry of an undone import was skipped as done, its labels lost).
        checked = previous is not None and app_id is None
        try:
            if checked:  # before the commit: most lost races end here, nothing committed
                self._check_no_commit_between(root, previous, (self.table_version(root) or 0) + 1, removes=removes)
            self._commit(root, dt, plan, adds + self._removes(dt, remove_files), props)
        except Exception as err:
            if self._find_commit(root, write_id, previous) is None:
                _delete_files(root, rel_paths, write_id)
                now = self.table_version(root)
                if now != previous:  # the race was lost: the table is at the winner's commit, not ours or as before
                    state = f"the table is at version {now}, another writer's commit"
                raise DeltaWriteError(
                    f"committing {len(adds)} file(s) to Delta table {root} failed; the files were deleted and "
                    f"{state}: {_summary(err)}"
                ) from err
            log.warning("commit to %s raised after it was written (%s); keeping it", root, _summary(err))
        found = version = self._find_commit(root, write_id, previous)
        if version is None:  # our commit is beyond the history window searched; report the latest
            version = self.table_version(root)
        delete_strays(root, write_id, rel_paths)
        if checked and found is not None and found > previous + 1:
            self._undo_if_raced(root, previous, found, removes=removes)
        num_records = sum(row["num_records"] for row in rows)
        log.info("wrote %s: %d file(s), %d row(s), version %s", root, len(adds), num_records, version)
        return WriteResult(path=root, version=version, num_files=len(adds), num_records=num_records)

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _write_ids(dt: Any, root: str) -> set[str]:
        """Write ids of every commit in the table's history (their files are never swept)."""
        ids = set()
        for commit in table_history(dt, root):
            write_id = _commit_metadata(commit).get(_WRITE_ID_KEY)
            if write_id:
                ids.add(str(write_id))
        return ids

    def _load(self, root: str) -> Any:
        from deltalake import DeltaTable

        check_path_opens(root)  # delta-rs would take the table for absent, and write a new one over it
        if not DeltaTable.is_deltatable(root, self.storage_options):
            return None
        return self._open(root)

    def _load_for_read(self, root: str, version: int | None) -> Any:
        from deltalake import DeltaTable

        check_path_opens(root)
        if not DeltaTable.is_deltatable(root, self.storage_options):
            raise SourceReadError(
                f"no Delta table at {root} (expected a directory with a _delta_log holding commits); "
                f"check the path or write the table first"
            )
        return self._open(root, version)

    def _open(self, root: str, version: int | None = None) -> Any:
        """The table at ``root``: a damaged log is an input error naming the table (:func:`open_table`)."""
        return open_table(root, version, storage_options=self.storage_options)

    @staticmethod
    def _removes(dt: Any, paths: Sequence[str]) -> list:
        """Remove actions for the data files ``paths`` of the table's current snapshot."""
        if not paths:
            return []

        from deltalake.transaction import RemoveAction

        actions = {a["path"]: a for a in pa.table(dt.get_add_actions(flatten=True)).to_pylist()}
        missing = [p for p in paths if p not in actions]
        if missing:
            raise DeltaWriteError(f"cannot remove {missing[0]}: not a data file of the table's version {dt.version()} "
                                  f"(a concurrent transaction removed or rewrote it since it was chosen): retry")
        now = int(time.time() * 1000)
        return [
            RemoveAction(
                path=p, data_change=True, deletion_timestamp=now, size=actions[p]["size_bytes"],
                partition_values={k[len("partition."):]: v for k, v in actions[p].items() if k.startswith("partition.")},
            )
            for p in paths
        ]

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

    def _check_no_commit_between(self, root: str, loaded: int, upto: int | None, *, removes: bool) -> None:
        """Fail (a transient error: a retry reads the table anew) when another writer committed to the table after
        version ``loaded`` (which this write read and planned from) and before version ``upto`` (not included): a
        commit that changed data, or, when this write removes files (``removes``: by name, or all of them in an
        overwrite), one that rewrote data files (OPTIMIZE, REORG).

        delta-rs lets both through. A remove of a file an OPTIMIZE already replaced is accepted (the OPTIMIZE's
        removes have ``dataChange`` false), and the rows the rewritten file holds stay beside their replacements (a
        review: a run's compaction committed while another run wrote its votes, which then held 22 duplicate rows,
        exit 0); and an append or overwrite planned from the older snapshot is accepted over another writer's
        append (a review: two overlapping runs each committed the new rows' votes, every new row voted twice). A
        retry plans from the table as it is then.
        """
        if upto is None or upto <= loaded + 1:
            return
        dt = self._open(root)  # history(limit) is the newest commits: down to `loaded` whatever came after `upto`
        between = [c for c in table_history(dt, root, dt.version() - loaded) if loaded < int(c["version"]) < upto]
        found = sorted(f"{c.get('operation')} v{c['version']}" for c in between
                       if c.get("operation") not in _DATA_NEUTRAL_OPERATIONS
                       or (removes and c.get("operation") in _REWRITING_OPERATIONS))  # fmt: skip
        if found:
            raise DeltaWriteError(
                f"a concurrent transaction committed to Delta table {root} ({', '.join(found)}) after this write read "
                f"it at version {loaded}, which its commit was planned from: retry the command")

    def _undo_if_raced(self, root: str, loaded: int, ours: int, *, removes: bool) -> None:
        """After our commit ``ours`` of a write that read version ``loaded``: when another writer committed in
        between (after the check before our commit: :meth:`_check_no_commit_between`), undo ours (a restore to
        the version before it) and fail as a lost race. When another commit already follows ours, a restore would
        drop it too: fail without undoing, naming the versions (the table then needs a restore by hand)."""
        try:
            self._check_no_commit_between(root, loaded, ours, removes=removes)
        except DeltaWriteError as err:
            latest = self.table_version(root)
            if latest != ours:
                raise DeltaWriteError(f"{err}; its commit v{ours} stands, followed by v{latest}: restore the table to "
                                      f"v{ours - 1} if nothing else wrote it since") from err
            try:
                self.restore_table(root, ours - 1, reason="another writer committed under it")
            except Exception as undo:  # noqa: BLE001 - named in the error below
                raise DeltaWriteError(f"{err}; undoing its commit v{ours} failed too ({_summary(undo)}): restore the "
                                      f"table to v{ours - 1}") from err
            raise DeltaWriteError(f"{err}; its commit v{ours} was undone (restored to v{ours - 1})") from err

    def _find_commit(self, root: str, write_id: str, previous: int | None, window: int = 1000) -> int | None:
        dt = self._load(root)
        if dt is None:
            return None
        since = dt.version() - (-1 if previous is None else previous)
        for commit in table_history(dt, root, max(1, min(since, window))):
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
        from deltalake import CommitProperties

        root = _normalize(path)
        if version is None:
            import pyarrow.fs as pafs

            current = self._load(root)
            if current is not None and current.version() > 0:
                # Another writer committed to the table this job created (a concurrent run):
                # removing the folder would drop its commits too. Leave the table as it is.
                log.warning("not removing %s (%s): it has %d commits, not only this job's", root, reason,
                            current.version() + 1)
                return
            fs, base = _filesystem(root, DeltaWriteError)
            if fs.get_file_info(base).type == pafs.FileType.Directory:
                fs.delete_dir(base)
            log.info("removed %s, created by a job that failed (%s)", root, reason)
            return
        dt = self._open(root)
        latest = dt.version()
        if latest == version:
            # Delta refuses to restore the latest version; the table already holds it.
            log.info("%s is at version %d already; nothing to restore (%s)", root, version, reason)
            return
        restored = _metadata_at(lambda limit: table_history(dt, root, limit), latest, version)
        props = CommitProperties(custom_metadata={_USER_METADATA: _restored_metadata(restored, reason)})
        dt.restore(version, commit_properties=props)
        log.info("restored %s to version %d (%s)", root, version, reason)

