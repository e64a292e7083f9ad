"""The label model as an MLflow pyfunc model (logged as "models from code": this file is the model).

Input: a pandas DataFrame of votes, one integer column per LF (-1 for abstain), and
optionally a ``row_id`` column. Output: one probability column ``p_<class>`` per class,
``label`` and ``label_name``. The label is the model's own hard label, as in the labels
table: ``-1`` (and no name) for a row on which every LF abstained unless the model's
``label_unvoted`` is set, and ties broken by the run's ``output.tie_break_policy``, logged as the
model config's ``tie_break_policy`` (``mlflow.pyfunc.load_model(uri, model_config={...})`` overrides
it); ``"random"`` hashes ``row_id`` (the source's string or integer ids) when the input has one, else the row
position. The LF and
class names are the ``columns`` artifact (models logged before it: the model config).
"""

from __future__ import annotations

import json

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class LabelModelPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: DataFrame of votes (one column per LF) -> probabilities and label."""

    def load_context(self, context) -> None:
        from labelmodel import LabelModel

        self.model = LabelModel.load(context.artifacts["label_model"])
        config = context.model_config or {}
        columns = config
        if "columns" in context.artifacts:
            with open(context.artifacts["columns"]) as f:
                columns = json.load(f)
        self.lf_names = list(columns.get("lf_names", []))
        self.label_space = list(columns.get("label_space", []))
        self.tie_break_policy = config.get("tie_break_policy")  # None: the model's own

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import numpy as np

        missing = [n for n in self.lf_names if n not in model_input.columns]
        if missing:
            raise ValueError(
                f"the votes DataFrame lacks LF column(s) {missing}; expected one int column per LF: {self.lf_names}"
            )
        L = model_input[self.lf_names].to_numpy(dtype=np.int64) if self.lf_names else model_input.to_numpy(np.int64)
        policy = self.tie_break_policy or self.model.config.tie_break_policy
        ids = None
        if policy == "random" and "row_id" in model_input.columns and "row_id" not in self.lf_names:
            ids = model_input["row_id"]
            if ids.dtype.kind == "f" and ids.notna().all() and (ids == ids.round()).all():
                ids = ids.astype(np.int64)  # integer ids pandas made floats: hash 7, as the labels table does, not 7.0
            ids = np.asarray(ids.tolist(), dtype=object)
        label, probs = self.model.predict(L, return_probs=True, tie_break_policy=policy, row_ids=ids)
        out = pd.DataFrame(probs, columns=[f"p_{c}" for c in self.label_space] or None, index=model_input.index)
        out["label"] = label
        if self.label_space:
            out["label_name"] = [self.label_space[i] if i >= 0 else None for i in label]
        return out


set_model(LabelModelPyfunc())
