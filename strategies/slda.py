"""Streaming LDA on frozen features (Hayes & Kanan 2020, "Lifelong machine learning with deep streaming
linear discriminant analysis", CVPR-W; tyler-hayes/Deep_SLDA, Avalanche's StreamingLDA).

Running class means and one shared covariance, updated on every training mini-batch; prediction
x Lambda mu_k - mu_k Lambda mu_k / 2 with the precision Lambda = ((1 - e) Sigma + e I)^-1
(strategies/plugins/closed_form_math.py). The covariance update is exact (equal to the batch
within-class covariance of every sample seen; Hayes & Kanan's per-sample rule approximates it).
Avalanche's StreamingLDA is not used: it replaces the template's training loop with its own
per-sample one and has no task-IL masking; this is its statistics behind clbench's plugin events.
No SGD: epochs are ignored, each experience is read once; no sample is stored. State (extra_state):
class sums (K x D) and counts (K), the within-class scatter (D x D), all float64. In domain-IL the
statistics of a label accumulate over experiences. The encoder is not adapted.
"""

from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.class_stats import build_closed_form, n_slots
from strategies.plugins.closed_form_math import add_to_class_stats, lda_readout


@dataclass(frozen=True)
class SLDAParams:
    """Args: shrinkage: e of the shrunk covariance (1e-4: Hayes & Kanan's default, also Avalanche's)."""

    shrinkage: float = 1e-4

    def __post_init__(self) -> None:
        check(0 < self.shrinkage <= 1, "shrinkage must be in (0, 1]")


class SLDALearner(nn.Module):
    """Class sums, counts and the pooled within-class scatter; readout = LDA scores."""

    def __init__(self, n_classes: int, dim: int, shrinkage: float) -> None:
        super().__init__()
        self.shrinkage = shrinkage
        self.register_buffer("sums", torch.zeros(n_classes, dim, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(n_classes, dtype=torch.float64))
        self.register_buffer("scatter", torch.zeros(dim, dim, dtype=torch.float64))

    def phi(self, feats: torch.Tensor) -> torch.Tensor:
        return feats[None]  # (1, B, D)

    def update(self, feats: torch.Tensor, slots: torch.Tensor) -> None:
        add_to_class_stats(self.sums, self.counts, self.scatter, feats, slots)

    def solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        W, b = lda_readout(self.sums, self.counts, self.scatter, self.shrinkage)
        return W[None], b[None]


@register("slda", params=SLDAParams)
def build(ctx: StrategyContext, p: SLDAParams):
    """NoSGD + ClassStatsPlugin with an SLDALearner."""
    return build_closed_form(ctx, SLDALearner(n_slots(ctx.info), ctx.model.head.in_features, p.shrinkage))
