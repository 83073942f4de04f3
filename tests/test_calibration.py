"""hizkit.calibration: temperature scaling, prior shift, EM priors, class-wise ECE."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import norm

from hizkit import HizkitError
from hizkit.calibration import (
    Calibration,
    apply_temperature,
    classwise_ece,
    em_priors,
    fit_temperature,
    shift_priors,
    training_prior,
)

MEANS = np.array([-2.0, 0.0, 2.5])  # three 1-D unit Gaussians, one per class


def gaussian_field(priors, n, seed):
    """Sources drawn from class-conditional Gaussians at ``priors``, with their exact
    posteriors at a uniform prior (what a perfectly calibrated balanced classifier gives)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=priors)
    x = rng.normal(MEANS[y], 1.0)
    like = norm.pdf(x[:, None], MEANS[None, :], 1.0)
    return like / like.sum(axis=1, keepdims=True), y


def test_em_recovers_known_priors():
    truth = np.array([0.7, 0.25, 0.05])
    p, _ = gaussian_field(truth, 40_000, seed=1)
    uniform = np.full(3, 1 / 3)
    priors, adjusted = em_priors(p, uniform)
    np.testing.assert_allclose(priors, truth, atol=0.012)
    np.testing.assert_allclose(adjusted, shift_priors(p, uniform, priors), atol=1e-12)
    # the naive estimate (mean posterior at the wrong prior) is visibly off
    assert np.abs(p.mean(axis=0) - truth).max() > 0.05


def test_em_weights_are_importance_weights():
    """An enriched draw weighted back gives the sky's priors, not the draw's."""
    sky = np.array([0.85, 0.14, 0.01])
    drawn = np.array([0.5, 0.3, 0.2])
    p, y = gaussian_field(drawn, 40_000, seed=2)
    w = (sky / drawn)[y]
    priors, _ = em_priors(p, np.full(3, 1 / 3), weights=w)
    np.testing.assert_allclose(priors, sky, atol=0.012)


def test_em_prior_does_not_collapse_to_zero():
    p = np.tile([0.9, 0.1, 0.0], (100, 1))  # no source gives class 2 any probability
    priors, adjusted = em_priors(p, np.full(3, 1 / 3), floor=1e-4)
    assert priors[2] >= 1e-4 * 0.99 and np.isclose(priors.sum(), 1)
    assert np.all(np.isfinite(adjusted))


def test_shift_priors_by_hand():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]])
    out = shift_priors(p, [1, 1, 1], [0.8, 0.2, 0.0])
    np.testing.assert_allclose(out[0], [0.8, 0.2, 0.0])
    np.testing.assert_allclose(out[1], [0.16, 0.08, 0.0] / np.float64(0.24))
    back = shift_priors(shift_priors(p, [1, 1, 1], [0.6, 0.3, 0.1]), [0.6, 0.3, 0.1], [1, 1, 1])
    np.testing.assert_allclose(back, p, atol=1e-12)


def test_temperature_recovered_from_tempered_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(30_000, 3))
    true_t = 2.0
    y = np.array([rng.choice(3, p=q) for q in softmax(logits / true_t, axis=1)])
    model = softmax(logits, axis=1)  # overconfident: the truth is twice as soft
    t = fit_temperature(model, y)
    assert abs(t - true_t) < 0.1
    # and the scaled probabilities are the generating ones
    np.testing.assert_allclose(apply_temperature(model, t), softmax(logits / t, axis=1))
    # rows without a class are ignored
    assert fit_temperature(np.vstack([model, model[:10]]), np.r_[y, np.full(10, -1)]) == t


def test_temperature_weights_equal_repeats():
    rng = np.random.default_rng(1)
    p = softmax(rng.normal(0, 2, size=(400, 3)), axis=1)
    y = rng.integers(0, 3, 400)
    w = rng.integers(1, 4, 400)
    repeated = fit_temperature(np.repeat(p, w, axis=0), np.repeat(y, w))
    assert fit_temperature(p, y, w.astype(float)) == pytest.approx(repeated, rel=1e-4)


def test_apply_temperature_one_is_identity():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-12)
    assert np.all(apply_temperature(p, 3.0).max(axis=1) < p.max(axis=1))


def test_classwise_ece_by_hand():
    p = np.array([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.1, 0.9, 0.0]])
    y = np.array([0, 1, 1, 1])
    # highz: bin of 0.1 holds rows 0-1 (accuracy 1/2), bin of 0.9 rows 2-3 (accuracy 1)
    assert classwise_ece(y, p, "highz") == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    w = np.array([3.0, 1.0, 1.0, 1.0])  # bin of 0.1: accuracy 1/4 at weight 4 of 6
    assert classwise_ece(y, p, 1, weights=w) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.1)


def test_classwise_ece_small_when_calibrated_large_when_not():
    rng = np.random.default_rng(3)
    p = rng.dirichlet([0.5, 0.5, 0.5], size=30_000)
    y = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    for binning in ("width", "mass"):
        assert classwise_ece(y, p, "highz", binning=binning) < 0.02
        assert classwise_ece(y, p, "brown_dwarf", binning=binning) < 0.02
    sharp = apply_temperature(p, 0.3)  # overconfident
    assert classwise_ece(y, sharp, "highz") > 0.08


def test_calibration_fit_at_training_prior():
    """Posteriors exact at a uniform prior, held-out set at a skewed mix: scored after
    the shift to that mix, the temperature is 1."""
    mix = np.array([0.8, 0.15, 0.05])
    p, y = gaussian_field(mix, 40_000, seed=4)
    cal = Calibration.fit(p, y, train_prior=[1 / 3, 1 / 3, 1 / 3])
    assert cal.temperature == pytest.approx(1.0, abs=0.04)
    # moved to the field's own prior: the exact posteriors at that prior
    np.testing.assert_allclose(
        cal.apply(p, mix), shift_priors(apply_temperature(p, cal.temperature), [1, 1, 1], mix)
    )
    assert classwise_ece(y, cal.apply(p, mix), "highz") < 0.02
    assert classwise_ece(y, p, "highz") > 0.05  # at the wrong prior


def test_calibration_round_trips_json():
    cal = Calibration(temperature=1.7, train_prior=(0.5, 0.3, 0.2))
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"temperature": 1.0},
        {"temperature": "1", "train_prior": [0.5, 0.5]},
        {"temperature": True, "train_prior": [0.5, 0.5]},
        {"temperature": -1.0, "train_prior": [0.5, 0.5]},
        {"temperature": 1.0, "train_prior": [0.5, 0.6]},
        {"temperature": 1.0, "train_prior": [0.5, None]},
        {"temperature": 1.0, "train_prior": "0.5,0.5"},
        {"temperature": 1.0, "train_prior": [0.5, 0.5], "extra": 1},
    ],
)
def test_calibration_from_dict_refuses_bad_input(bad):
    with pytest.raises(HizkitError) as exc:
        Calibration.from_dict(bad)
    assert "\n" not in str(exc.value)


def test_training_prior():
    y = np.array([0, 0, 0, 1, -1])
    np.testing.assert_allclose(training_prior(y), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(training_prior(y, None), [0.75, 0.25, 0.0])
    np.testing.assert_allclose(training_prior(np.array([0, 1, 2, 2])), [1 / 3] * 3)


def test_two_held_out_brown_dwarfs_do_not_set_the_temperature():
    """144 low-z, 144 high-z, 2 brown dwarfs, one of them missed: reweighting the rows to
    a uniform prior gave T ~ 4 (a third of the fit on two rows); the shifted likelihood
    counts each row once."""
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], [144, 144, 2])
    p = np.full((len(y), 3), 0.05)
    right = rng.random(len(y)) < 0.9
    right[-2:] = [True, False]
    p[np.arange(len(y)), np.where(right, y, (y + 1) % 3)] = 0.9
    cal = Calibration.fit(p, y, train_prior=[1 / 3, 1 / 3, 1 / 3])
    assert 0.6 < cal.temperature < 1.6
