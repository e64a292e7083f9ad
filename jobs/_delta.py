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

:class:`LocalDeltaIO` holds that path; a ``NativeDeltaIO`` (the Delta Spark extension, e.g.
Databricks) can implement the same methods later. The module-level functions delegate to a
default :class:`LocalDeltaIO`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lf_library.errors import LakelabelError

log = logging.getLogger(__name__)

__all__ = [
    "DeltaWriteError",
    "SourceReadError",
    "WriteResult",
    "SourceInfo",
    "LocalDeltaIO",
    "write_table",
    "read_table",
    "table_version",
    "table_exists",
    "read_metadata",
    "read_source",
    "check_readable_locally",
]

WriteMode = Literal["append", "overwrite"]
SourceFormat = Literal["delta", "parquet", "csv", "auto"]
_WRITE_MODES = ("append", "overwrite")
_SOURCE_FORMATS = ("delta", "parquet", "csv", "auto")

# One row per written file, returned by the Spark tasks to the driver.
_FILES_DDL = (
    "path string, size long, partition_values string, modification_time long, num_records long, stats string"
)
_FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("partition_values", pa.string()),
        ("modification_time", pa.int64()),
        ("num_records", pa.int64()),
        ("stats", pa.string()),
    ]
)
_WRITE_ID_KEY = "lakelabel.writeId"
# commitInfo keys written by Delta engines themselves; everything else is the caller's metadata.
_ENGINE_COMMIT_KEYS = frozenset(
    {
        "timestamp", "operation", "operationParameters", "operationMetrics", "engineInfo", "clientVersion",
        "version", "readVersion", "isolationLevel", "isBlindAppend", "userId", "userName", "txnId",
        "inCommitTimestamp", "job", "notebook", "clusterId", "tags", _WRITE_ID_KEY,
    }
)  # fmt: skip
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Spark's ExternalCatalogUtils.escapePathName set, so Spark's partition discovery reads them back.
_PATH_ESCAPES = frozenset('"#%\'*/:=?\\\x7f{[]^') | frozenset(chr(c) for c in range(1, 32))
_STRING_STAT_CHARS = 32  # like Delta Spark: long strings get a prefix min and no max


class DeltaWriteError(LakelabelError, RuntimeError):
    """A Delta write failed or was refused; the table is left at its previous version."""


class SourceReadError(LakelabelError, ValueError):
    """A source path is missing, of the wrong kind, or unreadable by the local reader."""


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


@dataclass(frozen=True)
class SourceInfo:
    """What lineage needs to know about a source that was read.

    ``fingerprint`` changes whenever the data changes: ``delta:<table id>@<version>`` for Delta
    tables, ``files:<sha256 of sorted (relative path, size, mtime)>`` for Parquet and CSV.
    """

    path: str
    format: Literal["delta", "parquet", "csv"]
    version: int | None
    fingerprint: str


# --------------------------------------------------------------------------------------------
# executor side: write one Spark partition's rows as Parquet files (pyarrow only)


@dataclass(frozen=True)
class _TaskWriter:
    """The ``mapInArrow`` function: writes files and yields one metadata row per file."""

    root: str
    write_id: str
    data_schema: pa.Schema
    partition_columns: tuple[str, ...]
    not_null: tuple[str, ...]
    compression: str
    row_group_rows: int = 256 * 1024
    row_group_bytes: int = 64 * 1024 * 1024

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fs, base = _filesystem(self.root)
        prefix = f"part-{_task_partition_id():05d}-{self.write_id}-{uuid.uuid4().hex[:8]}"
        files: dict[tuple, _OpenFile] = {}
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                self._check_not_null(batch)
                for key, rows in self._split(pa.Table.from_batches([batch])):
                    out = files.get(key)
                    if out is None:
                        name = f"{prefix}-{len(files):04d}.c000.{self.compression}.parquet"
                        rel = "/".join([*_partition_dirs(self.partition_columns, key), name])
                        out = files[key] = _OpenFile(self, fs, f"{base}/{rel}", rel, key)
                    out.append(rows.select(self.data_schema.names).cast(self.data_schema))
                # Many partition values in one task: bound the memory of all buffers together.
                if sum(f.buffered_bytes for f in files.values()) >= self.row_group_bytes:
                    for f in files.values():
                        f.flush()
            rows_out = [out.finish() for out in files.values()]
        except BaseException:
            for out in files.values():
                out.abort()
            raise
        if rows_out:
            yield pa.RecordBatch.from_pylist(rows_out, schema=_FILES_SCHEMA)

    def _check_not_null(self, batch: pa.RecordBatch) -> None:
        for name in self.not_null:
            if batch.column(name).null_count:
                raise ValueError(
                    f"column {name!r} of Delta table {self.root} is NOT NULL, but the data has null values; "
                    f"fill or filter them before writing"
                )

    def _split(self, table: pa.Table) -> Iterator[tuple[tuple, pa.Table]]:
        if not self.partition_columns:
            yield (), table
            return
        cols = list(self.partition_columns)
        keyed = table.select(cols).append_column("__row", pa.array(range(table.num_rows), pa.int64()))
        groups = keyed.group_by(cols, use_threads=False).aggregate([("__row", "list")])
        keys = groups.select(cols).to_pylist()
        if len(keys) == 1:
            yield tuple(keys[0][c] for c in cols), table
            return
        indices = groups.column("__row_list").combine_chunks()
        for i, key in enumerate(keys):
            yield tuple(key[c] for c in cols), table.take(indices[i].values)


class _OpenFile:
    """One Parquet file being written; buffers small Arrow batches into large row groups."""

    def __init__(self, task: _TaskWriter, fs: pafs.FileSystem, path: str, rel: str, key: tuple) -> None:
        self.task, self.fs, self.path, self.rel, self.key = task, fs, path, rel, key
        parent = path.rsplit("/", 1)[0]
        fs.create_dir(parent, recursive=True)
        self.sink = fs.open_output_stream(path)
        self.writer = pq.ParquetWriter(self.sink, task.data_schema, compression=task.compression)
        self.buffer: list[pa.Table] = []
        self.buffered_rows = self.buffered_bytes = 0

    def append(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.buffered_rows += table.num_rows
        self.buffered_bytes += table.nbytes
        if self.buffered_rows >= self.task.row_group_rows or self.buffered_bytes >= self.task.row_group_bytes:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.writer.write_table(pa.concat_tables(self.buffer), row_group_size=self.buffered_rows)
        self.buffer, self.buffered_rows, self.buffered_bytes = [], 0, 0

    def finish(self) -> dict[str, Any]:
        self.flush()
        self.writer.close()
        self.sink.close()
        # pyarrow keeps the footer it wrote on the inner writer; read it back if that ever moves.
        inner = getattr(self.writer, "writer", None)
        meta = getattr(inner, "metadata", None) or pq.read_metadata(self.path, filesystem=self.fs)
        info = self.fs.get_file_info(self.path)
        mtime = info.mtime_ns // 1_000_000 if info.mtime_ns is not None else _now_ms()
        values = dict(zip(self.task.partition_columns, map(_encode_partition_value, self.key)))
        return {
            "path": self.rel,
            "size": info.size,
            "partition_values": json.dumps(values),
            "modification_time": mtime,
            "num_records": meta.num_rows,
            "stats": json.dumps(_file_stats(meta, self.task.data_schema), separators=(",", ":")),
        }

    def abort(self) -> None:
        try:
            self.writer.close()
            self.sink.close()
        except Exception:  # noqa: BLE001 - already failing; deleting the file is what matters
            pass
        try:
            self.fs.delete_file(self.path)
        except (FileNotFoundError, OSError):
            pass


def _task_partition_id() -> int:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return ctx.partitionId() if ctx is not None else 0


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def _encode_partition_value(value: Any) -> str | None:
    """Delta's partition value serialization; Spark and Delta read "" as null, so we write null."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _partition_dirs(columns: Sequence[str], key: tuple) -> list[str]:
    dirs = []
    for column, value in zip(columns, key):
        encoded = _encode_partition_value(value)
        escaped = _NULL_PARTITION if encoded is None else "".join(
            f"%{ord(ch):02X}" if ch in _PATH_ESCAPES else ch for ch in encoded
        )
        dirs.append(f"{column}={escaped}")
    return dirs


def _file_stats(meta: pq.FileMetaData, schema: pa.Schema) -> dict[str, Any]:
    """Delta file statistics for top-level primitive columns, aggregated over row groups."""
    stats: dict[str, Any] = {"numRecords": meta.num_rows, "minValues": {}, "maxValues": {}, "nullCount": {}}
    if meta.num_row_groups == 0:
        return stats
    leaf = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    for arrow_field in schema:
        i = leaf.get(arrow_field.name)
        if i is None or pa.types.is_nested(arrow_field.type):
            continue
        nulls, lows, highs, complete = 0, [], [], True
        for g in range(meta.num_row_groups):
            st = meta.row_group(g).column(i).statistics
            if st is None or not st.has_null_count:
                nulls = None
                complete = False
                break
            nulls += st.null_count
            if st.has_min_max:
                lows.append(st.min)
                highs.append(st.max)
            elif st.null_count != meta.row_group(g).num_rows:
                complete = False  # values present but no min/max: bounds unknown
        if nulls is None:
            continue
        stats["nullCount"][arrow_field.name] = nulls
        if not complete or not lows:
            continue
        try:
            low = _stat_json(min(lows), arrow_field.type, round_up=False)
            high = _stat_json(max(highs), arrow_field.type, round_up=True)
        except (TypeError, ValueError, OverflowError):
            continue
        if low is not None:
            stats["minValues"][arrow_field.name] = low
        if high is not None:
            stats["maxValues"][arrow_field.name] = high
    return stats


def _stat_json(value: Any, arrow_type: pa.DataType, *, round_up: bool) -> Any:
    """A min (round_up=False) or max bound as Delta stats JSON, or None when not representable."""
    if pa.types.is_floating(arrow_type):
        return value if value == value and abs(value) != float("inf") else None
    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return value
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        if len(value) <= _STRING_STAT_CHARS:
            return value
        return None if round_up else value[:_STRING_STAT_CHARS]  # a prefix is still a lower bound
    if pa.types.is_timestamp(arrow_type):
        # Delta stores millisecond bounds: floor the min, ceil the max so they still bound the data.
        extra = value.microsecond % 1000
        if round_up and extra:
            value += timedelta(microseconds=1000 - extra)
        else:
            value -= timedelta(microseconds=extra)
        if arrow_type.tz is not None:
            return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if pa.types.is_date(arrow_type):
        return value.isoformat()
    return None  # decimals (JSON floats would round), binary: no bounds


# --------------------------------------------------------------------------------------------
# filesystem helpers (driver and executors)


def _normalize(path: str) -> str:
    """Absolute local path for local paths and ``file:`` URIs; other URIs (s3://, ...) unchanged."""
    path = str(path)
    if path.startswith("file:"):
        from urllib.parse import unquote, urlparse

        path = unquote(urlparse(path).path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path):
        return path.rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


def _filesystem(root: str, error: type[Exception] = SourceReadError) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(root)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as err:
        raise error(
            f"cannot open {root} with pyarrow's filesystems ({err}); the local Delta reader/writer supports "
            f"local paths and pyarrow URIs (file://, s3://, gs://, hdfs://). Use the native Delta IO instead"
        ) from err


def _hidden(name: str) -> bool:
    # Spark skips these when it lists a directory; partition directories like _col=1 still count.
    return name.startswith(".") or (name.startswith("_") and "=" not in name) or name.endswith("._COPYING_")


def _list_data_files(root: str) -> list[tuple[str, int, int]]:
    """(path relative to root, size, mtime ns) of every file Spark would read under root."""
    fs, base = _filesystem(root)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.File:
        return [(info.base_name, info.size, info.mtime_ns or 0)]
    out = []
    for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        rel = entry.path[len(base) :].lstrip("/")
        if entry.type == pafs.FileType.File and not any(_hidden(part) for part in rel.split("/")):
            out.append((rel, entry.size, entry.mtime_ns or 0))
    return sorted(out)


def _delete_files(root: str, rel_paths: Sequence[str], write_id: str | None = None) -> None:
    """Delete written files; with write_id, also any file of that write (failed task attempts)."""
    fs, base = _filesystem(root)
    targets = {f"{base}/{rel}" for rel in rel_paths}
    if write_id is not None:
        for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
            if entry.type == pafs.FileType.File and write_id in entry.base_name and "/_delta_log/" not in entry.path:
                targets.add(entry.path)
    for target in sorted(targets):
        try:
            fs.delete_file(target)
        except (FileNotFoundError, OSError) as err:
            log.warning("could not delete uncommitted file %s: %s", target, err)


# --------------------------------------------------------------------------------------------
# driver side: schemas, checks, commit


def _nullable(dtype: Any) -> Any:
    """Delta Spark stores DataFrame writes as nullable; Spark's nullability flags are too fickle to keep."""
    from pyspark.sql import types as T

    if isinstance(dtype, T.StructType):
        return T.StructType([T.StructField(f.name, _nullable(f.dataType), True, f.metadata) for f in dtype])
    if isinstance(dtype, T.ArrayType):
        return T.ArrayType(_nullable(dtype.elementType), True)
    if isinstance(dtype, T.MapType):
        return T.MapType(_nullable(dtype.keyType), _nullable(dtype.valueType), True)
    return dtype


def _arrow_schema(spark_schema: Any, table: str) -> pa.Schema:
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import to_arrow_schema

    fields = []
    for f in spark_schema:
        try:
            fields.append(to_arrow_schema(T.StructType([f])).field(0))
        except (TypeError, ValueError, NotImplementedError) as err:
            raise DeltaWriteError(
                f"column {f.name!r} has type {f.dataType.simpleString()}, which the local Delta writer cannot "
                f"store in {table} ({err}); cast it (e.g. to string) before writing"
            ) from err
    return pa.schema(fields)


def _delta_schema(arrow_schema: pa.Schema, table: str) -> Any:
    from deltalake import Schema

    try:
        return Schema.from_arrow(arrow_schema)
    except Exception as whole:  # noqa: BLE001 - delta-rs raises assorted types; find the column below
        for f in arrow_schema:
            try:
                Schema.from_arrow(pa.schema([f]))
            except Exception as err:  # noqa: BLE001
                raise DeltaWriteError(
                    f"column {f.name!r} has Arrow type {f.type}, which Delta cannot store in {table} "
                    f"({_summary(err)}); cast it to a supported type before writing"
                ) from err
        raise DeltaWriteError(
            f"the DataFrame schema cannot become a Delta schema for {table}: {_summary(whole)}"
        ) from whole


def _delta_types(schema: Any) -> dict[str, Any]:
    """Column name -> Delta type JSON without nullability or field metadata."""

    def strip(t: Any) -> Any:
        if isinstance(t, dict):
            skip = ("nullable", "containsNull", "valueContainsNull", "metadata")
            return {k: strip(v) for k, v in t.items() if k not in skip}
        if isinstance(t, list):
            return [strip(v) for v in t]
        return t

    return {f["name"]: strip(f["type"]) for f in json.loads(schema.to_json())["fields"]}


def _type_name(delta_type: Any) -> str:
    return delta_type if isinstance(delta_type, str) else json.dumps(delta_type, separators=(",", ":"))


def _schema_mismatch(table: str, mode: str, table_types: dict, df_types: dict) -> DeltaWriteError:
    problems = []
    lower_table = {name.lower(): name for name in table_types}
    for name, dtype in table_types.items():
        if name not in df_types:
            problems.append(f"column {name!r} is missing from the DataFrame")
        elif df_types[name] != dtype:
            problems.append(
                f"column {name!r} is {_type_name(dtype)} in the table but {_type_name(df_types[name])} in the DataFrame"
            )
    for name in df_types:
        if name not in table_types:
            twin = lower_table.get(name.lower())
            hint = f" (the table has {twin!r}; names are case-sensitive)" if twin else ""
            problems.append(f"column {name!r} is not in the table{hint}")
    return DeltaWriteError(
        f"cannot {mode} to Delta table {table}: the DataFrame's schema differs from the table's: "
        f"{'; '.join(problems)}. Select and cast the DataFrame's columns to the table schema, or write with "
        f"mode='overwrite', overwrite_schema=True to replace the table's schema"
    )


def check_readable_locally(
    table: str, protocol: Any, configuration: Mapping[str, str], *, files_with_deletion_vectors: int = 0
) -> None:
    """Raise :class:`SourceReadError` if reading the table's Parquet files directly would be wrong.

    Column mapping renames the physical Parquet columns; deletion vectors mark rows deleted without
    rewriting files. Either way, reading the files without the Delta jars returns wrong data. The
    deletion vector feature alone (no vectors in the snapshot) is harmless: it is on by default on
    Databricks.

    Parameters
    ----------
    table : str
        Table path, for the message.
    protocol : deltalake.table.ProtocolVersions
        ``DeltaTable.protocol()``.
    configuration : mapping
        ``DeltaTable.metadata().configuration``.
    files_with_deletion_vectors : int
        Number of files of the snapshot that carry a deletion vector.
    """
    mode = str(configuration.get("delta.columnMapping.mode", "none")).lower()
    if mode != "none":
        raise SourceReadError(
            f"Delta table {table} uses column mapping (delta.columnMapping.mode={mode}, protocol reader version "
            f"{protocol.min_reader_version}): its Parquet files hold renamed physical columns, which the local "
            f"reader (no Delta jars) cannot map back. Run with the Delta Spark extension "
            f"(pip install 'lakelabel[delta]', or on Databricks)"
        )
    if files_with_deletion_vectors:
        raise SourceReadError(
            f"Delta table {table} has deletion vectors on {files_with_deletion_vectors} file(s) (reader features: "
            f"{protocol.reader_features}): rows deleted there are still in the Parquet files, so the local reader "
            f"(no Delta jars) would return them. Run with the Delta Spark extension, or rewrite the files first "
            f"with `REORG TABLE ... APPLY (PURGE)` (or OPTIMIZE) on a Delta engine"
        )


def _check_writable_locally(table: str, dt: Any, mode: str) -> None:
    """Refuse tables whose features the local writer would silently violate."""
    config = dt.metadata().configuration
    mode_cm = str(config.get("delta.columnMapping.mode", "none")).lower()
    refuse = []
    if mode_cm != "none":
        refuse.append(f"column mapping (delta.columnMapping.mode={mode_cm})")
    constraints = sorted(k for k in config if k.startswith("delta.constraints."))
    if constraints:
        refuse.append(f"CHECK constraints ({', '.join(constraints)})")
    special = ("delta.generationExpression", "delta.identity", "delta.invariants")
    for f in json.loads(dt.schema().to_json())["fields"]:
        used = sorted(k for k in f.get("metadata", {}) if k.startswith(special))
        if used:
            refuse.append(f"column {f['name']!r} metadata {used}")
    if mode == "overwrite" and str(config.get("delta.appendOnly", "false")).lower() == "true":
        refuse.append("delta.appendOnly=true (overwrite would remove files)")
    if refuse:
        raise DeltaWriteError(
            f"the local Delta writer (no Delta jars) cannot {mode} to {table}: it does not enforce "
            f"{'; '.join(refuse)}. Write with the Delta Spark extension instead"
        )


@dataclass(frozen=True)
class _WritePlan:
    action: Literal["create", "append", "overwrite", "replace"]
    arrow_schema: pa.Schema  # full table schema, in table column order
    delta_schema: Any
    partition_by: tuple[str, ...]
    not_null: tuple[str, ...] = ()

    @property
    def file_schema(self) -> pa.Schema:
        # Files keep every column nullable; NOT NULL is checked on the data before writing.
        return pa.schema([f.with_nullable(True) for f in self.arrow_schema if f.name not in self.partition_by])


def _plan_write(
    df: Any, table: str, dt: Any, mode: str, partition_by: tuple[str, ...], overwrite_schema: bool
) -> _WritePlan:
    df_arrow = _arrow_schema(_nullable(df.schema), table)
    names = df_arrow.names
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise DeltaWriteError(
                f"columns {seen[name.lower()]!r} and {name!r} differ only in case; Delta column names are "
                f"case-insensitive. Rename one before writing {table}"
            )
        seen[name.lower()] = name
    for column in partition_by:
        if column not in names:
            raise DeltaWriteError(
                f"partition column {column!r} is not a column of the DataFrame written to {table}; "
                f"its columns are: {', '.join(names)}"
            )
        ptype = df_arrow.field(column).type
        if pa.types.is_nested(ptype) or pa.types.is_binary(ptype) or pa.types.is_large_binary(ptype):
            raise DeltaWriteError(
                f"partition column {column!r} has type {ptype}; Delta partition columns must be primitive "
                f"(string, numbers, dates, timestamps, booleans). Partition {table} by another column"
            )
    if len(set(partition_by)) != len(partition_by) or (partition_by and len(partition_by) == len(names)):
        raise DeltaWriteError(
            f"partition_by={list(partition_by)} for {table} must list distinct columns and leave at least one "
            f"column outside the partitioning"
        )
    df_delta = _delta_schema(df_arrow, table)
    if dt is None:
        return _WritePlan("create", df_arrow, df_delta, partition_by)

    table_parts = tuple(dt.metadata().partition_columns)
    parts = partition_by or table_parts
    if parts != table_parts:
        if mode == "overwrite" and overwrite_schema:
            return _WritePlan("replace", df_arrow, df_delta, parts)
        fix = (
            "pass overwrite_schema=True to rewrite the table with the new partitioning"
            if mode == "overwrite"
            else "leave partition_by empty to use the table's partitioning, or overwrite with overwrite_schema=True"
        )
        raise DeltaWriteError(
            f"Delta table {table} is partitioned by {list(table_parts)}, but the write asks for {list(parts)}; {fix}"
        )
    table_types, df_types = _delta_types(dt.schema()), _delta_types(df_delta)
    if table_types != df_types:
        if mode == "overwrite" and overwrite_schema:
            return _WritePlan("overwrite", df_arrow, df_delta, parts)
        raise _schema_mismatch(table, mode, table_types, df_types)
    table_arrow = pa.schema(dt.schema().to_arrow())
    not_null = tuple(f.name for f in table_arrow if not f.nullable)
    return _WritePlan(mode, table_arrow, dt.schema(), parts, not_null)  # type: ignore[arg-type]


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


def _summary(err: BaseException) -> str:
    """The line of an exception that says what went wrong (the last one of a Python worker's
    traceback wrapped by Spark, else the first: delta-rs appends Rust backtraces)."""
    text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in text:
        for line in reversed(lines):
            if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b[^:]*:", line):
                return line[:500]
    return (lines[0] if lines else type(err).__name__)[:500]


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
        """Custom metadata (``commit_metadata``) of the latest commit, from the table history."""
        root = _normalize(path)
        dt = self._load_for_read(root, None)
        latest = dt.history(limit=1)
        return {k: v for k, v in latest[0].items() if k not in _ENGINE_COMMIT_KEYS} if latest else {}

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
            Stored in the commit info; read back with :meth:`read_metadata`.
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
        if mode not in _WRITE_MODES:
            raise ValueError(f"mode must be one of {', '.join(_WRITE_MODES)}; got {mode!r}")
        if (app_id is None) != (app_version is None):
            raise ValueError("app_id and app_version go together: pass both for an exactly-once commit, or neither")
        if app_version is not None and (type(app_version) is not int or app_version < 0):
            raise ValueError(f"app_version must be an int >= 0; got {app_version!r}")
        if overwrite_schema and mode != "overwrite":
            raise ValueError("overwrite_schema=True needs mode='overwrite'; appends never change the table schema")
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
                rows = df.select(*[_column(n) for n in plan.arrow_schema.names]).mapInArrow(task, _FILES_DDL).collect()
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
            custom_metadata={**dict(commit_metadata or {}), _WRITE_ID_KEY: write_id},
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
            if commit.get(_WRITE_ID_KEY) == write_id:
                return int(commit["version"])
        return None


def _check_hive_layout(root: str, partition_columns: Sequence[str], files: Sequence[str]) -> None:
    """Spark takes partition values from ``col=value`` directories; make sure every file has them."""
    for uri in files:
        rel = uri[len(root) :].lstrip("/") if uri.startswith(root) else uri
        dirs = rel.split("/")[:-1]
        if len(dirs) != len(partition_columns) or not all(
            d.startswith(f"{c}=") for d, c in zip(dirs, partition_columns)
        ):
            raise SourceReadError(
                f"Delta table {root} is partitioned by {list(partition_columns)}, but file {rel} is not in "
                f"hive-style col=value directories (e.g. randomized file prefixes); the local reader needs that "
                f"layout. Run with the Delta Spark extension"
            )


# --------------------------------------------------------------------------------------------
# sources

_CSV_DEFAULTS = {"header": "true", "multiLine": "true", "escape": '"', "inferSchema": "false"}
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
_EXPECTED_SOURCE = "a Delta table directory (with _delta_log/), a Parquet or CSV file, or a directory of them"


def read_source(
    spark: Any,
    path: str,
    *,
    format: SourceFormat = "auto",
    options: Mapping[str, str] | None = None,
    io: LocalDeltaIO | None = None,
) -> tuple[Any, SourceInfo]:
    """Read a Delta table, Parquet or CSV source and describe it for lineage.

    ``format="auto"``: a directory with ``_delta_log/`` is Delta; a ``.csv`` file or a directory
    of only CSV files is CSV; anything else is Parquet. CSV defaults: ``header=true``,
    ``multiLine=true``, ``escape='"'``, ``inferSchema=false`` (``options`` override them).
    Delta sources accept the option ``versionAsOf``.

    Returns
    -------
    (pyspark.sql.DataFrame, SourceInfo)

    Raises
    ------
    SourceReadError
        Missing path, a path of the wrong kind for ``format``, or data Spark cannot read.
    """
    if format not in _SOURCE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(_SOURCE_FORMATS)}; got {format!r}")
    io = io or _DEFAULT_IO
    options = dict(options or {})
    root = _normalize(path)
    uri = root if "://" in root else _file_uri(root)
    fs, base = _filesystem(root)
    entry = fs.get_file_info(base)
    if entry.type == pafs.FileType.NotFound:
        raise SourceReadError(f"source {path} does not exist ({root}); expected {_EXPECTED_SOURCE}")
    is_dir = entry.type == pafs.FileType.Directory
    is_delta = is_dir and fs.get_file_info(f"{base}/_delta_log").type == pafs.FileType.Directory

    if format == "delta" or (format == "auto" and is_delta):
        if not is_delta:
            raise SourceReadError(
                f"source {path} is not a Delta table: {root}/_delta_log is missing; set format to "
                f"'parquet', 'csv' or 'auto'"
            )
        as_of = options.pop("versionAsOf", None)
        if options:
            raise SourceReadError(f"Delta source {path} accepts only the option 'versionAsOf'; got {sorted(options)}")
        table_id, version = io.describe_table(root, version=int(as_of) if as_of is not None else None)
        df = io.read_table(spark, root, version=version)
        return df, SourceInfo(path=uri, format="delta", version=version, fingerprint=f"delta:{table_id}@{version}")

    if is_delta:
        raise SourceReadError(
            f"source {path} is a Delta table; reading its directory as {format} would include files the table "
            f"has removed. Use format 'delta' or 'auto'"
        )
    files = _list_data_files(root)
    if not files:
        raise SourceReadError(f"source {path} has no data files ({root}); expected {_EXPECTED_SOURCE}")
    fmt = format
    if fmt == "auto":
        fmt = "csv" if all(rel.lower().endswith(_CSV_SUFFIXES) for rel, _, _ in files) else "parquet"
    reader_options = {}
    if fmt == "csv":
        given = {k.lower() for k in options}
        reader_options = {k: v for k, v in _CSV_DEFAULTS.items() if k.lower() not in given}
    reader_options.update(options)
    try:
        df = spark.read.format(fmt).options(**reader_options).load(_spark_path(root))
    except Exception as err:  # noqa: BLE001 - Spark raises AnalysisException, Py4JJavaError, ...
        raise SourceReadError(
            f"cannot read source {path} as {fmt}: {_summary(err)}; check the path and the format "
            f"(expected {_EXPECTED_SOURCE})"
        ) from err
    digest = hashlib.sha256("\n".join(f"{rel}\t{size}\t{mtime}" for rel, size, mtime in files).encode())
    return df, SourceInfo(path=uri, format=fmt, version=None, fingerprint=f"files:{digest.hexdigest()}")


def _file_uri(local_path: str) -> str:
    from pathlib import Path

    return Path(local_path).as_uri()


def _spark_path(path: str) -> str:
    """A path as Spark's readers take it: ``file://`` + the literal local path (no percent-encoding:
    Hadoop does not decode it, so partition directories like ``src=a%2Fb`` must stay as they are)."""
    return path if "://" in path else "file://" + path


_DEFAULT_IO = LocalDeltaIO()


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
    """Custom metadata of the latest commit of the Delta table at ``path``."""
    return _DEFAULT_IO.read_metadata(path)


def restore_table(path: str, version: int | None, *, reason: str) -> None:
    """Put a table back to ``version`` after a later stage of the same job failed.

    ``version=None`` means the table did not exist before the job: its folder is removed.
    Delta records the restore as a new commit whose content equals ``version``.
    """
    from deltalake import CommitProperties, DeltaTable

    root = _normalize(path)
    if version is None:
        import shutil

        if os.path.isdir(root):
            shutil.rmtree(root)
        log.info("removed %s, created by a job that failed (%s)", root, reason)
        return
    dt = DeltaTable(root)
    # Carry the restored version's own commit metadata, so readers of the latest commit's
    # metadata (lakelabel's stage summaries) see what the table now holds.
    entry = next((h for h in dt.history() if h.get("version") == version), {})
    kept = {k: str(v) for k, v in entry.items() if k.startswith("lakelabel.") and k != _WRITE_ID_KEY}
    kept["lakelabel.restore"] = reason
    dt.restore(version, commit_properties=CommitProperties(custom_metadata=kept))
    log.info("restored %s to version %d (%s)", root, version, reason)
