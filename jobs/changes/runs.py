"""The runs that wrote the labels table, from their run folders.

A pipeline run leaves ``summary.json`` in ``<lakehouse>/_lakelabel/runs/<run id>/``, a ``lakelabel
write`` stage job ``write_summary.json``; both name the labels and votes tables with the versions
the run wrote and read. :func:`label_runs` lists them in the order they wrote the labels table
(its version), one record per labels version. Diff, drift and explain locate a run's tables with it.

The summaries name tables by absolute path, and the lakehouse they were written under. A lakehouse
moved or copied to another folder keeps its run folders, whose summaries still name the tables where
they were: a summary in this lakehouse's run folder that names the configured labels table's path
relative to the lakehouse, under the other folder it says it was written under, is read with its paths
under that folder as this lakehouse's (:func:`_moved`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jobs.runtime.config import PipelineConfig
from jobs.runtime.runs import run_dir
from lf_library.errors import ConfigError

__all__ = ["RunRecord", "label_runs", "find_run", "previous_run", "previous_runs", "moved_from", "written_under", "lakehouse_of"]

_SUMMARIES = ("summary.json", "write_summary.json")
_RUNS_FOLDER = "/_lakelabel/runs/"


@dataclass(frozen=True)
class RunRecord:
    """One run that wrote the labels table.

    Attributes
    ----------
    run_id : str
    folder : Path
        The run folder (``stats.npz``, ``label_model.json``, ``drift_stats.json`` when present).
    labels_path, labels_version : str, int
    votes_path, votes_version : str, int or None
    source_path, source_version : str or None, int or None
        Only in a pipeline summary.
    lf_versions : dict
        LF name -> version (empty for a write stage job: read them from the votes table).
    label_space : tuple of str or None
        None in summaries written before the label space was recorded.
    model_path, model_version : str or None
    model_run : str or None
        A write stage job's: the run whose fitted model it wrote the labels with (its statistics are there).
    """

    run_id: str
    folder: Path
    labels_path: str
    labels_version: int
    votes_path: str
    votes_version: int | None
    source_path: str | None = None
    source_version: int | None = None
    lf_versions: dict[str, str] = field(default_factory=dict)
    label_space: tuple[str, ...] | None = None
    model_path: str | None = None
    model_version: str | None = None
    model_run: str | None = None
    # The lakehouse the run wrote under (the summary's, or its label model file's folder); None: unknown.
    written_under: str | None = None


def written_under(summary: dict[str, Any]) -> str | None:
    """The lakehouse folder a run summary was written under: its ``lakehouse`` key, or (summaries from before
    that key) the folder its label model file is in, ``<lakehouse>/_lakelabel/runs/<run>/label_model.json``."""
    if summary.get("lakehouse"):
        return str(summary["lakehouse"])
    return lakehouse_of((summary.get("label_model") or {}).get("path"))


def lakehouse_of(path: str | None) -> str | None:
    """The lakehouse folder a path under its run folders is in (``<lakehouse>/_lakelabel/runs/...``), else None."""
    return path.split(_RUNS_FOLDER)[0] if path and _RUNS_FOLDER in path else None


def _record(folder: Path, summary: dict[str, Any]) -> RunRecord | None:
    tables = summary.get("tables") or {}
    labels, votes = tables.get("labels") or {}, tables.get("votes") or {}
    # A skipped write's summary counts too: `write` skips only when the labels' latest commit is this run's
    # (the retry the exit line after a signal advises, when the attempt that committed left no summary).
    if summary.get("status") != "succeeded" or labels.get("version") is None:
        return None
    source = summary.get("source") or {}
    model = summary.get("label_model") or {}
    space = summary.get("label_space")
    return RunRecord(
        run_id=summary.get("run_id") or folder.name, folder=folder,
        labels_path=str(labels.get("path")), labels_version=int(labels["version"]),
        votes_path=str(votes.get("path")), votes_version=votes.get("version"),
        source_path=source.get("path"), source_version=source.get("version"),
        lf_versions={lf["name"]: lf["version"] for lf in summary.get("lfs") or []},
        label_space=tuple(space) if space else None,
        model_path=model.get("path"), model_version=model.get("version"), model_run=model.get("run_id"),
        written_under=written_under(summary),
    )  # fmt: skip


def label_runs(cfg: PipelineConfig, labels_path: str | None = None) -> list[RunRecord]:
    """Every run that wrote ``cfg``'s labels table (or ``labels_path``: a multi-task run's), oldest first
    (by the labels version it wrote).

    When two summaries name the same labels version (a rerun that changed nothing), the run
    that wrote it first (its summary's modification time) is kept.
    """
    root = Path(cfg.lakehouse).resolve() / "_lakelabel" / "runs"
    labels_path = labels_path or cfg.table_path("labels")
    lakehouse = str(cfg.lakehouse_path)
    found: dict[int, tuple[tuple[bool, float], RunRecord]] = {}
    if not root.is_dir():
        return []
    for folder in root.iterdir():
        # A run id's latest labels: `run` then `write --run-id` of it (or the reverse) leaves both summaries.
        latest: tuple[int, tuple[bool, float], RunRecord] | None = None
        for name in _SUMMARIES:
            path = folder / name
            if not path.is_file():
                continue
            try:
                summary = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            record = _record(folder, summary)
            exact = record is not None and record.labels_path == labels_path
            if record is not None and not exact:
                record = _moved(record, labels_path, lakehouse)
            if record is None or record.labels_path != labels_path:
                continue
            key = (not exact, path.stat().st_mtime)  # a run of this very path before one rebased onto it
            if latest is None or record.labels_version > latest[0]:
                latest = (record.labels_version, key, record)
        if latest is not None:
            version, key, record = latest
            if version not in found or key < found[version][0]:
                found[version] = (key, record)
    return [found[v][1] for v in sorted(found)]


def moved_from(recorded: str, current: str, lakehouse: str, under: str | None) -> str | None:
    """The folder a moved or copied lakehouse was in when a run named table ``recorded``, which is table
    ``current`` of the lakehouse at ``lakehouse`` now: the same path relative to the lakehouse, under the
    other folder ``under`` the run says it wrote in (:func:`written_under`). None when ``recorded`` is another
    table (say, ``tables.labels`` changed since), the run does not say where it wrote, or ``current`` is
    outside the lakehouse or a URI."""
    relative = current[len(lakehouse) + 1:] if current.startswith(lakehouse + "/") else None
    if not relative or not under or not recorded.endswith("/" + relative):
        return None
    before = recorded[: -len(relative) - 1]
    return before if before == under and before.startswith("/") and before != lakehouse else None


def _moved(record: RunRecord, labels_path: str, lakehouse: str) -> RunRecord:
    """``record`` with its table, source and model paths rebased onto ``lakehouse`` when it was written
    before the lakehouse was moved or copied here (:func:`moved_from`); else as it is."""
    before = moved_from(record.labels_path, labels_path, lakehouse, record.written_under)
    if before is None:
        return record

    def rebased(path: str | None) -> str | None:
        for scheme in ("", "file://"):  # a source is named as Spark read it: file:///...
            if path and path.startswith(f"{scheme}{before}/"):
                return f"{scheme}{lakehouse}{path[len(scheme) + len(before):]}"
        return path

    return replace(record, labels_path=labels_path, votes_path=rebased(record.votes_path),
                   source_path=rebased(record.source_path), model_path=rebased(record.model_path))


def find_run(cfg: PipelineConfig, run_id: str, runs: list[RunRecord] | None = None) -> RunRecord:
    """The record of ``run_id``; a :class:`ConfigError` naming the runs that exist when it wrote no labels."""
    runs = label_runs(cfg) if runs is None else runs
    for record in runs:
        if record.run_id == run_id:
            return record
    known = ", ".join(r.run_id for r in runs[-5:]) or "none"
    if len(runs) > 5:
        known = f"{known} (the last 5 of {len(runs)}; all in {run_dir(cfg.lakehouse, run_id, create=False).parent})"
    where = "has no run folder" if not run_dir(cfg.lakehouse, run_id, create=False).is_dir() else \
        "did not write the labels table"
    raise ConfigError(f"run {run_id!r} {where} under {cfg.lakehouse_path} ({cfg.table_path('labels')}); runs that "
                      f"wrote labels, latest last: {known}")


def previous_runs(cfg: PipelineConfig, run_id: str, labels_path: str | None = None) -> list[RunRecord]:
    """The runs other than ``run_id`` that wrote the same labels table (``labels_path``, default ``cfg``'s)
    from the same votes table, latest first."""
    runs = [r for r in label_runs(cfg, labels_path) if r.run_id != run_id and r.votes_path == cfg.table_path("votes")]
    return runs[::-1]


def previous_run(cfg: PipelineConfig, run_id: str, labels_path: str | None = None) -> RunRecord | None:
    """The latest of :func:`previous_runs`."""
    runs = previous_runs(cfg, run_id, labels_path)
    return runs[0] if runs else None
