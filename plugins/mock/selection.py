"""Literature colour selections, to judge the simulated survey by (plots and tests).

Each box is a set of AB-colour inequalities on named NIRCam colours. The colour
functions take magnitudes ``(N, 7)`` in the order of :data:`hizkit.NIRCAM_BANDS`.

- **Brown dwarfs** (Hainline et al. 2024, ApJ 975, 31): F277W - F444W > 1.0 and
  F115W - F277W < 0 (or F115W - F150W < 0), with a point-like profile and F444W < 28.5.
- **Little red dots**, the "red 1" and "red 2" colour cuts of Kokorev et al. (2024,
  ApJ 968, 38), after Labbe et al. (2023) and Greene et al. (2024): red 1 (z ~ 4-6)
  F115W - F150W < 0.8, F200W - F277W > 0.7, F200W - F356W > 1.0; red 2 (z ~ 6-8)
  F150W - F200W < 0.8, F277W - F356W > 0.6, F277W - F444W > 0.7 (plus compactness,
  not used here).
- **Lyman-break (dropout) boxes**: :data:`hizkit.science.DROPOUTS`, the ones the
  ``colour`` classifier applies.

The brown-dwarf and dropout criteria are :mod:`hizkit.science`'s, shared with the
``colour`` classifier and the ``jades`` labels; the little-red-dot boxes are used only
here.
"""

from __future__ import annotations

import numpy as np

from hizkit.dataset import NIRCAM_BANDS
from hizkit.science import Colours, brown_dwarf_colours

_B = {b: i for i, b in enumerate(NIRCAM_BANDS)}


def colour(mag: np.ndarray, a: str, b: str) -> np.ndarray:
    return mag[:, _B[a]] - mag[:, _B[b]]


def hainline_brown_dwarf(mag: np.ndarray) -> np.ndarray:
    """Hainline et al. (2024) brown-dwarf colours (not the compactness and F444W limit)."""
    return brown_dwarf_colours(Colours(mag, NIRCAM_BANDS)) > 0


def lrd_red1(mag: np.ndarray) -> np.ndarray:
    return (
        (colour(mag, "F115W", "F150W") < 0.8)
        & (colour(mag, "F200W", "F277W") > 0.7)
        & (colour(mag, "F200W", "F356W") > 1.0)
    )


def lrd_red2(mag: np.ndarray) -> np.ndarray:
    return (
        (colour(mag, "F150W", "F200W") < 0.8)
        & (colour(mag, "F277W", "F356W") > 0.6)
        & (colour(mag, "F277W", "F444W") > 0.7)
    )


def little_red_dot(mag: np.ndarray) -> np.ndarray:
    """Kokorev et al. (2024) red 1 or red 2 colours."""
    return lrd_red1(mag) | lrd_red2(mag)
