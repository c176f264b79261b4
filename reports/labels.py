"""Names a reader outside the project understands, and a fixed visual style per strategy.

Every figure takes a strategy's colour, marker, line style and hatch from ``strategy_style``, a
function of the strategy name alone, so a strategy looks the same in every figure and every report.
Markers, line styles and hatches keep the figures readable when printed in greyscale.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from benchmarks.metrics import METRIC_INFO

__all__ = [
    "SETTING_NAMES",
    "scenario_display",
    "strategy_display",
    "metric_label",
    "StrategyStyle",
    "strategy_style",
]

SETTING_NAMES = {
    "class_il": "class-incremental",
    "task_il": "task-incremental",
    "domain_il": "domain-incremental",
}
# Settings in the order the literature usually lists them (Hsu et al. 2018, van de Ven 2019).
SETTING_ORDER = ("task_il", "domain_il", "class_il")

FAMILY_NAMES = {
    "split_mnist": "Split-MNIST",
    "permuted_mnist": "Permuted-MNIST",
    "rotated_mnist": "Rotated-MNIST",
    "split_fmnist": "Split-Fashion-MNIST",
    "split_cifar10": "Split-CIFAR-10",
    "split_cifar100": "Split-CIFAR-100",
    "clinc150": "CLINC150",
    "split_clinc150": "Split-CLINC150",
}

STRATEGY_NAMES = {
    "naive": "Naive (fine-tuning)",
    "sgd_naive": "Naive (SGD)",
    "joint": "Joint (offline)",
    "cumulative": "Cumulative",
    "replay": "Replay",
    "l2": "L2",
    "ewc": "EWC",
    "online_ewc": "Online EWC",
    "si": "SI",
    "mas": "MAS",
    "lwf": "LwF",
    "gem": "GEM",
    "agem": "A-GEM",
    "der": "DER",
    "gdumb": "GDumb",
    "icarl": "iCaRL",
    "er_ace": "ER-ACE",
    "rwalk": "RWalk",
}


def family_of(scenario: str, setting: str | None) -> str:
    """The scenario name without its setting suffix, e.g. split_mnist_class_il -> split_mnist."""
    suffix = f"_{setting}" if setting else ""
    return scenario[: -len(suffix)] if suffix and scenario.endswith(suffix) else scenario


def scenario_display(scenario: str, setting: str | None) -> str:
    """Display name, e.g. ("split_mnist_class_il", "class_il") -> "Split-MNIST, class-incremental"."""
    family = family_of(scenario, setting)
    name = FAMILY_NAMES.get(family, family.replace("_", " "))
    setting_name = SETTING_NAMES.get(setting or "", setting)
    return f"{name}, {setting_name}" if setting_name else name


def strategy_display(strategy: str) -> str:
    """Display name; composed strategies ("a+b") join the parts' names with " + "."""
    return " + ".join(STRATEGY_NAMES.get(part, part) for part in strategy.split("+"))


def metric_label(metric: str) -> str:
    """Short label of a metric from benchmarks.metrics.METRIC_INFO (the metric key otherwise)."""
    return METRIC_INFO[metric][0] if metric in METRIC_INFO else metric


@dataclass(frozen=True)
class StrategyStyle:
    """How one strategy is drawn: colour, marker, line style (matplotlib spec) and bar hatch."""

    color: str
    marker: str
    linestyle: str | tuple
    hatch: str


# Okabe-Ito colour-blind-safe palette (without its yellow, too pale on white) plus a few darker hues.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
           "#882255", "#999933", "#44AA99", "#AA4499", "#661100", "#332288")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
HATCHES = ("", "//", "\\\\", "xx", "..", "oo", "++", "--", "**", "||", "O.", "/o")
# Fixed slots for known strategies; baselines get black (joint, upper bound) and grey (naive).
KNOWN_SLOTS = ("replay", "ewc", "si", "mas", "online_ewc", "lwf", "gem", "l2",
               "agem", "der", "gdumb", "icarl")
SPECIAL = {
    "joint": StrategyStyle("#000000", "*", "-", "//"),
    "naive": StrategyStyle("#7F7F7F", "x", ":", "xx"),
    "sgd_naive": StrategyStyle("#BBBBBB", "+", ":", "++"),
    "cumulative": StrategyStyle("#444444", "h", "--", ".."),
}


def strategy_style(strategy: str) -> StrategyStyle:
    """The fixed style of a strategy; unknown names get a slot from a stable hash of the name."""
    if strategy in SPECIAL:
        return SPECIAL[strategy]
    if strategy in KNOWN_SLOTS:
        slot = KNOWN_SLOTS.index(strategy)
    else:
        slot = zlib.crc32(strategy.encode()) % 997
    return StrategyStyle(
        PALETTE[slot % len(PALETTE)],
        MARKERS[(slot + slot // len(PALETTE)) % len(MARKERS)],
        LINESTYLES[slot % len(LINESTYLES)],
        HATCHES[slot % len(HATCHES)],
    )
