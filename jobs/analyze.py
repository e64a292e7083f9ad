"""Analyze job: where the LFs go wrong, as one JSON document per run (``lakelabel analyze``).

Reads the labels of one run, the votes they came from, the fitted label model, the source and
its gold column, plus the slicing functions listed under ``slices.modules``. Scores every row
once on Spark (:mod:`jobs.analysis.rows`), aggregates per LF, LF pair, class, slice and
confidence bucket (:mod:`jobs.analysis.stats`), and collects up to ``analysis.examples`` rows per
error bucket (:mod:`jobs.analysis.buckets`). The document is written to
``<lakehouse>/_lakelabel/runs/<run id>/analysis.json``, logged to the run's MLflow run and
returned; ``lakelabel report`` draws it. Nothing row-level reaches the driver but the examples.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict
from collections.abc import Callable, Sequence
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from jobs import apply_lfs, delta_io
from jobs.delta_io.sources import load_source
from jobs.runtime import package, signals, tracking
from jobs.runtime.lf_sources import lf_table_fingerprints
from jobs.runtime.config import PipelineConfig
from jobs.runtime.progress import Progress
from jobs.runtime.runs import run_dir, write_json
from jobs.runtime.session import clear_description, describe
from jobs.runtime import command
from jobs.task_views import TaskView, add_task_option, task_file, task_views
from jobs.analysis import buckets
from jobs.analysis import inputs as analysis_inputs
from jobs.analysis import rows as analysis_rows
from jobs.analysis import stats
from jobs.analysis import terms
from jobs.analysis.evaluation import evaluation_section
from lf_library.errors import ConfigError, LFConfigError
from lf_library.slicing import load_slices

log = logging.getLogger(__name__)

ANALYSIS_FILE = "analysis.json"
# Raised when the document gains what a report reads, so a report does not reuse an older analysis.json without
# it (2: the evaluation source's confusion and per-class numbers; 3: the keyword and lexicon LFs' term counts).
SCHEMA = "lakelabel.analysis/3"


def analyze(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None = None,
            view: TaskView | None = None, verb: str = "analyze") -> dict[str, Any]:
    """Compute the analysis document of ``run_id`` (default: the run that wrote the latest labels).

    ``view``: one task of a multi-task config (:mod:`jobs.task_views`); the document then has its
    name under ``task`` and reads that task's labels, LFs and gold.

    Returns
    -------
    dict
        JSON-ready; keys ``run_id``, ``tables``, ``label_space``, ``totals``, ``classes``, ``confusion``,
        ``lfs``, ``pairs``, ``slices``, ``coverage_gaps``, ``confidence_histogram``, ``terms`` (per-term counts
        of the keyword and lexicon LFs, :mod:`jobs.analysis.terms`; None with ``analysis.top_terms: 0``),
        ``buckets``, ``notes``,
        ``label_diff`` (the run's ``lakelabel diff`` summary, or None), ``inputs_key`` (:func:`inputs_key`).

    Raises
    ------
    ConfigError
        No labels for the run, a slice module that fails to import, a bad ``analysis`` setting.
    InputDataError
        A slicing function that raises or returns a non-boolean.
    """
    return _analyze(spark, cfg, run_id=run_id, view=view, verb=verb)[0]


def _analyze(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None, view: TaskView | None,
             reuse: bool = False, verb: str = "analyze") -> tuple[dict[str, Any], bool]:
    """:func:`analyze`, and whether the document is the run folder's ``analysis.json``, reused.

    ``reuse``: return that file instead of computing when its ``inputs_key`` is the current one.
    """
    started = time.perf_counter()
    a = cfg.analysis
    if a.examples < 0 or a.top_pairs < 1 or a.lf_buckets < 0 or a.top_terms < 0:
        raise ConfigError(f"analysis.examples ({a.examples}), analysis.lf_buckets ({a.lf_buckets}) and "
                          f"analysis.top_terms ({a.top_terms}) must be >= 0 and analysis.top_pairs "
                          f"({a.top_pairs}) >= 1")
    slices = load_slices(cfg.slices.modules)
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    found = analysis_inputs.resolve(spark, cfg, run_id, io, view=view, verb=verb)
    if view is not None:
        cfg = view.cfg
    term_lfs = _configured_lfs(cfg, view) if a.top_terms else None
    key = inputs_key(spark, cfg, found, slices, io, view, term_lfs)
    if reuse:
        current = current_document(cfg, found.run_id, view, key)
        if current is not None:
            return current, True
    space, names = list(found.label_space), list(found.lf_names)
    step = _Steps(started)
    describe(spark, "analyze", f"labels of run {found.run_id}")
    rows_done = spark.sparkContext.accumulator(0)
    scored = analysis_rows.scored_rows(spark, found, slices, a.coverage_by, io, rows_done=rows_done).persist(
        StorageLevel.MEMORY_AND_DISK)
    patterns = None
    try:
        with Progress(spark, "analyze", found.applied.n_rows, rows_done):
            groups = stats.group_counts(scored, len(space), len(slices))
            step("scored every row and counted per slice, gold class and coverage")
            analysis_rows.check_slice_problems(scored, slices)
            overview = stats.summarize_groups(groups, space, [s.name for s in slices])
            patterns = stats.pattern_counts(scored).persist()
            applied = found.applied
            lf_rows, pairs, class_cov = stats.lf_statistics(
                patterns, names, space, versions=applied.lf_versions, kinds={lf.name: lf.kind for lf in applied.lfs},
                errors={lf.name: lf.errors for lf in applied.lfs}, model=found.model.model if found.model else None,
                top_pairs=a.top_pairs, max_patterns=cfg.aggregate.max_patterns)
            step("per-LF and LF-pair statistics")
            gaps = stats.coverage_gaps(scored, a.coverage_by)
            histogram = stats.confidence_histogram(scored)
            error_buckets = buckets.error_buckets(scored, found, lf_rows, examples=a.examples, lf_buckets=a.lf_buckets,
                                                  io=io)
            step("coverage gaps, confidence histogram and error buckets")
            term_section = _terms(spark, cfg, found, term_lfs, scored) if term_lfs is not None else None
            if term_section and term_section["lfs"]:
                step("term counts of the keyword and lexicon LFs")
    finally:
        scored.unpersist()
        if patterns is not None:
            patterns.unpersist()
        clear_description(spark)
    evaluation = None
    if cfg.evaluation is not None and cfg.evaluation.gold_column:
        evaluation = evaluation_section(spark, cfg, names, found.model.model if found.model else None, io,
                                        task=view.task if view is not None else None,
                                        lf_versions=found.applied.lf_versions)
        if "note" in evaluation:
            log.warning("analyze: %s", evaluation["note"])
        else:
            step("LFs and label model scored on the evaluation source")
        if not found.has_gold and "lfs" in evaluation:  # the LF table's gold is the held-out rows'
            for row, ev in zip(lf_rows, evaluation["lfs"]):
                row.update({key: ev[key] for key in ("gold_votes", "gold_correct", "gold_accuracy",
                                                     "gold_accuracy_ci95")})
    classes = overview["classes"]
    per_class = []
    for c, name in enumerate(space):
        per_class.append({"class": name, "lf_coverage": class_cov.get(c, 0),
                          "lf_votes": sum(r["votes_per_class"][name] for r in lf_rows),
                          "lm_labels": classes["lm_hard"][name], "mv_labels": classes["mv_hard"][name],
                          "lm_expected": classes["lm_expected"][name], "gold": classes["gold"].get(name)})
    totals = overview["totals"]
    model = found.model
    doc = {
        "schema": SCHEMA,
        "run_id": found.run_id,
        "task": found.task,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tables": {"labels": {"path": found.labels_path, "version": found.labels_version},
                   "votes": {"path": found.votes_path, "version": found.votes_version},
                   "source": {"path": found.source.info.path, "version": found.source.info.version}},
        "label_space": space,
        # A tag task's gold is derived from its tag-list column: name that column.
        "gold_column": view.task.gold_column if view is not None else found.source.gold_column,
        # Where the LF table's gold accuracies come from: the source's gold column, the evaluation source, or none.
        "lf_gold_from": ("source" if found.source.gold_column else "gold_table") if found.has_gold
        else "evaluation" if evaluation and "lfs" in evaluation else None,
        # Rows of the gold table's test split (they take precedence over the source's gold column).
        "gold_table_test_rows": found.gold_test_rows,
        "evaluation": evaluation,
        "tie_break_policy": found.tie_break_policy,
        "label_model": {"version": model.model_version, "path": model.model_path,
                        "kind": type(model.model).__name__} if model else None,
        "totals": totals,
        "classes": per_class,
        "confusion": overview["confusion"],
        "lfs": lf_rows,
        "pairs": pairs,
        "slices": [{"version": s.version, "kind": s.kind, **row} for s, row in zip(slices, overview["slices"])],
        "coverage_gaps": {"uncovered": totals["rows"] - totals["covered"],
                          "by_slice": [{"slice": s["name"], "rows": s["size"], "uncovered": s["uncovered"]}
                                       for s in overview["slices"]],
                          "by_column": gaps},
        "confidence_histogram": histogram,
        "terms": term_section,
        "buckets": error_buckets,
        "notes": list(found.notes),
        "label_diff": _label_diff(cfg, found.run_id) if view is None else None,  # lakelabel diff reads one task
        "seconds": round(time.perf_counter() - started, 3),
        "inputs_key": key,
    }
    return json.loads(json.dumps(doc, default=_plain)), False  # plain JSON types only (numpy ints, NaN -> null)


def _configured_lfs(cfg: PipelineConfig, view: TaskView | None) -> list[Any] | str:
    """The configured LFs (the task's), or why they could not be loaded: analyze reads the run's tables, and only
    the term counts need the LF modules."""
    try:
        registry = view.task.registry if view is not None else apply_lfs.build_registry(cfg)
    except (ConfigError, LFConfigError) as err:
        return f"the LFs could not be loaded ({err})"
    return [registry[name] for name in registry.names]


def _terms(spark: SparkSession, cfg: PipelineConfig, found: analysis_inputs.AnalysisInputs,
           configured: list[Any] | str, scored: Any) -> dict[str, Any]:
    """The document's ``terms`` section (:mod:`jobs.analysis.terms`) for the run's keyword and lexicon LFs."""
    if isinstance(configured, str):
        return {"lfs": [], "skipped": [{"lf": "*", "reason": configured}]}
    lfs, skipped = terms.term_lfs(configured, found.applied.lf_versions)
    return terms.terms_section(spark, lfs, skipped, found.source.df, found.source.id_column, scored,
                               found.label_space, listed=cfg.analysis.top_terms)


def inputs_key(spark: SparkSession, cfg: PipelineConfig, found: analysis_inputs.AnalysisInputs, slices: Sequence[Any],
               io: Any, view: TaskView | None, term_lfs: list[Any] | str | None = None) -> str:
    """A hash of everything an analysis document is computed from (``cfg``: the task's, for a task).

    The tables at their versions (labels, votes, source, gold), the source settings (its gold
    column), the label model, the ``analysis`` settings, the slices' code, the run's ``lakelabel
    diff``, ``term_lfs``' versions (the configured LFs: the term counts are theirs), and with an ``evaluation:`` source its
    settings, data and LF tables. ``lakelabel report`` reuses ``analysis.json`` when its key is this. The lakelabel
    version stands for the analysis code: a development checkout's edits to it are not seen.
    """
    gold = cfg.table_path("gold")
    model = found.model
    parts: dict[str, Any] = {
        "schema": SCHEMA, "lakelabel": package.version(), "run_id": found.run_id, "task": found.task,
        "labels": [found.labels_path, found.labels_version], "votes": [found.votes_path, found.votes_version],
        "lfs": list(found.lf_names), "space": list(found.label_space), "coded": found.codes_match,
        "gold_test_rows": found.gold_test_rows,
        "source": [found.source.info.fingerprint, asdict(cfg.source), view.task.gold_column if view else None],
        "gold": [gold, io.table_version(gold) if io.table_exists(gold) else None],
        "model": [model.model_version, model.model_path] if model else None, "ties": found.tie_break_policy,
        "analysis": asdict(cfg.analysis), "slices": [[s.name, s.version] for s in slices],
        "diff": _label_diff(cfg, found.run_id) if view is None else None,
    }  # fmt: skip
    if term_lfs is not None:  # the term counts are those of the configured LFs (:func:`_configured_lfs`)
        parts["term_lfs"] = term_lfs if isinstance(term_lfs, str) else {lf.name: lf.version for lf in term_lfs}
    ev = cfg.evaluation
    if ev is not None and ev.gold_column:
        registry = view.task.registry if view is not None else apply_lfs.build_registry(cfg)
        source = load_source(spark, ev, role="evaluation", io=io)
        parts["evaluation"] = {"config": asdict(ev), "data": source.info.fingerprint, "lfs": registry.versions,
                               "order": list(registry.names),
                               "lf_tables": lf_table_fingerprints(source, registry.lfs),
                               "max_patterns": cfg.aggregate.max_patterns}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def current_document(cfg: PipelineConfig, run_id: str, view: TaskView | None, key: str) -> dict[str, Any] | None:
    """The run folder's analysis document when it was computed from inputs with ``key``, else None."""
    path = run_dir(cfg.lakehouse, run_id, create=False) / task_file(ANALYSIS_FILE, view)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or doc.get("inputs_key") != key:
        return None
    return doc


def _label_diff(cfg: PipelineConfig, run_id: str) -> dict[str, Any] | None:
    """The ``lakelabel diff`` of this run against an earlier one (``diff.json``), when one was made."""
    path = run_dir(cfg.lakehouse, run_id, create=False) / "diff.json"
    if not path.is_file():
        return None
    diff = json.loads(path.read_text())
    return {key: diff.get(key) for key in ("from_run", "to_run", "threshold", "counts", "transitions", "lfs")}


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class _Steps:
    """Logs each finished step with the time since the job started (progress for long runs)."""

    def __init__(self, started: float) -> None:
        self.started, self.n = started, 0

    def __call__(self, what: str) -> None:
        self.n += 1
        log.info("analyze %d: %s (%.1fs)", self.n, what, time.perf_counter() - self.started)


def log_to_run(cfg: PipelineConfig, run_id: str, action: Callable[[Any], None]) -> dict[str, Any]:
    """Run ``action(mlflow)`` in the MLflow run of lakelabel run ``run_id`` (the active one when it is that run).

    Returns the ``mlflow`` part of a summary (run id, tracking URI, experiment).
    """
    out = {"run_id": None, "tracking_uri": None, "experiment": cfg.mlflow.experiment}
    if not cfg.mlflow.enabled:
        return out
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.data.tags.get(tracking.RUN_TAG) == run_id:
        action(mlflow)
        return {**out, "run_id": active.info.run_id, "tracking_uri": tracking.tracking_uri(cfg)}
    attached = tracking.attach_run(cfg, run_id)
    status = "FAILED"
    try:
        action(mlflow)
        status = "FINISHED"
    except BaseException as err:
        status = "KILLED" if signals.stopped_by_signal(err) else "FAILED"  # SIGTERM, Ctrl-C: as a run's
        raise
    finally:
        tracking.end_run(cfg, status, failing=status != "FINISHED")
    return {**out, "run_id": attached.info.run_id, "tracking_uri": tracking.tracking_uri(cfg)}


def run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None = None,
        task: str | None = None) -> dict[str, Any]:
    """``lakelabel analyze``: write ``analysis.json`` in the run folder, log it to MLflow, return the summary.

    The summary has the stages' shape (``run_id``, ``stage``, ``status``, ``tables``, ``counts``,
    ``mlflow``, ``timings_seconds``) plus ``analysis``, the path of the JSON document.

    With several tasks (``tasks:`` / ``multi_label:``), ``task`` names the one to analyze (default:
    every task, one after another): each gets ``analysis_<task>.json`` in the run folder, logged
    under ``analysis/<task>/`` in MLflow with metrics ``<task>.analysis.*``; the summary then has
    a ``tasks`` section, one such summary per task, and ``analysis`` maps task -> path.
    """
    views = task_views(cfg, task, command="analyze", every=True)
    if views is None:
        return run_one(spark, cfg, run_id=run_id)
    return combine([run_one(spark, cfg, run_id=run_id, view=v) for v in views], "analyze")


def combine(summaries: list[dict[str, Any]], stage: str) -> dict[str, Any]:
    """One summary of several tasks' ``analyze`` or ``report`` summaries (``tasks``: name -> summary)."""
    key = "report" if stage == "report" else "analysis"
    runs = sorted({s["run_id"] for s in summaries})
    return {
        "run_id": runs[0] if len(runs) == 1 else runs, "stage": stage, "status": "succeeded", "skipped": False,
        "tasks": {s["task"]: s for s in summaries},
        key: {s["task"]: s[key] for s in summaries},
        **({"analysis": {s["task"]: s["analysis"] for s in summaries}} if key != "analysis" else {}),
        "mlflow": summaries[-1]["mlflow"],
        "timings_seconds": {f"{s['task']}.{k}": v for s in summaries for k, v in s["timings_seconds"].items()},
    }  # fmt: skip


def done_line(summary: dict[str, Any], key: str) -> str:
    """``lakelabel analyze: run R: PATH`` (one path per task for several)."""
    paths = summary[key]
    shown = ", ".join(f"{name} {path}" for name, path in paths.items()) if isinstance(paths, dict) else paths
    return f"lakelabel {summary['stage']}: run {summary['run_id']}: {shown}"


def run_one(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None = None,
            view: TaskView | None = None, reuse: bool = False, verb: str = "analyze") -> dict[str, Any]:
    """:func:`run` for a single-task config, or for one task (``view``).

    ``reuse`` (``lakelabel report``): keep a current ``analysis.json`` (:func:`current_document`)
    instead of computing it (it is still logged to the run's MLflow run); the summary says
    ``analysis_reused``. ``verb``: the command, for the error about another run's labels.
    """
    started = time.perf_counter()
    doc, reused = _analyze(spark, cfg, run_id=run_id, view=view, reuse=reuse, verb=verb)
    path = run_dir(cfg.lakehouse, doc["run_id"]) / task_file(ANALYSIS_FILE, view)
    t = doc["totals"]
    counts = {"rows": t["rows"], "covered": t["covered"], "gold": t["gold_rows"], "lfs": len(doc["lfs"]),
              "slices": len(doc["slices"])}
    summary = {"run_id": doc["run_id"], "stage": "analyze", "status": "succeeded", "skipped": False,
               **({"task": view.name} if view is not None else {}),
               "tables": {k: v for k, v in doc["tables"].items() if k != "source"}, "counts": counts,
               "analysis": str(path), "analysis_reused": reused}  # fmt: skip
    if reused:
        log.info("analyze: %s is current (computed %s from the same tables, model and settings): reused; "
                 "`lakelabel analyze` computes it again", path, doc.get("created_at"))
    else:
        write_json(path, doc)
    prefix = f"{view.name}." if view is not None else ""
    folder = f"analysis/{view.name}" if view is not None else "analysis"

    def log_it(mlflow: Any) -> None:
        mlflow.log_dict(doc, f"{folder}/{ANALYSIS_FILE}")
        metrics = {f"{prefix}analysis.{key}": float(t[key]) for key in ("coverage", "conflict_rate", "lm_accuracy",
                                                                       "mv_accuracy") if t.get(key) is not None}
        mlflow.log_metrics({**metrics, f"{prefix}analyze_seconds": doc["seconds"]})

    mlflow_info = log_to_run(cfg, doc["run_id"], log_it)
    seconds = round(time.perf_counter() - started, 3) if reused else doc["seconds"]
    log.info("analyze: run %s%s, %d rows, %d LFs, %d slices -> %s (%s)", doc["run_id"],
             f" task {view.name}" if view is not None else "", t["rows"], len(doc["lfs"]), len(doc["slices"]), path,
             f"reused in {seconds:.1f}s; computed in {doc['seconds']:.1f}s" if reused else f"{seconds:.1f}s")
    return {**summary, "mlflow": mlflow_info, "timings_seconds": {"analyze": seconds}}


COMMAND = command.Command(
    logs_to_mlflow=True,
    name="analyze", help="where the LFs go wrong: per-LF, pair, class and slice statistics, error buckets "
                         "(--run-id: the run whose labels to analyze; default the latest labels)",
    new_run_id=False, add_arguments=lambda p: add_task_option(p, every=True),
    precheck=lambda args, cfg: task_views(cfg, args.task, command="analyze", every=True),
    reads_source=True, reads_evaluation=True,
    run=lambda args, cfg, run_id, spark: run(spark, cfg, run_id=run_id, task=args.task),
    done=lambda s: done_line(s, "analysis"),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    raise SystemExit(main())
