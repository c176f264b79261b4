"""Experience replay with a class-balanced buffer (Hsu et al. 2018 "Naive rehearsal"; Chaudhry 2019).

Default memory 4400 samples in total (the larger of Hsu et al.'s two sizes; 1100 is the other).
Class-IL balances the buffer over classes; task-IL and domain-IL relabel every pair to 0/1, so there
the buffer is balanced over experiences (each holding its two classes).
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class ReplayParams:
    """Args: mem_size: buffer size in samples (total over all classes); mem_bytes: budget in bytes of
    raw inputs (0 = unused), converted with the scenario's sample_bytes: the tighter of the two wins
    (for comparisons with feature replay at equal memory in bytes)."""

    mem_size: int = 4400
    mem_bytes: int = 0

    def __post_init__(self) -> None:
        check(self.mem_size >= 1, "mem_size must be >= 1 (a buffer of 0 is naive; use 'naive')")
        check(self.mem_bytes >= 0, "mem_bytes must be >= 0 (0 = no byte budget)")

    def replay_plugin(self, ctx: StrategyContext):
        """ReplayPlugin with a class-balanced (class-IL) or experience-balanced buffer of these options."""
        from avalanche.training.plugins import ReplayPlugin
        from avalanche.training.storage_policy import ClassBalancedBuffer, ExperienceBalancedBuffer

        size = min(self.mem_size, self.mem_bytes // ctx.info.sample_bytes) if self.mem_bytes else self.mem_size
        check(size >= 1, f"mem_bytes {self.mem_bytes} holds no sample of {ctx.info.sample_bytes} bytes")
        if ctx.info.setting == "class_il":
            policy = ClassBalancedBuffer(max_size=size, adaptive_size=True)
        else:
            policy = ExperienceBalancedBuffer(max_size=size, adaptive_size=True)
        return ReplayPlugin(mem_size=size, storage_policy=policy)


@register("replay", params=ReplayParams)
def build(ctx: StrategyContext, p: ReplayParams):
    """Naive + ReplayPlugin(ClassBalancedBuffer | ExperienceBalancedBuffer)."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[p.replay_plugin(ctx)])
