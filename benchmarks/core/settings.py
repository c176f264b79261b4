"""Settings and the scenario description that models and strategies read (no tensors, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from benchmarks.core.storage import label_bytes

Setting = Literal["class_il", "task_il", "domain_il"]
SETTINGS: tuple[str, ...] = ("class_il", "task_il", "domain_il")


@dataclass(frozen=True)
class ScenarioInfo:
    """What models and strategies need to know about a scenario (no tensors).

    Attributes:
        name: registered scenario name.
        family: e.g. "split_mnist", "split_text".
        setting: class_il (one growing/fixed head), task_il (task labels, one head per task),
            domain_il (one head of n_outputs shared by all experiences).
        n_experiences: T.
        n_outputs: output units of the single head (class_il/domain_il) or of each task head (task_il).
        input_shape: shape of one input sample, e.g. (1, 28, 28) or (max_length,) token ids.
        modality: "image" or "text".
        classes_per_experience: original class ids of each experience.
        sample_bytes: bytes of one raw input in the form a buffer stores it (benchmarks/core/storage.py:
            uint8 pixels, token ids in the smallest unsigned type of the vocabulary, float32 for
            float data); labels are not included (see ``label_bytes``).
        loss_on_seen_classes: class_il only: the training loss covers only the outputs of the classes
            seen so far (Hsu et al. 2018's ``valid_out_dim``); evaluation still reads every output.
        token_ids: text only: the distinct token ids of the streams' inputs (train and test), sorted;
            () = not known (any id of the vocabulary may occur). A model trained from scratch keeps
            embedding rows for these ids only (text_transformer.py): the other rows would never be
            read, so results are the same and the optimiser and regularisers skip ~90% of the table.
    """

    name: str
    family: str
    setting: str
    n_experiences: int
    n_outputs: int
    input_shape: tuple[int, ...]
    modality: str
    classes_per_experience: tuple[tuple[int, ...], ...]
    sample_bytes: int
    loss_on_seen_classes: bool = False
    token_ids: tuple[int, ...] = field(default=(), repr=False)

    @property
    def multi_head(self) -> bool:
        """True when the model needs one head per task (task-incremental)."""
        return self.setting == "task_il"

    @property
    def label_bytes(self) -> int:
        """Bytes of one stored label (+ task id in task-IL), charged to every stored example."""
        n_classes = len({c for group in self.classes_per_experience for c in group})
        return label_bytes(max(n_classes, self.n_outputs), self.n_experiences, self.multi_head)

    @property
    def record_bytes(self) -> int:
        """Bytes of one stored raw example: input + label (+ task id): what replay memories are charged."""
        return self.sample_bytes + self.label_bytes
