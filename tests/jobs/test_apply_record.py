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


def _record(**extra) -> str:
    import json

    from jobs.apply_record import ApplyResult, LFApplyStats

    lf = LFApplyStats(name="kw_free", version="a6a1cb45cc2c", kind="keyword", votes=3, errors=0, error_rate=0.0)
    applied = ApplyResult(run_id="r", votes_table="/lake/votes", votes_version=0, source_path="/src", source_format="csv",
                          source_version=None, fingerprint="f", n_rows=10, label_space=("ham", "spam"), lfs=(lf,),
                          skipped=False, seconds=1.0)
    return json.dumps({**json.loads(applied.to_json()), **extra})


def test_an_apply_record_of_a_newer_lakelabel_is_named_not_a_type_error():
    """An older lakelabel on a lakehouse a newer one wrote failed with exit 1 and
    `TypeError: ApplyResult.__init__() got an unexpected keyword argument ...`."""
    import pytest

    from jobs.apply_record import ApplyResult
    from lf_library.errors import InputDataError

    assert ApplyResult.from_json(_record()).lfs[0].name == "kw_free"
    with pytest.raises(InputDataError, match=r"the votes table /lake/votes: its apply record \(lakelabel.apply\) holds "
                                             r"fields this lakelabel does not know \['masks_v9'\]: a newer lakelabel"):
        ApplyResult.from_json(_record(masks_v9={}), table="the votes table /lake/votes")
