"""One task of a multi-task config, as the single-task commands see it (``--task NAME``).

``lakelabel analyze``, ``report``, ``annotate`` and ``train`` read one task's labels with their
single-task code: a :class:`TaskView` is that task's single-task config (:func:`jobs.tasks.task_config`,
with the task's own labels, predictions and gold tables), its :class:`~jobs.tasks.Task` (LFs,
label space, gold column) and its run-folder names. :func:`view_labels` and
:func:`task_labels_lineage` are the only code that knows how a task's labels are stored: every
reader goes through them, so a change of the multi-task labels layout changes only them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pyspark.sql import DataFrame

from jobs import multitask, multitask_labels, task_gold
from jobs.apply_record import ApplyResult
from jobs.runtime import runs
from jobs.runtime.config import PipelineConfig
from jobs.tasks import Task, build_task_set, is_multitask, task_config, task_configs, task_table
from lf_library.errors import ConfigError

__all__ = ["TaskView", "add_task_option", "task_views", "one_task", "view_labels", "task_labels_lineage",
           "task_applied", "task_file", "task_fit_run"]


@dataclass(frozen=True)
class TaskView:
    """A task of a multi-task config and the single-task config that reads its tables.

    Attributes
    ----------
    task : Task
        The task: name, label space, LFs (its registry), gold column.
    cfg : PipelineConfig
        :func:`jobs.tasks.task_config` of the task, with ``tables.predictions`` and
        ``tables.gold`` suffixed ``_<task>`` as ``tables.labels`` is (every task has its own).
    """

    task: Task
    cfg: PipelineConfig
    # The multi-task config itself (where the shared labels table ``<tables.labels>_tasks`` is).
    root: PipelineConfig | None = None

    @property
    def name(self) -> str:
        return self.task.name


def add_task_option(p: Any, *, every: bool) -> None:
    """``--task NAME``; ``every``: without it the command reads every task, else it needs one."""
    what = "default: every task" if every else "required when the config declares several tasks"
    p.add_argument("--task", metavar="NAME", help=f"the task of a multi-task config to read ({what})")


def _view(cfg: PipelineConfig, task: Task) -> TaskView:
    view = task_config(cfg, task)
    tables = replace(view.tables, predictions=task_table(view.tables.predictions, task.name),
                     gold=task_gold.gold_table(cfg, task))
    return TaskView(task, replace(view, tables=tables), cfg)


def task_views(cfg: PipelineConfig, name: str | None, *, command: str, every: bool) -> list[TaskView] | None:
    """The tasks ``--task`` selects: None for a single-task config (read it as it is).

    ``every``: no ``--task`` means every task (analyze, report); else one must be named.

    Raises
    ------
    ConfigError
        ``--task`` on a single-task config, an unknown task name, or no ``--task`` where one is needed.
    """
    if not is_multitask(cfg):
        if name is not None:
            raise ConfigError(f"--task {name}: the config declares no tasks (tasks / multi_label); drop --task")
        return None
    # With --task, only that task's LFs must build: another team's broken module does not stop this command.
    task_set = build_task_set(cfg, only=None if name is None else [name])
    names = ", ".join(task_set.names)
    if name is None:
        if every:
            return [_view(cfg, t) for t in task_set.tasks]
        raise ConfigError(f"lakelabel {command} reads one task and the config declares several: pass --task NAME "
                          f"(tasks: {names})")
    if name not in task_set.names:  # every task the config names, a broken one too
        declared = ", ".join(t.name for t, _ in task_configs(cfg))
        raise ConfigError(f"--task {name!r} is not a task of this config; tasks: {declared}")
    return [_view(cfg, task_set[name])]


def one_task(cfg: PipelineConfig, name: str | None, *, command: str) -> TaskView | None:
    """The one task a command reads (None: a single-task config); see :func:`task_views`."""
    views = task_views(cfg, name, command=command, every=False)
    return views[0] if views else None


def _labels_path(view: TaskView) -> str:
    return multitask_labels.labels_path(view.root or view.cfg)


def task_labels_lineage(view: TaskView, io: Any) -> tuple[str, int, dict[str, Any]]:
    """``(table path, version, lineage)`` of the task's current labels in the multi-task labels table.

    The lineage has the single-task labels commit metadata's keys (``lakelabel.write``): ``run_id``,
    ``votes_version``, ``label_model``, ``label_model_version``, ``label_space``, ``lfs``,
    ``tie_break_policy``, ``metrics``.

    Raises
    ------
    ConfigError
        No labels for the task yet, or a table lakelabel did not write.
    """
    path = _labels_path(view)
    if not io.table_exists(path):
        raise ConfigError(f"no labels of task {view.name!r} at {path}; run the pipeline first "
                          f"(`lakelabel run --config ...`)")
    meta = multitask_labels.read_labels_metadata(io, path)
    if view.name not in meta["tasks"]:
        raise ConfigError(f"task {view.name!r} has no labels in {path} (its tasks: {', '.join(meta['tasks'])}); "
                          f"run `lakelabel run` on this config")
    mine = meta["tasks"][view.name]
    lineage = {key: value for key, value in meta.items() if key != "tasks"}
    lineage.update(mine, lfs=dict(mine.get("lfs") or []))
    return path, io.table_version(path), lineage


def view_labels(spark: Any, view: TaskView, io: Any, version: int | None = None) -> DataFrame:
    """The task's labels (``version``: of :func:`task_labels_lineage`; None: the current ones).

    The DataFrame has exactly the single-task labels schema (:mod:`jobs.write_labels`).
    """
    return multitask_labels.task_labels(spark, view.root or view.cfg, view.name, version=version, io=io)


def task_applied(applied: ApplyResult, view: TaskView) -> ApplyResult:
    """The apply result of the shared votes table as the task sees it: its LFs and label space."""
    return multitask.task_applied(applied, view.task)


def task_fit_run(run_id: str, view: TaskView) -> str:
    """The run-folder path (relative to ``_lakelabel/runs``) of the task's fitted label model."""
    return f"{run_id}/tasks/{view.name}"


def task_file(filename: str, view: TaskView | None) -> str:
    """``analysis.json`` -> ``analysis_<task>.json``: a task's file in the run folder (unchanged without a task)."""
    return runs.task_file(filename, view.name if view is not None else None)

