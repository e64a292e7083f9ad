"""Reading and validating the table to label (the only place that knows source formats)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.runtime.config import SourceConfig
from jobs.delta_io import SourceInfo, read_source
from jobs.delta_io.errors import SourceReadError, _summary
from jobs.delta_io.files import spark_glob_error
from jobs.delta_io.schema import by_name
from jobs.delta_io.source import (
    delta_file_error,
    files_fingerprint_now,
    find_corrupt_parquet,
    find_ragged_csv_row,
    local_path_missing,
    missing_source,
    non_csv_culprit,
)
from lf_library.errors import ConfigError, InputDataError, TransientError

log = logging.getLogger(__name__)

_ID_TYPES = (T.StringType, T.IntegerType, T.LongType, T.ShortType, T.ByteType)


@dataclass(frozen=True)
class Source:
    """A loaded source: the DataFrame plus what lineage needs to know about it."""

    df: DataFrame
    info: SourceInfo
    id_column: str
    gold_column: str | None
    # The configured paths and reader options, to name a bad file when Spark fails to read one.
    paths: tuple[str, ...] = ()
    options: dict[str, str] | None = None
    # The config section it came from (``source``, ``evaluation``), for the keys errors name.
    role: str = "source"
    # drop_duplicate_rows: (the rows read, ``df`` made from them), so check_source counts the copies
    # dropped; a Source whose ``df`` was replaced (a sample, the changed rows) no longer matches.
    dedupe: tuple[DataFrame, DataFrame] | None = None

    @property
    def undeduplicated(self) -> DataFrame | None:
        """The rows before ``drop_duplicate_rows`` dropped the exact copies from ``df``, else None."""
        return self.dedupe[0] if self.dedupe is not None and self.dedupe[1] is self.df else None

    @property
    def description(self) -> str:
        version = f"@v{self.info.version}" if self.info.version is not None else ""
        return f"{self.info.path}{version}"


def check_source_unchanged(source: Source) -> None:
    """Raise :class:`TransientError` when the files of a Parquet or CSV source changed since :func:`load_source`
    listed them: a job that rewrote the source while this run read it leaves rows of the new files under the old
    files' fingerprint and row count (a drill: a source cut from 20,000 rows to 15,000 during apply published 15,000
    labels, exit 0, with a summary saying 20,000 rows of the old files). Delta sources are read at the version
    their fingerprint names; URIs are not looked at."""
    if not source.info.fingerprint.startswith("files:") or source.info.format == "delta" or not source.paths:
        return
    now = [files_fingerprint_now(path, source.options) for path in source.paths]
    if any(f is None for f in now):
        return
    if combined_fingerprint(now) != source.info.fingerprint:
        raise TransientError(
            f"{source.role} {source.info.path} changed while this run read it (its files' names, sizes or "
            f"modification times are not those it listed at the start): another job rewrote it, so the rows read may "
            f"mix its old and new files; nothing was committed: rerun once the source is written"
        )


def combined_fingerprint(fingerprints: Sequence[str]) -> str:
    """The fingerprint of a source of several paths from theirs (one path: its own)."""
    if len(fingerprints) == 1:
        return fingerprints[0]
    return "files:" + hashlib.sha256("|".join(fingerprints).encode()).hexdigest()


def load_source(spark: SparkSession, cfg: SourceConfig, *, role: str = "source", io: Any = None) -> Source:
    """Read ``cfg`` (one path or a list of paths) and check its id and gold columns exist.

    ``io`` reads Delta sources: :func:`jobs.delta_io.delta_io`'s choice (default: ``"auto"``).
    """
    if io is None:
        from jobs.delta_io import delta_io

        io = delta_io(spark)
    paths = cfg.path if isinstance(cfg.path, list) else [cfg.path]
    if not paths or not all(paths):
        raise ConfigError(f"{role}.path is empty; set it to a Delta table, Parquet or CSV path")
    frames, infos = [], []
    for path in paths:
        df, info = read_source(spark, path, format=cfg.format, options=cfg.options, io=io, role=role)
        frames.append(df)
        infos.append(info)
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other, allowMissingColumns=True)
    if len(infos) == 1:
        info = infos[0]
    else:
        info = SourceInfo(
            path=",".join(i.path for i in infos),
            format=infos[0].format,
            version=None,
            fingerprint=combined_fingerprint([i.fingerprint for i in infos]),
        )
    table = info.path
    _require_column(df, cfg.id_column, table, f"{role}.id_column")
    if cfg.gold_column:
        _require_column(df, cfg.gold_column, table, f"{role}.gold_column")
    dedupe = None
    if cfg.drop_duplicate_rows:
        # Exact copies only: an id that repeats with different content is still an error.
        dedupe = (df, df.dropDuplicates())
        df = dedupe[1]
    id_type = df.schema[cfg.id_column].dataType
    if not isinstance(id_type, _ID_TYPES):
        raise InputDataError(
            f"id column {cfg.id_column!r} of {table} has type {id_type.simpleString()}; ids must be strings "
            f"or integers: write the source with the column cast to string or bigint (lakelabel reads {role}.path as "
            f"it is, with no query or view over it), or point {role}.id_column at another column"
        )
    return Source(df=df, info=info, id_column=cfg.id_column, gold_column=cfg.gold_column, paths=tuple(paths),
                  options=dict(cfg.options), role=role, dedupe=dedupe)


def _require_column(df: DataFrame, column: str, table: str, key: str) -> None:
    _require_name(column, list(df.columns), table, key)


def _require_name(column: str, columns: list[str], table: str, key: str) -> None:
    if column not in columns and not columns:  # a zero-byte CSV file (a drill, session 26: "its columns are: .")
        raise InputDataError(f"column {column!r} ({key}) not found in {table}, which has no columns (an empty file?); "
                             f"fix or replace the source")
    if column not in columns:
        raise InputDataError(
            f"column {column!r} ({key}) not found in {table}; its columns are: {', '.join(columns)}. "
            f"Set {key} to one of them"
        )
    if "." in column:
        raise InputDataError(f"column {column!r} ({key}) of {table} {_DOTTED}")


# Spark reads ``a.b`` as field b of a struct column a wherever a job names a column, so a source column
# whose name holds a dot cannot be an id, gold or LF column (a drill, session 26: exit 1 with Spark's
# UNRESOLVED_COLUMN). Other columns may have dots.
_DOTTED = ("has a '.' in its name, which Spark reads as a field of a struct column, so lakelabel cannot read it; "
           "rename the column in the source (a Delta table: write a copy with the column renamed)")


def _peek_source(cfg: SourceConfig, wanted: list[str]) -> tuple[list[str], str] | None:
    """The source's columns (complete when one of ``wanted`` is missing) and its name, read without
    Spark; None when they cannot be known so (:func:`jobs.delta_io.source.peek_columns`)."""
    from jobs.delta_io.files import _normalize
    from jobs.delta_io.source import peek_columns, source_uri

    paths = cfg.path if isinstance(cfg.path, list) else [cfg.path]
    if not paths or not all(paths):
        return None
    found: list[str] = []
    for path in paths:
        columns = peek_columns(path, format=cfg.format, options=cfg.options, wanted=wanted)
        if columns is None:
            return None
        found += [c for c in columns if c not in found]
    return found, ",".join(source_uri(_normalize(p)) for p in paths)


def precheck_source_columns(cfg: SourceConfig, *, role: str = "source") -> None:
    """Reject a local source path that does not exist, or a misnamed id or gold column, before Spark
    starts (a local source read cheaply).

    The same error :func:`load_source` raises after Spark read the source; silent when the
    columns cannot be known without Spark (:func:`jobs.delta_io.source.peek_columns`).
    """
    precheck_source_path(cfg, role=role)
    required = {cfg.id_column: f"{role}.id_column"}
    if cfg.gold_column:
        required[cfg.gold_column] = f"{role}.gold_column"
    precheck_columns(cfg, required)


def precheck_source_path(cfg: SourceConfig, *, role: str = "source", key: str | None = None) -> None:
    """Reject a local source path (or one of a list) that does not exist, that Spark cannot read (a ``[`` in a
    folder's name), or whose files' names say another format (a README among CSVs), before Spark starts; ``key``
    names it in the fix (default ``<role>.path``)."""
    for path in cfg.path if isinstance(cfg.path, list) else [cfg.path]:
        if path and (root := local_path_missing(path)) is not None:
            raise SourceReadError(missing_source(path, root, role, key=key or f"{role}.path"))
        if path and (error := spark_glob_error(path, role, key or f"{role}.path") or delta_file_error(path, role, key)
                     or foreign_files_precheck(path, cfg, role)) is not None:  # fmt: skip
            raise SourceReadError(error)


def foreign_files_precheck(path: str, cfg: SourceConfig, role: str) -> str | None:
    """:func:`jobs.delta_io.source.read_source`'s error for a local Parquet or CSV source ``path`` whose
    files' names all say the other format, or a folder whose files include ones not of its format, read
    without Spark; None when there are none (or for Delta tables and URIs)."""
    import os

    from jobs.delta_io.files import _normalize
    from jobs.delta_io.source import _files_format, folder_error, format_mismatch, source_files

    root = _normalize(path)
    if cfg.format == "delta" or not root.startswith("/") or not os.path.exists(root) or \
            os.path.isdir(os.path.join(root, "_delta_log")):
        return None
    listed = source_files(root, cfg.options)
    fmt = cfg.format if cfg.format != "auto" else _files_format([rel for rel, _, _ in listed])
    return format_mismatch(path, listed, cfg.format, role) or (
        folder_error(path, listed, fmt, cfg.options, role) if os.path.isdir(root) else None)


def precheck_columns(cfg: SourceConfig, required: Mapping[str, str]) -> None:
    """Each column of ``required`` (column -> the key that names it) is in the local source ``cfg``,
    checked without Spark; silent when the columns cannot be known so."""
    peeked = _peek_source(cfg, list(required))
    if peeked is None:
        return
    found, table = peeked
    for column, key in required.items():
        _require_name(column, found, table, key)


def lf_columns(lfs: Sequence[Any]) -> dict[str, list[str]]:
    """Source column -> the LFs that read it in Python (their ``fields``; SQL and column LFs are
    Spark expressions, left to Spark)."""
    from lf_library.apply import runs_on_spark

    readers: dict[str, list[str]] = {}
    for lf in lfs:
        if runs_on_spark(lf) or lf.fields is None:
            continue
        for column in lf.fields:
            readers.setdefault(column, []).append(lf.name)
    return readers


#: LF kinds whose column is the one key ``field`` (default ``text``); the others take ``fields``.
_FIELD_KINDS = frozenset({"keyword", "regex", "lexicon"})


def lf_column_keys(lfs: Sequence[Any]) -> dict[str, str]:
    """LF name -> the key that names the columns it reads: ``field`` or ``fields``."""
    return {lf.name: "field" if getattr(lf, "kind", None) in _FIELD_KINDS else "fields" for lf in lfs}


def missing_lf_columns(readers: dict[str, list[str]], columns: Sequence[str], table: str,
                       keys: Mapping[str, str] | None = None, role: str = "source") -> InputDataError | None:
    """The error for LF fields that name no column of ``table`` (or one with a '.' in its name), or None.

    ``keys``: LF name -> ``field`` or ``fields`` (:func:`lf_column_keys`), so the fix names the key
    the LF is written with; default ``fields``.
    """
    missing = [c for c in readers if c not in columns]
    if not missing:
        dotted = [c for c in readers if "." in c]
        if dotted:
            return InputDataError(f"LF {', '.join(map(repr, readers[dotted[0]]))} read(s) column {dotted[0]!r} of {table}; "
                                  f"the column {_DOTTED}")
        return None
    def near(c: str) -> str:  # 'Text' for 'text': column names are case-sensitive for the LFs that read batches
        same = [col for col in columns if col.casefold() == c.strip().casefold()]
        return f" (did you mean {same[0]!r}? column names are case-sensitive)" if same else ""

    which = "; ".join(f"LF {', '.join(map(repr, readers[c]))} read(s) column {c!r}{near(c)}" for c in missing)
    used = sorted({(keys or {}).get(name, "fields") for c in missing for name in readers[c]})
    key = " or ".join(used)
    default = " (keyword, regex and lexicon LFs read column 'text' when it is left out)" if "field" in used else ""
    return InputDataError(f"{which}, not found in {table}; its columns are: {', '.join(columns)}. Fix the LF's "
                          f"{key}{default} or point {f'{role}.path' if role in ('source', 'evaluation') else 'it'} at a table "
                          f"that has the column")


def precheck_lf_columns(cfg: SourceConfig, lfs: Sequence[Any]) -> None:
    """Reject an LF that reads a column the source lacks before Spark starts, naming the LF
    (the check :func:`check_source` makes once Spark has read the source)."""
    readers = lf_columns(lfs)
    peeked = _peek_source(cfg, list(readers)) if readers else None
    if peeked is not None and (err := missing_lf_columns(readers, *peeked, lf_column_keys(lfs))) is not None:
        raise err


def check_columns(source: Source, needed: set[str] | None, lfs: Sequence[Any] = ()) -> None:
    """The columns the LFs read exist (no pass over the rows): those of ``lfs``' fields named with
    their LFs, then any other of ``needed``."""
    df, table = source.df, source.info.path
    if (err := missing_lf_columns(lf_columns(lfs), df.columns, table, lf_column_keys(lfs), source.role)) is not None:
        raise err
    missing = sorted(c for c in (needed or ()) if c not in df.columns)
    if missing:
        raise InputDataError(
            f"the LFs read column(s) {', '.join(map(repr, missing))}, not found in {table}; its columns are: "
            f"{', '.join(df.columns)}. Fix the LF's field or the source"
        )


@dataclass(frozen=True)
class SourceCounts:
    """What :func:`check_source_counts` counted: the rows to label, and the exact copies
    ``drop_duplicate_rows`` dropped (None when it is off)."""

    rows: int
    copies_dropped: int | None = None


def check_source(source: Source, *, text_columns: list[str], required_columns: set[str] | None,
                 lfs: Sequence[Any] = ()) -> int:
    """Validate a source in one pass and return its row count (:func:`check_source_counts`)."""
    return check_source_counts(source, text_columns=text_columns, required_columns=required_columns, lfs=lfs).rows


def check_source_counts(source: Source, *, text_columns: list[str], required_columns: set[str] | None,
                        lfs: Sequence[Any] = ()) -> SourceCounts:
    """Validate a source in one pass and count its rows (and the exact copies ``drop_duplicate_rows``
    dropped, logged at INFO).

    Fails on: missing LF input columns (naming the LFs among ``lfs`` that read them), an empty
    table, null or duplicate ids, and non-string columns that text LFs read; warns about nulls in those (the LFs
    abstain there).
    """
    df, table, id_col, role = source.df, source.info.path, source.id_column, source.role
    check_columns(source, set(required_columns or ()) | set(text_columns), lfs)
    rows_frame, copies = df, F.lit(0)
    raw = source.undeduplicated
    if raw is not None:  # drop_duplicate_rows: count the exact copies in the same pass (what dropDuplicates does)
        rows_frame = raw.groupBy(*[by_name(c) for c in raw.columns]).agg(F.count(F.lit(1)).alias("_lakelabel_copies"))
        copies = F.col("_lakelabel_copies") - 1
    per_id = rows_frame.groupBy(F.col(id_col).alias("_id")).agg(
        F.count(F.lit(1)).alias("_n"),
        F.sum(copies).alias("_copies"),
        *[F.sum(F.col(c).isNull().cast("long")).alias(f"_null_{i}") for i, c in enumerate(text_columns)],
    )
    totals_frame = per_id.agg(
        F.coalesce(F.sum("_n"), F.lit(0)).alias("rows"),
        F.coalesce(F.sum("_copies"), F.lit(0)).alias("copies"),
        F.sum(F.when(F.col("_n") > 1, 1).otherwise(0)).alias("dup_ids"),
        F.sum(F.when(F.col("_id").isNull(), F.col("_n")).otherwise(0)).alias("null_ids"),
        *[F.coalesce(F.sum(f"_null_{i}"), F.lit(0)).alias(f"null_{i}") for i in range(len(text_columns))],
        # an id of a row with a null text, for the warning below, in the same pass
        *[F.min(F.when(F.col(f"_null_{i}") > 0, F.col("_id"))).alias(f"null_example_{i}")
          for i in range(len(text_columns))],
    )
    try:
        totals = totals_frame.first()
    except Exception as err:  # noqa: BLE001 - Spark's error names no file; find the bad one
        raise_bad_file(source, err)
        raise
    rows = int(totals["rows"])
    if raw is not None:
        log.info("%s %s: dropped %d exact duplicate row(s) (%s.drop_duplicate_rows)", role, table,
                 totals["copies"], role)
    if rows == 0:
        raise InputDataError(f"{role} {table} has no rows; point {role}.path at a table with data")
    for column in text_columns:
        dtype = df.schema[column].dataType
        if not isinstance(dtype, T.StringType):
            raise InputDataError(
                f"column {column!r} of {table} has type {dtype.simpleString()}, but text LFs read it as a string; "
                f"write the source with the column cast to string (lakelabel reads {role}.path as it is, with no query "
                f"or view over it) or point the LFs at a string column"
            )
    if totals["null_ids"]:
        raise InputDataError(
            f"id column {id_col!r} of {table} has {totals['null_ids']} null value(s); every row needs an id: "
            f"filter them out or fill them before labeling"
        )
    if totals["dup_ids"]:
        repeated = per_id.where(F.col("_n") > 1).select("_id")
        examples = [r["_id"] for r in repeated.limit(3).collect()]
        what = "source" if role == "source" else f"{role} source"
        fix = f"deduplicate the {what} or choose a unique {role}.id_column"
        if raw is None:
            # Already failing: one more pass says whether drop_duplicate_rows would do.
            differ = df.dropDuplicates().groupBy(id_col).count().where(F.col("count") > 1).limit(1).count()
            if not differ:
                fix = (f"their rows are exact copies: set {role}.drop_duplicate_rows: true to keep one of each, "
                       f"or deduplicate the {what}")
        raise InputDataError(
            f"id column {id_col!r} of {table} is not unique: {totals['dup_ids']} id(s) repeat, e.g. "
            f"{', '.join(map(repr, examples))}; {fix}"
        )
    for i, column in enumerate(text_columns):
        if totals[f"null_{i}"]:
            # An empty body, an empty CSV cell (Spark reads it as null): the keyword, regex and lexicon LFs that read
            # the column abstain there, as on any text they do not match (they were refused, with a fix a CSV export
            # cannot take and a source lakelabel reads as it is cannot either: an LF-authoring drill, session 38).
            example = totals[f"null_example_{i}"]
            log.warning("%s %s: text column %r has %d null value(s) (e.g. id %r): the keyword, regex and lexicon LFs "
                        "that read it abstain on those rows (a Python LF reading it gets None)", role, table, column,
                        totals[f"null_{i}"], example)
    return SourceCounts(rows=rows, copies_dropped=int(totals["copies"]) if raw is not None else None)


def raise_bad_file(source: Source, err: BaseException) -> None:
    """Raise an error naming the file (and line) when ``err`` came from a malformed source file."""
    role = source.role
    if source.info.format == "csv":
        bad = find_ragged_csv_row(list(source.paths), source.options)
        if (culprit := non_csv_culprit(list(source.paths), source.options, err, bad)) is not None:
            # Not a CSV file: a mode that skips or pads its lines would label them as rows.
            raise InputDataError(
                f"{role} file {culprit} is not CSV by its name and Spark cannot read it as CSV "
                f"({bad or _summary(err)}); move it out of the folder, or set {role}.options.pathGlobFilter "
                f"to match only the CSV files (e.g. '*.csv')"
            ) from err
        if bad:
            raise InputDataError(
                f"{role} {bad}; fix the file, or set {role}.options.mode: PERMISSIVE (Spark pads missing fields "
                f"with nulls and drops extra ones) or DROPMALFORMED (Spark skips such rows)"
            ) from err
        if "MALFORMED_RECORD" in str(err) or "Malformed" in str(err):
            raise InputDataError(
                f"{role} {source.info.path} has a malformed CSV record ({_summary(err)}); fix the file, or set "
                f"{role}.options.mode: PERMISSIVE or DROPMALFORMED"
            ) from err
    elif source.info.format == "parquet":
        bad = find_corrupt_parquet(list(source.paths), source.options)
        if bad:
            raise InputDataError(f"{role} Parquet file {bad}; replace or remove the file") from err


def unmatched_gold(source: Source, label_space: tuple[str, ...], show: int = 5, key: str | None = None) -> str | None:
    """One line naming the non-null values of the gold column that are no class of ``label_space``
    (the most frequent first, with their counts), or None when there are none; ``key``: the config key that
    names the column (default ``<role>.gold_column``). One Spark job over the gold column: run it only when
    some rows have no gold label, to say why."""
    col = F.col(source.gold_column)
    rows = (source.df.where(col.isNotNull() & (gold_ids(source, label_space) < 0))
            .groupBy(col.cast("string").alias("value")).count()
            .orderBy(F.desc("count"), "value").collect())
    if not rows:
        return None
    total = sum(r["count"] for r in rows)
    shown = ", ".join(f"{r['value']!r} ({r['count']:,})" for r in rows[:show])
    more = f" and {len(rows) - show} other value(s)" if len(rows) > show else ""
    key = key or f"{source.role}.gold_column"
    return (f"column {source.gold_column!r} ({key}) of {source.role} {source.description} has {total:,} value(s) "
            f"that are no class of the label space ({', '.join(label_space)}) nor a class id 0..{len(label_space) - 1}: "
            f"{shown}{more}")


def gold_ids(source: Source, label_space: tuple[str, ...]):
    """Column expression mapping the gold column to class ids (-1 where unknown or null)."""
    return gold_ids_of(F.col(source.gold_column), source.df.schema[source.gold_column].dataType, label_space)


def gold_ids_of(gold: Any, dtype: Any, label_space: tuple[str, ...]):
    """:func:`gold_ids` of a column expression ``gold`` of Spark type ``dtype``."""
    if isinstance(dtype, T.StringType):
        names = F.array(*[F.lit(n) for n in label_space])
        as_name = F.array_position(names, gold).cast("int") - 1
        # Gold given as digits in a string column ("0", "1") is read as class ids.
        as_id = F.when(gold.rlike(r"^\d+$"), gold.cast("int"))
        resolved = F.when(as_name >= 0, as_name).otherwise(as_id)
    else:
        resolved = gold.cast("int")
    k = len(label_space)
    return F.when(resolved.between(0, k - 1), resolved).otherwise(F.lit(-1)).cast("int")
