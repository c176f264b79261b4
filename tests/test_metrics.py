"""Metrics on hand-made accuracy matrices whose answers are known by hand."""

import math

import numpy as np
import pytest

from benchmarks.results import metrics as M

# T = 3. Row i = after training experience i.
R = [
    [0.9, 0.1, 0.0],
    [0.6, 0.8, 0.2],
    [0.3, 0.7, 1.0],
]


def test_average_accuracy():
    assert M.average_accuracy(R) == pytest.approx((0.3 + 0.7 + 1.0) / 3)


def test_chaudhry_forgetting_uses_max_over_earlier_rows():
    # j=0: max(0.9, 0.6) - 0.3 = 0.6 ; j=1: max(0.1, 0.8) - 0.7 = 0.1  -> mean 0.35
    assert M.forgetting(R) == pytest.approx(0.35)


def test_forgetting_differs_from_avalanche_when_accuracy_peaks_later():
    R2 = [[0.5, 0.0], [0.4, 0.9]]
    assert M.forgetting(R2) == pytest.approx(0.1)
    R3 = [[0.5, 0.0, 0.0], [0.8, 0.9, 0.0], [0.2, 0.9, 0.7]]
    # Chaudhry: j0: max(.5,.8)-.2=.6, j1: .9-.9=0 -> .3 ; Avalanche (first - last): j0 .3, j1 0 -> .15
    assert M.forgetting(R3) == pytest.approx(0.3)
    assert M.avalanche_forgetting(R3) == pytest.approx(0.15)


def test_bwt():
    # j=0: 0.3-0.9 = -0.6 ; j=1: 0.7-0.8 = -0.1 -> -0.35
    assert M.backward_transfer(R) == pytest.approx(-0.35)
    assert M.avalanche_forgetting(R) == pytest.approx(0.35)


def test_average_incremental_accuracy():
    # step 0: 0.9 ; step 1: (0.6+0.8)/2 = 0.7 ; step 2: 2/3 -> mean
    assert M.accuracy_curve(R) == pytest.approx([0.9, 0.7, 2 / 3])
    assert M.average_incremental_accuracy(R) == pytest.approx((0.9 + 0.7 + 2 / 3) / 3)


def test_fwt_needs_initial_accuracies():
    assert math.isnan(M.forward_transfer(R, None))
    # j=1: R[0][1] - b1 = 0.1 - 0.5 ; j=2: R[1][2] - b2 = 0.2 - 0.1 -> mean -0.15
    assert M.forward_transfer(R, [0.3, 0.5, 0.1]) == pytest.approx(-0.15)


def test_no_forgetting_for_perfect_retention():
    Rp = np.triu(np.ones((4, 4))).T  # lower-triangular ones: seen experiences stay at 1.0
    assert M.forgetting(Rp) == 0.0
    assert M.backward_transfer(Rp) == 0.0
    assert M.average_accuracy(Rp) == 1.0


def test_single_experience_has_undefined_forgetting():
    out = M.all_metrics([[0.8]])
    assert out["average_accuracy"] == pytest.approx(0.8)
    assert out["forgetting"] is None and out["bwt"] is None


@pytest.mark.parametrize(
    "bad",
    [[[0.5, 0.5]], [[1.5, 0.0], [0.0, 1.0]], [[float("nan"), 0.0], [0.0, 1.0]], []],
)
def test_invalid_matrices_are_rejected(bad):
    with pytest.raises(ValueError):
        M.average_accuracy(bad)
