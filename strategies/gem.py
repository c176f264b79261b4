"""Gradient Episodic Memory (Lopez-Paz & Ranzato 2017). Needs the `quadprog` QP solver.

Hsu et al. 2018 run GEM with SGD lr 0.01 and margin (memory_strength) 0.5. Two memories:

- ``memory_size = 0`` (default): Avalanche's GEMPlugin, ``patterns_per_exp`` samples stored per
  experience (the first of a shuffled pass); default 880, i.e. 4400 in total for 5 experiences.
- ``memory_size > 0``: Hsu et al.'s GEM agent (GT-RIPL/Continual-Learning-Benchmark,
  agents/exp_replay.py): ``memory_size`` samples in total, split as ``memory_size // experiences seen``
  per experience (older parts shrink, random samples; strategies/plugins/rehearsal.py), each part's
  reference gradient computed on all its samples. Their GEM_1100/GEM_4400 agents also inherit Naive
  rehearsal's training on the memory concatenated to the data: ``concat_memory = true`` (their
  GEM_orig_* agents skip it).
"""

from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class GEMParams:
    """Args: patterns_per_exp: memory per experience (used when memory_size = 0); memory_strength: QP
    margin (>= 0); memory_size: total memory split evenly over the experiences seen (Hsu et al.; 0 =
    patterns_per_exp per experience); concat_memory: also train on the memory concatenated to each
    experience's data (Hsu et al.'s GEM_1100; needs memory_size)."""

    patterns_per_exp: int = 880
    memory_strength: float = 0.5
    memory_size: int = 0
    concat_memory: bool = False

    def __post_init__(self) -> None:
        check(self.patterns_per_exp >= 1, "patterns_per_exp must be >= 1")
        check(self.memory_strength >= 0, "memory_strength must be >= 0")
        check(self.memory_size >= 0, "memory_size must be >= 0 (0 = patterns_per_exp per experience)")
        check(not self.concat_memory or self.memory_size > 0,
              "concat_memory needs memory_size > 0 (the memory Hsu et al. split over experiences)")


@register("gem", params=GEMParams)
def build(ctx: StrategyContext, p: GEMParams):
    """Naive + GEMPlugin (fails early with an install hint if quadprog is missing)."""
    from avalanche.training import Naive
    from avalanche.training.plugins import GEMPlugin

    try:
        import quadprog  # noqa: F401  (qpsolvers installs no solver by default)
    except ImportError as exc:
        raise ImportError("GEM needs the QP solver 'quadprog': pip install quadprog") from exc
    if p.memory_size == 0:
        plugin = GEMPlugin(patterns_per_experience=p.patterns_per_exp, memory_strength=p.memory_strength)
        return ctx.template(Naive, plugins=[plugin])
    from strategies.plugins.rehearsal import ConcatRehearsalPlugin, SplitMemoryGEMPlugin, TaskSplitMemory

    check(p.memory_size >= ctx.info.n_experiences,
          f"memory_size {p.memory_size} < {ctx.info.n_experiences} experiences: a part would be empty")
    memory = TaskSplitMemory(p.memory_size)
    plugins = [SplitMemoryGEMPlugin(memory, memory_strength=p.memory_strength, sample_bytes=ctx.info.record_bytes)]
    if p.concat_memory:  # the GEM plugin fills the memory; the rehearsal plugin only replays it
        plugins.insert(0, ConcatRehearsalPlugin(memory, update=False))
    return ctx.template(Naive, plugins=plugins)
