"""Orchestration: environment overlays, the Airflow DAG, the Databricks bundle, the CLI's run contract.

The DAG is read with ``ast`` (Airflow is not installed here): its module-level constants and helper
functions run, its ``with DAG(...)`` blocks are parsed for SparkSubmitOperator calls and ``>>``
chains, and ``{{ expr }}`` templates are rendered with sample values. The bundle is read as YAML
with ``${...}`` substitutions resolved the way ``databricks bundle`` does for these keys.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import replace
import json
import re
import shutil
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from jobs.runtime.config import PipelineConfig
from jobs.runtime.config_loading import load_config
from jobs.runtime.runs import check_run_id
from jobs.cli import main
from jobs.cli import parser as _parser
from lf_library.errors import ConfigError, InputDataError

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
DAG_FILE = CONF / "airflow" / "lakelabel_dag.py"
BUNDLE_DIR = CONF / "databricks"
PIPELINES = sorted(CONF.glob("*.yaml"))
ENVS = sorted(p.stem for p in (CONF / "env").glob("*.yaml"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
AIRFLOW_RUN_ID = "scheduled__2026-11-24T03:00:00+00:00"
DATABRICKS_RUN_ID = "918273645"


def render(text: str, **context: Any) -> str:
    """Render ``{{ expr }}`` templates (Jinja with Python-compatible expressions) from ``context``."""
    return re.sub(r"\{\{\s*(.+?)\s*\}\}", lambda m: str(eval(m.group(1), {"__builtins__": {}}, context)), text)


# -- configuration overlays -----------------------------------------------------------------------


def test_conf_has_pipelines_and_the_three_environments():
    assert PIPELINES, f"no pipeline configs in {CONF}"
    assert {"local", "cluster", "databricks"} <= set(ENVS), ENVS


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: p.name)
def test_every_overlay_loads_over_every_pipeline(pipeline, env, monkeypatch, tmp_path):
    monkeypatch.setenv("LAKELABEL_LAKEHOUSE", str(tmp_path / "lake"))
    monkeypatch.delenv("LAKELABEL_MLFLOW_EXPERIMENT", raising=False)
    monkeypatch.delenv("LAKELABEL_SHUFFLE_PARTITIONS", raising=False)
    base = load_config(pipeline)
    cfg = load_config(pipeline, env=env)
    assert cfg.lfs.modules == base.lfs.modules and cfg.source == base.source
    if env == "local":
        assert cfg.lakehouse == base.lakehouse and cfg.spark.master == "local[*]"
    else:
        # On a cluster the lakehouse is shared storage named by the environment, and Spark's
        # master comes from spark-submit or Databricks, never from the config.
        assert cfg.lakehouse == str(tmp_path / "lake") and cfg.spark.master is None
        assert cfg.spark.conf["spark.sql.shuffle.partitions"] in ("200", "auto")
    if env == "databricks":
        assert cfg.tables.delta_io == "native"
        assert cfg.mlflow.tracking_uri == "databricks" and cfg.mlflow.experiment == "/Shared/lakelabel"


@pytest.mark.parametrize("env", ["cluster", "databricks"])
def test_cluster_overlays_need_the_lakehouse_variable(env, monkeypatch):
    monkeypatch.delenv("LAKELABEL_LAKEHOUSE", raising=False)
    with pytest.raises(ConfigError, match=rf"environment overlay .*conf/env/{env}.yaml references "
                                          r"\$\{LAKELABEL_LAKEHOUSE\} but the environment variable is not set; set it "
                                          r"or write \$\{LAKELABEL_LAKEHOUSE:-default\}"):
        load_config(CONF / "youtube.yaml", env=env)
    # Set with --set instead (or a notebook's overrides widget): the variable is not needed.
    assert load_config(CONF / "youtube.yaml", env=env, overrides=["lakehouse=/Volumes/x"]).lakehouse == "/Volumes/x"


def test_unknown_environment_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"no environment overlay 'prod': looked for .*conf/env/prod\.yaml; known "
                                          r"environments: cluster, databricks, local\. Fix --env"):
        load_config(CONF / "youtube.yaml", env="prod")


def _project_with_overlay(tmp_path: Path, overlay: str) -> Path:
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "bad.yaml").write_text(overlay)
    shutil.copy(CONF / "demo.yaml", tmp_path / "demo.yaml")
    return tmp_path / "demo.yaml"


def test_bad_overlay_key_is_named_with_the_valid_ones(tmp_path):
    config = _project_with_overlay(tmp_path, "spark:\n  mastr: yarn\nlakehose: /x\n")
    top = ", ".join(sorted(f.name for f in dataclasses.fields(PipelineConfig)))
    where = re.escape(str(tmp_path / "env" / "bad.yaml"))
    with pytest.raises(ConfigError, match=rf"^{where}: unknown config key lakehose; valid keys: {re.escape(top)}$"):
        load_config(config, env="bad")
    (tmp_path / "env" / "bad.yaml").write_text("spark:\n  mastr: yarn\n")
    with pytest.raises(ConfigError, match=rf"^{where}: unknown config key spark\.mastr; valid keys of spark: conf, executor_wait_seconds, master$"):
        load_config(config, env="bad")
    (tmp_path / "env" / "bad.yaml").write_text("tables:\n  delta_io: spark\n")
    with pytest.raises(ConfigError, match=r"^tables\.delta_io = 'spark' is not valid; choose one of: auto, local, native$"):
        load_config(config, env="bad")


def test_cli_reports_a_bad_overlay_in_one_line(tmp_path, capsys):
    config = _project_with_overlay(tmp_path, "tables:\n  vots: v\n")
    assert main(["run", "--config", str(config), "--env", "bad", "--run-id", "r1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"lakelabel: error: {tmp_path / 'env' / 'bad.yaml'}: unknown config key tables.vots; valid keys of "
                   f"tables: compact_min_files, delta_io, gold, label_changes, labels, predictions, votes"]


# -- Airflow ----------------------------------------------------------------------------------------


def _is_airflow_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "airflow"
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "airflow" for alias in node.names)
    if isinstance(node, ast.Try):
        return all(_is_airflow_import(n) for n in node.body)
    return False


def _eval(node: ast.expr, namespace: dict[str, Any]) -> Any:
    return eval(compile(ast.Expression(node), str(DAG_FILE), "eval"), namespace)


def _call_kwargs(call: ast.Call, namespace: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            kwargs.update(_eval(kw.value, namespace))
        else:
            kwargs[kw.arg] = _eval(kw.value, namespace)
    return kwargs


def _chain(node: ast.expr) -> list[str]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
        return _chain(node.left) + _chain(node.right)
    assert isinstance(node, ast.Name), ast.dump(node)
    return [node.id]


def load_dags(monkeypatch) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Run the DAG file's module level without Airflow; return its namespace and its DAGs.

    Each DAG: ``{"kwargs": DAG(...) arguments, "tasks": {task_id: operator arguments},
    "edges": [(upstream, downstream), ...]}``.
    """
    monkeypatch.setenv("LAKELABEL_HOME", str(REPO))
    tree = ast.parse(DAG_FILE.read_text(), str(DAG_FILE))
    plain = [n for n in tree.body if not _is_airflow_import(n) and not isinstance(n, (ast.With, ast.ClassDef))]
    namespace: dict[str, Any] = {"__name__": "lakelabel_dag"}
    exec(compile(ast.Module(body=plain, type_ignores=[]), str(DAG_FILE), "exec"), namespace)
    dags = {}
    for block in (n for n in tree.body if isinstance(n, ast.With)):
        call = block.items[0].context_expr
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "DAG"
        kwargs = _call_kwargs(call, namespace)
        tasks, names, edges = {}, {}, []
        for stmt in block.body:
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.Expr)) else None
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                assert value.func.id == "LakelabelSubmitOperator", value.func.id
                op = _call_kwargs(value, namespace)
                tasks[op["task_id"]] = op
                if isinstance(stmt, ast.Assign):
                    names[stmt.targets[0].id] = op["task_id"]
            elif isinstance(value, ast.BinOp):
                chain = [names[n] for n in _chain(value)]
                edges += list(zip(chain, chain[1:]))
        dags[kwargs["dag_id"]] = {"kwargs": kwargs, "tasks": tasks, "edges": edges}
    return namespace, dags


def test_airflow_dags_and_task_order(monkeypatch):
    namespace, dags = load_dags(monkeypatch)
    assert set(dags) == {"lakelabel_youtube", "lakelabel_youtube_stages"}
    assert list(dags["lakelabel_youtube"]["tasks"]) == ["run"] and dags["lakelabel_youtube"]["edges"] == []
    stages = dags["lakelabel_youtube_stages"]
    assert list(stages["tasks"]) == ["apply", "aggregate", "fit", "write"]
    assert stages["edges"] == [("apply", "aggregate"), ("aggregate", "fit"), ("fit", "write")]
    for dag in dags.values():
        kwargs = dag["kwargs"]
        # Two runs at once would replace the same tables; retries are safe because of the run id.
        assert kwargs["max_active_runs"] == 1 and kwargs["catchup"] is False
        assert kwargs["default_args"]["retries"] >= 1
        assert kwargs["user_defined_macros"]["lakelabel_run_id"] is namespace["lakelabel_run_id"]


def test_airflow_tasks_do_not_retry_exit_code_2(monkeypatch):
    """A drill: with no model registered, `dags test lakelabel_youtube` put the task up for retry after lakelabel's
    exit 2 and kept waiting on the 5-minute backoff, though every attempt fails the same way. Each task is a
    SparkSubmitOperator that raises AirflowFailException (no retry) for exit 2, reading the code from the Spark
    hook's error (provider 6.3.4's words; benchmarks/RESULTS.md, session 34, ran it under Airflow 3.3.2)."""
    namespace, _ = load_dags(monkeypatch)
    tree = ast.parse(DAG_FILE.read_text(), str(DAG_FILE))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert cls.name == "LakelabelSubmitOperator" and [b.id for b in cls.bases] == ["SparkSubmitOperator"]
    assert "AirflowFailException" in ast.unparse(cls) and namespace["NO_RETRY_EXIT_CODES"] == (2,)
    # The class's own code, on a base whose execute fails as the provider's hook does.
    class AirflowException(Exception):
        pass

    class AirflowFailException(AirflowException):
        pass

    class SparkSubmitOperator:
        def __init__(self, message: str) -> None:
            self.message = message

        def execute(self, context):
            raise AirflowException(self.message)

    scope = {**namespace, "AirflowException": AirflowException, "AirflowFailException": AirflowFailException,
             "SparkSubmitOperator": SparkSubmitOperator}
    exec(compile(ast.Module(body=[cls], type_ignores=[]), str(DAG_FILE), "exec"), scope)
    for returned, raised in ((2, AirflowFailException), (3, AirflowException), (1, AirflowException)):
        with pytest.raises(AirflowException) as caught:
            scope["LakelabelSubmitOperator"](f"Cannot execute: spark-submit ... Error code is: {returned}.").execute({})
        assert type(caught.value) is raised, returned
    code = namespace["submit_exit_code"]
    assert code("Cannot execute: spark-submit --master spark://127.0.0.1:7077 --name lakelabel-run jobs/cli.py run. "
                "Error code is: 2.\nlakelabel: error: model URI ...") == 2
    assert code("Cannot execute: spark-submit ... Error code is: 3.") == 3
    assert code("Cannot execute: spark-submit ... Error code is: -9.") == -9  # killed: retried
    assert code("Task received SIGTERM signal") is None


def test_airflow_tasks_run_real_entry_points_and_configs(monkeypatch, tmp_path):
    monkeypatch.delenv("LAKELABEL_VERSION", raising=False)
    _, dags = load_dags(monkeypatch)
    from jobs.runtime.package import build_zip

    zip_name = build_zip(tmp_path / "dist").name
    assert zip_name == f"lakelabel-{PYPROJECT['project']['version']}.zip"
    for dag_id, dag in dags.items():
        macros = dag["kwargs"]["user_defined_macros"]
        context = {"run_id": AIRFLOW_RUN_ID, "dag": SimpleNamespace(dag_id=dag_id), **macros}
        run_ids, summaries = set(), set()
        for task_id, op in dag["tasks"].items():
            app = Path(op["application"])
            assert app == REPO / "jobs" / "cli.py" and 'if __name__ == "__main__":' in app.read_text()
            # The zip `lakelabel package` writes, the only format spark-submit imports from.
            assert Path(op["py_files"]) == REPO / "dist" / zip_name
            assert op["deploy_mode"] == "client"
            assert all(k.startswith("spark.") and isinstance(v, str) for k, v in op["conf"].items())
            # Spark's INFO lines out of the task log, as --driver-java-options does on the command line.
            log4j = op["conf"]["spark.driver.extraJavaOptions"].removeprefix("-Dlog4j2.configurationFile=file:")
            assert Path(log4j) == REPO / "jobs" / "conf" / "log4j2.properties" and Path(log4j).is_file()
            args = _parser().parse_args([render(a, **context) for a in op["application_args"]])
            assert args.command == task_id and args.env == "cluster"
            assert Path(args.config).is_file(), args.config
            monkeypatch.delenv("LAKELABEL_LAKEHOUSE", raising=False)
            for name, value in op["env_vars"].items():
                monkeypatch.setenv(name, value)
            cfg = load_config(args.config, env=args.env)
            assert cfg.lakehouse == op["env_vars"]["LAKELABEL_LAKEHOUSE"]
            run_ids.add(check_run_id(args.run_id))
            summaries.add(args.summary_json)
            assert args.summary_json.endswith(f"/{dag_id}/{args.run_id}/{task_id}.json")
        assert run_ids == {"scheduled__2026-11-24T030000-0000"}
        assert len(summaries) == len(dag["tasks"])
    assert "package" in _parser().parse_args(["package"]).command


@pytest.mark.parametrize("airflow_run_id", [
    AIRFLOW_RUN_ID,
    "manual__2026-11-24T10:15:00.123456+00:00",
    "asset_triggered__2026-11-24T10:15:00+00:00",
    "backfill run/with spaces:and+plus",
    "__odd__",
    ":::",
    "x" * 300,
])
def test_lakelabel_run_id_from_any_airflow_run_id(airflow_run_id, monkeypatch):
    namespace, _ = load_dags(monkeypatch)
    fn = namespace["lakelabel_run_id"]
    run_id = fn(airflow_run_id)
    assert check_run_id(run_id) == run_id and fn(airflow_run_id) == run_id
    assert fn(airflow_run_id + "0") != run_id


def test_hand_given_airflow_run_ids_stay_distinct(monkeypatch):
    """A drill (session 39): ids given by hand that differ only in the characters made safe shared one run id, so
    the second DAG run reused the first one's result, or replaced its record."""
    namespace, _ = load_dags(monkeypatch)
    fn = namespace["lakelabel_run_id"]
    ids = ["nightly/2026-12-01", "nightly 2026-12-01", "nightly-2026-12-01", "nightly:2026-12-01", "nightly2026-12-01"]
    assert len({fn(i) for i in ids}) == len(ids)
    assert fn("nightly-2026-12-01") == "nightly-2026-12-01" and fn("nightly2026-12-01") == "nightly2026-12-01"
    assert fn(AIRFLOW_RUN_ID) == "scheduled__2026-11-24T030000-0000"  # Airflow's own keep their readable form


# -- Databricks bundle -------------------------------------------------------------------------------


def load_bundle() -> dict[str, Any]:
    """databricks.yml with ``${var.*}``, ``${bundle.*}`` and ``${workspace.file_path}`` resolved."""
    raw = yaml.safe_load((BUNDLE_DIR / "databricks.yml").read_text())
    values = {f"var.{k}": v["default"] for k, v in raw["variables"].items()}
    values |= {"bundle.name": raw["bundle"]["name"], "bundle.target": "dev", "workspace.file_path": str(REPO)}

    def resolve(node: Any) -> Any:
        if isinstance(node, str):
            return re.sub(r"\$\{([A-Za-z0-9_.]+)\}", lambda m: str(values[m.group(1)]), node)
        if isinstance(node, list):
            return [resolve(v) for v in node]
        if isinstance(node, dict):
            return {k: resolve(v) for k, v in node.items()}
        return node

    return resolve(raw)


def _bundle_tasks(bundle: dict[str, Any]) -> list[tuple[dict, dict, dict]]:
    out = []
    for job in bundle["resources"]["jobs"].values():
        clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
        out += [(job, task, clusters[task["job_cluster_key"]]) for task in job["tasks"]]
    assert out, "no tasks in the bundle"
    return out


def test_bundle_syncs_the_repository_and_builds_its_wheel():
    bundle = load_bundle()
    # ${workspace.file_path} is the sync root: the repository, as in this checkout.
    assert bundle["sync"]["paths"] == ["../.."] and (BUNDLE_DIR / "../..").resolve() == REPO
    (artifact,) = bundle["artifacts"].values()
    assert artifact["type"] == "whl" and (BUNDLE_DIR / artifact["path"]).resolve() == REPO
    assert (REPO / "pyproject.toml").is_file() and "--wheel-dir dist" in artifact["build"]
    for job, task, _ in _bundle_tasks(bundle):
        assert job["max_concurrent_runs"] == 1 and task["max_retries"] >= 1
        (library,) = task["libraries"]
        wheel = BUNDLE_DIR / library["whl"]
        assert wheel.parent.resolve() == REPO / "dist" and wheel.name == f"{PYPROJECT['project']['name']}-*.whl"


def test_bundle_wheel_task_runs_the_console_script(monkeypatch, tmp_path):
    bundle = load_bundle()
    wheel_tasks = [(t, c) for _, t, c in _bundle_tasks(bundle) if "python_wheel_task" in t]
    assert wheel_tasks
    for task, cluster in wheel_tasks:
        spec = task["python_wheel_task"]
        assert spec["package_name"] == PYPROJECT["project"]["name"]
        assert PYPROJECT["project"]["scripts"][spec["entry_point"]] == "jobs.cli:entry"
        argv = [render(p, job=SimpleNamespace(run_id=DATABRICKS_RUN_ID)) for p in spec["parameters"]]
        args = _parser().parse_args(argv)
        assert args.command == "run" and args.env == "databricks" and check_run_id(args.run_id) == DATABRICKS_RUN_ID
        assert DATABRICKS_RUN_ID in args.summary_json
        assert Path(args.config).is_file(), args.config
        for name, value in cluster["spark_env_vars"].items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)  # a wheel task runs in a folder of its own, not the repository
        cfg = load_config(args.config, env=args.env)
        assert cfg.lakehouse == bundle["variables"]["lakehouse"]["default"]
        assert cfg.mlflow.experiment == bundle["variables"]["mlflow_experiment"]["default"]
        declared = {lf["name"]: lf for lf in cfg.lfs.declared}  # the Unity Catalog model, the term list beside
        model = bundle["variables"]["youtube_model"]["default"]
        assert declared["model_video1"]["model_uri"] == f"models:/{model}@champion"
        assert Path(declared["lex_team_terms"]["file"]) == REPO / "conf" / "youtube_terms.csv"


def test_bundle_notebook_task_sets_the_notebooks_widgets(monkeypatch):
    bundle = load_bundle()
    notebook_tasks = [(t, c) for _, t, c in _bundle_tasks(bundle) if "notebook_task" in t]
    assert notebook_tasks
    for task, cluster in notebook_tasks:
        notebook = (BUNDLE_DIR / task["notebook_task"]["notebook_path"]).resolve()
        source = notebook.read_text()
        assert notebook.parent == REPO / "notebooks" and source.startswith("# Databricks notebook source")
        widgets = set(re.findall(r'dbutils\.widgets\.text\("(\w+)"', source))
        params = {k: render(v, job=SimpleNamespace(run_id=DATABRICKS_RUN_ID))
                  for k, v in task["notebook_task"]["base_parameters"].items()}
        assert set(params) <= widgets, set(params) - widgets
        assert check_run_id(params["run_id"]) == DATABRICKS_RUN_ID
        for name, value in cluster["spark_env_vars"].items():
            monkeypatch.setenv(name, value)
        assert load_config(params["config"], env=params["env"]).tables.delta_io == "native"


# -- the CLI's run contract, in process on the shared session -----------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A pipeline config over 40 literal rows, beside a copy of the real local overlay."""
    from tests.jobs.test_pipeline import make_rows, write_source

    root = tmp_path_factory.mktemp("orchestration")
    (root / "conf" / "env").mkdir(parents=True)
    shutil.copy(CONF / "env" / "local.yaml", root / "conf" / "env" / "local.yaml")
    config = {
        "lakehouse": str(root / "lake"),
        "source": {"path": write_source(root, make_rows(40)), "format": "parquet", "id_column": "id",
                   "gold_column": "gold"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
        "mlflow": {"enabled": False},
    }
    path = root / "conf" / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _command(command: str, config: Path, run_id: str, summary: Path, *extra: str) -> dict[str, Any]:
    rc = main([command, "--config", str(config), "--env", "local", "--run-id", run_id,
               "--summary-json", str(summary), "-q", *extra])
    assert rc == 0, command
    return json.loads(summary.read_text())


STAGES = ("apply", "aggregate", "fit", "write")


@pytest.fixture(scope="module")
def stage_runs(spark, project, tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """Each stage command run twice in order with one run id, MLflow on: ``{stage: [first, rerun]}``."""
    out = tmp_path_factory.mktemp("summaries")
    runs: dict[str, list[dict[str, Any]]] = {stage: [] for stage in STAGES}
    for attempt in range(2):
        for stage in STAGES:
            runs[stage].append(_command(stage, project, "stages-1", out / f"{stage}-{attempt}.json",
                                        "--set", "mlflow.enabled=true"))
    return runs


@pytest.mark.spark
@pytest.mark.slow
def test_stage_commands_write_their_summaries(spark, stage_runs, project):
    lake = Path(yaml.safe_load(project.read_text())["lakehouse"])
    votes = {"path": str(lake / "votes"), "version": 0}
    for stage, (first, rerun) in stage_runs.items():
        assert first["run_id"] == "stages-1" and first["stage"] == stage and first["status"] == "succeeded"
        assert first["tables"]["votes"] == votes, stage
        assert set(first["timings_seconds"]) == {stage} and first["seconds"] >= first["timings_seconds"][stage]
        # The summary also lands in the run folder, where a later job can read it: the latest, unless the rerun
        # had nothing to do (it kept the record of the attempt that wrote the tables).
        kept = first if rerun["skipped"] else rerun
        assert json.loads((lake / "_lakelabel" / "runs" / "stages-1" / f"{stage}_summary.json").read_text()) == kept
    apply, aggregate, fit, write = (stage_runs[s][0] for s in STAGES)
    assert apply["counts"] == {"rows": 40, "lfs": 5, "votes": sum(lf["votes"] for lf in apply["lfs"]), "errors": 0}
    assert {lf["name"] for lf in apply["lfs"]} == {"bad_words", "exclaim", "good_words", "short_text", "stars"}
    assert all(lf["votes"] > 0 and lf["errors"] == 0 for lf in apply["lfs"])
    assert aggregate["counts"]["rows"] == 40 and aggregate["counts"]["patterns"] > 1
    assert 0 < aggregate["counts"]["covered"] <= 40 and aggregate["counts"]["gold"] == 40
    assert fit["metrics"]["rows"] == 40 and len(fit["label_model"]["version"]) == 12
    assert fit["label_model"]["mlflow_uri"].startswith("models:/")
    assert write["tables"]["labels"] == {"path": str(lake / "labels"), "version": 0} and write["counts"]["rows"] == 40
    # The labels' lineage names the model fit logged, and every stage logged into one MLflow run.
    assert write["label_model"]["mlflow_uri"] == fit["label_model"]["mlflow_uri"]
    from deltalake import DeltaTable

    labels = DeltaTable(str(lake / "labels")).to_pandas()
    assert set(labels["label_model"]) == {fit["label_model"]["mlflow_uri"]}
    assert (lake / "mlartifacts").is_dir()  # artifacts beside the sqlite store, not ./mlruns
    mlflow_runs = {s["mlflow"]["run_id"] for runs in stage_runs.values() for s in runs}
    assert len(mlflow_runs) == 1 and re.fullmatch(r"[0-9a-f]{32}", next(iter(mlflow_runs)))
    # The notebooks' lineage finds that MLflow run from the labels alone.
    from jobs.notebook.inspect import lineage

    found = lineage(spark, load_config(project, env="local"))
    assert found.run_id == "stages-1" and found.mlflow_run_id == next(iter(mlflow_runs))
    assert found.label_model == fit["label_model"]["mlflow_uri"] and found.notes == []


@pytest.mark.spark
@pytest.mark.slow
def test_stage_commands_rerun_with_the_same_run_id_as_no_ops(stage_runs, project):
    apply, aggregate, fit, write = (stage_runs[s] for s in STAGES)
    assert not apply[0]["skipped"] and apply[1]["skipped"]
    assert apply[1]["tables"] == apply[0]["tables"] and apply[1]["fingerprint"] == apply[0]["fingerprint"]
    assert aggregate[1]["counts"] == aggregate[0]["counts"]
    assert fit[1]["label_model"]["version"] == fit[0]["label_model"]["version"]
    assert not write[0]["skipped"] and write[1]["skipped"] and write[1]["tables"] == write[0]["tables"]
    # The skipped apply's retry logged its params (the same values) but kept the apply's metrics and summary, which
    # its own would replace (a review, session 27).
    import mlflow

    client = mlflow.MlflowClient(apply[0]["mlflow"]["tracking_uri"])
    run_id = apply[1]["mlflow"]["run_id"]
    assert [round(m.value, 3) for m in client.get_metric_history(run_id, "apply_seconds")] == [apply[0]["timings_seconds"]["apply"]]
    logged = json.loads(Path(client.download_artifacts(run_id, "apply_summary.json", str(project.parent))).read_text())
    assert logged["applied_lfs"] == apply[0]["applied_lfs"] != []
    # The fit's retry found the model it would log already in the run: one logged model, not one per attempt.
    assert fit[1]["label_model"]["mlflow_uri"] == fit[0]["label_model"]["mlflow_uri"]
    models = client.search_logged_models(experiment_ids=[client.get_run(run_id).info.experiment_id],
                                         filter_string=f"source_run_id = '{run_id}'")
    assert [m.name for m in models] == ["label_model"], models
    # The no-op retry of write left the run in the history diff, drift, explain and verify read (an audit, session
    # 23: its skipped summary replaced the record, and `diff` then compared the two runs before it, exit 0).
    from jobs.changes.runs import label_runs

    assert [r.run_id for r in label_runs(load_config(project, env="local"))][-1:] == ["stages-1"]
    # A retry after an attempt that committed the labels but was stopped before its summary (the retry the
    # exit line advises) finds the labels are its own: its skipped summary keeps the run in the history.
    lake = Path(yaml.safe_load(project.read_text())["lakehouse"])
    (lake / "_lakelabel" / "runs" / "stages-1" / "write_summary.json").unlink()
    retry = _command("write", project, "stages-1", lake.parent / "retry.json")
    assert retry["skipped"] and [r.run_id for r in label_runs(load_config(project, env="local"))][-1:] == ["stages-1"]


@pytest.mark.spark
@pytest.mark.slow
def test_aggregate_alone_refuses_votes_of_other_lfs(stage_runs, project, capsys):
    """An LF excluded since the apply: the aggregate stage exits 2 before Spark, naming it and the fix,
    rather than counting the votes of LFs the config no longer has; so do fit and write."""
    capsys.readouterr()
    rc = main(["aggregate", "--config", str(project), "--env", "local", "--run-id", "stages-x", "-q",
               "--set", "lfs.exclude=[boom, out_of_space, stars]"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and len(err) == 1, err
    assert re.fullmatch(r"lakelabel: error: the configured LFs differ from those of the votes table .*votes v0 "
                        r"\(no longer configured \['stars'\]\); run `lakelabel apply` again \(or `lakelabel run`\), "
                        r"which replaces these votes: if another config wrote them \(one with several tasks, a "
                        r"teammate's\), give this config a votes table of its own \(tables.votes\) instead", err[0])
    lake = Path(yaml.safe_load(project.read_text())["lakehouse"])
    assert not (lake / "_lakelabel" / "runs" / "stages-x").exists()
    # fit (no Spark) checks the same, for statistics aggregated before the LFs changed.
    fitted = (lake / "_lakelabel" / "runs" / "stages-1" / "label_model.json").stat().st_mtime_ns
    rc = main(["fit", "--config", str(project), "--env", "local", "--run-id", "stages-1", "-q",
               "--set", "lfs.exclude=[boom, out_of_space, stars]"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and len(err) == 1 and "no longer configured ['stars']" in err[0], err
    assert (lake / "_lakelabel" / "runs" / "stages-1" / "label_model.json").stat().st_mtime_ns == fitted
    # So does write: it published the labels of the LFs the config no longer has, exit 0 (a drill).
    from deltalake import DeltaTable

    labels = DeltaTable(str(lake / "labels")).version()
    rc = main(["write", "--config", str(project), "--env", "local", "--run-id", "stages-1", "-q",
               "--set", "lfs.exclude=[boom, out_of_space, stars]"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and len(err) == 1 and "no longer configured ['stars']" in err[0], err
    assert DeltaTable(str(lake / "labels")).version() == labels


def test_lfs_unchanged_names_what_differs():
    from jobs.apply_record import ApplyResult, LFApplyStats, check_lfs_unchanged
    from lf_library import LFRegistry, keyword_lf

    def lfs(*names_versions):
        return tuple(LFApplyStats(name=n, version=v, kind="python", origin="m", votes=1, errors=0, error_rate=0.0)
                     for n, v in names_versions)

    registry = LFRegistry(["neg", "pos"])
    for word, label in (("bad", "neg"), ("good", "pos")):
        registry.register(keyword_lf(word, [word], label=label))
    v = registry.versions
    applied = ApplyResult(run_id="r", votes_table="/lake/votes", votes_version=3, source_path="s", source_format="parquet",
                          source_version=None, fingerprint="f", n_rows=1, label_space=("neg", "pos"),
                          lfs=lfs(("bad", v["bad"]), ("good", "0ld"), ("meh", "x")), skipped=False, seconds=0.0)
    with pytest.raises(InputDataError, match=r"votes table /lake/votes v3 \(no longer configured \['meh'\]; "
                                             r"edited \['good'\]\)"):
        check_lfs_unchanged(applied, registry)
    same = replace(applied, lfs=lfs(*v.items()))
    check_lfs_unchanged(same, registry)  # nothing differs: no error
    with pytest.raises(InputDataError, match=r"not in the votes \['good'\]\); run `lakelabel apply` again "
                                             r"\(or `lakelabel run`\)$"):
        check_lfs_unchanged(replace(same, lfs=same.lfs[:1]), registry)  # an apply here loses no other LF's votes
    # Votes of LFs this config lacks may be another config's (a multi-task config's on the same lakehouse, a drill)
    with pytest.raises(InputDataError, match=r"; run `lakelabel apply` again \(or `lakelabel run`\), which replaces "
                                             r"these votes: if another config wrote them .* \(tables.votes\) instead$"):
        check_lfs_unchanged(applied, registry)


@pytest.mark.spark
@pytest.mark.slow
def test_run_summary_and_rerun_with_the_same_run_id(spark, project, tmp_path, capsys):
    lake = tmp_path / "lake"
    extra = ("--set", f"lakehouse={lake}", "--set", "mlflow.enabled=true")
    capsys.readouterr()
    first = _command("run", project, "run-1", tmp_path / "run.json", *extra)
    assert capsys.readouterr().out == f"lakelabel run: run run-1: 40 labels in {lake / 'labels'} (v0), votes v0\n"
    assert first["run_id"] == "run-1" and first["status"] == "succeeded"
    assert first["tables"]["votes"] == {"path": str(lake / "votes"), "version": 0, "reused": False}
    assert first["tables"]["labels"] == {"path": str(lake / "labels"), "version": 0, "rows": 40}
    assert first["source"]["rows"] == 40 and first["metrics"]["rows"] == 40
    assert re.fullmatch(r"[0-9a-f]{32}", first["mlflow"]["run_id"])
    assert set(first["timings_seconds"]) == {"apply", "aggregate", "fit", "write", "total"}

    again = _command("run", project, "run-1", tmp_path / "again.json", *extra)
    assert capsys.readouterr().out.endswith("votes v0 (already done with these inputs: nothing ran)\n")
    assert again["tables"] == first["tables"] and again["mlflow"] == first["mlflow"]
    assert again["reused"] is True and first["reused"] is False  # the orchestrator can tell nothing ran
    from deltalake import DeltaTable

    assert DeltaTable(str(lake / "votes")).version() == 0 and DeltaTable(str(lake / "labels")).version() == 0


def test_stage_out_of_order_fails_in_one_line(project, capsys):
    # fit needs no Spark: the failure is the orchestrator's usual one, a stage run before its input.
    assert main(["fit", "--config", str(project), "--run-id", "never-aggregated"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and re.fullmatch(
        r"lakelabel: error: no aggregated statistics for run 'never-aggregated' under .*; run `lakelabel "
        r"aggregate --run-id never-aggregated` first", err[0])


@pytest.mark.spark
def test_fit_rerun_with_other_settings_under_one_run_id(spark, project, tmp_path, capsys):
    """A fit stage rerun with another label-model setting: exit 0, the new model used by write, and the
    MLflow run (whose params cannot change) keeps the first version as its param and this one as a tag."""
    import mlflow

    extra = ("--set", f"lakehouse={tmp_path / 'lake'}", "--set", "mlflow.enabled=true")
    for stage in ("apply", "aggregate", "fit"):
        first = _command(stage, project, "refit", tmp_path / f"{stage}.json", *extra)
    capsys.readouterr()
    second = _command("fit", project, "refit", tmp_path / "fit2.json", *extra, "--set", "label_model.class_balance=[0.3, 0.7]")
    old, new = first["label_model"]["version"], second["label_model"]["version"]
    assert old != new and f"this fit's values (label_model.version={new}) are recorded as tags" in capsys.readouterr().err
    _command("write", project, "refit", tmp_path / "write.json", *extra, "--set", "label_model.class_balance=[0.3, 0.7]")
    assert "label_model settings" not in capsys.readouterr().err  # the refit's own settings
    _command("write", project, "refit", tmp_path / "write.json", *extra)  # without the refit's class_balance
    assert "the label_model settings are not those run refit's model was fitted with" in capsys.readouterr().err
    from deltalake import DeltaTable

    assert set(DeltaTable(str(tmp_path / "lake" / "labels")).to_pandas().label_model_version) == {new}
    mlflow.set_tracking_uri(second["mlflow"]["tracking_uri"])
    run = mlflow.get_run(second["mlflow"]["run_id"])
    assert run.data.params["label_model.version"] == old and run.data.tags["label_model.version"] == new
    # An apply stage under a new run id that finds the votes up to date skips, and still logs the config and LF
    # versions its run's labels will come from (it logged nothing: the Airflow drill, session 26).
    reused = _command("apply", project, "refit-2", tmp_path / "apply2.json", *extra)
    assert reused["skipped"] and reused["mlflow"]["run_id"] != second["mlflow"]["run_id"]
    params = mlflow.get_run(reused["mlflow"]["run_id"]).data.params
    assert {f"lf.{lf['name']}": lf["version"] for lf in reused["lfs"]}.items() <= params.items()
    assert params["source.fingerprint"] == reused["fingerprint"]


@pytest.mark.spark
def test_stages_rerun_under_one_run_id_after_rows_and_an_lf_change(spark, project, tmp_path, capsys, monkeypatch):
    """An orchestrator's retries under one run id while the inputs change.

    Rows added and applied after aggregate: fit says to aggregate again. An LF edited and applied:
    apply exits 0 (the MLflow run keeps the first params and records the new values as tags), fit
    refuses the statistics of the earlier LFs and write a model of the earlier LF versions, each
    naming the stage to rerun. After aggregate and fit, write (under a new run id) labels with the
    new model, and verify of that run loads the model from the lakehouse's MLflow store, not from
    whatever store the process last used."""
    import mlflow
    from deltalake import DeltaTable

    from tests.jobs.test_pipeline import make_rows, write_source

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    base = yaml.safe_load(project.read_text())
    source = write_source(tmp_path, make_rows(30, boom_every=7))  # boom (excluded until the end) raises there

    def config(words: list[str], name: str) -> Path:
        lfs = {**base["lfs"], "declared": [{"name": "kw_fine", "kind": "keyword", "label": "pos", "field": "text",
                                             "keywords": words}]}
        path = project.parent / f"{name}.yaml"  # beside conf/env/local.yaml, for --env local
        path.write_text(yaml.safe_dump({**base, "lakehouse": str(tmp_path / "lake"), "lfs": lfs,
                                        "source": {**base["source"], "path": source}, "mlflow": {"enabled": True}}))
        return path

    def refused(stage: str, config: Path) -> str:
        capsys.readouterr()
        rc = main([stage, "--config", str(config), "--env", "local", "--run-id", "edit", "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, (stage, err)
        return err[0]

    before, after = config(["fine"], "edit_before"), config(["fine", "nice"], "edit_after")
    first = {stage: _command(stage, before, "edit", tmp_path / f"{stage}.json") for stage in ("apply", "aggregate")}
    make_rows(36).iloc[30:].to_parquet(tmp_path / "src" / "part-1.parquet", index=False)
    more = _command("apply", before, "edit", tmp_path / "apply_more.json")
    then, now = first["apply"]["tables"]["votes"]["version"], more["tables"]["votes"]["version"]
    assert now > then and more["counts"]["rows"] == 36
    err = refused("fit", before)
    assert f"aggregated from votes v{then}, and the votes table" in err and f"(now v{now})" in err, err
    assert "run `lakelabel aggregate --run-id edit` again" in err
    # An operator's RESTORE of the votes to the rows that were aggregated (delta-rs' own, no lakelabel
    # metadata): fit takes the statistics again.
    DeltaTable(more["tables"]["votes"]["path"]).restore(then)
    assert _command("fit", before, "edit", tmp_path / "fit_restored.json")["status"] == "succeeded"
    assert _command("apply", before, "edit", tmp_path / "apply_again.json")["counts"]["rows"] == 36
    for stage in ("aggregate", "fit"):
        _command(stage, before, "edit", tmp_path / f"{stage}_more.json")

    capsys.readouterr()
    edited = _command("apply", after, "edit", tmp_path / "apply_edit.json")
    assert "this apply's values (" in capsys.readouterr().err
    old_v = next(lf["version"] for lf in more["lfs"] if lf["name"] == "kw_fine")
    new_v = next(lf["version"] for lf in edited["lfs"] if lf["name"] == "kw_fine")
    run = mlflow.MlflowClient(edited["mlflow"]["tracking_uri"]).get_run(edited["mlflow"]["run_id"])
    assert old_v != new_v and run.data.params["lf.kw_fine"] == old_v and run.data.tags["lf.kw_fine"] == new_v
    err = refused("fit", after)
    assert "were aggregated from votes of other LFs than the votes table" in err and "(edited since ['kw_fine'])" in err
    assert "holds other votes (edited since the fit: ['kw_fine'])" in refused("write", after)
    assert not (tmp_path / "lake" / "labels").exists()  # write refused before writing anything

    for stage in ("aggregate", "fit"):
        fitted = _command(stage, after, "edit", tmp_path / f"{stage}_edit.json")
    # Without --run-id, write gets a new run id and the latest fitted run's model (logged to MLflow only there).
    assert main(["write", "--config", str(after), "--env", "local", "--summary-json", str(tmp_path / "write.json"),
                 "-q"]) == 0
    written = json.loads((tmp_path / "write.json").read_text())
    labels = DeltaTable(written["tables"]["labels"]["path"]).to_pandas()
    assert set(labels.label_model_version) == {fitted["label_model"]["version"]}
    assert set(labels.votes_version) == {edited["tables"]["votes"]["version"]}
    assert written["label_model"]["run_id"] == "edit" and written["label_model"]["mlflow_uri"]
    assert not (tmp_path / "lake" / "_lakelabel" / "runs" / written["run_id"] / "label_model.json").exists()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # the process's store is another one
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # which set_tracking_uri exports; a user's would win
    checked = _command("verify", after, written["run_id"], tmp_path / "verify.json")
    assert checked["verified"] and checked["counts"]["differences"] == 0

    # A run that fails (an LF over the error budget) leaves no run folder behind and the votes as they were.
    failing = yaml.safe_load(after.read_text())
    failing["lfs"]["exclude"], failing["apply"] = ["out_of_space"], {"max_error_rate": 0.0}
    (project.parent / "edit_failing.yaml").write_text(yaml.safe_dump(failing))
    votes = DeltaTable(str(tmp_path / "lake" / "votes")).to_pandas()
    rc = main(["run", "--config", str(project.parent / "edit_failing.yaml"), "--env", "local", "--run-id", "failed",
               "--force", "-q"])  # a full apply: its row masks go in the run folder
    assert rc == 2 and not (tmp_path / "lake" / "_lakelabel" / "runs" / "failed").exists()
    after_failure = DeltaTable(str(tmp_path / "lake" / "votes")).to_pandas()
    assert after_failure.sort_values(list(votes.columns)).reset_index(drop=True).equals(
        votes.sort_values(list(votes.columns)).reset_index(drop=True))
