"""moe_adapters (strategies/moe_adapters.py): LoRA experts + top-k routers on the tiny synthetic stream."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny_specs

from benchmarks.engine.runner import _build, run_one
from strategies import STRATEGIES

SETTINGS = STRATEGIES.get("moe_adapters").meta["settings"]
VIT = {"name": "vit"}


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    """One run per declared setting (ViT on the synthetic stream)."""
    out = {}
    for setting in SETTINGS:
        (spec,) = tiny_specs(["moe_adapters"], scenario=f"synthetic_{setting}", model=VIT)
        out[setting] = run_one(spec)
    return out


@pytest.mark.parametrize("setting", SETTINGS)
def test_runs_and_records_a_well_formed_routing_block(results, setting):
    result = results[setting]
    assert result["status"] == "ok", result["error"]
    r, T = result["routing"], len(result["accuracy_matrix"])
    E, k, B = r["experts"], r["top_k"], len(r["blocks"])
    assert (E, k, r["blocks"], T) == (22, 2, [0, 1], 2)  # the tiny ViT: every block adapted
    assert len(r["owned"]) == T and all(len(set(o)) == k and all(0 <= e < E for e in o) for row in r["owned"] for o in row)
    for key in ("load", "changed", "routing_accuracy"):
        assert len(r[key]) == T and all(len(row) == B and all(len(cells) == T for cells in row) for row in r[key])
    for i in range(T):
        for b in range(B):
            assert all(sum(r["load"][i][b][j]) == pytest.approx(1.0) for j in range(T))  # a distribution
            assert r["changed"][i][b][i] == 0.0  # compared with itself
            for j in range(T):
                for key in ("changed", "routing_accuracy"):
                    v = r[key][i][b][j]
                    assert (v is None) == (j > i) and (v is None or 0.0 <= v <= 1.0)
    assert len(r["trainable_parameters"]) == T


def test_added_parameters_are_the_pool_at_the_first_experience(results):
    # the tiny ViT: 2 blocks, D = 64, LoRA rank 8 on qkv (64 -> 192), 22 experts, router W_g and W_n (D x E)
    pool = 2 * (22 * 8 * (64 + 192) + 2 * 64 * 22)
    assert results["class_il"]["added_parameters"] == [pool, 0]
    r = results["class_il"]["routing"]
    frozen = sum(len(o) for o in r["owned"][0]) * 8 * (64 + 192)  # the 2 x 2 experts frozen after exp 0
    assert r["trainable_parameters"] == [pool, pool - frozen]


def test_is_not_naive_and_the_router_forgets(results):
    (naive,) = tiny_specs(["naive"], model=VIT)
    assert results["class_il"]["accuracy_matrix"] != run_one(naive)["accuracy_matrix"]
    changed = results["class_il"]["routing"]["changed"]
    assert max(changed[1][b][0] for b in range(2)) > 0  # the shared router moved exp 0's samples


def _after(setting: str = "class_il", **hparams):
    """(strategy, test batch, expert parameters per block after exp 0, router weights after exp 0),
    the strategy trained on both experiences."""
    (spec,) = tiny_specs(["moe_adapters"], scenario=f"synthetic_{setting}", model=VIT,
                         hparams={"moe_adapters": hparams})
    scenario, strategy = _build(spec, torch.device("cpu"))
    bench = scenario.benchmark
    strategy.train(bench.train_stream[0])
    mixtures = strategy.plugins[0].mixtures
    experts = [[[p.detach().clone() for p in m.expert_parameters(e)] for e in range(22)] for m in mixtures]
    routers = [m.router.w_gate.detach().clone() for m in mixtures]
    strategy.train(bench.train_stream[1])
    x = torch.stack([bench.test_stream[0].dataset[i][0] for i in range(8)])
    return strategy, x, experts, routers


def _changed(mixture, e: int, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, q) for p, q in zip(mixture.expert_parameters(e), before, strict=True))


@pytest.mark.parametrize("freeze_used", [True, False])
def test_experts_used_most_in_an_experience_stay_bit_identical_after_it(freeze_used):
    strategy, _, experts, routers = _after(freeze_used=freeze_used)
    owned = strategy.routing["owned"][0]
    for b, m in enumerate(strategy.plugins[0].mixtures):
        assert not torch.equal(m.router.w_gate, routers[b]) and m.router.w_gate.abs().sum() > 0  # routers learn
        assert any(_changed(m, e, experts[b][e]) for e in range(22) if e not in owned[b])  # the others train
        assert all(_changed(m, e, experts[b][e]) != freeze_used for e in owned[b])


def test_routing_reads_no_task_label_in_class_il():
    strategy, x, _, _ = _after("class_il")
    model = strategy.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, torch.full((len(x),), 7)), model(x, None))


def test_on_a_tiny_bert_only_the_fine_tuned_block_gets_experts_and_the_prefix_stays_cached():
    from peft import LoraConfig
    from transformers import BertConfig, BertModel

    from benchmarks.core import ScenarioInfo
    from benchmarks.models.minilm import MiniLM, MiniLMParams
    from strategies.plugins.lora_modules import default_targets, lora_layers
    from strategies.plugins.moe_experts import attach_experts

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, attn_implementation="eager"), add_pooling_layer=False)
    info = ScenarioInfo(name="tiny", family="split_text", setting="class_il", n_experiences=2, n_outputs=4,
                        input_shape=(2, 6), modality="text", classes_per_experience=((0, 1), (2, 3)), sample_bytes=96)
    backbone = MiniLM(bert, MiniLMParams(frozen_layers=1), info)  # block 0 frozen (cached), block 1 adapted
    config = LoraConfig(r=4, lora_alpha=8, target_modules=default_targets(backbone))
    (mixture,) = attach_experts(backbone, n_experts=3, top_k=2, lora_config=config)
    assert len(lora_layers(backbone)) == 2 and backbone.uses_prefix_cache()
    names = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert all(".layer.1." in n and ("lora_" in n or "moe_router" in n) or n.startswith("head.") for n in names)
    x = torch.stack([torch.randint(1, 50, (3, 6)), torch.ones(3, 6, dtype=torch.long)], dim=1)  # (B, 2, L)
    backbone.train()(x).sum().backward()
    assert mixture.router.w_gate.grad is not None and mixture.counts.sum() == 3 * 2  # 3 samples x top-2
    assert (mixture.gates > 0).sum(1).tolist() == [2, 2, 2]


def test_report_shows_router_forgetting(results):
    from reports.routing import routing_summary

    s = routing_summary(results["class_il"]["routing"])
    r = results["class_il"]["routing"]
    assert s["router_forgetting"] == pytest.approx((r["changed"][1][0][0] + r["changed"][1][1][0]) / 2)
    assert all(0.0 <= v <= 1.0 and not math.isnan(v) for v in s.values())


def test_report_section_appears_only_with_routing(tmp_path, results):
    from benchmarks.results.store import write_json_atomic
    from reports.build import build_report

    write_json_atomic(tmp_path / "moe.json", results["class_il"])
    text = (build_report(tmp_path).parent / "index.md").read_text()
    assert "## Router forgetting" in text
    section = text.split("## Router forgetting")[1]
    assert "MoE-Adapters" in section.split("\n## ")[0]  # its table, before the next section
    (naive,) = tiny_specs(["naive"])
    write_json_atomic(tmp_path / "naive" / "naive.json", run_one(naive))
    text = (build_report(tmp_path / "naive").parent / "index.md").read_text()
    assert "Router forgetting" not in text
