"""Transformer feature (latent) replay (clbench; cf. Pellegrini et al. 2020's latent replay, AR1).

Stores hidden states of layer k of a class-balanced sample of past data and replays them through the
blocks above k, which are the only ones still trained after the first experience
(strategies/plugins/feature_replay.py). The memory is bounded in samples and in bytes.
"""

from dataclasses import dataclass
from typing import Literal

from benchmarks.core import check
from strategies.base import StrategyContext, register
from strategies.plugins.feature_replay import FeatureReplayPlugin


@dataclass(frozen=True)
class FeatureReplayParams:
    """Feature replay options.

    Args:
        split_layer: k, the layer whose hidden states are stored; negative counts from the top
            (-1 = n_layers - 1: only the last block, pooling and head keep training).
        store: "tokens" (token states (L, D) + mask at layer k) or "pooled" (pooled (D,) vectors:
            only the head trains and replays; split_layer is then ignored).
        mem_size: most stored samples (4400, the larger of Hsu et al.'s raw-replay sizes).
        mem_bytes: most bytes of stored hidden states, masks and labels (0 = no byte limit); the tighter
            wins. Counted like raw replay's (benchmarks/core/storage.py).
        dtype: storage precision, "fp32" or "fp16" (fp16 halves the bytes of hidden states).
        freeze_from_start: freeze below k before the first experience (for a pretrained backbone).
        train_lower: never freeze below k: the embedding and blocks < k keep training on current data
            while the stored states go stale (an ablation; Pellegrini et al. 2020 slow these layers
            down or freeze them, as the default does after the first experience).
    """

    split_layer: int = -1
    store: Literal["tokens", "pooled"] = "tokens"
    mem_size: int = 4400
    mem_bytes: int = 0
    dtype: Literal["fp32", "fp16"] = "fp32"
    freeze_from_start: bool = False
    train_lower: bool = False

    def __post_init__(self) -> None:
        check(self.mem_size >= 1, "mem_size must be >= 1")
        check(not (self.freeze_from_start and self.train_lower),
              "freeze_from_start and train_lower contradict each other: set at most one")
        check(self.mem_bytes >= 0, "mem_bytes must be >= 0 (0 = no byte limit)")

    def replay_plugin(self, seed: int, label_bytes: int = 0) -> FeatureReplayPlugin:
        """The plugin for these options, seeded by the run seed; ``label_bytes``: ScenarioInfo.label_bytes."""
        return FeatureReplayPlugin(
            layer=self.split_layer, store=self.store, mem_size=self.mem_size, mem_bytes=self.mem_bytes,
            dtype=self.dtype, freeze_from_start=self.freeze_from_start, train_lower=self.train_lower,
            seed=seed, label_bytes=label_bytes,
        )


@register("feature_replay", params=FeatureReplayParams, needs_transformer=True)
def build(ctx: StrategyContext, p: FeatureReplayParams):
    """Naive + FeatureReplayPlugin."""
    from avalanche.training import Naive

    return ctx.template(Naive, plugins=[p.replay_plugin(ctx.seed, ctx.info.label_bytes)])
