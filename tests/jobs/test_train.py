"""``lakelabel train``: one real pipeline run then train (MLflow on), checked against the Delta tables.

The shared run: the analyze tests' pipeline run (60 rows of the sample LFs, some without gold), a
held-out evaluation source, the end model with tiny hashed features (speed), MLflow in a sqlite
store under the tmp lakehouse, the model registered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs import train
from jobs.cli import main as cli_main
from jobs.endmodel import features
from jobs.runtime.config import EndModelConfig, SourceConfig
from jobs.runtime.config_loading import config_from_dict
from lf_library.errors import ConfigError

pytestmark = pytest.mark.spark

REGISTERED = "test_end_model"


@pytest.fixture(scope="module")
def trained(spark, analyzed_run, tmp_path_factory):
    """``(cfg, train summary)``: ``train.run`` on the labels of the shared analyze run (60 rows, MLflow on).

    The pipeline run is the one the analyze and report tests share (tests/jobs/conftest.py); its
    report was written before this fixture trains, so those tests never see an end model.
    """
    from tests.jobs.test_pipeline import make_rows, write_source

    base, _, _, _ = analyzed_run
    held_out = make_rows(24)
    held_out["id"] = [f"e{i:03d}" for i in range(len(held_out))]
    cfg = replace(
        base,
        evaluation=SourceConfig(path=write_source(tmp_path_factory.mktemp("train"), held_out, "held_out"),
                                format="parquet", id_column="id", gold_column="gold"),
        end_model=EndModelConfig(num_features=256, max_iter=30, registered_name=REGISTERED,
                                 numeric_columns=["stars"], feedback_rows=3),
    )  # fmt: skip
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        yield cfg, train.run(spark, cfg)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="module")
def tables(trained):
    cfg, _ = trained
    source = pd.read_parquet(cfg.source.path).set_index("id")
    labels = DeltaTable(cfg.table_path("labels")).to_pandas().set_index("row_id").loc[source.index]
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas().set_index("row_id").loc[source.index]
    return source, labels, preds


def test_predictions_table_has_every_row_with_lineage(trained, tables):
    cfg, summary = trained
    source, labels, preds = tables
    assert len(preds) == len(source) == summary["counts"]["rows"] == 60
    probs = np.stack(preds["probabilities"].to_numpy())
    assert probs.shape == (60, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert (preds["label"].to_numpy() == probs.argmax(axis=1)).all()
    assert list(preds["label_name"]) == [["neg", "pos"][c] for c in preds["label"]]
    assert np.allclose(preds["confidence"], probs.max(axis=1))
    assert (preds["lm_label"].to_numpy() == labels["label"].fillna(-1).astype(int).to_numpy()).all()
    assert (preds["n_votes"].to_numpy() == labels["n_votes"].to_numpy()).all()
    assert set(preds["run_id"]) == {"an-1"} and set(preds["labels_version"]) == {summary["tables"]["labels"]["version"]}
    assert set(preds["end_model"]) == {f"models:/{REGISTERED}/1"} == {summary["end_model"]["model_uri"]}
    assert set(preds["classifier"]) == {"logistic_regression"}
    assert summary["tables"]["predictions"] == {"path": cfg.table_path("predictions"), "version": 0}


def test_training_rows_are_probability_weighted(trained, tables):
    """Each labeled row contributes one row per class with a positive probability, weight = that probability."""
    _, summary = trained
    _, labels, _ = tables
    voted = labels[labels["n_votes"] > 0]
    probs = np.stack(voted["probabilities"].to_numpy())
    c = summary["counts"]
    assert c["labeled_rows"] == len(voted) < 60  # rows no LF voted on are left out
    assert c["training_rows"] == int((probs > 0).sum()) > len(voted)  # hard labels would give one row each
    assert c["training_weight"] == pytest.approx(len(voted))
    assert c["class_weights"] == pytest.approx(probs.sum(axis=0).tolist())


def test_training_rows_expand_soft_labels(spark):
    labels = spark.createDataFrame([("a", [0.6, 0.4], 0, 2), ("b", [0.0, 1.0], 1, 1), ("c", [0.5, 0.5], -1, 0)],
                                   "row_id string, probabilities array<double>, label int, n_votes int")
    soft = sorted(tuple(r) for r in features.training_rows(labels, 2, targets="probabilities",
                                                           include_unvoted=False).collect())
    assert soft == [("a", 0.0, 0.6), ("a", 1.0, 0.4), ("b", 1.0, 1.0)]
    hard = sorted(tuple(r) for r in features.training_rows(labels, 2, targets="hard", include_unvoted=True).collect())
    assert hard == [("a", 0.0, 1.0), ("b", 1.0, 1.0)]


def test_gold_dev_labels_replace_the_targets_of_their_rows(spark):
    labels = spark.createDataFrame([("a", [0.6, 0.4], 0, 2), ("b", [0.0, 1.0], 1, 1), ("c", [0.5, 0.5], -1, 0)],
                                   "row_id string, probabilities array<double>, label int, n_votes int")
    dev = spark.createDataFrame([("a", 1), ("c", 0)], "row_id string, label int")
    merged = features.with_dev_labels(labels, dev, 2)
    soft = sorted(tuple(r) for r in features.training_rows(merged, 2, targets="probabilities",
                                                           include_unvoted=False).collect())
    # a: the person's class with certainty; b: untouched; c: no LF voted, but a person labeled it.
    assert soft == [("a", 1.0, 1.0), ("b", 1.0, 1.0), ("c", 0.0, 1.0)]


def test_model_learns_the_probabilities_not_the_hard_label(spark):
    """Every row says the same thing with p = 0.7 / 0.3: the fitted model's probability is 0.7.

    Hard labels (class 0 on every row) would give a probability near 1.
    """
    labels = spark.createDataFrame([(f"r{i}", [0.7, 0.3], 0, 1) for i in range(8)],
                                   "row_id string, probabilities array<double>, label int, n_votes int")
    texts = spark.createDataFrame([(f"r{i}", "same words") for i in range(8)], "row_id string, text string")
    cfg = EndModelConfig(num_features=16, max_iter=10, reg_param=0.0, ngrams=1)
    rows = features.training_rows(labels, 2, targets="probabilities", include_unvoted=False).join(texts, "row_id")
    model = features.build_pipeline(cfg, ["text"]).fit(rows)
    got = model.transform(texts.limit(1)).select(features.probabilities("logistic_regression")).first()[0]
    assert got == pytest.approx([0.7, 0.3], abs=0.01)


def _accuracy(pred: np.ndarray, gold: np.ndarray, mask: np.ndarray) -> float | None:
    m = mask & (gold >= 0)
    return float((pred[m] == gold[m]).mean()) if m.any() else None


def test_source_gold_scores_match_the_tables(trained, tables):
    _, summary = trained
    source, labels, preds = tables
    gold = source["gold"].map({"neg": 0, "pos": 1}).fillna(-1).astype(int).to_numpy()
    pred = preds["label"].to_numpy()
    covered = labels["n_votes"].to_numpy() > 0
    known = gold >= 0
    ev = summary["evaluation"]["source_gold"]
    assert 0 < known.sum() < 60
    assert (ev["rows"], ev["covered_rows"], ev["uncovered_rows"]) == (
        int(known.sum()), int((covered & known).sum()), int((~covered & known).sum()))
    acc = ev["accuracy"]["end_model"]
    assert acc["all"] == pytest.approx(_accuracy(pred, gold, np.ones(60, bool)))
    assert acc["covered"] == pytest.approx(_accuracy(pred, gold, covered))
    assert acc["uncovered"] == pytest.approx(_accuracy(pred, gold, ~covered))
    # The label model's accuracy with ties shared, from the labels table's probabilities.
    probs = np.stack(labels["probabilities"].to_numpy())
    tied = probs >= probs.max(axis=1, keepdims=True) - 1e-5
    shares = tied / tied.sum(axis=1, keepdims=True)
    assert ev["accuracy"]["label_model"]["all"] == pytest.approx(shares[np.arange(60), gold][known].mean())
    pos = ev["per_class"][1]
    tp, fp, fn = ((pred == 1) & (gold == 1)).sum(), ((pred == 1) & (gold == 0)).sum(), ((pred == 0) & (gold == 1)).sum()
    assert pos["end_model"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert summary["evaluation"]["evaluation"]["rows"] == 24  # the held-out source, scored too
    assert set(summary["evaluation"]["evaluation"]["accuracy"]) == {"end_model", "label_model", "majority_vote"}


def test_feedback_lists_disagreements_and_least_confident(trained, tables):
    _, summary = trained
    _, _, preds = tables
    fb = summary["feedback"]
    disagree = (preds["n_votes"] > 0) & (preds["lm_label"] >= 0) & (preds["label"] != preds["lm_label"])
    assert fb["disagreements"] == int(disagree.sum())
    assert len(fb["top_disagreements"]) == min(3, int(disagree.sum()))
    least = [r["end_confidence"] for r in fb["least_confident"]]
    assert least == sorted(least) and least[0] == pytest.approx(preds["confidence"].min(), abs=1e-4)


def test_mlflow_model_loads_and_predicts_like_the_table(spark, trained, tables):
    import mlflow
    import mlflow.spark

    cfg, summary = trained
    source, _, preds = tables
    mlflow.set_tracking_uri(summary["mlflow"]["tracking_uri"])
    model = mlflow.spark.load_model(summary["end_model"]["model_uri"])
    rows = spark.read.parquet(cfg.source.path).select("id", "text", "stars")
    got = {r["id"]: int(r["prediction"]) for r in model.transform(rows).select("id", "prediction").collect()}
    assert got == {rid: int(preds.loc[rid, "label"]) for rid in source.index}
    run = mlflow.get_run(summary["mlflow"]["run_id"])
    assert run.data.params["end_model.labels_version"] == str(summary["tables"]["labels"]["version"])
    # The settings train ran with, each a param (the pipeline's config.end_model.* are the config it ran with)
    assert {k: run.data.params[f"end_model.{k}"] for k in ("classifier", "max_iter", "num_features", "targets",
                                                          "numeric_columns")} == {
        "classifier": "logistic_regression", "max_iter": "30", "num_features": "256", "targets": "probabilities",
        "numeric_columns": json.dumps(cfg.end_model.numeric_columns)}
    assert run.data.metrics["end_model.source_gold.end_model.accuracy_all"] == pytest.approx(
        summary["evaluation"]["source_gold"]["accuracy"]["end_model"]["all"])
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{REGISTERED}'")
    assert [str(v.version) for v in versions] == ["1"]


def test_rerun_is_a_no_op(spark, trained):
    cfg, summary = trained
    again = train.run(spark, cfg)
    assert again["skipped"] and again["tables"] == summary["tables"]
    assert DeltaTable(cfg.table_path("predictions")).version() == 0
    from jobs.train import COMMAND

    assert COMMAND.done(again).endswith(" v0 (already trained on these labels with this config: nothing ran)")
    assert "nothing ran" not in COMMAND.done(summary)


def _cli(cfg, tmp_path, *sets: str) -> int:
    conf = tmp_path / "c.yaml"
    conf.write_text(json.dumps({k: cfg.to_dict()[k] for k in ("lakehouse", "source", "lfs", "mlflow", "end_model")}))
    return cli_main(["train", "--config", str(conf), *[a for s in sets for a in ("--set", s)]])


def test_bad_input_exits_2_and_leaves_the_predictions(trained, tmp_path, capsys):
    cfg, _ = trained
    assert _cli(cfg, tmp_path, "end_model.no_such_key=1") == 2
    assert "unknown config key end_model.no_such_key" in capsys.readouterr().err
    assert _cli(cfg, tmp_path, "end_model.min_labeled_rows=1000") == 2
    assert "below end_model.min_labeled_rows = 1000" in capsys.readouterr().err
    assert _cli(cfg, tmp_path, "lfs.label_space=[bad,good,meh]") == 2
    assert "holds labels over ['neg', 'pos']" in capsys.readouterr().err
    assert _cli(cfg, tmp_path, "end_model.text_columns=[nope]") == 2
    assert "end_model column(s) 'nope' not in" in capsys.readouterr().err
    assert DeltaTable(cfg.table_path("predictions")).version() == 0


def test_a_duplicate_id_in_the_evaluation_source_exits_2_before_the_fit(spark, trained, tmp_path, capsys, monkeypatch):
    """Only `run` checked the ``evaluation:`` source's ids: train scored a repeated row twice (exit 0)."""
    import pandas as pd
    from pyspark.ml import Pipeline

    from tests.jobs.test_pipeline import make_rows, write_source

    cfg, _ = trained
    held_out = make_rows(6)
    path = write_source(tmp_path, pd.concat([held_out, held_out.iloc[[2]].assign(text="other text")]), "dup_held_out")

    def no_fit(*args, **kwargs):
        raise AssertionError("the end model was fitted before the evaluation source was checked")

    monkeypatch.setattr(Pipeline, "fit", no_fit)
    assert _cli(cfg, tmp_path, f"evaluation={{path: {path}, format: parquet, id_column: id, gold_column: gold}}",
                "end_model.max_iter=31") == 2  # another config: not the no-op rerun
    err = capsys.readouterr().err
    assert "dup_held_out is not unique: 1 id(s) repeat, e.g. 'r002'" in err and "evaluation.id_column" in err and err.count("\n") == 1, err
    assert DeltaTable(cfg.table_path("predictions")).version() == 0


def test_numeric_column_of_words_exits_2_naming_it(spark, trained, tmp_path, capsys):
    """A CSV source's columns are strings: a numeric column holding words stops before the fit, naming it."""
    cfg, _ = trained
    assert _cli(cfg, tmp_path, "end_model.numeric_columns=[gold]") == 2
    err = capsys.readouterr().err
    assert "end_model.numeric_columns: column 'gold' of" in err and "which is not a number" in err
    assert DeltaTable(cfg.table_path("predictions")).version() == 0
    numbers = spark.createDataFrame([("1.5",), (None,), ("7",)], "n string")
    features.check_numeric(EndModelConfig(numeric_columns=["n"]), numbers, "t")  # numbers as strings are fine
    dates = spark.createDataFrame([("3",), ("2013-12-27T23:07:50",)], "d string")
    with pytest.raises(ConfigError, match=r"column 'd' of t holds '2013-12-27T23:07:50', which is not a number"):
        features.check_numeric(EndModelConfig(numeric_columns=["d"]), dates, "t")
    arrays = spark.createDataFrame([([1],)], "a array<int>")
    with pytest.raises(ConfigError, match=r"column 'a' of t is array<int>, not a number"):
        features.check_numeric(EndModelConfig(numeric_columns=["a"]), arrays, "t")


def test_config_checks():
    with pytest.raises(ConfigError, match="end_model.ngrams = 0 must be >= 1"):
        config_from_dict({"end_model": {"ngrams": 0}})
    with pytest.raises(ConfigError, match="end_model.classifier = 'svm' is not valid; choose one of"):
        config_from_dict({"end_model": {"classifier": "svm"}})


def test_annotate_disagreement_ranks_end_model_against_label_model(spark):
    from jobs.people.annotate import select_rows

    labels = spark.createDataFrame(
        [("a", [0.8, 0.2], 0, 0.8, 2), ("b", [0.4, 0.6], 1, 0.6, 1), ("c", [0.9, 0.1], 0, 0.9, 1),
         ("d", [0.7, 0.3], 0, 0.7, 0)],
        "row_id string, probabilities array<double>, label int, confidence double, n_votes int")
    votes = spark.createDataFrame([("a", "lf1", 0), ("b", "lf1", 1), ("c", "lf1", 0)],
                                  "row_id string, lf_name string, vote int")
    texts = spark.createDataFrame([(r, f"text {r}") for r in "abcd"], "row_id string, text string")
    preds = spark.createDataFrame([("a", [0.1, 0.9], 1), ("b", [0.7, 0.3], 0), ("c", [0.8, 0.2], 0),
                                   ("d", [0.1, 0.9], 1)], "row_id string, probabilities array<double>, label int")
    picked, _ = select_rows(labels, votes, texts, strategy="disagreement", n=10, cardinality=2, predictions=preds)
    got = [(r["row_id"], round(r["score"], 6)) for r in picked.collect()]
    # a: (0.9 - 0.1) + (0.8 - 0.2); b: (0.7 - 0.3) + (0.6 - 0.4); c agrees; d has no LF vote.
    assert got == [("a", 1.4), ("b", 0.6)]


def test_report_has_the_end_model_section(analyzed_run, trained):
    from jobs import report

    _, _, _, doc = analyzed_run
    cfg, summary = trained
    built = report.render(report.with_end_model(cfg, doc))
    assert built.doc["end_model"]["end_model"]["model_uri"] == summary["end_model"]["model_uri"]
    assert "end_model_f1" in [f["name"] for f in built.figures]
    assert "<h2>End model</h2>" in built.html and summary["end_model"]["model_uri"] in built.html


def test_gold_imported_since_the_last_train_retrains(spark, trained, tmp_path, capfd):
    """A `gold import` after train adds dev targets and test labels: training again is not a no-op.

    Last in the module: it writes predictions v1 (the tests above read v0). Its own gold table
    name keeps the shared run's lakehouse without a gold table for the other modules.
    """
    import mlflow

    from jobs.people import gold
    from jobs.runtime import exits, signals

    cfg, summary = trained
    cfg = replace(cfg, tables=replace(cfg.tables, gold="gold_retrain"))
    assert train.run(spark, cfg)["skipped"]  # no gold table: the same key as the first train
    source = pd.read_parquet(cfg.source.path).dropna(subset=["gold"]).head(10)
    (tmp_path / "gold.csv").write_text(source.rename(columns={"id": "row_id", "gold": "label"})[["row_id", "label"]]
                                       .assign(split="dev").to_csv(index=False))  # fmt: skip
    gold.run(spark, cfg, run_id="gold-1", file=str(tmp_path / "gold.csv"))
    # The train the import calls for (a no-op would commit nothing), stopped by SIGTERM after its predictions commit,
    # in the MLflow logging: the exit line says the commit stands.
    log_dict = mlflow.log_dict

    def stopped(*args, **kwargs):
        signals._signalled = "terminated"
        raise signals.Terminated()

    mlflow.log_dict = stopped
    try:
        assert exits.guarded(lambda: train.run(spark, cfg), debug=False) == exits.EXIT_TERMINATED
    finally:
        mlflow.log_dict = log_dict
    version = summary["tables"]["predictions"]["version"] + 1
    assert DeltaTable(cfg.table_path("predictions")).version() == version
    assert capfd.readouterr().err.strip().endswith(
        f"lakelabel: terminated (SIGTERM) after it committed predictions {cfg.table_path('predictions')} v{version}, "
        f"which stand; its run record (MLflow, summary) may be incomplete: rerun the command with the same --run-id "
        f"to complete it")
    # The rerun the line advises (the command line, -q) trains again (the stopped attempt wrote no train record)
    # on the imported dev labels and completes the run.
    conf, out = tmp_path / "retrain.json", tmp_path / "summary.json"
    conf.write_text(json.dumps(cfg.to_dict()))
    with _jobs_log_level(logging.getLogger("jobs").level):  # the command line's -q sets it: put it back after
        assert cli_main(["train", "--config", str(conf), "-q", "--summary-json", str(out)]) == 0
    again = json.loads(out.read_text())
    assert not again["skipped"] and again["counts"]["gold_dev_rows"] == 10
    # A new version of the registered model, which MLflow did not announce under -q
    assert int(again["end_model"]["model_version"]) > int(summary["end_model"]["model_version"])
    err = capfd.readouterr().err
    assert "Created version" not in err and "already exists. Creating a new version" not in err, err
    assert again["tables"]["predictions"]["version"] == version + 1
    assert train.run(spark, cfg)["skipped"]  # and once trained with that gold, a no-op again
    # A data-neutral commit to the predictions since (a table property here; OPTIMIZE, VACUUM): still a no-op.
    DeltaTable(cfg.table_path("predictions")).alter.set_table_properties({"delta.logRetentionDuration": "interval 60 days"})
    assert DeltaTable(cfg.table_path("predictions")).version() == version + 2
    assert train.run(spark, cfg)["skipped"]
    # Another evaluation source (here none) is another rerun key, so a train after it is no no-op and its
    # summary never carries the old source's scores (checked on the key; the train itself is as above).
    assert train._config_hash(cfg, ["text"]) != train._config_hash(replace(cfg, evaluation=None), ["text"])
    # Trained again with another setting: the same MLflow run (train's --run-id names the labels' run), so the first
    # train's value stays the param and this one's is a tag; the warning says what holds this train's (a drill: it
    # said "Use a new --run-id", which train refuses for a run that wrote no labels).
    other = replace(cfg, end_model=replace(cfg.end_model, max_iter=31))
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)  # the command line above reset the root logger's handlers
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("jobs.runtime.tracking").addHandler(handler)
    try:
        third = train.run(spark, other)
    finally:
        logging.getLogger("jobs.runtime.tracking").removeHandler(handler)
    said = [m for m in records if "already records" in m]
    assert len(said) == 1 and "end_model.max_iter=30" in said[0] and "end_model.max_iter=31" in said[0], said
    assert said[0].endswith("The registered model version, the predictions table and those tags are this train's; "
                            "its metrics replace the earlier train's"), said
    assert "--run-id" not in said[0]
    client = mlflow.MlflowClient(tracking_uri=third["mlflow"]["tracking_uri"])
    run = client.get_run(third["mlflow"]["run_id"]).data
    assert run.params["end_model.max_iter"] == "30" and run.tags["end_model.max_iter"] == "31"
    # Its Spark model has a folder of its own, which its registered version names (a re-drill: the second train
    # wrote into the first's folder, and both versions loaded a mix of the two pipelines).
    folders = {a.path for a in client.list_artifacts(third["mlflow"]["run_id"])}
    first = client.get_model_version(REGISTERED, summary["end_model"]["model_version"]).source.rstrip("/")
    latest = client.get_model_version(REGISTERED, third["end_model"]["model_version"]).source.rstrip("/")
    assert first.endswith("/end_model") and latest != first and latest.rsplit("/", 1)[-1] in folders, (first, latest)


@contextlib.contextmanager
def _jobs_log_level(level: int):
    jobs_log = logging.getLogger("jobs")
    before = jobs_log.level
    jobs_log.setLevel(level)
    try:
        yield
    finally:
        jobs_log.setLevel(before)


def test_an_evaluation_source_left_unscored_is_a_warning(spark, trained, caplog, capfd):
    """Train with other LFs than the run's (`run --set lfs...` then plain `train`): the held-out set is not silent."""
    from jobs.apply_lfs import build_registry

    cfg, _ = trained
    dropped = build_registry(cfg).names[0]
    cfg = replace(cfg, lfs=replace(cfg.lfs, exclude=[*cfg.lfs.exclude, dropped]),
                  end_model=replace(cfg.end_model, feedback_rows=2))  # fmt: skip
    capfd.readouterr()
    with _jobs_log_level(logging.INFO), caplog.at_level(logging.WARNING, logger="jobs.train"):
        doc = train.run(spark, cfg)
    # Without -q, MLflow's own registration lines stay (the test above checks they go under -q).
    assert f"Created version '{doc['end_model']['model_version']}'" in capfd.readouterr().err
    assert "the evaluation source was not scored" in doc["evaluation"]["evaluation"]["note"]
    assert any("the evaluation source was not scored" in r.getMessage() and "the same lfs settings" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("level, printed", [(logging.WARNING, False), (logging.INFO, True)])
def test_mlflow_registration_lines_stay_out_under_quiet(capsys, monkeypatch, level, printed):
    """`lakelabel train -q` printed MLflow's "Successfully registered model ..." and "Created version ...":
    log_model's own event-log context turns MLflow's stream back on before registering."""
    from types import SimpleNamespace

    from pyspark.sql import types as T
    from mlflow.utils import logging_utils

    from jobs.endmodel import registry

    def log_model(*args, **kwargs):  # as mlflow.spark.log_model: its context ends, then the registration prints
        logging_utils.disable_logging()
        logging_utils.enable_logging()
        logging_utils.eprint("Successfully registered model 'm'.")
        logging_utils.eprint("Created version '1' of model 'm'.")
        return SimpleNamespace(registered_model_version=1, model_uri="runs:/x/m")

    import mlflow.spark

    monkeypatch.setattr(logging.getLogger("jobs"), "level", level)
    monkeypatch.setattr(mlflow.spark, "log_model", log_model)
    schema = T.StructType([T.StructField("text", T.StringType())])
    assert registry.log_model(mlflow, object(), registered_name="m", columns=["text"], schema=schema,
                              metadata={}) == ("models:/m/1", "1")
    err = capsys.readouterr().err
    assert ("Successfully registered model 'm'." in err and "Created version '1'" in err) == printed, err
    logging_utils.eprint("after")  # the stream is MLflow's own again
    assert "after" in capsys.readouterr().err


def test_annotate_says_when_disagreement_cannot_use_the_end_model(spark, trained, tmp_path, caplog):
    """Predictions from older labels: disagreement falls back to majority vote, with a warning that -q shows (a
    drill: it was an INFO line, and the rows picked were not the ones a user who ran `train` expected)."""
    import logging

    from deltalake import write_deltalake

    from jobs import delta_io
    from jobs.people.annotate import _end_model_predictions

    cfg, _ = trained
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    current = cfg.table_path("labels")
    assert _end_model_predictions(cfg, io, spark, current) is not None  # from the current labels
    newer = str(tmp_path / "labels")  # a labels table one version past the one train read
    for _ in range(io.table_version(current) + 2):
        write_deltalake(newer, pd.DataFrame({"row_id": ["a"]}), mode="overwrite")
    with caplog.at_level(logging.WARNING, logger="jobs.people.annotate"):
        assert _end_model_predictions(cfg, io, spark, newer) is None
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "instead of the end model: rerun `lakelabel train` first" in warning.getMessage()
