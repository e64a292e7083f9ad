"""Which source rows changed since the votes were written: new, changed and gone row ids.

Incremental apply (:mod:`jobs.incremental`) reapplies the LFs it keeps only to rows that are new
or whose content changed, and drops the votes of rows that left the source. A row's content is
``xxhash64`` over all its columns, the id included, in the source's column order: a change to any
column (also one no LF reads today) counts, and so does a schema change (every row is then
reapplied). Hashing every column, not only those the LFs read, keeps this right for Python LFs,
whose columns are not declared, at the cost of reapplying rows edited in unrelated columns.
Two different rows with one 64-bit hash are a ~1e-19 event per changed row; such a row keeps its
old votes.

Where the previous content comes from:

* **Delta source** (one table, same table id): Delta time travel. On the local path only the
  data files removed since the votes' source version and the files added since are read and
  hashed (rows in files both versions share are unchanged), so appending 1% of rows costs about
  1% of a full scan; a compaction (OPTIMIZE) rewrites files but hashes equal, so nothing is
  reapplied. The native path compares the two snapshots in full (same result, more reading).
* **Parquet or CSV source** (or several paths, or ``drop_duplicate_rows``): a table of per-row
  hashes stored next to the votes table (``<votes>_row_hashes``) at the version the votes commit
  names; the new hashes are written before the votes commit, which records their version, so a
  failed run leaves both consistent. The hashes' commit also records the source's file listing
  (relative path, size, modification time; one path, up to 10,000 files): when every listed file
  is still there unchanged and files were only added, the rows of the added files are the new
  rows, and only they are read, checked (their ids against the stored ones whose files' id range
  can hold them: none when the new ids sort after the old) and hashed (appended to the hashes
  table), as for a Delta append. Any other change compares every row's hash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.delta_io.files import _normalize, _spark_path
from jobs.delta_io.local import LocalDeltaIO
from jobs.delta_io.schema import by_name
from jobs.delta_io.source import csv_read_options, source_files
from jobs.delta_io.sources import Source
from lf_library.errors import InputDataError

log = logging.getLogger(__name__)

__all__ = ["RowChanges", "row_hashes", "delta_changes", "hash_table_changes", "check_new_ids", "may_hold",
           "files_holding", "HASH_COLUMN", "file_listing", "appended_files", "write_row_hashes"]

HASH_COLUMN = "row_hash"
_ID = "__id"
FILES_KEY = "lakelabel.row_hashes_files"
SCHEMA_KEY = "lakelabel.row_hashes_schema"
# How the stored hashes were computed (row_hashes); hashes stored another way (before session 38: no null flags)
# are compared once more by content, and every row counts as changed then.
SCHEME_KEY = "lakelabel.row_hashes_scheme"
HASH_SCHEME = "xxhash64-null-flags"
# A listing longer than this is not stored (commit metadata stays small); such sources compare hashes.
MAX_LISTED_FILES = 10_000


@dataclass(frozen=True)
class RowChanges:
    """Row ids to reapply (new or changed) and row ids gone from the source.

    ``reapply`` and ``gone``: one-column DataFrames (``__id``), persisted; call :meth:`release`
    when done. ``method``: how they were found (for the log and the summary).
    """

    reapply: DataFrame
    gone: DataFrame
    n_reapply: int
    n_gone: int
    method: str
    # Of n_reapply, the ids the previous rows did not have.
    n_new: int = 0
    # Source rows that hold every reapplied row (the added files of a Delta source); None: all rows.
    rows: DataFrame | None = None
    # Delta source on the local path: add actions of the data files both versions share.
    unchanged_files: tuple[dict[str, Any], ...] = ()
    # The changed and gone ids (``__id``) when reapply also holds new ones; None: reapply and gone.
    stale: DataFrame | None = None

    def release(self) -> None:
        self.reapply.unpersist()
        self.gone.unpersist()

    def replaced(self) -> DataFrame | None:
        """``__id`` of the rows whose previous votes (and masks) go: changed or gone; None when only new rows
        came (a new id has no previous row, and its place among the old ids must not widen what is rewritten)."""
        if self.n_reapply == self.n_new and not self.n_gone:
            return None
        return self.stale if self.stale is not None else self.reapply.unionByName(self.gone)


def row_hashes(df: DataFrame, id_column: str) -> DataFrame:
    """``__id, row_hash`` of every row: xxhash64 over all columns (the id included), in column order.

    Spark's hash functions skip a null argument (the running hash passes through it), so on their own
    ``(title='x', alt=null)`` and ``(title=null, alt='x')`` hash equal and such an edit was not reapplied (a
    drill, session 38): the columns' null flags go first, so a value moving between columns changes the hash.
    (A null inside an array, map or struct column is still skipped by Spark's hash.)"""
    cols = [by_name(c) for c in df.columns]
    nulls = F.array(*[c.isNull() for c in cols])
    return df.select(F.col(id_column).alias(_ID), F.xxhash64(nulls, *cols).alias(HASH_COLUMN))


def _diff(old: DataFrame, new: DataFrame, method: str, **extra: Any) -> RowChanges:
    """Compare ``__id, row_hash`` frames: ids new or with another hash, and ids only in ``old``."""
    joined = old.select(_ID, F.col(HASH_COLUMN).alias("_old")).join(
        new.select(_ID, F.col(HASH_COLUMN).alias("_new")), _ID, "full_outer"
    )
    # One pass over the join, tagged; both sets are small next to the source in the usual cases.
    tagged = joined.select(
        _ID,
        F.when(F.col("_new").isNull(), F.lit("gone"))
        .when(F.col("_old").isNull(), F.lit("new"))
        .when(F.col("_old") != F.col("_new"), F.lit("changed"))
        .alias("_what"),
    ).where(F.col("_what").isNotNull()).persist()
    reapply = tagged.where(F.col("_what") != "gone").select(_ID)
    gone = tagged.where(F.col("_what") == "gone").select(_ID)
    stale = tagged.where(F.col("_what") != "new").select(_ID)
    counts = {r["_what"]: r["n"] for r in tagged.groupBy("_what").agg(F.count(F.lit(1)).alias("n")).collect()}
    n_new = int(counts.get("new", 0))
    return RowChanges(reapply=reapply, gone=gone, n_reapply=n_new + int(counts.get("changed", 0)),
                      n_gone=int(counts.get("gone", 0)), method=method, n_new=n_new, stale=stale, **extra)


def delta_changes(spark: Any, source: Source, prior_version: int, io: Any) -> RowChanges:
    """Rows changed in the Delta source between ``prior_version`` and the version ``source`` read.

    The caller checked that both versions belong to the same table (the table id in the source
    fingerprint). See the module docstring for how each path reads the two versions.
    """
    path, version = source.info.path, source.info.version
    if isinstance(io, LocalDeltaIO):
        before = {a["path"]: a for a in io.snapshot_actions(path, version=prior_version)}
        after = {a["path"]: a for a in io.snapshot_actions(path, version=version)}
        removed = [before[p]["uri"] for p in sorted(set(before) - set(after))]
        added = [after[p]["uri"] for p in sorted(set(after) - set(before))]
        old = io.read_table(spark, path, version=prior_version, files=removed)
        new = io.read_table(spark, path, version=version, files=added)
        method = (f"Delta time travel v{prior_version} -> v{version}: {len(removed)} file(s) removed, "
                  f"{len(added)} added, rows in them compared by content hash")
        shared = tuple(a for p, a in after.items() if p in before)
        if not removed:  # appends only: every added row is new (a reused id is caught by check_new_ids)
            ids = new.select(F.col(source.id_column).alias(_ID)).persist()
            n = ids.count()
            said = (f"{len(added)} file(s) appended, their rows are new" if added else
                    "the same data files as then: the commits in between changed no row")
            return RowChanges(reapply=ids, gone=ids.limit(0), n_reapply=n, n_gone=0, n_new=n,
                              method=f"Delta time travel v{prior_version} -> v{version}: {said}", rows=new,
                              unchanged_files=shared)
        return _diff(row_hashes(old, source.id_column), row_hashes(new, source.id_column), method, rows=new,
                     unchanged_files=shared)
    old = io.read_table(spark, path, version=prior_version)
    method = f"Delta time travel v{prior_version} -> v{version}: both snapshots compared by content hash"
    return _diff(row_hashes(old, source.id_column), row_hashes(source.df, source.id_column), method)


def may_hold(action: dict[str, Any], column: str, lo: Any, hi: Any) -> bool:
    """Whether a data file's ``column`` range (its min/max statistics) can hold a value in ``[lo, hi]``."""
    low, high = action.get(f"min.{column}"), action.get(f"max.{column}")
    if low is None or high is None or lo is None:
        return True
    if isinstance(high, str) and len(high) >= 32:  # possibly a truncated string statistic
        return True
    try:
        return not (high < lo or low > hi)
    except TypeError:  # statistics of another type than the ids
        return True


def files_holding(rows: DataFrame, ids: DataFrame, column: str = "row_id") -> set[str]:
    """The files (``input_file_name()``, a URI) of ``rows`` (read from files) holding a row whose ``column`` is
    among ``ids``' ``__id``: a file's min/max statistics (:func:`may_hold`) cannot tell when the ids are not
    ordered like the rows (UUIDs, hashes: every file's range spans nearly all ids), this reads the column."""
    files = rows.select(column, F.input_file_name().alias("__file"))
    hits = files.join(ids, files[column] == ids[_ID], "left_semi").select("__file").distinct()
    return {r[0] for r in hits.collect()}


def check_new_ids(spark: Any, source: Source, changes: RowChanges, io: Any) -> None:
    """Fail when a new or changed row's id is also in a data file the two versions share (a duplicate id).

    Only files whose id statistics overlap the changed ids are read, so appended rows with new,
    higher ids read none.
    """
    if not changes.n_reapply or not changes.unchanged_files:
        return
    lo, hi = changes.reapply.agg(F.min(_ID), F.max(_ID)).first()
    files = [a["uri"] for a in changes.unchanged_files if may_hold(a, source.id_column, lo, hi)]
    if not files:
        return
    ids = io.read_table(spark, source.info.path, version=source.info.version, files=files).select(source.id_column)
    dupes = [r[0] for r in ids.join(changes.reapply, ids[source.id_column] == changes.reapply[_ID], "left_semi")
             .limit(3).collect()]
    if dupes:
        raise InputDataError(
            f"id column {source.id_column!r} of {source.info.path} is not unique: new or changed rows reuse id(s) "
            f"{', '.join(map(repr, dupes))}; deduplicate the source or choose a unique source.id_column"
        )


def file_listing(source: Source) -> list[list[Any]] | None:
    """``[relative path, size, mtime ns]`` of a one-path Parquet or CSV source's files; None otherwise."""
    if source.info.format not in ("parquet", "csv") or len(source.paths) != 1:
        return None
    files = source_files(_normalize(source.paths[0]), source.options)  # the files Spark reads
    return [list(f) for f in files] if len(files) <= MAX_LISTED_FILES else None


def appended_files(source: Source, hashes_path: str, hashes_version: int, io: Any) -> list[str] | None:
    """Files added to ``source`` since the hashes at ``hashes_version``, when nothing else changed; else None.

    Every file the stored listing names must still be there with the same size and modification
    time, and at least one file must be new.
    """
    commit_meta = io.read_metadata_at(hashes_path, hashes_version)
    stored = commit_meta.get(FILES_KEY)
    current = file_listing(source)
    if not stored or current is None:
        return None
    # The rows of the listed files are read anew with the schema Spark now gives the source: with CSV's
    # inferSchema (or Parquet files whose footers differ) an added file can change a column's type, and so
    # what the LFs saw in the old rows (a drill, session 38: codes '007' read as 7, then as '007').
    if commit_meta.get(SCHEME_KEY) != HASH_SCHEME or commit_meta.get(SCHEMA_KEY) != source.df.schema.json():
        return None
    before = {rel: (size, mtime) for rel, size, mtime in json.loads(stored)}
    now = {rel: (size, mtime) for rel, size, mtime in current}
    if any(now.get(rel) != meta for rel, meta in before.items()):
        return None
    added = sorted(set(now) - set(before))
    return added or None


def _read_files(spark: Any, source: Source, rel_paths: list[str]) -> DataFrame:
    """The rows of some of a one-path file source's files, with the source's schema and reader options."""
    root = _normalize(source.paths[0])
    options = csv_read_options(source.options) if source.info.format == "csv" else dict(source.options or {})
    paths = [_spark_path(f"{root}/{rel}") for rel in rel_paths]
    return spark.read.format(source.info.format).options(**options).schema(source.df.schema).load(paths)


def hash_table_changes(spark: Any, source: Source, hashes_path: str, hashes_version: int, io: Any) -> RowChanges:
    """Rows changed in a non-Delta source since the hashes stored at ``hashes_version``."""
    added = appended_files(source, hashes_path, hashes_version, io)
    if added is not None:  # appends only: the added files' rows are new; their ids must be too
        rows = _read_files(spark, source, added)
        ids = rows.select(F.col(source.id_column).alias(_ID)).persist()
        n, lo, hi = ids.agg(F.count(F.lit(1)), F.min(_ID), F.max(_ID)).first()
        files = None  # the stored hashes to compare the new ids with: all, or (local path) those whose
        if n and isinstance(io, LocalDeltaIO):  # id range can hold a new id (appended ids mostly sort last)
            actions = io.snapshot_actions(hashes_path, version=hashes_version)
            files = [a["uri"] for a in actions if may_hold(a, _ID, lo, hi)]
        dupes = []
        if n and files != []:
            old = io.read_table(spark, hashes_path, version=hashes_version, files=files).select(_ID)
            dupes = [r[0] for r in old.join(ids, _ID, "left_semi").limit(3).collect()]
        if dupes:
            ids.unpersist()
            raise InputDataError(
                f"id column {source.id_column!r} of {source.info.path} is not unique: the added file(s) "
                f"{', '.join(added[:3])} reuse id(s) {', '.join(map(repr, dupes))}; deduplicate the source or "
                f"choose a unique source.id_column"
            )
        return RowChanges(reapply=ids, gone=ids.limit(0), n_reapply=n, n_gone=0, n_new=n, rows=rows,
                          method=f"source {source.info.path} is not a Delta table: {len(added)} file(s) appended "
                                 f"since {hashes_path} v{hashes_version}, their rows are new")
    old = io.read_table(spark, hashes_path, version=hashes_version).select(_ID, HASH_COLUMN)
    new = row_hashes(source.df, source.id_column)
    method = (f"source {source.info.path} is not a Delta table: rows compared by content hash with "
              f"{hashes_path} v{hashes_version}")
    if io.read_metadata_at(hashes_path, hashes_version).get(SCHEME_KEY) != HASH_SCHEME:
        method += (" (hashed by an older lakelabel, which missed a value moved between two columns: every row "
                   "counts as changed this once)")
    return _diff(old, new, method)


def write_row_hashes(source: Source, hashes_path: str, io: Any, run_id: str, *,
                     appended: DataFrame | None = None) -> int | None:
    """Store the source's per-row hashes (a non-Delta source's state for the next run); its version.

    ``appended``: the rows of files appended since the stored hashes (:func:`hash_table_changes`);
    only their hashes are added to the table.
    """
    meta = {"lakelabel.row_hashes": source.info.fingerprint, "lakelabel.run_id": run_id, SCHEME_KEY: HASH_SCHEME}
    listing = file_listing(source)
    if listing is not None:
        meta[FILES_KEY] = json.dumps(listing, separators=(",", ":"))
        meta[SCHEMA_KEY] = source.df.schema.json()
    result = io.write_table(
        row_hashes(source.df if appended is None else appended, source.id_column),
        hashes_path,
        mode="overwrite" if appended is None else "append",
        overwrite_schema=appended is None,
        commit_metadata=meta,
        description=f"lakelabel apply: row hashes of {source.info.path}",
    )
    return result.version
