"""Train the YouTube example's model LF: a small spam classifier on video 1's comments only.

The YouTube example (conf/youtube.yaml) uses an existing model as one of its LFs, the way a team
reuses a model it already has. This script makes that model: TF-IDF + logistic regression on the
comments of video 1 (Psy) with their CLASS labels (never video 5, the evaluation video), logged to
the lakehouse's MLflow store and registered as ``youtube_spam_video1`` with the alias
``champion``. Rerunning it registers a new version and moves the alias, which gives the model LF
a new version.

    python -m lf_library.lfs.train_youtube_model [--lakehouse ./lakehouse/youtube] [--data ../shared/data]
        [--tracking-uri URI] [--name NAME]

On Databricks (``--tracking-uri databricks``) the model goes to the experiment ``/Shared/<experiment>`` and is
registered in Unity Catalog under ``--name`` (``catalog.schema.model``; default ``$LAKELABEL_YOUTUBE_MODEL``), as
conf/youtube.yaml reads it there; Unity Catalog needs the model's signature, which is logged everywhere.

Needs scikit-learn (``pip install 'lakelabel[test]'`` or ``pip install scikit-learn``); without it,
or without the data, it prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

MODEL_NAME = "youtube_spam_video1"
ALIAS = "champion"
TRAIN_FILE = "Youtube01-Psy.csv"
EXPERIMENT = "lakelabel-youtube-models"


class UsageError(Exception):
    """Bad input or a missing dependency: ``main`` prints one line and exits with code 2."""


def train(data_dir: Path, lakehouse: Path, tracking_uri: str | None = None, name: str = MODEL_NAME) -> str:
    """Train on video 1, log and register the model; returns ``models:/<name>/<version>``."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from lf_library.models import databricks_store

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{lakehouse.resolve() / 'mlflow.db'}"
    databricks = databricks_store(uri)
    if databricks and name.count(".") != 2:
        raise UsageError(f"--name {name}: on Databricks the model is registered in Unity Catalog, whose names are "
                         f"catalog.schema.model; pass --name main.lakelabel.{name} (or set LAKELABEL_YOUTUBE_MODEL)")
    path = data_dir / "youtube_spam" / TRAIN_FILE
    if not path.is_file():
        raise UsageError(f"{path} not found; pass --data (or set LAKELABEL_DATA) with the folder holding youtube_spam/")
    try:
        from sklearn.compose import make_column_transformer
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] != "sklearn":
            raise
        # `pip install -e '.[spark]'` (the quick start) does not bring scikit-learn.
        raise UsageError(f"scikit-learn is not installed in {sys.executable}: install it with "
                         f"{sys.executable} -m pip install 'scikit-learn>=1.5,<1.10' (or the test extra, "
                         "pip install -e '.[test]'), then rerun") from err
    comments = pd.read_csv(path)
    # The pipeline takes a DataFrame with a CONTENT column, as the model LF passes its fields.
    model = make_pipeline(
        make_column_transformer((TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), "CONTENT")),
        LogisticRegression(C=4.0, max_iter=1000),
    )
    model.fit(comments[["CONTENT"]], comments["CLASS"])
    mlflow.set_tracking_uri(uri)
    if databricks:  # a workspace path; the artifacts in the workspace's store, the model in Unity Catalog
        mlflow.set_experiment(f"/Shared/{EXPERIMENT}")
    else:
        lakehouse.mkdir(parents=True, exist_ok=True)
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=(lakehouse.resolve() / "mlartifacts").as_uri())
        mlflow.set_experiment(EXPERIMENT)
    with warnings.catch_warnings(), mlflow.start_run(run_name="train-video1"):
        warnings.simplefilter("ignore")
        mlflow.log_params({"train_file": TRAIN_FILE, "rows": len(comments)})
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",  # columns: P(ham), P(spam)
            signature=infer_signature(comments[["CONTENT"]], model.predict_proba(comments[["CONTENT"]])),
            registered_model_name=name,
        )
    client = MlflowClient(uri, registry_uri=mlflow.get_registry_uri())
    version = info.registered_model_version
    client.set_registered_model_alias(name, ALIAS, str(version))
    return f"models:/{name}/{version}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", default="./lakehouse/youtube", help="the lakehouse of conf/youtube.yaml")
    parser.add_argument("--data", default=os.environ.get("LAKELABEL_DATA", "../shared/data"))
    parser.add_argument("--tracking-uri", default=None, help="default: sqlite store under the lakehouse")
    parser.add_argument("--name", default=os.environ.get("LAKELABEL_YOUTUBE_MODEL") or MODEL_NAME,
                        help="registered model name (default: $LAKELABEL_YOUTUBE_MODEL, else %(default)s); on "
                             "Databricks a Unity Catalog name, catalog.schema.model")
    args = parser.parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # "Failed to create databricks SDK workspace client ... Falling back to legacy authentication": the error says it
    logging.getLogger("mlflow.utils.databricks_utils").setLevel(logging.ERROR)
    try:
        uri = train(Path(args.data), Path(args.lakehouse), args.tracking_uri, args.name)
    except UsageError as err:
        print(f"train_youtube_model: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - MLflow's: a store without credentials, a name its registry refuses
        if type(err).__module__.split(".")[0] != "mlflow":
            raise
        detail = " ".join(str(err).split())[:400]
        store = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "under the lakehouse"
        print(f"train_youtube_model: error: the MLflow store {store} refused the model: {detail}", file=sys.stderr)
        return 2
    print(f"registered {uri} as models:/{args.name}@{ALIAS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
