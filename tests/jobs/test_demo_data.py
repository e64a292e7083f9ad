"""The synthetic support-ticket source: schema, determinism, class balance, Parquet output."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from jobs.demo.data import (
    CLASS_BALANCE,
    DEMO_SCHEMA,
    LABEL_SPACE,
    generate_demo_rows,
    main,
    write_demo_source,
)


@pytest.fixture(scope="module")
def rows():
    return generate_demo_rows(50_000, seed=3)


def test_schema_and_columns(rows):
    assert rows.schema == DEMO_SCHEMA
    assert rows.num_rows == 50_000
    assert set(pc.unique(rows["channel"]).to_pylist()) == {"email", "chat", "phone"}
    assert set(pc.unique(rows["customer_tier"]).to_pylist()) == {"free", "pro", "enterprise"}
    assert sorted(pc.unique(rows["priority"]).to_pylist()) == [1, 2, 3, 4]
    names = np.array(LABEL_SPACE, dtype=object)[rows["true_label_id"].to_numpy()]
    assert (names == rows["true_label"].to_numpy(zero_copy_only=False)).all()


def test_ticket_ids_are_sequential_and_unique(rows):
    ids = rows["ticket_id"].to_pylist()
    assert ids[:3] == ["T000000000", "T000000001", "T000000002"]
    assert ids[-1] == "T000049999"
    assert len(set(ids)) == len(ids)


def test_text_is_realistic_length(rows):
    lengths = pc.utf8_length(rows["text"]).to_numpy()
    assert lengths.min() > 0
    assert 60 <= np.median(lengths) <= 200
    assert np.mean((lengths >= 40) & (lengths <= 250)) > 0.95


def test_class_balance_within_tolerance(rows):
    freq = np.bincount(rows["true_label_id"].to_numpy(), minlength=len(LABEL_SPACE)) / rows.num_rows
    np.testing.assert_allclose(freq, CLASS_BALANCE, atol=0.01)


def test_same_seed_identical_different_seed_differs():
    a = generate_demo_rows(2_000, seed=7)
    assert a.equals(generate_demo_rows(2_000, seed=7))
    b = generate_demo_rows(2_000, seed=8)
    assert not a.equals(b)
    assert a["ticket_id"].equals(b["ticket_id"])  # ids depend on position only
    assert a["text"].to_pylist() != b["text"].to_pylist()


def test_prefix_stable_across_rng_blocks():
    # 70k rows span two RNG blocks; a shorter request must be an exact prefix.
    full = generate_demo_rows(70_000, seed=1)
    assert generate_demo_rows(66_000, seed=1).equals(full.slice(0, 66_000))
    assert generate_demo_rows(0, seed=1).num_rows == 0


def test_no_strong_cue_and_misleading_rows_exist(rows):
    text = rows["text"]
    # Every ticket has some text, but many carry none of the precise issue words.
    vague = pc.match_substring_regex(text, r"(need some help|not working as it should|look into this)")
    assert 0.1 < pc.mean(pc.cast(vague, "float64")).as_py() < 0.5
    # The "free trial" amounts that make the demo's raising LF fail are rare.
    free_trial = pc.match_substring_regex(text, r"\$0 ")
    assert 0.001 < pc.mean(pc.cast(free_trial, "float64")).as_py() < 0.02


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, "n must be a non-negative int"),
        ({"n": 10, "seed": -2}, "seed must be a non-negative int"),
        ({"n": 10, "seed": 1.5}, "seed must be a non-negative int"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_demo_rows(**kwargs)


def test_write_demo_source_chunks_equal_generated(tmp_path):
    out = tmp_path / "tickets"
    assert write_demo_source(str(out), 1_000, seed=5, rows_per_file=300) == str(out)
    files = sorted(out.glob("part-*.parquet"))
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(4)]
    parts = [pq.read_table(f) for f in files]
    assert [p.num_rows for p in parts] == [300, 300, 300, 100]
    assert pa.concat_tables(parts).equals(generate_demo_rows(1_000, seed=5))
    assert pq.read_schema(files[0]) == DEMO_SCHEMA


def test_write_demo_source_is_byte_identical_for_a_seed(tmp_path):
    for name in ("a", "b"):
        write_demo_source(str(tmp_path / name), 500, seed=9, rows_per_file=200)
    a_files = sorted((tmp_path / "a").glob("part-*.parquet"))
    assert len(a_files) == 3
    for f in a_files:
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes()


def test_write_demo_source_refuses_to_mix_with_existing_files(tmp_path):
    out = tmp_path / "tickets"
    write_demo_source(str(out), 100, rows_per_file=60)
    with pytest.raises(FileExistsError, match="already holds 2 part-\\*.parquet files; pass overwrite=True"):
        write_demo_source(str(out), 100)
    write_demo_source(str(out), 100, seed=1, overwrite=True)
    assert [f.name for f in sorted(out.glob("*.parquet"))] == ["part-00000.parquet"]
    with pytest.raises(ValueError, match="rows_per_file must be a positive int; got 0"):
        write_demo_source(str(tmp_path / "other"), 100, rows_per_file=0)


def test_cli_writes_files(tmp_path, capsys):
    assert main([str(tmp_path / "cli"), "--rows", "500", "--seed", "2", "--rows-per-file", "200"]) == 0
    assert len(list((tmp_path / "cli").glob("part-*.parquet"))) == 3
    assert "wrote 500 demo tickets" in capsys.readouterr().out


def test_module_runs_as_a_script_without_runpy_warning(tmp_path):
    """``python -m jobs.demo.data`` (the benchmarks' recipe) runs the module once, with no warning."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "jobs.demo.data",
                          str(tmp_path / "src"), "--rows", "50"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "found in sys.modules" not in out.stderr
    assert pq.read_table(tmp_path / "src").num_rows == 50
