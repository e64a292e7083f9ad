"""The label model as an MLflow pyfunc model (logged as "models from code": this file is the model).

Input: a pandas DataFrame of votes, one integer column per LF (-1 for abstain). Output: one
probability column ``p_<class>`` per class, ``label`` (argmax) and ``label_name``.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class LabelModelPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: DataFrame of votes (one column per LF) -> probabilities and label."""

    def load_context(self, context) -> None:
        from labelmodel import LabelModel

        self.model = LabelModel.load(context.artifacts["label_model"])
        config = context.model_config or {}
        self.lf_names = list(config.get("lf_names", []))
        self.label_space = list(config.get("label_space", []))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import numpy as np

        missing = [n for n in self.lf_names if n not in model_input.columns]
        if missing:
            raise ValueError(
                f"the votes DataFrame lacks LF column(s) {missing}; expected one int column per LF: {self.lf_names}"
            )
        L = model_input[self.lf_names].to_numpy(dtype=np.int64) if self.lf_names else model_input.to_numpy(np.int64)
        probs = self.model.predict_proba(L)
        label = probs.argmax(axis=1)
        out = pd.DataFrame(probs, columns=[f"p_{c}" for c in self.label_space] or None, index=model_input.index)
        out["label"] = label
        if self.label_space:
            out["label_name"] = [self.label_space[i] for i in label]
        return out


set_model(LabelModelPyfunc())
