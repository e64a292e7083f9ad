"""crowd-kit aggregators as benchmark methods (Dawid-Skene, GLAD, MACE, one-coin DS).

crowd-kit aggregates transductively: it sees the items it labels. Each method is therefore
fitted on the train and test votes together (items keyed by id, so an item present in both
splits counts once), without any gold label, and scored on the test items. Items with no
vote get no crowd-kit answer; they are given uniform probabilities (a tie over every class).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

CROWDKIT_METHODS = ("DawidSkene", "GLAD", "MACE", "OneCoinDawidSkene")
LABELS = {"DawidSkene": "crowd-kit DS", "GLAD": "crowd-kit GLAD", "MACE": "crowd-kit MACE",
          "OneCoinDawidSkene": "crowd-kit 1-coin DS"}


def crowdkit_available() -> bool:
    try:
        importlib.import_module("crowdkit.aggregation")
    except ImportError:
        return False
    return True


def _long_frame(ids: list[str], L: np.ndarray) -> Any:
    import pandas as pd

    rows, cols = np.nonzero(L != -1)
    return pd.DataFrame({"task": np.asarray(ids, dtype=object)[rows], "worker": cols, "label": L[rows, cols]})


def crowdkit_proba(name: str, train_ids: list[str], L_train: np.ndarray, test_ids: list[str],
                   L_test: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fit crowd-kit's ``name`` on the union of train and test items; probabilities of the test items."""
    import pandas as pd
    from crowdkit import aggregation

    seen: dict[str, int] = {}
    ids, blocks = [], []
    for split_ids, L in ((train_ids, L_train), (test_ids, L_test)):
        keep = [i for i, t in enumerate(split_ids) if t not in seen]
        for i in keep:
            seen[split_ids[i]] = len(seen)
        ids += [split_ids[i] for i in keep]
        blocks.append(L[keep])
    data = _long_frame(ids, np.vstack(blocks))
    kw: dict[str, Any] = {"random_state": seed} if name == "MACE" else {}
    model = getattr(aggregation, name)(**kw)
    probs = model.fit_predict_proba(data)
    out = pd.DataFrame(1.0 / k, index=pd.Index(test_ids, dtype=object), columns=range(k))
    got = probs.reindex(columns=range(k), fill_value=0.0)
    common = out.index.intersection(got.index)
    out.loc[common] = got.loc[common].to_numpy(dtype=np.float64)
    return out.to_numpy(dtype=np.float64)
