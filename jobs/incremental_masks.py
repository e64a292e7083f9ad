"""Row masks of an incremental apply: the previous apply's masks carried over, the reapplied rows' new.

A full apply writes each row's vote bitmask (:mod:`jobs.apply_masks`, :mod:`jobs.task_masks`) so that
aggregate and write read one small row per source row instead of grouping the votes table by row. An
incremental apply that runs every LF on the new and changed rows only (no LF new, changed or removed)
knows every row's mask as cheaply: the rows it does not touch keep their votes, hence their masks, and
the pass that computes the reapplied rows' votes holds all their votes, so it writes their masks too.
Into a new folder of this run (the previous folder stays with the votes it belongs to, which a failed
run puts back), :func:`carry` puts the previous masks of the rows that stay: a file that holds none of
the changed and gone rows is hard-linked, not copied (new rows have no previous mask: after appends
alone every file is linked). Which files hold one: those whose ``row_id`` range (their footer's) can,
and of those (row ids that are not ordered like the rows, such as UUIDs, give every file a range over
nearly all ids) the files a Spark job finds a changed or gone id in, as the votes' commit finds its
files (:func:`jobs.delta_io.changes.files_holding`). Those files are read by one Spark job, which leaves
out those rows and writes the rest, one file per partition (no more files than it read), renamed into
place when complete (as :class:`jobs.apply_masks.PartitionMasks` does). Each run adds its pass's files,
so a folder carried from run to run would hold ever more small files: past :data:`COMPACT_FACTOR` times
the files a full apply writes, that job rewrites every file into as many as a full apply writes.
A carry job that fails or is stopped (Ctrl-C, SIGTERM) is cancelled and waited for before the folder is
deleted, so no task of it is still writing there when it is.

The masks are carried only when they mean the same bits and gold now (:func:`unusable`): the same LFs
in the same order (bit ``lf_index * k + class``), the same gold column (a multi-task run: the same
task layout), and the previous folder complete for the previous votes. Else, as after a change of LFs,
the apply builds every row's mask by grouping its votes by row (:mod:`jobs.grouped_masks`). The folder is
named in the votes commit only when it holds exactly the new row count (apply's ``validate``); otherwise,
or when the apply fails or is interrupted, it is deleted with everything carried into it.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from jobs import apply_masks
from jobs.delta_io.changes import files_holding, may_hold

log = logging.getLogger(__name__)

__all__ = ["unusable", "previous_folder", "carry", "carry_into", "full_apply_files", "COMPACT_FACTOR"]

# A carried folder may hold up to this many times the files a full apply writes; past that, the carry rewrites it
# into that many files. Each incremental apply adds files (its pass's), which cost aggregate and write an open and
# a footer read each (Spark counts a file as 4 MB read), so the bound keeps those reads within a constant factor
# of a full apply's. With the factor 2 a compaction, which rewrites every row (12 bytes each, one read and one
# write with no LF run), comes at most once per ``full_files`` files added, so its cost spread over the runs in
# between is about one file's rewrite per added file, as with a growing array that doubles. A larger factor
# trades more files read by every aggregate and write for rarer compactions; 2 is the usual balance.
COMPACT_FACTOR = 2


def unusable(prior: Any, names: tuple[str, ...], plan: Any, gold_column: str | None, tasks: Any = None) -> str | None:
    """Why the previous apply's masks cannot be carried into this incremental apply, or None when they can.

    ``prior``: the previous :class:`jobs.apply_record.ApplyResult`; ``names``: this apply's LFs in registry
    order; ``plan``: its :class:`jobs.incremental.ApplyPlan`; ``tasks``: a multi-task run's
    :class:`jobs.task_masks.TaskMasks`.
    """
    masks = prior.row_masks or {}
    if plan.applied or plan.removed:
        return "LFs were added, changed or removed, so the masks' bits change"
    if tuple(prior.lf_names) != tuple(names):  # the same set: the same order (a registry sorts its LFs); to be sure
        return "the LFs are in another order, so the masks' bits change"
    if not masks.get("path"):
        return "the previous apply wrote none"
    if tasks is not None and masks.get("layout") != tasks.key:
        return "the previous masks were written for another task layout"
    if tasks is None and (masks.get("layout") or masks.get("gold_column", "") != (gold_column or "")):
        return f"the previous masks carry gold column {masks.get('gold_column', '')!r}, not {gold_column!r}"
    if not apply_masks.complete(masks["path"], prior.n_rows):
        return f"the previous masks {masks['path']} are missing or incomplete"
    return None


def previous_folder(prior: Any, names: tuple[str, ...], plan: Any, gold_column: str | None,
                    tasks: Any = None) -> str | None:  # fmt: skip
    """The previous apply's masks folder to carry (:func:`unusable` says none: None, and the log says why)."""
    why = unusable(prior, names, plan, gold_column, tasks)
    if why:
        log.info("apply: no row masks to carry into this incremental apply (%s): it groups the votes by row into "
                 "new ones (jobs.grouped_masks)", why)
        return None
    return prior.row_masks["path"]


def full_apply_files(df: Any) -> int:
    """The mask files a full apply of ``df``'s rows writes: one per partition of its pass, which spreads a source
    with fewer splits than cores over the cores (:func:`jobs.lf_pass.vote_function`)."""
    return max(1, df.rdd.getNumPartitions(), df.sparkSession.sparkContext.defaultParallelism)


def carry_into(spark: Any, old: str, new: str, drop: Any, bounds: tuple[Any, Any] | None = None, *,
               lakehouse: str | Path, full_files: int | None = None) -> None:  # fmt: skip
    """:func:`carry`, and on failure the folder ``new`` (a run folder's of ``lakehouse``) deleted, so no masks
    are named (the LF pass's own mask files then cannot be written either) and the apply goes on: the masks
    only save time. A signal is not a failure: when SIGTERM's or Ctrl-C's cancelling of the carry's job makes
    it raise the cancelled job's error, that error goes on up and the apply stops (its cleanup deletes ``new``)."""
    with apply_masks.optional(new, lakehouse, f"carried from {old}"):
        carry(spark, old, new, drop, bounds, full_files=full_files)


def carry(spark: Any, old: str, new: str, drop: Any, bounds: tuple[Any, Any] | None = None, *,
          full_files: int | None = None) -> None:  # fmt: skip
    """Put the masks of ``old`` (a complete masks folder) whose row is not in ``drop`` (a one-column
    ``__id`` DataFrame: the changed and gone rows, :meth:`jobs.delta_io.changes.RowChanges.replaced`;
    None: none) into the folder ``new``. ``bounds``: the min and max of ``drop`` when known.
    ``full_files``: the files a full apply writes (:func:`full_apply_files`; None: no compaction).

    Files that hold none of ``drop``'s ids are hard-linked (copied where links fail): those whose ``row_id``
    range misses ``drop``'s, and of the others those whose ids a Spark job finds none of
    (:func:`jobs.delta_io.changes.files_holding`, as the votes' commit does). The rest are rewritten without the
    dropped rows by one Spark job, into at most as many files. When ``old`` holds more than
    :data:`COMPACT_FACTOR` times ``full_files`` files, that job rewrites all of them into ``full_files`` files
    instead. Files it could not write are left out: apply's row count check then finds the folder incomplete
    and names no masks. A job that fails or is stopped is cancelled and waited for before this raises, so no
    task of it writes into ``new`` after the caller deleted it.
    """
    from pyspark.sql import functions as F

    files = sorted(str(p) for p in Path(old).glob("part-*.parquet"))
    compact = full_files is not None and len(files) > COMPACT_FACTOR * full_files
    lo = hi = None
    if drop is not None and not compact:
        lo, hi = bounds or drop.agg(F.min("__id"), F.max("__id")).first()
    rewrite = files if compact else _holding(spark, [f for f in files if lo is not None and
                                                     may_hold(_id_range(f), "row_id", lo, hi)], drop)
    for i, f in enumerate(f for f in files if f not in rewrite):
        _link(f, os.path.join(new, f"part-k{i:05d}.parquet"))
    if rewrite:
        kept = spark.read.parquet(*rewrite)
        if drop is not None:
            kept = kept.join(drop, kept["row_id"] == drop["__id"], "left_anti").select(*kept.columns)
        # No more files out than in; a compaction writes as many as a full apply (fewer when Spark reads fewer splits).
        out = full_files if compact else min(len(rewrite), full_files or len(rewrite))
        apply_masks.write_frame(kept.coalesce(max(1, out)), new, "part-r")
    if compact:
        log.info("apply: row masks of the unchanged rows carried from %s: its %d file(s), more than %d times the %d "
                 "a full apply writes, compacted", old, len(files), COMPACT_FACTOR, full_files)
    else:
        log.info("apply: row masks of the unchanged rows carried from %s: %d file(s) linked, %d rewritten without "
                 "the changed and gone rows", old, len(files) - len(rewrite), len(rewrite))


def _holding(spark: Any, candidates: list[str], drop: Any) -> list[str]:
    """The mask files of ``candidates`` (whose ``row_id`` range may hold a dropped id) that hold one."""
    if not candidates:
        return []
    names = {Path(unquote(urlparse(uri).path)).name for uri in files_holding(spark.read.parquet(*candidates), drop)}
    return [f for f in candidates if Path(f).name in names]


def _id_range(path: str) -> dict[str, Any]:
    """``{"min.row_id", "max.row_id"}`` of a masks file's footer (absent: unknown, so the file may hold any id)."""
    try:
        meta = pq.read_metadata(path)
        i = meta.schema.names.index("row_id")
        lows, highs = [], []
        for g in range(meta.num_row_groups):
            st = meta.row_group(g).column(i).statistics
            if st is None or not st.has_min_max:
                return {}
            lows.append(st.min)
            highs.append(st.max)
        return {"min.row_id": min(lows), "max.row_id": max(highs)} if lows else {}
    except (OSError, ValueError, TypeError, pa.ArrowException):
        return {}


def _link(src: str, dst: str) -> None:
    """Hard-link ``src`` as ``dst``, or copy it where the filesystem has no links. Mask files are never
    changed in place (written under a temporary name, then renamed), so a link is as safe as a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
