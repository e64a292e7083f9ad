"""Commands that fail on bad input before Spark starts (people in the loop, verify; no Spark session here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jobs.cli import main as cli_main


@pytest.fixture
def no_spark_config(tmp_path, monkeypatch):
    """A config for the demo LFs whose source does not exist, with Spark's start-up made a test failure."""
    import jobs.runtime.session as session

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark was started before the bad input was found")

    monkeypatch.setattr(session, "get_spark", no_spark)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"),
                                   "source": {"path": str(tmp_path / "src.parquet"), "id_column": "id"},
                                   "lfs": {"modules": ["lf_library.lfs.demo"]}}))
    return cfg


def test_gold_import_of_a_missing_file_fails_before_spark_starts(tmp_path, capsys, no_spark_config):
    cfg = no_spark_config
    code = cli_main(["gold", "import", "--config", str(cfg), "--file", str(tmp_path / "labeled.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"lakelabel: error: gold file {tmp_path / 'labeled.csv'} does not exist; pass the file written "
                   "by `lakelabel annotate` (or your own)"]
    assert not (tmp_path / "lake" / "gold").exists()


def test_a_usage_error_is_one_line_and_exit_code_2(capsys):
    for argv, message in (
        (["gold", "import", "--config", "c.yaml", "--file", "f.csv", "--split", "train"],
         "lakelabel: error: gold import: argument --split: invalid choice: 'train' (choose from 'dev', 'test'); "
         "see lakelabel gold import --help"),
        (["suggest", "--config", "c.yaml", "--max", "x"],
         "lakelabel: error: suggest: argument --max: invalid int value: 'x'; see lakelabel suggest --help"),
        (["run", "--config", "c.yaml", "--bogus"],  # the command's help, not the top parser's
         "lakelabel: error: run: unrecognized arguments: --bogus; see lakelabel run --help"),
        (["run", "--config", "c.yaml", "-v", "-q"],  # not one of them silently
         "lakelabel: error: run: argument -q/--quiet: not allowed with argument -v/--verbose; see lakelabel run --help"),
        (["gold", "status", "--quiet", "--verbose"],
         "lakelabel: error: gold status: argument -v/--verbose: not allowed with argument -q/--quiet; "
         "see lakelabel gold status --help"),
        (["demo", "--row", "1000"],  # no abbreviations: --row is not taken for --rows
         "lakelabel: error: demo: unrecognized arguments: --row 1000; see lakelabel demo --help"),
        # Options before the command: argparse said "unrecognized arguments: -v" of a run whose help lists -v.
        (["-v", "run", "--config", "c.yaml"],
         "lakelabel: error: run: options go after the command: lakelabel run -v --config c.yaml; see lakelabel run --help"),
        (["--run-id", "r1", "gold", "import", "--file", "f.csv"],
         "lakelabel: error: gold import: options go after the command: lakelabel gold import --run-id r1 --file f.csv; "
         "see lakelabel gold import --help"),
        (["-q", "gold"],  # the group's parser: its help lists the actions
         "lakelabel: error: gold: options go after the command: lakelabel gold ACTION -q; see lakelabel gold --help"),
        # Options between a group and its action: argparse took an option's value for the action.
        (["gold", "--config", "c.yaml", "import", "--file", "f.csv"],  # was "invalid choice: 'c.yaml'"
         "lakelabel: error: gold import: options go after the action: lakelabel gold import --config c.yaml "
         "--file f.csv; see lakelabel gold import --help"),
        (["gold", "--run-id", "import", "status"],  # "import" is the run id here, not the action
         "lakelabel: error: gold status: options go after the action: lakelabel gold status --run-id import; "
         "see lakelabel gold status --help"),
        (["gold", "--bogus", "status"],
         "lakelabel: error: gold status: unrecognized arguments: --bogus; see lakelabel gold status --help"),
        (["gold", "--config", "c.yaml"],
         "lakelabel: error: gold: the action goes first: lakelabel gold ACTION --config c.yaml "
         "(ACTION: import, status); see lakelabel gold --help"),
        (["--run-id", "apply", "run", "--config", "c.yaml"],  # "apply" is the run id here, not the command
         "lakelabel: error: run: options go after the command: lakelabel run --run-id apply --config c.yaml; "
         "see lakelabel run --help"),
        (["-v", "run", "--set", "spark.conf={a: b}", "--config", "c.yaml"],  # quoted, to paste into a shell
         "lakelabel: error: run: options go after the command: lakelabel run -v --set 'spark.conf={a: b}' --config c.yaml; "
         "see lakelabel run --help"),
    ):
        with pytest.raises(SystemExit) as done:
            cli_main(argv)
        assert done.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [message]


def test_a_usage_error_writes_the_failure_summary(tmp_path, capsys):
    """A command line argparse refuses (exit 2) writes the failure summary every other failure writes to
    --summary-json, replacing an earlier run's; nothing when --summary-json itself is the problem, or the
    command has none (`package`, wherever the option is and whatever the error)."""
    import json
    import os

    summary = tmp_path / "out" / "summary.json"
    for argv, command, run_id in (
        (["run", "--config", "c.yaml", "--run-id", "r1", "--summary-json", str(summary), "--bogus"], "run", "r1"),
        (["gold", "import", "--config", "c.yaml", "--file", "f.csv", f"--summary-json={summary}", "--split", "train"],
         "gold import", None),
        (["suggest", "--summary-json", str(summary)], "suggest", None),  # --config missing
        (["nosuch", "--summary-json", str(summary)], None, None),  # no command known
        (["--summary-json", str(summary), "run", "--config", "c.yaml"], "run", None),  # options go after "run"
        # A command group without its action: each action takes --summary-json, so the summary is written.
        (["gold", "--summary-json", str(summary)], "gold", None),
        (["--summary-json", str(summary), "gold"], "gold", None),  # was command null
    ):
        summary.parent.mkdir(exist_ok=True)
        summary.write_text('{"status": "succeeded"}')  # an earlier run's
        with pytest.raises(SystemExit) as done:
            cli_main(argv)
        line = capsys.readouterr().err.strip()
        assert done.value.code == 2 and json.loads(summary.read_text()) == {
            "command": command, "run_id": run_id, "status": "failed", "exit_code": 2, "error": line}, argv
    # --summary-json without its value: argparse names it; no summary anywhere, no file named after an option.
    for argv in (["run", "--config", "c.yaml", "--summary-json"], ["run", "--summary-json", "--bogus"]):
        with pytest.raises(SystemExit) as done:
            cli_main(argv)
        assert done.value.code == 2 and "argument --summary-json: expected one argument" in capsys.readouterr().err
    # A command without the option: argparse refuses --summary-json as an unknown argument, also before the
    # command (was a summary of "package" and the hint `lakelabel package --summary-json ...`, itself refused),
    # or another of its options; nothing is written, and an earlier summary there is gone.
    for argv, message in (
        (["package", "--summary-json", str(summary)], f"unrecognized arguments: --summary-json {summary}"),
        (["--summary-json", str(summary), "package"], f"unrecognized arguments: --summary-json {summary}"),
        (["-v", f"--summary-json={summary}", "package", "--out", "d"],
         f"unrecognized arguments: --summary-json={summary}; options go after the command: "
         "lakelabel package -v --out d"),
        (["package", "--out", "--summary-json", str(summary)], "argument --out: expected one argument"),
    ):
        summary.write_text('{"status": "succeeded"}')
        with pytest.raises(SystemExit) as done:
            cli_main(argv)
        assert done.value.code == 2 and capsys.readouterr().err.strip().splitlines() == [
            f"lakelabel: error: package: {message}; see lakelabel package --help"], argv
        assert not summary.exists(), argv
    assert not os.path.exists("--bogus")


def test_gold_import_of_a_file_in_another_format_says_which(tmp_path, capsys, no_spark_config):
    """A Label Studio export saved as .csv, and a Delta table read with --format parquet (its Parquet files
    hold removed rows too): one line each, with the --format to pass, before Spark starts."""
    import json

    import pandas as pd
    from deltalake import write_deltalake

    cfg = no_spark_config
    exported = tmp_path / "export.csv"
    exported.write_text(json.dumps([{"id": 1, "data": {"row_id": "a", "text": "x"}, "annotations": []},
                                    {"id": 2, "data": {"row_id": "b", "text": "y"}, "annotations": []}], indent=1))
    delta = tmp_path / "gold_delta"
    write_deltalake(str(delta), pd.DataFrame({"row_id": ["a"], "label": ["billing"]}))
    labeled = tmp_path / "labeled.csv"
    labeled.write_text("row_id,label\na,billing\n")
    json_min = tmp_path / "export_min.json"
    json_min.write_text(json.dumps([{"id": 1, "row_id": "a", "text": "x", "label": "billing", "annotator": 1}]))
    for argv, expected in (
        # were exit 1: ArrowInvalid "Parquet magic bytes not found", OSError "Generic LocalFileSystem error"
        (["--file", str(labeled), "--format", "parquet"], f"cannot read {labeled} as Parquet ("),
        (["--file", str(labeled), "--format", "delta"], f"{labeled} is not a Delta table (no _delta_log folder); "
                                                        "pass the --format that matches it"),
        # was "task 1 has no data.row_id, so it was not written by `lakelabel annotate`"
        (["--file", str(json_min)], f"{json_min}: task 1 has row_id at the top, not under data: this is a JSON-MIN "
                                    "export"),
        (["--file", str(exported)], f"cannot read {exported} as CSV: it holds JSON; pass --format label-studio"),
        (["--file", str(delta), "--format", "parquet"], f"{delta} is a Delta table: its Parquet files also hold "
                                                        "rows that later versions removed; pass --format delta"),
    ):
        assert cli_main(["gold", "import", "--config", str(cfg), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "lake" / "gold").exists()


def test_a_damaged_delta_log_is_exit_2_naming_the_table(tmp_path, capsys, no_spark_config):
    """A zero-byte commit file delta-rs replays (the latest or an older one: it reads it as a commit without
    changes) opened a version without that commit's rows, and a damaged log of a table given to `gold import
    --format delta` was exit 1 with delta-rs' DeltaError: both are exit 2 naming the table, as a damaged log of
    lakelabel's own tables is (tests/test_drills_cli.py). An empty commit a checkpoint covers is not read."""
    import shutil

    import pandas as pd
    from deltalake import DeltaTable, write_deltalake

    from jobs.delta_io.local import LocalDeltaIO
    from lf_library.errors import InputDataError

    def damaged(name: str, how: str) -> Path:
        table = tmp_path / name
        for label in ("billing", "technical"):
            write_deltalake(str(table), pd.DataFrame({"row_id": ["a"], "label": [label]}), mode="append")
        latest = table / "_delta_log" / f"{1:020d}.json"
        with open(latest, "r+b") as handle:
            handle.truncate(0 if how == "empty" else 50)
        return table

    def says(table: Path, reason: str) -> str:
        return (f"Delta table {table}: its Delta log cannot be read ({reason}); the table is damaged: restore the "
                f"damaged file under {table}/_delta_log from a backup (or the table from a copy) and check the "
                f"table's history before the next run")

    empty = damaged("empty", "empty")
    with pytest.raises(InputDataError) as err:
        LocalDeltaIO().table_version(str(empty))
    assert str(err.value) == says(empty, f"commit file {1:020d}.json is empty (0 bytes)")  # was version 1
    assert LocalDeltaIO().read_arrow(str(empty), version=0)[0].num_rows == 1  # an earlier version still reads

    # An older commit under the latest: delta-rs opened version 2 without row 1's data, nothing raised.
    def appended(name: str, labels: tuple[str, ...]) -> Path:
        table = tmp_path / name
        for label in labels:
            write_deltalake(str(table), pd.DataFrame({"row_id": ["a"], "label": [label]}), mode="append")
        return table

    older = appended("older", ("billing", "technical", "account"))
    (older / "_delta_log" / f"{1:020d}.json").write_bytes(b"")
    with pytest.raises(InputDataError) as err:
        LocalDeltaIO().read_arrow(str(older))
    assert str(err.value) == says(older, f"commit file {1:020d}.json is empty (0 bytes)")
    # A checkpoint at version 2 covers commit 1: versions from 2 on read whole, version 1 still replays it.
    covered = appended("covered", ("billing", "technical", "account"))
    DeltaTable(str(covered)).create_checkpoint()
    assert (covered / "_delta_log" / f"{2:020d}.checkpoint.parquet").exists()
    covered = appended("covered", ("other",))
    (covered / "_delta_log" / f"{1:020d}.json").write_bytes(b"")
    assert LocalDeltaIO().read_arrow(str(covered))[0].num_rows == 4
    assert LocalDeltaIO().read_arrow(str(covered), version=2)[0].num_rows == 3
    with pytest.raises(InputDataError, match=f"commit file {1:020d}.json is empty"):
        LocalDeltaIO().read_arrow(str(covered), version=1)
    (covered / "_delta_log" / f"{3:020d}.json").write_bytes(b"")  # after the checkpoint: replayed
    with pytest.raises(InputDataError) as err:
        LocalDeltaIO().table_version(str(covered))
    assert str(err.value) == says(covered, f"commit file {3:020d}.json is empty (0 bytes)")

    # lakelabel's own gold table (`gold status` reads it on the driver, no Spark) and a user's table to import.
    cfg = no_spark_config
    own = damaged("lake/gold", "empty")
    assert cli_main(["gold", "status", "--config", str(cfg)]) == 2
    zero = f"commit file {1:020d}.json is empty (0 bytes)"
    assert capsys.readouterr().err.strip().splitlines() == [f"lakelabel: error: {says(own, zero)}"]
    shutil.rmtree(own)  # the import below would stop at it
    for how, reason in (("empty", zero), ("truncated", "Kernel error: Json error: ")):
        user = damaged(f"labels_{how}", how)
        assert cli_main(["gold", "import", "--config", str(cfg), "--file", str(user), "--format", "delta"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert err[0].startswith(f"lakelabel: error: Delta table {user}: its Delta log cannot be read ({reason}"), err
        assert err[0].endswith("check the table's history before the next run"), err


def test_verify_without_a_run_id_fails_before_spark_starts(tmp_path, capsys, no_spark_config):
    cfg = no_spark_config
    assert cli_main(["verify", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "lakelabel: error: verify needs --run-id R: the run whose labels to rebuild and check (its run "
        "folder under the lakehouse); see lakelabel verify --help"]


@pytest.mark.parametrize("command", [["gold", "import"], ["gold", "status"], ["suggest"]])
def test_the_run_id_help_says_what_the_command_does_with_it(command, capsys):
    """A drill: these said "rerunning with the same id is a no-op per stage", but a second `gold import --run-id gi1`
    of another file imports it, and suggest writes its module again."""
    with pytest.raises(SystemExit):
        cli_main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--run-id RUN_ID run id" in text and "no-op per stage" not in text, text
