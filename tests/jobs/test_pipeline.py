"""Spark tests of the jobs on a handful of literal rows (one shared local SparkSession)."""

from __future__ import annotations

from dataclasses import replace

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs import aggregate, apply_lfs, incremental, pipeline, write_labels
from jobs import delta_io
from jobs.apply_record import load_apply_result
from jobs.runtime.config_loading import config_from_dict
from labelmodel.stats import stats_from_matrix
from lf_library.errors import InputDataError, LFConfigError, LFError, LFErrorRateExceeded

pytestmark = pytest.mark.spark

TEXTS = [
    "I love it, great stuff!!", "awful, I hate this", "ok", "great!!", "hate", "meh, fine I guess",
    "love love love", "awful awful", "it is great but awful", "nothing to say here",
]


def make_rows(n: int = 40, boom_every: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(n):
        text = TEXTS[i % len(TEXTS)]
        if boom_every and i % boom_every == 0:
            text += " boom"
        stars = None if i % 7 == 0 else (i % 5) + 1
        gold = "pos" if ("love" in text or "great" in text) and "awful" not in text else "neg"
        rows.append({"id": f"r{i:03d}", "text": text, "stars": stars, "gold": gold})
    return pd.DataFrame(rows).astype({"stars": "Int64"})


def write_source(tmp_path, df: pd.DataFrame, name: str = "src") -> str:
    path = tmp_path / name
    path.mkdir()
    df.to_parquet(path / "part-0.parquet", index=False)
    return str(path)


def make_cfg(tmp_path, source: str, **sections):
    data = {
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": source, "format": "parquet", "id_column": "id", "gold_column": "gold"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
        "mlflow": {"enabled": False},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return config_from_dict(data)


def dense_votes(spark, cfg, applied) -> tuple[list[str], np.ndarray]:
    """The label matrix, rebuilt in the test by collecting the (tiny) votes table."""
    votes = delta_io.read_table(spark, cfg.table_path("votes")).where("vote >= 0").toPandas()
    source = pd.read_parquet(cfg.source.path)
    ids = sorted(source["id"])
    index = {rid: i for i, rid in enumerate(ids)}
    names = list(applied.lf_names)
    L = np.full((len(ids), len(names)), -1)
    for r in votes.itertuples():
        L[index[r.row_id], names.index(r.lf_name)] = r.vote
    return ids, L


def expected_votes(df: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Each LF's intended vote, written out by hand for the sample LFs."""
    cols = []
    for name in names:
        if name == "good_words":
            col = [1 if any(w in t.lower().split() or w in t.lower() for w in ("great", "love")) else -1 for t in df.text]
        elif name == "bad_words":
            col = [0 if ("awful" in t or "hate" in t) else -1 for t in df.text]
        elif name == "exclaim":
            col = [1 if "!!" in t else -1 for t in df.text]
        elif name == "short_text":
            col = [0 if len(t) < 12 else -1 for t in df.text]
        elif name == "stars":
            col = [-1 if pd.isna(s) else (1 if s >= 4 else 0 if s <= 2 else -1) for s in df.stars]
        else:
            raise AssertionError(name)
        cols.append(col)
    return np.array(cols).T


def test_spark_statistics_equal_numpy(spark, tmp_path):
    df = make_rows(40)
    cfg = make_cfg(tmp_path, write_source(tmp_path, df))
    applied = apply_lfs.run(spark, cfg, run_id="t1")
    assert applied.n_rows == 40 and not applied.skipped
    ids, L = dense_votes(spark, cfg, applied)
    ordered = df.set_index("id").loc[ids].reset_index()
    np.testing.assert_array_equal(L, expected_votes(ordered, list(applied.lf_names)))

    agg = aggregate.run(spark, cfg, applied=applied)
    reference = stats_from_matrix(L, 2, lf_names=applied.lf_names)
    assert agg.stats.equals(reference)
    gold = np.array([0 if g == "neg" else 1 for g in ordered.gold])
    for p, row in enumerate(agg.stats.patterns):
        match = (L == row).all(axis=1)
        assert agg.gold_counts[p].tolist() == [int((gold[match] == c).sum()) for c in range(2)]

    few = make_cfg(tmp_path, cfg.source.path, aggregate={"max_patterns": 1})
    moments_only = aggregate.run(spark, few, applied=applied)
    assert moments_only.stats.patterns is None
    np.testing.assert_array_equal(moments_only.stats.overlap, reference.overlap)
    np.testing.assert_array_equal(moments_only.stats.lf_conflict, reference.lf_conflict)


def test_rerun_is_idempotent_and_labels_carry_lineage(spark, tmp_path):
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(40)), output={"tie_break_policy": "random"})
    first = pipeline.run(spark, cfg, run_id="run-a").summary
    # The apply record in the votes commit has the apply's time up to its commit (a drill read "seconds": 0.0).
    assert 0 < load_apply_result(cfg).seconds <= first["timings_seconds"]["apply"] + 0.001
    labels_a = delta_io.read_table(spark, cfg.table_path("labels")).toPandas().sort_values("row_id")
    votes_rows = DeltaTable(cfg.table_path("votes")).to_pyarrow_table().num_rows

    second = pipeline.run(spark, cfg, run_id="run-b").summary
    assert second["tables"]["votes"]["reused"] is True
    assert DeltaTable(cfg.table_path("votes")).to_pyarrow_table().num_rows == votes_rows
    labels_b = DeltaTable(cfg.table_path("labels")).to_pandas().sort_values("row_id")
    assert len(labels_b) == 40 and labels_b.row_id.is_unique
    np.testing.assert_allclose(np.stack(labels_a.probabilities), np.stack(labels_b.probabilities))
    assert labels_a.label.tolist() == labels_b.label.tolist()

    # Same run id again: every stage is a no-op, the labels table keeps its version.
    version = DeltaTable(cfg.table_path("labels")).version()
    pipeline.run(spark, cfg, run_id="run-b")
    assert DeltaTable(cfg.table_path("labels")).version() == version

    row = labels_b.iloc[0]
    assert set(write_labels.labels_schema(__import__("pyarrow").string()).names) == set(labels_b.columns)
    assert row.run_id == "run-b" and row.tie_break_policy == "random"
    assert row.source_table.endswith("src") and row.label_model_version == first["label_model"]["version"]
    versions = {lf["name"]: lf["version"] for lf in first["lfs"]}
    for voters, n in zip(labels_b.voting_lfs, labels_b.n_votes):
        assert len(voters) == n
        for v in voters:
            name, version_ = v.split("@")
            assert versions[name] == version_
    probs = np.stack(labels_b.probabilities)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(labels_b.confidence, probs.max(axis=1))
    assert first["metrics"]["accuracy"] >= first["metrics"]["mv_accuracy"] - 0.05


def test_lf_errors_become_abstains_and_threshold_fails_job(spark, tmp_path, caplog):
    df = make_rows(40, boom_every=20)  # rows r000 and r020 raise
    source = write_source(tmp_path, df)
    never = {"name": "never", "kind": "keyword", "keywords": ["no such word"], "label": "pos", "field": "text"}
    cfg = make_cfg(tmp_path, source, lfs={"exclude": ["out_of_space"], "declared": [never]})
    with caplog.at_level(logging.WARNING, logger="jobs"):
        applied = apply_lfs.run(spark, cfg, run_id="e1")
    # Under the budget the job goes on, and says so at warning level (a drill, session 18: -q hid it),
    # as it says which LFs never voted.
    assert ("apply: LF 'boom' raised on 2 of 40 rows (5.0%, within apply.max_error_rate=5.0%): it abstains there; "
            "e.g. row id r000: RuntimeError: kaboom") in caplog.text
    assert ("apply: 1 LF(s) voted on none of the 40 rows: never; check what they match (a keyword list written as "
            "one string, a field that is always empty, a column LF's mapping keys against the column's values) with "
            "`lakelabel analyze`") in caplog.text
    boom = next(lf for lf in applied.lfs if lf.name == "boom")
    assert boom.errors == 2 and boom.error_rate == pytest.approx(0.05)
    assert [s["row_id"] for s in boom.error_samples] == ["r000", "r020"]
    assert boom.error_samples[0]["error"].startswith("RuntimeError: kaboom")
    errors = delta_io.read_table(spark, cfg.table_path("votes")).where("error is not null").toPandas()
    assert sorted(errors.row_id) == ["r000", "r020"] and set(errors.vote) == {-1}

    version = delta_io.table_version(cfg.table_path("votes"))
    strict = make_cfg(tmp_path, source, lfs={"exclude": ["out_of_space"]}, apply={"max_error_rate": 0.01})
    with pytest.raises(LFErrorRateExceeded, match=r"LF 'boom' raised on 2 of 40 rows \(5\.0%\).*row id r000: RuntimeError: kaboom"):
        apply_lfs.run(spark, strict, run_id="e2", force=True)
    assert delta_io.table_version(cfg.table_path("votes")) == version
    leftovers = {p.name for p in (tmp_path / "lake" / "votes").rglob("*.parquet")}
    assert leftovers == {p.split("/")[-1] for p in DeltaTable(cfg.table_path("votes")).file_uris()}


def test_out_of_space_vote_fails_with_lf_and_row(spark, tmp_path):
    df = make_rows(10)
    df.loc[3, "text"] = "seven seas"
    cfg = make_cfg(tmp_path, write_source(tmp_path, df), lfs={"exclude": ["boom"]})
    with pytest.raises(LFError, match=r"LF 'out_of_space' returned a value outside the label space .*row id r003.*ABSTAIN"):
        apply_lfs.run(spark, cfg, run_id="o1")
    assert not delta_io.table_exists(cfg.table_path("votes"))
    # The Parquet source's row hashes were stored before the votes failed: a first apply leaves no table.
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["_lakelabel"]


def test_a_vectorized_lf_not_one_vote_per_row_says_so_first(spark, tmp_path):
    """Wrong length or index: the message leads with that, not with "a value outside the label space"."""
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(10)), lfs={"modules": ["tests.jobs.misaligned_lfs"],
                                                                         "exclude": []})
    with pytest.raises(LFError, match=r"^LF 'drops_rows' did not return one vote per row: it returned a Series of "
                                      r"\d+ values whose index is not the DataFrame's \(\d+ rows\); return one vote "
                                      r"per row, .*\(batch of row id r\d+; \d+ row\(s\) got no vote\)$"):
        apply_lfs.run(spark, cfg, run_id="m1")
    assert not delta_io.table_exists(cfg.table_path("votes"))


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda d: d.drop(columns=["id"]), InputDataError, r"column 'id' \(source\.id_column\) not found in .*src"),
        (lambda d: pd.concat([d, d.iloc[:2]]), InputDataError, r"id column 'id' .* is not unique: 2 id\(s\) repeat, e\.g\. 'r00[01]'"),
        (lambda d: d.iloc[:0], InputDataError, r"source .*src has no rows"),
        (lambda d: d.assign(text=range(len(d))), InputDataError, r"column 'text' .* has type bigint, but text LFs read it as a string"),
    ],
    ids=["missing-id", "duplicate-ids", "empty", "non-string-text"],
)
def test_bad_input_is_one_clear_error_and_no_table(spark, tmp_path, mutate, error, match):
    cfg = make_cfg(tmp_path, write_source(tmp_path, mutate(make_rows(12))))
    with pytest.raises(error, match=match):
        pipeline.run(spark, cfg, run_id="bad")
    assert not delta_io.table_exists(cfg.table_path("votes"))
    assert not delta_io.table_exists(cfg.table_path("labels"))


def test_null_text_is_an_abstain_of_the_text_lfs_with_a_warning(spark, tmp_path, caplog):
    """An empty body or an empty CSV cell (Spark reads it as null) was refused with "fill them (e.g. with '')", which
    neither a CSV export nor a source read as it is can do (an LF-authoring drill, session 38): the keyword, regex
    and lexicon LFs abstain there, and the run says how many rows."""
    import logging

    rows = make_rows(12).assign(text=lambda d: d.text.where(d.index != 4, None))
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows), lfs={"modules": ["tests.jobs.sample_lfs"],
                                                                "exclude": ["boom", "out_of_space"]})
    with caplog.at_level(logging.WARNING, logger="jobs.delta_io.sources"):
        pipeline.run(spark, cfg, run_id="nulls")
    assert any("text column 'text' has 1 null value(s) (e.g. id 'r004')" in m for m in caplog.messages), caplog.messages
    votes = delta_io.read_table(spark, cfg.table_path("votes")).where("row_id = 'r004'").toPandas()
    assert set(votes.lf_name) <= {"stars"} and not votes.error.any()  # only the LF that reads stars voted there
    labels = DeltaTable(cfg.table_path("labels")).to_pandas()
    assert len(labels) == 12


def test_unknown_lf_and_unreadable_path(spark, tmp_path):
    source = write_source(tmp_path, make_rows(5))
    cfg = make_cfg(tmp_path, source, lfs={"include": ["good_words", "no_such_lf"], "exclude": []})
    with pytest.raises(LFConfigError, match=r"^lfs.include: unknown LF name\(s\) \[.no_such_lf.\]; known LFs: \[.bad_words.*remove it from lfs.include$"):
        pipeline.run(spark, cfg, run_id="x")
    cfg = make_cfg(tmp_path, str(tmp_path / "nowhere"))
    with pytest.raises(Exception, match=r"nowhere"):
        pipeline.run(spark, cfg, run_id="x")


def test_failed_run_leaves_previous_tables(spark, tmp_path):
    source = write_source(tmp_path, make_rows(20))
    cfg = make_cfg(tmp_path, source)
    pipeline.run(spark, cfg, run_id="ok")
    before = DeltaTable(cfg.table_path("labels")).version()
    broken = make_cfg(tmp_path, source, lfs={"exclude": ["out_of_space"]}, apply={"max_error_rate": 0.0})
    rows = make_rows(20, boom_every=5)
    import shutil

    shutil.rmtree(source)
    write_source(tmp_path, rows)
    with pytest.raises(LFErrorRateExceeded):
        pipeline.run(spark, broken, run_id="broken")
    assert DeltaTable(cfg.table_path("labels")).version() == before
    labels = DeltaTable(cfg.table_path("labels")).to_pandas()
    assert set(labels.run_id) == {"ok"}


def test_reused_votes_keep_their_version_in_lineage(spark, tmp_path):
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(20)))
    pipeline.run(spark, cfg, run_id="v1")
    second = pipeline.run(spark, cfg, run_id="v2").summary
    assert second["tables"]["votes"] == {"path": cfg.table_path("votes"), "version": 0, "reused": True}
    labels = DeltaTable(cfg.table_path("labels")).to_pandas()
    assert set(labels.votes_version) == {0} and set(labels.run_id) == {"v2"}


def test_same_run_id_with_changed_source_recomputes(spark, tmp_path, caplog):
    import shutil

    source = write_source(tmp_path, make_rows(20))
    cfg = make_cfg(tmp_path, source)
    pipeline.run(spark, cfg, run_id="same")
    shutil.rmtree(source)
    write_source(tmp_path, make_rows(30))
    with caplog.at_level(logging.WARNING, logger="jobs"):
        summary = pipeline.run(spark, cfg, run_id="same").summary
    assert summary["tables"]["votes"]["reused"] is False
    # The id's record now names the new labels, and the log says so.
    assert ("run id same already names a run that succeeded with other inputs (LF versions, the source or how it "
            "is read) (labels v0); this run replaces its record. Use a new --run-id to keep both") in caplog.text
    # Another tie policy (or label model setting) under the same id recomputes too, and the labels say so.
    import dataclasses

    first = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, tie_break_policy="first"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jobs"):
        again = pipeline.run(spark, first, run_id="same").summary
    assert again["reused"] is False and again["tables"]["labels"]["version"] == 2
    assert "succeeded with other label_model or output settings" in caplog.text
    assert set(DeltaTable(cfg.table_path("labels")).to_pandas().tie_break_policy) == {"first"}
    labels = DeltaTable(cfg.table_path("labels")).to_pandas()
    assert len(labels) == 30 and set(labels.votes_version) == {1}


def test_failure_after_apply_restores_votes(spark, tmp_path, monkeypatch):
    import shutil

    source = write_source(tmp_path, make_rows(20))
    cfg = make_cfg(tmp_path, source)
    pipeline.run(spark, cfg, run_id="good")
    before = DeltaTable(cfg.table_path("votes")).to_pandas().sort_values(["row_id", "lf_name"]).reset_index(drop=True)
    shutil.rmtree(source)
    write_source(tmp_path, make_rows(25))

    def crash(*args, **kwargs):
        raise RuntimeError("executor lost")

    monkeypatch.setattr(write_labels, "run", crash)
    with pytest.raises(RuntimeError, match="executor lost"):
        pipeline.run(spark, cfg, run_id="crashes")
    after = DeltaTable(cfg.table_path("votes")).to_pandas().sort_values(["row_id", "lf_name"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    assert load_apply_result(cfg).n_rows == 20
    assert len(DeltaTable(cfg.table_path("labels")).to_pandas()) == 20
    # A full apply (--force) that a later stage undoes: the restored votes keep their row masks, and the
    # failed run's own are deleted (an operator drill found the reverse after a SIGTERM in write).
    masks = sorted(Path(cfg.lakehouse).glob("_lakelabel/runs/*/row_masks-*"))
    assert [p.parent.name for p in masks] == ["good"] and load_apply_result(cfg).row_masks["path"] == str(masks[0])
    with pytest.raises(RuntimeError, match="executor lost"):
        pipeline.run(spark, cfg, run_id="crashes", force=True)
    assert sorted(Path(cfg.lakehouse).glob("_lakelabel/runs/*/row_masks-*")) == masks
    assert load_apply_result(cfg).row_masks["path"] == str(masks[0])
    # The same failure on a first run: the votes and the row hashes its apply created are both removed.
    fresh = make_cfg(tmp_path / "fresh", source)
    with pytest.raises(RuntimeError, match="executor lost"):
        pipeline.run(spark, fresh, run_id="first")
    assert sorted(p.name for p in (tmp_path / "fresh" / "lake").iterdir()) == ["_lakelabel"]
    assert not list((tmp_path / "fresh" / "lake").glob("_lakelabel/runs/*/row_masks-*"))


def test_a_restore_that_fails_too_keeps_the_runs_error_and_says_what_stands(spark, tmp_path, monkeypatch, capsys):
    """A drill (a full disk): the labels write failed, then putting the votes back failed as well (a restore is a
    commit), and the restore's error replaced the run's (exit 1, "OSError: Generic LocalFileSystem error"), with
    the run's failure marker never written and the line silent about the votes that stood."""
    from jobs.delta_io.errors import DeltaWriteError
    from jobs.delta_io.local import LocalDeltaIO
    from jobs.runtime import exits, signals
    from jobs.runtime.runs import failed_run

    source = write_source(tmp_path, make_rows(20))
    cfg = make_cfg(tmp_path, source)
    pipeline.run(spark, cfg, run_id="good")
    votes_path = cfg.table_path("votes")
    before = DeltaTable(votes_path).version()

    def disk_full(*args, **kwargs):
        raise DeltaWriteError(f"writing Delta table {cfg.table_path('labels')} failed before commit; the table stays "
                              "at version 0: OSError: [Errno 28] No space left on device")

    tried = []

    def restore_fails_too(self, path, version, *, reason):
        tried.append((path, version))
        raise OSError("Generic LocalFileSystem error\n  \x1b[31m↳\x1b[0m Unable to copy data to file\n"
                      "   \x1b[31m↳\x1b[0m No space left on device (os error 28)")

    hashes_path = incremental.row_hashes_path(cfg)
    hashes_before = DeltaTable(hashes_path).version()
    make_rows(21).to_parquet(Path(source) / "part-0.parquet", index=False)  # a new row: votes and row hashes move

    monkeypatch.setattr(write_labels, "run", disk_full)
    monkeypatch.setattr(LocalDeltaIO, "restore_table", restore_fails_too)
    capsys.readouterr()
    code = exits.guarded(lambda: pipeline.run(spark, cfg, run_id="full"), debug=False)
    assert code == exits.EXIT_INPUT  # the run's own error's code: the labels write's
    assert tried == [(votes_path, before), (hashes_path, hashes_before)]
    assert DeltaTable(votes_path).version() == before + 1 and DeltaTable(hashes_path).version() == hashes_before + 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"lakelabel: error: writing Delta table {cfg.table_path('labels')} failed before commit"), line
    failed = "(putting it back failed: Generic LocalFileSystem error: No space left on device (os error 28))"
    # Each commit that stands is named with its version (the row hashes' was not).
    assert (f"; it committed votes {votes_path} v{before + 1} {failed}, row hashes {hashes_path} v{hashes_before + 1} "
            f"{failed} before that, which stand") in line, line
    assert failed_run(cfg.lakehouse, "full")["status"] == "failed"  # marked, after the restore that failed
    signals.begin_command()
    # The rerun, with room again, converges on the labels of the votes that stood.
    monkeypatch.undo()
    pipeline.run(spark, cfg, run_id="full")
    assert len(DeltaTable(cfg.table_path("labels")).to_pandas()) == 21


def test_write_refuses_a_model_fitted_on_other_lfs(spark, tmp_path):
    from jobs import fit_label_model

    source = write_source(tmp_path, make_rows(20))
    cfg = make_cfg(tmp_path, source)
    pipeline.run(spark, cfg, run_id="all-lfs")
    fewer = make_cfg(tmp_path, source, lfs={"exclude": ["boom", "out_of_space", "stars"]})
    apply_lfs.run(spark, fewer, run_id="fewer")
    with pytest.raises(Exception, match=r"was fitted on LFs .*'stars'.* but the votes table .* holds other votes \(the votes are of"):
        write_labels.run(spark, fewer, run_id="fewer", fitted=fit_label_model.load_fit(fewer, "all-lfs"))


def test_gold_that_matches_no_class_is_named_in_a_warning(spark, tmp_path, caplog):
    """An operator drill (session 18): gold written as 'Pos'/'Neg' (or a wrong gold column) was
    dropped without a word and the accuracy read nan."""
    rows = make_rows(20)
    rows["gold"] = rows["gold"].str.capitalize()
    rows.loc[0, "gold"] = "postive"
    rows.loc[1, "gold"] = None
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows))
    with caplog.at_level(logging.WARNING, logger="jobs"):
        summary = pipeline.run(spark, cfg, run_id="capitalized").summary
    assert summary["status"] == "succeeded" and summary["metrics"]["gold_rows"] == 0
    counts = rows["gold"].value_counts()
    assert "aggregate: no gold label: column 'gold' (source.gold_column) of source " in caplog.text
    assert (f" has 19 value(s) that are no class of the label space (neg, pos) nor a class id 0..1: 'Neg' ({counts['Neg']}), "
            f"'Pos' ({counts['Pos']}), 'postive' (1). Accuracy against gold is not measured; write the gold as class "
            f"names (case matters) or ids, or fix source.gold_column") in caplog.text
    # gold that matches says nothing
    caplog.clear()
    cfg = make_cfg(tmp_path / "ok", write_source(tmp_path, make_rows(20), name="ok_src"))
    with caplog.at_level(logging.WARNING, logger="jobs"):
        pipeline.run(spark, cfg, run_id="matched")
    assert "no gold label" not in caplog.text


def test_evaluation_gold_that_matches_no_class_is_named_in_a_warning(spark, tmp_path, caplog):
    """A 6-class drill: the held-out file's gold was 'desc' for the class DESC. The run said only
    `evaluate: 0 held-out rows with gold, ... accuracy vs gold nan` (the summary's eval_accuracy NaN), and
    with a few rows in the right case it scored those few rows without a word about the others."""
    held = make_rows(20)
    held["id"] = "h" + held["id"]
    held["gold"] = held["gold"].str.capitalize()
    held.loc[0, "gold"] = "pos"
    held.loc[1, "gold"] = None
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(20)),
                   evaluation={"path": write_source(tmp_path, held, name="held"), "format": "parquet",
                               "id_column": "id", "gold_column": "gold"})
    with caplog.at_level(logging.WARNING, logger="jobs"):
        summary = pipeline.run(spark, cfg, run_id="capitalized").summary
    assert summary["status"] == "succeeded" and summary["metrics"]["eval_rows"] == 1
    counts = held["gold"].value_counts()
    assert "evaluate: column 'gold' (evaluation.gold_column) of evaluation " in caplog.text
    assert (f" has 18 value(s) that are no class of the label space (neg, pos) nor a class id 0..1: 'Neg' "
                f"({counts['Neg']}), 'Pos' ({counts['Pos']}); the held-out accuracy is measured on the 1 row(s) with a gold class. "
                f"Write the gold as class names (case matters) or ids, or fix evaluation.gold_column") in caplog.text
    held.loc[0, "gold"] = "Pos"
    caplog.clear()
    cfg = replace(cfg, evaluation=replace(cfg.evaluation, path=write_source(tmp_path, held, name="held_none")))
    with caplog.at_level(logging.WARNING, logger="jobs"):
        summary = pipeline.run(spark, cfg, run_id="none").summary
    assert "no held-out row has a gold class, so accuracy against it is not measured" in caplog.text
    assert not any(key.startswith("eval_") for key in summary["metrics"])  # was eval_accuracy NaN
    # gold that matches says nothing
    caplog.clear()
    held["gold"] = held["gold"].str.lower()
    cfg = replace(cfg, evaluation=replace(cfg.evaluation, path=write_source(tmp_path, held, name="held_ok")))
    with caplog.at_level(logging.WARNING, logger="jobs"):
        summary = pipeline.run(spark, cfg, run_id="matched").summary
    assert "evaluate: column" not in caplog.text and summary["metrics"]["eval_rows"] == 19


@pytest.fixture(scope="module")
def env_store_run(spark, tmp_path_factory):
    """``(cfg, summary, env store URI)``: a 20-row run with MLflow on, ``mlflow.tracking_uri`` set in the
    config and ``MLFLOW_TRACKING_URI`` pointing at another local sqlite store."""
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("env-store")
    cfg_store, env_store = f"sqlite:///{tmp}/config/mlflow.db", f"sqlite:///{tmp}/env/mlflow.db"
    (tmp / "config").mkdir()
    (tmp / "env").mkdir()
    cfg = make_cfg(tmp, write_source(tmp, make_rows(20)),
                   mlflow={"enabled": True, "tracking_uri": cfg_store, "experiment": "env-store"})
    # The env store's experiment keeps its artifacts beside it (MLflow's default is ./mlruns of the cwd).
    MlflowClient(tracking_uri=env_store).create_experiment("env-store", (tmp / "env" / "artifacts").as_uri())
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = env_store
    try:
        yield cfg, pipeline.run(spark, cfg, run_id="env-1").summary, env_store
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


def test_mlflow_tracking_uri_env_overrides_the_config(env_store_run, tmp_path):
    """README "Configuration reference": MLFLOW_TRACKING_URI overrides mlflow.tracking_uri; the run is in the
    store it names, and the config's store never gets one."""
    from mlflow import MlflowClient

    cfg, summary, env_store = env_store_run
    assert summary["mlflow"]["tracking_uri"] == env_store
    client = MlflowClient(tracking_uri=env_store)
    experiment = client.get_experiment_by_name("env-store")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`lakelabel.run_id` = 'env-1'")
    assert [r.info.run_id for r in runs] == [summary["mlflow"]["run_id"]] and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["coverage"] == pytest.approx(summary["metrics"]["coverage"])
    assert not (Path(cfg.mlflow.tracking_uri.removeprefix("sqlite:///"))).exists()
    assert Path(runs[0].info.artifact_uri.removeprefix("file://")).is_relative_to(
        Path(env_store.removeprefix("sqlite:///")).parent / "artifacts")


def test_pyfunc_label_model_lists_its_columns_and_requires_every_lf(env_store_run):
    """README "Outputs": the logged label model's LF and class names are its columns.json artifact, and its
    signature refuses a DataFrame without one of the LF columns."""
    import json
    import re

    import mlflow
    from mlflow.exceptions import MlflowException

    _, summary, env_store = env_store_run
    uri = summary["label_model"]["mlflow_uri"]
    mlflow.set_tracking_uri(env_store)
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=env_store))
    found = list(folder.rglob("columns.json"))
    assert len(found) == 1, list(folder.rglob("*"))
    names = [lf["name"] for lf in summary["lfs"]]
    assert json.loads(found[0].read_text()) == {"lf_names": names, "label_space": ["neg", "pos"]}
    model = mlflow.pyfunc.load_model(uri)
    votes = pd.DataFrame({name: [-1, 1 if i % 2 else 0] for i, name in enumerate(names)})
    scored = model.predict(votes)
    assert list(scored.columns[:2]) == ["p_neg", "p_pos"] and scored.label.iloc[0] == -1  # no vote: -1
    with pytest.raises(MlflowException, match=re.escape(f"Model is missing inputs ['{names[0]}']")):
        model.predict(votes.drop(columns=names[0]))


def test_the_logged_model_breaks_random_ties_by_row_id_as_the_labels_table(spark, tmp_path):
    """README "Outputs": with ``"random"`` ties, the model loaded from MLflow labels rows as the labels table does
    when the votes DataFrame has their ``row_id`` (a drill: MLflow dropped the column its signature did not name,
    and ties followed row positions)."""
    import mlflow

    rows = make_rows(40)
    rows.loc[::2, ["text", "stars"]] = ["nothing to say here", pd.NA]  # no LF votes: the uniform prior, a tie
    cfg = make_cfg(tmp_path, write_source(tmp_path, rows), label_model={"label_unvoted": True},
                   output={"tie_break_policy": "random"}, mlflow={"enabled": True})
    summary = pipeline.run(spark, cfg, run_id="ties").summary
    ids, L = dense_votes(spark, cfg, load_apply_result(cfg))
    table = delta_io.read_table(spark, cfg.table_path("labels")).toPandas().set_index("row_id").loc[ids]
    unvoted = (L == -1).all(axis=1)
    assert unvoted.sum() >= 20 and set(table.label[unvoted]) == {0, 1}  # ties, broken by a hash of the id
    mlflow.set_tracking_uri(summary["mlflow"]["tracking_uri"])
    model = mlflow.pyfunc.load_model(summary["label_model"]["mlflow_uri"])
    votes = pd.DataFrame(L, columns=list(load_apply_result(cfg).lf_names))
    scored = model.predict(votes.assign(row_id=ids))
    np.testing.assert_array_equal(scored.label.to_numpy(), table.label.to_numpy())
    by_position = model.predict(votes).label.to_numpy()
    assert (by_position[unvoted] != table.label.to_numpy()[unvoted]).any()


def test_a_fit_that_stops_at_max_iter_is_a_warning_line(spark, tmp_path, caplog, recwarn):
    """The label model's ConvergenceWarning is the job's own WARNING line naming the config key, not Python's
    warning with a file and line of labelmodel (a drill saw fit_info_["converged"] False and no word at all)."""
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(40)), label_model={"max_iter": 1})
    with caplog.at_level(logging.WARNING, logger="jobs"):
        summary = pipeline.run(spark, cfg, run_id="short").summary
    assert summary["status"] == "succeeded"
    assert ("fit: the dawid_skene fit stopped at max_iter=1 before its parameters settled (tol=1e-06): its estimates "
            "may be off; raise max_iter (LabelModelConfig, or label_model.max_iter in a lakelabel config)") in caplog.text
    assert not [w for w in recwarn if "max_iter" in str(w.message)]


def test_a_class_no_lf_votes_is_a_warning_at_fit(tmp_path, caplog):
    """A drill: a label space [ham, spam, other] whose LFs vote only ham and spam ran and trained with exit 0 and no
    word; 'other' can never be a label."""
    from jobs import fit_label_model

    cfg = make_cfg(tmp_path, str(tmp_path / "unused"))
    L = np.array([[0, -1], [1, 1], [0, 1], [-1, 1], [0, -1]] * 8)
    with caplog.at_level(logging.WARNING, logger="jobs"):
        fit_label_model.run(cfg, run_id="silent", stats=stats_from_matrix(L, 3, lf_names=["a", "b"]),
                            label_space=["ham", "spam", "other"])
    assert ("fit: no LF votes class 'other': no row gets that label (the label model learns a class only from votes "
            "for it); add an LF that votes it, or drop it from the label space") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jobs"):
        fit_label_model.run(cfg, run_id="voted", stats=stats_from_matrix(L, 2, lf_names=["a", "b"]))
        # With label_unvoted the rows no LF votes get the prior's class, which may be that one, and a given class
        # balance can make it win voted rows (Snorkel's way to a class no LF votes): no warning; nor for a tag task.
        for run_id, settings, tag in (("unvoted", {"label_unvoted": True}, False),
                                      ("balance", {"class_balance": [0.02, 0.02, 0.96]}, False), ("tag", {}, True)):
            fit_label_model.run(make_cfg(tmp_path, str(tmp_path / "unused"), label_model=settings), run_id=run_id,
                                stats=stats_from_matrix(L, 3, lf_names=["a", "b"]),
                                label_space=["ham", "spam", "other"], tag=tag)
    assert "no LF votes" not in caplog.text


def test_an_lf_reading_a_column_outside_its_fields_is_told_to_list_it(spark, tmp_path):
    """A drill: `@labeling_function(fields=["text"])` reading `x.stars` failed with "row has no column 'stars';
    available columns: 'text'. Fix the LF, or raise apply.max_error_rate": the source has the column, and raising
    the error budget is the wrong fix."""
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(40)), lfs={"modules": ["tests.jobs.fields_lfs"],
                                                                          "exclude": ["many_stars_vectorized"]})
    with pytest.raises(LFErrorRateExceeded) as caught:
        apply_lfs.run(spark, cfg, run_id="f1")
    assert str(caught.value).endswith(
        "AttributeError: row has no column 'stars'; available columns: 'text'. A row holds only the LF's fields= "
        "columns (all of them without fields=): add 'stars' to its fields= if the source has that column, else fix "
        "the name"), caught.value
    assert "raise apply.max_error_rate" not in str(caught.value)
    # A vectorized LF's DataFrame: a KeyError may be a column left out of fields= (a re-drill), or not.
    vectorized = make_cfg(tmp_path, str(tmp_path / "src"), lfs={"modules": ["tests.jobs.fields_lfs"],
                                                                 "exclude": ["many_stars"]})
    with pytest.raises(LFErrorRateExceeded) as caught:
        apply_lfs.run(spark, vectorized, run_id="f2", force=True)
    assert str(caught.value).endswith(
        "KeyError: 'stars'. If 'stars' is a source column, add it to the LF's fields= (its DataFrame holds only "
        "those); else fix the LF, or raise apply.max_error_rate"), caught.value
