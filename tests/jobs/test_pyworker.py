"""The fix lakelabel applies in PySpark's Python workers (jobs/runtime/pyworker.py)."""

from __future__ import annotations

import importlib
import sys
import zipfile
import zipimport

import pytest

from jobs.runtime import pyworker

OLD_PYTHON = sys.version_info < (3, 12)


def _write_zip(path, modules: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, source in modules.items():
            archive.writestr(f"{name}.py", source)


def test_invalidate_caches_rereads_an_archive_only_when_it_changed(tmp_path, monkeypatch):
    """An unchanged archive is not read again however many importers of it there are; a rewritten one is."""
    monkeypatch.setattr(zipimport.zipimporter, "invalidate_caches", zipimport.zipimporter.invalidate_caches)
    reads: list[str] = []
    read_directory = zipimport._read_directory
    monkeypatch.setattr(zipimport, "_read_directory", lambda path: reads.append(path) or read_directory(path))
    archive = tmp_path / "lfs.zip"
    _write_zip(archive, {"zipped_a": "VALUE = 1\n"})
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.delitem(sys.modules, "zipped_a", raising=False)
    monkeypatch.delitem(sys.modules, "zipped_b", raising=False)
    assert importlib.import_module("zipped_a").VALUE == 1
    pyworker.patch_zipimport()
    reads.clear()
    for _ in range(3):
        importlib.invalidate_caches()
    assert reads.count(str(archive)) == 1  # read once after the patch, then known unchanged

    _write_zip(archive, {"zipped_a": "VALUE = 1\n", "zipped_b": "VALUE = 2\n"})  # another size: a change
    importlib.invalidate_caches()
    assert reads.count(str(archive)) == 2
    assert importlib.import_module("zipped_b").VALUE == 2  # what invalidate_caches is for still works


def test_tune_does_nothing_outside_a_pyspark_worker(monkeypatch):
    monkeypatch.setattr(zipimport.zipimporter, "invalidate_caches", zipimport.zipimporter.invalidate_caches)
    before = zipimport.zipimporter.invalidate_caches
    assert not pyworker.in_pyspark_worker()  # pytest's own process
    pyworker.tune()
    assert zipimport.zipimporter.invalidate_caches is before


@pytest.mark.spark
def test_the_workers_of_a_job_run_the_fix(spark):
    """A Spark task that imports lakelabel runs in a worker whose zip importers are fixed (Python < 3.12),
    and the worker's path does hold the archives the fix is for."""
    import pyarrow as pa

    def probe(batches):
        import zipimport as worker_zipimport

        import jobs  # noqa: F401 - what every lakelabel task imports first

        for _ in batches:
            pass
        zipped = [p for p in sys.path if p.endswith((".zip", ".jar"))]
        yield pa.RecordBatch.from_pylist([{"fix": worker_zipimport.zipimporter.invalidate_caches.__module__,
                                           "zips": len(zipped)}])  # fmt: skip

    rows = spark.range(4).coalesce(1).mapInArrow(probe, "fix string, zips long").collect()
    assert rows[0]["zips"] > 0  # pyspark.zip and Spark's jar: what the workers re-read before every task
    assert rows[0]["fix"] == ("jobs.runtime.pyworker" if OLD_PYTHON else "zipimport")
