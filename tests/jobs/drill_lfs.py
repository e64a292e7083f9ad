"""LFs for the reliability drills (tests/jobs/test_drills.py, tests/test_drills_cli.py).

``hangs`` sleeps for an hour on rows whose text contains "hang" (a hung LF); ``crash_once`` kills
its Python worker the first time it runs anywhere (the marker file named by
``LAKELABEL_DRILL_CRASH_MARKER`` records that it did). ``nothing`` never votes.
"""

import os
import time

from lf_library import ABSTAIN, keyword_lf, labeling_function

LABEL_SPACE = ("neg", "pos")

good_words = keyword_lf("good_words", ["great", "love"], "pos")


@labeling_function(fields=["text"])
def hangs(x):
    if "hang" in x.text:
        started = os.environ.get("LAKELABEL_DRILL_STARTED")
        if started:
            open(started, "w").close()
        time.sleep(3600)
    return ABSTAIN


@labeling_function(fields=["text"])
def nothing(x):
    return ABSTAIN
