"""The report's figures, drawn with matplotlib from an analysis document (no Spark, no row data).

Each function takes the document (:func:`jobs.analyze.analyze`) and returns a matplotlib Figure;
:func:`all_figures` returns them as PNG bytes with a title and a caption saying how to read them.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

GOOD, BAD, NEUTRAL, MV_COLOR = "#2b8a3e", "#c92a2a", "#868e96", "#f08c00"
LM_COLOR, GOLD_COLOR = "#1c7ed6", "#495057"


def _accuracy_of(lf: dict[str, Any]) -> tuple[float | None, str]:
    if lf.get("gold_accuracy") is not None:
        return lf["gold_accuracy"], "gold"
    return lf.get("estimated_accuracy"), "estimated"


def lf_coverage_accuracy(doc: dict[str, Any]) -> plt.Figure:
    """Each LF as a point: coverage (x) against accuracy on gold (y, 95% interval) or the model's estimate."""
    k = len(doc["label_space"])
    fig, ax = plt.subplots(figsize=(7.5, 5))
    chance = 1.0 / k
    sources = set()
    points: list[tuple[float, float, str]] = []
    for lf in doc["lfs"]:
        acc, source = _accuracy_of(lf)
        if acc is None or lf["coverage"] is None:
            continue
        sources.add(source)
        color = BAD if acc < chance else (NEUTRAL if acc < 0.6 else GOOD)
        if source == "gold":
            low, high = lf["gold_accuracy_ci95"]
            ax.errorbar(lf["coverage"], acc, yerr=[[acc - low], [high - acc]], fmt="o", color=color, capsize=3, ms=7)
        else:
            ax.plot(lf["coverage"], acc, "s", color=color, ms=7)
        points.append((lf["coverage"], acc, lf["name"]))
        if lf["name"] == doc.get("highlight"):
            ax.plot(lf["coverage"], acc, "o", ms=15, mfc="none", mec=LM_COLOR, mew=2.5, label=f"draft: {lf['name']}")
            ax.legend(loc="lower right", fontsize=8)
    ax.axhline(chance, color=BAD, ls="--", lw=1)
    ax.text(0.99, chance, f"random guess (1/{k})", color=BAD, fontsize=8, ha="right", va="bottom",
            transform=ax.get_yaxis_transform())
    ax.set_xlabel("coverage (share of rows the LF votes on)")
    where = "the evaluation source" if doc.get("lf_gold_from") == "evaluation" else "gold"
    ax.set_ylabel(f"accuracy on {where} (95% interval)" if sources == {"gold"} else "accuracy (gold, else estimated)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, max([p[0] for p in points] + [0.05]) * 1.25)
    ax.grid(alpha=0.3)
    ax.set_title("LF coverage against accuracy")
    fig.tight_layout()
    _label_points(ax, points)
    fig.tight_layout()
    return fig


def _label_points(ax: Any, points: list[tuple[float, float, str]]) -> None:
    """Name each point, choosing for each label the first nearby spot that no earlier label covers."""
    fig = ax.figure
    fig.canvas.draw()  # fixes the axis limits, so data -> screen positions are final
    scale = 72.0 / fig.dpi  # screen pixels -> points
    offsets = [(6, 3), (6, -10), (-6, 3), (-6, -10), (6, 13), (6, -20), (-6, 13), (-6, -20), (6, 23), (6, -30)]
    taken: list[tuple[float, float, float, float]] = []
    for x, y, name in sorted(points, key=lambda p: (-p[1], p[0])):
        px, py = (v * scale for v in ax.transData.transform((x, y)))
        width, height = 4.9 * len(name), 9.0
        for dx, dy in offsets:
            left = px + dx if dx > 0 else px + dx - width
            box = (left, py + dy, left + width, py + dy + height)
            if not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken):
                break
        else:
            dx, dy = offsets[0]
            left = px + dx
            box = (left, py + dy, left + width, py + dy + height)
        taken.append(box)
        ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8,
                    ha="left" if dx > 0 else "right", va="bottom")


# The conflict heatmap writes each pair's conflict share in its cell up to this many LFs.
_CELL_TEXT_MAX = 25
# The conflict heatmap's largest side: 4,400 pixels at the report's 110 dpi, a label of 8 points per LF up to 300 LFs.
HEATMAP_MAX_INCHES = 40.0


def conflict_heatmap(doc: dict[str, Any]) -> plt.Figure:
    """LF pairs: rows where they vote different classes (color), and that as a share of their overlap (text)."""
    pairs = doc["pairs"]
    names = pairs["lfs"]
    rate = np.array([[np.nan if x is None else x for x in row] for row in pairs["conflict_rate_matrix"]], dtype=float)
    conflict = np.array(pairs["conflict_matrix"], dtype=float)
    m = len(names)
    shown = conflict.copy()
    np.fill_diagonal(shown, np.nan)
    # 0.55 in per LF, but at most HEATMAP_MAX_INCHES: 304 LFs drew a 169-inch figure, an 18,777-pixel square PNG
    # whose rendering took the report's driver to 13.6 GB; the page shows it 1,200 pixels wide in any case.
    size = min(max(5.0, 0.55 * m + 2), HEATMAP_MAX_INCHES)
    tick_size = min(8.0, 72 * 0.9 * (size - 2) / max(m, 1))  # a label no taller than its row
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(np.ma.masked_invalid(shown), cmap="Reds", vmin=0, vmax=max(np.nanmax(shown) if m > 1 else 1, 1))
    ax.set_xticks(range(m), names, rotation=60, ha="right", fontsize=tick_size)
    ax.set_yticks(range(m), names, fontsize=tick_size)
    top = np.nanmax(shown) if m > 1 else 1
    if m <= _CELL_TEXT_MAX:
        for a in range(m):
            for b in range(m):
                if a != b and conflict[a, b] > 0:
                    ax.text(b, a, f"{rate[a, b]:.0%}", ha="center", va="center", fontsize=6.5,
                            color="white" if conflict[a, b] > 0.6 * top else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="rows where the two LFs vote different classes")
    shares = " (text: share of the rows both voted)" if m <= _CELL_TEXT_MAX else ""
    ax.set_title(f"Conflicts between LF pairs{shares}")
    fig.tight_layout()
    return fig


def confusion_gold(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """``(confusion, accuracies, where)`` the confusion plot draws: the run's own gold (the source's gold column
    or the gold table's test split), else the held-out evaluation source's; None without either."""
    if scored_gold(doc):
        return doc["confusion"], doc["totals"], ""
    ev = doc.get("evaluation") or {}
    if ev.get("confusion"):
        return ev["confusion"], ev, f" (held-out evaluation source, {ev['rows']:,} rows)"
    return None


def confusion_matrices(doc: dict[str, Any]) -> plt.Figure | None:
    """Label model and majority vote against gold, each row normalized to the gold class's rows."""
    found = confusion_gold(doc)
    if found is None:
        return None
    conf, accuracies, where = found
    labels = conf["labels"]
    k = len(labels)
    fig, axes = plt.subplots(1, 2, figsize=(max(9, 2.2 * k + 5), max(4, 0.8 * k + 2)))
    for ax, key, title in zip(axes, ("lm", "mv"), ("label model", "majority vote")):
        counts = np.array(conf[key], dtype=float)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for t in range(k):
            for p in range(k):
                ax.text(p, t, f"{share[t, p]:.0%}", ha="center", va="center", fontsize=9,
                        color="white" if share[t, p] > 0.6 else "black")
        ax.set_xticks(range(k), labels, rotation=30, ha="right")
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("gold class")
        acc = accuracies.get("lm_accuracy" if key == "lm" else "mv_accuracy")
        ax.set_title(f"{title}: accuracy {acc:.1%}" if acc is not None else title)
    fig.suptitle(f"Confusion against gold{where} (row: share of that gold class; ties split evenly)")
    fig.tight_layout()
    return fig


def confidence_histogram(doc: dict[str, Any]) -> plt.Figure:
    """Rows per label-model confidence bucket, split into right / wrong against gold / no gold."""
    hist = doc["confidence_histogram"]
    x = np.array([(h["low"] + h["high"]) / 2 for h in hist])
    width = hist[0]["high"] - hist[0]["low"] if hist else 0.1
    right = np.array([h["correct"] for h in hist])
    wrong = np.array([h["gold"] - h["correct"] for h in hist])
    nogold = np.array([h["rows"] - h["gold"] for h in hist])
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ax.bar(x, right, width * 0.9, color=GOOD, label="right against gold")
    ax.bar(x, wrong, width * 0.9, bottom=right, color=BAD, label="wrong (or abstained) against gold")
    if nogold.any():
        ax.bar(x, nogold, width * 0.9, bottom=right + wrong, color=NEUTRAL, label="no gold")
    ax.set_xlim(0, 1)
    ax.set_xlabel("label-model confidence (top probability)")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Confidence of the labels")
    fig.tight_layout()
    return fig


def class_distributions(doc: dict[str, Any]) -> plt.Figure:
    """Rows per class: label model, majority vote, gold (and rows left unlabeled)."""
    classes = doc["classes"]
    names = [c["class"] for c in classes] + ["(abstain)"]
    totals = doc["totals"]
    lm_abstain = totals["rows"] - sum(c["lm_labels"] for c in classes)
    mv_abstain = totals["rows"] - sum(c["mv_labels"] for c in classes)
    series = [("label model", [c["lm_labels"] for c in classes] + [lm_abstain], LM_COLOR),
              ("majority vote", [c["mv_labels"] for c in classes] + [mv_abstain], MV_COLOR)]
    gold = gold_distribution(doc)
    if gold is not None:
        series.append((gold[0], gold[1] + [0], GOLD_COLOR))
    x = np.arange(len(names))
    w = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.1 * len(names) + 3), 4))
    for i, (label, values, color) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * w, values, w, label=label, color=color)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Class distribution (abstain: ties or no votes)")
    fig.tight_layout()
    return fig


def gold_distribution(doc: dict[str, Any]) -> tuple[str, list[float]] | None:
    """``(legend, rows per class)`` of the gold bars, on the scale of the labeled rows: gold that covers only some
    rows (a gold table's test split, a partly filled gold column, the evaluation source when the source has no
    gold) is scaled to ``totals.rows`` by its class shares, so each bar compares with the label model's and
    majority vote's. None without gold."""
    rows = doc["totals"]["rows"]
    if scored_gold(doc):
        counts = [float(c["gold"] or 0) for c in doc["classes"]]
        where = "gold"
    else:
        per_class = (doc.get("evaluation") or {}).get("per_class")
        if not per_class:
            return None
        counts = [float(c["support"]) for c in per_class]
        where = "gold of the evaluation source"
    n = sum(counts)
    if n == rows:
        return where, counts
    if not n:
        return None
    return f"{where} ({n:,.0f} rows, scaled to {rows:,})", [c / n * rows for c in counts]


def slice_accuracy(doc: dict[str, Any]) -> plt.Figure | None:
    """Label-model and majority-vote accuracy per slice, next to all rows; None without slices."""
    slices = doc["slices"]
    if not slices:
        return None
    t = doc["totals"]
    rows = [("all rows", t["lm_accuracy"], t["mv_accuracy"], t["coverage"], t["rows"])]
    rows += [(s["name"], s["lm_accuracy"], s["mv_accuracy"], s["coverage"], s["size"]) for s in slices]
    has_gold = any(r[1] is not None for r in rows)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.4 * len(rows) + 3), 4))
    x = np.arange(len(rows))
    if has_gold:
        lm = [r[1] or 0 for r in rows]
        mv = [r[2] or 0 for r in rows]
        ax.bar(x - 0.2, lm, 0.4, color=LM_COLOR, label="label model")
        ax.bar(x + 0.2, mv, 0.4, color=MV_COLOR, label="majority vote")
        for i, (a, b) in enumerate(zip(lm, mv)):
            ax.text(i - 0.2, a + 0.01, f"{a:.0%}", ha="center", fontsize=8)
            ax.text(i + 0.2, b + 0.01, f"{b:.0%}", ha="center", fontsize=8)
        ax.set_ylabel("accuracy against gold")
    else:
        ax.bar(x, [r[3] or 0 for r in rows], 0.5, color=LM_COLOR, label="coverage")
        ax.set_ylabel("coverage")
    ax.set_xticks(x, [f"{r[0]}\n{r[4]:,} rows, {(r[3] or 0):.0%} covered" for r in rows], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Accuracy per slice")
    fig.tight_layout()
    return fig


CAPTIONS = {
    "lf_coverage_accuracy": (
        "LF coverage against accuracy",
        "One point per LF. Right means it votes on more rows; up means it is right more often. Bars are 95% "
        "Wilson intervals on the gold rows it voted on (squares: the label model's estimate, when there is no "
        "gold). Red points sit below the dashed random-guess line: fix or drop those LFs first."),
    "conflict_heatmap": (
        "Conflicts between LF pairs",
        "Each cell: how many rows the two LFs vote different classes on (darker = more rows); the text (up to "
        f"{_CELL_TEXT_MAX} LFs) is that as a share of the rows both voted. Two LFs of different classes always "
        "conflict where they overlap; a dark row points at an LF whose votes clash with many others, often a broad "
        "or inaccurate one."),
    "confusion_matrices": (
        "Confusion matrices against gold",
        "Rows are the true (gold) class, columns the predicted class; each row sums to 100%. Off-diagonal cells "
        "are classes that get conflated. Left: the label model; right: majority vote, for comparison. Without gold "
        "in the run's source or gold table, against the held-out evaluation source."),
    "confidence_histogram": (
        "Confidence of the labels",
        "Rows per label-model confidence (its top probability). Green: right against gold, red: wrong. A "
        "trustworthy model is mostly green at high confidence; red at high confidence means confidently wrong "
        "labels (see the error buckets)."),
    "class_distributions": (
        "Class distribution",
        "Rows per class as labeled by the label model and by majority vote, next to the gold distribution (scaled to "
        "all rows when the gold labels cover only some of them; without gold in the run, the evaluation source's). A "
        "class far above its gold bar is over-predicted (some LF votes it too often); abstain counts unlabeled rows."),
    "slice_accuracy": (
        "Accuracy per slice",
        "Accuracy of the label model and of majority vote on each slice (slices.modules), next to all rows. A "
        "slice well below 'all rows' is a weak spot worth a new or fixed LF."),
    "end_model_f1": (
        "End model: per-class F1",
        "F1 on gold of each class for the end model that `lakelabel train` fitted on the labels, the label model "
        "and majority vote. A class where the end model trails the label model is one it has too few or too "
        "noisy labels to learn."),
    "label_transitions": (
        "What changed since the previous run (lakelabel diff)",
        "Rows per (label in the earlier run, label in this run). The diagonal kept its label; every other cell is "
        "labels that flipped, '(unlabeled)' rows no LF voted on and '(absent)' rows that exist in one run only. "
        "The label_changes table lists the flipped rows and the LFs whose votes changed on each."),
}


def end_model_gold(doc: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The gold set the end model is shown on: held-out source, else gold test split, else the source's gold."""
    evaluation = (doc.get("end_model") or {}).get("evaluation") or {}
    for name in ("evaluation", "gold_test", "source_gold"):
        if evaluation.get(name, {}).get("per_class"):
            return name, evaluation[name]
    return None


def end_model_f1(doc: dict[str, Any]) -> plt.Figure | None:
    """Per-class F1 on gold of the end model (``lakelabel train``) beside the label model and majority vote."""
    found = end_model_gold(doc)
    if found is None:
        return None
    name, section = found
    rows = section["per_class"]
    models = [(m, c) for m, c in (("end_model", GOOD), ("label_model", LM_COLOR), ("majority_vote", MV_COLOR))
              if m in rows[0]]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(rows) + 2), 3.6))
    x = np.arange(len(rows))
    width = 0.8 / len(models)
    for i, (model, color) in enumerate(models):
        values = [r[model]["f1"] if r[model]["f1"] is not None else 0.0 for r in rows]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, color=color, label=model.replace("_", " "))
    ax.set_xticks(x, [f"{r['class']}\n({r['support']} gold)" for r in rows])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 on gold")
    ax.set_title(f"Per-class F1 ({name.replace('_', ' ')}, {section['rows']} rows)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def label_transitions(doc: dict[str, Any]) -> plt.Figure | None:
    """The diff's transition matrix (``doc["label_diff"]``, from ``lakelabel diff``); None without a diff."""
    diff = doc.get("label_diff")
    if not diff:
        return None
    classes = diff["transitions"]["classes"]
    counts = np.array(diff["transitions"]["matrix"], dtype=float)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * k + 3), max(4, 0.7 * k + 2)))
    off = counts.copy()
    np.fill_diagonal(off, 0)
    ax.imshow(np.log1p(off), cmap="Reds")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{counts[i, j]:,.0f}", ha="center", va="center", fontsize=9,
                    color=NEUTRAL if i == j else "black", fontweight="normal" if i == j else "bold")
    ax.set_xticks(range(k), classes, rotation=30, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel(f"label in run {diff['to_run']}")
    ax.set_ylabel(f"label in run {diff['from_run']}")
    c = diff["counts"]
    ax.set_title(f"{c['flipped']:,} flipped, {c['moved']:,} moved (threshold {diff['threshold']:g}) of {c['rows']:,} rows")
    fig.tight_layout()
    return fig


def has_gold(doc: dict[str, Any]) -> bool:
    """Whether the analysis had gold: the source's gold column or the gold table's test split."""
    return bool(doc.get("gold_column") or doc.get("gold_table_test_rows"))


def scored_gold(doc: dict[str, Any]) -> bool:
    """Whether the run's own gold scored some row (a gold column whose values match no class scores none: the
    plots then fall back to the evaluation source, as the findings do)."""
    return has_gold(doc) and bool(doc["totals"].get("gold_rows"))


def all_figures(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{name, title, caption, png}]`` for every figure the document supports (PNG bytes, 110 dpi)."""
    makers = [lf_coverage_accuracy, conflict_heatmap, confusion_matrices, class_distributions, confidence_histogram]
    makers += [slice_accuracy, end_model_f1, label_transitions]
    return render(makers, doc)


def render(makers: list[Any], doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Draw each figure of ``makers`` (functions of this module) from ``doc``, as PNG bytes."""
    out = []
    for make in makers:
        fig = make(doc)
        if fig is None:
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        title, caption = CAPTIONS[make.__name__]
        out.append({"name": make.__name__, "title": title, "caption": caption, "png": buf.getvalue()})
    return out
