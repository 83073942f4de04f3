"""xgb_phot: XGBoost on catalog photometry; missing bands kept apart from faint ones."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import hizkit
from hizkit.plugins.xgb_phot import XGBoostPhotometry, asinh_mag, available_cores
from hizkit.testing import example_data


@functools.cache
def fitted():
    data = example_data()
    split = hizkit.make_split(data.y, seed=0)
    clf = XGBoostPhotometry(n_estimators=30, early_stopping_rounds=5)
    clf.fit(data.subset(split.train), data.subset(split.valid))
    return clf, data.subset(split.test)


def test_asinh_magnitude_is_ab_when_bright_and_finite_when_negative():
    assert asinh_mag(np.array([1000.0]), 1.0)[0] == pytest.approx(31.4 - 7.5, abs=1e-4)
    m = asinh_mag(np.array([30.0, 3.0, 0.0, -3.0, np.nan]), 5.0)
    assert np.all(np.isfinite(m[:4])) and np.all(np.diff(m[:4]) > 0) and np.isnan(m[4])


def test_unobserved_and_faint_bands_give_different_features():
    clf, test = fitted()
    band = clf.bands_[0]
    cat = test.catalog.iloc[[0, 0, 0]].reset_index(drop=True)
    cat.loc[0, hizkit.flux_col(band)] = np.nan  # not observed
    cat.loc[1, hizkit.flux_col(band)] = -3.0  # observed, fainter than its error
    cat.loc[1, hizkit.fluxerr_col(band)] = 5.0
    cat.loc[2, hizkit.flux_col(band)] = 3.0  # observed, positive, same error
    cat.loc[2, hizkit.fluxerr_col(band)] = 5.0
    data = test.replace(catalog=cat, cutouts=None, errors=None, features=None)
    x = clf.features(data)
    names = clf.feature_names_
    col = {n: i for i, n in enumerate(names)}
    assert x[0, col[f"covered_{band}"]] == 0 and x[1, col[f"covered_{band}"]] == 1
    assert np.isnan(x[0, col[f"mag_{band}"]]) and np.isnan(x[0, col[f"snr_{band}"]])
    assert np.isnan(x[0, col[f"colour_{band}_{clf.bands_[1]}"]])
    assert x[1, col[f"snr_{band}"]] == pytest.approx(-0.6)
    assert np.isfinite(x[1, col[f"mag_{band}"]])
    assert x[1, col[f"mag_{band}"]] > x[2, col[f"mag_{band}"]]  # fainter, never a limit
    # the other bands are untouched
    others = [i for i, n in enumerate(names) if not n.endswith(band) and band not in n]
    np.testing.assert_array_equal(x[0, others], x[1, others])
    proba = clf.predict_proba(data)
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1)


def test_features_are_learned_in_fit_not_from_the_batch():
    clf, test = fitted()
    assert clf.softening_.shape == (len(clf.bands_),) and np.all(clf.softening_ > 0)
    x = clf.features(test)
    np.testing.assert_array_equal(clf.features(test.subset([2, 0])), x[[2, 0]])
    assert x.shape[1] == len(clf.feature_names_) == 5 * len(clf.bands_) - 1  # with sizes
    assert 1 <= clf.n_trees_ <= 30
    assert set(clf.feature_importance()) == set(clf.feature_names_)


def test_missing_band_is_a_one_line_error():
    clf, test = fitted()
    with pytest.raises(hizkit.HizkitError) as exc:
        clf.predict_proba(test.select_bands(test.bands[1:]))
    assert clf.bands_[0] in str(exc.value) and "\n" not in str(exc.value)


def test_trains_without_a_class_and_without_sizes():
    data = example_data()
    keep = np.flatnonzero(data.y != hizkit.CLASSES.index("brown_dwarf"))
    part = data.subset(keep)
    cat = part.catalog.drop(columns=[hizkit.radius_col(b) for b in part.bands])
    part = part.replace(catalog=cat)
    clf = XGBoostPhotometry(n_estimators=10, class_weight=None).fit(part)
    assert not clf.sizes_
    proba = clf.predict_proba(part)
    assert proba.shape == (len(part), 3) and np.all(np.isfinite(proba))
    assert proba[:, 2].max() < 0.5  # never seen: never the most probable


def test_threads_bounded_by_cores():
    assert XGBoostPhotometry(n_jobs=10_000)._threads() == available_cores()
    assert XGBoostPhotometry(n_jobs=1)._threads() == 1
    with pytest.raises(hizkit.HizkitError):
        XGBoostPhotometry(class_weight="sqrt").validate_params()


def test_registered():
    from hizkit.registry import Registry

    assert "xgb_phot" in Registry(autoload=False).names("classifier")
