"""Run a Databricks source notebook outside Databricks: :func:`run_notebook`.

On a laptop (Python, IPython, Jupyter) there is no ``dbutils``. :func:`run_notebook` gives a notebook
what it uses of it, text widgets holding the values passed in or else their declared defaults, and
executes its cells in order in one namespace, as Databricks does. Tables are shown with IPython's
``display`` when running under IPython, else printed. It returns the namespace, so what the cells
computed (``trial``, ``lin``, ...) can be looked at afterwards::

    from jobs.notebook.local import run_notebook
    ns = run_notebook("notebooks/develop_lf.py", config="conf/demo.yaml", sample_rows="5000")
    ns["trial"].summary()
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["HEADER", "WIDGET_DECLARATION", "LocalDBUtils", "LocalWidgets", "run_notebook"]

HEADER = "# Databricks notebook source"
WIDGET_DECLARATION = re.compile(r"""dbutils\.widgets\.(?:text|dropdown|combobox|multiselect)\(\s*["']([^"']+)["']""")


class LocalWidgets:
    """``dbutils.widgets`` as the notebooks use it: declare text widgets, read them."""

    def __init__(self, values: dict[str, str]) -> None:
        self.given = {name: str(value) for name, value in values.items()}
        self.declared: dict[str, str] = {}

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.declared[name] = self.given.get(name, default)

    def get(self, name: str) -> str:
        if name not in self.declared:  # Databricks raises InputWidgetNotDefined
            raise KeyError(f"widget {name!r} is read but was never declared (declared: {', '.join(self.declared)})")
        return self.declared[name]


class LocalDBUtils:
    """The part of Databricks' ``dbutils`` the notebooks use: ``widgets``."""

    def __init__(self, values: dict[str, str]) -> None:
        self.widgets = LocalWidgets(values)


def _ipython_display() -> Any:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    return display if get_ipython() is not None else None


#: The repository (a checkout) this package runs from: its ``notebooks/`` and ``conf/``.
_REPO = Path(__file__).resolve().parents[2]


def run_notebook(path: str | Path, **widgets: Any) -> dict[str, Any]:
    """Execute the source notebook at ``path`` with ``widgets`` as its widget values; return its namespace.

    A widget the notebook does not declare is a ``ValueError`` naming the ones it does, raised before
    any cell runs. A relative ``path`` that is not under the working directory is looked up in the repository
    (``notebooks/develop_lf.py`` from inside ``notebooks/``). Relative paths inside the notebook's config resolve as
    they do for ``lakelabel`` (see the README's "Notebooks").
    """
    path = Path(path)
    if not path.is_file() and not path.is_absolute() and (_REPO / path).is_file():
        path = _REPO / path  # as the config: a path of the repository (notebooks/...) from any working directory
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} does not exist; pass a file of notebooks/, such as "
                                f"{_REPO / 'notebooks' / 'develop_lf.py'}")
    source = path.read_text(encoding="utf-8")
    if not source.startswith(HEADER):
        raise ValueError(f"{path} is not a Databricks source notebook (its first line is not {HEADER!r})")
    declared = WIDGET_DECLARATION.findall(source)
    unknown = sorted(set(widgets) - set(declared))
    if unknown:
        raise ValueError(f"{path.name} has no widget(s) {', '.join(unknown)}; its widgets are: {', '.join(declared)}")
    namespace: dict[str, Any] = {"__name__": "__main__", "dbutils": LocalDBUtils(widgets)}
    display = _ipython_display()
    if display is not None:
        namespace["display"] = display
    exec(compile(source, str(path), "exec"), namespace)
    return namespace
