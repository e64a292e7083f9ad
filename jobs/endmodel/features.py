"""The end model as a Spark ML pipeline, and the training rows it learns from.

:func:`build_pipeline` turns ``end_model:`` into one :class:`pyspark.ml.Pipeline` whose input is
source rows as they are (the configured columns) and whose output is ``prediction`` and
``probability``: text columns joined with spaces, lower-cased word tokens plus 2..n-grams, hashed
term frequencies and IDF; numeric columns cast to double, nulls replaced by the mean, scaled to
[0, 1]; categorical columns one-hot encoded (nulls and unseen values get their own slot); one
assembled feature vector; the classifier. Everything is a pipeline stage, so the fitted
:class:`~pyspark.ml.PipelineModel` logged to MLflow scores raw source rows by itself.

:func:`training_rows` expands each labeled row into one row per class with ``weight`` = the label
model's probability of that class (zero weights are dropped). For a weighted log-loss (logistic
regression, naive Bayes) this is exactly training on the probabilities as soft targets, since the
loss is linear in the targets: ``sum_c p_c * -log q_c`` for a row is the weighted sum of its
expanded rows' losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.ml import Pipeline
from pyspark.ml.feature import (IDF, HashingTF, Imputer, MinMaxScaler, NGram, OneHotEncoder, RegexTokenizer,
                                SQLTransformer, StringIndexer, VectorAssembler)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.runtime.config import EndModelConfig
from lf_library.errors import ConfigError

__all__ = ["LABEL", "WEIGHT", "OUTPUT_COLUMNS", "feature_columns", "check_numeric", "build_pipeline",
           "training_rows", "probabilities"]  # fmt: skip

LABEL, WEIGHT = "__ll_label", "__ll_weight"
# Columns the fitted pipeline adds; a source column with one of these names cannot be a feature.
OUTPUT_COLUMNS = ("prediction", "probability", "rawPrediction")
_TEXT, _WORDS, _TERMS, _TF, _TFIDF = "__ll_text", "__ll_words", "__ll_terms", "__ll_tf", "__ll_tfidf"
_FEATURES = "__ll_features"


def feature_columns(cfg: EndModelConfig, text_columns: Sequence[str]) -> list[str]:
    """Every source column the end model reads (text, numeric, categorical), in that order."""
    return list(dict.fromkeys([*text_columns, *cfg.numeric_columns, *cfg.categorical_columns]))


def check_columns(cfg: EndModelConfig, text_columns: Sequence[str], available: Sequence[str], table: str) -> None:
    """Raise :class:`ConfigError` for a feature column missing from ``table`` or named like an output column."""
    columns = feature_columns(cfg, text_columns)
    if not columns:
        raise ConfigError("the end model has no feature column: set end_model.text_columns (or numeric_columns / "
                          "categorical_columns) to source columns")
    missing = [c for c in columns if c not in available]
    if missing:
        raise ConfigError(f"end_model column(s) {', '.join(map(repr, missing))} not in {table}; its columns are: "
                          f"{', '.join(available)}. Fix end_model.text_columns / numeric_columns / categorical_columns")
    clash = [c for c in columns if c in OUTPUT_COLUMNS or c.startswith("__ll_")]
    if clash:
        raise ConfigError(f"end_model column(s) {clash} clash with the model's own columns ({', '.join(OUTPUT_COLUMNS)},"
                          f" __ll_*); rename them in a view of the source")


def check_numeric(cfg: EndModelConfig, df: DataFrame, table: str) -> None:
    """Raise :class:`ConfigError` for an ``end_model.numeric_columns`` column that is not a number.

    A string column (every column of a CSV source) is cast to double by the pipeline, which fails
    on the first value that is not a number, deep inside the fit: one Spark job looks for such a
    value first, so the job stops naming the column and the value instead.
    """
    from pyspark.sql import types as T

    strings = []
    for c in cfg.numeric_columns:
        dtype = df.schema[c].dataType
        if isinstance(dtype, T.StringType):
            strings.append(c)
        elif not isinstance(dtype, (T.NumericType, T.BooleanType, T.TimestampType)):
            raise ConfigError(f"end_model.numeric_columns: column {c!r} of {table} is {dtype.simpleString()}, not a "
                              f"number; list it under end_model.categorical_columns or text_columns instead")
    if not strings:
        return
    bad = df.select([F.first(F.when(F.col(_quote(c)).isNotNull() & F.expr(f"try_cast({_quote(c)} AS DOUBLE)").isNull(),
                                    F.col(_quote(c))), ignorenulls=True).alias(f"c{i}")
                     for i, c in enumerate(strings)]).first()  # fmt: skip
    for i, c in enumerate(strings):
        if bad is not None and bad[f"c{i}"] is not None:
            raise ConfigError(f"end_model.numeric_columns: column {c!r} of {table} holds {bad[f'c{i}']!r}, which is not "
                              f"a number; list it under end_model.categorical_columns or text_columns instead, or "
                              f"make it numeric (or null) in a view of the source")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _classifier(cfg: EndModelConfig) -> Any:
    common = {"featuresCol": _FEATURES, "labelCol": LABEL, "weightCol": WEIGHT}
    if cfg.classifier == "logistic_regression":
        from pyspark.ml.classification import LogisticRegression

        return LogisticRegression(family="multinomial", maxIter=cfg.max_iter, regParam=cfg.reg_param,
                                  elasticNetParam=cfg.elastic_net_param, **common)
    if cfg.classifier == "naive_bayes":
        from pyspark.ml.classification import NaiveBayes

        return NaiveBayes(modelType="multinomial", smoothing=cfg.smoothing, **common)
    if cfg.classifier == "linear_svc":
        from pyspark.ml.classification import LinearSVC, OneVsRest

        svc = LinearSVC(maxIter=cfg.max_iter, regParam=cfg.reg_param, featuresCol=_FEATURES, labelCol=LABEL,
                        weightCol=WEIGHT)
        return OneVsRest(classifier=svc, **common)
    if cfg.classifier == "random_forest":
        from pyspark.ml.classification import RandomForestClassifier

        return RandomForestClassifier(numTrees=cfg.num_trees, maxDepth=cfg.max_depth, seed=cfg.seed, **common)
    raise ConfigError(f"end_model.classifier = {cfg.classifier!r} is not valid; choose one of: logistic_regression, "
                      f"naive_bayes, linear_svc, random_forest")


def build_pipeline(cfg: EndModelConfig, text_columns: Sequence[str]) -> Pipeline:
    """The unfitted pipeline described in the module docstring."""
    stages: list[Any] = []
    vectors: list[str] = []
    select = ["*"]
    if text_columns:
        joined = ", ".join(f"coalesce(CAST({_quote(c)} AS STRING), '')" for c in text_columns)
        select.append(f"concat_ws(' ', {joined}) AS {_TEXT}")
    nums = [f"__ll_num_{i}" for i in range(len(cfg.numeric_columns))]
    select += [f"CAST({_quote(c)} AS DOUBLE) AS {n}" for c, n in zip(cfg.numeric_columns, nums)]
    cats = [f"__ll_cat_{i}" for i in range(len(cfg.categorical_columns))]
    select += [f"CAST({_quote(c)} AS STRING) AS {n}" for c, n in zip(cfg.categorical_columns, cats)]
    stages.append(SQLTransformer(statement=f"SELECT {', '.join(select)} FROM __THIS__"))
    if text_columns:
        stages.append(RegexTokenizer(inputCol=_TEXT, outputCol=_WORDS, pattern=r"\W+", toLowercase=True))
        grams = [f"__ll_ngram_{n}" for n in range(2, cfg.ngrams + 1)]
        stages += [NGram(n=n, inputCol=_WORDS, outputCol=g) for n, g in zip(range(2, cfg.ngrams + 1), grams)]
        stages.append(SQLTransformer(statement=f"SELECT *, concat({', '.join([_WORDS, *grams])}) AS {_TERMS} "
                                               f"FROM __THIS__"))
        stages.append(HashingTF(inputCol=_TERMS, outputCol=_TF, numFeatures=cfg.num_features))
        stages.append(IDF(inputCol=_TF, outputCol=_TFIDF, minDocFreq=cfg.min_doc_freq))
        vectors.append(_TFIDF)
    if nums:
        filled = [f"{n}_filled" for n in nums]
        stages.append(Imputer(inputCols=nums, outputCols=filled, strategy="mean"))
        stages.append(VectorAssembler(inputCols=filled, outputCol="__ll_num_vec", handleInvalid="keep"))
        stages.append(MinMaxScaler(inputCol="__ll_num_vec", outputCol="__ll_num_scaled"))
        vectors.append("__ll_num_scaled")
    if cats:
        indexed, onehot = [f"{c}_idx" for c in cats], [f"{c}_vec" for c in cats]
        stages.append(StringIndexer(inputCols=cats, outputCols=indexed, handleInvalid="keep"))
        stages.append(OneHotEncoder(inputCols=indexed, outputCols=onehot, handleInvalid="keep"))
        vectors += onehot
    stages.append(VectorAssembler(inputCols=vectors, outputCol=_FEATURES))
    stages.append(_classifier(cfg))
    return Pipeline(stages=stages)


def training_rows(labels: DataFrame, k: int, *, targets: str, include_unvoted: bool) -> DataFrame:
    """``row_id, __ll_label, __ll_weight`` from labels-table rows (``row_id, probabilities, label, n_votes``).

    ``targets="probabilities"``: one row per class with a positive probability, weighted by it.
    ``targets="hard"``: the row's label with weight 1 (rows whose label is -1, a tie, are left out).
    Rows no LF voted on are left out unless ``include_unvoted``. The label column carries Spark ML's
    nominal attribute with ``k`` values, so every classifier has all ``k`` classes even when one
    never occurs in the training rows.
    """
    rows = labels if include_unvoted else labels.where(F.col("n_votes") > 0)
    if targets == "probabilities":
        out = rows.select("row_id", F.posexplode("probabilities").alias("_class", "_p")).where(F.col("_p") > 0)
        label, weight = F.col("_class"), F.col("_p")
    elif targets == "hard":
        out = rows.where(F.col("label") >= 0)
        label, weight = F.col("label"), F.lit(1.0)
    else:
        raise ConfigError(f"end_model.targets = {targets!r} is not valid; choose probabilities or hard")
    meta = {"ml_attr": {"type": "nominal", "num_vals": int(k), "name": LABEL}}
    return out.select("row_id", label.cast("double").alias(LABEL, metadata=meta), weight.cast("double").alias(WEIGHT))


def with_dev_labels(labels: DataFrame, dev: DataFrame, k: int) -> DataFrame:
    """Labels-table rows with the gold ``dev`` labels put in: a one-hot target for each dev row.

    ``labels``: ``row_id, probabilities, label, n_votes``; ``dev``: ``row_id`` (string), ``label``.
    A dev row's probabilities become its gold class with certainty and its ``n_votes`` at least 1,
    so :func:`training_rows` keeps it even when no LF voted on it.
    """
    gold = dev.select(F.col("row_id").alias("__gold_id"), F.col("label").cast("int").alias("__gold"))
    joined = labels.join(F.broadcast(gold), F.col("row_id").cast("string") == F.col("__gold_id"), "left")
    has = F.col("__gold").isNotNull()
    onehot = F.transform(F.sequence(F.lit(0), F.lit(k - 1)),
                         lambda c: F.when(c == F.col("__gold"), F.lit(1.0)).otherwise(F.lit(0.0)))
    return joined.select(
        "row_id",
        F.when(has, onehot).otherwise(F.col("probabilities")).alias("probabilities"),
        F.when(has, F.col("__gold")).otherwise(F.col("label")).alias("label"),
        F.when(has, F.greatest(F.col("n_votes"), F.lit(1))).otherwise(F.col("n_votes")).alias("n_votes"),
    )


def probabilities(classifier: str) -> Column:
    """``array<double>`` of class probabilities from a fitted pipeline's output.

    One-vs-rest linear SVMs have no probabilities: their per-class margins (``rawPrediction``)
    go through a softmax, so the values rank the classes but are not calibrated.
    """
    if classifier != "linear_svc":
        return vector_to_array(F.col("probability"))
    raw = vector_to_array(F.col("rawPrediction"))
    top = F.array_max(raw)
    exp = F.transform(raw, lambda x: F.exp(x - top))
    total = F.aggregate(exp, F.lit(0.0), lambda acc, x: acc + x)
    return F.transform(exp, lambda x: x / total)
