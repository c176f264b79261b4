"""The field's standard split-MNIST model: an MLP with two hidden layers of 400 ReLU units."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.core import ScenarioInfo
from benchmarks.core.typed import check
from benchmarks.models.base import MODELS
from benchmarks.models.heads import HeadedModel, make_head


@dataclass(frozen=True)
class MLPParams:
    """MLP options (Hsu et al. 2018 / van de Ven & Tolias 2019: 2 hidden layers of 400).

    Args:
        hidden: units per hidden layer.
        layers: number of hidden layers.
        dropout: dropout after each hidden layer (0 = none).
    """

    hidden: int = 400
    layers: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check(self.hidden > 0 and self.layers > 0, "hidden and layers must be positive")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")


class MLP(HeadedModel):
    """Flatten -> [Linear -> ReLU] x layers -> head (single or one per task)."""

    def __init__(self, in_features: int, params: MLPParams, info: ScenarioInfo) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(params.layers):
            blocks += [nn.Linear(width, params.hidden), nn.ReLU()]
            if params.dropout:
                blocks.append(nn.Dropout(params.dropout))
            width = params.hidden
        self.trunk = nn.Sequential(*blocks)
        self.head = make_head(width, info)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)  # (B, hidden)


@MODELS.register("mlp", params=MLPParams, modality="any", transformer=False)
def build_mlp(params: MLPParams, info: ScenarioInfo) -> nn.Module:
    """Standard MLP on flattened inputs."""
    return MLP(math.prod(info.input_shape), params, info)
