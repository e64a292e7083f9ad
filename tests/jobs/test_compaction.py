"""Compaction of the votes tables after a run (jobs.compaction): real runs through the command line.

One module fixture applies and runs on one lakehouse, rows added to the source before each: two applies with
compaction off (the table already holds enough small files after the second), a run that compacts
(``--set tables.compact_min_files=1``) and an incremental run after it.
"""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from deltalake import DeltaTable, write_deltalake

from jobs import apply_lfs, cli, compaction, delta_io, incremental, incremental_masks, pipeline
from jobs.delta_io.sources import load_source
from jobs.runtime.config_loading import load_config
from lf_library.errors import ConfigError
from tests.jobs.test_pipeline import make_rows

pytestmark = pytest.mark.spark

OFF, LOW = "tables.compact_min_files=false", "tables.compact_min_files=1"


def _small_files(path: str) -> int:
    return sum(1 for a in delta_io.LocalDeltaIO().snapshot_actions(path) if a["size_bytes"] < compaction.TARGET_BYTES)


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compaction")
    src = str(tmp / "src")
    rows = make_rows(60).astype({"stars": "float64"})
    config = tmp / "pipeline.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp / "lake"),
        "source": {"path": src, "format": "delta", "id_column": "id", "gold_column": "gold"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
        "mlflow": {"enabled": False},
    }))
    cfg = load_config(config)
    votes = cfg.table_path("votes")
    out: dict = {"config": str(config), "cfg": cfg, "votes": votes, "small": {}}

    def run(command: str, run_id: str, last: int, *argv: str) -> None:
        # A Delta source of one file, overwritten with the new rows (found by Delta's history): a full apply of it is
        # one pass of two tasks (local[2]), and verify reads the source as each run read it.
        write_deltalake(src, rows.iloc[:last], mode="overwrite")
        summary = tmp / f"{run_id}.json"
        code = cli.main([command, "--config", str(config), "--run-id", run_id, "--summary-json", str(summary), *argv])
        assert code == 0
        out[run_id] = json.loads(summary.read_text())
        out["small"][run_id] = _small_files(votes)

    run("apply", "a1", 30, "--set", OFF)
    run("apply", "a2", 50, "--set", OFF)
    run("run", "r3", 54, "--set", LOW)
    # r4: one row of the compacted files edited (its votes removed from a compacted file) and six appended
    rows.loc[rows["id"] == "r010", "text"] = "changed after the compaction!!!"
    run("run", "r4", 60, "--set", LOW)
    out["history"] = DeltaTable(votes).history()
    return out


def test_a_run_compacts_the_votes_once_they_hold_many_small_files(runs, spark):
    r3, votes = runs["r3"], runs["votes"]
    ops = {int(h["version"]): h["operation"] for h in runs["history"]}
    # Compaction off: none, though the table held as many small files after a2 as a compaction needs.
    full_files = 2 * len(runs["a1"]["lfs"])  # local[2]: a full apply writes a file per LF and task
    assert compaction.should_compact(runs["small"]["a2"], full_files, 1)
    assert "compaction" not in runs["a2"]
    assert "OPTIMIZE" not in [ops[v] for v in ops if v <= r3["tables"]["votes"]["version"]]
    [done] = [c for c in r3["compaction"] if c["table"] == votes]
    built_from = r3["tables"]["votes"]["version"]  # the version the labels name, as before the compaction
    assert done["version_before"] == built_from and done["version"] == built_from + 1
    assert ops[done["version"]] == "OPTIMIZE"
    timings = r3["timings_seconds"]  # the run's total is apply to write; the compaction's time comes after it
    assert timings["compaction"] > 0 and r3["seconds"] >= timings["total"] + timings["compaction"]
    assert done["files_added"] < done["files_removed"] and done["live_after"] < done["live_before"]
    assert len(delta_io.LocalDeltaIO().snapshot_files(votes, version=done["version"])) == done["live_after"]
    labels = delta_io.read_table(spark, runs["cfg"].table_path("labels"), version=r3["tables"]["labels"]["version"])
    assert {r.votes_version for r in labels.select("votes_version").distinct().collect()} == {built_from}
    assert pipeline.done_line(r3).endswith(
        f"votes v{built_from}; compacted votes v{built_from} -> v{built_from + 1} "
        f"({done['files_removed']} files into {done['files_added']})")


def test_the_run_after_a_compaction_stays_incremental_with_the_votes_of_a_full_apply(runs, spark):
    r4 = runs["r4"]
    assert r4["apply"]["row_changes"]["reapplied"] == 7 and r4["apply"]["applied_rows"] == 7
    assert r4["tables"]["votes"]["version"] == runs["r3"]["compaction"][0]["version"] + 1
    # The votes the incremental runs kept, partly in compacted files, are those of every LF on every row.
    cfg = runs["cfg"]
    source = load_source(spark, cfg.source)
    full = apply_lfs.compute_votes(source, apply_lfs.build_registry(cfg), batch_size=100)
    columns = ["row_id", "lf_name", "lf_version", "vote", "error"]
    stored = delta_io.read_table(spark, runs["votes"], version=r4["tables"]["votes"]["version"])
    assert sorted(stored.select(*columns).collect()) == sorted(full.select(*columns).collect())


def test_verify_explain_and_diff_of_the_compacting_run(runs, capsys):
    """r3's labels name the votes version its compaction replaced, whose files they read; r4's the compacted files."""
    config = runs["config"]
    assert cli.main(["verify", "--config", config, "--run-id", "r3", "-q"]) == 0
    assert cli.main(["explain", "--config", config, "--run-id", "r3", "--row-id", "r031", "-q"]) == 0
    assert cli.main(["diff", "--config", config, "--from", "r3", "--to", "r4", "-q"]) == 0
    capsys.readouterr()


def test_compact_min_files_must_be_a_count_or_false(tmp_path, capsys):
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"), "source": {"path": str(tmp_path)},
                                      "lfs": {"modules": ["tests.jobs.sample_lfs"]}}))
    assert load_config(config).tables.compact_min_files == 50
    assert load_config(config, overrides=["tables.compact_min_files=false"]).tables.compact_min_files == 0
    with pytest.raises(ConfigError, match=r"tables.compact_min_files = -3 must be >= 0 .*0 or false: never compact"):
        load_config(config, overrides=["tables.compact_min_files=-3"])
    code = cli.main(["run", "--config", str(config), "--set", "tables.compact_min_files=many", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "tables.compact_min_files must be an integer, got 'many'" in err, err


def test_a_failed_compaction_is_a_warning_and_the_native_path_never_compacts(tmp_path, monkeypatch, caplog):
    """The run's labels are written when it compacts: a compaction that fails warns, naming the table and the
    command that compacts it by hand, and the run goes on to succeed. On the native path the platform compacts."""
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"), "source": {"path": str(tmp_path)},
                                      "lfs": {"modules": ["tests.jobs.sample_lfs"]}}))
    cfg = load_config(config)
    monkeypatch.setattr(incremental_masks, "full_apply_files", lambda df: 2)

    def fail(io, path, **kwargs):
        raise OSError(f"No space left on device: {path}")

    monkeypatch.setattr(compaction, "compact_table", fail)
    with caplog.at_level(logging.WARNING, logger="jobs.compaction"):
        assert compaction.compact_vote_tables(cfg, delta_io.LocalDeltaIO(), None) == []
    votes = cfg.table_path("votes")
    assert (f"compaction: could not compact {votes} (OSError: No space left on device: {votes}); the run's tables are "
            f"written and valid. Compact it between runs: python -c \"from deltalake import DeltaTable; "
            f"DeltaTable('{votes}').optimize.compact()\"") in caplog.text
    assert compaction.compact_vote_tables(cfg, delta_io.NativeDeltaIO.__new__(delta_io.NativeDeltaIO), None) == []


@pytest.mark.parametrize("after_the_check, overwrite", [(False, False), (True, False), (False, True)])
def test_a_compaction_that_commits_while_a_write_removes_files_undoes_the_write(spark, tmp_path, monkeypatch,
                                                                                after_the_check, overwrite):
    """A review: another run's compaction committed after this run's votes write read the table and before its
    commit, which removes vote files by name (or all of them: a full apply's overwrite); delta-rs accepted both,
    and the rows of the files the write removed stayed in the compacted file beside their new votes (22
    duplicates, exit 0). Now the write fails as a lost race (exit 3, a retry reads the table anew): before its
    commit, or, when the compaction came after the check that precedes it, with its commit undone."""
    from jobs.delta_io import DeltaWriteError, LocalDeltaIO
    from jobs.runtime import exits
    from tests.jobs.test_delta import frame

    path, io, ddl = str(tmp_path / "votes"), LocalDeltaIO(), "row_id string, vote int"
    for i in range(3):  # three small files, one row each
        io.write_table(frame(spark, [(f"r{i}", 0)], ddl), path, mode="append")
    [victim] = [a["path"] for a in io.snapshot_actions(path) if _row_ids(path, a["path"]) == ["r0"]]
    before = sorted(DeltaTable(path).to_pyarrow_table().to_pylist(), key=str)

    def compact(*args):  # the other run's compaction, committed now
        DeltaTable(path).optimize.compact()

    if after_the_check:  # between the check and the commit: in the remove actions' making
        removes = LocalDeltaIO._removes
        monkeypatch.setattr(LocalDeltaIO, "_removes", staticmethod(lambda dt, paths: compact() or removes(dt, paths)))
    how = {"mode": "overwrite"} if overwrite else {"mode": "append", "remove_files": [victim]}
    with pytest.raises(DeltaWriteError, match="a concurrent transaction committed to Delta table") as raised:
        io.write_table(frame(spark, [("r0", 1)], ddl), path, validate=None if after_the_check else compact, **how)
    assert exits._outcome(raised.value, False)[1] == exits.EXIT_TRANSIENT
    assert sorted(DeltaTable(path).to_pyarrow_table().to_pylist(), key=str) == before  # no row twice, none lost
    ops = [h["operation"] for h in DeltaTable(path).history()]
    assert ops[:3] == (["RESTORE", "WRITE", "OPTIMIZE"] if after_the_check else ["OPTIMIZE", "WRITE", "WRITE"]), ops


def test_an_append_planned_before_another_writers_append_fails_as_a_lost_race(spark, tmp_path):
    """A review: two overlapping runs each committed the votes of the source's new rows (an append, no file
    removed), which delta-rs accepts, so every new row had its votes twice, exit 0. The later commit now fails as a
    lost race (exit 3) and commits nothing; the other writer's rows stay."""
    from jobs.delta_io import DeltaWriteError, LocalDeltaIO
    from jobs.runtime import exits
    from tests.jobs.test_delta import frame

    path, io, ddl = str(tmp_path / "votes"), LocalDeltaIO(), "row_id string, vote int"
    io.write_table(frame(spark, [("r0", 0)], ddl), path, mode="append")

    def other_run(*args):  # the other run's votes of the same new row, committed now
        write_deltalake(path, DeltaTable(path).to_pyarrow_table().slice(0, 0).from_pylist(
            [{"row_id": "r1", "vote": 1}], schema=DeltaTable(path).to_pyarrow_table().schema), mode="append")

    with pytest.raises(DeltaWriteError, match=r"a concurrent transaction committed to Delta table .* \(WRITE v1\)") as raised:
        io.write_table(frame(spark, [("r1", 1)], ddl), path, mode="append", validate=other_run)
    assert exits._outcome(raised.value, False)[1] == exits.EXIT_TRANSIENT
    assert sorted(r["row_id"] for r in DeltaTable(path).to_pyarrow_table().to_pylist()) == ["r0", "r1"]
    # An exactly-once append (a gold import: its own rows, app_id) is not checked: a restore would keep its app
    # transaction, and the retry of an undone import would be skipped as done (a review).
    done = io.write_table(frame(spark, [("r2", 2)], ddl), path, mode="append", app_id="gold/a", app_version=1,
                          validate=other_run)
    assert not done.skipped and DeltaTable(path).transaction_version("gold/a") == 1
    assert sorted(r["row_id"] for r in DeltaTable(path).to_pyarrow_table().to_pylist()) == ["r0", "r1", "r1", "r2"]


def _row_ids(table: str, file: str) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(f"{table}/{file}").column("row_id").to_pylist()


def test_a_vacuum_after_the_row_hashes_compaction_keeps_the_next_run_incremental(spark, tmp_path, monkeypatch):
    """A review: the apply record names the row hashes' version of its commit, whose files a compaction replaces;
    after a VACUUM every later run of a Parquet source exited 2 (the version's files gone) until --force. The
    hashes are read at the latest version when only data-neutral commits followed the record's."""
    src = tmp_path / "src"
    src.mkdir()
    rows = make_rows(40).astype({"stars": "float64"})
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": str(src), "format": "parquet", "id_column": "id", "gold_column": "gold"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]}, "mlflow": {"enabled": False},
    }))
    rows.iloc[:30].to_parquet(src / "part-0.parquet", index=False)
    cfg = load_config(config, overrides=[OFF])
    pipeline.run(spark, cfg, run_id="x0")
    rows.iloc[30:].to_parquet(src / "part-1.parquet", index=False)
    monkeypatch.setattr(incremental_masks, "full_apply_files", lambda df: 1)  # compact at the first chance
    compacted = pipeline.run(spark, load_config(config, overrides=[LOW]), run_id="x1").summary["compaction"]
    hashes = incremental.row_hashes_path(cfg)
    assert hashes in {c["table"] for c in compacted}
    for table in (cfg.table_path("votes"), hashes):
        DeltaTable(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    changed = rows.iloc[30:].copy()
    changed.loc[changed["id"] == "r035", "text"] = "I hate it, awful!!!"
    changed.to_parquet(src / "part-1.parquet", index=False)
    after = pipeline.run(spark, cfg, run_id="x2").summary
    assert after["apply"]["applied_rows"] == 1, after["apply"]


def test_a_table_another_write_holds_the_lock_of_is_not_compacted(tmp_path):
    """Another run writing its votes holds its write's lock (jobs.delta_io.leftovers.WriterLock): the compaction
    waits for a later run rather than commit under that write (whose commit would then fail, exit 3)."""
    import pyarrow as pa

    from jobs.delta_io.leftovers import WriterLock

    path = str(tmp_path / "votes")
    for i in range(4):
        write_deltalake(path, pa.table({"row_id": [f"r{i}"], "vote": [i]}), mode="append")
    io = delta_io.LocalDeltaIO()
    with WriterLock(path, "0" * 32):
        assert compaction.compact_table(io, path, min_files=2, full_files=1) is None
    done = compaction.compact_table(io, path, min_files=2, full_files=1)
    assert done is not None and (done.files_removed, done.files_added) == (4, 1)


def test_the_retention_readme_gives_for_run_folders_keeps_the_next_run_incremental(runs, capsys):
    """README (Disk over time): the folders of old runs may go, except the latest run's and those holding a
    ``row_masks-*`` folder (the latest apply's votes as bitmasks). The next run stays incremental and verifies; a
    diff from a removed run names it. Last in this module: it removes the earlier runs' folders."""
    import shutil
    from pathlib import Path

    cfg = runs["cfg"]
    folders = [f for f in (Path(cfg.lakehouse) / "_lakelabel" / "runs").iterdir() if f.is_dir()]
    kept = {f.name for f in folders if f.name == "r4" or any(f.glob("row_masks-*"))}
    assert kept == {"r4"}  # r4's incremental apply wrote the latest masks
    for folder in folders:
        if folder.name not in kept:
            shutil.rmtree(folder)
    src, rows = str(Path(runs["config"]).parent / "src"), DeltaTable(str(Path(runs["config"]).parent / "src")).to_pandas()
    rows.loc[rows["id"] == "r020", "text"] = "edited after the old run folders went"
    write_deltalake(src, rows, mode="overwrite")
    config, summary = runs["config"], Path(runs["config"]).parent / "r5.json"
    assert cli.main(["run", "--config", config, "--run-id", "r5", "--summary-json", str(summary), "-q"]) == 0
    r5 = json.loads(summary.read_text())
    assert r5["apply"]["row_changes"]["reapplied"] == 1 and r5["drift"]["previous_run"] == "r4"
    assert cli.main(["verify", "--config", config, "--run-id", "r5", "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["diff", "--config", config, "--from", "r3", "--to", "r5", "-q"]) == 2
    assert "run 'r3' has no run folder" in capsys.readouterr().err
    assert cli.main(["verify", "--config", config, "--run-id", "r3", "-q"]) == 2
    assert "run 'r3' has no summary with a labels version in" in capsys.readouterr().err
