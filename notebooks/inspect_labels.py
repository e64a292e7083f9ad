# Databricks notebook source
# MAGIC %md
# MAGIC # lakelabel: inspect labels and lineage
# MAGIC Read back what the latest pipeline run wrote: where the labels came from (table versions, source,
# MAGIC LF versions, label model, MLflow run), how the labels are distributed, how confident they are, and
# MAGIC a few labeled rows next to their source text.

# COMMAND ----------

dbutils.widgets.text("config", "conf/demo.yaml", "Pipeline config (YAML)")
dbutils.widgets.text("env", "", "Environment overlay (local, cluster, databricks)")
dbutils.widgets.text("overrides", "", "Overrides, ';'-separated section.key=value")
dbutils.widgets.text("rows", "20", "Labeled rows to show")
dbutils.widgets.text("row_id", "", "Row to explain (default: the first labeled row shown)")

# COMMAND ----------

import json

from jobs import notebook
from jobs.runtime.session import get_spark

rows = notebook.widget_count(dbutils.widgets.get("rows"), "rows")
spark = get_spark("lakelabel-notebook")
cfg = notebook.load_notebook_config(
    dbutils.widgets.get("config"), env=dbutils.widgets.get("env"), overrides=dbutils.widgets.get("overrides")
)
show = globals().get("display", print)  # Databricks' display(), else print

# COMMAND ----------

lineage = notebook.lineage(spark, cfg)
print(json.dumps(lineage.to_dict(), indent=2, default=str))

# COMMAND ----------

distribution = notebook.label_distribution(spark, cfg)
show(distribution)

# COMMAND ----------

histogram = notebook.confidence_histogram(spark, cfg, bins=10)
show(histogram)

# COMMAND ----------

labeled = notebook.labels_with_lineage(spark, cfg, limit=rows).toPandas()
show(labeled)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Why this label
# MAGIC One row's votes with their LF versions, each vote's weight and contribution to every class's log-odds,
# MAGIC the class prior and the probabilities (as `lakelabel explain --row-id ID`).

# COMMAND ----------

row_id = dbutils.widgets.get("row_id") or labeled["row_id"].iloc[0]
explanation = notebook.explain_row(spark, cfg, row_id)
print(notebook.explanation_text(explanation))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Where the LFs go wrong
# MAGIC The report of `lakelabel report`, computed on Spark for the labels above: each LF's accuracy against gold
# MAGIC (with a 95% interval) next to its coverage, conflicts between LF pairs, the confusion matrix, confidence,
# MAGIC class distributions, slices and error buckets with example rows. Nothing is written.

# COMMAND ----------

from jobs import report

analysis = report.build(spark, cfg)
report.show(analysis.html, globals().get("displayHTML"))
