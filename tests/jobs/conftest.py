"""One real pipeline run with slices, MLflow and the report on, shared by the analyze and report tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.jobs._analysis_run import EXAMPLES


@pytest.fixture(scope="session")
def analyzed_run(spark, tmp_path_factory):
    """``(cfg, pipeline summary, analyze summary, analysis document)`` of a 60-row run.

    The pipeline runs with ``report.enabled`` (so it writes the report at its end) and an MLflow
    sqlite store in the tmp lake; then ``analyze`` runs again on its own, as ``lakelabel analyze`` does.
    """
    from jobs import analyze, pipeline
    from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

    tmp = tmp_path_factory.mktemp("analyze")
    rows = make_rows(60)
    rows.loc[rows.index % 9 == 4, "gold"] = None  # some rows without gold
    cfg = make_cfg(tmp, write_source(tmp, rows), slices={"modules": ["tests.jobs.sample_slices"]},
                   analysis={"examples": EXAMPLES, "coverage_by": ["stars"], "lf_buckets": 2},
                   mlflow={"enabled": True, "experiment": "analyze-tests"}, report={"enabled": True})
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        ran = pipeline.run(spark, cfg, run_id="an-1").summary
        summary = analyze.run(spark, cfg)
        yield cfg, ran, summary, json.loads(Path(summary["analysis"]).read_text())
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before
