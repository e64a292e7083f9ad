"""Lexicons and ontologies from files: formats, matching semantics, versions and every bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from lf_library import ABSTAIN, LFRegistry, keyword_lf, lexicon_file_lf, load_lexicon
from lf_library.errors import LFConfigError
from lf_library.matcher import TermMatcher, cached_matcher

SPACE = ["ham", "spam"]
HAM, SPAM = 0, 1


def _votes(lf, texts):
    return lf.evaluate_arrow(pa.table({"text": pa.array(texts, pa.string())})).tolist()


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def csv_file(tmp_path):
    return _write(
        tmp_path / "terms.csv",
        "term,class,weight,synonyms\nfree money,spam,2,easy cash|quick cash\nsubscribe,spam,,\nsong,ham,1,\n"
        "beautiful,ham,1,\nc++,ham,1,\n",
    )


def test_csv_terms_weights_and_synonyms(csv_file):
    lex = load_lexicon(csv_file)
    assert dict(zip(lex.terms, lex.labels)) == {
        "free money": "spam", "easy cash": "spam", "quick cash": "spam", "subscribe": "spam",
        "song": "ham", "beautiful": "ham", "c++": "ham",
    }  # fmt: skip
    assert dict(zip(lex.terms, lex.weights))["easy cash"] == 2.0
    lf = lexicon_file_lf("lex", csv_file, label_space=SPACE)
    assert lf.kind == "lexicon" and lf.origin == f"file {csv_file}"
    assert _votes(lf, [
        "FREE MONEY here",           # case-insensitive
        "Quick Cash, subscribe!",    # synonym + term: spam 3
        "this song is beautiful",    # ham 2
        "free money for this song",  # spam 2 vs ham 1
        "subscribe to this song",    # 1 vs 1: tie abstains
        "freemoney subscriber",      # not whole words
        None,
        "I write c++ daily",         # a term ending in punctuation
        "c+++",                      # ... glued to another '+'? '+' is not a word character: matches
    ]) == [SPAM, SPAM, HAM, SPAM, ABSTAIN, ABSTAIN, ABSTAIN, HAM, HAM]


def test_matching_agrees_with_keyword_lf_on_word_boundaries():
    """Whole-word semantics are the builders': Unicode letters, marks, digits and '_' glue words."""
    texts = ["café!", "cafés", "“café”", "xcafé", "café_", "café1", "CAFÉ", "naïve café", "", "le café.", None, "ca fé"]
    kw = keyword_lf("kw", ["café"], "spam", field="text", label_space=SPACE)
    table = pa.table({"text": pa.array(texts, pa.string())})
    expected = kw.evaluate_arrow(table).tolist()
    m = TermMatcher(["café"], [SPAM], [1.0], case_sensitive=False, whole_word=True)
    assert m.votes(table.column("text")).tolist() == expected
    assert expected == [SPAM, ABSTAIN, SPAM, ABSTAIN, ABSTAIN, ABSTAIN, SPAM, SPAM, ABSTAIN, SPAM, ABSTAIN, ABSTAIN]


def test_terms_match_whichever_unicode_form_the_text_or_the_file_uses(tmp_path):
    """"café" saved decomposed ("e" + U+0301, as macOS and some scraped text write it) and composed are one
    term: keyword, inline lexicon and lexicon-file LFs compare both sides in NFC. Was a silent abstain."""
    import unicodedata

    from lf_library import lexicon_lf
    from lf_library.fused import evaluate_fused
    from lf_library.apply import evaluate_batch

    nfd = lambda s: unicodedata.normalize("NFD", s)  # noqa: E731
    texts = ["un café noir", nfd("un café noir"), nfd("CAFÉ!"), "cafe", nfd("a café, horrible"), None]
    table = pa.table({"text": pa.array(texts, pa.string())})
    for term in ("café", nfd("café")):
        path = _write(tmp_path / "t.csv", f"term,class\n{term},spam\nhorrible,ham\n")
        lfs = [keyword_lf("kw", [term], "spam", label_space=SPACE),
               lexicon_lf("inline", {"spam": [term], "ham": ["horrible"]}, label_space=SPACE),
               lexicon_file_lf("file", path, label_space=SPACE)]
        expected = {"kw": [SPAM, SPAM, SPAM, ABSTAIN, SPAM, ABSTAIN],
                    "inline": [SPAM, SPAM, SPAM, ABSTAIN, ABSTAIN, ABSTAIN],
                    "file": [SPAM, SPAM, SPAM, ABSTAIN, ABSTAIN, ABSTAIN]}
        assert {lf.name: lf.evaluate_arrow(table).tolist() for lf in lfs} == expected, term
        assert lfs[0]({"text": texts[1]}) == SPAM  # a row at a time too
    # A file holding both forms holds one term, not a duplicate
    both = load_lexicon(_write(tmp_path / "both.csv", f"term,class\ncafé,spam\n{nfd('café')},spam\n"))
    assert len(both.terms) == 1
    # Keyword LFs matched together (fused) vote as each alone
    many = [keyword_lf(f"kw{i}", ["café", f"w{i}"], "spam", label_space=SPACE) for i in range(8)]
    alone = evaluate_batch(many, table, cardinality=2).votes
    assert (evaluate_fused(many, table, cardinality=2, evaluate=lambda lfs: evaluate_batch(lfs, table, cardinality=2))
            .votes == alone).all()
    assert alone[:, 0].tolist() == [SPAM, SPAM, SPAM, ABSTAIN, SPAM, ABSTAIN]
    # A character NFC replaces on its own (a CJK compatibility ideograph) matches in either form too
    compat = keyword_lf("compat", ["\uF900"], "spam", label_space=SPACE)
    assert compat.evaluate_arrow(pa.table({"text": ["\uF900", "\u8C48", "x"]})).tolist() == [SPAM, SPAM, ABSTAIN]


def test_options_case_sensitive_and_substring(tmp_path):
    path = _write(tmp_path / "t.tsv", "term\tclass\nUK\tspam\nart\tham\n")
    exact = lexicon_file_lf("exact", path, case_sensitive=True, label_space=SPACE)
    assert _votes(exact, ["uk", "UK", "the art", "party"]) == [ABSTAIN, SPAM, HAM, ABSTAIN]
    substr = lexicon_file_lf("sub", path, whole_word=False, label_space=SPACE)
    assert _votes(substr, ["party", "ukulele"]) == [HAM, SPAM]


def test_json_yaml_and_ontology_formats(tmp_path):
    by_class = _write(tmp_path / "a.json", json.dumps({"spam": ["prize", {"term": "winner", "weight": 3}], "ham": ["lol"]}))
    records = _write(tmp_path / "b.yaml", "- {term: prize, class: spam}\n- {term: lol, class: ham, synonyms: [haha]}\n")
    onto = _write(
        tmp_path / "onto.yaml",
        "concepts:\n"
        "  promotion: {class: spam, terms: [promo]}\n"
        "  self_promotion: {parent: promotion, terms: [my channel], synonyms: [my page]}\n"
        "  channel_plug: {parent: self_promotion, terms: [sub4sub]}\n"
        "  fan_talk: {class: ham, terms: [legend]}\n",
    )
    assert sorted(load_lexicon(by_class).terms) == ["lol", "prize", "winner"]
    assert dict(zip(load_lexicon(records).terms, load_lexicon(records).labels))["haha"] == "ham"
    lex = load_lexicon(onto)
    # Children and grandchildren inherit the root's class.
    assert dict(zip(lex.terms, lex.labels)) == {
        "promo": "spam", "my channel": "spam", "my page": "spam", "sub4sub": "spam", "legend": "ham",
    }  # fmt: skip
    lf = lexicon_file_lf("onto", onto, label_space=SPACE)
    assert _votes(lf, ["visit my page", "a legend", "nothing"]) == [SPAM, HAM, ABSTAIN]


def test_version_hashes_file_content_not_path(tmp_path, csv_file):
    v1 = lexicon_file_lf("lex", csv_file, label_space=SPACE).version
    assert lexicon_file_lf("lex", csv_file, label_space=SPACE).version == v1
    moved = shutil.copy(csv_file, tmp_path / "moved.csv")
    assert lexicon_file_lf("lex", moved, label_space=SPACE).version == v1
    csv_file.write_text(csv_file.read_text() + "prize,spam,1,\n")
    assert lexicon_file_lf("lex", csv_file, label_space=SPACE).version != v1
    # Options are part of the version too.
    assert lexicon_file_lf("lex", moved, whole_word=False, label_space=SPACE).version != v1


def test_registry_resolves_classes_and_the_matcher_is_cached(csv_file):
    reg = LFRegistry(SPACE)
    lf = reg.register(lexicon_file_lf("lex", csv_file))
    assert _votes(lf, ["free money"]) == [SPAM]
    built = []

    def build():
        built.append(1)
        return lf._build()

    first = cached_matcher("test-" + lf.version, build)
    assert cached_matcher("test-" + lf.version, build) is first and built == [1]


def test_weighted_scores_pick_the_heavier_class():
    m = TermMatcher(["a b", "c", "d"], [0, 1, 1], [3.0, 1.0, 1.0], case_sensitive=False, whole_word=True)
    col = pa.array(["a b c d", "a b c", "c d", "a  b c d", "a-b c d"], pa.string())
    # 3 vs 2 -> 0; 3 vs 1 -> 0; 0 vs 2 -> 1; "a  b" (two spaces) is the term "a b" too, "a-b" is not: 2 -> 1
    assert m.votes(col).tolist() == [0, 0, 1, 0, 1]
    assert m.votes(pa.chunked_array([col[:2], col[2:]])).tolist() == [0, 0, 1, 0, 1]


def test_scales_to_many_terms_in_one_pass():
    rng = np.random.default_rng(0)
    terms = [f"t{i}x" for i in range(20_000)]
    m = TermMatcher(terms, rng.integers(0, 2, len(terms)), np.ones(len(terms)), case_sensitive=False, whole_word=True)
    texts = [f"t{i}x and T{i + 1}X" if i % 2 else f"t{i}xy" for i in range(1000)]
    rows, hit = m.hits(pa.array(texts, pa.string()))
    assert set(rows.tolist()) == set(range(1, 1000, 2))
    assert len(hit) == 2 * 500


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("dup.csv", "term,class\nfree,spam\nFree,ham\n",
         "term 'Free' (lexicon file {p} line 3) has class 'ham' but 'free' (lexicon file {p} line 2) has class 'spam'"),
        ("empty.csv", "term,class\n", "the lexicon is empty"),
        ("empty.yaml", "", "the lexicon is empty"),
        ("cycle.yaml", "concepts:\n  a: {parent: b, terms: [x]}\n  b: {parent: a, terms: [y]}\n",
         "the ontology has a cycle 'a' -> 'b' -> 'a'"),
        ("orphan.yaml", "concepts:\n  a: {parent: nope, terms: [x]}\n", "concept 'a': parent 'nope' is not a concept"),
        ("both.yaml", "concepts:\n  a: {class: spam, parent: b, terms: [x]}\n  b: {class: ham}\n",
         "concept 'a': give either 'class'"),
        ("weight.csv", "term,class,weight\nfree,spam,-1\n", "line 2: weight '-1' is not a positive number"),
        ("header.csv", "word,label\nfree,spam\n", "the header must name the columns 'term' and 'class' (or 'label'; optional"),
        ("noclass.csv", "term,class\nfree,\n", "line 2: class is missing"),
        ("blank.csv", "term,class\nfree,spam\n\nwin,\n", "line 4: class is missing"),
        ("quote.csv", 'term,class\nfree,spam\n\n"win,spam\nprize,spam\n',
         "line 4: a quoted field runs on to line 5; close the quote on line 4"),
        ("lastquote.csv", 'term,class\nfree,spam\n"win,spam\n', "line 3: a quoted field runs to the end of the file"),
        ("bad.json", "{not json", "is not valid JSON"),
        ("terms.txt", "free", "unknown format '.txt'"),
        ("key.yaml", "- {term: free, klass: spam}\n", "entry 0: unknown key 'klass'"),
        # A column the lexicon does not read, and a value beyond the header (both passed silently: a misspelled
        # weight column gave every term weight 1; an unquoted comma said "weight 'spam' is not a positive number").
        ("column.csv", "term,class,wieght\nfree,spam,2\n",
         "the header names column(s) ['wieght'] that a lexicon does not have; its columns are term, class (or label)"),
        ("twice.csv", "term,class,weight,weight\nfree,spam,2,3\n", "the header names column 'weight' twice"),
        ("comma.csv", "term,class,weight\nfree,spam,2\nwin, prize,spam,1\n",
         'line 3: a value beyond the header\'s 3 named columns; a term, class or synonym holding \',\' must be quoted '
         '(e.g. "win, prize")'),
        ("tab.tsv", "term\tclass\nfree\tspam\tx\n", "line 2: a value beyond the header's 2 named columns; a term, class "
                                                   "or synonym holding a tab must be quoted"),
        ("blankhead.csv", "term,class,\nfree,spam,\nwin,spam,x\n", "line 3: a value beyond the header's 2 named columns"),
    ],
)
def test_bad_lexicon_files_name_the_file_and_entry(tmp_path, name, text, message):
    p = _write(tmp_path / name, text)
    with pytest.raises(LFConfigError) as err:
        load_lexicon(p)
    assert message.format(p=p) in str(err.value)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_trailing_delimiters_with_nothing_after_them_are_read(tmp_path):
    p = _write(tmp_path / "sheet.csv", "term,class,weight,\nfree,spam,2,\nsong,ham,,\n")  # a spreadsheet's export
    lex = load_lexicon(p)
    assert (lex.terms, lex.labels, lex.weights) == (("free", "song"), ("spam", "ham"), (2.0, 1.0))


def test_missing_file_and_unknown_class(tmp_path, csv_file):
    with pytest.raises(LFConfigError, match=r"lexicon file .*absent.csv cannot be read"):
        load_lexicon(tmp_path / "absent.csv")
    # The class's first line, to fix it there (a drill: the error named the file only).
    with pytest.raises(LFConfigError, match=r"label 'spam' is not in the label space .*\(lexicon file .*terms.csv "
                                            r"line 2, term 'free money'\)$"):
        lexicon_file_lf("lex", csv_file, label_space=["neg", "pos"])
    yaml_file = _write(tmp_path / "terms.yaml", "spam: [free]\nhamm: [love, song]\n")
    with pytest.raises(LFConfigError, match=r"label 'hamm' .*\(lexicon file .*terms.yaml class 'hamm' entry 0, term "
                                            r"'love'\)$"):
        lexicon_file_lf("lex", yaml_file, label_space=["ham", "spam"])
