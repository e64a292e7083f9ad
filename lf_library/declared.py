"""LFs without code: keyword, regex, lexicon, SQL, column and model LFs declared in YAML.

In the pipeline config (``lfs.declared``) or in YAML files listed under ``lfs.files`` (a list of
entries, or a mapping with an ``lfs:`` list), each entry names a ``kind`` and the arguments of
its builder::

    - {name: kw_free, kind: keyword, keywords: [free, prize], label: spam, field: CONTENT}
    - {name: re_link, kind: regex, pattern: 'https?://', label: spam, field: CONTENT}
    - {name: lex_terms, kind: lexicon, file: terms.csv, field: CONTENT}     # or terms: {spam: [...]}
    - {name: sql_short, kind: sql, condition: 'length(CONTENT) < 20', label: ham}
    - {name: old_label, kind: column, column: legacy, mapping: {S: spam, H: ham}}
    - {name: clf, kind: model, model_uri: 'models:/spam@champion', label_map: {1: spam}, fields: [CONTENT]}

A declared LF is built by the same builder as in Python (:func:`~lf_library.builders.keyword_lf`
and the others), so it has the same version for the same definition and runs on the same
vectorized path. A lexicon ``file:`` is relative to the YAML file that names it (to the working
directory for ``lfs.declared``, where the config loader replaces ``${CONFIG_DIR}`` by the config's folder). Every
error names the file, the entry and the key.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lf_library._yaml import load_yaml, problem_line
from lf_library.builders import keyword_lf, lexicon_lf, regex_lf, sql_lf
from lf_library.column import column_lf
from lf_library.core import LabelingFunction
from lf_library.errors import LFConfigError
from lf_library.matcher import lexicon_file_lf
from lf_library.models import model_lf

__all__ = ["KINDS", "declared_lfs", "load_declared_file", "build_declared"]


def _lexicon(name: str, *, base: Path, file: str | None = None, terms: Any = None, **options: Any) -> LabelingFunction:
    if (file is None) == (terms is None):
        raise LFConfigError("give either 'file' (a term list or ontology file) or 'terms' (class -> [terms])")
    if file is not None:
        path = Path(file)
        full = path if path.is_absolute() else base / path
        if not path.is_absolute() and not full.exists():
            # lfs.declared paths are relative to the working directory, not to the config: say where it looked
            raise LFConfigError(
                f"lexicon file {file} not found: a relative file: is read from {base.absolute()} (for lfs.declared, "
                f"the folder lakelabel runs from; in an lfs.files file, that file's folder), where it is "
                f"{full.absolute()}; write file: ${{CONFIG_DIR}}/{file} for a file beside the config, or an absolute path")
        return lexicon_file_lf(name, full, **options)
    options.pop("format", None)
    return lexicon_lf(name, terms, **options)


#: kind -> (builder, required keys, optional keys). The builder takes the name first.
KINDS: dict[str, tuple[Callable[..., LabelingFunction], tuple[str, ...], tuple[str, ...]]] = {
    "keyword": (keyword_lf, ("keywords", "label"), ("field", "case_sensitive", "whole_word")),
    "regex": (regex_lf, ("pattern", "label"), ("field", "case_sensitive")),
    "lexicon": (_lexicon, (), ("file", "terms", "field", "case_sensitive", "whole_word", "format")),
    "sql": (sql_lf, ("condition", "label"), ()),
    "column": (column_lf, ("column", "mapping"), ("table", "id_column")),
    "model": (model_lf, ("model_uri", "label_map"), ("threshold", "fields", "tracking_uri")),
}

_BOOLS = ("case_sensitive", "whole_word")


def build_declared(entry: Any, where: str, *, base: Path) -> LabelingFunction:
    """Build one declared LF; ``where`` ("conf/lfs.yaml entry 2") prefixes every error."""
    if not isinstance(entry, Mapping):
        raise LFConfigError(f"{where}: an LF entry must be a mapping with 'name' and 'kind', got {entry!r}")
    name = entry.get("name")
    at = f"{where} ({name})" if isinstance(name, str) else where
    for key in ("name", "kind"):
        if key not in entry:
            raise LFConfigError(f"{at}: missing key {key!r}; every LF entry needs 'name' and 'kind'")
    kind = entry["kind"]
    if kind not in KINDS:
        raise LFConfigError(f"{at}: unknown kind {kind!r} (key 'kind'); use one of: {', '.join(KINDS)}")
    builder, required, optional = KINDS[kind]
    args = {k: v for k, v in entry.items() if k not in ("name", "kind")}
    unknown = sorted(set(map(str, args)) - set(required) - set(optional))
    if unknown:
        valid = ", ".join(("name", "kind", *required, *optional))
        raise LFConfigError(f"{at}: unknown key {unknown[0]!r} for a {kind} LF; valid keys: {valid}")
    missing = [k for k in required if k not in args]
    if missing:
        raise LFConfigError(f"{at}: missing key {missing[0]!r}; a {kind} LF needs {', '.join(required)}")
    for key in _BOOLS:
        if key in args and not isinstance(args[key], bool):
            raise LFConfigError(f"{at}: key {key!r} must be true or false, got {args[key]!r}")
    listed = args.get("keywords")
    if isinstance(listed, str) and "," in listed:  # YAML reads `keywords: refund, charge` as one string
        items = ", ".join(part.strip() for part in listed.split(","))
        raise LFConfigError(f"{at}: key 'keywords' is the one string {listed!r}, which would match only that whole "
                            f"text; write a list: keywords: [{items}]")
    if "base" in inspect.signature(builder).parameters:
        args["base"] = base
    try:
        return builder(name, **args)
    except LFConfigError as err:
        raise LFConfigError(f"{at}: {err}") from None
    except TypeError as err:  # a value of the wrong type deep inside a builder
        raise LFConfigError(f"{at}: {err}") from None


def _entries(data: Any, where: str) -> list[Any]:
    if isinstance(data, Mapping) and isinstance(data.get("lfs"), Mapping) and "declared" in data["lfs"]:
        # the pipeline config's shape (lfs: {declared: [...]}) in an LF file
        raise LFConfigError(f"{where}: holds lfs.declared, the pipeline config's shape; an LF file holds the list "
                            f"itself (or lfs: [list]): move the entries under declared: to the top level")
    if isinstance(data, Mapping) and set(data) == {"lfs"}:
        data = data["lfs"]
    if data is None:
        return []
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise LFConfigError(f"{where}: expected a list of LF entries (or a mapping with an 'lfs' list), got {type(data).__name__}")
    return list(data)


def load_declared_file(path: str | Path) -> list[tuple[LabelingFunction, str]]:
    """The LFs declared in one YAML file, each with its origin (``"file <path> entry <i>"``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        shown = p if p.is_absolute() else f"{p} ({p.absolute()})"
        raise LFConfigError(f"LF file {shown} cannot be read: {err.strerror}; check lfs.files") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        raise LFConfigError(f"LF file {p} is not valid YAML: {problem_line(err)}") from None
    entries = _entries(data, f"LF file {p}")
    if not entries:
        raise LFConfigError(f"LF file {p} declares no LF; add entries with 'name' and 'kind', or drop it from lfs.files")
    out = []
    for i, entry in enumerate(entries):
        where = f"LF file {p} entry {i}"
        out.append((build_declared(entry, where, base=p.parent), f"file {p} entry {i}"))
    return out


def declared_lfs(
    declared: Sequence[Any] = (), files: Sequence[str | Path] = (), *, base: str | Path = ".", key: str = "lfs"
) -> list[tuple[LabelingFunction, str]]:
    """LFs from ``lfs.declared`` entries and ``lfs.files``, each with its origin.

    Parameters
    ----------
    declared : sequence of mapping
        Entries written in the pipeline config; their lexicon files are relative to ``base``.
    files : sequence of path
        YAML files of entries; relative paths are relative to ``base``.
    key : str
        Where the entries are in the config (``lfs``, or a task's ``tasks.<name>.lfs``), for the errors.
    """
    base = Path(base)
    out = []
    for i, entry in enumerate(declared):
        where = f"config {key}.declared[{i}]"
        out.append((build_declared(entry, where, base=base), where))
    for f in files:
        path = Path(f)
        out.extend(load_declared_file(path if path.is_absolute() else base / path))
    return out
