"""The run engine: one run (runner), many runs (suite, executors, Ray), guards, evaluation -> accuracy matrix, memory accounting."""
