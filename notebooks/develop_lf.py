# Databricks notebook source
# MAGIC %md
# MAGIC # lakelabel: develop a labeling function
# MAGIC Write a draft LF below and try it on a sample of the source next to the registered LF library:
# MAGIC its coverage, its overlaps and conflicts with each library LF, its accuracy on rows with dev labels,
# MAGIC the rows it raises on, and example rows. The LFs run through the apply job's own code, so the
# MAGIC draft behaves here as it will in the pipeline. When it looks right, move it into an LF module listed
# MAGIC under `lfs.modules` and run `run_pipeline`.

# COMMAND ----------

dbutils.widgets.text("config", "conf/demo.yaml", "Pipeline config (YAML)")
dbutils.widgets.text("env", "", "Environment overlay (local, cluster, databricks)")
dbutils.widgets.text("overrides", "", "Overrides, ';'-separated section.key=value")
dbutils.widgets.text("sample_rows", "10000", "Sample rows")
dbutils.widgets.text("dev_labels", "auto", "Dev labels: auto, evaluation, none, or a source column")

# COMMAND ----------

from jobs import notebook
from jobs.runtime.session import get_spark
from jobs.apply_lfs import build_registry

sample_rows = notebook.widget_count(dbutils.widgets.get("sample_rows"), "sample_rows")
spark = get_spark("lakelabel-notebook")
cfg = notebook.load_notebook_config(
    dbutils.widgets.get("config"), env=dbutils.widgets.get("env"), overrides=dbutils.widgets.get("overrides")
)
show = globals().get("display", print)  # Databricks' display(), else print
notebook.require_single_task(cfg, "develop_lf")  # one library, one label space
library = build_registry(cfg)
print(library)  # the label space your LF votes in, and the LFs it is compared with

# COMMAND ----------

# MAGIC %md
# MAGIC ## The draft LF (edit this cell)
# MAGIC The draft below is written for the demo's tickets (`conf/demo.yaml`); with another config, replace it.
# MAGIC Return a class id of the library's label space, or `ABSTAIN`. Any kind of LF works here:
# MAGIC `@labeling_function` (row-wise or `vectorized=True`), `keyword_lf`, `regex_lf`, `lexicon_lf`, `sql_lf`.
# MAGIC Give it the name of a library LF to compare a new version against the rest of the library.

# COMMAND ----------

from lf_library import ABSTAIN, labeling_function

if "account" not in library.label_space:
    raise ValueError(f"the draft LF in this cell is written for the demo's tickets (conf/demo.yaml); your library's "
                     f"label space is {list(library.label_space)}: replace the draft with an LF of your own")
ACCOUNT = library.label_space.index("account")


@labeling_function(fields=["text"])
def draft_my_account(x):
    """A ticket that talks about "my account" or a "user account" is an account ticket."""
    text = x.text.lower()
    return ACCOUNT if "my account" in text or "user account" in text else ABSTAIN


draft = draft_my_account

# COMMAND ----------

dev_labels = dbutils.widgets.get("dev_labels").strip()
trial = notebook.try_lf(
    spark,
    cfg,
    draft,
    sample_rows=sample_rows,
    dev_labels=None if dev_labels in ("", "none") else dev_labels,
)
show(trial.summary())

# COMMAND ----------

# MAGIC %md
# MAGIC ## Against each library LF
# MAGIC `overlaps`: sample rows where both voted; `conflicts`: where they voted different classes;
# MAGIC `disagreement`: conflicts / overlaps.

# COMMAND ----------

show(trial.per_lf)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Example rows: conflicts, votes, errors

# COMMAND ----------

show(trial.conflict_examples)
show(trial.vote_examples)
show(trial.error_samples)

# COMMAND ----------

# MAGIC %md
# MAGIC ## The draft's effect on the analysis
# MAGIC The same sample with and without the draft: coverage gained (rows only the draft votes on), conflicts
# MAGIC added, its accuracy on rows with gold, and the report's plots with the draft circled.

# COMMAND ----------

from jobs import report
from jobs.analysis import draft as draft_analysis

effect = draft_analysis.draft_effect(spark, cfg, draft, sample_rows=sample_rows)
show(draft_analysis.effect_table(effect))
report.show(report.figures_html(draft_analysis.effect_figures(effect)), globals().get("displayHTML"))
