"""What every job shares: options and the parser (``command``), exit codes (``exits``), SIGTERM and
Ctrl-C (``signals``), config dataclasses (``config``) and their loading from YAML (``config_loading``),
Spark session, run folders, MLflow tracking, the --py-files package, gold metrics and the
transient-fault rules."""
