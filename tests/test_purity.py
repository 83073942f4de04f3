"""hizkit.purity: weighted fractions with Wilson intervals, rates, purity, list metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hizkit.purity import (
    binned_list_metrics,
    list_metrics,
    precision_recall,
    purity_at_completeness,
    purity_from_rates,
    rates_vs_threshold,
    threshold_for_purity,
    weighted_fraction,
    wilson_interval,
)

LOWZ, HIGHZ, BD, OTHER = 0, 1, 2, -1


def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10, z=1.96)
    assert low == pytest.approx(0.4902, abs=5e-4) and high == pytest.approx(0.9433, abs=5e-4)
    low, high = wilson_interval(0, 10, z=1.0)  # not empty at 0 successes
    assert low == 0.0 and high == pytest.approx(1 / 11, abs=1e-12)  # z^2 / (n + z^2)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    a, b = wilson_interval(8.0, 10.0), wilson_interval(80.0, 100.0)
    assert b[1] - b[0] < a[1] - a[0]  # float counts, narrower with more


def test_weighted_fraction_kish():
    equal = weighted_fraction(np.array([1, 1, 0, 1], bool))
    assert equal["value"] == 0.75 and equal["n"] == 4 and equal["n_eff"] == pytest.approx(4)
    assert (equal["low"], equal["high"]) == pytest.approx(wilson_interval(3, 4))
    w = np.array([1.0, 1.0, 2.0])
    out = weighted_fraction(np.array([True, False, True]), w, z=1.96)
    assert out["value"] == pytest.approx(3 / 4)
    assert out["n_eff"] == pytest.approx(16 / 6)
    assert (out["low"], out["high"]) == pytest.approx(wilson_interval(0.75 * 16 / 6, 16 / 6, 1.96))
    empty = weighted_fraction(np.zeros(0, bool))
    assert empty["n"] == 0 and math.isnan(empty["value"])


def test_rates_vs_threshold_by_hand():
    score = np.array([0.1, 0.5, 0.9, 0.2, 0.8, 0.6, 0.7])
    truth = np.array([LOWZ, LOWZ, LOWZ, HIGHZ, HIGHZ, OTHER, OTHER])
    w = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    r = rates_vs_threshold(score, truth, [0.0, 0.5, 0.85, 1.0], weights=w)
    assert r.shape == (4, 4)
    np.testing.assert_allclose(r[0], [1.0, 3 / 4, 2 / 4, 0.0])
    np.testing.assert_allclose(r[1], [1.0, 0.5, 0.0, 0.0])
    assert np.all(np.isnan(r[2]))  # no brown dwarf
    np.testing.assert_allclose(r[3], [1.0, 1.0, 0.0, 0.0])


def synthetic_field(seed=0, n=20_000):
    rng = np.random.default_rng(seed)
    truth = rng.choice([LOWZ, HIGHZ, BD, OTHER], size=n, p=[0.80, 0.12, 0.03, 0.05])
    centre = np.array([0.2, 0.7, 0.5, 0.4])[np.where(truth < 0, 3, truth)]
    score = np.clip(rng.normal(centre, 0.2), 0, 1)
    w = np.where(truth == BD, 0.1, 1.0) * rng.uniform(0.5, 1.5, n)  # enriched, weighted back
    return score, truth, w


def test_purity_from_rates_matches_direct_counting():
    score, truth, w = synthetic_field()
    thresholds = np.linspace(0, 0.95, 40)
    rates = rates_vs_threshold(score, truth, thresholds, weights=w)
    priors = [w[truth == k].sum() / w.sum() for k in (LOWZ, HIGHZ, BD, OTHER)]
    purity = purity_from_rates(rates, priors, "highz")
    direct = [w[(score >= t) & (truth == HIGHZ)].sum() / w[score >= t].sum() for t in thresholds]
    np.testing.assert_allclose(purity, direct, rtol=1e-10)
    # without the spurious row the list is purer (nothing spurious left in the field)
    assert np.all(purity_from_rates(rates, priors[:3], "highz") >= purity - 1e-12)


def test_purity_from_rates_other_priors():
    rates = np.array([[0.1], [0.8], [0.5], [0.0]])
    assert purity_from_rates(rates, [0.9, 0.1, 0.0], "highz")[0] == pytest.approx(
        0.08 / (0.09 + 0.08)
    )
    rates[2] = np.nan  # a class with prior 0 may have no rates
    assert np.isfinite(purity_from_rates(rates, [0.9, 0.1, 0.0], 1)[0])
    assert np.isnan(purity_from_rates(np.zeros((4, 1)), [0.9, 0.1, 0.0], 1)[0])


def test_threshold_for_purity_monotone_envelope():
    t = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    purity = np.array([0.5, 0.85, 0.92, 0.88, 0.95, 0.97, np.nan, np.nan])
    # 0.3 is pure enough on its own, but purity dips below at 0.4: the answer is 0.5
    assert threshold_for_purity(t, purity, 0.9) == 0.5
    assert threshold_for_purity(t, purity, 0.85) == 0.2
    assert threshold_for_purity(t, purity, 0.98) is None
    assert threshold_for_purity(t, np.full(8, np.nan), 0.5) is None
    shuffled = np.random.default_rng(0).permutation(8)
    assert threshold_for_purity(t[shuffled], purity[shuffled], 0.9) == 0.5


def test_precision_recall_and_purity_at_completeness():
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    truth = np.array([HIGHZ, LOWZ, HIGHZ, OTHER, HIGHZ, LOWZ])
    precision, recall, thresholds = precision_recall(score, truth, "highz")
    np.testing.assert_allclose(thresholds, [0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(precision, [3 / 6, 3 / 5, 2 / 4, 2 / 3, 1 / 2, 1])
    np.testing.assert_allclose(recall, [1, 1, 2 / 3, 2 / 3, 1 / 3, 1 / 3])
    assert purity_at_completeness(score, truth, "highz", 0.5) == pytest.approx((2 / 3, 0.7))
    assert purity_at_completeness(score, truth, "highz", 1.0) == pytest.approx((3 / 5, 0.5))
    w = np.array([1.0, 3.0, 1.0, 1.0, 1.0, 1.0])  # the low-z interloper at 0.8 counts 3
    assert purity_at_completeness(score, truth, "highz", 0.5, w) == pytest.approx((2 / 5, 0.7))
    assert all(map(math.isnan, purity_at_completeness(score, truth, "brown_dwarf", 0.5)))


def test_list_metrics_by_hand():
    #            highz x3 selected, low-z at z=3.5 (scatter), low-z z=1.2 (catastrophic),
    #            spurious, brown dwarf; one high-z missed; one low-z not selected
    truth = np.array([HIGHZ, HIGHZ, HIGHZ, LOWZ, LOWZ, OTHER, BD, HIGHZ, LOWZ])
    sel = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    z = np.array([5.0, 6.0, 4.2, 3.5, 1.2, np.nan, np.nan, 7.0, 0.5])
    kind = np.array(["sf", "sf", "lrd", "sf", "dusty", "spurious", "T", "sf", "sf"])
    out = list_metrics(sel, truth, "highz", z_true=z, kind=kind)
    json.dumps(out)
    assert out["class"] == "highz" and out["n_selected"] == 7 and out["n_true"] == 4
    assert out["purity"]["value"] == pytest.approx(3 / 7)
    assert out["completeness"]["value"] == pytest.approx(3 / 4)
    assert out["purity_catastrophic"]["value"] == pytest.approx(4 / 7)  # scatter not counted
    inter = out["interlopers"]
    assert inter["n"] == 4 and inter["catastrophic"] == 3 and inter["scatter"] == 1
    assert inter["by_class"] == {"lowz": 2.0, "brown_dwarf": 1.0, "other": 1.0}
    assert inter["by_kind"]["sf"] == {"n": 1, "weight": 1.0, "catastrophic": 0.0, "scatter": 1.0}
    assert inter["by_kind"]["dusty"]["catastrophic"] == 1.0 and "lrd" not in inter["by_kind"]
    assert out["scatter_window"] == [3.0, 4.0]

    w = np.array([1, 1, 1, 1, 2, 1, 1, 1, 1], float)  # the catastrophic low-z counts twice
    weighted = list_metrics(sel, truth, 1, weights=w, z_true=z)
    assert weighted["purity"]["value"] == pytest.approx(3 / 8)
    assert weighted["purity_catastrophic"]["value"] == pytest.approx(4 / 8)
    # without z every interloper is catastrophic
    assert list_metrics(sel, truth, 1)["purity_catastrophic"]["value"] == pytest.approx(3 / 7)
    # the brown-dwarf list: every interloper catastrophic
    bd = list_metrics(sel, truth, "brown_dwarf", z_true=z)
    assert bd["purity"]["value"] == pytest.approx(1 / 7) and bd["interlopers"]["scatter"] == 0


def test_binned_list_metrics():
    truth = np.array([HIGHZ, HIGHZ, LOWZ, LOWZ, HIGHZ, HIGHZ])
    sel = np.array([1, 1, 1, 0, 1, 0], bool)
    snr = np.array([5.0, 12.0, 6.0, 20.0, 30.0, np.nan])
    z = np.array([4.5, 8.0, 3.2, 1.0, 5.5, 9.0])
    out = binned_list_metrics(
        sel,
        truth,
        "highz",
        observed=snr,
        observed_edges=[5, 10, np.inf],
        true_value=z,
        true_edges=[4, 6, 10],
        z_true=z,
    )
    json.dumps(out)
    low, high = out["purity"]
    assert (low["lo"], low["hi"], low["n_selected"]) == (5.0, 10.0, 2)
    assert low["purity"]["value"] == 0.5 and low["purity_catastrophic"]["value"] == 1.0
    assert high["purity"]["value"] == 1.0 and high["n_selected"] == 2
    first, second = out["completeness"]
    assert first["n_true"] == 2 and first["completeness"]["value"] == 1.0
    assert second["n_true"] == 2 and second["completeness"]["value"] == 0.5
