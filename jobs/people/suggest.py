"""Suggest job: candidate LFs from the gold dev labels, scored on Spark, written as an LF module.

Candidates:

* keyword LFs: every word and two-word phrase of the text column in the dev rows, for each class
  (words are maximal runs of letters, marks, digits and ``_``, lower-cased: exactly what
  ``keyword_lf(..., whole_word=True)`` matches; a phrase is two words separated by whitespace, folded to one space);
* threshold LFs: ``column >= t`` and ``column < t`` for numeric source columns and the text's
  length, ``t`` at the deciles of the dev rows' values (rounded up to a value one of them has).

Each is scored by its precision on the dev rows with a Wilson 95% lower bound (what a few labels
can vouch for), its coverage on the dev rows and on all rows, its novelty (rows it covers that no
existing LF votes on) and its conflicts (rows where an existing LF votes another class). The
best ``max`` are kept: highest lower bound first (then novelty), classes taken in turn, and a
candidate is dropped when its dev rows overlap a kept one's of the same class by Jaccard >= 0.7, or when
an existing LF votes its class on exactly its rows, whatever it votes elsewhere (``same_as``).
They are written as a module of ``keyword_lf`` / ``sql_lf`` calls, each with a comment of its
scores, plus a CSV table of every candidate that passed the thresholds. The ``test`` split is
never read.
"""

from __future__ import annotations

import csv
import dataclasses
import io as _io
import keyword
import logging
import math
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import delta_io
from jobs.runtime.config import PipelineConfig
from jobs.delta_io.schema import by_name
from jobs.delta_io.sources import load_source
from jobs.people.gold import current_gold
from lf_library.builders import _APOSTROPHE_CLASS, SPACE_CLASS
from lf_library.errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

__all__ = ["Candidate", "check_options", "gold_copies", "min_rows_to_vouch", "no_candidate_reason", "wilson_lower_bound",
           "text_features", "select_diverse", "render_module", "run"]

_WORD = r"[\p{L}\p{M}\p{N}_]"  # a word is a maximal run of these
_JACCARD_MAX = 0.7
_NUMERIC = (T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.FloatType, T.DoubleType, T.DecimalType)


def wilson_lower_bound(correct: float, n: float, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval for a proportion ``correct / n`` (0 when ``n`` is 0)."""
    if n <= 0:
        return 0.0
    p = correct / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


def min_rows_to_vouch(min_precision: float, min_support: int) -> int:
    """Fewest dev rows, all of one class, whose Wilson lower bound reaches ``min_precision``
    (and at least ``min_support``): what one rule needs before it can be suggested."""
    n = max(min_support, 1)
    while wilson_lower_bound(n, n) < min_precision:
        n += 1
    return n


def no_candidate_reason(n_dev: int, min_precision: float, min_support: int) -> str:
    """Why no rule passed, and what to do: the bar a rule must clear against the dev labels there are."""
    need = min_rows_to_vouch(min_precision, min_support)
    return (f"no candidate LF passed: for the 95% lower bound of its precision to reach --min-precision "
            f"{min_precision} (with --min-support {min_support}), a rule needs at least {need} of the {n_dev} dev "
            f"row(s), all of its class (more rows allow a few wrong), and no word, phrase or threshold had that; label "
            f"more rows (lakelabel annotate, then gold import) or lower --min-precision")


@dataclass
class Candidate:
    name: str
    kind: str  # "keyword" or "threshold"
    feature: str  # the keyword, or the SQL condition
    label: int
    label_name: str
    dev_covered: int
    dev_correct: int
    precision: float
    precision_lower_bound: float
    dev_coverage: float
    coverage: float = 0.0
    novel_rows: int = 0
    conflict_rows: int = 0
    kept: bool = False
    same_as: str = ""  # an existing LF whose votes of this class are exactly this candidate's rows (left out)


def text_features(text: Column) -> Column:
    """Distinct words and two-word phrases of ``text``, lower-cased, each whitespace run one space and each
    apostrophe ``'`` (``array<string>``; :func:`lf_library.builders.match_text` folds the text alike).

    Two regular-expression scans, no higher-order functions (which Spark interprets row by row:
    the split-and-pair version took 200 s on 1M demo tickets, this one 10 s, same arrays). A
    phrase is found by a lookahead from each word's start, so phrases overlap as they should.
    HTML character references (``&#39;``, ``&quot;``, common in scraped text) read as one
    non-word character, so their numbers and names are not words (no ``39`` rule from ``&#39;``).
    """
    low = F.regexp_replace(F.lower(F.coalesce(text, F.lit(""))), r"&(#[0-9]+|#x[0-9a-f]+|[a-z][a-z0-9]*);", "&")
    low = F.regexp_replace(low, f"{SPACE_CLASS}+", " ")  # a phrase across a line break is one, as keyword_lf folds it
    # and every apostrophe is "'", as keyword_lf folds it: "ʼ" (U+02BC) is a letter, so "donʼt" was one word here but
    # two (don, t) to the keyword LF
    low = F.regexp_replace(low, _APOSTROPHE_CLASS, "'")
    words = F.regexp_extract_all(low, F.lit(f"({_WORD}+)"), 1)
    pairs = F.regexp_extract_all(low, F.lit(f"(?<!{_WORD})(?=({_WORD}+ {_WORD}+))"), 1)
    return F.array_distinct(F.concat(words, pairs))


def _slug(text: str) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()[:40]
    return s or "x"


def _keyword_candidates(dev: DataFrame, k: int, space: list[str], min_support: int, min_lb: float) -> list[Candidate]:
    per = (
        dev.select("row_id", "label", F.explode("features").alias("feature"))
        .groupBy("feature")
        .agg(F.count(F.lit(1)).alias("n"), *[F.sum((F.col("label") == c).cast("int")).alias(f"c{c}") for c in range(k)])
        .where(F.col("n") >= min_support)
        .collect()
    )
    n_dev = max(dev.count(), 1)
    out = []
    for r in per:
        for c in range(k):
            correct = r[f"c{c}"]
            lb = wilson_lower_bound(correct, r["n"])
            if correct >= min_support and lb >= min_lb:
                out.append(Candidate(f"sug_kw_{_slug(space[c])}_{_slug(r['feature'])}", "keyword", r["feature"], c,
                                     space[c], r["n"], correct, correct / r["n"], lb, r["n"] / n_dev))  # fmt: skip
    return out


def _threshold_candidates(dev_values: dict[str, np.ndarray], labels: np.ndarray, k: int, space: list[str],
                          min_support: int, min_lb: float) -> list[Candidate]:  # fmt: skip
    out = []
    n_dev = max(len(labels), 1)
    for expr, values in dev_values.items():
        ok = ~np.isnan(values)
        if ok.sum() < min_support:
            continue
        # Observed values as thresholds (deciles rounded up to a value a dev row has): integer columns get integers.
        for t in sorted({float(np.quantile(values[ok], q, method="higher")) for q in np.linspace(0.1, 0.9, 9)}):
            t_text = repr(int(t)) if t.is_integer() else repr(round(t, 6))
            for op, covered in ((">=", values >= t), ("<", values < t)):
                n = int(covered.sum())
                for c in range(k):
                    correct = int((covered & (labels == c)).sum())
                    lb = wilson_lower_bound(correct, n)
                    if correct >= min_support and lb >= min_lb:
                        name = f"sug_th_{_slug(space[c])}_{_slug(expr)}_{'ge' if op == '>=' else 'lt'}_{_slug(t_text)}"
                        out.append(Candidate(name, "threshold", f"{expr} {op} {t_text}", c, space[c], n, correct,
                                             correct / n, lb, n / n_dev))  # fmt: skip
    return out


def _score_all_rows(rows: DataFrame, existing: DataFrame, cands: list[Candidate], votes: DataFrame) -> None:
    """Coverage, novelty and conflicts of each candidate on every source row (one Spark job per kind), and which
    keyword candidates vote exactly as an existing LF does (``votes``: row_id, lf_name, vote; :func:`_same_as`)."""
    spark = rows.sparkSession
    flagged = rows.join(existing, "row_id", "left")
    n_rows = max(rows.count(), 1)
    kw = [c for c in cands if c.kind == "keyword"]
    if kw:
        table = spark.createDataFrame([(c.feature, c.label, i) for i, c in enumerate(kw)], "feature string, cls int, i int")
        hits = (
            # only the shortlisted words of each row, not all of them, reach the explode and the join
            flagged.select("classes", F.explode(F.array_intersect(
                "features", F.array(*[F.lit(f) for f in sorted({c.feature for c in kw})]))).alias("feature"))
            .join(F.broadcast(table), "feature")
            .groupBy("i")
            .agg(F.count(F.lit(1)).alias("n"),
                 F.sum(F.col("classes").isNull().cast("int")).alias("novel"),
                 F.sum(F.coalesce(F.exists("classes", lambda v: v != F.col("cls")), F.lit(False)).cast("int")).alias("conflict"))
            .collect()
        )  # fmt: skip
        for r in hits:
            c = kw[r["i"]]
            c.coverage, c.novel_rows, c.conflict_rows = r["n"] / n_rows, r["novel"], r["conflict"]
        _same_as(rows, votes, kw, table, {r["i"]: r["n"] for r in hits})
    th = [c for c in cands if c.kind == "threshold"]
    if th:
        aggs = []
        for i, c in enumerate(th):
            hit = F.coalesce(F.expr(c.feature), F.lit(False))
            aggs += [F.sum(hit.cast("int")).alias(f"n{i}"),
                     F.sum((hit & F.col("classes").isNull()).cast("int")).alias(f"v{i}"),
                     F.sum((hit & F.coalesce(F.exists("classes", lambda v: v != c.label), F.lit(False))).cast("int")).alias(f"x{i}")]  # fmt: skip
        r = flagged.agg(*aggs).first()
        for i, c in enumerate(th):
            c.coverage, c.novel_rows, c.conflict_rows = (r[f"n{i}"] or 0) / n_rows, r[f"v{i}"] or 0, r[f"x{i}"] or 0


def _same_as(rows: DataFrame, votes: DataFrame, kw: list[Candidate], table: DataFrame, hits: dict[int, int]) -> None:
    """Set ``same_as`` on each keyword candidate (``kw``, ids in ``table``; ``hits``: rows each covers) whose rows are
    exactly those an existing LF votes the candidate's class on, whatever it votes elsewhere: the same evidence
    again, which the label model would count twice (a drill on TREC: ``who`` -> HUM beside the team's ``kw_who``).
    One Spark job counts each LF's votes per class; only the candidates with an LF of as many votes of their class
    are compared row by row, in a second one (usually none)."""
    if not hits:
        return
    per_class = {(r["lf_name"], r["vote"]): r["n"]
                 for r in votes.groupBy("lf_name", "vote").agg(F.count(F.lit(1)).alias("n")).collect()}
    pairs = [(i, name) for i, n in hits.items() for (name, vote), votes_of in per_class.items()
             if vote == kw[i].label and votes_of == n]  # fmt: skip
    if not pairs:
        return
    spark = rows.sparkSession
    wanted = F.array(*[F.lit(f) for f in sorted({kw[i].feature for i, _ in pairs})])
    overlap = (
        rows.select("row_id", F.explode(F.array_intersect("features", wanted)).alias("feature"))
        .join(F.broadcast(table), "feature")
        .join(F.broadcast(spark.createDataFrame(pairs, "i int, lf_name string")), "i")
        .join(votes, ["row_id", "lf_name"])
        .where(F.col("vote") == F.col("cls"))
        .groupBy("i", "lf_name").agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )  # fmt: skip
    for r in sorted(overlap, key=lambda r: r["lf_name"]):
        if r["n"] == hits[r["i"]] and not kw[r["i"]].same_as:
            kw[r["i"]].same_as = r["lf_name"]


def select_diverse(cands: list[Candidate], dev_rows: dict[str, set[str]], max_lfs: int, k: int) -> list[Candidate]:
    """The best ``max_lfs``: by lower bound then novelty, classes in turn, near-copies (Jaccard >= 0.7) dropped."""
    queues = {c: sorted((x for x in cands if x.label == c),
                        key=lambda x: (-round(x.precision_lower_bound, 3), -x.novel_rows, -x.dev_covered, x.name))
              for c in range(k)}  # fmt: skip
    kept: list[Candidate] = []
    while len(kept) < max_lfs and any(queues.values()):
        for c in range(k):
            while queues[c] and len(kept) < max_lfs:
                cand = queues[c].pop(0)
                if cand.same_as:  # an existing LF already votes exactly this
                    continue
                mine = dev_rows.get(cand.name, set())
                if any(o.label == c and _jaccard(mine, dev_rows.get(o.name, set())) >= _JACCARD_MAX for o in kept):
                    continue
                cand.kept = True
                kept.append(cand)
                break
    return kept


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def render_module(kept: list[Candidate], space: list[str], field: str, header: str) -> str:
    """An LF module of ``keyword_lf`` / ``sql_lf`` calls, each under a comment of its scores."""
    lines = [f'"""{header}"""', "", "from lf_library import keyword_lf, sql_lf", "",
             f"LABEL_SPACE = {tuple(space)!r}", ""]  # fmt: skip
    for c in kept:
        lines.append(
            f"# {c.label_name}: precision {c.precision:.2f} on {c.dev_covered} dev row(s) (95% lower bound "
            f"{c.precision_lower_bound:.2f}); coverage {c.dev_coverage:.1%} of dev, {c.coverage:.1%} of all rows; "
            f"{c.novel_rows} row(s) no LF covered, {c.conflict_rows} conflicting with existing LFs"
        )
        if c.kind == "keyword":
            lines.append(f"{c.name} = keyword_lf({c.name!r}, [{c.feature!r}], {c.label_name!r}, field={field!r})")
        else:
            lines.append(f"{c.name} = sql_lf({c.name!r}, {c.feature!r}, {c.label_name!r})")
        lines.append("")
    return "\n".join(lines)


def check_options(out: str, max_lfs: int, min_precision: float, min_support: int) -> None:
    """The command's options, each named with its value and the fix (before Spark starts)."""
    path = Path(out)
    if path.suffix != ".py" or not path.stem.isidentifier() or keyword.iskeyword(path.stem):
        raise ConfigError(f"--out {out!r} must be a .py file whose name is a Python identifier (e.g. suggested_lfs.py)")
    if max_lfs < 1:
        raise ConfigError(f"--max {max_lfs} must be at least 1 (the number of LFs to keep)")
    if min_support < 1:
        raise ConfigError(f"--min-support {min_support} must be at least 1 (correct dev rows a candidate needs)")
    if not 0 <= min_precision < 1:
        raise ConfigError(f"--min-precision {min_precision} must be in [0, 1) (a precision's 95% lower bound)")


def gold_copies(values: dict[str, np.ndarray], labels: np.ndarray) -> list[str]:
    """Numeric columns that are the gold class under other names on the dev rows: whole numbers,
    one value per class and one class per value, over at least two classes and with some value
    seen twice (the demo's ``true_label_id``). A rule on such a column copies the truth into the
    LFs, so it is not suggested."""
    out = []
    for expr, v in values.items():
        if np.isnan(v).any() or len(np.unique(labels)) < 2 or not np.all(v == np.round(v)) or len(np.unique(v)) == len(v):
            continue
        pairs = np.unique(np.stack([v, labels.astype(np.float64)]), axis=1)
        if pairs.shape[1] == len(np.unique(v)) == len(np.unique(labels)):
            out.append(expr)
    return out


def run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str, max_lfs: int = 10, out: str = "suggested_lfs.py",
        min_precision: float = 0.6, min_support: int = 3, exclude_columns: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """``lakelabel suggest``: write the best ``max_lfs`` candidate LFs to ``out`` and their table beside it."""
    started = time.perf_counter()
    check_options(out, max_lfs, min_precision, min_support)
    path = Path(out).expanduser()
    from jobs.runtime.lf_sources import build_registry
    from jobs.apply_record import check_lfs_unchanged, load_apply_result
    from jobs.delta_io.files import is_local_path
    from jobs.people.annotate import text_column_of

    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    dev = current_gold(spark, cfg, io, split="dev")
    if dev is None:
        raise ConfigError(f"no gold table at {cfg.table_path('gold')}; label rows and run `lakelabel gold import` first")
    applied = load_apply_result(cfg, io)
    if not is_local_path(applied.votes_table):  # a local table's LFs were checked before Spark started
        check_lfs_unchanged(applied, build_registry(cfg))
    space = list(applied.label_space)
    k = len(space)
    source = load_source(spark, cfg.source, io=io)
    text_col = text_column_of(cfg, source)
    unknown = [c for c in exclude_columns if c not in source.df.columns]
    if unknown:
        raise ConfigError(f"--exclude-columns names {unknown[0]!r}, which is not a column of {source.description}; "
                          f"its columns are: {', '.join(source.df.columns)}")
    numeric = [f.name for f in source.df.schema.fields if isinstance(f.dataType, _NUMERIC)
               and f.name not in (source.id_column, source.gold_column, *exclude_columns)]  # fmt: skip
    # An LF cannot read a column with a '.' in its name (Spark reads it as a struct field): no candidate on it.
    dotted = [c for c in numeric if "." in c]
    numeric = [c for c in numeric if c not in dotted]
    quoted = "`" + text_col.replace("`", "``") + "`"
    columns = {"`" + c.replace("`", "``") + "`": c for c in numeric}
    # Quoted: an id or text column may have characters F.col reads otherwise (a '.': a struct field).
    exprs = {f"length({quoted})": F.length(by_name(text_col)), **{e: by_name(c) for e, c in columns.items()}}
    plain = source.df.select(by_name(source.id_column).cast("string").alias("row_id"),
                             *[by_name(c) for c in numeric if c != text_col], by_name(text_col))  # fmt: skip
    rows = plain.withColumn("features", text_features(by_name(text_col)))
    # The dev rows are a few people's labels: pick them out first (a broadcast join), then split
    # only their text into words, instead of every source row's.
    dev_rows = (plain.join(F.broadcast(dev.select("row_id", "label")), "row_id")
                .withColumn("features", text_features(by_name(text_col))).persist())  # fmt: skip
    try:
        n_dev = dev_rows.count()
        if n_dev == 0:
            raise InputDataError(f"the gold table {cfg.table_path('gold')} has no dev rows in the source; import "
                                 f"labels with split dev (or let the id hash assign them) first")  # fmt: skip
        cands = _keyword_candidates(dev_rows, k, space, min_support, min_precision)
        local = dev_rows.select("row_id", "label", "features",
                                *[e.alias(f"_v{i}") for i, e in enumerate(exprs.values())]).collect()  # fmt: skip
    finally:
        dev_rows.unpersist()
    labels = np.array([r["label"] for r in local])
    values = {expr: np.array([np.nan if r[f"_v{i}"] is None else float(r[f"_v{i}"]) for r in local])
              for i, expr in enumerate(exprs)}  # fmt: skip
    copies = gold_copies({e: values[e] for e in columns}, labels)
    if copies:
        log.warning("suggest: %s %s the gold class one to one on the %d dev rows (a copy of the truth, like an "
                    "encoded label); no rule is suggested on them. If one is a real feature, it alone labels the data",
                    ", ".join(copies), "matches" if len(copies) == 1 else "match", len(labels))  # fmt: skip
    cands += _threshold_candidates({e: v for e, v in values.items() if e not in copies}, labels, k, space,
                                   min_support, min_precision)  # fmt: skip
    covered: dict[str, set[str]] = {}
    for c in cands:
        if c.kind == "keyword":
            covered[c.name] = {r["row_id"] for r in local if c.feature in r["features"]}
        else:
            expr, op, t = c.feature.rsplit(" ", 2)
            v = values[expr]
            covered[c.name] = {r["row_id"] for r, x in zip(local, (v >= float(t)) if op == ">=" else (v < float(t))) if x}
    votes = io.read_table(spark, applied.votes_table, version=applied.votes_version)
    votes = votes.where(F.col("vote") >= 0).select(F.col("row_id").cast("string").alias("row_id"), "lf_name", "vote")
    existing = votes.groupBy("row_id").agg(F.collect_set("vote").alias("classes"))
    # Score only the strongest candidates on every row: the kept ones come from these.
    cands.sort(key=lambda c: (-c.precision_lower_bound, -c.dev_covered, c.name))
    shortlist = cands[: max(50, 10 * max_lfs)]
    if shortlist:
        _score_all_rows(rows, existing, shortlist, votes)
        same = [c for c in shortlist if c.same_as]
        if same:
            log.warning("suggest: %d candidate(s) left out that vote exactly as an existing LF does (the label model "
                        "would count that evidence twice): %s", len(same),
                        ", ".join(f"{c.feature!r} -> {c.label_name} ({c.same_as})" for c in same[:5])
                        + (f" and {len(same) - 5} more" if len(same) > 5 else ""))  # fmt: skip
    else:
        log.warning("suggest: %s", no_candidate_reason(n_dev, min_precision, min_support))
    kept = select_diverse(shortlist, covered, max_lfs, k)
    seen: dict[str, int] = {}
    for c in kept:  # two features can share a slug ("a_b" and "a b"): keep the LF names unique
        seen[c.name] = seen.get(c.name, 0) + 1
        if seen[c.name] > 1:
            c.name = f"{c.name}_{seen[c.name]}"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"LFs suggested by `lakelabel suggest` from {n_dev} gold dev label(s) ({stamp}, run {run_id}).\n\n"
              f"Read and edit them, then list this module under lfs.modules. Scores are on the dev split;\n"
              f"the test split was not read.\n")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_module(kept, space, text_col, header), encoding="utf-8")
    table = path.with_suffix(".csv")
    buf = _io.StringIO()
    fields = [f.name for f in dataclasses.fields(Candidate)]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for c in shortlist:
        writer.writerow({key: round(v, 4) if isinstance(v, float) else v for key, v in asdict(c).items()})
    table.write_text(buf.getvalue(), encoding="utf-8")
    seconds = time.perf_counter() - started
    log.info("suggest: %d of %d candidates from %d dev labels -> %s, %s (%.1fs)", len(kept), len(cands), n_dev, path,
             table, seconds)
    return {
        "run_id": run_id, "stage": "suggest", "status": "succeeded", "skipped": False, "files": [str(path), str(table)],
        "counts": {"dev_rows": n_dev, "candidates": len(cands), "kept": len(kept),
                   "same_as_an_lf": sum(bool(c.same_as) for c in shortlist)},
        **({} if cands else {"note": no_candidate_reason(n_dev, min_precision, min_support)}),
        "left_out_columns": {**{c: "--exclude-columns" for c in exclude_columns},
                             **{c: "a '.' in its name, which an LF cannot read: rename it to use it" for c in dotted},
                             **{columns[e]: "matches the gold class one to one" for e in copies}},
        "lfs": [asdict(c) for c in kept],
        "tables": {"gold": {"path": cfg.table_path("gold"), "version": io.table_version(cfg.table_path("gold"))}},
        "timings_seconds": {"suggest": round(seconds, 3)},
    }  # fmt: skip
