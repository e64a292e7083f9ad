"""Delta tables for the jobs: the public names, and :func:`delta_io`, which picks an IO path.

Two classes read and write Delta tables with the same methods and contract:
:class:`LocalDeltaIO` (``_delta_local``: Spark tasks write Parquet, delta-rs commits; no Delta
jars needed) and :class:`NativeDeltaIO` (``_delta_native``: the Delta Spark extension, for
Databricks and clusters with the Delta jars). :func:`delta_io` picks one for a session (config
``tables.delta_io``). The module-level functions delegate to a default :class:`LocalDeltaIO`.

Both paths store lakelabel's ``commit_metadata`` the same way: one JSON object in
``commitInfo.userMetadata`` (Delta Spark's write option ``userMetadata``; delta-rs'
``CommitProperties(custom_metadata={"userMetadata": ...})`` writes the same field), so
:meth:`~LocalDeltaIO.read_metadata` reads back the same dict whichever path wrote the table.

Layout (import the public names from here):

* ``_delta_local``: :class:`LocalDeltaIO`.
* ``_delta_native``: :class:`NativeDeltaIO` and the check whether a session can use it.
* ``_delta_history``: what both paths share about commits: :class:`WriteResult`, the write
  argument checks, building lakelabel's ``userMetadata`` and reading it back from the history.
* ``_delta_files``: the executor-side Parquet writer, file naming, footer stats, partition
  values, filesystem helpers.
* ``_delta_schema``: schema conversion, compatibility checks, the write plan.
* ``_delta_source``: :func:`read_source`'s implementation.
* ``_delta_errors``: :class:`DeltaWriteError`, :class:`SourceReadError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from jobs.delta_io import source as delta_source
from jobs.delta_io.errors import DeltaWriteError, SourceReadError
from jobs.delta_io.history import WriteMode, WriteResult
from jobs.delta_io.local import LocalDeltaIO
from jobs.delta_io.native import NativeDeltaIO, native_delta_unavailable
from jobs.delta_io.schema import FrameToWrite, check_readable_locally, frame_to_write, stored_schema
from jobs.delta_io.source import SourceFormat, SourceInfo
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "DeltaWriteError",
    "SourceReadError",
    "WriteResult",
    "SourceInfo",
    "LocalDeltaIO",
    "NativeDeltaIO",
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

DeltaIOMode = Literal["auto", "local", "native"]
_IO_MODES = ("auto", "local", "native")

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
        ``"auto"``: :class:`~jobs.delta_io.native.NativeDeltaIO` when the session has the Delta
        Spark extension (see :func:`jobs.delta_io.native.native_delta_missing`), else
        :class:`LocalDeltaIO`. ``"local"``: always the local path. ``"native"``: the Delta Spark
        extension, or a :class:`~lf_library.errors.ConfigError` saying what is missing.

    Returns
    -------
    LocalDeltaIO or NativeDeltaIO
        Both have the same methods. The choice is logged once per process at INFO.
    """
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
    role: str = "source",
) -> tuple[Any, SourceInfo]:
    """Read a Delta table, Parquet or CSV source and describe it for lineage.

    ``format="auto"``: a directory with ``_delta_log/`` is Delta; a CSV file (``.csv``, ``.tsv``,
    also compressed) or a directory whose data files are CSV by name is CSV; anything else is Parquet. CSV defaults: ``header=true``,
    ``multiLine=true``, ``escape='"'``, ``inferSchema=false`` (``options`` override them).
    Delta sources accept the option ``versionAsOf``. ``io`` reads Delta tables (default the
    local path; the jobs pass :func:`delta_io`'s choice). A folder's files that are not of its
    format by name (a README among CSVs) are refused unless the option ``pathGlobFilter`` picks
    the data files; a glob path is refused with that fix. ``role`` names the source in errors.

    Returns
    -------
    (pyspark.sql.DataFrame, SourceInfo)

    Raises
    ------
    SourceReadError
        Missing path, a path of the wrong kind for ``format``, or data Spark cannot read.
    """
    return delta_source.read_source(spark, path, format=format, options=options, io=io or _DEFAULT_IO, role=role)


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
