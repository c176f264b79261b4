"""Model registry: ``builder(params, info: ScenarioInfo) -> nn.Module``."""

from __future__ import annotations

from benchmarks.core.registry import Registry

#: name -> builder(params, info). Metadata: modality ("image" | "text" | "any"), transformer (bool).
MODELS: Registry = Registry("model")
