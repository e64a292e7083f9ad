"""Round trip through a real Label Studio server: annotate -> LS project -> annotations -> export -> gold import.

Label Studio pins many dependencies, so it lives in its own virtualenv, never the project's:

    python3 -m venv ~/.cache/lakelabel/label-studio-venv
    ~/.cache/lakelabel/label-studio-venv/bin/pip install label-studio==1.23.2

The test finds ``label-studio`` through ``LAKELABEL_LABEL_STUDIO`` (the executable), that venv, or
PATH, and skips with that reason when none exists. It starts the server on 127.0.0.1 with a
temporary data folder, talks to its REST API with the user token given at start, and stops the
server by its pid (process group) at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from jobs import pipeline
from jobs import delta_io
from jobs.cli import main as cli_main
from jobs.people import annotate
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CACHE_VENV = Path.home() / ".cache" / "lakelabel" / "label-studio-venv" / "bin" / "label-studio"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def label_studio_executable() -> str | None:
    given = os.environ.get("LAKELABEL_LABEL_STUDIO")
    if given:
        return given if Path(given).exists() else None
    if CACHE_VENV.exists():
        return str(CACHE_VENV)
    return shutil.which("label-studio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def label_studio(tmp_path):
    exe = label_studio_executable()
    if exe is None:
        pytest.skip(f"label-studio is not installed (set LAKELABEL_LABEL_STUDIO or install it into {CACHE_VENV.parent.parent}"
                    f": see this module's docstring)")  # fmt: skip
    import requests

    port = free_port()
    data = tmp_path / "ls-data"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data)}
    log = open(tmp_path / "label-studio.log", "w")
    proc = subprocess.Popen(
        [exe, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
         "--username", "annotator@example.com", "--password", "lakelabel-test-pass", "--user-token", TOKEN,
         "--enable-legacy-api-token"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"label-studio exited with {proc.returncode}: {(tmp_path / 'label-studio.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "label-studio did not answer /health within 600 s"
            time.sleep(2)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {TOKEN}"
        yield base, session
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the children it started, by its pid
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def create_project(base, session, title: str, config: str, tasks: list) -> int:
    r = session.post(f"{base}/api/projects", json={"title": title, "label_config": config})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    r = session.post(f"{base}/api/projects/{project}/import", json=tasks)
    assert r.status_code == 201 and r.json()["task_count"] == len(tasks), r.text
    return project


def annotate_all(base, session, project: int, answer) -> list[dict]:
    r = session.get(f"{base}/api/tasks", params={"project": project, "page_size": 1000})
    assert r.status_code == 200, r.text
    tasks = r.json()["tasks"]
    for t in tasks:
        r = session.post(f"{base}/api/tasks/{t['id']}/annotations", json={"result": answer(t)})
        assert r.status_code == 201, r.text
    return tasks


def export(base, session, project: int, path: Path) -> Path:
    r = session.get(f"{base}/api/projects/{project}/export", params={"exportType": "JSON"})
    assert r.status_code == 200, r.text
    path.write_text(r.text)
    return path


def test_label_studio_round_trip(spark, tmp_path, label_studio, capsys):
    base, session = label_studio
    rows = make_rows(40)
    truth = dict(zip(rows.id, rows.gold))
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows))
    pipeline.run(spark, cfg, run_id="p1")
    tasks_file = tmp_path / "tasks.json"
    annotate.run(spark, cfg, run_id="a1", strategy="stratified", n=8, out=str(tasks_file), format="label-studio")
    tasks = json.loads(tasks_file.read_text())
    project = create_project(base, session, "lakelabel round trip", tasks_file.with_suffix(".xml").read_text(), tasks)

    def answer(task):
        data = task["data"]
        result = [{"from_name": "label", "to_name": "text", "type": "choices",
                   "value": {"choices": [truth[data["row_id"]]]}}]  # fmt: skip
        if data["predicted_label"] and data["predicted_label"] != truth[data["row_id"]]:
            result.append({"from_name": "note", "to_name": "text", "type": "textarea",
                           "value": {"text": ["model was wrong"]}})  # fmt: skip
        return result

    annotated = annotate_all(base, session, project, answer)
    exported = export(base, session, project, tmp_path / "export.json")
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(json.dumps({k: cfg.to_dict()[k] for k in ("lakehouse", "source", "lfs", "mlflow")}))
    code = cli_main(["gold", "import", "--config", str(cfg_file), "--file", str(exported), "--format", "label-studio"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0 and f"imported {len(annotated)} label(s)" in out
    gold = delta_io.read_table(spark, cfg.table_path("gold")).toPandas()
    assert len(gold) == len(tasks) == len(annotated)
    assert dict(zip(gold.row_id, gold.label_name)) == {t["data"]["row_id"]: truth[t["data"]["row_id"]] for t in tasks}
    assert gold.origin.str.startswith(f"label-studio:project {project}/task ").all()
    assert gold.annotator.str.startswith("label-studio-user-").all()
    version = delta_io.table_version(cfg.table_path("gold"))

    # The same export again adds nothing.
    assert cli_main(["gold", "import", "--config", str(cfg_file), "--file", str(exported)]) == 0
    assert delta_io.table_version(cfg.table_path("gold")) == version

    # An export of a project with another labeling config is refused, naming the file and the task.
    other = ('<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
             '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>')  # fmt: skip
    project2 = create_project(base, session, "someone else's project", other, tasks[:2])
    annotate_all(base, session, project2, lambda t: [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                                      "value": {"choices": ["Positive"]}}])  # fmt: skip
    wrong = export(base, session, project2, tmp_path / "other-export.json")
    capsys.readouterr()
    assert cli_main(["gold", "import", "--config", str(cfg_file), "--file", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert str(wrong) in err and "another labeling config" in err and "'sentiment'" in err
    assert delta_io.table_version(cfg.table_path("gold")) == version
    print(pd.DataFrame(gold)[["row_id", "label_name", "annotator", "split", "origin", "note"]].to_string())
