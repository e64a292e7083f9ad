"""Declarative LFs: keyword, regex, lexicon and SQL labeling functions.

They are described by a ``spec`` dict (kind + parameters) instead of Python source, so the version
hashes the spec, and they never run row by row in the job: keyword, regex and lexicon LFs compile
to RE2 regexes evaluated with ``pyarrow.compute`` over whole batches (about 5x faster than the
same matching with Python's ``re`` row by row), SQL LFs to a native Spark column.

Whole-word matching (``whole_word=True``) means a keyword is neither preceded nor followed by a
letter, combining mark, digit or underscore. Unlike RE2's ASCII-only ``\\b``, this also holds for
non-ASCII words ("café", "naïve") and for keywords that end in punctuation ("c++").

Keyword and lexicon terms and the text they are matched in are compared in one form (:func:`match_text`,
:func:`fold_term`): Unicode NFC, every run of whitespace (a line break, a tab, a no-break space, two
spaces) as one space, and every apostrophe (``’`` as phones and word processors type it, ``‘``, ``ʼ``,
``＇``) as ``'``. So ``can't`` finds "can’t" and ``reset password`` finds "reset\\n  password".
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lf_library.apply import class_id
from lf_library._versioning import _dumps
from lf_library.core import ABSTAIN, LabelingFunction, _as_record
from lf_library.errors import InputDataError, LFConfigError, LFError

__all__ = ["keyword_lf", "regex_lf", "lexicon_lf", "sql_lf", "DeclarativeLF", "ArrowLF", "SQLLabelingFunction"]

# Bump when the matching semantics of the builders change: it changes every builder LF's version.
_SEMANTICS = 1
# Kinds whose matching changed since, with their own number: only their LFs get new versions.
# 2: terms and text compared in Unicode NFC (keyword and lexicon LFs, lexicon files included).
# 3: and with whitespace runs and apostrophes folded (match_text, fold_term).
_KIND_SEMANTICS = {"keyword": 3, "lexicon": 3}
# Keywords per RE2 program; larger alternations can exceed RE2's default memory budget.
_CHUNK = 500
# A character that ends a word, in the exact (Unicode) sense and in the fast (ASCII) sense. RE2
# takes ~2 ms to compile the Unicode class, more than scanning 10k rows, so batches are first
# matched with the ASCII class (exact for ASCII text) and only non-ASCII rows that did not match
# are rescanned with the Unicode class.
_NOT_WORD = r"[^\p{L}\p{M}\p{N}_]"
_NOT_WORD_ASCII = r"[^\w\x{80}-\x{10FFFF}]"
_NON_ASCII = r"[^\x00-\x7F]"
# What folds to one space and to "'" (fold_term, match_text): the characters Python's str.isspace() accepts (the
# Unicode White_Space ones and the ASCII separators \x1c-\x1f), and the apostrophe's look-alikes.
_SPACES = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
           + "\u2028\u2029\u202f\u205f\u3000")
_APOSTROPHES = "\u2018\u2019\u02bc\uff07"
# A regex class of them, in the \x{...} notation RE2 and Java's regexes (Spark SQL) both read.
SPACE_CLASS = "[" + "".join(rf"\x{{{ord(c):X}}}" for c in _SPACES) + "]"
_OTHER_SPACE = SPACE_CLASS.replace(r"\x{20}", "")
# A run of whitespace that is not one plain space (a lone space stays as it is: most text needs no copy).
_SPACE_RUN = rf" ?{_OTHER_SPACE}{SPACE_CLASS}*|  {SPACE_CLASS}*"
_APOSTROPHE_CLASS = "[" + "".join(rf"\x{{{ord(c):X}}}" for c in _APOSTROPHES) + "]"
_FOLD_SPACES = re.compile(f"[{re.escape(_SPACES)}]+")
_FOLD_APOSTROPHES = str.maketrans(dict.fromkeys(_APOSTROPHES, "'"))
# The ASCII bytes of _SPACES other than the plain space.
_ASCII_SPACE_BYTES = np.array([ord(c) for c in _SPACES if ord(c) < 0x20], dtype=np.uint8)


def re2_escape(text: str) -> str:
    """Escape ``text`` to match literally in RE2 (like ``RE2::QuoteMeta``)."""
    return "".join(ch if ch.isalnum() or ch == "_" or ord(ch) > 127 else "\\" + ch for ch in text)


def fold_term(term: str) -> str:
    """``term`` in the form :func:`match_text` gives the text: NFC, each whitespace run one space, each
    apostrophe ``'``."""
    return _FOLD_SPACES.sub(" ", unicodedata.normalize("NFC", term)).translate(_FOLD_APOSTROPHES)


def _keyword_pattern(
    keywords: Sequence[str], *, case_sensitive: bool, whole_word: bool, ascii_bounds: bool = False
) -> str:
    alternation = "|".join(re2_escape(fold_term(k)) for k in keywords)
    bound = _NOT_WORD_ASCII if ascii_bounds else _NOT_WORD
    body = f"(?:^|{bound})(?:{alternation})(?:$|{bound})" if whole_word else f"(?:{alternation})"
    return body if case_sensitive else "(?i)" + body


def _string_bytes(col: pa.Array | pa.ChunkedArray) -> list[np.ndarray]:
    """The UTF-8 bytes of each chunk of ``col``, only this (possibly sliced) array's, without a copy."""
    out = []
    for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        _, offsets, data = chunk.buffers()[:3]
        if len(chunk) == 0 or data is None or data.size == 0:
            continue
        kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        bounds = np.frombuffer(offsets, dtype=kind)[[chunk.offset, chunk.offset + len(chunk)]]
        out.append(np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[1]])
    return out


def _has_non_ascii(col: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any string holds a byte >= 0x80."""
    return any(len(text) and text.max() >= 0x80 for text in _string_bytes(col))


@functools.cache
def _composable() -> str:
    """An RE2 class of what Unicode normalization (NFC) may change: combining marks (an "é" written as "e" +
    U+0301, as macOS file names and some scraped text hold it), Hangul jamo, and the about 1,100 characters
    NFC replaces on their own (CJK compatibility ideographs, the Ohm sign, ...), listed once per process."""
    alone = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and not unicodedata.is_normalized("NFC", chr(c))]
    ranges: list[list[int]] = []
    for c in alone:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return r"[\p{M}\x{1100}-\x{11FF}" + "".join(rf"\x{{{a:X}}}-\x{{{b:X}}}" for a, b in ranges) + "]"


_LAST_MATCH_TEXT = threading.local()
# Text columns whose folded form match_text keeps per thread: one per field of a batch, up to this many fields and
# this many bytes of columns in all (a batch of long documents, 10,000 x 100 KB, is not held beside the next).
_MATCH_TEXT_KEPT = 4
_MATCH_TEXT_CACHE_BYTES = 64 * 2**20


def match_text(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``col`` as keyword and lexicon terms are matched in it (:func:`fold_term` gives the terms the same form):
    Unicode NFC, so a term matches however its letters were encoded; each run of whitespace other than one plain
    space as one space; each apostrophe as ``'``. An ASCII batch with no tab, line break or double space costs
    one scan of its bytes; only rows that hold a mark or another character NFC may change are normalized.

    The LFs of a batch see the same columns one after the other: the last :data:`_MATCH_TEXT_KEPT` columns' results
    are kept per thread (with the columns, so their buffers, whose addresses are the keys, stay alive) and reused,
    so LFs that alternate between a subject and a body fold each once too (one kept column folded the body again
    for every LF: 10x the CPU of NFC alone)."""
    key = _buffers_key(col)
    kept = getattr(_LAST_MATCH_TEXT, "entries", None)
    if kept is None:
        kept = _LAST_MATCH_TEXT.entries = {}
    found = kept.get(key)
    if found is not None:
        return found[1]
    out = _match_text(col)
    # What keeping col holds alive: its whole buffers (a small slice of a large batch keeps all of it).
    held = col.get_total_buffer_size()
    if held > _MATCH_TEXT_CACHE_BYTES:  # folded per LF rather than kept alive until the next batch
        return out
    while kept and (len(kept) >= _MATCH_TEXT_KEPT
                    or sum(c.get_total_buffer_size() for c, _ in kept.values()) + held > _MATCH_TEXT_CACHE_BYTES):
        del kept[next(iter(kept))]  # the oldest
    kept[key] = (col, out)
    return out


def _buffers_key(col: pa.Array | pa.ChunkedArray) -> tuple[Any, ...]:
    chunked = isinstance(col, pa.ChunkedArray)  # the same buffers as one chunk or as an array: the result's kind
    return (chunked, *((str(c.type), c.offset, len(c), *(b.address if b is not None else 0 for b in c.buffers()))
                       for c in (col.chunks if chunked else [col])))


def _match_text(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if not _has_non_ascii(col):
        return pc.replace_substring_regex(col, _SPACE_RUN, " ") if _ascii_space_runs(col) else col
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    mask = pc.match_substring_regex(col, _composable()).fill_null(False)
    if pc.any(mask).as_py():
        # Python's unicodedata: pyarrow 22's utf8_normalize returns "e" + U+0301 for every form, NFC included.
        fixed = [None if s is None else unicodedata.normalize("NFC", s) for s in col.filter(mask).to_pylist()]
        col = pc.replace_with_mask(col, mask, pa.array(fixed, col.type))
    return pc.replace_substring_regex(pc.replace_substring_regex(col, _SPACE_RUN, " "), _APOSTROPHE_CLASS, "'")


def _ascii_space_runs(col: pa.Array | pa.ChunkedArray) -> bool:
    """Whether ``col``'s bytes hold a whitespace character other than a space, or two spaces in a row (maybe
    across two strings: a needless copy at worst)."""
    for text in _string_bytes(col):
        spaces = text == 0x20
        if np.isin(text, _ASCII_SPACE_BYTES).any() or (spaces[1:] & spaces[:-1]).any():
            return True
    return False


def _check_pattern(pattern: str, lf_name: str, shown: str) -> None:
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        # The RE2 hint only where it applies: a missing parenthesis is just a typo to fix.
        unsupported = re.search(r"\(\?<?[=!]|\\[1-9]", pattern)
        fix = ("RE2 has no lookaround or backreferences: rewrite it, or write a Python LF with the re module"
               if unsupported else "fix the pattern")
        raise LFConfigError(f"LF {lf_name!r}: {shown} does not compile as an RE2 regex ({err}); {fix}") from None


def _check_terms(values: Any, lf_name: str, what: str) -> list[str]:
    """A keyword or term list: non-empty strings, distinct, sorted, in Unicode NFC (:func:`fold_term` folds their
    whitespace and apostrophes as they are matched; the spec keeps them as written)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Sequence) and not isinstance(values, (set, frozenset)):
        raise LFConfigError(f"LF {lf_name!r}: {what} must be a list of strings, got {values!r}")
    out = list(values)
    bad = [v for v in out if not isinstance(v, str) or not v]
    if bad or not out:
        hints = []
        if any(v is None or v == "" for v in bad):
            hints.append("an empty entry (a '-' with nothing after it, or '') matches nothing: remove it")
        if any(isinstance(v, (bool, int, float)) for v in bad):
            hints.append("YAML reads 2024, 1.5, yes, no, on, off as numbers and booleans: quote them ('2024', 'no')")
        raise LFConfigError(
            f"LF {lf_name!r}: {what} must be a non-empty list of non-empty strings"
            + (f"; bad entries: {bad!r}" if bad else "") + ("; " + "; ".join(hints) if hints else "")
        )
    # 'refund ' (a cell copied with its space) matched only where the text had a space and then a non-word
    # character after 'refund': it missed nearly every row, silently. A term is a word or phrase, never padding.
    padded = [v for v in out if v != v.strip()]
    if padded:
        shown = ", ".join(repr(v) for v in padded[:3])
        fixed = ", ".join(repr(v.strip()) for v in padded[:3] if v.strip())
        raise LFConfigError(
            f"LF {lf_name!r}: {what} has {len(padded)} entr{'y' if len(padded) == 1 else 'ies'} with a space (or tab, "
            f"newline) at the start or end: {shown}; such a term matches almost no text. Remove the spaces"
            + (f" ({fixed}): whole-word matching already finds a term between spaces and punctuation" if fixed else
               ": a term made of spaces only matches nothing useful")
        )
    return sorted({unicodedata.normalize("NFC", v) for v in out})


# A letter outside ASCII right before or after \b (or \b right before or after one): RE2's \b knows only ASCII
# word characters, so '\bcafé\b' never matches the word café ("é" and the space after it are both non-word to it).
_ASCII_B_NEXT_TO_NON_ASCII = re.compile(r"(?<!\\)\\b(?=(?P<c>[^\x00-\x7f]))|(?P<c2>[^\x00-\x7f])\\b")


def _check_user_regex(pattern: str, lf_name: str, *, case_sensitive: bool, what: str = "LF") -> None:
    """Mistakes in a hand-written regex that compile but silently vote on every row or on none."""
    shown = f"{what} {lf_name!r}: pattern '{pattern}'"
    if any(ch in pattern for ch in "\x08\x07\x0c\x0b\x1b"):
        raise LFConfigError(
            f"{what} {lf_name!r}: pattern {pattern!r} holds a control character (a backspace where \\b was meant): inside YAML double quotes "
            f"\\b is a backspace; write the pattern in single quotes, pattern: '\\bword\\b'"
        )
    compiled = pattern if case_sensitive else "(?i)" + pattern
    # '^$' (an empty text) is a fair LF; a pattern that also finds itself in any text is not.
    probes = pa.array(["", "q", "Zz 9.", "\u00e9t\u00e9\n", "\u6771"], pa.string())
    if pc.all(pc.match_substring_regex(probes, compiled)).as_py():
        raise LFConfigError(
            f"{shown} matches the empty string anywhere in a text, so it matches every row (an empty alternative such as 'a|' or "
            f"'|a', or a pattern that may match nothing such as 'a*' or 'a?'); make every alternative match at "
            f"least one character"
        )
    beside = [m.group("c") or m.group("c2") for m in _ASCII_B_NEXT_TO_NON_ASCII.finditer(pattern)]
    if any(unicodedata.category(ch)[0] in "LMN" for ch in beside):  # a letter or digit; '\b€' may be meant
        raise LFConfigError(
            f"{shown} puts \\b next to a non-ASCII letter; RE2's \\b knows only ASCII letters, so it never finds "
            f"a word boundary there ('\\bcafé\\b' misses 'café'). Use a keyword LF (whole words in any script), "
            f"or write the boundary as (?:^|[^\\p{{L}}\\p{{N}}_]) before the word and (?:$|[^\\p{{L}}\\p{{N}}_]) "
            f"after it"
        )


def _check_label(label: Any, lf_name: str) -> int | str:
    if isinstance(label, str) and label:
        return label
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        return class_id(int(label), None, lf_name=lf_name)
    hint = " (YAML reads no/yes/on/off as booleans: quote the label, 'yes')" if isinstance(label, bool) else ""
    raise LFConfigError(f"LF {lf_name!r}: label must be a class id (int) or a class name (str), got {label!r}{hint}")


def _text_column(batch: pa.RecordBatch | pa.Table, field: str, lf_name: str) -> pa.Array | pa.ChunkedArray:
    """The ``field`` column as Arrow strings, or an InputDataError naming the LF and the column."""
    if field not in batch.schema.names:
        raise InputDataError(
            f"LF {lf_name!r} reads column {field!r}, which the input lacks; available columns: "
            f"{batch.schema.names}; fix the LF's field= or the source table"
        )
    col = batch.column(field)
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if pa.types.is_null(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        col, t = col.cast(pa.string()), pa.string()
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise InputDataError(
            f"LF {lf_name!r} matches text in column {field!r}, which has type {t}; point field= at a "
            f"string column or cast it to string in the source"
        )
    return col


def _matches(col: pa.Array | pa.ChunkedArray, pattern: str) -> np.ndarray:
    """Boolean numpy array: does each string match ``pattern``? Null -> False."""
    return pc.match_substring_regex(col, pattern).fill_null(False).to_numpy(zero_copy_only=False)


def _chunks(keywords: Sequence[str]) -> list[Sequence[str]]:
    return [keywords[i : i + _CHUNK] for i in range(0, len(keywords), _CHUNK)]


def _check_keywords(
    keywords: Sequence[str], lf_name: str, what: str, *, case_sensitive: bool, whole_word: bool
) -> None:
    for words in _chunks(keywords):
        pattern = _keyword_pattern(words, case_sensitive=case_sensitive, whole_word=whole_word)
        _check_pattern(pattern, lf_name, what)


def _any_keyword(
    col: pa.Array | pa.ChunkedArray,
    keywords: Sequence[str],
    *,
    case_sensitive: bool,
    whole_word: bool,
    non_ascii: bool | None = None,
) -> np.ndarray:
    """Boolean numpy array: does each string contain any of ``keywords``? Null -> False.

    ``non_ascii``: whether ``col`` holds a non-ASCII byte, when the caller already knows.
    """
    hit = np.zeros(len(col), dtype=bool)
    chunks = _chunks(keywords)
    for words in chunks:
        fast = _keyword_pattern(words, case_sensitive=case_sensitive, whole_word=whole_word, ascii_bounds=True)
        hit |= _matches(col, fast)
    if whole_word and (_has_non_ascii(col) if non_ascii is None else non_ascii):
        # Rows whose keyword sits next to a non-ASCII character ("“subscribe”", "café!"):
        # the ASCII class could not decide them, the Unicode one can.
        todo = ~hit & _matches(col, _NON_ASCII)
        if todo.any():
            rows = np.flatnonzero(todo)
            sub = col.take(pa.array(rows))
            for words in chunks:
                hit[rows] |= _matches(sub, _keyword_pattern(words, case_sensitive=case_sensitive, whole_word=True))
    return hit


class DeclarativeLF(LabelingFunction):
    """Base of the builder LFs: described by :attr:`spec`, versioned by it, never run row-wise.

    Subclasses implement :meth:`_resolve` (class names -> ids once the label space is known).
    """

    def __init__(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        label_space: Sequence[str] | None,
        fields: Sequence[str] | None,
    ) -> None:
        self.spec = spec
        self.f = None
        self.vectorized = True
        self.kind = spec["kind"]
        self._resolved: Any = None
        self._init_common(name, label_space=None, resources=None, fields=fields)
        self._resolved = self._resolve(None)
        if label_space is not None:
            self.label_space = label_space

    def _resolve(self, label_space: tuple[str, ...] | None) -> Any:
        raise NotImplementedError

    def _on_label_space(self, label_space: tuple[str, ...]) -> None:
        self._resolved = self._resolve(label_space)

    def _description(self) -> dict[str, Any]:
        return {"spec": self.spec, "semantics": self._semantics}

    @property
    def _semantics(self) -> int:
        return _KIND_SEMANTICS.get(self.spec.get("kind"), _SEMANTICS)

    @property
    def earlier_versions(self) -> tuple[str, ...]:
        return tuple(self._version_of({"spec": self.spec, "semantics": n}) for n in range(1, self._semantics))

    def _unresolved(self, label: Any) -> LFConfigError:
        return LFConfigError(
            f"LF {self.name!r}: label {label!r} is a class name; register the LF in an LFRegistry or "
            f"pass label_space=... so it can be resolved to a class id"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, spec={_dumps(self.spec)})"


class _SingleLabel:
    """Mixin for builders that vote one label: resolves ``spec['label']``."""

    spec: dict[str, Any]
    name: str

    def _resolve(self, label_space: tuple[str, ...] | None) -> int | None:
        label = self.spec["label"]
        if isinstance(label, str) and label_space is None:
            return None
        return class_id(label, label_space, lf_name=self.name)

    def _label_id(self) -> int:
        if self._resolved is None:
            raise self._unresolved(self.spec["label"])
        return self._resolved


class ArrowLF(DeclarativeLF):
    """A declarative LF evaluated with ``pyarrow.compute`` over whole batches."""

    def evaluate_arrow(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """Votes for every row of ``table``: int64 array of class ids or ABSTAIN."""
        raise NotImplementedError

    def __call__(self, x: Any) -> int:
        """Vote on one row (a dict, pandas Series or pyspark Row)."""
        record = _as_record(x)
        field = self.spec["field"]
        if field not in record:
            raise InputDataError(
                f"LF {self.name!r} reads column {field!r}, which the row lacks; it has {sorted(record)}"
            )
        value = record[field]
        text_type = pa.string() if value is None or isinstance(value, str) else None
        table = pa.table({field: pa.array([value], text_type)})
        return int(self.evaluate_arrow(table)[0])


class KeywordLF(_SingleLabel, ArrowLF):
    def evaluate_arrow(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        label = self._label_id()
        s = self.spec
        col = match_text(_text_column(table, s["field"], self.name))
        hit = _any_keyword(col, s["keywords"], case_sensitive=s["case_sensitive"], whole_word=s["whole_word"])
        return np.where(hit, label, ABSTAIN).astype(np.int64)


class RegexLF(_SingleLabel, ArrowLF):
    def evaluate_arrow(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        label = self._label_id()
        s = self.spec
        col = _text_column(table, s["field"], self.name)
        pattern = s["pattern"] if s["case_sensitive"] else "(?i)" + s["pattern"]
        return np.where(_matches(col, pattern), label, ABSTAIN).astype(np.int64)


class LexiconLF(ArrowLF):
    def _resolve(self, label_space: tuple[str, ...] | None) -> list[tuple[int, list[str]]] | None:
        items = []
        for label, terms in self._terms:
            if isinstance(label, str) and label_space is None:
                return None
            items.append((class_id(label, label_space, lf_name=self.name), terms))
        ids = [i for i, _ in items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise LFConfigError(
                f"LF {self.name!r}: several keys of terms resolve to the same class id(s) {dupes}; "
                f"give each class one entry"
            )
        return items

    @property
    def _terms(self) -> list[tuple[int | str, list[str]]]:
        return [(label, terms) for label, terms in self.spec["terms"]]

    def evaluate_arrow(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        if self._resolved is None:
            raise self._unresolved(next(label for label, _ in self._terms if isinstance(label, str)))
        s = self.spec
        col = match_text(_text_column(table, s["field"], self.name))
        # Scanned once for the 1 + terms keyword passes below (the rows taken from col inherit it).
        opts = {"case_sensitive": s["case_sensitive"], "whole_word": s["whole_word"],
                "non_ascii": _has_non_ascii(col)}
        ids = np.array([i for i, _ in self._resolved], dtype=np.int64)
        hits = np.stack([_any_keyword(col, terms, **opts) for _, terms in self._resolved], axis=1)
        n_classes_hit = hits.sum(axis=1)
        votes = np.full(len(col), ABSTAIN, dtype=np.int64)
        single = n_classes_hit == 1
        votes[single] = ids[hits[single].argmax(axis=1)]
        multi = np.flatnonzero(n_classes_hit >= 2)
        if len(multi):
            # Only rows hit by several classes need per-term counts, and only for the classes
            # that hit them (a class that did not hit a row counts 0 terms there).
            counts = np.zeros((len(multi), len(ids)), dtype=np.int64)
            for c, (_, terms) in enumerate(self._resolved):
                where = np.flatnonzero(hits[multi, c])
                if len(where) == 0:
                    continue
                if len(terms) == 1:
                    counts[where, c] = 1
                    continue
                sub = col.take(pa.array(multi[where]))
                for term in terms:
                    counts[where, c] += _any_keyword(sub, [term], **opts)
            best = counts.max(axis=1, keepdims=True)
            winners = counts == best
            unique = winners.sum(axis=1) == 1
            votes[multi[unique]] = ids[winners[unique].argmax(axis=1)]
        return votes


class SQLLabelingFunction(_SingleLabel, DeclarativeLF):
    """An LF written as a Spark SQL boolean expression; runs as a native Spark column."""

    def spark_column(self) -> Any:
        """``CASE WHEN (condition) THEN label ELSE -1 END`` as a pyspark Column.

        The condition is parsed on its own, so a syntax error's position is in the author's text (not in the
        CASE around it) and a trailing ``-- comment`` stays a comment."""
        from pyspark.sql import functions as F

        return F.when(F.expr(self.spec["condition"]), F.lit(self._label_id())).otherwise(F.lit(ABSTAIN))

    def __call__(self, x: Any) -> int:
        raise LFError(
            f"LF {self.name!r}: sql LFs run on Spark; evaluate it with lf.spark_column() on a Spark "
            f"DataFrame, e.g. df.select(lf.spark_column().alias({self.name!r}))"
        )


def _field(field: Any, lf_name: str) -> str:
    if not isinstance(field, str) or not field:
        raise LFConfigError(f"LF {lf_name!r}: field must be a column name, got {field!r}")
    return field


def keyword_lf(
    name: str,
    keywords: Sequence[str],
    label: int | str,
    *,
    field: str = "text",
    case_sensitive: bool = False,
    whole_word: bool = True,
    label_space: Sequence[str] | None = None,
) -> LabelingFunction:
    """Vote ``label`` when ``field`` contains any of ``keywords``, else abstain.

    Parameters
    ----------
    name : str
        LF name.
    keywords : sequence of str
        Matched literally (no regex syntax); order and duplicates do not matter.
    label : int or str
        Class id, or class name resolved against the label space.
    field : str, default "text"
        String column to search; null -> ABSTAIN.
    case_sensitive : bool, default False
    whole_word : bool, default True
        Match only where the keyword is not glued to a letter, digit or underscore.
    label_space : sequence of str, optional
        Usually assigned by the registry.
    """
    words = _check_terms(keywords, name, "keywords")
    spec = {
        "kind": "keyword",
        "keywords": words,
        "label": _check_label(label, name),
        "field": _field(field, name),
        "case_sensitive": bool(case_sensitive),
        "whole_word": bool(whole_word),
    }
    _check_keywords(words, name, "keywords", case_sensitive=bool(case_sensitive), whole_word=bool(whole_word))
    return KeywordLF(name, spec, label_space=label_space, fields=(field,))


def regex_lf(
    name: str,
    pattern: str,
    label: int | str,
    *,
    field: str = "text",
    case_sensitive: bool = False,
    label_space: Sequence[str] | None = None,
) -> LabelingFunction:
    """Vote ``label`` when the RE2 ``pattern`` matches anywhere in ``field``, else abstain.

    Raises
    ------
    LFConfigError
        When pyarrow's RE2 cannot compile ``pattern`` (lookaround, backreferences...).
    """
    if not isinstance(pattern, str) or not pattern:
        raise LFConfigError(f"LF {name!r}: pattern must be a non-empty regex string, got {pattern!r}")
    spec = {
        "kind": "regex",
        "pattern": pattern,
        "label": _check_label(label, name),
        "field": _field(field, name),
        "case_sensitive": bool(case_sensitive),
    }
    _check_pattern(pattern if case_sensitive else "(?i)" + pattern, name, f"pattern '{pattern}'")
    _check_user_regex(pattern, name, case_sensitive=bool(case_sensitive))
    return RegexLF(name, spec, label_space=label_space, fields=(field,))


def lexicon_lf(
    name: str,
    terms: Mapping[int | str, Sequence[str]],
    *,
    field: str = "text",
    case_sensitive: bool = False,
    whole_word: bool = True,
    label_space: Sequence[str] | None = None,
) -> LabelingFunction:
    """Vote the class whose terms hit ``field`` most (distinct terms); ties and no hit -> ABSTAIN.

    Parameters
    ----------
    terms : mapping of label to sequence of str
        Class id or name -> literal terms of that class.
    whole_word : bool, default True
        As in :func:`keyword_lf`.
    """
    if not isinstance(terms, Mapping) or not terms:
        raise LFConfigError(f"LF {name!r}: terms must be a non-empty dict of label -> list of terms, got {terms!r}")
    items = []
    owner: dict[str, tuple[Any, str]] = {}  # a term as matched -> its class and the term as written there
    for label, words in terms.items():
        if isinstance(words, str) and "," in words:  # YAML reads `spam: cash, prize` as one string
            parts = ", ".join(part.strip() for part in words.split(","))
            raise LFConfigError(f"LF {name!r}: terms[{label!r}] is the one string {words!r}, which would match only "
                                f"that whole text; write a list: {label}: [{parts}]")
        words = _check_terms(words, name, f"terms[{label!r}]")
        # Terms as they are matched: "can't" and "can’t" are one term, and "Free" and "free" when case is ignored.
        keys = [fold_term(w) if case_sensitive else fold_term(w).casefold() for w in words]
        for w, key in zip(words, keys):  # a term in two classes ties with itself: that LF abstains wherever found
            first, written = owner.setdefault(key, (label, w))
            if first != label:
                # Each class's own spelling: "can’t" under one and "can't" under the other are one term as matched.
                same = (f"term {w!r} is under terms[{first!r}] and terms[{label!r}]"
                        if written.casefold() == w.casefold() else
                        f"term {written!r} under terms[{first!r}] and {w!r} under terms[{label!r}] are one term as "
                        f"matched (whitespace runs and apostrophes folded)")
                raise LFConfigError(f"LF {name!r}: {same}" + ("" if case_sensitive else " (case is ignored)")
                                    + "; a term votes for one class, so it would always tie: keep it under one")
        words = sorted(dict(zip(keys, words)).values()) if len(set(keys)) < len(keys) else words
        items.append([_check_label(label, name), words])
        what = f"terms[{label!r}]"
        _check_keywords(words, name, what, case_sensitive=bool(case_sensitive), whole_word=bool(whole_word))
    items.sort(key=lambda it: _dumps(it[0]))
    spec = {
        "kind": "lexicon",
        "terms": items,
        "field": _field(field, name),
        "case_sensitive": bool(case_sensitive),
        "whole_word": bool(whole_word),
    }
    return LexiconLF(name, spec, label_space=label_space, fields=(field,))


def sql_lf(
    name: str, condition: str, label: int | str, *, label_space: Sequence[str] | None = None
) -> LabelingFunction:
    """Vote ``label`` where the Spark SQL boolean ``condition`` holds, else abstain (NULL -> abstain).

    The LF runs as ``CASE WHEN (condition) THEN label ELSE -1 END`` on Spark
    (:meth:`SQLLabelingFunction.spark_column`); calling it on a Python row raises :class:`LFError`.
    """
    if not isinstance(condition, str) or not condition.strip():
        raise LFConfigError(f"LF {name!r}: condition must be a non-empty Spark SQL expression, got {condition!r}")
    spec = {"kind": "sql", "condition": condition.strip(), "label": _check_label(label, name)}
    return SQLLabelingFunction(name, spec, label_space=label_space, fields=None)
