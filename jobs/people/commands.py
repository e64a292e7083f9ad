"""The people-in-the-loop commands: ``gold import``, ``gold status``, ``annotate``, ``suggest``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jobs.runtime.command import Command, check_out_file

_FORMATS = ["auto", "csv", "parquet", "delta", "label-studio"]
_STRATEGIES = ["uncertain", "conflict", "uncovered", "stratified", "disagreement"]


def summary_line(summary: dict[str, Any]) -> str:
    """The one line each people command prints on success."""
    counts = summary.get("counts", {})
    if summary.get("stage") == "gold status":
        current = ", ".join(f"{key} {n}" for key, n in counts["current"].items()) or "none"
        examples = "; ".join(f"{e['row_id']}: " + ", ".join(f"{who} {label}" for who, label in e["labels"].items())
                             for e in summary["conflict_examples"])  # fmt: skip
        return (f"{counts['rows']} row(s), {counts['labels_given']} label(s) from {counts['annotators']} annotator(s) "
                f"in {counts['imports']} import(s); current (split/class) {current}; {counts['conflicts']} row(s) "
                f"where annotators disagree" + (f", e.g. {examples}" if examples else ""))
    if summary.get("stage") == "gold import":
        if summary.get("skipped"):
            return f"{summary['file']['path']}: its content was imported before; nothing added"
        return (f"imported {counts['imported']} label(s) (dev {counts['dev']}, test {counts['test']}, "
                f"{counts['unlabeled']} unlabeled skipped, {counts['relabeled']} relabeled, "
                f"{counts['conflicts']} annotator conflict(s)) into {summary['tables']['gold']['path']} "
                f"v{summary['tables']['gold']['version']}")
    if summary.get("stage") == "annotate":
        return f"{counts['rows']} row(s) by {summary['strategy']} -> {', '.join(summary['files'])}"
    return f"{counts['kept']} LF(s) of {counts['candidates']} candidates -> {', '.join(summary['files'])}"


def _import_options(p: Any) -> None:
    p.add_argument("--file", required=True, help="CSV, Parquet file/folder, Delta table or Label Studio JSON export")
    p.add_argument("--format", default="auto", choices=_FORMATS)
    p.add_argument("--annotator", help="annotator of rows that name none (default: unknown)")
    p.add_argument("--split", choices=["dev", "test"], help="split of new rows that give none (default: by id hash)")
    _task_option(p)


def _task_option(p: Any) -> None:
    from jobs.task_views import add_task_option

    add_task_option(p, every=False)


def _gold_config(args: Any, cfg: Any, command: str) -> Any:
    """The config whose gold table the command reads: a task's (``<tables.gold>_<task>``) with ``--task``."""
    from jobs.task_views import one_task

    view = one_task(cfg, args.task, command=command)
    return cfg if view is None else view.cfg


def _import_precheck(args: Any, cfg: Any) -> None:
    from jobs.people.files import read_gold_file
    from jobs.people.gold import checked_records, import_needs_spark

    # A missing or unreadable file, or one with no label, a label outside the label space, a bad split or
    # two labels from one annotator for a row, costs no Spark startup (people's labels: small, read
    # again by the import). A file already in a local gold table adds nothing and is not checked again.
    gold_cfg = _gold_config(args, cfg, "gold import")
    gf = read_gold_file(args.file, args.format)
    args.gold_needs_spark = import_needs_spark(gold_cfg, args.file, args.format, gf)  # read by _import_needs_spark
    if args.gold_needs_spark:
        checked_records(gold_cfg, gf, args.annotator)


def _import_needs_spark(args: Any, cfg: Any) -> bool:
    return args.gold_needs_spark  # decided by _import_precheck, which runs first


def _status_needs_spark(args: Any, cfg: Any) -> bool:
    from jobs.people.gold import status_needs_spark

    return status_needs_spark(_gold_config(args, cfg, "gold status"))


def _with_task(summary: dict[str, Any], args: Any) -> dict[str, Any]:
    return {**summary, "task": args.task} if args.task else summary


def _import(args: Any, cfg: Any, run_id: str, spark: Any) -> dict[str, Any]:
    from jobs.people import gold

    return _with_task(gold.run(spark, _gold_config(args, cfg, "gold import"), run_id=run_id, file=args.file,
                               format=args.format, annotator=args.annotator, split=args.split), args)  # fmt: skip


def _status(args: Any, cfg: Any, run_id: str, spark: Any) -> dict[str, Any]:
    from jobs.people import gold

    return _with_task(gold.status(spark, _gold_config(args, cfg, "gold status"), run_id=run_id), args)


def _annotate_options(p: Any) -> None:
    p.add_argument("--strategy", required=True, choices=_STRATEGIES)
    p.add_argument("--n", type=int, required=True, help="rows to pick")
    p.add_argument("--out", required=True, help="output file (.csv or .json)")
    p.add_argument("--format", default="csv", choices=["csv", "label-studio"])
    from jobs.task_views import add_task_option

    add_task_option(p, every=False)


def _annotate_precheck(args: Any, cfg: Any) -> None:
    from jobs.people.annotate import check_n
    from jobs.task_views import one_task

    one_task(cfg, args.task, command="annotate")  # a missing or unknown --task fails before Spark starts
    check_n(args.n)
    out = Path(args.out).expanduser()
    check_out_file(out, "--out", "tasks.json" if args.format == "label-studio" else "to_label.csv", given=args.out)
    if args.format == "label-studio":  # its labeling config is written beside it
        check_out_file(out.with_suffix(".xml"), "--out's labeling config", "tasks.xml")
    suffix = out.suffix.lower()
    if (args.format == "label-studio") != (suffix == ".json") and suffix in (".csv", ".json"):
        want = ".json" if args.format == "label-studio" else ".csv"
        logging.getLogger("jobs.people.annotate").warning(
            "annotate: --out %s is written as %s (--format %s); name it %s so `gold import` reads it as such",
            args.out, "JSON" if args.format == "label-studio" else "CSV", args.format, want)


def _annotate(args: Any, cfg: Any, run_id: str, spark: Any) -> dict[str, Any]:
    from jobs.people import annotate

    return annotate.run(spark, cfg, run_id=run_id, strategy=args.strategy, n=args.n, out=args.out, format=args.format,
                        task=args.task)


def _suggest_options(p: Any) -> None:
    p.add_argument("--max", type=int, default=10, help="LFs to keep (default 10)")
    p.add_argument("--out", default="suggested_lfs.py", help="LF module to write (default suggested_lfs.py)")
    p.add_argument("--min-precision", type=float, default=0.6,
                   help="keep candidates whose precision's 95%% lower bound is at least this (default 0.6)")
    p.add_argument("--min-support", type=int, default=3, help="gold dev rows a candidate must cover (default 3)")
    p.add_argument("--exclude-columns", default="",
                   help="comma-separated numeric source columns to suggest no threshold LF on (e.g. leaks of the truth)")


def _exclude_columns(args: Any) -> tuple[str, ...]:
    return tuple(c.strip() for c in args.exclude_columns.split(",") if c.strip())


def _suggest_precheck(args: Any, cfg: Any) -> None:
    from jobs.people.suggest import check_options

    check_options(args.out, args.max, args.min_precision, args.min_support)
    _check_votes_lfs(cfg)
    out = Path(args.out).expanduser()
    check_out_file(out, "--out", "suggested_lfs.py", given=args.out)
    check_out_file(out.with_suffix(".csv"), "--out's candidate table", "suggested_lfs.csv")


def _check_votes_lfs(cfg: Any) -> None:
    """Before Spark starts, for a local votes table: it was written by the LFs the config names (suggest scores
    candidates against "the existing LFs": another run's votes would name the wrong ones). A table at a URI is
    checked by :func:`jobs.people.suggest.run`, as is a missing one (after the source's precheck)."""
    from jobs import delta_io
    from jobs.runtime.lf_sources import build_registry
    from jobs.apply_record import check_lfs_unchanged, load_apply_result
    from jobs.delta_io.files import is_local_path

    votes = cfg.table_path("votes")
    if is_local_path(votes) and delta_io.LocalDeltaIO().table_exists(votes):
        check_lfs_unchanged(load_apply_result(cfg), build_registry(cfg))


def _suggest(args: Any, cfg: Any, run_id: str, spark: Any) -> dict[str, Any]:
    from jobs.people import suggest

    return suggest.run(spark, cfg, run_id=run_id, max_lfs=args.max, out=args.out, min_precision=args.min_precision,
                       min_support=args.min_support, exclude_columns=_exclude_columns(args))


def _line(name: str):
    return lambda summary: f"lakelabel {name}: {summary_line(summary)}"


COMMANDS = [
    Command(name="gold import", help="append an annotation file's labels to the gold table (idempotent)", writes=("gold",),
            add_arguments=_import_options, run=_import, done=_line("gold"),
            precheck=_import_precheck, needs_spark=_import_needs_spark,
            run_id_help="run id recorded with the import (default: a new one); an import is idempotent by the file's "
                        "content, whatever the run id"),
    Command(name="gold status", help="current gold labels per split and class, and annotator conflicts",
            add_arguments=_task_option, run=_status, done=_line("gold"),
            precheck=lambda args, cfg: _gold_config(args, cfg, "gold status"), needs_spark=_status_needs_spark,
            run_id_help="run id of this summary (default: a new one); status only reads"),
    Command(name="annotate", help="pick rows for people to label and write them to a file (CSV or Label Studio) "
                                  "(--run-id: the run whose labels to pick from; default the latest labels)",
            add_arguments=_annotate_options, run=_annotate, done=_line("annotate"), precheck=_annotate_precheck,
            reads_source=True, new_run_id=False),
    Command(name="suggest", help="suggest LFs from the gold dev labels, written as an LF module",
            add_arguments=_suggest_options, run=_suggest, done=_line("suggest"), precheck=_suggest_precheck,
            reads_source=True, run_id_help="run id written in the module's header and the summary (default: a new "
                                            "one); every run writes the module anew"),
]
