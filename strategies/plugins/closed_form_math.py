"""The linear algebra of the closed-form heads (strategies/plugins/class_stats.py): exact streaming class
statistics, the LDA readout, ridge regression and RanPAC's choice of the ridge on held-out training data.

Statistics are float64 (sums of ~10^4 outer products; the solves need it: a float32 Cholesky of a
5000 x 5000 Gram matrix failed here as not positive definite).
"""

from __future__ import annotations

import math

import torch


def add_to_class_stats(
    sums: torch.Tensor, counts: torch.Tensor, scatter: torch.Tensor | None, x: torch.Tensor, slots: torch.Tensor
) -> None:
    """Add a mini-batch to per-class sums and counts and (optionally) the pooled within-class scatter, in place.

    The scatter S = sum_k sum_{i in k} (x_i - mu_k)(x_i - mu_k)^T is updated exactly (Chan et al.'s
    pairwise merge of a batch into running statistics), so it equals the batch computation over all
    samples seen, whatever the mini-batches. Hayes & Kanan's per-sample update weights the new term by
    the global count t/(t+1) instead of the class count, which only approximates it.

    Args:
        sums: (K, D) float64 per-class sums of x.
        counts: (K,) float64 per-class counts.
        scatter: (D, D) float64 pooled within-class scatter, or None (nearest class mean needs none).
        x: (B, D) features of the mini-batch.
        slots: (B,) int64 class slot of each row.
    """
    x = x.to(sums.dtype)
    nb = torch.bincount(slots, minlength=len(counts)).to(counts.dtype)  # (K,)
    sb = torch.zeros_like(sums).index_add_(0, slots, x)  # (K, D)
    if scatter is not None:
        present = nb > 0
        mb = sb / nb.clamp(min=1)[:, None]  # batch means (K, D)
        centred = x - mb[slots]  # (B, D)
        scatter += centred.T @ centred
        old = counts.clamp(min=1)
        delta = (mb - sums / old[:, None])[present]  # batch mean - running mean, (P, D)
        w = (counts * nb / (counts + nb).clamp(min=1))[present]  # 0 for a class seen for the first time
        scatter += (delta * w[:, None]).T @ delta
    sums += sb
    counts += nb


def lda_readout(
    sums: torch.Tensor, counts: torch.Tensor, scatter: torch.Tensor, shrinkage: float, relative: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear discriminant scores x @ W + b with a shared shrunk covariance (Hayes & Kanan 2020, eq. 3-4).

    Sigma = S / N; Lambda = ((1 - e) Sigma + e s I)^-1 with s = 1 (Hayes & Kanan) or, when ``relative``,
    s = trace(Sigma) / D (the same shrinkage whatever the features' scale); W = Lambda mu^T,
    b_k = -mu_k Lambda mu_k / 2. Classes with no sample get W = 0, b = 0 (the head masks them).

    Returns:
        W (D, K) and b (K,), float64.
    """
    D = scatter.shape[0]
    seen = counts > 0
    mu = sums[seen] / counts[seen, None]  # (P, D)
    sigma = scatter / counts.sum().clamp(min=1)
    scale = (torch.trace(sigma) / D).clamp(min=torch.finfo(sigma.dtype).tiny) if relative else 1.0
    A = (1 - shrinkage) * sigma + shrinkage * scale * torch.eye(D, dtype=sigma.dtype, device=sigma.device)
    W_seen = torch.linalg.solve(A, mu.T)  # (D, P)
    W = sums.new_zeros(D, len(counts))
    b = sums.new_zeros(len(counts))
    W[:, seen] = W_seen
    b[seen] = -0.5 * (mu * W_seen.T).sum(dim=1)
    return W, b


def ridge_solve(G: torch.Tensor, C: torch.Tensor, ridge: float) -> torch.Tensor:
    """W = (G + ridge I)^-1 C: (M, M), (M, K) -> (M, K) (RanPAC's ``torch.linalg.solve``, in float64)."""
    eye = torch.eye(len(G), dtype=G.dtype, device=G.device)
    return torch.linalg.solve(G + ridge * eye, C)


def select_ridge(
    H: torch.Tensor, Y: torch.Tensor, ridges: tuple[float, ...], fit_fraction: float, generator: torch.Generator
) -> tuple[float, list[float]]:
    """The ridge with the least validation MSE, fitted on a random ``fit_fraction`` of (H, Y), validated on
    the rest (RanPAC's ``optimise_ridge_parameter``: 80 % / 20 % of the current task's training features).

    Fitted in the dual form H_f^T (H_f H_f^T + r I)^-1 Y_f when there are fewer samples than features
    (the same W as the primal (H_f^T H_f + r I)^-1 H_f^T Y_f, far cheaper for M = 5000), else the primal.

    Args:
        H: (n, M) float64 features of the current experience's training samples.
        Y: (n, K) one-hot targets.
        ridges: candidates (RanPAC: 10^-8 .. 10^8).
        fit_fraction: share of samples fitted on (the rest validates).
        generator: CPU generator of the split.

    Returns:
        the chosen ridge and the validation MSE of each candidate (inf where the solve failed).
    """
    n = len(H)
    order = torch.randperm(n, generator=generator).to(H.device)
    n_fit = min(max(int(n * fit_fraction), 1), n - 1)
    fit, val = order[:n_fit], order[n_fit:]
    Hf, Yf, Hv, Yv = H[fit], Y[fit], H[val], Y[val]
    dual = n_fit <= H.shape[1]
    gram = Hf @ Hf.T if dual else Hf.T @ Hf  # (n_fit, n_fit) or (M, M)
    rhs = Yf if dual else Hf.T @ Yf
    losses = []
    for r in ridges:
        try:
            sol = ridge_solve(gram, rhs, r)
            pred = (Hv @ Hf.T) @ sol if dual else Hv @ sol
            loss = float(((pred - Yv) ** 2).mean())
        except torch.linalg.LinAlgError:
            loss = float("inf")
        losses.append(loss if math.isfinite(loss) else float("inf"))  # NaN -> inf
    best = min(range(len(ridges)), key=lambda i: losses[i])
    return float(ridges[best]), losses
