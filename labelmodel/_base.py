"""Shared public surface of every label model: fit, predict, score, save and load."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._params import FittedParams
from .config import LabelModelConfig
from .stats import ABSTAIN, SufficientStats, check_label_matrix, stats_from_matrix
from .ties import check_policy, probs_to_preds

FORMAT = "lakelabel.labelmodel"
FORMAT_VERSION = 1

_ARRAY_KEYS = ("log_prior", "precision", "vote_rate", "weights", "log_table", "train_log_prior")
METRICS = ("accuracy", "coverage", "precision", "recall", "f1", "f1_micro", "f1_macro")

# Snorkel LabelModel.fit(**TrainConfig) options: accepted so code written for Snorkel
# runs unchanged, but they tune SGD, which this package does not use.
_SNORKEL_TRAIN_KWARGS = frozenset(
    {"n_epochs", "lr", "l2", "optimizer", "optimizer_config", "lr_scheduler",
     "lr_scheduler_config", "prec_init", "seed", "log_freq", "mu_eps"}
)


class BaseLabelModel:
    """Common API. Subclasses implement ``_fit_stats(stats, class_balance) -> FittedParams``.

    Parameters
    ----------
    cardinality : int
        Number of classes ``k``.
    config : LabelModelConfig, optional
    **kwargs
        Fields of :class:`LabelModelConfig` that override ``config`` (``seed=``, ...).
        ``verbose`` and ``device="cpu"`` are accepted for Snorkel compatibility.
    """

    _method = "base"

    def __init__(self, cardinality: int = 2, *, config: LabelModelConfig | None = None, **kwargs: Any):
        kwargs.pop("verbose", None)
        device = kwargs.pop("device", "cpu")
        if device != "cpu":
            raise ValueError(f"device={device!r} is not supported; this label model runs on the CPU")
        if isinstance(cardinality, bool) or not isinstance(cardinality, (int, np.integer)) or cardinality < 2:
            raise ValueError(f"cardinality must be an int >= 2, got {cardinality!r}")
        self.cardinality = int(cardinality)
        base = config if config is not None else LabelModelConfig()
        if kwargs:
            base = LabelModelConfig.from_dict({**base.to_dict(), **kwargs})
        self.config = base
        self.params_: FittedParams | None = None
        self.lf_names: tuple[str, ...] | None = None
        self.fit_info_: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: LabelModelConfig | Mapping[str, Any] | None, cardinality: int = 2) -> BaseLabelModel:
        """Build from a :class:`LabelModelConfig` (or a mapping of its fields)."""
        if config is None or isinstance(config, Mapping):
            config = LabelModelConfig.from_dict(config)
        if not isinstance(config, LabelModelConfig):
            raise TypeError(f"config must be a LabelModelConfig or a mapping, got {type(config).__name__}")
        return cls(cardinality, config=config)

    # ------------------------------------------------------------------ fitting
    @property
    def seed(self) -> int:
        return self.config.seed

    def fit(
        self,
        L_train: Any,
        Y_dev: Any = None,
        class_balance: Any = None,
        progress_bar: bool = False,
        *,
        L_dev: Any = None,
        lf_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> BaseLabelModel:
        """Fit on a dense label matrix (computes the statistics, then :meth:`fit_from_stats`).

        Parameters
        ----------
        L_train : array-like, shape [n, m]
            Votes in ``{-1, 0..k-1}``.
        Y_dev : array-like, shape [n_dev], optional
            Gold labels of a dev set: sets the class balance (as Snorkel). With ``L_dev``,
            ``method="auto"`` also picks the estimator that scores best on it.
        class_balance : array-like, shape [k], optional
            Known class balance; overrides the estimate and ``Y_dev``.
        progress_bar : bool
            Ignored (Snorkel compatibility).
        L_dev : array-like, shape [n_dev, m], optional
        lf_names : sequence of str, optional
        **kwargs
            Snorkel's SGD options (``n_epochs``, ``lr``, ...) are ignored with a warning;
            ``seed`` replaces the configured seed.
        """
        self._consume_train_kwargs(kwargs)
        L = self._check_L(L_train, "L_train", fitted=False)
        stats = stats_from_matrix(L, self.cardinality, lf_names, max_patterns=self.config.max_patterns)
        return self.fit_from_stats(stats, Y_dev=Y_dev, L_dev=L_dev, class_balance=class_balance)

    def fit_from_stats(
        self,
        stats: SufficientStats,
        *,
        Y_dev: Any = None,
        L_dev: Any = None,
        class_balance: Any = None,
    ) -> BaseLabelModel:
        """Fit from aggregated statistics; the cost never depends on the row count.

        Parameters
        ----------
        stats : SufficientStats
            From the Spark aggregate job or :func:`labelmodel.stats_from_matrix`.
        Y_dev, L_dev, class_balance
            As in :meth:`fit`.
        """
        if not isinstance(stats, SufficientStats):
            raise TypeError(f"stats must be a SufficientStats, got {type(stats).__name__}")
        if stats.cardinality != self.cardinality:
            raise ValueError(
                f"the statistics have cardinality {stats.cardinality} but this model has "
                f"cardinality {self.cardinality}; build the model with cardinality={stats.cardinality}"
            )
        if stats.n_lfs == 0:
            raise ValueError("the statistics hold no LF columns; register at least one LF")
        if stats.n_rows == 0:
            raise ValueError("the statistics hold no rows; the label model needs training rows")
        if class_balance is None and Y_dev is None:
            class_balance = self.config.class_balance
        balance, dev = self._dev_inputs(stats, Y_dev, L_dev, class_balance)
        self.lf_names = tuple(stats.lf_names)
        self.fit_info_ = {"method": self._method, "n_rows": int(stats.n_rows)}
        self.params_ = self._fit_stats(stats, balance, dev)
        self.fit_info_.update(self.params_.info)
        return self

    def _fit_stats(
        self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None
    ) -> FittedParams:
        raise NotImplementedError

    # --------------------------------------------------------------- prediction
    def predict_proba(self, L: Any) -> np.ndarray:
        """Class probabilities, shape [n, k] float64, computed in log space.

        Rows where every LF abstained get the class balance.
        """
        params = self._fitted()
        L = self._check_L(L, "L", fitted=True)
        return params.predict_proba(L)

    def predict(
        self,
        L: Any,
        tie_break_policy: str | None = None,
        row_ids: Sequence[Any] | np.ndarray | None = None,
        return_probs: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Hard labels, shape [n]; ``-1`` where the ``"abstain"`` policy leaves a tie.

        Parameters
        ----------
        L : array-like, shape [n, m]
        tie_break_policy : {"abstain", "random", "first"}, optional
            Defaults to the config's; see :mod:`labelmodel.ties`.
        row_ids : sequence, shape [n], optional
            Stable row ids, required by ``"random"`` (ties break by a hash of the id).
        return_probs : bool
            Also return the probabilities.
        """
        policy = check_policy(tie_break_policy or self.config.tie_break_policy)
        probs = self.predict_proba(L)
        preds = probs_to_preds(probs, policy, row_ids, seed=self.config.seed)
        return (preds, probs) if return_probs else preds

    def score(
        self,
        L: Any,
        Y: Any,
        metrics: Sequence[str] = ("accuracy",),
        tie_break_policy: str | None = None,
        row_ids: Sequence[Any] | np.ndarray | None = None,
    ) -> dict[str, float]:
        """Score predictions against gold labels.

        As in Snorkel, rows the ``"abstain"`` policy leaves unlabeled are left out of every
        metric except ``"coverage"`` (the fraction of rows that got a label).
        Metrics: accuracy, coverage, precision/recall/f1 (binary, positive class 1),
        f1_micro, f1_macro.
        """
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; use {', '.join(METRICS)}")
        Y = self._check_Y(Y, "Y")
        preds = self.predict(L, tie_break_policy, row_ids)
        if len(Y) != len(preds):
            raise ValueError(f"Y has {len(Y)} labels for {len(preds)} rows of L")
        return _metrics(preds, Y, metrics, self.cardinality)

    # ----------------------------------------------------------- introspection
    def estimated_accuracies(self) -> np.ndarray:
        """Estimated precision of each LF (fraction of its votes that are right), shape [m].

        NaN for LFs that never voted in the training data.
        """
        return self._fitted().lf_accuracies()

    def get_weights(self) -> np.ndarray:
        """Alias of :meth:`estimated_accuracies` (Snorkel's name)."""
        return self.estimated_accuracies()

    @property
    def class_balance_(self) -> np.ndarray:
        """Class balance used by the model, shape [k]."""
        return self._fitted().class_balance

    @property
    def estimated_class_balance_(self) -> np.ndarray:
        """Class balance estimated from the training votes (before any shrinkage or
        replacement by ``class_balance``/``Y_dev``), shape [k]."""
        est = self.fit_info_.get("estimated_class_balance")
        return np.asarray(est, dtype=np.float64) if est is not None else self.class_balance_

    @property
    def confusion_(self) -> np.ndarray:
        """``P(L_j = v | Y = y)`` as ``[m, k+1, k]``; index ``v + 1``, 0 is abstain."""
        return self._fitted().confusion()

    def get_conditional_probs(self) -> np.ndarray:
        """Alias of :attr:`confusion_` (Snorkel's name; each column sums to 1 here)."""
        return self.confusion_

    @property
    def is_fitted(self) -> bool:
        return self.params_ is not None

    # ----------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON representation (no pickled code)."""
        p = self._fitted()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "cardinality": self.cardinality,
            "lf_names": list(self.lf_names) if self.lf_names is not None else None,
            "config": self.config.to_dict(),
            "params": {
                "kind": p.kind,
                "log_prior": _tolist(p.log_prior),
                "precision": _tolist(p.precision),
                "vote_rate": _tolist(p.vote_rate),
                "weights": _tolist(p.weights) if p.weights is not None else None,
                "log_table": _tolist(p.log_table) if p.log_table is not None else None,
                "train_log_prior": _tolist(p.train_log_prior) if p.train_log_prior is not None else None,
            },
            "fit_info": _jsonable(self.fit_info_),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaseLabelModel:
        """Inverse of :meth:`to_dict`; returns an instance of the saved class (every label
        model predicts from the same parameter format, so any of them loads any file)."""
        if d.get("format") != FORMAT:
            raise ValueError(f"not a saved lakelabel label model (format={d.get('format')!r})")
        if int(d.get("format_version", -1)) > FORMAT_VERSION:
            raise ValueError(
                f"saved with format_version {d['format_version']}, newer than this code "
                f"({FORMAT_VERSION}); upgrade lakelabel"
            )
        target = _registry().get(d.get("class", ""), None)
        if target is None:
            raise ValueError(f"unknown label model class {d.get('class')!r} in saved model")
        model = target(int(d["cardinality"]), config=LabelModelConfig.from_dict(d["config"]))
        p = d["params"]
        model.params_ = FittedParams(
            kind=p["kind"],
            log_prior=_fromlist(p["log_prior"]),
            precision=_fromlist(p["precision"]),
            vote_rate=_fromlist(p["vote_rate"]),
            weights=_fromlist(p["weights"]) if p.get("weights") is not None else None,
            log_table=_fromlist(p["log_table"]) if p.get("log_table") is not None else None,
            train_log_prior=_fromlist(p["train_log_prior"]) if p.get("train_log_prior") is not None else None,
        )
        names = d.get("lf_names")
        model.lf_names = tuple(names) if names is not None else None
        model.fit_info_ = dict(d.get("fit_info") or {})
        return model

    def save(self, path: str | Path) -> None:
        """Save as JSON (``.json`` or any other suffix) or as ``.npz`` (arrays + JSON metadata)."""
        path = Path(path)
        d = self.to_dict()
        if path.suffix == ".npz":
            arrays = {}
            for key in _ARRAY_KEYS:
                p = getattr(self.params_, key)
                if p is not None:
                    arrays[key] = np.asarray(p, dtype=np.float64)
                d["params"][key] = None
            np.savez_compressed(path, __meta__=np.array(json.dumps(d)), **arrays)
        else:
            path.write_text(json.dumps(d, allow_nan=False))

    @classmethod
    def load(cls, path: str | Path) -> BaseLabelModel:
        """Load a model written by :meth:`save`."""
        path = Path(path)
        with open(path, "rb") as fh:
            magic = fh.read(2)
        if magic == b"PK":  # a zip: .npz
            with np.load(path, allow_pickle=False) as z:
                d = json.loads(str(z["__meta__"]))
                for key in _ARRAY_KEYS:
                    if key in z:
                        d["params"][key] = z[key]
            return cls.from_dict(d)
        return cls.from_dict(json.loads(path.read_text()))

    # ------------------------------------------------------------- helpers
    def _fitted(self) -> FittedParams:
        if self.params_ is None:
            raise RuntimeError(
                f"this {type(self).__name__} is not fitted; call fit(L_train) or fit_from_stats(stats) first"
            )
        return self.params_

    def _check_L(self, L: Any, what: str, *, fitted: bool, allow_empty: bool = False) -> np.ndarray:
        if L is None:
            raise ValueError(f"{what} is None; pass an [n_rows, n_lfs] matrix of votes")
        arr = np.asarray(L)
        if arr.ndim != 2:
            raise ValueError(f"{what} must be a 2-D [n_rows, n_lfs] matrix, got shape {arr.shape}")
        if not fitted and not allow_empty and arr.shape[0] == 0:
            raise ValueError(f"{what} has no rows; the label model needs training rows")
        if arr.shape[1] == 0:
            raise ValueError(f"{what} has no LF columns; register at least one LF")
        if fitted:
            m = self._fitted().n_lfs
            if arr.shape[1] != m:
                names = "" if self.lf_names is None else f" ({', '.join(self.lf_names[:8])}{', ...' if m > 8 else ''})"
                raise ValueError(
                    f"{what} has {arr.shape[1]} LF columns but the model was fitted on {m}{names}; "
                    "pass the same LFs in the same order"
                )
        try:
            return check_label_matrix(arr, self.cardinality)
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from err

    def _check_Y(self, Y: Any, what: str) -> np.ndarray:
        arr = np.asarray(Y)
        if arr.ndim != 1:
            raise ValueError(f"{what} must be a 1-D array of class ids, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.equal(np.mod(arr, 1), 0)):
                raise ValueError(f"{what} must hold integer class ids; found non-integers")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.cardinality):
            bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
            raise ValueError(
                f"{what} holds {bad}, outside the label space 0..{self.cardinality - 1} "
                f"(cardinality={self.cardinality})"
            )
        return arr

    def _dev_inputs(
        self, stats: SufficientStats, Y_dev: Any, L_dev: Any, class_balance: Any
    ) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
        k = self.cardinality
        balance = None
        dev = None
        if L_dev is not None and Y_dev is None:
            raise ValueError("L_dev was given without Y_dev; pass both to select a model on dev labels")
        if Y_dev is not None:
            Y = self._check_Y(Y_dev, "Y_dev")
            if Y.size == 0:
                raise ValueError("Y_dev is empty; pass gold labels or leave Y_dev=None")
            a = self.config.class_smoothing
            balance = (np.bincount(Y, minlength=k) + a) / (len(Y) + k * a)
            if L_dev is not None:
                Ld = np.asarray(L_dev)
                if Ld.ndim != 2 or Ld.shape[1] != stats.n_lfs:
                    raise ValueError(
                        f"L_dev must be [n_dev, {stats.n_lfs}] like the training votes, got shape {Ld.shape}"
                    )
                Ld = check_label_matrix(Ld, k)
                if len(Ld) != len(Y):
                    raise ValueError(f"L_dev has {len(Ld)} rows but Y_dev has {len(Y)} labels")
                dev = (Ld, Y)
        if class_balance is not None:
            cb = np.asarray(class_balance, dtype=np.float64).reshape(-1)
            if cb.shape != (k,):
                raise ValueError(f"class_balance must have {k} entries (one per class), got {cb.shape[0]}")
            if np.any(~np.isfinite(cb)) or np.any(cb <= 0):
                raise ValueError(f"class_balance entries must be positive, got {cb.tolist()}")
            if abs(cb.sum() - 1.0) > 1e-6:
                raise ValueError(f"class_balance must sum to 1, got {cb.sum():.6g}")
            balance = cb / cb.sum()
        return balance, dev

    def _consume_train_kwargs(self, kwargs: dict[str, Any]) -> None:
        unknown = sorted(set(kwargs) - _SNORKEL_TRAIN_KWARGS)
        if unknown:
            raise TypeError(
                f"unexpected fit() argument(s) {unknown}; label model settings go to the "
                f"constructor (LabelModelConfig fields)"
            )
        if "seed" in kwargs:
            self.config = self.config.replace(seed=int(kwargs.pop("seed")))
        if kwargs:
            warnings.warn(
                f"ignoring Snorkel SGD option(s) {sorted(kwargs)}: this label model is fitted by "
                "EM or moments, not SGD; see LabelModelConfig (max_iter, tol, prior_strength)",
                UserWarning,
                stacklevel=3,
            )

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "unfitted"
        return f"{type(self).__name__}(cardinality={self.cardinality}, method={self.config.method!r}, {state})"


def _metrics(preds: np.ndarray, Y: np.ndarray, metrics: Sequence[str], k: int) -> dict[str, float]:
    out: dict[str, float] = {}
    labeled = preds != ABSTAIN
    if "coverage" in metrics:
        out["coverage"] = float(labeled.mean()) if len(preds) else math.nan
    p, y = preds[labeled], Y[labeled]
    if len(p) < len(preds) and any(m != "coverage" for m in metrics):
        warnings.warn(
            f"{len(preds) - len(p)} of {len(preds)} rows were left unlabeled by the tie-break "
            "policy and are excluded from the metrics (see 'coverage')",
            UserWarning,
            stacklevel=3,
        )
    for name in metrics:
        if name == "coverage":
            continue
        if len(p) == 0:
            out[name] = math.nan
        elif name == "accuracy":
            out[name] = float(np.mean(p == y))
        elif name in ("precision", "recall", "f1"):
            if k != 2:
                raise ValueError(f"metric {name!r} is binary; use f1_macro or f1_micro for k={k}")
            tp = float(np.sum((p == 1) & (y == 1)))
            pp, ap = float(np.sum(p == 1)), float(np.sum(y == 1))
            prec = tp / pp if pp else 0.0
            rec = tp / ap if ap else 0.0
            out[name] = {"precision": prec, "recall": rec}.get(
                name, 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            )
        elif name == "f1_micro":
            out[name] = float(np.mean(p == y))  # single-label: micro F1 equals accuracy
        elif name == "f1_macro":
            f1s = []
            for c in range(k):
                tp = np.sum((p == c) & (y == c))
                pp, ap = np.sum(p == c), np.sum(y == c)
                if pp + ap == 0:
                    continue
                f1s.append(2 * tp / (pp + ap))
            out[name] = float(np.mean(f1s)) if f1s else math.nan
    return out


def _tolist(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    if np.isnan(a).any():
        return np.where(np.isnan(a), None, a).tolist()
    return a.tolist()


def _fromlist(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    return np.array(x, dtype=np.float64)  # None -> nan


def _jsonable(d: Any) -> Any:
    if isinstance(d, Mapping):
        return {str(k): _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, np.ndarray):
        return _jsonable(d.tolist())
    if isinstance(d, np.generic):
        return _jsonable(d.item())
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def _registry() -> dict[str, type]:
    from .dawid_skene import DawidSkene
    from .majority import MajorityLabelVoter, WeightedMajorityVoter
    from .model import LabelModel
    from .moments import MomentEstimator

    return {c.__name__: c for c in (LabelModel, DawidSkene, MomentEstimator, MajorityLabelVoter, WeightedMajorityVoter)}
