# Databricks notebook source
# MAGIC %md
# MAGIC # lakelabel: run the labeling pipeline
# MAGIC Apply the registered LFs, fit the label model and write labels with lineage, in one call into
# MAGIC `jobs.pipeline`. Set the widgets, then run all. `inspect_labels` reads back what this run wrote.

# COMMAND ----------

dbutils.widgets.text("config", "conf/demo.yaml", "Pipeline config (YAML)")
dbutils.widgets.text("env", "", "Environment overlay (local, cluster, databricks)")
dbutils.widgets.text("run_id", "", "Run id (empty: new)")
dbutils.widgets.text("overrides", "", "Overrides, ';'-separated section.key=value")

# COMMAND ----------

from jobs import notebook, pipeline
from jobs.runtime.runs import new_run_id
from jobs.runtime.session import get_spark

cfg = notebook.load_notebook_config(
    dbutils.widgets.get("config"), env=dbutils.widgets.get("env"), overrides=dbutils.widgets.get("overrides")
)
run_id = dbutils.widgets.get("run_id").strip() or new_run_id()  # pipeline.run validates it
result = pipeline.run(get_spark("lakelabel-notebook"), cfg, run_id=run_id)

# COMMAND ----------

summary = result.summary
# The line `lakelabel run` prints; a rerun of a run id with the same inputs says "nothing ran" (result.reused),
# and the numbers below are then that earlier run's.
print(result.line)
metrics = notebook.run_metrics(summary)  # per task for a multi-task config
print(metrics)
print("votes:", summary["tables"]["votes"])
print("labels:", summary["tables"]["labels"])
print("MLflow run:", summary["mlflow"]["run_id"])
