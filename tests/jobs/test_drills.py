"""Reliability drills on the shared Spark session: bad input fails in one line, nothing committed.

Each test reproduces an operator's drill from issue 9 that used to end in a silent bad run (exit 0
with replaced labels), a raw traceback, a job that hangs forever or files left behind.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from deltalake import DeltaTable

from jobs import apply_lfs, delta_io, pipeline
from jobs.delta_io.leftovers import LOCK_DIR, WriterLock
from jobs.runtime.config_loading import config_from_dict, load_config
from lf_library import ABSTAIN, LFRegistry, keyword_lf, labeling_function
from lf_library.errors import ConfigError, InputDataError, LFTimeoutError
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source
from tests.label_studio_server import free_port

pytestmark = pytest.mark.spark


def versions(cfg) -> tuple[int | None, int | None]:
    return delta_io.table_version(cfg.table_path("votes")), delta_io.table_version(cfg.table_path("labels"))


def csv_cfg(tmp_path, path, options=None, **apply):
    return config_from_dict({
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": str(path), "format": "csv", "id_column": "id", "options": options or {}},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space", "stars", "short_text"]},
        "apply": apply,
        "mlflow": {"enabled": False},
    })


GOOD_CSV = 'id,text,note\nr1,"I love it",a\nr2,awful,b\nr3,"great, really",c\nr4,"hate\nit",d\nr5,ok,e\n'


def test_ragged_csv_names_file_and_line_and_keeps_labels(spark, tmp_path):
    """A row with too many fields and one with too few: each fails naming file and line; labels stay.

    One good run first (shared by both cases, so the source is labeled once), then per ragged line:
    the default mode fails and commits nothing, and PERMISSIVE (a mode the user chose) runs.
    """
    src = tmp_path / "src.csv"
    src.write_text(GOOD_CSV)
    cfg = csv_cfg(tmp_path, src)
    pipeline.run(spark, cfg, run_id="good")
    for bad_line, fields in [("r9,great,x,EXTRA\n", 4), ("r9,great\n", 2)]:
        before = versions(cfg)
        # Line 8: the quoted field of r4 spans lines 5 and 6.
        src.write_text(GOOD_CSV + bad_line)
        with pytest.raises(InputDataError) as err:
            pipeline.run(spark, cfg, run_id=f"ragged-{fields}")
        assert f"{src} line 8: {fields} fields, the header has 3" in str(err.value), bad_line
        assert "source.options.mode" in str(err.value)
        assert versions(cfg) == before, bad_line
        # A mode the user chose is honoured: PERMISSIVE pads or truncates the row, as Spark does.
        permissive = csv_cfg(tmp_path, src, options={"mode": "PERMISSIVE"})
        result = pipeline.run(spark, permissive, run_id=f"permissive-{fields}")
        assert result.summary["source"]["rows"] == 6, bad_line


def test_no_votes_at_all_fails_and_previous_labels_stay(spark, tmp_path):
    src = write_source(tmp_path, make_rows(20))
    cfg = make_cfg(tmp_path, src)
    pipeline.run(spark, cfg, run_id="good")
    before = versions(cfg)
    silent = make_cfg(tmp_path, src, lfs={"modules": ["tests.jobs.drill_lfs"], "include": ["nothing"], "exclude": []})
    with pytest.raises(InputDataError, match=r"no LF voted on any of the 20 rows .* previous votes and labels stay"):
        pipeline.run(spark, silent, run_id="silent")
    assert versions(cfg) == before


def test_coverage_below_min_coverage_fails(spark, tmp_path):
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(20)),
                   lfs={"include": ["good_words"], "exclude": []}, apply={"min_coverage": 0.9})
    with pytest.raises(InputDataError, match=r"voted on 8 of 20 rows .*40\.0%.* below apply.min_coverage=90\.0%"):
        pipeline.run(spark, cfg, run_id="low")
    assert versions(cfg) == (None, None)
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["_lakelabel"]  # no stray folder either
    # The share is rounded down, so a coverage below the bar never reads as the bar itself.
    from jobs.apply_lfs import _share_below

    assert _share_below(1999, 2000) == "99.9%" and _share_below(8, 20) == "40.0%"
    with pytest.raises(ConfigError, match="apply.min_coverage = 1.5 must be between 0 and 1"):
        make_cfg(tmp_path, "x", apply={"min_coverage": 1.5})


@pytest.mark.parametrize("where", ["first", "last"])
def test_corrupt_parquet_file_is_named(spark, tmp_path, where):
    src = Path(write_source(tmp_path, make_rows(20)))
    bad = src / ("part-00.parquet" if where == "first" else "part-9.parquet")
    bad.write_bytes(b"PAR1" + os.urandom(2000) + b"PAR1")
    cfg = make_cfg(tmp_path, str(src))
    with pytest.raises(InputDataError) as err:
        pipeline.run(spark, cfg, run_id="corrupt")
    assert f"Parquet file {bad}" in str(err.value)
    assert versions(cfg) == (None, None)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lakehouse: ./lake\nsource:\n  path: [a, b\n  format: csv\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message == (f"config file {path} is not valid YAML: line 4, column 9: while parsing a flow sequence "
                       f"expected ',' or ']', but got ':'; fix the file")
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"--set 'apply.batch_size=\[1': the value is not valid YAML \(line 1"):
        load_config(None, overrides=["apply.batch_size=[1"], defaults={"source": {"path": "x"}})


def test_hung_lf_fails_naming_lf_and_row_within_budget(spark, tmp_path):
    df = make_rows(30)
    df.loc[17, "text"] = "this one will hang"
    cfg = make_cfg(tmp_path, write_source(tmp_path, df), lfs={"modules": ["tests.jobs.drill_lfs"], "exclude": ["nothing"]},
                   apply={"lf_timeout_seconds": 1.0, "batch_size": 10})
    started = time.perf_counter()
    with pytest.raises(LFTimeoutError) as err:
        apply_lfs.run(spark, cfg, run_id="hang")
    assert time.perf_counter() - started < 1800  # the LF sleeps for an hour; the budget cut it short
    assert "LF 'hangs' ran longer than apply.lf_timeout_seconds=1s on one batch" in str(err.value)
    assert "at row id r017" in str(err.value)
    assert str(err.value).endswith("or lower apply.batch_size (the budget is per batch: long texts make long batches)")
    assert versions(cfg)[0] is None
    assert not list(Path(cfg.table_path("votes")).rglob("*.parquet"))


def test_crashed_python_worker_costs_a_task_retry(spark, tmp_path):
    marker = str(tmp_path / "crashed")

    @labeling_function(fields=["text"], resources={"marker": marker})
    def crash_once(x, marker):
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the Python worker dies, as on a segfault or the OOM killer
        return ABSTAIN

    registry = LFRegistry(("neg", "pos"))
    registry.register(keyword_lf("good_words", ["great", "love"], "pos"))
    registry.register(crash_once)
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(20)))
    assert spark.sparkContext.master == "local[2,4]"
    applied = apply_lfs.run(spark, cfg, run_id="crash", registry=registry)
    assert os.path.exists(marker)
    assert applied.votes_version == 0 and applied.n_rows == 20
    table = DeltaTable(cfg.table_path("votes"))
    committed = {os.path.basename(p) for p in table.file_uris()}
    on_disk = {p.name for p in Path(cfg.table_path("votes")).rglob("*.parquet")}
    assert on_disk == committed  # the killed attempt's partial file (if any) was deleted


def test_next_write_sweeps_only_dead_lakelabel_leftovers(spark, tmp_path):
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(20)))
    apply_lfs.run(spark, cfg, run_id="first")
    root = Path(cfg.table_path("votes"))
    dead, live, unlocked = "a" * 32, "b" * 32, "c" * 32
    files = {name: root / f"part-00000-{wid}-0123abcd-0000.c000.snappy.parquet"
             for name, wid in [("dead", dead), ("live", live), ("unlocked", unlocked)]}
    files["foreign"] = root / "part-00000-someone-else.snappy.parquet"
    for path in files.values():
        path.write_bytes(b"not committed")
    (root / LOCK_DIR).mkdir(exist_ok=True)
    (root / LOCK_DIR / f"{dead}.lock").write_text("a writer that was killed\n")  # lock file, nobody holds it
    with WriterLock(str(root), live):  # a writer still running in this process
        apply_lfs.run(spark, cfg, run_id="second", force=True)
        assert not files["dead"].exists()
        assert not (root / LOCK_DIR / f"{dead}.lock").exists()
        assert files["live"].exists()
    assert files["unlocked"].exists()  # no lock file and young: maybe an older lakelabel, left alone
    assert files["foreign"].exists()  # not lakelabel's naming: never touched
    old = time.time() - 2 * 24 * 3600
    os.utime(files["unlocked"], (old, old))
    apply_lfs.run(spark, cfg, run_id="third", force=True)
    assert not files["unlocked"].exists()
    assert files["live"].exists()  # its lock is gone now, but it has no lock file and is young
    assert DeltaTable(str(root)).to_pandas().shape[0] > 0


def test_a_stopped_write_leaves_no_file_a_task_finished_late(spark, tmp_path):
    """A drill (session 23): SIGTERM in the write stage left a Parquet file in the labels folder, finished by a
    task after the write had deleted its files; with its lock file gone, sweeps left it alone for a day. The
    stopped write now waits for its cancelled tasks, and a file that still appears keeps its lock file for the
    next write's sweep."""

    from jobs.delta_io import local
    from jobs.delta_io.leftovers import sweep

    # A job of two tasks, one failing at once, the other writing a file 3 s later (as a write task its Parquet
    # file). The failed job's stage ends at once, its killed Python task ran on for seconds: job_group returns only
    # when no task of its group runs, so no file appears after it (session 25; it waited for the stages only).
    marker = tmp_path / "late.txt"

    def late_file(batches):
        from pyspark import TaskContext

        for batch in batches:
            if TaskContext.get().partitionId() == 0:
                raise ValueError("boom")
            time.sleep(3)
            marker.write_text("written by a task")
            yield batch

    before = spark.sparkContext.getLocalProperty("spark.jobGroup.id")  # an earlier test's stage, or None
    with pytest.raises(Exception, match="boom"):
        with local.job_group(spark, "drill"):
            spark.range(2, numPartitions=2).mapInPandas(late_file, "id long").collect()
    returned = time.time()
    time.sleep(4)
    assert not marker.exists() or marker.stat().st_mtime <= returned
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") == before  # the group is put back

    root = tmp_path / "labels"
    root.mkdir()
    wid = "d" * 32
    late = root / f"part-00001-{wid}-0123abcd-0000.c000.snappy.parquet"
    with pytest.raises(KeyboardInterrupt):
        with WriterLock(str(root), wid):
            late.write_bytes(b"finished after the write deleted its files")
            raise KeyboardInterrupt
    assert (root / LOCK_DIR / f"{wid}.lock").exists()  # unlocked: its writer is done
    assert sweep(str(root), [], []) == [str(late)] and not (root / LOCK_DIR / f"{wid}.lock").exists()
    with pytest.raises(KeyboardInterrupt):  # nothing left behind: no lock file either
        with WriterLock(str(root), "e" * 32):
            raise KeyboardInterrupt
    assert not (root / LOCK_DIR).exists()


def test_a_write_whose_spark_context_stopped_under_it_keeps_its_lock_so_a_late_file_is_swept(spark, tmp_path,
                                                                                           monkeypatch):
    """A SIGTERM to spark-submit stops Spark's JVM under the Python driver: the write's job fails ("SparkContext was
    shut down") with no context to cancel or wait for its tasks, and an executor's Python worker finished 13 vote
    files after the write deleted its own (a cluster drill). The write's cleanup deleted its lock file with its data
    files, so no sweep took them for 24 hours."""
    from jobs.delta_io import local
    from jobs.delta_io.errors import DeltaWriteError

    io, root = local.LocalDeltaIO(), tmp_path / "votes"
    io.write_table(spark.createDataFrame([(1, "a")], "id long, v string"), str(root), mode="overwrite")

    def stopped_under_it(batches):
        for batch in batches:
            raise RuntimeError("Job 4 cancelled because SparkContext was shut down")
            yield batch

    failing = spark.createDataFrame([(2, "b")], "id long, v string").mapInPandas(stopped_under_it, "id long, v string")
    with monkeypatch.context() as patch:
        patch.setattr(local, "context_stopped", lambda session: True)  # as under spark-submit's stopped JVM
        with pytest.raises(DeltaWriteError, match="SparkContext was shut down"):
            io.write_table(failing, str(root), mode="overwrite")
    (lock,) = (root / LOCK_DIR).glob("*.lock")  # the failed write's, unlocked: its writer is done
    late = root / f"part-00001-{lock.stem}-0123abcd-0000.c000.snappy.parquet"
    late.write_bytes(b"finished by an executor's Python worker after the driver's cleanup")
    io.write_table(spark.createDataFrame([(3, "c")], "id long, v string"), str(root), mode="overwrite")
    assert not late.exists() and not (root / LOCK_DIR).exists()
    assert DeltaTable(str(root)).to_pandas()["id"].tolist() == [3]
    assert local.context_stopped(spark) is False  # the shared session runs


def _ignore(call):
    try:
        call()
    except Exception:  # the cancelled job's error
        pass


def test_worker_that_crashes_on_every_attempt_is_transient_exit_3(spark, tmp_path, capsys):
    from jobs.runtime.exits import EXIT_TRANSIENT, guarded

    @labeling_function(fields=["text"])
    def always_crashes(x):
        os._exit(1)

    registry = LFRegistry(("neg", "pos"))
    registry.register(always_crashes)
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(10)))
    code = guarded(lambda: apply_lfs.run(spark, cfg, run_id="crashes", registry=registry) and 0, debug=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_TRANSIENT, err
    assert err[-1].startswith("lakelabel: error (transient, a retry may succeed): writing Delta table")
    assert versions(cfg)[0] is None
    assert not list(Path(cfg.table_path("votes")).rglob("*.parquet"))


def test_delta_commit_that_loses_a_race_is_transient_exit_3(spark, tmp_path, capsys, monkeypatch):
    """A real race on the local writer: between lakelabel writing its votes files and committing them,
    another writer (delta-rs) overwrites the table. lakelabel's commit conflicts; the run exits 3 with one
    line, its files are deleted and the table holds the other writer's commit alone."""
    from deltalake import write_deltalake

    from jobs.delta_io.local import LocalDeltaIO
    from jobs.runtime.exits import EXIT_TRANSIENT, guarded

    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(10)))
    apply_lfs.run(spark, cfg, run_id="first")
    votes = cfg.table_path("votes")
    theirs = DeltaTable(votes).to_pyarrow_table().slice(0, 3)
    commit = LocalDeltaIO._commit

    def another_writer_first(self, root, *args):
        if root == votes:
            write_deltalake(votes, theirs, mode="overwrite")
        return commit(self, root, *args)

    monkeypatch.setattr(LocalDeltaIO, "_commit", another_writer_first)
    code = guarded(lambda: apply_lfs.run(spark, cfg, run_id="second", force=True) and 0, debug=False)
    # The command's own line (a test before may leave the jobs' INFO log on stderr, as without -q).
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("lakelabel")]
    assert code == EXIT_TRANSIENT, err
    assert len(err) == 1 and err[0].startswith(
        f"lakelabel: error (transient, a retry may succeed): committing 9 file(s) to Delta table {votes} failed; "
        "the files were deleted and the table is at version 1, another writer's commit: "), err
    table = DeltaTable(votes)
    assert table.version() == 1
    assert "lakelabel.writeId" not in (table.history(1)[0].get("userMetadata") or "")  # v1 is the other writer's
    assert table.to_pyarrow_table().sort_by("row_id").equals(theirs.sort_by("row_id"))
    committed = {os.path.basename(p) for v in (0, 1) for p in DeltaTable(votes, version=v).file_uris()}
    assert {p.name for p in Path(votes).rglob("*.parquet")} == committed  # lakelabel's own files are gone


def write_config(path, cfg, source: str, mlflow: dict) -> None:
    """A YAML config for ``cli.main`` of ``cfg``'s lakehouse and ``source`` with the sample LFs and ``mlflow``."""
    import yaml

    path.write_text(yaml.safe_dump({"lakehouse": str(cfg.lakehouse), "source": {"path": source, "id_column": "id"},
                                    "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
                                    "mlflow": mlflow}))


def server_to_lose(tmp_path, monkeypatch, name: str):
    """A port nothing listens on (the server a test loses), MLflow's retries off, and a config of a 10-row source
    logging to its lakehouse's own store: ``(port, cfg, path of the config)``."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    source = write_source(tmp_path, make_rows(10))
    cfg = make_cfg(tmp_path, source)
    path = tmp_path / f"{name}.yaml"
    write_config(path, cfg, source, {"experiment": name})
    return free_port(), cfg, path  # nothing listens on the port: a tracking server that is down


def test_busy_mlflow_store_is_transient_exit_3(spark, tmp_path, capfd, monkeypatch):
    """`lakelabel run` on a lakehouse whose sqlite MLflow store another connection holds with an exclusive
    lock: MLflow's own query fails with "database is locked", the run exits 3 with one line (MLflow's logged
    traceback stays out of it) and writes no table."""
    import sqlite3
    import types

    from mlflow.store.db import utils as db_utils

    from jobs import cli
    from jobs.runtime import tracking

    # MLflow sets a 20 s busy timeout on every session it opens; 0.3 s here, the lock held all the same.
    text = db_utils.sql.text
    monkeypatch.setattr(db_utils, "sql", types.SimpleNamespace(
        text=lambda stmt: text(stmt.replace("busy_timeout = 20000", "busy_timeout = 300"))))
    source = write_source(tmp_path, make_rows(10))
    cfg = make_cfg(tmp_path, source, mlflow={"enabled": True, "experiment": "busy"})
    tracking.start_run(cfg, "first")  # creates the store and the experiment
    tracking.end_run(cfg)
    path = tmp_path / "busy.yaml"
    write_config(path, cfg, source, {"experiment": "busy"})
    holder = sqlite3.connect(cfg.lakehouse_path / "mlflow.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        capfd.readouterr()
        code = cli.main(["run", "-q", "--config", str(path), "--run-id", "busy"])
    finally:
        holder.close()
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 3, err
    assert err == ["lakelabel: error (transient, a retry may succeed): the MLflow store was busy or being created "
                   "by another process (MlflowException: (sqlite3.OperationalError) database is locked)"]
    assert versions(cfg) == (None, None)


def test_tracking_server_that_does_not_answer_is_transient_exit_3(spark, tmp_path, capfd, monkeypatch):
    """`lakelabel run` logging to an MLflow tracking server that is down: after MLflow's own HTTP retries (none here)
    the run exits 3 with one line naming the server and the fix, not exit 1 with MLflow's urllib3 text, and writes
    no table. One that refuses the request is exit 2."""
    import http.server
    import json
    import threading


    from jobs import cli

    port = free_port()  # nothing listens there: a tracking server that is down
    # MLflow's retries, shortened (0 then 2 s, and jitter): the heartbeat says what the run waits for meanwhile
    for name, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                        ("LAKELABEL_PROGRESS_SECONDS", "1")):
        monkeypatch.setenv(name, value)
    source = write_source(tmp_path, make_rows(10))
    cfg = make_cfg(tmp_path, source)
    path = tmp_path / "down.yaml"
    write_config(path, cfg, source, {"tracking_uri": f"http://127.0.0.1:{port}"})
    capfd.readouterr()
    code = cli.main(["run", "--config", str(path), "--run-id", "down"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 3, err
    assert any(f"run: working, waiting for the MLflow tracking server http://127.0.0.1:{port}, " in line
               for line in err), err
    assert err[-1:] == [f"lakelabel: error (transient, a retry may succeed): the MLflow tracking server "
                   f"http://127.0.0.1:{port} did not answer (Connection refused) after MLflow's HTTP retries "
                   f"(MLFLOW_HTTP_REQUEST_MAX_RETRIES): check that it is running and reachable at "
                   f"mlflow.tracking_uri or MLFLOW_TRACKING_URI, or set mlflow.enabled to false to run without it"]
    assert versions(cfg) == (None, None)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    # A server that answers and refuses (MLflow's permission error, a real HTTP server on 127.0.0.1): exit 2, the fix.
    denied = json.dumps({"error_code": "PERMISSION_DENIED", "message": "User lakelabel lacks permission"}).encode()

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(denied)))
            self.end_headers()
            self.wfile.write(denied)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        text = path.read_text().replace(f"127.0.0.1:{port}", f"127.0.0.1:{server.server_address[1]}")
        path.write_text(text)
        try:
            code = cli.main(["run", "-q", "--config", str(path), "--run-id", "denied"])
        finally:
            server.shutdown()
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err == [f"lakelabel: error: the MLflow tracking server http://127.0.0.1:{server.server_address[1]} "
                   "refused the request (PERMISSION_DENIED: User lakelabel "
                   "lacks permission): check the credentials MLflow reads (MLFLOW_TRACKING_TOKEN, or "
                   "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD) and mlflow.tracking_uri or "
                   "MLFLOW_TRACKING_URI"]
    assert versions(cfg) == (None, None)


def test_a_stage_whose_tracking_server_stops_answering_after_its_work(spark, tmp_path, capfd, monkeypatch):
    """A drill (session 32) killed the tracking server while stage jobs ran. `apply --run-id` committed its votes,
    then exited 3 with the server's line alone (the README says a failing stage commits nothing): the line now says
    the commit stands and how to complete the run. `fit` saved its model, then exited 3, and a later `write` without
    --run-id published labels from that model: the folder is now marked failed, and `write` passes over it until a
    fit of that run id succeeds. A server that is down before a command starts fails it before its work."""
    from jobs import cli
    from jobs.runtime import tracking

    port, cfg, path = server_to_lose(tmp_path, monkeypatch, "stages")
    attach = tracking.attach_run

    def server_gone(cfg, run_id):  # the store stops answering once the stage's work is done, until the command ends
        os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        return attach(cfg, run_id)

    def stage(*args, gone=False):
        with monkeypatch.context() as m:
            if gone:
                m.setattr(tracking, "attach_run", server_gone)
                m.setenv("MLFLOW_TRACKING_URI", "")  # put back (to none) when the command has ended
            capfd.readouterr()
            code = cli.main([*args, "-q", "--config", str(path)])
        return code, capfd.readouterr().err.strip().splitlines()

    code, err = stage("apply", "--run-id", "st", gone=True)
    assert code == 3, err
    down = (f"lakelabel: error (transient, a retry may succeed): the MLflow tracking server http://127.0.0.1:{port} did "
            f"not answer (Connection refused) after MLflow's HTTP retries")
    assert err[-1].startswith(down) and err[-1].endswith(
        f"; it committed votes {cfg.table_path('votes')} v0 before that, which stand: its run record (MLflow, summary) "
        f"may be incomplete: rerun the command with --run-id st to complete it"), err
    assert versions(cfg)[0] == 0
    assert stage("aggregate", "--run-id", "st")[0] == 0
    code, err = stage("fit", "--run-id", "st", gone=True)
    assert code == 3 and err[-1].startswith(down) and "committed" not in err[-1], err
    folder = cfg.lakehouse_path / "_lakelabel" / "runs" / "st"
    assert (folder / "label_model.json").exists() and (folder / "failed.json").exists()
    code, err = stage("write")
    assert code == 2 and "no fitted label model under" in err[-1], err  # the failed fit's model is passed over
    assert versions(cfg)[1] is None
    assert stage("fit", "--run-id", "st")[0] == 0 and not (folder / "failed.json").exists()
    assert stage("write")[0] == 0 and versions(cfg)[1] == 0
    # A server that is down before a command starts fails it before its work: analyze wrote its document first.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    code, err = stage("analyze", "--run-id", "st")
    assert code == 3 and err[-1].startswith(down) and not (folder / "analysis.json").exists(), err


def test_a_run_whose_tracking_server_stops_answering_at_its_end_leaves_no_succeeded_summary(spark, tmp_path, capfd,
                                                                                            monkeypatch):
    """A drill (session 32) killed the tracking server while a run logged its end: the run put the tables back and
    exited 3, but its folder kept a summary.json saying "succeeded" with the labels version it had taken back, which
    verify and explain then read as a run that wrote it (exit 0). The summary is now written after the run's MLflow
    logging, so a run that fails there leaves none (an earlier attempt's stays as it was)."""
    from jobs import cli
    from jobs.runtime import tracking

    port, cfg, path = server_to_lose(tmp_path, monkeypatch, "end")
    assert cli.main(["run", "-q", "--config", str(path), "--run-id", "end"]) == 0
    summary = cfg.lakehouse_path / "_lakelabel" / "runs" / "end" / "summary.json"
    before, kept = versions(cfg), summary.read_text()
    log_write = tracking.log_write

    def server_gone(*args):  # the store stops answering as the run logs its end, until the command ends
        os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        return log_write(*args)

    monkeypatch.setattr(tracking, "log_write", server_gone)
    capfd.readouterr()
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_TRACKING_URI", "")  # put back (to none) when the command has ended
        code = cli.main(["run", "-q", "--config", str(path), "--run-id", "end", "--force"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 3 and "did not answer (Connection refused)" in err[-1] and "committed" not in err[-1], err
    assert summary.read_text() == kept  # the first attempt's record, not one naming labels that were taken back
    labels = DeltaTable(cfg.table_path("labels"))
    assert labels.version() == before[1] + 2  # the forced rerun's labels, then the restore of the earlier ones
    assert labels.history(1)[0]["operation"] == "RESTORE"
    # A new run id that fails there leaves no summary at all.
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_TRACKING_URI", "")
        code = cli.main(["run", "-q", "--config", str(path), "--run-id", "end-2", "--force"])
    assert code == 3 and not (summary.parent.parent / "end-2" / "summary.json").exists()


def test_unexpected_error_is_exit_1_in_one_line_and_its_traceback_with_verbose(spark, tmp_path, capsys, monkeypatch):
    """README "Command line": anything unexpected (here a RuntimeError inside `lakelabel run`) exits 1 with one
    line that points at --verbose; with --verbose the traceback comes before that line."""
    import yaml

    from jobs import cli

    def a_bug_in_lakelabel(*args, **kwargs):
        raise RuntimeError("a bug somewhere in lakelabel")

    monkeypatch.setattr(pipeline, "load_source", a_bug_in_lakelabel)
    for name, value in (("LAKELABEL_SPARK_LOG_LEVEL", "WARN"), ("MLFLOW_LOGGING_LEVEL", "WARNING")):
        monkeypatch.setenv(name, os.environ.get(name, value))  # what -v sets, put back after the test
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"lakehouse": str(tmp_path / "lake"),
                                      "source": {"path": write_source(tmp_path, make_rows(10)), "id_column": "id"},
                                      "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
                                      "mlflow": {"enabled": False}}))
    capsys.readouterr()
    assert cli.main(["run", "-v", "--config", str(config), "--run-id", "bug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and "in a_bug_in_lakelabel" in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "lakelabel: error: RuntimeError: a bug somewhere in lakelabel"
    assert cli.main(["run", "--config", str(config), "--run-id", "bug"]) == 1  # last: the default log levels stay
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("lakelabel")] == [
        "lakelabel: error: RuntimeError: a bug somewhere in lakelabel (rerun with --verbose for the traceback)"]
    assert err.strip().splitlines()[-1].startswith("lakelabel: error: RuntimeError")


def test_drop_duplicate_rows_drops_exact_copies_but_a_repeated_id_with_other_content_fails(spark, tmp_path, capsys,
                                                                                           caplog):
    """README "Configuration reference", source.drop_duplicate_rows: exact copies of a row are dropped before
    labeling (one INFO line and the summary count them); an id that repeats with different content still
    fails (exit 2, naming the id). Without the option, copies fail with the option as the fix."""
    import logging
    from dataclasses import replace

    import pandas as pd

    from jobs.runtime.exits import EXIT_INPUT, guarded

    rows = make_rows(10)
    copies = pd.concat([rows, rows.iloc[[1, 2, 2]]], ignore_index=True)  # r001 twice, r002 three times
    cfg = make_cfg(tmp_path, write_source(tmp_path, copies))
    cfg = replace(cfg, source=replace(cfg.source, drop_duplicate_rows=True))
    with caplog.at_level(logging.INFO, logger="jobs.delta_io.sources"):
        ran = pipeline.run(spark, cfg, run_id="dedup").summary
    labels = DeltaTable(cfg.table_path("labels")).to_pandas()
    assert ran["source"]["rows"] == 10 and sorted(labels.row_id) == sorted(rows.id)
    assert ran["source"]["duplicate_rows_dropped"] == 3
    dropped = [r.getMessage() for r in caplog.records if "exact duplicate" in r.getMessage()]
    assert dropped == [f"source {ran['source']['path']}: dropped 3 exact duplicate row(s) (source.drop_duplicate_rows)"]
    assert pipeline.run(spark, cfg, run_id="dedup2").summary["source"]["duplicate_rows_dropped"] == 3  # votes reused
    assert versions(cfg) == (0, 1)
    votes = DeltaTable(cfg.table_path("votes")).to_pandas()
    assert not votes.duplicated(["row_id", "lf_name"]).any()

    def fails(source_cfg) -> str:
        capsys.readouterr()
        code = guarded(lambda: pipeline.run(spark, replace(cfg, source=source_cfg), run_id="again", force=True) and 0,
                       debug=False)
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lakelabel")]  # not the log
        assert code == EXIT_INPUT and len(err) == 1 and err[0].startswith("lakelabel: error: "), err
        return err[0]

    # Without the option the copies are repeated ids.
    line = fails(replace(cfg.source, drop_duplicate_rows=False))
    assert "is not unique: 2 id(s) repeat, e.g." in line
    assert line.endswith("; their rows are exact copies: set source.drop_duplicate_rows: true to keep one of each, "
                         "or deduplicate the source"), line
    changed = copies.copy()
    changed.loc[len(rows), "text"] = "the same id r001, other text"  # the first copy of r001 differs now
    changed_path = write_source(tmp_path, changed, name="changed")
    line = fails(replace(cfg.source, path=changed_path))
    assert "is not unique: 1 id(s) repeat, e.g. 'r001'" in line, line
    assert line.endswith("; deduplicate the source or choose a unique source.id_column"), line
    line = fails(replace(cfg.source, path=changed_path, drop_duplicate_rows=False))  # r002's copies differ from none
    assert "2 id(s) repeat" in line and line.endswith("; deduplicate the source or choose a unique source.id_column")
    assert versions(cfg) == (0, 1)  # nothing written by the failed runs


def test_evaluation_source_errors_name_its_keys_and_fail_before_apply(spark, tmp_path, capsys, monkeypatch):
    """A duplicate id in the ``evaluation:`` source names evaluation.* keys (not source.*), and the run
    checks it before apply: nothing is written."""
    import pandas as pd

    from jobs.runtime.exits import EXIT_INPUT, guarded

    rows = make_rows(10)
    held_out = make_rows(6)
    copies = write_source(tmp_path, pd.concat([held_out, held_out.iloc[[1]]]), name="ev_copies")
    changed = write_source(tmp_path, pd.concat([held_out, held_out.iloc[[1]].assign(text="other text")]),
                           name="ev_changed")

    def no_apply(*args, **kwargs):
        raise AssertionError("apply ran before the evaluation source was checked")

    monkeypatch.setattr(apply_lfs, "run", no_apply)

    def fails(path: str) -> str:
        cfg = make_cfg(tmp_path, write_source(tmp_path, rows, name=f"src_{Path(path).name}"),
                       evaluation={"path": path, "format": "parquet", "id_column": "id", "gold_column": "gold"})
        capsys.readouterr()
        code = guarded(lambda: pipeline.run(spark, cfg, run_id="ev") and 0, debug=False)
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lakelabel")]
        assert code == EXIT_INPUT and len(err) == 1, err
        assert versions(cfg) == (None, None)  # failed before apply
        return err[0]

    line = fails(copies)
    assert "is not unique: 1 id(s) repeat, e.g. 'r001'" in line and line.endswith(
        "; their rows are exact copies: set evaluation.drop_duplicate_rows: true to keep one of each, or "
        "deduplicate the evaluation source"), line
    assert fails(changed).endswith("; deduplicate the evaluation source or choose a unique evaluation.id_column")


def test_progress_lines_while_apply_runs(spark, tmp_path, caplog, monkeypatch):
    """Rows and tasks as they finish; once every row is done, no rate (it only fell through later passes, a drill)."""
    import logging
    import re

    monkeypatch.setenv("LAKELABEL_PROGRESS_SECONDS", "0.5")
    caplog.set_level(logging.INFO, logger="jobs")

    @labeling_function(fields=["text"])
    def slow(x):
        time.sleep(0.1)
        return ABSTAIN

    registry = LFRegistry(("neg", "pos"))
    registry.register(keyword_lf("good_words", ["great", "love"], "pos"))
    registry.register(slow)
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(40)), apply={"batch_size": 5})
    apply_lfs.run(spark, cfg, run_id="progress", registry=registry)
    lines = [r.getMessage() for r in caplog.records if r.name == "jobs.progress"]
    assert lines, "no progress line during a 4 s apply"
    for line in lines:
        assert re.fullmatch(r"apply: ([\d,]+ of 40 rows done \([\d,]+ rows/s\)|all 40 rows done), \d+ of \d+ tasks "
                            r"finished, \d+s", line), line
    # The tasks counted are the LF pass's (the write's job in the stage's job group): "0 of 0" said none ran.
    assert all(not line.endswith(tuple(f" of 0 tasks finished, {n}s" for n in range(100))) for line in lines), lines


def test_a_signal_whose_cancelled_collect_raises_another_error_is_still_the_signal(spark, tmp_path, capsys,
                                                                                  monkeypatch):
    """SIGTERM while the driver waits in a collect: the handler cancels the Spark jobs, and pyspark's
    ``finally`` then raises the cancelled job's ``Py4JJavaError`` in place of the handler's exception. That
    was read as a cleanup that failed ("terminated, then Py4JJavaError ...; the tables may not be as before")
    and the MLflow run was marked FAILED, one drill run in four. Here the collect's error is raised with the
    handler's state set, as the signal leaves it."""
    import mlflow

    from jobs import aggregate
    from jobs.runtime import exits, signals

    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(20)), mlflow={"enabled": True, "tracking_uri": store})
    pipeline.run(spark, cfg, run_id="first")
    before = versions(cfg)

    def cancelled_collect(*args, **kwargs):
        signals._signalled = "terminated"  # what _on_signal records before it cancels the jobs
        raise RuntimeError("An error occurred while calling o194.getResult.: org.apache.spark.SparkException: "
                           "Job 12 cancelled as part of cancellation of all jobs")

    monkeypatch.setattr(aggregate, "run", cancelled_collect)
    monkeypatch.setattr(signals, "_signalled", None)  # and back after the test
    code = exits.guarded(lambda: pipeline.run(spark, cfg, run_id="stopped", force=True) and 0, debug=False)
    assert code == exits.EXIT_TERMINATED
    assert capsys.readouterr().err.strip().splitlines()[-1] == "lakelabel: terminated (SIGTERM); the tables are as before the run"
    votes, labels = versions(cfg)
    assert labels == before[1] and votes > before[0]  # the votes the run committed were put back in a new version
    assert json.loads(delta_io.read_metadata(cfg.table_path("votes"))["lakelabel.apply"])["run_id"] == "first"
    client = mlflow.MlflowClient(store)
    (stopped,) = client.search_runs([client.get_experiment_by_name("lakelabel").experiment_id],
                                    "tags.`lakelabel.run_id` = 'stopped'")
    assert stopped.info.status == "KILLED"


def test_a_stage_commands_cancelled_job_after_a_signal_is_the_signal_but_a_failed_cleanup_is_not(capsys, monkeypatch):
    """A stage command (`lakelabel apply`, ...) has no restore of its own: its collect's "cancelled" error after
    the signal is the signal's stop. Any other error after a signal is a cleanup that failed, and says so."""
    from jobs.runtime import exits, signals

    def stopped(error):
        def call():
            signals._signalled = "interrupted"  # as the SIGINT handler leaves it
            raise error
        return call

    monkeypatch.setattr(signals, "_signalled", None)
    code = exits.guarded(stopped(RuntimeError("An error occurred while calling o88.collectToPython.: Job 3 "
                                                "cancelled as part of cancellation of all jobs")), debug=False)
    assert code == exits.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "lakelabel: interrupted; the tables are as before the run"
    code = exits.guarded(stopped(OSError("restoring table /x to v3 failed: disk full")), debug=False)
    assert code == exits.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == (
        "lakelabel: interrupted, then OSError: restoring table /x to v3 failed: disk full; the tables may not be as "
        "before the run: check their history (DESCRIBE HISTORY) before the next run")
    assert signals._signalled is None  # guarded leaves no signal behind for a notebook's next call


def test_a_signal_after_a_stage_commit_says_the_commit_stands(capsys, monkeypatch):
    """SIGTERM to `lakelabel write` after its labels commit, in its MLflow logging (a drill hit it there): the
    labels stand, so the line must not say the tables are as before the run."""
    from jobs.runtime import exits, signals

    def committed_then_stopped():
        signals.note_commit("labels /lake/labels v9")  # what write_labels.run records after its commit
        signals._signalled = "terminated"
        raise signals.Terminated()

    monkeypatch.setattr(signals, "_signalled", None)
    assert exits.guarded(committed_then_stopped, debug=False) == exits.EXIT_TERMINATED
    assert capsys.readouterr().err.strip() == (
        "lakelabel: terminated (SIGTERM) after it committed labels /lake/labels v9, which stand; its run record "
        "(MLflow, summary) may be incomplete: rerun the command with the same --run-id to complete it")


def test_a_run_marks_killed_the_mlflow_run_of_a_dead_process_under_another_run_id(tmp_path, caplog):
    """After SIGKILL, a retry under a new run id (Airflow gives each try one) left the killed attempt's MLflow run
    RUNNING for ever (a drill, session 25). Runs record their process (host, pid, start time); a new run marks
    KILLED the RUNNING runs whose process on this host is gone, and leaves a live process's and another host's."""
    import signal
    import socket
    import subprocess

    import mlflow

    from jobs.runtime import processes, tracking

    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = make_cfg(tmp_path, "unused", mlflow={"enabled": True, "tracking_uri": store})
    first = tracking.start_run(cfg, "setup")
    assert first.data.tags[tracking.PROCESS_TAG] == processes.identity()
    tracking.end_run(cfg, "FINISHED")
    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name(cfg.mlflow.experiment).experiment_id
    sleeper = subprocess.Popen(["sleep", "60"])
    killed = processes.identity(sleeper.pid)  # a run's process, then kill -9
    sleeper.send_signal(signal.SIGKILL)
    sleeper.wait()
    # "untagged": a run a lakelabel before the tag left
    runs = {name: client.create_run(experiment, tags={"lakelabel.run_id": name,
                                                      **({tracking.PROCESS_TAG: process} if process else {})}).info.run_id
            for name, process in (("killed", killed), ("alive", processes.identity()),
                                  ("elsewhere", killed.replace(socket.gethostname(), "another-host", 1)),
                                  ("other-namespace", " ".join(killed.split()[:2] + ["pid:[1]"] + killed.split()[3:])),
                                  ("untagged", None))}  # fmt: skip
    new = tracking.start_run(cfg, "retry-2").info.run_id
    try:
        status = {name: client.get_run(run).info.status for name, run in runs.items()}
        assert status == {"killed": "KILLED", "alive": "RUNNING", "elsewhere": "RUNNING", "other-namespace": "RUNNING",
                          "untagged": "RUNNING"}
        assert "its process is gone" in client.get_run(runs["killed"]).data.tags["lakelabel.ended_by"]
        assert f"MLflow run(s) {runs['killed']} (lakelabel runs killed) were still RUNNING" in caplog.text
        assert client.get_run(new).info.status == "RUNNING"
    finally:
        tracking.end_run(cfg, "FINISHED")


def test_a_retry_marks_the_mlflow_run_of_a_killed_attempt_killed(tmp_path, caplog):
    """SIGKILL (a timeout's kill -9, the out-of-memory killer) gives lakelabel no chance to end its MLflow run,
    which stayed RUNNING for ever. The next attempt of the same run id (an orchestrator's retry) marks it KILLED;
    another run id's RUNNING run is left alone."""
    import mlflow

    from jobs.runtime import processes, tracking

    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = make_cfg(tmp_path, "unused", mlflow={"enabled": True, "tracking_uri": store})
    tracking.start_run(cfg, "setup")  # creates the store and the experiment
    tracking.end_run(cfg, "FINISHED")
    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name(cfg.mlflow.experiment).experiment_id
    # What killed processes leave: runs created and never ended
    first, other = (client.create_run(experiment, tags={"lakelabel.run_id": rid}).info.run_id
                    for rid in ("nightly-7", "nightly-8"))
    # The same run id running now in a live process (two at once): not an earlier attempt (a drill)
    live = client.create_run(experiment, tags={"lakelabel.run_id": "nightly-7",
                                               tracking.PROCESS_TAG: processes.identity()}).info.run_id
    retry = tracking.start_run(cfg, "nightly-7").info.run_id
    try:
        assert client.get_run(live).info.status == "RUNNING"
        assert client.get_run(first).info.status == "KILLED"
        assert "a later attempt of this run started" in client.get_run(first).data.tags["lakelabel.ended_by"]
        assert client.get_run(other).info.status == "RUNNING"
        assert client.get_run(retry).info.status == "RUNNING" and retry != first
        assert f"MLflow run(s) {first} of an earlier attempt of run nightly-7 were still RUNNING" in caplog.text
    finally:
        tracking.end_run(cfg, "FINISHED")


def test_a_copied_lakehouse_mlflow_store_is_refused_before_it_logs_into_the_original(tmp_path, capsys):
    """sqlite keeps the experiment's artifact folder as an absolute path: a lakehouse copied (or moved) with its
    mlflow.db would log its models into the original's mlartifacts (or recreate the old folder). Exit 2 before
    anything runs, naming the store and the fix; a new experiment name logs into the copy."""
    import shutil
    from dataclasses import replace

    import mlflow
    import yaml

    from jobs import cli
    from jobs.runtime import tracking

    src = write_source(tmp_path, make_rows(10))
    cfg = make_cfg(tmp_path, src, mlflow={"enabled": True})  # the lakehouse's own store
    tracking.start_run(cfg, "setup")
    tracking.end_run(cfg, "FINISHED")
    copy = replace(cfg, lakehouse=str(tmp_path / "copy"))
    shutil.copytree(cfg.lakehouse, copy.lakehouse)
    before = sorted(p.name for p in (cfg.lakehouse_path / "mlartifacts").rglob("*"))
    tracking.check_store_here(cfg)  # the original: as it was
    with pytest.raises(ConfigError, match=r"the lakehouse was moved or copied from there\. Set mlflow\.experiment"):
        tracking.check_store_here(copy)
    with pytest.raises(ConfigError, match="moved or copied"):
        tracking.start_run(copy, "c1")
    config = tmp_path / "copy.yaml"
    config.write_text(yaml.safe_dump(copy.to_dict()))
    assert cli.main(["run", "--config", str(config), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"logs experiment 'lakelabel' to {(cfg.lakehouse_path / 'mlartifacts').as_uri()}" in err[0]
    # diff logs its result to the later run's MLflow run: the same refusal (a review found it wrote there)
    assert cli.main(["diff", "--config", str(config), "-q"]) == 2
    assert "the lakehouse was moved or copied from there" in capsys.readouterr().err
    assert sorted(p.name for p in (cfg.lakehouse_path / "mlartifacts").rglob("*")) == before
    assert not (copy.lakehouse_path / "votes").exists()  # nothing ran

    renamed = replace(copy, mlflow=replace(copy.mlflow, experiment="after-copy"))
    tracking.check_store_here(renamed)
    tracking.start_run(renamed, "c2")
    tracking.end_run(renamed, "FINISHED")
    store = mlflow.MlflowClient(tracking.tracking_uri(renamed))
    assert store.get_experiment_by_name("after-copy").artifact_location == (copy.lakehouse_path / "mlartifacts").as_uri()


@pytest.mark.parametrize("how", ["stage", "train"])
@pytest.mark.parametrize("stop, status", [("Terminated", "KILLED"), ("Interrupted", "KILLED"), ("RuntimeError", "FAILED")])
def test_a_signal_while_a_job_logs_to_mlflow_marks_its_run_killed(tmp_path, how, stop, status):
    """A drill: `lakelabel fit` sent SIGTERM while it logged its model (after `fit: LabelModel in ...`) exited 143,
    `terminated (SIGTERM)`, but left the run id's MLflow run FAILED, where a run's is KILLED. The stage jobs log
    through stages.finish, train and analyze through analyze.log_to_run; an error there stays FAILED."""
    import mlflow

    from jobs import analyze, stages
    from jobs.runtime import signals

    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = make_cfg(tmp_path, "unused", mlflow={"enabled": True, "tracking_uri": store})
    error = getattr(signals, stop, None) or RuntimeError

    def log(*_):
        raise error()

    with pytest.raises(error):
        if how == "stage":
            stages.finish("fit", cfg, "r1", stages.Outcome(skipped=False, seconds=0.0, tables={}, counts={}, log=log))
        else:
            analyze.log_to_run(cfg, "r1", log)
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name(cfg.mlflow.experiment).experiment_id])
    assert [(r.data.tags["lakelabel.run_id"], r.info.status) for r in runs] == [("r1", status)]


def test_a_dotted_column_no_lf_names_is_read_and_a_dotted_id_is_refused(spark, tmp_path):
    """A column named ``meta.src`` beside the ones the LFs read: a Python LF that reads every column (``stars``)
    made the apply fail as "SQL LF  does not compile against the source" (a drill, session 26). A dotted id
    column fails in one line naming it, once Spark has read the source (a URI, a compressed CSV), too."""
    rows = make_rows(20).assign(**{"meta.src": "web"})
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows))
    assert pipeline.run(spark, cfg, run_id="dotted").summary["source"]["rows"] == 20
    before = versions(cfg)
    dotted = make_cfg(tmp_path, write_source(tmp_path, rows.rename(columns={"id": "ticket.id"}), name="src2"))
    dotted = replace(dotted, source=replace(dotted.source, id_column="ticket.id"))
    with pytest.raises(InputDataError, match=r"column 'ticket.id' \(source.id_column\) of .* has a '.' in its name, "
                                             r"which Spark reads as a field of a struct column"):
        pipeline.run(spark, dotted, run_id="dotted-id")
    assert versions(cfg) == before


def test_source_rewritten_during_apply_commits_nothing(spark, tmp_path, monkeypatch):
    """A job that rewrites a CSV source while the apply reads it: exit 3 (transient), no votes committed.

    An operator's drill (session 39): the source cut from 20,000 rows to 15,000 during apply published 15,000
    labels with exit 0, under the old files' fingerprint and a summary saying 20,000 rows. The rerun reads the
    new file whole.
    """
    from lf_library.errors import TransientError

    src = tmp_path / "src.csv"
    src.write_text(GOOD_CSV)
    cfg = csv_cfg(tmp_path, src)
    real = apply_lfs.vote_function  # what a full apply runs the LFs with

    def rewriting(*args, **kwargs):  # the other job's write lands after the run listed the source
        src.write_text(GOOD_CSV.replace('r5,ok,e\n', ''))
        return real(*args, **kwargs)

    monkeypatch.setattr(apply_lfs, "vote_function", rewriting)
    with pytest.raises(TransientError, match=r"source file://.*src\.csv changed while this run read it"):
        pipeline.run(spark, cfg, run_id="rewritten")
    assert versions(cfg) == (None, None)
    monkeypatch.setattr(apply_lfs, "vote_function", real)
    result = pipeline.run(spark, cfg, run_id="rewritten")
    assert result.summary["source"]["rows"] == 4
    assert result.summary["tables"]["labels"]["rows"] == 4


def test_a_source_of_two_paths_is_checked_as_one(spark, tmp_path):
    """The rewrite check combines the paths' listings as load_source does: unchanged passes, one rewritten fails."""
    from dataclasses import replace

    from jobs.delta_io.sources import check_source_unchanged, load_source
    from lf_library.errors import TransientError

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(GOOD_CSV)
    b.write_text(GOOD_CSV.replace("r", "s"))
    cfg = csv_cfg(tmp_path, a)
    source = load_source(spark, replace(cfg.source, path=[str(a), str(b)]))
    check_source_unchanged(source)
    b.write_text(GOOD_CSV.replace("r", "t") + "t9,ok,e\n")
    with pytest.raises(TransientError, match="changed while this run read it"):
        check_source_unchanged(source)
