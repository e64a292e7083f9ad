"""The README's Python snippets run as pasted (a drill found four that did not: names never defined, imports left out).

Every ```python block of README.md is either run here, each with its own globals in one new interpreter, in a
scratch folder with the README's own ``my_lfs`` modules written into it, or listed as needing what only a run or a
Spark session gives.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Blocks that are files, by their first line: written into the scratch folder, then imported.
FILES = {"# my_lfs/tickets.py": "my_lfs/tickets.py", "# my_lfs/slices.py": "my_lfs/slices.py"}
#: Blocks that need a lakehouse a run wrote, a Spark session or a notebook, by their first line; the
#: last one is a line to paste at the end of a script, which ends the process.
NOT_HERE = (
    "import json, mlflow, pandas as pd",  # a demo run's model from its MLflow store
    "from jobs.notebook.local import run_notebook",
    "from jobs import notebook",
    "from jobs.multitask_labels import task_labels",  # spark and cfg of a multi-task notebook
    "import os, sys",
)


def _blocks() -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def test_every_python_block_of_the_readme_runs_as_pasted(tmp_path):
    blocks = _blocks()
    (tmp_path / "my_lfs").mkdir()
    (tmp_path / "my_lfs" / "__init__.py").write_text("")
    runs = []
    for line, block in blocks:
        first = block.splitlines()[0]
        if first in FILES:
            (tmp_path / FILES[first]).write_text(block)
            runs.append((line, f"import {FILES[first].removesuffix('.py').replace('/', '.')}\n"))
        elif first not in NOT_HERE:
            runs.append((line, block))
    assert len(runs) >= 7, runs
    script = ["import sys, traceback", "sys.path.insert(0, '.')", "failed = []"]
    for line, code in runs:  # BaseException: a block's sys.exit() must not end the script before the others ran
        script += [f"try:\n    exec(compile({code!r}, 'README.md block at line {line}', 'exec'), {{}})",
                   f"except BaseException:\n    failed.append({line}); traceback.print_exc()"]
    script.append("print('blocks run:', len(failed) == 0, flush=True)")
    script.append("sys.exit(f'blocks that failed, by README line: {failed}' if failed else 0)")
    done = subprocess.run([sys.executable, "-c", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "blocks run: True" in done.stdout, done.stderr[-4000:]
