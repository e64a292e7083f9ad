"""LF modules travel to the executors inside the broadcast (cloudpickle by value)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pyspark import cloudpickle

from jobs.apply_lfs import pickle_lfs

TEAM = textwrap.dedent('''
    from lf_library import labeling_function

    LABEL_SPACE = ("ham", "spam")

    def says_buy(text):
        return "buy" in text

    @labeling_function()
    def buy_now(x):
        return 1 if says_buy(x.text) else -1
''')

UNPICKLE = """
import sys
from pyspark import cloudpickle
(lf,) = cloudpickle.loads(sys.stdin.buffer.read())
print(lf.name, lf({"text": "buy now"}), lf({"text": "hello"}))
try:
    import team_pickle_lfs
except ImportError:
    print("module absent")
"""


def test_lf_modules_travel_by_value_and_the_callers_registry_is_kept(tmp_path, monkeypatch):
    (tmp_path / "team_pickle_lfs.py").write_text(TEAM)
    monkeypatch.syspath_prepend(str(tmp_path))
    import team_pickle_lfs

    payload = pickle_lfs((team_pickle_lfs.buy_now,), [team_pickle_lfs.buy_now])
    assert "team_pickle_lfs" not in cloudpickle.list_registry_pickle_by_value()
    # A Python that cannot import the module still runs the LF (and its module-level helper).
    done = subprocess.run([sys.executable, "-c", UNPICKLE], input=payload, capture_output=True, cwd="/")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().split("\n")[:2] == ["buy_now 1 -1", "module absent"]

    # A registration the caller made stays in place.
    cloudpickle.register_pickle_by_value(team_pickle_lfs)
    try:
        pickle_lfs((team_pickle_lfs.buy_now,), [team_pickle_lfs.buy_now])
        assert "team_pickle_lfs" in cloudpickle.list_registry_pickle_by_value()
    finally:
        cloudpickle.unregister_pickle_by_value(team_pickle_lfs)
