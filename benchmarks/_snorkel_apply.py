"""The snorkel side of ``bench_pipeline.py``: the demo's 12 LFs as snorkel LFs, applied with
``PandasLFApplier``. Runs in the snorkel venv (snorkel 0.10, pandas, pyarrow; no lakelabel import).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

# The demo's 12 LFs (lf_library/lfs/demo.py) written for snorkel: same keywords, same
# whole-word and case rules (Python ``re`` lookarounds for RE2's word bounds), same lexicon
# rule (most distinct terms wins, ties abstain), the SQL conditions as Python.


def snorkel_lfs() -> list[Any]:
    from snorkel.labeling import labeling_function

    billing, technical, shipping, account, abstain = 0, 1, 2, 3, -1

    def words(terms: list[str]) -> re.Pattern[str]:
        return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in sorted(set(terms))) + r")(?!\w)", re.I)

    def keyword(name: str, terms: list[str], label: int) -> Any:
        pattern = words(terms)

        @labeling_function(name=name)
        def lf(x: Any) -> int:
            return label if pattern.search(x.text) else abstain

        return lf

    lexicon = {
        billing: ["plan", "subscription", "credit card", "monthly fee", "pricing"],
        technical: ["update", "version", "cache", "settings", "reinstall"],
        shipping: ["address", "delivery", "warehouse", "shipping"],
        account: ["profile", "username", "email address", "sign in", "security"],
    }
    lexicon_terms = [(label, [words([t]) for t in terms]) for label, terms in lexicon.items()]

    @labeling_function(name="lex_context")
    def lex_context(x: Any) -> int:
        counts = [(sum(1 for t in terms if t.search(x.text)), label) for label, terms in lexicon_terms]
        best = max(c for c, _ in counts)
        winners = [label for c, label in counts if c == best]
        return winners[0] if best > 0 and len(winners) == 1 else abstain

    tracking = re.compile(r"\b(?:parcel|shipment|tracking (?:number|page|link)|courier)\b", re.I)

    @labeling_function(name="re_shipping_tracking")
    def re_shipping_tracking(x: Any) -> int:
        return shipping if tracking.search(x.text) else abstain

    order_ref = re.compile(r"\border\s+(?:number\s+is\s+)?#?\d+", re.IGNORECASE)

    @labeling_function(name="py_order_number")
    def py_order_number(x: Any) -> int:
        text = x.text
        return shipping if "order" in text.lower() and order_ref.search(text) else abstain

    amounts = re.compile(r"\$(\d+)\D+\$(\d+)")

    @labeling_function(name="py_overcharged")
    def py_overcharged(x: Any) -> int:
        match = amounts.search(x.text)
        if match is None:
            return abstain
        paid, charged = int(match.group(1)), int(match.group(2))
        return billing if charged / paid > 1.0 else abstain

    # A vectorized pandas LF in lakelabel; snorkel's PandasLFApplier calls LFs row by row.
    platform = re.compile(r"\b(?:iphone|android|windows|mac|chrome|ipad)\b", re.I)

    @labeling_function(name="vec_platform")
    def vec_platform(x: Any) -> int:
        return technical if platform.search(x.text) else abstain

    @labeling_function(name="sql_phone_urgent")
    def sql_phone_urgent(x: Any) -> int:
        return technical if x.channel == "phone" and x.priority >= 3 else abstain

    @labeling_function(name="sql_free_chat")
    def sql_free_chat(x: Any) -> int:
        return shipping if x.channel == "chat" and x.customer_tier == "free" else abstain

    return [
        keyword("kw_billing_terms", ["refund", "reimbursement", "invoice", "receipt", "billed", "double charge",
                                     "overcharged"], billing),
        keyword("kw_technical_terms", ["crash", "crashes", "freezes", "error", "exception", "bug", "broken"], technical),
        re_shipping_tracking,
        keyword("kw_account_terms", ["password", "locked", "verification code", "two-factor", "signed into"], account),
        lex_context,
        keyword("kw_cancel", ["cancel", "cancelling", "cancelled"], billing),
        keyword("kw_login_is_technical", ["login", "log in"], technical),
        sql_phone_urgent,
        sql_free_chat,
        py_order_number,
        py_overcharged,
        vec_platform,
    ]


def snorkel_worker(source: str, out: str) -> None:
    """Run in the snorkel venv: PandasLFApplier over the source rows; writes timings and L."""
    import numpy as np
    import pandas as pd
    from snorkel.labeling import PandasLFApplier

    df = pd.read_parquet(source)  # ordered by ticket id (the generator writes them in order)
    lfs = snorkel_lfs()
    applier = PandasLFApplier(lfs)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    L = applier.apply(df, progress_bar=False, fault_tolerant=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    import snorkel

    np.save(out + ".npy", L.astype(np.int8))
    Path(out).write_text(json.dumps({"rows": len(df), "wall_s": wall, "cpu_s": cpu, "cores": 1,
                                     "lf_names": [lf.name for lf in lfs], "snorkel": snorkel.__version__,
                                     "ids_first": str(df["ticket_id"].iloc[0])}))
