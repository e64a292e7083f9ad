"""What an apply leaves with its votes commit, and the checks later stages make against it.

The apply job (:mod:`jobs.apply_lfs`) stores an :class:`ApplyResult` as JSON in the commit metadata
of the votes table (key :data:`VOTES_META_KEY`). Stages run on their own (``aggregate``, ``fit``,
``write``), ``analyze``, ``verify`` and the notebooks read it back with :func:`load_apply_result`
and check that the source and the LFs are still the ones the votes came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from jobs import delta_io
from jobs.runtime.config import PipelineConfig
from lf_library.errors import ConfigError, InputDataError

if TYPE_CHECKING:
    from jobs.delta_io.sources import Source
    from lf_library import LFRegistry

__all__ = ["VOTES_META_KEY", "LFApplyStats", "ApplyResult", "lf_info", "check_source_unchanged",
           "check_lfs_unchanged", "lf_differences", "VERSIONED_BY_UPGRADE", "load_apply_result"]

VOTES_META_KEY = "lakelabel.apply"


@dataclass(frozen=True)
class LFApplyStats:
    """What one LF did in one apply run."""

    name: str
    version: str
    kind: str
    votes: int
    errors: int
    error_rate: float
    error_samples: list[dict[str, str]] = field(default_factory=list)
    # Where the LF came from: "module ...", "file ...", "column ...", "model ... (version, run)".
    origin: str = ""


@dataclass(frozen=True)
class ApplyResult:
    run_id: str
    votes_table: str
    votes_version: int | None
    source_path: str
    source_format: str
    source_version: int | None
    fingerprint: str
    n_rows: int
    label_space: tuple[str, ...]
    lfs: tuple[LFApplyStats, ...]
    skipped: bool
    seconds: float
    source_fingerprint: str = ""
    # Incremental apply (jobs.incremental): per-LF keys and the reading key the next run compares
    # with, what this run computed, and where the source's row hashes stand (non-Delta sources).
    lf_keys: dict[str, str] = field(default_factory=dict)
    reading: str = ""
    applied_lfs: tuple[str, ...] = ()
    reused_lfs: tuple[str, ...] = ()
    applied_rows: int = 0
    row_changes: dict[str, Any] = field(default_factory=dict)
    row_hashes_version: int | None = None
    text_columns: tuple[str, ...] = ()
    # Each row's vote bitmask, written by a full apply (jobs.apply_masks): {"path", "gold_column", "rows"}.
    row_masks: dict[str, Any] = field(default_factory=dict)
    # The exact copies source.drop_duplicate_rows dropped (None when it is off or they were not counted).
    duplicate_rows_dropped: int | None = None

    def to_json(self) -> str:
        return json.dumps(_as_plain(self), sort_keys=True)

    def source_summary(self) -> dict[str, Any]:
        """The run summary's ``source``: path, format, version, rows (and the exact copies dropped)."""
        return {"path": self.source_path, "format": self.source_format, "version": self.source_version,
                "rows": self.n_rows, **({"duplicate_rows_dropped": self.duplicate_rows_dropped}
                                        if self.duplicate_rows_dropped is not None else {})}

    @classmethod
    def from_json(cls, text: str, *, table: str = "the votes table") -> ApplyResult:
        """The record an apply committed with the votes (``table``: where, for the error).

        A record with fields this lakelabel does not know was written by a newer one: an
        InputDataError naming them, not a TypeError (README "Upgrading": going back is not supported).
        """
        data = json.loads(text)
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        unknown += sorted({k for lf in data.get("lfs", ()) for k in lf} - set(LFApplyStats.__dataclass_fields__))
        if unknown:
            raise InputDataError(
                f"{table}: its apply record ({VOTES_META_KEY}) holds fields this lakelabel does not know {unknown}: "
                f"a newer lakelabel wrote it; run the lakelabel that wrote it (or newer) on this lakehouse, or an "
                f"older copy of the lakehouse with this one (README \"Upgrading\")")
        data["lfs"] = tuple(LFApplyStats(**lf) for lf in data["lfs"])
        for key in ("label_space", "applied_lfs", "reused_lfs", "text_columns"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    @property
    def lf_names(self) -> tuple[str, ...]:
        return tuple(lf.name for lf in self.lfs)

    @property
    def lf_versions(self) -> dict[str, str]:
        return {lf.name: lf.version for lf in self.lfs}


def lf_info(applied: ApplyResult) -> dict[str, dict[str, str]]:
    """LF name -> ``{"kind", "origin"}`` of an apply run (for the LF tables of later stages)."""
    return {lf.name: {"kind": lf.kind, "origin": lf.origin} for lf in applied.lfs}


def _as_plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _as_plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, (list, tuple)):
        return [_as_plain(v) for v in obj]
    return obj


def check_source_unchanged(applied: ApplyResult, source: Source) -> None:
    """Fail when a stage run on its own sees a different source than the votes came from."""
    if applied.source_fingerprint and source.info.fingerprint != applied.source_fingerprint:
        votes = applied.votes_table + (f" v{applied.votes_version}" if applied.votes_version is not None else "")
        files = source.info.fingerprint.startswith("files:") and source.info.format != "delta"  # not several tables
        how = (" (a file source is compared by its files' names, sizes and modification times: a file copied "
               "back with the same bytes counts as changed)" if files else "")
        raise InputDataError(
            f"source {source.info.path} changed since its votes were written (votes table {votes}){how}; run "
            f"`lakelabel apply` again (or `lakelabel run`)"
        )


def check_lfs_unchanged(applied: ApplyResult, registry: LFRegistry) -> None:
    """Fail when a stage run on its own is configured with other LFs than the votes came from.

    Names what differs (``lfs.include``/``lfs.exclude``, an edited LF, a new module) and the fix.
    """
    parts = lf_differences(applied.lf_versions, registry.versions, earlier=registry.earlier_versions)
    if not parts and tuple(applied.label_space) == tuple(registry.label_space):
        return
    if not parts:
        parts = [f"label space {list(registry.label_space)} instead of {list(applied.label_space)}"]
    # Votes of LFs this config does not have may be another config's (a multi-task config's): an apply here replaces them.
    theirs = ("" if set(applied.lf_versions) <= set(registry.versions) else
              ", which replaces these votes: if another config wrote them (one with several tasks, a teammate's), "
              "give this config a votes table of its own (tables.votes) instead")
    raise InputDataError(
        f"the configured LFs differ from those of the votes table {applied.votes_table} v{applied.votes_version} "
        f"({'; '.join(parts)}); run `lakelabel apply` again (or `lakelabel run`){theirs}"
    )


def lf_summaries(applied: ApplyResult) -> list[dict[str, Any]]:
    """Per LF, what run and apply summaries report: name, version, kind, origin, votes, errors, error samples."""
    return [{"name": lf.name, "version": lf.version, "kind": lf.kind, "origin": lf.origin, "votes": lf.votes,
             "errors": lf.errors, "error_samples": lf.error_samples} for lf in applied.lfs]


# How lf_differences words the LFs an upgrade of lakelabel gave new versions (a part starts with it).
VERSIONED_BY_UPGRADE = ("unedited but versioned anew by this lakelabel, whose keyword and lexicon matching changed "
                        "(README \"Upgrading\")")


def lf_differences(voted: Mapping[str, str], configured: Mapping[str, str],
                   words: tuple[str, str, str] = ("not in the votes", "no longer configured", "edited"),
                   *, earlier: Mapping[str, Collection[str]] | None = None) -> list[str]:
    """What differs between the LFs (``name -> version``) that wrote the votes and those configured,
    worded for a message: ``not in the votes [...]``, ``no longer configured [...]``, ``edited [...]``
    (``words``: other names for the three, when other LF sets are compared).

    ``earlier`` (``LFRegistry.earlier_versions``): an LF whose voted version is one an older
    lakelabel gave it unedited is listed apart, as versioned anew by the upgrade (README "Upgrading")."""
    added = sorted(set(configured) - set(voted))
    removed = sorted(set(voted) - set(configured))
    changed = sorted(n for n in set(voted) & set(configured) if voted[n] != configured[n])
    upgraded = [n for n in changed if voted[n] in (earlier or {}).get(n, ())]
    edited = [n for n in changed if n not in upgraded]
    parts = [f"{what} {names}" for what, names in zip(words, (added, removed, edited)) if names]
    if upgraded:
        parts.append(f"{VERSIONED_BY_UPGRADE} {upgraded}")
    return parts


def located(result: ApplyResult, votes_path: str, lakehouse: str) -> ApplyResult:
    """``result`` as the votes table at ``votes_path`` of the lakehouse at ``lakehouse`` now: a record written
    before the lakehouse was moved or copied here (``mv``, ``cp -a``) names the votes table and the row masks
    folder where they were; both are rebased onto this lakehouse (a copy then reads and replaces its own
    files, not the original's). Any other record is returned as it is."""
    from jobs.changes.runs import lakehouse_of, moved_from

    masks = dict(result.row_masks)
    folder = str(masks.get("path", ""))
    # Where the apply says it wrote: the lakehouse whose run folders hold its masks.
    before = moved_from(result.votes_table, votes_path, lakehouse, lakehouse_of(folder))
    if before is None:
        return result
    masks["path"] = lakehouse + folder[len(before):]
    return replace(result, votes_table=votes_path, row_masks=masks)


def load_apply_result(cfg: PipelineConfig, io: Any = None) -> ApplyResult:
    """The apply summary stored with the latest votes commit (for stages run on their own).

    ``io``: the stage's :func:`jobs.delta_io.delta_io`; default the local reader (both paths
    store the summary alike, so it reads a table either wrote).
    """
    io = io or delta_io.delta_io(None, "local")
    path = cfg.table_path("votes")
    if not io.table_exists(path):
        raise ConfigError(f"no votes table at {path}; run `lakelabel apply` (or the pipeline) first")
    meta = io.read_metadata(path)
    if VOTES_META_KEY not in meta:
        raise ConfigError(f"the votes table {path} was not written by lakelabel apply; point tables.votes elsewhere")
    result = located(ApplyResult.from_json(meta[VOTES_META_KEY], table=f"the votes table {path}"), path,
                     str(cfg.lakehouse_path))
    version = io.table_version(path)
    # The table read, not the path the record names: where the votes were written (a moved lakehouse's old folder).
    return replace(result, votes_table=path, votes_version=version)
