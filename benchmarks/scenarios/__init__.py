"""Registered scenarios. Importing this package registers every scenario module listed here."""

from benchmarks.core import SETTINGS, ScenarioInfo
from benchmarks.scenarios import (
    split_mnist,  # noqa: F401  (registers split_mnist_*)
    split_text,  # noqa: F401  (registers split_text_*)
    synthetic,  # noqa: F401  (registers synthetic_*, for tests)
    text_protocols,  # noqa: F401  (registers clinc150_vag_*, banking77_vag_*, ...: the literature's splits)
)
from benchmarks.scenarios.base import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "SETTINGS", "Scenario", "ScenarioInfo", "build_scenario"]


def build_scenario(name: str, params, *, seed: int) -> Scenario:
    """Build registered scenario ``name`` with its params dataclass for a run seed."""
    entry = SCENARIOS.get(name)
    return entry.builder(params, seed=seed, name=name, setting=entry.meta["setting"])
