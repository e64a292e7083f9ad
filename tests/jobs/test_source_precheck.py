"""A misnamed id or gold column is rejected before Spark starts, with the error Spark's check gives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from deltalake import write_deltalake

from jobs import cli
from jobs.delta_io.source import peek_columns
from jobs.delta_io.sources import load_source, precheck_source_columns
from jobs.runtime import session
from jobs.runtime.config import SourceConfig
from jobs.delta_io.errors import SourceReadError
from lf_library.errors import InputDataError

ROWS = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x y", "y", "z"], "verdict": ["pos", "neg", "pos"]})


def _delta(tmp_path) -> tuple[str, str]:
    path = tmp_path / "delta_src"
    write_deltalake(str(path), ROWS)
    write_deltalake(str(path), ROWS.assign(extra=1), mode="overwrite", schema_mode="overwrite")
    return str(path), "delta"


def _parquet(tmp_path) -> tuple[str, str]:
    path = tmp_path / "pq_src"
    for verdict, part in ROWS.groupby("verdict"):  # a partition folder holds the gold column
        (path / f"verdict={verdict}").mkdir(parents=True)
        part.drop(columns="verdict").to_parquet(path / f"verdict={verdict}" / "part-0.parquet", index=False)
    return str(path), "parquet"


def _csv(tmp_path) -> tuple[str, str]:
    path = tmp_path / "src.csv"
    ROWS.to_csv(path, index=False)
    return str(path), "csv"


def _csv_bom(tmp_path) -> tuple[str, str]:
    """Excel's "CSV UTF-8": a byte order mark before the header (a drill, session 18: the id column
    was reported missing, its name shown with the invisible mark)."""
    path = tmp_path / "src_bom.csv"
    ROWS.to_csv(path, index=False, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfid,")
    return str(path), "csv"


SAMPLE_LFS = {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]}


def _config(tmp_path, source: dict, **sections) -> str:
    """A config file with ``source`` and the sample LFs (``sections`` override or add sections)."""
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
                                      "source": source, "lfs": SAMPLE_LFS, **sections}))
    return str(config)


SOURCES = {"delta": _delta, "parquet": _parquet, "csv": _csv, "csv_bom": _csv_bom}


@pytest.mark.parametrize("kind", SOURCES)
def test_columns_read_without_spark_are_the_ones_spark_sees(spark, tmp_path, kind):
    path, fmt = SOURCES[kind](tmp_path)
    cfg = SourceConfig(path=path, format=fmt, id_column="id", gold_column="verdict")
    peeked = peek_columns(path, format="auto", options={})
    source = load_source(spark, cfg)
    assert sorted(peeked) == sorted(source.df.columns) and set(ROWS.columns) <= set(peeked)
    precheck_source_columns(cfg)  # right names: silent
    assert sorted(source.df.select("id").toPandas()["id"]) == sorted(ROWS["id"])


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("key", ["id_column", "gold_column"])
def test_misnamed_column_gives_the_same_error_before_spark(spark, tmp_path, kind, key):
    path, fmt = SOURCES[kind](tmp_path)
    cfg = SourceConfig(path=path, format=fmt, **{"id_column": "id", "gold_column": "verdict", key: "Verdikt"})
    with pytest.raises(InputDataError) as early:
        precheck_source_columns(cfg)
    with pytest.raises(InputDataError) as late:
        load_source(spark, cfg)
    assert str(early.value) == str(late.value)
    assert f"column 'Verdikt' (source.{key}) not found in " in str(early.value)


def test_delta_columns_at_the_version_read(tmp_path):
    path, _ = _delta(tmp_path)
    assert peek_columns(path, format="delta", options={"versionAsOf": "0"}) == ["id", "text", "verdict"]
    assert peek_columns(path, format="delta", options={}) == ["id", "text", "verdict", "extra"]


def test_escaped_partition_folder_is_the_column_spark_names(spark, tmp_path):
    path = tmp_path / "escaped"
    (path / "the%20gold=pos").mkdir(parents=True)  # Spark's escaping of the column "the gold"
    ROWS.drop(columns="verdict").to_parquet(path / "the%20gold=pos" / "part-0.parquet", index=False)
    cfg = SourceConfig(path=str(path), format="parquet", id_column="id", gold_column="the gold")
    assert sorted(peek_columns(str(path), format="parquet", options={})) == sorted(load_source(spark, cfg).df.columns)
    precheck_source_columns(cfg)


def test_files_are_read_only_until_the_wanted_columns_are_seen(tmp_path):
    path = tmp_path / "two"
    path.mkdir()
    ROWS.to_parquet(path / "part-0.parquet", index=False)
    ROWS.assign(extra=1).to_parquet(path / "part-1.parquet", index=False)
    assert peek_columns(str(path), format="parquet", options={}, wanted=["id", "verdict"]) == ["id", "text", "verdict"]
    assert peek_columns(str(path), format="parquet", options={}, wanted=["ID"]) == ["id", "text", "verdict", "extra"]


def test_unsure_sources_are_left_to_spark(tmp_path):
    (tmp_path / "dup.csv").write_text("id,id,text\n1,2,x\n")
    (tmp_path / "blank.csv").write_text("id,,text\n1,2,x\n")
    cases = [
        ("s3://bucket/table", "auto", {}),  # a URI: pyarrow may lack credentials
        (str(tmp_path / "dup.csv"), "csv", {}),  # Spark renames repeated header names
        (str(tmp_path / "blank.csv"), "csv", {}),  # ... and empty ones
        (str(tmp_path / "dup.csv"), "csv", {"header": "false"}),  # Spark names the columns _c0, _c1, ...
        (str(tmp_path / "missing"), "auto", {}),  # read_source words this error
    ]
    for path, fmt, options in cases:
        assert peek_columns(path, format=fmt, options=options) is None, path


def test_cli_rejects_a_misnamed_id_column_before_spark_starts(tmp_path, capsys, monkeypatch):
    path, fmt = _csv(tmp_path)
    config = _config(tmp_path, {"path": path, "format": fmt, "id_column": "ID", "gold_column": "verdict"})

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the source's columns were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    for command in ("run", "apply", "analyze", "annotate", "suggest", "train"):
        extra = ["--strategy", "uncertain", "--n", "5", "--out", str(tmp_path / "rows.csv")] if command == "annotate" else []
        assert cli.main([command, "--config", str(config), "-q", *extra]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "column 'ID' (source.id_column) not found in " in err[0], (command, err)
        assert "its columns are: id, text, verdict. Set source.id_column to one of them" in err[0]
    assert not (tmp_path / "lake").exists()


def test_cli_rejects_a_missing_source_path_before_spark_starts(tmp_path, capsys, monkeypatch):
    """A local source or evaluation path that does not exist (a wrong LAKELABEL_DATA, say): one line in
    about a second, not after Spark's start-up."""
    path, fmt = _csv(tmp_path)
    missing = tmp_path / "data" / "in.csv"

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the source path was checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    for role, source, evaluation in (("source", str(missing), path), ("evaluation", path, str(missing))):
        config = _config(tmp_path, {"path": source, "format": fmt, "id_column": "id", "gold_column": "verdict"},
                         evaluation={"path": evaluation, "format": fmt, "id_column": "id", "gold_column": "verdict"})
        assert cli.main(["run", "--config", str(config), "-q"]) == 2, role
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"lakelabel: error: {role} {missing} does not exist; expected a Delta table directory (with "
                       f"_delta_log/), a Parquet or CSV file, or a directory of them; fix {role}.path"], err
    assert not (tmp_path / "lake").exists()


def test_run_with_a_report_rejects_a_missing_slice_module_before_spark_starts(tmp_path, capsys, monkeypatch):
    """``run`` with ``report.enabled`` imports ``slices.modules`` first: a typo fails in a second, not after
    the whole pipeline has run and been rolled back."""
    path, fmt = _csv(tmp_path)
    config = _config(tmp_path, {"path": path, "format": fmt, "id_column": "id", "gold_column": "verdict"},
                     report={"enabled": True}, slices={"modules": ["tests.jobs.no_such_slices"]})

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the slice modules were imported")

    monkeypatch.setattr(session, "get_spark", no_spark)
    assert cli.main(["run", "--config", config, "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "slice module 'tests.jobs.no_such_slices' (slices.modules) failed to import" in err[0], err
    assert not (tmp_path / "lake").exists()


def test_cli_rejects_a_misnamed_evaluation_gold_column_before_spark_starts(spark, tmp_path, capsys, monkeypatch):
    """The held-out ``evaluation`` source of the commands that score on it: the error its load gives, early."""
    path, fmt = _csv(tmp_path)
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    held, _ = _csv(held_out)
    ev = {"path": held, "format": fmt, "id_column": "id", "gold_column": "VERDICT"}
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
        "source": {"path": path, "format": fmt, "id_column": "id", "gold_column": "verdict"}, "evaluation": ev,
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
    }))
    with pytest.raises(InputDataError) as late:
        load_source(spark, SourceConfig(**ev), role="evaluation")

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the evaluation source's columns were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    for command in ("run", "analyze", "report", "train"):
        assert cli.main([command, "--config", str(config), "-q"]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"lakelabel: error: {late.value}"], (command, err)  # the very line Spark's check gives
        assert "column 'VERDICT' (evaluation.gold_column) not found in " in err[0]
    assert not (tmp_path / "lake").exists()


def test_cli_warns_when_the_evaluation_source_has_no_gold_column(tmp_path, capsys, monkeypatch):
    """An ``evaluation:`` source without a gold column is not scored: said once, before Spark starts."""
    path, fmt = _csv(tmp_path)
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    held, _ = _csv(held_out)
    base = {
        "lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
        "source": {"path": path, "format": fmt, "id_column": "id"},
        "evaluation": {"path": held, "format": fmt, "id_column": "id"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
    }

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(session, "get_spark", stop)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(base))
    for command in ("run", "analyze", "report", "train"):
        assert cli.main([command, "--config", str(config), "-q"]) == 1  # Spark's start is where it stops
        err = capsys.readouterr().err
        assert "lakelabel: error: Stop" in err
        assert f"evaluation: {held} is configured but has no gold column, so lakelabel {command} does not score" in err
        assert "set evaluation.gold_column to its column of true labels" in err
    config.write_text(yaml.safe_dump({**base, "evaluation": {**base["evaluation"], "gold_column": "verdict"}}))
    assert cli.main(["run", "--config", str(config), "-q"]) == 1
    assert "no gold column" not in capsys.readouterr().err
    config.write_text(yaml.safe_dump(base))  # commands that never read the evaluation source say nothing of it
    assert cli.main(["apply", "--config", str(config), "-q"]) == 1
    assert "evaluation" not in capsys.readouterr().err


def test_lf_reading_a_missing_column_is_named_before_spark_starts(spark, tmp_path, capsys, monkeypatch):
    """An LF whose fields name no source column: the same one line before Spark starts as after, naming the LF."""
    from jobs.apply_lfs import build_registry, text_columns
    from jobs.delta_io.sources import check_source
    from jobs.runtime.config_loading import load_config
    from lf_library.apply import required_columns

    path, fmt = _parquet(tmp_path)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
        "source": {"path": path, "format": fmt, "id_column": "id", "gold_column": "verdict"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"], "declared": [
            {"name": "kw_body", "kind": "keyword", "keywords": ["x"], "label": "pos", "field": "body"},
            {"name": "re_body", "kind": "regex", "pattern": "y", "label": "neg", "field": "body"},
            {"name": "kw_title", "kind": "keyword", "keywords": ["z"], "label": "pos", "field": "title"}]},
    }))
    cfg = load_config(str(config))
    registry = build_registry(cfg)
    with pytest.raises(InputDataError) as late:
        check_source(load_source(spark, cfg.source), text_columns=text_columns(registry),
                     required_columns=required_columns(registry.lfs), lfs=registry.lfs)
    assert "LF 'kw_body', 're_body' read(s) column 'body'; LF 'kw_title' read(s) column 'title', not found in " in str(
        late.value)
    assert str(late.value).endswith("its columns are: id, text, verdict. Fix the LF's field (keyword, regex and "
                                    "lexicon LFs read column 'text' when it is left out) or point source.path at a "
                                    "table that has the column")

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the LFs' columns were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    for command in ("run", "apply"):
        assert cli.main([command, "--config", str(config), "-q"]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"lakelabel: error: {late.value}"], (command, err)  # the very line Spark's check gives
    assert not (tmp_path / "lake").exists()


def test_missing_column_fix_names_the_key_each_lf_is_written_with():
    from jobs.delta_io.sources import missing_lf_columns

    readers = {"body": ["kw_body", "clf"]}
    err = str(missing_lf_columns(readers, ["id", "text"], "T", {"kw_body": "field", "clf": "fields"}))
    assert err.endswith("Fix the LF's field or fields (keyword, regex and lexicon LFs read column 'text' when it is "
                        "left out) or point source.path at a table that has the column")
    assert "Fix the LF's fields or point" in str(missing_lf_columns({"body": ["clf"]}, ["id"], "T", {"clf": "fields"}))


def test_sql_lf_on_a_missing_column_is_one_line_naming_the_lf(spark, tmp_path, capfd):
    """Spark's analysis error, worded as one line naming the SQL LF at fault (not every SQL LF), and
    no JSON record of it from pyspark's query-context logger on stderr (only --verbose shows that)."""
    path, fmt = _parquet(tmp_path)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
        "source": {"path": path, "format": fmt, "id_column": "id", "gold_column": "verdict"},
        "lfs": {"label_space": ["neg", "pos"], "declared": [
            {"name": "sql_ok", "kind": "sql", "condition": "length(text) > 2", "label": "pos"},
            {"name": "sql_bad", "kind": "sql", "condition": "nosuch > 1", "label": "pos"},
            {"name": "kw", "kind": "keyword", "keywords": ["x"], "label": "pos", "field": "text"}]},
    }))
    capfd.readouterr()
    assert cli.main(["apply", "--config", str(config), "-q"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("lakelabel: error: SQL LF 'sql_bad' does not compile against the source: "
                             "[UNRESOLVED_COLUMN.WITH_SUGGESTION]"), err
    assert "`nosuch` cannot be resolved" in err[0] and err[0].endswith("; fix the LF's condition"), err
    assert not (tmp_path / "lake" / "votes").exists()
    # a syntax error: Spark's message starts with a blank line, which gave an empty reason (a drill, session 18)
    config.write_text(config.read_text().replace("nosuch > 1", "length(text) = = 2"))
    assert cli.main(["apply", "--config", str(config), "-q"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lakelabel: error: SQL LF 'sql_bad' does not compile against the "
                                               "source: [PARSE_SYNTAX_ERROR] Syntax error at or near "), err


def test_class_balance_of_the_wrong_length_fails_before_spark(tmp_path, capsys, monkeypatch):
    path, fmt = _csv(tmp_path)
    config = _config(tmp_path, {"path": path, "format": fmt, "id_column": "id", "gold_column": "verdict"},
                     label_model={"class_balance": [0.2, 0.3, 0.5]})

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the label model's settings were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    assert cli.main(["run", "--config", str(config), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lakelabel: error: label_model: class_balance has 3 entries"), err
    assert not (tmp_path / "lake").exists()


def _csv_folder(tmp_path) -> str:
    """Two CSVs and what else a shared data folder holds: a README, Spark's marker and a hidden file
    (a drill: a README.md beside the CSVs was read as CSV rows)."""
    path = tmp_path / "csv_folder"
    path.mkdir()
    ROWS.iloc[:2].to_csv(path / "part-a.csv", index=False)
    ROWS.iloc[2:].to_csv(path / "b.csv", index=False)
    (path / "README.md").write_text('# About, "these" files\nThey hold, three, comments\n')
    (path / "_SUCCESS").write_text("")
    (path / ".b.csv.crc").write_text("")
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "auto"])
def test_cli_refuses_a_folder_with_files_not_of_its_format_before_spark_starts(tmp_path, capsys, monkeypatch, fmt):
    folder = _csv_folder(tmp_path)

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the folder's files were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    for role, source, evaluation in (("source", folder, _csv(tmp_path)[0]), ("evaluation", _csv(tmp_path)[0], folder)):
        config = _config(tmp_path, {"path": source, "format": fmt, "id_column": "id", "gold_column": "verdict"},
                         evaluation={"path": evaluation, "format": fmt, "id_column": "id", "gold_column": "verdict"})
        assert cli.main(["run", "--config", str(config), "-q"]) == 2, role
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"lakelabel: error: {role} folder {folder} holds 1 file(s) that are not CSV by their name, "
                       f"which Spark would read as CSV rows: README.md; set {role}.options.pathGlobFilter: '*.csv' "
                       f"(Spark then reads only the files it matches) or move them out of the folder"], err
    assert not (tmp_path / "lake").exists()


def test_path_glob_filter_reads_only_the_matching_files_and_fingerprints_them(spark, tmp_path):
    from jobs.delta_io import SourceReadError

    folder = _csv_folder(tmp_path)
    cfg = SourceConfig(path=folder, format="csv", id_column="id", gold_column="verdict")
    with pytest.raises(SourceReadError, match=r"holds 1 file\(s\) that are not CSV by their name.*: README\.md; "):
        load_source(spark, cfg)  # Spark's side refuses too (a notebook calls load_source without the precheck)
    assert peek_columns(folder, format="csv", options={}) is None  # not README.md's first line
    cfg = SourceConfig(path=folder, format="csv", id_column="id", gold_column="verdict",
                       options={"pathGlobFilter": "*.csv"})
    precheck_source_columns(cfg)
    source = load_source(spark, cfg)
    assert sorted(r["id"] for r in source.df.select("id").collect()) == sorted(ROWS["id"])
    assert peek_columns(folder, format="csv", options=cfg.options) == source.df.columns == list(ROWS.columns)
    (tmp_path / "csv_folder" / "README.md").write_text("edited, the README only\n")
    assert load_source(spark, cfg).info.fingerprint == source.info.fingerprint  # files Spark does not read
    ROWS.to_csv(tmp_path / "csv_folder" / "b.csv", index=False)
    assert load_source(spark, cfg).info.fingerprint != source.info.fingerprint
    # Hadoop's glob syntax, as Spark matches it: alternatives and a negated class.
    alternatives = SourceConfig(path=folder, format="csv", id_column="id", options={"pathGlobFilter": "{b,part-?}.csv"})
    assert load_source(spark, alternatives).df.count() == len(ROWS) + 2
    with pytest.raises(SourceReadError, match=r"has no data files matching pathGlobFilter '\*\.tsv'"):
        load_source(spark, SourceConfig(path=folder, format="csv", id_column="id", options={"pathGlobFilter": "*.tsv"}))


def test_compressed_csv_and_spark_part_files_are_csv(tmp_path):
    """Names say what a file holds only when they have an extension of another kind: Spark's part files,
    compressed CSV, delimited .txt exports and extensionless files (Hive's 000000_0, Redshift's
    0000_part_00) are data; empty files (Spark skips them) are not looked at."""
    from jobs.delta_io.sources import foreign_files_precheck

    path = tmp_path / "written"
    path.mkdir()
    for name in ("part-00000-1f2e-c000.csv", "part-00001-1f2e-c000.csv.gz", "more.CSV.bz2", "export.txt",
                 "000000_0", "0000_part_00"):
        (path / name).write_text("id,text\n")
    for name in ("_SUCCESS", "logs_$folder$", "empty.json"):
        (path / name).write_text("")
    for fmt in ("auto", "csv"):
        assert foreign_files_precheck(str(path), SourceConfig(path=str(path), format=fmt), "source") is None
    (path / "README.md").write_text("# About\n")
    error = foreign_files_precheck(str(path), SourceConfig(path=str(path), format="auto"), "source")
    assert error and error.endswith(": README.md; move them out of the folder")  # no filter keeps 000000_0
    for name in ("000000_0", "0000_part_00"):
        (path / name).unlink()
    error = foreign_files_precheck(str(path), SourceConfig(path=str(path), format="auto"), "source")
    assert error and (": README.md; set source.options.pathGlobFilter: '*{.CSV.bz2,.csv,.csv.gz,.txt}'") in error
    parquet = tmp_path / "pq"
    parquet.mkdir()
    pd.DataFrame({"id": ["a"]}).to_parquet(parquet / "df.parquet.gzip", compression="gzip")
    pd.DataFrame({"id": ["b"]}).to_parquet(parquet / "part-00000")
    assert foreign_files_precheck(str(parquet), SourceConfig(path=str(parquet), format="auto"), "source") is None
    (parquet / "notes.txt").write_text("not parquet\n")
    error = foreign_files_precheck(str(parquet), SourceConfig(path=str(parquet), format="parquet"), "source")
    assert error and error.endswith("holds 1 file(s) that are not Parquet by their name, which Spark would read as "
                                    "Parquet rows: notes.txt; move them out of the folder")


def test_cli_refuses_a_glob_path_with_the_filter_fix(tmp_path, capsys):
    folder = _csv_folder(tmp_path)
    for path, fix in ((f"{folder}/*.csv", f"set source.path: {folder} and source.options.pathGlobFilter: '*.csv' "
                                          f"(Spark then reads only the files it matches)"),
                      (f"{tmp_path}/*/b.csv", "list the files or folders in source.path instead (a YAML list)")):
        config = _config(tmp_path, {"path": path, "format": "csv", "id_column": "id"})
        assert cli.main(["run", "--config", str(config), "-q"]) == 2, path
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"lakelabel: error: source {path} is a glob pattern, which lakelabel does not expand; {fix}"]


def test_a_non_csv_file_spark_fails_on_gets_no_mode_hint(spark, tmp_path):
    """A file a pathGlobFilter lets in (or a source path naming it) that is no CSV: PERMISSIVE or
    DROPMALFORMED would label its lines, so the fix is to leave it out. A CSV file keeps the mode hint."""
    from dataclasses import replace

    from jobs.delta_io.sources import raise_bad_file

    folder = tmp_path / "with_notes"
    folder.mkdir()
    ROWS.to_csv(folder / "a.csv", index=False)
    (folder / "notes.md").write_text("# About these files\n")
    source = load_source(spark, SourceConfig(path=str(folder), format="csv", id_column="id",
                                             options={"pathGlobFilter": "*", "multiLine": "false"}))
    assert sorted(source.df.inputFiles()) == [f"file://{folder}/a.csv", f"file://{folder}/notes.md"]

    def error(file: str) -> str:  # Spark's FAILFAST error names the file
        spark_error = RuntimeError(f"[MALFORMED_RECORD_IN_PARSING.WITHOUT_SUGGESTION] Malformed records are "
                                   f"detected in record parsing: file:{folder}/{file}")
        with pytest.raises(InputDataError) as err:
            raise_bad_file(source, spark_error)
        return str(err.value)

    message = error("notes.md")
    assert message.startswith(f"source file {folder}/notes.md is not CSV by its name and Spark cannot read it as "
                              f"CSV ([MALFORMED_RECORD_IN_PARSING"), message
    assert "DROPMALFORMED" not in message and "PERMISSIVE" not in message
    assert message.endswith("move it out of the folder, or set source.options.pathGlobFilter to match only the "
                            "CSV files (e.g. '*.csv')")
    assert error("a.csv").endswith("fix the file, or set source.options.mode: PERMISSIVE or DROPMALFORMED")
    source = replace(source, role="evaluation")  # the evaluation source's keys
    assert error("notes.md").startswith(f"evaluation file {folder}/notes.md is not CSV")
    assert "set evaluation.options.pathGlobFilter" in error("notes.md")


def test_subfolders_spark_does_not_read_are_named_with_recursive_file_lookup(spark, tmp_path, caplog):
    """Spark reads a folder's own files and its partition folders (key=value), not other subfolders unless
    recursiveFileLookup is set: a drill's monthly subfolders were counted as files to refuse, and the
    suggested filter then failed with UNABLE_TO_INFER_SCHEMA. Those files are now left out of the checks and
    the fingerprint, with a warning naming the option; a folder holding files only there is refused with it."""
    import logging

    from jobs.delta_io import SourceReadError

    folder = tmp_path / "reviews"
    (folder / "2026").mkdir(parents=True)
    (folder / "README.md").write_text("# Reviews\n")
    ROWS.iloc[:2].to_csv(folder / "2026" / "2026-11.csv", index=False)
    ROWS.iloc[2:].to_csv(folder / "2026" / "2026-12.csv", index=False)
    (folder / "2026" / "NOTES.md").write_text("notes\n")
    only_sub = SourceConfig(path=str(folder), format="csv", id_column="id", options={"pathGlobFilter": "*.csv"})
    with pytest.raises(SourceReadError, match=r"has no data files matching pathGlobFilter '\*\.csv' in the folder "
                                              r"itself, and Spark does not read its subfolders' 2 file\(s\) \(e\.g\. "
                                              r"2026/2026-11\.csv\); set source\.options\.recursiveFileLookup: 'true'"):
        load_source(spark, only_sub)
    recursive = SourceConfig(path=str(folder), format="csv", id_column="id",
                             options={"pathGlobFilter": "*.csv", "recursiveFileLookup": "true"})
    assert sorted(r["id"] for r in load_source(spark, recursive).df.collect()) == sorted(ROWS["id"])
    # A file in the folder itself and one in a plain subfolder: Spark reads the first only, and says so.
    ROWS.iloc[:2].to_csv(folder / "top.csv", index=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jobs.delta_io.source"):
        source = load_source(spark, only_sub)
    assert sorted(r["id"] for r in source.df.collect()) == sorted(ROWS["id"].iloc[:2])
    assert ("Spark does not read the 2 file(s) in its subfolders (e.g. 2026/2026-11.csv), which are not partition "
            "folders (key=value); set source.options.recursiveFileLookup: 'true'") in caplog.text
    (folder / "2026" / "2026-12.csv").write_text("id,text\nx,edited where Spark does not read\n")
    assert load_source(spark, only_sub).info.fingerprint == source.info.fingerprint


def test_which_files_spark_reads_and_what_is_a_glob():
    """What Spark 4.1 read in a probe (README "What a folder source reads"): a folder's own files, files under
    a partition folder at any depth (dt=1/run_1/a.csv is partition dt), not those of plain subfolders; a
    path with brackets is a name, not a glob; a glob of folders gets the list fix, not a file-name filter."""
    from jobs.delta_io.source import _spark_lists, missing_source

    assert [_spark_lists(rel, {}) for rel in ("a.csv", "dt=1/a.csv", "dt=1/run_1/a.csv", "sub/k=1/b.csv",
                                              "sub/b.csv", "2026/11/b.csv")] == [True] * 4 + [False] * 2
    assert _spark_lists("2026/11/b.csv", {"recursiveFileLookup": "true"})
    assert missing_source("/data/reports [2024]/x.csv", "/data/reports [2024]/x.csv").startswith(
        "source /data/reports [2024]/x.csv does not exist; expected ")
    assert missing_source("/data/reviews/2026-*", "/data/reviews/2026-*").endswith(
        "is a glob pattern, which lakelabel does not expand; list the files or folders in source.path instead "
        "(a YAML list)")
    assert "source.options.pathGlobFilter: '*.{csv,tsv}'" in missing_source("/d/*.{csv,tsv}", "/d/*.{csv,tsv}")


def test_a_dotted_id_or_lf_column_is_refused_before_spark_starts(tmp_path, capsys, monkeypatch):
    """Spark reads ``a.b`` as field b of a struct column a: a source id or LF column named so ended the run with
    exit 1 and Spark's UNRESOLVED_COLUMN (a drill, session 26). Now one line, before Spark starts."""
    path = tmp_path / "dotted"
    path.mkdir()
    ROWS.rename(columns={"id": "ticket.id", "text": "body.text"}).assign(text="x").to_parquet(
        path / "part-0.parquet", index=False)

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the source's columns were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    config = _config(tmp_path, {"path": str(path), "format": "parquet", "id_column": "ticket.id"})
    assert cli.main(["run", "--config", config, "-q"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"lakelabel: error: column 'ticket.id' (source.id_column) of file://{path} has a '.' in its name, which Spark "
        "reads as a field of a struct column, so lakelabel cannot read it; rename the column in the source (a Delta "
        "table: write a copy with the column renamed)"]
    (tmp_path / "id.csv").write_text("id,body.text\nr1,great\n")
    config = _config(tmp_path, {"path": str(tmp_path / "id.csv"), "format": "csv", "id_column": "id"},
                     lfs={"label_space": ["neg", "pos"], "declared": [
                         {"name": "kw", "kind": "keyword", "keywords": ["great"], "label": "pos", "field": "body.text"}]})
    assert cli.main(["run", "--config", config, "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"lakelabel: error: LF 'kw' read(s) column 'body.text' of file://{tmp_path}/id.csv; the column has a '.' in its "
        "name"), err
    assert not (tmp_path / "lake").exists()


def test_a_data_file_of_a_delta_table_is_refused_before_spark_starts(tmp_path):
    """A Parquet file of a Delta table named as the source was read as plain Parquet, exit 0, though the table may
    have removed it or changed its rows since (a drill, session 26)."""
    from jobs.delta_io.sources import precheck_source_path

    table = tmp_path / "tickets"
    write_deltalake(str(table), ROWS, partition_by=["verdict"])
    file = next(table.rglob("*.parquet"))
    assert file.parent.name.startswith("verdict=")
    with pytest.raises(SourceReadError) as err:
        precheck_source_path(SourceConfig(path=str(file), format="auto", id_column="id"))
    assert str(err.value) == (f"source {file} is a data file of the Delta table {table}, which may have removed it or "
                              f"changed its rows since; set source.path: {table} (format delta or auto; "
                              f"source.options.versionAsOf reads an earlier version)")
    (table / "notes.csv").write_text("id,text\n1,x\n")  # not a data file of the table's kind
    precheck_source_path(SourceConfig(path=str(table / "notes.csv"), format="csv", id_column="id"))
    # The table's log, or a commit file in it: Spark's long message, or the log's actions read as rows (session 26).
    log = table / "_delta_log"
    for path, what in ((log, "the"), (log / "00000000000000000000.json", "a file of the")):
        with pytest.raises(SourceReadError) as err:
            precheck_source_path(SourceConfig(path=str(path), format="auto", id_column="id"))
        assert str(err.value) == (f"source {path} is {what} Delta log of the table {table}, not a table; set "
                                  f"source.path: {table} (format delta or auto)")
    # A symlink to the log, a URI (no I/O needed), and the read itself (what Spark-side callers reach).
    (tmp_path / "log_link").symlink_to(log)
    from jobs.delta_io.source import delta_file_error, read_source

    assert delta_file_error(str(tmp_path / "log_link")).startswith(f"source {tmp_path / 'log_link'} is the Delta log "
                                                                   f"of the table {table}, not a table")
    assert delta_file_error("s3://bucket/tickets/_delta_log/00000000000000000001.checkpoint.parquet", "table",
                            "its table=").endswith("; set its table=s3://bucket/tickets (format delta or auto)")
    assert delta_file_error(str(tmp_path / "tickets_delta_log")) is None
    with pytest.raises(SourceReadError, match=r"is the Delta log of the table"):
        read_source(None, str(log), format="auto", options=None, io=None)


def test_a_zero_byte_csv_says_it_has_no_columns(spark, tmp_path):
    """A zero-byte CSV file has no header: the line said "its columns are: . Set source.id_column to one of them"
    (a drill, session 26)."""
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputDataError) as err:
        load_source(spark, SourceConfig(path=str(tmp_path / "empty.csv"), format="csv", id_column="id"))
    assert str(err.value) == (f"column 'id' (source.id_column) not found in file://{tmp_path}/empty.csv, which has no "
                              f"columns (an empty file?); fix or replace the source")


def test_files_whose_names_all_say_the_other_format_are_refused_naming_the_format(tmp_path, capsys):
    """CSV files read as Parquet (a pathGlobFilter had turned the name check off, or one file) were exit 2 with a
    page of Spark's Java error; now one line naming the format key, before Spark starts (a drill, session 29)."""
    from jobs import cli
    from jobs.delta_io.sources import foreign_files_precheck

    folder = _csv_folder(tmp_path)
    single = next(p for p in sorted(Path(folder).iterdir()) if p.suffix == ".csv")
    for path, options, says in ((folder, {"pathGlobFilter": "*.csv"}, f"source {folder} holds CSV files by their names"),
                                (str(single), {}, f"source {single} is CSV by its name")):
        error = foreign_files_precheck(path, SourceConfig(path=path, format="parquet", options=options), "source")
        assert error and error.startswith(says) and error.endswith(
            ", but source.format is parquet; set source.format: csv (or auto)"), error
        for fmt in ("csv", "auto"):
            assert foreign_files_precheck(path, SourceConfig(path=path, format=fmt, options=options), "source") is None
    # `auto` takes only .csv/.tsv names for CSV: a .txt file was read as Parquet ("Parquet magic bytes not found");
    # the fix names the format to set, and "(or auto)" only where auto would read them so (two reviews).
    txt = tmp_path / "data.txt"
    txt.write_text("id,text\n1,a\n")
    assert foreign_files_precheck(str(txt), SourceConfig(path=str(txt), format="auto"), "source") == (
        f"source {txt} is CSV by its name, which format auto reads as Parquet (it takes only .csv and .tsv names for "
        f"CSV); set source.format: csv")
    assert foreign_files_precheck(str(txt), SourceConfig(path=str(txt), format="parquet"), "source").endswith(
        "but source.format is parquet; set source.format: csv")
    assert foreign_files_precheck(str(txt), SourceConfig(path=str(txt), format="csv"), "source") is None
    assert foreign_files_precheck(str(single), SourceConfig(path=str(single), format="parquet"), "table") is None
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"), "lfs": {"modules": ["tests.jobs.sample_lfs"]},
                                      "source": {"path": str(single), "format": "parquet", "id_column": "id"}}))
    assert cli.main(["run", "--config", str(config), "-q"]) == 2
    assert capsys.readouterr().err.strip().endswith("but source.format is parquet; set source.format: csv (or auto)")
