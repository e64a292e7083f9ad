"""What every job shares: options and exit codes (``command``), config, Spark session, run folders,
MLflow tracking, the --py-files package, gold metrics and the transient-fault rules."""
