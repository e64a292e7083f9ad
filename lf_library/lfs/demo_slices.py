"""Slices of the demo's support tickets that ``lakelabel analyze`` reports on.

* ``mentions_login``: tickets that talk about logging in. The LF ``kw_login_is_technical``
  votes "technical" on every one of them, but in this helpdesk login trouble is mostly an
  account problem: the slice shows how much that one wrong belief costs.
* ``free_tier_chat``: chat tickets from free-tier customers, where ``sql_free_chat`` votes
  "shipping" (a weak channel heuristic).
"""

from __future__ import annotations

from lf_library import keyword_slice, sql_slice

mentions_login = keyword_slice("mentions_login", ["login", "log in"])

free_tier_chat = sql_slice("free_tier_chat", "channel = 'chat' AND customer_tier = 'free'")
