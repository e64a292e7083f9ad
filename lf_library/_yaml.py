"""YAML and JSON loading that refuses a key given twice in one mapping.

PyYAML and ``json`` keep the last value of a repeated key and drop the others without a word: an LF entry
with ``keywords:`` twice lost its first list, a config with ``lfs:`` twice lost its first LFs, a lexicon
with the class ``spam:`` twice lost its first terms, and the run still exited 0.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.constructor import ConstructorError

__all__ = ["load_yaml", "load_json", "DuplicateKeyError", "problem_line"]

_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ValueError):
    """A JSON object with a key given twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # '<<: *base' overrides by design
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader refuses it itself
                continue
            if first is not None:
                raise ConstructorError(
                    None, None,
                    f"key {key!r} is given twice in one mapping (first on line {first.line + 1}); YAML would keep "
                    f"only the last one and drop the other silently: merge the two or remove one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that raises a :class:`yaml.YAMLError` (with the line) on a repeated key."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"key {key!r} is given twice in one object; JSON would keep only the last one "
                                    f"and drop the other silently: merge the two or remove one")
        out[key] = value
    return out


def load_json(text: str) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` on a repeated key."""
    return json.loads(text, object_pairs_hook=_pairs)


def problem_line(err: Exception) -> str:
    """One line for a YAML or JSON error: ``line L, column C: problem`` (1-based, as editors count)."""
    if isinstance(err, json.JSONDecodeError):
        return f"line {err.lineno}, column {err.colno}: {err.msg}"
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = " ".join(filter(None, [getattr(err, "context", None), getattr(err, "problem", None)])) or str(err)
    problem = " ".join(problem.split())
    hint = ""
    if "'\\t' that cannot start any token" in problem:
        hint = "; YAML indents with spaces only: replace the tab with spaces"
    elif "expected <block end>" in problem:
        hint = ("; this line's indentation does not fit the lines above it: indent a key of an entry exactly as "
                "the entry's other keys (with spaces), a list item as the other items")
    elif "mapping values are not allowed here" in problem:
        hint = ("; either this line is indented deeper than the other keys of its entry (indent them alike, with "
                "spaces), or a value holds ': ' and must be quoted ('Re: refund')")
    elif "unknown escape character" in problem:
        hint = ("; inside double quotes a backslash starts an escape: write a regex or a Windows path in single "
                "quotes instead ('\\d+', 'C:\\data')")
    return (f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem) + hint
