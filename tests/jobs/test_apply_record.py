"""The apply record's comparisons of LF sets: what differs is worded for the user, upgrades apart."""

from __future__ import annotations

from types import SimpleNamespace

from jobs.analysis.evaluation import evaluation_section
from jobs.apply_record import lf_differences
from lf_library import LFRegistry, keyword_lf, regex_lf


def _registry(keywords=("free", "win")) -> LFRegistry:
    reg = LFRegistry(label_space=["ham", "spam"])
    reg.register(keyword_lf("kw_free", list(keywords), label="spam", field="text"))
    reg.register(regex_lf("re_link", r"https?://", label="spam", field="text"))
    return reg


def _old_votes() -> dict[str, str]:
    """The versions lakelabel at 5413798 (before keyword matching in NFC) stored for _registry()."""
    return {"kw_free": "76a99a9f2e9b", "re_link": "15d57bae2fbb"}


def test_an_lf_versioned_anew_by_an_upgrade_is_not_called_edited():
    reg = _registry()
    parts = lf_differences(_old_votes(), reg.versions, earlier=reg.earlier_versions)
    assert len(parts) == 1 and parts[0].startswith("unedited but versioned anew by this lakelabel")
    assert "kw_free" in parts[0] and "edited [" not in parts[0]


def test_an_lf_edited_after_the_upgrade_is_still_edited():
    reg = _registry(keywords=("free", "win", "prize"))
    assert lf_differences(_old_votes(), reg.versions, earlier=reg.earlier_versions) == ["edited ['kw_free']"]


def test_analyze_on_a_run_of_an_older_lakelabel_says_to_rerun_not_to_change_settings():
    reg = _registry()
    note = evaluation_section(None, SimpleNamespace(evaluation=None), reg.names, None, None,
                              lf_versions=_old_votes(), task=SimpleNamespace(registry=reg))["note"]
    assert "versioned anew" in note and "rerun the pipeline (`lakelabel run`)" in note
    assert "analyze with the LF settings the run used" not in note
