"""The end model of ``lakelabel train`` (:mod:`jobs.train`): a Spark ML pipeline trained on the labels.

* :mod:`jobs.endmodel.features`: the pipeline (text, numeric and categorical features, classifier)
  and the probability-weighted training rows.
* :mod:`jobs.endmodel.evaluate`: the end model, label model and majority vote scored on gold.
* :mod:`jobs.endmodel.feedback`: rows where the end model and the label model disagree, least confident rows.
* :mod:`jobs.endmodel.registry`: the fitted model in MLflow (``spark`` flavor) or in the run folder.
"""
