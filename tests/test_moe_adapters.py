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
    sel = r["selection_accuracy"]
    assert all((sel[i][j] is None) == (j > i) for i in range(T) for j in range(T))
    assert sel[0][0] == 1.0  # one experience fitted: one router to choose
    if setting == "task_il":
        assert sel[1] == [1.0, 1.0]  # the task label picks the router


def test_added_parameters_are_the_pool_then_a_router_and_a_selector_fit_per_experience(results):
    # the tiny ViT: 2 blocks, D = 64, LoRA rank 8 on qkv (64 -> 192), 22 experts; per experience and
    # block a router W_g, W_n (D x E); per experience the selector's mean (D) and basis (D x min(100, D))
    pool, routers, selector = 2 * 22 * 8 * (64 + 192), 2 * 2 * 64 * 22, 64 + 64 * 64
    assert results["class_il"]["added_parameters"] == [pool + routers + selector, routers + selector]
    r = results["class_il"]["routing"]
    frozen = sum(len(o) for o in r["owned"][0]) * 8 * (64 + 192)  # the 2 x 2 experts frozen after exp 0
    assert r["trainable_parameters"] == [pool + routers, pool - frozen + routers]
    assert results["class_il"]["extra_state"]["parameters"] == 0  # the selector lives in the model


def test_is_not_naive(results):
    (naive,) = tiny_specs(["naive"], model=VIT)
    assert results["class_il"]["accuracy_matrix"] != run_one(naive)["accuracy_matrix"]


def test_router_forgetting_counts_samples_whose_top_k_set_moved():
    from strategies.plugins.expert_routing import RoutingRecord

    log = RoutingRecord([5], experts=4, top_k=2, freeze_used=True)
    log.record["owned"] = [[[0, 1]], [[2, 3]]]
    first = torch.tensor([[0, 1], [0, 1], [0, 2], [1, 3]])  # 4 test samples of experience 0
    log.now, log.choice = {0: [first], 1: [torch.tensor([[2, 3]])]}, {0: torch.zeros(4), 1: torch.zeros(1)}
    log.finish(0)
    moved = torch.tensor([[0, 1], [2, 3], [0, 2], [0, 3]])  # samples 1 and 3 moved
    log.now, log.choice = {0: [moved], 1: [torch.tensor([[2, 3]])]}, {0: torch.tensor([0, 0, 1, 1]), 1: torch.ones(1)}
    log.finish(1)
    r = log.record
    assert r["changed"] == [[[0.0, None]], [[0.5, 0.0]]]
    assert r["routing_accuracy"] == [[[6 / 8, None]], [[4 / 8, 1.0]]]  # slots on experts 0, 1 (exp 1: 2, 3)
    assert r["selection_accuracy"] == [[1.0, None], [0.5, 1.0]]
    assert r["load"][1][0][0] == [3 / 8, 1 / 8, 2 / 8, 2 / 8]


def test_selector_sends_a_sample_to_the_experience_it_resembles():
    from strategies.plugins.pca_selector import PCASelector

    torch.manual_seed(0)
    a, b = torch.randn(200, 16) * 0.1 + 2.0, torch.randn(200, 16) * 0.1 - 2.0
    selector = PCASelector(16, n_experiences=3, dims=4)
    assert selector.select(a[:3]).tolist() == [0, 0, 0]  # nothing fitted yet
    for i, x in enumerate((a[:100], b[:100])):
        selector.collect(x)
        selector.fit(i)
    assert selector.select(torch.cat([a[100:], b[100:]])).tolist() == [0] * 100 + [1] * 100


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
    routers = [m.routers[0].w_gate.detach().clone() for m in mixtures]
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
        assert torch.equal(m.routers[0].w_gate, routers[b]) and routers[b].abs().sum() > 0  # exp 0's router
        assert m.routers[1].w_gate.abs().sum() > 0  # exp 1's router learned (from 0) while exp 0's stayed
        assert any(_changed(m, e, experts[b][e]) for e in range(22) if e not in owned[b])  # the others train
        assert all(_changed(m, e, experts[b][e]) != freeze_used for e in owned[b])


def test_routing_reads_no_task_label_in_class_il():
    strategy, x, _, _ = _after("class_il")
    model = strategy.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, torch.full((len(x),), 7)), model(x, None))


def test_on_a_tiny_bert_only_the_fine_tuned_block_gets_experts_and_the_prefix_stays_cached():
    from helpers import tiny_minilm
    from peft import LoraConfig

    from strategies.plugins.lora_modules import default_targets, lora_layers
    from strategies.plugins.moe_experts import attach_experts

    backbone = tiny_minilm(frozen_layers=1)  # block 0 frozen (cached), block 1 adapted
    config = LoraConfig(r=4, lora_alpha=8, target_modules=default_targets(backbone))
    (mixture,) = attach_experts(backbone, n_experts=3, top_k=2, lora_config=config, n_routers=2,
                                selector_dims=4, route_by_task=False)
    mixture.routing.current = 0
    mixture.set_trainable()
    assert len(lora_layers(backbone)) == 2 and backbone.uses_prefix_cache()
    names = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert all(".layer.1." in n and ("lora_" in n or "moe_router" in n) or n.startswith("head.") for n in names)
    x = torch.stack([torch.randint(1, 50, (3, 6)), torch.ones(3, 6, dtype=torch.long)], dim=1)  # (B, 2, L)
    backbone.train()(x).sum().backward()
    assert mixture.routers[0].w_gate.grad is not None and mixture.routers[1].w_gate.grad is None
    assert mixture.counts.sum() == 3 * 2  # 3 samples x top-2
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
