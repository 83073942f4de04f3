"""The template photo-z ceiling: classes from the catalog's own photo-z columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hizkit
from hizkit.plugins.photoz import PhotozClassifier


def _data(**cols) -> hizkit.Dataset:
    n = len(next(iter(cols.values())))
    base = {"id": np.arange(n), "ra": np.zeros(n), "dec": np.zeros(n)}
    return hizkit.Dataset(pd.DataFrame(base | cols), bands=("F444W",))


def test_branch_chi2_gives_probabilities_and_the_best_fit_class():
    data = _data(
        z_phot=[1.0, 6.0, 3.9, np.nan],
        chi2_lowz=[2.0, 30.0, 5.0, np.nan],
        chi2_highz=[40.0, 3.0, 5.5, np.nan],
        label=["lowz", "highz", "highz", "lowz"],
    )
    clf = PhotozClassifier().fit(data)
    p = clf.predict_proba(data)
    np.testing.assert_allclose(p.sum(axis=1), 1)
    assert p[0, 0] > 0.99 and p[1, 1] > 0.99  # decisive fits
    assert 0.5 < p[2, 0] < 0.6  # chi2 differ by 0.5: nearly a coin toss, low-z ahead
    np.testing.assert_allclose(p[3], clf.prior_)  # no photo-z: the training frequencies
    assert list(p[:3].argmax(1)) == [0, 1, 0]


def test_interval_gives_split_normal_odds_about_the_threshold():
    data = _data(z_phot=[3.0, 5.0, 4.5], z_l68=[2.5, 4.8, 3.0], z_u68=[5.0, 5.2, 4.7])
    p = (
        PhotozClassifier()
        .fit(data.replace(catalog=data.catalog.assign(label="lowz")))
        .predict_proba(data)
    )
    # z = 3 with the upper side 2 wide: P(z >= 4) = P(N > 0.5 sigma) = 0.31
    assert p[0, 1] == pytest.approx(0.3085, abs=1e-3)
    assert p[1, 1] > 0.99 and 0.5 < p[2, 1] < 0.9  # 4.5 with a lower side 1.5 wide
    assert list(p.argmax(1)) == [0, 1, 1]


def test_brown_dwarf_only_from_a_brown_dwarf_template_fit():
    kw = {"z_phot": [7.0, 7.0], "chi2_lowz": [50.0, 50.0], "chi2_highz": [20.0, 20.0]}
    assert (
        PhotozClassifier().fit(_data(**kw, label=["highz"] * 2)).predict_proba(_data(**kw))[:, 2]
        == 0
    ).all()
    p = (
        PhotozClassifier()
        .fit(_data(**kw, label=["highz"] * 2))
        .predict_proba(_data(**kw, chi2_bd=[5.0, 40.0]))
    )
    assert p[0].argmax() == 2 and p[1].argmax() == 1


def test_without_a_photo_z_column_one_line():
    with pytest.raises(hizkit.HizkitError, match="z_phot"):
        PhotozClassifier().fit(_data(label=["lowz", "highz"]))


def test_on_the_simulated_survey_it_matches_the_template_labels(small_mock):
    data = small_mock
    p = PhotozClassifier().fit(data).predict_proba(data)
    galaxy = data.catalog["label"].isin(["lowz", "highz"]).to_numpy()
    template = np.where(data.catalog["z_phot"] >= hizkit.Z_HIGH, 1, 0)
    assert (p.argmax(1)[galaxy] == template[galaxy]).all()
