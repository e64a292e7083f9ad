"""Loading a pipeline config: YAML files, their bases and environment overlays, ``--set`` overrides.

:func:`load_config` reads a YAML file (and the ``base:`` files it extends), merges an environment
overlay (``env/<ENV>.yaml`` beside the file, else ``conf/env``) and ``--set section.key=value``
overrides over it, and validates the result with :func:`config_from_dict` into the frozen dataclasses
of :mod:`jobs.runtime.config`. Unknown keys fail with a message that names the key, the file or
``--set`` item it came from, and lists the valid ones. Strings may reference environment variables
as ``${NAME}`` or ``${NAME:-default}``, expanded once after everything is merged; ``${CONFIG_DIR}`` is the
folder of the file that writes it (in ``--set`` values, of the ``--config`` file), replaced as each file is read.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from jobs.runtime.config import _URI, LFConfig, PipelineConfig
from lf_library._yaml import load_yaml, problem_line
from lf_library.errors import ConfigError

__all__ = ["load_config", "config_from_dict"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UnsetVariable(ConfigError):
    """A ``${VAR}`` without a default whose variable is not set (``name``)."""

    def __init__(self, name: str, where: str = "config") -> None:
        super().__init__(f"{where} references ${{{name}}} but the environment variable is not set; "
                         f"set it or write ${{{name}:-default}}")
        self.name = name


def _strings(value: Any, change: Any) -> Any:
    """``value`` with ``change`` applied to every string in it (in lists and mappings, at any depth)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {k: _strings(v, change) for k, v in value.items()}
    return value


def _expand_env(value: Any) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in every string of ``value``."""

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise _UnsetVariable(name)

    return _strings(value, lambda text: _ENV.sub(repl, text))


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with the valid ones listed."""
    if hasattr(cls, "from_dict") and cls is not PipelineConfig:
        try:
            return cls.from_dict(data or {})
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{where}: {err}") from err
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {type(data).__name__}: {data!r}")
    _reject_unknown(cls, data, where)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _valid_keys(cls: type, where: str) -> list[str]:
    """The keys an unknown key's error lists for a section of type ``cls`` at ``where``. A task's ``lfs`` is an
    :class:`LFConfig` whose ``label_space`` is refused later with its own message (the task's own ``label_space``
    is the one), so it is not offered."""
    fields = sorted(f.name for f in dataclasses.fields(cls))
    return [f for f in fields if f != "label_space"] if cls is LFConfig and where.startswith("tasks") else fields


def _reject_unknown(cls: type, data: Mapping[str, Any], where: str, origin: str = "") -> None:
    """Raise for the first key of ``data`` that is not a field of ``cls``, listing the valid ones."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        label = f"{where}." if where else ""
        raise ConfigError(
            f"{origin}unknown config key {label}{unknown[0]}; valid keys{' of ' + where if where else ''}: "
            f"{', '.join(_valid_keys(cls, where))}"
        )


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if isinstance(value, bool) and type(None) in args and set(non_none) <= {int, float}:  # drift.fail_on_*
            raise ConfigError(f"{where} must be a number (a threshold, e.g. 0.05) or null (off), got "
                              f"{str(value).lower()}")
        errors = []
        for arg in non_none:
            try:
                return _coerce(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r} is not valid; choose one of: {', '.join(map(str, args))}")
        return value
    if origin is list:
        if value is None:  # `key:` left empty in YAML, or --set key=null: an empty list
            return []
        if isinstance(value, str):  # `text_columns: CONTENT`: one name where a list is read
            raise ConfigError(f"{where} must be a list, got {value!r}; write [{value}]")
        if not isinstance(value, Sequence):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        for k, v in value.items():  # Spark settings and reader options are flat: a nested map became its text
            if isinstance(v, Mapping):
                raise ConfigError(f"{where}.{k} is a mapping ({v!r}); each value must be one text, number or "
                                  f"true/false: write the whole dotted key, e.g. {where}: {{'{k}.<name>': <value>}}")
            if v is None or isinstance(v, list):
                got = "is empty" if v is None else f"is a list ({v!r})"
                raise ConfigError(f"{where}.{k} {got}; each value must be one text, number or true/false (quote a "
                                  f"value that YAML reads otherwise), or leave the key out")
        return {str(k): str(v) if not isinstance(v, bool) else str(v).lower() for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if tp is int and isinstance(value, float) and not value.is_integer():  # int(1.5) would be 1
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a{'n integer' if tp is int else ' number'}, got {value!r}") from None
    if tp is str:
        if value is None:  # `key:` left empty in YAML, or --set key=null: an empty string (not "None")
            return ""
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value


CONFIG_DIR = re.compile(r"\$\{CONFIG_DIR(?::-[^}]*)?\}")  # ${CONFIG_DIR:-x} too: never the environment's


def _config_dir(value: Any, folder: Path) -> Any:
    """``${CONFIG_DIR}`` in every string of ``value`` replaced by ``folder`` (absolute): a path beside the config
    file that works from any working directory (a scheduled job, a Databricks task)."""
    return _strings(value, lambda text: CONFIG_DIR.sub(lambda _: str(folder), text))


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        # Relative to the working directory; os.path.abspath drops the ".." ("notebooks/../conf" is "conf").
        shown = path if path.is_absolute() else f"{path} ({os.path.abspath(path)})"
        raise ConfigError(f"cannot read config file {shown}: {err.strerror}; pass an existing YAML file with "
                          f"--config") from None
    try:
        data = load_yaml(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {problem_line(err)}; fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    data = _config_dir(data, path.resolve().parent)
    _check_keys(PipelineConfig, _tasks_as_list({k: v for k, v in data.items() if k != "base"}), "", path)
    return data


def _check_keys(cls: type, data: Any, where: str, path: Path) -> None:
    """Reject an unknown key in one config file, naming the file (values are checked after merging)."""
    if not isinstance(data, Mapping):
        return
    if hasattr(cls, "from_dict") and cls is not PipelineConfig:  # its own from_dict checks values later
        if dataclasses.is_dataclass(cls):  # use_dev_labels: a gold switch spelled under label_model
            _reject_unknown(cls, {k: v for k, v in data.items() if k != "use_dev_labels"}, where, origin=f"{path}: ")
        return
    _reject_unknown(cls, data, where, origin=f"{path}: ")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        for tp in typing.get_args(hints[name]) or (hints[name],):
            if dataclasses.is_dataclass(tp):
                _check_keys(tp, value, f"{where}.{name}" if where else name, path)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = load_yaml(raw) if raw else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem_line(err)}); quote it") from None
    if (comment := _trailing_comment(raw)) is not None:  # a path with ' #' was cut there, silently: another lakehouse
        raise ConfigError(f"--set {item!r}: YAML reads {comment!r} as a comment and drops it; quote the value "
                          f"(--set '{key}=\"{raw.strip()}\"') if it belongs to it, or leave the comment out")
    keys: list[str | int] = []
    for part in key.strip().split("."):
        name, *indexes = part.split("[")
        if not name or any(not i.endswith("]") or not i[:-1].isdigit() for i in indexes):
            raise ConfigError(f"--set {item!r}: {key.strip()!r} is not a key path; write section.key, or "
                              f"section.list[0].key to set one item of a list")
        keys.append(name)
        keys.extend(int(i[:-1]) for i in indexes)
    return keys, value


# Maps whose keys are dotted property names (Spark's, a reader's options): --set spark.conf.spark.executor.memory=8g
# sets the one key "spark.executor.memory", as spark-submit's --conf does.
_PROPERTY_MAPS = (("spark", "conf"), ("source", "options"), ("evaluation", "options"))


def _property_key(keys: list[str | int]) -> list[str | int]:
    """``keys`` with everything after ``spark.conf`` (or a source's ``options``) joined into one property name."""
    if tuple(keys[:2]) in _PROPERTY_MAPS and len(keys) > 3 and all(isinstance(k, str) for k in keys[2:]):
        return [*keys[:2], ".".join(str(k) for k in keys[2:])]
    return keys


def _trailing_comment(raw: str) -> str | None:
    """The comment YAML drops at the end of ``raw`` (``/data/lake #1`` loads as ``/data/lake``), else None."""
    tokens = [t for t in yaml.scan(raw) if not isinstance(t, yaml.StreamEndToken)]
    end = max((t.end_mark.index for t in tokens), default=0)
    rest = raw[end:].strip()
    return rest if rest.startswith("#") else None


def _unknown_key(keys: Sequence[str | int]) -> str | None:
    """The unknown-key error for the first of ``keys`` that no config section has (``tasks.<name>`` skips the
    task's name), None when each is a key of its section or the walk leaves the sections (an index, ``options``)."""
    cls: Any = PipelineConfig
    i = 0
    while i < len(keys) and isinstance(keys[i], str) and dataclasses.is_dataclass(cls):
        where = _key_label(keys[:i])
        if keys[i] not in {f.name for f in dataclasses.fields(cls)}:
            return (f"unknown config key {_key_label(keys[:i + 1])}; valid keys{' of ' + where if where else ''}: "
                    f"{', '.join(_valid_keys(cls, where))}")
        hint = typing.get_type_hints(cls)[keys[i]]
        nested = [a for a in (typing.get_args(hint) or (hint,)) if dataclasses.is_dataclass(a)]
        i += 2 if keys[i] == "tasks" else 1
        cls = nested[0] if nested else None
    return None


def _key_label(keys: Sequence[str | int]) -> str:
    """``["lfs", "declared", 0, "keywords"]`` -> ``lfs.declared[0].keywords``, as errors name keys."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")


def config_from_dict(data: Mapping[str, Any]) -> PipelineConfig:
    """Validate a plain mapping (already merged) into a :class:`PipelineConfig`."""
    data = _expand_env(dict(data))
    source = data.get("source")
    # source.path "" is the dataclass's "not set"; given in a file or by --set (an unset template variable), it is an error.
    if isinstance(source, Mapping) and isinstance(source.get("path"), str) and not source["path"].strip():
        raise ConfigError(f"source.path is empty ({source['path']!r}); set it to a Delta table, Parquet or CSV path "
                          f"(an unset template or environment variable gives an empty value)")
    cfg = _build(PipelineConfig, _tasks_as_list(_move_use_dev_labels(data)), "")
    if _URI.match(cfg.lakehouse):
        raise ConfigError(
            f"lakehouse = {cfg.lakehouse!r} is a URI, but lakelabel keeps run files and the MLflow store under it "
            f"with local file APIs: use a local or mounted path (/Volumes/..., /dbfs/..., an NFS mount) and put the "
            f"tables on object storage with tables.votes / tables.labels URIs"
        )
    return cfg


def _tasks_as_list(data: dict[str, Any]) -> dict[str, Any]:
    """``tasks:`` may be a mapping of name -> task; make it the list form."""
    tasks = data.get("tasks")
    if isinstance(tasks, Mapping):
        items = []
        for name, body in tasks.items():
            if body is not None and not isinstance(body, Mapping):
                raise ConfigError(f"tasks.{name} must be a mapping (label_space, gold_column, lfs), got {body!r}")
            items.append({"name": name, **dict(body or {})})
        data = {**data, "tasks": items}
    return data


def _move_use_dev_labels(data: dict[str, Any]) -> dict[str, Any]:
    """``label_model.use_dev_labels`` is a pipeline switch, not a model parameter: keep it in ``gold``."""
    lm = data.get("label_model")
    if isinstance(lm, Mapping) and "use_dev_labels" in lm:
        lm = dict(lm)
        gold = dict(data.get("gold") or {})
        gold["use_dev_labels"] = lm.pop("use_dev_labels")
        data = {**data, "label_model": lm, "gold": gold}
    return data


SHIPPED_ENVS = Path(__file__).resolve().parents[2] / "conf" / "env"  # in a clone or an editable install


def _env_overlay(path: Path | None, env: str) -> Path:
    """``env/<env>.yaml`` beside the config, else the overlay lakelabel ships (``conf/env``), so a
    team's config kept outside lakelabel's ``conf`` folder can still say ``--env cluster`` (and the
    demo, which needs no config file)."""
    beside = [path.parent / "env"] if path is not None else []
    folders = beside + ([SHIPPED_ENVS] if not beside or SHIPPED_ENVS != beside[0].resolve() else [])
    for folder in folders:
        if (folder / f"{env}.yaml").is_file():
            return folder / f"{env}.yaml"
    known = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
    looked = " and ".join(str(folder / f"{env}.yaml") for folder in folders)
    raise ConfigError(f"no environment overlay {env!r}: looked for {looked}; known environments: "
                      f"{', '.join(known) or 'none'}. Fix --env" + (f", or write env/{env}.yaml beside {path.name}"
                                                                     if path is not None else ""))


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Load a pipeline config.

    Parameters
    ----------
    path : path, optional
        The YAML file. It may name a ``base:`` file (relative to itself) that it extends.
    env : str, optional
        An overlay name: ``conf/env/<env>.yaml`` beside the config's ``conf`` folder
        (``local``, ``cluster``, ``databricks``), merged over the file.
    overrides : sequence of str
        ``section.key=value`` items (YAML values), applied last.
    defaults : mapping, optional
        Values under everything else (used by the demo).
    """
    data: dict[str, Any] = dict(defaults or {})
    files: list[tuple[str, Path]] = []  # the files read, the last merged first (for an unset ${VAR})
    if path is not None:
        path = Path(path)
        # The file, its base, the base's base, ...: merged from the last, so each file wins over its base.
        chain = [(path, _read_yaml(path))]
        while base := chain[-1][1].pop("base", None):
            named_by = chain[-1][0]
            base_path = (named_by.parent / str(base)).resolve()
            if not base_path.is_file():
                raise ConfigError(f"{named_by}: base: {base} names no file ({base_path}); a base path is relative to "
                                  f"the file that names it, not to the working directory: fix base:")
            if base_path in {p.resolve() for p, _ in chain}:
                loop = " -> ".join(str(p) for p, _ in chain) + f" -> {base_path}"
                raise ConfigError(f"{named_by}: base: {base} makes a loop ({loop}); remove one of the base: keys")
            chain.append((base_path, _read_yaml(base_path)))
        files.extend((str(p), p) for p, _ in chain)
        for _, loaded in reversed(chain):
            data = _deep_merge(data, loaded)
    if env:
        overlay = _env_overlay(path, env)
        data = _deep_merge(data, _read_yaml(overlay))
        files.insert(0, (f"environment overlay {overlay}", overlay))
    set_keys = {}  # dotted key -> the --set item that wrote it, to say where an unknown key came from
    here = Path(path).resolve().parent if path is not None else Path.cwd()
    parsed = [(item, _property_key(keys), _config_dir(value, here))
              for item in overrides for keys, value in [_parse_override(item)]]
    # A task added on the command line comes with its label space (tasks.X.label_space=..., or tasks.X={...});
    # any other --set on a task the config lacks is a typo.
    new_tasks = {str(keys[1]) for _, keys, value in parsed if keys[0] == "tasks" and len(keys) >= 2 and (
        (len(keys) == 3 and keys[2] == "label_space") or (len(keys) == 2 and isinstance(value, Mapping)))}
    for item, keys, value in parsed:
        tasks = data.get("tasks")
        if isinstance(tasks, Mapping) and len(keys) >= 2 and keys[0] == "tasks":
            names = {str(k): k for k in tasks}
            if str(keys[1]) not in names and str(keys[1]) not in new_tasks:
                raise ConfigError(f"--set {item!r}: the config has no task {keys[1]!r} (its tasks: "
                                  f"{', '.join(names) or 'none left'}); fix the name, or also set "
                                  f"tasks.{keys[1]}.label_space to add a task")
            if len(keys) == 2 and value is None:  # --set tasks.NAME=null drops the task from this run
                data["tasks"] = {k: v for k, v in tasks.items() if str(k) != str(keys[1])}
                continue
            keys = ["tasks", names.get(str(keys[1]), keys[1]), *keys[2:]]  # a task named 1: is the YAML int 1
        for i in range(1, len(keys) + 1):  # a misspelled section (aply.x) is reported by its own name
            set_keys.setdefault(_key_label(keys[:i]), item)
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(key, int):
                if node is None or node == {}:  # the key is not set (an empty list by default): nothing to index
                    if (unknown := _unknown_key(keys[:i])) is not None:  # or misspelled: say so, not "set the typo"
                        raise ConfigError(f"--set {item!r}: {unknown}")
                    raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} has no items here; give the whole "
                                      f"list ({_key_label(keys[:i])}=[...])")
                if not isinstance(node, list):
                    raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} is not a list")
                if key >= len(node):
                    raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} has {len(node)} items (from 0); "
                                      f"set an existing item, or give the whole list ({_key_label(keys[:i])}=[...])")
            elif isinstance(node, list) and str(key).isdigit():  # lfs.declared.0.keywords: an item is [0]
                fixed = _key_label([*keys[:i], int(key), *keys[i + 1:]]) + "=" + item.split("=", 1)[1]
                raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} is a list; an item of it is "
                                  f"{_key_label([*keys[:i], int(key)])}: --set {shlex.quote(fixed)}")
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} is not a section")
            if last:
                node[key] = value
            elif isinstance(key, int):
                node = node[key]
            else:
                node = node.setdefault(key, {})
    try:
        return config_from_dict(data)  # ${VAR}s expanded once, after the files and --set are merged
    except _UnsetVariable as err:
        for label, file in files:  # name the file that wrote it (the overlay's wins, as in the merge)
            if "${" + err.name in file.read_text(encoding="utf-8"):
                raise _UnsetVariable(err.name, label) from None
        raise
    except ConfigError as err:
        unknown = re.match(r"unknown config key (\S+);", str(err))
        if unknown and unknown.group(1) in set_keys:
            raise ConfigError(f"--set {set_keys[unknown.group(1)]!r}: {err}") from None
        raise
