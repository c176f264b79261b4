"""Split-text: intents arrive in groups, one group per experience (CLINC150 or your own file).

- ``split_text_class_il``: one head over all C intents, class ids 0..C-1 in grouping order.
- ``split_text_task_il``: task label = experience index, intents relabelled 0..n_i-1 in each,
  one head per task (n_outputs = the largest group).

CLINC150 (default): its 10 domains of 15 intents are the 10 experiences, in domains.json order.
BANKING77 (``dataset = "banking77"``): 77 intents with no grouping of their own; give ``groups`` or
``n_experiences`` (the literature's splits are registered scenarios: benchmarks/scenarios/text_protocols.py).
A file (``dataset = "file"``): CSV or JSON-lines records (one file with a split column, or separate
``train_path`` and ``test_path`` files; benchmarks/data/textfile.py), grouped by explicit ``groups`` or into
``n_experiences`` of a random intent order seeded by the run seed. Inputs are (2, max_length)
int64 (token ids, attention mask; see benchmarks/data/tokenize.py), tokenized once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import torch

from benchmarks.core import ScenarioInfo
from benchmarks.core.storage import token_bytes
from benchmarks.core.typed import check
from benchmarks.data.text import Groups, TextDataError, TextSplits, check_groups_have_data, resolve_groups
from benchmarks.scenarios.base import SCENARIOS, Scenario

#: all-MiniLM-L6-v2's WordPiece vocabulary (benchmarks/data/tokenize.py): ids fit in uint16.
TOKENIZER_VOCAB = 30_522  # == tokenize.MINILM_VOCAB (kept here: imported by tests and reports)


@dataclass(frozen=True)
class SplitTextParams:
    """Split-text options.

    Args:
        dataset: "clinc150" (Larson et al. 2019), "banking77" (Casanueva et al. 2020; needs groups or
            n_experiences), both from the mirror or download, or "file".
        path: the CSV / JSON-lines file when dataset = "file" (relative to the working directory).
        train_path: instead of path: the file of training utterances (with test_path).
        test_path: the file of test utterances (with train_path).
        encoding: text encoding of the file(s), e.g. "latin-1" or "cp1252" (default UTF-8).
        text_column: column of the utterances in that file.
        label_column: column of the labels.
        split_column: column holding "train"/"test"; if the file has none, ``test_fraction`` is drawn
            (unused with train_path/test_path).
        test_fraction: per-label fraction drawn for test when the file has no split column.
        split_seed: seed of that draw (fixed, so all runs share the test set).
        groups: labels of each experience, e.g. [["a", "b"], ["c"]]; default for CLINC150 = its domains.
        n_experiences: instead of groups: this many experiences over a random label order (run seed).
        keep_experiences: use only the first k experiences (0 = all); for quick suites.
        max_length: tokens per utterance L (CLINC150: 28 at most in train).
        train_per_class: at most this many training utterances per label (0 = all), seeded.
        test_per_class: at most this many test utterances per label (0 = all), seeded.
        tokenizer: folder of the Hugging Face tokenizer ("" = all-MiniLM-L6-v2's, from its package).
            Follows the model: with ``model = { name = "hf_encoder", path = P }`` the suite sets it to P
            (benchmarks/config/expand.py); stored ids are counted at this vocabulary's width.
    """

    dataset: Literal["clinc150", "banking77", "file"] = "clinc150"
    path: str = ""
    train_path: str = ""
    test_path: str = ""
    encoding: str = "utf-8"
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
    tokenizer: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(tuple(g) for g in self.groups))  # lists from JSON/TOML
        self._check_files()
        check(not (self.groups and self.n_experiences), "give either groups or n_experiences, not both")
        check(self.dataset == "clinc150" or bool(self.groups) or self.n_experiences > 0,
              f"dataset = {self.dataset!r} needs groups = [[...], ...] or n_experiences = N (or use a registered "
              "protocol scenario such as banking77_vag_class_il)")
        check(self.n_experiences >= 0 and self.keep_experiences >= 0, "n_experiences/keep_experiences must be >= 0")
        check(0 < self.test_fraction < 1, "test_fraction must be in (0, 1)")
        check(4 <= self.max_length <= 512, "max_length must be in 4..512")
        check(self.train_per_class >= 0 and self.test_per_class >= 0, "train_per_class/test_per_class must be >= 0")

    def _check_files(self) -> None:
        from benchmarks.data.records import check_encoding

        two = bool(self.train_path or self.test_path)
        if self.dataset != "file":
            check(not (self.path or two), "path, train_path and test_path are only used with dataset = 'file'")
            check(self.encoding == "utf-8", "encoding is only used with dataset = 'file'")
            return
        check(bool(self.path) or two, "dataset = 'file' needs path = '<file.csv|.jsonl>' (one file, optional "
                                      "split column) or train_path and test_path (two files)")
        check(not (self.path and two), "give path (one file) or train_path and test_path (two files), not both")
        check(bool(self.train_path) == bool(self.test_path),
              "train_path and test_path go together; give both (or path for one file with a split column)")
        check(check_encoding(self.encoding), f"encoding = {self.encoding!r} is not a known text encoding; "
                                             "use e.g. 'utf-8', 'latin-1', 'cp1252' or 'utf-16'")


#: the keys that decide what is read (the others group, cut or tokenize it)
_DATA_KEYS = ("dataset", "path", "train_path", "test_path", "encoding", "text_column", "label_column",
              "split_column", "test_fraction", "split_seed")


@lru_cache(maxsize=4)
def _load(data: tuple[tuple[str, Any], ...]):
    """(splits, default groups or ()) of a data set given as ``_DATA_KEYS`` pairs; read once per process."""
    p = dict(data)
    if p["dataset"] == "clinc150":
        from benchmarks.data.clinc150 import load_clinc150

        return load_clinc150()
    if p["dataset"] == "banking77":
        from benchmarks.data.banking77 import load_banking77

        return load_banking77()[0], ()
    from benchmarks.data.textfile import load_text_file, load_text_files

    columns = {"text_column": p["text_column"], "label_column": p["label_column"], "encoding": p["encoding"]}
    if p["train_path"]:
        return load_text_files(p["train_path"], p["test_path"], **columns), ()
    return load_text_file(p["path"], split_column=p["split_column"], test_fraction=p["test_fraction"],
                          split_seed=p["split_seed"], **columns), ()


def prepare(params: SplitTextParams, seed: int) -> tuple[TextSplits, Groups, torch.Tensor, torch.Tensor]:
    """Load, group, check and tokenize (cached): splits, groups, x_train (N, 2, L), x_test (M, 2, L).

    Raises DataMissingError or TextDataError naming the problem; used by preflight and the builder.
    """
    from benchmarks.data.tokenize import tokenize

    splits, default = _load(tuple((k, getattr(params, k)) for k in _DATA_KEYS))
    groups = params.groups or (default if not params.n_experiences else ())
    groups = resolve_groups(splits.labels(), groups=groups, n_experiences=params.n_experiences,
                            seed=seed, source=splits.source)
    if params.keep_experiences:
        if params.keep_experiences > len(groups):
            raise TextDataError(f"keep_experiences = {params.keep_experiences} > {len(groups)} experiences")
        groups = groups[: params.keep_experiences]
    check_groups_have_data(splits, groups)
    return (splits, groups, tokenize(splits.train_texts, params.max_length, params.tokenizer),
            tokenize(splits.test_texts, params.max_length, params.tokenizer))


def build_split_text(params: SplitTextParams, *, seed: int, name: str, setting: str) -> Scenario:
    """Build the split-text benchmark for ``setting`` with the run's seed (label order, subsets)."""
    from benchmarks.data.text import class_ids, text_benchmark
    from benchmarks.data.tokenize import vocab_size

    splits, groups, x_train, x_test = prepare(params, seed)
    bench, token_ids = text_benchmark(
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
        # ids at the vocabulary's width (MiniLM's 30,522: uint16; > 65,536: uint32); the mask is derivable
        sample_bytes=token_bytes(params.max_length, vocab_size(params.tokenizer)),
        token_ids=token_ids,
    )
    return Scenario(bench, info)


def check_specs(specs) -> list[str]:
    """Preflight: problems with the data of split-text run specs (each distinct params/seed once)."""
    problems: list[str] = []
    seen = set()
    for spec in specs:
        entry = SCENARIOS.get(spec.scenario_entry)
        params = entry.params(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.scenario_params.items()})
        try:
            if "split_text_params" in entry.meta:  # a protocol scenario (text_protocols.py) -> split-text params
                params = entry.meta["split_text_params"](params)
        except ValueError as exc:  # e.g. a task_order the protocol does not have
            problems.append(f"scenario {spec.scenario!r}: {exc}")
            continue
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
