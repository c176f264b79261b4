"""EWC and online EWC with a per-sample Fisher, as in Hsu et al. 2018's code (agents/regularization.py).

Fisher diagonal of an experience: F_i = (1/N) sum_n (d CE(f(x_n), label_n) / d theta_i)^2 over up to
``fisher_samples`` training samples (Hsu: batch 1, up to 60,000, label = the model's prediction;
"true" gives the empirical Fisher). Kirkpatrick et al. 2017 sample the label from the model's
softmax instead of taking its argmax; Hsu et al. report similar results for both. Class-IL: the
argmax and the loss use the same outputs as the training loss: all of them, or only those of the
classes seen so far with ``loss_on_seen_classes`` (as Hsu's class-IL runs).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from strategies.plugins.importance import (
    QuadraticPenaltyPlugin,
    Tensors,
    experience_batches,
    restrict,
    seen_columns,
)
from strategies.plugins.persample import PASS_BATCH, mean_per_sample, predicted_labels

FISHER_LABELS = ("predicted", "true")


def fisher_diagonal(model: torch.nn.Module, batches, label: str = "predicted",
                    columns: torch.Tensor | None = None) -> Tensors:
    """Mean per-sample squared gradient of the cross-entropy, with predicted or true labels.

    Args:
        model: the network.
        batches: (x, y, task) batches of one task each.
        label: "predicted" (argmax of the model's output) or "true" (the data's labels).
        columns: sorted output columns the loss covers (None: all; see ``seen_columns``).
    """
    if label not in FISHER_LABELS:
        raise ValueError(f"fisher_label must be one of {FISHER_LABELS}, got {label!r}")

    def labelled() -> Iterator[tuple]:
        for x, y, task in batches:  # read lazily: the model is in eval mode by now
            if label == "predicted":
                yield x, predicted_labels(model, x, task, columns), task
            else:  # class ids -> their index among the kept columns
                yield x, (y if columns is None else torch.searchsorted(columns, y)), task

    def summed_cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(restrict(out, columns), y, reduction="sum")

    return mean_per_sample(model, labelled(), summed_cross_entropy, torch.square)


class FisherPlugin(QuadraticPenaltyPlugin):
    """EWC (``online=False``: one Fisher and anchor per experience) or online EWC (one summed Fisher).

    Penalty ``reg_lambda * sum F (theta - theta*)^2`` (Hsu's form, no 1/2). Online:
    F = decay * F_old + F_new, theta* = parameters after the latest experience (Hsu: decay 1).

    Args:
        reg_lambda: penalty strength.
        online: online EWC (True) or EWC with a term per experience (False).
        decay: online EWC's Fisher decay (Schwarz et al.'s gamma; 1 = Hsu's running sum).
        fisher_samples: at most this many training samples of the experience (random subset).
        fisher_label: "predicted" (Hsu) or "true" (empirical Fisher).
    """

    def __init__(self, *, reg_lambda: float, online: bool = False, decay: float = 1.0,
                 fisher_samples: int = 60000, fisher_label: str = "predicted") -> None:
        super().__init__(reg_lambda=reg_lambda, online=online, decay=decay)
        if fisher_samples < 1 or fisher_label not in FISHER_LABELS:
            raise ValueError(f"fisher_samples must be >= 1 and fisher_label one of {FISHER_LABELS}")
        self.fisher_samples, self.fisher_label = fisher_samples, fisher_label

    def importance(self, strategy) -> Tensors:
        batches = experience_batches(strategy, PASS_BATCH, self.fisher_samples)
        return fisher_diagonal(strategy.model, batches, self.fisher_label, seen_columns(strategy))
