"""Several tasks at once: one apply pass, per-task statistics, fit, labels tables, MLflow; bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from deltalake import DeltaTable

from jobs.runtime.config_loading import config_from_dict
from jobs.tasks import build_task_set
from lf_library.errors import ConfigError, InputDataError

pytestmark = pytest.mark.spark  # the fixture's pipeline run and the CLI cases (no Spark starts for those)

N = 90
TEXTS = ["my invoice is wrong, refund asap", "the app crash again, no rush", "login error, urgent please",
         "charged twice for the invoice", "whenever you can: password reset", "money back please, immediately",
         "app shows an error", "question about the invoice"]  # fmt: skip


def make_source(tmp) -> str:
    rows = []
    for i in range(N):
        text = TEXTS[i % len(TEXTS)] + ("" if i % 5 else " thanks")
        topic = "billing" if any(w in text for w in ("invoice", "refund", "charged", "money")) else "technical"
        priority = 1 + (i * 7) % 4
        urgency = "urgent" if any(w in text for w in ("asap", "urgent", "immediately")) or priority == 4 else "routine"
        tags = ",".join(t for t, words in (("refund", ("refund", "money")), ("login", ("login", "password")))
                        if any(w in text for w in words))  # fmt: skip
        rows.append({"id": i, "text": text, "priority": priority, "topic": topic, "urgency": urgency,
                     "tags": tags if i % 11 else None})  # fmt: skip
    path = tmp / "source.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return str(path)


def task_dict(tmp, source: str, **extra) -> dict:
    return {
        "lakehouse": str(tmp / "lake"),
        "source": {"path": source, "format": "parquet", "id_column": "id"},
        "lfs": {"modules": ["tests.jobs.multitask_lfs"]},
        "tasks": {
            "topic": {"label_space": ["billing", "technical"], "gold_column": "topic"},
            "urgency": {"label_space": ["routine", "urgent"], "gold_column": "urgency"},
        },
        "multi_label": {"name": "tags", "tags": ["refund", "login"], "gold_column": "tags"},
        "mlflow": {"enabled": True, "experiment": "multitask-tests"},
        **extra,
    }


@pytest.fixture(scope="module")
def multi_run(spark, tmp_path_factory):
    """One multi-task pipeline run (2 tasks + 2 tags, 90 rows), MLflow in a sqlite store under the lake."""
    from jobs import pipeline

    tmp = tmp_path_factory.mktemp("multitask")
    source = make_source(tmp)
    # The source again as the held-out set: each task is scored with its own gold column there too.
    cfg = config_from_dict(task_dict(tmp, source, evaluation={"path": source, "format": "parquet", "id_column": "id"}))
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        summary = pipeline.run(spark, cfg, run_id="mt-1").summary
        yield cfg, summary
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


TASKS = {"topic": ["kw_app", "kw_crash", "kw_invoice"],
         "urgency": ["kw_asap", "kw_no_rush", "py_low_priority", "sql_high_priority"],
         "tags_refund": ["tag_refund_not_app", "tag_refund_words"],
         "tags_login": ["py_login_not_billing", "tag_login_words"]}  # fmt: skip


def test_routing_by_label_space_and_mapping_form(tmp_path):
    cfg = config_from_dict(task_dict(tmp_path, "x.parquet"))
    task_set = build_task_set(cfg)
    assert {t.name: list(t.lf_names) for t in task_set.tasks} == TASKS
    assert task_set["tags_refund"].label_space == ("not_refund", "refund")
    assert task_set["tags_login"].tag == "login"
    # The list form is the same config.
    listed = task_dict(tmp_path, "x.parquet")
    listed["tasks"] = [{"name": n, **body} for n, body in listed["tasks"].items()]
    assert config_from_dict(listed) == cfg
    # A task's own LFs (declared in YAML here) join those routed to it by label space.
    own = task_dict(tmp_path, "x.parquet")
    own["tasks"]["urgency"]["lfs"] = {"declared": [{"name": "kw_outage", "kind": "keyword", "keywords": ["outage"],
                                                    "label": "urgent"}]}  # fmt: skip
    urgency = build_task_set(config_from_dict(own))["urgency"]
    assert list(urgency.lf_names) == sorted(TASKS["urgency"] + ["kw_outage"])
    assert urgency.registry["kw_outage"].label_space == ("routine", "urgent")


def test_summary_has_one_entry_per_task(multi_run):
    cfg, summary = multi_run
    assert list(summary["tasks"]) == list(TASKS)
    labels = summary["tables"]["labels"]
    assert labels["path"] == str(cfg.lakehouse_path / "labels_tasks") and labels["rows"] == N
    for name, entry in summary["tasks"].items():
        assert entry["lfs"] == TASKS[name]
        assert entry["tables"]["labels"] == {**labels, "column": name}
        assert 0 < entry["metrics"]["coverage"] <= 1
        assert summary["metrics"][f"{name}.coverage"] == entry["metrics"]["coverage"]
        assert "accuracy" in entry["metrics"]  # every task has gold here
    assert {lf["name"]: lf["task"] for lf in summary["lfs"]} == {lf: t for t, lfs in TASKS.items() for lf in lfs}
    gold_rows = {"topic": N, "urgency": N, "tags_refund": N - 9, "tags_login": N - 9}  # 9 rows have no tag list
    for name, entry in summary["tasks"].items():
        assert entry["metrics"]["gold_rows"] == entry["metrics"]["eval_rows"] == gold_rows[name]
        assert entry["metrics"]["eval_accuracy"] == pytest.approx(entry["metrics"]["accuracy"])
    # The keyword LFs are right on these rows: the label models are too.
    assert summary["tasks"]["topic"]["metrics"]["accuracy_covered"] == 1.0


def test_one_votes_table_and_one_labels_table(multi_run, spark):
    from jobs.apply_lfs import votes_table_schema
    from jobs.multitask_labels import labels_schema

    cfg, summary = multi_run
    votes = DeltaTable(cfg.table_path("votes"))
    assert votes.schema().to_arrow().names == votes_table_schema(spark_id_type()).names
    assert set(votes.to_pandas().lf_name) <= {lf for lfs in TASKS.values() for lf in lfs}
    assert not os.path.exists(cfg.table_path("labels"))  # no single-task labels table
    table = DeltaTable(summary["tables"]["labels"]["path"])
    assert table.version() == summary["tables"]["labels"]["version"]
    stored, expected = pa.schema(table.schema().to_arrow()), labels_schema(list(TASKS), spark_id_type())
    assert stored.names == expected.names == ["row_id", *TASKS, "run_id", "tie_break_policy", "source_table",
                                              "source_version", "votes_version"]
    for name in TASKS:
        assert [f.name for f in stored.field(name).type] == ["probabilities", "label", "label_name", "confidence",
                                                             "n_votes"]
    labels = table.to_pandas()
    assert len(labels) == N and labels.row_id.is_unique
    assert set(labels.run_id) == {"mt-1"} and set(labels.votes_version) == {summary["tables"]["votes"]["version"]}
    meta = json.loads(json.loads(table.history(1)[0]["userMetadata"])["lakelabel.write"])
    for name in TASKS:
        k = len(summary["tasks"][name]["label_space"])
        assert all(len(cell["probabilities"]) == k for cell in labels[name])
        assert {cell["label_name"] for cell in labels[name]} - {None} <= set(summary["tasks"][name]["label_space"])
        mine = meta["tasks"][name]
        assert mine["label_model_version"] == summary["tasks"][name]["label_model"]["version"]
        assert mine["label_model"] == summary["tasks"][name]["label_model"]["mlflow_uri"]
        assert [lf for lf, _ in mine["lfs"]] == TASKS[name]


def spark_id_type():
    return pa.int64()


def test_task_labels_equal_the_single_task_labels(multi_run, spark):
    """The anchor of the write: one task's view of the wide table equals write_labels scoring that task alone."""
    from jobs import delta_io
    from jobs.apply_record import load_apply_result
    from jobs.delta_io.sources import load_source
    from jobs.multitask import task_rows, vote_rows
    from jobs.multitask_labels import task_labels
    from jobs.write_labels import labels_schema, score_rows
    from labelmodel import LabelModel

    cfg, summary = multi_run
    task_set = build_task_set(cfg)
    io = delta_io.delta_io(spark, "local")
    applied = load_apply_result(cfg, io)
    rows = vote_rows(spark, applied, task_set, load_source(spark, cfg.source, io=io), io)
    versions = {lf["name"]: lf["version"] for lf in summary["lfs"]}
    for i, name in ((0, "topic"), (3, "tags_login")):  # a plain task, and a tag with a Python LF
        entry = summary["tasks"][name]
        model = LabelModel.load(entry["label_model"]["path"])
        lineage = {"run_id": "mt-1", "label_model": entry["label_model"]["mlflow_uri"],
                   "label_model_version": entry["label_model"]["version"], "source_table": summary["source"]["path"],
                   "source_version": summary["source"]["version"], "votes_version": summary["tables"]["votes"]["version"]}
        alone = score_rows(task_rows(rows, task_set, i), model_json=json.dumps(model.to_dict()), lf_names=TASKS[name],
                           lf_versions=versions, label_space=entry["label_space"],
                           tie_break_policy=cfg.output.tie_break_policy, lineage=lineage, row_id_type=spark_id_type())
        alone = alone.toPandas().sort_values("row_id").reset_index(drop=True)
        view = task_labels(spark, cfg, name).toPandas().sort_values("row_id").reset_index(drop=True)
        assert list(view.columns) == labels_schema(spark_id_type()).names
        assert (view.n_votes > 0).any() and (view.n_votes == 0).any()
        assert view.voting_lfs.map(len).sum() == view.n_votes.sum()
        np.testing.assert_allclose(np.stack(view.probabilities), np.stack(alone.probabilities), rtol=1e-12)
        np.testing.assert_allclose(view.confidence, alone.confidence, rtol=1e-12)
        for frame in (view, alone):
            frame["voting_lfs"] = frame.voting_lfs.map(tuple)
        exact = [c for c in view.columns if c not in ("probabilities", "confidence")]
        pd.testing.assert_frame_equal(view[exact], alone[exact], check_dtype=False)
    with pytest.raises(ConfigError, match="task .nope. is not in .*labels_tasks; its tasks are: tags_login, tags_refund, topic, urgency"):
        task_labels(spark, cfg, "nope")


def test_one_pass_statistics_equal_each_task_on_its_own(multi_run, spark):
    """The anchor: statistics from the one grouping of all tasks equal aggregate's for each task alone."""
    from jobs import aggregate, delta_io
    from jobs.apply_record import load_apply_result
    from jobs.delta_io.sources import load_source
    from jobs.multitask import aggregate_tasks, task_applied, vote_rows
    from jobs.tasks import task_source

    cfg, summary = multi_run
    task_set = build_task_set(cfg)
    io = delta_io.delta_io(spark, "local")
    applied = load_apply_result(cfg, io)
    source = load_source(spark, cfg.source, io=io)
    together = aggregate_tasks(cfg, vote_rows(spark, applied, task_set, source, io), task_set)
    for t in (task_set["topic"], task_set["tags_login"]):  # a plain task and a tag (each alone costs a Spark job)
        alone = aggregate.run(spark, cfg, applied=task_applied(applied, t), source=task_source(source, t))
        mine = together[t.name]
        np.testing.assert_array_equal(mine.stats.patterns, alone.stats.patterns)
        np.testing.assert_array_equal(mine.stats.overlap, alone.stats.overlap)
        np.testing.assert_array_equal(mine.gold_counts, alone.gold_counts)
        assert mine.stats.n_rows == alone.stats.n_rows == N
        assert summary["tasks"][t.name]["patterns"] == alone.n_patterns


def test_mlflow_metrics_and_models_per_task(multi_run):
    import mlflow

    cfg, summary = multi_run
    mlflow.set_tracking_uri(summary["mlflow"]["tracking_uri"])
    run = mlflow.get_run(summary["mlflow"]["run_id"])
    for name in TASKS:
        assert run.data.metrics[f"{name}.accuracy"] == pytest.approx(summary["tasks"][name]["metrics"]["accuracy"])
        assert run.data.metrics[f"{name}.labels_rows"] == N
        assert run.data.params[f"label_model.version_{name}"] == summary["tasks"][name]["label_model"]["version"]
    model = mlflow.pyfunc.load_model(summary["tasks"]["urgency"]["label_model"]["mlflow_uri"])
    scored = model.predict(pd.DataFrame([[1, -1, -1, 1]], columns=TASKS["urgency"]))
    assert list(scored.columns[:2]) == ["p_routine", "p_urgent"] and scored.label_name[0] == "urgent"
    # Every task's model has its own columns; none is logged as a run param (a run's params cannot
    # change, so MLflow refused the second task's LF names with a warning).
    assert not {"lf_names", "label_space"} & set(run.data.params)
    assert run.data.params["tie_break_policy"] == cfg.output.tie_break_policy
    topic = mlflow.pyfunc.load_model(summary["tasks"]["topic"]["label_model"]["mlflow_uri"])
    assert topic.unwrap_python_model().lf_names == TASKS["topic"]
    assert list(topic.predict(pd.DataFrame([[-1] * len(TASKS["topic"])], columns=TASKS["topic"])).columns[:1]) == [
        "p_billing"]
    # The tie policy is the model config's, so a user may override it at load time.
    first = mlflow.pyfunc.load_model(summary["tasks"]["topic"]["label_model"]["mlflow_uri"],
                                     model_config={"tie_break_policy": "first"})
    assert first.unwrap_python_model().tie_break_policy == "first"


# ---------------------------------------------------------------------------------------------- bad input


def _cli(tmp_path, data: dict, capsys, command: str = "run") -> str:
    from jobs import cli

    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main([command, "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_lf_whose_label_space_matches_no_task(tmp_path, capsys):
    data = task_dict(tmp_path, "x.parquet")
    del data["tasks"]["urgency"]
    err = _cli(tmp_path, data, capsys)
    assert "LF 'kw_asap' (module tests.jobs.multitask_lfs) has label space ['routine', 'urgent'], which matches no " \
           "task" in err and "add a task with that label_space" in err


def test_task_with_no_lfs(tmp_path, capsys):
    data = task_dict(tmp_path, "x.parquet")
    data["tasks"]["sentiment"] = {"label_space": ["neg", "pos"]}
    err = _cli(tmp_path, data, capsys)
    assert "task 'sentiment' (label space ['neg', 'pos']) has no LFs: list LFs under tasks.sentiment.lfs" in err
    tagged = task_dict(tmp_path, "x.parquet")
    tagged["multi_label"]["tags"] = ["refund", "login", "shipping"]  # no LF votes shipping
    err = _cli(tmp_path, tagged, capsys)
    assert ("task 'tags_shipping' (label space ['not_shipping', 'shipping']) has no LFs: list LFs under "
            "multi_label.lfs (tag LFs of lf_library.tags for tag 'shipping')") in err


def test_a_misnamed_task_gold_column_fails_before_spark_starts(tmp_path, capsys, monkeypatch):
    import jobs.runtime.session as session

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the tasks' gold columns were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    source = make_source(tmp_path)
    for key, data in (("multi_label.gold_column", task_dict(tmp_path, source)),
                      ("tasks.urgency.gold_column", task_dict(tmp_path, source))):
        if key.startswith("multi_label"):
            data["multi_label"]["gold_column"] = "nosuch"
        else:
            data["tasks"]["urgency"]["gold_column"] = "nosuch"
        err = _cli(tmp_path, data, capsys)
        assert f"column 'nosuch' ({key}) not found in " in err and "its columns are: id, text, priority" in err, err
    # The evaluation source is read with each task's gold column too: one without the urgency column.
    held_out = tmp_path / "held_out.parquet"
    pd.read_parquet(source).drop(columns=["urgency"]).to_parquet(held_out)
    data = task_dict(tmp_path, source, evaluation={"path": str(held_out), "format": "parquet", "id_column": "id"})
    err = _cli(tmp_path, data, capsys)
    assert "column 'urgency' (tasks.urgency.gold_column) not found in " in err and "held_out.parquet" in err, err
    assert not (tmp_path / "lake").exists()


def test_other_bad_task_configs(tmp_path, capsys):
    shared = task_dict(tmp_path, "x.parquet")
    shared["tasks"]["urgency2"] = {"label_space": ["routine", "urgent"]}
    assert "shared by tasks ['urgency', 'urgency2']" in _cli(tmp_path, shared, capsys)
    gold = task_dict(tmp_path, "x.parquet")
    gold["source"]["gold_column"] = "topic"
    assert "source.gold_column = 'topic' is ambiguous with several tasks" in _cli(tmp_path, gold, capsys)
    held_out = task_dict(tmp_path, "x.parquet", evaluation={"path": "x.parquet", "gold_column": "topic"})
    assert "evaluation.gold_column = 'topic' is ambiguous with several tasks" in _cli(tmp_path, held_out, capsys)
    bad_name = task_dict(tmp_path, "x.parquet")
    bad_name["tasks"]["to pic"] = bad_name["tasks"].pop("topic")
    assert "task name 'to pic' is not valid" in _cli(tmp_path, bad_name, capsys)
    clash = task_dict(tmp_path, "x.parquet")
    clash["tasks"]["Run_Id"] = clash["tasks"].pop("urgency")  # a column of the labels table
    assert "task name(s) ['Run_Id'] clash with another task's or with a column of the labels table" in \
        _cli(tmp_path, clash, capsys)
    tags = task_dict(tmp_path, "x.parquet")
    tags["multi_label"]["tags"] = ["refund", "refund"]
    assert "multi_label.tags repeats ['refund']" in _cli(tmp_path, tags, capsys)
    # Commands that read one task say so instead of misreading the tables.
    assert "lakelabel aggregate reads one task" in _cli(tmp_path, task_dict(tmp_path, "x.parquet"), capsys, "aggregate")
    with pytest.raises(ConfigError, match="unknown config key tasks\\[0\\].labels"):
        config_from_dict({**task_dict(tmp_path, "x"), "tasks": [{"name": "a", "labels": ["x", "y"]}]})
    # A task's lfs lists the keys it takes: not label_space, which is refused there (the task's own is the one).
    with pytest.raises(ConfigError, match=r"^unknown config key tasks\[0\]\.lfs\.modulez; valid keys of tasks\[0\]\.lfs: "
                                          r"declared, exclude, files, include, modules$"):
        config_from_dict({**task_dict(tmp_path, "x"), "tasks": [{"name": "a", "label_space": ["x", "y"],
                                                                  "lfs": {"modulez": ["m"]}}]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"valid keys of lfs: declared, exclude, files, include, label_space, modules$"):
        config_from_dict({**task_dict(tmp_path, "x"), "lfs": {"modulez": ["m"]}})


def test_lf_names_too_long_for_the_tasks_mlflow_metric_keys(tmp_path, capsys):
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH

    from jobs import tasks

    assert tasks._MLFLOW_KEY_MAX == MAX_ENTITY_KEY_LENGTH
    data = task_dict(tmp_path, "x.parquet")
    task = "u" * 64  # the longest task name, with LF names of up to 200 characters: keys over MLflow's limit
    data["tasks"][task] = data["tasks"].pop("urgency")
    room = MAX_ENTITY_KEY_LENGTH - len(f"{task}.drift.lf_coverage_change.")
    # The keys lakelabel logs per LF (the drift section's and the fit's) fit for the longest name allowed, not one more.
    from jobs.changes import drift

    for name, fits in (("k" * room, True), ("k" * (room + 1), False)):
        keys = list(drift.metrics({"warnings": [], "failures": [], "changes": {"lfs": {name: {
            "coverage_change": 0.1, "votes_shift": 0.1}}}}, f"{task}.")) + [f"{task}.lf_estimated_accuracy.{name}"]
        assert (max(map(len, keys)) <= MAX_ENTITY_KEY_LENGTH) is fits, (len(name), max(map(len, keys)))
    declared = lambda name: {"declared": [{"name": name, "kind": "keyword", "keywords": ["outage"],  # noqa: E731
                                           "label": "urgent"}]}  # fmt: skip
    data["tasks"][task]["lfs"] = declared("kw_" + "o" * (room - 2))
    err = _cli(tmp_path, data, capsys)
    assert f"task '{task}' (tasks.{task}.lfs): LF name(s) 'kw_{'o' * (room - 2)}' are too long" in err, err
    assert f"LF names of at most {room}): shorten those names or the task name" in err, err
    assert not (tmp_path / "lake").exists()
    data["tasks"][task]["lfs"] = declared("kw_" + "o" * (room - 3))  # the longest name that fits
    assert len(build_task_set(config_from_dict(data))[task].lf_names) == 5
    data["tasks"][task]["lfs"] = declared("kw_" + "o" * 197)
    data["mlflow"]["enabled"] = False  # nothing is logged: any LF name goes
    assert len(build_task_set(config_from_dict(data))[task].lf_names) == 5


# ---------------------------------------------------------------------------------------------- the demo


def test_demo_with_tasks_config_and_summary(tmp_path, multi_run):
    from jobs import demo
    from lf_library import load_registry

    cfg = demo.demo_config(str(tmp_path), 100, 0, tasks=True)
    task_set = build_task_set(cfg)
    assert task_set.names == ("topic", "urgency")
    assert task_set["topic"].lf_names == load_registry(["lf_library.lfs.demo"]).names  # the demo's 12 LFs, as before
    assert len(task_set["urgency"].lf_names) == 9 and task_set["urgency"].gold_column == "true_urgency"
    text = demo.format_summary(multi_run[1])
    assert "(4 tasks)" in text and "task urgency: 4 LFs, classes routine, urgent" in text
    assert text.count("accuracy vs truth") == 4
    assert f"  time                pipeline {multi_run[1]['timings_seconds']['total']:.1f}s (apply to write)" in text
    # The demo's run ends with a report per task (report.enabled), and prints where each is.
    assert cfg.report.enabled
    ran = multi_run[1]
    with_reports = {**ran, "tasks": {n: {**e, "report": f"/runs/r/report_{n}.html"} for n, e in ran["tasks"].items()}}
    assert "    report            /runs/r/report_urgency.html" in demo.format_summary(with_reports)


def test_demo_urgency_data_is_seeded():
    from jobs.demo.data import generate_demo_rows

    big, small = generate_demo_rows(3000, 0).to_pandas(), generate_demo_rows(1000, 0).to_pandas()
    pd.testing.assert_frame_equal(big.head(1000), small)
    assert set(big.true_urgency) == {"routine", "urgent"}
    cued = big[big.subject.str.startswith("URGENT:")]
    assert len(cued) > 20 and (cued.true_urgency == "urgent").mean() > 0.75
    # Urgency depends on priority: P(urgent) rises with it.
    rate = big.groupby("priority").true_urgency.apply(lambda s: (s == "urgent").mean())
    assert rate.is_monotonic_increasing


def test_failed_run_puts_every_table_back(multi_run, spark, monkeypatch):
    """The labels commit went through, then the run fails: the labels and the recomputed votes go back."""
    from jobs import multitask_labels, pipeline

    cfg, summary = multi_run
    labels_path = summary["tables"]["labels"]["path"]
    before = {path: DeltaTable(path).version() for path in (labels_path, cfg.table_path("votes"))}
    real = multitask_labels.write

    def write_then_fail(*args, **kw):
        real(*args, **kw)
        raise RuntimeError("disk full after the labels commit")

    from jobs.apply_record import load_apply_result

    masks = load_apply_result(cfg).row_masks.get("path")
    assert masks and Path(masks).is_dir()
    monkeypatch.setattr(multitask_labels, "write", write_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        pipeline.run(spark, replace_mlflow_off(cfg), run_id="mt-2", force=True)  # force: the votes move too
    for path, version in before.items():
        table = DeltaTable(path)
        assert table.version() == version + 2, path  # this run's commit, then the restore commit
        assert set(table.to_pandas().run_id) == {"mt-1"}, path
    # The restored votes keep their task masks; the failed run's are deleted.
    assert load_apply_result(cfg).row_masks["path"] == masks and Path(masks).is_dir()
    assert not list(Path(cfg.lakehouse).glob("_lakelabel/runs/mt-2/row_masks-*"))


def test_a_rerun_after_a_compaction_of_the_votes_keeps_the_labels(multi_run, spark):
    """The labels of the same run, models and votes are not written again when only a compaction (a run's, or
    Databricks' auto compaction) came in between; another tie-break policy writes them again."""
    from dataclasses import replace

    from jobs import pipeline

    cfg, summary = multi_run
    labels_path, votes = summary["tables"]["labels"]["path"], cfg.table_path("votes")
    compacted = DeltaTable(votes).optimize.compact()
    assert compacted["numFilesRemoved"] > compacted["numFilesAdded"]
    before = DeltaTable(labels_path).version()
    again = pipeline.run(spark, replace_mlflow_off(cfg), run_id="mt-1").summary
    assert DeltaTable(labels_path).version() == again["tables"]["labels"]["version"] == before
    policy = "random" if cfg.output.tie_break_policy != "random" else "abstain"
    other = replace_mlflow_off(replace(cfg, output=replace(cfg.output, tie_break_policy=policy)))
    assert pipeline.run(spark, other, run_id="mt-1").summary["tables"]["labels"]["version"] == before + 1
    assert {DeltaTable(labels_path).to_pandas().tie_break_policy.unique().tolist()[0]} == {policy}


def replace_mlflow_off(cfg):
    from dataclasses import replace

    return replace(cfg, mlflow=replace(cfg.mlflow, enabled=False), evaluation=None)


def test_incremental_apply_of_a_multitask_config(spark, tmp_path):
    """An LF added to a task, then rows added to the source: only the new LF, then only the new rows are
    applied, and the votes and every task's labels are those of a full run on the same inputs. Each task
    is compared with its own numbers in the previous run (drift), and a drift.fail_on_* stops the run
    before it publishes."""
    from jobs import pipeline
    from jobs.changes.drift import DriftError
    from jobs.multitask_labels import labels_path

    source = make_source(tmp_path)
    base = task_dict(tmp_path, source, mlflow={"enabled": False})
    fewer = config_from_dict({**base, "lfs": {"modules": ["tests.jobs.multitask_lfs"], "exclude": ["kw_crash"]}})
    full = config_from_dict(base)
    first = pipeline.run(spark, fewer, run_id="a").summary
    assert set(first["drift"]) == {"topic", "urgency", "tags_refund", "tags_login"}
    assert first["drift"]["topic"]["notes"] == ["no previous run on these tables to compare with"]
    tables = {path: DeltaTable(path).version() for path in (labels_path(full), full.table_path("votes"))}
    gated = config_from_dict({**base, "drift": {"fail_on_lf_coverage": 0.01}})
    with pytest.raises(DriftError, match=r"drift: the coverage of LF kw_crash \(added\) of task topic moved by "
                                         r"\+0\.\d+ since run a, more than drift.fail_on_lf_coverage = 0.01"):
        pipeline.run(spark, gated, run_id="gated")
    assert {path: DeltaTable(path).to_pandas().run_id.unique().tolist() for path in tables} == {
        path: ["a"] for path in tables}  # restored: the labels and votes of run a
    second = pipeline.run(spark, full, run_id="b").summary  # kw_crash (task topic) is new: applied on its own
    assert second["apply"]["applied_lfs"] == ["kw_crash"] and second["drift"]["topic"]["previous_run"] == "a"
    assert second["drift"]["topic"]["changes"]["lfs"]["kw_crash"]["status"] == "added"
    assert "kw_crash" not in second["drift"]["urgency"]["changes"]["lfs"]
    votes = DeltaTable(full.table_path("votes")).to_pandas()
    assert set(votes.loc[votes.lf_name == "kw_crash", "run_id"]) == {"b"}
    assert set(votes.loc[votes.lf_name != "kw_crash", "run_id"]) == {"a"}

    more = pd.read_parquet(source)
    added = more.iloc[:10].assign(id=more["id"].iloc[:10] + N)
    pd.concat([more, added], ignore_index=True).to_parquet(source)
    labels = pipeline.run(spark, full, run_id="c").summary["tables"]["labels"]["path"]  # the 10 new rows get every LF
    votes = DeltaTable(full.table_path("votes")).to_pandas()
    assert set(votes.loc[votes.row_id.astype(int) >= N, "run_id"]) == {"c"}
    assert set(votes.loc[votes.row_id.astype(int) < N, "run_id"]) == {"a", "b"}

    fresh = config_from_dict({**base, "lakehouse": str(tmp_path / "fresh")})
    fresh_labels = pipeline.run(spark, fresh, run_id="all").summary["tables"]["labels"]["path"]

    def table(cfg, name):
        df = DeltaTable(cfg.table_path(name)).to_pandas()
        return df.drop(columns=[c for c in df.columns if c in ("run_id", "created_at", "votes_version")])

    key = ["row_id", "lf_name"]
    assert table(full, "votes").sort_values(key).reset_index(drop=True).equals(
        table(fresh, "votes").sort_values(key).reset_index(drop=True))
    got = DeltaTable(labels).to_pandas().sort_values("row_id").reset_index(drop=True)
    want = DeltaTable(fresh_labels).to_pandas().sort_values("row_id").reset_index(drop=True)
    assert len(got) == N + 10
    for task in ("topic", "urgency", "tags_refund", "tags_login"):
        assert got[task].apply(lambda s: s["label"]).tolist() == want[task].apply(lambda s: s["label"]).tolist(), task


def test_one_tasks_broken_module_says_how_to_run_the_others(tmp_path):
    """One team's LF module that fails to import stops what needs its task (run: every task), with one error that
    names the task and how to run the others meanwhile, and that works; reading the other task alone needs no
    override (tests/jobs/test_broken_tasks.py)."""
    from jobs.runtime.config_loading import load_config

    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path), "source": {"path": "x.parquet", "id_column": "id"},
        "tasks": {"urgency": {"lfs": {"modules": ["tests.jobs.urgency_lfs"]}},
                  "topic": {"label_space": ["billing", "tech"], "lfs": {"modules": ["tests.jobs.no_such_team_module"]}}}}))
    from lf_library.errors import LFConfigError

    with pytest.raises(LFConfigError, match=r"^task 'topic' \(tasks.topic.lfs\): .*no_such_team_module.*; fix it and "
                                          r"rerun; .*--set tasks.topic=null runs the pipeline without topic"):
        build_task_set(load_config(str(path)))
    assert [t.name for t in build_task_set(load_config(str(path), overrides=["tasks.topic=null"])).tasks] == ["urgency"]
    assert build_task_set(load_config(str(path)), only=["urgency"]).names == ("urgency",)


def test_a_tasks_declared_lf_is_named_by_its_place_in_the_config(tmp_path):
    """An LF declared under tasks.<name>.lfs.declared was reported as `config lfs.declared[0]`."""
    from jobs.runtime.config_loading import load_config
    from lf_library.errors import LFConfigError

    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path), "source": {"path": "x.parquet", "id_column": "id"},
        "tasks": {"urgency": {"lfs": {"modules": ["tests.jobs.urgency_lfs"]}},
                  "refund": {"label_space": ["no_refund", "refund"],
                             "lfs": {"declared": [{"name": "kw_refund", "kind": "keyword", "keywrods": ["refund"],
                                                   "label": "refund"}]}}}}))
    with pytest.raises(LFConfigError, match=r"config tasks\.refund\.lfs\.declared\[0\]"):
        build_task_set(load_config(str(path)))
    good = path.read_text().replace("keywrods", "keywords")
    path.write_text(good)
    refund = next(t for t in build_task_set(load_config(str(path))).tasks if t.name == "refund")
    assert refund.registry.origin("kw_refund") == "config tasks.refund.lfs.declared[0]"


def test_a_duplicate_id_in_the_evaluation_source_fails_before_apply(spark, tmp_path, monkeypatch):
    """As with one task: the evaluation source is checked before apply, and its error names evaluation.* keys."""
    from dataclasses import replace

    from jobs import apply_lfs, pipeline

    source = make_source(tmp_path)
    held_out = tmp_path / "held_out.parquet"
    rows = pd.read_parquet(source)
    pd.concat([rows, rows.iloc[[3]]]).to_parquet(held_out)  # id 3 twice, byte for byte
    cfg = config_from_dict(task_dict(tmp_path, source, evaluation={"path": str(held_out), "format": "parquet",
                                                                   "id_column": "id"}))
    cfg = replace(cfg, mlflow=replace(cfg.mlflow, enabled=False))

    def no_apply(*args, **kwargs):
        raise AssertionError("apply ran before the evaluation source was checked")

    monkeypatch.setattr(apply_lfs, "run", no_apply)
    with pytest.raises(InputDataError, match=r"is not unique: 1 id\(s\) repeat, e\.g\. 3; their rows are exact copies: "
                                             r"set evaluation\.drop_duplicate_rows: true to keep one of each"):
        pipeline.run(spark, cfg, run_id="mt-ev")
    assert not (tmp_path / "lake" / "votes").exists()


def test_the_evaluation_check_reads_what_scoring_reads(spark, tmp_path):
    """The early check of the evaluation source reads what scoring reads: the LFs of the tasks with a gold
    column. A held-out set without the column only an unscored task's LFs read (priority: urgency's) passes;
    with urgency scored, it is refused naming the LF."""
    from jobs import delta_io
    from jobs.multitask import check_holdout

    source = make_source(tmp_path)
    held_out = tmp_path / "held_out.parquet"
    pd.read_parquet(source).drop(columns=["priority"]).to_parquet(held_out)
    ev = {"path": str(held_out), "format": "parquet", "id_column": "id"}
    unscored = task_dict(tmp_path, source, evaluation=ev)
    unscored["tasks"]["urgency"] = {"label_space": ["routine", "urgent"]}
    for tasks, refused in ((unscored, False), (task_dict(tmp_path, source, evaluation=ev), True)):
        cfg = config_from_dict(tasks)
        check = lambda: check_holdout(spark, cfg, build_task_set(cfg), delta_io.delta_io(spark, cfg.tables.delta_io))  # noqa: E731
        if refused:
            with pytest.raises(InputDataError, match=r"LF 'py_low_priority' read\(s\) column 'priority', not found in "
                                                     r".*held_out\.parquet.* or point evaluation\.path at a table"):
                check()
        else:
            check()


def test_use_dev_labels_reads_each_tasks_gold_table(spark, tmp_path, capfd, monkeypatch):
    """A run of several tasks fits a task with its gold table's dev rows (gold_<task>) as a single-task run
    of that task fits with its gold table's: the same label model; a task without a gold table still runs
    (a drill of session 23: the run warned that it did not read the gold tables and fitted without them)."""
    import shutil

    from jobs import cli, pipeline
    from labelmodel import LabelModel

    source = make_source(tmp_path)
    truth = pd.read_parquet(source).set_index("id")["urgency"]
    multi = {"lakehouse": str(tmp_path / "lake"), "source": {"path": source, "format": "parquet", "id_column": "id"},
             "tasks": {"urgency": {"label_space": ["routine", "urgent"], "lfs": {"modules": ["tests.jobs.urgency_lfs"]}}},
             "multi_label": {"name": "tags", "tags": ["refund"], "lfs": {"modules": ["tests.jobs.refund_lfs"]}},
             "label_model": {"use_dev_labels": True}, "mlflow": {"enabled": False}}  # fmt: skip
    config = tmp_path / "multi.yaml"
    config.write_text(yaml.safe_dump(multi))
    labels = tmp_path / "urgency.csv"  # 60 dev rows (the model declines fewer than 50), 30 test rows
    pd.DataFrame([{"row_id": i, "label": truth[i], "annotator": "ann", "split": "dev" if i < 60 else "test"}
                  for i in range(N)]).to_csv(labels, index=False)  # fmt: skip
    assert cli.main(["gold", "import", "--config", str(config), "--file", str(labels), "--task", "urgency"]) == 0
    cfg = config_from_dict(multi)
    capfd.readouterr()
    summary = pipeline.run(spark, cfg, run_id="dev").summary
    said = capfd.readouterr().err  # the CLI's log handler (gold import) writes the run's warnings too
    assert "does not read the gold tables" not in said, said
    urgency, tag = summary["tasks"]["urgency"], summary["tasks"]["tags_refund"]
    assert urgency["metrics"]["gold_dev_rows"] == 60 and urgency["metrics"]["gold_test_rows"] == 30
    assert "gold_dev_rows" not in tag["metrics"] and tag["tables"]["labels"]["rows"] == N
    gold_refund = cfg.table_path("gold").rstrip("/") + "_tags_refund"
    assert said.count(f"the gold table {gold_refund} has no dev rows") == 1, said

    # The same task alone, with the same gold table as its one: the same fit.
    single = {"lakehouse": str(tmp_path / "single"),
              "source": {"path": source, "format": "parquet", "id_column": "id"},
              "lfs": {"modules": ["tests.jobs.urgency_lfs"]}, "label_model": {"use_dev_labels": True},
              "mlflow": {"enabled": False}}  # fmt: skip
    alone_cfg = config_from_dict(single)
    shutil.copytree(cfg.table_path("gold").rstrip("/") + "_urgency", alone_cfg.table_path("gold"))
    alone = pipeline.run(spark, alone_cfg, run_id="alone").summary
    assert alone["metrics"]["gold_dev_rows"] == 60
    for key in ("gold_dev_rows", "gold_test_rows", "gold_test_accuracy"):
        assert urgency["metrics"][key] == alone["metrics"][key], key
    mine = LabelModel.load(urgency["label_model"]["path"]).to_dict()
    theirs = LabelModel.load(alone["label_model"]["path"]).to_dict()
    assert mine["fit_info"]["dev_rows"] == 60 and not mine["fit_info"]["dev_use"].startswith("unused"), mine
    assert mine == theirs

    # Without the apply pass's masks (an incremental apply) the gold rows' votes come from the grouped votes.
    from jobs import task_masks

    monkeypatch.setattr(task_masks, "stored", lambda *a, **k: None)
    grouped = pipeline.run(spark, cfg, run_id="dev-grouped").summary["tasks"]["urgency"]
    assert grouped["metrics"]["gold_dev_rows"] == 60 and grouped["metrics"]["gold_test_rows"] == 30
    assert LabelModel.load(grouped["label_model"]["path"]).to_dict() == mine


def test_evaluation_gold_of_no_class_is_named_per_task(spark, tmp_path, caplog):
    """As with one task: held-out gold written in another case ('Billing') was scored as 0 rows with a nan
    accuracy and no warning; now the task's values are named and its eval_* metrics left out."""
    import logging

    from jobs import pipeline

    source = make_source(tmp_path)
    held_out = tmp_path / "held_out.parquet"
    frame = pd.read_parquet(source)
    frame["topic"] = frame["topic"].str.capitalize()
    frame.to_parquet(held_out)
    data = task_dict(tmp_path, source, evaluation={"path": str(held_out), "format": "parquet", "id_column": "id"})
    data["mlflow"] = {"enabled": False}
    with caplog.at_level(logging.WARNING, logger="jobs"):
        summary = pipeline.run(spark, config_from_dict(data), run_id="mt-case").summary
    assert "eval_rows" not in summary["tasks"]["topic"]["metrics"]  # was eval_accuracy nan
    assert summary["tasks"]["urgency"]["metrics"]["eval_rows"] == N
    assert "evaluate: column 'topic' (tasks.topic.gold_column) of evaluation " in caplog.text  # the task's key
    assert ("no held-out row has a gold class, so accuracy against it is not measured. Write the gold as class names "
            "(case matters) or ids, or fix tasks.topic.gold_column") in caplog.text
    assert "(tasks.urgency.gold_column)" not in caplog.text  # its gold all matched: no job, no warning
