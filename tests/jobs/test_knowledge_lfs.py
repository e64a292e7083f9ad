"""Old labels and existing models as LFs, run by the apply job on Spark (real MLflow store, real model)."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from jobs import apply_lfs, cli, pipeline
from jobs import delta_io
from jobs.runtime.config_loading import config_from_dict
from lf_library import LFRegistry, column_lf, model_lf
from jobs.delta_io.errors import SourceReadError
from lf_library.errors import InputDataError, LFConfigError
from lf_library.models import resolve_model

pytestmark = pytest.mark.spark

SPAM_TEXTS = ["win a free prize now", "free money click here", "buy cheap pills", "click to win cash"]
HAM_TEXTS = ["lovely song", "great voice and melody", "this song is my favorite", "the chorus is beautiful"]


def make_rows(n: int = 40) -> pd.DataFrame:
    rows = []
    for i in range(n):
        spam = i % 2 == 0
        text = (SPAM_TEXTS if spam else HAM_TEXTS)[(i // 2) % 4]
        # Old labels from an earlier process: right on most rows, wrong on every 5th, missing on every 7th.
        old = None if i % 7 == 0 else ("S" if spam != (i % 5 == 0) else "H")
        rows.append({"id": f"r{i:03d}", "text": text, "old": old, "gold": "spam" if spam else "ham"})
    return pd.DataFrame(rows)


def write_source(tmp_path, df: pd.DataFrame, name: str = "src") -> str:
    path = tmp_path / name
    path.mkdir()
    df.to_parquet(path / "part-0.parquet", index=False)
    return str(path)


def make_cfg(tmp_path, source: str, declared: list[dict], **extra) -> dict:
    return {
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": source, "format": "parquet", "id_column": "id", "gold_column": "gold"},
        "lfs": {"label_space": ["ham", "spam"], "declared": declared},
        "mlflow": {"enabled": False},
        **extra,
    }


def votes_by_lf(spark, cfg) -> dict[str, dict[str, int]]:
    votes = delta_io.read_table(spark, cfg.table_path("votes")).where("vote >= 0").toPandas()
    return {name: dict(zip(g.row_id, g.vote)) for name, g in votes.groupby("lf_name")}


# ----------------------------------------------------------------------------- column LFs


def test_column_lf_from_source_and_joined_table(spark, tmp_path):
    df = make_rows()
    source = write_source(tmp_path, df.drop(columns=["old"]).assign(legacy=df.old))
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    # Another table keyed by the same ids, holding old labels as ints for a subset of rows.
    pd.DataFrame({"row": df.id[::2], "verdict": np.where(df.gold[::2] == "spam", 1, 0)}).to_parquet(
        legacy / "part-0.parquet", index=False
    )
    declared = [
        {"name": "old_labels", "kind": "column", "column": "legacy", "mapping": {"S": "spam", "H": "ham", "?": None}},
        {"name": "vendor", "kind": "column", "column": "verdict", "table": str(legacy), "id_column": "row",
         "mapping": {1: "spam"}},
    ]
    cfg = config_from_dict(make_cfg(tmp_path, source, declared))
    applied = apply_lfs.run(spark, cfg, run_id="col")
    votes = votes_by_lf(spark, cfg)
    expected_old = {r.id: (1 if r.old == "S" else 0) for r in df.itertuples() if r.old is not None}
    assert votes["old_labels"] == expected_old  # nulls abstain
    assert votes["vendor"] == {r.id: 1 for r in df.iloc[::2].itertuples()}  # 0 is unmapped: abstains
    stats = {lf.name: lf for lf in applied.lfs}
    assert stats["old_labels"].kind == "column" and stats["old_labels"].origin == "column legacy"
    assert stats["vendor"].origin == f"column verdict of table {legacy}"

    # Its empirical accuracy shows like any LF's: 1 - (wrong rows) / (covered rows).
    result = pipeline.run(spark, cfg, run_id="col-full")
    fit = json.loads(next((tmp_path / "lake").rglob("col-full/**/fit.json")).read_text())
    acc = {row["lf"]: row["empirical_accuracy"] for row in fit["lfs"]}
    covered = df[df.old.notna()]
    wrong = ((covered.old == "S") != (covered.gold == "spam")).sum()
    assert acc["old_labels"] == pytest.approx(1 - wrong / len(covered))
    assert acc["vendor"] == 1.0
    assert {row["lf"]: (row["kind"], row["origin"]) for row in fit["lfs"]}["old_labels"] == ("column", "column legacy")
    assert {lf["name"]: lf["origin"] for lf in result.summary["lfs"]}["old_labels"] == "column legacy"


def test_reordered_label_space_warns_when_the_gold_column_holds_class_ids(spark, tmp_path, caplog):
    """A gold column of class ids (0/1) means another class once the label space is reordered (a drill: the
    fit's gold accuracy went from 0.69 to 0.31 without a word): the run that reorders it warns; a gold column
    of class names does not need to."""
    import logging

    df = make_rows(20)
    declared = [{"name": "kw_spam", "kind": "keyword", "label": "spam", "keywords": ["free", "win", "cheap"]},
                {"name": "kw_ham", "kind": "keyword", "label": "ham", "keywords": ["song", "voice"]}]
    for name, gold, warned in (("ids", df.gold.map({"ham": 0, "spam": 1}), True),
                               ("digits", df.gold.map({"ham": "0", "spam": "1"}), True),  # a CSV's ids
                               ("names", df.gold, False)):
        folder = tmp_path / name
        folder.mkdir()
        cfg = make_cfg(folder, write_source(folder, df.assign(gold=gold)), declared)
        pipeline.run(spark, config_from_dict(cfg), run_id="a")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="jobs.write_labels"):
            pipeline.run(spark, config_from_dict({**cfg, "lfs": {**cfg["lfs"], "label_space": ["spam", "ham"]}}),
                         run_id="b")
        said = ("the label space changed since the labels table" in caplog.text
                and "(['ham', 'spam'], now ['spam', 'ham']); the gold column 'gold' holds class ids" in caplog.text)
        assert said == warned, caplog.text


def test_column_lf_version_follows_the_mapping():
    reg = LFRegistry(["ham", "spam"])
    v1 = reg.register(column_lf("old", "legacy", {"S": "spam", "H": "ham"})).version
    assert LFRegistry(["ham", "spam"]).register(column_lf("old", "legacy", {"H": "ham", "S": "spam"})).version == v1
    assert LFRegistry(["ham", "spam"]).register(column_lf("old", "legacy", {"S": "spam"})).version != v1
    assert LFRegistry(["ham", "spam"]).register(column_lf("old", "legacy", {"S": "spam", "H": "ham"},
                                                          table="other")).version != v1
    lf = column_lf("old", "legacy", {"S": "spam", 2: "ham", True: "spam"}, label_space=["ham", "spam"])
    assert [lf({"legacy": v}) for v in ["S", "2", 2, True, "true", None, "X"]] == [1, 0, 0, 1, 1, -1, -1]


def test_column_lf_bad_inputs(spark, tmp_path):
    df = make_rows(10)
    source = write_source(tmp_path, df)
    with pytest.raises(InputDataError, match=r"LF 'old' reads column 'legasy', which the source lacks"):
        apply_lfs.run(spark, config_from_dict(make_cfg(tmp_path, source, [
            {"name": "old", "kind": "column", "column": "legasy", "mapping": {"S": "spam"}}])), run_id="x")
    dup = tmp_path / "dup"
    dup.mkdir()
    pd.DataFrame({"id": ["r001", "r001"], "v": ["S", "H"]}).to_parquet(dup / "part-0.parquet", index=False)
    with pytest.raises(InputDataError, match=r"LF 'old': table .*dup holds id 'r001' more than once"):
        apply_lfs.run(spark, config_from_dict(make_cfg(tmp_path, source, [
            {"name": "old", "kind": "column", "column": "v", "table": str(dup), "mapping": {"S": "spam"}}])), run_id="x")
    with pytest.raises(InputDataError, match=r"LF 'old' reads table .*vendor_verdict \(its table=\): table "
                                             r".*vendor_verdict does not exist; expected "):
        apply_lfs.run(spark, config_from_dict(make_cfg(tmp_path, source, [
            {"name": "old", "kind": "column", "column": "v", "table": str(tmp_path / "vendor_verdict"),
             "mapping": {"S": "spam"}}])), run_id="x")
    # Before Spark starts (what `lakelabel apply` and `run` check first): the joined table's columns.
    from types import SimpleNamespace

    for spec, named in (({"column": "w"}, r"column 'w' \(its column=\) not found in .*dup; its columns are: id, v"),
                        ({"column": "v", "id_column": "key"}, r"column 'key' \(its id_column=\) not found")):
        cfg = config_from_dict(make_cfg(tmp_path, source, [
            {"name": "old", "kind": "column", "table": str(dup), "mapping": {"S": "spam"}, **spec}]))
        with pytest.raises(InputDataError, match=r"LF 'old' reads table .*dup \(its table=\): " + named):
            apply_lfs.check_lfs(SimpleNamespace(), cfg)
    apply_lfs.check_lfs(SimpleNamespace(), config_from_dict(make_cfg(tmp_path, source, [
        {"name": "old", "kind": "column", "column": "v", "table": str(dup), "mapping": {"S": "spam"}}])))
    with pytest.raises(SourceReadError, match=r"LF 'old' reads table .*nowhere \(its table=\): table .*nowhere does not "
                                              r"exist; expected .*; fix its table="):
        apply_lfs.check_lfs(SimpleNamespace(), config_from_dict(make_cfg(tmp_path, source, [
            {"name": "old", "kind": "column", "column": "v", "table": str(tmp_path / "nowhere"), "mapping": {"S": "spam"}}])))
    with pytest.raises(LFConfigError, match=r"label 'maybe' is not in the label space"):
        apply_lfs.build_registry(config_from_dict(make_cfg(tmp_path, source, [
            {"name": "old", "kind": "column", "column": "old", "mapping": {"S": "maybe"}}])))
    assert not delta_io.table_exists(str(tmp_path / "lake" / "votes"))


def test_column_lf_keys_that_no_value_of_the_columns_type_can_match_are_refused(spark, tmp_path):
    """``{1.0: spam}`` on an integer column (a mapping read off pandas, where a column with nulls is float) voted on
    no row, silently: values are compared as Spark writes them as text, and Spark writes an integer 1 as "1"."""
    df = make_rows(10)
    df["flag"] = [i % 2 for i in range(10)]  # int64
    df["score"] = [float(i % 2) for i in range(10)]  # double: Spark writes 1.0
    df["ok"] = [i % 2 == 0 for i in range(10)]
    source = write_source(tmp_path, df)
    table = tmp_path / "verdicts"
    table.mkdir()
    df[["id", "flag"]].to_parquet(table / "part-0.parquet", index=False)
    for spec, message in (
        ({"column": "flag", "mapping": {1.0: "spam", 0: "ham"}},
         r"LF 'old': mapping key\(s\) \['1\.0'\] can never match column 'flag' of source .*src, a bigint column "
         r"\(values are compared as Spark writes them as text, such as 1\); write '1\.0' -> 1 in the mapping"),
        ({"column": "flag", "mapping": {"1.0": "spam"}, "table": str(table)},
         r"column 'flag' of table .*verdicts, a bigint column"),
        ({"column": "score", "mapping": {1: "spam", "0.0": "ham"}},
         r"mapping key\(s\) \['1'\] can never match column 'score' of source .*src, a double column \(values are "
         r"compared as Spark writes them as text, such as 1\.0\); write '1' -> 1\.0 in the mapping"),
        ({"column": "ok", "mapping": {"yes": "spam"}},
         r"mapping key\(s\) \['yes'\] can never match column 'ok' of .*, a boolean column \(values are compared as "
         r"Spark writes them as text, such as true or false\); map values of the column in the mapping"),
    ):
        cfg = config_from_dict(make_cfg(tmp_path, source, [{"name": "old", "kind": "column", **spec}]))
        with pytest.raises(LFConfigError, match=message):
            apply_lfs.run(spark, cfg, run_id="x")
        assert not delta_io.table_exists(cfg.table_path("votes"))
    # Keys as Spark writes the values vote.
    cfg = config_from_dict(make_cfg(tmp_path, source, [
        {"name": "old", "kind": "column", "column": "flag", "mapping": {1: "spam", "0": "ham"}},
        {"name": "old2", "kind": "column", "column": "score", "mapping": {1.0: "spam"}},
        {"name": "old3", "kind": "column", "column": "ok", "mapping": {True: "spam"}}]))
    apply_lfs.run(spark, cfg, run_id="x")
    assert {name: len(v) for name, v in votes_by_lf(spark, cfg).items()} == {"old": 10, "old2": 5, "old3": 5}


# ----------------------------------------------------------------------------- model LFs


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """A real MLflow sqlite store with a registered scikit-learn text classifier (two versions)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.compose import make_column_transformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    before = mlflow.get_tracking_uri() if os.environ.get("MLFLOW_TRACKING_URI") else None
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("clf", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment("clf")
    train = make_rows(40)
    versions = []
    for c in (10.0, 0.5):  # two registrations of the same model name
        model = make_pipeline(make_column_transformer((TfidfVectorizer(), "text")), LogisticRegression(C=c))
        model.fit(train[["text"]], train["gold"])  # classes_ = ['ham', 'spam']
        with warnings.catch_warnings(), mlflow.start_run():
            warnings.simplefilter("ignore")
            info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                            pyfunc_predict_fn="predict_proba", registered_model_name="spam_clf")
        versions.append(info.registered_model_version)
    MlflowClient(uri).set_registered_model_alias("spam_clf", "champion", str(versions[0]))
    yield uri
    mlflow.set_tracking_uri(before or "")
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_model_lf_votes_on_spark_and_versions_follow_the_model(spark, tmp_path, mlflow_store):
    uri = mlflow_store
    df = make_rows(40)
    source = write_source(tmp_path, df)
    declared = [{"name": "clf", "kind": "model", "model_uri": "models:/spam_clf@champion", "fields": ["text"],
                 "label_map": {0: "ham", 1: "spam"}, "threshold": 0.6}]
    cfg = config_from_dict(make_cfg(tmp_path, source, declared, mlflow={"enabled": False, "tracking_uri": uri}))
    applied = apply_lfs.run(spark, cfg, run_id="model")
    votes = votes_by_lf(spark, cfg)["clf"]
    gold = dict(zip(df.id, (df.gold == "spam").astype(int)))
    assert len(votes) >= 30 and all(gold[rid] == v for rid, v in votes.items())
    stats = applied.lfs[0]
    assert stats.kind == "model" and stats.origin.startswith("model models:/spam_clf@champion (version spam_clf/1, run ")

    # Same alias, same model version -> same LF version; a moved alias or another version -> a new one.
    def version(model_uri: str) -> str:
        return LFRegistry(["ham", "spam"]).register(
            model_lf("clf", model_uri, label_map={0: "ham", 1: "spam"}, threshold=0.6, fields=["text"],
                     tracking_uri=uri)).version

    v1 = version("models:/spam_clf@champion")
    assert v1 == applied.lfs[0].version == version("models:/spam_clf@champion")
    assert version("models:/spam_clf/2") != v1
    from mlflow import MlflowClient

    MlflowClient(uri).set_registered_model_alias("spam_clf", "champion", "2")
    try:
        assert version("models:/spam_clf@champion") != v1
        assert resolve_model("models:/spam_clf@champion", uri).model_version == "spam_clf/2"
    finally:
        MlflowClient(uri).set_registered_model_alias("spam_clf", "champion", "1")
    assert resolve_model("models:/spam_clf/latest", uri).model_version == "spam_clf/2"
    # The model is loaded once per process and reused by later batches.
    from lf_library import models as models_mod

    lf = model_lf("clf", "models:/spam_clf/1", label_map={0: "ham", 1: "spam"}, fields=["text"], tracking_uri=uri,
                  label_space=["ham", "spam"])
    lf.check_output(df[["text"]])
    loaded = models_mod._MODELS[lf.resolved.load_uri]
    lf.check_output(df[["text"]].iloc[:3])
    assert models_mod._MODELS[lf.resolved.load_uri] is loaded


def test_model_lf_bad_inputs_fail_before_spark_work(spark, tmp_path, mlflow_store, capsys):
    uri = mlflow_store
    source = write_source(tmp_path, make_rows(10))
    with pytest.raises(LFConfigError, match=r"model URI 'models:/nope/1' does not resolve in the MLflow store sqlite:"
                                            r".* \(registered models there: spam_clf\); register the model there"):
        model_lf("m", "models:/nope/1", label_map={1: "spam"}, tracking_uri=uri, label_space=["ham", "spam"]).version
    # A version or alias the model lacks: the error lists those it has.
    for missing in ("models:/spam_clf/9", "models:/spam_clf@chmpion"):
        with pytest.raises(LFConfigError, match=r"\(registered model 'spam_clf' has version\(s\) 1, 2; aliases "
                                                r"@champion -> [12]\); register the model there"):
            resolve_model(missing, uri)
    with pytest.raises(LFConfigError, match=r"model URI '.*absent': the local folder .*absent does not exist; "
                                            r"model_uri takes a folder an MLflow model was saved to"):
        resolve_model(str(tmp_path / "absent"), uri)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LFConfigError, match=r"the local folder .*empty holds no MLmodel file"):
        resolve_model(str(tmp_path / "empty"), uri)
    # Output that does not fit the label map: the model's classes are 0 and 1 (probability columns).
    bad_map = [{"name": "clf", "kind": "model", "model_uri": "models:/spam_clf/1", "fields": ["text"],
                "label_map": {"spam": "spam"}}]
    cfg = config_from_dict(make_cfg(tmp_path, source, bad_map, mlflow={"enabled": False, "tracking_uri": uri}))
    with pytest.raises(LFConfigError, match=r"model LF 'clf': model models:/spam_clf/1 outputs classes \['0', '1'\], "
                                            r"but label_map names \['spam'\]"):
        apply_lfs.run(spark, cfg, run_id="x")
    assert not delta_io.table_exists(cfg.table_path("votes"))

    # Through the CLI: one line naming the URI and the fix, exit 2.
    conf = tmp_path / "conf.yaml"
    data = make_cfg(tmp_path, source, [{"name": "m", "kind": "model", "model_uri": "models:/nope@champion",
                                        "label_map": {1: "spam"}, "fields": ["text"]}],
                    mlflow={"enabled": False, "tracking_uri": uri})
    import yaml

    conf.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    assert cli.main(["apply", "--config", str(conf)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model URI 'models:/nope@champion' does not resolve" in err[0]
    assert "register the model there" in err[0]


def test_model_uris_resolve_in_the_registry_mlflow_would_use(tmp_path, mlflow_store, monkeypatch):
    """A drill of the Databricks job: `--env databricks` resolved `models:/...@champion` in the workspace registry
    (the registry was always the tracking store), which has no aliases ("get_model_version_by_alias is unsupported
    for models in the Workspace Model Registry"), and MLFLOW_REGISTRY_URI was passed over. Now the registry is
    MLflow's own choice: MLFLOW_REGISTRY_URI, Unity Catalog for a Databricks store, else the store itself."""
    from lf_library import models
    from lf_library.models import _client, registry_uri

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    assert resolve_model("models:/spam_clf@champion", mlflow_store).model_version == "spam_clf/1"
    assert registry_uri(mlflow_store) == mlflow_store and registry_uri("databricks") is None
    assert _client("databricks")._registry_uri == "databricks-uc"  # MLflow's default for a Databricks store
    with pytest.raises(LFConfigError, match=r"cannot be resolved in the MLflow store databricks \(model registry "
                                            r"databricks-uc, .*\): this machine has no credentials for the workspace "
                                            r"\(.*\); set DATABRICKS_HOST and DATABRICKS_TOKEN, or name a profile") as caught:
        resolve_model("models:/main.lakelabel.spam_clf@champion", "databricks")  # no workspace here: no credentials
    assert "Workspace Model Registry" not in str(caught.value) and "register the model there" not in str(caught.value)
    other = f"sqlite:///{tmp_path / 'registry.db'}"  # a registry without the model: the alias is looked up there
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", other)
    assert registry_uri(mlflow_store) == other == _client(mlflow_store)._registry_uri
    with pytest.raises(LFConfigError, match=r"model URI 'models:/spam_clf@champion' does not resolve in the MLflow "
                                            r"store sqlite:.* \(model registry sqlite:.*registry\.db\): .*spam_clf"):
        resolve_model("models:/spam_clf@champion", mlflow_store)
    # A registry beside the tracking store (Unity Catalog's shape) holds a version of a model logged in the store.
    from mlflow import MlflowClient

    logged = MlflowClient(mlflow_store, registry_uri=mlflow_store).get_model_version("spam_clf", "1")
    registry = MlflowClient(tracking_uri=mlflow_store, registry_uri=other)
    registry.create_registered_model("team_clf")
    registry.create_model_version("team_clf", source=logged.source, run_id=logged.run_id)
    registry.set_registered_model_alias("team_clf", "champion", "1")
    lf = model_lf("team", "models:/team_clf@champion", label_map={"spam": "spam"}, fields=["text"],
                  tracking_uri=mlflow_store, label_space=["ham", "spam"])
    resolved = lf.resolve()
    assert (resolved.model_version, resolved.run_id) == ("team_clf/1", logged.run_id)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    twin = model_lf("twin", "models:/spam_clf/1", label_map={"spam": "spam"}, fields=["text"],
                    tracking_uri=mlflow_store, label_space=["ham", "spam"])
    rows = make_rows(12)[["text"]]
    assert (models._load(resolved).predict(rows) == models._load(twin.resolve()).predict(rows)).all().all()


def test_a_missing_model_leaves_no_store_and_gold_import_does_not_need_it(spark, tmp_path, capsys):
    """A run whose model LF names no registered model fails (exit 2) and leaves no MLflow store it made,
    nor the lakehouse folder; ``gold import`` takes the label space from the LF modules without building
    the model LF, so it works before the model exists."""
    import yaml

    source = write_source(tmp_path, make_rows(10))
    data = make_cfg(tmp_path, source, [{"name": "m", "kind": "model", "model_uri": "models:/nope@champion",
                                        "label_map": {1: "pos"}, "fields": ["text"]}])
    data["lfs"] = {"modules": ["tests.jobs.sample_lfs"], "declared": data["lfs"]["declared"]}
    data["source"] = {**data["source"], "gold_column": None}
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    assert cli.main(["run", "--config", str(conf), "-q"]) == 2
    assert "model URI 'models:/nope@champion' does not resolve" in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()  # neither mlflow.db nor the lakehouse folder stayed

    gold = tmp_path / "gold.csv"
    pd.DataFrame({"row_id": ["r000", "r001"], "label": ["pos", "neg"]}).to_csv(gold, index=False)
    assert cli.main(["gold", "import", "--config", str(conf), "--file", str(gold), "-q"]) == 0, capsys.readouterr().err
    assert not (tmp_path / "lake" / "mlflow.db").exists()


def test_a_model_lf_read_in_plain_python_with_no_store_set_creates_no_database(tmp_path):
    """``model_lf(...).version`` with no store set (a notebook, no MLFLOW_TRACKING_URI) asked MLflow's default store,
    which created ``./mlflow.db`` in the working directory; now it says the store is empty and creates nothing."""
    import subprocess
    import sys

    code = ("from lf_library import model_lf\n"
            "lf = model_lf('m', 'models:/spam_clf/1', label_map={'spam': 'spam'}, label_space=['ham', 'spam'])\n"
            "try:\n    lf.version\nexcept Exception as err:\n    print(type(err).__name__, err)\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip()
    assert out.startswith("LFConfigError model LF 'm': model URI 'models:/spam_clf/1' does not resolve in MLflow's "
                          f"default store sqlite:///{tmp_path / 'mlflow.db'} (none was set: pass model_lf(..., "
                          "tracking_uri=...) or set MLFLOW_TRACKING_URI to use another): the store's database "
                          f"{tmp_path / 'mlflow.db'} does not exist yet"), out
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_model_lf_threshold_on_a_model_that_predicts_classes_is_refused(spark, tmp_path, mlflow_store, capsys):
    """A threshold cannot apply to one predicted class per row: refused (exit 2), not ignored."""
    import mlflow.sklearn
    from sklearn.compose import make_column_transformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    df = make_rows(20)
    model = make_pipeline(make_column_transformer((TfidfVectorizer(), "text")), LogisticRegression())
    model.fit(df[["text"]], df["gold"])
    folder = tmp_path / "labels_model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(model, str(folder), serialization_format="cloudpickle")  # predict -> classes
    lf = model_lf("clf", str(folder), label_map={"ham": "ham", "spam": "spam"}, threshold=0.8, fields=["text"],
                  tracking_uri=mlflow_store, label_space=["ham", "spam"])
    with pytest.raises(LFConfigError, match=r"model LF 'clf': threshold 0.8 is set, but model .*labels_model predicts "
                                            r"classes, not probabilities.*pyfunc_predict_fn=\"predict_proba\"\)\), or "
                                            r"drop threshold$"):
        lf.check_output(df[["text"]])
    # Without a threshold it votes every predicted class; with a probability model the threshold applies.
    plain = model_lf("clf", str(folder), label_map={"ham": "ham", "spam": "spam"}, fields=["text"],
                     tracking_uri=mlflow_store, label_space=["ham", "spam"])
    assert (plain.predict_frame(df[["text"]]) >= 0).all()
    model_lf("clf", "models:/spam_clf/1", label_map={0: "ham", 1: "spam"}, threshold=0.8, fields=["text"],
             tracking_uri=mlflow_store, label_space=["ham", "spam"]).check_output(df[["text"]])

    import yaml

    conf = tmp_path / "conf.yaml"
    declared = [{"name": "clf", "kind": "model", "model_uri": str(folder), "fields": ["text"],
                 "label_map": {"ham": "ham", "spam": "spam"}, "threshold": 0.8}]
    conf.write_text(yaml.safe_dump(make_cfg(tmp_path, write_source(tmp_path, df), declared,
                                            mlflow={"enabled": False, "tracking_uri": mlflow_store})))
    capsys.readouterr()
    assert cli.main(["apply", "--config", str(conf), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model LF 'clf': threshold 0.8 is set" in err[0], err


def test_a_model_whose_package_is_missing_says_so_before_the_apply_and_the_evaluation(spark, tmp_path):
    """A drill: with scikit-learn gone, the model LF said "check that the model takes a DataFrame with these columns"
    (apply), and with the votes up to date nothing checked the model before the held-out evaluation scored it, which
    then failed after the pipeline's work with advice for shipping modules to a cluster's executors."""
    import mlflow.pyfunc

    folder = tmp_path / "needs_pkg"
    # MLflow's advice to type-hint predict comes when the class is made, under a warnings filter of MLflow's own
    # (it showed in the suite's summary through simplefilter("ignore")): recorded here, and dropped.
    with warnings.catch_warnings(record=True):

        class NeedsAMissingPackage(mlflow.pyfunc.PythonModel):  # as a venv rebuilt without scikit-learn meets it
            def predict(self, context, model_input, params=None):
                import no_such_model_package_s35  # noqa: F401

                return model_input

        mlflow.pyfunc.save_model(str(folder), python_model=NeedsAMissingPackage())
    declared = [{"name": "clf", "kind": "model", "model_uri": str(folder), "fields": ["text"],
                 "label_map": {"ham": "ham", "spam": "spam"}}]
    source = write_source(tmp_path, make_rows(10))
    held_out = write_source(tmp_path, make_rows(8), name="held_out")
    cfg = config_from_dict(make_cfg(tmp_path, source, declared, evaluation={
        "path": held_out, "format": "parquet", "id_column": "id", "gold_column": "gold"}))
    registry = apply_lfs.build_registry(cfg)
    wanted = (r"^model LF 'clf': model .*needs_pkg needs the module 'no_such_model_package_s35', which this Python "
              r"cannot import; install the model's requirements \(requirements.txt in its MLflow artifacts; a "
              r"scikit-learn model: pip install scikit-learn\) where the job runs, on every worker of a cluster$")
    with pytest.raises(InputDataError, match=wanted):
        pipeline.check_holdout(spark, cfg, registry)  # what the run checks before apply, votes up to date or not
    with pytest.raises(InputDataError, match=wanted):
        apply_lfs.run(spark, cfg, run_id="x")
    assert not delta_io.table_exists(cfg.table_path("votes"))
