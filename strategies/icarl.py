"""iCaRL (Rebuffi et al. 2017): exemplar memory, distillation, nearest-mean-of-exemplars classifier.

Class-incremental only (it classifies by class means over all classes seen). Memory 4400 in total.
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import FeatureView, StrategyContext, register


@dataclass(frozen=True)
class ICaRLParams:
    """Args: memory_size: exemplars in total; fixed_memory: keep the total fixed as classes grow."""

    memory_size: int = 4400
    fixed_memory: bool = True

    def __post_init__(self) -> None:
        check(self.memory_size >= 1, "memory_size must be >= 1")


@register(
    "icarl",
    params=ICaRLParams,
    settings=("class_il",),
    why_not="iCaRL classifies with the means of all classes seen so far; it needs one growing label space",
)
def build(ctx: StrategyContext, p: ICaRLParams):
    """Avalanche ICaRL on the model's features and head."""
    from avalanche.training import ICaRL

    model = ctx.model
    return ctx.template(
        ICaRL,
        omit_model=True,
        criterion=None,
        feature_extractor=FeatureView(model),
        classifier=model.head,
        memory_size=p.memory_size,
        buffer_transform=None,
        fixed_memory=p.fixed_memory,
    )
