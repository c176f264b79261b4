"""Per-layer diagnostics of Transformer runs: probes, attention drift, CKA (see tracker.py)."""
