"""Fit job: the label model, fitted on the driver from the aggregated statistics.

No row-level data reaches this stage: its input is a :class:`labelmodel.SufficientStats`
(and, with a gold column, counts per vote pattern and gold class used only for metrics).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jobs.runtime.config import PipelineConfig
from jobs.runtime import command
from jobs.stages import Outcome, finish, votes_table
from jobs.runtime.metrics import gold_metrics, lf_accuracies
from jobs.runtime.runs import RUNNING_FILE, clear_failed, failed_run, latest_run_with, mark_done, run_dir, write_json
from labelmodel import ConvergenceWarning, LabelModel, MajorityLabelVoter
from labelmodel.stats import SufficientStats
from lf_library.errors import ConfigError, InputDataError, TransientError

log = logging.getLogger(__name__)

MODEL_FILE = "label_model.json"
MLFLOW_SCHEMES = ("runs:", "models:", "mlflow-artifacts:")  # a model URI the labels name in MLflow's store
STATS_FILE = "stats.npz"
# The votes (table, version, LF versions) the statistics were aggregated from.
AGGREGATED_FROM_FILE = "aggregated_from.json"
GOLD_FILE = "gold_counts.npy"
GOLD_SETS_FILE = "gold_sets.npz"


@dataclass(frozen=True)
class FitResult:
    model: Any
    model_path: str
    model_version: str
    metrics: dict[str, float]
    lf_table: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # :func:`label_model_settings` of the fit (None: a model saved before they were recorded).
    settings: dict[str, Any] | None = None


def make_label_model(cfg: PipelineConfig, cardinality: int):
    """The configured label model (see ``label_model:`` in the configuration reference).

    Raises ConfigError (exit 2) naming ``label_model`` when the settings do not fit the task (a
    ``class_balance`` of another length than the label space, say).
    """
    try:
        return LabelModel.from_config(cfg.label_model, cardinality=cardinality)
    except ValueError as err:
        raise ConfigError(f"label_model: {err}") from None


def model_version(model) -> str:
    """Content hash of the fitted parameters: equal parameters, equal version."""
    return _content_version(model.to_dict())


def model_from_mlflow(cfg: PipelineConfig, uri: str, version: str | None) -> tuple[Any, Path] | None:
    """The label model the MLflow model ``uri`` holds in the config's store (as fit logged it) and its file, when it
    is ``version`` (any, for None); None when the store is not there (none is created by asking) or does not hold
    it: explain and verify look there when a later fit of the run replaced its folder's file.

    Raises
    ------
    TransientError
        A tracking server that does not answer (one try, not MLflow's minutes of retries).
    InputDataError
        The store cannot be read otherwise.
    """
    from jobs.runtime import tracking
    from jobs.runtime.faults import tracking_reason

    if not uri.startswith(MLFLOW_SCHEMES) or tracking.store_absent(cfg):
        return None
    store = tracking.tracking_uri(cfg)
    try:
        with tracking.env_defaults(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="20"):
            files = sorted(tracking.download_artifacts(cfg, uri).rglob(MODEL_FILE))
    except Exception as exc:  # noqa: BLE001 - gone from the store, or the store cannot be read
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST" or "No such artifact" in str(exc):
            log.debug("MLflow model %s is not in %s: %s", uri, store, exc)
            return None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        error = TransientError if tracking_reason(exc, server=store) else InputDataError  # a server that is down
        raise error(f"the MLflow store {store} cannot be read ({first[:200]}), so the label model {uri} "
                    f"(version {version}) the labels name was not found; start the tracking server, or point "
                    f"MLFLOW_TRACKING_URI or mlflow.tracking_uri at the store fit logged to") from None
    for path in files:
        model = LabelModel.load(str(path))
        if version is None or version in model_versions(model, path):
            return model, path
    return None


def model_versions(model, path: str | Path) -> tuple[str, str]:
    """The versions a model loaded from ``path`` may have been written under: :func:`model_version` of the loaded
    model, and the hash of the file's content as saved. They differ for a file an older lakelabel wrote: it loads with
    the label model settings added since at their defaults, which change the loaded model's hash though its parameters
    are those that wrote the labels (an upgrade drill: verify of a first-release run said the model was replaced)."""
    from labelmodel._persist import read_model

    return model_version(model), _content_version(read_model(path))


def scored_as_before(model, version: str | None, path: str | Path) -> Any | None:
    """``model`` (loaded from ``path``) as a lakelabel before 2026-12-02 scored with it, for a model file saved by one
    (its settings lack ``label_unvoted``, and ``version``, the labels' model version, is not the loaded model's hash:
    see :func:`model_versions`); None otherwise. A precision model scored every row against ``log_prior`` then (since
    07f0532, rows with votes against ``train_log_prior``), and rows no LF voted on got the prior's class (since
    4796ea5, -1 unless ``label_unvoted``). An upgrade drill: a first-release run's labels differed from their rebuild on
    every row (2,192 labels, 17,808 probabilities of 20,000), and explain's terms did not add up to them."""
    from labelmodel._persist import read_model

    params = model.params_
    if model_version(model) == version or "label_unvoted" in read_model(path).get("config", {}):
        return None
    saved = model.to_dict()
    saved["config"]["label_unvoted"] = True
    if params.kind == "bump":
        saved["params"]["train_log_prior"] = None
    return LabelModel.from_dict(saved)


def _content_version(saved: dict[str, Any]) -> str:
    blob = json.dumps(saved, sort_keys=True, default=_plain).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


def save_aggregate(cfg: PipelineConfig, run_id: str, agg: Any, applied: Any) -> Path:
    """Save an :class:`~jobs.aggregate.AggregateResult` (``stats``, ``gold_counts``) for ``fit``,
    with the votes it was computed from (``applied``: their table, version and LF versions)."""
    folder = run_dir(cfg.lakehouse, run_id)
    (folder / AGGREGATED_FROM_FILE).unlink(missing_ok=True)  # written last: it vouches for the files below
    agg.stats.to_npz(str(folder / STATS_FILE))
    if agg.gold_counts is not None:
        np.save(folder / GOLD_FILE, agg.gold_counts, allow_pickle=False)
    if agg.gold_sets is not None:
        agg.gold_sets.to_npz(str(folder / GOLD_SETS_FILE))
    write_json(folder / AGGREGATED_FROM_FILE, {"votes_table": applied.votes_table,
                                               "votes_version": applied.votes_version,
                                               "lf_versions": dict(applied.lf_versions)})
    return folder


def load_gold_sets(cfg: PipelineConfig, run_id: str | None):
    """The gold table's dev/test matrices the aggregate stage saved for ``run_id`` (None if it had no gold table)."""
    from jobs.people.gold import GoldSets

    run_id = run_id or latest_run_with(cfg.lakehouse, STATS_FILE)
    path = run_dir(cfg.lakehouse, run_id, create=False) / GOLD_SETS_FILE if run_id else None
    return GoldSets.from_npz(str(path)) if path is not None and path.exists() else None


def stats_folder(cfg: PipelineConfig, run_id: str | None) -> tuple[str, Path]:
    """The run (default: the latest with statistics) and its folder; a ConfigError naming aggregate without."""
    run_id = run_id or latest_run_with(cfg.lakehouse, STATS_FILE)
    folder = run_dir(cfg.lakehouse, run_id, create=False) if run_id else None
    if folder is None or not (folder / STATS_FILE).exists():
        raise ConfigError(
            f"no aggregated statistics for run {run_id!r} under {cfg.lakehouse}; run `lakelabel aggregate "
            f"--run-id {run_id or 'RUN_ID'}` first"
        )
    return run_id, folder


def load_aggregate(cfg: PipelineConfig, run_id: str | None,
                   applied: Any = None) -> tuple[SufficientStats, np.ndarray | None]:
    """The statistics the aggregate stage saved for ``run_id`` (default: the latest run with some).

    ``applied`` (the votes table's apply record): the statistics must have been aggregated from
    those votes, else a :class:`ConfigError` says to aggregate again.
    """
    run_id, folder = stats_folder(cfg, run_id)
    if applied is not None and (folder / AGGREGATED_FROM_FILE).exists():
        check_aggregated_from(json.loads((folder / AGGREGATED_FROM_FILE).read_text()), applied, run_id)
    stats = SufficientStats.from_npz(str(folder / STATS_FILE))
    gold = np.load(folder / GOLD_FILE, allow_pickle=False) if (folder / GOLD_FILE).exists() else None
    return stats, gold


def check_aggregated_from(record: dict[str, Any], applied: Any, run_id: str) -> None:
    """Statistics aggregated from the votes ``record`` names are those of the votes ``applied`` describes."""
    from jobs import delta_io
    from jobs.apply_record import lf_differences

    again = f"run `lakelabel aggregate --run-id {run_id}` again (or `lakelabel run`)"
    if record["votes_table"] != applied.votes_table:
        raise ConfigError(f"the statistics of run {run_id!r} were aggregated from the votes table "
                          f"{record['votes_table']}, not {applied.votes_table} (tables.votes); {again}")
    differ = lf_differences(record["lf_versions"], applied.lf_versions,
                            ("not in the statistics", "no longer in the votes", "edited since"))
    if differ:
        raise ConfigError(f"the statistics of run {run_id!r} were aggregated from votes of other LFs than the votes "
                          f"table {applied.votes_table} now holds ({'; '.join(differ)}); {again}")
    then, now = record["votes_version"], applied.votes_version
    if then != now and not delta_io.delta_io(None, "local").unchanged_since(applied.votes_table, then):
        raise ConfigError(f"the statistics of run {run_id!r} were aggregated from votes v{then}, and the votes table "
                          f"{applied.votes_table} has changed since (now v{now}); {again}")


def run(
    cfg: PipelineConfig,
    *,
    run_id: str,
    stats: SufficientStats,
    gold_counts: np.ndarray | None = None,
    lf_versions: dict[str, str] | None = None,
    gold_sets: Any = None,
    lf_info: dict[str, dict[str, str]] | None = None,
    gold_table: str | None = None,
    label_space: Sequence[str] | None = None,
    tag: bool = False,
) -> FitResult:
    """Fit the configured label model (and majority vote, for comparison) from ``stats``.

    ``gold_sets`` (:class:`jobs.people.gold.GoldSets`): with ``label_model.use_dev_labels``, the
    dev rows are the model's ``L_dev``/``Y_dev``; the test rows are only scored (``gold_test_*``).
    ``lf_info``: LF name -> ``{"kind": ..., "origin": ...}``, copied into the LF table.
    ``gold_table``: the gold table ``gold_sets`` came from, named by the warnings (default: ``tables.gold``'s path;
    a run of several tasks passes each task's own, ``<tables.gold>_<task>``). ``label_space``: the class names the
    warnings use (default: class ids). ``tag``: a multi_label tag task, whose fixed two classes need no LF for
    "not <tag>" (no warning for it).
    """
    started = time.perf_counter()
    k = stats.cardinality
    model = make_label_model(cfg, k)
    dev = gold_sets.dev if gold_sets is not None and cfg.gold.use_dev_labels else None
    if cfg.gold.use_dev_labels and dev is None:
        log.warning("fit: label_model.use_dev_labels is on but the gold table %s has no dev rows; fitting without "
                    "them", gold_table or cfg.table_path("gold"))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", ConvergenceWarning)  # said as the job's log line below, not Python's
        if dev is not None:
            model.fit_from_stats(stats, L_dev=dev[0], Y_dev=dev[1])
            used = str(getattr(model, "fit_info_", {}).get("dev_use", ""))
            if used.startswith("unused ("):
                log.warning("fit: label_model.use_dev_labels is on, but the gold dev labels of %s were not used: %s",
                            gold_table or cfg.table_path("gold"), used[len("unused ("):-1])
        else:
            model.fit_from_stats(stats)
    for warning in said:
        if issubclass(warning.category, ConvergenceWarning):
            log.warning("fit: %s", warning.message)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    fit_seconds = time.perf_counter() - started
    mv = MajorityLabelVoter(cardinality=k)
    mv.fit_from_stats(stats)

    n = max(stats.n_rows, 1)
    metrics: dict[str, float] = {
        "rows": stats.n_rows,
        "lfs": stats.n_lfs,
        "coverage": stats.n_covered / n,
        "overlap_rate": stats.n_overlapped / n,
        "conflict_rate": stats.n_conflicted / n,
        "fit_seconds": fit_seconds,
    }
    if stats.patterns is not None:
        metrics["patterns"] = len(stats.patterns)
    acc = np.asarray(model.estimated_accuracies(), dtype=float)
    gold_acc = support = None
    if gold_counts is not None and stats.patterns is not None:
        metrics["gold_rows"] = int(gold_counts.sum())
        metrics.update(gold_metrics(model, mv, stats.patterns, gold_counts))
        gold_acc, support = lf_accuracies(stats.patterns, gold_counts)
    if dev is not None:
        metrics["gold_dev_rows"] = len(dev[1])
    if gold_sets is not None and gold_sets.test is not None:
        L_test, Y_test = gold_sets.test
        patterns, inverse = np.unique(L_test, axis=0, return_inverse=True)
        counts = np.zeros((len(patterns), k), dtype=np.int64)
        np.add.at(counts, (inverse.ravel(), Y_test), 1)
        metrics["gold_test_rows"] = len(Y_test)
        metrics.update(gold_metrics(model, mv, patterns, counts, prefix="gold_test_"))

    votes = stats.class_vote_counts()
    silent = [c for c in range(k) if not votes[:, c].any()]
    # The model can give such a class only its prior: without a given class balance that favours it, it wins no voted
    # row (nor, without label_unvoted, any other). A tag task's "not <tag>" is such a class by design.
    lm_cfg = cfg.label_model
    if silent and stats.n_lfs and not (lm_cfg.label_unvoted or lm_cfg.class_balance is not None or tag):
        names = [repr(label_space[c]) if label_space is not None else str(c) for c in silent]
        one = len(silent) == 1
        log.warning("fit: no LF votes %s %s: no row gets %s (the label model learns a class only from votes for "
                    "it); add %s, or drop %s from the label space", "class" if one else "classes", ", ".join(names),
                    "that label" if one else "those labels", "an LF that votes it" if one else "LFs that vote them",
                    "it" if one else "them")
    lf_table = []
    for j, name in enumerate(stats.lf_names):
        row = {
            "lf": name,
            "version": (lf_versions or {}).get(name, ""),
            **(lf_info or {}).get(name, {}),
            "polarity": [int(c) for c in np.nonzero(votes[j])[0]],
            "coverage": float(stats.lf_coverage[j] / n),
            "overlaps": float(stats.lf_overlap[j] / n),
            "conflicts": float(stats.lf_conflict[j] / n),
            "estimated_accuracy": float(acc[j]),
        }
        if gold_acc is not None:
            row["empirical_accuracy"] = None if np.isnan(gold_acc[j]) else float(gold_acc[j])
            row["gold_support"] = int(support[j])
        lf_table.append(row)

    folder = run_dir(cfg.lakehouse, run_id)
    model_path = folder / MODEL_FILE
    model.save(str(model_path))
    clear_failed(cfg.lakehouse, run_id)  # this model replaces a failed attempt's
    version = model_version(model)
    write_json(folder / "fit.json", {"metrics": metrics, "lfs": lf_table, "model_version": version,
                                     "label_model_settings": label_model_settings(cfg)})
    seconds = time.perf_counter() - started
    scores = [f"accuracy vs gold {metrics['accuracy']:.4f} (majority vote {metrics['mv_accuracy']:.4f})"
              ] if "accuracy" in metrics else []
    if "gold_test_accuracy" in metrics:
        scores.append(f"vs the gold table's {metrics['gold_test_rows']} test labels {metrics['gold_test_accuracy']:.4f} "
                      f"(majority vote {metrics['gold_test_mv_accuracy']:.4f})")
    log.info("fit: %s in %.3fs%s", type(model).__name__, fit_seconds, "; " + "; ".join(scores) if scores else "")
    return FitResult(model, str(model_path), version, metrics, lf_table, seconds, label_model_settings(cfg))


def label_model_settings(cfg: PipelineConfig) -> dict[str, Any]:
    """The settings a fit depends on besides the statistics, as ``fit.json`` stores them (plain JSON):
    ``label_model`` and the dev-label switch."""
    return json.loads(json.dumps({"label_model": cfg.to_dict().get("label_model"),
                                  "use_dev_labels": cfg.gold.use_dev_labels}, default=str))


def load_fit(cfg: PipelineConfig, run_id: str | None) -> FitResult:
    """The model a previous fit stage saved for ``run_id`` (default: the latest run)."""
    run_id = run_id or latest_run_with(cfg.lakehouse, MODEL_FILE)
    folder = run_dir(cfg.lakehouse, run_id, create=False) if run_id else None
    if folder is None or not (folder / MODEL_FILE).exists():
        where = f"for run {run_id!r}" if run_id else f"under {cfg.lakehouse}"
        raise ConfigError(f"no fitted label model {where}; run `lakelabel fit --run-id {run_id or 'RUN_ID'}` first")
    model = LabelModel.load(str(folder / MODEL_FILE))
    info = json.loads((folder / "fit.json").read_text())
    return FitResult(model, str(folder / MODEL_FILE), info["model_version"], info["metrics"], info["lfs"],
                     settings=info.get("label_model_settings"))


def stage(cfg: PipelineConfig, run_id: str, stats_run_id: str | None) -> Outcome:
    """The fit stage as a job (driver only, no Spark): the model saved under the run folder."""
    from jobs.apply_record import check_lfs_unchanged, lf_info, load_apply_result
    from jobs.runtime.lf_sources import build_registry  # fit refuses a config with several tasks
    from jobs.runtime import tracking

    stats_folder(cfg, stats_run_id)  # names the missing stage first
    running = failed_run(cfg.lakehouse, run_id)
    if running is not None and running["status"] in ("running", "unfinished"):  # its folder is another process's
        raise ConfigError(f"run {run_id!r} {running['ended']} ({running['reason']}): fitting it now would replace the "
                          f"model it is checking; wait for it to end, or fit under another --run-id (if it is gone "
                          f"for good, delete {run_dir(cfg.lakehouse, run_id, create=False) / RUNNING_FILE})")
    applied = load_apply_result(cfg)
    check_lfs_unchanged(applied, build_registry(cfg))
    stats, gold = load_aggregate(cfg, stats_run_id, applied)  # aggregated from these votes
    gold_sets = load_gold_sets(cfg, stats_run_id)
    fitted = run(cfg, run_id=run_id, stats=stats, gold_counts=gold, lf_versions=applied.lf_versions,
                 gold_sets=gold_sets, lf_info=lf_info(applied), label_space=applied.label_space)
    mark_done(cfg.lakehouse, run_id)  # fitted on purpose: a killed run's model is replaced, the run a candidate
    model = {"path": fitted.model_path, "version": fitted.model_version, "mlflow_uri": None,
             "method": cfg.label_model.method}  # fmt: skip

    def log() -> None:
        # The write stage reads this URI back from fit_summary.json for the labels' lineage.
        model["mlflow_uri"] = tracking.log_fit(cfg, fitted, list(applied.lf_names), list(applied.label_space))

    return Outcome(
        skipped=False,
        seconds=fitted.seconds,
        tables=votes_table(applied),
        counts={"rows": stats.n_rows, "lfs": len(applied.lfs)},
        details={"label_model": model, "metrics": fitted.metrics},
        log=log,
    )


COMMAND = command.Command(
    logs_to_mlflow=True,
    name="fit", help="fit the label model from the statistics (driver only, no Spark)", needs_spark=False,
    stage_summary=True,
    run=lambda args, cfg, run_id, spark: finish("fit", cfg, run_id, stage(cfg, run_id, args.run_id)),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
