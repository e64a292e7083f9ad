"""Per-task row masks written by a multi-task apply (``jobs.task_masks``): the same rows, statistics and
labels as grouping the votes table by row, and the fallback to that grouping whenever they cannot be used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs import apply_masks, task_masks
from jobs.apply_masks import TASK_GOLD, TASK_MASK
from jobs.multitask_labels import score_by_mask, score_by_pattern
from labelmodel import LabelModel, LabelModelConfig
from tests.jobs.test_multitask import N, make_source, task_dict

# ---------------------------------------------------------------------------------------------- no Spark


def test_batch_task_masks_equal_each_tasks_own_mask():
    rng = np.random.default_rng(0)
    columns, classes = [(4, 0, 7), (1, 5), (2, 3, 6, 8)], [2, 3, 2]
    votes = np.where(rng.random((500, 9)) < 0.3, rng.integers(0, 3, (500, 9)), -1).astype(np.int8)
    got = apply_masks.batch_task_masks(votes, apply_masks.layout_arrays(columns, classes, 9))
    for t, (cols, k) in enumerate(zip(columns, classes)):
        # A vote outside the task's classes (2 for a 2-class task) sets no bit, as in batch_masks.
        np.testing.assert_array_equal(got[:, t], apply_masks.batch_masks(votes[:, list(cols)], k))
        L = votes[:, list(cols)].astype(np.int16)
        L[L >= k] = -1
        np.testing.assert_array_equal(apply_masks.decode(got[:, t], len(cols), k), L)
    assert apply_masks.batch_task_masks(votes[:0], apply_masks.layout_arrays(columns, classes, 9)).shape == (0, 3)


def test_a_task_whose_codes_do_not_fit_writes_no_masks():
    spec = task_masks.TaskMasks(columns=(tuple(range(10)), tuple(range(10, 42))), classes=(2, 2), gold_tasks=(),
                                gold=None, key="k")  # fmt: skip
    assert not spec.fits()  # the second task: 32 LFs x 2 classes = 64 codes
    assert replace(spec, columns=(tuple(range(10)), tuple(range(10, 41)))).fits()


@pytest.mark.parametrize("wide", [False, True])
def test_distinct_pairs(wide):
    rng = np.random.default_rng(1)
    mask = rng.integers(0, 1 << (62 if wide else 20), 3000, dtype=np.int64)[rng.integers(0, 40, 3000)]
    gold = rng.integers(-1, 2, 3000)
    got = task_masks._distinct(mask, gold, np.ones(3000))
    want = pd.DataFrame({"m": mask, "g": gold}).value_counts().to_dict()
    assert dict(zip(zip(got[0].tolist(), got[1].tolist()), got[2].tolist())) == want
    alone = task_masks._distinct(mask, None, np.ones(3000))
    assert set(alone[1].tolist()) == {-1} and alone[2].sum() == 3000 and len(alone[0]) == len(set(mask.tolist()))


@pytest.mark.parametrize("policy", ["abstain", "first", "random"])
def test_score_by_mask_equals_score_by_pattern(policy):
    rng = np.random.default_rng(2)
    k, m = 3, 6
    L = np.where(rng.random((4000, m)) < 0.2, rng.integers(0, k, (4000, m)), -1).astype(np.int8)
    masks = apply_masks.batch_masks(L, k)
    ids = np.array([f"r{i}" for i in range(len(L))], dtype=object) if policy == "random" else None
    model = LabelModel(cardinality=k, config=LabelModelConfig()).fit(L.astype(np.int64))
    for got, want in zip(score_by_mask(model, masks, m, tie_break_policy=policy, row_ids=ids),
                         score_by_pattern(model, L, tie_break_policy=policy, row_ids=ids)):  # fmt: skip
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------- Spark


def masks_data(tmp, source: str, **sections) -> dict:
    data = task_dict(tmp, source, mlflow={"enabled": False}, apply={"max_error_rate": 0.5})
    data["tasks"]["topic"]["lfs"] = {"modules": ["tests.jobs.task_masks_lfs"]}  # raises on every 10th row
    del data["tasks"]["urgency"]["gold_column"]  # a task without gold: no gold column in the masks
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return data


def masks_cfg(tmp, source: str, **sections):
    from jobs.runtime.config_loading import config_from_dict

    return config_from_dict(masks_data(tmp, source, **sections))


@pytest.fixture(scope="module")
def masked_run(spark, tmp_path_factory):
    """Two runs of the same config: with the masks, then (forced) with the votes grouped by row."""
    from jobs import multitask, pipeline

    tmp = tmp_path_factory.mktemp("task_masks")
    cfg = masks_cfg(tmp, make_source(tmp))
    first = pipeline.run(spark, cfg, run_id="tm-1").summary
    mp = pytest.MonkeyPatch()
    grouped = []
    real = multitask.vote_rows
    mp.setattr(task_masks, "stored", lambda *a, **kw: None)
    mp.setattr(multitask, "vote_rows", lambda *a, **kw: grouped.append(1) or real(*a, **kw))
    try:
        second = pipeline.run(spark, cfg, run_id="tm-2", force=True).summary
    finally:
        mp.undo()
    assert grouped == [1]
    yield cfg, first, second


def _rows(spark, cfg):
    from jobs import delta_io
    from jobs.apply_record import load_apply_result
    from jobs.delta_io.sources import load_source
    from jobs.multitask import vote_rows
    from jobs.tasks import build_task_set

    io = delta_io.delta_io(spark, "local")
    task_set, applied = build_task_set(cfg), load_apply_result(cfg, io)
    source = load_source(spark, cfg.source, io=io)
    spec = task_masks.task_masks(task_set, source)
    stored = task_masks.stored(spark, applied.row_masks, applied.n_rows, spec, source.df.schema["id"].dataType)
    return task_set, applied, spec, stored, vote_rows(spark, applied, task_set, source, io)


@pytest.mark.spark
def test_masks_equal_the_grouped_votes(masked_run, spark):
    cfg, first, second = masked_run
    task_set, applied, spec, stored, grouped = _rows(spark, cfg)
    assert applied.row_masks == {"path": applied.row_masks["path"], "rows": N, "tasks": 4, "layout": spec.key}
    assert Path(applied.row_masks["path"]).is_dir() and stored is not None
    assert sum(lf["errors"] for lf in second["lfs"] if lf["name"] == "py_boom_invoice") == N // 10
    assert spec.gold_tasks == (0, 2, 3)  # urgency has no gold column
    assert [c for c in stored.columns if c.startswith(TASK_GOLD)] == [f"{TASK_GOLD}{i}" for i in (0, 2, 3)]
    big_k, where = task_set.registry.cardinality, {n: i for i, n in enumerate(task_set.registry.names)}
    want = {}
    for r in grouped.collect():
        masks, golds = [], []
        for t, task in enumerate(task_set.tasks):
            k, mask = len(task.label_space), 0
            for j, name in enumerate(task.lf_names):
                votes = [c % big_k for c in r["pattern"] if c // big_k == where[name]]
                mask |= sum(1 << (j * k + v) for v in votes)
            masks.append(mask)
            if t in spec.gold_tasks:
                golds.append(r["golds"][t])
        want[r["row_id"]] = (masks, golds)
    got = {r["row_id"]: ([r[f"{TASK_MASK}{t}"] for t in range(4)], [r[f"{TASK_GOLD}{t}"] for t in spec.gold_tasks])
           for r in stored.collect()}  # fmt: skip
    assert len(got) == N and got == want
    assert any(m for m, _ in got.values()) and {g for _, golds in got.values() for g in golds} == {-1, 0, 1}


@pytest.mark.spark
def test_statistics_and_labels_equal_with_and_without_masks(masked_run, spark):
    from jobs.multitask import aggregate_tasks

    cfg, first, second = masked_run
    task_set, _, _, stored, grouped = _rows(spark, cfg)
    a, b = aggregate_tasks(cfg, stored, task_set), aggregate_tasks(cfg, grouped, task_set)
    for t in task_set.tasks:
        assert a[t.name].stats.equals(b[t.name].stats), t.name
        if t.gold_column:
            np.testing.assert_array_equal(a[t.name].gold_counts, b[t.name].gold_counts)
        else:
            assert a[t.name].gold_counts is None and b[t.name].gold_counts is None
        assert first["tasks"][t.name]["patterns"] == second["tasks"][t.name]["patterns"] == a[t.name].n_patterns
    # Past aggregate.max_patterns, each task is aggregated on its own from its mask column.
    few = replace(cfg, aggregate=replace(cfg.aggregate, max_patterns=1))
    c = aggregate_tasks(few, stored, task_set)
    assert c["topic"].stats.n_rows == N and c["topic"].n_patterns == a["topic"].n_patterns
    np.testing.assert_array_equal(c["topic"].stats.overlap, a["topic"].stats.overlap)

    path = first["tables"]["labels"]["path"]
    tables = [DeltaTable(path, version=s["tables"]["labels"]["version"]).to_pandas().sort_values("row_id")
              .drop(columns=["run_id", "votes_version"]).reset_index(drop=True) for s in (first, second)]  # fmt: skip
    assert len(tables[0]) == N
    for column in tables[0].columns:
        assert tables[0][column].map(repr).tolist() == tables[1][column].map(repr).tolist(), column


@pytest.mark.spark
def test_masks_are_read_only_when_they_fit_the_run(masked_run, spark, tmp_path):
    from jobs import pipeline

    cfg, first, second = masked_run
    task_set, applied, spec, stored, _ = _rows(spark, cfg)
    id_type = stored.schema["row_id"].dataType
    assert task_masks.stored(spark, applied.row_masks, N + 1, spec, id_type) is None  # incomplete
    other = replace(spec, key="another layout")
    assert task_masks.stored(spark, applied.row_masks, N, other, id_type) is None
    assert apply_masks.stored_masks(spark, applied.row_masks, N, None, id_type) is None  # not one task's masks
    folder = applied.row_masks["path"]

    # An incremental apply (one LF dropped) groups its votes into each task's masks for the new layout and deletes
    # the replaced votes' folder; a task's labels still come out.
    fewer = masks_cfg(Path(cfg.lakehouse).parent, cfg.source.path, lfs={"exclude": ["kw_app"]})
    third = pipeline.run(spark, fewer, run_id="tm-3").summary
    assert third["tables"]["labels"]["rows"] == N and not Path(folder).exists()
    _, applied3, spec3, stored3, _ = _rows(spark, fewer)
    assert applied3.applied_lfs == () and applied3.row_masks["layout"] == spec3.key != spec.key
    assert stored3 is not None and stored3.count() == N

    # A folder gone: not read either.
    forced = pipeline.run(spark, fewer, run_id="tm-4", force=True).summary
    _, applied4, spec4, stored4, _ = _rows(spark, fewer)
    assert stored4 is not None and forced["tasks"]["topic"]["patterns"] == third["tasks"]["topic"]["patterns"]
    apply_masks.remove(applied4.row_masks["path"], fewer.lakehouse)
    assert task_masks.stored(spark, applied4.row_masks, N, spec4, id_type) is None

    # A full apply that fails its error budget commits nothing and leaves no masks folder behind.
    strict = masks_cfg(Path(cfg.lakehouse).parent, cfg.source.path, apply={"max_error_rate": 0.01})
    before = set(Path(cfg.lakehouse).rglob(f"{apply_masks.FOLDER_PREFIX}*"))
    with pytest.raises(Exception, match="py_boom_invoice"):
        pipeline.run(spark, strict, run_id="tm-5", force=True)
    assert set(Path(cfg.lakehouse).rglob(f"{apply_masks.FOLDER_PREFIX}*")) == before


@pytest.mark.spark
def test_apply_alone_writes_the_masks_the_run_reads(spark, tmp_path, monkeypatch):
    """`lakelabel apply` on a multi-task config writes each task's masks, as `lakelabel run`'s apply does (it wrote
    one mask over every LF, a layout the run does not read, or none when every LF's codes passed 62): the run after it
    reuses its votes and reads its masks instead of grouping the votes by row, the next `apply` alone carries them,
    and the labels equal a --force run's."""
    import yaml

    from jobs import cli, multitask, pipeline
    from tests.jobs.test_incremental_masks import same_frames, task_masks_and_labels

    source = make_source(tmp_path)
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump(masks_data(tmp_path, source)))
    cfg = masks_cfg(tmp_path, source)

    def run_after_apply(run_id: str) -> dict:
        def no_grouping(*args, **kwargs):
            raise AssertionError("the run grouped the votes by row: it did not read the masks the apply wrote")

        with monkeypatch.context() as mp:
            mp.setattr(multitask, "vote_rows", no_grouping)
            return pipeline.run(spark, cfg, run_id=run_id).summary

    assert cli.main(["apply", "--config", str(path), "--run-id", "a1", "-q"]) == 0
    first = run_after_apply("r1")
    assert first["tables"]["votes"]["reused"]
    masks, labels = task_masks_and_labels(spark, cfg, first, N)
    assert len(masks) == N

    df = pd.read_parquet(source)  # rows added: the next apply alone carries the masks and adds the new rows'
    pd.concat([df, df.iloc[:5].assign(id=lambda d: d.id + 1000)]).to_parquet(source, index=False)
    assert cli.main(["apply", "--config", str(path), "--run-id", "a2", "-q"]) == 0
    second = run_after_apply("r2")
    assert second["tables"]["votes"]["reused"]
    inc_masks, inc_labels = task_masks_and_labels(spark, cfg, second, N + 5)

    forced = pipeline.run(spark, cfg, run_id="r3", force=True).summary
    force_masks, force_labels = task_masks_and_labels(spark, cfg, forced, N + 5)
    assert inc_masks == force_masks and {k: v for k, v in force_masks.items() if k in masks} == masks
    same_frames(inc_labels, force_labels)
