"""A class-data-sharing archive of Spark's classes for the suite's JVMs.

Each JVM the suite starts (the test session's, every ``lakelabel`` and ``spark-submit`` a test runs,
the standalone master and worker) loads and verifies the same thousands of Spark classes from the jars
before it does anything. The JDK can map them from an archive instead (AppCDS, JDK 13 and later):
one JVM starts a session and runs a job with ``-XX:ArchiveClassesAtExit`` and every later JVM starts with
``-XX:SharedArchiveFile``. On the 2-core machines a 500-row ``lakelabel demo`` took 14 s instead of
19.5 s (benchmarks/RESULTS.md, session 20).

The archive is built once per Java, pyspark and flags, into pytest's cache folder
(``.pytest_cache/d/jvm-class-archive``), in about 25 s, before the first test. A JVM whose class path
does not match it, or a missing archive, starts as before without a word (the JVM's ``-Xshare:auto``).
Only the suite's JVMs use it: lakelabel's own sessions keep the JVM's defaults.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What the archiving JVM runs: a session and one job. Richer runs archive more classes but cost more to
# build (an Arrow exchange, a parquet round trip and a shuffle: 40 s; a 300-row demo pipeline: 48 s)
# and a 500-row demo started no faster with them (RESULTS.md, session 20).
# The JVM writes the archive as it exits, which is after this Python would: so the script closes the
# JVM's stdin (PySpark's gateway exits on EOF) and waits for it, and exits with the JVM's code.
WORKLOAD = """
import sys
from pyspark import SparkContext
from jobs.runtime.session import get_spark

spark = get_spark("lakelabel-class-archive", master="local[2]")
spark.range(10).count()
jvm = SparkContext._gateway.proc
spark.stop()
jvm.stdin.close()
sys.exit(jvm.wait(timeout=240))
"""


def _key(jvm_opts: str) -> str:
    import pyspark

    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    java = os.path.realpath(java or "java")
    jars = Path(pyspark.__file__).parent / "jars"

    def stamp(path: Path | str) -> str:
        stat = os.stat(path)
        return f"{path} {stat.st_size} {stat.st_mtime_ns}"

    parts = [pyspark.__version__, stamp(java) if os.path.exists(java) else java, jvm_opts, WORKLOAD,
             *sorted(stamp(jar) for jar in (jars.glob("*.jar") if jars.is_dir() else []))]  # fmt: skip
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build(folder: Path, jvm_opts: str, repo: Path, timeout: float = 300) -> tuple[Path | None, str]:
    """The archive for ``jvm_opts`` in ``folder``, built if absent; (None, why) when it cannot be built."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"spark-{_key(jvm_opts)}.jsa"
    if archive.exists():
        return archive, "reused"
    for old in folder.glob("*.jsa"):  # another Java's or pyspark's: 140 MB each
        old.unlink(missing_ok=True)
    for old in folder.glob("*.partial"):  # left by a killed build (a build running now has its own name)
        if time.time() - old.stat().st_mtime > 3600:
            old.unlink(missing_ok=True)
    partial = folder / f"{archive.name}.{os.getpid()}.partial"
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env.update(SPARK_SUBMIT_OPTS=f"{jvm_opts} -XX:ArchiveClassesAtExit={partial}", SPARK_LOCAL_IP="127.0.0.1",
               PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        try:
            done = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, cwd=work, timeout=timeout,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        except subprocess.TimeoutExpired:
            partial.unlink(missing_ok=True)
            return None, f"the archiving run took more than {timeout:.0f} s"
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return None, f"the archiving run exited {done.returncode}: {tail[0]}"
    partial.replace(archive)  # a JVM never maps a half-written archive
    return archive, "built"
