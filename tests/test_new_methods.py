"""The methods of issue 13 (l1, coreset replay, La-MAML, LoRA per experience): each one's own checks,
including one that fails if the method does nothing. The registry-wide tests (test_strategies.py,
test_fastdata.py) run them in every setting they declare."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_specs

from benchmarks.engine.runner import run_one


def _run(name: str, setting: str = "class_il", model: str = "mlp", **hparams) -> dict:
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", model={"name": model}, hparams={name: hparams})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    return result


# -- l1 (strategies/plugins/l2.py with norm=1) -------------------------------------------------------
def test_l1_penalty_is_the_sum_of_absolute_differences():
    from strategies.plugins.l2 import L2Plugin

    model = torch.nn.Linear(3, 2)
    l1, l2 = L2Plugin(l2_lambda=1.0, norm=1), L2Plugin(l2_lambda=1.0)
    for plugin in (l1, l2):
        plugin.anchor = {n: p.detach() - 0.5 for n, p in model.named_parameters()}
    n = sum(p.numel() for p in model.parameters())
    assert l1.penalty(model).item() == pytest.approx(0.5 * n)
    assert l2.penalty(model).item() == pytest.approx(0.25 * n)
    with pytest.raises(ValueError, match="norm must be 1 or 2"):
        L2Plugin(l2_lambda=1.0, norm=3)


def test_l1_changes_what_is_learned():
    naive = _run("naive")["accuracy_matrix"]
    assert _run("l1", l1_lambda=1.0)["accuracy_matrix"] != naive
    assert _run("l1", l1_lambda=0.0)["accuracy_matrix"] == naive
