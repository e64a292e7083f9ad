"""lakelabel against a real MLflow tracking server: ``mlflow server`` on 127.0.0.1 (the ``test`` extra installs
the full ``mlflow``), started here and stopped by its process group, with a sqlite backend and proxied artifacts.

What the ``cluster`` environment's ``MLFLOW_TRACKING_URI`` points at: the run, its metrics and its label model go to
the server (nothing to the lakehouse's own store); the logged model loads from there and scores like the labels
table; ``explain`` and ``verify`` read the model back from the server when the run folder's file is gone, and leave
no copy of it behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable

from tests.jobs.test_pipeline import make_rows, write_source
from tests.label_studio_server import free_port

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _mlflow_global_uri():
    """The tests set MLflow's process-wide tracking URI to the server, which stops at the module's end: put it back."""
    import mlflow

    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` on a free port of 127.0.0.1: its URL and folder (``store.db``, ``artifacts``)."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder}/store.db", "--artifacts-destination", str(folder / "artifacts")],
        # TMPDIR: MLflow's lock file for initializing a new store (db_init_lock-<hash>) stays in its temp folder
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder,
        env={**os.environ, "TMPDIR": str(folder)})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # its first start migrates the new store: about 35 s here
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer on {url}:\n"
                                   f"{(folder / 'server.log').read_text(errors='replace')[-3000:]}")
            time.sleep(1)
        yield url, folder
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its worker
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_a_run_logs_to_a_tracking_server_and_explain_and_verify_read_its_model_back(spark, server, tmp_path,
                                                                                      monkeypatch, capsys):
    import mlflow
    from mlflow import MlflowClient

    from jobs import cli

    url, folder = server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    lake = tmp_path / "lake"
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(lake),
        "source": {"path": write_source(tmp_path, make_rows(40)), "format": "parquet", "id_column": "id"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
        "mlflow": {"experiment": "lakelabel-server-test"}}))
    summary_path = tmp_path / "summary.json"
    assert cli.main(["run", "-q", "--config", str(config), "--run-id", "srv-1", "--summary-json", str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())

    # The run, its metrics and its model are on the server; the lakehouse has no store of its own.
    assert summary["mlflow"]["tracking_uri"] == url
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["lakelabel.run_id"] == "srv-1"
    assert run.data.metrics["coverage"] == pytest.approx(summary["metrics"]["coverage"])
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied: the server writes the files
    assert len(list((folder / "artifacts").rglob("label_model.json"))) == 1
    assert not (lake / "mlflow.db").exists() and not (lake / "mlartifacts").exists()

    # The logged model, loaded from the server, scores rows as the labels table holds them.
    names = [lf["name"] for lf in summary["lfs"]]
    labels = DeltaTable(str(lake / "labels")).to_pandas().sort_values("row_id").head(10)
    votes = DeltaTable(str(lake / "votes")).to_pandas()
    votes = votes[votes.row_id.isin(labels.row_id) & (votes.vote >= 0)]
    L = pd.DataFrame(-1, index=list(labels.row_id), columns=names)
    for r in votes.itertuples():
        L.loc[r.row_id, r.lf_name] = r.vote
    mlflow.set_tracking_uri(url)
    (tmp_path / "model").mkdir()  # MLflow's own copy, else a new folder in /tmp for good
    logged = mlflow.pyfunc.load_model(summary["label_model"]["mlflow_uri"], dst_path=str(tmp_path / "model"))
    scored = logged.predict(L.reset_index(drop=True))
    np.testing.assert_allclose(scored[["p_neg", "p_pos"]].to_numpy(), np.stack(labels.probabilities), atol=1e-9)

    # explain and verify find the model on the server once the run folder's file is gone (a later cleanup).
    (lake / "_lakelabel" / "runs" / "srv-1" / "label_model.json").unlink()
    capsys.readouterr()
    assert cli.main(["explain", "--config", str(config), "--row-id", "r001", "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    model = doc["lineage"]["label_model"]
    assert model["version"] == summary["label_model"]["version"], model
    assert model["file"] == f"{summary['label_model']['mlflow_uri']} (MLflow store {url})", model
    # verify in its own process, as an operator runs it: the model's copy from the server does not outlive it
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run([str(Path(sys.executable).parent / "lakelabel"), "verify", "--config", str(config),
                           "--run-id", "srv-1", "-q"], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "TMPDIR": str(tmp), "MLFLOW_TRACKING_URI": url})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "40 labels match their rebuild" in done.stdout, done.stdout
    assert not [p.name for p in tmp.iterdir() if p.name.startswith(("tmp", "lakelabel-mlflow-"))], list(tmp.iterdir())


def test_a_model_lf_loads_a_model_of_the_server_from_one_copy_per_machine(server, tmp_path, monkeypatch):
    """A model LF whose model is on the server: MLflow's own load_model copies it into a new temporary folder per
    process, which a Spark Python worker never deletes (one copy per worker and run, in /tmp for good). It is
    copied once into $TMPDIR/lakelabel-models-<uid> and every later load, in any process, reads that copy."""
    import tempfile
    import warnings

    import mlflow
    import mlflow.sklearn
    from sklearn.compose import make_column_transformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from lf_library import models as models_mod
    from lf_library.models import model_lf

    url, _ = server
    mlflow.set_tracking_uri(url)
    train = make_rows(40).assign(gold=lambda d: np.where(d.text.str.contains("love|great"), "pos", "neg"))
    model = make_pipeline(make_column_transformer((TfidfVectorizer(), "text")), LogisticRegression(C=10.0))
    model.fit(train[["text"]], train["gold"])
    mlflow.set_experiment("lakelabel-server-models")
    with warnings.catch_warnings(), mlflow.start_run():
        warnings.simplefilter("ignore")
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                 pyfunc_predict_fn="predict_proba", registered_model_name="server_clf")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    lf = model_lf("clf", "models:/server_clf/1", label_map={0: "neg", 1: "pos"}, fields=["text"],
                  tracking_uri=url, label_space=["neg", "pos"])
    votes = lf.predict_frame(train[["text"]])
    assert lf.resolved.load_uri.startswith("mlflow-artifacts:"), lf.resolved  # on the server, not on this disk
    assert list(votes) == [int(g == "pos") for g in train.gold]
    copies = [p for p in (tmp_path / "tmp").rglob("MLmodel")]
    mine = tmp_path / "tmp" / f"lakelabel-models-{os.getuid()}"
    assert len(copies) == 1 and copies[0].parent.parent == mine and mine.stat().st_mode & 0o777 == 0o700, copies
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == [mine.name]
    assert [p.name for p in mine.iterdir()] == [copies[0].parent.name]  # no half-done copy beside it
    written = copies[0].stat().st_mtime_ns
    monkeypatch.setattr(models_mod, "_MODELS", {})  # another process: it loads the same copy
    assert list(lf.predict_frame(train[["text"]])) == list(votes)
    assert [p for p in (tmp_path / "tmp").rglob("MLmodel")] == copies and copies[0].stat().st_mtime_ns == written
    # A copy gone (a cleanup), a half-done one a killed worker left 2 h ago, one another worker is writing, and one
    # another worker sweeps between this worker's listing and its look: the old one goes, the new copy is made.
    key = copies[0].parent.name
    shutil.rmtree(copies[0].parent)
    old, busy, swept = (mine / f".{key}-{name}" for name in ("old", "busy", "swept"))
    for folder in (old, busy):
        folder.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    listed = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern, **kw: [*listed(self, pattern, **kw)]
                        + ([swept] if pattern == f".{key}-*" else []))
    monkeypatch.setattr(models_mod, "_MODELS", {})
    assert list(lf.predict_frame(train[["text"]])) == list(votes)
    assert sorted(p.name for p in mine.iterdir()) == sorted([key, busy.name])
