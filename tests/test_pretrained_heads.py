"""Closed-form heads on frozen features (ncm, slda, ranpac, klda): they learn, keep old classes, compute their
statistics exactly and from training data only, choose RanPAC's ridge on training data, count their state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_specs

from benchmarks.engine.runner import _build, run_one
from strategies.plugins.class_stats import ClassStatsPlugin
from strategies.plugins.closed_form_math import ridge_solve, select_ridge

HEADS = ("ncm", "slda", "ranpac", "klda")
SMALL = {"ranpac": {"M": 300}, "klda": {"D": 300}}  # the random feature widths, small for speed
STREAM = {"n_classes": 6, "n_experiences": 3, "train_per_class": 20, "test_per_class": 10}


def _spec(name: str, setting: str = "class_il", hparams: dict | None = None, **stream):
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", model={"name": "mlp"},
                         hparams={name: {**SMALL.get(name, {}), **(hparams or {})}}, **{**STREAM, **stream})
    return spec


def _trained(name: str, setting: str = "class_il", hparams: dict | None = None, upto: int | None = None, **stream):
    """(scenario, strategy, plugin) after training on the first ``upto`` experiences (all by default)."""
    scenario, strategy = _build(_spec(name, setting, hparams, **stream), torch.device("cpu"))
    for exp in list(scenario.benchmark.train_stream)[:upto]:
        strategy.train(exp)
    (plugin,) = [p for p in strategy.plugins if isinstance(p, ClassStatsPlugin)]
    return scenario, strategy, plugin


def _train_features(strategy, scenario, upto: int | None = None):
    """Features (n, D) float64 numpy, labels and task labels of the training experiences, recomputed."""
    xs, ys, ts = [], [], []
    for exp in list(scenario.benchmark.train_stream)[:upto]:
        ds = exp.dataset
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        with torch.no_grad():
            xs.append(strategy.model.features(x).double().numpy())
        ys += [int(ds[i][1]) for i in range(len(ds))]
        ts += [int(ds[i][2]) for i in range(len(ds))]
    return np.concatenate(xs), np.array(ys), np.array(ts)


@pytest.mark.parametrize("setting", ["class_il", "task_il", "domain_il"])
@pytest.mark.parametrize("name", HEADS)
def test_head_learns_each_experience_and_keeps_it(name, setting):
    result = run_one(_spec(name, setting))
    assert result["status"] == "ok", result["error"]
    R = np.array(result["accuracy_matrix"])
    assert np.diag(R).min() >= 0.9, R  # chance: 1/6 (class-IL), 1/2 (task-, domain-IL)
    assert R[-1].min() >= 0.9, R  # separable classes: nothing forgotten
    if setting == "class_il":
        assert R[0, 1:].max() == 0.0, R  # classes not trained yet are never predicted
    assert result["replay_memory"]["samples"] == 0


def test_epochs_are_ignored_and_the_encoder_does_not_change():
    spec = _spec("slda")
    spec.train["epochs"] = 5
    scenario, strategy = _build(spec, torch.device("cpu"))
    assert strategy.train_epochs == 1  # NoSGD: each sample is added to the statistics once
    before = {k: v.clone() for k, v in strategy.model.state_dict().items() if not k.startswith("head.")}
    strategy.train(scenario.benchmark.train_stream[0])
    (plugin,) = [p for p in strategy.plugins if isinstance(p, ClassStatsPlugin)]
    assert plugin.learner.counts.sum() == 2 * STREAM["train_per_class"]
    after = {k: v for k, v in strategy.model.state_dict().items() if not k.startswith("head.")}
    assert set(before) == set(after) and all(torch.equal(before[k], after[k]) for k in after)


@pytest.mark.parametrize("setting", ["class_il", "task_il", "domain_il"])
def test_slda_and_ncm_statistics_equal_the_batch_computation(setting):
    for name in ("ncm", "slda"):
        scenario, strategy, plugin = _trained(name, setting)
        X, y, t = _train_features(strategy, scenario)
        slots = y + (t * scenario.info.n_outputs if setting == "task_il" else 0)
        L = plugin.learner
        for k in np.unique(slots):
            np.testing.assert_allclose(L.sums[k].numpy(), X[slots == k].sum(0), rtol=1e-10, atol=1e-9)
            assert L.counts[k] == (slots == k).sum()
        if name == "slda":
            centred = X - np.stack([X[slots == k].mean(0) for k in slots])
            np.testing.assert_allclose(L.scatter.numpy(), centred.T @ centred, rtol=1e-9, atol=1e-8)


def test_ranpac_gram_and_targets_equal_the_batch_computation():
    scenario, strategy, plugin = _trained("ranpac")
    X, y, _ = _train_features(strategy, scenario)
    L = plugin.learner
    with torch.no_grad():  # h = relu(x W) as the learner computes it (float32), accumulated here in float64
        H = L.phi(torch.from_numpy(X).float())[0].double().numpy()
    np.testing.assert_allclose(L.gram.numpy(), H.T @ H, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(L.targets.numpy(), H.T @ np.eye(len(L.counts))[y], rtol=1e-6, atol=1e-8)


def test_klda_statistics_equal_the_batch_computation_in_rff_space():
    scenario, strategy, plugin = _trained("klda", hparams={"n_models": 2})
    X, y, _ = _train_features(strategy, scenario)
    L = plugin.learner
    for r in range(2):
        with torch.no_grad():  # the random Fourier features as the learner computes them (float32)
            Z = L.phi(torch.from_numpy(X).float())[r].double().numpy()
        for k in np.unique(y):
            np.testing.assert_allclose(L.sums[r, k].numpy(), Z[y == k].sum(0), rtol=1e-6, atol=1e-8)
        centred = Z - np.stack([Z[y == k].mean(0) for k in y])
        np.testing.assert_allclose(L.scatter[r].numpy(), centred.T @ centred, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(Z, np.sqrt(2 / 300) * np.cos(X @ L.omega[1].double().numpy()
                                                            + L.phase[1].double().numpy()), atol=1e-5)
    assert not torch.equal(L.omega[0], L.omega[1])  # members have their own random features


@pytest.mark.parametrize("name", HEADS)
def test_old_class_statistics_do_not_change(name):
    _, _, plugin = _trained(name, upto=1)
    before = {k: v.clone() for k, v in plugin.learner.state_dict().items()}
    _, _, plugin = _trained(name)
    after = plugin.learner.state_dict()
    old = slice(0, 2)  # the first experience's classes
    if name in ("ncm", "slda"):
        assert torch.equal(after["sums"][old], before["sums"][old])
    if name == "klda":
        assert torch.equal(after["sums"][:, old], before["sums"][:, old])
    assert torch.equal(after["counts"][old], before["counts"][old])
    if name == "ranpac":
        assert torch.equal(after["targets"][:, old], before["targets"][:, old])
        assert torch.equal(after["projection"], before["projection"])


@pytest.mark.parametrize("name", HEADS)
def test_no_statistic_comes_from_test_data(name):
    scenario, strategy, plugin = _trained(name)
    state = {k: v.clone() for k, v in plugin.learner.state_dict().items()}
    readout = (plugin.head.weight.clone(), plugin.head.bias.clone())
    seen = []
    update = plugin.learner.update
    plugin.learner.update = lambda f, slots: (seen.append(len(f)), update(f, slots))
    other, _ = _build(_spec(name, test_per_class=30, noise=3.0), torch.device("cpu"))  # other, noisier test data
    strategy.eval(scenario.benchmark.test_stream)
    strategy.eval(other.benchmark.test_stream)
    assert seen == [], "evaluation fed the statistics"
    assert all(torch.equal(state[k], v) for k, v in plugin.learner.state_dict().items())
    assert torch.equal(readout[0], plugin.head.weight) and torch.equal(readout[1], plugin.head.bias)
    total = sum(len(e.dataset) for e in scenario.benchmark.train_stream)
    assert plugin.learner.counts.sum() == total  # every training sample counted once, nothing else


def test_ranpac_ridge_is_chosen_on_training_data_only():
    chosen = []
    for test_per_class in (10, 30):  # other test samples; the stream draws its test data after the training data
        _, _, plugin = _trained("ranpac", test_per_class=test_per_class)
        chosen.append(list(plugin.learner.ridges))
    assert chosen[0] == chosen[1] and len(chosen[0]) == STREAM["n_experiences"]
    _, _, plugin = _trained("ranpac", hparams={"ridges": (1e3,)})
    assert plugin.learner.ridges == [1e3] * STREAM["n_experiences"]


def test_select_ridge_dual_equals_primal_and_prefers_the_least_validation_error():
    gen = torch.Generator().manual_seed(0)
    H = torch.randn(40, 60, dtype=torch.float64, generator=gen)
    Y = torch.nn.functional.one_hot(torch.arange(40) % 4, 4).double()
    W_primal = ridge_solve(H.T @ H, H.T @ Y, 0.5)
    W_dual = H.T @ ridge_solve(H @ H.T, Y, 0.5)
    torch.testing.assert_close(W_primal, W_dual)
    ridges = (1e-2, 1e0, 1e2)
    r_dual, losses_dual = select_ridge(H, Y, ridges, 0.8, torch.Generator().manual_seed(1))  # 32 fit < 60: dual
    r_primal, losses_primal = select_ridge(H[:, :20], Y, ridges, 0.8, torch.Generator().manual_seed(1))  # primal
    assert r_dual == ridges[int(np.argmin(losses_dual))] and r_primal == ridges[int(np.argmin(losses_primal))]
    # the primal branch's losses equal a direct computation on the same split
    order = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    f, v = order[:32], order[32:]
    W = ridge_solve(H[f][:, :20].T @ H[f][:, :20], H[f][:, :20].T @ Y[f], 1e0)
    assert losses_primal[1] == pytest.approx(float(((H[v][:, :20] @ W - Y[v]) ** 2).mean()))


def test_extra_state_counts_the_kept_tensors():
    K, D = STREAM["n_classes"], 400  # MLP features
    f64, f32 = 8, 4
    expected = {
        "ncm": K * D * f64 + K * f64,
        "slda": K * D * f64 + K * f64 + D * D * f64,
        "ranpac": D * 300 * f32 + 300 * 300 * f64 + 300 * K * f64 + K * f64,
        "klda": 2 * (D * 300 * f32 + 300 * f32 + K * 300 * f64 + 300 * 300 * f64) + K * f64,
    }
    for name, nbytes in expected.items():
        result = run_one(_spec(name, hparams={"n_models": 2} if name == "klda" else None))
        assert result["extra_state"]["bytes"] == nbytes, name


@pytest.mark.parametrize("name", HEADS)
def test_head_is_not_the_untrained_classifier(name):
    scenario, strategy, _ = _trained(name)
    from benchmarks.engine.runner import seed_everything
    from benchmarks.models import MODELS, build_model

    _, untrained = _build(_spec(name), torch.device("cpu"))
    fresh_model = untrained.model
    seed_everything(0)  # as the runner builds the model: the same MLP with its own random linear head
    linear = build_model("mlp", MODELS.get("mlp").params(), scenario.info)
    x = torch.cat([torch.stack([e.dataset[i][0] for i in range(len(e.dataset))]) for e in scenario.benchmark.test_stream])
    y = torch.cat([torch.tensor([int(e.dataset[i][1]) for i in range(len(e.dataset))]) for e in scenario.benchmark.test_stream])
    strategy.model.eval()
    with torch.no_grad():
        pred, base, before = strategy.model(x).argmax(1), linear(x).argmax(1), fresh_model(x).argmax(1)
    assert (pred == y).float().mean() >= 0.9
    assert (pred != base).float().mean() >= 0.5 and (base == y).float().mean() < 0.5
    assert (before == 0).all()  # before any experience the head knows no class


def test_klda_ensemble_averages_member_probabilities():
    scenario, strategy, plugin = _trained("klda", hparams={"n_models": 3})
    head = plugin.head
    x = torch.stack([scenario.benchmark.test_stream[0].dataset[i][0] for i in range(5)])
    with torch.no_grad():
        f = strategy.model.features(x)
        z = torch.baddbmm(head.bias[:, None], plugin.learner.phi(f).float(), head.weight)  # (3, 5, K)
        torch.testing.assert_close(head(f).exp(), torch.softmax(z, -1).mean(0), rtol=1e-4, atol=1e-6)
    assert (head(f).argmax(1) == 0).float().mean() >= 0.8  # experience 0's samples of class 0 come first


@pytest.mark.integration
def test_heads_run_on_your_own_text_files_unchanged(monkeypatch):
    """The two-file example suite (own intents, frozen MiniLM) with the heads instead of its strategies."""
    from pathlib import Path

    from benchmarks.config.loader import load_suite

    monkeypatch.chdir(Path(__file__).parents[1])  # the example's paths are relative to the repository root
    specs = load_suite("benchmarks/suites/examples/own_two_files.toml",
                       ["suite.strategies=['ncm', 'slda', 'ranpac', 'klda']"])
    for spec in specs:
        result = run_one(spec)
        assert result["status"] == "ok", result["error"]
        R = np.array(result["accuracy_matrix"])
        assert len(R) == 3 and np.diag(R).min() > 0.5, (spec.strategy, R)  # 2 intents per experience
