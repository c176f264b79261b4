"""Scenario registry and the description of a built scenario that models and strategies read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.core.registry import Registry
from benchmarks.core.settings import SETTINGS, ScenarioInfo, Setting  # noqa: F401  (re-exported)

#: name -> builder(params, *, seed) -> Scenario. Metadata: setting, family, default_model.
SCENARIOS: Registry = Registry("scenario")


@dataclass
class Scenario:
    """A built scenario: the Avalanche benchmark (train/test streams) and its description."""

    benchmark: Any
    info: ScenarioInfo
