"""ER-AML (Caccia et al. 2022): replay with an asymmetric metric-learning loss on new classes.

Avalanche 0.6.0's ER_AML cycles per-class buffer loaders of ``train_mb_size`` (and the memory loader
of ``batch_size_mem``) with drop_last; when the buffer holds fewer samples per class than the
mini-batch those loaders are empty and training loops forever. clbench refuses that configuration
before training. Defaults: memory 4400, memory batch 10 (Avalanche's).
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import FeatureView, StrategyContext, StrategyNotApplicable, register


@dataclass(frozen=True)
class ERAMLParams:
    """Args: mem_size: buffer size; batch_size_mem: memory mini-batch; temp: contrastive temperature."""

    mem_size: int = 4400
    batch_size_mem: int = 10
    temp: float = 0.1

    def __post_init__(self) -> None:
        check(self.mem_size >= 1 and self.batch_size_mem >= 1, "mem_size and batch_size_mem must be >= 1")
        check(self.temp > 0, "temp must be > 0")


def check_buffer(p: ERAMLParams, n_classes: int, batch_size: int) -> None:
    """Refuse a buffer with fewer samples per class than a mini-batch (Avalanche would hang)."""
    per_class = p.mem_size // max(1, n_classes)
    need = max(p.batch_size_mem, batch_size)
    if per_class < need:
        raise StrategyNotApplicable(
            f"er_aml: mem_size {p.mem_size} over {n_classes} classes leaves {per_class} samples per class, "
            f"fewer than the mini-batch ({need}: max of batch_size_mem and train.batch_size); "
            f"Avalanche 0.6.0 then loops forever. Raise mem_size to >= {need * n_classes} "
            "or lower the batch sizes"
        )


@register("er_aml", params=ERAMLParams, settings=("class_il",), why_not="ER-AML separates new from old classes")
def build(ctx: StrategyContext, p: ERAMLParams):
    """Avalanche ER_AML on the model's features (checked against the hang first)."""
    from avalanche.training import ER_AML

    check_buffer(p, sum(len(c) for c in ctx.info.classes_per_experience), ctx.train.batch_size)
    return ctx.template(
        ER_AML, feature_extractor=FeatureView(ctx.model), mem_size=p.mem_size,
        batch_size_mem=p.batch_size_mem, temp=p.temp,
    )
