"""Options of the per-layer diagnostics (``diagnostics = true`` or a table in a suite's scenario)."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.core.typed import check


@dataclass(frozen=True)
class DiagnosticsParams:
    """Per-layer diagnostics of a Transformer run, measured after each experience.

    Args:
        fit_samples: training samples per experience the linear probes are fitted on (a fixed,
            seeded subsample; all when the experience has fewer).
        test_samples: test samples per experience the probes are scored on (fixed subsample).
        drift_samples: size of the fixed probe set for attention drift and CKA: test samples taken
            evenly from every experience (the same inputs after every experience).
        ridge: ridge strength of the probes, relative to the mean eigenvalue of the centred
            features' covariance (scale-free: the same for every block).
        batch_size: inputs per forward pass.
    """

    fit_samples: int = 100
    test_samples: int = 100
    drift_samples: int = 64
    ridge: float = 0.1
    batch_size: int = 128

    def __post_init__(self) -> None:
        check(self.fit_samples >= 2 and self.test_samples >= 1, "fit_samples must be >= 2, test_samples >= 1")
        check(self.drift_samples >= 2, "drift_samples must be >= 2 (CKA needs two samples)")
        check(self.ridge > 0, "ridge must be > 0")
        check(self.batch_size >= 1, "batch_size must be >= 1")
