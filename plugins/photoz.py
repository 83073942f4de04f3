"""``photoz``: the template-fitting ceiling, a row in every benchmark table.

It classifies each source from the catalog's own template photometric redshift (the
mock's template fit, EAZY's columns on a real catalog) and learns nothing from the images.
An image classifier is judged against it on the same split: how far is it from what
template fitting already gives?

Probabilities, from the richest information the catalog holds:

- ``chi2_lowz`` / ``chi2_highz`` (best chi2 of each redshift branch): the branches'
  relative likelihoods, ``P(high) = 1 / (1 + exp((chi2_high - chi2_low) / 2))``;
- else ``z_l68`` / ``z_u68`` (EAZY's 68 % interval): a split normal about ``z_phot``
  with the side's half-width as sigma, ``P(z >= 4)``;
- else the point estimate alone (a step at the threshold).

Brown dwarfs get probability only where the catalog carries a brown-dwarf template fit
(``chi2_bd``, compared with the best galaxy chi2 the same way); a galaxy template fit
alone cannot find them, which is what the ceiling should show. Sources without a photo-z
get the training-set class frequencies. In every case the predicted class is the one the
best-fitting template gives: ``z_phot >= 4`` is high-z, whatever the probability model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

import hizkit
from hizkit import CLASSES, Dataset
from hizkit.calibration import training_prior
from hizkit.dataset import class_prior

LOWZ, HIGHZ, BD = (CLASSES.index(c) for c in ("lowz", "highz", "brown_dwarf"))


def _branch_odds(catalog: pd.DataFrame, z: np.ndarray, threshold: float) -> np.ndarray:
    """P(z >= threshold) from the columns the catalog has (module docstring)."""
    if {"chi2_lowz", "chi2_highz"} <= set(catalog.columns):
        delta = catalog["chi2_highz"].to_numpy(float) - catalog["chi2_lowz"].to_numpy(float)
        p = expit(-np.clip(delta, -500, 500) / 2)
        return np.where(np.isfinite(p), p, (z >= threshold).astype(float))
    if {"z_l68", "z_u68"} <= set(catalog.columns):
        lo = z - catalog["z_l68"].to_numpy(float)
        hi = catalog["z_u68"].to_numpy(float) - z
        sigma = np.where(z >= threshold, lo, hi)  # the side facing the threshold
        sigma = np.where(np.isfinite(sigma) & (sigma > 1e-3), sigma, 1e-3)
        return ndtr((z - threshold) / sigma)
    return (z >= threshold).astype(float)


class PhotozClassifier(hizkit.Classifier):
    name = "photoz"
    description = "Template photo-z ceiling: classes from the catalog's z_phot (and its P(z))"
    requires: ClassVar[frozenset] = frozenset()
    preprocessors: ClassVar[tuple[str, ...]] = ()
    catalog_columns: ClassVar[frozenset[str]] = frozenset({"z_phot"})
    reference: ClassVar[bool] = True  # the ceiling row of every benchmark

    def __init__(self, z_threshold: float = hizkit.Z_HIGH, bd_delta_chi2: float = 0.0) -> None:
        """``z_threshold``: the low-z/high-z boundary (the labels' own). ``bd_delta_chi2``:
        a brown-dwarf template must beat the best galaxy template by this much chi2
        (used only when the catalog has ``chi2_bd``)."""
        self.z_threshold = z_threshold
        self.bd_delta_chi2 = bd_delta_chi2

    def _check(self, data: Dataset) -> None:
        if "z_phot" not in data.catalog.columns:
            raise hizkit.HizkitError(
                "photoz needs the catalog's template photo-z (a z_phot column); this "
                "dataset has none"
            )

    def fit(self, train: Dataset, valid: Dataset | None = None) -> PhotozClassifier:
        self._check(train)
        self.prior_ = class_prior(train.y)
        return self

    def training_prior(self, y: np.ndarray) -> np.ndarray:
        """Uniform: its probabilities are the templates' likelihood ratios (flat priors)."""
        return training_prior(y, "balanced")

    def predict_proba(self, data: Dataset) -> np.ndarray:
        self._check(data)
        cat = data.catalog
        z = cat["z_phot"].to_numpy(float)
        p_high = _branch_odds(cat, z, self.z_threshold)
        p_bd = np.zeros(len(cat))
        if "chi2_bd" in cat.columns:
            best_gal = np.fmin(
                cat.get("chi2_lowz", cat.get("chi2_phot", np.inf)),
                cat.get("chi2_highz", np.inf),
            )
            gain = np.asarray(best_gal, float) - cat["chi2_bd"].to_numpy(float)
            p_bd = np.nan_to_num(expit((np.clip(gain, -500, 500) - self.bd_delta_chi2) / 2))
        proba = np.zeros((len(cat), len(CLASSES)))
        proba[:, HIGHZ] = (1 - p_bd) * p_high
        proba[:, LOWZ] = (1 - p_bd) * (1 - p_high)
        proba[:, BD] = p_bd
        missing = ~np.isfinite(z)
        proba[missing] = self.prior_
        return proba

    def _save_state(self, directory: Path) -> None:
        (directory / "prior.json").write_text(json.dumps(self.prior_.tolist()))

    def _load_state(self, directory: Path) -> None:
        self.prior_ = np.array(json.loads((directory / "prior.json").read_text()))


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [PhotozClassifier]
