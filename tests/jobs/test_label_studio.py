"""Round trip through a real Label Studio server: annotate -> LS project -> annotations -> export -> gold import.

Label Studio 1.23.2 runs from its own venv, installed from PyPI when missing (in the background
from the start of the test session: tests/label_studio_server.py). The server starts on 127.0.0.1
with a temporary data folder while the test runs the pipeline, is driven through its REST API with
the user token given at start, and is stopped by its pid (process group) at the end.
``LAKELABEL_LABEL_STUDIO`` names another executable, or ``skip`` to skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from jobs import delta_io, pipeline
from jobs.cli import main as cli_main
from jobs.people import annotate
from tests import label_studio_server
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture()
def label_studio():
    """The session's :class:`tests.label_studio_server.Server`, maybe still booting: call ``wait()``."""
    if os.environ.get("LAKELABEL_LABEL_STUDIO") == "skip":
        pytest.skip("LAKELABEL_LABEL_STUDIO=skip")
    return label_studio_server.background_server()


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
    rows = make_rows(40)
    truth = dict(zip(rows.id, rows.gold))
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows))
    pipeline.run(spark, cfg, run_id="p1")
    tasks_file = tmp_path / "tasks.json"
    annotate.run(spark, cfg, strategy="stratified", n=8, out=str(tasks_file), format="label-studio")
    tasks = json.loads(tasks_file.read_text())
    base, session = label_studio.wait()  # booting since the session started
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
