"""Label Studio: the tasks ``lakelabel annotate --format label-studio`` writes, and reading its JSON export.

A task is ``{"data": {...}, "predictions": [...]}``: ``data`` holds ``row_id``, ``text``, the
configured columns, the predicted label with its confidence and the LFs that voted; the model's
prediction is pre-filled as a Label Studio prediction (``model_version`` and a ``choices``
result), so the annotator accepts or corrects it. :func:`label_config` is the labeling interface
those tasks need: a ``Choices`` control named ``label`` over the ``text`` object, one ``Choice``
per class, and an optional ``note`` text area.

The export is Label Studio's "JSON" export: a list of tasks, each with its ``annotations``
(``completed_by``, ``result``, ``created_at``/``updated_at``, ``was_cancelled``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from lf_library.errors import InputDataError

__all__ = ["FROM_NAME", "TO_NAME", "NOTE_NAME", "label_config", "task", "parse_export"]

FROM_NAME = "label"  # the Choices control
TO_NAME = "text"  # the Text object it labels
NOTE_NAME = "note"  # the optional TextArea


def label_config(label_space: Sequence[str]) -> str:
    """The Label Studio labeling config (XML) for lakelabel's tasks over ``label_space``."""
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in label_space)
    return (
        "<View>\n"
        '  <Header value="Model: $predicted_label ($confidence); LFs that voted: $voting_lfs"/>\n'
        f'  <Text name="{TO_NAME}" value="$text"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        f'  <TextArea name="{NOTE_NAME}" toName="{TO_NAME}" placeholder="note (optional)" maxSubmissions="1"/>\n'
        "</View>\n"
    )


def task(data: Mapping[str, Any], predicted: str | None, score: float | None, model_version: str) -> dict[str, Any]:
    """One Label Studio task; ``predicted`` (a class name) pre-fills the choice when the model has one."""
    out: dict[str, Any] = {"data": dict(data)}
    if predicted is not None:
        out["predictions"] = [{
            "model_version": model_version,
            "score": None if score is None else float(score),
            "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                        "value": {"choices": [predicted]}}],
        }]  # fmt: skip
    return out


def _annotator(completed_by: Any) -> str:
    if isinstance(completed_by, Mapping):
        return str(completed_by.get("email") or completed_by.get("username") or completed_by.get("id") or "")
    return "" if completed_by is None else f"label-studio-user-{completed_by}"


def parse_export(text: str, path: str) -> tuple[list[dict[str, Any]], int]:
    """Gold records from a Label Studio JSON export: one per submitted annotation.

    Returns dicts with ``row_id, label, annotator, annotated_at, note, origin, task_id, where``, and
    the number of tasks without one (not annotated yet, or only skipped: unlabeled, as a CSV row
    with an empty label). Cancelled (skipped) annotations and annotations without a choice are left out.

    Raises
    ------
    InputDataError
        Not a JSON list of tasks, a task without ``data.row_id`` (not lakelabel's tasks), or a
        result from another labeling config (a control other than ``label`` choices).
    """
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputDataError(
            f"{path} is not valid JSON ({err}); export the project from Label Studio as JSON (not JSON-MIN or CSV)"
        ) from None
    if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
        raise InputDataError(
            f"{path} is not a Label Studio JSON export (expected a list of tasks); export the project as JSON"
        )
    records, unlabeled = [], 0
    for t in tasks:
        task_id = t.get("id")
        before = len(records)
        data = t.get("data")
        if not isinstance(data, Mapping) and "row_id" in t:
            # JSON-MIN flattens each task's data and its first annotation into one object
            raise InputDataError(
                f"{path}: task {task_id} has row_id at the top, not under data: this is a JSON-MIN export, which "
                f"keeps one annotation per task and drops who labeled and when; export the project as JSON"
            )
        if not isinstance(data, Mapping) or "row_id" not in data:
            raise InputDataError(
                f"{path}: task {task_id} has no data.row_id, so it was not written by `lakelabel annotate "
                f"--format label-studio`; export the Label Studio project you imported lakelabel's tasks into"
            )
        for ann in t.get("annotations") or []:
            if ann.get("was_cancelled"):
                continue
            label, note = None, ""
            for result in ann.get("result") or []:
                name, kind = result.get("from_name"), result.get("type")
                value = result.get("value") or {}
                if name == FROM_NAME and kind == "choices":
                    choices = value.get("choices") or []
                    if len(choices) != 1:
                        raise InputDataError(
                            f"{path}: task {task_id} (row_id {data['row_id']}), annotation {ann.get('id')} has "
                            f"{len(choices)} choices {choices}; each row takes exactly one label: fix it in Label "
                            f"Studio (the label config must say choice=\"single\") and export again"
                        )
                    label = str(choices[0])
                elif name == NOTE_NAME and kind == "textarea":
                    note = " ".join(str(v) for v in value.get("text") or [])
                else:
                    raise InputDataError(
                        f"{path}: task {task_id} (row_id {data['row_id']}), annotation {ann.get('id')} has a "
                        f"{kind!r} result from control {name!r}; lakelabel's label config has a {FROM_NAME!r} "
                        f"choices control (and a {NOTE_NAME!r} text area): this export comes from a project with "
                        f"another labeling config. Export the project made from lakelabel's tasks and .xml config"
                    )
            if label is None:
                continue
            records.append({
                "row_id": str(data["row_id"]),
                "label": label,
                "annotator": _annotator(ann.get("completed_by")),
                "annotated_at": ann.get("updated_at") or ann.get("created_at") or "",
                "note": note,
                "origin": f"label-studio:project {t.get('project', '?')}/task {task_id}/annotation {ann.get('id')}",
                "task_id": "" if task_id is None else str(task_id),
                "where": f"task {task_id}, annotation {ann.get('id')}",
            })  # fmt: skip
        unlabeled += len(records) == before
    return records, unlabeled
