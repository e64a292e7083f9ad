"""The pipeline on a real Spark standalone cluster (master and worker on 127.0.0.1) matches local mode.

The master and worker are started from the installed pyspark and stopped by pid. Executors run a
Python that can import pyarrow, pandas and deltalake but NOT lakelabel (``python -S`` skips the
editable install's ``.pth`` hook), so every job below only works if lakelabel's code really
travels to the executors: shipped by ``get_spark`` for ``lakelabel demo --master``, and with
``spark-submit --py-files dist/lakelabel-<version>.zip`` for the submitted job.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
from deltalake import DeltaTable

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROWS = 2_000  # the check is label for label equality with local mode, not scale (README has 1M-row timings)
COMPARED = ["row_id", "label", "label_name", "confidence", "n_votes", "voting_lfs", "label_model_version"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    log = path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
    raise RuntimeError(f"Spark standalone daemon did not log {text!r} within {timeout}s:\n{log}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """A Spark standalone master and one 2-core worker on 127.0.0.1; yields the master URL."""
    import pyspark

    home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("standalone")
    # No PYTHONPATH (the test session's points at the repo): executors inherit the worker's
    # environment, and lakelabel must reach them only by shipping.
    env = _env(SPARK_HOME=str(home), SPARK_LOG_DIR=str(folder))
    # The executors' JVMs, which the worker starts with its environment, run with the suite's flags, class
    # archive and temporary folder too (tests/conftest.py); the worker has no setting of its own for them.
    if os.environ.get("SPARK_DAEMON_JAVA_OPTS") and not os.environ.get("JAVA_TOOL_OPTIONS"):
        env["JAVA_TOOL_OPTIONS"] = os.environ["SPARK_DAEMON_JAVA_OPTS"]
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(home / "bin" / "spark-class")
    started = []
    try:
        master_log = folder / "master.log"
        master = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(_free_port())],
            env=env, stdout=master_log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(master)
        _wait_for(master_log, "I have been elected leader", master)
        worker_log = folder / "worker.log"
        worker = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "2",
             "--memory", "4g", "--webui-port", str(_free_port()), "--work-dir", str(folder / "work")],
            env=env, stdout=worker_log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(worker)
        _wait_for(worker_log, "Successfully registered with master", worker)
        yield {"url": url, "folder": folder, "master_log": master_log}
    finally:
        for proc in reversed(started):
            _stop(proc)
    assert all(proc.poll() is not None for proc in started)


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """An executor Python with the venv's third-party packages but without lakelabel."""
    path = tmp_path_factory.mktemp("bare") / "python"
    site = sysconfig.get_paths()["purelib"]
    path.write_text(f'#!/bin/sh\nPYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -S "$@"\n')
    path.chmod(0o755)
    probe = subprocess.run([str(path), "-c", "import pyarrow, pandas, deltalake; import jobs"],
                           capture_output=True, text=True, cwd="/", env=_env())  # fmt: skip
    assert "No module named 'jobs'" in probe.stderr, probe.stderr
    return str(path)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env.update(SPARK_LOCAL_IP="127.0.0.1", LAKELABEL_DATA=str(REPO.parent / "shared" / "data"), **extra)
    return env


PROBE = """
from pyspark.sql import SparkSession

def probe(_):
    try:
        import jobs
    except ImportError:
        return "absent"
    return "imported from " + jobs.__file__

spark = SparkSession.builder.appName("probe").getOrCreate()
print("EXECUTOR:", spark.sparkContext.parallelize([0], 1).map(probe).collect()[0])
"""


def test_executors_cannot_import_lakelabel_unless_it_is_shipped(standalone, bare_python, tmp_path):
    """The control for the tests below: without --py-files or ship_code, executors lack lakelabel."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    cmd = [str(BIN / "spark-submit"), "--master", standalone["url"], "--conf", "spark.driver.host=127.0.0.1",
           str(script)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(PYSPARK_PYTHON=bare_python), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "EXECUTOR: absent" in done.stdout


def _labels(lakehouse: Path):
    df = DeltaTable(str(lakehouse / "labels")).to_pandas()
    return df.sort_values("row_id").reset_index(drop=True)


def _assert_same_labels(local, cluster) -> None:
    assert len(local) == len(cluster) == ROWS
    for col in COMPARED:
        left, right = local[col].tolist(), cluster[col].tolist()
        if col == "confidence":
            np.testing.assert_allclose(left, right, rtol=0, atol=1e-12)
        else:
            assert [list(v) if hasattr(v, "tolist") else v for v in left] == [
                list(v) if hasattr(v, "tolist") else v for v in right
            ], col
    np.testing.assert_allclose(np.stack(local["probabilities"]), np.stack(cluster["probabilities"]), atol=1e-12)


@pytest.fixture(scope="module")
def cluster_demo(standalone, bare_python, tmp_path_factory):
    """``lakelabel demo --master spark://...`` with executors that cannot import lakelabel themselves."""
    lake = tmp_path_factory.mktemp("cluster-demo")
    cmd = [str(BIN / "lakelabel"), "demo", "--rows", str(ROWS), "--lakehouse", str(lake),
           "--master", standalone["url"], "--run-id", "cluster-demo", "--summary-json", str(lake / "summary.json"),
           "--set", "mlflow.enabled=false"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(PYSPARK_PYTHON=bare_python), cwd=lake)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return {"lake": lake, "stdout": done.stdout, "stderr": done.stderr, "seconds": seconds}


def test_demo_on_the_cluster_matches_local_mode(spark, standalone, cluster_demo, tmp_path):
    from jobs import pipeline
    from jobs.runtime.config_loading import config_from_dict

    lake = cluster_demo["lake"]
    assert "lakelabel demo - run cluster-demo" in cluster_demo["stdout"]
    assert "shipped lakelabel's code to the executors" in cluster_demo["stderr"]
    # The application ran on the standalone master, not in a local fallback.
    assert "Registered app lakelabel-demo" in standalone["master_log"].read_text()
    summary = json.loads((lake / "summary.json").read_text())
    assert summary["tables"]["labels"]["rows"] == ROWS
    # The same input, labeled by the in-process local[2] session.
    local_cfg = config_from_dict({
        "lakehouse": str(tmp_path / "local"),
        "source": {"path": str(lake / "source" / "tickets"), "format": "parquet", "id_column": "ticket_id",
                   "gold_column": "true_label"},
        "lfs": {"modules": ["lf_library.lfs.demo"]},
        "mlflow": {"enabled": False},
    })  # fmt: skip
    local = pipeline.run(spark, local_cfg, run_id="local-ref").summary
    assert local["metrics"]["accuracy"] == pytest.approx(summary["metrics"]["accuracy"], abs=1e-12)
    assert [(lf["name"], lf["version"]) for lf in local["lfs"]] == [(lf["name"], lf["version"]) for lf in summary["lfs"]]
    _assert_same_labels(_labels(tmp_path / "local"), _labels(lake))


TEAM_LFS = """
\"\"\"A team's LF module: it exists only where the job is submitted, never on the workers.\"\"\"
import re

from lf_library import labeling_function

LABEL_SPACE = ("billing", "technical", "shipping", "account")
_PARCEL = re.compile(r"\\b(parcel|courier|tracking number)\\b", re.I)


def mentions_parcel(text):
    # A module-level helper: pickled by reference (an import on the executor) unless the module
    # travels by value.
    return _PARCEL.search(text) is not None


@labeling_function()
def team_parcel_words(x):
    return 2 if mentions_parcel(x.text) else -1
"""


def test_spark_submit_with_py_files_matches_local_mode(spark, standalone, bare_python, cluster_demo, tmp_path,
                                                      monkeypatch):
    from jobs import pipeline
    from jobs.runtime.config_loading import load_config

    source = cluster_demo["lake"] / "source" / "tickets"
    dist = tmp_path / "dist"
    packaged = subprocess.run([str(BIN / "lakelabel"), "package", "--out", str(dist)], capture_output=True, text=True)
    assert packaged.returncode == 0, packaged.stderr
    (zip_path,) = dist.glob("lakelabel-*.zip")
    team = tmp_path / "team"
    team.mkdir()
    (team / "team_lfs.py").write_text(TEAM_LFS)
    config = tmp_path / "submit.yaml"
    config.write_text(
        f"lakehouse: {tmp_path / 'lake'}\n"
        f"source:\n  path: {source}\n  format: parquet\n  id_column: ticket_id\n  gold_column: true_label\n"
        f"lfs:\n  modules: [lf_library.lfs.demo, team_lfs]\nmlflow:\n  enabled: false\n"
    )
    summary_path = tmp_path / "summary.json"
    cmd = [str(BIN / "spark-submit"), "--master", standalone["url"], "--conf", "spark.driver.host=127.0.0.1",
           "--py-files", str(zip_path), str(REPO / "jobs" / "cli.py"), "run", "--config", str(config),
           "--run-id", "submitted", "--summary-json", str(summary_path)]  # fmt: skip
    # Driver and executors both run the bare Python: lakelabel comes from the zip alone, and the
    # team's LF module only from the driver's PYTHONPATH (LF modules travel inside the broadcast).
    env = _env(PYSPARK_PYTHON=bare_python, PYSPARK_DRIVER_PYTHON=bare_python, PYTHONPATH=str(team))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "shipped lakelabel's code" not in done.stderr  # --py-files already carried it
    summary = json.loads(summary_path.read_text())
    assert summary["run_id"] == "submitted" and summary["status"] == "succeeded"
    assert summary["tables"]["labels"]["version"] == 0
    team_lf = next(lf for lf in summary["lfs"] if lf["name"] == "team_parcel_words")
    assert team_lf["votes"] > 0 and team_lf["errors"] == 0
    # The same config in local mode, in this process.
    monkeypatch.syspath_prepend(str(team))
    local_cfg = load_config(str(config), overrides=[f"lakehouse={tmp_path / 'local'}"])
    local = pipeline.run(spark, local_cfg, run_id="local-ref").summary
    assert [(lf["name"], lf["version"], lf["votes"]) for lf in local["lfs"]] == [
        (lf["name"], lf["version"], lf["votes"]) for lf in summary["lfs"]
    ]
    _assert_same_labels(_labels(tmp_path / "local"), _labels(tmp_path / "lake"))


def _predictions(path: Path):
    return DeltaTable(str(path)).to_pandas().sort_values("row_id").reset_index(drop=True)


def test_train_on_the_cluster_matches_local_mode(spark, standalone, bare_python, cluster_demo, tmp_path):
    """``lakelabel train --master spark://...`` on the cluster demo's labels, then the same in local mode."""
    from jobs import train
    from jobs.runtime.config_loading import load_config

    lake = cluster_demo["lake"]
    config = tmp_path / "train.yaml"
    # A small end model (256 hashed features, 5 iterations): the point is where it runs, not its accuracy.
    config.write_text(
        f"lakehouse: {lake}\n"
        f"source:\n  path: {lake / 'source' / 'tickets'}\n  format: parquet\n  id_column: ticket_id\n"
        f"  gold_column: true_label\nlfs:\n  modules: [lf_library.lfs.demo]\nmlflow:\n  enabled: false\n"
        f"end_model:\n  num_features: 256\n  max_iter: 5\n"
    )
    summary_path = tmp_path / "train.json"
    cmd = [str(BIN / "lakelabel"), "train", "--config", str(config), "--master", standalone["url"],
           "--summary-json", str(summary_path)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(PYSPARK_PYTHON=bare_python), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "shipped lakelabel's code to the executors" in done.stderr
    assert "Registered app lakelabel-train" in standalone["master_log"].read_text()
    cluster = json.loads(summary_path.read_text())
    assert cluster["run_id"] == "cluster-demo" and cluster["counts"]["rows"] == ROWS
    # The same labels in this process's local[2] session, into another predictions table.
    cfg = load_config(str(config), overrides=[f"tables.predictions={tmp_path / 'local_predictions'}"])
    local = train.run(spark, cfg)
    # The same training rows; their class weights are sums of probabilities, added in another order there.
    weights = [local["counts"].pop("class_weights"), cluster["counts"].pop("class_weights")]
    # Sums of probabilities: equal up to the order the partitions add them in.
    sums = [local["counts"].pop("training_weight"), cluster["counts"].pop("training_weight")]
    assert sums[0] == pytest.approx(sums[1], rel=1e-12)
    assert local["counts"] == cluster["counts"]
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-12)
    theirs, ours = _predictions(Path(cluster["tables"]["predictions"]["path"])), _predictions(tmp_path / "local_predictions")
    assert theirs.row_id.tolist() == ours.row_id.tolist() and len(ours) == ROWS
    # Not bit-equal: L-BFGS sums the gradient over the partitions, which the cluster session (its
    # own settings) and the test session split and add in another order, so the sums round
    # differently. The fits agree to 1e-6; a row's label may differ only where its two top classes
    # are that close.
    p_theirs, p_ours = np.stack(theirs.probabilities), np.stack(ours.probabilities)
    np.testing.assert_allclose(p_theirs, p_ours, rtol=0, atol=1e-6)
    top2 = np.sort(p_ours, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-6
    assert (theirs.label[clear] == ours.label[clear]).all()
    assert theirs.lm_label.tolist() == ours.lm_label.tolist()
    for where in ("source_gold",):
        acc_theirs = cluster["evaluation"][where]["accuracy"]["end_model"]["all"]
        acc_ours = local["evaluation"][where]["accuracy"]["end_model"]["all"]
        assert acc_ours == pytest.approx(acc_theirs, abs=1 / ROWS * (~clear).sum() + 1e-12)


def test_no_executor_is_said_in_the_progress_lines_and_fails_with_exit_3(standalone, bare_python, cluster_demo,
                                                                         tmp_path):
    """A request no worker can meet (64g executors, the worker has 4g) used to hang for ever, the heartbeat
    printing `0 of N rows done` and Spark's "Initial job has not accepted any resources" hidden by lakelabel's
    log4j config. Now the progress lines say there is no executor, and after spark.executor_wait_seconds the Spark
    jobs are cancelled and the command fails with exit 3, the tables as before the run (a copy of the cluster
    demo's lakehouse). The demo's own run on the same master shows the cluster session's console: no Spark
    progress bars, the line before the session starts."""
    import shutil

    assert "[Stage " not in cluster_demo["stderr"], cluster_demo["stderr"][-3000:]  # showConsoleProgress=false
    assert (f"INFO jobs.runtime.session: starting Spark on master {standalone['url']}; an unreachable master takes "
            "about a minute to report") in cluster_demo["stderr"]
    lake = tmp_path / "lake"
    shutil.copytree(cluster_demo["lake"], lake)
    votes, labels = lake / "votes", lake / "labels"
    before = DeltaTable(str(votes)).version(), DeltaTable(str(labels)).version()

    started = time.perf_counter()
    cmd = [str(BIN / "lakelabel"), "demo", "--rows", str(ROWS), "--lakehouse", str(lake), "--master", standalone["url"],
           "--run-id", "no-executor", "--set", "mlflow.enabled=false", "--set", "spark.conf={spark.executor.memory: 64g}",
           "--set", "spark.executor_wait_seconds=5"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env=_env(PYSPARK_PYTHON=bare_python, LAKELABEL_PROGRESS_SECONDS="1"))  # fmt: skip
    seconds = time.perf_counter() - started
    assert done.returncode == 3, done.stderr[-3000:]
    note = (f"no executor registered with {standalone['url']} for ")
    progress = [line for line in done.stderr.splitlines() if note in line and " INFO jobs.progress: " in line]
    assert progress, done.stderr[-3000:]
    assert ("the cluster has no free worker that meets spark.executor.memory=64g / one free core (or every worker is "
            "gone); see the master's UI") in progress[0]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lakelabel: error (transient, a retry may succeed): {note}"), last
    assert ("longer than spark.executor_wait_seconds=5; lakelabel demo cancelled its Spark jobs and put back what it "
            "had committed where that needs no executor") in last, last
    assert (DeltaTable(str(votes)).version(), DeltaTable(str(labels)).version()) == before
    assert seconds < 120, seconds
