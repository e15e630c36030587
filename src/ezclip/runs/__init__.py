"""What every run shares: finding and composing configs, pre-flight checks, run naming, run records, loggers, plots."""
