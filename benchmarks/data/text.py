"""Split-text streams: labelled utterances + a grouping of labels -> Avalanche train/test streams.

The pipeline (each step a small function, data preparation separate from training):

    TextSplits (label names)  --resolve_groups-->  label groups (one per experience)
    texts --benchmarks.data.tokenize--> x (N, 2, L) int64 (token ids, attention mask)
    text_benchmark(x, labels, groups) --> nc_benchmark: class-IL or task-IL (+ the token ids it holds)

Class ids are 0..C-1 in grouping order (group 0's labels first). Class-IL keeps these ids (one head
over all C classes); task-IL gives experience i task label i and relabels its classes 0..n_i-1
(one head per task), as in Avalanche's ``nc_benchmark(task_labels=True)``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from benchmarks.data.tensors import LabelledTensorDataset

Groups = tuple[tuple[str, ...], ...]


class TextDataError(ValueError):
    """A text data set or its grouping is unusable; the message says where and how to fix it."""


@dataclass(frozen=True)
class TextSplits:
    """Labelled utterances split into train and test (label names, not ids).

    Attributes:
        train_texts: training utterances.
        train_labels: their label names (same length).
        test_texts: test utterances.
        test_labels: their label names.
        source: where the data came from (for messages).
        train_source: the file of the training split when train and test come from two files ("" = source).
        test_source: the file of the test split ("" = source).
    """

    train_texts: tuple[str, ...]
    train_labels: tuple[str, ...]
    test_texts: tuple[str, ...]
    test_labels: tuple[str, ...]
    source: str = ""
    train_source: str = ""
    test_source: str = ""

    def __post_init__(self) -> None:
        if len(self.train_texts) != len(self.train_labels) or len(self.test_texts) != len(self.test_labels):
            raise TextDataError(f"{self.source}: texts and labels differ in length")

    def labels(self) -> list[str]:
        """Sorted label names that occur in either split."""
        return sorted(set(self.train_labels) | set(self.test_labels))


def resolve_groups(
    labels: Sequence[str], *, groups: Groups = (), n_experiences: int = 0, seed: int = 0, source: str = ""
) -> Groups:
    """The label names of each experience, in order.

    Args:
        labels: label names present in the data.
        groups: explicit groups (labels not listed are left out of the stream); takes precedence.
        n_experiences: otherwise, split the labels in a random order seeded by ``seed`` into this
            many experiences of near-equal size (sizes differ by at most one).
        seed: seed of the random class order (the run seed).
        source: data set name for messages.
    """
    if groups:
        return _check_explicit(labels, groups, source)
    n_classes = len(set(labels))
    if not 1 <= n_experiences <= n_classes:
        raise TextDataError(
            f"{source}: n_experiences = {n_experiences} must be between 1 and the number of labels ({n_classes}); "
            "or give explicit groups"
        )
    order = sorted(set(labels))
    random.Random(seed).shuffle(order)
    size, extra = divmod(n_classes, n_experiences)
    out, start = [], 0
    for i in range(n_experiences):
        stop = start + size + (1 if i < extra else 0)
        out.append(tuple(order[start:stop]))
        start = stop
    return tuple(out)


def _check_explicit(labels: Sequence[str], groups: Groups, source: str) -> Groups:
    """Explicit groups, checked: non-empty, known labels, no label in two groups."""
    known = set(labels)
    seen: dict[str, int] = {}
    problems = []
    for i, group in enumerate(groups):
        if not group:
            problems.append(f"group {i} is empty")
        for label in group:
            if seen.get(label) == i:
                problems.append(f"group {i} lists label {label!r} twice; list it once")
            elif label in seen:
                problems.append(f"label {label!r} is in group {seen[label]} and in group {i}; a label belongs to one group")
            elif label not in known:
                problems.append(f"group {i}: label {label!r} does not occur in the data")
            seen.setdefault(label, i)
    if problems:
        raise TextDataError(f"{source}: invalid groups: " + "; ".join(problems))
    return tuple(tuple(g) for g in groups)


def check_groups_have_data(splits: TextSplits, groups: Groups) -> None:
    """Raise TextDataError when a grouped label has no training or no test examples.

    Avalanche's nc_benchmark needs every class of an experience in both streams (else ``KeyError: <id>``
    while the run starts), so a missing label is an error here, naming the file that lacks it.
    """
    train, test = Counter(splits.train_labels), Counter(splits.test_labels)
    problems = []
    for i, group in enumerate(groups):
        for counts, split, where in ((train, "training", splits.train_source), (test, "test", splits.test_source)):
            missing = [label for label in group if counts[label] == 0]
            if missing:
                problems.append(f"group {i} ({', '.join(group)}): label(s) {', '.join(missing)} have no {split} "
                                f"examples{f' in {where}' if where else ''}")
    if problems:
        raise TextDataError(
            f"{splits.source}: " + "; ".join(problems) + ". Add utterances for these labels to the "
            + ("train and test files" if splits.train_source else "data (split = train / test)")
            + ", or leave the labels out of groups"
        )


def class_ids(groups: Groups) -> dict[str, int]:
    """Label name -> class id, 0..C-1 in grouping order."""
    return {label: i for i, label in enumerate(label for group in groups for label in group)}


def select(labels: Sequence[str], ids: dict[str, int], per_class: int, seed: int) -> torch.Tensor:
    """Indices of the examples whose label is grouped, at most ``per_class`` per class (0 = all).

    The kept examples of a class are a seeded random subset; indices come back sorted.
    """
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        if label in ids:
            by_class.setdefault(label, []).append(i)
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(by_class):
        idx = by_class[label]
        if 0 < per_class < len(idx):
            idx = sorted(rng.sample(idx, per_class))
        keep += idx
    return torch.tensor(sorted(keep), dtype=torch.long)


def labelled(x: torch.Tensor, labels: Sequence[str], ids: dict[str, int], keep: torch.Tensor) -> LabelledTensorDataset:
    """Dataset of the kept rows: x (n, 2, L) int64, targets (n,) int64 class ids."""
    y = torch.tensor([ids[labels[i]] for i in keep.tolist()], dtype=torch.long)
    return LabelledTensorDataset(x[keep], y)


def text_benchmark(
    x_train: torch.Tensor,
    train_labels: Sequence[str],
    x_test: torch.Tensor,
    test_labels: Sequence[str],
    groups: Groups,
    *,
    task_labels: bool,
    train_per_class: int = 0,
    test_per_class: int = 0,
    seed: int = 0,
):
    """Avalanche train/test streams with one experience per label group.

    Args:
        x_train: (N, 2, L) int64 token ids and attention masks of the training utterances.
        train_labels: N label names.
        x_test: (M, 2, L) int64 test inputs.
        test_labels: M label names.
        groups: label names of each experience (see ``resolve_groups``); other labels are dropped.
        task_labels: False = class-IL (ids 0..C-1 kept); True = task-IL (task label = experience
            index, class ids from 0 in each experience).
        train_per_class: keep at most this many training examples per class (0 = all), seeded.
        test_per_class: same for the test split.
        seed: seed of the subsets and of Avalanche's builder.

    Returns:
        (benchmark, token ids): the streams, and the distinct token ids of their inputs (train and
        test, padding included), sorted: the embedding rows a model trained from scratch can use.
    """
    from avalanche.benchmarks import nc_benchmark

    ids = class_ids(groups)
    train = labelled(x_train, train_labels, ids, select(train_labels, ids, train_per_class, seed))
    test = labelled(x_test, test_labels, ids, select(test_labels, ids, test_per_class, seed))
    token_ids = torch.unique(torch.cat([train.tensors[0][:, 0].reshape(-1), test.tensors[0][:, 0].reshape(-1)]))
    bench = nc_benchmark(
        train,
        test,
        n_experiences=len(groups),
        task_labels=task_labels,
        shuffle=False,
        seed=seed,
        fixed_class_order=list(range(len(ids))),
        per_exp_classes={i: len(g) for i, g in enumerate(groups)},
        class_ids_from_zero_in_each_exp=task_labels,
    )
    return bench, tuple(token_ids.tolist())
