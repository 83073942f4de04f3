"""``colour``: the classical colour cuts, with no training.

High-z: NIRCam two-colour Lyman-break ("dropout") selections in the style of Harikane
et al. (2023, ApJS 265, 5) and Hainline et al. (2024, ApJ 964, 71): a strong break
between two adjacent bands and a blue or flat continuum red-ward of it,

=============  =====================  ===========================  ======
dropout band   break                  continuum                    z
=============  =====================  ===========================  ======
F090W          F090W - F115W > 1.5    F115W - F200W < 0.5           ~7-9
F115W          F115W - F150W > 1.5    F150W - F277W < 0.5           ~9-12
F150W          F150W - F200W > 1.5    F200W - F356W < 0.5          ~12-15
=============  =====================  ===========================  ======

plus no detection (S/N < 2) in any band blue-ward of the dropout band. Brown dwarfs: the
JADES criteria (Hainline et al. 2024b): F277W - F444W > 1.0, F115W - F277W < 0 or
F115W - F150W < 0, F444W < 28.5 AB and a compact profile (F444W flux radius below
``compact_radius``). Undetected bands enter as 1-sigma limits. Each cut is softened by its
photometric uncertainty: P(colour > threshold) = Phi((colour - threshold) / sigma), so a
source near a boundary gets an honest probability. NIRCam alone has no dropout for
4 < z < 6.5 (the break lies blue-ward of F090W): the colour cuts miss those galaxies,
which is exactly what a learned method should beat. The boxes and criteria themselves
are :mod:`hizkit.science`'s, shared with the ``jades`` labels and the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.special import ndtr

import hizkit
from hizkit import CLASSES, Dataset
from hizkit.calibration import training_prior
from hizkit.science import (
    BROWN_DWARF_BANDS,
    DROPOUTS,
    Colours,
    brown_dwarf,
    dropout,
    require_bands,
)


class ColourCuts(hizkit.Classifier):
    name = "colour"
    description = "Classical Lyman-break dropout and brown-dwarf colour cuts (no training)"
    requires: ClassVar[frozenset] = frozenset({"photometry"})
    #: every band of a dropout box or of the brown-dwarf criteria, read by name
    bands_needed: ClassVar[tuple[str, ...]] = tuple(
        sorted({b for box in DROPOUTS for b in box} | set(BROWN_DWARF_BANDS))
    )

    def __init__(
        self,
        break_colour: float = 1.5,
        continuum_colour: float = 0.5,
        blue_snr: float = 2.0,
        compact_radius: float = 0.1,
        soft: bool = True,
    ) -> None:
        self.break_colour = break_colour
        self.continuum_colour = continuum_colour
        self.blue_snr = blue_snr
        self.compact_radius = compact_radius
        self.soft = soft

    def fit(self, train: Dataset, valid: Dataset | None = None) -> ColourCuts:
        require_bands(train, self.bands_needed, self.name)
        return self  # nothing to learn: that is the point of this baseline

    def _prob(self, value: np.ndarray, sigma: np.ndarray, threshold: float) -> np.ndarray:
        """P(value > threshold): Gaussian with ``sigma`` when soft, a step otherwise."""
        value = np.nan_to_num(value, nan=-99.0)
        if not self.soft:
            return (value > threshold).astype(float)
        with np.errstate(over="ignore", invalid="ignore"):
            return ndtr((value - threshold) / np.maximum(np.nan_to_num(sigma, nan=1.0), 0.05))

    def training_prior(self, y: np.ndarray) -> np.ndarray:
        """Uniform: the cuts' probabilities are rule-based likelihoods, whatever the
        training part's class counts (or its extra brown dwarfs)."""
        return training_prior(y, "balanced")

    def predict_proba(self, data: Dataset) -> np.ndarray:
        require_bands(data, self.bands_needed, self.name)
        flux, err = data.photometry()
        bands = list(data.bands)
        mag = hizkit.limit_magnitudes(flux, err)  # NaN (no coverage) fails every cut
        err = np.where(np.isfinite(err) & (err > 0), err, np.inf)
        snr = np.where(np.isfinite(flux), flux / err, 0.0)
        # a limit is a bound, not a measurement: its colours carry no extra scatter
        dmag = np.where(snr > 1, 1.0857 / np.where(snr > 1, snr, 1.0), 0.0)
        colours = Colours(mag, bands, dmag)

        p_high = np.zeros(len(data))
        for box in DROPOUTS:
            p = dropout(colours, box, self._prob, self.break_colour, self.continuum_colour)
            for b in bands[: bands.index(box[0])]:  # undetected blue-ward of the break
                p *= self._prob(-snr[:, bands.index(b)], np.ones(len(data)), -self.blue_snr)
            p_high = np.maximum(p_high, p)

        radius = data.catalog.get(hizkit.radius_col("F444W"))
        radius = None if radius is None else radius.to_numpy(float)
        p_bd = brown_dwarf(colours, radius, self.compact_radius, self._prob)
        p_bd = p_bd * (1 - p_high)
        p_low = np.clip(1 - p_high - p_bd, 0, 1)
        proba = np.column_stack([p_low, p_high, p_bd])
        proba = np.clip(proba, 1e-6, None)
        assert CLASSES == ("lowz", "highz", "brown_dwarf")
        return proba / proba.sum(axis=1, keepdims=True)

    def _save_state(self, directory: Path) -> None:
        (directory / "state.json").write_text(json.dumps({"trained": False}))

    def _load_state(self, directory: Path) -> None:
        pass


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [ColourCuts]
