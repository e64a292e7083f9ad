"""People in the loop: the gold table, picking rows to annotate, Label Studio, LF suggestions.

* :mod:`jobs.people.gold`: the ``gold`` Delta table, ``lakelabel gold import``, the current
  labels and the dev/test splits that the other stages read.
* :mod:`jobs.people.files`: reading annotation files (CSV, Parquet, Delta, Label Studio JSON).
* :mod:`jobs.people.label_studio`: Label Studio tasks, label config and export parsing.
* :mod:`jobs.people.annotate`: ``lakelabel annotate``, the rows worth a person's time.
* :mod:`jobs.people.suggest`: ``lakelabel suggest``, candidate LFs scored on the dev labels.
"""
