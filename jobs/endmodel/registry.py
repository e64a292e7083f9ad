"""The fitted end model in MLflow (the ``spark`` flavor) or, with MLflow off, in the run folder.

``mlflow.spark.log_model`` saves the :class:`~pyspark.ml.PipelineModel` with Spark ML's own
persistence to a temporary folder (``MLFLOW_DFS_TMP``, default ``/tmp/mlflow``; on a cluster a
path of the cluster's default file system), copies it into the run's artifacts and, with
``end_model.registered_name``, registers a model version. Nothing goes to the network: the pip
requirements and the signature are given, so MLflow neither infers requirements (which reloads
the model in a subprocess) nor the signature. Load it back with
``mlflow.spark.load_model("models:/<name>/<version>")``; its ``transform`` takes source rows
(the configured columns) and adds ``prediction`` and ``probability``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import types as T

log = logging.getLogger(__name__)

__all__ = ["ARTIFACT", "log_model", "save_local"]

ARTIFACT = "end_model"


def _col_type(dtype: T.DataType) -> str:
    if isinstance(dtype, (T.IntegerType, T.ShortType, T.ByteType)):
        return "integer"
    if isinstance(dtype, T.LongType):
        return "long"
    if isinstance(dtype, (T.FloatType,)):
        return "float"
    if isinstance(dtype, (T.DoubleType, T.DecimalType)):
        return "double"
    if isinstance(dtype, T.BooleanType):
        return "boolean"
    return "string"


def signature(columns: Sequence[str], schema: T.StructType) -> Any:
    """Inputs: the feature columns with their source types; output: ``prediction`` (the class id)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec(_col_type(schema[c].dataType), c) for c in columns])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "prediction")]))


def log_model(mlflow: Any, model: Any, *, registered_name: str, columns: Sequence[str], schema: T.StructType,
              metadata: Mapping[str, Any], artifact: str = ARTIFACT) -> tuple[str, str]:
    """Log ``model`` to the active MLflow run under ``artifact``; return ``(model URI, model version)``.

    The version is the registered model version when ``registered_name`` is set, else the
    MLflow model id.
    """
    import pyspark
    import mlflow.spark  # noqa: F401 - the flavor module, imported on demand
    from mlflow.utils import logging_utils

    # MLflow prints "Successfully registered model ..." and "Created version ..." to stderr itself;
    # under -q (the command line set lakelabel's loggers to WARNING) they stay out too. A notebook or
    # library caller, whose loggers lakelabel leaves alone, keeps them. MLflow's errors still raise.
    # Not stream.enabled = False: log_model's own event-log context turns the stream back on when it ends,
    # before the registration prints; an instance write() shadows the class's whatever MLflow toggles.
    artifact = free_artifact(mlflow, artifact)
    stream = logging_utils.MLFLOW_LOGGING_STREAM
    quiet = logging.getLogger("jobs").level >= logging.WARNING
    if quiet:
        stream.write = lambda text: len(text)
        stream.flush = lambda: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.spark.log_model(
                model, artifact,
                registered_model_name=registered_name or None,
                signature=signature(columns, schema),
                pip_requirements=[f"pyspark=={pyspark.__version__}"],
                metadata=dict(metadata),
            )  # fmt: skip
    finally:
        if quiet:
            del stream.write, stream.flush
    version = getattr(info, "registered_model_version", None)
    if registered_name and version is not None:
        return f"models:/{registered_name}/{version}", str(version)
    return info.model_uri, str(getattr(info, "model_id", None) or info.run_id)


def free_artifact(mlflow: Any, artifact: str) -> str:
    """``artifact``, or ``<artifact>_2``, ``_3``, ... when the active run holds it already: a second train of a run
    (other settings) must not write its Spark model into the first's folder, which a registered version names (a
    re-drill: both versions then loaded a mix of the two pipelines)."""
    run = mlflow.active_run()
    if run is None:
        return artifact
    taken = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    n, name = 1, artifact
    while name in taken:
        n += 1
        name = f"{artifact}_{n}"
    return name


def save_local(model: Any, folder: Path, artifact: str = ARTIFACT) -> str:
    """Save ``model`` with Spark ML's persistence as ``folder/artifact`` (MLflow off); return the path."""
    path = folder / artifact
    model.write().overwrite().save(str(path))
    return str(path)
