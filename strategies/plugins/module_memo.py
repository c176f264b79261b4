"""Evaluation memo of per-module logits: a frozen module scores each distinct input once.

Confidence routing (lora_modules.py) scores every sample with every module, and the runner evaluates
the whole test stream after each experience: after experience i that is i + 1 module passes per test
sample, (T + 1) T / 2 over a run of T experiences, although module j < i has not changed since the
last evaluation. ``LogitMemo`` keeps module j's logits per distinct input (the bytes of the input row,
as the prefix cache keys them) under a stamp of the parameters the module's output depends on (each
one's storage pointer and in-place version counter, bumped by every optimizer step or
``load_state_dict``): a module is recomputed only when it changed, so a run costs T module passes
over the test set. Exact: a stored row is the tensor the module computed for it, returned unchanged.
Used only without gradients (evaluation); memory: C_m floats per module and distinct input.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def stamp(params: list[torch.Tensor]) -> tuple:
    """Cheap identity of parameter values (no data read): storage pointer + version counter each."""
    return tuple((p.data_ptr(), p._version) for p in params)


class LogitMemo:
    """Per module name: (stamp of its parameters, {input row bytes: logits (C_m,)})."""

    def __init__(self) -> None:
        self.store: dict[str, tuple[tuple, dict[bytes, torch.Tensor]]] = {}
        self.computed = 0  # rows a module had to score (for tests and profiling)

    def logits(self, name: str, x: torch.Tensor, params: list[torch.Tensor],
               compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Module ``name``'s logits (B, C_m) on x (B, ...): stored rows reused, the others computed
        in one batch by ``compute`` (x' -> (B', C_m)) and stored.

        Args:
            name: the module.
            x: the input batch.
            params: every parameter the module's output depends on (its stamp keys the entries).
            compute: the module's forward on a sub-batch.
        """
        key = stamp(params)
        entry = self.store.get(name)
        if entry is None or entry[0] != key:  # new module, or its parameters changed: start again
            entry = self.store[name] = (key, {})
        known = entry[1]
        rows = [r.tobytes() for r in x.detach().reshape(len(x), -1).cpu().numpy()]
        todo = [i for i, r in enumerate(rows) if r not in known]
        if todo:
            z = compute(x if len(todo) == len(x) else x[todo])  # (B', C_m)
            self.computed += len(todo)
            known.update((rows[i], zi) for i, zi in zip(todo, z))
            if len(todo) == len(x):
                return z
        return torch.stack([known[r] for r in rows])
