"""``--task``: analyze, report and annotate one task of a multi-task run with the single-task code.

One multi-task pipeline run (a task and a tag, 90 rows, MLflow in a sqlite store under the
lake, ``report.enabled``: the run ends with ``lakelabel report`` over every task) is shared by the tests; the anchor compares the
urgency task's analysis with the analysis of the same task run as a single-task config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from jobs.runtime.config_loading import config_from_dict
from lf_library.errors import ConfigError
from tests.jobs.test_multitask import N, make_source

pytestmark = pytest.mark.spark

TASKS = ["urgency", "tags_refund"]
# What differs between a task's analysis and the single-task one by construction: ids, paths, times
# (and the hash of the inputs, which holds them).
VOLATILE = {"run_id", "task", "created_at", "seconds", "tables", "label_model", "notes", "inputs_key"}


def multi_dict(tmp: Path, source: str) -> dict:
    """A task and a tag (the cheapest multi-task config with both kinds), each with its own LF module."""
    return {
        "lakehouse": str(tmp / "lake"),
        "source": {"path": source, "format": "parquet", "id_column": "id"},
        "tasks": {"urgency": {"label_space": ["routine", "urgent"], "gold_column": "urgency",
                              "lfs": {"modules": ["tests.jobs.urgency_lfs"]}}},
        "multi_label": {"name": "tags", "tags": ["refund"], "gold_column": "tags",
                        "lfs": {"modules": ["tests.jobs.refund_lfs"]}},
        "analysis": {"examples": 3},
        "mlflow": {"enabled": True, "experiment": "task-commands-tests"},
    }  # fmt: skip


@pytest.fixture(scope="module")
def tasks_run(spark, tmp_path_factory):
    """``(cfg, pipeline summary)``: ``lakelabel run`` with ``report.enabled`` (a report per task at its end)."""
    from jobs import pipeline

    tmp = tmp_path_factory.mktemp("task-commands")
    source = make_source(tmp)
    cfg = config_from_dict({**multi_dict(tmp, source), "report": {"enabled": True}})
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        yield cfg, pipeline.run(spark, cfg, run_id="tc-1").summary
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


def test_report_writes_one_analysis_and_page_per_task(tasks_run):
    from mlflow import MlflowClient

    cfg, ran = tasks_run
    assert list(ran["tasks"]) == TASKS
    assert ran["run_id"] == "tc-1" and list(ran["report"]) == list(ran["analysis"]) == TASKS
    folder = cfg.lakehouse_path / "_lakelabel" / "runs" / "tc-1"
    client = MlflowClient(tracking_uri=ran["mlflow"]["tracking_uri"])
    for name in TASKS:
        one = ran["tasks"][name]
        assert ran["report"][name] == one["report"] == str(folder / f"report_{name}.html")
        assert ran["analysis"][name] == one["analysis"] == str(folder / f"analysis_{name}.json")
        doc = json.loads(Path(one["analysis"]).read_text())
        assert doc["task"] == name and doc["run_id"] == "tc-1"
        assert doc["label_space"] == ran["tasks"][name]["label_space"]
        assert [lf["name"] for lf in doc["lfs"]] == ran["tasks"][name]["lfs"]  # this task's LFs only
        assert doc["tables"]["labels"] == {"path": ran["tasks"][name]["tables"]["labels"]["path"],
                                           "version": ran["tasks"][name]["tables"]["labels"]["version"]}
        assert doc["totals"]["rows"] == N
        # The label model the pipeline fitted for the task, and its accuracy against the task's gold.
        assert doc["label_model"]["version"] == ran["tasks"][name]["label_model"]["version"]
        assert doc["totals"]["lm_accuracy"] == pytest.approx(ran["tasks"][name]["metrics"]["accuracy"])
        html = Path(one["report"]).read_text()
        assert f"<h1>lakelabel report: task {name}</h1>" in html
        assert f"<title>lakelabel report: run tc-1, task {name}</title>" in html
        artifacts = [f.path for f in client.list_artifacts(ran["mlflow"]["run_id"], f"analysis/{name}")]
        assert sorted(artifacts) == [f"analysis/{name}/analysis.json", f"analysis/{name}/report_{name}.html"]
    metrics = client.get_run(ran["mlflow"]["run_id"]).data.metrics
    assert metrics["urgency.analysis.coverage"] == pytest.approx(
        json.loads(Path(ran["analysis"]["urgency"]).read_text())["totals"]["coverage"])
    # The tag task's gold is derived from the tag list: rows without one have no gold.
    tag = json.loads(Path(ran["analysis"]["tags_refund"]).read_text())
    assert tag["totals"]["gold_rows"] == N - 9


def test_task_analysis_equals_the_task_run_alone(spark, tasks_run, tmp_path):
    """The anchor: analyze --task urgency == analyze of a config with only the urgency task."""
    from jobs import analyze, pipeline

    cfg, ran = tasks_run
    source = cfg.source.path
    single = config_from_dict({
        "lakehouse": str(tmp_path / "single"),
        "source": {"path": source, "format": "parquet", "id_column": "id", "gold_column": "urgency"},
        "lfs": {"modules": ["tests.jobs.urgency_lfs"]},
        "analysis": {"examples": 3},
        "mlflow": {"enabled": False},
    })  # fmt: skip
    pipeline.run(spark, single, run_id="alone")
    alone = analyze.analyze(spark, single)
    mine = json.loads(Path(ran["analysis"]["urgency"]).read_text())
    assert alone["task"] is None and mine["task"] == "urgency"
    assert mine["totals"]["rows"] == alone["totals"]["rows"] == N
    for key in ("totals", "confusion", "classes", "lfs", "pairs", "confidence_histogram", "coverage_gaps"):
        assert mine[key] == alone[key], key
    assert {k: v for k, v in mine.items() if k not in VOLATILE} == {k: v for k, v in alone.items() if k not in VOLATILE}
    assert mine["label_model"]["version"] == alone["label_model"]["version"]


def test_annotate_one_task(spark, tasks_run, tmp_path):
    import pandas as pd

    from jobs.people import annotate

    cfg, ran = tasks_run
    out = tmp_path / "urgency.csv"
    summary = annotate.run(spark, cfg, strategy="conflict", n=3, out=str(out), task="urgency")
    assert summary["task"] == "urgency"
    assert summary["tables"]["labels"]["path"] == ran["tasks"]["urgency"]["tables"]["labels"]["path"]
    rows = pd.read_csv(out, keep_default_na=False)
    assert len(rows) == summary["counts"]["rows"] == 3
    assert list(rows.columns[rows.columns.str.startswith("p_")]) == ["p_routine", "p_urgent"]
    assert set(rows.predicted_label) <= {"routine", "urgent", ""}
    urgency_lfs = set(ran["tasks"]["urgency"]["lfs"])
    voters = {v.split("=")[0] for cell in rows.voting_lfs for v in cell.split("; ") if v}
    assert voters and voters <= urgency_lfs  # the shared votes table, read for this task's LFs only
    # Conflict: the urgency LFs disagree on the rows picked first.
    first = rows.voting_lfs[0].split("; ")
    assert len({v.split("=")[1] for v in first}) == 2


def test_explain_one_task(spark, tasks_run):
    from jobs.explain import explain_row
    from jobs.multitask_labels import task_labels

    cfg, ran = tasks_run
    labels = task_labels(spark, cfg, "urgency").toPandas().set_index("row_id")
    doc = explain_row(spark, cfg, 2, task="urgency")  # "login error, urgent please"
    assert doc["task"] == "urgency" and doc["row_id"] == 2
    assert [v["lf"] for v in doc["votes"]] == ran["tasks"]["urgency"]["lfs"]
    # every LF's version, from the apply record of the votes (an LF that never voted has no vote row to carry it)
    assert {v["lf"]: v["version"] for v in doc["votes"]} == {
        lf["name"]: lf["version"] for lf in ran["lfs"] if lf["task"] == "urgency"}
    assert {v["lf"]: v["vote"] for v in doc["votes"]}["kw_asap"] == "urgent"
    assert doc["label"] == labels.loc[2, "label_name"]
    assert list(doc["probabilities"]) == ["routine", "urgent"]
    assert list(doc["probabilities"].values()) == pytest.approx(list(labels.loc[2, "probabilities"]))
    assert doc["lineage"]["max_difference"] < 1e-9
    with pytest.raises(ConfigError, match="run 'other' did not write the current labels of task 'urgency'"):
        explain_row(spark, cfg, 2, task="urgency", run_id="other")


def _cli(tmp_path: Path, data: dict, capsys, *args: str) -> str:
    from jobs import cli

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main([*args, "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bad_task_options(tmp_path, capsys):
    """Each fails with one line and exit 2 before Spark starts (the source does not even exist)."""
    data = multi_dict(tmp_path, str(tmp_path / "absent.parquet"))
    known = "tasks: urgency, tags_refund"
    annotate = ["annotate", "--strategy", "uncertain", "--n", "3", "--out", str(tmp_path / "x.csv")]
    explain = ["explain", "--row-id", "1"]
    for command in (["analyze"], ["report"], ["train"], annotate, explain):
        err = _cli(tmp_path, data, capsys, *command, "--task", "urgncy")
        assert f"--task 'urgncy' is not a task of this config; {known}" in err, err
    verify, gold_import = ["verify", "--run-id", "r1"], ["gold", "import", "--file", str(tmp_path / "x.csv")]
    for command in (verify, gold_import, ["gold", "status"]):
        err = _cli(tmp_path, data, capsys, *command, "--task", "urgncy")
        assert f"--task 'urgncy' is not a task of this config; {known}" in err, err
    for command, name in ((["train"], "train"), (annotate, "annotate"), (explain, "explain"), (verify, "verify"),
                          (gold_import, "gold import"), (["gold", "status"], "gold status")):
        err = _cli(tmp_path, data, capsys, *command)
        assert f"lakelabel {name} reads one task and the config declares several: pass --task NAME ({known})" \
               in err, err
    err = _cli(tmp_path, data, capsys, "report", "--out", str(tmp_path / "r.html"))
    assert "--out" in err and "pass --task NAME with --out" in err
    single = {"lakehouse": str(tmp_path / "lake"), "source": {"path": "x.parquet", "id_column": "id"},
              "lfs": {"modules": ["tests.jobs.urgency_lfs"]}}
    assert "--task urgency: the config declares no tasks" in _cli(tmp_path, single, capsys, "analyze", "--task",
                                                                    "urgency")
    # Commands without --task still refuse a multi-task config, naming the ones that take it.
    err = _cli(tmp_path, data, capsys, "diff")
    assert "lakelabel diff reads one task" in err and "with --task NAME" in err
    assert "lakelabel diff takes no --task option" in err  # not "add --task": diff has none
    assert "task_labels(spark, cfg, TASK, version=V)" in err and "explain --task NAME" in err
    err = _cli(tmp_path, data, capsys, "fit")
    assert "lakelabel fit reads one task" in err and "`lakelabel run` aggregates, fits and writes every task" in err


def test_a_single_task_config_on_the_tasks_labels_table_is_exit_2(spark, tasks_run, tmp_path, capsys):
    """tables.labels pointed at ``labels_tasks``: one line naming the table and its tasks, not Spark's missing column."""
    cfg, _ = tasks_run
    single = {"lakehouse": str(cfg.lakehouse), "source": {"path": cfg.source.path, "format": "parquet", "id_column": "id"},
              "lfs": {"modules": ["tests.jobs.urgency_lfs"]}, "tables": {"labels": "labels_tasks"},
              "mlflow": {"enabled": False}}  # fmt: skip
    for command in (["train"], ["analyze"]):
        err = _cli(tmp_path, single, capsys, *command)
        assert "labels_tasks holds the labels of several tasks (tags_refund, urgency), not one task's" in err, err
        assert "--task NAME" in err


def test_verify_one_task(spark, tasks_run, capsys):
    """verify --task rebuilds the task's labels from the votes and its model, and compares them row by row."""
    from jobs import cli
    from jobs.verify import run_task
    from jobs.task_views import one_task

    cfg, ran = tasks_run
    path = Path(cfg.lakehouse).parent / "verify.yaml"
    path.write_text(yaml.safe_dump(multi_dict(Path(cfg.lakehouse).parent, cfg.source.path)))
    for name in TASKS:
        capsys.readouterr()
        assert cli.main(["verify", "--config", str(path), "--run-id", "tc-1", "--task", name]) == 0
        out = capsys.readouterr().out
        assert f"lakelabel verify: run tc-1: {N} labels of task {name} match their rebuild" in out, out
    summary = run_task(spark, cfg, one_task(cfg, "urgency", command="verify"), run_id="tc-1")
    assert summary["task"] == "urgency" and summary["counts"] == {"rows": N, "differences": 0}
    assert summary["tables"]["labels"] == {**{k: v for k, v in ran["tables"]["labels"].items() if k != "rows"},
                                           "column": "urgency"}
    capsys.readouterr()
    assert cli.main(["verify", "--config", str(path), "--run-id", "nope", "--task", "urgency"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run 'nope' has no summary with a labels version" in err[0], err


def test_verify_one_task_names_what_differs(spark, tasks_run, capsys):
    """verify --task on a task labels table whose urgency column was changed in place (one row's label
    flipped in its data file): exit 2 with one line naming the task, the row and both labels; the other
    task's column still matches. The file is put back after."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from jobs import cli

    cfg, ran = tasks_run
    config = Path(cfg.lakehouse).parent / "verify.yaml"
    config.write_text(yaml.safe_dump(multi_dict(Path(cfg.lakehouse).parent, cfg.source.path)))
    labels_path, version = ran["tables"]["labels"]["path"], ran["tables"]["labels"]["version"]
    files = [f.removeprefix("file://") for f in DeltaTable(labels_path, version=version).file_uris()]
    path = next(f for f in files if pq.read_table(f).num_rows)
    original = Path(path).read_bytes()
    table = pq.read_table(path)
    urgency = table.column("urgency").to_pylist()
    row_id, stored = table.column("row_id")[0].as_py(), urgency[0]["label"]
    urgency[0] = {**urgency[0], "label": 1 - stored if stored in (0, 1) else 0}
    field = table.schema.field("urgency")
    pq.write_table(table.set_column(table.schema.get_field_index("urgency"), field,
                                    pa.array(urgency, type=field.type)), path)
    try:
        capsys.readouterr()
        assert cli.main(["verify", "--config", str(config), "--run-id", "tc-1", "--task", "urgency"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"lakelabel: error: labels of task 'urgency' in {labels_path} v{version} does not match run tc-1's "
            f"rebuild from votes v{ran['tables']['votes']['version']} and the source: 1 row(s) with another label; "
        ), err  # a Parquet source has no version: it said "source vNone"
        assert "vNone" not in err[0], err
        assert f": 1 row(s) with another label; e.g. row id {row_id}: stored label {urgency[0]['label']} " in err[0], err
        assert cli.main(["verify", "--config", str(config), "--run-id", "tc-1", "--task", "tags_refund"]) == 0
    finally:
        Path(path).write_bytes(original)


def test_gold_import_and_status_one_task(spark, tasks_run, tmp_path, capsys):
    """gold import --task fills the task's own gold table (<tables.gold>_<task>) with its label space."""
    import pandas as pd
    from deltalake import DeltaTable

    from jobs import cli

    cfg, _ = tasks_run
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(multi_dict(Path(cfg.lakehouse).parent, cfg.source.path)))
    labels = tmp_path / "urgency.csv"
    pd.DataFrame([{"row_id": 2, "label": "urgent", "annotator": "ann"},
                  {"row_id": 3, "label": "routine", "annotator": "ann"}]).to_csv(labels, index=False)  # fmt: skip
    capsys.readouterr()
    assert cli.main(["gold", "import", "--config", str(path), "--file", str(labels), "--task", "urgency"]) == 0
    assert "imported 2 label(s)" in capsys.readouterr().out
    table = f"{cfg.table_path('gold').rstrip('/')}_urgency"
    gold = DeltaTable(table).to_pandas().sort_values("row_id")
    assert list(gold.row_id) == ["2", "3"] and list(gold.label_name) == ["urgent", "routine"]  # ids kept as text
    assert cli.main(["gold", "status", "--config", str(path), "--task", "urgency"]) == 0
    assert "2 row(s), 2 label(s) from 1 annotator(s)" in capsys.readouterr().out
    # The tag task has its own label space: "urgent" is not in it.
    assert cli.main(["gold", "import", "--config", str(path), "--file", str(labels), "--task", "tags_refund"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "urgent" in err[0], err


def test_a_broken_task_stops_only_the_commands_that_need_it(spark, tasks_run, tmp_path, capsys, monkeypatch):
    """The tag task's LF module breaks (a syntax error) after a run: explain --task urgency still reads urgency's
    labels; run, apply, analyze without --task and --task tags_refund stop before Spark starts with one line that
    names the task, the module's file and line, and the fix, and leave every table as it was."""
    from deltalake import DeltaTable

    import jobs.runtime.session as session
    from jobs import cli
    from jobs.multitask_labels import labels_path

    cfg, _ = tasks_run
    package = tmp_path / "broken_team"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "refund_lfs.py").write_text("from tests.jobs.multitask_lfs import tag_refund_words\n"
                                          "LFS = [tag_refund_words\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = multi_dict(Path(cfg.lakehouse).parent, cfg.source.path)
    data["multi_label"]["lfs"]["modules"] = ["broken_team.refund_lfs"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    tables = [cfg.table_path("votes"), labels_path(cfg)]
    versions = [DeltaTable(t).version() for t in tables]
    runs = sorted(p.name for p in (Path(cfg.lakehouse) / "_lakelabel" / "runs").iterdir())
    capsys.readouterr()
    assert cli.main(["explain", "--config", str(path), "--task", "urgency", "--row-id", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "urgency"

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started for a command that needs the broken task")

    monkeypatch.setattr(session, "get_spark", no_spark)
    for command in (["run"], ["apply"], ["analyze"], ["analyze", "--task", "tags_refund"],
                    ["explain", "--task", "tags_refund", "--row-id", "2"]):  # fmt: skip
        assert cli.main([*command, "--config", str(path)]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert err[0].startswith("lakelabel: error: task 'tags_refund' (multi_label.lfs): LF module "
                                 "'broken_team.refund_lfs' raised on import: SyntaxError"), err
        assert f"[{package / 'refund_lfs.py'}, line 2]" in err[0], err
        assert "fix it and rerun; nothing was read or written. Meanwhile the commands with --task NAME on the other " \
               "tasks (urgency) work, and --set multi_label=null runs the pipeline without tags_refund" in err[0], err
    assert [DeltaTable(t).version() for t in tables] == versions
    assert sorted(p.name for p in (Path(cfg.lakehouse) / "_lakelabel" / "runs").iterdir()) == runs
