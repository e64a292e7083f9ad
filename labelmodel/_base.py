"""Shared public surface of every label model: fit, predict, score, save and load.

Every subclass of :class:`BaseLabelModel` registers itself by class name when it is
defined, so :meth:`BaseLabelModel.from_dict` finds the class a file was saved from without
this module importing the estimators (which import it).
"""

from __future__ import annotations

import re
import types
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._compat import check_snorkel_train_kwargs
from ._inputs import check_class_balance, check_gold, dev_inputs
from ._params import FittedParams
from ._persist import (
    FORMAT, FORMAT_VERSION, check_header, jsonable, params_from_dict, params_to_dict, read_model, write_model,
)
from .config import LabelModelConfig
from .explain import Explanation, explain_votes
from .metrics import METRICS, check_metrics, score_predictions
from .stats import ABSTAIN, SufficientStats, check_label_matrix, refuse_sparse, repeated, stats_from_matrix
from .ties import check_policy, probs_to_preds


class ConvergenceWarning(UserWarning):
    """A fit that stopped at ``max_iter`` before EM converged (``fit_info_["converged"]`` is False)."""


def _outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by its caller at the first line outside this package
    (the user's ``fit`` call, through whichever of fit, fit_from_stats and a subclass's fit it came)."""
    import sys

    here = Path(__file__).resolve().parent
    frame, level = sys._getframe(1), 1
    while frame is not None and Path(frame.f_code.co_filename).resolve().parent == here:
        frame, level = frame.f_back, level + 1
    return level


__all__ = ["BaseLabelModel", "METRICS"]

_REGISTRY: dict[str, type] = {}  # class name -> label model class, filled by __init_subclass__


class _ClassOrInstanceMethod:
    """A method bound to the instance when called on one, to the class otherwise."""

    def __init__(self, func: Any) -> None:
        self.__func__ = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, owner: type) -> Any:
        return types.MethodType(self.__func__, owner if obj is None else obj)


class BaseLabelModel:
    """Common API. Subclasses implement ``_fit_stats(stats, class_balance) -> FittedParams``.

    Parameters
    ----------
    cardinality : int
        Number of classes ``k``.
    config : LabelModelConfig, optional
    **kwargs
        Fields of :class:`LabelModelConfig` that override ``config`` (``seed=``, ...).
        ``verbose`` and ``device`` are accepted for Snorkel compatibility: a torch device
        (``"cuda"``, ``"cuda:1"``, ``"mps"``) is ignored with a warning, as numpy runs on the CPU.
    """

    _method = "base"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY.setdefault(cls.__name__, cls)

    def __init__(self, cardinality: int = 2, *, config: LabelModelConfig | None = None, **kwargs: Any):
        kwargs.pop("verbose", None)
        device = str(kwargs.pop("device", "cpu"))  # a torch.device prints as its name
        if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
            raise ValueError(f"device={device!r} is not a torch device Snorkel takes; pass 'cpu' (the default)")
        if device != "cpu":
            warnings.warn(f"device={device!r} is ignored: this label model runs on numpy, on the CPU (its fit "
                          "takes about a second on a million rows)", UserWarning, stacklevel=2)
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
        """Build from a :class:`LabelModelConfig` (or a mapping of its fields).

        Raises ValueError when the config does not fit ``cardinality`` (a ``class_balance`` of
        another length), so a pipeline's config fails before any data is read.
        """
        if config is None or isinstance(config, Mapping):
            config = LabelModelConfig.from_dict(config)
        if not isinstance(config, LabelModelConfig):
            raise TypeError(f"config must be a LabelModelConfig or a mapping, got {type(config).__name__}")
        if config.class_balance is not None:
            check_class_balance(config.class_balance, cardinality)
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
            Gold class ids (``0..k-1``) of a dev set. They set the class balance to their
            class frequencies smoothed by ``class_smoothing`` pseudo-counts per class,
            ``(count_c + a) / (n_dev + k * a)``, so a class missing from a small dev set
            keeps a small positive prior. Snorkel uses the raw frequencies: with
            ``class_smoothing=0`` the balance is exactly Snorkel's, and a class missing
            from ``Y_dev`` is then an error (as in Snorkel). With ``L_dev`` too, the dev rows
            enter EM as labeled rows when 5-fold cross-fitting on them shows a gain beyond
            noise (else they are left out; ``fit_info_["dev_use"]`` says which), and their
            class balance is not imposed.
        class_balance : array-like, shape [k], optional
            Known class balance (positive, summing to 1); overrides the estimate and
            ``Y_dev``.
        progress_bar : bool
            Ignored (Snorkel compatibility).
        L_dev : array-like, shape [n_dev, m], optional
            Votes of the same LFs, in the same order, on the ``Y_dev`` rows.
        lf_names : sequence of str, optional
        **kwargs
            Snorkel's SGD options (``n_epochs``, ``lr``, ``optimizer``, ``prec_init``, ...)
            are checked as Snorkel checks them, then ignored with a warning; ``seed``
            replaces the configured seed.
        """
        if lf_names is None:  # a DataFrame's column names are the LF names (predict then checks them)
            lf_names = _frame_names(L_train)
            if lf_names is not None and len(set(lf_names)) != len(lf_names):
                raise ValueError(f"L_train's columns (the LF names) must be distinct; repeated: {repeated(lf_names)}")
        elif (named := _frame_names(L_train)) is not None and tuple(lf_names) != named:
            # predict on the same frame would then refuse its columns as not the fitted LFs
            raise ValueError(f"lf_names {list(lf_names)[:8]}{' ...' if len(lf_names) > 8 else ''} are not L_train's "
                             f"columns {list(named)[:8]}{' ...' if len(named) > 8 else ''}: a DataFrame's columns are "
                             f"its LF names; leave lf_names out, or rename the columns")
        L = self._check_L(L_train, "L_train", fitted=False)
        self._consume_train_kwargs(kwargs, L.shape[1])
        stats = stats_from_matrix(L, self.cardinality, lf_names, max_patterns=self._matrix_max_patterns(L.shape[1]))
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
        balance, dev = dev_inputs(stats, Y_dev, L_dev, class_balance, self.config.class_smoothing)
        self.lf_names = tuple(stats.lf_names)
        self.fit_info_ = {"method": self._method, "n_rows": int(stats.n_rows)}
        self.params_ = self._fit_stats(stats, balance, dev)
        self.fit_info_.update(self.params_.info)
        # Stopped by max_iter, not by design (weighted majority takes one EM step and says converged False).
        if self.fit_info_.get("converged") is False and self.fit_info_.get("n_iter", 0) >= self.config.max_iter:
            route = self.fit_info_.get("chosen") or self._method
            warnings.warn(
                f"the {route} fit stopped at max_iter={self.config.max_iter} before its parameters settled "
                f"(tol={self.config.tol}): its estimates may be off; raise max_iter (LabelModelConfig, or "
                "label_model.max_iter in a lakelabel config)",
                ConvergenceWarning,
                stacklevel=_outside_stacklevel(),
            )
        if self.config.em_class_balance != "estimate" and "em_class_balance" not in self.fit_info_:
            route = ("full parameterization" if self.fit_info_.get("parameterization") == "full"
                     else f"{self.fit_info_.get('chosen') or self._method} route")
            self.fit_info_["em_class_balance"] = f"unused: the {route} has no EM class balance to hold"
        return self

    def _fit_stats(
        self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None
    ) -> FittedParams:
        raise NotImplementedError

    def _matrix_max_patterns(self, n_lfs: int) -> int:
        """The pattern cap of the statistics :meth:`fit` computes (subclasses lower it
        where a larger table would not be used)."""
        return self.config.max_patterns

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
        return_probs: bool = False,
        tie_break_policy: str | None = None,
        *,
        row_ids: Sequence[Any] | np.ndarray | None = None,
        label_unvoted: bool | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Hard labels, shape [n] int64; ``-1`` for rows left unlabeled.

        A row is left unlabeled when every LF abstained on it (unless ``label_unvoted``)
        or when the ``"abstain"`` policy meets a tie. The arguments keep Snorkel's order.

        Parameters
        ----------
        L : array-like, shape [n, m]
        return_probs : bool
            Also return the probabilities (``(preds, probs)``).
        tie_break_policy : {"abstain", "random", "first", "true-random"}, optional
            Defaults to the config's (``"abstain"``); see :mod:`labelmodel.ties`.
        row_ids : sequence, shape [n], optional
            Stable row ids: ``"random"`` then breaks ties by a hash of the id, so a row's
            label does not depend on its position. Without them, ``"random"`` hashes the
            row position exactly as Snorkel does.
        label_unvoted : bool, optional
            Rows on which every LF abstained get the class prior as probabilities, but no
            evidence: by default (the config's ``label_unvoted=False``) their label is
            ``-1`` whatever the tie-break policy. ``True`` labels them with the most likely
            class under the prior, ties broken by the policy (Snorkel's behaviour).
        """
        if isinstance(return_probs, str):
            raise TypeError(
                f"predict's second argument is return_probs (Snorkel's order), got {return_probs!r}; "
                "pass tie_break_policy=... by keyword"
            )
        policy = check_policy(tie_break_policy or self.config.tie_break_policy)
        probs = self.predict_proba(L)
        preds = probs_to_preds(probs, policy, row_ids, seed=self.config.seed)
        if not (self.config.label_unvoted if label_unvoted is None else label_unvoted):
            preds[~(np.asarray(L) != ABSTAIN).any(axis=1)] = ABSTAIN
        return (preds, probs) if return_probs else preds

    def score(
        self,
        L: Any,
        Y: Any,
        metrics: Sequence[str] | None = ("accuracy",),
        tie_break_policy: str | None = None,
        row_ids: Sequence[Any] | np.ndarray | None = None,
        *,
        label_unvoted: bool | None = None,
        beta: float = 1.0,
    ) -> dict[str, float]:
        """Score predictions against gold labels, with Snorkel 0.10's metrics and rules.

        Rows whose gold label is ``-1`` (unknown) and rows left unlabeled by
        :meth:`predict` are left out of every metric except ``"coverage"``, the fraction
        of all rows that got a label. See :mod:`labelmodel.metrics`.

        Parameters
        ----------
        L : array-like, shape [n, m]
        Y : array-like, shape [n]
            Gold class ids, ``-1`` where unknown.
        metrics : sequence of str
            Any of ``accuracy``, ``coverage``, ``precision``, ``recall``, ``f1``, ``fbeta``
            and ``roc_auc`` (binary, positive class 1), ``f1_micro``, ``f1_macro``,
            ``matthews_corrcoef``. None (or ``[]``): no metric, an empty dict, as in Snorkel.
        tie_break_policy, row_ids, label_unvoted
            As in :meth:`predict`.
        beta : float
            ``beta`` of ``"fbeta"``.
        """
        names = check_metrics(metrics, self.cardinality)
        Y = check_gold(Y, "Y", self.cardinality, allow_unknown=True)
        if Y.size == 0:
            raise ValueError("Y is empty; pass one gold label per row of L")
        preds, probs = self.predict(L, True, tie_break_policy, row_ids=row_ids, label_unvoted=label_unvoted)
        if len(Y) != len(preds):
            raise ValueError(f"Y has {len(Y)} labels for {len(preds)} rows of L; pass one per row")
        left_out = int(np.sum((preds == ABSTAIN) | (Y == ABSTAIN)))
        if left_out and any(m != "coverage" for m in names):
            warnings.warn(
                f"{left_out} of {len(Y)} rows are left out of the metrics: unlabeled by the model "
                "(see 'coverage') or with gold label -1",
                UserWarning,
                stacklevel=2,
            )
        return score_predictions(Y, preds, probs, names, beta=beta)

    def explain(self, votes: Any) -> Explanation:
        """The class prior and each LF's contribution to every class's score for one row.

        For the precision model and the confusion model,
        ``softmax(e.log_prior + e.contributions.sum(0)) == predict_proba(votes[None])[0]``;
        majority vote counts votes instead (``e.combine == "majority"``). See
        :mod:`labelmodel.explain`.

        Parameters
        ----------
        votes : array-like, shape [m]
            One row of votes in ``{-1, 0..k-1}``, LFs in the fitted order (``lf_names``).

        Returns
        -------
        Explanation
        """
        row = self._check_L(np.asarray(votes).reshape(1, -1), "votes", fitted=True)
        return explain_votes(self._fitted(), row[0])

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
        replacement by ``class_balance``/``Y_dev``; the class share of the posteriors when
        EM holds the balance at uniform), shape [k]."""
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
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "cardinality": self.cardinality,
            "lf_names": list(self.lf_names) if self.lf_names is not None else None,
            "config": self.config.to_dict(),
            "params": params_to_dict(self._fitted()),
            "fit_info": jsonable(self.fit_info_),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaseLabelModel:
        """Inverse of :meth:`to_dict`; returns an instance of the saved class (every label
        model predicts from the same parameter format, so any of them loads any file)."""
        check_header(d)
        target = _REGISTRY.get(d.get("class", ""), None)
        if target is None:
            raise ValueError(
                f"unknown label model class {d.get('class')!r} in saved model; "
                f"known: {', '.join(sorted(_REGISTRY))}"
            )
        model = target(int(d["cardinality"]), config=LabelModelConfig.from_dict(d["config"]))
        model.params_ = params_from_dict(d["params"])
        names = d.get("lf_names")
        model.lf_names = tuple(names) if names is not None else None
        model.fit_info_ = dict(d.get("fit_info") or {})
        return model

    def save(self, path: str | Path) -> None:
        """Save as JSON (``.json`` or any other suffix) or as ``.npz`` (arrays + JSON metadata).

        Plain data only (no pickle), so loading a file never runs code.
        """
        write_model(self.to_dict(), self._fitted(), path)

    @_ClassOrInstanceMethod
    def load(self_or_cls: Any, path: str | Path) -> BaseLabelModel:
        """Load a model written by :meth:`save`.

        ``LabelModel.load(path)`` returns a new model (of the class the file was saved
        from); ``model.load(path)`` loads into ``model`` and returns it (Snorkel's usage):
        the file's cardinality, configuration and parameters replace the model's.
        """
        d = read_model(path)
        try:
            check_header(d)  # another format, or a newer one: its own words, with the file
        except ValueError as err:
            raise ValueError(f"cannot load the label model {str(path)!r}: {err}") from None
        try:
            loaded = (self_or_cls if isinstance(self_or_cls, type) else BaseLabelModel).from_dict(d)
        except (KeyError, TypeError, ValueError) as err:  # a damaged file, or one of another version
            detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"cannot load the label model {str(path)!r}: {detail}; pass a file LabelModel.save "
                             f"wrote (one a newer lakelabel saved needs that version)") from None
        if isinstance(self_or_cls, type):
            return loaded
        self_or_cls.__dict__.update(loaded.__dict__)
        return self_or_cls

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
        refuse_sparse(L, what)
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
            self._check_frame_names(L, what)
        try:
            return check_label_matrix(arr, self.cardinality)
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from err

    def _check_frame_names(self, L: Any, what: str) -> None:
        """A DataFrame's columns against the fitted LF names (when the fit had names: not numpy's lf_0, lf_1, ...)."""
        given, fitted = _frame_names(L), self.lf_names
        if given is None or fitted is None or given == fitted or fitted == tuple(f"lf_{j}" for j in range(len(fitted))):
            return
        if sorted(given) == sorted(fitted):
            raise ValueError(f"{what}'s columns are the fitted LFs in another order; pass {what}[list(model.lf_names)]")
        unknown, missing = [c for c in given if c not in fitted], [c for c in fitted if c not in given]
        raise ValueError(f"{what}'s columns {unknown} are not LFs of the fit, which also had {missing}; pass the "
                         f"columns of model.lf_names, in that order")

    def _consume_train_kwargs(self, kwargs: dict[str, Any], n_lfs: int | None = None) -> None:
        check_snorkel_train_kwargs(kwargs, n_lfs)
        if "seed" in kwargs:  # checked as the constructor's: int() made 1.5 seed 1, and "x" a bare int() error
            seed = kwargs.pop("seed")
            self.config = self.config.replace(seed=int(seed) if isinstance(seed, np.integer) else seed)
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


def _frame_names(L: Any) -> tuple[str, ...] | None:
    """The column names of a DataFrame ``L`` when they are strings (LF names), else None (numpy needs no pandas)."""
    columns = getattr(L, "columns", None)
    if columns is None or isinstance(L, np.ndarray):
        return None
    names = tuple(columns)
    return names if names and all(isinstance(c, str) for c in names) else None
