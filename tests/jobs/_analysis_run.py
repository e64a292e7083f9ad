"""Constants of the shared analyze run (tests/jobs/conftest.py ``analyzed_run``)."""

SLICES = ["exclaims", "few_stars", "has_love", "long_text"]  # sorted by name, as the job orders them
EXAMPLES = 3
