"""MLflow tracking: one run per pipeline execution, a local sqlite store by default.

The default tracking URI is ``sqlite:///<lakehouse>/mlflow.db`` with artifacts under
``<lakehouse>/mlartifacts``; the standard ``MLFLOW_TRACKING_URI`` overrides it, and so does
``mlflow.tracking_uri`` in the config. The label model is logged as a pyfunc model that scores a
DataFrame of votes (one integer column per LF, -1 for abstain).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobs._config import PipelineConfig

log = logging.getLogger(__name__)

RUN_TAG = "lakelabel.run_id"


def tracking_uri(cfg: PipelineConfig) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if cfg.mlflow.tracking_uri:
        return cfg.mlflow.tracking_uri
    return f"sqlite:///{cfg.lakehouse_path / 'mlflow.db'}"


def _client(cfg: PipelineConfig):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    cfg.lakehouse_path.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    return mlflow


def start_run(cfg: PipelineConfig, run_id: str):
    """Return the active MLflow run for lakelabel ``run_id``, resuming one with that tag if it exists."""
    mlflow = _client(cfg)
    experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
    if experiment is None:
        location = None
        if tracking_uri(cfg).startswith("sqlite:") and not os.environ.get("MLFLOW_TRACKING_URI"):
            location = (cfg.lakehouse_path / "mlartifacts").as_uri()
        experiment_id = mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    existing = mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run_id}'", output_format="list"
    )
    if mlflow.active_run() is not None:
        mlflow.end_run()
    if existing:
        return mlflow.start_run(run_id=existing[0].info.run_id)
    return mlflow.start_run(experiment_id=experiment_id, run_name=run_id, tags={RUN_TAG: run_id})


def end_run(cfg: PipelineConfig, status: str = "FINISHED") -> None:
    mlflow = _client(cfg)
    if mlflow.active_run() is not None:
        mlflow.end_run(status=status)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def log_apply(cfg: PipelineConfig, applied) -> None:
    mlflow = _client(cfg)
    params: dict[str, str] = {}
    _flatten("config", cfg.to_dict(), params)
    for lf in applied.lfs:
        params[f"lf.{lf.name}"] = lf.version
    params["source.version"] = str(applied.source_version)
    params["source.fingerprint"] = applied.fingerprint
    mlflow.log_params({k: v[:6000] for k, v in params.items()})
    metrics = {"source_rows": applied.n_rows, "apply_seconds": applied.seconds}
    for lf in applied.lfs:
        metrics[f"lf_errors.{lf.name}"] = lf.errors
    mlflow.log_metrics(metrics)
    mlflow.log_dict(json.loads(applied.to_json()), "apply_summary.json")


def log_fit(cfg: PipelineConfig, fitted, lf_names: list[str], label_space: list[str]) -> str:
    """Log metrics, the LF summary and the label model; return the model URI."""
    mlflow = _client(cfg)
    metrics = {k: float(v) for k, v in fitted.metrics.items() if v is not None and v == v}
    for row in fitted.lf_table:
        metrics[f"lf_coverage.{row['lf']}"] = row["coverage"]
        metrics[f"lf_estimated_accuracy.{row['lf']}"] = row["estimated_accuracy"]
        if row.get("empirical_accuracy") is not None:
            metrics[f"lf_gold_accuracy.{row['lf']}"] = row["empirical_accuracy"]
    mlflow.log_metrics(metrics)
    mlflow.log_dict({"lfs": fitted.lf_table}, "lf_summary.json")
    mlflow.log_param("label_model.version", fitted.model_version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name="label_model",
            python_model=LabelModelPyfunc(),
            artifacts={"label_model": fitted.model_path},
            model_config={"lf_names": list(lf_names), "label_space": list(label_space)},
            pip_requirements=["lakelabel", "numpy", "scipy", "pandas"],
        )
    return info.model_uri


def log_write(cfg: PipelineConfig, written, summary: dict[str, Any]) -> None:
    mlflow = _client(cfg)
    mlflow.log_metrics({"labels_rows": written.n_rows, "write_seconds": written.seconds})
    mlflow.log_dict(summary, "run_summary.json")


import mlflow.pyfunc as _pyfunc  # noqa: E402
import pandas as pd  # noqa: E402

_Base = _pyfunc.PythonModel


class LabelModelPyfunc(_Base):
    """MLflow pyfunc wrapper: DataFrame of votes (one column per LF) -> probabilities and label."""

    def load_context(self, context) -> None:
        from labelmodel import LabelModel

        self.model = LabelModel.load(context.artifacts["label_model"])
        config = context.model_config or {}
        self.lf_names = list(config.get("lf_names", []))
        self.label_space = list(config.get("label_space", []))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import numpy as np

        missing = [n for n in self.lf_names if n not in model_input.columns]
        if missing:
            raise ValueError(
                f"the votes DataFrame lacks LF column(s) {missing}; expected one int column per LF: {self.lf_names}"
            )
        L = model_input[self.lf_names].to_numpy(dtype=np.int64) if self.lf_names else model_input.to_numpy(np.int64)
        probs = self.model.predict_proba(L)
        label = probs.argmax(axis=1)
        out = pd.DataFrame(probs, columns=[f"p_{c}" for c in self.label_space] or None, index=model_input.index)
        out["label"] = label
        if self.label_space:
            out["label_name"] = [self.label_space[i] for i in label]
        return out
