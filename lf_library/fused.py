"""Many keyword LFs of one field matched in one Aho-Corasick pass per batch, with the same votes.

Each keyword LF runs its own RE2 program over every batch (:class:`lf_library.builders.KeywordLF`):
fine for a dozen LFs, but 50 tags x 10 keyword LFs are 500 passes over the text. This module
groups the keyword LFs of a batch by ``(field, case_sensitive, whole_word)``; a group of at least
:data:`FUSE_MIN_LFS` LFs is matched with one :class:`~lf_library.matcher.TermMatcher` over the
union of their keywords, and each ``(row, keyword)`` hit becomes a vote of every LF holding that
keyword. The LFs' versions and votes do not change: fusion is how they are evaluated, not what
they mean.

Where the two matchers provably agree, and only there, the fused pass decides:

* keywords of printable ASCII that start and end with a word character (``[A-Za-z0-9_]``), so no
  edge rule differs; an LF with any other keyword runs on its own;
* rows of ASCII text. A row holding a byte ``>= 0x80`` is voted by each LF's own
  ``evaluate_arrow`` (RE2's case folding maps a few non-ASCII letters to ASCII ones, ``ſ`` to
  ``s``, which lowering the text does not).

The matcher of a group is built once per process (:func:`lf_library.matcher.cached_matcher`,
keyed by the LFs' versions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lf_library.apply import BatchVotes, LFRowError, vote_dtype
from lf_library.builders import _NON_ASCII, KeywordLF, _has_non_ascii, _text_column
from lf_library.core import ABSTAIN, LabelingFunction
from lf_library.lexicon_files import fold_terms
from lf_library.matcher import TermMatcher, cached_matcher

__all__ = ["FUSE_MIN_LFS", "KeywordGroup", "keyword_groups", "evaluate_fused"]

FUSE_MIN_LFS = 8
"""Keyword LFs of one field (and matching options) below this count run one RE2 pass each."""

_FUSABLE = re.compile(r"[A-Za-z0-9_](?:[\x20-\x7e]*[A-Za-z0-9_])?")


@dataclass(frozen=True)
class KeywordGroup:
    """Keyword LFs matched together: positions in the LF list, labels, and term -> LF positions.

    ``term_lfs`` is a CSR map: the LFs (indices into ``columns``) holding term ``t`` are
    ``term_lfs[1][term_lfs[0][t]:term_lfs[0][t + 1]]``.
    """

    field: str
    case_sensitive: bool
    whole_word: bool
    columns: np.ndarray  # positions of the group's LFs in the evaluated LF list
    labels: np.ndarray  # each LF's class id
    terms: tuple[str, ...]
    term_lfs: tuple[np.ndarray, np.ndarray]
    key: str

    def matcher(self) -> TermMatcher:
        return cached_matcher(self.key, lambda: TermMatcher(self.terms, np.zeros(len(self.terms), np.int64),
                                                            np.ones(len(self.terms)), case_sensitive=self.case_sensitive,
                                                            whole_word=self.whole_word))  # fmt: skip


def _fusable(lf: LabelingFunction) -> bool:
    if not isinstance(lf, KeywordLF) or lf._resolved is None:
        return False
    return all(_FUSABLE.fullmatch(k) for k in lf.spec["keywords"])


_GROUPS: dict[str, list[KeywordGroup]] = {}


def keyword_groups(lfs: Sequence[LabelingFunction], min_lfs: int = FUSE_MIN_LFS) -> list[KeywordGroup]:
    """The groups of at least ``min_lfs`` fusable keyword LFs among ``lfs`` (cached per LF list)."""
    cache_key = hashlib.sha256("|".join(f"{lf.name}@{lf.version}" for lf in lfs).encode()).hexdigest() + f":{min_lfs}"
    groups = _GROUPS.get(cache_key)
    if groups is not None:
        return groups
    by_options: dict[tuple[str, bool, bool], list[int]] = {}
    for j, lf in enumerate(lfs):
        if _fusable(lf):
            s = lf.spec
            by_options.setdefault((s["field"], s["case_sensitive"], s["whole_word"]), []).append(j)
    groups = []
    for (field, case_sensitive, whole_word), cols in by_options.items():
        if len(cols) < max(min_lfs, 1):
            continue
        index: dict[str, int] = {}
        pairs: list[tuple[int, int]] = []
        for pos, j in enumerate(cols):
            for term in sorted(set(fold_terms(lfs[j].spec["keywords"], case_sensitive=case_sensitive))):
                pairs.append((index.setdefault(term, len(index)), pos))
        pairs.sort()
        term_of = np.array([t for t, _ in pairs], dtype=np.int64)
        indptr = np.searchsorted(term_of, np.arange(len(index) + 1)).astype(np.int64)
        versions = "|".join(lfs[j].version for j in cols)
        key = "fused-keywords:" + hashlib.sha256(f"{field}|{case_sensitive}|{whole_word}|{versions}".encode()).hexdigest()
        groups.append(KeywordGroup(
            field=field, case_sensitive=case_sensitive, whole_word=whole_word, columns=np.array(cols, dtype=np.int64),
            labels=np.array([lfs[j]._resolved for j in cols], dtype=np.int64), terms=tuple(index),
            term_lfs=(indptr, np.array([p for _, p in pairs], dtype=np.int64)), key=key,
        ))  # fmt: skip
    _GROUPS[cache_key] = groups
    return groups


def _group_votes(group: KeywordGroup, lfs: Sequence[LabelingFunction], batch: pa.RecordBatch | pa.Table,
                 out: np.ndarray) -> None:  # fmt: skip
    """Fill ``out[:, group.columns]`` with the group's votes on ``batch``."""
    col = _text_column(batch, group.field, lfs[int(group.columns[0])].name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    sub = out[:, group.columns]
    sub[:] = ABSTAIN
    rows, terms = group.matcher().hits(col)
    if len(rows):
        indptr, members = group.term_lfs
        starts, lens = indptr[terms], indptr[terms + 1] - indptr[terms]
        total = int(lens.sum())
        offsets = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
        lf_pos = members[offsets]
        sub[np.repeat(rows, lens), lf_pos] = group.labels[lf_pos]
    if _has_non_ascii(col):
        # Non-ASCII rows: each LF's own matching decides (see the module docstring).
        rows = np.flatnonzero(pc.match_substring_regex(col, _NON_ASCII).fill_null(False).to_numpy(zero_copy_only=False))
        if len(rows):
            table = pa.table({group.field: col.take(pa.array(rows))})
            for pos, j in enumerate(group.columns.tolist()):
                sub[rows, pos] = lfs[j].evaluate_arrow(table)
    out[:, group.columns] = sub


def evaluate_fused(
    lfs: Sequence[LabelingFunction],
    batch: pa.RecordBatch | pa.Table,
    *,
    cardinality: int,
    evaluate: Callable[[Sequence[LabelingFunction]], BatchVotes],
    min_lfs: int = FUSE_MIN_LFS,
) -> BatchVotes:
    """Votes of every LF on ``batch``: fused keyword groups here, the other LFs through ``evaluate``.

    Parameters
    ----------
    lfs : sequence of LabelingFunction
        Column ``j`` of the result holds the votes of ``lfs[j]``.
    batch : pyarrow.RecordBatch or pyarrow.Table
    cardinality : int
        Largest number of classes (sizes the votes dtype, as :func:`lf_library.apply.evaluate_batch`).
    evaluate : callable
        ``evaluate(other_lfs) -> BatchVotes`` for the LFs not fused (e.g.
        :func:`~lf_library.apply.evaluate_batch` with its options bound, or the time budget's).
    min_lfs : int
        Smallest group that is fused.

    Returns
    -------
    BatchVotes
        Equal to evaluating every LF on its own.
    """
    groups = keyword_groups(lfs, min_lfs) if len(lfs) >= min_lfs else []
    if not groups:
        return evaluate(lfs)
    fused = np.zeros(len(lfs), dtype=bool)
    for g in groups:
        fused[g.columns] = True
    rest = np.flatnonzero(~fused)
    votes = np.full((batch.num_rows, len(lfs)), ABSTAIN, dtype=vote_dtype(int(cardinality)))
    for g in groups:
        _group_votes(g, lfs, batch, votes)
    errors: list[LFRowError] = []
    if len(rest):
        others = evaluate([lfs[j] for j in rest.tolist()])
        votes[:, rest] = others.votes
        errors = [LFRowError(int(rest[e.lf_index]), e.row_index, e.kind, e.message) for e in others.errors]
        errors.sort(key=lambda e: (e.row_index, e.lf_index))
    return BatchVotes(votes=votes, errors=errors)

