"""Segmentation, normalisation, augmentation and HOG: behaviour that could fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage.feature import hog

import hizkit
from hizkit import NIRCAM_BANDS, Dataset
from hizkit.plugins.augment import Augment, dihedral
from hizkit.plugins.hog import HOG, hog_batch
from hizkit.plugins.normalise import Normalise
from hizkit.plugins.segment import Segment


def _blob(size, x0, y0, sigma):
    yy, xx = np.mgrid[:size, :size]
    g = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return g / g.sum()


def _dataset(cutouts):
    n = len(cutouts)
    cat = pd.DataFrame({"id": np.arange(n), "ra": np.zeros(n), "dec": np.zeros(n)})
    return Dataset(cat, NIRCAM_BANDS, 0.03, cutouts.astype(np.float32))


def test_segmentation_removes_neighbour_and_keeps_central_flux():
    rng = np.random.default_rng(0)
    size = 48
    central = 200 * _blob(size, 23.5, 23.5, 2.0)
    neighbour = 300 * _blob(size, 38, 10, 2.0)
    img = np.repeat((central + neighbour)[None], 7, axis=0)
    cut = img[None] + rng.normal(0, 0.01, (1, 7, size, size))
    out = Segment(fill="zero").transform(_dataset(cut)).cutouts[0]
    near_n = _blob(size, 38, 10, 2.0) > 1e-3
    near_c = _blob(size, 23.5, 23.5, 2.0) > 1e-3
    assert np.abs(out[:, near_n]).sum() < 0.02 * 300 * 7  # neighbour gone
    np.testing.assert_allclose(
        out[:, near_c].sum(axis=1), cut[0][:, near_c].sum(axis=1), rtol=1e-6
    )  # central untouched


def test_segmentation_keeps_missing_coverage_missing():
    rng = np.random.default_rng(1)
    cut = rng.normal(0, 0.01, (1, 7, 32, 32)) + 50 * _blob(32, 15.5, 15.5, 2)
    cut[0, 0, :, :8] = np.nan
    out = Segment().transform(_dataset(cut)).cutouts
    assert np.isnan(out[0, 0, :, :8]).all() and np.isfinite(out[0, 1]).all()


def test_normalisation_keeps_every_band_ratio_exactly():
    rng = np.random.default_rng(2)
    cut = rng.lognormal(0, 1, (5, 7, 32, 32)) * rng.lognormal(0, 2, (5, 1, 1, 1))
    data = _dataset(cut)
    out = Normalise().transform(data).cutouts
    ratio_in = data.cutouts[:, 1:] / data.cutouts[:, :1]
    ratio_out = out[:, 1:] / out[:, :1]
    np.testing.assert_allclose(ratio_out, ratio_in, rtol=1e-5)
    scales = data.cutouts.sum(axis=(1, 2, 3)) / out.sum(axis=(1, 2, 3))
    assert np.ptp(np.log(scales)) > 1  # sources really were brought to a common level


def test_per_band_standardisation_is_opt_in_and_erases_ratios():
    cut = np.ones((1, 7, 16, 16)) * np.arange(1, 8)[None, :, None, None]
    cut[..., 8, 8] += 5
    out = Normalise(per_band=True).transform(_dataset(cut)).cutouts
    np.testing.assert_allclose(out[0, 0], out[0, 6], atol=1e-5)  # the colour is gone
    assert Normalise().per_band is False


def test_augmentation_gives_the_dihedral_group():
    img = np.arange(16.0).reshape(1, 1, 4, 4)
    forms = {dihedral(img, k).tobytes() for k in range(8)}
    assert len(forms) == 8
    data = _dataset(np.repeat(np.arange(49.0).reshape(1, 1, 7, 7), 7, axis=1))
    out = Augment(copies=8).transform(data)
    assert len(out) == 8 and Augment.training_only
    np.testing.assert_array_equal(out.cutouts[0], data.cutouts[0])  # identity first
    with pytest.raises(hizkit.HizkitError, match=r"1\.\.8"):
        Augment(copies=9).transform(data)


def test_batched_hog_equals_skimage():
    rng = np.random.default_rng(3)
    imgs = rng.normal(size=(6, 48, 48)) + 4 * _blob(48, 20, 25, 3)[None] * 100
    ours = hog_batch(imgs, 9, 8, 2)
    ref = np.array([hog(i, 9, (8, 8), (2, 2), block_norm="L2-Hys") for i in imgs])
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_hog_of_a_dropout_differs_in_the_dropped_bands_only():
    rng = np.random.default_rng(4)
    galaxy = 100 * _blob(32, 15.5, 15.5, 2.5)
    noise = rng.normal(0, 0.5, (7, 32, 32))
    normal = galaxy[None] + noise
    dropout = normal.copy()
    dropout[:2] = noise[:2]  # no light in F090W, F115W
    feats = HOG(cell=8).transform(_dataset(np.stack([normal, dropout]))).features
    per = feats.shape[1] // 7
    diff = np.abs(feats[0] - feats[1]).reshape(7, per).sum(axis=1)
    assert diff[:2].min() > 10 * max(diff[2:].max(), 1e-9)


def test_segment_in_worker_processes_equals_serial(small_mock):
    """Large batches are segmented in worker processes; the masks must not change."""
    from hizkit.plugins.segment import PARALLEL_PIECE, Segment

    n = 2 * PARALLEL_PIECE + 17
    idx = np.arange(n) % len(small_mock)
    data = small_mock.subset(idx)
    data = data.replace(catalog=data.catalog.assign(id=np.arange(n)))
    serial = Segment(jobs=1).central_segments(data)
    parallel = Segment(jobs=2).central_segments(data)
    np.testing.assert_array_equal(serial, parallel)
    assert serial.any()
