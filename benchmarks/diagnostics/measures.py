"""The three per-block measures: linear-probe accuracy, linear CKA, attention KL (torch, no model).

- ``probe_accuracy``: a closed-form ridge regression on one-hot targets (deterministic, no training
  loop), fitted on one experience's features and scored on its test features, over that experience's
  classes only. Davari et al. (CVPR 2022) train a linear classifier with SGD on the full training
  set; a least-squares probe on a subsample is a cheaper, deterministic stand-in.
- ``linear_cka``: Kornblith et al. (2019), eq. 5 with the linear kernel:
  ``||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)`` for column-centred X, Y; 1 for identical
  representations, invariant to orthogonal transforms and isotropic scaling.
- ``attention_kl``: KL(A_old || A_new) per query, averaged over real queries and heads
  (strategies/plugins/attention_reg.py's ``attention_distance``, mode "kl").
"""

from __future__ import annotations

import torch

from strategies.plugins.attention_reg import attention_distance


def probe_accuracy(
    fit_x: torch.Tensor, fit_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, ridge: float = 0.1
) -> float:
    """Accuracy of a ridge-regression probe on one-hot targets.

    Args:
        fit_x: (N, D) features the probe is fitted on.
        fit_y: (N,) integer labels; the probe's classes are the distinct labels of ``fit_y``.
        test_x: (M, D) features it is scored on.
        test_y: (M,) labels (a label absent from ``fit_y`` counts as an error).
        ridge: lambda relative to the mean eigenvalue of the centred fit features' covariance:
            W = (X_c^T X_c + lambda * tr(X_c^T X_c) / D * I)^-1 X_c^T Y_c.

    Returns:
        The fraction of test samples whose highest score is their class.
    """
    x, tx = fit_x.double(), test_x.double()
    classes, idx = torch.unique(fit_y, return_inverse=True)
    y = torch.nn.functional.one_hot(idx, len(classes)).double()  # (N, C)
    mu, y_mu = x.mean(0), y.mean(0)
    xc = x - mu
    gram = xc.T @ xc  # (D, D)
    lam = ridge * gram.trace().clamp_min(1e-12) / x.shape[1]
    w = torch.linalg.solve(gram + lam * torch.eye(x.shape[1], dtype=x.dtype, device=x.device), xc.T @ (y - y_mu))
    pred = classes[((tx - mu) @ w + y_mu).argmax(1)]
    return float((pred == test_y.to(pred.device)).double().mean())


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between two representations of the same N inputs: x (N, D1), y (N, D2) -> [0, 1]."""
    x, y = x.double() - x.double().mean(0), y.double() - y.double().mean(0)
    cross = (y.T @ x).pow(2).sum()
    norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norm) if norm > 0 else float("nan")


def attention_kl(a_old: torch.Tensor, a_new: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean KL(A_old || A_new) over real queries and heads of (B, H, L, L) maps; 0 for identical maps."""
    return float(attention_distance(a_old.float(), a_new.float(), mask, mode="kl"))
