"""Progressive Neural Networks (Rusu et al. 2016): a new column per task, lateral adapters.

Task-incremental only: the column is chosen by the task label. Column width 400 with 2 layers,
matching the standard MLP.
"""

import math
from dataclasses import dataclass

from benchmarks.core import check
from strategies.base import StrategyContext, register


@dataclass(frozen=True)
class PNNParams:
    """Args: layers: layers per column; hidden: units per column layer."""

    layers: int = 2
    hidden: int = 400

    def __post_init__(self) -> None:
        check(self.layers >= 1 and self.hidden >= 1, "layers and hidden must be >= 1")


@register(
    "pnn",
    params=PNNParams,
    settings=("task_il",),
    why_not="PNN picks a column by task label, so it needs task labels at test time (task-IL)",
)
def build(ctx: StrategyContext, p: PNNParams):
    """Avalanche PNNStrategy with its own PNN model (the scenario's model is not used)."""
    from avalanche.models import PNN
    from avalanche.training import PNNStrategy

    if ctx.info.modality != "image":
        from strategies.base import StrategyNotApplicable

        raise StrategyNotApplicable("pnn is implemented for flat image inputs only (Avalanche's MLP PNN)")
    model = PNN(num_layers=p.layers, in_features=math.prod(ctx.info.input_shape), hidden_features_per_column=p.hidden)
    return ctx.template(PNNStrategy, model=model)
