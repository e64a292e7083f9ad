"""One task's LFs that cannot be built stop the commands that need that task, not the others (jobs/broken_tasks.py).

No Spark here: the task set is built before Spark starts. The commands themselves on a lake with a broken task:
tests/jobs/test_task_commands.py::test_a_broken_task_stops_only_the_commands_that_need_it.
"""

from __future__ import annotations

import contextlib
import itertools
import re

import pytest

from jobs.runtime.config_loading import config_from_dict
from jobs.tasks import build_task_set
from lf_library.errors import ConfigError, LFConfigError

URGENCY = """\
from lf_library import keyword_lf
LABEL_SPACE = ("routine", "urgent")
kw_asap = keyword_lf("kw_asap", ["asap"], "urgent")
kw_no_rush = keyword_lf("kw_no_rush", ["no rush"], "routine")
"""
TOPIC = """\
from lf_library import keyword_lf
LABEL_SPACE = ("billing", "technical")
kw_invoice = keyword_lf("kw_invoice", ["invoice"], "billing")
"""
# What a team's edit can break, each as the topic module's text: the error's words, the line it points at.
BROKEN = {
    "syntax error": (TOPIC.replace('"billing")', '"billing"'), r"raised on import: SyntaxError", 3),
    "missing dependency": ("import no_such_dependency_mt26\n" + TOPIC, r"needs 'no_such_dependency_mt26'", 1),
    "an LF that raises when built": (TOPIC + 'kw_crash = keyword_lf("kw_crash", [], "technical")\n',
                                     r"raised on import: LFConfigError: LF 'kw_crash': keywords must", 4),
    "label space mismatch": (TOPIC.replace('("billing", "technical")', '("billing", "tech")'),
                             r"disagrees with the LABEL_SPACE", None),
}
_packages = itertools.count()


def _package(tmp_path, monkeypatch, **modules: str) -> str:
    """A fresh importable package holding ``modules`` (name -> source); its dotted name."""
    name = f"broken_tasks_pkg_{next(_packages)}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for module, text in modules.items():
        (folder / f"{module}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _data(tmp_path, pkg: str, **extra) -> dict:
    return {
        "lakehouse": str(tmp_path / "lake"), "source": {"path": "x.parquet", "id_column": "id"},
        "tasks": {"topic": {"label_space": ["billing", "technical"], "lfs": {"modules": [f"{pkg}.topic_lfs"]}},
                  "urgency": {"label_space": ["routine", "urgent"], "lfs": {"modules": [f"{pkg}.urgency_lfs"]}}},
        "mlflow": {"enabled": False}, **extra}  # fmt: skip


def _config(tmp_path, pkg: str, **extra):
    return config_from_dict(_data(tmp_path, pkg, **extra))


@contextlib.contextmanager
def _records(level: int):
    """The messages jobs.tasks logs at ``level`` or above inside the block."""
    import logging

    said: list[str] = []
    handler = logging.Handler(level)
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("jobs.tasks")
    logger.addHandler(handler)
    try:
        yield said
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_task_stops_only_what_needs_it(tmp_path, monkeypatch, kind):
    text, words, line = BROKEN[kind]
    pkg = _package(tmp_path, monkeypatch, topic_lfs=text, urgency_lfs=URGENCY)
    cfg = _config(tmp_path, pkg)
    # What reads urgency alone (--task urgency) gets urgency with its LFs.
    alone = build_task_set(cfg, only=["urgency"])
    assert alone.names == ("urgency",) and alone.registry.names == ("kw_asap", "kw_no_rush")
    # What needs topic (run, apply, analyze without --task; --task topic): one error, the task, module, file, fix.
    for only in (None, ["topic"]):
        with pytest.raises(LFConfigError) as caught:
            build_task_set(cfg, only=only)
        msg = str(caught.value)
        assert msg.startswith("task 'topic' (tasks.topic.lfs): ") and re.search(words, msg), msg
        assert f"{pkg}.topic_lfs" in msg, msg
        if line is not None:  # the file and line of the module, not of lakelabel's code
            assert f"{tmp_path / pkg / 'topic_lfs.py'}, line {line}" in msg, msg
        assert msg.endswith("fix it and rerun; nothing was read or written. Meanwhile the commands with --task NAME on "
                            "the other tasks (urgency) work, and --set tasks.topic=null runs the pipeline without "
                            "topic (that run drops the votes and the labels column of topic; a later run with it puts "
                            "them back)"), msg
        assert "\n" not in msg
    # An unknown --task lists every task of the config, the broken one too (a review: it was left out).
    from jobs.task_views import task_views
    from lf_library.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^--task 'topci' is not a task of this config; tasks: topic, urgency$"):
        task_views(cfg, "topci", command="analyze", every=False)


def test_a_task_with_no_lfs_and_a_bad_declared_lf_stop_only_their_task(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, topic_lfs=TOPIC, urgency_lfs=URGENCY)
    cfg = _config(tmp_path, pkg, lfs={"exclude": ["kw_invoice"]})  # topic left with no LF
    assert build_task_set(cfg, only=["urgency"]).names == ("urgency",)
    with pytest.raises(LFConfigError, match=r"^task 'topic' \(label space \['billing', 'technical'\]\) has no LFs: "
                                            r"list LFs under tasks.topic.lfs.*fix it and rerun"):
        build_task_set(cfg)
    data = _data(tmp_path, pkg)
    data["tasks"]["topic"]["lfs"] = {"declared": [{"name": "kw_refund", "kind": "keyword", "keywrods": ["refund"],
                                                   "label": "billing"}]}  # fmt: skip
    cfg = config_from_dict(data)
    assert build_task_set(cfg, only=["urgency"]).names == ("urgency",)
    with pytest.raises(LFConfigError, match=r"^task 'topic': config tasks\.topic\.lfs\.declared"
                                            r"\[0\].*keywrods"):
        build_task_set(cfg, only=["topic"])


def test_a_broken_tag_module_stops_the_tag_tasks_only(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, urgency_lfs=URGENCY, tag_lfs="import no_such_dependency_mt26\n")
    cfg = config_from_dict({
        "lakehouse": str(tmp_path / "lake"), "source": {"path": "x.parquet", "id_column": "id"},
        "tasks": {"urgency": {"label_space": ["routine", "urgent"], "lfs": {"modules": [f"{pkg}.urgency_lfs"]}}},
        "multi_label": {"name": "tags", "tags": ["refund", "login"], "lfs": {"modules": [f"{pkg}.tag_lfs"]}},
        "mlflow": {"enabled": False}})  # fmt: skip
    assert build_task_set(cfg, only=["urgency"]).names == ("urgency",)
    with pytest.raises(LFConfigError) as caught:
        build_task_set(cfg, only=["tags_login"])
    msg = str(caught.value)
    assert msg.startswith("task 'tags_login' (multi_label.lfs): ") and "no_such_dependency_mt26" in msg, msg
    assert str(tmp_path / pkg / "tag_lfs.py") in msg and "--set multi_label=null runs the pipeline without" in msg, msg


def test_a_broken_shared_module_stops_every_task(tmp_path, monkeypatch):
    """A module of the top-level lfs.modules is routed by its LFs' label space, which it cannot tell while it
    fails: every task may hold its LFs, so every command stops, and the error says how to confine it."""
    pkg = _package(tmp_path, monkeypatch, urgency_lfs=URGENCY, shared_lfs="import no_such_dependency_mt26\n")
    cfg = _config(tmp_path, pkg, lfs={"modules": [f"{pkg}.shared_lfs"]})
    for only in (None, ["urgency"]):
        with pytest.raises(LFConfigError, match=rf"^LF module '{pkg}.shared_lfs' failed to import .*\(lfs.modules, "
                                                r"routed to the tasks by their label space.*every task needs it\); fix "
                                                r"it, or list it under tasks.<name>.lfs.modules so that it stops only "
                                                r"its task$"):
            build_task_set(cfg, only=only)


def test_what_a_broken_task_hides_is_said_not_dropped_silently(tmp_path, monkeypatch, caplog):
    """With a task broken its LF names and label space are not known, so a typo in lfs.include/exclude and a
    shared LF that matches no other task cannot be refused as with every task built: each is a warning naming
    the LF and the broken task (a review: both were dropped without a word)."""
    shared = TOPIC.replace("topic", "shared").replace('LABEL_SPACE = ("billing", "technical")',
                                                      'LABEL_SPACE = ("billing", "technicall")')  # fmt: skip
    pkg = _package(tmp_path, monkeypatch, topic_lfs="import no_such_dependency_mt27\n", urgency_lfs=URGENCY,
                   shared_lfs=shared)  # fmt: skip
    data = _data(tmp_path, pkg, lfs={"modules": [f"{pkg}.shared_lfs"], "exclude": ["kw_asapp"]})
    del data["tasks"]["topic"]["label_space"]  # the broken module would have told it
    with caplog.at_level("WARNING", logger="jobs.tasks"):
        tasks = build_task_set(config_from_dict(data), only=["urgency"])
    assert tasks.registry.names == ("kw_asap", "kw_no_rush")
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("lfs.include/exclude name LF(s) ['kw_asapp'] that no task here has; they may be LFs of "
                            "task 'topic', which cannot be built now, or typos") for m in said), said
    assert any(m.startswith(f"LF(s) kw_invoice (module {pkg}.shared_lfs) have label space ['billing', 'technicall'], "
                            f"which matches no task that can be built now; they may belong to task 'topic'")
               for m in said), said
    # A task broken with its LF names known (no LF left after the exclude): a name no task has is a typo, exit 2.
    from lf_library.errors import ConfigError

    pkg = _package(tmp_path, monkeypatch, topic_lfs=TOPIC, urgency_lfs=URGENCY)
    with pytest.raises(ConfigError, match=r"^lfs\.exclude: unknown LF name\(s\) \['kw_asapp'\]; known LFs: .*remove it from lfs\.exclude$"):
        build_task_set(_config(tmp_path, pkg, lfs={"exclude": ["kw_invoice", "kw_asapp"]}), only=["urgency"])
    # A typo in a task's own list stops that task; the key and the fix are said once (a left-alone item of session 34:
    # "task 'urgency' (tasks.urgency.lfs): tasks.urgency.lfs.exclude: ...: fix the name ...; fix it and rerun").
    data = _data(tmp_path, pkg)
    data["tasks"]["urgency"]["lfs"]["exclude"] = ["kw_asapp"]
    assert build_task_set(config_from_dict(data), only=["topic"]).names == ("topic",)
    with pytest.raises(LFConfigError) as caught:
        build_task_set(config_from_dict(data))
    msg = str(caught.value)
    assert msg.startswith("task 'urgency': tasks.urgency.lfs.exclude: unknown LF name(s) ['kw_asapp']; known LFs: "
                          "['kw_asap', 'kw_no_rush']: fix the name or remove it from tasks.urgency.lfs.exclude; then "
                          "rerun; nothing was read or written. Meanwhile"), msg
    assert msg.count("tasks.urgency.lfs") == 2 and msg.count("fix") == 1, msg


def test_a_broken_shared_module_that_names_its_label_space_stops_only_that_task(tmp_path, monkeypatch):
    """The demo's layout (every module under the top-level lfs.modules): a module that does not import but whose
    file assigns LABEL_SPACE a literal (and gives no LF a label space of its own) stops only the task with that
    label space; --task on the other task works (it stopped every command)."""
    pkg = _package(tmp_path, monkeypatch, topic_lfs=TOPIC,
                   urgency_lfs="import no_such_dependency_mt27  # the new dependency\n" + URGENCY)  # fmt: skip
    data = _data(tmp_path, pkg, lfs={"modules": [f"{pkg}.topic_lfs", f"{pkg}.urgency_lfs"]})
    for task in data["tasks"].values():
        del task["lfs"]
    cfg = config_from_dict(data)
    assert build_task_set(cfg, only=["topic"]).registry.names == ("kw_invoice",)
    for only in (None, ["urgency"]):
        with pytest.raises(LFConfigError) as caught:
            build_task_set(cfg, only=only)
        msg = str(caught.value)
        assert msg.startswith(f"task 'urgency' (lfs.modules: {pkg}.urgency_lfs, whose LABEL_SPACE ['routine', 'urgent'] "
                              f"is this task's): "), msg
        assert "no_such_dependency_mt27" in msg and f"{tmp_path / pkg / 'urgency_lfs.py'}, line 1" in msg, msg
        assert msg.endswith(f"the other tasks (topic) work, and --set tasks.urgency=null --set 'lfs.modules=[{pkg}."
                            f"topic_lfs]' runs the pipeline without urgency (that run drops the votes and the labels "
                            f"column of urgency; a later run with it puts them back)"), msg
    # Only the task stops; a command on the other says why that task waits (an LF of the module made elsewhere with
    # another label space would be missing: a review).
    import logging

    with _records(logging.WARNING) as said:
        build_task_set(config_from_dict(data), only=["topic"])
    warned = [m for m in said if m.startswith(f"LF module {pkg}.urgency_lfs (lfs.modules) fails, so task 'urgency' "
                                              f"(its LABEL_SPACE ['routine', 'urgent']) cannot run until it is fixed (")]
    # With the module's own error and line, as `run` says it (the warning left them out: session 35's list).
    assert len(warned) == 1 and "no_such_dependency_mt27" in warned[0], said
    assert f"{tmp_path / pkg / 'urgency_lfs.py'}, line 1" in warned[0], warned
    # Said once per config: a command's precheck and its job build the same config's tasks (`analyze --task topic`
    # logged it twice: a left-alone item of session 34); a config loaded again (a notebook's next call) says it again.
    with _records(logging.WARNING) as again:
        cfg = config_from_dict(data)
        build_task_set(cfg, only=["topic"])
        build_task_set(cfg, only=["topic"])
        build_task_set(config_from_dict(data), only=["topic"])
    assert len([m for m in again if m.startswith(f"LF module {pkg}.urgency_lfs (lfs.modules) fails")]) == 2, again
    # The hint runs: without the task and the module, the config builds.
    data["tasks"].pop("urgency")
    data["lfs"]["modules"] = [f"{pkg}.topic_lfs"]
    assert build_task_set(config_from_dict(data)).names == ("topic",)
    # What cannot be told still stops every task: LABEL_SPACE not a literal, or an LF with a label space of its own.
    for text in ("import no_such_dependency_mt27\nLABEL_SPACE = tuple(['routine', 'urgent'])\n",
                 "import no_such_dependency_mt27\n" + URGENCY + 'kw_x = keyword_lf("kw_x", ["x"], "a", '
                                                               'label_space=("a", "b"))\n'):  # fmt: skip
        (tmp_path / pkg / "urgency_lfs.py").write_text(text)
        with pytest.raises(LFConfigError, match=r"every task needs it"):
            build_task_set(cfg, only=["topic"])


def test_literal_label_space_reads_the_file_without_importing_it(tmp_path, monkeypatch):
    from jobs.broken_tasks import literal_label_space

    pkg = _package(tmp_path, monkeypatch, a="LABEL_SPACE = [\n    'neg',\n    'pos',\n]\nraise RuntimeError\n",
                   b="LABEL_SPACE = ('neg', 'pos')  # the classes\ndef broken(:\n", c="LABEL_SPACE = CLASSES\n",
                   d="LABEL_SPACE = ('a',)\nLABEL_SPACE = ('b',)\n", e="LABEL_SPACE: tuple[str, ...] = ('x', 'y')\n",
                   f="LABEL_SPACE: tuple[str, ...] = ('x', 'y')\n)\n")  # fmt: skip
    assert literal_label_space(f"{pkg}.a") == ("neg", "pos")  # multi-line, and the module raises
    assert literal_label_space(f"{pkg}.b") == ("neg", "pos")  # a syntax error elsewhere
    assert literal_label_space(f"{pkg}.e") == literal_label_space(f"{pkg}.f") == ("x", "y")  # annotated (the demo)
    assert literal_label_space(f"{pkg}.c") is None and literal_label_space(f"{pkg}.d") is None
    assert literal_label_space(f"{pkg}.missing") is None and literal_label_space("no_such_pkg_mt27.x") is None


def test_broken_shared_modules_with_other_tasks_broken_or_tagged(tmp_path, monkeypatch):
    """The review's cases: the module's task also broken by its own module (one entry, both reasons, a hint that
    runs); two broken shared modules (the lfs.modules --set once, without both); a tag's label space (every task
    stops: multi_label=null would leave the module in place); a literal matching no task (every task stops)."""
    broken = "import no_such_dependency_mt27\n"
    pkg = _package(tmp_path, monkeypatch, topic_lfs=broken + TOPIC, urgency_lfs=broken + URGENCY,
                   urgency_own="import no_such_dependency_mt28\n", ok_lfs=TOPIC.replace("kw_invoice", "kw_bill"),
                   tag_lfs=broken + 'from lf_library import keyword_lf\nLABEL_SPACE = ("not_refund", "refund")\n',
                   odd_lfs=broken + 'LABEL_SPACE = ("a", "b")\n')  # fmt: skip
    data = _data(tmp_path, pkg, lfs={"modules": [f"{pkg}.ok_lfs", f"{pkg}.urgency_lfs"]})
    del data["tasks"]["topic"]["lfs"]
    data["tasks"]["urgency"]["lfs"] = {"modules": [f"{pkg}.urgency_own"]}
    with pytest.raises(LFConfigError) as caught:
        build_task_set(config_from_dict(data), only=["urgency"])
    msg = str(caught.value)
    assert "no_such_dependency_mt28" in msg and "no_such_dependency_mt27" in msg, msg
    assert f"--set tasks.urgency=null --set 'lfs.modules=[{pkg}.ok_lfs]' runs the pipeline" in msg, msg
    data["tasks"].pop("urgency")
    data["lfs"]["modules"] = [f"{pkg}.ok_lfs"]
    assert build_task_set(config_from_dict(data)).names == ("topic",)  # the hint, followed

    mood = 'from lf_library import keyword_lf\nLABEL_SPACE = ("happy", "sad")\nkw_yay = keyword_lf("kw_yay", ["yay"], "happy")\n'
    (tmp_path / pkg / "mood_lfs.py").write_text(mood)
    data = _data(tmp_path, pkg, lfs={"modules": [f"{pkg}.topic_lfs", f"{pkg}.urgency_lfs", f"{pkg}.mood_lfs"]})
    data["tasks"]["topic"]["lfs"] = data["tasks"]["urgency"]["lfs"] = {}
    data["tasks"]["mood"] = {"label_space": ["happy", "sad"]}
    with pytest.raises(LFConfigError) as caught:
        build_task_set(config_from_dict(data))
    msg = str(caught.value)
    assert msg.count("--set 'lfs.modules=") == 1 and "runs the pipeline without topic, urgency" in msg, msg
    assert msg.endswith(f"--set tasks.topic=null --set 'lfs.modules=[{pkg}.mood_lfs]' --set tasks.urgency=null runs "
                        f"the pipeline without topic, urgency (that run drops the votes and the labels column of topic, "
                        f"urgency; a later run with them puts them back)"), msg

    for module in ("tag_lfs", "odd_lfs"):
        data = _data(tmp_path, pkg, lfs={"modules": [f"{pkg}.{module}"]},
                     multi_label={"name": "ml", "tags": ["refund", "late"], "lfs": {"modules": [f"{pkg}.ok_lfs"]}})
        with pytest.raises(LFConfigError, match=rf"^LF module '{pkg}.{module}' .*every task needs it"):
            build_task_set(config_from_dict(data), only=["urgency"])


def test_a_parent_package_that_raises_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """Finding a module's file imports its parent packages, whose __init__ may raise anything (a review: a
    RuntimeError came through raw, even with --task on another task)."""
    from jobs.broken_tasks import failed_at, literal_label_space

    pkg = _package(tmp_path, monkeypatch, urgency_lfs=URGENCY)
    team = tmp_path / pkg / "team"
    team.mkdir()
    (team / "__init__.py").write_text("raise RuntimeError('the team package is broken')\n")
    (team / "topic_lfs.py").write_text(TOPIC)
    assert literal_label_space(f"{pkg}.team.topic_lfs") is None
    assert failed_at(LFConfigError("x"), [f"{pkg}.team.topic_lfs"]) is None
    data = _data(tmp_path, pkg)
    data["tasks"]["topic"]["lfs"]["modules"] = [f"{pkg}.team.topic_lfs"]
    assert build_task_set(config_from_dict(data), only=["urgency"]).names == ("urgency",)


def test_multi_label_lfs_include_and_exclude_select_the_tag_tasks_lfs(tmp_path):
    """A drill of the config keys: `multi_label.lfs.exclude: [tag_refund_words]` left that LF voting, and
    `multi_label.lfs.include: [a typo]` passed without a word; declared LFs and a label space there were refused as
    "top-level lfs.declared / lfs.files", once per tag."""
    def tasks(**lfs):
        return config_from_dict({
            "lakehouse": str(tmp_path / "lake"), "source": {"path": "x.parquet", "id_column": "id"},
            "lfs": {"modules": ["tests.jobs.multitask_lfs"]},
            "tasks": {"topic": {"label_space": ["billing", "technical"]},
                      "urgency": {"label_space": ["routine", "urgent"]}},
            "multi_label": {"name": "tags", "tags": ["refund", "login"], "lfs": lfs}, "mlflow": {"enabled": False}})

    def lfs(cfg, **kwargs):
        return {t.name: t.lf_names for t in build_task_set(cfg, **kwargs).tasks}

    everything = lfs(tasks())
    assert everything["tags_refund"] == ("tag_refund_not_app", "tag_refund_words")
    assert lfs(tasks(exclude=["tag_refund_words"])) == {**everything, "tags_refund": ("tag_refund_not_app",)}
    assert lfs(tasks(include=["tag_refund_words", "tag_login_words"])) == {
        **everything, "tags_refund": ("tag_refund_words",), "tags_login": ("tag_login_words",)}
    typo = tasks(include=["tag_refund_words", "tag_refnud_not_app"], exclude=["kw_crash"])
    assert build_task_set(typo, only=["topic"]).names == ("topic", "urgency")  # the other tasks still run
    with pytest.raises(LFConfigError) as caught:
        build_task_set(typo)
    assert str(caught.value).startswith(
        "tasks 'tags_refund', 'tags_login': multi_label.lfs.include: unknown LF name(s) "
        "['tag_refnud_not_app']; multi_label.lfs.exclude: unknown LF name(s) ['kw_crash']; the tag tasks' LFs: "
        "['py_login_not_billing', 'tag_login_words', 'tag_refund_not_app', 'tag_refund_words']: fix the name or "
        "remove it from multi_label.lfs.include and multi_label.lfs.exclude; then rerun; nothing was read"), caught.value
    with pytest.raises(ConfigError, match=r"^multi_label\.lfs\.declared and multi_label\.lfs\.label_space: "
                                          r"multi_label\.lfs takes modules of tag LFs"):
        build_task_set(tasks(declared=[{"name": "kw_x", "kind": "keyword", "keywords": ["x"], "label": "refund"}],
                             label_space=["a", "b"]))


def test_a_tasks_own_lfs_label_space_is_refused_naming_the_key(tmp_path):
    """An audit after the multi_label lists: `tasks.<name>.lfs.label_space` was passed over without a word (the
    task's label space is `tasks.<name>.label_space`)."""
    cfg = config_from_dict({
        "lakehouse": str(tmp_path / "lake"), "source": {"path": "x.parquet", "id_column": "id"},
        "lfs": {"modules": ["tests.jobs.multitask_lfs"]},
        "tasks": {"topic": {"label_space": ["billing", "technical"], "lfs": {"label_space": ["billing", "tech"]}},
                  "urgency": {"label_space": ["routine", "urgent"]}},
        "multi_label": {"name": "tags", "tags": ["refund", "login"]}, "mlflow": {"enabled": False}})  # fmt: skip
    assert "topic" not in build_task_set(cfg, only=["urgency"]).names
    with pytest.raises(LFConfigError, match=r"^task 'topic': tasks\.topic\.lfs\.label_space = "
                                            r"\['billing', 'tech'\]: a task's label space is tasks\.topic\.label_space; "
                                            r"set it there and remove tasks\.topic\.lfs\.label_space; fix it and rerun"):
        build_task_set(cfg, only=["topic"])


def test_a_typo_in_the_top_level_include_is_named_before_tasks_left_without_lfs(tmp_path):
    """A drill: `--set 'lfs.include=[kw_refund,nope_lf]'` on a multi-task config said only that three tasks had no
    LFs; the typo, and the key, were not named."""
    cfg = config_from_dict({
        "lakehouse": str(tmp_path / "lake"), "source": {"path": "x.parquet", "id_column": "id"},
        "lfs": {"modules": ["tests.jobs.multitask_lfs"], "include": ["kw_crash", "nope_lf"]},
        "tasks": {"topic": {"label_space": ["billing", "technical"]},
                  "urgency": {"label_space": ["routine", "urgent"]}},
        "multi_label": {"name": "tags", "tags": ["refund", "login"]}, "mlflow": {"enabled": False}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"^lfs\.include: unknown LF name\(s\) \['nope_lf'\]; known LFs: "):
        build_task_set(cfg)
