"""What a strategy keeps between experiences, read from its plugins (and itself) after a run.

``replay_memory``: past data, in samples and in the bytes a real buffer needs to store them (the rule
is benchmarks/core/storage.py, applied to every buffer alike: ``ScenarioInfo.record_bytes`` per raw
example, plus DER's stored logits). ``extra_state``: the other tensors plugins keep between
experiences (EWC's importances and anchor weights, SI, MAS, L2's anchor, copies of a previous model
in LwF, iCaRL and BiC, GEM's per-task gradients, the initial weights Joint and GDumb reset to).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from benchmarks.core import ScenarioInfo
from benchmarks.core.storage import FLOAT32_BYTES


def _logits_bytes(buffer: Any) -> int:
    """Bytes of the logits a DER buffer stores with its samples (float32 x outputs each), else 0."""
    if not len(buffer) or "logits" not in getattr(buffer, "_data_attributes", {}):
        return 0
    return len(buffer) * buffer.logits[0].numel() * FLOAT32_BYTES


def _held(obj: Any) -> tuple[int, int] | None:
    """(samples, extra bytes such as DER's logits) of past data held by a known Avalanche memory in
    ``obj`` (a plugin or a strategy), or None if it holds none of them."""
    parts = []
    policy = getattr(obj, "storage_policy", None)  # ReplayPlugin, GDumbPlugin, BiCPlugin, DER, ER_AML
    if policy is not None and hasattr(policy, "buffer"):
        parts.append((len(policy.buffer), _logits_bytes(policy.buffer)))
    val = getattr(obj, "val_buffer", None)  # BiC: held-out past samples that fit its bias layer
    if isinstance(val, dict):
        parts.append((sum(len(b.buffer) for b in val.values()), 0))
    memory_x = getattr(obj, "memory_x", None)  # GEMPlugin: {task: (n, ...) inputs}
    if isinstance(memory_x, dict):
        parts.append((sum(len(x) for x in memory_x.values()), 0))
    x_memory = getattr(obj, "x_memory", None)  # iCaRL's _ICaRLPlugin: one exemplar tensor per class
    if isinstance(x_memory, list):
        parts.append((sum(len(x) for x in x_memory), 0))
    if type(obj).__name__ == "AGEMPlugin":
        parts.append((sum(len(d) for d in obj.buffers), 0))
    if not parts:
        return None
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _holders(strategy: Any) -> Iterator[Any]:
    yield from getattr(strategy, "plugins", [])
    yield strategy  # strategies holding their own buffer (DER, ER_AML)


def replay_memory(strategy: Any, info: ScenarioInfo, last_experience_size: int = 0) -> dict[str, int]:
    """{"samples", "bytes"} of stored past data.

    Args:
        strategy: the trained Avalanche strategy.
        info: the scenario; each raw example costs ``info.record_bytes`` (input + label).
        last_experience_size: samples of the last experience (Cumulative/Joint keep all data: counted
            as the samples of the experiences before the last one).

    Plugins that know their own footprint (clbench's feature replay) implement ``memory_usage()``
    returning (samples, bytes) by the same rule.
    """
    samples, nbytes = 0, 0
    for holder in _holders(strategy):
        if hasattr(holder, "memory_usage"):
            s, b = holder.memory_usage()
        else:
            n, extra = _held(holder) or (0, 0)
            s, b = n, n * info.record_bytes + extra
        samples, nbytes = samples + s, nbytes + b
    if type(strategy).__name__.endswith("Cumulative") and getattr(strategy, "dataset", None) is not None:
        n = len(strategy.dataset) - last_experience_size
        samples, nbytes = samples + n, nbytes + n * info.record_bytes
    return {"samples": int(samples), "bytes": int(nbytes)}


#: Plugin attributes that hold past data (counted by ``replay_memory``, not as extra state).
DATA_ATTRIBUTES = ("memory_x", "memory_y", "memory_tid", "x_memory", "y_memory", "buffer", "storage_policy")


def extra_state(strategy: Any) -> dict[str, int]:
    """{"parameters", "bytes"}: tensors that plugins keep besides past data (see the module docstring),
    the live model's own parameters excluded; each tensor counted once, in its own dtype.

    Tensors are found in the plugin's attributes, inside dicts/lists/tuples, Avalanche ParamData and
    nn.Modules (and one level into Avalanche helper objects such as LwF's); datasets are not walked.
    """
    import torch

    model = getattr(strategy, "model", None)
    live = model.state_dict(keep_vars=True).values() if isinstance(model, torch.nn.Module) else ()
    seen = {t.data_ptr() for t in live}
    numel, nbytes = 0, 0
    for plugin in getattr(strategy, "plugins", []):
        state = {k: v for k, v in vars(plugin).items() if k not in DATA_ATTRIBUTES}
        for t in _tensors(state, depth=0):
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                numel, nbytes = numel + t.numel(), nbytes + t.numel() * t.element_size()
    return {"parameters": int(numel), "bytes": int(nbytes)}


def _tensors(value: Any, depth: int) -> Iterator[Any]:
    """Tensors reachable from ``value`` (see ``extra_state``)."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.numel():
            yield value
    elif isinstance(value, torch.nn.Module):
        yield from (t for t in value.state_dict(keep_vars=True).values() if t.numel())
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v, depth)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v, depth)
    elif type(value).__name__ == "ParamData":
        yield from _tensors(value.data, depth)
    elif depth < 1 and type(value).__module__.startswith("avalanche.training.regularization"):
        yield from _tensors(vars(value), depth + 1)
