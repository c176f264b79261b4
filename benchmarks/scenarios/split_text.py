"""Split-text: intents arrive in groups, one group per experience (CLINC150 or your own file).

- ``split_text_class_il``: one head over all C intents, class ids 0..C-1 in grouping order.
- ``split_text_task_il``: task label = experience index, intents relabelled 0..n_i-1 in each,
  one head per task (n_outputs = the largest group).

CLINC150 (default): its 10 domains of 15 intents are the 10 experiences, in domains.json order.
A file (``dataset = "file"``): CSV or JSON-lines records, grouped by explicit ``groups`` or into
``n_experiences`` of a random intent order seeded by the run seed. Inputs are (2, max_length)
int64 (token ids, attention mask; see benchmarks/data/tokenize.py), tokenized once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch

from benchmarks.core import ScenarioInfo
from benchmarks.core.storage import token_bytes
from benchmarks.core.typed import check
from benchmarks.data.text import Groups, TextDataError, TextSplits, check_groups_have_data, resolve_groups
from benchmarks.scenarios.base import SCENARIOS, Scenario

#: all-MiniLM-L6-v2's WordPiece vocabulary (benchmarks/data/tokenize.py): ids fit in uint16.
TOKENIZER_VOCAB = 30_522


@dataclass(frozen=True)
class SplitTextParams:
    """Split-text options.

    Args:
        dataset: "clinc150" (Larson et al. 2019, from the mirror or download) or "file".
        path: the CSV / JSON-lines file when dataset = "file" (relative to the working directory).
        text_column: column of the utterances in that file.
        label_column: column of the labels.
        split_column: column holding "train"/"test"; if the file has none, ``test_fraction`` is drawn.
        test_fraction: per-label fraction drawn for test when the file has no split column.
        split_seed: seed of that draw (fixed, so all runs share the test set).
        groups: labels of each experience, e.g. [["a", "b"], ["c"]]; default for CLINC150 = its domains.
        n_experiences: instead of groups: this many experiences over a random label order (run seed).
        keep_experiences: use only the first k experiences (0 = all); for quick suites.
        max_length: tokens per utterance L (CLINC150: 28 at most in train).
        train_per_class: at most this many training utterances per label (0 = all), seeded.
        test_per_class: at most this many test utterances per label (0 = all), seeded.
    """

    dataset: Literal["clinc150", "file"] = "clinc150"
    path: str = ""
    text_column: str = "text"
    label_column: str = "label"
    split_column: str = "split"
    test_fraction: float = 0.2
    split_seed: int = 0
    groups: tuple[tuple[str, ...], ...] = ()
    n_experiences: int = 0
    keep_experiences: int = 0
    max_length: int = 32
    train_per_class: int = 0
    test_per_class: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(tuple(g) for g in self.groups))  # lists from JSON/TOML
        check(self.dataset != "file" or bool(self.path), "dataset = 'file' needs path = '<file.csv|.jsonl>'")
        check(self.dataset == "file" or not self.path, "path is only used with dataset = 'file'")
        check(not (self.groups and self.n_experiences), "give either groups or n_experiences, not both")
        check(self.dataset != "file" or bool(self.groups) or self.n_experiences > 0,
              "dataset = 'file' needs groups = [[...], ...] or n_experiences = N")
        check(self.n_experiences >= 0 and self.keep_experiences >= 0, "n_experiences/keep_experiences must be >= 0")
        check(0 < self.test_fraction < 1, "test_fraction must be in (0, 1)")
        check(4 <= self.max_length <= 512, "max_length must be in 4..512")
        check(self.train_per_class >= 0 and self.test_per_class >= 0, "train_per_class/test_per_class must be >= 0")


@lru_cache(maxsize=4)
def _load(dataset: str, path: str, columns: tuple[str, str, str], test_fraction: float, split_seed: int):
    """(splits, default groups or ()) of a data set; read once per process."""
    if dataset == "clinc150":
        from benchmarks.data.clinc150 import load_clinc150

        return load_clinc150()
    from benchmarks.data.textfile import load_text_file

    text, label, split = columns
    splits = load_text_file(path, text_column=text, label_column=label, split_column=split,
                            test_fraction=test_fraction, split_seed=split_seed)
    return splits, ()


def prepare(params: SplitTextParams, seed: int) -> tuple[TextSplits, Groups, torch.Tensor, torch.Tensor]:
    """Load, group, check and tokenize (cached): splits, groups, x_train (N, 2, L), x_test (M, 2, L).

    Raises DataMissingError or TextDataError naming the problem; used by preflight and the builder.
    """
    from benchmarks.data.tokenize import tokenize

    columns = (params.text_column, params.label_column, params.split_column)
    splits, default = _load(params.dataset, params.path, columns, params.test_fraction, params.split_seed)
    groups = params.groups or (default if not params.n_experiences else ())
    groups = resolve_groups(splits.labels(), groups=groups, n_experiences=params.n_experiences,
                            seed=seed, source=splits.source)
    if params.keep_experiences:
        if params.keep_experiences > len(groups):
            raise TextDataError(f"keep_experiences = {params.keep_experiences} > {len(groups)} experiences")
        groups = groups[: params.keep_experiences]
    check_groups_have_data(splits, groups)
    return (splits, groups, tokenize(splits.train_texts, params.max_length),
            tokenize(splits.test_texts, params.max_length))


def build_split_text(params: SplitTextParams, *, seed: int, name: str, setting: str) -> Scenario:
    """Build the split-text benchmark for ``setting`` with the run's seed (label order, subsets)."""
    from benchmarks.data.text import class_ids, text_benchmark

    splits, groups, x_train, x_test = prepare(params, seed)
    bench = text_benchmark(
        x_train, splits.train_labels, x_test, splits.test_labels, groups, task_labels=setting == "task_il",
        train_per_class=params.train_per_class, test_per_class=params.test_per_class, seed=seed,
    )
    ids = class_ids(groups)
    info = ScenarioInfo(
        name=name,
        family="split_text",
        setting=setting,
        n_experiences=len(groups),
        n_outputs=len(ids) if setting == "class_il" else max(len(g) for g in groups),
        input_shape=(2, params.max_length),
        modality="text",
        classes_per_experience=tuple(tuple(ids[label] for label in g) for g in groups),
        sample_bytes=token_bytes(params.max_length, TOKENIZER_VOCAB),  # uint16 ids; mask = ids != 0
    )
    return Scenario(bench, info)


def check_specs(specs) -> list[str]:
    """Preflight: problems with the data of split-text run specs (each distinct params/seed once)."""
    problems: list[str] = []
    seen = set()
    for spec in specs:
        params = SCENARIOS.get(spec.scenario_entry).params(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in spec.scenario_params.items()})
        key = (params, spec.seed if params.n_experiences else 0)
        if key in seen:
            continue
        seen.add(key)
        try:
            prepare(params, spec.seed)
        except (OSError, ValueError) as exc:  # DataMissingError, TextDataError
            message = f"scenario {spec.scenario!r}: {exc}"
            if message not in problems:
                problems.append(message)
    return problems


for _setting in ("class_il", "task_il"):
    SCENARIOS.register(
        f"split_text_{_setting}", params=SplitTextParams, setting=_setting,
        family="split_text", default_model="text_transformer",
    )(build_split_text)
