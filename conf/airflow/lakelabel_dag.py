"""Airflow DAGs that run lakelabel's YouTube pipeline with spark-submit (Airflow 2.4+ and 3).

Two DAGs over the same configuration:

``lakelabel_youtube`` (daily)
    One ``run`` task: apply, aggregate, fit and write in one Spark application and one MLflow
    run. If a stage fails after an earlier one committed, the tables are put back. The
    recommended DAG.
``lakelabel_youtube_stages`` (manual)
    ``apply >> aggregate >> fit >> write``, one spark-submit each, sharing the run id, so a
    failed stage is retried or cleared alone. The stage commands hand over through
    ``<lakehouse>/_lakelabel/runs/<run id>/`` and log into one MLflow run, the one tagged with
    the run id.

Run-id contract: every task of a DAG run passes the same ``--run-id``, derived from Airflow's own
run id by :func:`lakelabel_run_id` (``scheduled__2026-11-24T03:00:00+00:00`` becomes
``scheduled__2026-11-24T030000-0000``). Retries and cleared tasks keep the Airflow run id, and
lakelabel treats a rerun with the same run id and unchanged inputs as a no-op, so retrying is
safe. A new Airflow run is a new lakelabel run: in Airflow 3 every manual trigger and every
``airflow dags test`` gets a new run id (``manual__<trigger time>``), which reuses unchanged votes
but writes a new labels version (Airflow 2's ``dags test`` reuses ``manual__<logical date>``, a
no-op). ``max_active_runs=1`` because two runs would replace the same tables; for the same reason,
do not run both DAGs at once.

Each task writes its summary JSON (run id, tables and versions, counts, timings) to
``$LAKELABEL_SUMMARY_DIR/<dag id>/<run id>/<task>.json``.

Deployment, once per release, on the host that runs spark-submit (the Airflow worker):

* the lakelabel repository (or release tree) at ``$LAKELABEL_HOME``, with the code zip built by
  ``lakelabel package`` (``dist/lakelabel-<version>.zip``). Spark puts ``--py-files`` zips on the
  Python path of the driver and the executors; it does not import from a ``.whl``.
* a Spark connection ``spark_default`` (master URL; deploy mode client, as spark-submit requires
  for Python applications on a standalone cluster).
* on every node, a Python with lakelabel's third-party dependencies (``pip install lakelabel``
  or the wheel's requirements), named by ``$LAKELABEL_PYTHON``.

Requires ``apache-airflow-providers-apache-spark``. Templates use only ``{{ expr }}`` with
Python-compatible expressions, which ``tests/test_orchestration.py`` renders without Airflow.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timedelta, timezone

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
try:  # Airflow 3.2+ (airflow.exceptions re-exports these)
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2, 3.0, 3.1
    from airflow.exceptions import AirflowException, AirflowFailException

# Where things are on the spark-submit host; all paths absolute, since spark-submit runs in the
# Airflow worker's working directory.
LAKELABEL_HOME = os.environ.get("LAKELABEL_HOME", "/opt/lakelabel")
LAKELABEL_VERSION = os.environ.get("LAKELABEL_VERSION", "0.1.0")
LAKELABEL_PYTHON = os.environ.get("LAKELABEL_PYTHON", "python3")
SUMMARY_DIR = os.environ.get("LAKELABEL_SUMMARY_DIR", "/shared/lakelabel/summaries")
SPARK_CONN_ID = "spark_default"

CONFIG = f"{LAKELABEL_HOME}/conf/youtube.yaml"
ENV = "cluster"
# Read by conf/env/cluster.yaml and conf/youtube.yaml when the driver loads the config.
ENV_VARS = {
    "LAKELABEL_LAKEHOUSE": os.environ.get("LAKELABEL_LAKEHOUSE", "/shared/lakehouse/youtube"),
    "LAKELABEL_DATA": os.environ.get("LAKELABEL_DATA", "/shared/data"),
}
# Spark settings lakelabel does not set itself (shuffle partitions and the UI come from the
# cluster overlay, conf/env/cluster.yaml).
SPARK_CONF = {
    "spark.pyspark.python": LAKELABEL_PYTHON,
    "spark.pyspark.driver.python": LAKELABEL_PYTHON,
    # spark-submit's --driver-java-options (README "Run on a cluster"): lakelabel's log4j config keeps
    # Spark's own INFO lines (about 2,300 per YouTube run) out of the task log; lakelabel's lines stay.
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LAKELABEL_HOME}/jobs/conf/log4j2.properties",
}

RUN_ID = "{{ lakelabel_run_id(run_id) }}"


# The run ids Airflow generates: scheduled__2026-11-24T03:00:00+00:00, manual__...T10:15:00.123456+00:00, ...
_GENERATED = re.compile(r"[a-z_]+__\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def lakelabel_run_id(airflow_run_id: str) -> str:
    """A lakelabel run id for an Airflow run id: stable, at most 128 of ``[A-Za-z0-9._-]``.

    ``manual__2026-11-24T10:15:00.123456+00:00`` gives ``manual__2026-11-24T101500.123456-0000``.
    An id given by hand (``airflow dags trigger --run-id``) is kept when it is already safe; otherwise, and
    for ids longer than 128 characters, a hash of the whole follows what is left, so distinct runs stay
    distinct: ``nightly/2026-12-01`` and ``nightly 2026-12-01`` would both read ``nightly-2026-12-01``.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", airflow_run_id.replace(":", "")).strip("-._")
    digest = hashlib.sha256(airflow_run_id.encode()).hexdigest()[:12]
    if len(safe) > 128 or (safe and safe != airflow_run_id and not _GENERATED.fullmatch(airflow_run_id)):
        safe = safe[:115].rstrip("-._") + "-" + digest
    return safe or "airflow-" + digest


def spark_submit_kwargs(command: str) -> dict:
    """SparkSubmitOperator arguments for one ``lakelabel COMMAND`` (run, apply, aggregate, fit, write)."""
    return {
        "application": f"{LAKELABEL_HOME}/jobs/cli.py",
        "py_files": f"{LAKELABEL_HOME}/dist/lakelabel-{LAKELABEL_VERSION}.zip",
        "application_args": [
            command,
            "--config", CONFIG,
            "--env", ENV,
            "--run-id", RUN_ID,
            "--summary-json", f"{SUMMARY_DIR}/{{{{ dag.dag_id }}}}/{RUN_ID}/{command}.json",
        ],
        "conf": SPARK_CONF,
        "env_vars": ENV_VARS,
        "conn_id": SPARK_CONN_ID,
        "deploy_mode": "client",
        "name": f"lakelabel-{command}",
    }


# lakelabel's exit codes (README "Schedule it"): 2 is a bad config, input or LF, which fails every attempt the same
# way, so it fails the task at once; 3 (a transient fault) and any other failure are retried.
NO_RETRY_EXIT_CODES = (2,)


def submit_exit_code(message: str) -> int | None:
    """spark-submit's exit code (in client mode the driver's, lakelabel's) from the Spark hook's error."""
    found = re.search(r"Error code is: (-?\d+)", message)
    return int(found.group(1)) if found else None


class LakelabelSubmitOperator(SparkSubmitOperator):
    """A SparkSubmitOperator that fails without retries when lakelabel exits with a code no retry can fix."""

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowException as err:
            code = submit_exit_code(str(err))
            if code in NO_RETRY_EXIT_CODES:
                raise AirflowFailException(f"lakelabel exited with code {code} (a bad config, input or LF: a retry "
                                           f"fails the same way, so none is made; the task log's last lakelabel "
                                           f"line says what to fix)") from err
            raise


DEFAULT_ARGS = {
    "owner": "lakelabel",
    # Safe to retry: every attempt passes the same --run-id (see the module docstring). A bad
    # config or LF (exit code 2, one line in the task log) fails the task without retries.
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=6),
}

# Both DAGs: one run at a time (two runs would replace the same tables), the run-id macro.
DAG_ARGS = {
    "start_date": datetime(2026, 1, 1, tzinfo=timezone.utc),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
    "user_defined_macros": {"lakelabel_run_id": lakelabel_run_id},
    "tags": ["lakelabel"],
}

with DAG(
    dag_id="lakelabel_youtube",
    description="lakelabel: label YouTube comments spam/ham (apply, aggregate, fit, write in one job)",
    schedule="@daily",
    **DAG_ARGS,
) as pipeline_dag:
    run = LakelabelSubmitOperator(task_id="run", **spark_submit_kwargs("run"))

with DAG(
    dag_id="lakelabel_youtube_stages",
    description="lakelabel: the YouTube pipeline as four spark-submits sharing one run id",
    schedule=None,
    **DAG_ARGS,
) as stages_dag:
    apply = LakelabelSubmitOperator(task_id="apply", **spark_submit_kwargs("apply"))
    aggregate = LakelabelSubmitOperator(task_id="aggregate", **spark_submit_kwargs("aggregate"))
    # fit runs on the driver only (numpy/scipy); spark-submit just starts its Python.
    fit = LakelabelSubmitOperator(task_id="fit", **spark_submit_kwargs("fit"))
    write = LakelabelSubmitOperator(task_id="write", **spark_submit_kwargs("write"))
    apply >> aggregate >> fit >> write
