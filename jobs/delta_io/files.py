"""Delta data files: the executor-side Parquet writer and the filesystem helpers.

Spark tasks run :class:`_TaskWriter` through ``mapInArrow``: it writes each task's rows as Parquet
files in hive-style ``col=value/`` directories and yields one metadata row per file (path, size,
partition values, row count, Delta stats from the Parquet footer) for the driver's commit. Only
pyarrow is needed on the executors. The filesystem helpers serve the driver and the executors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobs.delta_io.errors import SourceReadError
from jobs.delta_io.leftovers import LOCK_DIR

# Log under the public module's name, as before the split, so logging config keyed on it still applies.
log = logging.getLogger("jobs.delta_io")

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
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Spark's ExternalCatalogUtils.escapePathName set, so Spark's partition discovery reads them back.
_PATH_ESCAPES = frozenset('"#%\'*/:=?\\\x7f{[]^') | frozenset(chr(c) for c in range(1, 32))
_STRING_STAT_CHARS = 32  # like Delta Spark: long strings get a prefix min and no max


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
    # Maps the task's input batches to the rows to write (LocalDeltaIO.write_table's ``transform``).
    transform: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]] | None = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if self.transform is not None:
            batches = self.transform(batches)
        fs, base = _filesystem(self.root)
        prefix = f"part-{_task_partition_id():05d}-{self.write_id}-{uuid.uuid4().hex[:8]}"
        files: dict[tuple, _OpenFile] = {}
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                self._check_not_null(batch)
                table = pa.Table.from_batches([batch])
                # Cast once per batch; the pieces of a partitioned batch are slices of it.
                data = table.select(self.data_schema.names).cast(self.data_schema)
                for key, rows in self._split(table, data):
                    out = files.get(key)
                    if out is None:
                        name = f"{prefix}-{len(files):04d}.c000.{self.compression}.parquet"
                        rel = "/".join([*_partition_dirs(self.partition_columns, key), name])
                        out = files[key] = _OpenFile(self, fs, f"{base}/{rel}", rel, key)
                    out.append(rows)
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

    def _split(self, table: pa.Table, data: pa.Table) -> Iterator[tuple[tuple, pa.Table]]:
        """``data``'s rows per partition value (read from ``table``, which has the partition columns)."""
        if not self.partition_columns:
            yield (), data
            return
        cols = list(self.partition_columns)
        keyed = table.select(cols).append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        groups = keyed.group_by(cols, use_threads=False).aggregate([("__row", "list")])
        keys = groups.select(cols).to_pylist()
        if len(keys) == 1:
            yield tuple(keys[0][c] for c in cols), data
            return
        # One take puts each partition's rows together; the pieces are zero-copy slices of it (a
        # batch of votes spans hundreds of LF partitions: one take each would dominate the write).
        indices = groups.column("__row_list").combine_chunks()
        grouped = data.take(indices.flatten())
        bounds = np.concatenate(([0], np.cumsum(np.diff(indices.offsets.to_numpy()))))
        for i, key in enumerate(keys):
            yield tuple(key[c] for c in cols), grouped.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))


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
        from urllib.parse import unquote

        # Not urlparse: a local file URI has no query or fragment, and lakelabel's own file:// form (_spark_path,
        # the literal path) keeps a folder's '#' or '?', which urlparse cut off (an incremental read under such a
        # folder named a file of the table as not one of it).
        rest = path.removeprefix("file:")
        if rest.startswith("//"):  # file://host/path: the host is empty or localhost
            rest = "/" + rest[2:].partition("/")[2]
        path = unquote(rest)
    # scheme:// and scheme:/ (dbfs:/...); one-letter schemes are Windows drives, not URIs.
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", path):
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
    """Delete written files; with write_id, also any file of that write (failed task attempts). Locally,
    the folders only those files filled (partition folders the write made) go too.

    The write's lock file (``_lakelabel_writers/<write id>.lock``) is not one of its files: the write keeps it
    when a task may still finish a file after this (:class:`jobs.delta_io.leftovers.WriterLock`), and deleted
    here it left such a file to no sweep for 24 hours (a drill, session 26)."""
    fs, base = _filesystem(root)
    targets = {f"{base}/{rel}" for rel in rel_paths}
    if write_id is not None:
        for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
            if (entry.type == pafs.FileType.File and write_id in entry.base_name and "/_delta_log/" not in entry.path
                    and f"/{LOCK_DIR}/" not in entry.path):
                targets.add(entry.path)
    emptied: set[str] = set()
    for target in sorted(targets):
        try:
            fs.delete_file(target)
            emptied.add(os.path.dirname(target))
        except (FileNotFoundError, OSError) as err:
            log.warning("could not delete uncommitted file %s: %s", target, err)
    if base.startswith("/"):  # local: the partition folders these files alone filled go too
        for folder in sorted(emptied, key=lambda path: -path.count("/")):
            while folder.startswith(base + "/"):
                try:
                    os.rmdir(folder)  # only succeeds when empty
                except OSError:
                    break
                folder = os.path.dirname(folder)


# What Hadoop's path globbing (every Spark reader) takes for pattern syntax even in a path that exists: a folder
# 'reports [2024]' is read as a pattern of one character (PATH_NOT_FOUND), 'a{b}' as 'ab', a backslash escapes the next
# character ('\x': "Illegal file pattern"), and '*' and '?' match their folder and its siblings too (a source 'src?'
# read the rows of 'srcA' beside it, silently).
_SPARK_GLOB = re.compile(r"[\\\[{*?]")


def spark_glob_error(path: str, what: str, key: str) -> str | None:
    """The error for a local ``path`` whose name Spark's readers would take for a glob pattern (``[``, ``{``, ``*``,
    ``?``, a backslash), naming it as ``what`` and the config ``key`` to fix; None when it reads."""
    if not is_local_path(path) or (found := _SPARK_GLOB.search(_normalize(path))) is None:
        return None
    effect = "would read other folders' files with it" if found.group() in "*?" else "cannot read it there"
    return (f"{what} {path}: its path holds {found.group()!r}, which Spark's readers take for glob pattern syntax "
            f"(Hadoop path globbing), so they {effect}; rename the folder or fix {key}")


def is_local_path(path: str) -> bool:
    """True for a local path or ``file:`` URI; False for other URIs (s3://, abfss://, dbfs:/, ...)."""
    return _normalize(path).startswith("/")


def _remove_empty_dirs(root: str) -> None:
    """Delete the empty folders under a local ``root`` and ``root`` itself when empty (never a file).

    What a failed first write leaves: its files are deleted, their partition folders are not.
    """
    if not root.startswith("/"):
        return
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -entry[0].count("/")):
        try:
            os.rmdir(folder)  # only succeeds when empty
        except OSError:
            pass


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


def _misread_partitions(root: str, partition_columns: Sequence[str], files: Sequence[str],
                        actions: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Partition column -> {the value Spark reads from a ``col=value`` folder name: the Delta log's value}, for
    the string values Spark's partition discovery reads as other values than the log holds (none: ``{}``).

    Spark decodes each ``%XX`` of a folder name into one character, while delta-rs percent-encodes the
    UTF-8 bytes of a value: ``lang=%C3%A9`` is ``é`` in the log and ``Ã©`` to Spark (a drill, session 26:
    an SQL LF on a partition column silently missed those rows). The misreading is one to one (UTF-8 bytes, each
    as one character), so a read value names one logged value. ``actions``: delta-rs'
    ``get_add_actions(flatten=False)`` rows (``path`` as in the log, ``partition`` typed values).
    """
    from urllib.parse import unquote

    values = {unquote(a["path"]): (a.get("partition") or {}) for a in actions}
    fixes: dict[str, dict[str, Any]] = {}
    for uri in files:
        rel = uri[len(root):].lstrip("/") if uri.startswith(root) else uri
        logged = values.get(rel)
        if logged is None:
            continue
        folders = dict(d.split("=", 1) for d in rel.split("/")[:-1] if "=" in d)
        for column in partition_columns:
            want, folder = logged.get(column), folders.get(column)
            if not isinstance(want, str) or folder is None or folder == "__HIVE_DEFAULT_PARTITION__":
                continue
            read = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), folder)
            if read != want:
                fixes.setdefault(column, {})[read] = want
    return fixes


def _gone_files(files: Sequence[str]) -> list[str]:
    """The local ones of ``files`` (paths or ``file:`` URIs of a snapshot) that are not on disk: a VACUUM
    removed them, or someone by hand. URIs of object stores are not checked (one request each)."""
    local = [_normalize(f) for f in files]
    return [f for f in local if f.startswith("/") and not os.path.exists(f)]


def _spark_path(path: str) -> str:
    """A path as Spark's readers take it: ``file://`` + the literal local path (no percent-encoding:
    Hadoop does not decode it, so partition directories like ``src=a%2Fb`` must stay as they are)."""
    return path if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path) else "file://" + path


def footer(path: str) -> Any | None:
    """The footer (``pyarrow.parquet.FileMetaData``) of the Parquet file at ``path`` (a local path, Spark's
    ``file:`` form of one, or a URI pyarrow's filesystems open); None when it cannot be read."""
    try:
        if path.startswith("file:"):  # Spark's form of a local path: file:// + the literal path (see _spark_path)
            fs, rel = None, path[5:][2:] if path[5:].startswith("//") else path[5:]
        elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path):
            fs, rel = pafs.FileSystem.from_uri(path)
        else:
            fs, rel = None, path
        return pq.read_metadata(rel, filesystem=fs)
    except (OSError, ValueError, pa.ArrowException):
        return None


def footer_counts(path: str, columns: Sequence[str]) -> dict[str, Any] | None:
    """Row count, and null count and min of ``columns``, from one Parquet file's footer (no data read).

    ``{"rows": n, "nulls": {column: n}, "min": {column: value or None}}``; None when the file cannot
    be opened with pyarrow's filesystems or its footer lacks a column's statistics (the caller
    then reads the rows).
    """
    meta = footer(path)
    if meta is None:
        return None
    leaf = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    nulls: dict[str, int] = {}
    lows: dict[str, Any] = {}
    for column in columns:
        i = leaf.get(column)
        if i is None:
            return None
        nulls[column], low = 0, None
        for g in range(meta.num_row_groups):
            st = meta.row_group(g).column(i).statistics
            if st is None or not st.has_null_count:
                return None
            nulls[column] += st.null_count
            if st.has_min_max:
                low = st.min if low is None else min(low, st.min)
            elif st.null_count != meta.row_group(g).num_rows:
                return None  # values without a min: unknown
        lows[column] = low
    return {"rows": meta.num_rows, "nulls": nulls, "min": lows}
