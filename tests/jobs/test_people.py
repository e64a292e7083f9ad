"""Gold table, annotate and suggest on a handful of literal rows (real Spark, real Delta tables)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import json
import re
import time
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jobs import pipeline
from jobs import delta_io
from jobs.cli import main as cli_main
from jobs.people import annotate, gold, suggest
from jobs.people.annotate import normalized_text
from lf_library.errors import ConfigError, InputDataError
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

pytestmark = pytest.mark.spark


@pytest.fixture()
def setup(tmp_path):
    rows = make_rows(40)
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows))
    return cfg, rows, tmp_path


@pytest.fixture(scope="module")
def labeled_once(spark, tmp_path_factory):
    """A folder holding the ``setup`` source and a lakehouse after pipeline run ``p1`` (no gold yet)."""
    tmp = tmp_path_factory.mktemp("people_p1")
    pipeline.run(spark, make_cfg(tmp, write_source(tmp, make_rows(40))), run_id="p1")
    return tmp


@pytest.fixture()
def after_p1(labeled_once, tmp_path):
    """``setup`` after ``pipeline.run(spark, cfg, run_id="p1")``: a copy of the shared run, one per test.

    Copying the source and the lakehouse (Delta logs hold relative paths) gives each test the
    tables of that run without paying for the run again; the tests then add gold and runs of their own.
    """
    for name in ("src", "lake"):
        shutil.copytree(labeled_once / name, tmp_path / name)
    cfg = make_cfg(tmp_path, str(tmp_path / "src"))
    return cfg, make_rows(40), tmp_path


def write_csv(path, records) -> str:
    pd.DataFrame(records).to_csv(path, index=False)
    return str(path)


def cli_config(cfg, path) -> str:
    """``cfg`` as a config file for the CLI (the sections these tests set)."""
    path.write_text(json.dumps({k: cfg.to_dict()[k] for k in ("lakehouse", "source", "lfs", "mlflow")}))
    return str(path)


def forbid_spark(monkeypatch, why: str) -> None:
    """Make starting Spark fail the test (``monkeypatch.undo()`` allows it again)."""
    from jobs.runtime import session

    def no_spark(*args, **kwargs):
        raise AssertionError(why)

    monkeypatch.setattr(session, "get_spark", no_spark)


def gold_rows(spark, cfg) -> pd.DataFrame:
    return delta_io.read_table(spark, cfg.table_path("gold")).toPandas()


def test_import_is_atomic_idempotent_and_keeps_history(spark, setup, caplog, capsys, monkeypatch):
    cfg, rows, tmp = setup
    first = write_csv(tmp / "a.csv", [
        {"row_id": "r001", "label": "pos", "annotator": "ann", "note": ""},
        {"row_id": "r002", "label": "0", "annotator": "ann", "note": "by id"},
        {"row_id": "r003", "label": "", "annotator": "", "note": ""},  # not labeled yet: skipped
    ])  # fmt: skip
    s = gold.run(spark, cfg, run_id="g1", file=first)
    assert s["counts"]["imported"] == 2 and s["counts"]["unlabeled"] == 1
    v1 = s["tables"]["gold"]["version"]
    table = gold_rows(spark, cfg)
    assert sorted(table.row_id) == ["r001", "r002"]
    assert dict(zip(table.row_id, table.label_name)) == {"r001": "pos", "r002": "neg"}
    assert set(table.split) <= {"dev", "test"}
    assert {r: gold.assign_split(r, 0.5) for r in table.row_id} == dict(zip(table.row_id, table.split))

    again = gold.run(spark, cfg, run_id="g2", file=first)
    assert again["skipped"] and delta_io.table_version(cfg.table_path("gold")) == v1
    assert len(gold_rows(spark, cfg)) == 2
    # The same file under another --annotator adds nothing either, and the import says what it already holds.
    with caplog.at_level(logging.WARNING, logger="jobs.people.gold"):
        renamed = gold.run(spark, cfg, run_id="g2b", file=first, annotator="carol")
    assert renamed["skipped"] and delta_io.table_version(cfg.table_path("gold")) == v1
    assert f"gold import: the content of {first} was imported on " in caplog.text
    assert "with annotator(s) 'ann' and split(s) " in caplog.text
    assert "so --annotator 'carol' changes nothing" in caplog.text
    caplog.clear()  # the flags the earlier import had: nothing to warn about
    with caplog.at_level(logging.WARNING, logger="jobs.people.gold"):
        assert gold.run(spark, cfg, run_id="g2c", file=first, annotator="ann")["skipped"]
    assert "was imported on" not in caplog.text
    # A file already in a local gold table is found without Spark, with the same summary and warning.
    other = write_csv(tmp / "other.csv", [{"row_id": "r004", "label": "pos"}])
    assert not gold.import_needs_spark(cfg, first) and gold.import_needs_spark(cfg, other)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jobs.people.gold"):
        no_spark = gold.run(None, cfg, run_id="g2b", file=first, annotator="carol")
    assert no_spark == renamed and "so --annotator 'carol' changes nothing" in caplog.text
    forbid_spark(monkeypatch, "Spark started for a file the gold table already holds")
    capsys.readouterr()
    assert cli_main(["gold", "import", "--config", cli_config(cfg, tmp / "c.yaml"), "--file", first, "-q"]) == 0
    assert capsys.readouterr().out.strip() == f"lakelabel gold: {first}: its content was imported before; nothing added"
    monkeypatch.undo()

    # The same annotator relabels r001 later; another annotator disagrees on r002.
    second = write_csv(tmp / "b.csv", [
        {"row_id": "r001", "label": "neg", "annotator": "ann", "annotated_at": "2030-01-01T00:00:00Z"},
        {"row_id": "r002", "label": "pos", "annotator": "bob", "annotated_at": "2030-01-01T00:00:00Z"},
    ])  # fmt: skip
    s2 = gold.run(spark, cfg, run_id="g3", file=second)
    assert s2["counts"]["relabeled"] == 1 and s2["counts"]["conflicts"] == 1
    assert s2["conflict_examples"] == [{"row_id": "r002", "labels": {"ann": "neg", "bob": "pos"}}]
    assert len(gold_rows(spark, cfg)) == 4  # history kept
    current = gold.current_gold(spark, cfg).toPandas().set_index("row_id")
    assert current.loc["r001", "label_name"] == "neg" and current.loc["r002", "label_name"] == "pos"
    by_spark = gold.status(spark, cfg, run_id="st")
    st = by_spark["counts"]
    assert (st["rows"], st["labels_given"], st["annotators"], st["imports"], st["conflicts"]) == (2, 4, 2, 2, 1)
    assert by_spark["conflict_examples"] == [{"row_id": "r002", "labels": {"ann": "neg", "bob": "pos"}}]
    # The current labels per split and class agree with current_gold's.
    per = current.groupby(["split", "label_name"]).size()
    assert st["current"] == {f"{sp}/{name}": int(n) for (sp, name), n in sorted(per.items())}
    # Read with delta-rs on the driver (gold status without Spark): the same answer.
    assert gold.status(None, cfg, run_id="st") == by_spark


def test_a_signal_after_the_gold_commit_says_it_stands(spark, setup, capsys, monkeypatch):
    """SIGTERM to `gold import` after its commit (in its last log lines): the labels are in the gold table, so the
    exit line must say so, not that the tables are as before; the rerun finds the file imported."""
    from jobs.runtime import exits, signals

    cfg, rows, tmp = setup
    file = write_csv(tmp / "a.csv", [{"row_id": "r001", "label": "pos"}, {"row_id": "r002", "label": "neg"}])
    info = gold.log.info

    def stopped_after_commit(msg, *args, **kwargs):
        if msg.startswith("gold import: %d label(s)"):
            signals._signalled = "terminated"
            raise signals.Terminated()
        info(msg, *args, **kwargs)

    monkeypatch.setattr(gold.log, "info", stopped_after_commit)
    assert exits.guarded(lambda: gold.run(spark, cfg, run_id="g1", file=file), debug=False) == exits.EXIT_TERMINATED
    version = delta_io.table_version(cfg.table_path("gold"))
    assert capsys.readouterr().err.strip() == (
        f"lakelabel: terminated (SIGTERM) after it committed gold {cfg.table_path('gold')} v{version}, which stand; "
        f"its run record (MLflow, summary) may be incomplete: rerun the command with the same --run-id to complete it")
    assert sorted(gold_rows(spark, cfg).row_id) == ["r001", "r002"]
    monkeypatch.undo()
    assert gold.run(spark, cfg, run_id="g1", file=file)["skipped"]


def test_gold_labels_keep_their_class_when_the_label_space_is_reordered(spark, setup, caplog):
    """The gold table stores class ids as imported: a config that reorders lfs.label_space read them as the other
    class (a drill: gold accuracy 0.25 for 0.78, exit 0). They are read by class name; a class the space no
    longer has is left out with a warning."""
    from dataclasses import replace

    cfg, rows, tmp = setup
    gold.run(spark, cfg, run_id="g1", file=write_csv(tmp / "a.csv", [
        {"row_id": "r001", "label": "pos"}, {"row_id": "r002", "label": "neg"}, {"row_id": "r003", "label": "neg"}]))
    assert gold.label_space_of(cfg) == ("neg", "pos")

    def current(config):
        frame = gold.current_gold(spark, config).toPandas()
        return dict(zip(frame.row_id, zip(frame.label, frame.label_name)))

    assert current(cfg) == {"r001": (1, "pos"), "r002": (0, "neg"), "r003": (0, "neg")}
    swapped = replace(cfg, lfs=replace(cfg.lfs, label_space=["pos", "neg"]))
    assert current(swapped) == {"r001": (0, "pos"), "r002": (1, "neg"), "r003": (1, "neg")}
    with caplog.at_level(logging.WARNING, logger="jobs.people.gold"):
        assert current(replace(cfg, lfs=replace(cfg.lfs, label_space=["other", "pos"]))) == {"r001": (1, "pos")}
    assert "labels of class(es) ['neg'], which the label space ['other', 'pos'] no longer has, are left out" in caplog.text
    # A row relabeled to a class the space then drops is left out, not read as its label before; and an import
    # under that space compares classes by name (the stored ids are of the space at import).
    three = replace(cfg, lfs=replace(cfg.lfs, label_space=["neg", "pos", "other"]))
    gold.run(spark, three, run_id="g2", file=write_csv(tmp / "b.csv", [
        {"row_id": "r001", "label": "other", "annotated_at": "2030-01-01T00:00:00Z"}]))
    assert current(three)["r001"] == (2, "other")
    assert "r001" not in current(cfg) and current(cfg)["r002"] == (0, "neg")
    again = gold.run(spark, swapped, run_id="g3", file=write_csv(tmp / "c.csv", [
        {"row_id": "r002", "label": "neg"}, {"row_id": "r001", "label": "pos", "annotated_at": "2031-01-01T00:00:00Z"}]))
    # r002: neg again (stored as id 0, now 1), not a relabel; r001: other -> pos under a space without other
    assert again["counts"]["relabeled"] == 1 and again["counts"]["conflicts"] == 0
    assert current(swapped) == {"r001": (0, "pos"), "r002": (1, "neg"), "r003": (1, "neg")}


def test_label_studio_tasks_without_a_submitted_label_count_as_unlabeled(tmp_path):
    """A skipped (cancelled) task and one nobody annotated are counted, as a CSV row with an empty label is."""
    from jobs.people.files import read_gold_file

    choice = {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}
    export = [
        {"id": 1, "data": {"row_id": "r001"}, "annotations": [{"id": 11, "completed_by": 1, "result": [choice]}]},
        {"id": 2, "data": {"row_id": "r002"}, "annotations": [{"id": 12, "completed_by": 1, "was_cancelled": True,
                                                               "result": []}]},
        {"id": 3, "data": {"row_id": "r003"}, "annotations": []},
    ]  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    gf = read_gold_file(path, "label-studio")
    assert [r["row_id"] for r in gf.records] == ["r001"] and gf.unlabeled == 2
    path.write_text(json.dumps(export[1:]))
    with pytest.raises(InputDataError, match=r"has no submitted label \(2 task\(s\) not annotated yet or skipped\); "
                                             r"label the tasks in Label Studio"):
        gold.checked_records(None, read_gold_file(path, "label-studio"), None)


def test_a_csv_that_is_not_utf8_names_its_line(tmp_path):
    """A drill (session 29): a gold file saved as Windows-1252 said pandas' "can't decode byte 0xe9 in position 40",
    a position in pandas' buffer, not where in the file."""
    from jobs.people.files import read_gold_file

    path = tmp_path / "excel.csv"
    path.write_bytes("row_id,label,note\nr001,pos,fine\nr002,neg,caf\u00e9 closed\n".encode("cp1252"))
    with pytest.raises(InputDataError) as err:
        read_gold_file(path)
    assert str(err.value) == (f"cannot read {path} as CSV: line 3 is not UTF-8 (byte 0xe9: invalid continuation byte; "
                              f"a file saved as Windows-1252 or Latin-1?); save it as UTF-8 CSV (in Excel: Save As "
                              f"\"CSV UTF-8 (Comma delimited)\")")


def test_a_semicolon_separated_csv_says_so(tmp_path):
    """A drill: Excel in many locales saves "CSV" with ';' between fields; pandas' "Expected 1 fields in line 4,
    saw 2" (a ',' in a note) or a missing row_id column did not say why."""
    from jobs.people.files import read_gold_file

    fix = ("the file looks semicolon-separated (its header line has ';' and no ','): save it comma-separated "
           "(in Excel: Save As \"CSV UTF-8 (Comma delimited)\")")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("row_id;label;note\nr001;pos;x\nr002;neg;see, the wiki\n", encoding="utf-8")
    with pytest.raises(InputDataError) as err:
        read_gold_file(ragged)
    assert str(err.value) == (f"cannot read {ragged} as CSV (Error tokenizing data. C error: Expected 1 fields in "
                              f"line 3, saw 2); {fix}")
    plain = tmp_path / "plain.csv"
    plain.write_text("\ufeffrow_id;label\nr001;pos\n", encoding="utf-8")  # Excel's byte order mark too
    with pytest.raises(InputDataError) as err:
        read_gold_file(plain)
    assert str(err.value) == f"{plain} has no row_id and label columns (its header: row_id;label); {fix}"
    plain.write_text("row_id,label,note\nr001,pos,a;b\n", encoding="utf-8")  # a ';' in a comma-separated file
    assert [r["note"] for r in read_gold_file(plain).records] == ["a;b"]


def test_an_import_is_keyed_on_the_files_content_not_its_name(setup, monkeypatch, caplog):
    """A drill: a copy of an imported file under another name ("labeled (1).csv", a Label Studio export
    downloaded again) was imported again, doubling the history; the import id is now the file's SHA-256, and a
    file imported under the old id (its name hashed with its content) still adds nothing."""
    import hashlib
    from datetime import datetime, timezone

    import pyarrow as pa
    from deltalake import write_deltalake

    from jobs.people.files import read_gold_file

    cfg, _, tmp = setup
    first = write_csv(tmp / "labeled.csv", [{"row_id": "r001", "label": "pos", "annotator": "ann"}])
    copy = tmp / "labeled (1).csv"
    shutil.copy(first, copy)
    content = hashlib.sha256(Path(first).read_bytes()).hexdigest()
    assert read_gold_file(first).fingerprint == read_gold_file(copy).fingerprint == content
    legacy = hashlib.sha256(b"labeled.csv" + Path(first).read_bytes()).hexdigest()
    now = datetime.now(timezone.utc)
    rows = {"row_id": "r001", "label": 1, "label_name": "pos", "annotator": "ann", "annotated_at": now, "split": "dev",
            "origin": "csv:labeled.csv", "task_id": None, "note": None, "import_id": legacy, "imported_at": now}
    write_deltalake(cfg.table_path("gold"), pa.Table.from_pylist([rows]))  # imported by an earlier version
    forbid_spark(monkeypatch, "Spark started for a file the gold table already holds")
    assert not gold.import_needs_spark(cfg, first) and gold.run(None, cfg, run_id="g2", file=first)["skipped"]
    write_deltalake(cfg.table_path("gold"), pa.Table.from_pylist([{**rows, "import_id": content}]), mode="append")
    assert not gold.import_needs_spark(cfg, str(copy))  # imported now: its copy adds nothing
    assert gold.run(None, cfg, run_id="g3", file=str(copy))["skipped"]


def test_gold_import_checks_the_files_labels_before_spark(setup, capsys, monkeypatch):
    """No label, a label outside the space, a bad split: one line, exit 2, without Spark's 15-20 s start."""
    cfg, _, tmp = setup
    cfg_file = cli_config(cfg, tmp / "c_pre.yaml")
    log = Path(cfg.table_path("gold")) / "_delta_log"
    before = sorted(log.iterdir()) if log.exists() else None
    forbid_spark(monkeypatch, "gold import started Spark for a file whose labels fail")
    capsys.readouterr()
    for name, records, message in (
        ("empty.csv", [{"row_id": "r001", "label": ""}], "has no labeled rows (1 row(s) with an empty label)"),
        ("maybe.csv", [{"row_id": "r001", "label": "maybe"}], "'maybe' is not in the label space (0=neg, 1=pos)"),
        ("split.csv", [{"row_id": "r001", "label": "pos", "split": "train"}], "split 'train' is not dev or test"),
    ):
        assert cli_main(["gold", "import", "--config", cfg_file, "--file", write_csv(tmp / name, records), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (name, err)
    assert (sorted(log.iterdir()) if log.exists() else None) == before
    # A file already in the gold table adds nothing, even if the label space has changed since.
    monkeypatch.undo()
    first = write_csv(tmp / "first_pre.csv", [{"row_id": "r001", "label": "pos", "annotator": "ann"}])
    assert cli_main(["gold", "import", "--config", cfg_file, "--file", first, "-q"]) == 0
    renamed = tmp / "c_renamed.yaml"
    renamed.write_text(json.dumps({**json.loads(Path(cfg_file).read_text()),
                                   "lfs": {**cfg.to_dict()["lfs"], "label_space": ["no", "yes"]}}))
    forbid_spark(monkeypatch, "gold import started Spark for a file already imported")
    capsys.readouterr()
    assert cli_main(["gold", "import", "--config", str(renamed), "--file", first, "-q"]) == 0
    assert capsys.readouterr().out.strip() == f"lakelabel gold: {first}: its content was imported before; nothing added"


def test_gold_status_starts_no_spark_on_a_local_table(spark, setup, capsys, monkeypatch):
    cfg, _, tmp = setup
    cfg_file = cli_config(cfg, tmp / "c.yaml")
    why = "gold status started Spark to read a local gold table"
    forbid_spark(monkeypatch, why)
    capsys.readouterr()
    assert cli_main(["gold", "status", "--config", cfg_file]) == 2  # no gold table yet: the usual error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no gold table at" in err[0] and "lakelabel gold import" in err[0], err
    monkeypatch.undo()
    gold.run(spark, cfg, run_id="g1", file=write_csv(tmp / "a.csv", [
        {"row_id": "r001", "label": "pos", "annotator": "ann"}, {"row_id": "r001", "label": "neg", "annotator": "bob"},
        {"row_id": "r002", "label": "neg", "annotator": "ann"},
    ]))  # fmt: skip
    forbid_spark(monkeypatch, why)
    out = tmp / "status.json"
    assert cli_main(["gold", "status", "--config", str(cfg_file), "--summary-json", str(out)]) == 0
    line = capsys.readouterr().out
    assert "2 row(s), 3 label(s) from 2 annotator(s) in 1 import(s)" in line and "1 row(s) where annotators disagree" in line
    assert "current (split/class) " in line and "; 1 row(s) where annotators disagree, e.g. r001: ann pos, bob neg" in line
    assert "{" not in line and line.endswith("neg\n")
    summary = json.loads(out.read_text())
    expected = gold.status(spark, cfg, run_id=summary["run_id"])
    assert {k: v for k, v in summary.items() if k != "seconds"} == expected
    # A summary's seconds count the whole command from its config's loading.
    from jobs.runtime import config_loading

    load = config_loading.load_config
    monkeypatch.setattr(config_loading, "load_config", lambda *a, **kw: (time.sleep(0.5), load(*a, **kw))[1])
    assert cli_main(["gold", "status", "--config", str(cfg_file), "--summary-json", str(out)]) == 0
    assert json.loads(out.read_text())["seconds"] >= 0.5
    # Spark reads what delta-rs cannot see as Spark would: native Delta, object stores.
    assert not gold.status_needs_spark(cfg)
    assert gold.status_needs_spark(dataclasses.replace(cfg, tables=dataclasses.replace(cfg.tables, delta_io="native")))
    assert gold.status_needs_spark(dataclasses.replace(cfg, tables=dataclasses.replace(cfg.tables, gold="s3://b/gold")))


@pytest.mark.parametrize(
    "records, fmt, message",
    [
        ([{"row_id": "nope", "label": "pos"}], "csv", "not in the source"),
        ([{"row_id": "r001", "label": "maybe"}], "csv", r"'maybe' is not in the label space \(0=neg, 1=pos\); 1 row\(s\) have such labels\. Use a class name or id of "
                                                    r"that label space and"),
        ([{"id": "r001", "label": "pos"}], "csv", "no 'row_id' column"),
        ([{"row_id": "r001", "label": "pos", "annotator": "a"}, {"row_id": "r001", "label": "neg", "annotator": "a"}],
         "csv", "by the same annotator"),
        ([{"row_id": "r001", "label": "pos", "split": "train"}], "csv", "is not dev or test"),
        ([{"id": 7, "data": {"text": "hi"}, "annotations": []}], "label-studio", "no data.row_id"),
        ([{"id": 7, "project": 3, "data": {"row_id": "r001", "text": "x"}, "annotations": [{"id": 1, "result": [
            {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]}]}],
         "label-studio", "another labeling config"),
        ([{"id": 7, "project": 3, "data": {"row_id": "r001", "text": "x"}, "annotations": [{"id": 1, "result": [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]}]}],
         "label-studio", "'Positive' is not in the label space"),
    ],
)  # fmt: skip
def test_bad_input_names_file_and_row_and_writes_nothing(spark, setup, records, fmt, message):
    cfg, _, tmp = setup
    ok = write_csv(tmp / "ok.csv", [{"row_id": "r005", "label": "pos"}])
    gold.run(spark, cfg, run_id="ok", file=ok)
    before = delta_io.table_version(cfg.table_path("gold"))
    if fmt == "csv":
        extra = [{"row_id": "r004", "label": "neg"}] if "row_id" in records[0] else []  # a good row is not imported either
        bad = write_csv(tmp / "bad.csv", records + extra)
    else:
        bad = tmp / "bad.json"
        bad.write_text(json.dumps(records))
    with pytest.raises(InputDataError, match=message) as err:
        gold.run(spark, cfg, run_id="bad", file=str(bad), format=fmt)
    assert str(bad) in str(err.value)
    assert delta_io.table_version(cfg.table_path("gold")) == before
    assert list(gold_rows(spark, cfg).row_id) == ["r005"]


def test_split_never_changes_and_cli_exit_code(spark, setup, capsys, caplog):
    cfg, _, tmp = setup
    row = next(r for r in (f"r{i:03d}" for i in range(40)) if gold.assign_split(r, 0.5) == "dev")
    gold.run(spark, cfg, run_id="s1", file=write_csv(tmp / "s1.csv", [{"row_id": row, "label": "pos"}]))
    with pytest.raises(InputDataError, match="split never changes"):
        gold.run(spark, cfg, run_id="s2", file=write_csv(tmp / "s2.csv", [{"row_id": row, "label": "pos", "split": "test"}]))
    # --split is for new rows: this one keeps its split, and the import says so.
    with caplog.at_level(logging.WARNING, logger="jobs.people.gold"):
        s3 = gold.run(spark, cfg, run_id="s3", file=write_csv(tmp / "s3.csv", [{"row_id": row, "label": "neg"}]),
                      split="test")
    assert s3["counts"]["dev"] == 1 and s3["counts"]["test"] == 0
    assert "--split test applies to new rows only; 1 row(s) already in the gold table keep their split" in caplog.text
    cfg_file = cli_config(cfg, tmp / "c.yaml")
    capsys.readouterr()  # only the command's own output (an earlier CLI call in the session may have logged here)
    code = cli_main(["gold", "import", "--config", str(cfg_file), "--file", str(tmp / "missing.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing.csv does not exist" in err[0]


def _documented_scores(spark, cfg, exclude: set[str]) -> dict[str, pd.Series]:
    """Per strategy, the score README "People in the loop" ranks by, of every row that strategy may
    pick, computed here from the labels and votes tables (not by the annotate code)."""
    labels = delta_io.read_table(spark, cfg.table_path("labels")).toPandas().set_index("row_id")
    labels = labels.drop(index=list(exclude), errors="ignore")
    votes = delta_io.read_table(spark, cfg.table_path("votes")).toPandas()
    votes = votes[votes.vote >= 0]
    counts = votes.groupby(["row_id", "vote"]).size().unstack(fill_value=0).reindex(labels.index, fill_value=0)

    def entropy(p) -> float:
        p = np.asarray(p, dtype=float)
        p = p[p > 0] / p.sum() if p.sum() else p[:0]
        return float(-(p * np.log(p)).sum())

    covered = counts.sum(axis=1) > 0
    tops = counts.eq(counts.max(axis=1), axis=0)
    mv = counts.idxmax(axis=1).where(covered & (tops.sum(axis=1) == 1), -1).astype(int)  # majority vote, -1 on a tie
    vote_entropy = counts.apply(lambda c: entropy(c.to_numpy()), axis=1)
    probs = labels.probabilities.map(np.asarray)
    differs = (mv >= 0) & (labels.label >= 0) & (mv != labels.label)
    return {
        "uncertain": probs[covered].map(entropy),
        "conflict": vote_entropy[vote_entropy > 0],
        "uncovered": pd.Series(0.0, index=labels.index[~covered]),
        "disagreement": pd.Series({r: probs[r][labels.label[r]] - probs[r][mv[r]] for r in labels.index[differs]},
                                  dtype=float),
    }


def test_annotate_strategies_then_round_trip(spark, after_p1):
    """Every strategy picks rows, and the rows README "People in the loop" says it picks: the top of its
    ranking (one row per near-duplicate text), recomputed here from the tables."""
    cfg, rows, tmp = after_p1  # pipeline run p1 done
    gold.run(spark, cfg, run_id="g", file=write_csv(tmp / "g.csv", [{"row_id": "r000", "label": "pos"}]))
    text = dict(zip(rows.id, rows.text))
    documented = _documented_scores(spark, cfg, exclude={"r000"})
    for strategy in annotate.STRATEGIES:
        if strategy == "disagreement":
            # p1's label model agrees with majority vote on every row of these 40: relabel with one that does
            # not (a prior leaning to pos, votes not assumed better than chance), so the strategy has rows.
            cfg = dataclasses.replace(cfg, label_model=dataclasses.replace(
                cfg.label_model, better_than_chance=False, class_balance=(0.2, 0.8)))
            pipeline.run(spark, cfg, run_id="p2")
            documented = _documented_scores(spark, cfg, exclude={"r000"})
        out = tmp / f"{strategy}.csv"
        s = annotate.run(spark, cfg, strategy=strategy, n=6, out=str(out))
        picked = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert 0 < s["counts"]["rows"] == len(picked) <= 6, strategy
        assert list(picked.columns[:4]) == ["row_id", "label", "annotator", "note"]
        assert (picked.label == "").all() and "r000" not in set(picked.row_id)
        assert picked.text.tolist() == [text[r] for r in picked.row_id]
        keys = spark.createDataFrame([(t,) for t in picked.text], "t string").select(normalized_text("t").alias("k"))
        assert keys.distinct().count() == len(picked)  # near-duplicates collapsed
        if strategy == "stratified":
            counts = picked.predicted_label.value_counts()
            assert counts.max() - counts.min() <= 1 or len(picked) < 6
            continue
        scores = documented[strategy]
        assert set(picked.row_id) <= set(scores.index), (strategy, picked.row_id.tolist())  # only rows it may pick
        # The best row of each distinct text, best first: the picks are the head of that list.
        key = scores.index.map(lambda r: " ".join(re.findall(r"[a-z0-9]+", text[r].lower())))
        best = scores.groupby(key).max().sort_values(ascending=False).round(6).tolist()
        mine = scores[picked.row_id].round(6).tolist()
        assert len(picked) == min(6, len(best)), (strategy, len(best))
        assert mine == best[:len(picked)], (strategy, mine, best)
        assert np.allclose(picked.score.astype(float), scores[picked.row_id], atol=1e-4), strategy
        if strategy == "uncovered":
            assert (picked.voting_lfs == "").all()
        if strategy == "conflict":
            assert all(len({v.split("=")[1] for v in lfs.split("; ")}) > 1 for lfs in picked.voting_lfs)
    # Label the stratified file as an annotator would and import it.
    picked = pd.read_csv(tmp / "stratified.csv", dtype=str, keep_default_na=False)
    picked["label"] = [rows.set_index("id").gold[r] for r in picked.row_id]
    picked["annotator"] = "ann"
    picked.to_csv(tmp / "done.csv", index=False)
    s = gold.run(spark, cfg, run_id="g2", file=str(tmp / "done.csv"))
    assert s["counts"]["imported"] == len(picked)

    ls = annotate.run(spark, cfg, run_id="p2", strategy="uncertain", n=3, out=str(tmp / "tasks.json"),
                      format="label-studio")  # fmt: skip
    assert ls["run_id"] == "p2"  # the run whose labels it picked from
    # Another run's labels: refused, as analyze and train refuse them.
    with pytest.raises(ConfigError, match=r"run 'g' (wrote no labels|is not a run under \S+ \(no run folder\)): the "
                                          r"labels table .* holds the labels of run 'p2'; .*annotate run 'p2'"):
        annotate.run(spark, cfg, run_id="g", strategy="uncertain", n=3, out=str(tmp / "other.csv"))
    assert not (tmp / "other.csv").exists()
    tasks = json.loads((tmp / "tasks.json").read_text())
    assert len(tasks) == ls["counts"]["rows"] and all("row_id" in t["data"] and "text" in t["data"] for t in tasks)
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"].startswith("lakelabel ") and pred["result"][0]["value"]["choices"][0] in ("neg", "pos")
    assert '<Choice value="neg"/>' in (tmp / "tasks.xml").read_text()


def test_dev_labels_fit_and_test_metrics(spark, setup, caplog):
    cfg, rows, tmp = setup
    labeled = [{"row_id": r, "label": g} for r, g in zip(rows.id, rows.gold)]
    gold.run(spark, cfg, run_id="g", file=write_csv(tmp / "all.csv", labeled))
    with caplog.at_level(logging.INFO, logger="jobs.fit_label_model"):
        plain = pipeline.run(spark, cfg, run_id="p1").summary["metrics"]
    splits = gold.current_gold(spark, cfg).toPandas().split.value_counts()
    assert plain["gold_test_rows"] == splits["test"] and "gold_dev_rows" not in plain
    assert 0 <= plain["gold_test_accuracy"] <= 1
    # The fit's line says it, as it says the source gold column's accuracy (a drill found it in the summary only).
    assert (f"vs the gold table's {splits['test']} test labels {plain['gold_test_accuracy']:.4f} (majority vote "
            f"{plain['gold_test_mv_accuracy']:.4f})") in caplog.text
    caplog.clear()
    with_dev = make_cfg(tmp, cfg.source.path, label_model={"use_dev_labels": True})
    assert with_dev.gold.use_dev_labels and "use_dev_labels" not in with_dev.label_model.to_dict()
    with caplog.at_level(logging.WARNING, logger="jobs.fit_label_model"):
        metrics = pipeline.run(spark, with_dev, run_id="p2", force=True).summary["metrics"]
    # Fewer than 50 dev labels: the model declines them, and the run says so on stderr.
    assert f"use_dev_labels is on, but the gold dev labels of {with_dev.table_path('gold')} were not used: " in caplog.text
    assert "dev labels < 50" in caplog.text
    assert metrics["gold_dev_rows"] == splits["dev"] and metrics["gold_test_rows"] == splits["test"]
    model = json.loads((tmp / "lake" / "_lakelabel" / "runs" / "p2" / "label_model.json").read_text())
    # The dev rows reached the model (which may decline to use fewer than 50: labelmodel/README.md).
    assert f'"dev_rows": {splits["dev"]}' in json.dumps(model)


def test_suggest_writes_a_usable_module(spark, after_p1, monkeypatch):
    cfg, rows, tmp = after_p1  # pipeline run p1 done
    labeled = [{"row_id": r, "label": g, "split": "dev"} for r, g in zip(rows.id, rows.gold)]
    gold.run(spark, cfg, run_id="g", file=write_csv(tmp / "dev.csv", labeled))
    out = tmp / "mods" / "suggested_test_lfs.py"
    s = suggest.run(spark, cfg, run_id="s", max_lfs=4, out=str(out), min_precision=0.6, min_support=3)
    assert 1 <= s["counts"]["kept"] <= 4 and out.exists() and out.with_suffix(".csv").exists()
    for lf in s["lfs"]:
        assert lf["precision_lower_bound"] >= 0.6 and lf["dev_correct"] >= 3
        assert lf["precision_lower_bound"] == pytest.approx(suggest.wilson_lower_bound(lf["dev_correct"], lf["dev_covered"]))
    assert "love" in {lf["feature"] for lf in s["lfs"] if lf["label_name"] == "pos"} | {"x"} or s["lfs"]
    monkeypatch.syspath_prepend(str(tmp / "mods"))
    sys.modules.pop("suggested_test_lfs", None)
    module = importlib.import_module("suggested_test_lfs")
    assert module.LABEL_SPACE == ("neg", "pos")
    both = make_cfg(tmp, cfg.source.path, lfs={"modules": ["tests.jobs.sample_lfs", "suggested_test_lfs"]})
    result = pipeline.run(spark, both, run_id="p2").summary
    assert {lf["name"] for lf in result["lfs"]} >= {lf["name"] for lf in s["lfs"]}
    # A bar no rule can clear with these labels: nothing is kept, and the summary and log say what it takes.
    none = suggest.run(spark, cfg, run_id="s0", max_lfs=4, out=str(tmp / "mods" / "none_lfs.py"), min_precision=0.99)
    need = suggest.min_rows_to_vouch(0.99, 3)
    assert none["counts"]["kept"] == 0 == none["counts"]["candidates"] and none["lfs"] == []
    assert f"a rule needs at least {need} of the {none['counts']['dev_rows']} dev row(s)" in none["note"]
    assert "lower --min-precision" in none["note"] and (tmp / "mods" / "none_lfs.py").exists()


def test_suggest_refuses_votes_of_other_lfs_before_spark(after_p1, capsys, monkeypatch):
    """A drill: after a run with other LFs (the README loop's ``--set lfs.modules=[youtube_suggested]``), suggest
    scored its candidates against that run's votes: it left out candidates as "the same as" LFs the config does not
    have and counted conflicts with them. As for ``aggregate``: exit 2 naming the difference, no Spark, no file."""
    cfg, _, tmp = after_p1  # the votes of run p1: sample_lfs less boom and out_of_space
    other = make_cfg(tmp, cfg.source.path, lfs={"exclude": ["boom", "out_of_space", "exclaim"]})
    out = tmp / "mods" / "suggested_stale_lfs.py"
    forbid_spark(monkeypatch, "suggest started Spark with votes of other LFs")
    capsys.readouterr()
    assert cli_main(["suggest", "--config", cli_config(other, tmp / "c_stale.yaml"), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"lakelabel: error: the configured LFs differ from those of the votes table "
                          f"{cfg.table_path('votes')} v0 (no longer configured ['exclaim']); run `lakelabel apply`")
    assert not out.exists() and not out.with_suffix(".csv").exists()


def test_suggest_leaves_out_a_candidate_that_votes_as_an_existing_lf(spark, after_p1, caplog):
    """A candidate whose rows are exactly those an existing LF votes its class on is the same evidence again (the
    label model would count it twice): it is left out, named in a warning and the CSV (a TREC drill: ``who`` -> HUM
    beside the team's ``kw_who``), also when that LF votes another class on other rows. A candidate that votes on
    some of an LF's rows stays a candidate."""
    cfg, rows, tmp = after_p1
    lfs = {"modules": ["tests.jobs.sample_lfs", "tests.jobs.two_class_lfs"], "exclude": ["boom", "out_of_space"],
           "declared": [{"name": "kw_love", "kind": "keyword", "keywords": ["love"], "label": "pos"},
                        # as many votes as the candidate 'hate' -> neg has rows, on those rows, of the other class
                        {"name": "kw_hate_pos", "kind": "keyword", "keywords": ["hate"], "label": "pos"}]}  # fmt: skip
    cfg = make_cfg(tmp, cfg.source.path, lfs=lfs)
    pipeline.run(spark, cfg, run_id="p1b")
    labeled = [{"row_id": r, "label": g, "split": "dev"} for r, g in zip(rows.id, rows.gold)]
    gold.run(spark, cfg, run_id="g", file=write_csv(tmp / "dev.csv", labeled))
    out = tmp / "mods" / "suggested_same_lfs.py"
    with caplog.at_level(logging.WARNING, logger="jobs.people.suggest"):
        s = suggest.run(spark, cfg, run_id="s", max_lfs=10, out=str(out), min_precision=0.5, min_support=3)
    kept = {(lf["feature"], lf["label_name"]) for lf in s["lfs"]}
    assert ("love", "pos") not in kept and ("great stuff", "pos") in kept, kept  # a part of good_words' rows
    table = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False)
    same = table[table.same_as != ""]
    # awful_or_ok votes neg on exactly the 'awful' rows, and pos elsewhere (was not caught: its votes in all differ)
    assert set(zip(same.feature, same.label_name, same.same_as)) == {("love", "pos", "kw_love"),
                                                                      ("awful", "neg", "awful_or_ok")}, same
    assert ("hate", "neg") in set(zip(table.feature, table.label_name))  # compared row by row, and not the same
    assert s["counts"]["same_as_an_lf"] == 2
    assert "2 candidate(s) left out that vote exactly as an existing LF does" in caplog.text
    assert "'love' -> pos (kw_love)" in caplog.text and "'awful' -> neg (awful_or_ok)" in caplog.text


def test_class_ids_written_as_decimals_and_repeated_rows(caplog):
    """pandas writes a column of class ids with blanks as 0.0 / 1.0: they are the ids 0 and 1 (was "label '0.0'
    is not in the label space"). A row repeated with the same id, annotator and label counts once, and says so."""
    from jobs.people.gold import _check_duplicates, _resolve_labels

    rows = [{"row_id": f"r{i}", "label": label, "annotator": "a", "where": f"line {i + 2}"}
            for i, label in enumerate(["1.0", "0.00", "pos", "0"])]
    _resolve_labels(rows, ("neg", "pos"), "g.csv")
    assert [r["label_name"] for r in rows] == ["pos", "neg", "pos", "neg"]
    with pytest.raises(InputDataError, match=r"g.csv, line 2: label '2.0' is not in the label space \(0=neg, 1=pos\)"):
        _resolve_labels([{"row_id": "r9", "label": "2.0", "where": "line 2"}], ("neg", "pos"), "g.csv")
    # A class name written in another case says which name it would be (a drill: 'Spam' for spam said only the space)
    with pytest.raises(InputDataError, match=r"label 'Pos' is not in the label space \(0=neg, 1=pos\) \(class names "
                                             r"are matched exactly: 'Pos' would be 'pos'\); 1 row\(s\)"):
        _resolve_labels([{"row_id": "r9", "label": "Pos", "where": "line 2"}], ("neg", "pos"), "g.csv")
    with caplog.at_level(logging.INFO, logger="jobs.people.gold"):
        kept = _check_duplicates([*rows, {**rows[0], "where": "line 9"}], "g.csv")
    assert kept == rows and "1 row(s) of g.csv repeat an earlier row's id, annotator and label" in caplog.text


def test_ids_written_as_decimals_get_a_hint(spark, tmp_path):
    """A gold file whose integer ids a spreadsheet wrote as 18267.0 names the cause, not just "not in the source"."""
    src = tmp_path / "src"
    src.mkdir()
    pd.DataFrame({"id": [18267, 18268], "text": ["a", "b"]}).to_parquet(src / "part-0.parquet", index=False)
    cfg = make_cfg(tmp_path, str(src))
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, gold_column=None))
    bad = write_csv(tmp_path / "g.csv", [{"row_id": "18267.0", "label": "pos"}])
    with pytest.raises(InputDataError, match=r"ids: '18267.0'\. The source's ids are bigints and these are written as "
                                             r"decimals .*: write them without the '.0'\."):
        gold.run(spark, cfg, run_id="g", file=bad)


def test_wilson_lower_bound_values():
    assert suggest.wilson_lower_bound(0, 0) == 0.0
    assert suggest.wilson_lower_bound(10, 10) == pytest.approx(0.7225, abs=1e-3)
    assert suggest.wilson_lower_bound(5, 10) == pytest.approx(0.2366, abs=1e-3)
    for p, support in ((0.6, 3), (0.8, 3), (0.3, 3), (0.6, 10)):
        need = suggest.min_rows_to_vouch(p, support)
        assert need >= support and suggest.wilson_lower_bound(need, need) >= p
        assert need == support or suggest.wilson_lower_bound(need - 1, need - 1) < p
    assert suggest.min_rows_to_vouch(0.6, 3) == 6
    with pytest.raises(ConfigError):
        annotate.select_rows(None, None, None, strategy="nope", n=1, cardinality=2)


def test_stages_run_alone_read_the_gold_table(spark, setup):
    from jobs import aggregate, apply_lfs, fit_label_model
    from jobs.stages import finish

    def run_stage(name, cfg, *, run_id, spark=None):
        outcome = {"apply": lambda: apply_lfs.stage(spark, cfg, run_id),
                   "aggregate": lambda: aggregate.stage(spark, cfg, run_id),
                   "fit": lambda: fit_label_model.stage(cfg, run_id, None)}[name]()
        return finish(name, cfg, run_id, outcome)

    cfg, rows, tmp = setup
    labeled = [{"row_id": r, "label": g} for r, g in zip(rows.id, rows.gold)]
    gold.run(spark, cfg, run_id="g", file=write_csv(tmp / "all.csv", labeled))
    splits = gold.current_gold(spark, cfg).toPandas().split.value_counts()
    cfg = make_cfg(tmp, cfg.source.path, label_model={"use_dev_labels": True})
    run_stage("apply", cfg, run_id="st", spark=spark)
    agg = run_stage("aggregate", cfg, run_id="st", spark=spark)
    assert (agg["counts"]["gold_dev"], agg["counts"]["gold_test"]) == (splits["dev"], splits["test"])
    fit = run_stage("fit", cfg, run_id="st")
    assert fit["metrics"]["gold_dev_rows"] == splits["dev"] and fit["metrics"]["gold_test_rows"] == splits["test"]


def test_analyze_measures_on_the_gold_tables_test_split(spark, setup):
    from jobs import analyze

    cfg, rows, tmp = setup
    from dataclasses import replace

    no_column = replace(cfg, source=replace(cfg.source, gold_column=None))
    labeled = [{"row_id": r, "label": g} for r, g in zip(rows.id, rows.gold)]
    gold.run(spark, no_column, run_id="g", file=write_csv(tmp / "all.csv", labeled))
    pipeline.run(spark, no_column, run_id="p1")
    doc = analyze.analyze(spark, no_column, run_id="p1")
    current = gold.current_gold(spark, no_column).toPandas()
    test = current[current.split == "test"]
    assert 0 < len(test) < len(current)  # both splits exist; only test rows count as gold
    assert doc["gold_column"] is None and doc["gold_table_test_rows"] == len(test)
    assert doc["totals"]["gold_rows"] == len(test) and doc["lf_gold_from"] == "gold_table"
    assert {c["class"]: c["gold"] for c in doc["classes"]} == test.label_name.value_counts().to_dict()
    assert sum(lf["gold_votes"] for lf in doc["lfs"]) > 0
    assert "lm_wrong" in {b["name"] for b in doc["buckets"]}


def test_text_features_are_words_and_phrases_across_any_whitespace(spark):
    from pyspark.sql import functions as F

    cases = {
        # Two spaces, a tab, a line break or a no-break space separate a phrase's words as one space does: its
        # keyword LF matches them there (lf_library.builders.match_text).
        " Hello  world foo": ["hello", "world", "foo", "hello world", "world foo"],
        "a b c": ["a", "b", "c", "a b", "b c"],  # phrases overlap
        "ÉCOLE été, x_y 12 ab-cd": ["école", "été", "x_y", "12", "ab", "cd", "école été", "x_y 12", "12 ab"],
        "a b\tc\n d\u00a0e": ["a", "b", "c", "d", "e", "a b", "b c", "c d", "d e"],
        "don't stop don't": ["don", "t", "stop", "t stop", "stop don"],  # distinct, first seen first
        # U+02BC, a letter, is an apostrophe as keyword_lf matches it: "can" and "t" are words, "canʼt" is not
        "canʼt stop": ["can", "t", "stop", "t stop"],
        "日本語 テキスト": ["日本語", "テキスト", "日本語 テキスト"],
        # HTML character references are one non-word character, as the characters they stand for
        "don&#39;t stop &amp; go &quot;x&quot; AT&T &#x27;y": ["don", "t", "stop", "go", "x", "at", "y", "t stop"],
        "": [], None: [],
    }
    df = spark.createDataFrame([(t,) for t in cases], "text string")
    got = {r["text"]: r["f"] for r in df.select("text", suggest.text_features(F.col("text")).alias("f")).collect()}
    assert got == cases


def test_suggest_leaves_out_copies_of_the_truth_and_checks_options_before_spark(spark, tmp_path, capsys, monkeypatch):
    rows = make_rows(40)
    rows["gold_id"] = (rows.gold == "pos").astype("int64")  # the truth again, as the demo's true_label_id
    rows["ticket.age"] = np.arange(len(rows), dtype="int64")  # a numeric column with a '.' (a review, session 26)
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows))
    pipeline.run(spark, cfg, run_id="p1")
    gold.run(spark, cfg, run_id="g", file=write_csv(tmp_path / "dev.csv", [
        {"row_id": r, "label": g, "split": "dev"} for r, g in zip(rows.id, rows.gold)]))  # fmt: skip
    s = suggest.run(spark, cfg, run_id="s", max_lfs=10, out=str(tmp_path / "m" / "leak_lfs.py"))
    assert s["counts"]["candidates"] > 0
    assert not [c for c in s["lfs"] if "gold_id" in c["feature"]]
    assert "gold_id" not in (tmp_path / "m" / "leak_lfs.csv").read_text()
    assert s["left_out_columns"] == {"gold_id": "matches the gold class one to one",
                                     "ticket.age": "a '.' in its name, which an LF cannot read: rename it to use it"}
    s2 = suggest.run(spark, cfg, run_id="s2", out=str(tmp_path / "m" / "nostars_lfs.py"), exclude_columns=("stars",))
    assert not [c for c in s2["lfs"] if "stars" in c["feature"]] and s2["left_out_columns"]["stars"] == "--exclude-columns"
    with pytest.raises(ConfigError, match="--exclude-columns names 'nope', which is not a column of .*its columns are: id, text"):
        suggest.run(spark, cfg, run_id="s3", out=str(tmp_path / "m" / "x_lfs.py"), exclude_columns=("nope",))
    assert suggest.gold_copies({"a": np.array([1.5, 2.5, 1.5])}, np.array([0, 1, 0])) == []  # not whole numbers
    assert suggest.gold_copies({"a": np.array([3.0, 4.0])}, np.array([0, 1])) == []  # no value seen twice
    forbid_spark(monkeypatch, "Spark started before the options were checked")
    config = cli_config(cfg, tmp_path / "c.yaml")
    capsys.readouterr()
    for option, message in ((["--min-precision", "1.5"], "--min-precision 1.5 must be in [0, 1)"),
                            (["--max", "0"], "--max 0 must be at least 1"),
                            (["--min-support", "-1"], "--min-support -1 must be at least 1"),
                            (["--out", "foo.txt"], "--out 'foo.txt' must be a .py file"),
                            (["--out", str(tmp_path / "m.py")], "is a folder; pass a file path such as")):
        if option[-1].endswith("m.py"):
            (tmp_path / "m.py").mkdir()
        assert cli_main(["suggest", "--config", config, "-q", *option]) == 2, option
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (option, err)
    # annotate's --out: a folder, or a path under a file, fails before Spark (not after the job, exit 1)
    for out, message in ((tmp_path, f"--out {tmp_path} is a folder; pass a file path such as {tmp_path / 'to_label.csv'}"),
                         (tmp_path / "m" / "leak_lfs.py" / "x.csv", "leak_lfs.py is a file, not a folder")):
        argv = ["annotate", "--config", config, "-q", "--strategy", "stratified", "--n", "5", "--out", str(out)]
        assert cli_main(argv) == 2, out
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (out, err)
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.tmp*"))
    # a write that fails (the target turned into a folder after the check) leaves no temp file either
    (tmp_path / "late.csv").mkdir()
    with pytest.raises(IsADirectoryError):
        annotate._write_atomic(tmp_path / "late.csv", "row_id\n")
    assert not list(tmp_path.glob(".late.csv.tmp*"))


def test_a_header_with_blanks_or_capitals_is_named_as_such(tmp_path):
    """'row_id, label' (a blank after the comma) and 'ROW_ID,Label' got "has no 'label' column (its columns: row_id,
    label)", whose list hides the blank (a drill, session 29): the columns are quoted and the cause said."""
    from jobs.people.files import read_gold_file

    for header, names in (("row_id, label", "'row_id', ' label'"), ("ROW_ID,Label", "'ROW_ID', 'Label'")):
        path = tmp_path / "g.csv"
        path.write_text(f"{header}\nr001,pos\n")
        with pytest.raises(InputDataError, match=rf"g.csv has no .*column \(its columns: {names}; .* blanks or "
                                                 r"capitals, which the names must not have\); a gold file needs"):
            read_gold_file(path)
    path.write_text("id,label\nr001,pos\n")
    with pytest.raises(InputDataError, match=r"g.csv has no 'row_id' column \(its columns: id, label\); a gold file"):
        read_gold_file(path)


def test_annotate_warns_of_texts_longer_than_a_spreadsheet_cell(spark, after_p1, monkeypatch, caplog):
    """Long documents (a drill: 148 of 200 texts over 32,767 characters, one of 3.87 million): Excel cuts or splits
    such cells, which can shift the rows of a CSV saved back. The CSV says so; Label Studio's tasks do not need to."""
    import logging

    cfg, rows, tmp = after_p1
    monkeypatch.setattr(annotate, "SPREADSHEET_CELL_MAX", 8)
    with caplog.at_level(logging.WARNING, logger="jobs.people.annotate"):
        annotate.run(spark, cfg, strategy="uncertain", n=5, out=str(tmp / "long.csv"))
    texts = pd.read_csv(tmp / "long.csv")["text"]
    over = int((texts.str.len() > 8).sum())
    assert 0 < over <= 5
    assert (f"annotate: {over} of {len(texts)} texts are longer than 8 characters, the most a spreadsheet cell "
            f"holds") in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jobs.people.annotate"):
        annotate.run(spark, cfg, strategy="uncertain", n=5, out=str(tmp / "tasks.json"), format="label-studio")
    assert "spreadsheet" not in caplog.text
