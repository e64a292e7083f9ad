"""Configuration loading: overlays, overrides, environment references and clear errors."""

from __future__ import annotations

import pytest
import yaml

from jobs.runtime.config import PipelineConfig
from jobs.runtime.config_loading import config_from_dict, load_config
from lf_library.errors import ConfigError


def test_defaults_and_table_paths(tmp_path):
    cfg = config_from_dict({"lakehouse": str(tmp_path), "source": {"path": "x.csv"}})
    assert isinstance(cfg, PipelineConfig)
    assert cfg.apply.max_error_rate == 0.05
    assert cfg.table_path("votes") == str(tmp_path / "votes")
    assert cfg.output.tie_break_policy == "abstain"


def test_unknown_key_names_key_and_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown config key apply\.max_eror_rate; valid keys of apply: .*max_error_rate"):
        config_from_dict({"apply": {"max_eror_rate": 0.1}})
    with pytest.raises(ConfigError, match=r"unknown config key sourc; valid keys: .*source"):
        config_from_dict({"sourc": {}})


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match=r"output\.tie_break_policy = 'coin' is not valid; choose one of: abstain, random, first"):
        config_from_dict({"output": {"tie_break_policy": "coin"}})
    with pytest.raises(ConfigError, match=r"apply\.max_error_rate must be a number"):
        config_from_dict({"apply": {"max_error_rate": "lots"}})
    # A yes/no where a threshold or null goes (it said "must be a number, got True", nothing about null).
    with pytest.raises(ConfigError, match=r"^drift\.fail_on_label_shift must be a number \(a threshold, e\.g\. 0\.05\) "
                                          r"or null \(off\), got true$"):
        config_from_dict({"drift": {"fail_on_label_shift": True}})
    assert config_from_dict({"drift": {"fail_on_label_shift": None}}).drift.fail_on_label_shift is None
    assert config_from_dict({"drift": {"fail_on_label_shift": "0.1"}}).drift.fail_on_label_shift == 0.1
    # Out-of-range apply settings (an operator drill found them accepted, or failing later with a
    # line like "above apply.max_error_rate=-100.0%").
    for key, value, message in (("max_error_rate", 7, r"apply\.max_error_rate = 7\.0 must be between 0 and 1"),
                                ("max_error_rate", -1, r"apply\.max_error_rate = -1\.0 must be between 0 and 1"),
                                ("batch_size", 0, r"apply\.batch_size = 0 must be >= 1"),
                                ("batch_size", -5, r"apply\.batch_size = -5 must be >= 1"),
                                ("error_samples", -3, r"apply\.error_samples = -3 must be >= 0")):
        with pytest.raises(ConfigError, match=message):
            config_from_dict({"apply": {key: value}})
    assert config_from_dict({"apply": {"max_error_rate": 0, "error_samples": 0, "batch_size": 1}}).apply.batch_size == 1
    with pytest.raises(ConfigError, match=r"label_model"):
        config_from_dict({"label_model": {"no_such_option": 1}})


def test_overlay_overrides_and_env(tmp_path, monkeypatch):
    (tmp_path / "env").mkdir()
    (tmp_path / "p.yaml").write_text("source:\n  path: ${DATA_DIR:-/default}/t\n  id_column: id\napply:\n  batch_size: 10\n")
    (tmp_path / "env" / "cluster.yaml").write_text("apply:\n  batch_size: 20\nspark:\n  master: spark://127.0.0.1:7077\n")
    cfg = load_config(tmp_path / "p.yaml")
    assert cfg.source.path == "/default/t" and cfg.apply.batch_size == 10
    monkeypatch.setenv("DATA_DIR", "/data")
    cfg = load_config(tmp_path / "p.yaml", env="cluster", overrides=["apply.max_error_rate=0.2"])
    assert cfg.source.path == "/data/t"
    assert cfg.apply.batch_size == 20 and cfg.spark.master == "spark://127.0.0.1:7077"
    assert cfg.apply.max_error_rate == 0.2
    with pytest.raises(ConfigError, match=r"no environment overlay 'nope': looked for .*env/nope\.yaml and "
                                          r".*conf/env/nope\.yaml; known environments: cluster, databricks, local\. "
                                          r"Fix --env, or write env/nope\.yaml beside p\.yaml"):
        load_config(tmp_path / "p.yaml", env="nope")


def test_a_config_outside_conf_gets_the_shipped_overlays(tmp_path, monkeypatch):
    """An operator drill (session 18): a team's config kept in its own folder could not say --env
    cluster ("known environments: none"), although the README calls the overlays shipped."""
    (tmp_path / "team.yaml").write_text("source:\n  path: /data/t\n  id_column: id\nspark:\n  master: local[2]\n")
    monkeypatch.setenv("LAKELABEL_LAKEHOUSE", "/shared/lake")
    cfg = load_config(tmp_path / "team.yaml", env="cluster")
    assert cfg.lakehouse == "/shared/lake" and cfg.spark.master is None and cfg.tables.delta_io == "auto"
    # an overlay beside the config wins over the shipped one
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "cluster.yaml").write_text("lakehouse: /team/lake\n")
    assert load_config(tmp_path / "team.yaml", env="cluster").lakehouse == "/team/lake"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.yaml"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_shipped_configs_load():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "conf"
    files = sorted(conf.glob("*.yaml"))
    assert files, f"no configs found in {conf}"
    for path in files:
        cfg = load_config(path)
        assert cfg.lfs.modules, path


def test_a_uri_lakehouse_is_refused_but_uri_tables_are_kept(tmp_path):
    with pytest.raises(ConfigError, match=r"lakehouse = 's3://bucket/lh' is a URI.*tables\.votes / tables\.labels URIs"):
        config_from_dict({"lakehouse": "s3://bucket/lh"})
    cfg = config_from_dict({"lakehouse": str(tmp_path), "tables": {"votes": "dbfs:/lake/votes", "labels": "labels"}})
    assert cfg.table_path("votes") == "dbfs:/lake/votes"
    assert cfg.table_path("labels") == str((tmp_path / "labels").resolve())


def test_base_is_relative_to_the_file_that_names_it(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "main.yaml").write_text("lakehouse: /data/lake\n")
    (tmp_path / "team").mkdir()
    child = tmp_path / "team" / "child.yaml"
    child.write_text("base: ../conf/main.yaml\nsource: {id_column: key}\n")
    monkeypatch.chdir(tmp_path / "conf")  # the working directory does not matter
    cfg = load_config(str(child))
    assert cfg.lakehouse == "/data/lake" and cfg.source.id_column == "key"
    child.write_text("base: conf/main.yaml\n")  # written as if relative to the working directory
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(str(child))
    assert f"{child}: base: conf/main.yaml names no file ({tmp_path / 'team' / 'conf' / 'main.yaml'})" in str(err.value)
    assert "relative to the file that names it" in str(err.value)


def test_a_base_may_have_a_base_and_a_loop_is_named(tmp_path):
    """A team config on a shared one on the repository's: each file wins over its base (was "unknown config key
    base" for the second level)."""
    (tmp_path / "shared.yaml").write_text("lakehouse: /data/lake\nsource: {path: x.csv, id_column: id}\n")
    (tmp_path / "team.yaml").write_text("base: shared.yaml\nsource: {id_column: key}\n")
    (tmp_path / "mine").mkdir()
    mine = tmp_path / "mine" / "run.yaml"
    mine.write_text("base: ../team.yaml\nlakehouse: /data/mine\n")
    cfg = load_config(str(mine))
    assert (cfg.lakehouse, cfg.source.path, cfg.source.id_column) == ("/data/mine", "x.csv", "key")
    (tmp_path / "shared.yaml").write_text("base: mine/run.yaml\n")
    with pytest.raises(ConfigError, match=r"shared.yaml: base: mine/run.yaml makes a loop \(.*run.yaml -> .*team.yaml "
                                          r"-> .*shared.yaml -> .*run.yaml\); remove one of the base: keys"):
        load_config(str(mine))


def test_label_model_keys_and_numbers_are_named(tmp_path):
    (tmp_path / "lm.yaml").write_text("source: {path: x.csv}\nlabel_model:\n  methd: auto\n  use_dev_labels: true\n")
    with pytest.raises(ConfigError, match=r"lm\.yaml: unknown config key label_model\.methd; valid keys of label_model: "
                                          r".*method"):
        load_config(tmp_path / "lm.yaml")
    (tmp_path / "ok.yaml").write_text("source: {path: x.csv}\nlabel_model:\n  use_dev_labels: true\n")
    assert load_config(tmp_path / "ok.yaml").gold.use_dev_labels
    with pytest.raises(ConfigError, match=r"^label_model: tol must be a number, got 'abc'$"):
        load_config(tmp_path / "ok.yaml", overrides=["label_model.tol=abc"])


def test_label_model_keys_added_later_stay_out_of_the_settings_at_their_default(tmp_path):
    # Run fingerprints and saved settings of runs made before em_class_balance existed still match.
    base = {"lakehouse": str(tmp_path), "source": {"path": "x.csv"}}
    assert "em_class_balance" not in config_from_dict(base).to_dict()["label_model"]
    (tmp_path / "p.yaml").write_text("source:\n  path: x.csv\n")
    cfg = load_config(tmp_path / "p.yaml", overrides=["label_model.em_class_balance=uniform"])
    assert cfg.label_model.em_class_balance == "uniform"
    assert cfg.to_dict()["label_model"]["em_class_balance"] == "uniform"
    with pytest.raises(ConfigError, match=r"unknown em_class_balance 'snorkel'; use one of estimate, uniform"):
        load_config(tmp_path / "p.yaml", overrides=["label_model.em_class_balance=snorkel"])


def test_an_unknown_key_from_set_names_the_set_item(tmp_path):
    """A drill (session 18): the error did not say the misspelled key came from --set."""
    (tmp_path / "p.yaml").write_text("source:\n  path: /data/t\n  id_column: id\n")
    with pytest.raises(ConfigError, match=r"^--set 'apply.max_eror_rate=0.1': unknown config key apply.max_eror_rate; "
                                          r"valid keys of apply: "):
        load_config(tmp_path / "p.yaml", overrides=["apply.max_eror_rate=0.1"])
    with pytest.raises(ConfigError, match=r"^--set 'aply.max_error_rate=0.1': unknown config key aply; "):
        load_config(tmp_path / "p.yaml", overrides=["aply.max_error_rate=0.1"])
    (tmp_path / "q.yaml").write_text("source:\n  path: /data/t\n  id_column: id\napply:\n  batch_sise: 3\n")
    with pytest.raises(ConfigError, match=r"q\.yaml: unknown config key apply.batch_sise"):  # the file, as before
        load_config(tmp_path / "q.yaml")


def test_set_on_a_task_the_config_lacks_is_a_typo_and_null_drops_a_task(tmp_path):
    """`--set tasks.urgncy.gold_column=x` made a new task and failed later with "task 'urgncy' has no label_space";
    a task could not be dropped from the command line."""
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path), "source": {"path": "x.csv", "id_column": "id"},
        "tasks": {"urgency": {"label_space": ["routine", "urgent"], "lfs": {"modules": ["a"]}},
                  "topic": {"label_space": ["billing", "tech"], "lfs": {"modules": ["b"]}}}}))
    with pytest.raises(ConfigError, match=r"^--set 'tasks.urgncy.gold_column=g': the config has no task 'urgncy' \(its "
                                          r"tasks: topic, urgency\); fix the name, or also set tasks.urgncy.label_space"):
        load_config(str(path), overrides=["tasks.urgncy.gold_column=g"])
    cfg = load_config(str(path), overrides=["tasks.urgency=null"])
    assert [t.name for t in cfg.tasks] == ["topic"]
    assert load_config(str(path), overrides=["tasks=null"]).tasks == []  # a list key set to null is empty (was an error)
    added = load_config(str(path), overrides=["tasks.sla.label_space=[met, missed]", "tasks.sla.lfs.modules=[c]"])
    assert [t.name for t in added.tasks] == ["topic", "urgency", "sla"]
    # A task added as a mapping; dropped, then set again: a typo again
    whole = load_config(str(path), overrides=["tasks.sla={label_space: [met, missed], lfs: {modules: [c]}}"])
    assert [t.name for t in whole.tasks] == ["topic", "urgency", "sla"]
    with pytest.raises(ConfigError, match=r"the config has no task 'urgency' \(its tasks: topic\)"):
        load_config(str(path), overrides=["tasks.urgency=null", "tasks.urgency.gold_column=g"])


def test_set_reaches_one_item_of_a_list(tmp_path):
    """`--set` could not index into lists: changing one declared LF's keywords meant restating every LF."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path), "source": {"path": "x.csv", "id_column": "id"},
        "lfs": {"modules": ["a"], "declared": [
            {"name": "kw_a", "kind": "keyword", "label": "spam", "keywords": ["free"]},
            {"name": "kw_b", "kind": "keyword", "label": "ham", "keywords": ["song"]}]}}))
    cfg = load_config(path, overrides=["lfs.declared[1].keywords=[song, lyrics]", "lfs.modules[0]=b"])
    assert cfg.lfs.declared[1]["keywords"] == ["song", "lyrics"]
    assert cfg.lfs.declared[0]["keywords"] == ["free"]  # the other item untouched
    assert cfg.lfs.modules == ["b"]
    with pytest.raises(ConfigError, match=r"^--set 'lfs.declared\[2\].label=ham': lfs.declared has 2 items \(from 0\); "
                                          r"set an existing item, or give the whole list \(lfs.declared=\[...\]\)$"):
        load_config(path, overrides=["lfs.declared[2].label=ham"])
    with pytest.raises(ConfigError, match=r"^--set 'lfs\[0\]=x': lfs is not a list$"):
        load_config(path, overrides=["lfs[0]=x"])
    # A dotted index says how to write it (it said "lfs.declared is not a section").
    with pytest.raises(ConfigError, match=r"^--set 'lfs.declared.1.keywords=\[a, b\]': lfs.declared is a list; an item "
                                          r"of it is lfs.declared\[1\]: --set 'lfs.declared\[1\].keywords=\[a, b\]'$"):
        load_config(path, overrides=["lfs.declared.1.keywords=[a, b]"])
    with pytest.raises(ConfigError, match=r"^--set 'lfs.files\[0\]=x.yaml': lfs.files has no items here; give the "
                                          r"whole list \(lfs.files=\[...\]\)$"):  # not set: it said "is not a list"
        load_config(path, overrides=["lfs.files[0]=x.yaml"])
    # One name where a list is read says how to write the list (a drill: `--set end_model.text_columns=CONTENT`).
    with pytest.raises(ConfigError, match=r"end_model.text_columns must be a list, got 'CONTENT'; write \[CONTENT\]$"):
        load_config(path, overrides=["end_model.text_columns=CONTENT"])
    # A misspelled key before an index is named as unknown (a drill: "lfs.declard has no items here; give the whole
    # list (lfs.declard=[...])" told the user to set the typo).
    for item, unknown, section in (("lfs.declard[0].keywords=[free]", "lfs.declard", "of lfs: declared, exclude"),
                                   ("lfz.declared[0].x=1", "lfz", "aggregate, analysis"),
                                   ("end_model.text_column[0]=t", "end_model.text_column", "of end_model: "),
                                   ("tasks.topic.lfs.declard[0].x=1", "tasks.topic.lfs.declard", "of tasks.topic.lfs: ")):
        with pytest.raises(ConfigError) as caught:
            load_config(path, overrides=[item])
        assert str(caught.value).startswith(f"--set {item!r}: unknown config key {unknown}; valid keys"), caught.value
        assert section in str(caught.value), caught.value
    for bad in ("lfs.declared[x]=1", "lfs.declared[-1].label=ham", "lfs.declared[0]x=1"):
        with pytest.raises(ConfigError, match=r"is not a key path; write section.key, or section.list\[0\].key"):
            load_config(path, overrides=[bad])


def test_an_integer_key_refuses_a_fraction_instead_of_truncating_it(tmp_path):
    """`--set apply.batch_size=1.5` ran with batch size 1."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"lakehouse": str(tmp_path), "source": {"path": "x.csv"}}))
    for key in ("apply.batch_size", "aggregate.max_patterns", "end_model.ngrams", "analysis.examples"):
        with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')} must be an integer, got 1\.5$"):
            load_config(path, overrides=[f"{key}=1.5"])
    with pytest.raises(ConfigError, match=r"^apply\.batch_size must be an integer, got 2\.5$"):
        config_from_dict({"apply": {"batch_size": 2.5}})
    # A whole number written as a float, and digits as a string, are the integer.
    assert load_config(path, overrides=["apply.batch_size=2.0"]).apply.batch_size == 2
    assert config_from_dict({"apply": {"batch_size": "3"}}).apply.batch_size == 3
    assert load_config(path, overrides=["apply.batch_size=7"]).apply.batch_size == 7


def test_a_negative_max_patterns_is_refused(tmp_path):
    """A drill (README "Configuration reference"): `--set aggregate.max_patterns=-5` ran, exit 0, and logged
    "label model on the driver from -1 patterns". 0 is a value: fit from the overlap moments only."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"lakehouse": str(tmp_path), "source": {"path": "x.csv"}}))
    with pytest.raises(ConfigError, match=r"^aggregate\.max_patterns = -5 must be >= 0 \(distinct vote patterns kept "
                                          r"for the fit; 0 fits from overlap moments only\)$"):
        load_config(path, overrides=["aggregate.max_patterns=-5"])
    assert load_config(path, overrides=["aggregate.max_patterns=0"]).aggregate.max_patterns == 0


def test_an_lf_timeout_past_what_the_timer_takes_is_refused(tmp_path):
    """A drill: `--set apply.lf_timeout_seconds=1e12` (a budget meant as "for ever") failed the apply with
    "writing Delta table .../votes failed before commit ...: OverflowError: timestamp out of range for platform
    time_t" (the alarm timer takes at most ~9.2e9 s); NaN passed, as it did for spark.executor_wait_seconds."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"lakehouse": str(tmp_path), "source": {"path": "x.csv"}}))
    for value in ("1e12", ".inf", ".nan", "-1"):
        with pytest.raises(ConfigError, match=r"^apply\.lf_timeout_seconds = \S+ must be between 0 and 31536000 "
                                              r"\(seconds, a year; 0 turns it off\)$"):
            load_config(path, overrides=[f"apply.lf_timeout_seconds={value}"])
    assert load_config(path, overrides=["apply.lf_timeout_seconds=31536000"]).apply.lf_timeout_seconds == 31536000
    with pytest.raises(ConfigError, match=r"^spark\.executor_wait_seconds = nan must be >= 0"):
        load_config(path, overrides=["spark.executor_wait_seconds=.nan"])


def test_a_nested_spark_setting_or_reader_option_is_refused_not_turned_into_text(tmp_path):
    """A drill: `spark.conf: {a: {b: 1}}` was accepted and Spark got the setting a = "{'b': 1}"; an empty option
    went to the reader as the text 'None'. Each value is one scalar, named with its key."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"lakehouse": str(tmp_path), "source": {"path": "x.csv"},
                                    "spark": {"conf": {"spark.sql.shuffle.partitions": 8, "spark.ui.enabled": False}}}))
    assert load_config(path).spark.conf == {"spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false"}
    cases = [("spark.conf={spark: {sql: {shuffle: {partitions: 8}}}}",
              r"^spark\.conf\.spark is a mapping .*write the whole dotted key, e\.g\. spark\.conf: \{'spark\.<name>'"),
             ("source.options={header: [true]}", r"^source\.options\.header is a list \(\[True\]\); each value must be"),
             ("source.options={versionAsOf: null}", r"^source\.options\.versionAsOf is empty; .* or leave the key out$")]
    for item, says in cases:
        with pytest.raises(ConfigError, match=says):
            load_config(path, overrides=[item])


def test_empty_keys_that_would_mislead_are_refused(tmp_path):
    """A review (session 23): since an empty text key stays '' (it was the string 'None'), an empty
    multi_label.separator split the gold tags into characters; id_column and mlflow.experiment failed later."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"lakehouse": str(tmp_path), "source": {"path": "x.csv", "id_column": "id"}}))
    for override, says in (("source.id_column=", "source.id_column is empty"),
                           ("mlflow.experiment= ", "mlflow.experiment is empty"),
                           ("multi_label={name: t, tags: [a, b], gold_column: g, separator: ''}",
                            "multi_label.separator is empty")):
        with pytest.raises(ConfigError, match=f"^{says}"):
            load_config(path, overrides=[override])
    spaced = load_config(path, overrides=["multi_label={name: t, tags: [a, b], gold_column: g, separator: ' '}"])
    assert spaced.multi_label.separator == " "  # tags joined by spaces: a separator


def test_a_set_value_with_a_hash_after_a_blank_is_refused_not_cut(tmp_path):
    """`--set lakehouse=/tmp/my lake #2/demo` loaded as '/tmp/my lake': YAML read ' #2/demo' as a comment, and the
    run wrote into another folder than asked (a drill, session 28). Quoted, or a '#' inside a word, it is the value."""
    (tmp_path / "p.yaml").write_text("source:\n  path: /data/t\n  id_column: id\n")
    with pytest.raises(ConfigError, match=r"--set 'lakehouse=/tmp/my lake #2/demo': YAML reads '#2/demo' as a "
                                          r"comment and drops it; quote the value \(--set 'lakehouse=\"/tmp/my lake "
                                          r"#2/demo\"'\)"):
        load_config(tmp_path / "p.yaml", overrides=["lakehouse=/tmp/my lake #2/demo"])
    quoted = load_config(tmp_path / "p.yaml", overrides=['lakehouse="/tmp/my lake #2/demo"'])
    assert quoted.lakehouse == "/tmp/my lake #2/demo"
    assert load_config(tmp_path / "p.yaml", overrides=["lakehouse=/tmp/lake#2"]).lakehouse == "/tmp/lake#2"
    assert load_config(tmp_path / "p.yaml", overrides=["lfs.include=[a, b]"]).lfs.include == ["a", "b"]


def test_set_names_one_spark_property_by_its_dotted_name(tmp_path):
    """A drill: `--set spark.conf.spark.executor.memory=64g` was refused ("spark.conf.spark is a mapping"), and the
    one form that worked, `--set 'spark.conf={...}'`, replaced the config's other properties."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"lakehouse": str(tmp_path), "source": {"path": "x.csv", "options": {"sep": ";"}},
                                    "spark": {"conf": {"spark.sql.shuffle.partitions": 8}}}))
    cfg = load_config(path, overrides=["spark.conf.spark.executor.memory=64g", "source.options.encoding=ISO-8859-1"])
    assert cfg.spark.conf == {"spark.sql.shuffle.partitions": "8", "spark.executor.memory": "64g"}
    assert cfg.source.options == {"sep": ";", "encoding": "ISO-8859-1"}


def test_config_dir_is_the_folder_of_the_file_that_writes_it(tmp_path, monkeypatch):
    """A drill: conf/youtube.yaml's term list, written relative to the working directory, was not found from a
    Databricks task or an Airflow worker (exit 2); `${CONFIG_DIR}` names the config's own folder instead."""
    (tmp_path / "team" / "base").mkdir(parents=True)
    (tmp_path / "team" / "base" / "shared.yaml").write_text("lakehouse: ${CONFIG_DIR}/lake\nsource: {path: x.csv}\n")
    (tmp_path / "team" / "p.yaml").write_text(
        "base: base/shared.yaml\nlfs: {declared: [{name: t, kind: lexicon, file: '${CONFIG_DIR}/terms.csv'}]}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONFIG_DIR", "/not/this")  # a file's own folder, never the environment's
    cfg = load_config("team/p.yaml", overrides=["source.path=${CONFIG_DIR}/y.csv"])
    assert cfg.lakehouse == str(tmp_path / "team" / "base" / "lake")  # the base file's folder
    assert cfg.lfs.declared[0]["file"] == str(tmp_path / "team" / "terms.csv")
    assert cfg.source.path == str(tmp_path / "team" / "y.csv")  # --set: the --config file's folder
