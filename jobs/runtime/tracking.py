"""MLflow tracking: one run per pipeline execution, a local sqlite store by default.

The default tracking URI is ``sqlite:///<lakehouse>/mlflow.db`` with artifacts under
``<lakehouse>/mlartifacts``; the standard ``MLFLOW_TRACKING_URI`` overrides it, and so does
``mlflow.tracking_uri`` in the config. The label model is logged as a pyfunc model that scores a
DataFrame of votes (one integer column per LF, -1 for abstain).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pkgutil
import sqlite3
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobs.runtime import faults, processes
from jobs.runtime.config import PipelineConfig
from lf_library.errors import ConfigError, TransientError
from lf_library.models import file_store_error, registry_uri

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent first runs may still race there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

RUN_TAG = "lakelabel.run_id"
# The process that has a run open (jobs.runtime.processes): a later run in the same system tells a run whose process
# was killed (SIGKILL) from one still running, also under another run id (an orchestrator's retry gets a new one).
PROCESS_TAG = "lakelabel.process"


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

    # mlflow sets its own INFO handler on import; keep its chatter out of lakelabel's progress log.
    if not logging.getLogger("jobs").isEnabledFor(logging.DEBUG):
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        # Its sqlite store logs a traceback at ERROR for a database error ("database is locked") it then
        # raises: lakelabel words that error as its one line, and --verbose prints the traceback.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    cfg.lakehouse_path.mkdir(parents=True, exist_ok=True)
    before = os.environ.get("MLFLOW_TRACKING_URI")
    faults.talking_to(tracking_uri(cfg))
    mlflow.set_tracking_uri(tracking_uri(cfg))
    if before is None:  # set_tracking_uri exports the URI; keep telling the user's variable from ours
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    return mlflow


def store_absent(cfg: PipelineConfig) -> bool:
    """True when the config's store is a sqlite file that does not exist: reading from it would create it."""
    uri = tracking_uri(cfg)
    return uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):].split("?", 1)[0]).is_file()


# The folders download_artifacts copied each (store, URI) into, deleted when the process exits (their files are read
# until then); one per model however often a notebook explains a row with it.
_downloads: dict[tuple[str, str], tuple[tempfile.TemporaryDirectory, Path]] = {}


def download_artifacts(cfg: PipelineConfig, uri: str) -> Path:
    """A local copy of an MLflow artifact or model (``runs:/``, ``models:/``) from the config's store, in a
    temporary folder deleted when the process exits (MLflow's own, without a destination, stays in /tmp for good:
    one per explain or verify that read a model from the store)."""
    import inspect

    mlflow, store = _client(cfg), tracking_uri(cfg)
    accepted = inspect.signature(mlflow.artifacts.download_artifacts).parameters  # registry_uri: MLflow 3.5+
    stores = {key: value for key, value in (("tracking_uri", store), ("registry_uri", registry_uri(store)))
              if key in accepted and value is not None}
    earlier = _downloads.get((store, uri))
    if earlier is not None and earlier[1].exists():
        return earlier[1]
    folder = tempfile.TemporaryDirectory(prefix="lakelabel-mlflow-")
    copy = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder.name, **stores))
    _downloads[(store, uri)] = (folder, copy)
    return copy


def downloaded(path: str | Path) -> bool:
    """Whether ``path`` is in a copy :func:`download_artifacts` made (gone once the process exits)."""
    return any(Path(path).is_relative_to(folder.name) for folder, _ in _downloads.values())


@contextlib.contextmanager
def store_lock(cfg: PipelineConfig):
    """Serialize creating the default sqlite store and the experiment across processes.

    Two runs on one fresh lakehouse would both create the store's tables (the loser died with
    ``sqlite3.OperationalError: table ... already exists``) and both create the experiment. An
    exclusive ``flock`` on ``<lakehouse>/mlflow.db.lock`` around the first store access and the
    experiment lookup or creation makes the second run wait a moment instead. Other tracking URIs
    (a server, Databricks) serialize on their own.
    """
    if os.environ.get("MLFLOW_TRACKING_URI") or cfg.mlflow.tracking_uri or fcntl is None:
        yield
        return
    cfg.lakehouse_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(cfg.lakehouse_path / "mlflow.db.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _experiment_id(mlflow, cfg: PipelineConfig) -> str:
    with store_lock(cfg):
        experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
        if experiment is not None:
            _check_artifacts_here(cfg, experiment.artifact_location)
            return experiment.experiment_id
        location = None
        if tracking_uri(cfg).startswith("sqlite:") and not os.environ.get("MLFLOW_TRACKING_URI"):
            location = (cfg.lakehouse_path / "mlartifacts").as_uri()
        return mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=location)


def check_server(cfg: PipelineConfig, command: str) -> None:
    """Before a command's work: a tracking server (``http(s)://``) answers one request, through MLflow's own HTTP
    retries, saying every interval that it waits. A server that is down then fails the command before it computes or
    commits anything (exit 3), not after (a stage job's commit stood, ``analyze`` wrote its document first)."""
    uri = tracking_uri(cfg)
    if cfg.mlflow.enabled and (refused := file_store_error(uri, "MLFLOW_TRACKING_URI" if os.environ.get(
            "MLFLOW_TRACKING_URI") else "mlflow.tracking_uri")) is not None:
        raise ConfigError(refused)  # before any work: MLflow's own refusal came at the first log, exit 1
    if not cfg.mlflow.enabled or not uri.startswith(("http:", "https:")):
        return
    from jobs.runtime import progress

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    faults.talking_to(uri)
    # One try waits up to MLflow's request timeout (120 s): a server that drops the packets would hold each of the
    # retries that long. Here 30 s, unless MLFLOW_HTTP_REQUEST_TIMEOUT says otherwise.
    try:
        with env_defaults(MLFLOW_HTTP_REQUEST_TIMEOUT="30"), \
                progress.waiting_before_spark(command, f"the MLflow tracking server {uri}"):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - said in lakelabel's words when it is the server's answer or silence
        if refused := faults.tracking_refusal(err, server=uri):
            raise ConfigError(refused) from None
        if down := faults.tracking_reason(err, server=uri):
            raise TransientError(down) from None
        raise


@contextlib.contextmanager
def env_defaults(**values: str):
    """MLflow settings (its environment variables) for the calls inside, where the user set none of their own."""
    added = {key: value for key, value in values.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def check_store_here(cfg: PipelineConfig) -> None:
    """Before a command's work: the lakehouse's own MLflow store logs to this lakehouse
    (:func:`_check_artifacts_here`), read with sqlite3 (no MLflow import); a store it cannot read is
    left to MLflow to report."""
    db = cfg.lakehouse_path / "mlflow.db"
    if not cfg.mlflow.enabled or tracking_uri(cfg) != f"sqlite:///{db}" or not db.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as con:
            row = con.execute("SELECT artifact_location FROM experiments WHERE name = ?",
                              (cfg.mlflow.experiment,)).fetchone()
    except sqlite3.Error:
        return
    if row and row[0]:
        _check_artifacts_here(cfg, row[0])


def _check_artifacts_here(cfg: PipelineConfig, location: str) -> None:
    """The lakehouse's own MLflow store (``mlflow.db``) logs its experiment's artifacts to the lakehouse's
    ``mlartifacts``. A store moved or copied with its lakehouse names the old folder (sqlite keeps the
    absolute path): a copy would write its models into the original, a moved one recreate the old folder."""
    if tracking_uri(cfg) != f"sqlite:///{cfg.lakehouse_path / 'mlflow.db'}":
        return
    here = (cfg.lakehouse_path / "mlartifacts").as_uri()
    if location == here or not location.startswith("file:") or not location.endswith("/mlartifacts"):
        return
    raise ConfigError(
        f"the MLflow store {cfg.lakehouse_path / 'mlflow.db'} logs experiment {cfg.mlflow.experiment!r} to "
        f"{location}, not to this lakehouse's {here}: the lakehouse was moved or copied from there. Set "
        f"mlflow.experiment to a new name in the config (its artifacts go to {here}, the earlier runs stay in the "
        f"store), MLFLOW_TRACKING_URI to a tracking server, or mlflow.enabled to false")


def start_run(cfg: PipelineConfig, run_id: str):
    """Start a new MLflow run for one pipeline execution, tagged with the lakelabel run id.

    An earlier attempt of the same lakelabel run still marked RUNNING ended without ending its MLflow
    run (SIGKILL: an orchestrator's timeout, the kernel's out-of-memory killer): this retry marks it
    KILLED, so no attempt stays RUNNING for ever.
    """
    mlflow = _client(cfg)
    experiment_id = _experiment_id(mlflow, cfg)
    if mlflow.active_run() is not None:
        mlflow.end_run()
    running = mlflow.search_runs(experiment_ids=[experiment_id], output_format="list",
                                 filter_string="attributes.status = 'RUNNING'")
    # The same run id's: an earlier attempt (a retry), unless its process is known to run still (two at once).
    stale = [r for r in running
             if r.data.tags.get(RUN_TAG) == run_id and not processes.alive(r.data.tags.get(PROCESS_TAG))]
    dead = [r for r in running if r not in stale and RUN_TAG in r.data.tags
            and processes.gone(r.data.tags.get(PROCESS_TAG))]  # fmt: skip
    ended_by = (
        (stale, "a later attempt of this run started; this one ended without ending its MLflow run (killed: SIGKILL, "
                "out of memory; or the MLflow store could not be written or did not answer as it ended)"),
        (dead, "its process is gone and it never ended its MLflow run (killed: SIGKILL, out of memory; or the "
               f"MLflow store could not be written or did not answer as it ended); marked by run {run_id}"),
    )
    client = mlflow.MlflowClient() if stale or dead else None
    for runs, why in ended_by:
        for r in runs:
            client.set_tag(r.info.run_id, "lakelabel.ended_by", why)
            client.set_terminated(r.info.run_id, status="KILLED")
    if stale:
        log.warning("MLflow run(s) %s of an earlier attempt of run %s were still RUNNING (that process was killed, "
                    "or its MLflow store could not be written as it ended): marked KILLED",
                    ", ".join(r.info.run_id for r in stale), run_id)
    if dead:
        log.warning("MLflow run(s) %s (lakelabel runs %s) were still RUNNING though their process on this machine is "
                    "gone (killed, or their MLflow store could not be written as they ended; a retry under another "
                    "run id): marked KILLED",
                    ", ".join(r.info.run_id for r in dead), ", ".join(sorted({r.data.tags[RUN_TAG] for r in dead})))
    return mlflow.start_run(experiment_id=experiment_id, run_name=run_id,
                            tags={RUN_TAG: run_id, PROCESS_TAG: processes.identity()})


def attach_run(cfg: PipelineConfig, run_id: str):
    """Continue the MLflow run of lakelabel run ``run_id``, or start one: stage jobs share it.

    ``lakelabel apply``, ``aggregate``, ``fit`` and ``write`` scheduled as separate jobs with one
    ``--run-id`` log into a single MLflow run, the latest one tagged with that id.
    """
    mlflow = _client(cfg)
    with store_lock(cfg):
        experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
    if experiment is not None:
        found = mlflow.search_runs(
            experiment_ids=[experiment.experiment_id],
            filter_string=f"tags.`{RUN_TAG}` = '{run_id}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
        if found:
            if mlflow.active_run() is not None:
                mlflow.end_run()
            # start_run(run_id=...) refuses a run outside the process's active experiment, which an
            # earlier job in this process (a notebook, a test) may have set to another one.
            mlflow.set_experiment(experiment_id=experiment.experiment_id)
            # This stage job's process has it open now: tagged before it is RUNNING again, so that no other run
            # sees it RUNNING under the previous stage's (ended) process and marks it KILLED.
            mlflow.MlflowClient().set_tag(found[0].info.run_id, PROCESS_TAG, processes.identity())
            return mlflow.start_run(run_id=found[0].info.run_id)
    return start_run(cfg, run_id)


def end_run(cfg: PipelineConfig, status: str = "FINISHED", *, failing: bool = False) -> None:
    """End the active MLflow run with ``status`` (FINISHED, FAILED or KILLED).

    ``failing``: the job is already raising; a store error here is logged, not raised, so it does
    not hide the job's own error.
    """
    try:
        mlflow = _client(cfg)
        if mlflow.active_run() is not None:
            mlflow.end_run(status=status)
    except Exception as err:  # noqa: BLE001
        if not failing:
            raise
        from jobs.runtime.faults import error_line

        log.warning("could not mark MLflow run %s: %s", status, error_line(err, 300))  # SQLAlchemy's: 5 lines


def flatten_params(prefix: str, value: Any, out: dict[str, str]) -> None:
    """MLflow params of a config section: ``prefix.key.subkey`` -> the value as text (lists as JSON)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            flatten_params(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def log_apply(cfg: PipelineConfig, applied) -> None:
    """The apply's params (config, LF versions, source), metrics and summary, into the active run. An apply that
    found the votes up to date logs its params too (they are the run's inputs), but not its metrics and summary
    into a run that holds an apply's already (a retried stage: they would replace the apply that did the work)."""
    mlflow = _client(cfg)
    params: dict[str, str] = {}
    flatten_params("config", cfg.to_dict(), params)
    for lf in applied.lfs:
        params[f"lf.{lf.name}"] = lf.version
    params["source.version"] = str(applied.source_version)
    params["source.fingerprint"] = applied.fingerprint
    log_params_kept(mlflow, {k: v[:6000] for k, v in params.items()}, "apply")
    if applied.skipped and "apply_seconds" in mlflow.get_run(mlflow.active_run().info.run_id).data.metrics:
        return
    metrics = {"source_rows": applied.n_rows, "apply_seconds": applied.seconds}
    for lf in applied.lfs:
        metrics[f"lf_errors.{lf.name}"] = lf.errors
    mlflow.log_metrics(metrics)
    mlflow.log_dict(json.loads(applied.to_json()), "apply_summary.json")


def log_params_kept(mlflow: Any, params: dict[str, str], stage: str,
                    advice: str = "Use a new --run-id to keep the runs apart") -> None:
    """Log ``params`` to the active run; those it already holds with another value become tags.

    A stage rerun under its run id with other inputs or settings (an LF edited, rows added, another
    label model setting): an MLflow param cannot change, so the run keeps the first values as its
    params and records this stage's as tags of the same names, with a warning.
    """
    active = mlflow.active_run()
    data = mlflow.get_run(active.info.run_id).data if active is not None else None
    earlier, tags = (data.params, data.tags) if data is not None else ({}, {})
    new = {k: v for k, v in params.items() if k not in earlier}
    changed = {k: v for k, v in params.items() if k in earlier and earlier[k] != v}
    back = {k: v for k, v in params.items() if k in earlier and earlier[k] == v and tags.get(k, v) != v}
    if new:
        mlflow.log_params(new)
    if back:  # an attempt back at the first values: the tags an attempt in between set say so too
        mlflow.set_tags(back)
    if changed:
        shown = ", ".join(f"{k}={earlier[k]}" for k in sorted(changed)[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        log.warning("MLflow run %s already records %s; this %s's values (%s) are recorded as tags of the same "
                    "names (an MLflow param cannot change). %s",
                    active.info.run_id, shown, stage, ", ".join(f"{k}={changed[k]}" for k in sorted(changed)[:3]), advice)
        mlflow.set_tags(changed)


def log_drift(cfg: PipelineConfig, doc: dict[str, Any], metrics: dict[str, float], name: str = "drift.json") -> None:
    """Log a run's drift section (:mod:`jobs.changes.drift`): ``drift.*`` metrics and ``drift.json``
    (``name``: a task's file)."""
    mlflow = _client(cfg)
    mlflow.log_metrics(metrics)
    mlflow.log_dict(doc, name)


def log_fit(cfg: PipelineConfig, fitted, lf_names: list[str], label_space: list[str]) -> str:
    """Log metrics, the LF summary and the label model; return the model URI."""
    return log_task_fit(cfg, fitted, lf_names, label_space, task=None)


def log_task_fit(cfg: PipelineConfig, fitted, lf_names: list[str], label_space: list[str], *,
                 task: str | None) -> str:
    """:func:`log_fit` for one task of a multi-task run (``task``; None: the single task).

    Metric names get the prefix ``<task>.``, the model is logged as ``label_model_<task>``.
    """
    mlflow = _client(cfg)
    pre, suffix = (f"{task}.", f"_{task}") if task else ("", "")
    metrics = {pre + k: float(v) for k, v in fitted.metrics.items() if v is not None and v == v}
    for row in fitted.lf_table:
        metrics[f"{pre}lf_coverage.{row['lf']}"] = row["coverage"]
        metrics[f"{pre}lf_estimated_accuracy.{row['lf']}"] = row["estimated_accuracy"]
        if row.get("empirical_accuracy") is not None:
            metrics[f"{pre}lf_gold_accuracy.{row['lf']}"] = row["empirical_accuracy"]
    mlflow.log_metrics(metrics)
    mlflow.log_dict({"lfs": fitted.lf_table}, f"lf_summary{suffix}.json")
    log_params_kept(mlflow, {f"label_model.version{suffix}": fitted.model_version}, "fit")
    code = pkgutil.get_data("jobs.runtime", "pyfunc_model.py")
    key = hashlib.sha256(json.dumps([fitted.model_version, list(lf_names), list(label_space),
                                     cfg.output.tie_break_policy, hashlib.sha256(code).hexdigest()]).encode()).hexdigest()
    logged = _logged_model(mlflow, f"label_model{suffix}", key)
    if logged is not None:  # a rerun of this fit under the run id: the run keeps one model, not one per rerun
        return logged
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="lakelabel-model-") as tmp:
        warnings.simplefilter("ignore")
        # Models from code: the model file is copied into the artifact and run at load time,
        # so nothing is pickled. MLflow wants a real file, and under spark-submit --py-files this
        # module is imported from a zip, so the model file is written out first.
        model_code = Path(tmp) / "_pyfunc_model.py"
        model_code.write_bytes(code)
        # The columns go in an artifact, not the model config: MLflow logs a model config as run
        # params, and a run's params cannot change, so a second task's LF names would be refused.
        # The config holds what a user may override at load time: the labels table's tie policy.
        columns = Path(tmp) / "columns.json"
        columns.write_text(json.dumps({"lf_names": list(lf_names), "label_space": list(label_space)}))
        info = mlflow.pyfunc.log_model(
            name=f"label_model{suffix}",
            python_model=str(model_code),
            artifacts={"label_model": fitted.model_path, "columns": str(columns)},
            model_config={"tie_break_policy": cfg.output.tie_break_policy},
            signature=_signature(lf_names, label_space),
            pip_requirements=["lakelabel", "numpy", "scipy", "pandas"],
            tags={MODEL_KEY_TAG: key},
        )
    return info.model_uri


#: The tag of a logged label model that says what it is: a hash of the fitted model's version, its LF and class
#: names, the tie policy and the pyfunc code (:func:`log_task_fit`).
MODEL_KEY_TAG = "lakelabel.model_key"


def _logged_model(mlflow: Any, name: str, key: str) -> str | None:
    """The URI of the model ``name`` the active run already logged with the tag ``key``, else None (also when the
    store cannot search logged models: the model is then logged again)."""
    run = mlflow.active_run()
    try:
        found = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list",
                                            filter_string=f"source_run_id = '{run.info.run_id}'")
    except Exception as err:  # noqa: BLE001 - an older server without the API: log as before
        log.debug("fit: cannot search the run's logged models (%s); logging the label model", err)
        return None
    same = [m for m in found if m.name == name and m.tags.get(MODEL_KEY_TAG) == key and str(m.status) == "READY"]
    return same[0].model_uri if same else None


def _signature(lf_names, label_space):
    """One required long column per LF, and an optional ``row_id`` of any type: MLflow drops the input columns
    a signature does not name, and ``"random"`` ties hash the row id as the labels table does (a drill found
    them following row positions through ``mlflow.pyfunc.load_model``)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    row_id = [] if "row_id" in lf_names else [ColSpec(AnyType(), "row_id", required=False)]
    inputs = Schema([ColSpec("long", name) for name in lf_names] + row_id)
    outputs = Schema(
        [ColSpec("double", f"p_{c}") for c in label_space] + [ColSpec("long", "label"), ColSpec("string", "label_name")]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def log_write(cfg: PipelineConfig, written, summary: dict[str, Any]) -> None:
    mlflow = _client(cfg)
    mlflow.log_metrics({"labels_rows": written.n_rows, "write_seconds": written.seconds})
    mlflow.log_dict(summary, "run_summary.json")


