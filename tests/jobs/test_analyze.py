"""``lakelabel analyze``: every statistic recomputed with pandas/numpy from the Delta tables of a real run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs import analyze
from labelmodel import LabelModel
from lf_library.errors import ConfigError, InputDataError
from tests.jobs._analysis_run import EXAMPLES, SLICES

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def run(analyzed_run):
    cfg, _, summary, doc = analyzed_run
    return cfg, summary, doc


@pytest.fixture(scope="module")
def truth(run):
    """The same rows as plain arrays: label matrix, gold, probabilities, labels, slice masks."""
    cfg, _, doc = run
    source = pd.read_parquet(cfg.source.path).sort_values("id").reset_index(drop=True)
    votes = DeltaTable(cfg.table_path("votes")).to_pandas()
    labels = DeltaTable(cfg.table_path("labels")).to_pandas().set_index("row_id").loc[source["id"]]
    names = doc["lfs"] and [lf["name"] for lf in doc["lfs"]]
    space = doc["label_space"]
    index = {rid: i for i, rid in enumerate(source["id"])}
    L = np.full((len(source), len(names)), -1)
    for r in votes[votes["vote"] >= 0].itertuples():
        L[index[r.row_id], names.index(r.lf_name)] = r.vote
    gold = source["gold"].map({c: i for i, c in enumerate(space)}).fillna(-1).astype(int).to_numpy()
    probs = np.stack(labels["probabilities"].to_numpy())
    label = labels["label"].fillna(-1).astype(int).to_numpy()
    text = source["text"]
    slices = {
        "exclaims": text.str.contains(r"!{2,}").to_numpy(),
        "few_stars": (source["stars"].fillna(99) <= 2).to_numpy(),
        "has_love": text.str.lower().str.contains(r"\blove\b").to_numpy(),
        "long_text": (text.str.len() > 15).to_numpy(),
    }
    return {"source": source, "votes": votes, "L": L, "gold": gold, "probs": probs, "label": label,
            "names": names, "space": space, "slices": slices, "k": len(space), "conf": labels["confidence"].to_numpy()}


def shares(p: np.ndarray) -> np.ndarray:
    """Ties split evenly (within 1e-5 of the top), written out independently of labelmodel."""
    top = p.max(axis=1, keepdims=True)
    tied = (p >= top - 1e-5).astype(float)
    return tied / tied.sum(axis=1, keepdims=True)


def mv_probs(L: np.ndarray, k: int) -> np.ndarray:
    counts = np.stack([(L == c).sum(axis=1) for c in range(k)], axis=1).astype(float)
    return counts  # shares() of raw counts: most-voted classes tie; no votes -> all k tie


def acc(sh: np.ndarray, gold: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    m = (gold >= 0) if mask is None else (gold >= 0) & mask
    return float(sh[m, gold[m]].mean()) if m.any() else None


def test_totals_confusion_and_classes(run, truth):
    _, summary, doc = run
    L, gold, k = truth["L"], truth["gold"], truth["k"]
    n_votes = (L >= 0).sum(axis=1)
    n_classes = np.array([len(set(r[r >= 0])) for r in L])
    t = doc["totals"]
    assert (t["rows"], t["covered"], t["overlapped"], t["conflicted"]) == (
        len(L), int((n_votes > 0).sum()), int((n_votes >= 2).sum()), int((n_classes >= 2).sum()))
    assert t["gold_rows"] == int((gold >= 0).sum()) < len(L)
    lm, mv = shares(truth["probs"]), shares(mv_probs(L, k))
    assert t["lm_accuracy"] == pytest.approx(acc(lm, gold))
    assert t["mv_accuracy"] == pytest.approx(acc(mv, gold))
    assert t["lm_accuracy_covered"] == pytest.approx(acc(lm, gold, n_votes > 0))
    assert t["mv_accuracy_covered"] == pytest.approx(acc(mv, gold, n_votes > 0))
    for key, sh in (("lm", lm), ("mv", mv)):
        want = [[float(sh[gold == g, p].sum()) for p in range(k)] for g in range(k)]
        assert np.allclose(doc["confusion"][key], want), key
    counts = np.stack([(L == c).sum(axis=1) for c in range(k)], axis=1)
    unique_top = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) == 1
    mv_label = np.where(unique_top & (counts.max(axis=1) > 0), counts.argmax(axis=1), -1)
    for c, row in enumerate(doc["classes"]):
        assert row["class"] == truth["space"][c]
        assert row["lf_coverage"] == int((L == c).any(axis=1).sum())
        assert row["lf_votes"] == int((L == c).sum())
        assert row["lm_labels"] == int((truth["label"] == c).sum())
        assert row["mv_labels"] == int((mv_label == c).sum())
        assert row["gold"] == int((gold == c).sum())
    assert summary["counts"] == {"rows": len(L), "covered": t["covered"], "gold": t["gold_rows"],
                                 "lfs": len(truth["names"]), "slices": len(SLICES)}


def test_per_lf_statistics(run, truth):
    cfg, _, doc = run
    L, gold, label, k, n = truth["L"], truth["gold"], truth["label"], truth["k"], len(truth["L"])
    model = LabelModel.load(doc["label_model"]["path"])
    est = model.estimated_accuracies()
    errors = truth["votes"].groupby("lf_name")["error"].count()
    for j, lf in enumerate(doc["lfs"]):
        v = L[:, j]
        voted = v >= 0
        others = np.delete(L, j, axis=1)
        overlap = voted & (others >= 0).any(axis=1)
        conflict = voted & ((others >= 0) & (others != v[:, None])).any(axis=1)
        assert lf["votes"] == int(voted.sum())
        assert lf["coverage"] == pytest.approx(voted.mean())
        assert lf["overlaps"] == pytest.approx(overlap.mean())
        assert lf["conflicts"] == pytest.approx(conflict.sum() / n)
        assert lf["votes_per_class"] == {truth["space"][c]: int((v == c).sum()) for c in range(k)}
        assert lf["polarity"] == [truth["space"][c] for c in sorted(set(v[voted]))]
        assert lf["errors"] == int(errors.get(lf["name"], 0))
        on_gold = voted & (gold >= 0)
        assert lf["gold_votes"] == int(on_gold.sum())
        assert lf["gold_correct"] == int((v[on_gold] == gold[on_gold]).sum())
        if on_gold.any():
            p, m = lf["gold_correct"] / lf["gold_votes"], lf["gold_votes"]
            assert lf["gold_accuracy"] == pytest.approx(p)
            lo, hi = lf["gold_accuracy_ci95"]
            assert lo <= p <= hi
            z = 1.959964  # Wilson bounds solve (p - b)^2 = z^2 b (1 - b) / m
            for b in (lo, hi):
                if 0 < b < 1:
                    assert (p - b) ** 2 == pytest.approx(z * z * b * (1 - b) / m, rel=1e-6)
        labeled = voted & (label >= 0)
        assert lf["lm_agreement"] == pytest.approx((v[labeled] == label[labeled]).mean())
        assert lf["estimated_accuracy"] == pytest.approx(est[j])
        assert lf["weight"] is not None and np.isfinite(lf["weight"])
        assert lf["version"] == truth["votes"].loc[truth["votes"]["lf_name"] == lf["name"], "lf_version"].iloc[0]


def test_lf_statistics_are_the_same_on_the_driver_and_on_spark(spark):
    """Up to aggregate.max_patterns the pattern table is collected and counted in numpy; past it, on Spark."""
    from jobs.analysis import stats

    rng = np.random.default_rng(7)
    m, k = 5, 3
    L = rng.integers(-1, k, size=(400, m))
    L[:, 3] = np.where(rng.random(400) < 0.9, -1, 1)  # one class only, rarely
    L[:, 4] = -1  # never votes
    gold = rng.integers(-1, k, size=400)
    label = np.where(rng.random(400) < 0.2, -1, rng.integers(0, k, size=400))
    rows = pd.DataFrame({"pattern": [[j * k + int(v) for j, v in enumerate(line) if v >= 0] for line in L],
                         "gold": gold, "label": label})
    patterns = rows.groupby(rows["pattern"].map(tuple).rename("p")).size()  # a few rows stand for many
    table = rows.assign(p=rows["pattern"].map(tuple)).groupby(["p", "gold", "label"]).size().reset_index(name="n")
    assert len(table) < len(rows) and len(patterns) > 1
    frame = spark.createDataFrame(
        [(list(p), int(g), int(lab), int(n)) for p, g, lab, n in table.itertuples(index=False)],
        "pattern array<int>, gold int, label int, n long")
    names = [f"lf_{j}" for j in range(m)]
    kw = dict(versions={n: "v1" for n in names}, kinds={}, errors={"lf_1": 2}, top_pairs=3)
    local = stats.lf_statistics(frame, names, ["a", "b", "c"], max_patterns=len(table), **kw)
    on_spark = stats.lf_statistics(frame, names, ["a", "b", "c"], max_patterns=0, **kw)
    assert local == on_spark
    lfs, _, class_cov = local
    assert [lf["votes"] for lf in lfs] == [int((L[:, j] >= 0).sum()) for j in range(m)]
    assert lfs[0]["gold_correct"] == int(((L[:, 0] == gold) & (L[:, 0] >= 0)).sum())
    assert lfs[2]["lm_agreement"] == pytest.approx(((L[:, 2] == label) & (L[:, 2] >= 0)).sum()
                                                   / ((L[:, 2] >= 0) & (label >= 0)).sum())
    assert lfs[4]["lm_agreement"] is None and lfs[4]["gold_votes"] == 0
    assert class_cov == {c: int((L == c).any(axis=1).sum()) for c in range(k)}


def test_pairs(run, truth):
    _, _, doc = run
    L, names = truth["L"], truth["names"]
    pairs = doc["pairs"]
    m = len(names)
    for a in range(m):
        for b in range(m):
            if a == b:
                continue
            both = (L[:, a] >= 0) & (L[:, b] >= 0)
            conflict = both & (L[:, a] != L[:, b])
            assert pairs["overlap_matrix"][a][b] == int(both.sum())
            assert pairs["conflict_matrix"][a][b] == int(conflict.sum())
    listed = pairs["most_conflicting"]
    assert [p["conflict"] for p in listed] == sorted((p["conflict"] for p in listed), reverse=True)
    best = max(int(((L[:, a] >= 0) & (L[:, b] >= 0) & (L[:, a] != L[:, b])).sum())
               for a in range(m) for b in range(a + 1, m))
    assert listed[0]["conflict"] == best > 0
    for p in listed + pairs["most_redundant"]:
        a, b = names.index(p["a"]), names.index(p["b"])
        both = (L[:, a] >= 0) & (L[:, b] >= 0)
        assert (p["overlap"], p["agree"]) == (int(both.sum()), int((both & (L[:, a] == L[:, b])).sum()))
        assert p["agreement_rate"] + p["conflict_rate"] == pytest.approx(1.0)


def test_slices_coverage_gaps_and_histogram(run, truth):
    _, _, doc = run
    L, gold, k = truth["L"], truth["gold"], truth["k"]
    covered = (L >= 0).any(axis=1)
    lm, mv = shares(truth["probs"]), shares(mv_probs(L, k))
    assert [s["name"] for s in doc["slices"]] == SLICES
    assert {s["name"]: s["kind"] for s in doc["slices"]} == {"exclaims": "regex", "few_stars": "sql",
                                                               "has_love": "keyword", "long_text": "python"}
    for s in doc["slices"]:
        mask = truth["slices"][s["name"]]
        assert mask.any(), s["name"]
        assert s["size"] == int(mask.sum())
        assert s["coverage"] == pytest.approx(covered[mask].mean())
        assert s["uncovered"] == int((mask & ~covered).sum())
        assert s["gold_rows"] == int((mask & (gold >= 0)).sum())
        assert s["lm_accuracy"] == pytest.approx(acc(lm, gold, mask))
        assert s["mv_accuracy"] == pytest.approx(acc(mv, gold, mask))
        want = {"(abstain)": int((mask & (truth["label"] == -1)).sum())}
        want.update({c: int((mask & (truth["label"] == i)).sum()) for i, c in enumerate(truth["space"])})
        assert s["labels"] == want
        assert len(s["version"]) == 12
    gaps = doc["coverage_gaps"]
    assert gaps["uncovered"] == int((~covered).sum()) > 0
    stars = truth["source"]["stars"].astype("string").fillna("<null>")
    want = pd.DataFrame({"value": stars, "unc": ~covered}).groupby("value")["unc"].agg(["size", "sum"])
    got = {("<null>" if r["value"] is None else r["value"]): (r["rows"], r["uncovered"])
           for r in gaps["by_column"]["stars"]}
    assert got == {v: (int(r["size"]), int(r["sum"])) for v, r in want.iterrows()}
    hist = doc["confidence_histogram"]
    assert [h["rows"] for h in hist] == np.histogram(truth["conf"], bins=10, range=(0, 1))[0].tolist()
    right = (gold >= 0) & (truth["label"] == gold)
    assert [h["correct"] for h in hist] == np.histogram(truth["conf"][right], bins=10, range=(0, 1))[0].tolist()


def test_error_buckets(run, truth):
    _, _, doc = run
    L, gold, label, conf = truth["L"], truth["gold"], truth["label"], truth["conf"]
    ids = truth["source"]["id"].to_numpy()
    n_votes, names, space = (L >= 0).sum(axis=1), truth["names"], truth["space"]
    n_classes = np.array([len(set(r[r >= 0])) for r in L])
    buckets = {b["name"]: b for b in doc["buckets"]}
    lm_wrong = (gold >= 0) & (label >= 0) & (label != gold)
    masks = {"lm_wrong": lm_wrong, "conflict": n_classes >= 2, "uncovered": n_votes == 0,
             "low_confidence": (n_votes > 0) & (conf < 0.5)}
    worst = sorted((lf for lf in doc["lfs"] if lf["gold_accuracy"] is not None),
                   key=lambda lf: (lf["gold_accuracy"], lf["name"]))[:2]
    for lf in worst:
        j = names.index(lf["name"])
        masks[f"lf_wrong:{lf['name']}"] = (gold >= 0) & (L[:, j] >= 0) & (L[:, j] != gold)
    assert list(buckets) == ["lm_wrong", *[f"lf_wrong:{lf['name']}" for lf in worst], "conflict", "low_confidence",
                             "uncovered"]
    for name, mask in masks.items():
        b = buckets[name]
        assert b["rows"] == int(mask.sum()), name
        shown = [ids.tolist().index(e["id"]) for e in b["examples"]]
        pool = mask if name != "low_confidence" else n_votes > 0
        assert len(shown) == min(EXAMPLES, int(pool.sum())) and all(pool[i] for i in shown), name
        for e, i in zip(b["examples"], shown):
            assert e["votes"] == [f"{names[j]}={space[L[i, j]]}" for j in range(len(names)) if L[i, j] >= 0]
            assert e["gold"] == (space[gold[i]] if gold[i] >= 0 else None)
            assert e["label"] == (space[label[i]] if label[i] >= 0 else None)
            assert e["columns"]["text"] == truth["source"]["text"][i]
            assert e["probabilities"] == {c: round(float(truth["probs"][i, ci]), 4) for ci, c in enumerate(space)}
    top = sorted(conf[lm_wrong], reverse=True)[:EXAMPLES]  # most confident mistakes first
    assert [e["confidence"] for e in buckets["lm_wrong"]["examples"]] == pytest.approx(top)
    low = sorted(conf[n_votes > 0])[:EXAMPLES]
    assert [e["confidence"] for e in buckets["low_confidence"]["examples"]] == pytest.approx(low)


def test_document_is_in_the_run_folder_and_in_mlflow(run):
    from mlflow import MlflowClient

    cfg, summary, doc = run
    assert summary["run_id"] == doc["run_id"] == "an-1" and summary["stage"] == "analyze"
    assert Path(summary["analysis"]) == cfg.lakehouse_path / "_lakelabel" / "runs" / "an-1" / "analysis.json"
    assert doc["tables"]["labels"]["version"] == DeltaTable(cfg.table_path("labels")).version()
    client = MlflowClient(tracking_uri=summary["mlflow"]["tracking_uri"])
    mlrun = client.get_run(summary["mlflow"]["run_id"])
    assert mlrun.data.tags["lakelabel.run_id"] == "an-1"
    assert "analysis/analysis.json" in [f.path for f in client.list_artifacts(mlrun.info.run_id, "analysis")]
    assert mlrun.data.metrics["analysis.lm_accuracy"] == pytest.approx(doc["totals"]["lm_accuracy"])


def test_term_counts_of_the_keyword_lfs(spark, run, truth):
    """Each keyword's rows, sole rows, gold and label agreement, recounted with Python's re on the source."""
    _, _, doc = run
    section = doc["terms"]
    assert section["skipped"] == [] and [e["lf"] for e in section["lfs"]] == ["bad_words", "good_words"]
    space, gold, label = truth["space"], truth["gold"], truth["label"]
    for entry, cls, words in [(section["lfs"][0], "neg", ["awful", "hate"]),
                              (section["lfs"][1], "pos", ["great", "love"])]:
        hits = {w: truth["source"]["text"].str.contains(rf"(?i)(?<!\w){w}(?!\w)").to_numpy() for w in words}
        n_hit = sum(h.astype(int) for h in hits.values())
        expected = []
        for w in words:
            h, c = hits[w], space.index(cls)
            if h.any():
                expected.append({"term": w, "class": cls, "rows": int(h.sum()), "sole": int((h & (n_hit == 1)).sum()),
                                 "gold_rows": int((h & (gold >= 0)).sum()),
                                 "gold_correct": int((h & (gold == c)).sum()),
                                 "label_agree": int((h & (label == c)).sum())})
        expected.sort(key=lambda e: (-e["rows"], e["term"]))
        got = [{k: v for k, v in t.items() if k != "gold_precision"} for t in entry["top"]]
        assert got == expected and entry["n_terms"] == 2 and entry["kind"] == "keyword"
        assert entry["dead"] == [w for w in words if not hits[w].any()] and entry["n_dead"] == len(entry["dead"])
        for t in entry["top"]:
            assert t["gold_precision"] == pytest.approx(t["gold_correct"] / t["gold_rows"])

    from dataclasses import replace

    cfg, _, _ = run
    assert analyze.analyze(spark, replace(cfg, analysis=replace(cfg.analysis, top_terms=0)))["terms"] is None
    # The LF modules are needed for the term counts only: analyze on a machine without them still works.
    gone = replace(cfg, lfs=replace(cfg.lfs, modules=["tests.jobs.no_such_lfs"]))
    skipped = analyze.analyze(spark, gone)["terms"]
    assert skipped["lfs"] == [] and "the LFs could not be loaded" in skipped["skipped"][0]["reason"]


def test_bad_inputs_name_the_problem(spark, run):
    cfg, _, _ = run
    # A typo has nothing to write labels from: no `lakelabel write --run-id nope` advice
    with pytest.raises(ConfigError, match=r"run 'nope' is not a run under .* \(no run folder\): .*holds the labels of "
                                          r"run 'an-1'; analyze run 'an-1', or check the id \(the run folders are in "
                                          r".*_lakelabel/runs\)$"):
        analyze.analyze(spark, cfg, run_id="nope")
    (cfg.lakehouse_path / "_lakelabel" / "runs" / "applied-only").mkdir()  # as `lakelabel apply --run-id` leaves it
    with pytest.raises(ConfigError, match=r"run 'applied-only' wrote no labels: .* run `lakelabel write --run-id "
                                          r"applied-only`"):
        analyze.analyze(spark, cfg, run_id="applied-only")
    from dataclasses import replace

    from jobs.runtime.config import SlicesConfig

    broken = replace(cfg, slices=SlicesConfig(modules=["tests.jobs.broken_slices"]))
    with pytest.raises(ConfigError, match=r"slice module 'tests.jobs.broken_slices' \(slices.modules\) failed to "
                                          r"import: RuntimeError: this slice module is broken on purpose"):
        analyze.analyze(spark, broken)
    missing = replace(cfg, slices=SlicesConfig(modules=["tests.jobs.no_such_slices"]))
    with pytest.raises(ConfigError, match=r"slice module 'tests.jobs.no_such_slices'.*ModuleNotFoundError"):
        analyze.analyze(spark, missing)
    absent = replace(cfg, slices=SlicesConfig(modules=["tests.jobs.missing_column_slices"]))
    with pytest.raises(ConfigError, match=r"^slice 'love_in_title' reads column\(s\) \['title'\], not in \S+ \(its "
                                          r"columns are: .*\); fix the slice's fields="):
        analyze.analyze(spark, absent)
    with pytest.raises(ConfigError, match=r"^slice 'love_in_title' reads column\(s\) \['title'\] and "
                                          r"analysis.coverage_by reads column\(s\) \['rating'\], not in"):
        analyze.analyze(spark, replace(absent, analysis=replace(cfg.analysis, coverage_by=["stars", "rating"])))
    bad = replace(cfg, slices=SlicesConfig(modules=["tests.jobs.bad_slices"]))
    with pytest.raises(InputDataError, match=r"slicing function 'says_yes' returned 'yes' \(str\) on \d+ row"):
        analyze.analyze(spark, bad)
    with pytest.raises(ConfigError, match=r"analysis.top_terms \(-1\) must be >= 0"):
        analyze.analyze(spark, replace(cfg, analysis=replace(cfg.analysis, top_terms=-1)))


def test_evaluation_source_gives_gold_when_the_source_has_none(spark, run, tmp_path):
    """Without a source gold column, the LFs and the model are scored on the ``evaluation:`` rows."""
    from dataclasses import replace

    from jobs.runtime.config import SourceConfig
    from tests.jobs.test_pipeline import expected_votes, make_rows, write_source

    cfg, _, base = run
    held = make_rows(30)
    held["id"] = "h" + held["id"]
    held.loc[held.index % 4 == 0, "text"] += " !!"
    held.loc[held.index % 7 == 3, "gold"] = None
    ev_cfg = SourceConfig(path=write_source(tmp_path, held, "held"), format="parquet", id_column="id",
                          gold_column="gold")
    doc = analyze.analyze(spark, replace(cfg, source=replace(cfg.source, gold_column=None), evaluation=ev_cfg))
    names, space = [lf["name"] for lf in doc["lfs"]], doc["label_space"]
    L = expected_votes(held, names)
    gold = held["gold"].map({c: i for i, c in enumerate(space)}).fillna(-1).astype(int).to_numpy()
    ev = doc["evaluation"]
    assert ev["rows"] == int((gold >= 0).sum()) and doc["lf_gold_from"] == "evaluation"
    assert ev["coverage"] == pytest.approx((L >= 0).any(axis=1).mean())
    model = LabelModel.load(doc["label_model"]["path"])
    assert ev["lm_accuracy"] == pytest.approx(acc(shares(model.predict_proba(L)), gold))
    assert ev["mv_accuracy"] == pytest.approx(acc(shares(mv_probs(L, len(space))), gold))
    for j, (row, lf) in enumerate(zip(ev["lfs"], doc["lfs"])):
        on_gold = (L[:, j] >= 0) & (gold >= 0)
        assert (row["gold_votes"], row["gold_correct"]) == (int(on_gold.sum()),
                                                            int((L[on_gold, j] == gold[on_gold]).sum())), row
        assert lf["gold_accuracy"] == row["gold_accuracy"] and lf["gold_votes"] == row["gold_votes"]
    assert doc["totals"]["gold_rows"] == 0 and doc["totals"]["lm_accuracy"] is None
    assert [lf["coverage"] for lf in doc["lfs"]] == [lf["coverage"] for lf in base["lfs"]]  # still the source's
    assert [b["name"] for b in doc["buckets"]] == ["conflict", "low_confidence", "uncovered"]
    from jobs.report import render

    html = render(doc).html
    assert "Held-out evaluation source" in html and f"{ev['lm_accuracy']:.1%}" in html


def test_labels_carry_the_vote_codes_analyze_reads(spark, run, truth, tmp_path):
    """The labels' ``vote_codes`` are the votes; analyze reads them, but falls back to the votes table when
    they are missing (labels written before the column) or coded with other LFs (stale)."""
    from dataclasses import replace

    import pyarrow as pa
    from deltalake import write_deltalake
    from jobs.analysis import inputs as analysis_inputs
    from jobs.analysis.rows import scored_rows

    cfg, _, _ = run
    k = truth["k"]
    labels = DeltaTable(cfg.table_path("labels")).to_pandas().set_index("row_id").loc[truth["source"]["id"]]
    expected = [[j * k + int(v) for j, v in enumerate(row) if v >= 0] for row in truth["L"]]
    assert [list(c) for c in labels["vote_codes"]] == expected

    found = analysis_inputs.resolve(spark, cfg, None)
    assert found.codes_match

    def patterns(inputs) -> dict:
        return {r["row_id"]: list(r["pattern"]) for r in scored_rows(spark, inputs, [], []).select(
            "row_id", "pattern").collect()}

    # A copy of the labels whose codes are all wrong ([0]): read when they match, never when stale.
    table = DeltaTable(cfg.table_path("labels")).to_pyarrow_table()
    wrong = table.set_column(table.schema.get_field_index("vote_codes"), "vote_codes",
                             pa.array([[0]] * table.num_rows, pa.list_(pa.int32())))
    write_deltalake(str(tmp_path / "wrong"), wrong)
    tampered = replace(found, labels_path=str(tmp_path / "wrong"), labels_version=0)
    assert set(map(tuple, patterns(tampered).values())) == {(0,)}  # the stored codes are what analyze reads
    by_votes = {rid: codes for rid, codes in zip(truth["source"]["id"], expected)}
    assert patterns(replace(tampered, codes_match=False)) == by_votes  # coded with other LFs: from the votes
    write_deltalake(str(tmp_path / "old"), table.drop_columns(["vote_codes"]))
    assert patterns(replace(found, labels_path=str(tmp_path / "old"), labels_version=0)) == by_votes
    written = {"lfs": found.applied.lf_versions, "label_space": list(found.label_space)}
    assert analysis_inputs.coded_like(written, found.applied)
    assert not analysis_inputs.coded_like({**written, "lfs": {"other_lf": "1"}}, found.applied)
    assert not analysis_inputs.coded_like({**written, "label_space": written["label_space"][::-1]}, found.applied)


def test_a_duplicate_id_in_the_evaluation_source_is_an_error(spark, run, tmp_path):
    """Only `run` checked the ``evaluation:`` source's ids: analyze counted a repeated row twice (exit 0)."""
    from dataclasses import replace

    import pandas as pd

    from jobs.runtime.config import SourceConfig
    from lf_library.errors import InputDataError
    from tests.jobs.test_pipeline import make_rows, write_source

    cfg, _, _ = run
    held = make_rows(8)
    ev_cfg = SourceConfig(path=write_source(tmp_path, pd.concat([held, held.iloc[[3]]]), "held_dup"), format="parquet",
                          id_column="id", gold_column="gold")
    with pytest.raises(InputDataError, match=r"held_dup is not unique: 1 id\(s\) repeat, e.g. 'r003'.*"
                                             r"set evaluation.drop_duplicate_rows: true"):
        analyze.analyze(spark, replace(cfg, evaluation=ev_cfg))


def test_evaluation_with_other_lfs_than_the_run_warns(spark, run, tmp_path, caplog):
    """Analyzing a run with LF settings it did not use cannot score the evaluation source: a warning
    says what differs, and the document keeps the note (the drill's `analyze` without the run's
    `--set lfs.declared=[]` dropped the evaluation silently)."""
    import logging
    from dataclasses import replace

    from jobs.runtime.config import SourceConfig
    from tests.jobs.test_pipeline import make_rows, write_source

    cfg, _, _ = run
    ev_cfg = SourceConfig(path=write_source(tmp_path, make_rows(10), "held"), format="parquet", id_column="id",
                          gold_column="gold")
    fewer = replace(cfg, lfs=replace(cfg.lfs, exclude=[*cfg.lfs.exclude, "stars"]), evaluation=ev_cfg)
    with caplog.at_level(logging.WARNING, logger="jobs"):
        doc = analyze.analyze(spark, fewer)
    note = ("the configured LFs are not the run's (no longer configured ['stars']), so the evaluation source was "
            "not scored; analyze with the LF settings the run used")
    assert doc["evaluation"] == {"note": note}
    assert f"analyze: {note}" in caplog.text


def test_a_source_changed_since_the_votes_is_refused_by_analyze_and_flagged_by_explain(spark, run, caplog):
    """A CSV/Parquet source edited after the run: analyze names the votes version; explain warns that the
    row it shows is the current one (and says so in its document)."""
    import logging
    import os

    from jobs.explain import explain_row, format_text

    cfg, _, _ = run
    part = Path(cfg.source.path) / "part-0.parquet"
    original, stat = part.read_bytes(), part.stat()
    rows = pd.read_parquet(part)
    row_id = rows["id"].iloc[0]
    assert explain_row(spark, cfg, row_id)["lineage"]["source"]["changed_since_votes"] is False
    rows.loc[0, "text"] = "edited after the run"
    try:
        rows.to_parquet(part, index=False)
        with pytest.raises(InputDataError, match=r"source \S+ changed since its votes were written \(votes table "
                                                 r"\S+ v\d+\) \(a file source is compared by its files' names, "
                                                 r"sizes and modification times: a file copied back with the same "
                                                 r"bytes counts as changed\); run `lakelabel apply` again"):
            analyze.analyze(spark, cfg)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="jobs.explain"):
            doc = explain_row(spark, cfg, row_id)
        source = doc["lineage"]["source"]
        assert source["row"]["text"] == "edited after the run" and source["changed_since_votes"] is True
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and re.search(r"source \S+ changed since the votes of run an-1 were written "
                                                r"\(votes \S+ v\d+\): the source row shown is the current one",
                                                warnings[0]), warnings
        assert "source (now; the source changed since the votes): id=" in format_text(doc)
    finally:
        part.write_bytes(original)
        os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_evaluation_only_gold_gives_per_class_numbers_and_the_confusion_plot(spark, run, tmp_path):
    """With gold only in the ``evaluation:`` source (a team with a held-out test set and unlabeled training
    rows), analyze gave the held-out accuracy alone: the confusion matrix was all zeros and the report drew
    none, so a multi-class team could not see which classes get conflated or which class is missed."""
    from dataclasses import replace

    from jobs.analysis import plots
    from jobs.report import findings, render
    from jobs.runtime.config import SourceConfig
    from tests.jobs.test_pipeline import expected_votes, make_rows, write_source

    cfg, _, _ = run
    held = make_rows(40)
    held["id"] = "h" + held["id"]
    held.loc[held.index % 7 == 3, "gold"] = None
    ev_cfg = SourceConfig(path=write_source(tmp_path, held, "held"), format="parquet", id_column="id",
                          gold_column="gold")
    doc = analyze.analyze(spark, replace(cfg, source=replace(cfg.source, gold_column=None), evaluation=ev_cfg))
    space = doc["label_space"]
    k = len(space)
    L = expected_votes(held, [lf["name"] for lf in doc["lfs"]])
    gold = held["gold"].map({c: i for i, c in enumerate(space)}).fillna(-1).astype(int).to_numpy()
    has = gold >= 0
    model = LabelModel.load(doc["label_model"]["path"])
    ev = doc["evaluation"]
    assert ev["confusion"]["labels"] == space
    covered = (L >= 0).any(axis=1)
    for key, sh in (("lm", shares(model.predict_proba(L))), ("mv", shares(mv_probs(L, k)))):
        for suffix, rows in (("", has), ("_covered", has & covered)):
            expected = np.zeros((k, k))
            for g, row in zip(gold[rows], sh[rows]):
                expected[g] += row
            if not suffix:
                assert np.allclose(ev["confusion"][key], expected), key
            for c, row in enumerate(ev["per_class"]):
                assert row["class"] == space[c] and row["support" + suffix] == int((gold[rows] == c).sum())
                right, predicted, support = expected[c, c], expected[:, c].sum(), expected[c].sum()
                assert row[key]["recall" + suffix] == (pytest.approx(right / support) if support else None)
                assert row[key]["precision" + suffix] == (pytest.approx(right / predicted) if predicted else None)
    assert np.trace(np.array(ev["confusion"]["lm"])) / has.sum() == pytest.approx(ev["lm_accuracy"])
    assert doc["totals"]["lm_accuracy"] is None and not plots.has_gold(doc)
    assert "confusion_matrices" in [f["name"] for f in plots.all_figures(doc)]
    assert any("on the evaluation source" in f for f in findings(doc)) or not any(
        ev["confusion"]["lm"][g][p] for g in range(k) for p in range(k) if g != p)
    html = render(doc).html
    assert "Confusion matrices against gold" in html and "Per class on the evaluation source" in html
    assert "held-out evaluation source: " in html


def test_evaluation_gold_of_no_class_is_a_note_not_nan(spark, run, tmp_path, caplog):
    """Held-out gold written in another case than the classes ('Pos' for 'pos') gave an evaluation section
    of 0 rows with nan accuracies (the page printed 'nan%'), and no word on why."""
    import logging
    from dataclasses import replace

    from jobs.runtime.config import SourceConfig
    from tests.jobs.test_pipeline import make_rows, write_source

    cfg, _, _ = run
    held = make_rows(12)
    held["id"] = "h" + held["id"]
    held["gold"] = held["gold"].str.upper()
    ev_cfg = SourceConfig(path=write_source(tmp_path, held, "held"), format="parquet", id_column="id",
                          gold_column="gold")
    with caplog.at_level(logging.WARNING, logger="jobs"):
        doc = analyze.analyze(spark, replace(cfg, source=replace(cfg.source, gold_column=None), evaluation=ev_cfg))
    assert doc["evaluation"]["note"].startswith("no row of the evaluation source ") and doc["lf_gold_from"] is None
    assert "value(s) that are no class of the label space" in caplog.text
