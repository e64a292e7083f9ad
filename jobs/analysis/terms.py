"""Per-term counts of the keyword and lexicon LFs, for ``lakelabel analyze`` (the ``terms`` section).

An expert who wrote a list of 40 keywords wants to know which of them fire, which never do, and which
fire on rows whose gold (or label) is another class. Each such LF's terms are matched on the source rows
exactly as the LF matches them (:func:`lf_library.builders._any_keyword` term by term for keyword and inline
lexicon LFs, the LF's own Aho-Corasick matcher for lexicon files), in one Spark pass joined to the
analysis' per-row gold and label; only the counts reach the driver.

Per term: ``rows`` the rows it occurs in, ``sole`` the rows where it is the only term of its LF that
occurs (what the LF would lose without it), ``gold_rows`` / ``gold_correct`` of those with gold, how
many have the term's class, and ``label_agree`` how many the run labeled with the term's class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from jobs.delta_io.schema import by_name
from jobs.lf_pass import pickle_lfs
from lf_library.builders import KeywordLF, LexiconLF, _any_keyword, _has_non_ascii, _text_column, match_text
from lf_library.matcher import TermLexiconLF, cached_matcher

# Keyword and inline lexicon LFs are matched term by term (one regex pass each): past this many terms
# an LF is left out with a note. Lexicon files are matched in one pass whatever their size.
MAX_TERMS_ONE_BY_ONE = 1000
DEAD_LISTED = 100  # terms that never occur, listed per LF (all are counted)
_COUNTS = ("rows", "sole", "gold_rows", "gold_correct", "label_agree")
_SCHEMA = pa.schema([pa.field("lf", pa.int32()), pa.field("term", pa.int32()),
                     *[pa.field(c, pa.int64()) for c in _COUNTS]])


def _terms_of(lf: Any) -> tuple[list[str], np.ndarray] | None:
    """The LF's terms and each one's class id, or None for an LF without terms."""
    if isinstance(lf, KeywordLF):
        words = list(lf.spec["keywords"])
        return words, np.full(len(words), lf._label_id(), dtype=np.int64)
    if isinstance(lf, LexiconLF):
        pairs = [(t, c) for c, terms in lf._resolved for t in terms]
        return [t for t, _ in pairs], np.array([c for _, c in pairs], dtype=np.int64)
    if isinstance(lf, TermLexiconLF):
        return list(lf.lexicon.terms), np.asarray(lf._resolved, dtype=np.int64)
    return None


def term_lfs(lfs: Sequence[Any], run_versions: Mapping[str, str]) -> tuple[list[Any], list[dict[str, str]]]:
    """The LFs whose terms are counted (the run's version, with terms), and a note for each one left out."""
    kept, skipped = [], []
    for lf in lfs:
        found = _terms_of(lf)
        if found is None or lf.name not in run_versions:
            continue
        if run_versions[lf.name] != lf.version and run_versions[lf.name] not in lf.earlier_versions:
            skipped.append({"lf": lf.name, "reason": "its code or terms changed since the run; rerun, then analyze"})
        elif not isinstance(lf, TermLexiconLF) and len(found[0]) > MAX_TERMS_ONE_BY_ONE:
            skipped.append({"lf": lf.name, "reason": f"{len(found[0]):,} terms, more than the {MAX_TERMS_ONE_BY_ONE:,} "
                                                     f"counted one by one; a lexicon file (kind: lexicon, file:) is "
                                                     f"counted whatever its size"})
        else:
            kept.append(lf)
    return kept, skipped


def _hits(lf: Any, col: pa.Array | pa.ChunkedArray, n_terms: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row, term)`` index arrays: each distinct term of ``lf`` found in each row, as the LF matches it."""
    if isinstance(lf, TermLexiconLF):
        return cached_matcher(lf.version, lf._build).hits(col)
    s = lf.spec
    col = match_text(col)
    words = _terms_of(lf)[0]
    opts = {"case_sensitive": s["case_sensitive"], "whole_word": s["whole_word"]}
    # One pass for all the terms first (an alternation matches where any term does), then each term on those
    # rows only: most rows hold none of an LF's terms.
    found = np.flatnonzero(_any_keyword(col, words, **opts, non_ascii=_has_non_ascii(col)))
    hit_rows = col.take(pa.array(found)) if len(found) else None
    non_ascii = hit_rows is not None and _has_non_ascii(hit_rows)
    rows, terms = [], []
    for j in range(n_terms if hit_rows is not None else 0):
        hit = found[_any_keyword(hit_rows, [words[j]], **opts, non_ascii=non_ascii)]
        rows.append(hit)
        terms.append(np.full(len(hit), j, dtype=np.int64))
    return (np.concatenate(rows), np.concatenate(terms)) if rows else (np.zeros(0, np.int64), np.zeros(0, np.int64))


def count_batch(batch: pa.RecordBatch, lfs: Sequence[Any], fields: Sequence[str]) -> pa.RecordBatch:
    """One batch of ``gold, label, __t<i>`` rows -> per (LF, term) counts of the terms found in it."""
    gold = batch.column("gold").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    label = batch.column("label").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    out: dict[str, list[np.ndarray]] = {name: [] for name in _SCHEMA.names}
    for i, lf in enumerate(lfs):
        words, classes = _terms_of(lf)
        n = len(words)
        view = pa.RecordBatch.from_arrays([batch.column(f"__t{fields.index(lf.spec['field'])}")],
                                          names=[lf.spec["field"]])
        rows, terms = _hits(lf, _text_column(view, lf.spec["field"], lf.name), n)
        if not len(rows):
            continue
        per_row = np.bincount(rows, minlength=batch.num_rows)
        with_gold = gold[rows] >= 0
        counts = {
            "rows": np.bincount(terms, minlength=n),
            "sole": np.bincount(terms[per_row[rows] == 1], minlength=n),
            "gold_rows": np.bincount(terms[with_gold], minlength=n),
            "gold_correct": np.bincount(terms[with_gold & (gold[rows] == classes[terms])], minlength=n),
            "label_agree": np.bincount(terms[label[rows] == classes[terms]], minlength=n),
        }
        found = np.flatnonzero(counts["rows"])
        out["lf"].append(np.full(len(found), i, dtype=np.int32))
        out["term"].append(found.astype(np.int32))
        for name in _COUNTS:
            out[name].append(counts[name][found])
    arrays = [pa.array(np.concatenate(out[f.name]) if out[f.name] else np.zeros(0, f.type.to_pandas_dtype()), f.type)
              for f in _SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=_SCHEMA)


def term_counts(spark: Any, lfs: Sequence[Any], source_df: DataFrame, id_column: str,
                scored: DataFrame) -> dict[tuple[int, int], dict[str, int]]:
    """``{(lf index, term index): counts}`` over the source rows, one Spark pass (terms that occur only)."""
    fields = sorted({lf.spec["field"] for lf in lfs})
    text = source_df.select(by_name(id_column).alias("row_id"),  # a '.' in a name is not a struct field's path
                            *[by_name(f).alias(f"__t{i}") for i, f in enumerate(fields)])
    joined = text.join(scored.select("row_id", "gold", "label"), "row_id", "left").drop("row_id")
    payload = spark.sparkContext.broadcast(pickle_lfs(tuple(lfs), lfs))

    def count_partition(batches):
        from pyspark import cloudpickle

        lfs_ = cloudpickle.loads(payload.value)
        for batch in batches:
            if batch.num_rows:
                yield count_batch(batch, lfs_, fields)

    counted = joined.mapInArrow(count_partition, from_arrow_schema(_SCHEMA))
    totals = counted.groupBy("lf", "term").agg(*[F.sum(c).alias(c) for c in _COUNTS]).collect()
    return {(r["lf"], r["term"]): {c: int(r[c]) for c in _COUNTS} for r in totals}


def describe_lf(lf: Any, i: int, counts: Mapping[tuple[int, int], Mapping[str, int]], label_space: Sequence[str], *,
                listed: int) -> dict[str, Any]:
    """One LF's entry of the section: its ``listed`` most frequent terms (ties by term) and those that never occur."""
    words, classes = _terms_of(lf)
    rows = []
    for j, (word, c) in enumerate(zip(words, classes.tolist())):
        got = counts.get((i, j), dict.fromkeys(_COUNTS, 0))
        precision = got["gold_correct"] / got["gold_rows"] if got["gold_rows"] else None
        rows.append({"term": word, "class": label_space[c] if 0 <= c < len(label_space) else c, **got,
                     "gold_precision": precision})
    dead = [r["term"] for r in rows if not r["rows"]]
    live = sorted((r for r in rows if r["rows"]), key=lambda r: (-r["rows"], r["term"]))
    return {"lf": lf.name, "kind": lf.kind, "field": lf.spec["field"], "n_terms": len(words), "n_dead": len(dead),
            "dead": dead[:DEAD_LISTED], "top": live[:listed]}


def terms_section(spark: Any, lfs: Sequence[Any], skipped: Sequence[dict[str, str]], source_df: DataFrame,
                  id_column: str, scored: DataFrame, label_space: Sequence[str], *, listed: int) -> dict[str, Any]:
    """The document's ``terms``: an entry per LF (:func:`describe_lf`) and the LFs left out with why."""
    counts = term_counts(spark, lfs, source_df, id_column, scored) if lfs else {}
    return {"lfs": [describe_lf(lf, i, counts, label_space, listed=listed) for i, lf in enumerate(lfs)],
            "skipped": list(skipped)}
