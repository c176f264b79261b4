"""Expert freezing after each experience and the routing record of a mixture of experts (moe_experts.py).

``ExpertRouting`` (an Avalanche plugin):

- after training experience i: per block, the k experts the router picked most often during it are
  "owned" by i and, with ``freeze_used``, frozen for the rest of the stream (MoE-Adapters' frozen list);
- after each evaluation on the test stream (the runner's, after training i): per block and test
  experience j, the routing distribution and how far the top-k sets moved since the end of j. The
  evaluation order is fixed (sequential batches), so sample n of j is the same sample every time.

``record`` is the ``routing`` block of the results file (documented in benchmarks/results/store.py):

    {"blocks": [block indices], "experts": E, "top_k": k, "freeze_used": bool,
     "owned":   [i][b] -> k expert ids picked most while training i (frozen after i when freeze_used),
     "trainable_parameters": [i] -> expert + router parameters trained in experience i,
     "load":    [i][b][j] -> E fractions: share of j's top-k slots given to each expert after training i,
     "changed": [i][b][j] -> fraction of j's test samples whose top-k set differs from the one after
                training j (router forgetting; 0 on the diagonal, null for j > i),
     "routing_accuracy": [i][b][j] -> mean over j's samples of |top-k set & owned[j][b]| / k (null j > i)}
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin

from strategies.plugins.moe_experts import BlockMixture


def _put(rows: list, i: int, row) -> None:
    """rows[i] = row (an evaluation repeated after the same experience replaces its row)."""
    del rows[i:]
    rows.append(row)


class ExpertRouting(SupervisedPlugin):
    """Freeze each experience's most-used experts (optional) and record routing after each evaluation.

    Args:
        mixtures: one BlockMixture per adapted block.
        blocks: the adapted blocks' indices (for the record).
        freeze_used: freeze the k most-used experts of each experience after it.
    """

    def __init__(self, mixtures: list[BlockMixture], blocks: list[int], *, freeze_used: bool) -> None:
        super().__init__()
        self.mixtures = mixtures
        self.freeze_used = freeze_used
        self.added: list[int] = []  # parameters added per experience (the pool, at the first)
        self.trained = 0  # experiences trained so far
        self._reference: dict[int, list[torch.Tensor]] = {}  # j -> per block (N_j, k) after training j
        self._now: dict[int, list[torch.Tensor]] = {}
        top_k, experts = mixtures[0].router.top_k, len(mixtures[0].names)
        self.record = {"blocks": blocks, "experts": experts, "top_k": top_k, "freeze_used": freeze_used,
                       "owned": [], "trainable_parameters": [], "load": [], "changed": [], "routing_accuracy": []}

    def _pool_parameters(self, trainable_only: bool) -> int:
        params = {id(p): p for m in self.mixtures for e in range(len(m.names)) for p in m.expert_parameters(e)}
        params.update({id(p): p for m in self.mixtures for p in m.router.parameters()})
        return sum(p.numel() for p in params.values() if p.requires_grad or not trainable_only)

    def before_training_exp(self, strategy, **kwargs) -> None:
        _put(self.added, self.trained, self._pool_parameters(False) if self.trained == 0 else 0)
        _put(self.record["trainable_parameters"], self.trained, self._pool_parameters(True))
        for m in self.mixtures:
            m.counts.zero_()

    def after_training_exp(self, strategy, **kwargs) -> None:
        _put(self.record["owned"], self.trained, [m.most_used(freeze=self.freeze_used) for m in self.mixtures])
        self.trained += 1

    def before_eval_exp(self, strategy, **kwargs) -> None:
        for m in self.mixtures:
            m.eval_topk.clear()

    def after_eval_exp(self, strategy, **kwargs) -> None:
        if self.trained:
            self._now[strategy.experience.current_experience] = [torch.cat(m.eval_topk) for m in self.mixtures]

    def after_eval(self, strategy, **kwargs) -> None:
        if not self.trained or not self._now:
            return
        i, now = self.trained - 1, self._now
        T = max(now) + 1
        if i in now:
            self._reference[i] = now[i]
        rows = {"load": [], "changed": [], "routing_accuracy": []}
        for b, m in enumerate(self.mixtures):
            rows["load"].append([_load(now[j][b], len(m.names)) if j in now else None for j in range(T)])
            rows["changed"].append([self._changed(i, j, b) for j in range(T)])
            rows["routing_accuracy"].append([self._accuracy(i, j, b) for j in range(T)])
        for key, row in rows.items():
            _put(self.record[key], i, row)
        self._now = {}

    def _changed(self, i: int, j: int, b: int) -> float | None:
        if j > i or j not in self._reference or j not in self._now:
            return None
        return float((self._now[j][b] != self._reference[j][b]).any(dim=1).float().mean())

    def _accuracy(self, i: int, j: int, b: int) -> float | None:
        if j > i or j not in self._now:
            return None
        owned = torch.tensor(self.record["owned"][j][b])
        topk = self._now[j][b]  # (N, k)
        return float(torch.isin(topk, owned).float().mean())


def _load(topk: torch.Tensor, n_experts: int) -> list[float]:
    """Share of the top-k slots of (N, k) expert ids given to each of n_experts experts."""
    counts = torch.bincount(topk.flatten(), minlength=n_experts).float()
    return [float(c) for c in counts / max(1, topk.numel())]
