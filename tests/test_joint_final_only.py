"""joint with final_only: one model trained on all the data at the last step; earlier rows missing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import tiny_context, tiny_doc, tiny_minilm, tiny_text_stream

from benchmarks.config.loader import expand
from benchmarks.engine.runner import run_one
from benchmarks.results.metrics import all_metrics, as_matrix
from strategies import STRATEGIES

NAN = math.nan


def test_metrics_of_a_matrix_with_rows_not_evaluated():
    R = [[None, None, None], [NAN, NAN, NAN], [0.9, 0.8, 0.7]]
    m = all_metrics(R)
    assert m["average_accuracy"] == pytest.approx(0.8)
    assert m["forgetting"] is None and m["bwt"] is None and m["average_incremental_accuracy"] is None
    assert all_metrics(R, initial=[0.1, 0.1, 0.1])["fwt"] is None


@pytest.mark.parametrize("bad", [
    [[0.5, 0.5], [None, None]],  # the last row is the result: it cannot be missing
    [[0.5, NAN], [0.5, 0.5]],  # a row is missing as a whole or not at all
    [[None, None], [0.5, 1.5]],  # the rows present are still checked
])
def test_as_matrix_refuses_other_gaps(bad):
    with pytest.raises(ValueError):
        as_matrix(bad)


def _trained_iterations(final_only: bool) -> list[int]:
    model = tiny_minilm()
    strategy = STRATEGIES.get("joint").builder(tiny_context(model), STRATEGIES.get("joint").params(final_only=final_only))
    done = []
    for exp in tiny_text_stream().train_stream:
        strategy.train(exp)
        done.append(strategy.clock.train_iterations)
    return done


def test_final_only_trains_once_on_all_the_data():
    full, final = _trained_iterations(False), _trained_iterations(True)
    assert final[0] == 0  # nothing trained at the first step
    assert full[0] > 0
    # the last step trains on both experiences' data, as joint's last step does
    assert final[1] == full[1] - full[0] and final[1] > full[0]


def test_final_only_results_have_missing_rows_and_load_in_the_report(tmp_path):
    from reports.aggregate import aggregate
    from reports.runs import load_runs

    doc = tiny_doc(["joint"])
    doc["hparams"] = {"joint": {"final_only": True}}
    (spec,) = expand(doc, name="tiny", where="test")
    result = run_one(spec)
    assert result["status"] == "ok"
    R = result["accuracy_matrix"]
    assert all(v is None for row in R[:-1] for v in row) and all(v is not None for v in R[-1])
    assert result["metrics"]["forgetting"] is None and result["metrics"]["average_accuracy"] > 0.5
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(result, allow_nan=False))  # strict JSON: nulls, no NaN
    (scenario,) = aggregate(load_runs(tmp_path))
    assert np.isnan(scenario.strategies[0].curves[0, :-1]).all()
