"""Reading sources (Delta, Parquet, CSV) for labeling jobs; :func:`jobs.delta_io.read_source` is the entry point."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.fs as pafs

from jobs.delta_io.errors import SourceReadError, _summary
from jobs.delta_io.files import _filesystem, _list_data_files, _normalize, _spark_path, is_local_path

if TYPE_CHECKING:
    from jobs.delta_io.local import LocalDeltaIO
    from jobs.delta_io.native import NativeDeltaIO

SourceFormat = Literal["delta", "parquet", "csv", "auto"]
# A URI (s3://, abfss://, dbfs:/...): a scheme of two or more characters, so C:\ stays a path.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
_SOURCE_FORMATS = ("delta", "parquet", "csv", "auto")


@dataclass(frozen=True)
class SourceInfo:
    """What lineage needs to know about a source that was read.

    ``fingerprint`` changes whenever the data changes: ``delta:<table id>@<version>`` for Delta
    tables, ``files:<sha256 of sorted (relative path, size, mtime)>`` for Parquet and CSV.
    """

    path: str
    format: Literal["delta", "parquet", "csv"]
    version: int | None
    fingerprint: str


log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# sources

_CSV_DEFAULTS = {"header": "true", "multiLine": "true", "escape": '"', "inferSchema": "false"}
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
_BOM = "\ufeff"
_EXPECTED_SOURCE = "a Delta table directory (with _delta_log/), a Parquet or CSV file, or a directory of them"
# What a folder's files are named when they hold the format (Spark decompresses CSV by extension).
_COMPRESSIONS = (".gz", ".gzip", ".bz2", ".deflate", ".lz4", ".snappy", ".zst")
# Names of delimited text files (what format: csv reads), and of Parquet files; ``format: auto`` takes a
# folder for CSV by the first group only.
_NAME_SUFFIXES = {"csv": (".csv", ".tsv", ".txt", ".dat", ".psv"), "parquet": (".parquet", ".parq", ".pq")}
_GLOB_CHARS = re.compile(r"[*?]|\{[^}]*,")  # not "[": "reports [2024]" is a folder's name more often than a glob


def missing_source(path: str, root: str, role: str = "source", key: str | None = None) -> str:
    """The error for a source path that does not exist (the absolute path too when ``path`` is relative);
    ``key``: the config key that names it, for the fix. A glob pattern gets the way to read it instead."""
    if _GLOB_CHARS.search(str(path)):
        return glob_source(str(path), role, key)
    where = "" if str(path) == root else f" ({root})"
    fix = f"; fix {key}" if key else ""
    return f"{role} {path} does not exist{where}; expected {_EXPECTED_SOURCE}{fix}"


def glob_source(path: str, role: str = "source", key: str | None = None) -> str:
    """The error for a glob pattern as a source path: lakelabel does not expand globs (the source's
    fingerprint and the column precheck list a folder's files), Spark's ``pathGlobFilter`` does the same."""
    key = key or f"{role}.path"
    folder, _, name = path.rstrip("/").rpartition("/")
    if folder and not _GLOB_CHARS.search(folder) and "." in name:  # a pattern of file names, not of folders
        options = f"{key[:-len('.path')]}.options" if key.endswith(".path") else "its options"
        fix = f"set {key}: {folder} and {options}.pathGlobFilter: {name!r} (Spark then reads only the files it matches)"
    else:
        fix = f"list the files or folders in {key} instead (a YAML list)"
    return f"{role} {path} is a glob pattern, which lakelabel does not expand; {fix}"


def _name_format(name: str) -> Literal["csv", "parquet", "other"] | None:
    """The format a data file's name says it holds: ``csv`` (delimited text, also compressed),
    ``parquet`` (also with a compression suffix, ``x.parquet.gzip``), None for a name without
    extension (``part-00000``, ``000000_0``: either), else ``other`` (a README, say)."""
    lower = name.rsplit("/", 1)[-1].lower()
    stem = next((lower[: -len(c)] for c in _COMPRESSIONS if lower.endswith(c)), lower)
    if stem.endswith(_NAME_SUFFIXES["csv"]):
        return "csv"
    if stem.endswith(_NAME_SUFFIXES["parquet"]):
        return "parquet"
    return None if "." not in stem else "other"


def _data_suffix(name: str) -> str:
    """``.csv``, ``.csv.gz``, ``.parquet``: the end of a data file's name a glob filter matches on."""
    base = name.rsplit("/", 1)[-1]
    lower = base.lower()
    comp = next((c for c in _COMPRESSIONS if lower.endswith(c)), "")
    stem = base[: len(base) - len(comp)]
    return stem[stem.rfind("."):] + base[len(stem):] if "." in stem else ""


def _glob_filter(options: Mapping[str, str] | None) -> str | None:
    """The ``pathGlobFilter`` reader option, else None."""
    return _option(options, "pathGlobFilter")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Hadoop's GlobPattern (what ``pathGlobFilter`` is) as a regex: ``*``, ``?``, ``[...]``
    (``[^...]`` or ``[!...]`` negated), ``{a,b}`` and ``\\`` escapes; matched on a file's name."""
    out, i, depth = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        elif c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1:end]
            body = "^" + body[1:] if body[:1] in "^!" else body
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end
        elif c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + ")" * depth + r"\Z")


def _option(options: Mapping[str, str] | None, name: str) -> str | None:
    """A reader option by its name (Spark's keys are case-insensitive), else None."""
    return next((str(v) for k, v in (options or {}).items() if k.lower() == name.lower()), None)


def _spark_lists(rel: str, options: Mapping[str, str] | None) -> bool:
    """Whether Spark reads the file at ``rel`` under a folder source: in the folder itself or under a
    partition folder (``key=value``, at any depth: Spark passes over other folder names on the way up),
    or anywhere with ``recursiveFileLookup``."""
    if (_option(options, "recursiveFileLookup") or "").lower() == "true":
        return True
    folders = rel.split("/")[:-1]
    return not folders or any("=" in part for part in folders)


def listed_files(root: str, options: Mapping[str, str] | None) -> tuple[list[tuple[str, int, int]], list[str]]:
    """One listing of a Parquet or CSV source: ``(read, unread)``. ``read``: (relative path, size, mtime
    ns) of the files Spark reads, the folder's data files (:func:`jobs.delta_io.files._list_data_files`)
    in the folder or under its partition folders (every subfolder with ``recursiveFileLookup``);
    ``unread``: the paths of those in other subfolders, which Spark leaves out. Both only those whose
    names match the ``pathGlobFilter`` option when one is set."""
    pattern = _glob_filter(options)
    matches = _glob_regex(pattern).match if pattern is not None else (lambda name: True)
    read, unread = [], []
    for f in _list_data_files(root):
        if not matches(f[0].rsplit("/", 1)[-1]):
            continue
        if _spark_lists(f[0], options):
            read.append(f)
        else:
            unread.append(f[0])
    return read, unread


def source_files(root: str, options: Mapping[str, str] | None) -> list[tuple[str, int, int]]:
    """The files Spark reads for a Parquet or CSV source (:func:`listed_files`)."""
    return listed_files(root, options)[0]


def format_mismatch(path: str, files: Sequence[tuple[str, int, int]], fmt: str, role: str = "source") -> str | None:
    """One line for a source (a file, or a folder's files after ``pathGlobFilter``) whose data files' names all say
    another format than the one it is read as (``fmt`` as its config sets it): CSV files read as Parquet gave a page
    of Spark's Java, and ``format: auto`` takes only ``.csv``/``.tsv`` names for CSV (``.txt``, ``.dat``, ``.psv``
    files were read as Parquet). Else None; also for the roles without a format key (an LF's table)."""
    names = [rel for rel, size, _ in files if size]
    said = {_name_format(rel) for rel in names}
    if role not in ("source", "evaluation") or len(said) != 1 or (other := next(iter(said))) not in _KINDS:
        return None
    what = (f"is {_KINDS[other]} by its name" if len(names) == 1 and str(path).rstrip("/").endswith(names[0]) else
            f"holds {_KINDS[other]} files by their names (e.g. {names[0]})")
    auto = _files_format(names)
    if fmt == "auto":
        return None if auto == other else (f"{role} {path} {what}, which format auto reads as {_KINDS[auto]} (it "
                                           f"takes only .csv and .tsv names for CSV); set {role}.format: {other}")
    if fmt not in _KINDS or other == fmt:
        return None
    either = " (or auto)" if auto == other else ""
    return f"{role} {path} {what}, but {role}.format is {fmt}; set {role}.format: {other}{either}"


_KINDS = {"csv": "CSV", "parquet": "Parquet"}


def folder_error(path: str, files: Sequence[tuple[str, int, int]], fmt: str, options: Mapping[str, str] | None,
                 role: str = "source") -> str | None:
    """One line naming a folder source's files (:func:`listed_files`) whose names say they are not ``fmt``
    (a README among CSVs) and the fix, else None. Empty files are not looked at (Spark skips them), and
    none when ``pathGlobFilter`` is set, as the user then chose which files are data."""
    if _glob_filter(options) is not None:
        return None
    data = [rel for rel, size, _ in files if size]
    foreign = [rel for rel in data if _name_format(rel) not in (fmt, None)]
    if not foreign:
        return None
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    kind = "CSV" if fmt == "csv" else "Parquet"
    ours = [rel for rel in data if rel not in foreign]
    suffixes = sorted({_data_suffix(rel) for rel in ours if _name_format(rel) == fmt})
    move = "move them out of the folder"
    # A filter of the data files' extensions, unless some data file has none (000000_0): it would leave those out.
    if role in ("source", "evaluation") and suffixes and all(suffixes) and \
            all(_name_format(rel) is not None for rel in ours):
        glob = f"*{suffixes[0]}" if len(suffixes) == 1 else "*{" + ",".join(suffixes) + "}"
        fix = f"set {role}.options.pathGlobFilter: {glob!r} (Spark then reads only the files it matches) or {move}"
    else:
        fix = move
    return (f"{role} folder {path} holds {len(foreign)} file(s) that are not {kind} by their name, which Spark "
            f"would read as {kind} rows: {shown}; {fix}")


def delta_file_error(path: str, role: str = "source", key: str | None = None) -> str | None:
    """The error for a local ``path`` that is a data file of a Delta table (in its folder or its ``col=value``
    partition folders), else None: read as plain Parquet it may hold rows the table has deleted or updated since
    (a drill, session 26: a file of a table whose later commit removed it was labeled, exit 0). Also a table's
    ``_delta_log`` folder or a file in it (a commit's JSON, a checkpoint), local or a URI, which was read as the
    JSON or Parquet source it is not. ``key``: the config key that names the path (default ``<role>.path``)."""
    root = _normalize(path)
    key = key or f"{role}.path"
    fix = f"set {key}" if key.endswith("=") else f"set {key}: "  # a column LF's table=: 'set its table=/lake/t'
    log = _DELTA_LOG.match(os.path.realpath(root) if is_local_path(root) else root)
    if log is not None:
        table, what = log["table"], "the" if not (log["rest"] or "").strip("/") else "a file of the"
        return f"{role} {path} is {what} Delta log of the table {table}, not a table; {fix}{table} (format delta or auto)"
    if not is_local_path(root) or not os.path.isfile(root) or _name_format(root) not in ("parquet", None):
        return None
    folder = os.path.dirname(root)
    while not os.path.isdir(os.path.join(folder, "_delta_log")):
        if "=" not in os.path.basename(folder):
            return None
        folder = os.path.dirname(folder)
    return (f"{role} {path} is a data file of the Delta table {folder}, which may have removed it or changed its rows "
            f"since; {fix}{folder} (format delta or auto; {role}.options.versionAsOf reads an earlier version)")


_DELTA_LOG = re.compile(r"(?P<table>.+?)/_delta_log(?P<rest>/.*)?$")


def local_path_missing(path: str) -> str | None:
    """The absolute path of a local ``path`` that does not exist, else None (URIs are not looked at)."""
    root = _normalize(path)
    return root if is_local_path(root) and not os.path.exists(root) else None


def read_source(
    spark: Any,
    path: str,
    *,
    format: SourceFormat,
    options: Mapping[str, str] | None,
    io: LocalDeltaIO | NativeDeltaIO,
    role: str = "source",
) -> tuple[Any, SourceInfo]:
    """Read and describe a source with ``io`` for Delta tables; see :func:`jobs.delta_io.read_source`.
    ``role`` names the source in errors (``source``, ``evaluation``)."""
    if format not in _SOURCE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(_SOURCE_FORMATS)}; got {format!r}")
    options = dict(options or {})
    root = _normalize(path)
    uri = source_uri(root)
    try:
        fs, base = _filesystem(root)
    except SourceReadError:
        # A URI pyarrow cannot open (dbfs:/, abfss:// without pyarrow credentials) may still be
        # a Delta table the native IO reads through Spark's filesystems.
        if format not in ("delta", "auto") or not io.table_exists(root):
            raise
        fs = base = None
        is_delta = True
    else:
        entry = fs.get_file_info(base)
        if entry.type == pafs.FileType.NotFound:
            raise SourceReadError(missing_source(path, root, role))
        is_dir = entry.type == pafs.FileType.Directory
        is_delta = is_dir and fs.get_file_info(f"{base}/_delta_log").type == pafs.FileType.Directory

    if format == "delta" or (format == "auto" and is_delta):
        if not is_delta:
            raise SourceReadError(
                f"source {path} is not a Delta table: {root}/_delta_log is missing; set format to "
                f"'parquet', 'csv' or 'auto'"
            )
        as_of = options.pop("versionAsOf", None)
        if options:
            raise SourceReadError(f"Delta source {path} accepts only the option 'versionAsOf'; got {sorted(options)}")
        table_id, version = io.describe_table(root, version=int(as_of) if as_of is not None else None)
        df = io.read_table(spark, root, version=version)
        return df, SourceInfo(path=uri, format="delta", version=version, fingerprint=f"delta:{table_id}@{version}")

    if is_delta:
        raise SourceReadError(
            f"source {path} is a Delta table; reading its directory as {format} would include files the table "
            f"has removed. Use format 'delta' or 'auto'"
        )
    if (error := delta_file_error(path, role)) is not None:
        raise SourceReadError(error)
    files, unread = listed_files(root, options)
    recurse = (f"set {role}.options.recursiveFileLookup: 'true' to read the files of every subfolder"
               if role in ("source", "evaluation") else "move them into the folder itself")
    if not files:
        pattern = _glob_filter(options)
        matching = f" matching pathGlobFilter {pattern!r}" if pattern is not None else ""
        if unread:
            raise SourceReadError(f"{role} {path} has no data files{matching} in the folder itself, and Spark does not "
                                  f"read its subfolders' {len(unread)} file(s) (e.g. {unread[0]}); {recurse}")
        raise SourceReadError(f"{role} {path} has no data files{matching} ({root}); expected {_EXPECTED_SOURCE}")
    if unread:
        log.warning("%s %s: Spark does not read the %d file(s) in its subfolders (e.g. %s), which are not partition "
                    "folders (key=value); %s", role, path, len(unread), unread[0], recurse)
    fmt = format
    if fmt == "auto":
        fmt = _files_format([rel for rel, _, _ in files])
    if (error := format_mismatch(path, files, format, role) or
            (folder_error(path, files, fmt, options, role) if is_dir else None)) is not None:  # fmt: skip
        raise SourceReadError(error)
    reader_options = csv_read_options(options) if fmt == "csv" else dict(options)
    try:
        df = spark.read.format(fmt).options(**reader_options).load(_spark_path(root))
    except Exception as err:  # noqa: BLE001 - Spark raises AnalysisException, Py4JJavaError, ...
        bad = find_corrupt_parquet([root], options) if fmt == "parquet" else None
        if bad:
            raise SourceReadError(f"{role} {path}: Parquet file {bad}; replace or remove the file") from err
        raise SourceReadError(
            f"cannot read {role} {path} as {fmt}: {_summary(err)}; check the path and the format "
            f"(expected {_EXPECTED_SOURCE})"
        ) from err
    if fmt == "csv":  # Excel's "CSV UTF-8" starts with a byte order mark, which Spark keeps in the first name
        df = df.withColumnsRenamed({c: c.lstrip(_BOM) for c in df.columns if c.startswith(_BOM)})
    return df, SourceInfo(path=uri, format=fmt, version=None, fingerprint=files_fingerprint(files))


def files_fingerprint(files: Sequence[tuple[str, int, int]]) -> str:
    """The fingerprint of a Parquet or CSV source from its listing (:func:`listed_files`): the files' names,
    sizes and modification times, so a rewritten file changes it."""
    digest = hashlib.sha256("\n".join(f"{rel}\t{size}\t{mtime}" for rel, size, mtime in files).encode())
    return f"files:{digest.hexdigest()}"


def files_fingerprint_now(path: str, options: Mapping[str, str] | None) -> str | None:
    """What :func:`read_source` would give a local Parquet or CSV source ``path`` as its fingerprint now; None
    for a Delta table (its version pins what a run reads), a URI or a path that is gone."""
    root = _normalize(path)
    if not is_local_path(root) or not os.path.exists(root) or os.path.isdir(os.path.join(root, "_delta_log")):
        return None
    return files_fingerprint(listed_files(root, options)[0])


def peek_columns(path: str, *, format: SourceFormat, options: Mapping[str, str] | None,
                 wanted: Collection[str] = ()) -> list[str] | None:
    """The column names Spark will see in a local source, in order, read without Spark; None when unsure.

    Delta: the table schema (at ``versionAsOf`` when given); Parquet: the files' footers plus
    ``col=value`` partition folders; CSV: the files' header lines. Files are read until every
    name in ``wanted`` was seen (one file when a config is right), so the list is complete only
    when one is missing. None for URIs, compressed CSV, a header-less CSV, names Spark would
    rewrite (empty or repeated header fields) and anything that does not read cleanly, so that
    Spark then decides and words the error. Lets a command reject a misnamed id or gold column
    before Spark starts.
    """
    import csv
    from urllib.parse import unquote

    root = _normalize(path)
    if _URI.match(root) or format not in _SOURCE_FORMATS:
        return None
    try:
        fs, base = _filesystem(root)
        entry = fs.get_file_info(base)
        if entry.type == pafs.FileType.NotFound:
            return None
        is_dir = entry.type == pafs.FileType.Directory
        if is_dir and fs.get_file_info(f"{base}/_delta_log").type == pafs.FileType.Directory:
            if format not in ("delta", "auto"):
                return None
            from deltalake import DeltaTable

            as_of = dict(options or {}).get("versionAsOf")
            table = DeltaTable(root, version=int(as_of) if as_of is not None else None)
            return [field.name for field in table.schema().fields]
        listed = source_files(root, options)
        files = [rel for rel, _, _ in listed]
        if not files or format == "delta":
            return None
        fmt = format if format != "auto" else _files_format(files)
        if format_mismatch(path, listed, format) is not None or (is_dir and folder_error(path, listed, fmt, options)):
            return None  # read_source refuses the source, naming the files
        if fmt == "csv":
            kwargs, opts = _csv_reader_kwargs(options)
            if opts.get("header", "false").lower() != "true" or any(rel.lower().endswith(_COMPRESSIONS) for rel in files):
                return None
        columns: dict[str, None] = {}  # an ordered set
        for rel in files:
            file = f"{root}/{rel}" if is_dir else root
            if fmt == "parquet":
                import pyarrow.parquet as pq

                columns.update(dict.fromkeys(pq.read_schema(file).names))
                # Spark unescapes partition folder names (%XX) into column names.
                columns.update(dict.fromkeys(unquote(part.split("=", 1)[0]) for part in rel.split("/")[:-1] if "=" in part))
            else:
                with open(file, newline="", encoding=opts.get("encoding", "utf-8")) as handle:
                    header = [name.lstrip(_BOM) for name in next(csv.reader(handle, **kwargs), [])]
                if not header or any(not name for name in header) or len(set(header)) < len(header):
                    return None
                columns.update(dict.fromkeys(header))
            if wanted and all(name in columns for name in wanted):
                break
        return list(columns)
    except Exception:  # noqa: BLE001 - unsure: Spark reads the source and reports what is wrong
        return None


def source_uri(root: str) -> str:
    """How lineage and errors name a source path: URIs as they are, local paths as file:// URIs."""
    return root if _URI.match(root) else _file_uri(root)


def _files_format(rel_paths: Sequence[str]) -> Literal["csv", "parquet"]:
    """``format: auto`` for plain files: CSV when some are named ``.csv`` or ``.tsv`` (also compressed)
    and none Parquet (other files, a README, are then refused by name), else Parquet."""
    def named(rel: str, suffixes: tuple[str, ...]) -> bool:
        lower = rel.rsplit("/", 1)[-1].lower()
        return next((lower[: -len(c)] for c in _COMPRESSIONS if lower.endswith(c)), lower).endswith(suffixes)

    if any(named(rel, _NAME_SUFFIXES["parquet"]) for rel in rel_paths):
        return "parquet"
    return "csv" if any(named(rel, (".csv", ".tsv")) for rel in rel_paths) else "parquet"


def _file_uri(local_path: str) -> str:
    from pathlib import Path

    return Path(local_path).as_uri()


# --------------------------------------------------------------------------------------------
# naming the bad file when Spark's error does not


def csv_read_options(options: Mapping[str, str] | None) -> dict[str, str]:
    """The options lakelabel reads CSV with: its defaults, the user's options over them, and
    ``mode=FAILFAST`` unless the user chose a mode (Spark's default, PERMISSIVE, silently pads
    rows with missing fields and drops extra ones)."""
    options = dict(options or {})
    given = {k.lower() for k in options}
    out = {k: v for k, v in _CSV_DEFAULTS.items() if k.lower() not in given}
    if "mode" not in given:
        out["mode"] = "FAILFAST"
    out.update(options)
    return out


def _local_files(paths: list[str], suffixes: tuple[str, ...], options: Mapping[str, str] | None = None) -> list[str]:
    """Local data files under ``paths`` that Spark reads with ``options`` (``pathGlobFilter``) and whose
    names end with one of ``suffixes`` (URIs skipped)."""
    import os

    out = []
    for path in paths:
        root = _normalize(path)
        if _URI.match(root):
            continue
        if os.path.isfile(root):
            out += [root] if root.lower().endswith(suffixes) else []
        elif os.path.isdir(root):
            out += [f"{root}/{rel}" for rel, _, _ in source_files(root, options) if rel.lower().endswith(suffixes)]
    return out


def non_csv_culprit(paths: list[str], options: Mapping[str, str] | None, err: BaseException,
                    ragged: str | None) -> str | None:
    """The file Spark failed on when it is not CSV by its name (a README a ``pathGlobFilter`` let in,
    or named as the source): the file ``err`` or the ragged row ``ragged`` names, else None."""
    text = f"{err}\n{ragged or ''}"
    for file in _local_files(paths, ("",), options):
        if _name_format(file) not in ("csv", None) and (file in text or "/" + file.rsplit("/", 1)[-1] in text):
            return file
    return None


def _csv_reader_kwargs(options: Mapping[str, str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Python ``csv.reader`` keyword arguments that read as lakelabel's Spark CSV options do, and
    those options with lower-case keys."""
    opts = {k.lower(): v for k, v in csv_read_options(options).items()}
    quote, escape = opts.get("quote", '"'), opts.get("escape", "\\")
    kwargs: dict[str, Any] = {"delimiter": opts.get("sep", opts.get("delimiter", ",")), "quotechar": quote or None,
                              "strict": False}
    if escape == quote:
        kwargs["doublequote"] = True
    else:
        kwargs.update(doublequote=False, escapechar=escape or None)
    return kwargs, opts


def find_ragged_csv_row(paths: list[str], options: Mapping[str, str] | None) -> str | None:
    """``file line N: K fields, the header has M`` for the first record whose field count differs.

    Scans local CSV files with Python's csv module, using the reader options (``sep``,
    ``quote``, ``escape``, ``header``, ``encoding``); called only after Spark refused a file, so
    it costs nothing on good input. None when no such record is found.
    """
    import csv

    kwargs, opts = _csv_reader_kwargs(options)
    header = opts.get("header", "false").lower() == "true"
    for file in _local_files(paths, ("",), options):
        if file.lower().endswith(_COMPRESSIONS):
            continue  # compressed files: left to Spark's message
        with open(file, newline="", encoding=opts.get("encoding", "utf-8"), errors="replace") as handle:
            reader = csv.reader(handle, **kwargs)
            expected, start = None, 1
            for record in reader:
                if record:
                    if expected is None:
                        expected = len(record)
                        what = "the header has" if header else "the first row has"
                    elif len(record) != expected:
                        return f"{file} line {start}: {len(record)} fields, {what} {expected}"
                start = reader.line_num + 1
    return None


def find_corrupt_parquet(paths: list[str], options: Mapping[str, str] | None = None) -> str | None:
    """``file: reason`` for the first local Parquet file pyarrow cannot read completely, else None."""
    import pyarrow.parquet as pq

    for file in _local_files(paths, ("",), options):
        if file.lower().endswith(_CSV_SUFFIXES) or file.lower().endswith((".json", ".crc")):
            continue
        try:
            pq.ParquetFile(file).read()
        except Exception as err:  # noqa: BLE001 - any failure names the file
            return f"{file}: {_summary(err)}"
    return None
