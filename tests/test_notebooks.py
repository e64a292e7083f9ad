"""Every notebook in notebooks/ runs end to end locally with jobs.notebook.local's dbutils stand-in.

The notebooks run on the demo data (2,000 generated tickets, MLflow on with a store under a tmp
lakehouse) and their outputs are checked against numbers computed independently with pandas from
the source files and the Delta tables. ``CHECKS`` maps each notebook to the test that executes
it; a notebook without one fails ``test_notebook``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from jobs.notebook.local import HEADER as NOTEBOOK_HEADER, WIDGET_DECLARATION

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))
ROWS = 2000
RUN_ID = "nb-1"
HEADER = NOTEBOOK_HEADER + "\n"
SEPARATOR = "\n\n# COMMAND ----------\n\n"
WIDGET_READ = re.compile(r"""dbutils\.widgets\.get\(\s*["']([^"']+)["']""")

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def run_notebook(path: Path, widgets: dict[str, str]) -> dict[str, Any]:
    """Execute a source notebook as Databricks does (one ``__main__`` namespace), with lakelabel's stand-in."""
    from jobs.notebook.local import run_notebook as run

    return run(path, **widgets)


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module", autouse=True)
def pages(tmp_path_factory):
    """Without ``displayHTML`` (a plain Python run) ``report.show`` writes each page to a temporary file for the user
    to open and keeps it: here into the module's own folder, not the machine's /tmp, where every suite run left six."""
    import tempfile

    folder, before = tmp_path_factory.mktemp("pages"), tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = before


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> dict[str, Any]:
    """The demo source (2,000 rows) and a config YAML for it, MLflow on under the lakehouse."""
    from jobs import demo

    root = (tmp_path_factory.mktemp("notebooks") / "lake").resolve()
    cfg = demo.demo_config(str(root), ROWS, 0)
    demo.prepare_source(cfg, ROWS, 0)
    config = root.parent / "demo.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "lakehouse": str(root),
                "source": {"path": cfg.source.path, "format": "parquet", "id_column": "ticket_id",
                           "gold_column": "true_label"},
                "lfs": {"modules": ["lf_library.lfs.demo"]},
                "mlflow": {"enabled": True, "experiment": "lakelabel-notebooks"},
            }
        )
    )
    source = pd.read_parquet(cfg.source.path)
    # The MLflow store goes under the tmp lakehouse: no MLFLOW_TRACKING_URI from earlier tests
    # (mlflow.set_tracking_uri exports it), and a tmp working directory, since experiments then
    # get mlflow's default artifact root ./mlruns (see the report on jobs/runtime/tracking.py).
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root.parent)
        try:
            yield {"root": root, "config": str(config), "source": source}
        finally:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            if before is not None:
                os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="module")
def pipeline_run(lake) -> dict[str, Any]:
    """notebooks/run_pipeline.py, executed once; the other notebooks read what it wrote."""
    return run_notebook(REPO / "notebooks" / "run_pipeline.py", {"config": lake["config"], "run_id": RUN_ID})


def _tables(lake) -> tuple[Any, Any]:
    from deltalake import DeltaTable

    return DeltaTable(str(lake["root"] / "votes")), DeltaTable(str(lake["root"] / "labels"))


# --------------------------------------------------------------------------------------------
# one check per notebook


def check_run_pipeline(spark, lake, pipeline_run) -> None:
    summary = pipeline_run["summary"]
    votes, labels = _tables(lake)
    assert summary["run_id"] == RUN_ID and summary["status"] == "succeeded"
    assert summary["tables"]["labels"]["rows"] == ROWS == labels.to_pyarrow_table().num_rows
    assert summary["tables"]["labels"]["version"] == labels.version()
    assert summary["tables"]["votes"]["version"] == votes.version()
    assert summary["mlflow"]["run_id"]
    assert pipeline_run["metrics"] == {k: summary["metrics"][k] for k in ("rows", "coverage", "conflict_rate",
                                                                         "accuracy")}
    assert not pipeline_run["result"].reused and "nothing ran" not in pipeline_run["result"].line


def check_develop_lf(spark, lake, pipeline_run) -> None:
    from jobs import notebook

    ns = run_notebook(REPO / "notebooks" / "develop_lf.py",
                      {"config": lake["config"], "sample_rows": "1000", "dev_labels": "auto"})
    trial, draft, cfg = ns["trial"], ns["draft"], ns["cfg"]
    sample_ids = set(notebook.draw_sample(spark, cfg, 1000).toPandas()["ticket_id"])
    source = lake["source"]
    assert len(sample_ids) == 1000 and sample_ids <= set(source["ticket_id"])
    sample = source[source["ticket_id"].isin(sample_ids)]
    # The draft, recomputed with pandas: "my account" or "user account" -> account (id 3).
    voted = sample[sample["text"].str.lower().str.contains("my account|user account")]
    assert trial.sample_rows == 1000 and trial.errors == 0
    assert trial.votes == len(voted) > 0
    assert trial.coverage == len(voted) / 1000
    assert trial.class_votes == {"billing": 0, "technical": 0, "shipping": 0, "account": len(voted)}
    assert trial.version == draft.version and trial.replaces is None
    assert (trial.dev_rows, trial.dev_voted) == (1000, len(voted))
    assert trial.dev_correct == int((voted["true_label"] == "account").sum())
    assert trial.accuracy == trial.dev_correct / len(voted)
    # Overlaps and conflicts, from the library's votes the pipeline stored for the same rows.
    votes_table, _ = _tables(lake)
    lib = votes_table.to_pandas()
    lib = lib[lib["row_id"].isin(sample_ids) & (lib["vote"] >= 0)]
    both = lib[lib["row_id"].isin(set(voted["ticket_id"]))]
    assert trial.overlaps == both["row_id"].nunique()
    assert trial.conflicts == both.loc[both["vote"] != 3, "row_id"].nunique() > 0
    per_lf = trial.per_lf.set_index("lf")
    assert list(per_lf.index) == sorted(lib["lf_name"].unique()) and len(per_lf) == 12
    assert per_lf["votes"].to_dict() == lib.groupby("lf_name").size().to_dict()
    assert per_lf["overlaps"].to_dict() == both.groupby("lf_name").size().reindex(per_lf.index, fill_value=0).to_dict()
    conflicts = both[both["vote"] != 3].groupby("lf_name").size().reindex(per_lf.index, fill_value=0)
    assert per_lf["conflicts"].to_dict() == conflicts.to_dict()
    conflicted = set(both.loc[both["vote"] != 3, "row_id"])
    assert len(trial.conflict_examples) == min(5, len(conflicted))
    assert set(trial.conflict_examples["row_id"]) <= conflicted
    assert all(trial.conflict_examples["vote"] == "account")
    assert set(trial.vote_examples["row_id"]) <= set(voted["ticket_id"]) and len(trial.vote_examples) == 5
    assert trial.error_samples.empty
    # The draft's effect on the analysis, recomputed from the library's stored votes on the same sample.
    effect = ns["effect"]
    classes = lib.groupby("row_id")["vote"].agg(lambda v: set(v)).to_dict()
    mine = set(voted["ticket_id"])
    assert effect["sample_rows"] == 1000 and effect["covered_before"] == len(classes)
    assert effect["coverage_gained"] == len(mine - set(classes)) > 0
    before = sum(len(c) >= 2 for c in classes.values())
    after = sum(len(classes.get(r, set()) | ({3} if r in mine else set())) >= 2 for r in sample_ids)
    assert (effect["conflicted_before"], effect["conflicted_after"]) == (before, after)
    assert effect["conflicts_added"] == after - before > 0
    assert (effect["dev_voted"], effect["dev_correct"]) == (trial.dev_voted, trial.dev_correct)
    drafted = {lf["name"]: lf for lf in effect["lfs"]}["draft_my_account"]
    assert drafted["coverage"] == trial.coverage and drafted["gold_accuracy"] == trial.accuracy
    assert len(effect["lfs"]) == 13 and effect["pairs"]["lfs"][-1] == "vec_platform"


def check_inspect_labels(spark, lake, pipeline_run) -> None:
    from mlflow import MlflowClient

    ns = run_notebook(REPO / "notebooks" / "inspect_labels.py", {"config": lake["config"], "rows": "20"})
    summary = pipeline_run["summary"]
    votes_table, labels_table = _tables(lake)
    labels = labels_table.to_pandas()
    votes = votes_table.to_pandas()
    source = lake["source"]
    assert len(labels) == len(source) == ROWS and set(labels["row_id"]) == set(source["ticket_id"])

    lineage = ns["lineage"]
    assert lineage.labels_version == labels_table.version()
    assert lineage.votes_version == lineage.votes_latest_version == votes_table.version()
    assert set(labels["votes_version"]) == {lineage.votes_version}
    assert lineage.run_id == RUN_ID and set(labels["run_id"]) == {RUN_ID}
    assert lineage.source_version is None and lineage.source_fingerprint.startswith("files:")
    assert lineage.source_table == summary["source"]["path"]
    assert set(labels["label_model_version"]) == {lineage.label_model_version}
    assert lineage.label_model == summary["label_model"]["mlflow_uri"]
    stored = votes.groupby(["lf_name", "lf_version"]).size()
    assert [(lf["name"], lf["version"]) for lf in lineage.lfs] == list(stored.index)
    counted = votes[votes["vote"] >= 0].groupby("lf_name").size().to_dict()
    assert {lf["name"]: lf["votes"] for lf in lineage.lfs} == counted
    assert lineage.mlflow_run_id == summary["mlflow"]["run_id"] and lineage.notes == []
    assert lineage.mlflow_tracking_uri == f"sqlite:///{lake['root'] / 'mlflow.db'}"
    run = MlflowClient(tracking_uri=lineage.mlflow_tracking_uri).get_run(lineage.mlflow_run_id)
    assert run.data.tags["lakelabel.run_id"] == RUN_ID

    dist = ns["distribution"].set_index("label_name")["rows"].to_dict()
    assert dist == labels["label_name"].fillna("(abstain)").value_counts().to_dict()
    assert sum(dist.values()) == ROWS
    hist = ns["histogram"]
    assert hist["rows"].tolist() == np.histogram(labels["confidence"], bins=10, range=(0, 1))[0].tolist()

    shown = ns["labeled"]
    assert len(shown) == 20 and {"label_name", "confidence", "voting_lfs", "run_id", "text"} <= set(shown.columns)
    merged = shown.merge(source, left_on="row_id", right_on="ticket_id", suffixes=("", "_src"))
    assert len(merged) == 20 and (merged["text"] == merged["text_src"]).all()
    expected = labels.set_index("row_id").loc[shown["row_id"], "label_name"].fillna("-").tolist()
    assert shown["label_name"].fillna("-").tolist() == expected

    explained = ns["explanation"]  # the first row shown, explained from the run's votes and model
    row = labels.set_index("row_id").loc[shown["row_id"].iloc[0]]
    assert explained["row_id"] == shown["row_id"].iloc[0] and explained["label"] == row["label_name"]
    assert list(explained["probabilities"].values()) == list(row["probabilities"])
    assert explained["lineage"]["max_difference"] < 1e-9 and explained["lineage"]["run_id"] == RUN_ID

    analysis = ns["analysis"]  # the report's plots, shown inline (a file outside a notebook)
    doc = analysis.doc
    assert doc["run_id"] == RUN_ID and doc["totals"]["rows"] == ROWS
    assert [f["name"] for f in analysis.figures] == ["lf_coverage_accuracy", "conflict_heatmap", "confusion_matrices",
                                                     "class_distributions", "confidence_histogram"]
    truth = source.set_index("ticket_id").loc[labels["row_id"], "true_label"].to_numpy()
    assert doc["totals"]["gold_rows"] == ROWS
    hard = labels["label_name"].to_numpy()
    right = (hard == truth)
    assert sum(h["correct"] for h in doc["confidence_histogram"]) == int(right.sum())
    assert analysis.html.count('src="data:image/png;base64,') == 5


CHECKS: dict[str, Callable[..., None]] = {
    "run_pipeline.py": check_run_pipeline,
    "develop_lf.py": check_develop_lf,
    "inspect_labels.py": check_inspect_labels,
}


# --------------------------------------------------------------------------------------------
# tests


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 3, f"expected at least 3 notebooks in {REPO / 'notebooks'}, found {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_source_format(path):
    text = path.read_text()
    assert text.startswith(HEADER), f"{path.name} must start with {HEADER!r}"
    cells = text[len(HEADER):].split(SEPARATOR)
    assert len(cells) >= 3, f"{path.name}: expected cells separated by '# COMMAND ----------'"
    code = [c for c in cells if not c.startswith("# MAGIC")]
    for cell in cells:
        if cell.startswith("# MAGIC"):
            assert all(line.startswith("# MAGIC") for line in cell.strip().splitlines()), cell
    declared = WIDGET_DECLARATION.findall(code[0])
    assert "config" in declared, f"{path.name}: the first code cell must declare the widgets, config included"
    read = set(WIDGET_READ.findall(text))
    assert read <= set(declared), f"{path.name} reads undeclared widget(s) {sorted(read - set(declared))}"
    assert "from jobs" in text and "sys.path" not in text
    readme_row = next((line for line in (REPO / "README.md").read_text().splitlines()
                       if line.startswith(f"| `{path.name}` |")), None)
    assert readme_row is not None, f"README's notebook table has no row for {path.name}"
    missing = [w for w in declared if f"`{w}`" not in readme_row]
    assert not missing, f"README's notebook table does not list {path.name}'s widget(s) {missing}"
    for cell in code:  # thin: a few lines per cell, the work lives in jobs/
        lines = [line for line in cell.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert len(lines) <= 20, f"{path.name}: a cell of {len(lines)} lines; move the logic into jobs/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook(path, spark, lake, pipeline_run, pages):
    check = CHECKS.get(path.name)
    if check is None:
        pytest.fail(f"no test executes notebooks/{path.name}: add a check for it to CHECKS in {Path(__file__).name}")
    shown = set(pages.glob("lakelabel-*.html"))
    check(spark, lake, pipeline_run)
    if "report.show(" in path.read_text():  # its page, written where the user is told to open it
        assert len(set(pages.glob("lakelabel-*.html")) - shown) == 1, sorted(pages.iterdir())


# --------------------------------------------------------------------------------------------
# jobs.notebook beyond what the notebooks exercise


def test_run_pipeline_says_when_a_rerun_did_nothing(lake, pipeline_run, capsys):
    """run_pipeline printed the earlier run's metrics and tables for a rerun of its run id that reused
    everything, without saying so; it prints the line `lakelabel run` prints, which does."""
    from jobs import pipeline

    capsys.readouterr()
    ns = run_notebook(REPO / "notebooks" / "run_pipeline.py", {"config": lake["config"], "run_id": RUN_ID})
    out = capsys.readouterr().out.splitlines()
    assert ns["result"].reused and ns["summary"]["tables"] == pipeline_run["summary"]["tables"]
    assert out[0] == pipeline.done_line(ns["summary"]), out
    assert out[0].endswith("(already done with these inputs: nothing ran)"), out


def test_try_lf_rejects_another_label_space(lake):
    from jobs import notebook
    from lf_library import keyword_lf
    from lf_library.errors import LFConfigError

    cfg = notebook.load_notebook_config(lake["config"])
    draft = keyword_lf("kw_subscribe", ["subscribe"], "spam", label_space=["ham", "spam"])
    with pytest.raises(
        LFConfigError,
        match=r"draft LF 'kw_subscribe' has label space \['ham', 'spam'\], but the library \(lf_library\.lfs\.demo\) "
        r"uses \['billing', 'technical', 'shipping', 'account'\]",
    ):
        notebook.try_lf(None, cfg, draft)


def test_try_lf_names_a_missing_dev_label_source(spark, lake):
    from jobs import notebook
    from lf_library import keyword_lf
    from lf_library.errors import ConfigError, InputDataError

    cfg = notebook.load_notebook_config(lake["config"])
    draft = keyword_lf("kw_refund", ["refund"], "billing")
    with pytest.raises(ConfigError, match=r"dev_labels='evaluation' needs an `evaluation:` source with a gold_column"):
        notebook.try_lf(spark, cfg, draft, dev_labels="evaluation")
    with pytest.raises(InputDataError, match=r"dev label column 'verdict' not found in .*tickets; its columns are: "
                                             r"ticket_id, text, .*true_label"):
        notebook.try_lf(spark, cfg, draft, dev_labels="verdict")
    # A field the source lacks: one line naming the draft and the source's columns, before any Spark job.
    typo = keyword_lf("kw_refund", ["refund"], "billing", field="body")
    with pytest.raises(InputDataError, match=r"draft LF 'kw_refund' reads column\(s\) \['body'\], which .*tickets lacks; "
                                             r"its columns are: ticket_id, text, "):
        notebook.try_lf(spark, cfg, typo)


def test_try_lf_says_when_the_dev_label_column_holds_no_class(spark, lake, caplog):
    """A notebook drill: dev_labels="channel" (email, chat, ...) gave "- on 0 voted of 0 labeled rows" and no word why."""
    from jobs import notebook
    from lf_library import keyword_lf

    cfg = notebook.load_notebook_config(lake["config"])
    with caplog.at_level("WARNING", logger="jobs.notebook.develop"):
        trial = notebook.try_lf(spark, cfg, keyword_lf("kw_refund", ["refund"], "billing"), sample_rows=200,
                                dev_labels="channel")
    assert trial.dev_rows == 0 and trial.accuracy is None
    assert re.search(r"try_lf: column 'channel' \(dev_labels\) of source .* has 200 value\(s\) that are no class of "
                     r"the label space \(billing, technical, shipping, account\) nor a class id 0..3: '\w+' \(\d+\)"
                     r".*no sample row has a dev label", caplog.text)


def test_try_lf_counts_errors_and_scores_on_the_evaluation_source(spark, lake):
    """A draft that raises, replaces a library LF, and is scored on a held-out ``evaluation:`` source."""
    from jobs import notebook
    from jobs.apply_lfs import build_registry
    from jobs.demo.data import write_demo_source
    from lf_library import ABSTAIN, labeling_function

    held_out = lake["root"].parent / "held_out"
    write_demo_source(str(held_out), 400, 7)
    cfg = notebook.load_notebook_config(
        lake["config"], overrides=f"evaluation.path={held_out};evaluation.id_column=ticket_id;"
        "evaluation.gold_column=true_label;evaluation.format=parquet",
    )

    @labeling_function(name="kw_cancel", fields=["text"])
    def draft(x):
        text = x.text.lower()
        if "password" in text:
            raise ZeroDivisionError("no password tickets")
        return 0 if "cancel" in text else ABSTAIN

    trial = notebook.try_lf(spark, cfg, draft, sample_rows=ROWS + 1, dev_labels="evaluation")
    text = lake["source"]["text"].str.lower()
    raises = text.str.contains("password")
    assert trial.sample_rows == ROWS  # asking for more rows than the source has takes them all
    assert trial.errors == int(raises.sum()) > 0
    assert trial.votes == int((~raises & text.str.contains("cancel")).sum()) > 0
    assert set(trial.error_samples["kind"]) == {"exception"}
    assert all(trial.error_samples["error"] == "ZeroDivisionError: no password tickets")
    assert trial.replaces == build_registry(cfg)["kw_cancel"].version != trial.version
    assert "kw_cancel" not in set(trial.per_lf["lf"]) and len(trial.per_lf) == 11
    ev = pd.read_parquet(held_out)
    ev_text = ev["text"].str.lower()
    ev_voted = ev[~ev_text.str.contains("password") & ev_text.str.contains("cancel")]
    assert (trial.dev_rows, trial.dev_voted) == (400, len(ev_voted))
    assert trial.dev_correct == int((ev_voted["true_label"] == "billing").sum())
    assert trial.dev_labels.startswith("evaluation source")



def test_one_draft_tried_against_two_libraries_keeps_no_label_space(spark, lake, tmp_path):
    """A notebook tried the same draft with the demo's config, then with another whose label space differs: the first
    try_lf gave the draft the demo's label space for good, and the second refused it for a "label_space=" it was
    never given (a drill, session 39)."""
    from jobs import notebook
    from lf_library import ABSTAIN, labeling_function
    from lf_library.errors import LFConfigError

    @labeling_function(fields=["text"])
    def py_long(x):
        return 1 if "please" in x.text.lower() else ABSTAIN

    other = tmp_path / "urgency.yaml"
    other.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": str(lake["root"] / "source" / "tickets"), "format": "parquet", "id_column": "ticket_id"},
        "lfs": {"label_space": ["routine", "urgent"],
                "declared": [{"name": "kw_urgent", "kind": "keyword", "label": "urgent", "keywords": ["asap"]}]},
        "mlflow": {"enabled": False},
    }))  # fmt: skip
    demo = notebook.try_lf(spark, notebook.load_notebook_config(lake["config"]), py_long, sample_rows=200,
                           dev_labels=None)
    urgency = notebook.try_lf(spark, notebook.load_notebook_config(str(other)), py_long, sample_rows=200)
    assert demo.label_space[1] == "technical" and urgency.label_space == ("routine", "urgent")
    assert demo.votes == urgency.votes > 0 and demo.version != urgency.version  # the label space is in the version
    assert list(urgency.class_votes.values()) == [0, urgency.votes]
    assert py_long.label_space == ("routine", "urgent") and py_long.version == urgency.version  # the last library's
    py_long.label_space = ("billing", "technical", "shipping", "account")  # the author's own: no longer replaced
    with pytest.raises(LFConfigError, match=r"^draft LF 'py_long' has label space \['billing', .*, but the library "
                                            r"\(declared LFs of the config\) uses \['routine', 'urgent'\]; drop"):
        notebook.try_lf(spark, notebook.load_notebook_config(str(other)), py_long, sample_rows=200)


def test_labels_with_lineage_names_a_bad_limit(lake):
    """limit=-1 gave Spark's AnalysisException and limit="5" (a widget's text) a Py4JError naming a Java method."""
    from jobs import notebook

    cfg = notebook.load_notebook_config(lake["config"])
    for bad in (-1, "5", 2.5, True):
        with pytest.raises(ValueError, match=rf"^limit must be an int >= 0 or None \(all rows\), got "
                                             rf"{re.escape(repr(bad))}$"):
            notebook.labels_with_lineage(None, cfg, limit=bad)


def test_a_draft_sql_lf_that_does_not_compile_is_one_error_without_pysparks_json_records(spark, lake):
    """pyspark logs each analysis error as a JSON record with the JVM stack trace through its own handler; the command
    line quiets those loggers, a notebook does not: a misspelt column in a draft SQL LF printed two records of 15 KB
    each before try_lf's one line (a drill, session 39)."""
    import logging

    from pyspark.logger import PySparkLogger

    from jobs import notebook
    from lf_library import sql_lf
    from lf_library.errors import ConfigError

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger, keep = PySparkLogger.getLogger("SQLQueryContextLogger"), Keep()
    before = logger.level
    logger.setLevel(logging.WARNING)  # pyspark's own level, as in a notebook (the CLI tests may have changed it)
    logger.addHandler(keep)
    try:
        with pytest.raises(ConfigError, match=r"^SQL LF 'sql_typo' does not compile against the source: "
                                              r"\[UNRESOLVED_COLUMN"):
            notebook.try_lf(spark, notebook.load_notebook_config(lake["config"]),
                            sql_lf("sql_typo", "channl = 'phone'", "technical"), sample_rows=50)
        assert records == [] and logger.level == logging.WARNING  # quiet while planned, pyspark's level put back
    finally:
        logger.removeHandler(keep)
        logger.setLevel(before)

def test_a_config_found_under_the_repository_root_reads_its_paths_from_there(tmp_path, monkeypatch):
    """A notebook runs in notebooks/ on Databricks: conf/demo.yaml resolves against the repository
    root, and so do the paths inside it (the drill's `inspect_labels` looked for notebooks/lakehouse/)."""
    from jobs import notebook
    from jobs.notebook.develop import _REPO
    from lf_library.errors import ConfigError

    monkeypatch.chdir(tmp_path)  # restored after the test
    cfg = notebook.load_notebook_config("conf/demo.yaml")
    assert Path.cwd() == _REPO and cfg.lakehouse_path == _REPO / "lakehouse" / "demo"
    with pytest.raises(ConfigError, match=r"^overrides item 'lakehouse' must look like section.key=value$"):
        notebook.load_notebook_config("conf/demo.yaml", overrides="lakehouse")
    # The next relative path is read from the root now: the error shows where it looked, in the widgets' words (a
    # drill: "cannot read config file ../own/tickets.yaml ...; pass an existing YAML file with --config").
    with pytest.raises(ConfigError, match=rf"^cannot read config file \.\./own/tickets\.yaml \({_REPO.parent}/own/"
                                          rf"tickets\.yaml\): No such file or directory; pass an existing YAML file as "
                                          rf"config$"):
        notebook.load_notebook_config("../own/tickets.yaml")
    with pytest.raises(ConfigError, match=r"known environments: .*\. Fix env, or write env/nowhere\.yaml beside"):
        notebook.load_notebook_config("conf/demo.yaml", env="nowhere")


def test_run_notebook_refuses_an_unknown_widget_before_any_cell_runs(tmp_path):
    from jobs.notebook.local import run_notebook as run

    with pytest.raises(ValueError, match=r"develop_lf.py has no widget\(s\) rows; its widgets are: config, env, "):
        run(REPO / "notebooks" / "develop_lf.py", rows="5")
    plain = tmp_path / "plain.py"
    plain.write_text("raise SystemExit('ran')\n")
    with pytest.raises(ValueError, match="is not a Databricks source notebook"):
        run(plain)
    with pytest.raises(FileNotFoundError, match="notebook .*missing.py does not exist"):
        run(tmp_path / "missing.py")


def test_run_notebook_finds_a_notebook_of_the_repository_from_another_folder(tmp_path, monkeypatch):
    """A drill ran ``run_notebook("notebooks/inspect_labels.py")`` from inside ``notebooks/``: refused, with a
    suggestion that failed there too. The repository's path works from any folder, as the config's does."""
    from jobs.notebook.local import run_notebook as run

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"inspect_labels.py has no widget\(s\) nope"):  # found: its widgets checked
        run("notebooks/inspect_labels.py", nope="1")
    with pytest.raises(FileNotFoundError, match=rf"notebook notebooks/missing.py does not exist; pass a file of "
                                                 rf"notebooks/, such as {re.escape(str(REPO))}/notebooks/develop_lf.py"):
        run("notebooks/missing.py")


def test_a_count_widget_that_is_not_a_number_is_named_before_spark_starts():
    """A drill (session 29): "ten" in `rows` or "1e4" in `sample_rows` gave Python's `invalid literal for int()`, and only
    after the notebook had started Spark and read the config."""
    from jobs.notebook import widget_count
    from lf_library.errors import ConfigError

    for path, widget, text in (("inspect_labels.py", "rows", "twenty"), ("develop_lf.py", "sample_rows", "1e4"),
                               ("develop_lf.py", "sample_rows", "0")):
        with pytest.raises(ConfigError, match=rf"^widget '{widget}' must be a whole number above 0, not '{text}': "):
            run_notebook(REPO / "notebooks" / path, {"config": "missing.yaml", widget: text})
    assert widget_count(" 10_000 ", "sample_rows") == 10000


def test_develop_lf_says_its_draft_is_the_demos_on_another_label_space(spark, lake, tmp_path):
    """The draft cell is written for the demo's label space; on another library it says so, not tuple.index."""
    config = tmp_path / "urgency.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": str(lake["root"] / "source" / "tickets"), "format": "parquet", "id_column": "ticket_id"},
        "lfs": {"modules": ["lf_library.lfs.demo_urgency"]},
        "mlflow": {"enabled": False},
    }))  # fmt: skip
    with pytest.raises(ValueError, match=r"written for the demo's tickets \(conf/demo.yaml\); your library's label "
                                         r"space is \['routine', "):
        run_notebook(REPO / "notebooks" / "develop_lf.py", {"config": str(config)})


def test_notebooks_refuse_a_multi_task_config_naming_its_tasks(spark, lake, tmp_path):
    """develop_lf and inspect_labels read one label space; a multi-task config is named as such.

    Before: develop_lf printed a library over class_0..class_3 and its draft cell failed on that,
    inspect_labels said "no labels table ... run the pipeline first" right after a run.
    """
    from lf_library.errors import ConfigError

    config = tmp_path / "tasks.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": str(lake["root"] / "source" / "tickets"), "format": "parquet", "id_column": "ticket_id"},
        "lfs": {"modules": ["lf_library.lfs.demo", "lf_library.lfs.demo_urgency"]},
        "tasks": {"topic": {"label_space": ["billing", "technical", "shipping", "account"]},
                  "urgency": {"label_space": ["routine", "urgent"]}},
        "mlflow": {"enabled": False},
    }))  # fmt: skip
    for name in ("develop_lf", "inspect_labels"):
        with pytest.raises(ConfigError, match=rf"declares several tasks \(topic, urgency\); the {name} notebook reads "
                                              r"a single-task config.*task_labels\(spark, cfg, TASK\)"):
            run_notebook(REPO / "notebooks" / f"{name}.py", {"config": str(config)})


def test_run_metrics_of_a_multi_task_summary_are_per_task():
    """run_pipeline printed {} for a multi-task run: its metrics are named <task>.<metric>."""
    from jobs.notebook import run_metrics

    summary = {"metrics": {"topic.rows": 3000, "topic.coverage": 0.96, "topic.lf_coverage.kw": 0.1,
                           "urgency.rows": 3000, "urgency.accuracy": 0.79},
               "tasks": {"topic": {}, "urgency": {}}}  # fmt: skip
    assert run_metrics(summary) == {"topic": {"rows": 3000, "coverage": 0.96},
                                    "urgency": {"rows": 3000, "accuracy": 0.79}}
