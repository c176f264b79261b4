"""Per-layer diagnostics of a Transformer run, after each experience (the runner calls it).

Three measures per block b (blocks 0..n_layers-1; block b's representation is the mean over real
tokens of its output hidden states), all on fixed, seeded subsamples chosen before training:

- probe_accuracy[i][b][j]: after training experience i, a ridge probe on block b fitted on
  experience j's training subsample and scored on its test subsample, over experience j's classes
  (representation forgetting, Davari et al. CVPR 2022); j <= i (null for j > i: not measured, to
  halve the cost);
- attention_kl[i][b][j]: mean KL(A_j || A_i) between block b's attention maps after experience j
  and after experience i on the drift set (j <= i; null for j > i);
- cka[i][b][j]: linear CKA (Kornblith et al. 2019) between block b's representations after i and
  after j on the drift set (j <= i; null for j > i); 1 - CKA is the representation drift.

The drift set holds ``drift_samples`` test samples taken evenly from every experience. Cost after
experience i: one forward pass (no gradient) over (i + 1) x (fit + test) + drift samples, through
blocks >= frozen_below only (the frozen prefix is read once); the wall time is recorded in
``time_s``. Memory: the drift set's maps after every experience (shared for frozen blocks), and
the frozen prefix's output on every sample (N x L x D floats).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from benchmarks.diagnostics.measures import attention_kl, linear_cka, probe_accuracy
from benchmarks.diagnostics.params import DiagnosticsParams
from benchmarks.diagnostics.reader import LayerReader, Readout, prepare_inputs
from benchmarks.fastpath.gather import gather_items


def _subsample(dataset, m: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, t) of ``m`` items of ``dataset`` chosen by ``gen`` (all when it has fewer), eval transforms."""
    idx = torch.randperm(len(dataset), generator=gen)[:m].sort().values.tolist()
    view = dataset.eval() if hasattr(dataset, "eval") else dataset
    x, y, t = gather_items(view.subset(idx))[:3]
    return x, y, t


class LayerDiagnostics:
    """Collects the three measures after each experience; ``result()`` is the results-file block.

    Args:
        params: sample sizes and probe strength.
        benchmark: the scenario's Avalanche benchmark (train_stream, test_stream).
        model: the run's model (a Transformer with ``blocks``); only read, never changed.
        seed: seeds the subsamples (a private generator: the run's RNG is not touched).
    """

    def __init__(self, params: DiagnosticsParams, benchmark, model: nn.Module, seed: int) -> None:
        t0 = time.perf_counter()
        self.params, self.n_blocks = params, model.n_layers
        gen = torch.Generator().manual_seed(seed + 104729)
        fit = [_subsample(e.dataset, params.fit_samples, gen) for e in benchmark.train_stream]
        test = [_subsample(e.dataset, params.test_samples, gen) for e in benchmark.test_stream]
        per = math.ceil(params.drift_samples / len(test))
        drift = [torch.cat([s[f][:per] for s in test])[: params.drift_samples] for f in range(3)]
        self.sizes = [(len(f[0]), len(t[0])) for f, t in zip(fit, test)]
        self.labels = [(f[1], t[1]) for f, t in zip(fit, test)]
        self.probes = [  # one reader per experience: its fit subsample, then its test subsample
            LayerReader(prepare_inputs(model, torch.cat([f[0], t[0]])), torch.cat([f[2], t[2]]),
                        batch_size=params.batch_size, with_maps=False)
            for f, t in zip(fit, test)
        ]
        self.drift = LayerReader(prepare_inputs(model, drift[0]), drift[2], batch_size=params.batch_size,
                                 with_maps=True)
        self.history: list[Readout] = []  # drift-set readouts after each experience
        self.rows: dict[str, list] = {"probe_accuracy": [], "attention_kl": [], "cka": []}
        self.time_s: list[float] = []
        self.setup_s = time.perf_counter() - t0
        self.frozen_below: int | None = None

    def after_experience(self, model: nn.Module) -> dict[str, Any]:
        """Measure ``model`` (trained up to the next experience) and return ``result()``."""
        t0 = time.perf_counter()
        self.rows["probe_accuracy"].append(self._probes(model, len(self.time_s)))
        now = self.drift.read(model)
        self.history.append(now)
        self.rows["attention_kl"].append(self._vs_history(now, _kl))
        self.rows["cka"].append(self._vs_history(now, lambda old, new, b: linear_cka(new.reps[b], old.reps[b])))
        self.frozen_below = getattr(model, "frozen_below", None)
        self.time_s.append(time.perf_counter() - t0)
        return self.result()

    def _probes(self, model: nn.Module, i: int) -> list[list[float | None]]:
        """[block][j] probe accuracies after experience i for the experiences j <= i (None after)."""
        out: list[list[float | None]] = [[None] * len(self.probes) for _ in range(self.n_blocks)]
        for j, reader in enumerate(self.probes[: i + 1]):
            reps, (y_fit, y_test) = reader.read(model).reps, self.labels[j]
            for b in range(self.n_blocks):
                fit, test = torch.split(reps[b], self.sizes[j])
                out[b][j] = round(probe_accuracy(fit, y_fit, test, y_test, self.params.ridge), 6)
        return out

    def _vs_history(self, now: Readout, measure) -> list[list[float | None]]:
        """[block][j] of ``measure(readout after j, now, block)`` for every past j; None for j > i."""
        T = len(self.sizes)
        return [
            [round(measure(self.history[j], now, b), 6) if j < len(self.history) else None for j in range(T)]
            for b in range(self.n_blocks)
        ]

    def result(self) -> dict[str, Any]:
        """The ``diagnostics`` block of the results file (see benchmarks/results/store.py)."""
        return {
            "blocks": self.n_blocks,
            "frozen_below": self.frozen_below,
            **{k: list(v) for k, v in self.rows.items()},
            "samples": {"fit": [f for f, _ in self.sizes], "test": [t for _, t in self.sizes],
                        "drift": len(self.drift.x)},
            "setup_s": self.setup_s,
            "time_s": list(self.time_s),
            "params": asdict(self.params),
        }


def _kl(old: Readout, new: Readout, b: int) -> float:
    """Mean KL(A_old || A_new) of block b on the drift set."""
    return attention_kl(old.maps[b], new.maps[b], new.mask)


def start_diagnostics(spec, benchmark, model: nn.Module) -> LayerDiagnostics | None:
    """The run's diagnostics when its scenario asks for them (``spec.diagnostics``), else None."""
    if not getattr(spec, "diagnostics", None):
        return None
    return LayerDiagnostics(DiagnosticsParams(**spec.diagnostics), benchmark, model, spec.seed)
