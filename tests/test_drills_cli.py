"""Reliability drills through the command line, as an operator or an orchestrator runs them.

Exit codes: 2 bad input (one line naming the value and the fix), 3 transient, 143 SIGTERM; the
tables are as before a failed run and its MLflow run is marked FAILED or KILLED.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from jobs import cli
from jobs.runtime.command import package_version
from tests.conftest import REPO
from tests.jobs.test_pipeline import make_rows, write_source

pytestmark = pytest.mark.jvm


def write_config(tmp_path: Path, source: str, **extra) -> Path:
    data = {
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": source, "format": "parquet", "id_column": "id"},
        "lfs": {"modules": ["tests.jobs.drill_lfs"], "exclude": ["nothing"]},
        "mlflow": {"enabled": False},
        **extra,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    code = cli.main(list(argv))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, lines


@pytest.mark.parametrize("run_id", ["ok\n", "", "../x", "a b"])
def test_bad_run_ids_are_refused(tmp_path, capsys, run_id):
    config = write_config(tmp_path, str(tmp_path / "src"))
    code, lines = run_cli(capsys, "run", "--config", str(config), "--run-id", run_id)
    assert code == 2
    assert lines == [f"lakelabel: error: run id {run_id!r} is not valid: use letters, digits, '.', '_' or '-' "
                     f"(at most 128, starting with a letter or digit), e.g. an orchestrator's run id"]
    assert not (tmp_path / "lake" / "_lakelabel").exists()


def test_a_tracking_uri_written_as_a_path_says_to_write_sqlite(tmp_path, capsys, monkeypatch):
    """A drill: `mlflow.tracking_uri: lakehouse/mlflow.db` (and a model LF's `tracking_uri` so) failed with MLflow's
    file-store deprecation text (exit 1, after Spark started), which never says to write sqlite:///."""
    from mlflow import environment_variables

    from lf_library.errors import LFConfigError
    from lf_library.models import resolve_model

    if not hasattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE"):
        pytest.skip("this MLflow (before 3.13) still takes its file store; lakelabel refuses a path only after")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    config = write_config(tmp_path, str(tmp_path / "src"), mlflow={"enabled": True, "tracking_uri": "lake/mlflow.db"})
    code, lines = run_cli(capsys, "run", "--config", str(config))
    assert code == 2 and lines == [
        f"lakelabel: error: mlflow.tracking_uri 'lake/mlflow.db' is a file path, which MLflow takes as its file store "
        f"(refused unless MLFLOW_ALLOW_FILE_STORE=true); name a sqlite store by its URI, e.g. "
        f"sqlite:///{tmp_path / 'lake' / 'mlflow.db'}"], lines
    assert not (tmp_path / "lake" / "_lakelabel").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path}/mlruns")
    code, lines = run_cli(capsys, "run", "--config", str(config))
    assert code == 2 and lines[0].startswith(f"lakelabel: error: MLFLOW_TRACKING_URI 'file://{tmp_path}/mlruns' is a "
                                             f"file path") and lines[0].endswith(f"sqlite:///{tmp_path}/mlruns.db")
    with pytest.raises(LFConfigError, match=r"^the tracking URI 'lake/mlflow.db' is a file path.*e\.g\. sqlite:///"):
        resolve_model("models:/m/1", "lake/mlflow.db")
    # A model LF of a local folder reads no store: the URI it inherits is not checked (a review).
    with pytest.raises(LFConfigError, match=r"the local folder .*absent does not exist"):
        resolve_model(str(tmp_path / "absent"), "lake/mlflow.db")
    from lf_library.models import file_store_error

    for uri in ("databricks", "databricks-uc", "databricks://profile", "sqlite:///x.db", "http://127.0.0.1:5000"):
        assert file_store_error(uri, "mlflow.tracking_uri") is None, uri  # stores, not paths


def test_lakehouse_that_is_a_file_or_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for lakehouse, says in [(blocker, "is a file, not a folder"), (blocker / "lake", f"lies under {blocker}, which is a file")]:
        config = write_config(tmp_path, str(tmp_path / "src"), lakehouse=str(lakehouse))
        code, lines = run_cli(capsys, "run", "--config", str(config))
        assert code == 2
        assert lines == [f"lakelabel: error: lakehouse {lakehouse} {says}; set lakehouse to a folder path"]


def test_paths_spark_would_read_as_glob_patterns_are_refused_before_spark_starts(tmp_path, capsys):
    """A '[', '{', '*', '?' or backslash in a folder's name is glob syntax to Spark's readers: the demo under '/tmp/br[1]'
    wrote its source and exited 2 with "Path does not exist" for a path that existed (a drill, session 29), under
    'bs\\x' with "Illegal file pattern". Refused before Spark starts, naming the key; nothing is created."""
    source = tmp_path / "src [2024]"
    for name in (source.name, "src?", "srcA"):
        write_source(tmp_path, make_rows(4), name=name)
    cases = [(lambda: ["demo", "--rows", "100", "--lakehouse", str(tmp_path / "br[1]" / "lake")],
              f"lakehouse {tmp_path}/br[1]/lake: its path holds '['", "fix lakehouse"),
             (lambda: ["run", "--config", str(write_config(tmp_path, str(source)))],
              f"source {source}: its path holds '['", "fix source.path"),
             (lambda: ["run", "--config", str(write_config(tmp_path, str(source), lakehouse=str(tmp_path / "a{b}")))],
              f"lakehouse {tmp_path}/a{{b}}: its path holds '{{'", "fix lakehouse"),
             (lambda: ["run", "--config", str(write_config(tmp_path, str(tmp_path / "src?")))],
              f"source {tmp_path}/src?: its path holds '?'", "fix source.path"),  # it read its sibling 'srcA' too
             (lambda: ["run", "--config", str(write_config(tmp_path, str(tmp_path / "src"))), "--set",
                       f"tables.votes={tmp_path}/x\\y/votes"],
              f"tables.votes {tmp_path}/x\\y/votes: its path holds '\\\\'", "fix tables.votes")]  # fmt: skip
    for argv, says, fix in cases:
        code, lines = run_cli(capsys, *argv())
        assert code == 2 and len(lines) == 1 and says in lines[0] and lines[0].endswith(fix), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.yaml", "src [2024]", "src?", "srcA"]


def test_failed_command_leaves_no_empty_lakehouse_folders_it_created(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    lake = tmp_path / "new" / "deeper" / "lake"
    source = tmp_path / "src.parquet"  # a source that exists: the failure must be the summary's folder
    pd.DataFrame({"id": ["r1"], "text": ["x"]}).to_parquet(source, index=False)
    config = write_config(tmp_path, str(source), lakehouse=str(lake))
    # Fails after the lakehouse was created (the summary's folder is a file), before Spark starts.
    code, lines = run_cli(capsys, "run", "--config", str(config), "--summary-json", str(blocker / "s.json"))
    assert code == 2 and "--summary-json" in lines[0], lines
    assert not (tmp_path / "new").exists()
    # A lakehouse that existed before is left alone, empty or not.
    lake.mkdir(parents=True)
    assert run_cli(capsys, "run", "--config", str(config), "--summary-json", str(blocker / "s.json"))[0] == 2
    assert lake.is_dir()
    # A summary path that is a folder fails as early, naming a file path to use instead.
    code, lines = run_cli(capsys, "run", "--config", str(config), "--summary-json", str(tmp_path))
    assert code == 2 and lines == [f"lakelabel: error: --summary-json {tmp_path} is a folder; pass a file path such "
                                   f"as {tmp_path / 'summary.json'}"], lines
    assert not (tmp_path.parent / (tmp_path.name + ".tmp")).exists() and not list(lake.iterdir())
    code, lines = run_cli(capsys, "run", "--config", str(config), "--summary-json", f"{tmp_path}/sj/")
    assert code == 2 and lines == [f"lakelabel: error: --summary-json {tmp_path}/sj/ is a folder; pass a file path "
                                   f"such as {tmp_path / 'sj' / 'summary.json'}"], lines  # a drill: it wrote file sj
    assert not (tmp_path / "sj").exists()
    (tmp_path / "sj").write_text("a file of the user's")  # a trailing / on a file's name deletes nothing (a review)
    assert run_cli(capsys, "run", "--config", str(config), "--summary-json", f"{tmp_path}/sj/")[0] == 2
    assert (tmp_path / "sj").read_text() == "a file of the user's"
    # An earlier run's summary at the path does not survive a failed run (an orchestrator would read it): the
    # failed run's own takes its place, with the exit code and the error line.
    stale = tmp_path / "summary.json"
    stale.write_text('{"status": "succeeded"}')
    missing = write_config(tmp_path, str(tmp_path / "missing.parquet"), lakehouse=str(lake))
    code, lines = run_cli(capsys, "run", "--config", str(missing), "--summary-json", str(stale), "--run-id", "r9")
    assert code == 2 and json.loads(stale.read_text()) == {
        "command": "run", "run_id": "r9", "status": "failed", "exit_code": 2, "error": lines[0]}
    # Without --run-id, a run that failed before its work began names no run: the id it generated is on no folder,
    # table or MLflow run (a drill: the summary named it).
    code, lines = run_cli(capsys, "run", "--config", str(missing), "--summary-json", str(stale))
    assert code == 2 and json.loads(stale.read_text()) == {
        "command": "run", "run_id": None, "status": "failed", "exit_code": 2, "error": lines[0]}
    # A summary path under a file, behind another error (the source is missing): the failure summary cannot be
    # written either, and a second line says so (it was left unwritten without a word).
    code, lines = run_cli(capsys, "run", "--config", str(missing), "--summary-json", str(blocker / "s.json"))
    assert code == 2 and len(lines) == 2 and "missing.parquet" in lines[0], lines
    assert lines[1] == (f"lakelabel: the failure summary --summary-json {blocker / 's.json'} was not written either "
                        f"(File exists)"), lines  # mkdir of its folder, the file
    # A name the file system refuses outright (a review: the folder check raised "File name too long" with a
    # traceback, where it wrote nothing and raised nothing before).
    long = tmp_path / ("a" * 300) / "s.json"
    code, lines = run_cli(capsys, "run", "--config", str(missing), "--summary-json", str(long))
    assert code == 2 and lines == [f"lakelabel: error: --summary-json {long}: cannot replace the file there (File name "
                                   f"too long); choose a writable path"], lines


def test_failure_summary_names_a_generated_run_once_its_work_began(tmp_path):
    """A command that fails in its work (its run folder, MLflow run and tables are under the run id it generated)
    names that id in its failure summary; failing in its prechecks, none (the test above)."""
    from jobs.runtime import command
    from jobs.runtime.config import ConfigError

    def fail(args, cfg, run_id, spark):
        (command.runs.run_dir(cfg.lakehouse, run_id) / "begun").write_text(run_id)
        raise ConfigError("no luck")

    failing = command.Command(name="failing", help="fails in its work", run=fail, needs_spark=False)
    config = write_config(tmp_path, write_source(tmp_path, make_rows(10)))
    summary = tmp_path / "s.json"
    assert command.main(failing, ["--config", str(config), "--summary-json", str(summary)]) == 2
    written = json.loads(summary.read_text())
    assert written["run_id"] and written["error"] == "lakelabel: error: no luck", written
    assert (command.runs.run_dir(tmp_path / "lake", written["run_id"]) / "begun").read_text() == written["run_id"]


def test_option_values_fail_before_spark_starts(tmp_path, capsys, monkeypatch):
    """Out-of-range option values cost no Spark start (13-25 s): one line, exit 2, in about a second."""
    from jobs.runtime import session

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the options were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    config = str(write_config(tmp_path, write_source(tmp_path, make_rows(10))))
    for argv, message in ((["diff", "--threshold", "-1"], "--threshold -1.0 must be between 0 and 1"),
                          (["annotate", "--strategy", "stratified", "--n", "0", "--out", str(tmp_path / "x.csv")],
                           "--n 0 must be at least 1 (the number of rows to pick)"),
                          (["verify", "--run-id", "nope"], "run 'nope' has no summary with a labels version")):
        code, lines = run_cli(capsys, *argv, "--config", config, "-q")
        assert code == 2 and len(lines) == 1 and message in lines[0], (argv, lines)
    assert not (tmp_path / "lake").exists() and not (tmp_path / "x.csv").exists()
    # A folder root may not write in although os.access says it may: sysfs refuses new files.
    if Path("/sys/kernel").is_dir():
        code, lines = run_cli(capsys, "run", "--config", config, "--summary-json", "/sys/lakelabel.json")
        assert code == 2 and lines == ["lakelabel: error: --summary-json /sys/lakelabel.json: the folder /sys is not "
                                       "writable (Permission denied); choose a writable path"], lines
    # A command line argparse refuses replaces an earlier summary with its failure summary too, as every
    # failed command does.
    old = tmp_path / "old.json"
    for flag in (["--summary-json", str(old)], [f"--summary-json={old}"]):
        old.write_text("{}")
        with pytest.raises(SystemExit) as exited:
            cli.main(["run", "--config", config, *flag, "--bogus"])
        assert exited.value.code == 2 and json.loads(old.read_text())["status"] == "failed"


def _unwritable(folder: Path):
    """Make ``folder`` unwritable for this user; return (undo, what the OS says)."""
    if os.geteuid() != 0:  # mode bits stop a user's writes
        folder.chmod(0o500)
        return (lambda: folder.chmod(0o700)), "Permission denied"
    # Not root's (os.access says yes): make the folder immutable.
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True) if shutil.which(
        "chattr") else None
    if made is None or made.returncode != 0:
        pytest.skip(f"root needs chattr +i to make {folder} unwritable, and it failed ("
                    f"{made.stderr.strip() if made else 'no chattr: install e2fsprogs'}; it needs the "
                    f"CAP_LINUX_IMMUTABLE capability and a file system that supports it)")
    return (lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)), "Operation not permitted"


def test_lakehouse_that_cannot_be_written(tmp_path, capsys):
    lake = tmp_path / "lake"
    lake.mkdir()
    config = write_config(tmp_path, str(tmp_path / "src"))
    undo, why = _unwritable(lake)
    try:
        code, lines = run_cli(capsys, "run", "--config", str(config))
    finally:
        undo()
    assert code == 2
    assert lines == [f"lakelabel: error: lakehouse {lake} cannot be written ({why}); make it "
                     f"writable for this user or set lakehouse to a writable folder"]


@pytest.mark.parametrize("inside, commands", [
    ("labels", ["run", "write"]),  # an operator drill: `run` failed on it after its whole apply, exit 1
    ("votes", ["run", "apply"]),
    ("_lakelabel/runs", ["run", "analyze"]),
])
def test_a_folder_in_the_lakehouse_that_cannot_be_written(tmp_path, capsys, monkeypatch, inside, commands):
    """The folders a command writes in a writable lakehouse (a table's, the run folders) are checked before anything
    runs, not only the lakehouse's own."""
    from jobs.runtime import session

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the folders were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    folder = tmp_path / "lake" / inside
    folder.mkdir(parents=True)
    config = write_config(tmp_path, write_source(tmp_path, make_rows(10)))
    undo, why = _unwritable(folder)
    try:
        for command in commands:
            code, lines = run_cli(capsys, command, "--config", str(config))
            assert code == 2 and len(lines) == 1, (command, lines)
            assert lines[0] == (f"lakelabel: error: {folder} cannot be written ({why}), and this command writes there; "
                                f"make it (and what is in it) writable for this user, as the rest of the lakehouse "
                                f"{tmp_path / 'lake'} is"), (command, lines)
        # A command that does not write that table is not refused for it: gold status goes on to its own check.
        if inside == "labels":
            code, lines = run_cli(capsys, "gold", "status", "--config", str(config))
            assert lines == [f"lakelabel: error: no gold table at {tmp_path / 'lake' / 'gold'}; import labels with "
                             f"`lakelabel gold import` first"], lines
    finally:
        undo()


@pytest.mark.parametrize("inside, argv", [
    ("gold_urgency", ["gold", "import", "--task", "urgency"]),  # a task's own gold table was never probed
    ("labels_tasks", ["run"]),  # nor the labels of several tasks
])
def test_a_task_table_that_cannot_be_written(tmp_path, capsys, monkeypatch, inside, argv):
    """With several tasks the tables a command writes carry the task's name: those folders are checked up front
    too (they failed only at their write, after the work)."""
    from jobs.runtime import session
    from tests.jobs.test_multitask import make_source
    from tests.jobs.test_task_commands import multi_dict

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the folders were checked")

    monkeypatch.setattr(session, "get_spark", no_spark)
    folder = tmp_path / "lake" / inside
    folder.mkdir(parents=True)
    config = tmp_path / "tasks.yaml"
    config.write_text(yaml.safe_dump({**multi_dict(tmp_path, make_source(tmp_path)), "mlflow": {"enabled": False}}))
    labels = tmp_path / "annotations.csv"
    labels.write_text("row_id,label\n1,refund\n")
    if argv[0] == "gold":
        argv = [*argv, "--file", str(labels)]
    undo, why = _unwritable(folder)
    try:
        code, lines = run_cli(capsys, *argv, "--config", str(config))
        # Another task's gold table is not this command's: --task tags_refund goes on past the folder check.
        if argv[0] == "gold":
            other = run_cli(capsys, "gold", "import", "--task", "tags_refund", "--file", str(labels), "--config",
                            str(config))
    finally:
        undo()
    assert code == 2 and lines == [
        f"lakelabel: error: {folder} cannot be written ({why}), and this command writes there; make it (and what is "
        f"in it) writable for this user, as the rest of the lakehouse {tmp_path / 'lake'} is"], lines
    if argv[0] == "gold":  # it got as far as starting Spark (stopped here by the test)
        assert other[1] == ["lakelabel: error: AssertionError: Spark started before the folders were checked (rerun "
                            "with --verbose for the traceback)"], other


def test_a_full_disk_is_told_to_free_space_not_to_change_permissions(tmp_path, monkeypatch):
    """The drill's full lakehouse said "make it writable for this user"."""
    import errno

    from jobs.runtime import runs, session
    from lf_library.errors import ConfigError

    def no_space(folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "probe_write", no_space)
    (tmp_path / "lake" / "labels").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"cannot be written \(No space left on device\); free space there or set "
                                          r"lakehouse to a folder with room$"):
        runs.check_lakehouse(tmp_path / "lake")
    with pytest.raises(ConfigError, match=r"Spark's local folder .* cannot be written \(No space left on device\): .*; "
                                          r"free space there, or set spark.local.dir .* to a folder with room$"):
        session.check_local_folders({"spark.local.dir": str(tmp_path)})


def test_a_spark_local_folder_that_cannot_be_written_stops_before_spark_starts(tmp_path):
    """An operator drill: a full spark.local.dir failed the apply as "Py4JJavaError: An error occurred while calling
    o116.collectToPython." (exit 1), a full /tmp with a JVM stack trace on the console first."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    config = write_config(tmp_path, write_source(tmp_path, make_rows(10)))
    undo, why = _unwritable(scratch)
    try:
        started = time.monotonic()
        # SPARK_LOCAL_DIRS (the suite sets it) wins over spark.local.dir, in Spark as in the check.
        done = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "--config", str(config)], cwd=REPO,
                              env=_env(SPARK_LOCAL_DIRS=str(scratch)), capture_output=True, text=True, timeout=120)
    finally:
        undo()
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"lakelabel: error: Spark's local folder {scratch} cannot be written ({why}): Spark keeps its shuffle and "
        f"temporary files there; make it writable, or set spark.local.dir (spark.conf in the config) or "
        f"SPARK_LOCAL_DIRS to a folder that is"], done.stderr
    assert time.monotonic() - started < 60  # no JVM was started
    assert not (tmp_path / "lake" / "votes").exists()


def test_yaml_error_through_the_cli(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("lakehouse: ./lake\nsource: {path: x\n")
    code, lines = run_cli(capsys, "run", "--config", str(config))
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"lakelabel: error: config file {config} is not valid YAML: line 3, column 1:")


BLOCK_PYSPARK = textwrap.dedent("""
    import sys
    class NoPyspark:
        def find_spec(self, name, path=None, target=None):
            if name == "pyspark" or name.startswith("pyspark."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, NoPyspark())
    from jobs.cli import entry
    sys.argv = ["lakelabel", *sys.argv[1:]]
    entry()
""")


def test_pyspark_missing_prints_the_install_line(tmp_path):
    config = write_config(tmp_path, str(tmp_path / "src"))
    # --help and -h too: they printed an ImportError traceback, exit 1 (a README drill).
    for command in (["run", "--config", str(config)], ["fit", "--config", str(config)], ["demo", "--rows", "10"],
                    ["--help"], ["-h"]):
        done = subprocess.run([sys.executable, "-c", BLOCK_PYSPARK, *command], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"lakelabel: error: pyspark is not installed in {sys.executable}: install lakelabel with its Spark "
            f"extra, `pip install 'lakelabel[spark]'` (from a checkout: `pip install -e '.[spark]'`; Databricks runtimes and "
            f"Spark clusters bring their own pyspark)"
        ]
    out = tmp_path / "dist"
    done = subprocess.run([sys.executable, "-c", BLOCK_PYSPARK, "package", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(out.glob("lakelabel-*.zip"))


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    assert cli.main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"lakelabel {version('lakelabel')}"
    with pytest.raises(SystemExit) as done:  # the parser's option too (lakelabel --version --help)
        cli.main(["--version", "-h"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"lakelabel {version('lakelabel')}"
    # Without pyspark too.
    done = subprocess.run([sys.executable, "-c", BLOCK_PYSPARK, "--version"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"lakelabel {version('lakelabel')}", done.stderr


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LAKELABEL_PROGRESS_SECONDS": "1", **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _lakelabel(*argv: str, env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jobs.cli", *argv], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 900) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"lakelabel exited with {proc.returncode} before the LF hung: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the LF never started hanging")
        time.sleep(0.2)


def _hanging_source(tmp_path: Path) -> str:
    df = make_rows(40)
    df.loc[33, "text"] = "hang here"
    return write_source(tmp_path, df)


def _parquet_files(table: Path) -> set[str]:
    return {p.name for p in table.rglob("*.parquet")} if table.exists() else set()


@pytest.mark.slow
def test_signal_mid_apply_stops_cleanly_and_marks_mlflow_killed(spark, tmp_path):
    """SIGTERM (an orchestrator's stop), then Ctrl-C, each sent while an LF hangs in a run on one lakehouse."""
    import mlflow
    from deltalake import DeltaTable

    from jobs import pipeline
    from jobs.runtime.config_loading import load_config

    config = write_config(tmp_path, _hanging_source(tmp_path), mlflow={"enabled": True},
                          apply={"batch_size": 5, "lf_timeout_seconds": 0})
    good = load_config(config, overrides=["lfs.exclude=[nothing, hangs]"])
    pipeline.run(spark, good, run_id="before")
    votes = Path(good.table_path("votes"))
    before = (DeltaTable(str(votes)).version(), _parquet_files(votes))
    for signum, rc, run_id, line in [
        (signal.SIGTERM, 143, "terminated", "lakelabel: terminated (SIGTERM); the tables are as before the run"),
        # Ctrl-C: PySpark's own SIGINT handler made it exit 2 with the cancelled job's error.
        (signal.SIGINT, 130, "interrupted", "lakelabel: interrupted; the tables are as before the run"),
    ]:
        started = tmp_path / f"hanging-{run_id}"
        summary = tmp_path / f"{run_id}.json"
        proc = _lakelabel("run", "--config", str(config), "--run-id", run_id, "--summary-json", str(summary),
                          env=_env(LAKELABEL_DRILL_STARTED=str(started)))
        _wait_for(started, proc)
        time.sleep(2)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == rc, err
        assert err.strip().splitlines()[-1] == line, err
        assert "Traceback" not in err, err
        assert json.loads(summary.read_text()) == {"command": "run", "run_id": run_id, "exit_code": rc,
                                                   "error": line, "status": run_id}
        assert "rows done (" in err  # progress lines (every second here) while the LF hung
        assert (DeltaTable(str(votes)).version(), _parquet_files(votes)) == before
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'lake' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["lakelabel"], output_format="list")
    status = {r.info.run_name: r.info.status for r in runs}
    assert status == {"before": "FINISHED", "terminated": "KILLED", "interrupted": "KILLED"}


@pytest.mark.slow
def test_killed_driver_leaves_files_that_the_next_run_deletes(spark, tmp_path):
    from deltalake import DeltaTable

    from jobs import apply_lfs
    from jobs.runtime.config_loading import load_config

    config = write_config(tmp_path, _hanging_source(tmp_path), apply={"batch_size": 5, "lf_timeout_seconds": 0})
    started = tmp_path / "hanging"
    proc = _lakelabel("apply", "--config", str(config), env=_env(LAKELABEL_DRILL_STARTED=str(started)),
                      start_new_session=True)
    _wait_for(started, proc)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its JVM and Python workers: kill -9 of the job
    proc.communicate(timeout=60)
    votes = Path(tmp_path / "lake" / "votes")
    left = _parquet_files(votes)
    assert left, "the killed apply wrote no file to leave behind"
    assert not (votes / "_delta_log").exists()
    runs = tmp_path / "lake" / "_lakelabel" / "runs"
    left_masks = set(runs.glob("*/row_masks-*"))
    assert left_masks, "the killed apply left no row masks folder"

    cfg = load_config(config, overrides=["lfs.exclude=[nothing, hangs]"])
    after = apply_lfs.run(spark, cfg, run_id="after")
    committed = {os.path.basename(p) for p in DeltaTable(str(votes)).file_uris()}
    assert _parquet_files(votes) == committed
    assert not left & committed
    # The killed apply's row masks (about 12 bytes a row, in its run folder) went too (a drill found them kept for
    # ever, after a retry with the same run id or a new one); the next apply's are the only ones left.
    assert set(runs.glob("*/row_masks-*")) == {Path(after.row_masks["path"])}
    assert not list(runs.glob("*/row_masks-*/_writer.lock"))

    # A retry that finds the votes up to date writes no votes, so no write swept a killed write's files (a drill
    # found 24 files and a lock file kept until the next change): the apply that reuses the votes sweeps them.
    from jobs.delta_io.leftovers import LOCK_DIR

    dead = "d" * 32
    kept = sorted(_parquet_files(votes))[0]
    stray = votes / f"part-00000-{dead}-0123abcd-0000.c000.snappy.parquet"
    shutil.copy(next(votes.rglob(kept)), stray)
    (votes / LOCK_DIR).mkdir(exist_ok=True)
    (votes / LOCK_DIR / f"{dead}.lock").touch()  # its writer's lock file, held by no process: a killed write
    again = apply_lfs.run(spark, cfg, run_id="again")
    assert again.skipped and not stray.exists() and not (votes / LOCK_DIR).exists()  # nor an empty folder
    assert _parquet_files(votes) == committed


@pytest.mark.slow
def test_two_runs_on_one_fresh_lakehouse(tmp_path):
    config = write_config(tmp_path, write_source(tmp_path, make_rows(40)), mlflow={"enabled": True},
                          lfs={"modules": ["tests.jobs.drill_lfs"], "exclude": ["nothing", "hangs"]})
    procs = [_lakelabel("run", "--config", str(config), "--run-id", f"r{i}", "-q", env=_env()) for i in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    for code, err in results:
        assert code in (0, 3), err
        if code == 3:
            assert "lakelabel: error (transient, a retry may succeed)" in err.strip().splitlines()[-1], err
        else:  # -q: nothing from Spark's start-up either, only the JVM's own line about its vector module
            # (and the fit's warning that its LFs vote only 'pos')
            said = {line for line in err.splitlines() if " fit: no LF votes class 'neg'" not in line}
            assert said <= {"WARNING: Using incubator modules: jdk.incubator.vector"}, err
    assert 0 in codes, results


NATIVE_ABORT_AT_EXIT = textwrap.dedent("""
    import atexit, ctypes, sys
    # Stand-in for a native library whose teardown aborts (deltalake/pyarrow thread pools, exit 134):
    # a C-level exit handler that calls abort(), run by libc after the interpreter shuts down.
    libc = ctypes.CDLL("libc.so.6")
    libc.__cxa_atexit.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    libc.__cxa_atexit(ctypes.cast(libc.abort, ctypes.c_void_p).value, None, None)
    atexit.register(lambda: print("python exit handlers ran", flush=True))
    from jobs.cli import entry
    sys.argv = ["lakelabel", *sys.argv[1:]]
    entry()
""")


def test_lakelabel_exits_with_its_code_not_a_native_teardown_abort(tmp_path):
    # The control: a plain interpreter exit with that handler aborts with 134.
    control = subprocess.run([sys.executable, "-c", NATIVE_ABORT_AT_EXIT.replace("entry()", "sys.exit(0)")],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert control.returncode == -signal.SIGABRT
    ok = subprocess.run([sys.executable, "-c", NATIVE_ABORT_AT_EXIT, "package", "--out", str(tmp_path / "dist")],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == "python exit handlers ran"
    bad = subprocess.run([sys.executable, "-c", NATIVE_ABORT_AT_EXIT, "fit", "--config", str(tmp_path / "missing.yaml")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, bad.stderr


def test_console_script_imports_lf_modules_from_the_folder_it_runs_in(tmp_path):
    """`lakelabel` (the console script) finds a team's LF package in the working folder, as `python -m` would."""
    script = Path(sys.executable).parent / "lakelabel"
    assert script.exists(), f"{script}: install the package (pip install -e .) to get the console script"
    team = tmp_path / "team"
    (team / "my_team").mkdir(parents=True)
    (team / "my_team" / "__init__.py").write_text("")
    (team / "my_team" / "tag_lfs.py").write_text(
        "from lf_library import keyword_lf\nLABEL_SPACE = ('neg', 'pos')\n"
        "kw_body = keyword_lf('kw_body', ['refund'], 'pos', field='body')\n")
    source = write_source(tmp_path, make_rows(10))
    config = write_config(tmp_path, source, lfs={"modules": ["my_team.tag_lfs"]})
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's code; not the team's folder
    done = subprocess.run([str(script), "apply", "--config", str(config), "-q"], cwd=team, env=env,
                          capture_output=True, text=True, timeout=120)
    # Imported: the check of the columns it reads (before Spark starts) names its LF.
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("lakelabel: error: LF 'kw_body' read(s) column 'body'"), \
        done.stderr
    elsewhere = subprocess.run([str(script), "apply", "--config", str(config), "-q"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
    assert elsewhere.returncode == 2
    assert "LF module 'my_team.tag_lfs' cannot be imported: No module named 'my_team'" in elsewhere.stderr
    assert "run from the folder that holds it, put that folder on PYTHONPATH" in elsewhere.stderr


def test_missing_model_on_a_fresh_lakehouse_is_one_line(tmp_path):
    """A model LF on a lakehouse whose MLflow store does not exist yet: one line, no MLflow INFO lines under
    -q, and no empty store left behind (the lookup does not create it)."""
    source = write_source(tmp_path, make_rows(10))
    config = write_config(tmp_path, source, lfs={"label_space": ["neg", "pos"], "declared": [
        {"name": "m", "kind": "model", "model_uri": "models:/nope@champion", "label_map": {1: "pos"},
         "fields": ["text"]}]})
    env = {k: v for k, v in _env().items() if k != "MLFLOW_LOGGING_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "apply", "--config", str(config), "-q"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "model URI 'models:/nope@champion' does not resolve" in lines[0], lines
    assert "the store's database" in lines[0] and "does not exist yet" in lines[0], lines
    assert not (tmp_path / "lake").exists()
    # A Databricks workspace without credentials here: one line saying so (MLflow's warning about the SDK client
    # came first, and the hint was to register the model).
    config = write_config(tmp_path, source, lfs={"label_space": ["neg", "pos"], "declared": [
        {"name": "m", "kind": "model", "model_uri": "models:/main.team.clf@champion", "label_map": {1: "pos"},
         "fields": ["text"], "tracking_uri": "databricks"}]})
    env = {k: v for k, v in env.items() if not k.startswith("DATABRICKS_")}
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "apply", "--config", str(config)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "this machine has no credentials for the workspace" in lines[0], lines
    assert "set DATABRICKS_HOST and DATABRICKS_TOKEN" in lines[0], lines
    assert not (tmp_path / "lake").exists()


def test_a_signal_then_a_failed_cleanup_says_the_tables_may_have_moved(capsys):
    """After Ctrl-C or SIGTERM the exit code follows the signal, but only a clean unwind says the tables
    are as before: a restore that failed, or a second Ctrl-C during it, says to check them."""
    from jobs.runtime import exits, signals

    def stopped(signalled: str | None, err: BaseException):
        def call() -> int:
            signals._signalled = signalled  # what the handler records before it raises
            raise err
        return call

    cases = [
        (None, signals.Interrupted(), 130, "lakelabel: interrupted; the tables are as before the run"),
        (None, signals.Terminated(), 143, "lakelabel: terminated (SIGTERM); the tables are as before the run"),
        ("interrupted", RuntimeError("restore of votes failed"), 130,
         "lakelabel: interrupted, then RuntimeError: restore of votes failed; the tables may not be as before the "
         "run: check their history (DESCRIBE HISTORY) before the next run"),
        ("interrupted", KeyboardInterrupt(), 130,
         "lakelabel: interrupted again while the tables were being put back; the tables may not be as before the "
         "run: check their history (DESCRIBE HISTORY) before the next run"),
        ("terminated", OSError("disk gone"), 143,
         "lakelabel: terminated (SIGTERM), then OSError: disk gone; the tables may not be as before the run: check "
         "their history (DESCRIBE HISTORY) before the next run"),
    ]
    for signalled, err, code, line in cases:
        assert exits.guarded(stopped(signalled, err), debug=False) == code
        assert capsys.readouterr().err.strip().splitlines() == [line]


def test_a_spark_setting_spark_cannot_take_is_one_line_not_a_hang(tmp_path):
    """``spark.conf: {spark.sql.shuffle.partitions: abc}``: Spark builds its SQL state lazily and fails on
    the first SQL call, where pyspark's error conversion recursed for as long as the process lived (an
    operator drill's run printed heartbeat lines for 10 minutes). Now exit 2 naming the setting, nothing
    written."""
    source = write_source(tmp_path, make_rows(10))
    config = write_config(tmp_path, source)
    summary = tmp_path / "summary.json"
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "--config", str(config), "-q",
                           "--set", "spark.conf={spark.sql.shuffle.partitions: abc}", "--summary-json", str(summary)],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("lakelabel: error: Spark cannot start a SQL session with these settings: "), last
    assert ("'abc'" in last and '"spark.sql.shuffle.partitions"' in last  # Spark 4.1's error class
            or "spark.sql.shuffle.partitions should be int, but was abc" in last), last  # Spark 4.0's
    assert "fix the value in spark.conf" in last, last
    assert json.loads(summary.read_text())["error"] == last and not (tmp_path / "lake").exists()


@pytest.mark.parametrize("setting, says", [
    # The JVM refuses it before pyspark can talk to it, and prints why on stderr.
    ("spark.executor.memory: lots", "Spark's JVM exited before it started (its reason is printed above"),
    # The SparkContext fails in its start-up: Spark's own exception, in one line.
    ("spark.task.cpus: 0", "Spark did not start (java.lang.ArithmeticException: / by zero)"),
])
def test_a_setting_spark_refuses_at_start_is_exit_2_naming_where_to_look(tmp_path, setting, says):
    """Was exit 1: ``PySparkRuntimeError: [JAVA_GATEWAY_EXITED]`` or ``Py4JJavaError: An error occurred while
    calling None.org.apache.spark.api.java.JavaSparkContext.``, which say neither what nor where."""
    source = write_source(tmp_path, make_rows(10))
    config = write_config(tmp_path, source)
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "--config", str(config), "-q",
                           "--set", f"spark.conf={{{setting}}}"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lakelabel: error: {says}"), last
    assert last.endswith("check spark.conf in the config (or --set 'spark.conf={...}') and --master"), last
    assert not (tmp_path / "lake").exists()


TEAM_LFS_WITH_HELPER = """
import team_helpers
from lf_library import ABSTAIN, labeling_function

LABEL_SPACE = ("neg", "pos")


@labeling_function(fields=["text"])
def team_good(x):
    return team_helpers.vote(x.text)
"""


@pytest.mark.parametrize("case", ["helper module only on the driver", "executors' Python missing"])
def test_executors_that_cannot_run_the_jobs_python_are_exit_2_with_the_fix(tmp_path, case):
    """A helper package that exists only where the job is submitted, or a spark.pyspark.python that does not
    exist on the workers, failed every task attempt; the drill's line called it a Delta write failure (`writing
    Delta table .../votes failed before commit; no table was created: ModuleNotFoundError: No module named
    'team_helpers'`). Now one line that says the executors could not run the job's Python and how to fix it, exit 2
    (a retry fails the same way)."""
    source = write_source(tmp_path, make_rows(10))
    env, argv, cwd = _env(), [], REPO
    if case == "helper module only on the driver":
        team = tmp_path / "team"
        team.mkdir()
        (team / "team_lfs.py").write_text(TEAM_LFS_WITH_HELPER)
        (team / "team_helpers.py").write_text("def vote(text):\n    return 1 if 'love' in text else -1\n")
        # The driver imports both from its working folder; the executors' Python starts elsewhere, so the
        # helper (pickled by reference, unlike the LF module) is looked up there and not found.
        executor = tmp_path / "executor-python"
        executor.write_text(f'#!/bin/sh\ncd / && exec "{sys.executable}" "$@"\n')
        executor.chmod(0o755)
        env["PYSPARK_PYTHON"], cwd = str(executor), team
        config = write_config(tmp_path, source, lfs={"modules": ["team_lfs"]})
        wanted = "No module named 'team_helpers' in the executors' Python"
    else:
        config = write_config(tmp_path, source)
        argv = ["--set", f"spark.conf={{spark.pyspark.python: {tmp_path / 'no-venv' / 'bin' / 'python'}}}"]
        wanted = f'Cannot run program "{tmp_path / "no-venv" / "bin" / "python"}"'
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "--config", str(config), "-q", *argv],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("lakelabel: error: the executors could not run the job's Python: "), last
    assert wanted in last and "failed before commit" not in last, last
    assert "spark.pyspark.python / PYSPARK_PYTHON" in last and "What travels where" in last, last
    if case == "helper module only on the driver":
        assert "--py-files" in last and "install it into the executors' Python" in last, last
    assert not (tmp_path / "lake" / "votes").exists()


CRASHING_LFS = """
import json
import os

from lf_library import ABSTAIN, labeling_function

LABEL_SPACE = ("neg", "pos")


@labeling_function(fields=["text"])
def exits_on_one_row(x):
    if "awful" in x.text:
        os._exit(1)  # what a native library's abort, a segfault or the OOM killer does to the Python worker
    return ABSTAIN
"""


def test_an_lf_that_ends_the_python_worker_says_what_it_means(tmp_path):
    """`os._exit(1)` on one row: every attempt of the task dies. Still exit 3 (a worker killed for memory may get
    through on a retry), but the line says what ended and how to find the LF, instead of Spark's `Python worker
    exited unexpectedly (crashed). Consider setting ...`."""
    team = tmp_path / "team"
    team.mkdir()
    (team / "crashing_lfs.py").write_text(CRASHING_LFS)
    config = write_config(tmp_path, write_source(tmp_path, make_rows(10)), lfs={"modules": ["crashing_lfs"]})
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "--config", str(config), "-q"],
                          cwd=team, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-3000:]
    lines = [line for line in done.stderr.strip().splitlines() if line.startswith("lakelabel:")]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("lakelabel: error (transient, a retry may succeed): writing Delta table "), lines[0]
    # lakelabel's words for what failed, then what it means; not Spark's task failure in between.
    assert ("/lake/votes failed before commit; no table was created: the Python worker running the LFs ended on every attempt of a task (an LF or a library it calls exited "
            "the process, crashed, or was killed for memory); if it repeats on retry, find the LF by running a subset "
            "(--set 'lfs.include=[...]')") in lines[0], lines[0]
    assert "spark.sql.execution.pyspark.udf.faulthandler.enabled: true" in lines[0], lines[0]
    assert "Consider setting" not in lines[0] and "An error occurred while calling" not in lines[0], lines[0]


def test_the_write_checks_write_a_byte_so_a_full_disk_fails_before_the_work(tmp_path):
    """A full disk lets a file be created but not written: the lakehouse and --summary-json checks wrote an empty
    probe and passed, and the run failed at its end (a drill's 4 KB tmpfs). They write a byte now. A file size
    limit of 0 stands in for the full disk (creating files works, writing a byte fails, as there)."""
    code = textwrap.dedent(f"""
        import resource
        from pathlib import Path
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        from jobs.runtime.command import check_out_file
        from jobs.runtime.runs import check_lakehouse
        for check in (lambda: check_out_file(Path({str(tmp_path / 's.json')!r}), "--summary-json", "summary.json"),
                      lambda: check_lakehouse({str(tmp_path / 'lake')!r})):
            try:
                check()
                print("passed")
            except Exception as err:
                print(err)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.splitlines() == [
        f"--summary-json {tmp_path / 's.json'}: the folder {tmp_path} is not writable (File too large); choose a "
        "writable path",
        f"lakehouse {tmp_path / 'lake'} cannot be written (File too large); make it writable for this user or set "
        "lakehouse to a writable folder"], done.stdout + done.stderr
    assert not list(tmp_path.glob(".lakelabel-write-check-*")) and not list((tmp_path / "lake").iterdir())


@pytest.mark.parametrize("setting, message", [
    ("tables.labels=", "tables.labels is empty (''); set it to the labels table's path"),
    ("tables.votes= ", "tables.votes is empty (''); set it to the votes table's path"),
    ("lakehouse=", "lakehouse is empty (''); set it to the folder for the output tables"),
    ("source.path=", "source.path is empty (''); set it to a Delta table, Parquet or CSV path"),
    ("evaluation.path=", "evaluation.path is empty (''); set it to a Delta table, Parquet or CSV path"),
    ("tables.labels=.", "tables.labels = '.' is the lakehouse folder"),
    ("tables.labels=votes", "tables.votes ({lake}/votes) and tables.labels ({lake}/votes) are the same table"),
])
def test_an_empty_or_clashing_path_key_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, setting,
                                                                            message):
    """An unset orchestrator template variable gives `--set tables.labels=`: the labels table went to the
    lakehouse root (`lakehouse=`: the working directory), exit 0."""
    from jobs.runtime import session

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started with an empty path key")

    monkeypatch.setattr(session, "get_spark", no_spark)
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, write_source(tmp_path, make_rows(10)))
    before = sorted(p.name for p in tmp_path.iterdir())
    code, lines = run_cli(capsys, "run", "--config", str(config), "--set", setting, "-q")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("lakelabel: error: " + message.format(lake=tmp_path / "lake")), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no lakehouse, nothing in the working directory


def test_a_damaged_delta_log_is_exit_2_naming_the_table_in_every_command(spark, tmp_path, capsys, monkeypatch):
    """A truncated commit file: explain said `DeltaError: Kernel error: ...` (exit 1), analyze and write
    `cannot load version None of Delta table .../labels: ...` (exit 2, no fix)."""
    config = write_config(tmp_path, write_source(tmp_path, make_rows(20)))
    assert cli.main(["run", "--config", str(config), "--run-id", "r1", "-q"]) == 0
    labels = tmp_path / "lake" / "labels"
    commits = sorted((labels / "_delta_log").glob("*.json"))
    assert commits
    with open(commits[-1], "r+b") as handle:
        handle.truncate(50)
    capsys.readouterr()
    for argv in (["explain", "--row-id", "r001"], ["analyze"], ["write", "--run-id", "r1"]):
        code, lines = run_cli(capsys, *argv, "--config", str(config), "-q")
        assert code == 2 and len(lines) == 1, (argv, lines)
        assert lines[0].startswith(f"lakelabel: error: Delta table {labels}: its Delta log cannot be read (Kernel "
                                   f"error: Json error: "), (argv, lines)
        assert lines[0].endswith(f"; the table is damaged: restore the damaged file under {labels}/_delta_log from a "
                                 f"backup (or the table from a copy) and check the table's history before the next "
                                 f"run"), (argv, lines)
        assert "version None" not in lines[0]
    # A commit file missing between others is damage too; an error that is not about the log (permissions, a
    # store's credentials) is left as it is, not called damage.
    import deltalake
    from deltalake import write_deltalake

    from jobs.delta_io import local

    gap = tmp_path / "gap"
    for i in range(3):
        write_deltalake(str(gap), pd.DataFrame({"a": [i]}), mode="append")
    (gap / "_delta_log" / f"{1:020d}.json").unlink()
    with pytest.raises(Exception, match=r"its Delta log cannot be read \(Kernel error: .*contiguous commit files"):
        local.LocalDeltaIO()._open(str(gap))

    def denied(*args, **kwargs):
        raise deltalake.exceptions.DeltaError("Generic LocalFileSystem error: Permission denied (os error 13)")

    monkeypatch.setattr(deltalake, "DeltaTable", denied)
    with pytest.raises(deltalake.exceptions.DeltaError, match=r"^Generic LocalFileSystem error: Permission denied"):
        local.LocalDeltaIO()._open(str(labels))


def test_package_out_that_is_a_file_is_one_line_exit_2(tmp_path, capsys):
    """`lakelabel package --out FILE` exited 1 with `FileExistsError: [Errno 17] File exists`."""
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    code, lines = run_cli(capsys, "package", "--out", str(afile), "-q")
    assert code == 2 and lines == [f"lakelabel: error: --out {afile} is a file; --out names the folder to write "
                                   f"lakelabel-{package_version()}.zip into (default dist): pass a folder path"], lines
    code, lines = run_cli(capsys, "package", "--out", str(afile / "dist"), "-q")
    assert code == 2 and lines == [f"lakelabel: error: --out {afile / 'dist'} lies under {afile}, which is a file; "
                                   f"--out names the folder to write lakelabel-{package_version()}.zip into (default "
                                   f"dist): pass a folder path"], lines
    assert afile.read_text() == "keep me"
    assert run_cli(capsys, "package", "--out", str(tmp_path / "dist"), "-q")[0] == 0
    assert [p.name for p in (tmp_path / "dist").iterdir()] == [f"lakelabel-{package_version()}.zip"]


@pytest.mark.parametrize("command, says", [
    (["verify"], "the run whose labels to rebuild and check (required)"),
    (["analyze"], "the run to read (default: the run that wrote the latest labels)"),
    (["explain"], "the run to read (default: the run that wrote the latest labels)"),
    (["train"], "the run to read (default: the run that wrote the latest labels)"),
    (["annotate"], "the run to read (default: the run that wrote the latest labels)"),
    (["diff"], "the later run when --to is not given (--to RUN says the same): diff RUN with the run before it"),
    (["run"], "run id (default: a new one); rerunning with the same id is a no-op per stage"),
])
def test_run_id_help_says_what_the_option_does_in_each_command(capsys, command, says):
    """Every command's --help said "run id (default: a new one); rerunning ... is a no-op", also where
    --run-id picks an existing run, or is required (verify)."""
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert f"--run-id RUN_ID {says}" in text, text
    assert ("no-op per stage" in text) == (command == ["run"])
    assert "--env ENV environment overlay: env/<ENV>.yaml beside the config, else lakelabel's conf/env/<ENV>.yaml" in text


def test_every_help_ends_with_the_exit_codes(capsys):
    """A scheduler's author reads `--help`, not the README: each command's help (and the top one's, and a
    command group's) ends with what each exit code means; it listed none."""
    commands = [name.split(" ") for name in cli.parser().command_parsers]
    for argv in ([], ["gold"], *commands):
        with pytest.raises(SystemExit) as stop:
            cli.main([*argv, "--help"])
        assert stop.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert text.endswith(("hold what they held before).", "lakelabel COMMAND --help.")), (argv, text[-200:])
        for says in ("exit codes: 0 success, the output can be trusted;", "2 bad input", "3 transient",
                     "1 unexpected", "130/143 interrupted/terminated"):
            assert says in text, (argv, says)
    assert len(commands) >= 15


@pytest.mark.slow
def test_a_run_killed_after_its_fit_is_passed_over_by_a_write_alone(spark, tmp_path, capsys, monkeypatch):
    """A run killed by SIGKILL after it fitted (a timeout's kill -9, the out-of-memory killer) had no chance to
    mark itself failed, and `lakelabel write` without --run-id took its model, which never passed the run's drift
    gate, as the latest fitted run's. The run holds a marker with its process while it hands files on: a write
    alone passes over the killed run, and `write --run-id` of it is exit 2 saying it was killed."""
    from jobs import pipeline, write_labels
    from jobs.runtime import runs
    from jobs.runtime.config_loading import load_config

    config = write_config(tmp_path, write_source(tmp_path, make_rows(40)))
    pipeline.run(spark, load_config(config), run_id="before")
    assert not (runs.run_dir(tmp_path / "lake", "before") / runs.RUNNING_FILE).exists()
    kill_in_write = ("import os, signal, sys; from jobs import cli, write_labels; "
                     "write_labels.run = lambda *a, **k: os.killpg(os.getpgid(0), signal.SIGKILL); "
                     "sys.exit(cli.main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", kill_in_write, "run", "--config", str(config), "--run-id", "killed"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600, start_new_session=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    folder = runs.run_dir(tmp_path / "lake", "killed", create=False)
    assert (folder / "label_model.json").exists() and not (folder / "summary.json").exists()
    assert runs.failed_run(tmp_path / "lake", "killed")["status"] == "killed"

    summary = tmp_path / "write.json"
    code, lines = run_cli(capsys, "write", "--config", str(config), "--summary-json", str(summary))
    assert code == 0, lines
    assert json.loads(summary.read_text())["label_model"]["run_id"] == "before"
    code, lines = run_cli(capsys, "write", "--config", str(config), "--run-id", "killed")
    assert code == 2
    assert lines[-1].startswith("lakelabel: error: run 'killed' was killed after it aggregated (it ended without "
                                "marking itself done or failed (SIGKILL, out of memory); began "), lines
    # A new fit of the run is a choice to use its statistics: the run is a candidate again; not while a live process
    # holds the run (this one, here), whose model it would replace under its checks.
    killed_mark = (folder / runs.RUNNING_FILE).read_text()
    runs.mark_running(tmp_path / "lake", "killed")
    code, lines = run_cli(capsys, "fit", "--config", str(config), "--run-id", "killed")
    assert code == 2 and "run 'killed' is still running (began " in lines[-1], lines
    (folder / runs.RUNNING_FILE).write_text(killed_mark)
    assert run_cli(capsys, "fit", "--config", str(config), "--run-id", "killed")[0] == 0
    assert runs.failed_run(tmp_path / "lake", "killed") is None
    # A rerun of a run that succeeded, with other settings, fails in its write and puts the tables back; the run
    # again with its first settings is not "complete, nothing to do": the failed attempt's model (other settings)
    # is in its folder, so it runs again (a review: a retry that only cleared the mark published that model).
    cfg = load_config(config)
    assert pipeline.run(spark, cfg, run_id="again").summary["status"] == "succeeded"
    with monkeypatch.context() as patched:
        patched.setattr(write_labels, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("labels disk full")))
        with pytest.raises(OSError, match="disk full"):
            pipeline.run(spark, load_config(config, overrides=["label_model.method=majority"]), run_id="again")
    assert runs.failed_run(tmp_path / "lake", "again")["status"] == "failed"
    again = pipeline.run(spark, cfg, run_id="again").summary
    assert not again["reused"] and again["label_model"]["method"] == cfg.label_model.method
    assert runs.failed_run(tmp_path / "lake", "again") is None
    assert json.loads((runs.run_dir(tmp_path / "lake", "again") / "fit.json").read_text())["model_version"] == \
        again["label_model"]["version"]


def test_lines_name_at_most_ten_lfs():
    """An incremental apply's line named all 303 kept LFs of a wide library (3,969 characters, a drill)."""
    from jobs.runtime.exits import few_names

    assert few_names([f"kw_{i}" for i in range(303)]) == ", ".join(f"kw_{i}" for i in range(10)) + ", ... (293 more)"
    assert few_names(["a", "b"]) == "a, b" and few_names([]) == ""
