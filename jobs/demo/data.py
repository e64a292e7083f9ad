"""Seeded synthetic customer-support tickets: the demo source table for lakelabel.

Each ticket is one of four classes (:data:`LABEL_SPACE`, imbalanced 40/30/20/10). Its text is
built from independent *segments* (a greeting, the main issue, some context, a money amount,
an order number, the platform, a login remark, an intent, a filler, a closing), each drawn from a
class-conditional distribution over phrase pools. Because every segment is sampled
independently given the class, labeling functions that read different segments are
conditionally independent, which is the assumption the label model makes; the strength of
each segment's cue (how often it names the true class) sets the accuracy of the LFs that
read it, so :mod:`lf_library.lfs.demo` can be designed with known accuracies.

Generation is vectorized (numpy sampling, pyarrow string kernels) and organised in fixed
blocks of ``_BLOCK_ROWS`` rows, each with its own RNG stream seeded by ``(seed, block)``.
So the rows depend only on the seed and their position: ``generate_demo_rows(m, s)`` is a
prefix of ``generate_demo_rows(n, s)`` for ``m <= n``, and :func:`write_demo_source` writes
the same rows whatever ``rows_per_file`` is.

The ``true_label`` / ``true_label_id`` columns hold the hidden truth, for evaluation only;
the LFs never read them.
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs.demo.urgency import URGENCY_FIELDS, urgency_columns

__all__ = [
    "LABEL_SPACE",
    "CLASS_BALANCE",
    "DEMO_SCHEMA",
    "generate_demo_rows",
    "write_demo_source",
    "main",
]

LABEL_SPACE: tuple[str, ...] = ("billing", "technical", "shipping", "account")
"""Class names; ``true_label_id`` is the index into this tuple."""

CLASS_BALANCE: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
"""Expected class frequencies, in :data:`LABEL_SPACE` order."""

DEMO_SCHEMA = pa.schema(
    [
        pa.field("ticket_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("priority", pa.int32(), nullable=False),
        pa.field("customer_tier", pa.string(), nullable=False),
        pa.field("true_label", pa.string(), nullable=False),
        pa.field("true_label_id", pa.int32(), nullable=False),
        *URGENCY_FIELDS,  # the second task (jobs/demo/urgency.py)
    ]
)
"""Schema of the demo source table."""

_BLOCK_ROWS = 1 << 16  # rows per RNG stream; fixed, so rows never depend on chunking

_CHANNELS = ("email", "chat", "phone")
_TIERS = ("free", "pro", "enterprise")

# Rows: true class (billing, technical, shipping, account).
_P_CHANNEL = np.array(
    [[0.55, 0.25, 0.20], [0.25, 0.35, 0.40], [0.35, 0.50, 0.15], [0.30, 0.30, 0.40]]
)
_P_PRIORITY = np.array(  # priority 1..4
    [[0.30, 0.40, 0.20, 0.10], [0.10, 0.25, 0.35, 0.30], [0.25, 0.35, 0.25, 0.15], [0.20, 0.30, 0.30, 0.20]]
)
_P_TIER = np.array([[0.40, 0.40, 0.20], [0.30, 0.40, 0.30], [0.60, 0.30, 0.10], [0.50, 0.35, 0.15]])


def _expand(templates: Sequence[str], **slots: Sequence[str]) -> list[str]:
    """Every filling of every template's ``{slot}`` placeholders, in a fixed order."""
    out: list[str] = []
    for template in templates:
        names = [n for n in slots if "{" + n + "}" in template]
        for values in itertools.product(*(slots[n] for n in names)):
            out.append(template.format(**dict(zip(names, values))))
    return out


# A segment is a list of topic pools; a class-conditional matrix [k, n_topics] picks the topic
# of each row, then a phrase is drawn uniformly from that topic's pool. The last topic of a
# segment is the "no cue" topic (an empty string or neutral phrases).
_GREETING = [["Hi,", "Hello,", "Hello team,", "Good morning,", "Hey,", "Dear support,", "", "", ""]]

_ISSUE = [
    _expand(  # billing
        [
            "I was {charged} twice for the same month.",
            "The {refund} for my cancelled order has not arrived.",
            "My {invoice} shows the wrong amount.",
            "Why was I {charged} again this week?",
            "I need a {refund} for last month.",
            "There is a double charge on my statement.",
            "I think I was overcharged.",
        ],
        charged=["charged", "billed"],
        refund=["refund", "reimbursement"],
        invoice=["invoice", "receipt", "bill"],
    ),
    _expand(  # technical
        [
            "The app {crashes} when I open it.",
            "I get an {error} when I try to save my work.",
            "The page keeps loading forever.",
            "Uploads fail with an {error}.",
            "The {feature} is broken.",
            "There seems to be a bug in the {feature}.",
        ],
        crashes=["crashes", "freezes", "closes itself"],
        error=["error", "error message", "exception"],
        feature=["export button", "search", "sync", "dashboard"],
    ),
    _expand(  # shipping
        [
            "My {package} has not arrived yet.",
            "The {tracking} has not changed in a week.",
            "The {package} went to my neighbour instead of me.",
            "The {courier} left my {package} outside in the rain.",
            "My {package} arrived damaged.",
            "Where is my {package}?",
        ],
        package=["package", "parcel", "shipment"],
        tracking=["tracking number", "tracking page", "tracking link"],
        courier=["courier", "driver"],
    ),
    _expand(  # account
        [
            "I cannot reset my password.",
            "My {acct} has been locked.",
            "The verification code never arrives.",
            "I want to change the name on my {acct}.",
            "Someone else signed into my {acct}.",
            "Two-factor authentication keeps rejecting my code.",
            "I forgot my password again.",
        ],
        acct=["account", "user account"],
    ),
    [  # no cue: tickets that say nothing useful
        "I have a problem and need some help.",
        "Something is not working as it should.",
        "Can someone please look into this?",
        "I have a question about your service.",
        "Not sure who to ask about this.",
        "This is the third time I am writing.",
        "Nothing has happened since my last message.",
        "Your service has been disappointing lately.",
    ],
]
# The issue names the true class on ~55% of tickets and rarely another one.
_P_ISSUE = np.array(
    [
        [0.55, 0.02, 0.03, 0.02, 0.38],
        [0.02, 0.55, 0.01, 0.03, 0.39],
        [0.04, 0.01, 0.55, 0.01, 0.39],
        [0.02, 0.04, 0.01, 0.55, 0.38],
    ]
)

_CONTEXT = [
    [  # billing
        "It concerns my premium plan.",
        "I pay with a credit card.",
        "We are on the annual subscription.",
        "The monthly fee went up without notice.",
        "Your pricing page says something else.",
        "My subscription renews on the first.",
    ],
    [  # technical
        "This started after the last update.",
        "I am on the newest version.",
        "I already cleared the cache.",
        "I did not change any settings.",
        "A reinstall did not help.",
        "It worked fine before the update.",
    ],
    [  # shipping
        "I moved to a new address recently.",
        "The estimated delivery date has passed.",
        "It left the warehouse days ago.",
        "I paid for express delivery.",
        "The shipping label looks wrong.",
        "Delivery was promised for Monday.",
    ],
    [  # account
        "My profile still shows my old name.",
        "I now use a different email address.",
        "My username has not changed.",
        "I cannot sign in on my laptop either.",
        "I got a security alert by mail.",
        "My profile picture disappeared too.",
    ],
    [""],
]
_P_CONTEXT = np.array(
    [
        [0.45, 0.10, 0.10, 0.10, 0.25],
        [0.10, 0.45, 0.10, 0.10, 0.25],
        [0.10, 0.10, 0.45, 0.10, 0.25],
        [0.10, 0.10, 0.10, 0.45, 0.25],
    ]
)

_PLATFORM = [
    _expand(
        ["I am using it on my {device}.", "This happens on {device}.", "Tried it on {device} as well."],
        device=["iphone", "android phone", "windows laptop", "mac", "chrome browser", "ipad"],
    ),
    [""],
]
_P_PLATFORM = np.array([[0.10, 0.90], [0.60, 0.40], [0.15, 0.85], [0.30, 0.70]])

_LOGIN = [
    [
        "It happens right after I login.",
        "I tried to log in again and again.",
        "The login page just reloads.",
        "Every login attempt fails.",
        "I can log in on the website only.",
    ],
    [""],
]
# Login remarks mostly come with account tickets (the demo's "worse than random" LF reads
# them as technical).
_P_LOGIN = np.array([[0.06, 0.94], [0.06, 0.94], [0.02, 0.98], [0.50, 0.50]])

_INTENT = [
    [
        "I want to cancel.",
        "Please cancel it.",
        "I am thinking about cancelling.",
        "How do I cancel?",
        "Cancel everything if this cannot be fixed.",
    ],
    [""],
]
_P_INTENT = np.array([[0.15, 0.85], [0.02, 0.98], [0.10, 0.90], [0.25, 0.75]])

# Money: "I paid $A but was charged $B." (the demo's raising LF divides B by A; A is 0 for a
# few free-trial tickets).
_MONEY_TEMPLATES = [
    ("I paid $", " but was charged $", "."),
    ("I expected to pay $", " and was charged $", "."),
    ("My plan costs $", " but I was charged $", "."),
]
_P_MONEY = np.array([0.30, 0.02, 0.10, 0.06])  # P(money sentence | class)
_P_FREE_TRIAL = 0.035  # P(A == 0 | money sentence)
_P_UNDERCHARGE = 0.15  # P(B < A | money sentence): the raising LF abstains on these

_ORDER_TEMPLATES = [
    ("My order number is #", "."),
    ("It is about order ", "."),
    ("Reference: order #", "."),
]
_P_ORDER = np.array([0.30, 0.08, 0.55, 0.03])

# Shared filler: no class signal, some mildly misleading words ("app", "payment", "delivery").
_FILLER = [
    "I have been a customer for years.",
    "My colleague has the same issue.",
    "I already wrote about this yesterday.",
    "I need this sorted out before the weekend.",
    "I tried your help center first.",
    "Your app is usually great.",
    "The chatbot could not help me.",
    "I am not happy with the payment experience or the delivery times in general.",
    "",
    "",
]

_CLOSING = [
    "Thanks.",
    "Thanks in advance.",
    "Regards.",
    "Please help asap!",
    "Kindly reply today.",
    "Honestly, this is frustrating.",
    "Cheers.",
    "",
    "",
]


def _flat_pools(pools: Sequence[Sequence[str]]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Concatenate topic pools into one Arrow array with per-topic offsets and sizes."""
    sizes = np.array([len(p) for p in pools], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return pa.array([s for p in pools for s in p], type=pa.string()), offsets, sizes


def _sample_categorical(rng: np.random.Generator, probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One draw per row from ``probs[y[i]]``; probs: [k, t] rows summing to 1."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(y))
    return (u[:, None] >= cum[y]).sum(axis=1)


def _sample_segment(
    rng: np.random.Generator, pools: Sequence[Sequence[str]], probs: np.ndarray | None, y: np.ndarray
) -> pa.Array:
    """Phrases of one segment: topic from ``probs[y]`` (or the single pool), then a uniform phrase."""
    flat, offsets, sizes = _flat_pools(pools)
    topic = np.zeros(len(y), dtype=np.int64) if probs is None else _sample_categorical(rng, probs, y)
    idx = offsets[topic] + np.floor(rng.random(len(y)) * sizes[topic]).astype(np.int64)
    return flat.take(pa.array(idx))


def _fill_numbers(
    templates: Sequence[tuple[str, ...]], present: np.ndarray, numbers: Sequence[np.ndarray], pick: np.ndarray
) -> pa.Array:
    """Interleave template pieces with numbers (``pieces[0] n0 pieces[1] n1 ...``); '' where absent."""
    parts: list[pa.Array] = []
    for j in range(len(templates[0])):
        piece = np.array([t[j] for t in templates], dtype=object)[pick]
        parts.append(pa.array(np.where(present, piece, ""), type=pa.string()))
        if j < len(numbers):
            text = pc.cast(pa.array(numbers[j]), pa.string())
            parts.append(pc.if_else(pa.array(present), text, ""))
    return pc.binary_join_element_wise(*parts, "")


def _generate_block(block: int, seed: int) -> pa.Table:
    """All ``_BLOCK_ROWS`` rows of one block, from the RNG stream ``(seed, block)``."""
    rng = np.random.default_rng([seed, block])
    n = _BLOCK_ROWS
    y = _sample_categorical(rng, np.tile(np.array(CLASS_BALANCE), (len(LABEL_SPACE), 1)), np.zeros(n, np.int64))

    channel = np.array(_CHANNELS, dtype=object)[_sample_categorical(rng, _P_CHANNEL, y)]
    priority = (_sample_categorical(rng, _P_PRIORITY, y) + 1).astype(np.int32)
    tier = np.array(_TIERS, dtype=object)[_sample_categorical(rng, _P_TIER, y)]

    greeting = _sample_segment(rng, _GREETING, None, y)
    issue = _sample_segment(rng, _ISSUE, _P_ISSUE, y)
    context = _sample_segment(rng, _CONTEXT, _P_CONTEXT, y)
    platform = _sample_segment(rng, _PLATFORM, _P_PLATFORM, y)
    login = _sample_segment(rng, _LOGIN, _P_LOGIN, y)
    intent = _sample_segment(rng, _INTENT, _P_INTENT, y)
    filler = _sample_segment(rng, [_FILLER], None, y)
    closing = _sample_segment(rng, [_CLOSING], None, y)

    has_money = rng.random(n) < _P_MONEY[y]
    paid = rng.integers(5, 120, size=n)
    paid = np.where(rng.random(n) < _P_FREE_TRIAL, 0, paid)
    extra = rng.integers(1, 80, size=n)
    charged = np.where(rng.random(n) < _P_UNDERCHARGE, np.maximum(paid - extra, 0), paid + extra)
    money = _fill_numbers(
        _MONEY_TEMPLATES, has_money, [paid, charged], rng.integers(0, len(_MONEY_TEMPLATES), size=n)
    )

    has_order = rng.random(n) < _P_ORDER[y]
    order_no = rng.integers(10_000, 1_000_000, size=n)
    order = _fill_numbers(_ORDER_TEMPLATES, has_order, [order_no], rng.integers(0, len(_ORDER_TEMPLATES), size=n))

    text = pc.binary_join_element_wise(
        greeting, issue, context, money, order, platform, login, intent, filler, closing, " "
    )
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s{2,}", " "))

    ids = np.arange(block * n, (block + 1) * n, dtype=np.int64)
    ticket_id = pc.binary_join_element_wise("T", pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), 9, "0"), "")
    return pa.Table.from_arrays(
        [
            ticket_id,
            text,
            pa.array(channel, type=pa.string()),
            pa.array(priority, type=pa.int32()),
            pa.array(tier, type=pa.string()),
            pa.array(np.array(LABEL_SPACE, dtype=object)[y], type=pa.string()),
            pa.array(y.astype(np.int32), type=pa.int32()),
            *urgency_columns(ids, priority, channel, tier, seed),
        ],
        schema=DEMO_SCHEMA,
    )


def _generate_range(start: int, stop: int, seed: int) -> pa.Table:
    """Rows ``start <= i < stop`` of the infinite demo sequence for ``seed``."""
    if stop <= start:
        return DEMO_SCHEMA.empty_table()
    first, last = start // _BLOCK_ROWS, (stop - 1) // _BLOCK_ROWS
    table = pa.concat_tables(_generate_block(b, seed) for b in range(first, last + 1))
    return table.slice(start - first * _BLOCK_ROWS, stop - start).combine_chunks()


def _check_n_seed(n: int, seed: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int (rows to generate); got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")


def generate_demo_rows(n: int, seed: int = 0) -> pa.Table:
    """Generate ``n`` synthetic support tickets.

    Parameters
    ----------
    n : int
        Number of rows (``>= 0``).
    seed : int, default 0
        Seed of the generator; the same ``(n, seed)`` always gives an identical table, and
        ``generate_demo_rows(m, seed)`` is a prefix of ``generate_demo_rows(n, seed)`` for
        ``m <= n``.

    Returns
    -------
    pyarrow.Table
        Columns per :data:`DEMO_SCHEMA`: ``ticket_id`` (``"T000000000"``, ``"T000000001"``, ...,
        unique, in row order), ``text``, ``channel`` (email/chat/phone), ``priority`` (1..4),
        ``customer_tier`` (free/pro/enterprise), ``true_label`` (a :data:`LABEL_SPACE` name)
        and ``true_label_id`` (its index).
    """
    _check_n_seed(n, seed)
    return _generate_range(0, int(n), int(seed))


def write_demo_source(
    path: str, n: int, seed: int = 0, *, rows_per_file: int = 250_000, overwrite: bool = False
) -> str:
    """Write ``n`` demo tickets as Parquet files ``part-00000.parquet``, ... into directory ``path``.

    Rows are generated one file at a time, so memory stays bounded by ``rows_per_file``; the
    concatenated files equal ``generate_demo_rows(n, seed)`` whatever ``rows_per_file`` is.

    Parameters
    ----------
    path : str
        Target directory (created if missing).
    n : int
        Number of rows.
    seed : int, default 0
        Generator seed.
    rows_per_file : int, default 250_000
        Rows per Parquet file.
    overwrite : bool, default False
        Delete existing ``part-*.parquet`` files in ``path`` first; otherwise their presence is
        an error.

    Returns
    -------
    str
        ``path``.
    """
    _check_n_seed(n, seed)
    if isinstance(rows_per_file, bool) or not isinstance(rows_per_file, (int, np.integer)) or rows_per_file < 1:
        raise ValueError(f"rows_per_file must be a positive int; got {rows_per_file!r}")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"demo source path {path!r} is a file; pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("part-*.parquet"))
    if existing and not overwrite:
        raise FileExistsError(
            f"demo source directory {path!r} already holds {len(existing)} part-*.parquet files; "
            "pass overwrite=True or choose an empty directory"
        )
    for old in existing:
        old.unlink()
    n_files = max(1, -(-int(n) // int(rows_per_file)))
    for i in range(n_files):
        start = i * int(rows_per_file)
        chunk = _generate_range(start, min(start + int(rows_per_file), int(n)), int(seed))
        # Row groups of 64k rows let Spark split a file across cores.
        pq.write_table(chunk, os.fspath(out / f"part-{i:05d}.parquet"), compression="zstd", row_group_size=65_536)
    return os.fspath(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m jobs.demo.data PATH --rows N [--seed S] [--rows-per-file R] [--overwrite]``."""
    parser = argparse.ArgumentParser(prog="python -m jobs.demo.data", description=main.__doc__)
    parser.add_argument("path", help="output directory for the Parquet files")
    parser.add_argument("--rows", type=int, default=1_000_000, help="number of tickets (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--rows-per-file", type=int, default=250_000, help="rows per Parquet file")
    parser.add_argument("--overwrite", action="store_true", help="replace existing part files")
    args = parser.parse_args(argv)
    write_demo_source(args.path, args.rows, args.seed, rows_per_file=args.rows_per_file, overwrite=args.overwrite)
    print(f"wrote {args.rows} demo tickets to {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
