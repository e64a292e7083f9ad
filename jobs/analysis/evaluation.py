"""Gold from the ``evaluation:`` source: the LFs and the run's label model scored on held-out rows.

The LFs run on the evaluation source in memory (as the pipeline's held-out evaluation does; no table
is written); only counts per (vote pattern, gold class) reach the driver, and every accuracy is
computed from them with the pipeline's own metrics (:mod:`jobs.runtime.metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jobs import aggregate, apply_lfs
from jobs.apply_record import VERSIONED_BY_UPGRADE, lf_differences
from jobs.runtime.config import PipelineConfig
from jobs.runtime.metrics import gold_metrics, lf_accuracies
from jobs.delta_io.sources import load_source
from jobs.tasks import task_source
from labelmodel import MajorityLabelVoter, tie_shares
from lf_library.analysis import wilson_interval


def evaluation_section(spark: Any, cfg: PipelineConfig, lf_names: list[str], model: Any, io: Any, *,
                       lf_versions: Mapping[str, str], task: Any = None) -> dict[str, Any]:
    """``source, rows, coverage``, the label model's and majority vote's accuracy, and each LF's on the held-out rows.

    ``task`` (:class:`jobs.tasks.Task`): one task of a multi-task config, scored with its LFs and
    its gold column (``cfg`` is then its single-task view, :func:`jobs.tasks.task_config`).

    ``lf_names``, ``lf_versions``: the run's LFs in the model's order, and their versions.

    Returns ``{"note": ...}`` instead when the evaluation source cannot be scored (the LFs changed since
    the run, or more vote patterns than ``aggregate.max_patterns``).
    """
    ev = cfg.evaluation
    registry = task.registry if task is not None else apply_lfs.build_registry(cfg)
    differ = lf_differences(lf_versions, registry.versions, earlier=registry.earlier_versions)
    if differ or list(registry.names) != list(lf_names):
        upgraded_only = bool(differ) and all(p.startswith(VERSIONED_BY_UPGRADE) for p in differ)
        fix = ("rerun the pipeline (`lakelabel run`) so the votes carry this lakelabel's versions, then analyze"
               if upgraded_only and list(registry.names) == list(lf_names) else "analyze with the LF settings the run used")
        return {"note": f"the configured LFs are not the run's ({'; '.join(differ) or 'another order'}), so the "
                        f"evaluation source was not scored; {fix}"}
    source = load_source(spark, ev, role="evaluation", io=io)
    apply_lfs.check_lf_source(source, registry)  # a duplicate id would count its row twice
    if task is not None:
        source = task_source(source, task)  # a tag task's gold: present / absent from the tag list
    votes = apply_lfs.compute_votes(source, registry, batch_size=cfg.apply.batch_size)
    k = registry.cardinality
    rows = aggregate.pattern_frame(votes, aggregate.source_ids(source, registry.label_space), registry.names, k)
    agg = aggregate.aggregate_patterns(rows, registry.names, k, max_patterns=max(cfg.aggregate.max_patterns, 1),
                                       with_gold=True)
    if agg.gold_counts is None:
        return {"note": f"more distinct vote patterns on the evaluation source than aggregate.max_patterns="
                        f"{cfg.aggregate.max_patterns}, so it was not scored; raise aggregate.max_patterns"}
    patterns, gold_counts = agg.stats.patterns, agg.gold_counts
    aggregate.warn_unmatched_holdout_gold(source, registry.label_space, int(gold_counts.sum()), agg.stats.n_rows)
    if not gold_counts.sum():
        return {"note": f"no row of the evaluation source {source.info.path} has a gold class in column "
                        f"{ev.gold_column!r}, so it was not scored; write the gold as class names (case matters) "
                        f"or ids, or fix evaluation.gold_column"}
    out: dict[str, Any] = {"source": source.info.path, "gold_column": ev.gold_column,
                           "rows": int(gold_counts.sum()), "coverage": agg.stats.n_covered / max(agg.stats.n_rows, 1)}
    if model is not None:
        mv = MajorityLabelVoter(cardinality=k).fit_from_stats(agg.stats)
        metrics = gold_metrics(model, mv, patterns, gold_counts)
        out.update({"lm_accuracy": metrics["accuracy"], "mv_accuracy": metrics["mv_accuracy"],
                    "lm_accuracy_covered": metrics.get("accuracy_covered"),
                    "mv_accuracy_covered": metrics.get("mv_accuracy_covered")})
        out.update(per_class_section(list(registry.label_space), gold_counts,
                                     lm=tie_shares(model.predict_proba(patterns)),
                                     mv=tie_shares(mv.predict_proba(patterns)),
                                     covered=(patterns >= 0).any(axis=1)))
    acc, support = lf_accuracies(patterns, gold_counts)
    lfs = []
    for j, name in enumerate(registry.names):
        n = int(support[j])
        correct = int(round(acc[j] * n)) if n else 0
        low, high = wilson_interval(correct, n)
        lfs.append({"name": name, "gold_votes": n, "gold_correct": correct, "gold_accuracy": correct / n if n else None,
                    "gold_accuracy_ci95": [low if n else None, high if n else None]})
    out["lfs"] = lfs
    return out


def per_class_section(names: list[str], gold_counts: np.ndarray, *, lm: np.ndarray, mv: np.ndarray,
                      covered: np.ndarray) -> dict[str, Any]:
    """``confusion`` (gold class x predicted class over every row, in expectation: ties split evenly, as every
    lakelabel accuracy) and ``per_class``: per class its gold rows (``support``, ``support_covered``) and the
    label model's and majority vote's precision, recall and F1 over every row and over the covered rows
    (``_covered``). Over every row the uncovered rows count too (the label model's towards the class its class
    balance favours, majority vote's 1/k towards every class), which distorts those classes' precision; the
    covered rows are the ones that get a label.

    gold_counts: [p, k] rows per (vote pattern, gold class); lm, mv: [p, k] tie shares per pattern;
    covered: [p] whether some LF voted in the pattern.
    """
    out: dict[str, Any] = {"confusion": {"labels": names}, "per_class": []}
    matrices = {}
    for key, shares in (("lm", lm), ("mv", mv)):
        matrices[key] = {"": gold_counts.T.astype(float) @ shares,   # [gold, predicted]
                         "_covered": gold_counts[covered].T.astype(float) @ shares[covered]}
        out["confusion"][key] = matrices[key][""].tolist()
    for c, name in enumerate(names):
        row: dict[str, Any] = {"class": name, "support": int(gold_counts[:, c].sum()),
                               "support_covered": int(gold_counts[covered, c].sum())}
        for key, by_rows in matrices.items():
            row[key] = {}
            for suffix, m in by_rows.items():
                right, predicted, support = m[c, c], m[:, c].sum(), m[c, :].sum()
                precision = right / predicted if predicted > 0 else None
                recall = right / support if support > 0 else None
                f1 = (None if precision is None or recall is None
                      else 2 * precision * recall / (precision + recall) if precision + recall else 0.0)
                row[key].update({f"precision{suffix}": precision, f"recall{suffix}": recall, f"f1{suffix}": f1})
        out["per_class"].append(row)
    return out
