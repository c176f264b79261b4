"""Coreset replay: the replay buffer keeps chosen samples instead of random ones, at replay's memory.

Two registrations of one builder (they differ only in Avalanche's selection strategy):

* ``replay_herding``: herding (Welling 2009, as iCaRL's exemplar selection, Rebuffi et al. 2017):
  greedily add the sample that brings the mean feature of the kept samples closest to the group's
  mean feature (``HerdingSelectionStrategy``).
* ``replay_centroid``: keep the samples whose features are closest to the group's mean feature
  (``ClosestToCenterSelectionStrategy``).

The buffer is Avalanche's ``ParametricBuffer`` grouped like ``replay``'s (by class in class-IL, by
experience in task- and domain-IL, where every pair is relabelled 0/1), with the same total size (the
byte budget converted by replay's own rule, ``ReplayParams.buffer_size``: input + label bytes per sample)
and the same replay loader, so ``replay`` (random, class-balanced reservoir) is the random-selection
baseline at equal memory. Selection is per class and on L2-normalised features, as iCaRL's
(strategies/plugins/coreset.py): within an experience group of task- or domain-IL each class's share
is chosen within that class. Features are the model's pooled ``features(x)`` at the end of each
experience, computed again for the kept samples when a group is shrunk (as Avalanche does).

Cost: Avalanche's herding orders the whole group (N greedy steps over N candidates, O(N^2 D)), not
just the samples kept: negligible for CLINC150's 100 utterances per intent, minutes per class for
split-MNIST's ~6,000 images per class (a run on 50% of split-MNIST had not finished after 20 min
on the shared, loaded 2-core machine).
"""

from dataclasses import dataclass

from strategies.base import StrategyContext, register
from strategies.replay import ReplayParams


@dataclass(frozen=True)
class CoresetReplayParams(ReplayParams):
    """Args: mem_size: buffer size in samples (total); mem_bytes: byte budget of stored examples (input
    + label, 0 = unused); both as ``replay``'s, converted by its rule (default 4400, Hsu et al. 2018's
    larger memory)."""


def _build(ctx: StrategyContext, p: CoresetReplayParams, selection: str):
    """Naive + ReplayPlugin(ParametricBuffer(selection_strategy=PerClassSelection(...)))."""
    from avalanche.training import Naive
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ParametricBuffer

    from strategies.plugins.coreset import PerClassSelection

    size = p.buffer_size(ctx)  # replay's byte rule: equal memory
    groupby = "class" if ctx.info.setting == "class_il" else "experience"
    policy = ParametricBuffer(max_size=size, groupby=groupby, selection_strategy=PerClassSelection(selection, ctx.model))
    return ctx.template(Naive, plugins=[ReplayPlugin(mem_size=size, storage_policy=policy)])


@register("replay_herding", params=CoresetReplayParams)
def build_herding(ctx: StrategyContext, p: CoresetReplayParams):
    """Naive + ReplayPlugin(ParametricBuffer + HerdingSelectionStrategy)."""
    return _build(ctx, p, "herding")


@register("replay_centroid", params=CoresetReplayParams)
def build_centroid(ctx: StrategyContext, p: CoresetReplayParams):
    """Naive + ReplayPlugin(ParametricBuffer + ClosestToCenterSelectionStrategy)."""
    return _build(ctx, p, "centroid")
