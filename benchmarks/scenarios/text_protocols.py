"""The text continual-learning literature's protocols as named scenarios (class-IL and task-IL).

Each protocol is a fixed class order cut into equal experiences, plus the task orders its authors
ran, taken from their public code and stored in ``benchmarks/scenarios/protocols/<name>.json``
(``source``: repository, commit, files; ``derivation``: how the order was read from them):

- ``clinc150_vag``: CLINC150, 15 experiences x 10 intents in the key order of
  ``data/clinc150/label_dict.json`` (out-of-scope dropped), task order ``sequences/clinc150``;
  shaoyijia/VAG @ a8a2161 (Shao et al., ACL 2023; ``data.py``). The Learn-or-Recall codebase
  (zzz47zzz/codebase-for-incremental-learning-with-llm @ cc2bf9d, ``utils/dataformat_preprocess.py``)
  builds the same split from a label_dict.json of its (not version-controlled) raw data.
- ``clinc150_plm4cl``: CLINC150, 15 x 10 in the intent order of ``datasets/clinc150.py``
  (``label_dic`` flattened by domain), wutong8023/PLM4CL @ 4e9e98b (Wu et al., ICLR 2022).
- ``banking77_vag``: BANKING77, 7 x 10 = the first 70 intents of ``BANKING_LABEL2ID`` in VAG's
  ``data.py`` (not categories.json order; the last 7 intents are left out), the 3 task orders of
  ``sequences/banking77`` (``task_order = 0 | 1 | 2``).
- ``banking77_lor``: BANKING77, 7 x 11 = all 77 intents in ``categories.json`` order, as the
  Learn-or-Recall codebase's ``preprocess_banking77`` splits it (Zheng, Qiu & Ma, ACL 2024).

Registered names: ``<protocol>_class_il`` (one head over all C intents, class ids 0..C-1 in the order
the experiences arrive) and ``<protocol>_task_il`` (task label = experience index, intents relabelled
0..9 (or 0..10) inside each). A task order permutes whole experiences: with ``task_order = 1`` of
banking77_vag the first experience is VAG's group 2 (its class ids become 0..9 here; VAG keeps its
global ids, a relabelling that changes no accuracy). The streams are built by split_text.py's machinery
(same tokenization, caching, per-class subsets), so everything that runs on split_text runs here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from benchmarks.core.typed import check
from benchmarks.data.text import Groups
from benchmarks.scenarios.base import SCENARIOS, Scenario
from benchmarks.scenarios.split_text import SplitTextParams, build_split_text

PROTOCOL_DIR = Path(__file__).resolve().parent / "protocols"
#: tokens per utterance when max_length = 0 (measured with the all-MiniLM-L6-v2 tokenizer, [CLS]/[SEP] included)
DEFAULT_MAX_LENGTH = {"clinc150": 32, "banking77": 64}


@dataclass(frozen=True)
class Protocol:
    """One published split: class order, experience size, task orders and where they come from.

    Attributes:
        name: protocol name (the JSON file's stem), prefix of the registered scenario names.
        dataset: "clinc150" or "banking77".
        class_order: intent names in the authors' order; experience k = positions k*n .. k*n+n-1.
        classes_per_experience: n.
        task_orders: the experience permutations the authors ran (each a list of experience indices).
        source: repository, commit and paths the order was read from.
        derivation: how (which lines of which file), for the docstring and docs/literature.md.
    """

    name: str
    dataset: str
    class_order: tuple[str, ...]
    classes_per_experience: int
    task_orders: tuple[tuple[int, ...], ...]
    source: dict
    derivation: str

    @property
    def n_experiences(self) -> int:
        """Number of experiences (C / n)."""
        return len(self.class_order) // self.classes_per_experience

    def groups(self, task_order: int = 0) -> Groups:
        """The intents of each experience, in the order of task order ``task_order``."""
        n = self.classes_per_experience
        chunks = [self.class_order[k * n:(k + 1) * n] for k in range(self.n_experiences)]
        return tuple(tuple(chunks[k]) for k in self.task_orders[task_order])


def _protocol(path: Path) -> Protocol:
    """Read and check one protocol file (sizes, duplicates, task orders are permutations)."""
    d = json.loads(path.read_text(encoding="utf-8"))
    p = Protocol(name=d["name"], dataset=d["dataset"], class_order=tuple(d["class_order"]),
                 classes_per_experience=int(d["classes_per_experience"]),
                 task_orders=tuple(tuple(o) for o in d["task_orders"]), source=dict(d["source"]),
                 derivation=str(d["derivation"]))
    n, k = len(p.class_order), p.classes_per_experience
    if p.name != path.stem or n % k or len(set(p.class_order)) != n or not p.task_orders or any(
            sorted(o) != list(range(n // k)) for o in p.task_orders):
        raise ValueError(f"{path}: inconsistent protocol (name = file stem, {n} distinct classes in experiences "
                         f"of {k}, task orders = permutations of 0..{n // k - 1})")
    return p


@lru_cache(maxsize=1)
def protocols() -> dict[str, Protocol]:
    """Every protocol of benchmarks/scenarios/protocols/*.json, by name."""
    return {p.name: p for p in map(_protocol, sorted(PROTOCOL_DIR.glob("*.json")))}


@dataclass(frozen=True)
class TextProtocolParams:
    """Options of a literature protocol scenario (the class order itself is fixed by the protocol).

    Args:
        task_order: which of the protocol's published task orders (0 = the first line of the authors'
            sequence file; banking77_vag has 3: 0, 1, 2).
        keep_experiences: use only the first k experiences (0 = all); for quick suites.
        max_length: tokens per utterance L, [CLS] and [SEP] included; 0 = the data set's default
            (``DEFAULT_MAX_LENGTH``: CLINC150 32, all its utterances fit (33 tokens at most, 1 train
            utterance cut); BANKING77 64: 99.7% of train and 99.8% of test utterances fit, the longest
            has 98 tokens, 93% fit in 32).
        train_per_class: at most this many training utterances per intent (0 = all), seeded by the run seed.
        test_per_class: at most this many test utterances per intent (0 = all), seeded.
        tokenizer: folder of the Hugging Face tokenizer ("" = all-MiniLM-L6-v2's); set from the model's
            folder when the model is ``hf_encoder`` (benchmarks/config/expand.py), so any encoder runs here.
    """

    task_order: int = 0
    keep_experiences: int = 0
    max_length: int = 0
    train_per_class: int = 0
    test_per_class: int = 0
    tokenizer: str = ""

    def __post_init__(self) -> None:
        check(self.task_order >= 0, "task_order must be >= 0 (an index into the protocol's task orders)")
        check(self.keep_experiences >= 0, "keep_experiences must be >= 0")
        check(self.max_length == 0 or 4 <= self.max_length <= 512, "max_length must be 0 (default) or in 4..512")
        check(self.train_per_class >= 0 and self.test_per_class >= 0, "train_per_class/test_per_class must be >= 0")


def split_text_params(protocol: Protocol, params: TextProtocolParams) -> SplitTextParams:
    """The split-text options that build ``protocol`` (explicit groups in the protocol's order)."""
    orders = len(protocol.task_orders)
    check(params.task_order < orders, f"task_order = {params.task_order}: protocol {protocol.name!r} has "
                                      f"{orders} task order(s), 0..{orders - 1} ({protocol.source['repository']})")
    return SplitTextParams(dataset=protocol.dataset, groups=protocol.groups(params.task_order),
                           keep_experiences=params.keep_experiences,
                           max_length=params.max_length or DEFAULT_MAX_LENGTH[protocol.dataset],
                           train_per_class=params.train_per_class, test_per_class=params.test_per_class,
                           tokenizer=params.tokenizer)


def _register(protocol: Protocol, setting: str) -> None:
    """Register ``<protocol>_<setting>``: a split-text stream over the protocol's groups."""

    def build(params: TextProtocolParams, *, seed: int, name: str, setting: str) -> Scenario:
        return build_split_text(split_text_params(protocol, params), seed=seed, name=name, setting=setting)

    src = protocol.source
    build.__doc__ = (f"{protocol.dataset.upper()} {protocol.n_experiences} x {protocol.classes_per_experience} "
                     f"intents, {setting.replace('_', '-')}, as {src['repository']} @ {src['commit'][:7]} splits it "
                     f"({len(protocol.task_orders)} task order(s)).")
    SCENARIOS.register(
        f"{protocol.name}_{setting}", params=TextProtocolParams, setting=setting, family="split_text",
        default_model="text_transformer", protocol=protocol.name,
        split_text_params=lambda params: split_text_params(protocol, params),
    )(build)


for _protocol_entry in protocols().values():
    for _setting in ("class_il", "task_il"):
        _register(_protocol_entry, _setting)
