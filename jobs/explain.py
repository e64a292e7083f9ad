"""Explain job: why one row got its label (``lakelabel explain --row-id ID``).

For the labels of one run (default: the latest labels), reads the row's label, the votes it came
from (the votes table at the version the labels name), the source row (a Delta source at the
version the labels name) and the fitted label model, and returns each LF's vote with its version
(and error, if it raised), the model's weight for each vote, each vote's contribution to every
class's log-odds, the class prior, the probabilities and the label, with the lineage. For the
precision and confusion models ``softmax(log_prior + sum of contributions) == probabilities``
(:mod:`labelmodel.explain`). Only the row's own rows reach the driver.

The notebooks call :func:`explain_row` (through :mod:`jobs.notebook`); the command prints
:func:`format_text`, or the JSON document with ``--json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegralType, StringType

from jobs import delta_io
from jobs.apply_record import VOTES_META_KEY, ApplyResult
from jobs.changes.runs import find_run, label_runs
from jobs.delta_io.sources import load_source
from jobs.fit_label_model import MLFLOW_SCHEMES, model_from_mlflow, model_versions, scored_as_before
from jobs.runtime import command, tracking
from jobs.runtime.config import PipelineConfig
from jobs.runtime.exits import few_names
from jobs.task_views import add_task_option, one_task, task_labels_lineage, view_labels
from labelmodel import LabelModel
from labelmodel.explain import softmax
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)

#: Largest difference allowed between the labels table's probabilities and the model's recomputation.
TOLERANCE = 1e-9


def _key(row_id: Any, data_type: Any, table: str) -> Any:
    """``row_id`` as a value of the table's row id type (the command line gives strings)."""
    if isinstance(data_type, IntegralType) and not isinstance(row_id, (int, np.integer)):
        try:
            return int(str(row_id))
        except ValueError:
            raise ConfigError(f"row id {row_id!r} is not an integer, but the row ids of {table} are "
                              f"{data_type.simpleString()}; pass an id of the source's id column") from None
    if isinstance(data_type, StringType) and isinstance(row_id, (int, np.integer)) and not isinstance(row_id, bool):
        return str(row_id)  # compared as a string: not in the labels, or found, instead of Spark's cast error
    return row_id


def _plain(value: Any) -> Any:
    """``value`` as JSON's Python types: numpy's scalars (``np.float64`` and ``np.str_`` are ``float`` and ``str``
    subclasses, shown as ``np.float64(0.9)`` in a notebook) become the built-in ones, NaN and infinities None."""
    if value is None:
        return value
    for plain in (bool, int, str):
        if isinstance(value, plain):
            return plain(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):
        return _plain(value.item())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def find_model(cfg: PipelineConfig, location: str | None, version: str | None,
               run_id: str | None = None) -> tuple[Any, str]:
    """The fitted label model the labels name: its local file, else the run folder whose fit has ``version``
    (``run_id``'s, the run that wrote the labels, first: other runs may have fitted the same model), else the
    MLflow model ``location`` names (a later ``lakelabel fit --run-id`` of that run replaced its folder's file)."""
    replaced = None
    if location and Path(location).is_file():
        model = LabelModel.load(location)
        if version is None or version in model_versions(model, location):
            return model, location
        replaced = location  # a later fit of the same run id wrote over it: look for the version elsewhere
    root = cfg.lakehouse_path / "_lakelabel" / "runs"
    fits = [*sorted(root.glob("*/fit.json")), *sorted(root.glob("*/tasks/*/fit.json"))] if root.is_dir() else []
    if run_id:
        fits.sort(key=lambda fit: root / run_id not in fit.parents)  # stable: that run's fits first
    for fit in fits:  # a run's, then each task's of a multi-task run
        try:
            found = json.loads(fit.read_text()).get("model_version") == version
        except (OSError, ValueError):
            continue
        if found and (fit.parent / "label_model.json").is_file():
            path = fit.parent / "label_model.json"
            return LabelModel.load(str(path)), str(path)
    if location and (found := model_from_mlflow(cfg, location, version)) is not None:
        return found[0], str(found[1])
    if replaced:
        raise ConfigError(f"the label model {replaced} is no longer version {version}, which wrote these labels: a "
                          f"later fit of the same run id replaced it; rerun that run to publish labels from the model "
                          f"in its folder, or explain the labels of another run")
    store = "" if not (location and location.startswith(MLFLOW_SCHEMES)) else \
        f" nor in the MLflow store {tracking.tracking_uri(cfg)}{' (no such store)' if tracking.store_absent(cfg) else ''}"
    raise ConfigError(f"the label model {location!r} (version {version}) that wrote these labels is not in any run "
                      f"folder under {root}{store}; explain the labels of a run whose folder is kept")


def explain_row(spark: SparkSession, cfg: PipelineConfig, row_id: Any, *, run_id: str | None = None,
                task: str | None = None) -> dict[str, Any]:
    """Why ``row_id`` got its label in run ``run_id`` (default: the latest labels).

    ``task``: the task of a multi-task config whose label to explain (required for such a
    config); only its current labels (``run_id``, when given, must be the run that wrote them).

    Returns
    -------
    dict
        JSON-ready, keys ``row_id``, ``votes`` (one entry per LF: ``lf``, ``version``, ``vote``,
        ``vote_index``, ``error``, ``error_kind``, ``weight``, ``precision``), ``log_prior`` (class ->
        log prior), ``contributions`` (LF -> class -> log-odds), ``probabilities`` (class -> the
        labels table's probability), ``label`` (class name, None when unlabeled) and ``lineage``
        (``run_id``, tables and versions, the source row, the model, how the terms combine, and
        ``max_difference`` between the model's recomputation and the stored probabilities).
        ``lineage.source.changed_since_votes``: True when the row shown is the current one of a
        source that changed since the votes were written (a warning is logged), False when it is
        the row the LFs voted on, None when the votes table holds no apply record to compare with.

    Raises
    ------
    ConfigError
        An unknown run, a row id that is not in the labels, a model file that is gone.
    """
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    view = one_task(cfg, task, command="explain")
    if view is not None:
        cfg = view.cfg
        labels_path, version, written = task_labels_lineage(view, io)
        if run_id is not None and run_id != written.get("run_id"):
            raise ConfigError(f"run {run_id!r} did not write the current labels of task {view.name!r} (run "
                              f"{written.get('run_id')!r} did); drop --run-id to explain those")
        record, labels_run = None, written.get("run_id")
        labels = view_labels(spark, view, io, version)
    else:
        labels_path = cfg.table_path("labels")
        runs = label_runs(cfg)
        record = find_run(cfg, run_id, runs) if run_id else None
        if not io.table_exists(labels_path):
            raise ConfigError(f"no labels table at {labels_path}; run the pipeline first (`lakelabel run --config ...`)")
        version = record.labels_version if record else io.table_version(labels_path)
        if record is None:  # the latest run's labels, also after data-neutral commits (OPTIMIZE, properties)
            before = [r for r in runs if r.labels_version <= version]
            if before and (before[-1].labels_version == version
                           or io.unchanged_since(labels_path, before[-1].labels_version)):
                record = before[-1]
        labels_run = record.run_id if record else None
        labels = io.read_table(spark, labels_path, version=version)
    key = _key(row_id, labels.schema["row_id"].dataType, labels_path)
    found = labels.where(F.col("row_id") == F.lit(key)).limit(2).collect()
    if not found:
        raise ConfigError(f"row id {row_id!r} is not in the labels of run {labels_run or '?'} "
                          f"({labels_path} v{version}); pass an id of the source's {cfg.source.id_column!r} column")
    row = found[0].asDict(recursive=True)
    votes_path = record.votes_path if record else cfg.table_path("votes")
    votes_df = io.read_table(spark, votes_path, version=row["votes_version"])
    votes = {r["lf_name"]: r.asDict() for r in votes_df.where(F.col("row_id") == F.lit(key)).collect()}
    model, model_file = find_model(cfg, row["label_model"], row["label_model_version"], row.get("run_id"))
    names = list(model.lf_names or [])
    versions = dict(record.lf_versions) if record and record.lf_versions else {}
    try:
        applied: ApplyResult | None = ApplyResult.from_json(
            io.read_metadata_at(votes_path, int(row["votes_version"]))[VOTES_META_KEY])
    except Exception:  # noqa: BLE001 - no apply record there (an older table)
        applied = None
    if any(n not in versions and n not in votes for n in names):
        # The apply record of that votes version names every LF it ran, those that never voted too
        # (the votes table has no row of them); older tables without it: the versions the votes carry.
        if applied is not None:
            versions.update(applied.lf_versions)
        else:
            versions.update({r["lf_name"]: r["lf_version"]
                             for r in votes_df.select("lf_name", "lf_version").distinct().collect()})
    space = class_names(record, view, applied, row, model.cardinality)
    L = np.array([int(votes[n]["vote"]) if n in votes and votes[n]["vote"] is not None and votes[n]["vote"] >= 0
                  else -1 for n in names])
    e = model.explain(L)
    stored = np.asarray(row["probabilities"], dtype=float)
    recomputed = softmax(e.logits) if e.combine == "softmax" else e.probabilities
    difference = float(np.abs(recomputed - stored).max())
    earlier = scored_as_before(model, row["label_model_version"], model_file) if difference > TOLERANCE else None
    if earlier is not None:  # labels an older lakelabel scored: its terms, when they add up to them
        e_then = earlier.explain(L)
        then = softmax(e_then.logits) if e_then.combine == "softmax" else e_then.probabilities
        if float(np.abs(then - stored).max()) <= TOLERANCE:
            model, e, recomputed, difference = earlier, e_then, then, float(np.abs(then - stored).max())
    if difference > TOLERANCE:
        log.warning("explain: the stored probabilities of row %r differ from the model's by %.3g", row_id, difference)
    source_row, source_changed = _source_row(spark, cfg, io, key, row["source_version"], applied)
    if source_changed:
        log.warning("explain: source %s changed since the votes of run %s were written (votes %s v%s): the source row "
                    "shown is the current one, not the one the LFs voted on; rerun the pipeline (`lakelabel run`) to "
                    "explain the current data", row["source_table"], row["run_id"], votes_path, row["votes_version"])
    doc = {
        "row_id": _plain(row["row_id"]),
        **({"task": view.name} if view is not None else {}),
        "votes": [{"lf": n, "version": (votes.get(n) or {}).get("lf_version") or versions.get(n),
                   "vote": space[L[j]] if L[j] >= 0 else None, "vote_index": int(L[j]),
                   "error": (votes.get(n) or {}).get("error"), "error_kind": (votes.get(n) or {}).get("error_kind"),
                   "weight": _plain(e.weights[j]), "precision": _plain(e.precision[j])} for j, n in enumerate(names)],
        "log_prior": {c: float(e.log_prior[i]) for i, c in enumerate(space)},
        "contributions": {n: {c: float(e.contributions[j, i]) for i, c in enumerate(space)} for j, n in enumerate(names)},
        "probabilities": {c: float(stored[i]) for i, c in enumerate(space)},
        "label": row["label_name"],
        "lineage": {
            "run_id": row["run_id"],
            "labels": {"path": labels_path, "version": version},
            "votes": {"path": votes_path, "version": row["votes_version"]},
            "source": {"path": row["source_table"], "version": row["source_version"], "row": source_row,
                       "changed_since_votes": source_changed},
            "label_model": {"uri": row["label_model"], "version": row["label_model_version"],
                            # read from the MLflow store: its copy is deleted when the process exits
                            "file": f"{row['label_model']} (MLflow store {tracking.tracking_uri(cfg)})"
                                    if tracking.downloaded(model_file) else model_file,
                            "kind": model.params_.kind, "chosen": model.fit_info_.get("chosen"),
                            "combine": e.combine},
            "tie_break_policy": row.get("tie_break_policy"),
            "confidence": row["confidence"],
            "max_difference": difference,
        },
    }  # fmt: skip
    return _plain(doc)


def class_names(record: Any, view: Any, applied: ApplyResult | None, row: dict[str, Any], k: int) -> list[str]:
    """The class names of a row's labels: the run record's label space, the task's, else the apply record's of the
    votes (a run of the first release records none: its explain showed classes as 0, technical, 2, 3)."""
    for space in (record.label_space if record else None, view.task.label_space if view is not None else None,
                  applied.label_space if applied is not None else None):
        if space:
            return list(space)
    return _space_from(row, k)


def _space_from(row: dict[str, Any], k: int) -> list[str]:
    # Runs recorded before the label space was: the class index stands in for names it cannot see.
    names = [str(i) for i in range(k)]
    if row.get("label") is not None and row["label"] >= 0 and row.get("label_name"):
        names[row["label"]] = row["label_name"]
    return names


def _source_row(spark: SparkSession, cfg: PipelineConfig, io: Any, key: Any, version: int | None,
                applied: ApplyResult | None) -> tuple[dict | None, bool | None]:
    """The source row as the labels saw it: a Delta source at ``version``, other sources as they are now.

    Also whether the row shown may not be the one the LFs voted on: True when a source read as it
    is now (files, or a Delta source without a recorded version) no longer has the fingerprint the
    apply record (``applied``) holds; None when there is no record to compare with.
    """
    src_cfg = cfg.source
    if version is not None:
        src_cfg = dataclasses.replace(src_cfg, options={**src_cfg.options, "versionAsOf": str(version)})
    source = load_source(spark, src_cfg, io=io)
    rows = source.df.where(F.col(source.id_column) == F.lit(key)).limit(1).collect()
    if version is not None:
        changed: bool | None = False  # time travel: the row as of the run
    elif applied is None or not applied.source_fingerprint:
        changed = None
    else:
        changed = source.info.fingerprint != applied.source_fingerprint
    return (_plain(rows[0].asDict(recursive=True)) if rows else None), changed


# What the header calls each parameter kind (README "Label model"): users read the model's name,
# not the internal kind of its parameters.
_MODEL_NAMES = {"bump": "precision model", "table": "confusion model"}


def format_text(doc: dict[str, Any]) -> str:
    """The explanation for people: the source row, a table of votes and contributions, the sums."""
    classes = list(doc["probabilities"])
    width = max([len(v["lf"]) for v in doc["votes"]] + [12])
    lin = doc["lineage"]
    out = [f"row {doc['row_id']}: label {doc['label'] if doc['label'] is not None else '(unlabeled)'} "
           f"(run {lin['run_id']}, label model {lin['label_model']['version']}, "
           f"{_MODEL_NAMES.get(lin['label_model']['kind'], lin['label_model']['kind'])})"]
    source_row = lin["source"]["row"]
    if source_row:
        now = " (now; the source changed since the votes)" if lin["source"].get("changed_since_votes") else ""
        out.append(f"source{now}: " + ", ".join(f"{k}={_short(v)}" for k, v in source_row.items()))
    header = f"{'LF':<{width}} {'version':<12} {'vote':<10} {'weight':>7}  " + " ".join(f"{c[:10]:>10}" for c in classes)
    out += ["", header, "-" * len(header)]
    # An LF that abstained without an error and adds nothing is a row of zeros: at 300 LFs the table was 300 such rows
    # around the few that voted (a drill). They are named after it; the JSON (--json) keeps every LF.
    silent = [v["lf"] for v in doc["votes"] if v["vote"] is None and not v["error"]
              and not any(doc["contributions"][v["lf"]].values())]
    set_of_silent = set(silent)
    for v in (v for v in doc["votes"] if v["lf"] not in set_of_silent):
        vote = v["vote"] if v["vote"] is not None else ("error" if v["error"] else "-")
        weight = f"{v['weight']:7.3f}" if v["weight"] is not None else " " * 7
        contrib = " ".join(f"{doc['contributions'][v['lf']][c]:10.3f}" for c in classes)
        out.append(f"{v['lf']:<{width}} {str(v['version'])[:12]:<12} {vote[:10]:<10} {weight}  {contrib}")
        if v["error"]:
            out.append(f"{'':<{width}} error: {v['error']}")
    if silent:
        out.append(f"{len(silent)} LF(s) abstained and add nothing: {few_names(silent)}")
    out.append(f"{'class prior (log)':<{width}} {'':<12} {'':<10} {'':>7}  "
               + " ".join(f"{doc['log_prior'][c]:10.3f}" for c in classes))
    out.append(f"{'probability':<{width}} {'':<12} {'':<10} {'':>7}  "
               + " ".join(f"{doc['probabilities'][c]:10.4f}" for c in classes))
    lm = lin["label_model"]
    how = ("softmax of the prior plus the contributions" if lm["combine"] == "softmax"
           else "majority vote: the classes with the most votes share the probability")
    source_version = f"v{lin['source']['version']}" if lin["source"]["version"] is not None else "(files)"
    out += ["", f"probabilities = {how}",
            f"lineage: source {lin['source']['path']} {source_version}, votes {lin['votes']['path']} "
            f"v{lin['votes']['version']}, labels {lin['labels']['path']} v{lin['labels']['version']}, model {lm['file']}"]
    return "\n".join(out)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str):  # a cut string keeps its closing quote: 'The search is bro...'
        return repr(value[: limit - 6])[:-1] + "..." + text[-1]
    return text[: limit - 3] + "..."


def run(spark: SparkSession, cfg: PipelineConfig, *, row_id: Any, run_id: str | None = None,
        as_json: bool = False, task: str | None = None) -> dict[str, Any]:  # fmt: skip
    """``lakelabel explain``: print the explanation (text, or JSON with ``as_json``) and return it as the summary."""
    doc = explain_row(spark, cfg, row_id, run_id=run_id, task=task)
    print(json.dumps(doc, indent=2) if as_json else format_text(doc))
    return {"run_id": doc["lineage"]["run_id"], "stage": "explain", "status": "succeeded", "explanation": doc}


def _options(p: Any) -> None:
    p.add_argument("--row-id", required=True, help="the row to explain: a value of the source's id column")
    p.add_argument("--json", dest="as_json", action="store_true", help="print the JSON document instead of text")
    add_task_option(p, every=False)


COMMAND = command.Command(
    name="explain", help="why one row got its label: votes, weights, per-class contributions, prior, lineage "
                         "(--run-id: whose labels; default the latest)",
    new_run_id=False, add_arguments=_options, precheck=lambda args, cfg: one_task(cfg, args.task, command="explain"),
    run=lambda args, cfg, run_id, spark: run(spark, cfg, row_id=args.row_id, run_id=run_id, as_json=args.as_json,
                                             task=args.task),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
