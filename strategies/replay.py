"""Experience replay with a class-balanced buffer (Hsu et al. 2018 "Naive rehearsal"; Chaudhry 2019).

Default memory 4400 samples in total (the larger of Hsu et al.'s two sizes; 1100 is the other).
Class-IL balances the buffer over classes; task-IL and domain-IL relabel every pair to 0/1, so there
the buffer is balanced over experiences (each holding its two classes).
"""

from dataclasses import dataclass

from benchmarks.typed import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class ReplayParams:
    """Args: mem_size: buffer size in samples (total over all classes)."""

    mem_size: int = 4400

    def __post_init__(self) -> None:
        check(self.mem_size >= 1, "mem_size must be >= 1 (a buffer of 0 is naive; use 'naive')")


@register("replay", params=ReplayParams)
def build(ctx: StrategyContext, p: ReplayParams):
    """Naive + ReplayPlugin(ClassBalancedBuffer | ExperienceBalancedBuffer)."""
    from avalanche.training import Naive
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ClassBalancedBuffer, ExperienceBalancedBuffer

    if ctx.info.setting == "class_il":
        policy = ClassBalancedBuffer(max_size=p.mem_size, adaptive_size=True)
    else:
        policy = ExperienceBalancedBuffer(max_size=p.mem_size, adaptive_size=True)
    return ctx.template(Naive, plugins=[ReplayPlugin(mem_size=p.mem_size, storage_policy=policy)])
