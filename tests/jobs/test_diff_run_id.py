"""``lakelabel diff --run-id R``: R is the later run when ``--to`` is not given (it was accepted and ignored).

A drill ran ``lakelabel diff --run-id a`` after runs a and b and got ``a -> b`` with exit 0: the diff of
other runs than the one it named. No Spark here: the run ids are resolved before the job starts.
"""

from __future__ import annotations

import argparse
import re

import pytest
import yaml

from jobs import cli, diff
from lf_library.errors import ConfigError


def test_run_id_is_the_later_run_when_to_is_not_given():
    assert diff.later_run(None, "a") == "a"
    assert diff.later_run("b", None) == "b"
    assert diff.later_run("b", "b") == "b"
    assert diff.later_run(None, None) is None
    with pytest.raises(ConfigError, match=r"^--to b and --run-id a name different runs; .*drop one of them$"):
        diff.later_run("b", "a")


def test_the_command_diffs_up_to_the_run_id(monkeypatch):
    seen = {}
    monkeypatch.setattr(diff, "run", lambda spark, cfg, **kw: seen.update(kw) or {})
    args = argparse.Namespace(from_run=None, to_run=None, run_id="a", threshold=0.1)
    diff.COMMAND.run(args, None, "a", None)
    assert seen == {"from_run": None, "to_run": "a", "threshold": 0.1}


def test_cli_refuses_to_and_run_id_of_different_runs_before_spark(tmp_path, capsys):
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
                                      "source": {"path": str(tmp_path / "src"), "id_column": "id"},
                                      "lfs": {"modules": []}}))
    assert cli.main(["diff", "--config", str(config), "--to", "b", "--run-id", "a", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lakelabel: error: --to b and --run-id a name different runs"), err


def test_runs_that_do_not_exist_are_refused_before_spark_starts(tmp_path, capsys, monkeypatch):
    """A typo in --from or --to cost a Spark start (about a minute on a busy machine) before its one line."""
    from jobs.runtime import session

    def no_spark(*args, **kwargs):
        raise AssertionError("diff started Spark before checking its runs")

    monkeypatch.setattr(session, "get_spark", no_spark)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
                                      "source": {"path": str(tmp_path / "src"), "id_column": "id"},
                                      "lfs": {"modules": []}}))
    (tmp_path / "lake" / "_lakelabel" / "runs" / "only").mkdir(parents=True)
    for argv, pattern in [([], r"no run wrote the labels table .*labels yet"),
                          (["--to", "ghost"], r"run 'ghost' has no run folder"),
                          (["--run-id", "ghost"], r"run 'ghost' has no run folder")]:
        assert cli.main(["diff", "--config", str(config), *argv, "-q"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(pattern, err[0]), (argv, err)
