"""Compaction of the votes tables: their many small files merged into few, in one data-neutral commit.

Each incremental apply adds a file per LF and core to ``votes`` (a few KB each for a day's new rows) and one
or more to ``votes_row_hashes`` (:func:`jobs.incremental.row_hashes_path`, a Parquet or CSV source), and they
stay live: a drill of 101 daily runs left 2,500 files in ``votes``, which made every read of the whole table
slow (README "A year of daily runs"). After a run (or ``lakelabel apply``) has committed, before it reports
success, :func:`compact_vote_tables` rewrites the small files of such a table with delta-rs'
``optimize.compact`` once there are enough of them (:func:`should_compact`). Multi-task runs write the same
two tables (one votes table for every task), so they are compacted alike; ``labels`` is a new copy each run.

The compaction is its own commit (operation ``OPTIMIZE``), which lakelabel reads as data-neutral
(:data:`jobs.delta_io.history._DATA_NEUTRAL_OPERATIONS`): the apply record stays the table's metadata, the next
apply stays incremental, and the versions that runs wrote and read still name their files until a VACUUM, so
``verify``, ``diff`` and ``explain --run-id`` of every run still read them. delta-rs writes the new files and
then commits once (``min_commit_interval`` unset), so a failure or a kill leaves the table at its version
before; a SIGKILL in the middle leaves the new files uncommitted, named as delta-rs names them, which the
leftovers sweep (:mod:`jobs.delta_io.leftovers`, lakelabel's own file names only) does not delete: a VACUUM
does. A compaction that fails is a warning, not a failed run: the labels are written and valid, only later
reads are slower. Ctrl-C and SIGTERM reach Python once delta-rs returns (its commit made or not), and unwind as
in any stage.

Only the local path (delta-rs) compacts. On the native path (Databricks, the Delta Spark extension) the
platform's auto compaction (``delta.autoOptimize.autoCompact``) or a scheduled ``OPTIMIZE`` does it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from jobs import incremental, incremental_masks
from jobs.delta_io.files import _normalize
from jobs.delta_io.leftovers import LOCK_DIR, local_root, writer_dead
from jobs.delta_io.local import LocalDeltaIO
from jobs.delta_io.logs import open_table
from jobs.runtime import signals
from jobs.runtime.config import PipelineConfig

log = logging.getLogger(__name__)

__all__ = ["Compaction", "TARGET_BYTES", "should_compact", "compact_table", "compact_vote_tables", "compact_into",
           "compaction_line"]

# A file is small below this size, and compaction merges small files into files of up to this size; larger files
# are never rewritten (delta-rs leaves files above its target size out). A full apply's files below it (the 1M-row
# demo's are 20-900 KB) are merged too, once, when the trigger (should_compact) first fires after it. 4 MB is
# Spark's spark.sql.files.openCostInBytes: what Spark reckons opening a file costs, in bytes it could have read in
# that time. A file smaller than that costs a read more to open than to read, the waste compaction removes; merging
# larger ones saves less than half their read. A file an earlier compaction wrote (up to 4 MB) may be merged again
# with the new small files after it (delta-rs bins neighbouring files, in their order, up to the target size), so
# besides the small files a compaction rewrites about 4 MB a partition at most in the usual layout (one such file
# at the end of each LF's partition).
TARGET_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Compaction:
    """What :func:`compact_table` did to one table: from ``version_before`` (``live_before`` files,
    ``small_files`` of them small) to ``version`` (``live_after`` files; None: no file could be merged, so
    nothing was committed), ``files_removed`` files rewritten into ``files_added``."""

    table: str
    version_before: int
    version: int | None
    live_before: int
    small_files: int
    files_removed: int
    files_added: int
    live_after: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def should_compact(small_files: int, full_files: int, min_files: int) -> bool:
    """Whether a table of ``small_files`` small files (below :data:`TARGET_BYTES`) is compacted.

    Databricks' auto compaction compacts a table once it holds at least ``minNumFiles`` (50) small files;
    ``min_files`` (``tables.compact_min_files``, default 50; 0: never) is that rule. A big table's full apply
    alone writes more than that (a file per LF and per task of its pass, ``full_files``): it is read at that
    layout anyway, so compacting right after it would rewrite the whole table for little. As the row masks'
    carry (:data:`jobs.incremental_masks.COMPACT_FACTOR`), the table may hold up to ``COMPACT_FACTOR`` times the
    files of a full apply before it is compacted, so the reads stay within a constant factor of a full apply's
    and a compaction, which rewrites about what the incremental runs added since the last one, comes at most once
    per that many files added.
    """
    return min_files > 0 and small_files >= max(min_files, incremental_masks.COMPACT_FACTOR * full_files)


def compact_table(io: LocalDeltaIO, path: str, *, min_files: int, full_files: int) -> Compaction | None:
    """Compact the small files of the Delta table at ``path`` when :func:`should_compact` says so.

    ``full_files``: the files a full write of the table's rows makes per partition (the tasks of its pass);
    times the table's partitions, what a full apply writes. Returns None when the table is absent or not
    compacted; a :class:`Compaction` with ``version`` None when delta-rs found no files to merge.
    """
    if not io.table_exists(path):
        return None
    started = time.perf_counter()
    root = _normalize(path)
    dt = open_table(root, storage_options=io.storage_options)  # one snapshot: the files counted are those compacted
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    small = sum(1 for a in actions if (a.get("size_bytes") or 0) < TARGET_BYTES)
    partitions = {tuple(sorted((k, v) for k, v in a.items() if k.startswith("partition."))) for a in actions}
    if not should_compact(small, full_files * max(1, len(partitions)), min_files):
        return None
    writing = _writes_in_flight(path)
    if writing:  # its commit would remove files by name that this compaction replaces (jobs.delta_io.local)
        log.info("compaction: %s skipped: another lakelabel write to it is in flight (%s)", path, writing[0])
        return None
    from deltalake import WriterProperties

    before = dt.version()
    # One commit at the end (min_commit_interval unset): the table moves from `before` to the compacted version
    # in one step or not at all. The files keep the codec the writer uses.
    metrics = dt.optimize.compact(target_size=TARGET_BYTES,
                                  writer_properties=WriterProperties(compression=io.compression.upper()))
    removed, added = int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0))
    version = dt.version() if removed else None  # the OPTIMIZE commit's (delta-rs updates dt), not a later writer's
    if version is not None:
        signals.note_commit(f"compacted {root} v{version}")
    return Compaction(table=root, version_before=before, version=version, live_before=len(actions), small_files=small,
                      files_removed=removed, files_added=added, live_after=len(actions) - removed + added,
                      seconds=time.perf_counter() - started)


def _writes_in_flight(path: str) -> list[str]:
    """The lock files of lakelabel writes to the local table at ``path`` that a live process holds (another run
    writing its votes). A write that removes files by name and commits after a compaction would miss the rows the
    compacted files hold (its commit checks for that and is undone: exit 3); not starting one then avoids it."""
    root = _normalize(path)
    if not local_root(root):
        return []
    folder = Path(root) / LOCK_DIR
    return [str(lock) for lock in sorted(folder.glob("*.lock")) if not writer_dead(lock) and lock.exists()]


def compact_vote_tables(cfg: PipelineConfig, io: Any, source_df: Any) -> list[dict[str, Any]]:
    """After a run or apply committed: compact ``votes`` and its row hashes table when they hold many small files.

    ``io``: the run's Delta IO (the native path skips this: the platform compacts); ``source_df``: the source's
    rows, whose pass decides the files a full apply writes (:func:`jobs.incremental_masks.full_apply_files`).
    Returns one :meth:`Compaction.to_json` per table compacted, for the run's summary. A table that cannot be
    compacted is a warning naming it and how to compact it by hand: the run's tables are written and valid.
    """
    min_files = cfg.tables.compact_min_files
    if not min_files or not isinstance(io, LocalDeltaIO):
        return []
    full_files = None
    done = []
    for path in (cfg.table_path("votes"), incremental.row_hashes_path(cfg)):
        try:
            if full_files is None:
                full_files = incremental_masks.full_apply_files(source_df)
            result = compact_table(io, path, min_files=min_files, full_files=full_files)
        except Exception as err:  # noqa: BLE001 - the labels stand; only later reads are slower
            if signals.stopped_by_signal(err):
                raise
            log.warning("compaction: could not compact %s (%s: %s); the run's tables are written and valid. Compact it "
                        "between runs: python -c \"from deltalake import DeltaTable; DeltaTable('%s').optimize."
                        "compact()\", or set tables.compact_min_files: 0 to stop trying", path, type(err).__name__,
                        str(err).splitlines()[0] if str(err) else "", path)
            continue
        if result is None:
            continue
        if result.version is None:
            log.info("compaction: %s has %d small file(s) of %d, none of which could be merged", result.table,
                     result.small_files, result.live_before)
            continue
        log.info("compaction: %s v%d: %d small file(s) rewritten into %d (%d live files, were %d) in %.1fs",
                 result.table, result.version, result.files_removed, result.files_added, result.live_after,
                 result.live_before, result.seconds)
        done.append(result.to_json())
    return done


def compact_into(summary: dict[str, Any], cfg: PipelineConfig, io: Any, source_df: Any) -> None:
    """:func:`compact_vote_tables` at the end of a run, before it reports success: what it compacted goes into the
    run's ``summary`` (``compaction``, ``timings_seconds.compaction``); the votes version there stays the one the
    labels were built from."""
    compacted = compact_vote_tables(cfg, io, source_df)
    if compacted:
        summary["compaction"] = compacted
        summary["timings_seconds"]["compaction"] = round(sum(c["seconds"] for c in compacted), 3)


def compaction_line(compacted: Sequence[Mapping[str, Any]]) -> str:
    """What a command's stdout line adds for its compactions: ``; compacted votes v5 -> v6 (52 files into 4)``."""
    parts = [f"{c['table'].rstrip('/').rsplit('/', 1)[-1]} v{c['version_before']} -> v{c['version']} "
             f"({c['files_removed']} files into {c['files_added']})" for c in compacted]
    return f"; compacted {', '.join(parts)}" if parts else ""
