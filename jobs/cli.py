"""The ``lakelabel`` command: ``demo``, ``run`` (the pipeline), and each stage on its own.

Every command exits 0 on success and non-zero with one readable line on failure (the traceback
is printed with ``--verbose`` or ``LAKELABEL_DEBUG=1``).
"""

from __future__ import annotations

import argparse
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
    package = sub.add_parser(
        "package", help="zip lakelabel's code for spark-submit --py-files",
        description="Write dist/lakelabel-<version>.zip with the jobs, lf_library and labelmodel packages, for "
                    "`spark-submit --py-files` (Spark imports .zip files, not .whl).")
    package.add_argument("--out", default="dist", help="output folder (default dist)")
    package.add_argument("-v", "--verbose", action="store_true", help="debug logs and full tracebacks")
    package.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
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


def entry() -> None:
    """The ``lakelabel`` console script and Databricks wheel-task entry point: exit with main()'s code.

    A wheel task calls the entry point and ignores its return value, so the exit code must be
    raised for a failed run to fail the task.
    """
    raise SystemExit(main())


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "package":
        from jobs._package import build_zip

        print(build_zip(args.out))
        return 0
    from jobs._config import load_config
    from jobs._runs import check_run_id, new_run_id, run_dir, write_json

    run_id = check_run_id(args.run_id) if args.run_id else new_run_id()
    if args.command == "demo":
        from jobs import demo

        cfg = demo.demo_config(args.lakehouse, args.rows, args.seed, config=args.config, overrides=args.overrides)
    else:
        cfg = load_config(args.config, env=args.env, overrides=args.overrides)

    from jobs._session import get_spark
    from jobs.stages import run_stage

    started = time.perf_counter()
    registry = None
    if args.command in ("run", "apply"):
        from jobs._lf_sources import build_registry

        # Declared LFs, lexicon files and model URIs fail here, before Spark starts.
        registry = build_registry(cfg)
    if args.command == "fit":
        summary = run_stage(args.command, cfg, run_id=run_id, spark=None, model_run_id=args.run_id)
    else:
        master = args.master or cfg.spark.master
        spark = get_spark(f"lakelabel-{args.command}", master=master, conf=cfg.spark.conf)
        if args.command == "demo":
            from jobs import demo

            summary = demo.run(spark, cfg, run_id=run_id, rows=args.rows, seed=args.seed)
        elif args.command == "run":
            from jobs import pipeline

            summary = pipeline.run(spark, cfg, run_id=run_id, force=args.force, registry=registry).summary
        else:
            summary = run_stage(args.command, cfg, run_id=run_id, spark=spark, model_run_id=args.run_id,
                                force=getattr(args, "force", False))
    summary["seconds"] = round(time.perf_counter() - started, 3)  # the whole command, Spark startup included
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
