"""Learning to Prompt (L2P; Wang et al., CVPR 2022) on a frozen Transformer's token embeddings.

A pool of M prompts of L_p tokens with one learned key each; an input's query is the frozen
encoder's pooled feature of it, its N best-matching prompts (cosine similarity of query and key)
are prepended to its token embeddings, and a classifier reads the mean of the prompt positions'
outputs (strategies/plugins/prompt_pool.py). The encoder stays frozen; prompts, keys and the head
train, with L2P's surrogate loss lambda * sum (1 - cos(query, selected key)) and, in class-IL, the
logits of classes outside the current experience masked while training (L2P's ``train_mask``).
Avalanche's ``LearningToPrompt`` needs a timm ViT whose weights cannot be downloaded here; this
applies the method to MiniLM (model "minilm"; and to the tiny ViT and text Transformer of clbench).
The pool exists from the start: ``strategy.added_parameters`` records its prompts + keys at the
first experience and 0 afterwards (the head is every strategy's).

Defaults: M = 10, L_p = 5, N = 5, lambda = 0.5 (the paper's L2P defaults, as the issue gives them;
the official config cifar100_l2p.py uses length 10, top_k 4 and coefficient 1.0, Avalanche pool 20
and coefficient 0.1), Adam at lr 0.03 (paper and official code, constant, batch 128), which
replaces ``train.lr`` for this strategy; set ``lr`` to change it.

Differences from the paper: the query is the encoder's own pooled feature (MiniLM: the mean over
tokens its sentence embedding uses; ViT: its pooling) instead of ViT's [CLS] pre-logits; prompts
are prepended after the position embeddings and get none (text has no [CLS]-first convention to
keep; L2P's ViT also puts them after the embedding); the whole encoder is frozen whatever the model
config's ``frozen_layers`` says; prompts are chosen per sample, not batch-wise (the official code's
``batchwise_prompt``, whose choice depends on the batch), and there is no prompt-frequency penalty
(the paper's optional diversification for task-aware training); no gradient clipping (official:
norm 1.0). Domain- and task-IL use the same pool (the task label only picks the head in task-IL).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from benchmarks.core import check
from strategies.base import StrategyContext, StrategyNotApplicable, register, with_task_labels


@dataclass(frozen=True)
class L2PParams:
    """Args: pool_size: M, prompts in the pool; prompt_length: L_p, tokens per prompt; top_n: N,
    prompts prepended per input; key_weight: lambda of the key-query surrogate loss; lr: Adam's learning
    rate for this strategy (replaces ``train.lr``); train_mask: in class-IL, mask the logits of classes
    outside the current experience while training."""

    pool_size: int = 10
    prompt_length: int = 5
    top_n: int = 5
    key_weight: float = 0.5
    lr: float = 0.03
    train_mask: bool = True

    def __post_init__(self) -> None:
        check(self.pool_size >= 1 and self.prompt_length >= 1, "pool_size and prompt_length must be >= 1")
        check(1 <= self.top_n <= self.pool_size, "top_n must be in 1..pool_size")
        check(self.key_weight >= 0 and self.lr > 0, "key_weight must be >= 0 and lr > 0")


def _token_width(model) -> int:
    if not hasattr(model, "encode") or getattr(model, "pool", None) == "cls":
        raise StrategyNotApplicable("l2p prepends prompts to token embeddings and pools their outputs: use minilm, "
                                    "text_transformer or vit with pool = 'mean'")
    return model.head.in_features  # D: nn.Linear and Avalanche's MultiHeadClassifier both record it


@register("l2p", params=L2PParams, needs_transformer=True)
def build(ctx: StrategyContext, p: L2PParams):
    """L2P (Wang et al. 2022): a prompt pool chosen by key-query matching on a frozen Transformer.

    Naive on Prompted(model, PromptPool) + KeyQueryLoss (+ TrainMask in class-IL), at lr ``p.lr``.
    """
    from avalanche.training import Naive

    from strategies.plugins.prompt_pool import KeyQueryLoss, Prompted, PromptPool, TrainMask

    pool = PromptPool(p.pool_size, p.prompt_length, p.top_n, _token_width(ctx.model))
    model = Prompted(ctx.model, pool)
    plugins = [KeyQueryLoss(p.key_weight)]
    if p.train_mask and ctx.info.setting == "class_il":
        plugins.append(TrainMask())
    ctx = replace(ctx, train=replace(ctx.train, lr=p.lr))
    strategy = ctx.template(with_task_labels(Naive), model=model, plugins=plugins)
    strategy.added_parameters = [sum(t.numel() for t in pool.parameters())] + [0] * (ctx.info.n_experiences - 1)
    return strategy
