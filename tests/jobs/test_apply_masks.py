"""Row masks written by a full apply (``jobs.apply_masks``): the same rows, statistics and labels as
grouping the votes table by row, and the fallback to that grouping whenever they cannot be used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from jobs import aggregate, apply_lfs, apply_masks, delta_io, write_labels
from jobs.delta_io.sources import load_source
from jobs.apply_record import load_apply_result
from jobs.fit_label_model import run as fit
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source


def test_batch_masks_set_one_bit_per_vote():
    votes = np.array([[2, -1, 0], [-1, -1, -1], [0, 1, 2], [-1, 5, 1]])  # 5: outside the 3 classes
    masks = apply_masks.batch_masks(votes, 3)
    expected = [sum(1 << (j * 3 + v) for j, v in enumerate(row) if 0 <= v < 3) for row in votes.tolist()]
    assert masks.tolist() == expected
    assert apply_masks.fits(20, 3) and not apply_masks.fits(21, 3)


def test_sweep_deletes_only_masks_folders_of_dead_applies(tmp_path):
    import subprocess
    import sys

    runs = tmp_path / "lake" / "_lakelabel" / "runs"
    # An apply killed with its folder half written: the folder and its lock file stay, nobody holds the lock.
    dead = apply_masks.new_folder(runs / "killed")
    subprocess.run([sys.executable, "-c", "import os, sys; from jobs import apply_masks; "
                    "apply_masks.create(sys.argv[1]); open(os.path.join(sys.argv[1], 'part-00000.parquet'), 'w'); "
                    "os._exit(9)", dead], check=False, cwd=Path(__file__).parents[2])
    assert (Path(dead) / apply_masks.WRITER_LOCK).exists()
    # Killed right after its votes commit: unlocked, but the votes name it.
    named = apply_masks.new_folder(runs / "committed")
    subprocess.run([sys.executable, "-c", "import os, sys; from jobs import apply_masks; "
                    "apply_masks.create(sys.argv[1]); os._exit(9)", named], check=False, cwd=Path(__file__).parents[2])
    running = apply_masks.new_folder(runs / "running")  # an apply of this process, still running
    apply_masks.create(running)
    finished = apply_masks.new_folder(runs / "finished")  # a finished apply's (or an older lakelabel's): no lock
    apply_masks.create(finished)
    apply_masks.release(finished)
    assert not (Path(finished) / apply_masks.WRITER_LOCK).exists()

    assert apply_masks.sweep(tmp_path / "lake", [named]) == [dead]
    assert not Path(dead).exists()
    assert Path(named).is_dir() and Path(running).is_dir() and Path(finished).is_dir()
    apply_masks.release(running)
    assert not (Path(running) / apply_masks.WRITER_LOCK).exists()
    assert apply_masks.sweep(tmp_path / "lake", [named]) == []
    assert apply_masks.sweep(tmp_path / "nothing") == []


def test_a_sweep_racing_a_live_apply_keeps_its_folder(tmp_path, monkeypatch):
    """A review: a sweep that opened a lock file just before its apply released the folder (file removed, lock
    dropped) then got the lock and deleted the folder the apply's votes had just named; a lock file made and
    then locked was unlocked for a moment; holding a folder another process holds waited for that process."""
    import subprocess
    import sys
    import time

    runs = tmp_path / "lake" / "_lakelabel" / "runs"
    mine = apply_masks.new_folder(runs / "mine")
    apply_masks.create(mine)
    assert [f.name for f in Path(mine).iterdir()] == [apply_masks.WRITER_LOCK]  # no temporary file left
    apply_masks.release(mine)

    def live_apply(folder):  # another process's apply: holds its folder, releases it when told
        code = ("import sys, time; from jobs import apply_masks; apply_masks.create(sys.argv[1]); "
                "print('held', flush=True); sys.stdin.readline(); apply_masks.release(sys.argv[1]); "
                "print('released', flush=True); time.sleep(30)")
        proc = subprocess.Popen([sys.executable, "-c", code, folder], cwd=Path(__file__).parents[2],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        return proc

    other = apply_masks.new_folder(runs / "other")
    holder = live_apply(other)
    try:
        started = time.monotonic()
        apply_masks.hold(other, tmp_path / "lake")  # returns at once, takes nothing over
        assert time.monotonic() - started < 5 and other not in apply_masks._held
        assert sorted(f.name for f in Path(other).iterdir()) == [apply_masks.WRITER_LOCK]
        real_open = apply_masks.os.open

        def open_then_release(path, *args, **kwargs):  # the apply releases right after the sweep's open
            fd = real_open(path, *args, **kwargs)
            if str(path) == str(Path(other) / apply_masks.WRITER_LOCK):
                holder.stdin.write("release\n")
                holder.stdin.flush()
                assert holder.stdout.readline().strip() == "released"
            return fd

        monkeypatch.setattr(apply_masks.os, "open", open_then_release)
        assert apply_masks.sweep(tmp_path / "lake") == [] and Path(other).is_dir()
    finally:
        monkeypatch.undo()
        holder.kill()
        holder.wait()
    assert not (Path(other) / apply_masks.WRITER_LOCK).exists()  # released: a finished apply's folder stays
    assert apply_masks.sweep(tmp_path / "lake") == [] and Path(other).is_dir()


@pytest.mark.spark
def test_the_masks_a_killed_run_replaced_go_with_the_next_apply(spark, tmp_path):
    import os

    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(30)))
    first = apply_lfs.run(spark, cfg, run_id="one")
    replaced: list[str] = []  # as `lakelabel run` calls it: the replaced votes' masks wait for retire_masks
    second = apply_lfs.run(spark, cfg, run_id="two", force=True, replaced_masks=replaced)
    assert replaced == [first.row_masks["path"]] and Path(replaced[0]).is_dir()
    # The run is killed (kill -9) in a later stage, before retire_masks: the process's locks go with it.
    held = getattr(apply_masks, "_held", {})
    for folder in list(held):
        os.close(held.pop(folder))
    third = apply_lfs.run(spark, cfg, run_id="three", force=True)
    runs = Path(cfg.lakehouse) / "_lakelabel" / "runs"
    assert sorted(runs.glob("*/row_masks-*")) == [Path(third.row_masks["path"])], (first.row_masks, second.row_masks)
    # A retry that finds its votes up to date (it writes nothing) sweeps a killed attempt's folder too.
    killed = apply_masks.new_folder(runs / "four")
    apply_masks.create(killed)
    os.close(apply_masks._held.pop(killed))
    assert apply_lfs.run(spark, cfg, run_id="four").skipped
    assert sorted(runs.glob("*/row_masks-*")) == [Path(third.row_masks["path"])]


@pytest.mark.spark
def test_the_masks_of_a_run_killed_after_it_put_its_votes_back_go_with_the_next_apply(spark, tmp_path):
    """A run holds its own apply's masks folder until it ends, as it holds the replaced votes' one: killed (kill -9)
    after it put the votes back, it left a folder that no commit names and no lock marked as a killed writer's,
    kept for ever (a kill drill, session 25)."""
    import os

    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(30)))
    first = apply_lfs.run(spark, cfg, run_id="one")
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    before = io.table_version(cfg.table_path("votes"))
    replaced: list[str] = []
    second = apply_lfs.run(spark, cfg, run_id="two", force=True, replaced_masks=replaced)
    assert (Path(second.row_masks["path"]) / apply_masks.WRITER_LOCK).exists()
    io.restore_table(cfg.table_path("votes"), before, reason="run two failed")  # a later stage failed
    for folder in list(apply_masks._held):  # then kill -9, before retire_masks: the locks go with the process
        os.close(apply_masks._held.pop(folder))
    assert apply_lfs.run(spark, cfg, run_id="three").skipped  # the votes are the first apply's again
    runs = Path(cfg.lakehouse) / "_lakelabel" / "runs"
    assert sorted(runs.glob("*/row_masks-*")) == [Path(first.row_masks["path"])]


def grouped(spark, cfg, applied):
    """The votes grouped by row (the path without masks), as {row_id: (mask, gold)}."""
    source = load_source(spark, cfg.source)
    votes = delta_io.read_table(spark, cfg.table_path("votes"))
    frame = aggregate.mask_frame(votes, aggregate.source_ids(source, applied.label_space), applied.lf_names,
                                 len(applied.label_space))
    return {r["row_id"]: (r[aggregate.MASK], r["gold"]) for r in frame.collect()}


@pytest.mark.spark
def test_full_apply_masks_equal_the_grouped_votes(spark, tmp_path):
    # "boom" raises on every 10th row: an error record in the votes, no bit in the mask.
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(60, boom_every=10)),
                   lfs={"exclude": ["out_of_space"]}, apply={"max_error_rate": 0.5})
    applied = apply_lfs.run(spark, cfg, run_id="m1")
    assert "boom" in applied.lf_names and sum(lf.errors for lf in applied.lfs) == 6
    masks = applied.row_masks
    assert masks["rows"] == 60 and masks["gold_column"] == "gold" and Path(masks["path"]).is_dir()
    assert load_apply_result(cfg).row_masks == masks  # stored in the votes commit

    source = load_source(spark, cfg.source)
    rows = aggregate.row_masks(spark, applied, source)
    stored = {r["row_id"]: (r[aggregate.MASK], r["gold"]) for r in rows.collect()}
    assert len(stored) == 60
    assert stored == grouped(spark, cfg, applied)

    # Statistics and labels from the masks equal those from the grouping (masks folder ignored).
    without = replace(applied, row_masks={})
    a = aggregate.run(spark, cfg, applied=applied, source=source)
    b = aggregate.run(spark, cfg, applied=without, source=source)
    assert a.stats.equals(b.stats)
    np.testing.assert_array_equal(a.gold_counts, b.gold_counts)
    fitted = fit(cfg, run_id="m1", stats=a.stats, gold_counts=a.gold_counts, lf_versions=applied.lf_versions)
    labels = []
    for which in (applied, without):
        write_labels.run(spark, cfg, run_id=f"w{len(labels)}", applied=which, fitted=fitted, source=source)
        table = delta_io.read_table(spark, cfg.table_path("labels")).toPandas().sort_values("row_id")
        labels.append(table.drop(columns=["run_id"]).reset_index(drop=True))
    assert len(labels[0]) == 60
    for column in labels[0].columns:
        assert labels[0][column].map(repr).tolist() == labels[1][column].map(repr).tolist(), column


@pytest.mark.spark
def test_masks_are_used_only_when_they_fit_the_run(spark, tmp_path):
    cfg = make_cfg(tmp_path, write_source(tmp_path, make_rows(30, boom_every=3)))  # "boom" excluded here
    first = apply_lfs.run(spark, cfg, run_id="f1")
    source = load_source(spark, cfg.source)
    id_type = source.df.schema["id"].dataType
    folder = first.row_masks["path"]
    assert apply_masks.stored_masks(spark, first.row_masks, 30, "gold", id_type) is not None
    # Another gold column, another row count, a folder gone: None (aggregate groups the votes).
    assert apply_masks.stored_masks(spark, first.row_masks, 30, None, id_type) is None
    assert apply_masks.stored_masks(spark, first.row_masks, 31, "gold", id_type) is None

    # An incremental apply (one LF dropped) groups its votes into new masks; the replaced votes' folder is deleted.
    fewer = make_cfg(tmp_path, cfg.source.path, lfs={"exclude": ["boom", "out_of_space", "stars"]})
    second = apply_lfs.run(spark, fewer, run_id="f2")
    assert second.applied_lfs == () and second.row_masks["rows"] == 30 and not Path(folder).exists()
    assert apply_masks.stored_masks(spark, first.row_masks, 30, "gold", id_type) is None
    rows = aggregate.row_masks(spark, second, source)
    assert {r["row_id"]: (r[aggregate.MASK], r["gold"]) for r in rows.collect()} == grouped(spark, fewer, second)
    # Without them (deleted since), the votes are grouped.
    apply_masks.remove(second.row_masks["path"], fewer.lakehouse)
    assert apply_masks.stored_masks(spark, second.row_masks, 30, "gold", id_type) is None
    rows = aggregate.row_masks(spark, second, source)
    assert {r["row_id"]: (r[aggregate.MASK], r["gold"]) for r in rows.collect()} == grouped(spark, fewer, second)

    # A full apply that fails its error budget commits nothing and leaves no masks folder behind.
    boom = make_cfg(tmp_path, cfg.source.path, lfs={"exclude": ["out_of_space"]})
    before = set(Path(cfg.lakehouse).rglob(f"{apply_masks.FOLDER_PREFIX}*"))
    with pytest.raises(Exception, match="boom"):
        apply_lfs.run(spark, boom, run_id="f3", force=True)
    after = set(Path(cfg.lakehouse).rglob(f"{apply_masks.FOLDER_PREFIX}*"))
    assert after == before

    # Ctrl-C or SIGTERM (which unwinds the same way) before the votes are written: no masks folder either,
    # not even an empty one.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(apply_lfs, "vote_function", interrupted)
        with pytest.raises(KeyboardInterrupt):
            apply_lfs.run(spark, cfg, run_id="f4", force=True)
    assert set(Path(cfg.lakehouse).rglob(f"{apply_masks.FOLDER_PREFIX}*")) == before
