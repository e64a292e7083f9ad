"""Incremental apply: which LFs to run on which rows, and the votes table that results.

:func:`jobs.apply_lfs.run` calls :func:`plan_apply` and :func:`build_votes`; this module decides,
apply_lfs runs the LFs and commits. Votes are keyed by (row id, LF name, LF key), where an LF's
key is its version plus, for column LFs that join another table, that table's fingerprint (model
LFs carry their model's version in their LF version). Against the votes table's latest commit:

* LFs that are new or whose key changed run on every row; their old votes are dropped;
* LFs that left the registry lose their votes;
* unchanged LFs are not run, except on rows that are new in the source or whose content changed
  (:mod:`jobs.delta_io.changes`); rows gone from the source lose every vote.

The votes table is partitioned by ``lf_name``. The new votes are committed in one Delta
transaction (:func:`build_commit`): on the local path file by file (the changed LFs' partitions
and the files holding changed rows are replaced; the rest stays), elsewhere as a rewrite of the
whole table. Either way apply's ``validate`` counts the whole new table, so the per-LF counts,
error samples, error budget and coverage are those of a full apply, and a failure leaves the
previous version: it reads the new files and the kept ones, except the files of LFs whose previous
votes all stay (:func:`carried_stats`), whose stored counts and error samples are carried over and
added to (they equal a count of those files).

A full apply (every LF on every row) happens on ``--force``, for the first apply, when the
previous votes carry no per-LF keys (written before this module), when the label space, the id
column, the source path or how it is read changed, and when the rows that changed cannot be told
(a non-Delta source without stored row hashes). The log line and the summary's ``reason`` say why.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.delta_io import changes as row_changes
from jobs.delta_io.changes import RowChanges
from jobs.delta_io.local import LocalDeltaIO
from jobs.delta_io.sources import Source
from jobs.runtime import lf_sources
from jobs.runtime.config import PipelineConfig
from lf_library import LFRegistry

log = logging.getLogger(__name__)

__all__ = ["ApplyPlan", "VotesCommit", "carried_stats", "lf_keys", "reading_key", "plan_apply", "appends_only",
           "row_hashes_named",
           "find_row_changes", "build_commit", "row_hashes_path"]


@dataclass(frozen=True)
class ApplyPlan:
    """What an apply run computes.

    ``applied``: LFs run on every row. ``reused``: LFs whose votes are kept (and run only on
    changed rows). ``removed``: LFs of the previous votes no longer registered. ``full``: every
    LF on every row; ``reason`` says why (or what is incremental).
    """

    applied: tuple[str, ...]
    reused: tuple[str, ...]
    removed: tuple[str, ...]
    full: bool
    reason: str
    source_changed: bool


def lf_keys(source: Source, registry: LFRegistry) -> dict[str, str]:
    """LF name -> what decides its votes: its version, plus the fingerprint of a table it joins."""
    tables = dict(entry.split(":", 1) for entry in lf_sources.lf_table_fingerprints(source, registry.lfs))
    return {lf.name: lf.version + (f"|{tables[lf.name]}" if lf.name in tables else "") for lf in registry.lfs}


def reading_key(cfg: PipelineConfig, source: Source, registry: LFRegistry) -> str:
    """Hash of what must stay equal for old votes to be reused: source path, reader, id column, label space."""
    doc = {
        "path": source.info.path, "format": cfg.source.format, "options": cfg.source.options,
        "dedupe": cfg.source.drop_duplicate_rows, "id": source.id_column, "labels": list(registry.label_space),
    }  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def id_type_change(spark: Any, io: Any, votes_path: str, source: Source) -> str | None:
    """``int -> bigint`` when the source's id column has another type than the votes table's ``row_id``, else None.

    Votes of another id type cannot be kept beside new ones (a drill, session 26: a Delta source rewritten with
    its id widened failed the incremental commit with a schema mismatch, exit 2, until ``--force``)."""
    old = io.read_table(spark, votes_path).schema["row_id"].dataType
    new = source.df.schema[source.id_column].dataType
    return None if old == new else f"{old.simpleString()} -> {new.simpleString()}"


def plan_apply(prior: Any, keys: dict[str, str], reading: str, source: Source, *, force: bool,
               earlier: Mapping[str, Collection[str]] | None = None, retyped: str | None = None) -> ApplyPlan:
    """Decide which LFs run, from the previous apply summary ``prior`` (an ApplyResult or None).

    ``earlier`` (``LFRegistry.earlier_versions``): the reason names the LFs that run again only
    because this lakelabel versions them anew (README "Upgrading"). ``retyped``: :func:`id_type_change`."""
    names = tuple(sorted(keys))

    def full(reason: str) -> ApplyPlan:
        return ApplyPlan(applied=names, reused=(), removed=(), full=True, reason=reason, source_changed=True)

    if force:
        return full("--force")
    if prior is None:
        return full("no previous votes")
    if not prior.lf_keys or not prior.reading:
        return full("the previous votes do not record per-LF versions (written by an older lakelabel)")
    if prior.reading != reading:
        return full("the source path, how it is read, the id column or the label space changed")
    if retyped:
        return full(f"the id column's type changed ({retyped})")
    reused = tuple(n for n in names if prior.lf_keys.get(n) == keys[n])
    applied = tuple(n for n in names if n not in reused)
    removed = tuple(sorted(set(prior.lf_keys) - set(keys)))
    changed = source.info.fingerprint != prior.source_fingerprint
    upgraded = [n for n in applied if prior.lf_keys.get(n) in (earlier or {}).get(n, ())]
    upgrade = (f" ({len(upgraded)} of them unedited but versioned anew by this lakelabel, whose keyword and lexicon "
               f"matching changed: {upgraded}; README \"Upgrading\")" if upgraded else "")
    if not reused:
        return replace(full("every LF is new or changed" + upgrade), removed=removed)
    what = f"{len(applied)} LF(s) new or changed{upgrade}, {len(reused)} unchanged, {len(removed)} removed"
    return ApplyPlan(applied=applied, reused=reused, removed=removed, full=False, reason=what, source_changed=changed)


def row_hashes_path(cfg: PipelineConfig) -> str:
    """Where the per-row hashes of a non-Delta source live: next to the votes table."""
    return cfg.table_path("votes") + "_row_hashes"


def row_hashes_named(cfg: PipelineConfig, io: Any) -> str:
    """``row hashes <path> v<N>`` (its version now), as a restore that fails names the commit that stands."""
    path = row_hashes_path(cfg)
    try:
        return f"row hashes {path}" + (f" v{io.table_version(path)}" if io.table_exists(path) else "")
    except Exception:  # noqa: BLE001 - a name for a message: the command's own error is the one to raise
        return f"row hashes {path}"


def restore_row_hashes(cfg: PipelineConfig, io: Any, before: int | None, reason: str) -> None:
    """After a failed run whose votes are put back: put the row hashes table back to ``before`` too
    (None: the run created it, so it is removed), so the run leaves every table as it found it."""
    path = row_hashes_path(cfg)
    if io.table_exists(path) and io.table_version(path) != before:
        io.restore_table(path, before, reason=reason)


def uses_delta_history(cfg: PipelineConfig, source: Source) -> bool:
    """True when row changes come from Delta time travel (one Delta table, rows read as stored)."""
    return source.info.format == "delta" and source.info.version is not None and not cfg.source.drop_duplicate_rows


def appends_only(cfg: PipelineConfig, source: Source, prior: Any, io: Any) -> bool:
    """True when a non-Delta source only gained files since ``prior``'s stored row hashes."""
    hashes = row_hashes_path(cfg)
    if prior is None or prior.row_hashes_version is None or not io.table_exists(hashes):
        return False
    return row_changes.appended_files(source, hashes, prior.row_hashes_version, io) is not None


def find_row_changes(spark: Any, cfg: PipelineConfig, source: Source, prior: Any, io: Any) -> RowChanges | str:
    """The rows that changed since ``prior``'s votes, or a string saying why they cannot be told."""
    if uses_delta_history(cfg, source):
        table, _, version = (prior.source_fingerprint or "").rpartition("@")
        if prior.source_version is None or table != source.info.fingerprint.rpartition("@")[0]:
            return "the previous votes came from another Delta table (or not from a Delta table)"
        if prior.source_version > (source.info.version or 0):
            return f"the source is at v{source.info.version}, older than the votes' v{prior.source_version}"
        return row_changes.delta_changes(spark, source, prior.source_version, io)
    hashes = row_hashes_path(cfg)
    if prior.row_hashes_version is None or not io.table_exists(hashes):
        return f"no row hashes of the previous source at {hashes} (they are written from this run on)"
    log.info("apply: source %s is not a Delta table (or is deduplicated): changed rows are found by content "
             "hashes, not Delta's history", source.info.path)
    return row_changes.hash_table_changes(spark, source, hashes, prior.row_hashes_version, io)


@dataclass(frozen=True)
class VotesCommit:
    """How to commit the new votes: ``df`` with ``mode``, removing ``remove_files`` (``append``
    only), while ``kept_files`` (URIs) stay as they are; the per-LF stats read both."""

    df: DataFrame
    mode: str
    remove_files: tuple[str, ...] = ()
    # Write df.mapInArrow(*transform): the LFs run in the tasks that write the votes (one Python pass).
    transform: tuple[Any, Any] | None = None
    kept_files: tuple[str, ...] = ()
    # The LF of each kept file (same order as kept_files).
    kept_lfs: tuple[str, ...] = ()
    # Reused LFs whose files all stay as they are: LF name -> rows in those files.
    untouched: dict[str, int] = field(default_factory=dict)
    # The ids whose previous votes go (changed or gone rows, ``__id``; None: none), and their min and max
    # when the commit computed them (the row masks' carry reads both: jobs.incremental_masks).
    dropped: DataFrame | None = None
    dropped_range: tuple[Any, Any] | None = None


def carried_stats(prior_lfs: Sequence[Any], commit: VotesCommit, samples: int) -> dict[str, Any]:
    """LF name -> its previous stats (``LFApplyStats``), for LFs whose previous votes all stay.

    For such an LF, counting its kept files again would find what the previous run counted:
    apply adds the counts of the files it writes (its votes on new rows) instead of reading
    the kept ones. Only when the kept files hold exactly the rows the previous counts describe
    (``votes + errors``: a table edited by hand, or an older layout, is counted again), and the
    stored error samples are all the current ``apply.error_samples`` can need.
    """
    out = {}
    for lf in prior_lfs:
        rows = commit.untouched.get(lf.name)
        if rows is None or rows != lf.votes + lf.errors:
            continue
        if len(lf.error_samples) < min(samples, lf.errors):
            continue
        out[lf.name] = lf
    return out


def build_commit(
    spark: Any,
    plan: ApplyPlan,
    source: Source,
    registry: LFRegistry,
    changes: RowChanges | None,
    *,
    votes_path: str,
    io: Any,
    compute: Callable[[Source, LFRegistry], DataFrame],
    columns: Sequence[str],
    vote_function: Callable[[Source, LFRegistry], tuple[DataFrame, Any, Any]] | None = None,
) -> VotesCommit:
    """The commit that turns the latest votes into the new ones.

    On the local path with votes partitioned by ``lf_name`` (every table apply writes since
    incremental apply), file by file: the partitions of applied and removed LFs are removed, files
    of reused LFs holding a changed or gone row are rewritten without those rows (files whose
    ``row_id`` min/max cannot hold one are not even read), the new votes are added, all in one
    commit. Otherwise (native path, older unpartitioned votes) the whole table is rewritten:
    kept votes plus new votes, ``overwrite``. ``compute(source, registry)``: the lazy votes (with
    ``run_id``) of ``registry``'s LFs on ``source``'s rows. Kept votes keep the ``run_id`` of the
    run that computed them. ``vote_function(source, registry)``: ``(rows, function, schema)`` as
    :func:`jobs.apply_lfs.vote_function` (with ``run_id``); when the commit's only new rows are one
    such computation, it is written as a ``transform``, so the votes skip a round trip through the JVM.
    """
    drop = changes.replaced() if changes is not None else None
    computed: list[tuple[Source, LFRegistry]] = []  # whose votes are new
    if plan.applied:
        computed.append((source, registry.select(plan.applied)))
    if changes is not None and changes.n_reapply:
        ids, candidates_rows = changes.reapply, changes.rows if changes.rows is not None else source.df
        rows = candidates_rows.join(ids, candidates_rows[source.id_column] == ids["__id"], "left_semi")
        computed.append((replace(source, df=rows), registry.select(plan.reused)))

    def new_votes() -> list[DataFrame]:
        return [compute(src, reg).select(*columns) for src, reg in computed]

    actions = io.snapshot_actions(votes_path) if isinstance(io, LocalDeltaIO) else None
    if actions is None or not actions or any("partition.lf_name" not in a for a in actions):
        kept = io.read_table(spark, votes_path).where(F.col("lf_name").isin(list(plan.reused)))
        if drop is not None:
            kept = kept.join(drop, kept["row_id"] == drop["__id"], "left_anti")
        return VotesCommit(df=_union([kept.select(*columns), *new_votes()]), mode="overwrite", dropped=drop)
    reused = set(plan.reused)
    candidates = [a for a in actions if a["partition.lf_name"] in reused]
    rewrite: list[dict[str, Any]] = []
    parts: list[DataFrame] = []  # the kept votes of rewritten files
    bounds = None
    if drop is not None:
        lo, hi = bounds = tuple(drop.agg(F.min("__id"), F.max("__id")).first())
        overlap = [a for a in candidates if row_changes.may_hold(a, "row_id", lo, hi)]
        if overlap:
            hits = row_changes.files_holding(io.read_table(spark, votes_path, files=[a["uri"] for a in overlap]), drop)
            rewrite = [a for a in overlap if any(h.endswith("/" + a["path"]) for h in hits)]
        if rewrite:
            old = io.read_table(spark, votes_path, files=[a["uri"] for a in rewrite])
            parts.append(old.join(drop, old["row_id"] == drop["__id"], "left_anti").select(*columns))
    transform = None
    if vote_function is not None and len(computed) == 1 and not parts:
        df, fn, schema = vote_function(*computed[0])
        parts, transform = [df], (fn, schema)
    else:
        parts = new_votes() + parts
    if not parts:
        parts.append(io.read_table(spark, votes_path, files=[]).select(*columns))
    rewritten = {a["path"] for a in rewrite}
    remove = [a["path"] for a in actions if a["partition.lf_name"] not in reused or a["path"] in rewritten]
    kept = [a for a in candidates if a["path"] not in rewritten]
    touched = {a["partition.lf_name"] for a in candidates if a["path"] in rewritten}
    untouched = {name: 0 for name in plan.reused if name not in touched}
    for a in kept:
        name = a["partition.lf_name"]
        if name in untouched:
            if a.get("num_records") is None:  # a file without statistics: count that LF again
                del untouched[name]
            else:
                untouched[name] += int(a["num_records"])
    log.info("apply: votes file by file: %d file(s) removed (%d rewritten without changed rows), %d kept",
             len(remove), len(rewrite), len(kept))
    return VotesCommit(df=_union(parts), mode="append", remove_files=tuple(remove), transform=transform,
                       kept_files=tuple(a["uri"] for a in kept), kept_lfs=tuple(a["partition.lf_name"] for a in kept),
                       untouched=untouched, dropped=drop, dropped_range=bounds)


def _union(parts: Sequence[DataFrame]) -> DataFrame:
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out
