"""lakelabel diff, drift and explain on two real pipeline runs with one LF edited between them.

One module fixture runs the pipeline twice on 60 rows: run 1 with the confusion model and a
declared keyword LF ``kw_edit`` voting ``pos`` on "fine"; run 2 with the precision model and
``kw_edit`` edited to also fire on "nothing" and "ok" (a new version). Then ``lakelabel diff``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from jobs import cli, diff, pipeline
from jobs import delta_io
from jobs.changes import drift
from jobs.explain import explain_row
from jobs.runtime.runs import latest_run_with, run_dir
from labelmodel.explain import softmax
from lf_library.errors import ConfigError
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

pytestmark = [pytest.mark.spark, pytest.mark.slow]  # two whole pipeline runs (module fixture) and a third

KW1 = {"name": "kw_edit", "kind": "keyword", "keywords": ["fine"], "label": "pos"}
KW2 = {**KW1, "keywords": ["fine", "nothing", "ok"]}
KEYS = {"row_id", "votes", "log_prior", "contributions", "probabilities", "label", "lineage"}


ROWS = make_rows(60, boom_every=30)  # LF boom raises on r000 and r030


def _cfg(tmp, src, kw, method, **sections):
    return make_cfg(tmp, src, lfs={"declared": [kw], "exclude": ["out_of_space"]}, label_model={"method": method},
                    **sections)


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diff")
    src = write_source(tmp, ROWS)
    cfg1, cfg2 = _cfg(tmp, src, KW1, "confusion"), _cfg(tmp, src, KW2, "dawid_skene")
    r1 = pipeline.run(spark, cfg1, run_id="run-1").summary
    r2 = pipeline.run(spark, cfg2, run_id="run-2").summary
    summary = diff.run(spark, cfg2, threshold=0.2)
    return {"tmp": tmp, "src": src, "cfg": cfg2, "r1": r1, "r2": r2, "diff": summary["diff"]}


def _labels(spark, cfg, version) -> pd.DataFrame:
    df = delta_io.read_table(spark, cfg.table_path("labels"), version=version).toPandas()
    return df.set_index("row_id")


def _votes(spark, cfg, version) -> dict[tuple[str, str], int]:
    df = delta_io.read_table(spark, cfg.table_path("votes"), version=version).toPandas()
    return {(r.row_id, r.lf_name): int(r.vote) for r in df.itertuples()}


def test_diff_table_matches_the_two_label_versions(spark, runs):
    cfg, d, r1, r2 = runs["cfg"], runs["diff"], runs["r1"], runs["r2"]
    assert (d["from_run"], d["to_run"]) == ("run-1", "run-2")
    a = _labels(spark, cfg, r1["tables"]["labels"]["version"])
    b = _labels(spark, cfg, r2["tables"]["labels"]["version"])
    flipped = {i for i in a.index if a.label[i] != b.label[i]}
    move = {i: float(np.abs(np.array(a.probabilities[i]) - np.array(b.probabilities[i])).max()) for i in a.index}
    moved = {i for i in a.index if i not in flipped and move[i] > 0.2}
    assert flipped, "the edit must flip some labels for this test to mean anything"
    table = delta_io.read_table(spark, cfg.table_path("label_changes")).toPandas().set_index("row_id")
    assert set(table.index[table.change == "flipped"]) == flipped
    assert set(table.index[table.change == "moved"]) == moved
    assert d["counts"]["flipped"] == len(flipped) and d["counts"]["rows"] == 60
    for i in flipped:
        assert (table.label_before[i], table.label_after[i]) == (a.label[i], b.label[i])
        assert table.max_probability_move[i] == pytest.approx(move[i], abs=1e-12)
    # The transition matrix counts every row once; its off-diagonal cells are the flips.
    m = np.array(d["transitions"]["matrix"])
    assert m.sum() == 60 and m.sum() - np.trace(m) == len(flipped)
    names = lambda df, i: df.label_name[i] if df.label[i] >= 0 else "(unlabeled)"  # noqa: E731
    expected = pd.Series([(names(a, i), names(b, i)) for i in a.index]).value_counts()
    cls = d["transitions"]["classes"]
    for (x, y), n in expected.items():
        assert m[cls.index(x), cls.index(y)] == n


def test_flips_are_attributed_to_the_lfs_whose_vote_changed(spark, runs):
    cfg, d = runs["cfg"], runs["diff"]
    va = _votes(spark, cfg, runs["r1"]["tables"]["votes"]["version"])
    vb = _votes(spark, cfg, runs["r2"]["tables"]["votes"]["version"])
    table = delta_io.read_table(spark, cfg.table_path("label_changes")).toPandas()
    for r in table.itertuples():
        changed = sorted(lf for (rid, lf) in set(va) | set(vb) if rid == r.row_id
                         and va.get((rid, lf), -1) != vb.get((rid, lf), -1))
        assert [c["lf_name"] for c in r.lf_changes] == changed
        for c in r.lf_changes:
            assert (c["old_vote"], c["new_vote"]) == (va.get((r.row_id, c["lf_name"]), -1),
                                                      vb.get((r.row_id, c["lf_name"]), -1))
    lfs = {lf["lf"]: lf for lf in d["lfs"]}
    kw = lfs["kw_edit"]
    assert kw["status"] == "changed" and kw["version_before"] != kw["version_after"]
    assert kw["version_before"] == {lf["name"]: lf["version"] for lf in runs["r1"]["lfs"]}["kw_edit"]
    flipped_by_kw = sum(1 for r in table.itertuples() if r.change == "flipped"
                        and any(c["lf_name"] == "kw_edit" for c in r.lf_changes))
    assert kw["flipped"] == flipped_by_kw > 0
    assert all(lf["flipped"] == 0 and lf["status"] == "same" for name, lf in lfs.items() if name != "kw_edit")
    # Changes with no vote changed are the label model's refit, counted apart (a drill: flips left unexplained).
    for change in ("flipped", "moved"):
        by_model = sum(1 for r in table.itertuples() if r.change == change and not len(r.lf_changes))
        assert d["counts"][f"{change}_by_the_model"] == by_model
    assert d["counts"]["moved_by_the_model"] > 0
    line = diff._done({"diff": {**d, "counts": {**d["counts"], "flipped_by_the_model": 3, "moved_by_the_model": 4}}})
    assert re.search(r"; flips per LF: kw_edit \d+; with no vote changed \(the label model's refit\): 3 flipped, "
                     r"4 moved; table ", line), line
    assert json.loads((run_dir(cfg.lakehouse, "run-2") / "diff.json").read_text())["counts"] == d["counts"]


def test_report_draws_the_transition_matrix(runs):
    from jobs import analyze
    from jobs.analysis import plots

    doc = {"label_diff": analyze._label_diff(runs["cfg"], "run-2")}
    assert doc["label_diff"]["transitions"] == runs["diff"]["transitions"]
    figures = plots.render([plots.label_transitions], doc)
    assert [f["name"] for f in figures] == ["label_transitions"] and figures[0]["png"].startswith(b"\x89PNG")
    assert plots.render([plots.label_transitions], {"label_diff": analyze._label_diff(runs["cfg"], "run-1")}) == []


def test_drift_section_compares_with_the_previous_run(runs):
    first, second = runs["r1"]["drift"], runs["r2"]["drift"]
    assert first["previous_run"] is None and first["notes"]
    assert second["previous_run"] == "run-1"
    kw = second["changes"]["lfs"]["kw_edit"]
    cov1 = sum("fine" in t for t in ROWS.text) / 60
    cov2 = sum(any(w in t.split(" ") or w + "," in t for w in ("fine", "nothing", "ok")) for t in ROWS.text) / 60
    assert kw["coverage_before"] == pytest.approx(cov1) and kw["coverage"] == pytest.approx(cov2)
    assert any(w["metric"] == "lf_coverage" and "kw_edit" in w["what"] for w in second["warnings"])
    labels = second["changes"]["labels"]
    assert sum(v["now"] for v in labels.values()) == pytest.approx(1.0)
    assert second["changes"]["label_shift"] > 0
    # The drift numbers of the labels: the share of unlabeled rows equals the labels table's.
    stored = json.loads((Path(runs["cfg"].lakehouse) / "_lakelabel/runs/run-2/drift_stats.json").read_text())
    assert stored["labels"] == {c: v["now"] for c, v in labels.items()}


def test_drift_failure_stops_the_run_before_labels_are_published(spark, runs, tmp_path, capsys, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = runs["cfg"]
    labels_before = delta_io.table_version(cfg.table_path("labels"))
    votes_before = delta_io.table_version(cfg.table_path("votes"))
    # Votes pos on negative rows: the conflict rate jumps. (The label model holds such an LF at
    # chance, label_model.better_than_chance, so the labels themselves barely move.)
    kw3 = {**KW1, "keywords": ["fine", "nothing", "ok", "hate", "awful"]}
    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg3 = _cfg(runs["tmp"], runs["src"], kw3, "dawid_skene", drift={"fail_on_conflict_rate": 0.0},
                mlflow={"enabled": True, "tracking_uri": store})
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg3.to_dict()))
    assert cli.main(["run", "--config", str(config), "--run-id", "run-3", "-q"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not re.search(r" WARNING jobs.changes.drift: ", line)]
    assert len(err) == 1 and re.search(r"drift: the conflict rate moved by \+0\.\d+ since run run-2, more than "
                                       r"drift.fail_on_conflict_rate = 0; run run-3 published no labels", err[0]), err
    assert delta_io.table_version(cfg.table_path("labels")) == labels_before
    assert delta_io.read_table(spark, cfg.table_path("labels")).first()["run_id"] == "run-2"
    # apply had committed run-3's votes; the failed run put run-2's back
    assert delta_io.table_version(cfg.table_path("votes")) > votes_before
    assert json.loads(delta_io.read_metadata(cfg.table_path("votes"))["lakelabel.apply"])["run_id"] == "run-2"
    assert json.loads((run_dir(cfg.lakehouse, "run-3") / "drift.json").read_text())["failures"]
    assert not (run_dir(cfg.lakehouse, "run-3") / "summary.json").exists()
    # The failed run's MLflow run carries the drift that stopped it.
    doc = json.loads((run_dir(cfg.lakehouse, "run-3") / "drift.json").read_text())
    client = mlflow.MlflowClient(store)
    (logged,) = client.search_runs([client.get_experiment_by_name("lakelabel").experiment_id])
    assert logged.info.status == "FAILED"
    assert doc["changes"]["conflict_rate"]["change"] > 0
    assert logged.data.metrics["drift.conflict_rate_change"] == pytest.approx(doc["changes"]["conflict_rate"]["change"])
    assert logged.data.metrics["drift.label_shift"] == pytest.approx(doc["changes"]["label_shift"])
    assert logged.data.metrics["drift.lf_coverage_change.kw_edit"] == pytest.approx(
        doc["changes"]["lfs"]["kw_edit"]["coverage_change"])
    # Its statistics and model stay for inspection, marked: `lakelabel write` alone takes the latest run that
    # did not fail (run-2), and refuses run-3 by name before Spark starts.
    failed = json.loads((run_dir(cfg.lakehouse, "run-3") / "failed.json").read_text())
    assert failed["status"] == "failed" and failed["reason"].startswith("drift: the conflict rate moved by")
    assert latest_run_with(cfg.lakehouse, "label_model.json") == "run-2"
    assert cli.main(["write", "--config", str(config), "--run-id", "run-3", "-q"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("lakelabel: error: run 'run-3' failed after it aggregated (drift: the conflict "
                           "rate moved by "), line
    assert line.endswith("so its labels were not published; rerun it (`lakelabel run --run-id run-3`), or fit it "
                         "again on purpose (`lakelabel fit --run-id run-3`) before writing"), line
    assert delta_io.table_version(cfg.table_path("labels")) == labels_before
    # analyze (train, annotate) of it says why it has no labels, and not to write them
    from jobs import analyze

    with pytest.raises(ConfigError, match=r"run 'run-3' failed after it aggregated \(drift: .*\) and wrote no labels: "
                                          r".*rerun it \(`lakelabel run --run-id run-3`\), or analyze run 'run-2'$"):
        analyze.analyze(spark, cfg, run_id="run-3")


def test_a_summary_that_cannot_be_written_after_the_work_is_exit_2(spark, runs, tmp_path, capsys, monkeypatch):
    """A disk that fills during a command: its work is done, the --summary-json file is not. Exit 2 (an orchestrator
    must not read exit 1 as "report a bug"), naming the file and the rerun; no temporary file is left."""
    import errno

    from jobs.runtime import runs as run_files

    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(runs["cfg"].to_dict()))
    summary = tmp_path / "out" / "verify.json"

    real = run_files.write_json

    def full_disk(path, data):
        if Path(path).parent == summary.parent:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(run_files, "write_json", full_disk)
    code = cli.main(["verify", "--config", str(config), "--run-id", "run-2", "--summary-json", str(summary), "-q"])
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 2 and line == (
        f"lakelabel: error: --summary-json {summary}: cannot write the summary (No space left on device); run run-2 "
        "did its work and committed it, only this file is missing: fix the path or free space, then rerun with "
        "--run-id run-2")
    # write_json itself leaves no temporary file when its rename fails (here: onto a folder)
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError):
        real(tmp_path / "folder", {"a": 1})
    assert not (tmp_path / "folder.tmp").exists()


def test_drift_compares_with_the_latest_run_that_kept_statistics(runs, caplog):
    """A `lakelabel write` stage job keeps no statistics: its model run's describe its labels. A run with none
    at all is passed over for an earlier one; with nothing to compare, a fail_on_* gate says it checked nothing."""
    from jobs.changes.runs import RunRecord
    from labelmodel import LabelModel, SufficientStats

    cfg = runs["cfg"]
    lake, labels, votes = Path(cfg.lakehouse), cfg.table_path("labels"), cfg.table_path("votes")
    run2 = json.loads((run_dir(lake, "run-2") / "drift_stats.json").read_text())
    written = RunRecord("w", run_dir(lake, "w"), labels, 9, votes, 1, label_space=("neg", "pos"), model_run="run-2")
    assert drift.load_run_stats(written) == run2
    bare = RunRecord("bare", run_dir(lake, "bare"), labels, 10, votes, 1, label_space=("neg", "pos"))
    assert drift.load_run_stats(bare) is None
    stats = SufficientStats.from_npz(str(run_dir(lake, "run-2") / "stats.npz"))
    model = LabelModel.load(str(run_dir(lake, "run-2") / "label_model.json"))
    gated = replace(cfg, drift=replace(cfg.drift, fail_on_conflict_rate=0.5))
    doc = drift.check(gated, "probe", stats, model, ["neg", "pos"], previous=bare)
    assert doc["previous_run"] == "bare" and not doc["changes"]
    assert "drift.fail_on_conflict_rate checked nothing" in caplog.text
    caplog.clear()
    first = drift.check(gated, "probe", stats, model, ["neg", "pos"], previous=None)  # a first run: nothing to compare
    assert "drift: no earlier run on these tables kept statistics, so drift.fail_on_conflict_rate checked" in caplog.text
    assert any("drift.fail_on_conflict_rate checked nothing" in note for note in first["notes"])  # in the summary too
    doc = drift.check(gated, "probe", stats, model, ["neg", "pos"], previous=written)
    assert doc["previous_run"] == "w" and doc["changes"]["conflict_rate"]["change"] == 0


def _check_explanation(doc, labels_row, model_kind):
    assert set(doc) == KEYS
    space = list(doc["probabilities"])
    logits = np.array([doc["log_prior"][c] + sum(doc["contributions"][lf][c] for lf in doc["contributions"])
                       for c in space])
    np.testing.assert_allclose(softmax(logits), np.array(labels_row["probabilities"]), rtol=0, atol=1e-9)
    assert [doc["probabilities"][c] for c in space] == list(labels_row["probabilities"])
    assert doc["label"] == labels_row["label_name"]
    assert doc["lineage"]["label_model"]["kind"] == model_kind
    assert doc["lineage"]["max_difference"] < 1e-9


def _types(value) -> set[type]:
    """The types of ``value`` and of everything in it."""
    inside = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return {type(value)}.union(*(_types(v) for v in inside))


def test_explain_a_flipped_row_in_both_runs(spark, runs):
    cfg, r1, r2 = runs["cfg"], runs["r1"], runs["r2"]
    table = delta_io.read_table(spark, cfg.table_path("label_changes")).toPandas()
    row_id = table[table.change == "flipped"].row_id.iloc[0]
    now = explain_row(spark, cfg, row_id)
    then = explain_row(spark, cfg, row_id, run_id="run-1")
    _check_explanation(now, _labels(spark, cfg, r2["tables"]["labels"]["version"]).loc[row_id], "bump")
    _check_explanation(then, _labels(spark, cfg, r1["tables"]["labels"]["version"]).loc[row_id], "table")
    assert now["row_id"] == row_id and now["label"] != then["label"]
    assert now["lineage"]["run_id"] == "run-2" and then["lineage"]["run_id"] == "run-1"
    # Built-in types all through, as JSON has them (numpy's np.float64 and np.int64 showed in a notebook, a drill).
    assert _types(now) <= {type(None), bool, int, float, str, list, dict}, _types(now)
    assert then["lineage"]["votes"]["version"] == r1["tables"]["votes"]["version"]
    text = ROWS.set_index("id").text[row_id]
    assert now["lineage"]["source"]["row"]["text"] == text
    versions = {d["lf"]: d["version"] for d in now["votes"]}, {d["lf"]: d["version"] for d in then["votes"]}
    assert versions[0]["kw_edit"] != versions[1]["kw_edit"]
    assert versions[0] == {lf["name"]: lf["version"] for lf in r2["lfs"]}
    # Precision model: an abstaining LF adds nothing; a vote adds its weight to its own class.
    for v in now["votes"]:
        c = now["contributions"][v["lf"]]
        if v["vote"] is None:
            assert v["weight"] is None and set(c.values()) == {0.0}
        else:
            assert c[v["vote"]] == pytest.approx(v["weight"])


def test_explain_shows_the_error_of_an_lf_that_raised(spark, runs):
    doc = explain_row(spark, runs["cfg"], "r030")
    boom = next(v for v in doc["votes"] if v["lf"] == "boom")
    assert boom["error"] == "RuntimeError: kaboom" and boom["vote"] is None and boom["weight"] is None
    assert doc["lineage"]["source"]["row"]["text"].endswith(" boom")


def test_cli_explain_and_diff(spark, runs, tmp_path, capsys):
    cfg = runs["cfg"]
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg.to_dict()))
    assert cli.main(["explain", "--config", str(config), "--row-id", "r049", "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == KEYS and doc["row_id"] == "r049"
    assert cli.main(["explain", "--config", str(config), "--row-id", "r049", "--run-id", "run-1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "row r049: label" in out and "kw_edit" in out and "class prior (log)" in out
    assert re.search(r"\(run run-1, label model \S+, (precision|confusion) model\)", out.splitlines()[0]), out
    cases = [
        (["explain", "--row-id", "nope"], r"row id 'nope' is not in the labels of run run-2"),
        (["explain", "--row-id", "r001", "--run-id", "never"], r"run 'never' has no run folder"),
        (["diff", "--from", "run-2", "--to", "run-1"], r"--from run 'run-2' \(labels v\d+\) is not older than --to"),
        (["diff", "--from", "run-1", "--to", "run-1"], r"--from and --to are both run 'run-1': a diff needs two runs"),
        (["diff", "--to", "ghost"], r"run 'ghost' has no run folder"),
        (["diff", "--threshold", "2"], r"--threshold 2.0 must be between 0 and 1"),
        # --run-id is the later run (it was ignored: this diffed run-1 -> run-2 with exit 0, a drill of session 39)
        (["diff", "--run-id", "run-1"], r"run .run-1. is the first run that wrote .*: nothing to compare it with"),
    ]
    for argv, pattern in cases:
        assert cli.main([*argv, "--config", str(config), "-q"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(pattern, err[0]), (argv, err)


def test_analyze_train_and_report_of_a_replaced_run_say_it_was_replaced(spark, runs):
    """Run 1 wrote labels version 0, run 2 replaced them: a command asked for run 1 says so, not "no labels"."""
    from jobs import analyze, train

    message = (r"run 'run-1' wrote version 0 of the labels table \S+, which run 'run-2' has since replaced, and "
               r"{} reads the current labels: {} run 'run-2', or run `lakelabel run --run-id run-1` again with that "
               r"run's config \(`lakelabel diff --from run-1` and `lakelabel explain --run-id run-1 --row-id ID`")
    with pytest.raises(ConfigError, match=message.format("analyze", "analyze")):
        analyze.analyze(spark, runs["cfg"], run_id="run-1")
    with pytest.raises(ConfigError, match=message.format("train", "train on")):
        train.run(spark, runs["cfg"], run_id="run-1")
    from jobs import report

    with pytest.raises(ConfigError, match=message.format("report", "report")):
        report.run(spark, runs["cfg"], run_id="run-1")


def test_a_moved_lakehouse_keeps_its_history(spark, runs, tmp_path):
    """A copy of the lakehouse in another folder (cp -a, a move, a new mount point): its run folders' summaries
    name the tables where they were; diff, explain --run-id and drift read them as the copy's (they found no run)."""
    import shutil

    from jobs.changes.runs import label_runs, moved_from, previous_run

    cfg = runs["cfg"]
    moved = replace(cfg, lakehouse=str(tmp_path / "elsewhere" / "lake"))
    shutil.copytree(cfg.lakehouse, moved.lakehouse, symlinks=True)
    found = label_runs(moved)
    assert [r.run_id for r in found] == ["run-1", "run-2"]
    for record in found:
        assert record.labels_path == moved.table_path("labels") and record.votes_path == moved.table_path("votes")
        assert str(record.folder).startswith(str(moved.lakehouse_path))
        assert record.model_path is None or record.model_path.startswith(str(moved.lakehouse_path))
    assert previous_run(moved, "run-2").run_id == "run-1"  # drift's lookup
    doc = diff.run(spark, moved, threshold=0.2)["diff"]
    assert (doc["from_run"], doc["to_run"]) == (runs["diff"]["from_run"], runs["diff"]["to_run"])
    assert doc["counts"] == runs["diff"]["counts"] and doc["tables"]["labels"]["path"] == moved.table_path("labels")
    then = explain_row(spark, moved, "r049", run_id="run-1")
    assert then == explain_row(spark, cfg, "r049", run_id="run-1") | {"lineage": then["lineage"]}
    assert then["lineage"]["run_id"] == "run-1"
    # The next run there reuses the votes (the same source and LFs) where they are now, not where the apply
    # record says they were written (it read the original's votes, or failed when the original was gone).
    again = pipeline.run(spark, moved, run_id="run-3").summary
    from deltalake import DeltaTable

    latest = DeltaTable(moved.table_path("votes")).version()  # the module's other tests may have run more
    assert again["tables"]["votes"] == {"path": moved.table_path("votes"), "version": latest, "reused": True}
    assert again["lakehouse"] == str(moved.lakehouse_path) and label_runs(moved)[-1].run_id == "run-3"
    # Only the same table relative to the lakehouse, under the folder the run says it wrote in, is rebased.
    lake, labels, old = str(moved.lakehouse_path), moved.table_path("labels"), str(cfg.lakehouse_path)
    assert moved_from(cfg.table_path("labels"), labels, lake, old) == old
    assert moved_from(cfg.table_path("labels"), labels, lake, None) is None  # the run does not say where
    assert moved_from(cfg.table_path("labels"), labels, lake, "/elsewhere") is None
    assert moved_from(cfg.table_path("votes"), labels, lake, old) is None
    assert moved_from("s3://bucket/lake/labels", labels, lake, "s3://bucket/lake") is None
    assert moved_from(labels, labels, lake, lake) is None
    assert moved_from(cfg.table_path("labels"), "/outside/labels", lake, old) is None


def test_explain_names_the_run_after_a_data_neutral_commit_of_the_labels(runs, tmp_path, capsys):
    """A table property set on the labels (or an OPTIMIZE) after run-2: explain's error and header said "run ?"
    (no run wrote the latest version), though the rows are run-2's. The tests on `runs` after it read summaries."""
    from deltalake import DeltaTable

    cfg = runs["cfg"]
    DeltaTable(cfg.table_path("labels")).alter.set_table_properties({"delta.logRetentionDuration": "interval 60 days"})
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg.to_dict()))
    assert cli.main(["explain", "--config", str(config), "--row-id", "nope", "-q"]) == 2
    assert "row id 'nope' is not in the labels of run run-2 (" in capsys.readouterr().err
    assert cli.main(["explain", "--config", str(config), "--row-id", "r049", "-q"]) == 0
    assert "(run run-2, label model" in capsys.readouterr().out.splitlines()[0]


def test_runs_of_another_labels_path_in_the_same_lakehouse_are_not_taken_for_a_move(tmp_path):
    """tables.labels changed from v1/labels to labels in a lakehouse that never moved: the runs that wrote
    v1/labels end in "/labels" too, but they wrote under this lakehouse, so they are not this table's runs."""
    from jobs.changes.runs import label_runs

    lake = tmp_path / "lake"
    for run, labels, version in [*((f"old-{v}", lake / "v1" / "labels", v) for v in range(3)),
                                 *((f"new-{v}", lake / "labels", v) for v in range(2))]:
        (run_dir(lake, run) / "summary.json").write_text(json.dumps({
            "run_id": run, "status": "succeeded", "lakehouse": str(lake.resolve()),
            "tables": {"labels": {"path": str(labels), "version": version},
                       "votes": {"path": str(labels.parent / "votes"), "version": version}}}))
    cfg = make_cfg(tmp_path, "unused")
    assert [r.run_id for r in label_runs(cfg)] == ["new-0", "new-1"]


def test_a_write_stage_rerun_under_a_runs_id_is_that_runs_latest_labels(tmp_path):
    """`lakelabel run --run-id s1`, later `lakelabel write --run-id s1` (v18): diff, explain, annotate and verify
    of s1 read the labels it wrote last, not the pipeline's summary.json first (a drill: annotate said "run 's1'
    wrote version 3"). The reverse order too."""
    from jobs.changes.runs import find_run, label_runs
    from jobs.verify import _run_summary

    lake = tmp_path / "lake"
    for run, name, version in [("s1", "summary.json", 3), ("s2", "summary.json", 5), ("s1", "write_summary.json", 18),
                               ("s3", "write_summary.json", 7), ("s3", "summary.json", 9)]:
        (run_dir(lake, run) / name).write_text(json.dumps({
            "run_id": run, "status": "succeeded", "lakehouse": str(lake.resolve()),
            "tables": {"labels": {"path": str(lake / "labels"), "version": version},
                       "votes": {"path": str(lake / "votes"), "version": 1}}}))
    cfg = make_cfg(tmp_path, "unused")
    assert [(r.run_id, r.labels_version) for r in label_runs(cfg)] == [("s2", 5), ("s3", 9), ("s1", 18)]
    assert find_run(cfg, "s1").labels_version == 18
    assert [(path.name, s["tables"]["labels"]["version"]) for path, s in
            (_run_summary(cfg, "s1"), _run_summary(cfg, "s3"))] == [("write_summary.json", 18), ("summary.json", 9)]
    # A later summary of another labels table (tables.labels changed) is not this table's (a review)
    (run_dir(lake, "s2") / "write_summary.json").write_text(json.dumps({
        "run_id": "s2", "status": "succeeded", "tables": {"labels": {"path": str(lake / "v2" / "labels"), "version": 30}}}))
    assert _run_summary(cfg, "s2")[0].name == "summary.json"
    # ... also in a moved lakehouse, where every recorded path is the old one (as find_run rebases them)
    moved = tmp_path / "moved"
    lake.rename(moved / "lake" if moved.mkdir() is None else None)
    cfg = make_cfg(moved, "unused")
    assert _run_summary(cfg, "s2")[0].name == "summary.json" and find_run(cfg, "s2").labels_version == 5


def test_diff_refuses_runs_of_different_label_spaces(runs):
    cfg = runs["cfg"]
    root = Path(cfg.lakehouse) / "_lakelabel" / "runs"
    summary = json.loads((root / "run-2" / "summary.json").read_text())
    summary.update(run_id="other-space", label_space=["ham", "spam"])
    summary["tables"]["labels"]["version"] += 100
    (root / "other-space").mkdir()
    try:
        (root / "other-space" / "summary.json").write_text(json.dumps(summary))
        with pytest.raises(ConfigError, match=r"runs 'run-2' and 'other-space' label different spaces"):
            diff.resolve_runs(cfg, None, None)
    finally:
        (root / "other-space" / "summary.json").unlink()
        (root / "other-space").rmdir()


def test_drift_thresholds_from_config():
    before = {"rows": 10, "label_space": ["a", "b"], "coverage": 0.5, "conflict_rate": 0.1, "mean_confidence": 0.8,
              "labels": {"a": 0.5, "b": 0.5}, "lfs": {"x": {"coverage": 0.5, "votes": {"a": 5, "b": 0}}}}
    now = {**before, "labels": {"a": 0.8, "b": 0.2}, "conflict_rate": 0.12}
    from jobs.runtime.config import DriftConfig

    doc = drift.compare(now, before, DriftConfig(), previous_run="p")
    assert doc["changes"]["label_shift"] == pytest.approx(0.3) and [w["metric"] for w in doc["warnings"]] == ["label_shift"]
    doc = drift.compare(now, before, DriftConfig(fail_on_label_shift=0.25, conflict_rate=0.01), previous_run="p")
    assert [f["metric"] for f in doc["failures"]] == ["label_shift"]
    assert [w["metric"] for w in doc["warnings"]] == ["conflict_rate"]
    with pytest.raises(drift.DriftError, match=r"label distribution moved by \+0.3000 since run p"):
        drift.enforce(doc, "r")
    with pytest.raises(ConfigError, match=r"drift.label_shift = -1 must be >= 0"):
        DriftConfig(label_shift=-1)
    # Above 1 a threshold never trips (changes are fractions; a drill's fail_on_label_shift=2 passed silently).
    with pytest.raises(ConfigError, match=r"^drift.fail_on_label_shift = 2 can never be reached: each change is a "
                                          r"fraction between 0 and 1 \(0.05 is 5%\); use a value in \[0, 1\], or null "
                                          r"to turn the failure off$"):
        DriftConfig(fail_on_label_shift=2)
    with pytest.raises(ConfigError, match=r"^drift.lf_coverage = 5 can never be reached.*drift.enabled: false"):
        DriftConfig(lf_coverage=5)
    assert DriftConfig(fail_on_label_shift=1).fail_on_label_shift == 1
    assert DriftConfig(enabled=False, lf_coverage=5).lf_coverage == 5  # not compared at all: not refused
    # An LF added moved its coverage from 0, one removed to 0: lf_coverage counts them.
    swapped = {**before, "lfs": {"y": {"coverage": 0.3, "votes": {"a": 3, "b": 0}}}}
    doc = drift.compare(swapped, before, DriftConfig(fail_on_lf_coverage=0.4), previous_run="p")
    assert [(w["what"], w["change"]) for w in doc["warnings"]] == [("coverage of LF y (added)", 0.3)]
    assert [(f["what"], f["change"]) for f in doc["failures"]] == [("coverage of LF x (removed)", -0.5)]
    assert drift.metrics(doc)["drift.lf_coverage_change.x"] == -0.5 and "drift.lf_votes_shift.y" not in drift.metrics(doc)


def test_unknown_run_lists_the_last_five_and_says_how_many(tmp_path):
    from jobs.changes.runs import RunRecord, find_run
    from jobs.runtime.config_loading import config_from_dict
    from lf_library.errors import ConfigError

    cfg = config_from_dict({"lakehouse": str(tmp_path / "lake"), "source": {"path": "x", "id_column": "id"},
                            "lfs": {"modules": []}})
    runs = [RunRecord(f"r{i}", tmp_path, "labels", i, "votes", i) for i in range(7)]
    with pytest.raises(ConfigError, match=r"runs that wrote labels, latest last: r2, r3, r4, r5, r6 \(the last 5 of 7; "
                                          r"all in .*lake/_lakelabel/runs\)$"):
        find_run(cfg, "ghost", runs)
    with pytest.raises(ConfigError, match=r"latest last: r0, r1, r2$"):
        find_run(cfg, "ghost", runs[:3])


def test_explain_finds_the_model_in_the_run_that_wrote_the_labels(tmp_path):
    """Two runs that fitted the same model (same version hash): the labels' own run folder is named."""
    import json

    import numpy as np

    from jobs.explain import find_model
    from labelmodel import LabelModel

    cfg = make_cfg(tmp_path, "unused")
    model = LabelModel(2).fit(np.array([[0, 1, -1], [0, 0, 1], [1, 1, -1]]))
    for run in ("run-a", "run-b"):
        folder = run_dir(cfg.lakehouse, run)
        (folder / "fit.json").write_text(json.dumps({"model_version": "v1"}))
        model.save(str(folder / "label_model.json"))
    assert find_model(cfg, "models:/m/1", "v1", "run-b")[1] == str(run_dir(cfg.lakehouse, "run-b") / "label_model.json")
    assert find_model(cfg, "models:/m/1", "v1")[1] == str(run_dir(cfg.lakehouse, "run-a") / "label_model.json")


def test_explain_refuses_a_model_file_a_later_fit_of_the_run_replaced(tmp_path):
    """A rerun of a succeeded run id that then failed (a drift gate) wrote a new model over the one that wrote the
    published labels: explain must not recompute them with it; the same version kept in another run is used."""
    import json

    import numpy as np

    from jobs.explain import find_model
    from jobs.fit_label_model import model_version
    from labelmodel import LabelModel

    cfg = make_cfg(tmp_path, "unused")
    old = LabelModel(2).fit(np.array([[0, 1, -1], [0, 0, 1], [1, 1, -1]]))
    new = LabelModel(2).fit(np.array([[1, 1, -1], [1, 0, 1], [1, 1, 0], [0, 0, 0]]))
    assert model_version(old) != model_version(new)
    path = run_dir(cfg.lakehouse, "run-a") / "label_model.json"
    new.save(str(path))
    (path.parent / "fit.json").write_text(json.dumps({"model_version": model_version(new)}))
    assert find_model(cfg, str(path), model_version(new), "run-a")[1] == str(path)
    with pytest.raises(ConfigError, match=r"label_model.json is no longer version \w+, which wrote these labels: a later "
                                          r"fit of the same run id replaced it"):
        find_model(cfg, str(path), model_version(old), "run-a")
    kept = run_dir(cfg.lakehouse, "run-b") / "label_model.json"
    old.save(str(kept))
    (kept.parent / "fit.json").write_text(json.dumps({"model_version": model_version(old)}))
    assert find_model(cfg, str(path), model_version(old), "run-a")[1] == str(kept)


def test_explain_reads_the_mlflow_model_when_a_later_fit_of_the_run_replaced_its_file(tmp_path, monkeypatch):
    """`lakelabel fit --run-id R` after R wrote labels replaces R's model file; the labels name the MLflow model
    that wrote them (models:/...), which the store still holds: explain reads it there (it said the model was in
    no run folder, exit 2, and the current labels could not be explained)."""
    import json

    import numpy as np

    from jobs.explain import find_model
    from jobs.fit_label_model import FitResult, model_version
    from jobs.runtime import tracking
    from labelmodel import LabelModel

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = make_cfg(tmp_path, "unused", mlflow={"enabled": True})
    old = LabelModel(2).fit(np.array([[0, 1, -1], [0, 0, 1], [1, 1, -1]]))
    new = LabelModel(2).fit(np.array([[1, 1, -1], [1, 0, 1], [1, 1, 0], [0, 0, 0]]))
    path = run_dir(cfg.lakehouse, "run-a") / "label_model.json"
    old.save(str(path))
    tracking.start_run(cfg, "run-a")
    try:
        uri = tracking.log_fit(cfg, FitResult(old, str(path), model_version(old), {}), ["a", "b", "c"], ["x", "y"])
    finally:
        tracking.end_run(cfg)
    new.save(str(path))  # the later fit of run-a
    (path.parent / "fit.json").write_text(json.dumps({"model_version": model_version(new)}))
    model, file = find_model(cfg, uri, model_version(old), "run-a")
    assert model_version(model) == model_version(old) and file != str(path)
    with pytest.raises(ConfigError, match=r"that wrote these labels is not in any run folder"):
        find_model(cfg, uri, "0123456789ab", "run-a")  # a version the store does not hold either
    # verify rebuilds with it too (it said "the saved model was replaced, so the run cannot be rebuilt")
    from jobs.verify import _load_model
    from lf_library.errors import InputDataError, TransientError

    model, file = _load_model(cfg, {"label_model": uri, "label_model_version": model_version(old)}, path.parent)
    assert model_version(model) == model_version(old) and file != path
    with pytest.raises(InputDataError, match=rf"label model .*label_model.json has version {model_version(new)}, but "
                                             r"the labels were written by version 0123456789ab: the saved model was"):
        _load_model(cfg, {"label_model": uri, "label_model_version": "0123456789ab"}, path.parent)
    # Without the store (the labels logged to a server, a copy without mlflow.db) nothing asks it, so none is made.
    store = cfg.lakehouse_path / "mlflow.db"
    store.rename(tmp_path / "away.db")
    with pytest.raises(ConfigError, match=r"is not in any run folder under .* nor in the MLflow store sqlite:///"):
        find_model(cfg, uri, model_version(old), "run-a")
    with pytest.raises(InputDataError, match=r"the saved model was replaced"):
        _load_model(cfg, {"label_model": uri, "label_model_version": model_version(old)}, path.parent)
    path.unlink()
    with pytest.raises(InputDataError, match=rf"the label model {uri} \(version \w+\) of these labels is not in the "
                                             r"MLflow store sqlite:///.* and .* has no label_model.json"):
        _load_model(cfg, {"label_model": uri, "label_model_version": model_version(old)}, path.parent)
    assert not store.exists()
    (tmp_path / "away.db").rename(store)
    # A store that cannot be read (a tracking server that is down) is said so, at once: not "not in the store";
    # transient (exit 3): a retry once it is up succeeds
    down = make_cfg(tmp_path, "unused", mlflow={"enabled": True, "tracking_uri": "http://127.0.0.1:1"})
    with pytest.raises(TransientError, match=r"the MLflow store http://127.0.0.1:1 cannot be read \(.*\), so the "
                                             r"label model runs:/.* the labels name was not found; start the tracking"):
        find_model(down, "runs:/0123456789abcdef0123456789abcdef/label_model", model_version(old), "run-a")


def test_latest_run_is_the_one_whose_file_was_written_last(tmp_path):
    """Not the folder's time: a full apply deleting an older run's row masks touched that folder, and `lakelabel
    write` (no --run-id) then took the older run's model (a drill). A failed run is passed over."""
    import os
    import time

    from jobs.runtime.runs import failed_run, mark_done, mark_failed, mark_running

    lake = tmp_path / "lake"
    for i, run in enumerate(("old", "new", "failed")):
        (run_dir(lake, run) / "label_model.json").write_text("{}")
        os.utime(run_dir(lake, run) / "label_model.json", (time.time() - 100 + i, time.time() - 100 + i))
    (run_dir(lake, "old") / "row_masks-x").mkdir()
    (run_dir(lake, "old") / "row_masks-x").rmdir()  # the old run's folder is now the newest folder
    mark_failed(lake, "failed", False, "drift: ...")
    assert latest_run_with(lake, "label_model.json") == "new"
    # A run still handing files on (this process): its model has not passed its checks yet.
    (run_dir(lake, "running") / "label_model.json").write_text("{}")
    mark_running(lake, "running")
    assert failed_run(lake, "running")["status"] == "running"
    assert latest_run_with(lake, "label_model.json") == "new"
    mark_done(lake, "running")
    assert failed_run(lake, "running") is None and latest_run_with(lake, "label_model.json") == "running"


def test_explain_cuts_a_long_string_inside_its_quotes():
    """A drill (session 23): a long source value was cut without its closing quote (`text='The search is ...,`)."""
    from jobs.explain import _short

    cut = _short("The search is broken. " * 10)
    assert cut.startswith("'The search is broken.") and cut.endswith("...'") and len(cut) <= 120
    assert _short("short") == "'short'" and _short(list(range(100))).endswith("...")


def test_explain_takes_an_int_row_id_for_string_ids():
    """A notebook drill: explain_row(spark, cfg, 5) on string ids failed with Spark's CAST_INVALID_INPUT
    (the column was cast to BIGINT for the comparison) instead of "row id ... is not in the labels"."""
    from pyspark.sql.types import LongType, StringType

    from jobs.explain import _key

    assert _key(5, StringType(), "/lake/labels") == "5" and _key(np.int64(7), StringType(), "/lake/labels") == "7"
    assert _key("T1", StringType(), "/lake/labels") == "T1" and _key("12", LongType(), "/lake/labels") == 12


def test_explain_text_names_the_lfs_that_abstained_and_add_nothing():
    """At 300 LFs the text was a 300-row table of zeros around the few LFs that voted (a drill): an LF that abstained
    without an error and adds nothing is named after the table; one whose abstain counts (a confusion model's
    abstain evidence) keeps its row."""
    from jobs.explain import format_text

    classes = ["ham", "spam"]
    votes = [{"lf": f"kw_{i:03d}", "version": "v", "vote": None, "error": None, "weight": None} for i in range(14)]
    votes[3].update(vote="spam", weight=1.2)
    votes[5].update(error="RuntimeError: kaboom")
    contributions = {v["lf"]: {c: 0.0 for c in classes} for v in votes}
    contributions["kw_003"]["spam"] = 1.2
    contributions["kw_007"]["ham"] = 0.1  # abstained, and its abstain is evidence
    doc = {"row_id": "r1", "label": "spam", "votes": votes, "contributions": contributions,
           "log_prior": {c: -0.69 for c in classes}, "probabilities": {"ham": 0.25, "spam": 0.75},
           "lineage": {"run_id": "r", "label_model": {"version": "m", "kind": "confusion", "combine": "softmax",
                                                       "file": "f"},
                       "source": {"row": None, "version": 1, "path": "s"}, "votes": {"path": "v", "version": 1},
                       "labels": {"path": "l", "version": 1}}}
    lines = format_text(doc).splitlines()
    table = [line.split()[0] for line in lines if line.startswith("kw_")]
    assert table == ["kw_003", "kw_005", "kw_007"], lines
    assert ("11 LF(s) abstained and add nothing: kw_000, kw_001, kw_002, kw_004, kw_006, kw_008, kw_009, kw_010, "
            "kw_011, kw_012, ... (1 more)") in lines, lines
