"""Synthetic validation of the label models on generative models with known parameters.

The defaults of :class:`~labelmodel.config.LabelModelConfig` were chosen by principle and
checked here, not on any benchmark task. Each scenario draws, at random:

* 2 to 10 classes with balanced to strongly imbalanced class priors;
* 4 to 60 LFs, a mix of *unipolar* LFs (each votes one class, like keyword LFs) and
  *multipolar* LFs (vote any class, right with some accuracy);
* sub-topics: each class splits into sub-topics and a unipolar LF fires only on some of
  them, so LFs of a class are conditionally dependent (disjoint or overlapping);
* duplicated LF columns, LFs worse than random, and *broad* LFs that fire on 30-70% of
  rows with a precision near the base rate of the class they vote.

Every model is fitted on one sample without labels and scored on a second sample of the
same scenario (accuracy with random tie-breaks, in expectation). ``oracle`` is the
precision model with parameters measured on the gold labels of the training sample: the
ceiling for this model family.

Run ``python -m labelmodel.validation --scenarios 60 --rows 3000 --seed 11``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logit

from ._params import FittedParams
from .dawid_skene import DawidSkene
from .majority import MajorityLabelVoter, WeightedMajorityVoter
from .model import LabelModel, expected_accuracy
from .stats import stats_from_matrix

__all__ = ["Scenario", "random_scenario", "compare"]


@dataclass
class Scenario:
    """A generative model of ``(L, y)`` with known parameters."""

    class_balance: np.ndarray
    subtopic_weights: np.ndarray  # [k, S]
    lfs: list[dict] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.class_balance)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        k, S = self.k, self.subtopic_weights.shape[1]
        y = rng.choice(k, size=n, p=self.class_balance)
        cum = np.cumsum(self.subtopic_weights, axis=1)[y]
        sub = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), S - 1)
        cols = []
        for lf in self.lfs:
            v = np.full(n, -1, dtype=np.int64)
            if lf["kind"] == "unipolar":
                c = lf["cls"]
                hit = (y == c) & lf["triggers"][sub] & (rng.random(n) < lf["hit"])
                noise = (y != c) & (rng.random(n) < lf["noise"])
                v[hit | noise] = c
            elif lf["kind"] == "broad":
                c = lf["cls"]
                v[rng.random(n) < np.where(y == c, lf["on"], lf["off"])] = c
            else:
                fire = rng.random(n) < lf["coverage"]
                right = rng.random(n) < lf["accuracy"]
                wrong = (y + rng.integers(1, k, size=n)) % k
                v[fire] = np.where(right, y, wrong)[fire]
            cols.append(v)
        cols += [cols[d].copy() for d in self.duplicates]
        return np.stack(cols, axis=1), y


def random_scenario(rng: np.random.Generator) -> Scenario:
    k = int(rng.choice([2, 2, 3, 4, 6, 10]))
    m = int(rng.integers(max(4, k), 60))
    conc = float(rng.choice([0.3, 1.0, 5.0]))
    pi = rng.dirichlet(np.full(k, 3 * conc))
    pi = 0.02 / k + pi * 0.98
    S = int(rng.choice([1, 3, 8]))
    sub_w = rng.dirichlet(np.ones(S), size=k)
    frac_unipolar = float(rng.choice([0.0, 0.5, 1.0]))
    scale = float(rng.choice([0.02, 0.1, 0.3]))
    lfs: list[dict] = []
    for _ in range(m):
        if rng.random() < frac_unipolar:
            c = int(rng.integers(k))
            trig = rng.random(S) < max(1.0 / S, rng.uniform(0.2, 0.6))
            hit = min(0.95, scale * rng.uniform(0.5, 3) * (1 if S == 1 else S / max(1, trig.sum())))
            lfs.append(dict(kind="unipolar", cls=c, triggers=trig, hit=hit, precision=rng.uniform(0.45, 0.98)))
        else:
            lfs.append(dict(kind="multipolar", coverage=min(0.95, scale * rng.uniform(0.5, 3)),
                            accuracy=rng.uniform(max(1.0 / k + 0.05, 0.4), 0.95)))
    for _ in range(int(rng.choice([0, 0, 1, 2]))):  # LFs worse than random
        lf = lfs[int(rng.integers(m))]
        if lf["kind"] == "multipolar":
            lf["accuracy"] = rng.uniform(0.0, 1.0 / k)
        else:
            lf["precision"] = rng.uniform(0.0, 0.3) / k
    for lf in lfs:  # unipolar: false-fire rate that gives the drawn precision
        if lf["kind"] == "unipolar":
            c = lf["cls"]
            on = pi[c] * lf["hit"] * (sub_w[c] * lf["triggers"]).sum()
            lf["noise"] = min(0.9, on * (1 - lf["precision"]) / max(1e-9, lf["precision"]) / (1 - pi[c]))
    for _ in range(int(rng.choice([0, 0, 1, 2]))):  # broad LFs near the base rate
        c = int(rng.integers(k))
        rate = rng.uniform(0.3, 0.7)
        on = min(0.99, rate * rng.uniform(1.0, 1.5))
        lfs.append(dict(kind="broad", cls=c, on=on, off=max(0.0, (rate - pi[c] * on) / (1 - pi[c]))))
    dups = [int(d) for d in rng.integers(0, len(lfs), size=int(rng.choice([0, 0, 2, 5])))]
    return Scenario(pi, sub_w, lfs, dups)


def oracle(L: np.ndarray, y: np.ndarray, k: int) -> FittedParams:
    """The precision model with parameters measured on gold labels (a ceiling)."""
    n, m = L.shape
    r, j = np.nonzero(L != -1)
    v = L[r, j]
    right = np.bincount(j * k + v, weights=(v == y[r]).astype(float), minlength=m * k).reshape(m, k)
    votes = np.bincount(j * k + v, minlength=m * k).reshape(m, k)
    prec = np.clip((right + 0.7) / (votes + 1.0), 1e-3, 1 - 1e-3)
    pi = (np.bincount(y, minlength=k) + 1.0) / (n + k)
    W = logit(prec) - logit(pi)[None, :]
    return FittedParams(kind="bump", log_prior=np.log(pi), precision=prec, vote_rate=votes / n, weights=W)


DEFAULT_MODELS: dict[str, Callable[[int], object]] = {
    "majority": lambda k: MajorityLabelVoter(k),
    "weighted_majority": lambda k: WeightedMajorityVoter(k),
    "dawid_skene_full": lambda k: DawidSkene(k, parameterization="full"),
    "moments": lambda k: LabelModel(k, method="moments"),
    "LabelModel": lambda k: LabelModel(k),
}


def compare(n_scenarios: int = 60, n_rows: int = 3000, seed: int = 11,
            models: dict[str, Callable[[int], object]] | None = None) -> dict[str, np.ndarray]:
    """Expected test accuracy of each model (and the oracle) per scenario."""
    models = models or DEFAULT_MODELS
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {name: [] for name in [*models, "oracle"]}
    for _ in range(n_scenarios):
        sc = random_scenario(rng)
        k = sc.k
        L, y = sc.sample(n_rows, 1)
        Lt, yt = sc.sample(4000, 2)
        stats = stats_from_matrix(L, k)
        for name, make in models.items():
            model = make(k)
            try:
                model.fit_from_stats(stats)
                out[name].append(expected_accuracy(model.predict_proba(Lt), yt))
            except ValueError:  # e.g. full tables too large: score as majority vote
                out[name].append(out["majority"][-1] if out["majority"] else np.nan)
        out["oracle"].append(expected_accuracy(oracle(L, y, k).predict_proba(Lt), yt))
    return {k_: np.array(v) for k_, v in out.items()}


def report(results: dict[str, np.ndarray], baseline: str = "majority") -> str:
    base = results[baseline]
    lines = [f"{'model':18s} {'mean acc':>9s} {'vs MV':>7s} {'worst':>7s} {'wins':>5s} {'losses':>6s}"]
    for name, acc in results.items():
        d = acc - base
        lines.append(f"{name:18s} {100 * acc.mean():9.2f} {100 * d.mean():+7.2f} {100 * d.min():+7.2f} "
                     f"{np.mean(d > 1e-3):5.2f} {np.mean(d < -1e-3):6.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", type=int, default=60)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    print(report(compare(args.scenarios, args.rows, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
