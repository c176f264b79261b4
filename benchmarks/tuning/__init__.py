"""Declared hyper-parameter tuning (``python -m benchmarks tune``; docs/tuning.md).

- ``space``: the [tune] table (protocol keys, search spaces), validated with the rest of a suite;
- ``holdout``: the scenario a trial sees (the first k experiences' training data, split train/validation);
- ``study``: Optuna studies, one per (scenario, strategy), trials run through the runner, resumable;
- ``fragment``: the TOML fragment of the best values that a suite includes (``[suite] include``).
"""
