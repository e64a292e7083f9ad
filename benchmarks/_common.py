"""Shared helpers of the label-model benchmarks: scoring, method adapters, machine info.

Not a package module of lakelabel: the scripts in this folder import it as a sibling
(``python benchmarks/bench_quality.py`` puts ``benchmarks/`` first on ``sys.path``).

Conventions: ``L`` is an ``[n, m]`` integer matrix with values in ``{-1, 0..k-1}``,
``-1`` meaning abstain; ``probs`` is ``[n, k]``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ABSTAIN = -1
TIE_TOL = 1e-5
F1_SEEDS = tuple(range(10))
REPO_ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------


def top_mask(probs: np.ndarray, tol: float = TIE_TOL) -> np.ndarray:
    """``[n, k]`` bool: the classes within ``tol`` of each row's maximum probability."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs >= probs.max(axis=1, keepdims=True) - tol


def expected_accuracy(probs: np.ndarray, y: np.ndarray, tol: float = TIE_TOL) -> float:
    """Accuracy expected when tied top classes are broken uniformly at random.

    A row scores ``1 / |top|`` when its gold label is among its ``top`` classes (those
    within ``tol`` of the row maximum) and 0 otherwise; the result is the row mean. This
    is the exact expectation of upstream's random tie breaking, with no sampling noise.
    """
    top = top_mask(probs, tol)
    y = np.asarray(y, dtype=np.int64)
    hit = top[np.arange(len(y)), y]
    return float(np.mean(hit / top.sum(axis=1))) if len(y) else float("nan")


def f1(y_true: np.ndarray, y_pred: np.ndarray, cardinality: int) -> float:
    """Binary F1 of class 1 when ``cardinality == 2``, else macro F1.

    Macro F1 averages over the labels present in ``y_true`` or ``y_pred`` with F1 = 0
    for a label never predicted, as ``sklearn.metrics.f1_score(average="macro")`` (what
    WRENCH calls) does.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = [1] if cardinality == 2 else np.union1d(y_true, y_pred)
    scores = []
    for c in labels:
        tp = np.sum((y_pred == c) & (y_true == c))
        denom = np.sum(y_pred == c) + np.sum(y_true == c)
        scores.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def random_tie_predictions(probs: np.ndarray, seed: int, tol: float = TIE_TOL) -> np.ndarray:
    """One draw of argmax with ties among the top classes broken uniformly at random."""
    top = top_mask(probs, tol)
    rng = np.random.default_rng(seed)
    # A uniform key per cell, -1 outside the top set: argmax picks a uniform top class.
    keys = np.where(top, rng.random(top.shape), -1.0)
    return keys.argmax(axis=1)


def mean_tie_f1(
    probs: np.ndarray, y: np.ndarray, cardinality: int, seeds: Sequence[int] = F1_SEEDS
) -> float:
    """F1 averaged over seeded random tie-breaking draws."""
    return float(np.mean([f1(y, random_tie_predictions(probs, s), cardinality) for s in seeds]))


def tie_rate(probs: np.ndarray, tol: float = TIE_TOL) -> float:
    """Fraction of rows whose top class is tied."""
    return float(np.mean(top_mask(probs, tol).sum(axis=1) > 1)) if len(probs) else 0.0


# ---------------------------------------------------------------------------------------
# Methods: one adapter per label model, all with fit(L, k, seed) and predict_proba(L)
# ---------------------------------------------------------------------------------------


class Method:
    """A label model under benchmark. Subclasses set ``name`` and implement both hooks."""

    name = "method"
    family = "ours"  # "ours" | "snorkel" | "baseline"

    def fit(self, L: np.ndarray, cardinality: int, seed: int) -> None:
        raise NotImplementedError

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SimpleMV(Method):
    """Plain majority vote in numpy: the reference the harness was tested against.

    Ties share the probability equally and all-abstain rows are uniform, as in snorkel's
    ``MajorityLabelVoter``.
    """

    name = "MV (harness numpy)"
    family = "baseline"

    def fit(self, L: np.ndarray, cardinality: int, seed: int) -> None:
        self.k = cardinality

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        L = np.asarray(L)
        counts = np.zeros((L.shape[0], self.k))
        for c in range(self.k):
            counts[:, c] = (L == c).sum(axis=1)
        top = counts == counts.max(axis=1, keepdims=True)
        return top / top.sum(axis=1, keepdims=True)


def ours_available() -> bool:
    """Whether ``labelmodel`` (this repo) exports ``LabelModel`` yet."""
    try:
        mod = importlib.import_module("labelmodel")
    except ImportError:
        return False
    return hasattr(mod, "LabelModel") and hasattr(mod, "MajorityLabelVoter")


def ours_estimators() -> list[tuple[str, dict[str, Any]]]:
    """``(method, extra options)`` of each estimator ``labelmodel.config`` names.

    "auto" is left out (it is the default model); Dawid-Skene also runs with every
    non-default ``parameterization`` listed in ``labelmodel.config.PARAMETERIZATIONS``.
    """
    try:
        cfg = importlib.import_module("labelmodel.config")
    except ImportError:
        return []
    names = getattr(cfg, "METHODS", None) or ()
    out: list[tuple[str, dict[str, Any]]] = [(n, {}) for n in names if n != "auto"]
    params = getattr(cfg, "PARAMETERIZATIONS", ())
    if "dawid_skene" in names:
        out += [("dawid_skene", {"parameterization": p}) for p in params[1:]]
    return out


class OursMV(Method):
    name = "MV (ours)"
    family = "ours"

    def fit(self, L: np.ndarray, cardinality: int, seed: int) -> None:
        from labelmodel import MajorityLabelVoter

        self.model = MajorityLabelVoter(cardinality)
        self.model.fit(L)

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(L)


class OursLabelModel(Method):
    """``labelmodel.LabelModel`` with its default estimator, or the one named."""

    family = "ours"

    def __init__(self, estimator: str | None = None, **options: Any) -> None:
        self.estimator = estimator
        self.options = options
        label = "default" if estimator is None else estimator
        label += "".join(f", {k}={v}" for k, v in options.items())
        self.name = f"LabelModel (ours, {label})"

    def _make(self, cardinality: int, seed: int) -> Any:
        from labelmodel import LabelModel

        kw = {} if self.estimator is None else {"method": self.estimator}
        return LabelModel(cardinality=cardinality, seed=seed, **kw, **self.options)

    def fit(self, L: np.ndarray, cardinality: int, seed: int) -> None:
        self.model = self._make(cardinality, seed)
        self.model.fit(L)

    def fit_from_stats(self, stats: Any, cardinality: int, seed: int) -> None:
        self.model = self._make(cardinality, seed)
        self.model.fit_from_stats(stats)

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(L)


class SnorkelLabelModel(Method):
    """snorkel 0.10 ``LabelModel`` with its default hyperparameters (as WRENCH calls it)."""

    family = "snorkel"

    def __init__(self, n_epochs: int | None = None) -> None:
        self.n_epochs = n_epochs
        self.name = "snorkel LabelModel"

    def fit(self, L: np.ndarray, cardinality: int, seed: int) -> None:
        from snorkel.labeling.model import LabelModel

        self.model = LabelModel(cardinality=cardinality, verbose=False)
        kw = {} if self.n_epochs is None else {"n_epochs": self.n_epochs}
        self.model.fit(L, seed=seed, progress_bar=False, **kw)

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(L)


class SnorkelMV(Method):
    name = "snorkel MajorityLabelVoter"
    family = "snorkel"

    def fit(self, L: np.ndarray, cardinality: int, seed: int) -> None:
        from snorkel.labeling.model import MajorityLabelVoter

        self.model = MajorityLabelVoter(cardinality=cardinality)

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(L)


def snorkel_available() -> bool:
    try:
        importlib.import_module("snorkel.labeling.model")
    except ImportError:
        return False
    return True


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[Any, float]:
    """``(fn(*args, **kw), wall seconds)``."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------
# Machine info and output
# ---------------------------------------------------------------------------------------

_PACKAGES = ("numpy", "scipy", "pandas", "torch", "snorkel", "lakelabel")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    """CPU, cores, RAM, python and package versions, git commit and the exact command."""
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    mem_kib = next(
        (int(ln.split()[1]) for ln in _read("/proc/meminfo").splitlines() if ln.startswith("MemTotal")), 0
    )
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip() or "no commit"
    except OSError:
        commit = "unknown"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    threads = {}
    try:
        import torch

        threads["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": cores,
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": commit,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        **threads,
    }


def format_machine_info(info: dict[str, Any]) -> str:
    pk = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return (
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}\n"
        f"- python {info['python']}; {pk}\n"
        f"- lakelabel commit: {info['git_commit']}\n"
        f"- command: `{info['command']}`\n"
        f"- load average at start (1, 5, 15 min): {', '.join(map(str, info['load_average_at_start']))}"
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
