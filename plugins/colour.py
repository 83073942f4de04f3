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
which is exactly what a learned method should beat.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.special import ndtr

import hizkit
from hizkit import CLASSES, Dataset

DROPOUTS = (  # (dropout band, next band, continuum from, continuum to)
    ("F090W", "F115W", "F115W", "F200W"),
    ("F115W", "F150W", "F150W", "F277W"),
    ("F150W", "F200W", "F200W", "F356W"),
)


class ColourCuts(hizkit.Classifier):
    name = "colour"
    description = "Classical Lyman-break dropout and brown-dwarf colour cuts (no training)"
    requires: ClassVar[frozenset] = frozenset({"photometry"})

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
        return self  # nothing to learn: that is the point of this baseline

    def _prob(self, value: np.ndarray, sigma: np.ndarray, threshold: float) -> np.ndarray:
        """P(value > threshold): Gaussian with ``sigma`` when soft, a step otherwise."""
        value = np.nan_to_num(value, nan=-99.0)
        if not self.soft:
            return (value > threshold).astype(float)
        with np.errstate(over="ignore", invalid="ignore"):
            return ndtr((value - threshold) / np.maximum(np.nan_to_num(sigma, nan=1.0), 0.05))

    def predict_proba(self, data: Dataset) -> np.ndarray:
        flux, err = data.photometry()
        bands = list(data.bands)
        mag = hizkit.limit_magnitudes(flux, err)  # NaN (no coverage) fails every cut
        err = np.where(np.isfinite(err) & (err > 0), err, np.inf)
        snr = np.where(np.isfinite(flux), flux / err, 0.0)
        # a limit is a bound, not a measurement: its colours carry no extra scatter
        dmag = np.where(snr > 1, 1.0857 / np.where(snr > 1, snr, 1.0), 0.0)

        def colour(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
            i, j = bands.index(a), bands.index(b)
            return mag[:, i] - mag[:, j], np.hypot(dmag[:, i], dmag[:, j])

        p_high = np.zeros(len(data))
        for drop, nxt, c0, c1 in DROPOUTS:
            brk, s_brk = colour(drop, nxt)
            cont, s_cont = colour(c0, c1)
            p = self._prob(brk, s_brk, self.break_colour)
            p *= self._prob(-cont, s_cont, -self.continuum_colour)
            blue = bands[: bands.index(drop)]
            for b in blue:  # undetected blue-ward of the break
                p *= self._prob(-snr[:, bands.index(b)], np.ones(len(data)), -self.blue_snr)
            p_high = np.maximum(p_high, p)

        red, s_red = colour("F277W", "F444W")
        p_bd = self._prob(red, s_red, 1.0)
        c1, s1 = colour("F115W", "F277W")
        c2, s2 = colour("F115W", "F150W")
        p_bd *= np.maximum(self._prob(-c1, s1, 0.0), self._prob(-c2, s2, 0.0))
        i444 = bands.index("F444W")
        p_bd *= self._prob(-mag[:, i444], dmag[:, i444], -28.5)
        radius = data.catalog.get(f"radius_{'F444W'}")
        if radius is not None:
            p_bd *= self._prob(-radius.to_numpy(float), 0.02, -self.compact_radius)
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
