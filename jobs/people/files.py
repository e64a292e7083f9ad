"""Reading annotation files into gold records (driver side: annotation files are small).

Every reader returns the same record dicts: ``row_id, label, annotator, annotated_at, note,
split, origin, task_id, where`` (``where`` names the row in error messages), plus a fingerprint
of the file's content that makes an import idempotent.

Formats: ``csv`` (what ``lakelabel annotate`` writes: ``row_id`` and ``label`` columns, optional
``annotator``, ``note``, ``split``, ``annotated_at``), ``parquet`` (a file or a folder of
files), ``delta`` (a table, its latest version) and ``label-studio`` (its JSON export).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jobs.people import label_studio
from lf_library.errors import InputDataError

__all__ = ["GoldFile", "FileFormat", "FORMATS", "read_gold_file", "detect_format"]

FileFormat = Literal["auto", "csv", "parquet", "delta", "label-studio"]
FORMATS = ("auto", "csv", "parquet", "delta", "label-studio")
REQUIRED = ("row_id", "label")
OPTIONAL = ("annotator", "note", "split", "annotated_at", "task_id")


@dataclass(frozen=True)
class GoldFile:
    path: str
    format: str
    fingerprint: str
    records: list[dict[str, Any]]
    # Rows present in the file but not labeled yet (an empty label cell).
    unlabeled: int = 0
    # The fingerprint earlier versions gave a single file (its name hashed with its content): a file
    # they imported is found by it, so importing it again still adds nothing.
    legacy_fingerprints: tuple[str, ...] = ()

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """Every ``import_id`` this file may have in a gold table."""
        return (self.fingerprint, *self.legacy_fingerprints)


def detect_format(path: Path) -> str:
    """``delta`` for a folder with ``_delta_log``, else by suffix: .csv, .json, .parquet (or a folder)."""
    if path.is_dir():
        return "delta" if (path / "_delta_log").is_dir() else "parquet"
    suffix = path.suffix.lower()
    known = {".csv": "csv", ".json": "label-studio", ".parquet": "parquet"}
    if suffix not in known:
        raise InputDataError(
            f"cannot tell the format of {path} from its name; pass --format csv|parquet|delta|label-studio"
        )
    return known[suffix]


def _hash_files(files: list[Path], root: Path) -> tuple[str, tuple[str, ...]]:
    """The import key, in one read: the SHA-256 of one file's content (a copy under another name is the same
    import), or of a folder's files, each with its path in the folder; and the legacy keys (the key earlier
    versions gave a single file, its name hashed with its content: a file they imported still adds nothing)."""
    digest, legacy = hashlib.sha256(), hashlib.sha256()
    for f in sorted(files):
        named = str(f.relative_to(root) if f != root else f.name).encode()
        legacy.update(named)
        if f != root:
            digest.update(named)
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                legacy.update(block)
    key, old = digest.hexdigest(), legacy.hexdigest()
    return key, (old,) if old != key else ()


def check_gold_file(path: str | os.PathLike[str]) -> None:
    """Fail with one line when the annotation file is missing (``gold import`` checks it before Spark starts)."""
    p = Path(path)
    if not p.exists():
        raise InputDataError(f"gold file {p} does not exist; pass the file written by `lakelabel annotate` (or your own)")


def read_gold_file(path: str | os.PathLike[str], fmt: FileFormat = "auto") -> GoldFile:
    """Read an annotation file into gold records (see the module docstring).

    Raises
    ------
    InputDataError
        The file is missing, unreadable, lacks ``row_id`` or ``label``, or is a Label Studio
        export of another project.
    """
    p = Path(path)
    if fmt not in FORMATS:
        raise InputDataError(f"--format {fmt!r} is not valid; choose one of: {', '.join(FORMATS)}")
    check_gold_file(p)
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt == "label-studio":
        text = p.read_text(encoding="utf-8")
        records, unlabeled = label_studio.parse_export(text, str(p))
        for r in records:
            r["split"] = ""
        key, legacy = _hash_files([p], p)
        return GoldFile(str(p), fmt, key, records, unlabeled, legacy)
    if fmt == "delta":
        from jobs.delta_io.logs import open_table

        # A file is no table (deltalake's own check fails on one with "Generic LocalFileSystem error").
        if not (p.is_dir() and (p / "_delta_log").is_dir()):
            raise InputDataError(f"{p} is not a Delta table (no _delta_log folder); pass the --format that matches "
                                 "it (csv, parquet, label-studio) or auto")
        dt = open_table(str(p))  # a damaged log: exit 2 naming the table, as for lakelabel's own tables
        frame = dt.to_pyarrow_table().to_pandas()
        fingerprint = hashlib.sha256(f"delta:{dt.metadata().id}@{dt.version()}".encode()).hexdigest()
        legacy = ()
        first_row = 0
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if (p / "_delta_log").is_dir():
            raise InputDataError(f"{p} is a Delta table: its Parquet files also hold rows that later versions "
                                 "removed; pass --format delta (or auto)")

        files = [p] if p.is_file() else sorted(f for f in p.rglob("*.parquet") if not f.name.startswith(("_", ".")))
        if not files:
            raise InputDataError(f"{p} holds no .parquet files; pass a Parquet file or folder, or --format delta")
        try:
            frame = pq.read_table([str(f) for f in files] if len(files) > 1 else str(files[0])).to_pandas()
        except (pa.ArrowException, OSError) as err:
            raise InputDataError(f"cannot read {p} as Parquet ({' '.join(str(err).split())}); pass the --format that "
                                 "matches it (csv, delta, label-studio) or auto") from None
        fingerprint, legacy = _hash_files(files, p)
        first_row = 0
    else:
        import pandas as pd

        with p.open("rb") as f:
            if f.read(64).lstrip()[:1] in (b"[", b"{"):  # a Label Studio export saved as .csv, say
                raise InputDataError(f"cannot read {p} as CSV: it holds JSON; pass --format label-studio for a "
                                     "Label Studio export")
        try:
            frame = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8")
        except UnicodeDecodeError:
            raise InputDataError(f"cannot read {p} as CSV: {_not_utf8(p)}; save it as UTF-8 CSV (in Excel: Save As "
                                 "\"CSV UTF-8 (Comma delimited)\")") from None
        except (ValueError, pd.errors.ParserError) as err:
            reason = " ".join(str(err).split())  # pandas' message holds a newline
            fix = _semicolon_fix(p) or "save it as UTF-8 CSV with a header row"
            raise InputDataError(f"cannot read {p} as CSV ({reason}); {fix}") from None
        fingerprint, legacy = _hash_files([p], p)
        first_row = 2  # line 1 is the header
        if not all(c in frame.columns for c in REQUIRED) and (fix := _semicolon_fix(p)) is not None:
            raise InputDataError(f"{p} has no row_id and label columns (its header: {', '.join(map(str, frame.columns))}); "
                                 f"{fix}")
    return _records_from_frame(frame, str(p), fmt, fingerprint, first_row, legacy)


def _not_utf8(path: Path) -> str:
    """Where ``path`` first stops being UTF-8, as its line (pandas' error gives a position in a buffer it read)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return f"line {line} is not UTF-8 (byte 0x{data[err.start]:02x}: {err.reason}; a file saved as Windows-1252 or Latin-1?)"
    return "it is not UTF-8"


def _semicolon_fix(path: Path) -> str | None:
    """The fix for a CSV file whose header has ``;`` and no ``,`` (a spreadsheet saved with a
    semicolon as separator, as Excel does in many locales), else None."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            header = f.readline()
    except OSError:
        return None
    if ";" not in header or "," in header:
        return None
    return ("the file looks semicolon-separated (its header line has ';' and no ','): save it comma-separated "
            "(in Excel: Save As \"CSV UTF-8 (Comma delimited)\")")


def _records_from_frame(frame: Any, path: str, fmt: str, fingerprint: str, first_row: int,
                        legacy: tuple[str, ...] = ()) -> GoldFile:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        # 'row_id, label' (a blank after the comma) or 'Label': the names are matched exactly, which the list hides
        near = [repr(str(c)) for c in frame.columns if str(c).strip().lower() in missing and str(c) not in missing]
        exact = f"; {' and '.join(near)} {'has' if len(near) == 1 else 'have'} blanks or capitals, which the names " \
                f"must not have" if near else ""
        raise InputDataError(
            f"{path} has no {' or '.join(repr(c) for c in missing)} column (its columns: "
            f"{', '.join(repr(str(c)) if near else str(c) for c in frame.columns)}{exact}); a gold file needs row_id "
            f"and label columns (optional: {', '.join(OPTIONAL)}): rename the columns or start from the file "
            f"`lakelabel annotate` writes"
        )
    records, unlabeled = [], 0
    columns = {c: frame[c].tolist() for c in (*REQUIRED, *OPTIONAL) if c in frame.columns}
    for i in range(len(frame)):
        raw = {c: values[i] for c, values in columns.items()}
        where = f"line {i + first_row}" if first_row else f"row {i}"
        row_id = raw["row_id"]
        if row_id is None or (isinstance(row_id, float) and row_id != row_id) or str(row_id).strip() == "":
            raise InputDataError(f"{path}, {where}: empty row_id; every labeled row needs the id `annotate` wrote")
        label = raw["label"]
        if label is None or (isinstance(label, float) and label != label) or str(label).strip() == "":
            unlabeled += 1
            continue
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        records.append({
            "row_id": str(row_id).strip(),
            "label": str(label).strip(),
            "annotator": _text(raw.get("annotator")),
            "annotated_at": _text(raw.get("annotated_at")),
            "note": _text(raw.get("note")),
            "split": _text(raw.get("split")).lower(),
            "origin": f"{fmt}:{Path(path).name}",
            "task_id": _text(raw.get("task_id")),
            "where": f"{where} (row_id {str(row_id).strip()})",
        })  # fmt: skip
    return GoldFile(path, fmt, fingerprint, records, unlabeled, legacy)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()
