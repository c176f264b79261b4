"""Nearest class mean with cosine similarity on frozen features (SimpleCIL, Zhou et al. 2023, "Revisiting
class-incremental learning with pre-trained models: generalizability and adaptivity are all you need").

Each class's prototype is the mean feature of its training samples; a sample is given the class of the
most cosine-similar prototype (as LAMDA-PILOT's simplecil and RanPAC's ``ncm`` baseline: a cosine
classifier whose weights are the prototypes). No SGD: epochs are ignored, each experience is read once
(strategies/plugins/class_stats.py); no sample is stored. State (extra_state): per-class feature sums
(K x D float64) and counts (K float64), K = classes (x tasks in task-IL). In domain-IL a label's
prototype is the mean over every experience it appears in. The encoder is not adapted (APER's first-
session adaptation is a separate strategy).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from strategies.base import StrategyContext, register
from strategies.plugins.class_stats import build_closed_form, n_slots
from strategies.plugins.closed_form_math import add_to_class_stats


@dataclass(frozen=True)
class NCMParams:
    """No hyper-parameters (SimpleCIL has none besides the backbone)."""


class NCMLearner(nn.Module):
    """Class sums and counts; readout = L2-normalised prototypes (D, K)."""

    def __init__(self, n_classes: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("sums", torch.zeros(n_classes, dim, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(n_classes, dtype=torch.float64))

    def phi(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(feats, dim=-1)[None]  # (1, B, D)

    def update(self, feats: torch.Tensor, slots: torch.Tensor) -> None:
        add_to_class_stats(self.sums, self.counts, None, feats, slots)  # prototypes: means of raw features

    def solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        protos = F.normalize(self.sums / self.counts.clamp(min=1)[:, None], dim=1)  # (K, D); unseen rows 0
        return protos.T[None], self.counts.new_zeros(1, len(self.counts))


@register("ncm", params=NCMParams)
def build(ctx: StrategyContext, p: NCMParams):
    """NoSGD + ClassStatsPlugin with an NCMLearner."""
    return build_closed_form(ctx, NCMLearner(n_slots(ctx.info), ctx.model.head.in_features))
