"""Names a reader outside the project understands, and a fixed visual style per strategy.

Every figure takes a strategy's colour, marker, line style and hatch from ``strategy_style``, a
function of the strategy name alone, so a strategy looks the same in every figure and every report.
Markers, line styles and hatches keep the figures readable when printed in greyscale.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from benchmarks.results.metrics import METRIC_INFO

__all__ = [
    "SETTING_NAMES",
    "StrategyStyle",
    "metric_label",
    "scenario_display",
    "strategy_display",
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
    "split_text": "Split-text (intent classification)",
    "clinc150": "CLINC150",
    "synthetic": "Synthetic",
}

STRATEGY_NAMES = {
    "naive": "Naive (fine-tuning)",
    "naive_sgd": "Naive (SGD)",
    "naive_adagrad": "Naive (Adagrad)",
    "replay_1100": "Replay (1100 samples)",
    "replay_4400": "Replay (4400 samples)",
    "gem_1100": "GEM (1100 samples)",
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
    "pnn": "PNN",
    "bic": "BiC",
    "er_aml": "ER-AML",
    "attn_reg": "Attention reg.",
    "feature_replay": "Feature replay",
    "moe_adapters": "MoE-Adapters",
    "olora": "O-LoRA",
    # suite aliases with head = "frozen_rows" (class-IL): the default rows' shared head trains as naive's
    "moe_adapters_frozen_head": "MoE-Adapters (frozen-row head)",
    "olora_frozen_head": "O-LoRA (frozen-row head)",
}

#: suffixes a suite adds to a scenario name to tell models apart (split_mnist_class_il_vit)
VARIANT_NAMES = {"vit": "ViT", "mlp": "MLP", "minilm": "MiniLM", "transformer": "Transformer"}


def family_of(scenario: str, setting: str | None) -> str:
    """The scenario name without its setting suffix, e.g. split_mnist_class_il -> split_mnist."""
    suffix = f"_{setting}" if setting else ""
    return scenario[: -len(suffix)] if suffix and scenario.endswith(suffix) else scenario


def scenario_display(scenario: str, setting: str | None) -> str:
    """Display name, e.g. ("split_mnist_class_il", "class_il") -> "Split-MNIST, class-incremental"."""
    family, variant = family_of(scenario, setting), ""
    token = f"_{setting}_" if setting else ""
    if token and token in scenario and family == scenario:  # e.g. split_mnist_class_il_vit
        family, _, rest = scenario.partition(token)
        variant = " (" + " ".join(VARIANT_NAMES.get(w, w) for w in rest.split("_")) + ")"
    name = FAMILY_NAMES.get(family, family.replace("_", " ")) + variant
    setting_name = SETTING_NAMES.get(setting or "", setting)
    return f"{name}, {setting_name}" if setting_name else name


def strategy_display(strategy: str) -> str:
    """Display name; composed strategies ("a+b") join the parts' names with " + "."""
    return " + ".join(STRATEGY_NAMES.get(part, part) for part in strategy.split("+"))


def metric_label(metric: str) -> str:
    """Short label of a metric from benchmarks.results.metrics.METRIC_INFO (the metric key otherwise)."""
    return METRIC_INFO[metric][0] if metric in METRIC_INFO else metric


@dataclass(frozen=True)
class StrategyStyle:
    """How one strategy is drawn: colour, marker, line style (matplotlib spec) and bar hatch."""

    color: str
    marker: str
    linestyle: str | tuple
    hatch: str


# Hand-picked styles for strategies the literature uses as baselines; colours from the Okabe-Ito
# colour-blind-safe palette and Tol's palettes; the baselines are black (joint: upper bound) and grey
# (naive: lower bound). Hatch strings combine matplotlib hatch characters.
KNOWN_STYLES = {
    "joint": StrategyStyle("#000000", "*", "-", ""),
    "naive": StrategyStyle("#7F7F7F", "x", ":", "xx"),
    "naive_sgd": StrategyStyle("#BBBBBB", "+", ":", "++"),
    "cumulative": StrategyStyle("#444444", "h", "--", "oo"),
    "naive_adagrad": StrategyStyle("#555555", "1", ":", ".."),
    "replay": StrategyStyle("#0072B2", "o", "-", "//"),
    "replay_1100": StrategyStyle("#0072B2", "8", "-", "//"),
    "replay_4400": StrategyStyle("#004488", "h", "--", "//\\\\"),
    "gem_1100": StrategyStyle("#AA3377", "X", "--", "/."),
    "ewc": StrategyStyle("#D55E00", "s", "--", "\\\\"),
    "si": StrategyStyle("#009E73", "^", "-.", ".."),
    "mas": StrategyStyle("#CC79A7", "D", ":", "||"),
    "online_ewc": StrategyStyle("#E69F00", "v", (0, (5, 1)), "--"),
    "lwf": StrategyStyle("#56B4E9", "P", (0, (3, 1, 1, 1, 1, 1)), "O."),
    "gem": StrategyStyle("#882255", "X", "-", "/."),
    "l2": StrategyStyle("#999933", "<", "--", "*"),
    "agem": StrategyStyle("#44AA99", ">", "-.", "\\."),
    "der": StrategyStyle("#AA4499", "p", ":", "x."),
    "gdumb": StrategyStyle("#661100", "H", "-", "-."),
    "icarl": StrategyStyle("#332288", "d", "--", "|."),
}
# Unknown strategies draw from colours no known strategy uses, so they never look like a baseline.
EXTRA_COLORS = (
    "#CC6677",
    "#117733",
    "#6699CC",
    "#997700",
    "#EE7733",
    "#33BBEE",
    "#EE3377",
    "#004488",
    "#994455",
    "#DDAA33",
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p", "d", "H")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
HATCHES = ("", "//", "\\\\", "xx", "..", "oo", "++", "--", "||", "**", "O.", "/.")


def _pick(name: str, salt: str, options: tuple):
    """A stable choice from ``options`` for ``name`` (crc32, not Python's randomized hash)."""
    return options[zlib.crc32(f"{salt}:{name}".encode()) % len(options)]


def strategy_style(strategy: str) -> StrategyStyle:
    """The fixed style of a strategy; unknown names get one from stable hashes of the name.

    Two unknown strategies can share a colour; colour, marker, line style and hatch are hashed
    independently, so they almost never share all four.
    """
    if strategy in KNOWN_STYLES:
        return KNOWN_STYLES[strategy]
    return StrategyStyle(
        _pick(strategy, "color", EXTRA_COLORS),
        _pick(strategy, "marker", MARKERS),
        _pick(strategy, "linestyle", LINESTYLES),
        _pick(strategy, "hatch", HATCHES),
    )
