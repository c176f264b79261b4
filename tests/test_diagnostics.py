"""Per-layer diagnostics: probe / CKA / KL math, the layer reader (frozen prefix, multi-head), the runner hook."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny_doc, tiny_specs

from benchmarks.config.loader import ConfigError, expand
from benchmarks.core import ScenarioInfo
from benchmarks.diagnostics.measures import attention_kl, linear_cka, probe_accuracy
from benchmarks.diagnostics.reader import LayerReader, prepare_inputs
from benchmarks.models import MODELS, build_model
from benchmarks.models.vit import ViTParams

# -- measures on hand-made inputs ------------------------------------------------------------


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_cka_of_a_representation_with_itself_is_one():
    x = _randn(50, 8)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_invariant_to_orthogonal_transforms_isotropic_scaling_and_shifts():
    x = _randn(50, 8)
    q, _ = torch.linalg.qr(_randn(8, 8, seed=1))
    assert linear_cka(x, 3.5 * x @ q + 2.0) == pytest.approx(1.0, abs=1e-9)


def test_cka_is_not_invariant_to_anisotropic_scaling_and_drops_for_unrelated_features():
    x = _randn(200, 8)
    stretched = x * torch.tensor([10.0, 1, 1, 1, 1, 1, 1, 1])
    assert linear_cka(x, stretched) < 0.9
    assert linear_cka(x, _randn(200, 8, seed=2)) < 0.2


def test_cka_on_a_hand_computed_case():
    # x = [-1, 0, 1] (centred), y = [1, 0, 1] -> centred [1/3, -2/3, 1/3]: y^T x = 0 -> CKA 0
    x = torch.tensor([[-1.0], [0.0], [1.0]])
    assert linear_cka(x, torch.tensor([[1.0], [0.0], [1.0]])) == pytest.approx(0.0, abs=1e-12)
    # two columns: CKA(x, [x, z]) with z orthogonal to x and ||z|| = ||x||: <K_x, K_y> / (|K_x| |K_y|) = 1 / sqrt(2)
    y = torch.cat([x, torch.tensor([[1.0], [-2.0], [1.0]]) / math.sqrt(3)], 1)
    assert linear_cka(x, y) == pytest.approx(1 / math.sqrt(2), rel=1e-6)  # float32 inputs


def test_kl_of_identical_maps_is_zero_and_positive_otherwise():
    a = torch.softmax(_randn(2, 3, 5, 5), -1)
    assert attention_kl(a, a) == 0.0
    b = torch.softmax(_randn(2, 3, 5, 5, seed=1), -1)
    assert attention_kl(a, b) > 0
    old = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    new = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]]])
    assert attention_kl(old, new) == pytest.approx(math.log(2) / 2, rel=1e-6)  # row 0: log 2, row 1: 0


def test_probe_separates_separable_classes_and_is_at_chance_on_random_labels():
    centres = 5 * _randn(3, 16, seed=3)
    y = torch.arange(3).repeat_interleave(40)
    x = centres[y] + _randn(120, 16, seed=4)
    assert probe_accuracy(x[::2], y[::2], x[1::2], y[1::2]) == 1.0
    noise, labels = _randn(400, 16, seed=5), torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(6))
    assert probe_accuracy(noise[:200], labels[:200], noise[200:], labels[200:]) < 0.4
    assert probe_accuracy(x[::2], y[::2], x[1::2], y[1::2] + 10) == 0.0  # labels the probe never saw


def test_probe_keeps_the_original_label_values_and_is_deterministic():
    x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    y = torch.tensor([7, 7, 3, 3])
    assert probe_accuracy(x, y, torch.tensor([[0.05], [5.05]]), torch.tensor([7, 3])) == 1.0
    assert probe_accuracy(x, y, x, y, ridge=0.5) == probe_accuracy(x, y, x, y, ridge=0.5)


# -- the layer reader --------------------------------------------------------------------------


def _vit(depth=3):
    info = ScenarioInfo(name="t", family="synthetic", setting="class_il", n_experiences=2, n_outputs=4,
                        input_shape=(1, 28, 28), modality="image", classes_per_experience=((0, 1), (2, 3)),
                        sample_bytes=3136)
    torch.manual_seed(0)
    return build_model("vit", ViTParams(depth=depth, dim=32), info).eval()


def test_reader_returns_every_blocks_pooled_output_and_maps():
    model, x = _vit(), _randn(10, 1, 28, 28)
    r = LayerReader(x, torch.zeros(10, dtype=torch.long), batch_size=4, with_maps=True).read(model)
    full = model.encode(x, output_attentions=True)
    assert len(r.reps) == len(r.maps) == 3
    for b in range(3):
        torch.testing.assert_close(r.reps[b], model.encode(x, upto=b + 1).hidden.mean(1))
        torch.testing.assert_close(r.maps[b], full.attentions[b])
    assert LayerReader(x, torch.zeros(10), batch_size=4, with_maps=False).read(model).maps == []


def test_reader_reuses_the_frozen_prefix_until_its_weights_change():
    model, x = _vit(), _randn(6, 1, 28, 28)
    model.freeze_below(2)
    reader = LayerReader(x, torch.zeros(6, dtype=torch.long), batch_size=4, with_maps=True)
    first = reader.read(model)
    with torch.no_grad():
        model.blocks[2].mlp[0].weight.add_(1.0)  # a trainable block moves: only its output changes
    second = reader.read(model)
    assert second.reps[0] is first.reps[0] and second.maps[1] is first.maps[1]  # from the cache
    assert not torch.allclose(second.reps[2], first.reps[2])
    with torch.no_grad():
        model.blocks[0].mlp[0].weight.add_(1.0)  # a frozen weight changed (e.g. a reset): recomputed
    third = reader.read(model)
    fresh = LayerReader(x, torch.zeros(6, dtype=torch.long), batch_size=4, with_maps=True).read(model)
    assert not torch.allclose(third.reps[0], first.reps[0])
    for b in range(3):
        torch.testing.assert_close(third.reps[b], fresh.reps[b])
        torch.testing.assert_close(third.maps[b], fresh.maps[b])


def _text_model(setting: str, frozen_layers: int, name: str = "text_transformer"):
    info = ScenarioInfo(name="t", family="split_text", setting=setting, n_experiences=2, n_outputs=2,
                        input_shape=(2, 12), modality="text", classes_per_experience=((0, 1), (2, 3)),
                        sample_bytes=2 * 12 * 8)
    torch.manual_seed(0)
    return build_model(name, MODELS.get(name).params(frozen_layers=frozen_layers), info)


def test_reader_on_text_trims_padding_and_runs_a_multi_head_for_unseen_tasks():
    model = _text_model("task_il", frozen_layers=1).eval()
    ids = torch.randint(1000, 2000, (5, 12), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(12) < torch.tensor([3, 5, 8, 4, 2])[:, None]).long()
    x = prepare_inputs(model, torch.stack([ids * mask, mask], 1))
    assert x.shape == (5, 2, 8)  # the all-padding tail is gone
    r = LayerReader(x, torch.full((5,), 7), batch_size=2, with_maps=True).read(model)  # task 7 has no head
    full = model.encode(x, output_attentions=True)
    last = full.hidden * x[:, 1, :, None]
    torch.testing.assert_close(r.reps[-1], last.sum(1) / x[:, 1].sum(1, keepdim=True))
    torch.testing.assert_close(r.maps[0], full.attentions[0])


def test_reader_on_minilm_with_a_frozen_prefix_matches_a_full_pass():
    model = _text_model("class_il", frozen_layers=4, name="minilm").eval()
    ids = torch.randint(1000, 2000, (4, 12), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(12) < torch.tensor([3, 12, 8, 5])[:, None]).long()
    x = prepare_inputs(model, torch.stack([ids * mask, mask], 1))
    reader = LayerReader(x, torch.zeros(4, dtype=torch.long), batch_size=3, with_maps=True)
    first, again = reader.read(model), reader.read(model)
    assert again.reps[3] is first.reps[3] and len(first.reps) == len(first.maps) == 6  # blocks 0-3 cached
    with torch.no_grad():
        full = model.encode(x, output_attentions=True)
        for b in (3, 5):  # a cached block, a trainable one (BertLayer returns its hidden states only)
            h = model.encode(x, upto=b + 1).hidden * x[:, 1, :, None]
            torch.testing.assert_close(again.reps[b], h.sum(1) / x[:, 1].sum(1, keepdim=True), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(again.maps[b], full.attentions[b], atol=1e-6, rtol=1e-5)


# -- through the runner ----------------------------------------------------------------------


def _run(strategy: str, hparams=None, **scenario):
    from benchmarks.engine.runner import run_one

    (spec,) = tiny_specs([strategy], model={"name": "vit", "depth": 2}, hparams={strategy: hparams or {}},
                         n_experiences=2, train_per_class=12, test_per_class=6, **scenario)
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    return result


def test_runner_records_diagnostics_without_changing_the_run():
    with_diag = _run("naive", diagnostics={"fit_samples": 20, "test_samples": 10, "drift_samples": 8})
    without = _run("naive")
    assert with_diag["accuracy_matrix"] == without["accuracy_matrix"]  # measuring changes nothing
    assert "diagnostics" not in without and "diagnostics" not in without["config"]
    d = with_diag["diagnostics"]
    assert d["blocks"] == 2 and d["samples"] == {"fit": [20, 20], "test": [10, 10], "drift": 8}
    assert len(d["time_s"]) == 2 and with_diag["config"]["diagnostics"]["fit_samples"] == 20
    for key in ("probe_accuracy", "attention_kl", "cka"):
        assert [[len(row) for row in m] for m in d[key]] == [[2, 2], [2, 2]], key  # [i][block][j]
    for b in range(2):
        assert d["attention_kl"][0][b] == [0.0, None] and d["cka"][0][b] == [1.0, None]
        assert d["attention_kl"][1][b][1] == 0.0 and d["attention_kl"][1][b][0] > 0
        assert d["cka"][1][b][1] == 1.0 and d["cka"][1][b][0] < 1.0
        assert d["probe_accuracy"][0][b][1] is None  # experience 1 not trained yet: not measured
        assert all(0.0 <= a <= 1.0 for a in (*d["probe_accuracy"][1][b], d["probe_accuracy"][0][b][0]))


def test_attention_regularisation_shows_up_as_less_attention_drift():
    small = {"fit_samples": 4, "test_samples": 4, "drift_samples": 8}
    naive = _run("naive", diagnostics=small)["diagnostics"]["attention_kl"][1]
    reg = _run("attn_reg", {"attn_lambda": 100.0}, diagnostics=small)["diagnostics"]["attention_kl"][1]
    assert sum(reg[b][0] for b in range(2)) < 0.5 * sum(naive[b][0] for b in range(2))


@pytest.mark.parametrize(
    ("value", "message"),
    [(3, "must be true, false or a table"), ({"fit_sample": 5}, "did you mean 'fit_samples'"),
     ({"drift_samples": 1}, "drift_samples must be >= 2")],
)
def test_bad_diagnostics_options_are_named(value, message):
    doc = tiny_doc(["naive"], model={"name": "vit"}, diagnostics=value)
    with pytest.raises(ConfigError, match=message):
        expand(doc, name="t", where="t.toml")


def test_diagnostics_need_a_transformer():
    with pytest.raises(ConfigError, match="needs a Transformer model"):
        expand(tiny_doc(["naive"], diagnostics=True), name="t", where="t.toml")
    assert all(s.diagnostics is None for s in expand(tiny_doc(["naive"], diagnostics=False), name="t", where="t"))


# -- the composed strategies -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "base", "plugin"), [("replay+attn_reg", "replay", "ReplayPlugin"),
                                                      ("lwf+attn_reg", "lwf", "LwFPlugin")])
def test_composed_strategies_hold_both_plugins_and_differ_from_their_base(name, base, plugin):
    from benchmarks.engine.evaluation import make_evaluator
    from strategies import STRATEGIES, StrategyContext, TrainConfig

    entry = STRATEGIES.get(name)
    assert entry.meta["needs_transformer"]
    hp = {"mem_size": 8} if base == "replay" else {}
    ctx = StrategyContext(model=_vit(2), info=ScenarioInfo(
        name="t", family="synthetic", setting="class_il", n_experiences=2, n_outputs=4, input_shape=(1, 28, 28),
        modality="image", classes_per_experience=((0, 1), (2, 3)), sample_bytes=3136),
        train=TrainConfig(), device=torch.device("cpu"), evaluator=make_evaluator())
    strategy = entry.builder(ctx, entry.params(attn_lambda=3.0, attn_layers=(1,), **hp))
    plugins = {type(p).__name__: p for p in strategy.plugins}
    assert plugin in plugins and plugins["AttentionRegPlugin"].lambda_ == 3.0
    assert plugins["AttentionRegPlugin"].layers == (1,)
    small = {"fit_samples": 4, "test_samples": 4, "drift_samples": 8}
    combined = _run(name, {"attn_lambda": 100.0, **hp}, diagnostics=small)
    alone = _run(base, hp, diagnostics=small)
    kl = [sum(r["diagnostics"]["attention_kl"][1][b][0] for b in range(2)) for r in (combined, alone)]
    assert kl[0] < 0.5 * kl[1]  # the attention penalty acts inside the composition
    if base == "replay":
        assert combined["replay_memory"] == alone["replay_memory"] == {"samples": 8, "bytes": 8 * (3136 + 1)}  # float32 input + 1 B label


# -- the report section ------------------------------------------------------------------------

HAND_DIAG = {
    "blocks": 2, "frozen_below": None,
    "probe_accuracy": [[[1.0, None], [0.9, None]], [[0.8, 1.0], [0.6, 1.0]]],  # forgetting 0.2 / 0.3
    "attention_kl": [[[0.0, None], [0.0, None]], [[0.05, 0.0], [0.2, 0.0]]],
    "cka": [[[1.0, None], [1.0, None]], [[0.9, 1.0], [0.7, 1.0]]],  # drift 0.1 / 0.3
    "samples": {"fit": [4, 4], "test": [4, 4], "drift": 8}, "setup_s": 0.0, "time_s": [0.1, 0.1], "params": {},
}


def test_probe_forgetting_ignores_unmeasured_cells_and_matches_chaudhry_otherwise():
    import numpy as np

    from benchmarks.results.metrics import forgetting
    from reports.diagnostics import probe_forgetting

    full = np.array([[0.9, 0.2, 0.1], [0.7, 0.8, 0.3], [0.5, 0.6, 0.9]])
    assert probe_forgetting(np.triu(np.full((3, 3), np.nan), 1) + np.tril(full)) == pytest.approx((0.4 + 0.2) / 2)
    lower = np.tril(full) + np.triu(np.full((3, 3), 0.0), 1)
    assert probe_forgetting(lower) == pytest.approx(forgetting(lower))


def test_run_summary_on_hand_made_diagnostics():
    import numpy as np

    from reports.diagnostics import run_summary

    s = run_summary(HAND_DIAG, np.array([[0.9, 0.1], [0.6, 0.8]]), 2.0)
    assert s["head"] == pytest.approx(0.3)
    assert s["probe_forgetting"] == pytest.approx([0.2, 0.3])
    assert s["cka_drift"] == pytest.approx([0.1, 0.3])
    assert s["attention_kl"] == pytest.approx([0.05, 0.2])
    assert s["cost"] == pytest.approx(0.1)


def test_report_has_the_diagnostics_section_only_when_runs_recorded_them(tmp_path):
    from test_report import HAND_R, make_run

    from benchmarks.results.store import write_json_atomic
    from reports import build_report

    for seed in (0, 1):
        write_json_atomic(tmp_path / "res" / f"a{seed}.json",
                          make_run("s", "class_il", "naive", seed, HAND_R, diagnostics=HAND_DIAG))
        write_json_atomic(tmp_path / "res" / f"b{seed}.json", make_run("s", "class_il", "replay", seed, HAND_R))
    build_report(tmp_path / "res", tmp_path / "out")
    text = (tmp_path / "out" / "index.md").read_text()
    section = text[text.index("## Per-layer diagnostics"): text.index("## Metric definitions")]
    assert "| 2 | 30.0 ± 0.0 | 30.0 ± 0.0 | 20.0 ± 0.0 / 30.0 ± 0.0 | 0.100 ± 0.000 / 0.300 ± 0.000 |" in section
    assert "| 0.050 ± 0.000 / 0.200 ± 0.000 | 8 ± 4 |" in section  # cost: 0.2 s of 2 s and of 4 s
    assert "Replay" not in section  # no diagnostics recorded
    assert "**Figure 5.**" in section  # numbered after the scenario's four figures
    assert (tmp_path / "out" / "figures" / "s_diagnostics.png").stat().st_size > 1000
    write_json_atomic(tmp_path / "plain" / "b.json", make_run("s", "class_il", "replay", 0, HAND_R))
    build_report(tmp_path / "plain", tmp_path / "out2")
    assert "Per-layer diagnostics" not in (tmp_path / "out2" / "index.md").read_text()


# -- the attention penalty from MiniLM's cached prefix (strategies/plugins/attention_reg.py) --------


@pytest.mark.parametrize("setting", ["class_il", "task_il"])
def test_attention_penalty_from_the_cached_prefix_equals_the_full_pass(setting):
    import copy

    from strategies.plugins.attention_reg import AttentionRegPlugin, cached_start

    cached = _text_model(setting, frozen_layers=4, name="minilm")
    plain = copy.deepcopy(cached)
    plain.prefix_cache = None  # reads the maps from the input, through every block
    assert cached_start(cached, (4, 5)) == 4 and cached_start(plain, (4, 5)) == 0
    assert cached_start(cached, ()) == 0 and cached_start(cached, (3, 5)) == 0  # a frozen block is asked for
    ids = torch.randint(1000, 2000, (4, 12), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(12) < torch.tensor([3, 12, 8, 5])[:, None]).long()
    x = torch.stack([ids * mask, mask], 1)
    penalties, grads = [], []
    for model in (cached, plain):
        plugin = AttentionRegPlugin(lambda_=1.0, layers=(4, 5))
        plugin.snapshot = copy.deepcopy(model).eval()
        with torch.no_grad():
            model.blocks[4].attention.self.query.weight.add_(0.05)  # the same move in both models
        pen = plugin.penalty(model, x)
        pen.backward()
        penalties.append(pen.item())
        grads.append(model.blocks[4].attention.self.query.weight.grad.clone())
    assert penalties[0] > 0
    assert penalties[0] == pytest.approx(penalties[1], rel=1e-4)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-3, atol=1e-7)
    misses = cached.prefix_cache.misses
    AttentionRegPlugin(lambda_=1.0, layers=(4, 5))._maps(cached, x)
    assert cached.prefix_cache.misses == misses  # the layer-4 states were reused, not recomputed
