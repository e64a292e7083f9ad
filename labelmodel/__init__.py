"""Label models for lakelabel, fitted from sufficient statistics (numpy and scipy only).

``from labelmodel import LabelModel`` gives the default model; the estimators it chooses
among are exported too. Nothing here imports pyspark or torch.
"""

from __future__ import annotations

from ._base import ConvergenceWarning
from .config import LabelModelConfig
from .dawid_skene import DawidSkene
from .explain import Explanation, explain_votes
from .majority import MajorityLabelVoter, WeightedMajorityVoter
from .model import LabelModel, expected_accuracy, tie_shares
from .moments import MomentEstimator
from .stats import ABSTAIN, SufficientStats, check_label_matrix, stats_from_matrix
from .ties import TIE_BREAK_POLICIES, probs_to_preds, stable_row_hash

__all__ = [
    "ABSTAIN",
    "ConvergenceWarning",
    "DawidSkene",
    "Explanation",
    "LabelModel",
    "LabelModelConfig",
    "MajorityLabelVoter",
    "MomentEstimator",
    "SufficientStats",
    "TIE_BREAK_POLICIES",
    "WeightedMajorityVoter",
    "check_label_matrix",
    "expected_accuracy",
    "explain_votes",
    "probs_to_preds",
    "stable_row_hash",
    "stats_from_matrix",
    "tie_shares",
]
