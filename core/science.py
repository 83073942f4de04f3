"""The science every plugin shares, defined once: bands, classes and colour criteria.

Real and simulated data must be selected and labelled by the same rules, and a
classifier must say which bands it reads: so the detection bands, the redshift that
separates the classes, the brown-dwarf criteria and the Lyman-break (dropout) boxes
live here, and ``jades``, ``mock``, ``colour``, the cuts and the preprocessors import
them instead of keeping their own copies.

Colour criteria are written once for two uses through an ``above`` function, which
says whether (or how probably) a value exceeds a threshold: :func:`step` gives a yes/no
selection (a catalog's brown-dwarf labels), a Gaussian of the photometric error gives a
probability (the ``colour`` classifier), and the criterion itself is the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from hizkit.dataset import Z_HIGH
from hizkit.errors import HizkitError

if TYPE_CHECKING:
    from hizkit.dataset import Dataset

#: The detection stack of EPOCHS/JADES-style selections: the long-wavelength wide bands.
DETECTION_BANDS: tuple[str, ...] = ("F277W", "F356W", "F444W")

#: Lyman-break ("dropout") boxes in the style of Harikane et al. (2023, ApJS 265, 5) and
#: Hainline et al. (2024a, ApJ 964, 71): (dropout band, next band, continuum from,
#: continuum to); a break over ``DROPOUT_BREAK`` mag and a continuum flatter than
#: ``DROPOUT_FLAT`` mag, at z ~ 7-9, 9-12 and 12-15.
DROPOUTS: tuple[tuple[str, str, str, str], ...] = (
    ("F090W", "F115W", "F115W", "F200W"),
    ("F115W", "F150W", "F150W", "F277W"),
    ("F150W", "F200W", "F200W", "F356W"),
)
DROPOUT_BREAK = 1.5
DROPOUT_FLAT = 0.5

#: Brown dwarfs (Hainline et al. 2024b, ApJ 975, 31): F277W - F444W > 1.0, and
#: F115W - F277W < 0 or F115W - F150W < 0, F444W < 28.5 AB, compact.
BD_RED = ("F277W", "F444W", 1.0)
BD_BLUE = (("F115W", "F277W", 0.0), ("F115W", "F150W", 0.0))
BD_MAX_MAG = ("F444W", 28.5)
#: the bands the brown-dwarf criteria read
BROWN_DWARF_BANDS: tuple[str, ...] = ("F115W", "F150W", "F277W", "F444W")
#: the spread allowed on a half-light radius (arcsec) when compactness is a probability
RADIUS_SIGMA = 0.02

#: ``above(value, sigma, threshold)``: 1 (or a probability) where value > threshold
Above = Callable[[np.ndarray, np.ndarray | float, float], np.ndarray]


def step(value: np.ndarray, sigma: np.ndarray | float, threshold: float) -> np.ndarray:
    """A yes/no ``above``: 1.0 where ``value > threshold``, 0.0 elsewhere (NaN too)."""
    return (np.nan_to_num(np.asarray(value, dtype=float), nan=-np.inf) > threshold).astype(float)


def redshift_labels(z: np.ndarray, threshold: float = Z_HIGH) -> np.ndarray:
    """Galaxy classes from a redshift: ``"highz"`` where z >= ``threshold``, else
    ``"lowz"``, None where z is not finite (an object array)."""
    z = np.asarray(z, dtype=float)
    with np.errstate(invalid="ignore"):
        label = np.where(z >= threshold, "highz", "lowz").astype(object)
    label[~np.isfinite(z)] = None
    return label


def require_bands(data: Dataset, bands: Sequence[str], who: str) -> None:
    """A one-line :class:`HizkitError` naming ``who`` and the band(s) of ``bands`` that
    ``data`` lacks, instead of an ``IndexError`` deep inside a plugin."""
    missing = [b for b in bands if b not in data.bands]
    if missing:
        raise HizkitError(
            f"{who} needs band(s) {', '.join(missing)}, which the data lacks "
            f"(it has {', '.join(data.bands) or 'none'})"
        )


class Colours:
    """Colours by band name from ``(N, B)`` magnitudes and their 1-sigma errors (0 when
    not given), so a criterion names bands, never positions."""

    def __init__(
        self, mag: np.ndarray, bands: Sequence[str], dmag: np.ndarray | None = None
    ) -> None:
        self.mag = np.asarray(mag, dtype=float)
        self.dmag = np.zeros_like(self.mag) if dmag is None else np.asarray(dmag, dtype=float)
        self.bands = list(bands)

    def magnitude(self, band: str) -> tuple[np.ndarray, np.ndarray]:
        i = self.bands.index(band)
        return self.mag[:, i], self.dmag[:, i]

    def colour(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        """``a - b`` and its error."""
        (ma, sa), (mb, sb) = self.magnitude(a), self.magnitude(b)
        return ma - mb, np.hypot(sa, sb)


def brown_dwarf_colours(c: Colours, above: Above = step) -> np.ndarray:
    """Hainline et al. (2024b) colours alone: red in F277W - F444W, blue in F115W -
    F277W or F115W - F150W."""
    blue_, red_, red_min = BD_RED
    red = above(*c.colour(blue_, red_), red_min)
    blue = np.zeros(len(c.mag))
    for a, b, limit in BD_BLUE:
        colour, sigma = c.colour(a, b)
        blue = np.maximum(blue, above(-colour, sigma, -limit))
    return red * blue


def brown_dwarf(
    c: Colours,
    radius: np.ndarray | None,
    max_radius: float,
    above: Above = step,
) -> np.ndarray:
    """The brown-dwarf criteria: :func:`brown_dwarf_colours`, F444W < 28.5 AB and a
    half-light radius (arcsec) below ``max_radius`` (skipped when ``radius`` is None)."""
    band, faintest = BD_MAX_MAG
    mag, dmag = c.magnitude(band)
    p = brown_dwarf_colours(c, above) * above(-mag, dmag, -faintest)
    if radius is not None:
        p = p * above(-np.asarray(radius, dtype=float), RADIUS_SIGMA, -max_radius)
    return p


def dropout(
    c: Colours,
    box: tuple[str, str, str, str],
    above: Above = step,
    break_colour: float = DROPOUT_BREAK,
    continuum_colour: float = DROPOUT_FLAT,
) -> np.ndarray:
    """One Lyman-break box of :data:`DROPOUTS`: a break over ``break_colour`` and a
    continuum flatter than ``continuum_colour`` (no condition on the bluer bands)."""
    drop, nxt, c0, c1 = box
    p = above(*c.colour(drop, nxt), break_colour)
    cont, sigma = c.colour(c0, c1)
    return p * above(-cont, sigma, -continuum_colour)
