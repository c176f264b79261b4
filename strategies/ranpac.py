"""RanPAC's classifier on frozen features (McDonnell et al. NeurIPS 2023, "RanPAC: random projections and
pre-trained models for continual learning"; RanPAC/RanPAC, RanPAC.py ``replace_fc``/``setup_RP``).

A fixed random projection W ~ N(0, 1)^(D x M) and a ReLU give h = relu(x W); the Gram matrix
G = sum h h^T and C = sum h y^T (y one-hot) accumulate over experiences, and the readout is the ridge
classifier W_o = (G + lambda I)^-1 C. After each experience lambda is chosen as in the paper's
``optimise_ridge_parameter``: among 10^-8 .. 10^8, the least MSE on a random 20 % of that experience's
*training* features, fitting on the other 80 % (never test data; chosen values in ``plugin.ridges``).
RanPAC's Phase 1 (first-session adaptation of the backbone with PETL) is out of scope: the encoder stays
as it is (the seq_star/aper strategies adapt on the first experience).

No SGD: epochs are ignored, each experience is read once; no sample is stored. State (extra_state):
the projection (D x M float32; it could be regenerated from its seed), G (M x M) and C (M x K) in
float64 (RanPAC keeps float32; the float64 solve needs them so), counts (K). M = 5000: G alone is
200 MB. The current experience's features are held only until its readout is solved.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.class_stats import build_closed_form, n_slots
from strategies.plugins.closed_form_math import ridge_solve, select_ridge


@dataclass(frozen=True)
class RanPACParams:
    """RanPAC's options.

    Args:
        M: random projection width (5000: the paper's default, ``args/*_publish.csv``).
        ridges: candidate ridge lambdas (RanPAC.py: ``10.0 ** np.arange(-8, 9)``).
        fit_fraction: share of the experience's training samples the candidates are fitted on; the rest
            validates them (RanPAC.py: 0.8).
    """

    M: int = 5000
    ridges: tuple[float, ...] = tuple(10.0**k for k in range(-8, 9))
    fit_fraction: float = 0.8

    def __post_init__(self) -> None:
        check(self.M >= 1, "M must be >= 1")
        check(len(self.ridges) >= 1 and all(r > 0 for r in self.ridges), "ridges must be positive, at least one")
        check(0 < self.fit_fraction < 1, "fit_fraction must be in (0, 1)")


class RanPACLearner(nn.Module):
    """Random ReLU projection, Gram matrix G and C = H^T Y; readout = ridge with lambda from held-out training data."""

    def __init__(self, n_classes: int, dim: int, p: RanPACParams, seed: int) -> None:
        super().__init__()
        self.p = p
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(dim, p.M, generator=self.generator))  # (D, M)
        self.register_buffer("gram", torch.zeros(p.M, p.M, dtype=torch.float64))
        self.register_buffer("targets", torch.zeros(p.M, n_classes, dtype=torch.float64))  # C
        self.register_buffer("counts", torch.zeros(n_classes, dtype=torch.float64))
        self.current: list[tuple[torch.Tensor, torch.Tensor]] = []  # this experience's (h, slots) until solve
        self.ridges: list[float] = []  # chosen lambda per experience

    def phi(self, feats: torch.Tensor) -> torch.Tensor:
        return F.relu(feats.float() @ self.projection)[None]  # (1, B, M)

    def update(self, feats: torch.Tensor, slots: torch.Tensor) -> None:
        h = self.phi(feats)[0].double()  # (B, M)
        self.gram += h.T @ h
        self.targets.index_add_(1, slots, h.T)
        self.counts += torch.bincount(slots, minlength=len(self.counts)).double()
        self.current.append((h, slots))

    def solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.current:
            H = torch.cat([h for h, _ in self.current])
            Y = F.one_hot(torch.cat([s for _, s in self.current]), len(self.counts)).double()
            ridge, _ = select_ridge(H, Y, self.p.ridges, self.p.fit_fraction, self.generator)
            self.ridges.append(ridge)
            self.current = []
        W = ridge_solve(self.gram, self.targets, self.ridges[-1])  # (M, K)
        return W[None], W.new_zeros(1, W.shape[1])


@register("ranpac", params=RanPACParams)
def build(ctx: StrategyContext, p: RanPACParams):
    """NoSGD + ClassStatsPlugin with a RanPACLearner (projection seeded by the run seed)."""
    return build_closed_form(ctx, RanPACLearner(n_slots(ctx.info), ctx.model.head.in_features, p, ctx.seed))
