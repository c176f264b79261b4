"""SEQ* (Zheng, Qiu & Ma, ACL 2024, "Learn or Recall? Revisiting Incremental Learning with Pre-trained
Language Models"): fine-tune the encoder on the first experience only, then train only new classifier rows.

Sequential fine-tuning with four changes, the paper's SEQ* (its code's ``SEQ_pre_warm_fix.yaml``, named
as SEQ* in zzz47zzz/codebase-for-incremental-learning-with-llm's README; options in models/SEQ.py):

- warm-up, then fix the encoder (``SEQ_warmup_epoch_before_fix_encoder: 3``, ``SEQ_fix_encoder``): on the
  first experience ``warmup_epochs`` epochs train the trainable part of the encoder with the classifier,
  then the encoder is frozen and ``train.epochs`` more epochs train the classifier (the code adds the
  warm-up epochs to ``training_epochs`` on the first task); from the second experience on the encoder
  is frozen (bit-identical).
- fix the old classifiers (``SEQ_fix_old_classifier``): the rows of classes of earlier experiences are
  restored after every optimizer step (the code sets their learning rate to 0).
- cosine linear classifier (the code's ``CosineLinear``: normalised features and rows, no bias, no scale,
  i.e. ``scale = 1``; ``scale`` is an option here).
- pre-allocated classifier (``SEQ_preallocated_classifier``): every class has its row from the start and
  the training loss covers them all (clbench's single head already does); ``preallocate = false`` is the
  code's ``SEQ_warm_fix.yaml`` (rows of unseen classes masked while training).

``warmup_epochs = 0`` never trains the encoder (the code's ``SEQ_fix.yaml``: sequential linear probing of
the frozen pretrained encoder); with a model whose encoder has nothing trainable (MiniLM ``frozen_layers
= 6``) that is the only variant that applies, and a positive ``warmup_epochs`` is refused.

Settings: class-IL; task-IL with one block of rows per task (prediction restricted to the task's
classes; the code's TIL mode, a classifier per task). Domain-IL is refused: every output is shared, so
after the first experience nothing could train.

Differences from the paper: one learning rate (the run's ``train.lr``, Adam by default) for encoder and
classifier; the code uses AdamW with 1e-5 for the encoder and 1e-3 for the classifiers (batch 4, BERT):
Avalanche's optimizer handling takes one parameter group. Features are the model's pooled features
(MiniLM: the mean over tokens) instead of BERT's [CLS] token. Evaluation reads every output as in all
of clbench (the code's class-IL evaluation reads the classifiers of the tasks seen so far).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, StrategyNotApplicable, register, with_task_labels


@dataclass(frozen=True)
class SeqStarParams:
    """Args: warmup_epochs: epochs of the first experience that fine-tune the encoder before it is frozen
    (SEQ*: 3; 0 = never, the code's SEQ_fix); scale: multiplier of the cosine logits (the code's
    CosineLinear: none, 1.0); preallocate: rows of every class in the training loss from the start
    (SEQ*: true; false = the code's SEQ_warm_fix)."""

    warmup_epochs: int = 3
    scale: float = 1.0
    preallocate: bool = True

    def __post_init__(self) -> None:
        check(self.warmup_epochs >= 0, "warmup_epochs must be >= 0")
        check(self.scale > 0, "scale must be > 0")


def feature_dim(model) -> int:
    """D of the model's pooled features (its head's input width)."""
    head = getattr(model, "head", None)
    dim = getattr(head, "in_features", None)
    if not hasattr(model, "features") or dim is None:
        raise StrategyNotApplicable("the strategy needs a clbench model with features(x) and a head (minilm, vit, ...)")
    return int(dim)


@register("seq_star", params=SeqStarParams, settings=("class_il", "task_il"), needs_transformer=True,
          why_not="after the first experience SEQ* trains only the rows of new classes; in domain-IL every "
                  "output is shared, so nothing would learn")
def build(ctx: StrategyContext, p: SeqStarParams):
    """SEQ* (Zheng et al. 2024): warm up the encoder on experience 1, freeze it and old classifier rows; cosine head."""
    from avalanche.training import Naive

    from strategies.plugins.cosine_head import CosineHead, FeaturesAndHead
    from strategies.plugins.first_experience import SeqStarSchedule

    model, info = ctx.model, ctx.info
    dim = feature_dim(model)
    encoder = [q for n, q in model.named_parameters() if not n.startswith("head.")]
    if p.warmup_epochs > 0 and not any(q.requires_grad for q in encoder):
        raise StrategyNotApplicable(
            "seq_star fine-tunes the encoder on the first experience, but this model's encoder has no trainable "
            "parameter (minilm frozen_layers = 6?): set the model's frozen_layers < 6 (e.g. 4 or 5), or set "
            "seq_star's warmup_epochs = 0 for SEQ* on the frozen encoder (sequential linear probing)")
    head = CosineHead(dim, info.n_outputs, info.n_experiences, per_task=info.multi_head, scale=p.scale,
                      learn_scale=False)
    wrapped = FeaturesAndHead(model, head)
    schedule = SeqStarSchedule(model, head, p.warmup_epochs, p.preallocate)
    return ctx.template(with_task_labels(Naive), model=wrapped, plugins=[schedule])
