"""Every notebook in notebooks/ runs end to end locally with a small dbutils.widgets stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))

pytestmark = [pytest.mark.spark, pytest.mark.slow]


class _Widgets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.values.setdefault(name, default)

    def get(self, name: str) -> str:
        return self.values[name]


class _DBUtils:
    def __init__(self, values: dict[str, str]) -> None:
        self.widgets = _Widgets(values)


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    for path in NOTEBOOKS:
        assert path.read_text().startswith("# Databricks notebook source"), path


def test_run_pipeline_notebook(spark, tmp_path, monkeypatch):
    from jobs import demo

    lake = tmp_path / "lake"
    cfg = demo.demo_config(str(lake), 1200, 0)
    demo.prepare_source(cfg, 1200, 0)
    config = tmp_path / "demo.yaml"
    config.write_text(
        f"lakehouse: {lake}\nsource:\n  path: {lake}/source/tickets\n  format: parquet\n  id_column: ticket_id\n"
        f"  gold_column: true_label\nlfs:\n  modules: [lf_library.lfs.demo]\nmlflow:\n  enabled: false\n"
    )
    namespace = {"dbutils": _DBUtils({"config": str(config), "run_id": "nb-1"})}
    source = (Path(__file__).resolve().parents[1] / "notebooks" / "run_pipeline.py").read_text()
    exec(compile(source, "run_pipeline.py", "exec"), namespace)
    summary = namespace["summary"]
    assert summary["run_id"] == "nb-1" and summary["tables"]["labels"]["rows"] == 1200
