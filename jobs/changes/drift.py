"""Drift: how much a run's votes and labels moved from the previous run's, and when that is too much.

Nothing is rescanned: a run's numbers come from what the aggregate stage already computed (the
:class:`~labelmodel.SufficientStats`: per-LF coverage and class vote counts, conflicts, and the
vote-pattern table with its counts) and the fitted label model, which scores each distinct
pattern once. They are saved as ``drift_stats.json`` in the run folder; the previous run's come
from its ``drift_stats.json``, or from its ``stats.npz`` and ``label_model.json`` (runs made before
drift existed). The comparison, thresholds from ``drift.*``:

* ``lf_coverage``: an LF's coverage (fraction of rows it voted on) moved by more than this; an LF
  added since the previous run moved from 0, one removed moved to 0;
* ``lf_votes``: an LF's class distribution of votes moved by more than this (total variation);
* ``label_shift``: the label distribution (hard labels, ties split evenly, plus the rows left
  unlabeled) moved by more than this (total variation);
* ``conflict_rate`` and ``mean_confidence``: moved by more than this (absolute).

A change above a threshold is a warning; above a ``fail_on_*`` threshold (when set) the run
fails (exit 2) before its labels are published. Label distribution and confidence need the
pattern table: when a run had more distinct patterns than ``aggregate.max_patterns`` they are
left out (a note says so).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jobs.changes.runs import RunRecord, previous_runs
from jobs.runtime import tracking
from jobs.runtime.config import DriftConfig, PipelineConfig
from jobs.runtime.runs import run_dir, task_file, write_json
from labelmodel import LabelModel, SufficientStats, tie_shares
from lf_library.errors import ConfigError

__all__ = ["DRIFT_STATS_FILE", "DriftError", "check", "run_stats", "load_run_stats", "compare", "enforce"]

log = logging.getLogger(__name__)

DRIFT_STATS_FILE = "drift_stats.json"
UNLABELED = "(unlabeled)"
# metric name -> (DriftConfig warning field, fail field)
METRICS = {
    "lf_coverage": ("lf_coverage", "fail_on_lf_coverage"),
    "lf_votes": ("lf_votes", "fail_on_lf_votes"),
    "label_shift": ("label_shift", "fail_on_label_shift"),
    "conflict_rate": ("conflict_rate", "fail_on_conflict_rate"),
    "mean_confidence": ("mean_confidence", "fail_on_mean_confidence"),
}


class DriftError(ConfigError):
    """A run's labels moved more than a ``drift.fail_on_*`` threshold allows (exit 2, nothing published)."""


def run_stats(stats: SufficientStats, model: Any, label_space: list[str], *, label_unvoted: bool = False) -> dict:
    """The numbers drift compares, from a run's statistics and fitted model (JSON-ready).

    Parameters
    ----------
    stats : SufficientStats
        The aggregate's statistics of the run.
    model : BaseLabelModel
        The fitted label model.
    label_space : list of str
    label_unvoted : bool
        Rows where every LF abstained get a label (``label_model.label_unvoted``); else they are unlabeled.
    """
    n = max(int(stats.n_rows), 1)
    votes = stats.class_vote_counts()
    out: dict[str, Any] = {
        "rows": int(stats.n_rows),
        "label_space": list(label_space),
        "coverage": stats.n_covered / n,
        "conflict_rate": stats.n_conflicted / n,
        "lfs": {name: {"coverage": float(stats.lf_coverage[j] / n),
                       "votes": {c: int(votes[j, i]) for i, c in enumerate(label_space)}}
                for j, name in enumerate(stats.lf_names)},
        "labels": None,
        "mean_confidence": None,
    }
    if stats.patterns is not None and stats.counts is not None and len(stats.patterns):
        P = np.asarray(stats.patterns, dtype=np.int64)
        w = np.asarray(stats.counts, dtype=np.float64)
        probs = model.predict_proba(P)
        shares = tie_shares(probs) * w[:, None]
        empty = (P == -1).all(axis=1)
        labels = {c: float(shares[~empty, i].sum()) if not label_unvoted else float(shares[:, i].sum())
                  for i, c in enumerate(label_space)}
        labels[UNLABELED] = 0.0 if label_unvoted else float(w[empty].sum())
        out["labels"] = {c: v / n for c, v in labels.items()}
        out["mean_confidence"] = float(np.dot(probs.max(axis=1), w) / n)
    return out


def check(cfg: PipelineConfig, run_id: str, stats: SufficientStats, model: Any, label_space: list[str], *,
          task: str | None = None, previous: RunRecord | None | Literal["find"] = "find") -> dict | None:
    """Compare this run with the previous one on the same tables, before its labels are written.

    Saves ``drift_stats.json`` and ``drift.json`` in the run folder (a task of a multi-task run:
    ``drift_stats_<task>.json``, ``drift_<task>.json``) and logs the ``drift.*`` metrics
    (``<task>.drift.*``) and the document to the active MLflow run; raises :class:`DriftError`
    (exit 2) when a change passes a ``drift.fail_on_*`` threshold. ``previous``: the previous run's
    record (a multi-task run looks it up once for every task), by default looked up for ``cfg``'s
    labels table. Returns the summary's ``drift`` section; None when ``drift.enabled`` is off.
    """
    if not cfg.drift.enabled:
        return None
    folder = run_dir(cfg.lakehouse, run_id)
    now = run_stats(stats, model, list(label_space), label_unvoted=bool(cfg.label_model.label_unvoted))
    save_run_stats(folder, now, task)
    # The latest earlier run with statistics: a run whose statistics are gone (or a write stage job whose
    # model run's are) would otherwise leave the fail_on_* gates nothing to compare with.
    candidates = previous_runs(cfg, run_id) if previous == "find" else [previous] if previous is not None else []
    before, passed = None, []
    for record in candidates:
        before = load_run_stats(record, task)
        if before is not None:
            previous = record
            break
        passed.append(record.run_id)
    previous = previous if before is not None else (candidates[0] if candidates else None)
    doc = compare(now, before, cfg.drift, previous_run=previous.run_id if previous else None)
    if before is not None and passed:
        doc["notes"].append(f"compared with run {previous.run_id}, the latest earlier run with statistics: the later "
                            f"run(s) {', '.join(passed)} kept none")
    gates = [f"drift.{fail}" for _, fail in METRICS.values() if getattr(cfg.drift, fail) is not None]
    if before is None and gates:
        latest = f" (latest: {previous.run_id})" if previous is not None else ""
        unchecked = (f"no earlier run on these tables kept statistics{latest}, so {', '.join(gates)} checked nothing; "
                     "this run is the baseline for the next")
        log.warning("drift: %s", unchecked)
        doc["notes"].append(unchecked)  # the summary says so too, for an orchestrator that reads it
    if task is not None:
        for item in doc["warnings"] + doc["failures"]:
            item["what"] = f"{item['what']} of task {task}"
    write_json(folder / task_file("drift.json", task), doc)
    if cfg.mlflow.enabled:
        tracking.log_drift(cfg, doc, metrics(doc, f"{task}." if task else ""), task_file("drift.json", task))
    enforce(doc, run_id)
    return {k: v for k, v in doc.items() if k != "current"}


def save_run_stats(folder: Path, numbers: dict, task: str | None = None) -> None:
    write_json(folder / task_file(DRIFT_STATS_FILE, task), numbers)


def load_run_stats(record: RunRecord, task: str | None = None) -> dict | None:
    """A previous run's numbers: its ``drift_stats.json`` (a task's: ``drift_stats_<task>.json``), or, for
    a single-task run, computed from its stats and model files."""
    # A write stage job keeps no statistics: those of the run whose model it wrote with describe its labels.
    folders = [record.folder]
    if record.model_run and record.model_run != record.run_id:
        folders.append(record.folder.parent / record.model_run)
    for folder in folders:
        path = folder / task_file(DRIFT_STATS_FILE, task)
        if path.is_file():
            return json.loads(path.read_text())
    if task is not None:
        return None
    found = [f for f in folders if (f / "stats.npz").is_file() and (f / "label_model.json").is_file()]
    if not (found and record.label_space):
        return None
    stats_file, model_file = found[0] / "stats.npz", found[0] / "label_model.json"
    model = LabelModel.load(str(model_file))
    return run_stats(SufficientStats.from_npz(str(stats_file)), model, list(record.label_space),
                     label_unvoted=bool(model.config.label_unvoted))


def _tv(a: dict[str, float], b: dict[str, float]) -> float:
    """Total variation distance of two distributions given as counts or shares (0 when either is empty)."""
    keys = sorted(set(a) | set(b))
    x = np.array([a.get(k, 0.0) for k in keys], dtype=float)
    y = np.array([b.get(k, 0.0) for k in keys], dtype=float)
    if x.sum() <= 0 or y.sum() <= 0:
        return 0.0
    return float(0.5 * np.abs(x / x.sum() - y / y.sum()).sum())


def compare(now: dict, before: dict | None, cfg: DriftConfig, *, previous_run: str | None) -> dict:
    """The ``drift`` section of a run summary: changes, warnings and failures against ``before``."""
    doc: dict[str, Any] = {"previous_run": previous_run, "current": now, "changes": {}, "warnings": [],
                           "failures": [], "notes": []}
    if before is None:
        doc["notes"].append("no previous run on these tables to compare with" if previous_run is None else
                            f"the previous run {previous_run} kept no statistics to compare with (no drift_stats.json, "
                            "or no stats.npz and label_model.json with a recorded label space)")
        return doc
    if before.get("label_space") != now.get("label_space"):
        doc["notes"].append(f"the label space changed ({before.get('label_space')} -> {now.get('label_space')}); "
                            "label and vote distributions are compared by class name")
    changes: dict[str, Any] = {"lfs": {}}
    for name, lf in now["lfs"].items():
        old = before["lfs"].get(name)
        if old is None:
            changes["lfs"][name] = {"status": "added", "coverage": lf["coverage"], "coverage_change": lf["coverage"]}
            continue
        changes["lfs"][name] = {"coverage_before": old["coverage"], "coverage": lf["coverage"],
                                "coverage_change": lf["coverage"] - old["coverage"],
                                "votes_shift": _tv(lf["votes"], old["votes"])}
    for name in sorted(set(before["lfs"]) - set(now["lfs"])):
        was = before["lfs"][name]["coverage"]
        changes["lfs"][name] = {"status": "removed", "coverage_before": was, "coverage_change": -was}
    changes["rows"] = {"before": before["rows"], "now": now["rows"]}
    changes["conflict_rate"] = {"before": before["conflict_rate"], "now": now["conflict_rate"],
                                "change": now["conflict_rate"] - before["conflict_rate"]}
    if now.get("labels") is not None and before.get("labels") is not None:
        changes["label_shift"] = _tv(now["labels"], before["labels"])
        changes["labels"] = {c: {"before": before["labels"].get(c, 0.0), "now": now["labels"].get(c, 0.0)}
                             for c in sorted(set(now["labels"]) | set(before["labels"]))}
        changes["mean_confidence"] = {"before": before["mean_confidence"], "now": now["mean_confidence"],
                                      "change": now["mean_confidence"] - before["mean_confidence"]}
    else:
        doc["notes"].append("label distribution and confidence not compared: a run kept no vote-pattern table "
                            "(more distinct patterns than aggregate.max_patterns)")
    doc["changes"] = changes
    for metric, value, what in _measured(changes):
        warn, fail = (getattr(cfg, f) for f in METRICS[metric])
        item = {"metric": metric, "what": what, "change": value}
        if fail is not None and abs(value) > fail:
            doc["failures"].append({**item, "threshold": fail, "setting": f"drift.{METRICS[metric][1]}"})
        elif abs(value) > warn:
            doc["warnings"].append({**item, "threshold": warn, "setting": f"drift.{METRICS[metric][0]}"})
    return doc


def _measured(changes: dict) -> list[tuple[str, float, str]]:
    out = []
    for name, lf in changes["lfs"].items():
        status = f" ({lf['status']})" if "status" in lf else ""
        out.append(("lf_coverage", lf["coverage_change"], f"coverage of LF {name}{status}"))
        if "votes_shift" in lf:
            out.append(("lf_votes", lf["votes_shift"], f"class distribution of LF {name}'s votes"))
    out.append(("conflict_rate", changes["conflict_rate"]["change"], "conflict rate"))
    if "label_shift" in changes:
        out.append(("label_shift", changes["label_shift"], "label distribution"))
        out.append(("mean_confidence", changes["mean_confidence"]["change"], "mean confidence"))
    return out


def metrics(doc: dict, prefix: str = "") -> dict[str, float]:
    """Flat MLflow metrics of a drift section (``<prefix>drift.*``; a task's: ``<task>.``)."""
    changes = doc.get("changes") or {}
    out: dict[str, float] = {"drift.warnings": float(len(doc["warnings"])), "drift.failures": float(len(doc["failures"]))}
    if "conflict_rate" in changes:
        out["drift.conflict_rate_change"] = float(changes["conflict_rate"]["change"])
    if "label_shift" in changes:
        out["drift.label_shift"] = float(changes["label_shift"])
        out["drift.mean_confidence_change"] = float(changes["mean_confidence"]["change"])
    for name, lf in (changes.get("lfs") or {}).items():
        if "coverage_change" in lf:
            out[f"drift.lf_coverage_change.{name}"] = float(lf["coverage_change"])
        if "votes_shift" in lf:
            out[f"drift.lf_votes_shift.{name}"] = float(lf["votes_shift"])
    return {prefix + key: value for key, value in out.items()}


def enforce(doc: dict, run_id: str) -> None:
    """Log the warnings; raise :class:`DriftError` (one line) for the first failure."""
    for w in doc["warnings"]:
        log.warning("drift: %s moved by %+.4f since run %s (above %s = %g)", w["what"], w["change"],
                    doc["previous_run"], w["setting"], w["threshold"])
    if doc["failures"]:
        f = doc["failures"][0]
        more = f" (and {len(doc['failures']) - 1} more)" if len(doc["failures"]) > 1 else ""
        raise DriftError(
            f"drift: the {f['what']} moved by {f['change']:+.4f} since run {doc['previous_run']}, more than "
            f"{f['setting']} = {f['threshold']:g}{more}; run {run_id} published no labels. Check the change "
            f"(drift.json in the run folder), then raise {f['setting']} or set it to null to accept it"
        )
