"""plan_apply without Spark: which LFs run again, and the reason the log and summary give."""

from __future__ import annotations

from types import SimpleNamespace

from jobs.incremental import plan_apply
from lf_library import LFRegistry, keyword_lf, regex_lf


def _registry(keywords=("free", "win")) -> LFRegistry:
    reg = LFRegistry(label_space=["ham", "spam"])
    reg.register(keyword_lf("kw_free", list(keywords), label="spam", field="text"))
    reg.register(regex_lf("re_link", r"https?://", label="spam", field="text"))
    return reg


def test_the_first_apply_after_an_upgrade_says_which_lfs_run_only_for_it():
    reg = _registry()
    # what lakelabel at 5413798 (before keyword matching in NFC) recorded for _registry()'s LFs
    prior = SimpleNamespace(lf_keys={"kw_free": "76a99a9f2e9b", "re_link": "15d57bae2fbb"}, reading="r",
                            source_fingerprint="f")
    source = SimpleNamespace(info=SimpleNamespace(fingerprint="f"))
    plan = plan_apply(prior, reg.versions, "r", source, force=False, earlier=reg.earlier_versions)
    assert plan.applied == ("kw_free",) and plan.reused == ("re_link",) and not plan.full
    assert "1 of them unedited but versioned anew by this lakelabel" in plan.reason and "['kw_free']" in plan.reason
    # what sessions 21 to 39 recorded (NFC, before whitespace and apostrophes were folded): the same
    later = SimpleNamespace(**{**vars(prior), "lf_keys": {**prior.lf_keys, "kw_free": "a6a1cb45cc2c"}})
    plan = plan_apply(later, reg.versions, "r", source, force=False, earlier=reg.earlier_versions)
    assert plan.applied == ("kw_free",) and "1 of them unedited but versioned anew" in plan.reason
    edited = _registry(keywords=("free", "win", "prize"))  # edited with the upgrade: just changed
    plan = plan_apply(prior, edited.versions, "r", source, force=False, earlier=edited.earlier_versions)
    assert plan.reason == "1 LF(s) new or changed, 1 unchanged, 0 removed"
