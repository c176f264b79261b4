"""Registered models. Importing this package registers every model module listed here."""

from benchmarks.models.base import MODELS
from benchmarks.models import mlp  # noqa: F401

__all__ = ["MODELS", "build_model"]


def build_model(name: str, params, info):
    """Build registered model ``name`` for a scenario (its input shape, heads, setting)."""
    return MODELS.get(name).builder(params, info)
