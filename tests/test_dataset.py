"""Dataset helpers: magnitudes with upper limits."""

from __future__ import annotations

import numpy as np

import hizkit


def test_limit_magnitudes():
    flux = np.array([100.0, 0.5, -3.0, np.nan, 10.0])
    err = np.array([1.0, 1.0, 1.0, 1.0, np.nan])
    mag = hizkit.limit_magnitudes(flux, err)
    np.testing.assert_allclose(mag[:3], [31.4 - 5.0, 31.4, 31.4])  # detected, two limits
    assert np.isnan(mag[3]) and np.isnan(mag[4])  # no coverage is not a non-detection
