"""Each task's gold table in a run of several tasks: ``<tables.gold>_<task>``.

``lakelabel gold import --task NAME`` fills a task's own gold table (:mod:`jobs.task_views`); a
single-task run reads its one gold table in the aggregate stage (:func:`jobs.aggregate.run`: the
``dev`` and ``test`` rows' votes, counted per vote pattern on Spark). A run of several tasks reads
each task's table the same way from the rows it aggregated (the per-task masks of the apply pass,
or the votes grouped by row), so each task's fit gets the :class:`~jobs.people.gold.GoldSets` a
single-task run of that task would: its ``dev`` rows as ``L_dev``/``Y_dev`` with
``label_model.use_dev_labels``, its ``test`` rows scored (``gold_test_*``).
"""

from __future__ import annotations

from dataclasses import replace
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from jobs.aggregate import gold_table_sets
from jobs.runtime.config import PipelineConfig
from jobs.tasks import Task, TaskSet, task_config, task_table

__all__ = ["gold_table", "task_gold_config", "task_gold_sets"]


def gold_table(cfg: PipelineConfig, task: Task) -> str:
    """``tables.gold`` of ``task``: the multi-task config's ``tables.gold`` suffixed ``_<task>``."""
    return task_table(cfg.tables.gold, task.name)


def task_gold_config(cfg: PipelineConfig, task: Task) -> PipelineConfig:
    """The single-task config that reads ``task``'s gold table: its label space, ``tables.gold`` of
    :func:`gold_table`."""
    view = task_config(cfg, task)
    return replace(view, tables=replace(view.tables, gold=gold_table(cfg, task)))


def task_gold_sets(spark: SparkSession, cfg: PipelineConfig, task_set: TaskSet, io: Any,
                   patterns: Callable[[int], DataFrame]) -> dict[str, Any]:  # fmt: skip
    """Task name -> :class:`~jobs.people.gold.GoldSets` of its gold table, for the tasks that have one
    (:func:`jobs.aggregate.gold_table_sets`, as a single-task run reads its one).

    ``patterns(i)``: ``row_id, pattern`` of task ``i`` (:func:`jobs.aggregate.pattern_frame` codes over
    its own LFs and classes) from the rows the run aggregated (:func:`jobs.multitask.task_patterns`).
    """
    out: dict[str, Any] = {}
    for i, task in enumerate(task_set.tasks):
        sets = gold_table_sets(spark, task_gold_config(cfg, task), io, patterns(i), task.lf_names,
                               len(task.label_space), what=f"task {task.name}: ")
        if sets is not None:
            out[task.name] = sets
    return out
