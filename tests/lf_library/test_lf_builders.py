"""Declarative LFs evaluated with pyarrow.compute (and one Spark check of sql_lf)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lf_library import (
    ABSTAIN,
    InputDataError,
    LFConfigError,
    LFError,
    LFRegistry,
    keyword_lf,
    lexicon_lf,
    regex_lf,
    sql_lf,
)

SPACE = ["ham", "spam"]


def votes(lf, texts, field="text"):
    return lf.evaluate_arrow(pa.table({field: pa.array(texts, pa.string())})).tolist()


def test_keyword_whole_word_ignores_case_by_default():
    lf = keyword_lf("kw", ["subscribe", "check out"], "spam", label_space=SPACE)
    texts = ["Please SUBSCRIBE!", "subscribers", "x_subscribe", "check-out", "Check out my page", None, ""]
    assert votes(lf, texts) == [1, -1, -1, -1, 1, -1, -1]
    assert lf.kind == "keyword" and lf.fields == ("text",)


FOLDED = ["I can’t log in", "can\u02bct", "CAN\uff07T", "reset\n  password", "reset\u00a0password", "reset\tpassword",
          "reset password", "resetpassword", "reset-password", "cant", "can''t", None, "  "]


def test_terms_and_text_fold_whitespace_and_apostrophes(tmp_path, monkeypatch):
    """A phrase matches across any whitespace (a line break, a tab, a no-break space) and an apostrophe as any
    apostrophe (phones type ’): an SME's `can't` missed "can’t" and `reset password` a line break (a drill). The
    keyword, inline lexicon, lexicon file, fused and slice matchers agree, and the terms as written may be either."""
    from lf_library.builders import _SPACES, match_text
    from lf_library.fused import evaluate_fused
    from lf_library.apply import evaluate_batch
    from lf_library.matcher import lexicon_file_lf
    from lf_library.slicing import keyword_slice

    expected = [1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1]
    for words in (["can't", "reset password"], ["can’t", "reset  password"], ["can\u02bct", "reset\u00a0password"]):
        assert votes(keyword_lf("kw", words, "spam", label_space=SPACE), FOLDED) == expected, words
        lexicon = lexicon_lf("lex", {"spam": words}, label_space=SPACE)
        assert votes(lexicon, FOLDED) == expected, words
        terms = tmp_path / "terms.csv"
        terms.write_text("term,class\n" + "".join(f'"{w}",spam\n' for w in words))
        assert votes(lexicon_file_lf("file", terms, label_space=SPACE), FOLDED) == expected, words
        fold = keyword_slice("s", words).evaluate_arrow(pa.table({"text": pa.array(FOLDED, pa.string())}))[0]
        assert (fold.astype(int) * 2 - 1).tolist() == expected, words
    # Fused keyword LFs (ASCII rows in one pass, the others each on its own): the same votes.
    lfs = [keyword_lf(f"k{i}", ["reset password", "log in"], "spam", label_space=SPACE) for i in range(8)]
    batch = pa.table({"text": pa.array(FOLDED, pa.string())})
    fused = evaluate_fused(lfs, batch, cardinality=2, evaluate=lambda some: evaluate_batch(some, batch, cardinality=2))
    alone = [votes(lf, FOLDED) for lf in lfs]
    assert fused.votes.T.tolist() == alone and alone[0] == [1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1]
    # "can't" and "can’t" are one term of an inline lexicon: a row with it and two ham terms votes ham, no tie.
    mixed = lexicon_lf("mixed", {"spam": ["can't", "can’t"], "ham": ["ok", "fine"]}, label_space=SPACE)
    assert votes(mixed, ["can't, ok, fine"]) == [0] and mixed.spec["terms"][1][1] == ["can’t"]
    # The error names each class's own spelling (it named "can't" as under both: the spam list has none).
    with pytest.raises(LFConfigError, match="term 'can’t' under terms\\['spam'\\] and \"can't\" under terms\\['ham'\\] "
                                            "are one term as matched"):
        lexicon_lf("two", {"spam": ["can’t"], "ham": ["can't"]}, label_space=SPACE)
    # The whitespace folded is what Python's str.isspace() accepts; ASCII text without a run is not copied.
    assert _SPACES == "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    plain = pa.array(["a b", "c", None], pa.string())
    assert match_text(plain) is plain and match_text(pa.array(["a  b", "c"])).to_pylist() == ["a b", "c"]
    # The LFs of one field fold a batch's column once; the same buffers as a chunked array are folded as one.
    runs = pa.array(["a  b", "c\td"])
    assert match_text(runs) is match_text(runs) and match_text(runs).to_pylist() == ["a b", "c d"]
    assert isinstance(match_text(pa.chunked_array([runs])), pa.ChunkedArray)
    # LFs that alternate between two fields fold each once as well (one kept column refolded the other every time).
    body = pa.array(["x\ny", "z"])
    folded_body = match_text(body)
    assert match_text(runs) is match_text(runs) and match_text(body) is folded_body
    # A column of long documents is not kept for the next LF: it would stay in memory beside the next batch's.
    from lf_library import builders

    size = runs.get_total_buffer_size() + body.get_total_buffer_size() - 1
    monkeypatch.setattr(builders, "_MATCH_TEXT_CACHE_BYTES", size)
    long = pa.array(["a  b", "c\td"])
    assert match_text(long) is match_text(long)  # kept: the oldest columns made room
    assert sum(c.get_total_buffer_size() for c, _ in builders._LAST_MATCH_TEXT.entries.values()) <= size
    monkeypatch.setattr(builders, "_MATCH_TEXT_CACHE_BYTES", runs.get_total_buffer_size() - 1)
    assert match_text(runs) is not match_text(runs)
    # A slice holds its whole buffers: kept by what it holds, not by its own rows' bytes.
    monkeypatch.setattr(builders, "_MATCH_TEXT_CACHE_BYTES", 10_000)
    sliced = pa.array(["a  b" * 1000] * 10).slice(0, 1)
    assert sliced.nbytes < 10_000 < sliced.get_total_buffer_size() and match_text(sliced) is not match_text(sliced)


def test_keyword_whole_word_boundaries_are_unicode_aware():
    lf = keyword_lf("kw", ["café", "na", "c++", "subscribe"], 1, label_space=SPACE)
    texts = ["un café.", "“café”", "CAFÉ", "cafés", "naïve", "I love c++ and", "“subscribe”", "subscribe…"]
    assert votes(lf, texts) == [1, 1, 1, -1, -1, 1, 1, 1]


def test_keyword_on_slices_of_a_shared_buffer():
    lf = keyword_lf("kw", ["subscribe"], 1, label_space=SPACE)
    batches = pa.table({"text": ["plain", "“subscribe”", "x", "ascii subscribe"]}).to_batches(max_chunksize=2)
    assert [lf.evaluate_arrow(b).tolist() for b in batches] == [[-1, 1], [-1, 1]]


def test_keyword_options_and_literal_metacharacters():
    sub = keyword_lf("kw", ["subscribe"], 1, whole_word=False, label_space=SPACE)
    case = keyword_lf("kw", ["URGENT"], 1, case_sensitive=True, label_space=SPACE)
    literal = keyword_lf("kw", ["a.b", "(x)"], 0, label_space=SPACE)
    assert votes(sub, ["subscribers", "nothing"]) == [1, -1]
    assert votes(case, ["URGENT now", "urgent now"]) == [1, -1]
    assert votes(literal, ["see a.b here", "axb", "call (x) now"]) == [0, -1, 0]


def test_keyword_lists_longer_than_one_regex_chunk():
    words = [f"word{i}" for i in range(1200)]
    lf = keyword_lf("kw", words, 1, label_space=SPACE)
    assert votes(lf, ["has word1199 here", "has word5", "word12000"]) == [1, 1, -1]


def test_keyword_reads_dictionary_and_large_strings():
    lf = keyword_lf("kw", ["free"], 1, label_space=SPACE)
    dict_col = pa.array(["free stuff", "paid", None]).dictionary_encode()
    assert lf.evaluate_arrow(pa.table({"text": dict_col})).tolist() == [1, -1, -1]
    large = pa.array(["free", "no"], pa.large_string())
    assert lf.evaluate_arrow(pa.record_batch({"text": large})).tolist() == [1, -1]


def test_text_column_problems_name_the_lf_and_column():
    lf = keyword_lf("kw_free", ["free"], 1, field="body", label_space=SPACE)
    with pytest.raises(InputDataError, match=r"LF 'kw_free' reads column 'body', which the input lacks; available columns: \['text'\]"):
        lf.evaluate_arrow(pa.table({"text": ["x"]}))
    with pytest.raises(InputDataError, match=r"LF 'kw_free' matches text in column 'body', which has type int64"):
        lf.evaluate_arrow(pa.table({"body": [1, 2]}))


def test_regex_lf_uses_re2_and_rejects_what_re2_cannot_compile():
    lf = regex_lf("rx", r"\b\d{3}-\d{4}\b", "spam", label_space=SPACE)
    assert votes(lf, ["call 555-1234", "555-12345", None]) == [1, -1, -1]
    assert votes(regex_lf("rx", "Free", 1, case_sensitive=True, label_space=SPACE), ["Free", "free"]) == [1, -1]
    with pytest.raises(LFConfigError, match=r"LF 'rx_bad': pattern '\(\?=x\)y' does not compile as an RE2 regex .*lookaround"):
        regex_lf("rx_bad", "(?=x)y", 1)
    # a typo gets no lookaround hint, and the pattern as written (a drill, session 18)
    with pytest.raises(LFConfigError) as err:
        regex_lf("rx_typo", r"order (#\d+", 1)
    assert str(err.value).startswith(r"LF 'rx_typo': pattern 'order (#\d+' does not compile as an RE2 regex (")
    assert str(err.value).endswith("; fix the pattern") and "lookaround" not in str(err.value)


def test_lexicon_votes_the_class_with_most_distinct_terms():
    lf = lexicon_lf("lex", {"spam": ["free", "win", "prize"], "ham": ["song", "love"]}, label_space=SPACE)
    texts = [
        "free free free song love",  # 1 distinct spam term vs 2 ham terms
        "win a free prize, love it",  # 3 spam vs 1 ham
        "free song",  # tie
        "nothing here",
        "WIN",
        None,
    ]
    assert votes(lf, texts) == [0, 1, -1, -1, 1, -1]


def test_lexicon_counts_non_ascii_terms():
    lf = lexicon_lf("lex", {"spam": ["gratis", "café", "libre"], "ham": ["canción", "amor"]}, label_space=SPACE)
    texts = ["un «café» libre y amor", "canción de amor, café", "“café”, amor", "cafés"]
    assert votes(lf, texts) == [1, 0, -1, -1]


def test_lexicon_terms_differing_only_in_case_count_once():
    lf = lexicon_lf("lex", {0: ["Free", "free"], 1: ["win", "prize"]}, label_space=SPACE)
    assert lf.spec["terms"] == [[0, ["free"]], [1, ["prize", "win"]]]
    assert votes(lf, ["free FREE win"]) == [-1]


def test_lexicon_rejects_two_keys_for_one_class():
    with pytest.raises(LFConfigError, match=r"LF 'lex': several keys of terms resolve to the same class id\(s\) \[1\]"):
        lexicon_lf("lex", {"spam": ["a"], 1: ["b"]}, label_space=SPACE)


def test_class_names_resolve_when_the_registry_assigns_a_label_space():
    lf = keyword_lf("kw", ["free"], "spam")
    with pytest.raises(LFConfigError, match=r"LF 'kw': label 'spam' is a class name; register the LF in an LFRegistry"):
        lf.evaluate_arrow(pa.table({"text": ["free"]}))
    LFRegistry(SPACE).register(lf)
    assert votes(lf, ["free"]) == [1]


def test_unknown_class_name_fails_registration_and_leaves_the_lf_unchanged():
    lf = keyword_lf("kw", ["free"], "spamm")
    with pytest.raises(LFConfigError, match=r"LF 'kw': label 'spamm' is not in the label space \['ham', 'spam'\]"):
        LFRegistry(SPACE).register(lf)
    assert lf.label_space is None
    with pytest.raises(LFConfigError, match=r"label 5 is outside the label space 0\.\.1 \(ham, spam\)"):
        keyword_lf("kw", ["free"], 5, label_space=SPACE)
    with pytest.raises(LFConfigError, match=r"label must be a class id \(int\) or a class name \(str\), got True"):
        keyword_lf("kw", ["free"], True)


def test_builder_call_on_one_row():
    lf = keyword_lf("kw", ["free"], 1, label_space=SPACE)
    assert lf({"text": "Free!"}) == 1
    assert lf({"text": None}) == ABSTAIN


def test_sql_lf_runs_only_on_spark():
    lf = sql_lf("sql_long", "length(text) > 20", "spam", label_space=SPACE)
    assert lf.kind == "sql" and lf.spec == {"kind": "sql", "condition": "length(text) > 20", "label": "spam"}
    assert not hasattr(lf, "evaluate_arrow")
    with pytest.raises(LFError, match=r"LF 'sql_long': sql LFs run on Spark"):
        lf({"text": "x"})


@pytest.mark.spark
def test_sql_lf_spark_column(spark):
    lf = sql_lf("sql_long", "length(text) > 5", "spam", label_space=SPACE)
    df = spark.createDataFrame([("short",), ("a longer text",), (None,)], "text string")
    got = [r[0] for r in df.select(lf.spark_column()).collect()]
    assert got == [ABSTAIN, 1, ABSTAIN]


def test_a_model_that_scores_the_column_names_gets_the_fix():
    """A drill (session 18): a bare TfidfVectorizer pipeline fed the LF's DataFrame iterates over its
    column names and returns one row; the error now says how to build the pipeline."""
    from lf_library.models import _probabilities

    with pytest.raises(ValueError, match=r"predict returned 1 rows for 16 input rows; the model gets a pandas "
                                         r"DataFrame .*make_column_transformer\(\(TfidfVectorizer\(\), 'text'\)\)"):
        _probabilities(np.array(["spam"]), 16)
    classes, probs = _probabilities(np.array(["spam", "ham"]), 2)
    assert classes == ["ham", "spam"] and probs.tolist() == [[0.0, 1.0], [1.0, 0.0]]
