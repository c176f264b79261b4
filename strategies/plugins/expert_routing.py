"""Per-experience routers, expert freezing and the routing record of a mixture of experts (moe_experts.py).

``ExpertRouting`` (an Avalanche plugin):

- before training experience i: its router (one per block) becomes the one that trains;
- after training experience i: the selector fits experience i (pca_selector.py); per block, the k
  experts i's router picked most often are "owned" by i and, with ``freeze_used``, frozen for the rest
  of the stream (MoE-Adapters' frozen list);
- after each evaluation on the test stream (the runner's, after training i): per block and test
  experience j, the routing distribution and how far the top-k sets moved since the end of j. The
  evaluation order is fixed (sequential batches), so sample n of j is the same sample every time.

``record`` is the ``routing`` block of the results file (documented in benchmarks/results/store.py):

    {"blocks": [block indices], "experts": E, "top_k": k, "freeze_used": bool,
     "owned":   [i][b] -> k expert ids picked most while training i (frozen after i when freeze_used),
     "selection_accuracy": [i][j] -> fraction of j's test samples sent to j's router (null for j > i;
                1 in task-IL, where the task label picks it),
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


class RoutingRecord:
    """The ``routing`` block and the top-k sets it compares (see the module docstring).

    Measurement, not method state: the reference top-k sets (k ids per test sample) live here, in an
    object benchmarks/engine/memory.py does not count as state the strategy keeps.

    Args:
        blocks: the adapted blocks' indices; experts: E; top_k: k; freeze_used: recorded as given.
    """

    def __init__(self, blocks: list[int], experts: int, top_k: int, freeze_used: bool) -> None:
        self.experts = experts
        self.reference: dict[int, list[torch.Tensor]] = {}  # j -> per block (N_j, k) after training j
        self.now: dict[int, list[torch.Tensor]] = {}  # j -> per block (N_j, k) in this evaluation
        self.choice: dict[int, torch.Tensor] = {}  # j -> (N_j,) router index in this evaluation
        self.record = {"blocks": blocks, "experts": experts, "top_k": top_k, "freeze_used": freeze_used,
                       "owned": [], "trainable_parameters": [], "selection_accuracy": [], "load": [],
                       "changed": [], "routing_accuracy": []}

    def finish(self, i: int) -> None:
        """Rows [i] of load / changed / routing_accuracy from the evaluation after training i."""
        if not self.now:
            return
        if i in self.now:
            self.reference[i] = self.now[i]
        T, n_blocks = max(self.now) + 1, len(next(iter(self.now.values())))
        rows = {"load": [], "changed": [], "routing_accuracy": []}
        for b in range(n_blocks):
            rows["load"].append([_load(self.now[j][b], self.experts) if j in self.now else None for j in range(T)])
            rows["changed"].append([self._changed(i, j, b) for j in range(T)])
            rows["routing_accuracy"].append([self._accuracy(i, j, b) for j in range(T)])
        for key, row in rows.items():
            _put(self.record[key], i, row)
        sel = [float((self.choice[j] == j).float().mean()) if j <= i and j in self.choice else None for j in range(T)]
        _put(self.record["selection_accuracy"], i, sel)
        self.now, self.choice = {}, {}

    def _changed(self, i: int, j: int, b: int) -> float | None:
        if j > i or j not in self.reference or j not in self.now:
            return None
        return float((self.now[j][b] != self.reference[j][b]).any(dim=1).float().mean())

    def _accuracy(self, i: int, j: int, b: int) -> float | None:
        if j > i or j not in self.now:
            return None
        owned = torch.tensor(self.record["owned"][j][b])
        return float(torch.isin(self.now[j][b], owned).float().mean())  # (N, k) slots on owned experts


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
        self.routing = mixtures[0].routing  # the shared router choice (moe_experts.Routing)
        self.selector = self.routing.selector
        self.log = RoutingRecord(blocks, len(mixtures[0].names), mixtures[0].top_k, freeze_used)
        self.record = self.log.record

    def _parameters(self, experience: int, trainable_only: bool) -> int:
        """Expert and router parameters (all, or those that train now)."""
        params = {id(p): p for m in self.mixtures for e in range(len(m.names)) for p in m.expert_parameters(e)}
        params.update({id(p): p for m in self.mixtures for p in m.routers.parameters()})
        return sum(p.numel() for p in params.values() if p.requires_grad or not trainable_only)

    def _added(self, i: int) -> int:
        """The pool at the first experience; a router per block and the selector's fit at each."""
        routers = sum(p.numel() for m in self.mixtures for p in m.routers[i].parameters())
        pool = sum(p.numel() for m in self.mixtures for e in range(len(m.names)) for p in m.expert_parameters(e))
        selector = self.selector.means[i].numel() + self.selector.bases[i].numel()
        return routers + selector + (pool if i == 0 else 0)

    def before_training_exp(self, strategy, **kwargs) -> None:
        i = strategy.experience.current_experience
        self.routing.current = i
        for m in self.mixtures:
            m.set_trainable()
            m.counts.zero_()
        _put(self.added, self.trained, self._added(i))
        _put(self.record["trainable_parameters"], self.trained, self._parameters(i, True))

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.selector.fit(strategy.experience.current_experience)
        _put(self.record["owned"], self.trained, [m.most_used(freeze=self.freeze_used) for m in self.mixtures])
        self.trained += 1

    def before_eval_exp(self, strategy, **kwargs) -> None:
        self.routing.eval_choice.clear()
        for m in self.mixtures:
            m.eval_topk.clear()

    def after_eval_exp(self, strategy, **kwargs) -> None:
        if self.trained:
            j = strategy.experience.current_experience
            self.log.now[j] = [torch.cat(m.eval_topk) for m in self.mixtures]
            self.log.choice[j] = torch.cat(self.routing.eval_choice)

    def after_eval(self, strategy, **kwargs) -> None:
        if self.trained:
            self.log.finish(self.trained - 1)


def _load(topk: torch.Tensor, n_experts: int) -> list[float]:
    """Share of the top-k slots of (N, k) expert ids given to each of n_experts experts."""
    counts = torch.bincount(topk.flatten(), minlength=n_experts).float()
    return [float(c) for c in counts / max(1, topk.numel())]
