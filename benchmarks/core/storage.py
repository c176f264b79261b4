"""How many bytes one stored example takes: the single rule that every memory in clbench is measured by.

"Equal memory" compares buffers at the bytes a real buffer would need, not at the dtype clbench happens
to hold tensors in (MNIST is normalised to float32 for training; a buffer keeps the uint8 image):

- image (MNIST): one uint8 per pixel of the actual input shape (a padded input counts its padding).
- text: the L token ids in the smallest unsigned integer type that holds the vocabulary (all-MiniLM's
  30,522 ids: uint16, 2 B). The attention mask is not counted: it is derivable from the ids
  (padding id 0 never occurs inside an utterance), so a buffer need not keep it.
- float data (the synthetic test streams; hidden states of feature replay): the float dtype stored
  (float32 4 B, float16 2 B). Feature replay's layer-k mask is counted (1 B per position, bool) since
  the hidden states do not determine it.
- every stored example also pays its label (smallest unsigned type holding the number of classes:
  1 B up to 256 classes) and, in task-incremental settings only, its task id (same rule over the
  number of tasks); class- and domain-incremental replay never needs the task id. This is charged
  to every buffer alike (raw replay, GEM, iCaRL, ..., feature replay).
- strategy-specific extras are added on top: DER stores the logits of each sample (float32 x outputs).

Nothing here imports torch (benchmarks/core is importable by strategies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FLOAT32_BYTES = 4


def uint_bytes(n_values: int) -> int:
    """Bytes of the smallest unsigned integer type (uint8/16/32/64) holding ``n_values`` distinct values."""
    if n_values < 1:
        raise ValueError(f"n_values must be >= 1, got {n_values}")
    for width in (1, 2, 4, 8):
        if n_values <= 2 ** (8 * width):
            return width
    raise ValueError(f"{n_values} values do not fit in 64 bits")


def image_bytes(shape: Sequence[int]) -> int:
    """Bytes of one 8-bit image of ``shape`` (e.g. (1, 28, 28) -> 784)."""
    return math.prod(shape)


def float_bytes(shape: Sequence[int], itemsize: int = FLOAT32_BYTES) -> int:
    """Bytes of one float sample of ``shape`` (float32 by default)."""
    return math.prod(shape) * itemsize


def token_bytes(max_length: int, vocab_size: int) -> int:
    """Bytes of ``max_length`` token ids of a ``vocab_size`` vocabulary (the mask is derivable: not counted)."""
    return max_length * uint_bytes(vocab_size)


def label_bytes(n_classes: int, n_tasks: int, task_ids: bool) -> int:
    """Bytes of one stored label, plus its task id when ``task_ids`` (task-incremental settings)."""
    return uint_bytes(n_classes) + (uint_bytes(n_tasks) if task_ids else 0)
