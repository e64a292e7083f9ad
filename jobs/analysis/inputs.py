"""What ``lakelabel analyze`` reads: the labels of one run, the votes they came from, the model, the source.

Everything is located through what the pipeline recorded: the labels commit (``lakelabel.write``)
names the run, the votes version and the label model version; the votes commit holds the apply
summary (LF names, versions, kinds, error counts); the run folders hold the fitted models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from jobs import delta_io, task_views
from jobs.runtime.config import PipelineConfig
from jobs.runtime.runs import failed_run, run_dir
from jobs.delta_io.sources import Source, load_source
from jobs.tasks import task_source
from jobs.changes.runs import label_runs
from jobs.apply_record import VOTES_META_KEY, ApplyResult, check_source_unchanged, located
from jobs.fit_label_model import MODEL_FILE, FitResult, load_fit
from jobs.write_labels import LABELS_META_KEY
from lf_library.errors import ConfigError


@dataclass(frozen=True)
class AnalysisInputs:
    """The tables, versions and model one analysis reads (see the module docstring)."""

    run_id: str
    labels_path: str
    labels_version: int
    votes_path: str
    votes_version: int
    applied: ApplyResult
    label_space: tuple[str, ...]
    tie_break_policy: str
    model: FitResult | None
    source: Source
    notes: tuple[str, ...]
    # ``row_id, label`` of the gold table's current ``test`` labels, or None without a gold table.
    gold_test: Any = None
    gold_test_rows: int = 0
    # The labels' ``vote_codes`` were coded with these LFs and classes (then analyze reads them, not the votes).
    codes_match: bool = False
    # One task of a multi-task config (``--task``), or None.
    view: Any = None

    @property
    def task(self) -> str | None:
        return self.view.name if self.view is not None else None

    def labels(self, spark: Any, io: Any) -> Any:
        """The labels this analysis reads, at their version (a task's through :mod:`jobs.task_views`)."""
        if self.view is not None:
            return task_views.view_labels(spark, self.view, io, self.labels_version)
        return io.read_table(spark, self.labels_path, version=self.labels_version)

    @property
    def lf_names(self) -> tuple[str, ...]:
        return self.applied.lf_names

    @property
    def has_gold(self) -> bool:
        """Whether any row has gold: the source's gold column, or test rows in the gold table."""
        return bool(self.source.gold_column) or self.gold_test_rows > 0


def labels_of_run(cfg: PipelineConfig, run_id: str | None, io: Any, view: task_views.TaskView | None = None,
                  *, verb: str = "analyze") -> tuple[str, int, dict[str, Any]]:
    """The labels table (a task's with ``view``), its version and the write summary of the run that
    wrote it, checked to be ``run_id``'s when one is given (``verb``: the command, for the error).

    Raises
    ------
    ConfigError
        No labels table, or the labels of another run.
    """
    if view is not None:
        labels_path, labels_version, written = task_views.task_labels_lineage(view, io)
        cfg = view.cfg
    else:
        labels_path = cfg.table_path("labels")
        if not io.table_exists(labels_path):
            raise ConfigError(f"no labels table at {labels_path}; run the pipeline first (`lakelabel run --config ...`)")
        meta = io.read_metadata(labels_path)
        if LABELS_META_KEY not in meta:
            raise ConfigError(f"the labels table {labels_path} was not written by lakelabel (no {LABELS_META_KEY!r} "
                              f"commit metadata); point tables.labels at a lakelabel labels table")
        written = json.loads(meta[LABELS_META_KEY])
        if "tasks" in written:  # a multi-task run's table: one struct column per task, no `probabilities`
            raise ConfigError(f"the labels table {labels_path} holds the labels of several tasks "
                              f"({', '.join(written['tasks'])}), not one task's: use the config that declares those "
                              f"tasks, with --task NAME, or point tables.labels at a single-task labels table")
        labels_version = io.table_version(labels_path)
    latest_run = written.get("run_id")
    if run_id is not None and run_id != latest_run:
        known = run_dir(cfg.lakehouse, run_id, create=False).is_dir()
        wrote = [r.labels_version for r in label_runs(cfg, labels_path) if r.run_id == run_id] if known else []
        if wrote:  # `lakelabel write` would label with the latest model: rerunning the run is the way back
            raise ConfigError(
                f"run {run_id!r} wrote version {wrote[-1]} of the labels table {labels_path}, which run "
                f"{latest_run!r} has since replaced, and {verb.split()[0]} reads the current labels: {verb} run "
                f"{latest_run!r}, or run `lakelabel run --run-id {run_id}` again with that run's config "
                f"(`lakelabel diff --from {run_id}` and `lakelabel explain --run-id {run_id} --row-id ID` read "
                f"its labels)"
            )
        if not known:  # a typo, most likely: nothing to write labels from
            raise ConfigError(
                f"run {run_id!r} is not a run under {cfg.lakehouse_path} (no run folder): the labels table "
                f"{labels_path} holds the labels of run {latest_run!r}; {verb} run {latest_run!r}, or check the id "
                f"(the run folders are in {run_dir(cfg.lakehouse, run_id, create=False).parent})"
            )
        failed = failed_run(cfg.lakehouse, run_id)
        if failed:  # `lakelabel write` refuses such a run's model
            raise ConfigError(
                f"run {run_id!r} {failed['ended']} after it aggregated ({failed['reason']}) and wrote no labels: the "
                f"labels table {labels_path} holds the labels of run {latest_run!r}; rerun it (`lakelabel run "
                f"--run-id {run_id}`), or {verb} run {latest_run!r}"
            )
        raise ConfigError(
            f"run {run_id!r} wrote no labels: the labels table {labels_path} holds the labels of run {latest_run!r}; "
            f"run `lakelabel write --run-id {run_id}` (or `lakelabel run --run-id {run_id}`) first, or {verb} "
            f"run {latest_run!r}"
        )
    return labels_path, labels_version, written


def resolve(spark: Any, cfg: PipelineConfig, run_id: str | None, io: Any = None,
            view: task_views.TaskView | None = None, *, verb: str = "analyze") -> AnalysisInputs:
    """Locate the labels of ``run_id`` (default: the run that wrote the latest labels) and their inputs.

    ``view``: one task of a multi-task config; its labels, its LFs' votes, its gold column and
    its label model (``cfg`` is then the multi-task config or the view's, alike). ``verb``: the
    command, for the error about another run's labels.

    Raises
    ------
    ConfigError
        No labels table, labels of another run, or votes that moved on since the labels.
    """
    io = io or delta_io.delta_io(spark, cfg.tables.delta_io)
    labels_path, labels_version, written = labels_of_run(cfg, run_id, io, view, verb=verb)
    if view is not None:
        cfg = view.cfg
    votes_path = cfg.table_path("votes")
    latest_run = written.get("run_id")
    votes_version = written.get("votes_version")
    if not io.table_exists(votes_path) or not io.unchanged_since(votes_path, votes_version):
        raise ConfigError(
            f"the votes table {votes_path} moved on since run {latest_run!r} wrote its labels (from votes "
            f"v{votes_version}); rerun the pipeline (`lakelabel run`) so labels and votes match"
        )
    votes_meta = io.read_metadata(votes_path)
    if VOTES_META_KEY not in votes_meta:
        raise ConfigError(f"the votes table {votes_path} was not written by lakelabel apply; point tables.votes elsewhere")
    # The record is written before its commit, without the version: the labels name it.
    applied = replace(located(ApplyResult.from_json(votes_meta[VOTES_META_KEY], table=f"the votes table {votes_path}"),
                              votes_path, str(cfg.lakehouse_path)), votes_table=votes_path, votes_version=int(votes_version))
    source = load_source(spark, cfg.source, io=io)
    check_source_unchanged(applied, source)
    if view is not None:
        applied, source = task_views.task_applied(applied, view), task_source(source, view.task)
    notes: list[str] = []
    fit_run = task_views.task_fit_run(latest_run, view) if view is not None and latest_run else latest_run
    model = find_model(cfg, fit_run, written.get("label_model_version"))
    if model is None:
        notes.append(f"no fitted model with version {written.get('label_model_version')} under "
                     f"{cfg.lakehouse_path / '_lakelabel' / 'runs'}: estimated LF accuracies and weights are left out")
    gold_test, gold_test_rows = _gold_test(spark, cfg, io, notes)
    return AnalysisInputs(
        run_id=latest_run,
        labels_path=labels_path,
        labels_version=labels_version,
        votes_path=votes_path,
        votes_version=int(votes_version),
        applied=applied,
        label_space=tuple(written.get("label_space") or applied.label_space),
        tie_break_policy=written.get("tie_break_policy") or cfg.output.tie_break_policy,
        model=model,
        source=source,
        notes=tuple(notes),
        gold_test=gold_test,
        gold_test_rows=gold_test_rows,
        codes_match=view is None and coded_like(written, applied),
        view=view,
    )


def coded_like(written: dict[str, Any], applied: ApplyResult) -> bool:
    """Whether labels with commit metadata ``written`` coded their ``vote_codes`` with ``applied``'s LFs and classes.

    Labels of one task of several (``tasks:``) are coded with that task's LFs only: analyze then
    groups the votes instead.
    """
    return (set(written.get("lfs") or ()) == set(applied.lf_names)
            and list(written.get("label_space") or ()) == list(applied.label_space))


def _gold_test(spark: Any, cfg: PipelineConfig, io: Any, notes: list[str]) -> tuple[Any, int]:
    """The gold table's current ``test`` labels (``row_id`` as a string, ``label``) and their count.

    Only the ``test`` split is read: ``dev`` rows may have fitted the label model
    (``label_model.use_dev_labels``), so measuring on them would flatter it.
    """
    from jobs.people.gold import current_gold

    current = current_gold(spark, cfg, io, split="test")
    if current is None:
        return None, 0
    test = current.select("row_id", F.col("label").cast("int").alias("label")).cache()
    n = test.count()
    notes.append(f"gold: {n} test-split rows of the gold table {cfg.table_path('gold')} "
                 f"(dev rows are left out: they may have fitted the label model)")
    return (test, n) if n else (None, 0)


def find_model(cfg: PipelineConfig, run_id: str | None, version: str | None) -> FitResult | None:
    """The fitted model with ``version``: from ``run_id``'s folder, else any run folder that has it.

    ``run_id`` may name a task's folder, ``<run>/tasks/<task>`` (:func:`jobs.task_views.task_fit_run`).
    """
    root = cfg.lakehouse_path / "_lakelabel" / "runs"
    folders: list[Path] = []
    if run_id:
        folders.append(root / run_id)
    if root.is_dir():
        folders += sorted((p for p in root.iterdir() if p.name != run_id), key=lambda p: -p.stat().st_mtime)
    for folder in folders:
        if not (folder / MODEL_FILE).exists() or not (folder / "fit.json").exists():
            continue
        fitted = load_fit(cfg, str(folder.relative_to(root)))  # a task's: "<run>/tasks/<task>"
        if version is None or fitted.model_version == version:
            return fitted
    return None
