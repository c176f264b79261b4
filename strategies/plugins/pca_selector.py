"""Experience selector by reconstruction error: MoE-Adapters' DDAS with linear autoencoders.

MoE-Adapters (Yu et al. 2024) trains one autoencoder per task on frozen features and, at test time,
sends a sample to the task whose autoencoder reconstructs it best (their Distribution Discriminative
Auto-Selector; it also sends samples no autoencoder fits to the zero-shot model, a branch left out
here). Here each experience's autoencoder is linear with ``dims`` code units, fitted in closed form: the
optimum of a linear autoencoder under squared error spans the top principal components of its
training data (Baldi & Hornik 1989), so the fit is the experience's mean and top-``dims`` principal
directions (theirs: 1 ReLU layer of 100 units and a sigmoid decoder, trained by SGD). Features: the
first-token states entering the first adapted block (the frozen prefix's output), collected while
training each experience.
"""

from __future__ import annotations

import torch
from torch import nn


class PCASelector(nn.Module):
    """Per experience a mean (D,) and basis (D, c); ``select`` -> the experience of least residual.

    Args:
        dim: feature width D.
        n_experiences: experiences to hold.
        dims: code size c (capped at D, and at the experience's samples - 1).
    """

    def __init__(self, dim: int, n_experiences: int, dims: int) -> None:
        super().__init__()
        dims = self.dims = min(dims, dim)
        self.register_buffer("means", torch.zeros(n_experiences, dim))
        self.register_buffer("bases", torch.zeros(n_experiences, dim, dims))  # zero columns beyond the cap
        self.fitted = 0  # experiences fitted so far
        self._seen: list[torch.Tensor] = []  # features of the experience being trained

    def collect(self, h: torch.Tensor) -> None:
        """Keep training features (B, D) of the current experience."""
        self._seen.append(h.detach().cpu())

    def fit(self, experience: int) -> None:
        """Fit ``experience``'s mean and principal directions on the collected features, then drop them."""
        if not self._seen:
            raise RuntimeError(f"PCASelector.fit({experience}): no training features were collected (the "
                               "router choice must see the training forwards: moe_experts.Routing.choose)")
        x = torch.cat(self._seen).to(self.means)  # (N, D)
        self._seen = []
        mean = x.mean(0)
        c = min(self.dims, len(x) - 1)
        _, _, v = torch.linalg.svd(x - mean, full_matrices=False)  # v: (min(N, D), D)
        self.means[experience] = mean
        self.bases[experience] = 0.0
        self.bases[experience, :, :c] = v[:c].T
        self.fitted = max(self.fitted, experience + 1)

    def residuals(self, h: torch.Tensor) -> torch.Tensor:
        """Squared reconstruction error (B, fitted) of h (B, D) under each fitted experience."""
        z = h[:, None, :] - self.means[None, : self.fitted]  # (B, F, D)
        coded = torch.einsum("bfd,fdc->bfc", z, self.bases[: self.fitted])  # (B, F, c)
        return z.pow(2).sum(-1) - coded.pow(2).sum(-1)  # orthonormal basis: |z|^2 - |U^T z|^2

    def select(self, h: torch.Tensor) -> torch.Tensor:
        """Experience index (B,) per sample; 0 before any fit."""
        if self.fitted == 0:
            return torch.zeros(len(h), dtype=torch.long, device=h.device)
        return self.residuals(h.float()).argmin(1)
