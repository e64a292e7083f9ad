"""Term lists and ontologies from files: what domain experts keep, loaded into a :class:`Lexicon`.

Formats (chosen by the file extension, or ``format=``):

``.csv`` / ``.tsv``
    A header row with ``term`` and ``class`` (or ``label``), optional ``weight`` (a positive
    number, default 1) and ``synonyms`` (more terms of the same class, separated by ``|``).
``.json`` / ``.yaml`` / ``.yml``
    Either a mapping ``class -> [terms]`` (a term may also be ``{term, weight, synonyms}``), a
    list of ``{term, class, weight, synonyms}`` records, or an ontology: a mapping with a
    ``concepts`` key, each concept ``{class: ...}`` (a root) or ``{parent: ...}`` (inherits its
    parent's class), with ``terms`` and optional ``synonyms`` and ``weight``.

Problems raise :class:`~lf_library.errors.LFConfigError` naming the file and the line or entry:
an empty lexicon, a term mapped to two classes, an ontology cycle or unknown parent, a bad weight.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from lf_library._yaml import DuplicateKeyError, load_json, load_yaml, problem_line
from lf_library.builders import fold_term
from lf_library.errors import LFConfigError

__all__ = ["Lexicon", "fold_terms", "load_lexicon", "lexicon_from_entries"]

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
_SYNONYM_SEP = "|"


@dataclass(frozen=True)
class Lexicon:
    """Distinct terms with their class (name or id) and weight, and where they came from.

    ``sha256`` hashes the file's bytes (or the canonical entries when built in memory): lexicon
    LFs put it in their version, so any edit to the file gives a new LF version.
    """

    source: str
    sha256: str
    terms: tuple[str, ...]
    labels: tuple[int | str, ...]
    weights: tuple[float, ...]
    # Where each term was read ("line 3", "entry 2"; empty for a lexicon built before they were kept).
    places: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def classes(self) -> list[int | str]:
        """The distinct classes, in first-seen order."""
        return list(dict.fromkeys(self.labels))


# An entry before merging: term, class, weight, and where it was read ("line 3", "entry 2").
_Entry = tuple[str, Any, float, str]


def fold_terms(terms: Sequence[str], *, case_sensitive: bool) -> list[str]:
    """Terms as the lexicon compares them: in the form the text is matched in (NFC, whitespace runs and
    apostrophes folded: ``builders.fold_term``, ``builders.match_text``), and lowered as Arrow lowers the
    text (``utf8_lower``)."""
    terms = [fold_term(t) for t in terms]
    if case_sensitive:
        return terms
    return pc.utf8_lower(pa.array(terms, pa.string())).to_pylist()


def _weight(value: Any, where: str) -> float:
    if value is None or value == "":
        return 1.0
    try:
        w = float(value)
    except (TypeError, ValueError):
        w = float("nan")
    if not math.isfinite(w) or w <= 0 or isinstance(value, bool):
        raise LFConfigError(f"{where}: weight {value!r} is not a positive number; write e.g. 1 or 0.5")
    return w


def _label(value: Any, where: str) -> int | str:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise LFConfigError(f"{where}: class is missing or empty; give each term a class name or id")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return value.strip()
    raise LFConfigError(f"{where}: class {value!r} must be a class name or id")


def _term(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LFConfigError(f"{where}: term {value!r} is not a non-empty string")
    return value.strip()


def _synonyms(value: Any, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [s.strip() for s in value.split(_SYNONYM_SEP) if s.strip()]
    if isinstance(value, Sequence):
        return [_term(s, f"{where} synonyms") for s in value]
    raise LFConfigError(f"{where}: synonyms must be a list of strings or a '|'-separated string, got {value!r}")


def _record(rec: Any, label: Any, where: str) -> list[_Entry]:
    """Entries of one term record: a string, or a mapping with term, weight, synonyms (and class)."""
    if isinstance(rec, str):
        return [(_term(rec, where), _label(label, where), 1.0, where)]
    if not isinstance(rec, Mapping):
        raise LFConfigError(f"{where}: expected a term or a mapping with 'term', got {rec!r}")
    allowed = {"term", "weight", "synonyms"} | ({"class", "label"} if label is None else set())
    unknown = sorted(set(map(str, rec)) - allowed)
    if unknown:
        raise LFConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}")
    if "term" not in rec:
        raise LFConfigError(f"{where}: missing key 'term'")
    cls = _label(rec.get("class", rec.get("label")) if label is None else label, where)
    weight = _weight(rec.get("weight"), where)
    words = [_term(rec["term"], where), *_synonyms(rec.get("synonyms"), where)]
    return [(w, cls, weight, where) for w in words]


_CSV_COLUMNS = frozenset({"term", "class", "label", "weight", "synonyms"})


def _rows_csv(text: str, delimiter: str, where: str) -> list[_Entry]:
    # csv.reader rather than DictReader: it returns blank lines as [] instead of skipping them, so the
    # line count before each row gives the line the row starts on.
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    cls_col = "class" if "class" in header else "label" if "label" in header else None
    if not header:
        raise LFConfigError(f"{where}: the file is empty; write the header line term,class and then one term per line")
    if "term" not in header or cls_col is None:
        first = ",".join(header)
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if len(header) == 1 and sep in header[0] and sep != delimiter:
                fix = ("name the file .tsv, or set format: tsv in its LF entry" if sep == "\t" else
                       "save it with commas (a spreadsheet's 'CSV UTF-8 (comma delimited)'), or as .tsv with tabs")
                raise LFConfigError(f"{where}: the columns are separated by {name}, but a "
                                    f"{'CSV' if delimiter == ',' else 'TSV'} lexicon is separated by "
                                    f"{'commas' if delimiter == ',' else 'tabs'}; {fix}")
        if not (_CSV_COLUMNS & set(header)):
            raise LFConfigError(f"{where}: the first line ({first!r}) is read as the header, and it names none of the "
                                f"columns term, class; add the line term,class (or term,class,weight) at the top")
        raise LFConfigError(
            f"{where}: the header must name the columns 'term' and 'class' (or 'label'; optional 'weight', "
            f"'synonyms'); "
            f"found {header}"
        )
    # A column lakelabel does not read (a misspelled 'wieght' gave every term weight 1) is refused, as an
    # unknown key of a JSON / YAML record is.
    if unknown := [h for h in header if h and h not in _CSV_COLUMNS]:  # "" : a spreadsheet's trailing delimiter
        raise LFConfigError(f"{where}: the header names column(s) {unknown} that a lexicon does not have; its columns "
                            f"are term, class (or label), weight, synonyms: fix the name or remove the column")
    if extra := [h for h in header if h and header.count(h) > 1]:
        raise LFConfigError(f"{where}: the header names column {extra[0]!r} twice; keep one")
    entries: list[_Entry] = []
    while True:
        first = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            return entries
        at = f"{where} line {first}"
        if reader.line_num > first or any("\n" in v or "\r" in v for v in values):
            # A quoted field with line breaks; in a lexicon that is an unclosed quote.
            span = f"on to line {reader.line_num}" if reader.line_num > first else "to the end of the file"
            raise LFConfigError(
                f"{at}: a quoted field runs {span}; close the quote on line {first} "
                f'(a quote inside a quoted field is written "")'
            )
        if any(v.strip() for i, v in enumerate(values) if i >= len(header) or not header[i]):
            named = len([h for h in header if h])
            sep = "a tab" if delimiter == "\t" else repr(delimiter)
            raise LFConfigError(f"{at}: a value beyond the header's {named} named columns; a term, class or synonym "
                                f"holding {sep} must be quoted" + (' (e.g. "win, prize")' if delimiter == "," else ""))
        row = dict(zip(header, values))
        if not any((v or "").strip() for v in row.values()):
            continue
        cls = _label(row.get(cls_col), at)
        weight = _weight(row.get("weight"), at)
        for w in [_term(row.get("term"), at), *_synonyms(row.get("synonyms"), at)]:
            entries.append((w, cls, weight, at))


def _ontology(concepts: Any, where: str) -> list[_Entry]:
    if not isinstance(concepts, Mapping) or not concepts:
        raise LFConfigError(f"{where}: 'concepts' must be a non-empty mapping of concept name -> {{class|parent, terms}}")
    allowed = {"class", "label", "parent", "terms", "synonyms", "weight"}
    for name, c in concepts.items():
        at = f"{where} concept {name!r}"
        if not isinstance(c, Mapping):
            raise LFConfigError(f"{at}: expected a mapping with 'class' or 'parent' and 'terms', got {c!r}")
        unknown = sorted(set(map(str, c)) - allowed)
        if unknown:
            raise LFConfigError(f"{at}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}")
        has_class = "class" in c or "label" in c
        if has_class == ("parent" in c):
            raise LFConfigError(f"{at}: give either 'class' (a root concept) or 'parent' (inherits its class)")
        if "parent" in c and c["parent"] not in concepts:
            raise LFConfigError(f"{at}: parent {c['parent']!r} is not a concept of this file; known: {sorted(concepts)}")

    def resolve(name: str) -> Any:
        path = [name]
        while "parent" in concepts[path[-1]]:
            parent = concepts[path[-1]]["parent"]
            if parent in path:
                cycle = " -> ".join(map(repr, path[path.index(parent):] + [parent]))
                raise LFConfigError(f"{where}: the ontology has a cycle {cycle}; make one of them a root with 'class'")
            path.append(parent)
        root = concepts[path[-1]]
        return _label(root.get("class", root.get("label")), f"{where} concept {path[-1]!r}")

    entries: list[_Entry] = []
    for name, c in concepts.items():
        at = f"{where} concept {name!r}"
        cls = resolve(name)
        weight = _weight(c.get("weight"), at)
        terms = c.get("terms", [])
        if isinstance(terms, str) or not isinstance(terms, Sequence):
            raise LFConfigError(f"{at}: terms must be a list of strings, got {terms!r}")
        for i, t in enumerate(terms):
            entries.append((_term(t, f"{at} terms[{i}]"), cls, weight, at))
        for s in _synonyms(c.get("synonyms"), at):
            entries.append((s, cls, weight, at))
    return entries


def _structured(data: Any, where: str) -> list[_Entry]:
    if isinstance(data, Mapping) and "concepts" in data:
        extra = sorted(set(data) - {"concepts"})
        if extra:
            raise LFConfigError(f"{where}: an ontology holds only 'concepts'; unknown key {extra[0]!r}")
        return _ontology(data["concepts"], where)
    entries: list[_Entry] = []
    if isinstance(data, Mapping):  # class -> terms
        for cls, terms in data.items():
            at = f"{where} class {cls!r}"
            if isinstance(terms, str) or not isinstance(terms, Sequence):
                raise LFConfigError(f"{at}: expected a list of terms, got {terms!r}")
            for i, rec in enumerate(terms):
                entries.extend(_record(rec, cls, f"{at} entry {i}"))
        return entries
    if isinstance(data, Sequence) and not isinstance(data, str):
        for i, rec in enumerate(data):
            entries.extend(_record(rec, None, f"{where} entry {i}"))
        return entries
    raise LFConfigError(
        f"{where}: expected a mapping class -> [terms], a list of {{term, class}} records or {{concepts: ...}}, "
        f"got {type(data).__name__}"
    )


def _merge(entries: list[_Entry], source: str, sha256: str, *, case_sensitive: bool) -> Lexicon:
    """Distinct terms; the same term twice in one class keeps the larger weight, in two classes fails."""
    if not entries:
        raise LFConfigError(f"{source}: the lexicon is empty; add at least one term with its class")
    keys = fold_terms([e[0] for e in entries], case_sensitive=case_sensitive)
    first: dict[str, int] = {}
    weights: dict[str, float] = {}
    for i, (key, (term, cls, weight, at)) in enumerate(zip(keys, entries)):
        j = first.setdefault(key, i)
        if j != i:
            other = entries[j]
            if other[1] != cls:
                raise LFConfigError(
                    f"{source}: term {term!r} ({at}) has class {cls!r} but {other[0]!r} ({other[3]}) has class "
                    f"{other[1]!r}; a term votes for one class: keep one of them"
                    + ("" if case_sensitive else " (terms are compared case-insensitively)")
                )
        weights[key] = max(weights.get(key, 0.0), weight)
    order = list(first)
    return Lexicon(
        source=source,
        sha256=sha256,
        terms=tuple(entries[first[k]][0] for k in order),
        labels=tuple(entries[first[k]][1] for k in order),
        weights=tuple(weights[k] for k in order),
        places=tuple(entries[first[k]][3] for k in order),
    )


def load_lexicon(path: str | Path, *, format: str | None = None, case_sensitive: bool = False) -> Lexicon:
    """Read a term list or ontology file (see the module docstring for the formats).

    Raises
    ------
    LFConfigError
        Unreadable or malformed file, unknown format, empty lexicon, conflicting classes, cycles.
    """
    p = Path(path)
    fmt = format or _FORMATS.get(p.suffix.lower())
    if fmt not in ("csv", "tsv", "json", "yaml"):
        raise LFConfigError(
            f"lexicon file {p}: unknown format {format or p.suffix!r}; use .csv, .tsv, .json, .yaml or pass "
            f"format='csv'|'tsv'|'json'|'yaml' (in a YAML LF entry, the key format: csv)"
        )
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise LFConfigError(f"lexicon file {p} cannot be read: {err.strerror}; check the path") from None
    where = f"lexicon file {p}"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise LFConfigError(f"{where} is not UTF-8: line {line} holds byte 0x{raw[err.start]:02x}, which is not UTF-8 "
                            f"(a file saved as Latin-1 or Windows-1252 spells 'é' that way); save it as UTF-8 (in a "
                            f"spreadsheet: 'CSV UTF-8')") from None
    if fmt in ("csv", "tsv"):
        entries = _rows_csv(text, "," if fmt == "csv" else "\t", where)
    else:
        try:
            data = load_json(text) if fmt == "json" else load_yaml(text)
        except (json.JSONDecodeError, DuplicateKeyError, yaml.YAMLError) as err:
            raise LFConfigError(f"{where} is not valid {fmt.upper()}: {problem_line(err)}") from None
        entries = [] if data is None else _structured(data, where)
    return _merge(entries, str(p), hashlib.sha256(raw).hexdigest(), case_sensitive=case_sensitive)


def lexicon_from_entries(
    terms: Mapping[Any, Sequence[Any]], *, source: str = "<inline>", case_sensitive: bool = False
) -> Lexicon:
    """A :class:`Lexicon` from a mapping ``class -> [terms]`` (as in a YAML-declared LF)."""
    entries = _structured(dict(terms), source)
    digest = hashlib.sha256(json.dumps([[e[0], e[1], e[2]] for e in entries], sort_keys=True).encode()).hexdigest()
    return _merge(entries, source, digest, case_sensitive=case_sensitive)
