"""What every job shares: options and the parser (``command``), exit codes (``exits``), SIGTERM and
Ctrl-C (``signals``), config, Spark session, run folders, MLflow tracking, the --py-files package,
gold metrics and the transient-fault rules."""
