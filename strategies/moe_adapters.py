"""MoE-Adapters (Yu et al., CVPR 2024): a frozen encoder with a pool of LoRA experts and a top-k router per block.

In each adapted block (MiniLM ``frozen_layers = 5``: block 5, with the prefix cache of blocks 0-4 kept
exact; every block when the config freezes the whole encoder) a pool of E experts and a learned noisy
top-k router (Shazeer et al. 2017) on the block input's first token: each sample's output is the frozen
block's plus the gate-weighted sum of its k experts' updates (strategies/plugins/moe_experts.py). After
each experience the k experts the router picked most often during it are frozen for the rest of the
stream (MoE-Adapters' frozen list); the router and the other experts keep training, so the router can
forget: ``strategy.routing`` (the results' ``routing`` block, strategies/plugins/expert_routing.py)
records, after each experience, each earlier test experience's routing distribution, the fraction of its
samples whose top-k set changed since the end of that experience, and its routing accuracy (share of
top-k slots on the experts that experience's training used most). ``strategy.added_parameters``: the
pool + routers at the first experience, 0 after (the pool is fixed).

Defaults follow the released code (github.com/JiazuoYu/MoE-Adapters4CL, mtil/, 22 experts for 11
tasks, top-2, routers initialised at zero, noisy gating while training, the 2 most-activated experts
per block frozen after each task). Where this version differs:

- experts are peft LoRA modules (rank 8, alpha 16 on query/value or the fused qkv, as modular_lora)
  instead of bottleneck adapters (64, ReLU, scale 0.1) parallel to the MLP;
- one router per block shared by all experiences (their class-incremental code, cil/); their
  multi-domain code keeps one router per task and picks it with the DDAS autoencoder selector. Here
  no setting reads the task label to route: class-IL routes by the router itself; task-IL uses the
  label only in the model's multi-head classifier;
- the router reads the block input's first token (MiniLM's [CLS]); theirs the CLS token after attention;
- the classifier is the model's trained linear head, not CLIP's frozen text embeddings, so the head
  forgets as under naive fine-tuning (their classifier cannot);
- no load-balancing loss: their code computes cv_squared(importance) + cv_squared(load) but never adds
  it to the training loss.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, StrategyNotApplicable, register
from strategies.plugins.expert_routing import ExpertRouting
from strategies.plugins.lora_modules import adapted_blocks, default_targets
from strategies.plugins.moe_experts import attach_experts


@dataclass(frozen=True)
class MoEAdaptersParams:
    """Args: experts: experts per adapted block E; top_k: experts per sample k; rank, alpha: each LoRA
    expert's rank and scaling numerator (update scaled by alpha / rank); target_modules: Linear layers
    the experts adapt (empty = query/value for BERT, qkv for the ViT and text Transformer);
    freeze_used: freeze the k most-used experts of each experience after it (false = every expert
    keeps training)."""

    experts: int = 22
    top_k: int = 2
    rank: int = 8
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ()
    freeze_used: bool = True

    def __post_init__(self) -> None:
        check(1 <= self.top_k <= self.experts, f"top_k = {self.top_k} must be in 1..experts ({self.experts})")
        check(self.rank >= 1 and self.alpha > 0, "rank must be >= 1 and alpha > 0")


@register("moe_adapters", params=MoEAdaptersParams, needs_transformer=True)
def build(ctx: StrategyContext, p: MoEAdaptersParams):
    """Naive on the model with attached experts + ExpertRouting (freezing, routing record)."""
    from avalanche.training import Naive
    from peft import LoraConfig

    if not hasattr(ctx.model, "blocks"):
        raise StrategyNotApplicable("moe_adapters adds experts to Transformer blocks: use minilm, vit or text_transformer")
    targets = list(p.target_modules) or default_targets(ctx.model)
    blocks = [i for i, b in enumerate(ctx.model.blocks) if any(b is a for a in adapted_blocks(ctx.model))]
    config = LoraConfig(r=p.rank, lora_alpha=p.alpha, lora_dropout=0.0, target_modules=targets)
    routing = ExpertRouting(attach_experts(ctx.model, p.experts, p.top_k, config), blocks, freeze_used=p.freeze_used)
    strategy = ctx.template(Naive, plugins=[routing])
    strategy.added_parameters = routing.added
    strategy.routing = routing.record
    return strategy
