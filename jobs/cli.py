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

    started = time.perf_counter()
    if args.command == "fit":
        summary = _stage(args, cfg, run_id, None)
    else:
        master = args.master or cfg.spark.master
        spark = get_spark(f"lakelabel-{args.command}", master=master, conf=cfg.spark.conf)
        if args.command == "demo":
            from jobs import demo

            summary = demo.run(spark, cfg, run_id=run_id, rows=args.rows, seed=args.seed)
        elif args.command == "run":
            from jobs import pipeline

            summary = pipeline.run(spark, cfg, run_id=run_id, force=args.force).summary
        else:
            summary = _stage(args, cfg, run_id, spark)
    summary["seconds"] = round(time.perf_counter() - started, 3)  # the whole command, Spark startup included
    if args.summary_json:
        path = Path(args.summary_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, summary)
    if args.command in ("fit", "apply", "aggregate", "write"):
        write_json(run_dir(cfg.lakehouse, run_id) / f"{args.command}_summary.json", summary)
        print(f"lakelabel {args.command}: run {run_id} done")
    return 0


def _stage(args: argparse.Namespace, cfg, run_id: str, spark) -> dict:
    """Run one stage job and return its summary (the same shape for every stage).

    Keys: ``run_id``, ``stage``, ``status``, ``skipped`` (nothing new was computed), ``tables``
    (``path`` and ``version`` of the tables read or written), ``counts``, ``mlflow`` (the MLflow run
    the stages of one run id share), ``timings_seconds``, plus stage details.
    """
    from jobs import _mlflow, fit_label_model
    from jobs._delta import delta_io
    from jobs.apply_lfs import load_apply_result

    stage = args.command
    io = delta_io(spark, cfg.tables.delta_io) if spark is not None else None
    extra: dict = {}
    if stage == "apply":
        from jobs import apply_lfs

        applied = apply_lfs.run(spark, cfg, run_id=run_id, force=args.force)
        skipped, seconds = applied.skipped, applied.seconds
        tables = {"votes": {"path": applied.votes_table, "version": applied.votes_version}}
        counts = {"rows": applied.n_rows, "lfs": len(applied.lfs), "votes": sum(lf.votes for lf in applied.lfs),
                  "errors": sum(lf.errors for lf in applied.lfs)}
        extra = {"source": {"path": applied.source_path, "format": applied.source_format,
                            "version": applied.source_version},
                 "lfs": [{"name": lf.name, "version": lf.version, "kind": lf.kind, "votes": lf.votes,
                          "errors": lf.errors} for lf in applied.lfs],
                 "fingerprint": applied.fingerprint}

        def log_to_mlflow():
            if not applied.skipped:
                _mlflow.log_apply(cfg, applied)
    elif stage == "aggregate":
        from jobs import aggregate

        applied = load_apply_result(cfg, io)
        agg = aggregate.run(spark, cfg, applied=applied)
        folder = fit_label_model.save_aggregate(cfg, run_id, agg)
        skipped, seconds, s = False, agg.seconds, agg.stats
        tables = {"votes": {"path": applied.votes_table, "version": applied.votes_version}}
        counts = {"rows": s.n_rows, "covered": s.n_covered, "patterns": agg.n_patterns, "gold": agg.n_gold}
        extra = {"stats": str(folder / fit_label_model.STATS_FILE)}

        def log_to_mlflow():
            import mlflow

            mlflow.log_metrics({"aggregate_patterns": agg.n_patterns, "coverage": s.n_covered / max(s.n_rows, 1),
                                "aggregate_seconds": agg.seconds})
    elif stage == "fit":
        stats, gold = fit_label_model.load_aggregate(cfg, args.run_id)  # names the missing stage first
        applied = load_apply_result(cfg)
        fitted = fit_label_model.run(cfg, run_id=run_id, stats=stats, gold_counts=gold,
                                     lf_versions=applied.lf_versions)
        skipped, seconds = False, fitted.seconds
        tables = {"votes": {"path": applied.votes_table, "version": applied.votes_version}}
        counts = {"rows": stats.n_rows, "lfs": len(applied.lfs)}
        extra = {"label_model": {"path": fitted.model_path, "version": fitted.model_version, "mlflow_uri": None,
                                 "method": cfg.label_model.method},
                 "metrics": fitted.metrics}

        def log_to_mlflow():
            extra["label_model"]["mlflow_uri"] = _mlflow.log_fit(
                cfg, fitted, list(applied.lf_names), list(applied.label_space))
    else:  # write
        from jobs import write_labels
        from jobs._runs import latest_run_with, run_dir

        # The model comes from the fit of --run-id, or the latest fit when none is given.
        model_run = args.run_id or latest_run_with(cfg.lakehouse, fit_label_model.MODEL_FILE)
        fit_summary = run_dir(cfg.lakehouse, model_run, create=False) / "fit_summary.json" if model_run else None
        model_uri = None
        if fit_summary is not None and fit_summary.exists():
            model_uri = json.loads(fit_summary.read_text()).get("label_model", {}).get("mlflow_uri")
        applied = load_apply_result(cfg, io)
        written = write_labels.run(spark, cfg, run_id=run_id, applied=applied, model_run_id=model_run,
                                   model_uri=model_uri)
        skipped, seconds = written.skipped, written.seconds
        tables = {"votes": {"path": applied.votes_table, "version": applied.votes_version},
                  "labels": {"path": written.labels_table, "version": written.labels_version}}
        counts = {"rows": written.n_rows}
        extra = {"label_model": {"run_id": model_run, "mlflow_uri": model_uri}}

        def log_to_mlflow():
            if not written.skipped:
                import mlflow

                mlflow.log_metrics({"labels_rows": written.n_rows, "write_seconds": written.seconds})
    mlflow_info = {"run_id": None, "tracking_uri": None, "experiment": cfg.mlflow.experiment}
    if cfg.mlflow.enabled:
        # Stage jobs of one --run-id log into one MLflow run (see _mlflow.attach_run).
        active = _mlflow.attach_run(cfg, run_id)
        mlflow_info.update(run_id=active.info.run_id, tracking_uri=_mlflow.tracking_uri(cfg))
        status = "FAILED"
        try:
            log_to_mlflow()
            status = "FINISHED"
        finally:
            _mlflow.end_run(cfg, status)
    return {"run_id": run_id, "stage": stage, "status": "succeeded", "skipped": skipped, "tables": tables,
            "counts": counts, **extra, "mlflow": mlflow_info, "timings_seconds": {stage: round(seconds, 3)}}


if __name__ == "__main__":
    raise SystemExit(main())
