"""Mistakes a domain expert makes in YAML-declared LFs and term files that used to pass silently (drill C, s38)."""

from pathlib import Path

import pyarrow as pa
import pytest

from lf_library import LFRegistry
from lf_library.declared import build_declared, load_declared_file
from lf_library.errors import LFConfigError
from lf_library.lexicon_files import load_lexicon

LS = ("billing", "technical", "shipping")


def _votes(entry, texts, base=Path(".")):
    lf = build_declared(entry, "test", base=base)
    LFRegistry(LS).register(lf)
    return list(lf.evaluate_arrow(pa.table({lf.spec.get("field", "text"): pa.array(texts, pa.string())})))


@pytest.mark.parametrize("word", ["refund ", " refund", " "])
def test_keyword_with_surrounding_space_is_refused(word):
    with pytest.raises(LFConfigError, match="space .* at the start or end"):
        build_declared({"name": "k", "kind": "keyword", "label": "billing", "keywords": [word, "invoice"]}, "t",
                       base=Path("."))


@pytest.mark.parametrize("pattern", ["refund|", "|refund", "x*", "(?:refund)?"])
def test_regex_that_matches_every_row_is_refused(pattern):
    with pytest.raises(LFConfigError, match="matches every row"):
        build_declared({"name": "r", "kind": "regex", "label": "billing", "pattern": pattern}, "t", base=Path("."))


def test_regex_for_empty_text_is_kept():
    assert _votes({"name": "r", "kind": "regex", "label": "billing", "pattern": "^\\s*$"}, ["", "x"]) == [0, -1]


def test_regex_with_yaml_backspace_is_refused():
    with pytest.raises(LFConfigError, match="single quotes"):
        build_declared({"name": "r", "kind": "regex", "label": "billing", "pattern": "\x08refund\x08"}, "t",
                       base=Path("."))


@pytest.mark.parametrize("pattern", ["\\bcafé\\b", "café\\b", "\\bétat"])
def test_ascii_word_boundary_next_to_non_ascii_letter_is_refused(pattern):
    with pytest.raises(LFConfigError, match="only ASCII"):
        build_declared({"name": "r", "kind": "regex", "label": "billing", "pattern": pattern}, "t", base=Path("."))


def test_inline_lexicon_terms_as_one_string_are_refused():
    with pytest.raises(LFConfigError, match=r"write a list: billing: \[cash, prize\]"):
        build_declared({"name": "l", "kind": "lexicon", "terms": {"billing": "cash, prize"}}, "t", base=Path("."))


def test_inline_lexicon_term_in_two_classes_is_refused():
    with pytest.raises(LFConfigError, match="always tie"):
        build_declared({"name": "l", "kind": "lexicon", "terms": {"billing": ["cash"], "technical": ["Cash"]}}, "t",
                       base=Path("."))


@pytest.mark.parametrize("space, match", [
    (["billing", "Billing", "shipping"], "'billing' and 'Billing', which differ only in case"),
    (["billing", "shipping "], r"\['shipping '\] start or end with a space"),
])
def test_label_space_that_splits_a_class_is_refused(space, match):
    with pytest.raises(LFConfigError, match=match):
        LFRegistry(space)


def test_repeated_key_in_an_lf_file_is_refused(tmp_path):
    f = tmp_path / "lfs.yaml"
    f.write_text("- name: k\n  kind: keyword\n  label: billing\n  keywords: [refund]\n  keywords: [invoice]\n")
    with pytest.raises(LFConfigError, match="line 5.*'keywords' is given twice.*first on line 4"):
        load_declared_file(f)


@pytest.mark.parametrize("text,match", [
    ("- name: k\n  kind: keyword\n  keywords: [refund]\n label: billing\n", "line 4.*indentation does not fit"),
    ("- name: k\n  kind: keyword\n  keywords: [refund]\n   label: billing\n", "line 4.*indentation does not fit"),
    ("- name: k\n   kind: keyword\n  keywords: [refund]\n  label: billing\n", "line 2.*indented deeper"),
    ("- name: k\n  kind: regex\n  pattern: Re: refund\n  label: billing\n", r"line 3.*quoted \('Re: refund'\)"),
])
def test_mis_indented_or_unquoted_yaml_says_which(tmp_path, text, match):
    f = tmp_path / "lfs.yaml"
    f.write_text(text)
    with pytest.raises(LFConfigError, match=match):
        load_declared_file(f)


@pytest.mark.parametrize("name,text", [("t.yaml", "billing: [refund]\nbilling: [invoice]\n"),
                                       ("t.json", '{"billing": ["refund"], "billing": ["invoice"]}')])
def test_repeated_class_in_a_lexicon_file_is_refused(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(LFConfigError, match="'billing' is given twice"):
        load_lexicon(tmp_path / name)


def test_yaml_merge_keys_still_override(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("base: &b {term: refund, class: billing}\nterms:\n  - {<<: *b, term: invoice}\n")
    from lf_library._yaml import load_yaml
    assert load_yaml(f.read_text())["terms"][0] == {"term": "invoice", "class": "billing"}


@pytest.mark.parametrize("content,match", [
    ("term;class\nrefund;billing\n", "separated by semicolons"),
    ("term\tclass\nrefund\tbilling\n", "separated by tabs.*format: tsv"),
    ("refund,billing\n", "read as the header.*add the line term,class"),
    ("", "the file is empty"),
])
def test_lexicon_csv_layout_mistakes_say_what_to_do(tmp_path, content, match):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(LFConfigError, match=match):
        load_lexicon(tmp_path / "t.csv")


def test_relative_lexicon_path_names_where_it_looked(tmp_path):
    with pytest.raises(LFConfigError, match=r"read from .*CONFIG_DIR\}/terms.csv"):
        build_declared({"name": "l", "kind": "lexicon", "file": "terms.csv"}, "t", base=tmp_path)


def test_label_with_other_case_suggests_the_class():
    lf = build_declared({"name": "k", "kind": "keyword", "label": "Billing", "keywords": ["refund"]}, "t",
                        base=Path("."))
    with pytest.raises(LFConfigError, match="did you mean 'billing'"):
        LFRegistry(LS).register(lf)


def test_sql_condition_is_parsed_on_its_own(spark):
    """A trailing '-- comment' stays a comment, and a syntax error's position is in the author's condition (it was
    always "at or near '(' (line 1, pos 10)", the parenthesis of the CASE lakelabel wrapped it in)."""
    from lf_library import sql_lf

    df = spark.createDataFrame([("a", 3), ("b", 1)], "text string, priority int")
    lf = sql_lf("s", "priority >= 3 -- urgent ones", "technical", label_space=LS)
    assert [r[0] for r in df.select(lf.spark_column()).collect()] == [1, -1]
    bad = sql_lf("s", "priority >= 3 AND AND text = 'a'", "technical", label_space=LS)
    with pytest.raises(Exception, match="PARSE_SYNTAX_ERROR") as err:
        df.select(bad.spark_column()).collect()
    assert "== SQL ==\npriority >= 3 AND AND text = 'a'\n" in str(err.value) and "CASE" not in str(err.value)


def test_sql_lf_that_fails_on_a_value_is_named(spark, tmp_path, capfd):
    """'channel = 1' on a text column: ANSI Spark fails the write on 'phone'; the line named the votes table only."""
    import pandas as pd
    import yaml

    from jobs import cli

    pd.DataFrame({"id": ["a", "b"], "text": ["refund", "x"], "channel": ["phone", "1"]}).to_parquet(
        tmp_path / "src.parquet", index=False)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "lakehouse": str(tmp_path / "lake"), "mlflow": {"enabled": False},
        "source": {"path": str(tmp_path / "src.parquet"), "format": "parquet", "id_column": "id"},
        "lfs": {"label_space": list(LS), "declared": [
            {"name": "kw", "kind": "keyword", "keywords": ["refund"], "label": "billing"},
            {"name": "sql_chan", "kind": "sql", "condition": "channel = 1", "label": "technical"}]},
    }))
    capfd.readouterr()
    assert cli.main(["apply", "--config", str(config), "-q"]) == 2
    err = [line for line in capfd.readouterr().err.strip().splitlines() if "incubator" not in line]
    assert len(err) == 1 and err[0].startswith("lakelabel: error: SQL LF 'sql_chan' fails on the source's values: "
                                               "[CAST_INVALID_INPUT]"), err
    assert "its condition is 'channel = 1'" in err[0], err
