"""text_transformer keeps embedding rows only for the scenario's token ids: the same training, bit for bit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmarks.core import ScenarioInfo
from benchmarks.models import MODELS, build_model

VOCAB, L = 60, 10
INFO = ScenarioInfo(name="t", family="split_text", setting="class_il", n_experiences=1, n_outputs=4,
                    input_shape=(2, L), modality="text", classes_per_experience=((0, 1, 2, 3),), sample_bytes=20)


def _inputs(n: int, ids: list[int], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    tok = torch.tensor(ids)[torch.randint(0, len(ids), (n, L), generator=gen)]
    lengths = torch.randint(2, L + 1, (n,), generator=gen)
    mask = (torch.arange(L)[None, :] < lengths[:, None]).long()
    return torch.stack([tok * mask, mask], dim=1)  # padding id 0


def _model(info: ScenarioInfo):
    torch.manual_seed(3)
    params = MODELS.get("text_transformer").params(d_model=16, n_layers=2, n_heads=2, d_ff=32, vocab_size=VOCAB)
    return build_model("text_transformer", params, info)


def _train(model, x, y, steps: int = 30):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(5)  # dropout masks
    for i in range(steps):
        b = slice(4 * (i % 4), 4 * (i % 4) + 4)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[b]), y[b])
        # an L2 pull on every parameter, as the regularisers add: rows never read get no gradient either way
        (loss + 1e-3 * sum((p ** 2).sum() for p in model.parameters())).backward()
        opt.step()
    return model


def test_kept_rows_train_exactly_as_the_whole_table():
    used = [0, 3, 7, 11, 20, 21, 42, 59]
    x, y = _inputs(16, used, seed=1), torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(2))
    full = _train(_model(INFO), x, y)
    compact = _train(_model(dataclasses.replace(INFO, token_ids=tuple(used))), x, y)
    assert compact.tok.num_embeddings == len(used) and full.tok.num_embeddings == VOCAB
    # the same outputs and the same kept rows, bit for bit; every other parameter identical too
    full.eval(), compact.eval()
    assert torch.equal(full(x), compact(x))
    assert torch.equal(full.tok.weight[used], compact.tok.weight)
    rest = {n: p for n, p in full.named_parameters() if not n.startswith("tok.")}
    for n, p in compact.named_parameters():
        if not n.startswith("tok."):
            assert torch.equal(p, rest[n]), n
    assert sum(p.numel() for p in compact.parameters()) < sum(p.numel() for p in full.parameters())


def test_an_id_outside_the_kept_rows_fails_loudly():
    model = _model(dataclasses.replace(INFO, token_ids=(0, 1, 2))).eval()
    with pytest.raises(IndexError):
        model(_inputs(2, [5], seed=0))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        _model(dataclasses.replace(INFO, token_ids=(0, VOCAB)))


def test_a_state_dict_round_trip_keeps_the_mapping():
    info = dataclasses.replace(INFO, token_ids=(0, 4, 9))
    a, b = _model(info).eval(), _model(info).eval()
    with torch.no_grad():
        b.tok.weight.add_(1.0)
    b.load_state_dict(a.state_dict())
    x = _inputs(3, [4, 9], seed=2)
    assert torch.equal(a(x), b(x))


def test_split_text_scenarios_carry_every_token_id_of_their_streams(tmp_path):
    from benchmarks.data.text import text_benchmark

    texts = torch.tensor([[[5, 6, 0], [1, 1, 0]], [[7, 8, 9], [1, 1, 1]], [[5, 10, 0], [1, 1, 0]],
                          [[11, 0, 0], [1, 0, 0]]])
    bench, ids = text_benchmark(texts[:2], ["a", "b"], texts[2:], ["a", "b"], (("a",), ("b",)), task_labels=False)
    assert ids == (0, 5, 6, 7, 8, 9, 10, 11)  # train and test ids, padding included, sorted
    assert len(bench.train_stream) == 2
