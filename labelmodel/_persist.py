"""Saved label models: plain JSON (or ``.npz`` arrays plus JSON metadata), never pickle.

The file holds the format tag and version, the class name, cardinality, LF names, the
configuration, the fitted parameters (:class:`~labelmodel._params.FittedParams`) and the
fit information. :mod:`labelmodel._base` maps the class name back to a class.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._params import FittedParams

FORMAT = "lakelabel.labelmodel"
FORMAT_VERSION = 1
ARRAY_KEYS = ("log_prior", "precision", "vote_rate", "weights", "log_table", "train_log_prior")


def params_to_dict(p: FittedParams) -> dict[str, Any]:
    """JSON-ready parameters (NaN as ``null``)."""
    out: dict[str, Any] = {"kind": p.kind}
    for key in ARRAY_KEYS:
        a = getattr(p, key)
        out[key] = _tolist(a) if a is not None else None
    return out


def params_from_dict(p: Mapping[str, Any]) -> FittedParams:
    """Inverse of :func:`params_to_dict` (arrays may already be ndarrays, from ``.npz``)."""
    arrays = {key: _fromlist(p[key]) if p.get(key) is not None else None for key in ARRAY_KEYS}
    return FittedParams(kind=p["kind"], **arrays)


def check_header(d: Mapping[str, Any]) -> None:
    if not isinstance(d, Mapping) or d.get("format") != FORMAT:
        fmt = d.get("format") if isinstance(d, Mapping) else type(d).__name__
        raise ValueError(f"not a saved lakelabel label model (format={fmt!r}); save it with LabelModel.save")
    if int(d.get("format_version", -1)) > FORMAT_VERSION:
        raise ValueError(
            f"saved with format_version {d['format_version']}, newer than this code "
            f"({FORMAT_VERSION}); upgrade lakelabel"
        )


def write_model(d: dict[str, Any], params: FittedParams, path: str | Path) -> None:
    """Write ``d`` (from ``to_dict``) as JSON, or as ``.npz`` when ``path`` ends in ``.npz``, in one step: a
    temporary file beside it renamed over ``path``, so a kill or a full disk never leaves a truncated model."""
    path = Path(path)
    path = Path(os.path.realpath(path)) if path.is_symlink() else path  # a link to the model stays a link
    # Said here: the temporary file's error named '.lm.json.123.tmp' (or '/.tmp.123.tmp' for a folder).
    if path.is_dir():
        raise IsADirectoryError(f"cannot save the label model to {str(path)!r}: it is a folder; pass a file path such "
                                f"as {str(path / 'label_model.json')!r}")
    if (blocker := next((p for p in path.parents if p.exists() and not p.is_dir()), None)) is not None:
        raise NotADirectoryError(f"cannot save the label model to {str(path)!r}: {str(blocker)!r} is a file, not a "
                                 f"folder; pass a path in a folder")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save the label model to {str(path)!r}: folder {str(path.parent)!r} does not "
                                f"exist; create it first")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            if path.suffix == ".npz":
                arrays = {}
                for key in ARRAY_KEYS:
                    a = getattr(params, key)
                    if a is not None:
                        arrays[key] = np.asarray(a, dtype=np.float64)
                    d["params"][key] = None
                np.savez_compressed(fh, __meta__=np.array(json.dumps(d)), **arrays)
            else:
                fh.write(json.dumps(d, allow_nan=False).encode())
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the rename makes it the model (a power loss)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_model(path: str | Path) -> dict[str, Any]:
    """The dict :func:`write_model` wrote (``.npz`` arrays back in ``d["params"]``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved label model at {str(path)!r}; pass the path given to save()")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"PK":  # a zip: .npz
        with np.load(path, allow_pickle=False) as z:
            if "__meta__" not in z:
                raise ValueError(f"{str(path)!r} is a .npz or zip file, but not one LabelModel.save wrote (it holds "
                                 f"no __meta__ entry); pass the path given to save()")
            d = json.loads(str(z["__meta__"]))
            for key in ARRAY_KEYS:
                if key in z:
                    d.setdefault("params", {})[key] = z[key]
        return d
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{str(path)!r} is not a saved lakelabel label model (neither JSON nor .npz: {err}); "
            "a Snorkel pickle cannot be loaded: refit, then save with labelmodel"
        ) from err


def jsonable(d: Any) -> Any:
    """``d`` with numpy values turned into plain Python and non-finite floats into ``None``."""
    if isinstance(d, Mapping):
        return {str(k): jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [jsonable(v) for v in d]
    if isinstance(d, np.ndarray):
        return jsonable(d.tolist())
    if isinstance(d, np.generic):
        return jsonable(d.item())
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def _tolist(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    if np.isnan(a).any():
        return np.where(np.isnan(a), None, a).tolist()
    return a.tolist()


def _fromlist(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    return np.array(x, dtype=np.float64)  # None -> nan
