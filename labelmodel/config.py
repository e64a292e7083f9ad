"""Configuration of the label model, the object the pipeline's YAML maps onto."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._inputs import BALANCE_SUM_TOLERANCE
from .ties import TIE_BREAK_POLICIES

__all__ = ["LabelModelConfig", "METHODS"]

Method = Literal["auto", "dawid_skene", "confusion", "moments", "majority", "weighted_majority"]
METHODS: tuple[str, ...] = ("auto", "dawid_skene", "confusion", "moments", "majority", "weighted_majority")
PARAMETERIZATIONS: tuple[str, ...] = ("precision", "full")
EM_CLASS_BALANCES: tuple[str, ...] = ("estimate", "uniform")


@dataclass(frozen=True)
class LabelModelConfig:
    """Settings of :class:`labelmodel.LabelModel`; every field has a principled default.

    Attributes
    ----------
    method : {"auto", "dawid_skene", "confusion", "moments", "majority", "weighted_majority"}
        ``"auto"`` (default): the confusion model (:mod:`labelmodel.confusion`) when at
        least ``confusion_vote_share`` of the votes come from LFs that vote several
        classes (crowd workers), else the precision EM over vote patterns when the
        statistics carry them, the moment estimator otherwise; majority vote when fewer
        than three LFs overlap. With ``L_dev``/``Y_dev``, the dev rows enter EM as labeled
        rows when a cross-fitted check shows a gain beyond noise (``fit_info_["dev_use"]``).
    parameterization : {"precision", "full"}
        For ``dawid_skene``: ``"precision"`` (default) learns, per LF and voted class,
        the probability that the vote is right, and treats abstaining as uninformative;
        ``"full"`` is classic Dawid-Skene with a full ``P(vote | class)`` table per LF,
        abstain included (many parameters; overfits unipolar LFs).
    seed : int
        Seeds the ``"random"`` tie-break hash. Fitting itself is deterministic.
    max_iter : int
        EM iterations at most.
    tol : float
        EM stops when no parameter moves by more than ``tol``.
    prior_strength : float
        Strength of the Beta prior on each LF's precision (per voted class), as a fraction
        of the training rows: the prior is worth ``prior_strength * n_rows`` votes, so an
        LF that votes on that share of the rows is estimated halfway between the prior
        and the data. Agreement between LFs is not gold: estimates from it carry a bias
        that does not shrink with more rows, so the prior scales with the data.
    prior_precision : float
        Prior precision of a vote (0.8: the median LF precision in the WRENCH benchmark).
        For a frequent class it is raised so the vote still beats the class's base rate by
        ``logit(prior_precision) - logit(1/k)`` in log-odds.
    class_evidence_floor : float
        The one assumption that makes the problem identifiable: the LFs that vote a class
        are, taken together, evidence for it. EM keeps the vote-weighted mean weight of each
        class's votes at or above this fraction of the prior's weight (individual LFs can
        still go below zero, i.e. be recognized as no better than their class's base rate,
        unless ``better_than_chance`` holds their lone vote above chance). Without it, with
        LFs that each vote one class, EM can settle on "every LF of class c is wrong".
    better_than_chance : bool
        Precision model: every LF is assumed better than chance (``True``, default; as
        Snorkel assumes): a vote alone on a row makes its class the most probable, so EM
        keeps each vote's weight at or above that bound (``fit_info_["held_at_chance"]``
        names the votes it held there); a given class balance scores the rows instead of
        EM's estimate, and the bound is applied again against it. Without it, a broad LF of one class whose rows
        shared with other LFs are mostly the other class's is estimated below chance, and
        every row it votes on alone goes to the other class (issue 8). ``False`` lets EM
        call an LF worse than chance (for LFs written to be adversarial).
    abstain_evidence : bool
        Precision model only, at prediction (EM is unchanged): ``True`` counts every
        abstain as evidence, with the probability ``P(LF j abstains | y)`` that the fitted
        precisions and vote rates imply (one minus the LF's chance of voting on a class-``y``
        row), and scores every row, voted or not, with EM's class balance (so
        ``class_balance_trust`` does not apply). Rows no LF votes on then lean toward the
        classes the LFs cover least. ``False`` (default, chosen leave-one-task-out in issue
        8): abstaining is uninformative. Inside EM the same evidence makes it collapse on
        one-class LFs, so it is never used there. Needs an ``[m, k+1, k]`` table (at most
        50M cells).
    class_smoothing : float
        Dirichlet pseudo-count per class for the estimated class balance.
    class_balance_trust : float
        Precision model only: the class prior of the rows no LF votes on is EM's estimated
        balance raised to this power and renormalized (1: the estimate, 0 (default): uniform,
        as Snorkel's default). The precision model treats abstaining as uninformative, so its
        balance is identified from the covered rows only and is wrong for the rows no LF
        votes on when LFs cover classes unequally (chosen leave-one-task-out in issue 8: 0
        over 0.5 and 1). Rows with a vote are scored with the estimate itself (the weights
        are likelihood ratios against it). Unused when ``class_balance`` (or ``Y_dev``
        without ``L_dev``) is given, or with ``em_class_balance="uniform"``.
    em_class_balance : {"estimate", "uniform"}
        Precision model, when no class balance is known: ``"estimate"`` (default) lets EM
        estimate it; ``"uniform"`` holds it at uniform inside EM and scores every row with
        it (as Snorkel's ``LabelModel`` does). With LFs that each vote one class, the
        balance and the precisions are confounded, and the estimate partly corrects EM's
        over-trust of the LFs that cover more of their class; uniform measured 1.5 to 4.4
        points worse over ``labelmodel.validation``'s random scenarios and better for the F1
        of a rare class and for LFs that depend on each other (issue 8, session 16; see
        ``labelmodel/README.md``). A known balance (``class_balance``, or ``Y_dev`` without
        ``L_dev``) scores the rows and EM estimates its own under either setting (with
        ``L_dev`` the dev balance is not imposed, so ``"uniform"`` holds uniform);
        ``abstain_evidence`` needs EM's estimate. Under ``"uniform"``,
        ``estimated_class_balance_`` is the class share of the posteriors, and
        ``fit_info_["em_class_balance"]`` says ``"uniform"`` when EM held it, or why it went
        unused (the confusion route and the full parameterization have no such balance).
    confusion_vote_share : float
        ``"auto"`` uses the confusion model when this share of the votes (or more) is cast
        by LFs that vote at least two classes (chosen leave-one-task-out, see
        ``benchmarks/bench_quality.py``).
    confusion_prior_strength : float
        Pseudo-votes of the Dirichlet prior on each confusion row of the confusion model.
    confusion_prior_accuracy : float
        Share of those pseudo-votes on the diagonal ("a vote is right").
    confusion_prior_pooling : float
        Share of those pseudo-votes centred on the pooled confusion matrix of all LFs
        (hierarchical prior) instead of on the diagonal prior.
    confusion_class_shrink : float
        The confusion model's class balance is shrunk toward uniform by this many
        pseudo-rows per training row.
    merge_duplicates : bool
        Fit identical LF columns once and split their weight between the copies.
    tie_break_policy : {"abstain", "random", "first", "true-random"}
        Default policy of :meth:`LabelModel.predict` (see :mod:`labelmodel.ties`).
    label_unvoted : bool
        ``False`` (default): :meth:`LabelModel.predict` labels rows on which every LF
        abstained ``-1`` (their probabilities are still the class prior). ``True``: they
        get the prior's most likely class, ties broken by the policy (as Snorkel).
    max_patterns : int
        The largest distinct-pattern table EM will use; above it ``"auto"`` uses moments.
    class_balance : sequence of float, optional
        Known class proportions (one per class, summing to 1). Used as if passed to
        ``fit(class_balance=...)`` when no ``class_balance`` or ``Y_dev`` is given there.
    """

    method: Method = "auto"
    parameterization: Literal["precision", "full"] = "precision"
    seed: int = 0
    max_iter: int = 500
    tol: float = 1e-6
    prior_strength: float = 0.025
    prior_precision: float = 0.8
    class_evidence_floor: float = 0.5
    better_than_chance: bool = True
    abstain_evidence: bool = False
    class_smoothing: float = 1.0
    class_balance_trust: float = 0.0
    em_class_balance: Literal["estimate", "uniform"] = "estimate"
    confusion_vote_share: float = 0.5
    confusion_prior_strength: float = 2.0
    confusion_prior_accuracy: float = 0.7
    confusion_prior_pooling: float = 1.0
    confusion_class_shrink: float = 0.0
    merge_duplicates: bool = True
    tie_break_policy: Literal["abstain", "random", "first", "true-random"] = "abstain"
    label_unvoted: bool = False
    max_patterns: int = 5_000_000
    class_balance: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.class_balance is not None:
            try:
                balance = tuple(float(p) for p in self.class_balance)
            except (TypeError, ValueError):
                raise ValueError(f"class_balance must be a list of numbers, got {self.class_balance!r}") from None
            if any(p <= 0 for p in balance) or abs(sum(balance) - 1.0) > BALANCE_SUM_TOLERANCE:
                raise ValueError(f"class_balance must be proportions (each above 0) that sum to 1 (within 0.01), "
                                 f"got {list(balance)}")
            total = sum(balance)  # rounded proportions are renormalized, as LabelModel.fit does
            object.__setattr__(self, "class_balance", tuple(p / total for p in balance))
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"unknown parameterization {self.parameterization!r}; "
                f"use one of {', '.join(PARAMETERIZATIONS)}"
            )
        if self.tie_break_policy not in TIE_BREAK_POLICIES:
            raise ValueError(
                f"unknown tie_break_policy {self.tie_break_policy!r}; "
                f"use one of {', '.join(TIE_BREAK_POLICIES)}"
            )
        if not isinstance(self.better_than_chance, bool):
            raise ValueError(f"better_than_chance must be true or false, got {self.better_than_chance!r}")
        if not isinstance(self.abstain_evidence, bool):
            raise ValueError(f"abstain_evidence must be true or false, got {self.abstain_evidence!r}")
        if self.em_class_balance not in EM_CLASS_BALANCES:
            raise ValueError(f"unknown em_class_balance {self.em_class_balance!r}; "
                             f"use one of {', '.join(EM_CLASS_BALANCES)}")
        if not isinstance(self.label_unvoted, bool):
            raise ValueError(f"label_unvoted must be true or false, got {self.label_unvoted!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")
        if not self.tol > 0:
            raise ValueError(f"tol must be > 0, got {self.tol!r}")
        if not self.prior_strength >= 0:
            raise ValueError(f"prior_strength must be >= 0, got {self.prior_strength!r}")
        if not 0.0 < self.prior_precision < 1.0:
            raise ValueError(f"prior_precision must be in (0, 1), got {self.prior_precision!r}")
        if not self.class_evidence_floor >= 0:
            raise ValueError(f"class_evidence_floor must be >= 0, got {self.class_evidence_floor!r}")
        if not 0.0 <= self.class_balance_trust <= 1.0:
            raise ValueError(f"class_balance_trust must be in [0, 1], got {self.class_balance_trust!r}")
        if not 0.0 <= self.confusion_vote_share <= 1.0:
            raise ValueError(f"confusion_vote_share must be in [0, 1], got {self.confusion_vote_share!r}")
        if not self.confusion_prior_strength >= 0:
            raise ValueError(f"confusion_prior_strength must be >= 0, got {self.confusion_prior_strength!r}")
        if not 0.0 < self.confusion_prior_accuracy < 1.0:
            raise ValueError(f"confusion_prior_accuracy must be in (0, 1), got {self.confusion_prior_accuracy!r}")
        if not 0.0 <= self.confusion_prior_pooling <= 1.0:
            raise ValueError(f"confusion_prior_pooling must be in [0, 1], got {self.confusion_prior_pooling!r}")
        if not self.confusion_class_shrink >= 0:
            raise ValueError(f"confusion_class_shrink must be >= 0, got {self.confusion_class_shrink!r}")
        if not self.class_smoothing >= 0:
            raise ValueError(f"class_smoothing must be >= 0, got {self.class_smoothing!r}")
        if not (isinstance(self.max_patterns, int) and self.max_patterns >= 1):
            raise ValueError(f"max_patterns must be a positive int, got {self.max_patterns!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> LabelModelConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys are an error."""
        d = dict(d or {})
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown label model config key(s) {unknown}; valid keys: {', '.join(valid)}"
            )
        defaults = cls()
        for name, value in d.items():  # a number field given text (a YAML typo, --set tol=abc)
            default = getattr(defaults, name)
            if isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(value, str):
                try:
                    d[name] = type(default)(value)
                except ValueError:
                    raise ValueError(f"{name} must be a number, got {value!r}") from None
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Every field, except those added after saved models existed (``WRITTEN_WHEN_SET``) while
        they hold their default: a model saved before them keeps its hash (``lakelabel verify``
        rebuilds its run), a run keeps its settings fingerprint, and earlier versions of this
        package still load a model saved with the defaults."""
        d = dataclasses.asdict(self)
        for key in WRITTEN_WHEN_SET:
            if d[key] == _DEFAULTS[key]:
                del d[key]
        return d

    def replace(self, **changes: Any) -> LabelModelConfig:
        return dataclasses.replace(self, **changes)


# Fields added after models were first saved (session 16), written only when set.
WRITTEN_WHEN_SET: tuple[str, ...] = ("em_class_balance",)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(LabelModelConfig)}
