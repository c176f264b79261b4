"""Strategy registry and the context every strategy factory receives.

A strategy is one file with a frozen params dataclass (its documented defaults and their source)
and a short factory registered with ``@STRATEGIES.register(name, params=..., settings=...)`` that
composes an Avalanche template with plugins: ``ctx.template(Naive, plugins=[...])``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchmarks.core import SETTINGS, Registry, ScenarioInfo, check

#: name -> factory(ctx, params) -> Avalanche template. Metadata:
#:   settings: tuple of settings the strategy applies to (others are refused with ``why_not``);
#:   why_not: explanation shown when a setting is refused;
#:   per_setting: {setting: {param: value}} defaults that differ by setting (e.g. Hsu et al.'s lambdas);
#:   needs_transformer: the model must expose attention maps / hidden states.
STRATEGIES: Registry = Registry("strategy")
ALL_SETTINGS: tuple[str, ...] = SETTINGS


class StrategyNotApplicable(ValueError):
    """A strategy cannot run in a scenario (e.g. PNN needs task labels)."""


OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "adagrad")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every strategy of a run.

    Args:
        epochs: training epochs per experience.
        batch_size: training mini-batch size.
        eval_batch_size: evaluation mini-batch size (Avalanche defaults to 1 in places: always set).
        optimizer: "adam", "sgd" or "adagrad" (Hsu et al. 2018's third optimiser baseline).
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay of the optimizer.
        fast_data: serve mini-batches by slicing tensors instead of Avalanche's per-sample DataLoader.
    """

    epochs: int = 1
    batch_size: int = 128
    eval_batch_size: int = 1000
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    fast_data: bool = True

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "epochs must be >= 1")
        check(self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be >= 1")
        check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}")
        check(self.lr > 0, "lr must be > 0")
        check(self.momentum >= 0 and self.weight_decay >= 0, "momentum and weight_decay must be >= 0")


@dataclass
class StrategyContext:
    """What a strategy factory may use: the model, the scenario description and runner services.

    Attributes:
        model: the freshly initialised model (already seeded).
        info: scenario description (setting, outputs, input shape).
        train: optimisation settings.
        device: torch device of the run.
        evaluator: Avalanche EvaluationPlugin that the runner reads the accuracy matrix from.
        plugins: runner plugins (e.g. the non-finite-loss guard) every template must include.
        seed: the run seed.
        wrap_template: applied to every template class before it is built (the runner passes the fast
            data path's ``fast_template`` when ``train.fast_data`` is on); strategies never import it.
    """

    model: nn.Module
    info: ScenarioInfo
    train: TrainConfig
    device: torch.device
    evaluator: Any
    plugins: list = field(default_factory=list)
    seed: int = 0
    wrap_template: Callable[[type], type] | None = None

    def optimizer(self, params: Any = None) -> torch.optim.Optimizer:
        """A fresh optimizer over ``params`` (default: the context model's parameters)."""
        params = self.model.parameters() if params is None else params
        t = self.train
        if t.optimizer == "sgd":
            return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
        if t.optimizer == "adagrad":
            return torch.optim.Adagrad(params, lr=t.lr, weight_decay=t.weight_decay)
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)

    def template(
        self,
        cls: type,
        *,
        plugins: Sequence = (),
        model: nn.Module | None = None,
        omit_model: bool = False,
        **kwargs: Any,
    ):
        """Instantiate Avalanche template/strategy ``cls`` with the run's common arguments.

        Args:
            cls: an Avalanche strategy class (Naive, EWC, Replay, ...).
            plugins: extra plugins of this strategy (the runner's plugins are appended).
            model: a model other than the context's (e.g. PNN builds its own).
            omit_model: do not pass ``model=`` (templates built from parts, e.g. iCaRL); the
                optimizer still covers ``model``'s parameters.
            kwargs: strategy-specific arguments; ``criterion=None`` passes no criterion. When the
                scenario asks for ``loss_on_seen_classes``, the criterion is wrapped in SeenClassesLoss
                (strategies/plugins/seen_classes.py), so every strategy built here trains with it.
        """
        model = self.model if model is None else model
        if self.wrap_template is not None:
            cls = self.wrap_template(cls)
        if not omit_model:
            kwargs["model"] = model
        if kwargs.setdefault("criterion", nn.CrossEntropyLoss()) is None:
            check(not self.info.loss_on_seen_classes,
                  f"{cls.__name__} has a built-in loss: loss_on_seen_classes cannot apply; remove it or the strategy")
            del kwargs["criterion"]  # templates with a built-in loss (iCaRL) take none
        elif self.info.loss_on_seen_classes:
            from strategies.plugins.seen_classes import SeenClassesLoss

            kwargs["criterion"] = SeenClassesLoss(kwargs["criterion"])
        return cls(
            optimizer=self.optimizer(model.parameters()),
            train_mb_size=self.train.batch_size,
            train_epochs=self.train.epochs,
            eval_mb_size=self.train.eval_batch_size,
            device=self.device,
            evaluator=self.evaluator,
            plugins=[*plugins, *self.plugins],
            **kwargs,
        )


class FeatureView(nn.Module):
    """A model's feature extractor as a module sharing its parameters (``model.features(x) -> (B, D)``).

    For Avalanche strategies built from parts (iCaRL, ER-AML) that take a feature extractor.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def with_task_labels(base: type) -> type:
    """``base`` (an Avalanche template) whose forward passes the task labels to a wrapper model that is
    not a MultiTaskModule (``model(mb_x, mb_task_id)``), e.g. modular_lora's and l2p's."""

    class TaskLabelsTemplate(base):
        def forward(self):
            return self.model(self.mb_x, self.mb_task_id)

    return TaskLabelsTemplate


def register(
    name: str,
    *,
    params: type,
    settings: Sequence[str] = ALL_SETTINGS,
    why_not: str = "",
    per_setting: dict[str, dict[str, Any]] | None = None,
    needs_transformer: bool = False,
) -> Callable:
    """Register a strategy factory; see STRATEGIES for the meaning of each argument."""
    return STRATEGIES.register(
        name,
        params=params,
        settings=tuple(settings),
        why_not=why_not,
        per_setting=per_setting or {},
        needs_transformer=needs_transformer,
    )


def check_applicable(name: str, setting: str, model_is_transformer: bool) -> None:
    """Raise StrategyNotApplicable with the reason when ``name`` cannot run in ``setting``."""
    meta = STRATEGIES.get(name).meta
    if setting not in meta["settings"]:
        why = meta["why_not"] or f"it supports only {', '.join(meta['settings'])}"
        raise StrategyNotApplicable(f"strategy {name!r} does not apply to {setting}: {why}")
    if meta["needs_transformer"] and not model_is_transformer:
        raise StrategyNotApplicable(
            f"strategy {name!r} needs a Transformer model (attention maps, hidden states); "
            "choose model 'vit' or a text Transformer for this scenario"
        )
