"""Row masks of an incremental apply (``jobs.incremental_masks``): the previous masks carried for the rows
that stay, the reapplied rows' written by the pass; equal to what a ``--force`` apply writes, and the same
statistics and labels. An apply that changes the LFs groups its votes into new masks (``jobs.grouped_masks``),
which the next one carries; a failure leaves no masks folder."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable, write_deltalake

from jobs import aggregate, apply_lfs, apply_masks, delta_io, incremental_masks, pipeline
from jobs.apply_record import load_apply_result
from jobs.delta_io.sources import load_source
from lf_library.errors import LFErrorRateExceeded
from tests.jobs.test_apply_masks import grouped
from tests.jobs.test_pipeline import make_cfg, make_rows

pytestmark = pytest.mark.spark


def masks_of(spark, cfg, applied) -> dict:
    """{row_id: (mask, gold)} read from the masks folder ``applied`` names (none: fail)."""
    source = load_source(spark, cfg.source)
    rows = apply_masks.stored_masks(spark, applied.row_masks, applied.n_rows, source.gold_column,
                                    source.df.schema["id"].dataType)
    assert rows is not None, applied.row_masks
    return {r["row_id"]: (r[aggregate.MASK], r["gold"]) for r in rows.collect()}


def labels(cfg, version=None) -> pd.DataFrame:
    table = DeltaTable(cfg.table_path("labels"), version=version).to_pandas()
    return table.drop(columns=["run_id", "label_model", "votes_version"]).sort_values("row_id").reset_index(drop=True)


def folders(cfg) -> set[Path]:
    return set(Path(cfg.lakehouse).rglob(f"{apply_masks.FOLDER_PREFIX}*"))


def same_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        assert a[column].map(repr).tolist() == b[column].map(repr).tolist(), column


def parquet_source(tmp_path, n: int, **sections):
    """A one-file Parquet source of ``make_rows(n)`` and its config: ``(folder, cfg)``."""
    src = tmp_path / "src"
    src.mkdir()
    make_rows(n).to_parquet(src / "part-0.parquet", index=False)
    return src, make_cfg(tmp_path, str(src), **sections)


@pytest.fixture(scope="module")
def delta_runs(spark, tmp_path_factory):
    """A Delta source: a full run, rows added, deleted and edited, an incremental run, then a --force run."""
    tmp = tmp_path_factory.mktemp("incr_masks")
    src = str(tmp / "src")
    rows = make_rows(40)
    for i in range(4):  # four files, so a delete or an update rewrites one of them
        write_deltalake(src, rows.iloc[i * 10:(i + 1) * 10], mode="append")
    cfg = make_cfg(tmp, src)
    cfg = replace(cfg, source=replace(cfg.source, format="delta"))
    pipeline.run(spark, cfg, run_id="p1")
    first = load_apply_result(cfg)
    write_deltalake(src, make_rows(46).iloc[40:].assign(id=lambda d: "n" + d.id), mode="append")
    DeltaTable(src).delete("id IN ('r011', 'r012', 'r025')")
    DeltaTable(src).update(updates={"text": "'I love it, great !!'", "gold": "'pos'"}, predicate="id = 'r031'")
    calls = []
    real = aggregate.mask_frame
    mp = pytest.MonkeyPatch()
    mp.setattr(aggregate, "mask_frame", lambda *a, **k: calls.append(1) or real(*a, **k))
    try:
        second = pipeline.run(spark, cfg, run_id="p2").summary
    finally:
        mp.undo()
    inc = load_apply_result(cfg)
    out = {"cfg": cfg, "first": first, "inc": inc, "summary": second, "grouped_calls": calls, "folders": folders(cfg),
           "inc_masks": masks_of(spark, cfg, inc), "inc_grouped": grouped(spark, cfg, inc),
           "inc_labels": labels(cfg), "inc_agg": aggregate.run(spark, cfg, applied=inc)}
    pipeline.run(spark, cfg, run_id="p3", force=True)
    forced = load_apply_result(cfg)
    out.update(forced=forced, force_masks=masks_of(spark, cfg, forced), force_labels=labels(cfg),
               force_agg=aggregate.run(spark, cfg, applied=forced))
    return out


def test_an_incremental_run_reads_masks_and_groups_no_votes(delta_runs):
    inc, summary = delta_runs["inc"], delta_runs["summary"]
    assert summary["apply"]["row_changes"]["reapplied"] == 7 and summary["apply"]["row_changes"]["gone"] == 3
    assert inc.applied_lfs == () and inc.row_masks["rows"] == inc.n_rows == 43
    assert inc.row_masks["path"] != delta_runs["first"].row_masks["path"]
    assert delta_runs["grouped_calls"] == []  # aggregate and write read the masks
    # The run succeeded: the masks of the votes it replaced are gone, its own are named by the votes.
    assert delta_runs["folders"] == {Path(inc.row_masks["path"])}


def test_incremental_masks_equal_the_grouped_votes_and_force(delta_runs):
    got = delta_runs["inc_masks"]
    assert len(got) == 43 and got == delta_runs["inc_grouped"] == delta_runs["force_masks"]
    assert "r011" not in got and "nr040" in got and got["r031"][1] == 1  # gone, new, edited (gold pos)
    a, b = delta_runs["inc_agg"], delta_runs["force_agg"]
    assert a.stats.equals(b.stats)
    np.testing.assert_array_equal(a.gold_counts, b.gold_counts)
    same_frames(delta_runs["inc_labels"], delta_runs["force_labels"])


def test_parquet_source_rows_added_changed_removed(spark, tmp_path, caplog, monkeypatch):
    """Changed rows from stored row hashes: appended files (no stored mask file rewritten), then a file
    rewritten with rows removed and edited; each time the masks equal the grouping and a --force apply's."""
    src = tmp_path / "src"
    src.mkdir()
    rows = make_rows(40)
    rows.iloc[:20].to_parquet(src / "part-0.parquet", index=False)
    rows.iloc[20:].to_parquet(src / "part-1.parquet", index=False)
    cfg = make_cfg(tmp_path, str(src))
    apply_lfs.run(spark, cfg, run_id="a1")

    make_rows(46).iloc[40:].assign(id=lambda d: "z" + d.id).to_parquet(src / "part-2.parquet", index=False)
    with caplog.at_level(logging.INFO, logger="jobs.incremental_masks"):
        added = apply_lfs.run(spark, cfg, run_id="a2")
    assert " 0 rewritten" in caplog.text  # the new ids sort after the old: every stored file linked
    caplog.clear()
    assert added.row_changes["reapplied"] == 6 and added.row_masks["rows"] == 46
    assert masks_of(spark, cfg, added) == grouped(spark, cfg, added)

    edited = rows.iloc[:20].copy()
    edited.loc[edited.id == "r004", ["text", "gold"]] = ["awful, I hate it", "neg"]
    edited[~edited.id.isin(["r001", "r002"])].to_parquet(src / "part-0.parquet", index=False)
    with caplog.at_level(logging.INFO, logger="jobs.incremental_masks"):
        changed = apply_lfs.run(spark, cfg, run_id="a3")
    assert "carried from" in caplog.text and " 0 rewritten" not in caplog.text
    assert changed.row_changes["gone"] == 2 and changed.row_changes["reapplied"] == 1
    got = masks_of(spark, cfg, changed)
    assert len(got) == 44 and got == grouped(spark, cfg, changed)

    # New ids among the old ones (not after them): no stored mask file holds them, so every file is linked.
    make_rows(50).iloc[46:].assign(id=lambda d: "r00" + d.id.str[-1] + "x").to_parquet(src / "part-3.parquet",
                                                                                       index=False)
    with caplog.at_level(logging.INFO, logger="jobs.incremental_masks"), monkeypatch.context() as mp:
        mp.setattr(apply_masks, "remove", lambda *a: None)  # the replaced folder kept: its files' link counts
        among = apply_lfs.run(spark, cfg, run_id="a4")
    assert " 0 rewritten" in caplog.text, caplog.text
    assert among.row_changes["reapplied"] == 4 and among.row_changes["gone"] == 0
    got = masks_of(spark, cfg, among)
    assert len(got) == 48 and "r006x" in got and got == grouped(spark, cfg, among)
    linked = [f for f in Path(among.row_masks["path"]).glob("part-k*.parquet")]
    assert linked and all(f.stat().st_nlink == 2 for f in linked)  # links, not copies (the old folder is kept)

    forced = apply_lfs.run(spark, cfg, run_id="a5", force=True)
    assert masks_of(spark, cfg, forced) == got


def test_a_copied_lakehouse_leaves_the_originals_masks(spark, tmp_path):
    """A lakehouse copied with its votes (cp -a): their apply record names the original's masks folder, which
    an apply in the copy neither deletes when it replaces those votes nor needs."""
    import shutil

    src, cfg = parquet_source(tmp_path, 30)
    first = apply_lfs.run(spark, cfg, run_id="c1")
    copy = replace(cfg, lakehouse=str(tmp_path / "copy"))
    shutil.copytree(cfg.lakehouse, copy.lakehouse, symlinks=True)
    forced = apply_lfs.run(spark, copy, run_id="c2", force=True)
    assert Path(first.row_masks["path"]).is_dir() and masks_of(spark, cfg, first) == grouped(spark, cfg, first)
    assert forced.row_masks["path"].startswith(str(copy.lakehouse_path))


def test_lfs_changed_group_the_votes_into_masks(spark, tmp_path, caplog):
    """A dropped LF changes the masks' bits: none carried, said in the log; the apply groups the votes into new ones."""
    src, cfg = parquet_source(tmp_path, 30)
    first = apply_lfs.run(spark, cfg, run_id="l1")
    fewer = make_cfg(tmp_path, str(src), lfs={"exclude": ["boom", "out_of_space", "stars"]})
    with caplog.at_level(logging.INFO, logger="jobs.incremental_masks"):
        second = apply_lfs.run(spark, fewer, run_id="l2")
    assert second.applied_lfs == () and second.row_changes["removed_lfs"] == ["stars"]
    assert "no row masks to carry into this incremental apply (LFs were added, changed or removed" in caplog.text
    assert second.row_masks["rows"] == 30 and second.row_masks["path"] != first.row_masks["path"]
    assert load_apply_result(fewer).row_masks == second.row_masks
    assert masks_of(spark, fewer, second) == grouped(spark, fewer, second)
    assert folders(cfg) == {Path(second.row_masks["path"])}  # the replaced votes' masks deleted at commit
    # The aggregate stage run on its own reads them: the statistics of the grouped votes.
    a, b = aggregate.run(spark, fewer), aggregate.run(spark, fewer, applied=replace(second, row_masks={}))
    assert a.stats.equals(b.stats)
    np.testing.assert_array_equal(a.gold_counts, b.gold_counts)


@pytest.fixture(scope="module")
def lf_edit_runs(spark, tmp_path_factory):
    """Runs of one lakehouse: a full run; an LF added and one removed (an incremental run that groups the votes
    into masks); rows appended, edited and removed (an incremental run that carries them). After each of the
    last two, a --force run of the same config and source in a second lakehouse to compare with."""
    tmp = tmp_path_factory.mktemp("lf_edit")
    src = tmp / "src"
    src.mkdir()
    rows = make_rows(40)
    rows.to_parquet(src / "part-0.parquet", index=False)
    cfg = make_cfg(tmp, str(src), lfs={"exclude": ["boom", "out_of_space", "stars"]})
    pipeline.run(spark, cfg, run_id="e1")
    first = load_apply_result(cfg)
    # "stars" added, "exclaim" removed.
    cfg = make_cfg(tmp, str(src), lfs={"exclude": ["boom", "out_of_space", "exclaim"]})
    other = make_cfg(tmp / "other", str(src), lfs={"exclude": ["boom", "out_of_space", "exclaim"]})
    out: dict = {"cfg": cfg, "first": first}
    for step, change in (("edit", None), ("rows", "append")):
        if change:
            make_rows(46).iloc[40:].assign(id=lambda d: "n" + d.id).to_parquet(src / "part-1.parquet", index=False)
            edited = rows.copy()
            edited.loc[edited.id == "r004", ["text", "gold"]] = ["awful, I hate it", "neg"]
            edited[~edited.id.isin(["r001", "r002"])].to_parquet(src / "part-0.parquet", index=False)
        calls = []
        real = aggregate.mask_frame
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(aggregate, "mask_frame", lambda *a, **k: calls.append(1) or real(*a, **k))
            summary = pipeline.run(spark, cfg, run_id=f"e-{step}").summary
        applied = load_apply_result(cfg)
        pipeline.run(spark, other, run_id=f"o-{step}", force=True)
        forced = load_apply_result(other)
        out[step] = {"summary": summary, "applied": applied, "grouped_calls": calls, "folders": folders(cfg),
                     "complete": apply_masks.complete(applied.row_masks.get("path", ""), applied.n_rows),
                     "masks": masks_of(spark, cfg, applied), "grouped": grouped(spark, cfg, applied),
                     "labels": labels(cfg), "agg": aggregate.run(spark, cfg, applied=applied),
                     "force_masks": masks_of(spark, other, forced), "force_labels": labels(other),
                     "force_agg": aggregate.run(spark, other, applied=forced)}
    return out


@pytest.mark.parametrize("step", ["edit", "rows"])
def test_masks_after_an_lf_edit_equal_force_and_are_carried(lf_edit_runs, step):
    """The run that edits the LFs groups the votes once (in its apply, not again in aggregate or write) into
    complete masks named by its votes commit; the next run, rows only, carries them. Each time the masks,
    statistics and labels equal a --force run's."""
    run = lf_edit_runs[step]
    applied, apply = run["applied"], run["summary"]["apply"]
    if step == "edit":
        assert apply["applied_lfs"] == ["stars"] and apply["row_changes"]["removed_lfs"] == ["exclaim"]
        assert run["grouped_calls"] == [1]  # one grouping of the votes, by the apply
        n = 40
    else:
        assert apply["applied_lfs"] == [] and apply["row_changes"]["reapplied"] == 7
        assert apply["row_changes"]["gone"] == 2
        assert run["grouped_calls"] == []  # carried: no grouping at all
        n = 44
    assert applied.row_masks["rows"] == applied.n_rows == n and run["complete"]
    assert run["folders"] == {Path(applied.row_masks["path"])}  # the replaced votes' masks deleted
    assert len(run["masks"]) == n and run["masks"] == run["grouped"] == run["force_masks"]
    a, b = run["agg"], run["force_agg"]
    assert a.stats.equals(b.stats)
    np.testing.assert_array_equal(a.gold_counts, b.gold_counts)
    same_frames(run["labels"], run["force_labels"])
    if step == "rows":
        assert applied.row_masks["path"] != lf_edit_runs["edit"]["applied"].row_masks["path"]


def test_a_failed_or_interrupted_lf_edit_leaves_no_masks(spark, tmp_path, monkeypatch):
    """An apply that edits the LFs and is interrupted while (or after) it groups the votes into masks, or a run
    that fails after such an apply: the votes, their record and their masks folder as they were, no new folder.
    A grouping that fails: the apply commits without masks."""
    from jobs import grouped_masks, write_labels

    src, cfg = parquet_source(tmp_path, 40)
    pipeline.run(spark, cfg, run_id="g1")
    first = load_apply_result(cfg)
    votes_version = delta_io.table_version(cfg.table_path("votes"))
    fewer = make_cfg(tmp_path, str(src), lfs={"exclude": ["boom", "out_of_space", "stars"]})

    def unchanged(committed: bool = False):
        assert folders(cfg) == {Path(first.row_masks["path"])} and apply_masks.complete(first.row_masks["path"], 40)
        if not committed:  # else the votes were put back by a new commit
            assert delta_io.table_version(cfg.table_path("votes")) == votes_version
        assert load_apply_result(cfg).row_masks == first.row_masks

    real = grouped_masks.write

    def write_then_stop(rows, folder):
        real(rows, folder)
        assert list(Path(folder).glob(f"{grouped_masks.PREFIX}*.parquet"))  # something to clean up
        raise KeyboardInterrupt

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    for module, name, fake, run_id in ((grouped_masks, "write", write_then_stop, "g2"),
                                       (apply_masks, "summary", stop, "g3")):  # fmt: skip
        with monkeypatch.context() as mp:
            mp.setattr(module, name, fake)
            with pytest.raises(KeyboardInterrupt):
                apply_lfs.run(spark, fewer, run_id=run_id)
        unchanged()

    # The apply commits with its grouped masks, then the write fails: the votes are put back with their folder.
    with monkeypatch.context() as mp:
        mp.setattr(write_labels, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("labels disk full")))
        with pytest.raises(OSError, match="disk full"):
            pipeline.run(spark, fewer, run_id="g4")
    unchanged(committed=True)

    # SIGTERM during the grouping, whose cancelled job raises its own error (as a collect does): the apply stops,
    # it does not commit without masks and exit 0 (a review).
    from jobs.runtime import signals

    with monkeypatch.context() as mp:
        mp.setattr(grouped_masks, "write", lambda *a: (_ for _ in ()).throw(
            RuntimeError("Job 9 cancelled as part of cancellation of all jobs")))
        mp.setattr(signals, "_signalled", "terminated")  # what the handler records before it cancels the jobs
        with pytest.raises(RuntimeError, match="cancelled as part of cancellation"):
            apply_lfs.run(spark, fewer, run_id="g6")
    unchanged(committed=True)

    # A grouping that fails: the apply goes on without masks (aggregate and write group the votes).
    with monkeypatch.context() as mp:
        mp.setattr(grouped_masks, "write", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
        done = apply_lfs.run(spark, fewer, run_id="g5")
    assert done.row_masks == {} and done.row_changes["removed_lfs"] == ["stars"]
    assert folders(cfg) == set()  # the new folder removed, the replaced votes' folder deleted at commit


def test_a_failed_or_interrupted_incremental_apply_leaves_no_masks(spark, tmp_path, monkeypatch):
    src, cfg = parquet_source(tmp_path, 40, lfs={"exclude": ["out_of_space"]}, apply={"max_error_rate": 0.1})
    first = apply_lfs.run(spark, cfg, run_id="f1")
    votes_version = delta_io.table_version(cfg.table_path("votes"))
    before = folders(cfg)
    assert before == {Path(first.row_masks["path"])}

    def unchanged():
        assert folders(cfg) == before and apply_masks.complete(first.row_masks["path"], 40)
        assert delta_io.table_version(cfg.table_path("votes")) == votes_version
        assert load_apply_result(cfg).row_masks == first.row_masks

    # "boom" raises on the new rows, past the error budget: nothing committed, no new masks folder.
    booms = make_rows(50).iloc[40:].assign(id=lambda d: "b" + d.id, text=lambda d: d.text + " boom")
    booms.to_parquet(src / "part-1.parquet", index=False)
    with pytest.raises(LFErrorRateExceeded, match="boom"):
        apply_lfs.run(spark, cfg, run_id="f2")
    unchanged()
    (src / "part-1.parquet").unlink()
    make_rows(46).iloc[40:].assign(id=lambda d: "n" + d.id).to_parquet(src / "part-1.parquet", index=False)

    # Ctrl-C or SIGTERM after the masks were carried, and after the votes and the pass's masks were written.
    real = incremental_masks.carry

    def carry_then_stop(spark, old, new, drop, bounds=None, **options):
        real(spark, old, new, drop, bounds, **options)
        assert list(Path(new).glob("part-*.parquet"))  # something to clean up
        raise KeyboardInterrupt

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    for module, name, fake, run_id in ((incremental_masks, "carry", carry_then_stop, "f3"),
                                       (apply_lfs, "_check_coverage", stop, "f4")):  # fmt: skip
        with monkeypatch.context() as mp:
            mp.setattr(module, name, fake)
            with pytest.raises(KeyboardInterrupt):
                apply_lfs.run(spark, cfg, run_id=run_id)
        unchanged()

    # A carry that fails: the apply goes on without masks.
    with monkeypatch.context() as mp:
        mp.setattr(incremental_masks, "carry", lambda *a, **k: (_ for _ in ()).throw(OSError("disk gone")))
        done = apply_lfs.run(spark, cfg, run_id="f5")
    assert done.row_masks == {} and done.row_changes["reapplied"] == 6
    assert folders(cfg) == set()  # the new folder removed, the replaced votes' folder deleted at commit


def test_a_run_that_fails_after_its_apply_puts_the_masks_back(spark, tmp_path, monkeypatch):
    """The votes are put back with the folder they name; the next run carries from that folder."""
    from jobs import write_labels

    src, cfg = parquet_source(tmp_path, 40)
    pipeline.run(spark, cfg, run_id="r1")
    first = load_apply_result(cfg)
    make_rows(46).iloc[40:].assign(id=lambda d: "n" + d.id).to_parquet(src / "part-1.parquet", index=False)

    def broken(*args, **kwargs):
        raise OSError("labels disk full")

    with monkeypatch.context() as mp:
        mp.setattr(write_labels, "run", broken)
        with pytest.raises(OSError, match="disk full"):
            pipeline.run(spark, cfg, run_id="r2")
    assert load_apply_result(cfg).row_masks == first.row_masks and folders(cfg) == {Path(first.row_masks["path"])}
    assert apply_masks.complete(first.row_masks["path"], 40)

    pipeline.run(spark, cfg, run_id="r3")
    third = load_apply_result(cfg)
    assert third.row_masks["rows"] == 46 and folders(cfg) == {Path(third.row_masks["path"])}
    assert masks_of(spark, cfg, third) == grouped(spark, cfg, third)


def test_several_tasks_carry_their_masks(spark, tmp_path):
    """A multi-task run (jobs.task_masks): each task's masks carried and added, equal to a --force run's,
    and the same labels."""
    from tests.jobs.test_multitask import N, make_source
    from tests.jobs.test_task_masks import masks_cfg

    source = make_source(tmp_path)
    cfg = masks_cfg(tmp_path, source)
    pipeline.run(spark, cfg, run_id="t1")
    df = pd.read_parquet(source)
    extra = df.iloc[:3].assign(id=lambda d: d.id + 1000)
    df.loc[df.id == 7, "text"] = "please refund my money asap"
    pd.concat([df[~df.id.isin([3, 4])], extra]).to_parquet(source, index=False)
    second = pipeline.run(spark, cfg, run_id="t2").summary
    assert second["apply"]["row_changes"]["reapplied"] == 4 and second["apply"]["row_changes"]["gone"] == 2

    inc_masks, inc_labels = task_masks_and_labels(spark, cfg, second, N + 1)
    forced = pipeline.run(spark, cfg, run_id="t3", force=True).summary
    force_masks, force_labels = task_masks_and_labels(spark, cfg, forced, N + 1)
    assert len(inc_masks) == N + 1 and inc_masks == force_masks
    same_frames(inc_labels, force_labels)


def task_masks_and_labels(spark, cfg, summary, n: int) -> tuple[dict, pd.DataFrame]:
    """A multi-task run's stored masks ({row_id: masks and golds}, complete for ``n`` rows) and its labels."""
    from tests.jobs.test_task_masks import _rows

    _, applied, spec, stored, _ = _rows(spark, cfg)
    assert stored is not None and applied.row_masks["layout"] == spec.key and applied.row_masks["rows"] == n
    rows = {r["row_id"]: tuple(r[c] for c in sorted(stored.columns) if c != "row_id") for r in stored.collect()}
    table = DeltaTable(summary["tables"]["labels"]["path"], version=summary["tables"]["labels"]["version"])
    return rows, table.to_pandas().drop(columns=["run_id", "votes_version"]).sort_values("row_id").reset_index(
        drop=True)


def test_several_tasks_group_their_masks_after_an_lf_edit(spark, tmp_path):
    """A multi-task run that adds an LF: the apply groups the votes into each task's masks (the run groups no
    votes again), equal to a --force run's; the next run, rows only, carries them. The same labels each time."""
    from jobs import multitask
    from tests.jobs.test_multitask import N, make_source
    from tests.jobs.test_task_masks import masks_cfg

    source = make_source(tmp_path)
    cfg = masks_cfg(tmp_path, source, lfs={"exclude": ["kw_app"]})
    pipeline.run(spark, cfg, run_id="t1")
    first = load_apply_result(cfg)
    cfg = masks_cfg(tmp_path, source)  # kw_app added
    (tmp_path / "other").mkdir()
    other = masks_cfg(tmp_path / "other", source)

    def run_both(run_id: str, n: int):
        calls = []
        real = multitask.vote_rows
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(multitask, "vote_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
            summary = pipeline.run(spark, cfg, run_id=run_id).summary
        assert calls == []  # aggregate and write read the masks
        applied = load_apply_result(cfg)
        assert folders(cfg) == {Path(applied.row_masks["path"])}
        forced = pipeline.run(spark, other, run_id=run_id, force=True).summary
        (masks, labels), (force_masks, force_labels) = (task_masks_and_labels(spark, c, s, n)
                                                        for c, s in ((cfg, summary), (other, forced)))
        assert len(masks) == n and masks == force_masks
        same_frames(labels, force_labels)
        return summary, applied

    edit, edited = run_both("t2", N)
    assert edit["apply"]["applied_lfs"] == ["kw_app"] and edited.row_masks["path"] != first.row_masks["path"]
    df = pd.read_parquet(source)
    extra = df.iloc[:3].assign(id=lambda d: d.id + 1000)
    df.loc[df.id == 7, "text"] = "please refund my money asap"
    pd.concat([df[~df.id.isin([3, 4])], extra]).to_parquet(source, index=False)
    rows, _ = run_both("t3", N + 1)
    assert rows["apply"]["applied_lfs"] == [] and rows["apply"]["row_changes"]["reapplied"] == 4


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_lakehouse_reuses_its_own_votes_and_masks(spark, tmp_path, how, monkeypatch):
    """The votes commit names the votes table and the masks folder by absolute path: after ``mv`` (or ``cp -a``)
    a run whose votes are up to date read them where they were (a moved lakehouse: exit 2, no Delta table there;
    a copy: the original's votes and masks). The record is rebased onto the lakehouse it is read from."""
    import shutil

    src, cfg = parquet_source(tmp_path, 30)
    pipeline.run(spark, cfg, run_id="m1")
    there = replace(cfg, lakehouse=str(tmp_path / "elsewhere" / "lake"))
    (shutil.move if how == "move" else shutil.copytree)(cfg.lakehouse, there.lakehouse)
    before = {p: p.stat().st_mtime_ns for p in Path(cfg.lakehouse).rglob("*")} if how == "copy" else {}
    stored = load_apply_result(there)
    assert stored.votes_table == there.table_path("votes")
    assert stored.row_masks["path"].startswith(str(there.lakehouse_path) + "/")
    summary = pipeline.run(spark, there, run_id="m2").summary
    assert summary["tables"]["votes"] == {"path": there.table_path("votes"), "version": 0, "reused": True}
    reused = load_apply_result(there)
    assert masks_of(spark, there, reused)  # its own masks, complete
    # A run that fails after its apply puts the votes back with the folder they name (rebased): it stays.
    from jobs import write_labels

    make_rows(33).iloc[30:].assign(id=lambda d: "n" + d.id).to_parquet(src / "part-1.parquet", index=False)
    with monkeypatch.context() as mp:
        mp.setattr(write_labels, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("labels disk full")))
        with pytest.raises(OSError, match="disk full"):
            pipeline.run(spark, there, run_id="m2b")
    assert load_apply_result(there).row_masks == stored.row_masks and apply_masks.complete(stored.row_masks["path"], 30)
    pipeline.run(spark, there, run_id="m3", force=True)
    assert not Path(stored.row_masks["path"]).exists()  # the copy's own replaced masks are deleted
    assert {p: p.stat().st_mtime_ns for p in Path(cfg.lakehouse).rglob("*")} == before  # the original untouched


def _edit_one_row(src: Path, row_id: str) -> None:
    """Rewrite the source file holding ``row_id`` with that row's text changed."""
    for f in sorted(src.glob("*.parquet")):
        df = pd.read_parquet(f)
        if (df.id == row_id).any():
            df.loc[df.id == row_id, ["text", "gold"]] = ["awful, I hate it", "neg"]
            df.to_parquet(f, index=False)
            return
    raise AssertionError(f"no source file holds {row_id}")


def test_a_signal_in_the_carry_job_stops_it_before_the_apply_cleans_up(spark, tmp_path, monkeypatch):
    """A real SIGTERM while the carry's Spark job writes a mask file (lakelabel's handler, as a CLI run has it):
    the apply stops with the votes and masks as they were, no new masks folder, and no task of the carry job
    still running once it has returned (such a task finished its file where the cleanup had just deleted, a
    folder no record names and nothing sweeps). Then a failure inside the job while a signal is being handled
    (the cancelled job's error in the signal's place): the apply stops too, it does not go on without masks."""
    import os
    import signal
    import threading
    import time

    from jobs.runtime import signals

    src, cfg = parquet_source(tmp_path, 40)
    first = apply_lfs.run(spark, cfg, run_id="s1")
    votes_version = delta_io.table_version(cfg.table_path("votes"))
    before = folders(cfg)
    _edit_one_row(src, "r005")  # the carry must rewrite the mask file that holds r005
    alive = str(tmp_path / "carry-task-alive")

    class Hangs(apply_masks.PartitionMasks):  # pickled by value with the carry's function: runs in its task
        def write(self, batch):
            super().write(batch)  # its temporary file is open in the new folder
            while True:  # a heartbeat, written whole (renamed into place)
                with open(alive + ".tmp", "w") as f:
                    f.write(repr(time.time()))
                os.replace(alive + ".tmp", alive)
                time.sleep(0.05)

    def unchanged():
        assert folders(cfg) == before and apply_masks.complete(first.row_masks["path"], 40)
        assert delta_io.table_version(cfg.table_path("votes")) == votes_version
        assert load_apply_result(cfg).row_masks == first.row_masks

    def terminate_once_writing():
        deadline = time.monotonic() + 60
        while not os.path.exists(alive) and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # where it interrupts the collect

    monkeypatch.setattr(apply_masks, "PartitionMasks", Hangs)
    monkeypatch.setattr(signals, "_signalled", None)  # and back after the test
    previous = signals.install_signal_handlers()
    sender = threading.Thread(target=terminate_once_writing)
    try:
        sender.start()
        with pytest.raises(BaseException) as stopped:  # Terminated, or the cancelled job's error in its place
            apply_lfs.run(spark, cfg, run_id="s2")
        returned = time.time()
    finally:
        sender.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert os.path.exists(alive), "the carry job never started writing"
    assert signals.stopped_by_signal(stopped.value), stopped.value
    time.sleep(1.5)  # a task still running would write its heartbeat in this time
    assert float(Path(alive).read_text()) < returned, "a task of the carry job ran on after the apply returned"
    unchanged()

    class Fails(apply_masks.PartitionMasks):
        def write(self, batch):
            raise RuntimeError("Job 9 cancelled as part of cancellation of all jobs")

    monkeypatch.setattr(apply_masks, "PartitionMasks", Fails)
    monkeypatch.setattr(signals, "_signalled", "terminated")  # what the handler records before it cancels the jobs
    with pytest.raises(Exception, match="cancelled as part of cancellation"):
        apply_lfs.run(spark, cfg, run_id="s3")
    unchanged()

    # The same failure inside the job without a signal: the apply goes on, without masks, and leaves no folder.
    monkeypatch.setattr(signals, "_signalled", None)
    done = apply_lfs.run(spark, cfg, run_id="s4")
    assert done.row_masks == {} and done.row_changes["reapplied"] == 1
    assert folders(cfg) == set()


def test_unordered_ids_rewrite_only_the_mask_files_that_hold_a_changed_row(spark, tmp_path, caplog):
    """UUID-like ids: each mask file's row_id range spans nearly every id, so the range cannot tell which file
    holds an edited row; the carry finds the files that do (as the votes' commit does) and links the others."""
    import random
    import uuid

    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(4)
    rows = make_rows(40).assign(id=[str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(40)])
    rows.iloc[:20].to_parquet(src / "part-0.parquet", index=False)
    rows.iloc[20:].to_parquet(src / "part-1.parquet", index=False)
    cfg = make_cfg(tmp_path, str(src))
    first = apply_lfs.run(spark, cfg, run_id="u1")
    mask_files = sorted(Path(first.row_masks["path"]).glob("part-*.parquet"))
    assert len(mask_files) == 2
    ranges = [pd.read_parquet(f).row_id.agg(["min", "max"]).tolist() for f in mask_files]
    edited = next(i for i in sorted(rows.id) if all(lo < i < hi for lo, hi in ranges))  # every range holds it
    _edit_one_row(src, edited)
    with caplog.at_level(logging.INFO, logger="jobs.incremental_masks"):
        changed = apply_lfs.run(spark, cfg, run_id="u2")
    assert changed.row_changes["reapplied"] == 1
    assert "1 file(s) linked, 1 rewritten" in caplog.text, caplog.text
    got = masks_of(spark, cfg, changed)
    assert len(got) == 40 and got[edited][1] == 0 and got == grouped(spark, cfg, changed)
    forced = apply_lfs.run(spark, cfg, run_id="u3", force=True)
    assert masks_of(spark, cfg, forced) == got


def test_appends_keep_the_mask_files_bounded(spark, tmp_path, caplog):
    """Each incremental apply adds its pass's mask files and links the rest: past twice the files a full apply
    writes, the carry compacts the folder into that many. After many appends (and an edit) the count stays
    bounded, and the masks and labels equal a --force run's."""
    src, cfg = parquet_source(tmp_path, 40)
    pipeline.run(spark, cfg, run_id="b0")
    counts, compactions = [], 0
    for i in range(1, 9):
        make_rows(40 + 3 * i).iloc[-3:].assign(id=lambda d, i=i: f"a{i}" + d.id).to_parquet(
            src / f"part-a{i}.parquet", index=False)
        if i == 5:
            _edit_one_row(src, "r007")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="jobs.incremental_masks"):
            if i < 8:
                applied = apply_lfs.run(spark, cfg, run_id=f"b{i}")
            else:  # the last through the pipeline, for its labels
                pipeline.run(spark, cfg, run_id=f"b{i}")
                applied = load_apply_result(cfg)
        compactions += "compacted" in caplog.text
        full = incremental_masks.full_apply_files(load_source(spark, cfg.source).df)
        count = len(list(Path(applied.row_masks["path"]).glob("part-*.parquet")))
        counts.append(count)
        # At most COMPACT_FACTOR times a full apply's files carried, plus this run's pass (one file per core).
        assert 0 < count <= incremental_masks.COMPACT_FACTOR * full + spark.sparkContext.defaultParallelism, counts
    assert compactions >= 1, counts
    assert applied.row_masks["rows"] == 64 and masks_of(spark, cfg, applied) == grouped(spark, cfg, applied)
    inc_masks, inc_labels = masks_of(spark, cfg, applied), labels(cfg)
    pipeline.run(spark, cfg, run_id="forced", force=True)
    forced = load_apply_result(cfg)
    assert masks_of(spark, cfg, forced) == inc_masks
    same_frames(inc_labels, labels(cfg))
