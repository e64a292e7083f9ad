"""Progress: each stage logs what it did and how long it took; Spark's UI sees lakelabel's stage names."""

from __future__ import annotations

import logging
import re

import pytest

from jobs import pipeline
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

pytestmark = pytest.mark.spark


def test_stage_logs_and_spark_job_groups(spark, tmp_path, caplog):
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(40)))
    caplog.set_level(logging.INFO, logger="jobs")
    tracker = spark.sparkContext.statusTracker()
    stages = ("apply", "aggregate", "write")
    before = {s: set(tracker.getJobIdsForGroup(f"lakelabel:{s}")) for s in stages}
    result = pipeline.run(spark, cfg, run_id="progress-1")
    text = "\n".join(r.getMessage() for r in caplog.records)

    n_lfs = len(result.summary["lfs"])
    for stage in ("1/4 apply", "2/4 aggregate", "3/4 fit", "4/4 write"):
        assert f"stage {stage}" in text, stage
    assert re.search(rf"apply: 40 rows from .*, {n_lfs} LFs", text)
    patterns = re.search(r"aggregate: 40 rows, (\d+) distinct patterns", text)
    assert patterns and int(patterns.group(1)) >= 1
    assert re.search(r"fit: \w+ in \d+\.\d+s", text)
    assert re.search(r"write: 40 labels to .* v\d+ in \d+\.\d+s", text)
    assert re.search(r"pipeline: done in .*apply .*aggregate .*fit .*write", text)

    # Every Spark job a stage starts carries the stage's job group, which the Spark UI shows.
    for stage in stages:
        new_jobs = set(tracker.getJobIdsForGroup(f"lakelabel:{stage}")) - before[stage]
        assert new_jobs, f"this run started no Spark job under lakelabel:{stage}"
    # Jobs after the run (a notebook's own queries) are no longer filed under lakelabel's stages.
    after = set(tracker.getJobIdsForGroup("lakelabel:write"))
    spark.range(10).count()
    assert set(tracker.getJobIdsForGroup("lakelabel:write")) == after
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None


def _sleep_rows(rows):
    import time

    for r in rows:
        time.sleep(0.5)
        yield r


def test_heartbeat_speaks_while_a_command_runs_spark_jobs_and_stays_quiet_behind_stage_lines(spark, caplog,
                                                                                             monkeypatch):
    from jobs.runtime.progress import Heartbeat, Progress

    monkeypatch.setenv("LAKELABEL_PROGRESS_SECONDS", "0.4")
    caplog.set_level(logging.INFO, logger="jobs.progress")
    with Heartbeat(spark, "annotate"):
        spark.sparkContext.parallelize(range(8), 2).mapPartitions(_sleep_rows).count()
    lines = [r.getMessage() for r in caplog.records]
    assert any(re.fullmatch(r"annotate: working, 1 Spark job\(s\) running, \d+ of 2 tasks finished, \d+s", m)
               for m in lines), lines
    # Where a stage logs its own progress lines, the heartbeat adds none. A longer interval here: on a
    # loaded machine a stage line late by more than the interval rightly lets the heartbeat speak.
    monkeypatch.setenv("LAKELABEL_PROGRESS_SECONDS", "1.5")
    caplog.clear()
    with Heartbeat(spark, "run"), Progress(spark, "apply", 0):
        spark.sparkContext.setJobGroup("lakelabel:apply", "test")
        spark.sparkContext.parallelize(range(8), 2).mapPartitions(_sleep_rows).count()
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("apply: ") for m in lines), lines
    assert sum(m.startswith("run: working") for m in lines) <= 1, lines
    spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)


def test_a_stage_past_its_rows_says_all_rows_done_without_a_rate():
    """analyze's later passes kept saying "400,000 of 400,000 rows done (2,271 rows/s)" with a rate that fell with
    every line (a drill at 300 LFs)."""
    from types import SimpleNamespace

    from jobs.runtime.progress import Progress

    progress = Progress.__new__(Progress)
    progress.stage, progress.total, progress._started = "analyze", 400_000, 0.0
    progress.sc = SimpleNamespace(statusTracker=lambda: None, master="local[2]")
    progress.tasks = lambda: (48, 97)
    for done, expected in ((400_000, "analyze: all 400,000 rows done, 48 of 97 tasks finished"),
                           (1_000, "analyze: 1,000 of 400,000 rows done (")):
        progress.rows_done = SimpleNamespace(value=done)
        assert progress.line().startswith(expected), progress.line()
