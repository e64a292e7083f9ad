"""What each change of the multi-task path buys, measured side by side in one Spark session.

One command (from the repository root, with the project's ``.venv``)::

    .venv/bin/python benchmarks/bench_multitask_steps.py --rows 200000 [--tasks 50] [--lfs-per-task 10]

Runs ``bench_multitask.py``'s multi-task config (``--tasks`` tags x ``--lfs-per-task`` keyword LFs
over the demo tickets) through ``lakelabel run`` once, then on the tables of that run times each
step both ways, in the same process and right after each other (CPU seconds of the whole process
tree, wall seconds, load average):

* **group**: the votes grouped by row, Spark's ``collect_list`` and a join with the source ids
  (:func:`jobs.aggregate.pattern_frame`, before) against :func:`jobs.multitask.group_codes`
  (one shuffle, each partition sorted and cut in Python);
* **counts**: per-LF vote counts read back from every votes file by Spark (before) against the
  Parquet footers (:func:`jobs.apply_lfs._votes_from_footers`, Spark only for files with errors);
* **score**: the labels of every task scored per row (``predict``, before) against per distinct
  vote pattern (:func:`jobs.multitask_labels.score_by_pattern`), in numpy on one core;
* **write**: the labels scored in one ``mapInArrow`` and written by another (before) against
  scored inside the writing tasks (``write_table(..., transform=...)``).

Results go to ``--out`` (default ``benchmarks/out/multitask_steps.json``) and a markdown table.
Not a lakelabel module: run it as a script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import format_machine_info, machine_info, markdown_table  # noqa: E402
from bench_multitask import MODULE, SEED, keywords, write_lf_module  # noqa: E402
from bench_pipeline import tree_cpu_seconds  # noqa: E402


def measure(name: str, way: str, fn: Any) -> dict[str, Any]:
    load = os.getloadavg()[0]
    cpu0, wall0 = tree_cpu_seconds(os.getpid()), time.perf_counter()
    fn()
    return {"step": name, "way": way, "wall_s": round(time.perf_counter() - wall0, 2),
            "cpu_s": round(tree_cpu_seconds(os.getpid()) - cpu0, 2), "load": round(load, 1)}  # fmt: skip


def per_row_scores(spark: Any, tasks: Any, *, n_lfs: int, k: int, schema: Any) -> Any:
    """The scoring function before this change: ``predict`` on every row of every task."""
    import numpy as np
    import pyarrow as pa

    from jobs.multitask_labels import dense_votes

    payload = spark.sparkContext.broadcast([(t.label_space, t.columns, t.model_json) for t in tasks])
    arrow = schema  # pyarrow schema of the labels table

    def score(batches):
        from labelmodel import LabelModel

        models = [(np.array(list(space) + [None], dtype=object), np.array(cols, dtype=np.int64),
                   LabelModel.from_dict(json.loads(model))) for space, cols, model in payload.value]  # fmt: skip
        for batch in batches:
            b = batch.num_rows
            if b == 0:
                continue
            L = dense_votes(batch.column("pattern"), n_lfs, k)
            columns = [batch.column("row_id")]
            for (names, cols, model), t in zip(models, tasks):
                L_t = L[:, cols].astype(np.int64)
                label, probs = model.predict(L_t, tie_break_policy="abstain", return_probs=True)
                kt = probs.shape[1]
                struct = arrow.field(t.name).type
                fields = [pa.ListArray.from_arrays(pa.array(np.arange(0, b * kt + 1, kt, dtype=np.int32)),
                                                   pa.array(probs.ravel(), pa.float64())),
                          pa.array(label, pa.int32()), pa.array(names[label], pa.string()),
                          pa.array(probs.max(axis=1), pa.float64()), pa.array((L_t >= 0).sum(axis=1), pa.int32())]
                columns.append(pa.StructArray.from_arrays(fields, fields=[struct.field(i) for i in range(len(fields))]))
            for name in ("run_id", "tie_break_policy", "source_table", "source_version", "votes_version"):
                columns.append(pa.nulls(b, arrow.field(name).type))
            yield pa.RecordBatch.from_arrays(columns, schema=arrow)

    return score


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--tasks", type=int, default=50)
    p.add_argument("--lfs-per-task", type=int, default=10)
    p.add_argument("--out", default="benchmarks/out/multitask_steps.json")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lakelabel-bench-mtsteps-"))
    lf_dir = work / "lfs"
    lf_dir.mkdir()
    os.environ["PYTHONPATH"] = f"{lf_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    sys.path.insert(0, str(lf_dir))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        import numpy as np
        from pyspark import StorageLevel
        from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_type

        from jobs import aggregate, apply_lfs, delta_io, multitask, multitask_labels, pipeline
        from jobs.apply_record import load_apply_result
        from jobs.delta_io.sources import load_source
        from jobs.demo import demo_config, prepare_source
        from jobs.runtime.config_loading import config_from_dict
        from jobs.runtime.session import get_spark
        from jobs.tasks import build_task_set
        from labelmodel import LabelModel

        base = demo_config(str(work / "one"), args.rows, SEED, overrides=["mlflow.enabled=false"])
        source_path = prepare_source(base, args.rows, SEED)
        write_lf_module(lf_dir, args.tasks, args.lfs_per_task, keywords(source_path, args.tasks * args.lfs_per_task))
        cfg = config_from_dict({
            "lakehouse": str(work / "multi"),
            "source": {"path": source_path, "format": "parquet", "id_column": "ticket_id"},
            "multi_label": {"name": "tags", "tags": [f"t{t:02d}" for t in range(args.tasks)],
                            "lfs": {"modules": [MODULE]}},
            "mlflow": {"enabled": False},
        })  # fmt: skip
        spark = get_spark("lakelabel-bench-mtsteps", master=base.spark.master, conf=base.spark.conf)
        summary = pipeline.run(spark, cfg, run_id="steps", force=True).summary
        io = delta_io.delta_io(spark, "local")
        applied = load_apply_result(cfg, io)
        task_set = build_task_set(cfg)
        source = load_source(spark, cfg.source, io=io)
        names, big_k = task_set.registry.names, task_set.registry.cardinality
        rows_out: list[dict[str, Any]] = []

        # group: votes by row, before and after
        votes = io.read_table(spark, applied.votes_table, version=applied.votes_version)
        ids = source.df.select(source.df[source.id_column].alias("row_id"))
        from pyspark.sql import functions as F

        before = aggregate.pattern_frame(votes, ids.withColumn("gold", F.lit(-1)), names, big_k)
        rows_out.append(measure("group votes by row", "before: collect_list + join", lambda: before.write.format("noop").mode("overwrite").save()))
        after = multitask.vote_rows(spark, applied, task_set, source, io)
        rows_out.append(measure("group votes by row", "after: group_codes", lambda: after.write.format("noop").mode("overwrite").save()))

        # counts: per-LF vote counts of the votes files
        files = [a["uri"] for a in io.snapshot_actions(applied.votes_table)]
        if files:
            def spark_counts() -> None:
                apply_lfs.read_votes_files(spark, files).groupBy("lf_name").agg(F.count(F.lit(1))).collect()

            rows_out.append(measure("per-LF vote counts", "before: Spark over every file", spark_counts))
            rows_out.append(measure("per-LF vote counts", "after: Parquet footers",
                                    lambda: apply_lfs._votes_from_footers(files)))

        # score: one core, numpy, the first 10,000 rows
        rows = after.persist(StorageLevel.MEMORY_AND_DISK)
        rows.count()
        fits = []
        layout = multitask._layout(task_set)
        for i, t in enumerate(task_set.tasks):
            entry = summary["tasks"][t.name]
            model = LabelModel.load(entry["label_model"]["path"])
            fits.append(multitask_labels.TaskLabels(
                name=t.name, label_space=tuple(t.label_space), columns=tuple(int(c) for c in layout[i][0]),
                lf_versions=(), model_json=json.dumps(model.to_dict()), label_model="", label_model_version="",
                metrics={}))  # fmt: skip
        sample = rows.limit(10_000).toArrow()
        L = multitask_labels.dense_votes(sample.column("pattern"), len(names), big_k)
        models = [LabelModel.from_dict(json.loads(f.model_json)) for f in fits]

        def per_row() -> None:
            for f, model in zip(fits, models):
                model.predict(L[:, list(f.columns)].astype(np.int64), tie_break_policy="abstain", return_probs=True)

        def per_pattern() -> None:
            for f, model in zip(fits, models):
                multitask_labels.score_by_pattern(model, L[:, list(f.columns)], tie_break_policy="abstain",
                                                  row_ids=None)

        for _ in range(2):  # the first round warms up
            a, b = measure("score 10,000 rows x all tasks", "before: per row", per_row), \
                measure("score 10,000 rows x all tasks", "after: per distinct pattern", per_pattern)
        rows_out += [a, b]

        # write: scored then written (two passes) vs scored in the writing tasks
        row_id_type = to_arrow_type(source.df.schema[source.id_column].dataType)
        arrow = multitask_labels.labels_schema([f.name for f in fits], row_id_type)
        old = per_row_scores(spark, fits, n_lfs=len(names), k=big_k, schema=arrow)
        options = dict(n_lfs=len(names), k=big_k, tie_break_policy="abstain", lineage={}, row_id_type=row_id_type)
        new_fn, new_schema = multitask_labels.score_function(spark, fits, **options)
        inputs = rows.select("row_id", "pattern")

        def write_before() -> None:
            labels = inputs.mapInArrow(old, from_arrow_schema(arrow))
            io.write_table(labels, str(work / "labels_before"), mode="overwrite", overwrite_schema=True)

        def write_after() -> None:
            io.write_table(inputs, str(work / "labels_after"), mode="overwrite", overwrite_schema=True,
                           transform=(new_fn, new_schema))

        rows_out.append(measure("score and write labels", "before: per row, mapInArrow then write", write_before))
        rows_out.append(measure("score and write labels", "after: per pattern, in the writing tasks", write_after))
        rows.unpersist()

        out = {"rows": args.rows, "tasks": args.tasks, "lfs_per_task": args.lfs_per_task, "steps": rows_out,
               "votes": sum(lf["votes"] for lf in summary["lfs"]), "machine": machine_info()}  # fmt: skip
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2))
        print(format_machine_info(out["machine"]))
        print(f"{args.rows:,} rows, {args.tasks} tasks x {args.lfs_per_task} LFs, {out['votes']:,} votes\n")
        print(markdown_table(["step", "way", "CPU s", "wall s", "load (1 min)"],
                             [[r["step"], r["way"], r["cpu_s"], r["wall_s"], r["load"]] for r in rows_out]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
