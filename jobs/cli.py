"""The ``lakelabel`` command: ``demo``, ``run`` (the pipeline), and each stage on its own.

Every command exits 0 on success and non-zero with one readable line on failure (the traceback
is printed with ``--verbose`` or ``LAKELABEL_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from lf_library.errors import LakelabelError

log = logging.getLogger("jobs.cli")

STAGES = ("run", "apply", "aggregate", "fit", "write")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakelabel",
        description="Programmatic labeling as Spark jobs over Delta tables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, *, config_required: bool = True) -> None:
        if config_required:
            p.add_argument("--config", required=True, help="pipeline YAML, e.g. conf/youtube.yaml")
            p.add_argument("--env", help="environment overlay: conf/env/<ENV>.yaml (local, cluster, databricks)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set apply.max_error_rate=0.1 (repeatable)")
        p.add_argument("--run-id", help="run id (default: a new one); rerunning with the same id is a no-op per stage")
        p.add_argument("--summary-json", metavar="PATH", help="write a machine-readable run summary here")
        p.add_argument("--master", help="Spark master, e.g. local[2] or spark://127.0.0.1:7077")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logs and full tracebacks")
        p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")

    helps = {
        "run": "the whole pipeline: apply, aggregate, fit, write",
        "apply": "apply the LFs and write the votes table",
        "aggregate": "compute sufficient statistics of the votes on Spark",
        "fit": "fit the label model from the statistics (driver only, no Spark)",
        "write": "write probabilistic labels with lineage",
    }
    for name in STAGES:
        p = sub.add_parser(name, help=helps[name], description=helps[name])
        common(p)
        if name in ("run", "apply"):
            p.add_argument("--force", action="store_true", help="recompute votes even when they are up to date")
    demo = sub.add_parser("demo", help="generate a synthetic ticket dataset and run the whole pipeline on it",
                          description="Generate a seeded synthetic dataset with hidden true labels, register the "
                                      "demo LF library and run the pipeline on local Spark.")
    demo.add_argument("--rows", type=int, default=100_000, help="rows to generate (default 100000)")
    demo.add_argument("--lakehouse", default="./lakehouse", help="output folder (default ./lakehouse)")
    demo.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    demo.add_argument("--config", help="optional YAML merged over the demo defaults")
    common(demo, config_required=False)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    if verbose:
        os.environ.setdefault("LAKELABEL_SPARK_LOG_LEVEL", "WARN")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    for name in ("jobs", "lf_library", "labelmodel"):
        logging.getLogger(name).setLevel(level)
    for noisy in ("py4j", "mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    first = text.splitlines()[0]
    # Spark and Py4J errors carry JVM stack traces after the first line.
    return first if len(first) <= 2000 else first[:2000] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = args.verbose or os.environ.get("LAKELABEL_DEBUG") == "1"
    _setup_logging(debug, args.quiet)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("lakelabel: interrupted", file=sys.stderr)
        return 130
    except LakelabelError as err:
        if debug:
            log.exception("failed")
        print(f"lakelabel: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - the CLI boundary turns every failure into one line
        if debug:
            log.exception("failed")
        print(f"lakelabel: error: {type(err).__name__}: {_one_line(err)} (rerun with --verbose for the traceback)",
              file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    from jobs._config import load_config
    from jobs._runs import check_run_id, new_run_id, run_dir, write_json

    run_id = check_run_id(args.run_id) if args.run_id else new_run_id()
    if args.command == "demo":
        from jobs import demo

        cfg = demo.demo_config(args.lakehouse, args.rows, args.seed, config=args.config, overrides=args.overrides)
    else:
        cfg = load_config(args.config, env=args.env, overrides=args.overrides)

    from jobs._session import get_spark

    started = time.perf_counter()
    summary: dict
    if args.command == "fit":
        from jobs import fit_label_model

        from jobs.apply_lfs import load_apply_result

        stats, gold = fit_label_model.load_aggregate(cfg, args.run_id)
        fitted = fit_label_model.run(cfg, run_id=run_id, stats=stats, gold_counts=gold,
                                     lf_versions=load_apply_result(cfg).lf_versions)
        summary = {"run_id": run_id, "stage": "fit", "model": fitted.model_path,
                   "model_version": fitted.model_version, "metrics": fitted.metrics}
    else:
        master = args.master or cfg.spark.master
        spark = get_spark(f"lakelabel-{args.command}", master=master, conf=cfg.spark.conf)
        if args.command == "demo":
            from jobs import demo

            summary = demo.run(spark, cfg, run_id=run_id, rows=args.rows, seed=args.seed)
        elif args.command == "run":
            from jobs import pipeline

            summary = pipeline.run(spark, cfg, run_id=run_id, force=args.force).summary
        elif args.command == "apply":
            from jobs import apply_lfs

            applied = apply_lfs.run(spark, cfg, run_id=run_id, force=args.force)
            summary = {"run_id": run_id, "stage": "apply", **json.loads(applied.to_json())}
        elif args.command == "aggregate":
            from jobs import aggregate, fit_label_model

            agg = aggregate.run(spark, cfg)
            folder = fit_label_model.save_aggregate(cfg, run_id, agg)
            s = agg.stats
            summary = {"run_id": run_id, "stage": "aggregate", "rows": s.n_rows, "patterns": agg.n_patterns,
                       "coverage": s.n_covered / max(s.n_rows, 1), "stats": str(folder / fit_label_model.STATS_FILE),
                       "seconds": agg.seconds}
        elif args.command == "write":
            from jobs import write_labels

            # The model comes from the fit of --run-id, or the latest fit when none is given.
            written = write_labels.run(spark, cfg, run_id=run_id, model_run_id=args.run_id)
            summary = {"run_id": run_id, "stage": "write", "labels_table": written.labels_table,
                       "labels_version": written.labels_version, "rows": written.n_rows, "skipped": written.skipped}
    summary.setdefault("seconds", round(time.perf_counter() - started, 3))
    if args.summary_json:
        path = Path(args.summary_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, summary)
    if args.command in ("fit", "apply", "aggregate", "write"):
        write_json(run_dir(cfg.lakehouse, run_id) / f"{args.command}_summary.json", summary)
        print(f"lakelabel {args.command}: run {run_id} done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
