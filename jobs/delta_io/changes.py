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
  failed run leaves both consistent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.delta_io.local import LocalDeltaIO
from jobs.delta_io.sources import Source

log = logging.getLogger(__name__)

__all__ = ["RowChanges", "row_hashes", "delta_changes", "hash_table_changes", "HASH_COLUMN"]

HASH_COLUMN = "row_hash"
_ID = "__id"


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

    def release(self) -> None:
        self.reapply.unpersist()
        self.gone.unpersist()


def row_hashes(df: DataFrame, id_column: str) -> DataFrame:
    """``__id, row_hash`` of every row: xxhash64 over all columns (the id included), in column order."""
    cols = [F.col("`" + c.replace("`", "``") + "`") for c in df.columns]
    return df.select(F.col(id_column).alias(_ID), F.xxhash64(*cols).alias(HASH_COLUMN))


def _diff(old: DataFrame, new: DataFrame, method: str) -> RowChanges:
    """Compare ``__id, row_hash`` frames: ids new or with another hash, and ids only in ``old``."""
    joined = old.select(_ID, F.col(HASH_COLUMN).alias("_old")).join(
        new.select(_ID, F.col(HASH_COLUMN).alias("_new")), _ID, "full_outer"
    )
    # One pass over the join, tagged; both sets are small next to the source in the usual cases.
    tagged = joined.select(
        _ID,
        F.when(F.col("_new").isNull(), F.lit("gone"))
        .when(F.col("_old").isNull() | (F.col("_old") != F.col("_new")), F.lit("reapply"))
        .alias("_what"),
    ).where(F.col("_what").isNotNull()).persist()
    reapply = tagged.where(F.col("_what") == "reapply").select(_ID)
    gone = tagged.where(F.col("_what") == "gone").select(_ID)
    counts = {r["_what"]: r["n"] for r in tagged.groupBy("_what").agg(F.count(F.lit(1)).alias("n")).collect()}
    return RowChanges(reapply=reapply, gone=gone, n_reapply=int(counts.get("reapply", 0)),
                      n_gone=int(counts.get("gone", 0)), method=method)


def delta_changes(spark: Any, source: Source, prior_version: int, io: Any) -> RowChanges:
    """Rows changed in the Delta source between ``prior_version`` and the version ``source`` read.

    The caller checked that both versions belong to the same table (the table id in the source
    fingerprint). See the module docstring for how each path reads the two versions.
    """
    path, version = source.info.path, source.info.version
    if isinstance(io, LocalDeltaIO):
        before = set(io.snapshot_files(path, version=prior_version))
        after = set(io.snapshot_files(path, version=version))
        removed, added = sorted(before - after), sorted(after - before)
        old = io.read_table(spark, path, version=prior_version, files=removed)
        new = io.read_table(spark, path, version=version, files=added)
        method = (f"Delta time travel v{prior_version} -> v{version}: {len(removed)} file(s) removed, "
                  f"{len(added)} added, rows in them compared by content hash")
    else:
        old = io.read_table(spark, path, version=prior_version)
        new = source.df
        method = f"Delta time travel v{prior_version} -> v{version}: both snapshots compared by content hash"
    return _diff(row_hashes(old, source.id_column), row_hashes(new, source.id_column), method)


def hash_table_changes(spark: Any, source: Source, hashes_path: str, hashes_version: int, io: Any) -> RowChanges:
    """Rows changed in a non-Delta source since the hashes stored at ``hashes_version``."""
    old = io.read_table(spark, hashes_path, version=hashes_version).select(_ID, HASH_COLUMN)
    new = row_hashes(source.df, source.id_column)
    method = (f"source {source.info.path} is not a Delta table: rows compared by content hash with "
              f"{hashes_path} v{hashes_version}")
    return _diff(old, new, method)


def write_row_hashes(source: Source, hashes_path: str, io: Any, run_id: str) -> int | None:
    """Store the source's per-row hashes (a non-Delta source's state for the next run); its version."""
    result = io.write_table(
        row_hashes(source.df, source.id_column),
        hashes_path,
        mode="overwrite",
        overwrite_schema=True,
        commit_metadata={"lakelabel.row_hashes": source.info.fingerprint, "lakelabel.run_id": run_id},
        description=f"lakelabel apply: row hashes of {source.info.path}",
    )
    return result.version
