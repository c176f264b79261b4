"""How much past data a strategy keeps: samples and bytes, read from its plugins after a run."""

from __future__ import annotations

from typing import Any


def _buffer_len(plugin: Any) -> int | None:
    """Samples held by a known Avalanche memory plugin, or None if the plugin keeps no data."""
    for attr in ("storage_policy", "storage_policy_buffer"):
        policy = getattr(plugin, attr, None)
        if policy is not None and hasattr(policy, "buffer"):
            return len(policy.buffer)
    name = type(plugin).__name__
    if name == "GEMPlugin":
        return sum(len(x) for x in plugin.memory_x.values())
    if name == "AGEMPlugin":
        return sum(len(d) for d in plugin.buffers)
    if name == "GDumbPlugin" and plugin.ext_mem:
        return sum(len(d) for d in plugin.ext_mem.values())
    return None


def replay_memory(strategy: Any, sample_bytes: int, last_experience_size: int = 0) -> dict[str, int]:
    """{"samples", "bytes"} of stored past data.

    Plugins that know their own footprint (clbench's feature replay) implement ``memory_usage()``
    returning (samples, bytes); raw-data buffers count ``sample_bytes`` per stored input.
    Cumulative/Joint keep all past data: counted as the samples of earlier experiences.
    """
    samples, nbytes = 0, 0
    for plugin in getattr(strategy, "plugins", []):
        if hasattr(plugin, "memory_usage"):
            s, b = plugin.memory_usage()
            samples, nbytes = samples + s, nbytes + b
            continue
        n = _buffer_len(plugin)
        if n:
            samples, nbytes = samples + n, nbytes + n * sample_bytes
    n = _buffer_len(strategy)  # strategies holding their own buffer (DER)
    n = n or sum(len(x) for x in getattr(strategy, "x_memory", None) or [])  # iCaRL exemplars
    samples, nbytes = samples + n, nbytes + n * sample_bytes
    if type(strategy).__name__.endswith("Cumulative") and getattr(strategy, "dataset", None) is not None:
        n = len(strategy.dataset) - last_experience_size
        samples, nbytes = samples + n, nbytes + n * sample_bytes
    return {"samples": int(samples), "bytes": int(nbytes)}
