"""The small core that strategies (and every other part) may import: registry, typed params, settings.

Nothing here imports torch or Avalanche; everything else of ``benchmarks`` builds on it.
"""

from benchmarks.core.registry import Entry, Registry
from benchmarks.core.settings import SETTINGS, ScenarioInfo, Setting
from benchmarks.core.typed import ConfigError, build, check, coerce, to_dict

__all__ = ["SETTINGS", "ConfigError", "Entry", "Registry", "ScenarioInfo", "Setting", "build", "check", "coerce",
           "to_dict"]
