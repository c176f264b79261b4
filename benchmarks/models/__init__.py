"""Registered models. Importing this package registers every model module listed here."""

from benchmarks.models import (
    hf_encoder,  # noqa: F401
    minilm,  # noqa: F401
    mlp,  # noqa: F401
    text_transformer,  # noqa: F401
    vit,  # noqa: F401
)
from benchmarks.models.base import MODELS

__all__ = ["MODELS", "build_model"]


def build_model(name: str, params, info):
    """Build registered model ``name`` for a scenario (its input shape, heads, setting)."""
    from benchmarks.models.heads import make_task_aware

    model = MODELS.get(name).builder(params, info)
    return make_task_aware(model) if info.multi_head else model
