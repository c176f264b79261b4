"""Experience replay with a class-balanced buffer (Hsu et al. 2018 "Naive rehearsal"; Chaudhry 2019).

Default memory 4400 samples in total (the larger of Hsu et al.'s two sizes; 1100 is the other).
``mode = "batch"`` (default): Avalanche's ReplayPlugin, every mini-batch is batch_size current samples
plus batch_size buffer samples; class-IL balances the buffer over classes; task-IL and domain-IL relabel
every pair to 0/1, so there the buffer is balanced over experiences (each holding its two classes).
``mode = "concat"``: Hsu et al.'s own Naive_Rehearsal agent (strategies/plugins/rehearsal.py): the
memory is split evenly over the experiences seen, filled with random samples, and concatenated
(repeated to ~1:1) to each experience's training set.
"""

from dataclasses import dataclass
from typing import Literal

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class ReplayParams:
    """Args: mem_size: buffer size in samples (total over all classes); mem_bytes: budget in bytes of
    stored examples (0 = unused), converted with the scenario's record_bytes (input in its stored form
    + label, benchmarks/core/storage.py): the tighter of the two wins (for comparisons with feature
    replay at equal memory in bytes, which counts its bytes by the same rule); mode: "batch"
    (ReplayPlugin's mini-batch mixing, class/experience-balanced buffer) or "concat" (Hsu et al.'s
    Naive_Rehearsal: per-experience split of random samples, concatenated to the training set)."""

    mem_size: int = 4400
    mem_bytes: int = 0
    mode: Literal["batch", "concat"] = "batch"

    def __post_init__(self) -> None:
        check(self.mem_size >= 1, "mem_size must be >= 1 (a buffer of 0 is naive; use 'naive')")
        check(self.mem_bytes >= 0, "mem_bytes must be >= 0 (0 = no byte budget)")

    def buffer_size(self, ctx: StrategyContext) -> int:
        """Samples the buffer holds: mem_size, or fewer when mem_bytes at the scenario's record_bytes per
        sample (benchmarks/core/storage.py) holds fewer. Every raw-sample buffer converts bytes this way."""
        per_sample = ctx.info.record_bytes
        size = min(self.mem_size, self.mem_bytes // per_sample) if self.mem_bytes else self.mem_size
        check(size >= 1, f"mem_bytes {self.mem_bytes} holds no sample of {per_sample} bytes")
        return size

    def replay_plugin(self, ctx: StrategyContext):
        """The memory plugin of these options: ReplayPlugin with a class-balanced (class-IL) or
        experience-balanced buffer, or ConcatRehearsalPlugin (mode "concat")."""
        from avalanche.training.plugins import ReplayPlugin
        from avalanche.training.storage_policy import ClassBalancedBuffer, ExperienceBalancedBuffer

        per_sample = ctx.info.record_bytes
        size = self.buffer_size(ctx)
        if self.mode == "concat":
            from strategies.plugins.rehearsal import ConcatRehearsalPlugin, TaskSplitMemory

            return ConcatRehearsalPlugin(TaskSplitMemory(size), sample_bytes=per_sample)
        if ctx.info.setting == "class_il":
            policy = ClassBalancedBuffer(max_size=size, adaptive_size=True)
        else:
            policy = ExperienceBalancedBuffer(max_size=size, adaptive_size=True)
        return ReplayPlugin(mem_size=size, storage_policy=policy)


@register("replay", params=ReplayParams)
def build(ctx: StrategyContext, p: ReplayParams):
    """Naive + ReplayPlugin(ClassBalancedBuffer | ExperienceBalancedBuffer), or + ConcatRehearsalPlugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[p.replay_plugin(ctx)])
