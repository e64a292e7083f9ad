"""Incremental apply counts only the vote files it writes for LFs whose previous votes all stay.

The per-LF counts and error samples after each incremental step must equal a ``--force`` run's,
while the count pass reads no file the previous commit already counted (Delta source), and a
Parquet append reads none of the stored row hashes when the new ids lie outside their ranges.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from deltalake import DeltaTable, write_deltalake

from jobs import apply_lfs
from jobs.delta_io.local import LocalDeltaIO
from tests.jobs.test_incremental import BAD, GOOD, GOOD_V2, picky, registry, stars, votes
from tests.jobs.test_pipeline import make_cfg, make_rows, write_source

pytestmark = pytest.mark.spark


def lf_stats(applied) -> list[tuple]:
    return [(lf.name, lf.version, lf.votes, lf.errors, lf.error_samples) for lf in applied.lfs]


def lf_of(uri: str) -> str:
    return uri.split("lf_name=", 1)[1].split("/", 1)[0]


@pytest.fixture(scope="module")
def carried_steps(spark, tmp_path_factory):
    """Each step: an incremental apply (with the vote files its count pass read), then --force."""
    tmp = tmp_path_factory.mktemp("incr_stats")
    src = str(tmp / "src")
    rows = make_rows(40).drop(columns=["gold"])
    for i in range(2):
        write_deltalake(src, rows.iloc[i * 20:(i + 1) * 20], mode="append")
    cfg = make_cfg(tmp, src)
    cfg = replace(cfg, source=replace(cfg.source, format="delta", gold_column=None),
                  apply=replace(cfg.apply, max_error_rate=0.5, error_samples=2))
    votes_path = cfg.table_path("votes")
    counted: list[list[str]] = []
    real = apply_lfs._lf_stats_from_files

    def spy(spark_, files, *args, **kwargs):
        counted.append(list(files))
        return real(spark_, files, *args, **kwargs)

    steps = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(apply_lfs, "_lf_stats_from_files", spy)

        def step(name, reg, cfg_):
            before = set(DeltaTable(votes_path).file_uris())
            counted.clear()
            result = apply_lfs.run(spark, cfg_, run_id=name, registry=reg)
            files, got = list(counted[-1]), votes(spark, cfg_)
            forced = apply_lfs.run(spark, cfg_, run_id=name + "-force", registry=reg, force=True)
            steps[name] = {"result": result, "counted": files, "before": before, "votes": got,
                           "forced": forced, "forced_votes": votes(spark, cfg_)}

        apply_lfs.run(spark, cfg, run_id="full", registry=registry(GOOD, BAD, stars, picky))
        step("change_lf", registry(GOOD_V2, BAD, stars, picky), cfg)
        # New rows whose ids sort before the old ones ("n" < "r"): n045 ("meh") makes picky raise.
        more = make_rows(46).iloc[40:].assign(id=lambda d: "n" + d.id.str[1:]).drop(columns=["gold"])
        write_deltalake(src, more, mode="append")
        step("append_rows", registry(GOOD_V2, BAD, stars, picky), cfg)
        # More error samples than picky's stored ones: picky is counted again, the others are not.
        more_samples = replace(cfg, apply=replace(cfg.apply, error_samples=4))
        step("more_samples", registry(GOOD, BAD, stars, picky), more_samples)
    return steps


@pytest.mark.parametrize("name", ["change_lf", "append_rows", "more_samples"])
def test_counts_and_samples_equal_force(carried_steps, name):
    s = carried_steps[name]
    assert not s["result"].skipped and s["result"].applied_lfs != s["forced"].applied_lfs
    assert s["votes"] == s["forced_votes"]
    assert lf_stats(s["result"]) == lf_stats(s["forced"])


def test_changed_lf_counts_only_its_new_files(carried_steps):
    s = carried_steps["change_lf"]
    assert s["counted"] and {lf_of(f) for f in s["counted"]} == {"good_words"}
    assert not set(s["counted"]) & s["before"]


def test_appended_rows_count_only_new_files(carried_steps):
    s = carried_steps["append_rows"]
    assert s["result"].applied_rows == 6 and s["result"].applied_lfs == ()
    assert s["counted"] and not set(s["counted"]) & s["before"]
    # The new row's error comes first among picky's samples (ids sort by string), as in a full count.
    picky_stats = next(lf for lf in s["result"].lfs if lf.name == "picky")
    assert [e["row_id"] for e in picky_stats.error_samples] == ["n045", "r005"]


def test_too_few_stored_samples_recount_the_lf(carried_steps):
    s = carried_steps["more_samples"]
    assert {lf_of(f) for f in s["counted"]} == {"good_words", "picky"}
    picky_stats = next(lf for lf in s["result"].lfs if lf.name == "picky")
    assert [e["row_id"] for e in picky_stats.error_samples] == ["n045", "r005", "r015", "r025"]


def test_parquet_append_reads_no_stored_hashes_outside_the_new_ids(spark, tmp_path, monkeypatch):
    rows = make_rows(30)
    src = write_source(tmp_path, rows)
    cfg = make_cfg(tmp_path, src)
    reg = registry(GOOD, BAD, stars)
    apply_lfs.run(spark, cfg, run_id="h1", registry=reg)
    reads = []
    real = LocalDeltaIO.read_table

    def spy(self, spark_, path, **kwargs):
        reads.append((path, kwargs.get("files")))
        return real(self, spark_, path, **kwargs)

    monkeypatch.setattr(LocalDeltaIO, "read_table", spy)
    make_rows(36).iloc[30:].to_parquet(tmp_path / "src" / "part-1.parquet", index=False)  # ids r030..r035
    second = apply_lfs.run(spark, cfg, run_id="h2", registry=reg)
    assert "1 file(s) appended" in second.row_changes["method"] and second.n_rows == 36
    hashes = cfg.table_path("votes") + "_row_hashes"
    assert [r for r in reads if r[0] == hashes] == []  # r030.. sort after every stored id: no hash file read
    incremental = votes(spark, cfg)
    forced = apply_lfs.run(spark, cfg, run_id="h3", registry=reg, force=True)
    assert votes(spark, cfg) == incremental and lf_stats(second) == lf_stats(forced)
