"""Existing models as LFs: an MLflow pyfunc model votes its predicted class when it is confident.

:func:`model_lf` names a model by URI (``models:/name/3``, ``models:/name@champion``,
``models:/name/latest``, ``runs:/<run id>/model``, ``models:/m-<id>`` or a local path). When
the registry versions the LF, on the driver, the URI is resolved with ``MlflowClient`` to a model
version and run id, which go into the LF version: re-registering the model gives a new LF version,
and executors load exactly the version the driver resolved, even if an alias moves mid-run.

Executors load the model once per Python worker process (a module-level cache keyed by the
resolved URI), then score whole Arrow batches as pandas DataFrames of the LF's ``fields``. A model in a
store is copied once per machine and user, into ``$TMPDIR/lakelabel-models-<uid>`` (:func:`_local_copy`), and loaded
from there.

The model's ``predict`` output may be
- a DataFrame with one probability column per class (column names are the model's classes),
- a 2-D array of probabilities (the model's classes are the column indices 0, 1, ...), or
- a 1-D array or Series of predicted classes (probability 1).
``label_map`` maps model classes to classes of the label space; the LF votes the mapped class of
the most probable model class when its probability is at least ``threshold``, else abstains
(and abstains where the top class is not in ``label_map``). A model that predicts classes has no
probability to compare, so a ``threshold`` given for one is refused rather than ignored.
"""

from __future__ import annotations

import hashlib
import os
import re
import textwrap
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lf_library.apply import class_id
from lf_library.builders import ArrowLF, _check_label
from lf_library.core import ABSTAIN
from lf_library.errors import InputDataError, LFConfigError, TransientError

__all__ = ["ModelLF", "ResolvedModel", "model_lf", "resolve_model", "set_tracking_uri"]

_TRACKING_URI: str | None = None
_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()
_REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))$")
_RUN = re.compile(r"^runs:/(?P<run>[0-9a-fA-F]+)(?:/.*)?$")
_LOGGED = re.compile(r"^models:/(?P<id>m-[0-9a-fA-F]+)$")
# MLflow's REST client when the store gave no answer, its retries spent (an answer is "failed with error code N").
_NO_ANSWER = re.compile(r"API request to \S+ failed with (?:timeout )?exception")


def set_tracking_uri(uri: str | None) -> None:
    """The MLflow tracking (and registry) URI model LFs resolve against when they name none.

    The pipeline sets it to its own store (``mlflow.tracking_uri`` or the lakehouse sqlite
    store) before it loads the LFs; otherwise MLflow's default (``MLFLOW_TRACKING_URI``) applies.
    """
    global _TRACKING_URI
    _TRACKING_URI = uri


@dataclass(frozen=True)
class ResolvedModel:
    """What a model URI pointed at when the LF was versioned."""

    uri: str
    load_uri: str
    tracking_uri: str | None
    model_version: str | None
    run_id: str | None
    content: str | None = None  # sha256 of the MLmodel file, for local paths


def registry_uri(tracking_uri: str | None) -> str | None:
    """The model registry that goes with the MLflow store ``tracking_uri``, as MLflow chooses it:
    ``MLFLOW_REGISTRY_URI`` when set; None for a Databricks store (MLflow then takes the cluster's
    ``spark.mlflow.modelRegistryUri``, else Unity Catalog, ``databricks-uc``: the workspace registry has no
    ``@alias``); else the store itself (its registry, whatever registry an earlier call set in this process)."""
    if os.environ.get("MLFLOW_REGISTRY_URI"):
        return os.environ["MLFLOW_REGISTRY_URI"]
    if tracking_uri is not None and databricks_store(tracking_uri):
        return None
    return tracking_uri


def databricks_store(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` is a Databricks workspace's MLflow (``databricks``, ``databricks://<profile>``)."""
    return tracking_uri == "databricks" or tracking_uri.startswith("databricks://")


def _client(tracking_uri: str | None):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri(tracking_uri))


def resolve_model(uri: str, tracking_uri: str | None = None) -> ResolvedModel:
    """Resolve ``uri`` to a concrete model version / run (on the driver).

    Raises
    ------
    LFConfigError
        The URI names no model that exists in the store at ``tracking_uri``.
    """
    tracking_uri = tracking_uri or _TRACKING_URI or os.environ.get("MLFLOW_TRACKING_URI")
    uses_store = bool(_LOGGED.match(uri) or _REGISTERED.match(uri) or _RUN.match(uri))  # a local folder does not
    if uses_store and (refused := file_store_error(tracking_uri, "the tracking URI")) is not None:
        raise LFConfigError(refused)
    default = None if tracking_uri or not uses_store else _default_tracking_uri()
    where = f"in the MLflow store {tracking_uri}" if tracking_uri else f"in MLflow's default store {default}"
    registry = registry_uri(tracking_uri)
    if _REGISTERED.match(uri) and registry != tracking_uri:
        where += f" (model registry {registry or 'databricks-uc, MLflow default for Databricks'})"
    try:
        store = _sqlite_file(tracking_uri or default)
        if store is not None and not store.is_file() and uses_store:
            # Asking MLflow would create an empty store (and leave it behind when the job then fails).
            raise LookupError(f"the store's database {store} does not exist yet: nothing was logged there")
        if (m := _LOGGED.match(uri)) is not None:
            logged = _client(tracking_uri).get_logged_model(m["id"])
            return ResolvedModel(uri, uri, tracking_uri, None, logged.source_run_id)
        if (m := _REGISTERED.match(uri)) is not None:
            client = _client(tracking_uri)
            name, version, alias = m["name"], m["version"], m["alias"]
            if alias is not None:
                mv = client.get_model_version_by_alias(name, alias)
            elif version == "latest":
                found = client.search_model_versions(f"name = '{name}'")
                if not found:
                    raise LookupError(f"registered model {name!r} has no versions")
                mv = max(found, key=lambda v: int(v.version))
            else:
                mv = client.get_model_version(name, version)
            if registry is None:  # Unity Catalog: its storage path is readable only with the
                load = f"models:/{name}/{mv.version}"  # credentials MLflow's models:/ fetch gets from the registry
            else:
                load = client.get_model_version_download_uri(name, mv.version)
            return ResolvedModel(uri, load, tracking_uri, f"{name}/{mv.version}", mv.run_id)
        if (m := _RUN.match(uri)) is not None:
            run = _client(tracking_uri).get_run(m["run"])
            return ResolvedModel(uri, uri, tracking_uri, None, run.info.run_id)
        path = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
        mlmodel = path / "MLmodel"
        if "://" in uri.replace("file://", ""):
            raise LookupError(f"{path} holds no MLmodel file")
        if not mlmodel.is_file():  # a local folder: the store and the trainer are beside the point
            what = "does not exist" if not path.exists() else "holds no MLmodel file"
            raise LFConfigError(
                f"model URI {uri!r}: the local folder {path} {what}; model_uri takes a folder an MLflow model "
                f"was saved to (mlflow.pyfunc.save_model), models:/NAME/VERSION or models:/NAME@ALIAS of the "
                f"MLflow store, or runs:/RUN_ID/PATH: fix model_uri"
            )
        digest = hashlib.sha256(mlmodel.read_bytes()).hexdigest()
        return ResolvedModel(uri, str(path.resolve()), tracking_uri, None, None, digest)
    except LFConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - MlflowException, LookupError, connection errors
        detail = textwrap.shorten(str(err), 300, placeholder=" ...")
        if _NO_ANSWER.search(str(err)):  # the store did not answer: a retry may resolve it (exit 3)
            raise TransientError(f"model URI {uri!r} could not be resolved: the MLflow store {tracking_uri} did not "
                                 f"answer after MLflow's HTTP retries ({detail}); check that it is running and "
                                 f"reachable") from None
        if tracking_uri and databricks_store(tracking_uri) and _NO_CREDENTIALS.search(str(err)):
            raise LFConfigError(
                f"model URI {uri!r} cannot be resolved {where}: this machine has no credentials for the workspace "
                f"({detail}); set DATABRICKS_HOST and DATABRICKS_TOKEN, or name a profile of ~/.databrickscfg "
                f"(databricks://<profile>), or run where the workspace's credentials are (a Databricks job)"
            ) from None
        other = ("" if tracking_uri else
                 " (none was set: pass model_lf(..., tracking_uri=...) or set MLFLOW_TRACKING_URI to use another)")
        # The store answered that the model, version or alias is not there (an unknown alias is a bad parameter to
        # MLflow): ask it what it has. Not after other failures, which a second lookup would only repeat.
        if (m := _REGISTERED.match(uri)) is not None and getattr(err, "error_code", None) in (
                "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            detail += _registered_there(tracking_uri, m["name"])
        raise LFConfigError(
            f"model URI {uri!r} does not resolve {where}{other}: {detail}; register the model there (the YouTube "
            f"example's: python -m lf_library.lfs.train_youtube_model --lakehouse <the pipeline's lakehouse>), "
            f"or fix model_uri"
        ) from None


# MLflow's and the Databricks SDK's wording when no workspace credentials are configured.
_NO_CREDENTIALS = re.compile(r"credential|authenticat", re.IGNORECASE)


def _registered_there(tracking_uri: str | None, name: str) -> str:
    """What the registry holds under ``name`` (its versions and aliases), or the models it holds when ``name`` is
    not one of them, to say after a URI that does not resolve; "" when the registry cannot say."""
    try:
        client = _client(tracking_uri)
        found = client.search_model_versions(f"name = '{name}'")
        if not found:
            names = sorted(r.name for r in client.search_registered_models(max_results=20))
            return (f" (registered models there: {', '.join(names)}{', ...' if len(names) == 20 else ''})" if names
                    else " (the registry there holds no model)")
        versions = sorted(int(v.version) for v in found)
        aliases = client.get_registered_model(name).aliases or {}
        shown = ", ".join(map(str, versions[-10:])) + (f" (the last 10 of {len(versions)})" if len(versions) > 10 else "")
        return f" (registered model {name!r} has version(s) {shown}" + (
            f"; aliases {', '.join(f'@{a} -> {v}' for a, v in sorted(aliases.items()))})" if aliases else "; no aliases)")
    except Exception:  # noqa: BLE001 - only a hint: the error itself is said without it
        return ""


def _default_tracking_uri() -> str:
    """The store MLflow uses when none is set (``mlflow.set_tracking_uri`` in this process, else its default,
    ``sqlite:///mlflow.db`` in the working directory on MLflow 3): read, not opened."""
    import mlflow

    return mlflow.get_tracking_uri()


def file_store_error(uri: str | None, key: str) -> str | None:
    """The error for a tracking URI that is a path or ``file:`` (MLflow 3 refuses its file store unless
    ``MLFLOW_ALLOW_FILE_STORE`` is true, in words that do not say to write ``sqlite:///``), else None."""
    if not uri or databricks_store(uri) or uri == "databricks-uc" or \
            os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1"):
        return None
    if uri.startswith("file:"):
        path = Path(uri[len("file://"):] if uri.startswith("file://") else uri[len("file:"):])
    elif ":" not in uri:
        path = Path(uri)
    else:
        return None
    try:  # an MLflow before the refusal (it came with this variable) still takes its file store
        from mlflow import environment_variables
    except ImportError:
        return None
    if not hasattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE"):
        return None
    db = path if path.suffix in (".db", ".sqlite") else path.with_suffix(".db")
    return (f"{key} {uri!r} is a file path, which MLflow takes as its file store (refused unless "
            f"MLFLOW_ALLOW_FILE_STORE=true); name a sqlite store by its URI, e.g. sqlite:///{db.absolute()}")


def _sqlite_file(tracking_uri: str | None) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (None for any other store)."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri[len("sqlite:///"):].split("?", 1)[0])


def _load(resolved: ResolvedModel) -> Any:
    """The pyfunc model, loaded once per process."""
    model = _MODELS.get(resolved.load_uri)
    if model is None:
        with _LOCK:
            model = _MODELS.get(resolved.load_uri)
            if model is None:
                os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
                import mlflow.pyfunc

                remote = "://" in resolved.load_uri and not resolved.load_uri.startswith("file:")
                if resolved.tracking_uri and (remote or resolved.load_uri.startswith("models:/")):
                    # models:/ (Unity Catalog): MLflow takes the registry from the tracking store, as resolve_model did
                    mlflow.set_tracking_uri(resolved.tracking_uri)
                model = mlflow.pyfunc.load_model(_local_copy(resolved))
                _MODELS[resolved.load_uri] = model
    return model


def _local_copy(resolved: ResolvedModel) -> str:
    """Where to load the model from: a local folder (a path, a ``file:`` URI) as it is; a model of a store
    (``runs:/``, ``models:/``, a server's or an object store's artifacts) from one copy per machine and user,
    ``$TMPDIR/lakelabel-models-<uid>/<key>``, shared by every Python worker and run that loads that model version.
    MLflow's own ``load_model`` copies it into a new temporary folder per process, which nothing deletes (a Python
    worker ends without its exit handlers): a copy of the model per worker and run, for as long as the machine keeps
    /tmp. The folder is the user's own (mode 0700; one that is not, or a link, is not used: the copy then goes to a
    new private folder, as MLflow's would): a model file another user put there would run on load."""
    import shutil
    import tempfile
    import time
    from urllib.parse import urlparse

    import mlflow.artifacts

    uri = resolved.load_uri
    if urlparse(uri).scheme in ("", "file"):  # a path: not "mlflow-artifacts:/...", "runs:/...", "s3://..."
        return uri
    stores = {"tracking_uri": resolved.tracking_uri}
    key = hashlib.sha256(f"{resolved.tracking_uri}\n{uri}\n{resolved.model_version}".encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"lakelabel-models-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    if root.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return str(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tempfile.mkdtemp(), **stores))
    folder = root / key
    if (folder / "MLmodel").is_file():
        return str(folder)
    for stale in root.glob(f".{key}-*"):  # a copy a killed worker left half done
        try:
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        except FileNotFoundError:  # another worker swept it first
            pass
    work = tempfile.mkdtemp(prefix=f".{key}-", dir=root)  # beside it, so the rename below is one step
    try:
        copy = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=work, **stores))
        try:
            copy.rename(folder)  # complete or absent; another worker's copy may have won: theirs is the same
        except OSError:
            if not (folder / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(folder)


def _predicts_classes(output: Any) -> bool:
    """Whether a predict output is one class per row (no probabilities), as :func:`_probabilities` reads it."""
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return output.shape[1] == 1 and _predicts_classes(output.iloc[:, 0])
    arr = np.asarray(output)
    return arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)


def _probabilities(output: Any, n: int) -> tuple[list[str], np.ndarray]:
    """The model's classes (as strings) and an ``[n, c]`` probability matrix from a predict output."""
    import pandas as pd

    if isinstance(output, pd.DataFrame) and output.shape[1] >= 2:
        classes, probs = [str(c) for c in output.columns], output.to_numpy(dtype=np.float64)
    elif isinstance(output, pd.DataFrame) and output.shape[1] == 1:
        return _probabilities(output.iloc[:, 0], n)
    else:
        arr = np.asarray(output)
        if arr.ndim == 2 and arr.dtype.kind in "fiu" and arr.shape[1] >= 2:
            classes, probs = [str(i) for i in range(arr.shape[1])], arr.astype(np.float64)
        elif arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
            labels = np.array([str(v.item() if hasattr(v, "item") else v) for v in arr.reshape(-1)], dtype=object)
            classes = sorted(set(labels.tolist()))
            probs = (labels[:, None] == np.array(classes, dtype=object)[None, :]).astype(np.float64)
        else:
            raise ValueError(f"predict returned an array of shape {arr.shape}; expected probabilities or classes")
    if len(probs) != n:
        hint = ""
        if len(probs) == 1 or len(probs) < n:  # a text pipeline fed a DataFrame reads its column names as the texts
            hint = ("; the model gets a pandas DataFrame of the LF's fields: a scikit-learn text pipeline "
                    "(TfidfVectorizer first) must pick its column, e.g. make_column_transformer((TfidfVectorizer(), "
                    "'text')) as the first step")
        raise ValueError(f"predict returned {len(probs)} rows for {n} input rows{hint}")
    return classes, probs


class ModelLF(ArrowLF):
    """An MLflow pyfunc model as an LF (see :func:`model_lf`)."""

    def __init__(self, name: str, spec: dict[str, Any], *, tracking_uri: str | None, label_space: Sequence[str] | None,
                 threshold_given: bool = True):
        self.tracking_uri = tracking_uri
        # Outside the spec: the LF version of an LF left at the default threshold stays what it was.
        self.threshold_given = threshold_given
        self.resolved: ResolvedModel | None = None
        self.origin = f"model {spec['model_uri']}"
        super().__init__(name, spec, label_space=label_space, fields=tuple(spec["fields"]))

    def _resolve(self, label_space: tuple[str, ...] | None) -> dict[str, int] | None:
        if label_space is None and any(isinstance(label, str) for _, label in self.spec["label_map"]):
            return None
        return {key: class_id(label, label_space, lf_name=self.name) for key, label in self.spec["label_map"]}

    def resolve(self) -> ResolvedModel:
        """Resolve the model URI now (the registry does it when it versions the LF)."""
        if self.resolved is None:
            try:
                self.resolved = resolve_model(self.spec["model_uri"], self.tracking_uri)
            except (LFConfigError, TransientError) as err:
                raise type(err)(f"model LF {self.name!r}: {err}") from None
            self.origin = f"model {self.spec['model_uri']}"
            if self.resolved.model_version:
                self.origin += f" (version {self.resolved.model_version}, run {self.resolved.run_id})"
            elif self.resolved.run_id:
                self.origin += f" (run {self.resolved.run_id})"
        return self.resolved

    def _description(self) -> dict[str, Any]:
        resolved = asdict(self.resolve())
        resolved.pop("tracking_uri")
        resolved.pop("load_uri")
        return {**super()._description(), "resolved": resolved}

    def _votes(self, output: Any, n: int) -> np.ndarray:
        mapping = self._resolved
        if mapping is None:
            raise self._unresolved(next(label for _, label in self.spec["label_map"] if isinstance(label, str)))
        if self.threshold_given and _predicts_classes(output):
            raise LFConfigError(
                f"model LF {self.name!r}: threshold {self.spec['threshold']:g} is set, but model "
                f"{self.spec['model_uri']} predicts classes, not probabilities, so every prediction would pass it; "
                f"log the model so predict returns class probabilities (mlflow.sklearn.log_model(..., "
                f"pyfunc_predict_fn=\"predict_proba\")), or drop threshold"
            )
        classes, probs = _probabilities(output, n)
        missing = [k for k in mapping if k not in classes]
        if missing:
            raise LFConfigError(
                f"model LF {self.name!r}: model {self.spec['model_uri']} outputs classes {classes}, but label_map "
                f"names {missing}; make the label_map keys the model's classes (its output column names, or "
                f"0, 1, ... for a probability array)"
            )
        if not len(probs):
            return np.zeros(0, dtype=np.int64)
        top = probs.argmax(axis=1)
        confident = probs[np.arange(n), top] >= self.spec["threshold"]
        ids = np.array([mapping.get(c, ABSTAIN) for c in classes], dtype=np.int64)
        return np.where(confident, ids[top], ABSTAIN).astype(np.int64)

    def predict_frame(self, frame: Any) -> np.ndarray:
        """Votes for a pandas DataFrame holding the LF's fields."""
        try:
            output = _load(self.resolve()).predict(frame[list(self.fields)])
        except LFConfigError:
            raise
        except ImportError as err:  # the model's library is not installed where it runs: not a column problem
            missing = f"the module {err.name!r}" if getattr(err, "name", None) else f"a module ({err})"
            raise InputDataError(
                f"model LF {self.name!r}: model {self.spec['model_uri']} needs {missing}, which this Python cannot "
                f"import; install the model's requirements (requirements.txt in its MLflow artifacts; a scikit-learn "
                f"model: pip install scikit-learn) where the job runs, on every worker of a cluster"
            ) from None
        except Exception as err:  # noqa: BLE001 - one line naming the model and the input
            raise InputDataError(
                f"model LF {self.name!r}: model {self.spec['model_uri']} failed to predict on columns "
                f"{list(self.fields)}: {type(err).__name__}: {' '.join(str(err).split())[:300]}; check that the "
                f"model takes a DataFrame with these columns (fields=...)"
            ) from None
        try:
            return self._votes(output, len(frame))
        except ValueError as err:
            if isinstance(err, LFConfigError):
                raise
            raise LFConfigError(
                f"model LF {self.name!r}: model {self.spec['model_uri']}: {err}; it must return one row of class "
                f"probabilities (or one class) per input row"
            ) from None

    def check_output(self, frame: Any) -> None:
        """Load the model here and score ``frame`` (a few source rows): fail early on a bad label map."""
        self.predict_frame(frame)

    def evaluate_arrow(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        missing = [c for c in self.fields if c not in table.schema.names]
        if missing:
            raise InputDataError(
                f"model LF {self.name!r} reads column(s) {missing}, which the input lacks; available: "
                f"{table.schema.names}; fix fields=..."
            )
        return self.predict_frame(table.select(list(self.fields)).to_pandas())

    def __getstate__(self) -> dict[str, Any]:
        self.version  # noqa: B018 - resolved on the driver, before the LF ships to executors
        return dict(self.__dict__)


def model_lf(
    name: str,
    model_uri: str,
    *,
    label_map: Mapping[Any, int | str],
    threshold: float | None = None,
    fields: Sequence[str] = ("text",),
    tracking_uri: str | None = None,
    label_space: Sequence[str] | None = None,
) -> ModelLF:
    """An LF that scores rows with an MLflow pyfunc model and votes its confident predictions.

    Parameters
    ----------
    name : str
        LF name.
    model_uri : str
        ``models:/name/version``, ``models:/name@alias``, ``models:/name/latest``,
        ``runs:/<run id>/<path>``, ``models:/m-<id>`` or a local model folder.
    label_map : mapping
        Model class (output column name, probability column index, or predicted value) -> class
        name or id of the label space. Model classes left out abstain.
    threshold : float, optional
        Minimum probability of the top class for a vote; default 0.5. The model must predict
        probabilities (``pyfunc_predict_fn="predict_proba"`` for a scikit-learn model): a threshold
        given for a model that predicts classes is refused (:class:`LFConfigError`) on the first batch.
    fields : sequence of str, default ("text",)
        Source columns passed to the model as a pandas DataFrame.
    tracking_uri : str, optional
        The MLflow store to resolve ``model_uri`` in; default the pipeline's store.
    """
    if not isinstance(model_uri, str) or not model_uri.strip():
        raise LFConfigError(f"LF {name!r}: model_uri must be an MLflow model URI such as 'models:/spam/1', got {model_uri!r}")
    threshold_given = threshold is not None
    threshold = 0.5 if threshold is None else threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise LFConfigError(f"LF {name!r}: threshold must be a probability in [0, 1], got {threshold!r}")
    if not isinstance(label_map, Mapping) or not label_map:
        raise LFConfigError(
            f"LF {name!r}: label_map must be a non-empty dict of model class -> class, e.g. {{1: 'spam', 0: 'ham'}}; "
            f"got {label_map!r}"
        )
    if isinstance(fields, str):
        fields = [fields]
    if not fields or not all(isinstance(f, str) and f for f in fields):
        raise LFConfigError(f"LF {name!r}: fields must be a list of column names, got {fields!r}")
    pairs = sorted(([str(k).lower() if isinstance(k, bool) else str(k), _check_label(v, name)] for k, v in label_map.items()),
                   key=lambda kv: kv[0])
    spec = {
        "kind": "model",
        "model_uri": model_uri.strip(),
        "threshold": float(threshold),
        "label_map": pairs,
        "fields": list(dict.fromkeys(fields)),
    }
    return ModelLF(name, spec, tracking_uri=tracking_uri, label_space=label_space, threshold_given=threshold_given)
