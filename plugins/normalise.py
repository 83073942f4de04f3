"""``normalise``: bring every source to a common brightness while keeping band ratios.

Each source's cutout is divided by **one** positive number, the flux of the detection
stack in a central aperture, so every ratio between bands (the colours, the Lyman break)
is kept exactly. An optional arcsinh stretch compresses the dynamic range, identically in
every band. Per-band standardisation exists only as an explicit option: it rescales each
band separately and so erases the dropout signal.
"""

from __future__ import annotations

import warnings

import numpy as np

import hizkit
from hizkit import Dataset
from hizkit.science import DETECTION_BANDS


class Normalise(hizkit.Preprocessor):
    name = "normalise"
    description = "One scale per source (detection-stack aperture flux): band ratios kept"
    per_source = True

    def __init__(
        self,
        detection_bands: tuple[str, ...] | list[str] = DETECTION_BANDS,
        radius: float = 0.2,
        stretch: str | None = None,
        softening: float = 0.05,
        per_band: bool = False,
    ) -> None:
        """``per_band=True`` standardises each band on its own; it ERASES the band ratios
        (the dropout signal) and exists only for comparison."""
        self.detection_bands = tuple(detection_bands)
        self.radius = radius
        self.stretch = stretch
        self.softening = softening
        self.per_band = per_band

    def scales(self, data: Dataset) -> np.ndarray:
        """The per-source divisor: detection-stack flux inside ``radius`` arcsec."""
        if data.cutouts is None:
            raise hizkit.HizkitError("normalise needs cutouts; this dataset has none")
        idx = hizkit.detection_index(data, self.detection_bands)
        _, _, h, w = data.cutouts.shape
        yy, xx = np.mgrid[:h, :w]
        r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) * data.pixel_scale
        aperture = r <= self.radius
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            det = np.nanmean(data.cutouts[:, idx], axis=1)
        flux = np.nansum(np.where(aperture, det, 0.0), axis=(1, 2))
        # a faint or negative source falls back to its noise level: never divide by ~0
        noise = np.nanstd(np.where(aperture, np.nan, det), axis=(1, 2)) * np.sqrt(aperture.sum())
        floor = np.where(np.isfinite(noise) & (noise > 0), noise, 1.0)
        return np.maximum(flux, floor)

    def transform(self, data: Dataset) -> Dataset:
        if self.stretch not in (None, "asinh"):
            raise hizkit.HizkitError(
                f"normalise: stretch must be None or 'asinh', got {self.stretch!r}"
            )
        cut = data.cutouts
        errors = None
        if self.per_band:
            mean = np.nanmean(cut, axis=(2, 3), keepdims=True)
            std = np.nanstd(cut, axis=(2, 3), keepdims=True)
            out = (cut - mean) / np.where(std > 0, std, 1.0)
        else:
            scale = self.scales(data)[:, None, None, None]
            out = cut / scale
            if data.errors is not None and self.stretch is None:
                errors = (data.errors / scale).astype(np.float32)
        if self.stretch == "asinh":
            out = np.arcsinh(out / self.softening)
        # errors follow a linear rescaling; any other transform leaves them meaningless
        return data.replace(cutouts=out.astype(np.float32), errors=errors)


@hizkit.hookimpl
def hizkit_register_preprocessors() -> list[type[hizkit.Preprocessor]]:
    return [Normalise]
