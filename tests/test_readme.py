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


def _config_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of the config dataclasses (a list of tasks' keys as ``tasks.<key>``)."""
    import dataclasses
    import typing

    keys = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        key, kind = prefix + field.name, hints[field.name]
        nested = [a for a in (typing.get_args(kind) or (kind,)) if dataclasses.is_dataclass(a)]
        keys += [] if dataclasses.is_dataclass(kind) else [key]
        keys += _config_keys(nested[0], key + ".") if nested else []
    return keys


def test_the_readme_names_every_config_key():
    """A reader of "Configuration reference" and the sections it points to finds every key the loader takes: by its
    dotted name, or by its own name where a section lists a group's keys (``label_model`` keys, a YAML example)."""
    from jobs.runtime.config import PipelineConfig

    readme = (ROOT / "README.md").read_text()
    keys = _config_keys(PipelineConfig)
    assert "label_model.confusion_vote_share" in keys and "tasks.lfs.modules" in keys and len(keys) > 100

    def named(key: str) -> bool:
        leaf = key.rsplit(".", 1)[-1]
        if leaf.startswith("fail_on_"):  # the drift row: `fail_on_<same>` for each threshold it lists
            return "`fail_on_<same>`" in readme and named(key.replace("fail_on_", ""))
        dotted = key.replace("tasks.", "tasks.<name>.", 1) if key.startswith("tasks.") else key
        return (f"`{dotted}" in readme or any(f"`{leaf}{end}" in readme for end in "`=:")
                or re.search(rf"^\s+{leaf}:", readme, re.M) is not None)

    missing = [key for key in keys if not named(key)]
    assert not missing, f"README names no config key {missing}: add it to Configuration reference or its section"
