"""Quality cuts on a catalog, the poster's kind: S/N, photo-z PDF width, fit quality, stars.

One implementation serves every data source: the ``jades`` loader applies it to real
catalogs and the simulated survey applies it to its labelled set, so a simulated sample
is selected the way a real one is. Each cut reports how many sources it leaves.

Catalog columns read (a cut whose column is absent raises a clear error):
``flux_<B>``/``fluxerr_<B>`` of the detection bands, ``z_phot``, ``z_l68``, ``z_u68``,
``chi2_phot``, ``flag_star``, ``flag_bright_star``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from hizkit.dataset import ab_mag, flux_col, fluxerr_col
from hizkit.errors import HizkitError
from hizkit.science import DETECTION_BANDS


def stack_snr(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    """S/N of the inverse-variance-weighted stack of ``(N, B)`` fluxes; missing
    bands (NaN, or error <= 0) carry no weight; 0 where no band has coverage."""
    ok = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    w = np.where(ok, 1.0 / np.where(ok, err, 1.0) ** 2, 0.0)
    wsum = w.sum(axis=1)
    stack = (np.where(ok, flux, 0.0) * w).sum(axis=1) / np.maximum(wsum, 1e-300)
    return stack * np.sqrt(wsum)


def detection_snr(catalog: pd.DataFrame, bands: Sequence[str] = DETECTION_BANDS) -> np.ndarray:
    """Detection-stack S/N of every catalog row (bands absent from the catalog are skipped)."""
    present = [b for b in bands if flux_col(b) in catalog.columns]
    if not present:
        raise HizkitError(f"no detection band ({', '.join(bands)}) in the catalog")
    flux = catalog[[flux_col(b) for b in present]].to_numpy(float)
    err = catalog[[fluxerr_col(b) for b in present]].to_numpy(float)
    return stack_snr(flux, err)


def detection_magnitude(
    catalog: pd.DataFrame, bands: Sequence[str] = DETECTION_BANDS
) -> np.ndarray:
    """AB magnitude of the mean catalog flux in the detection bands (NaN when none has a
    positive flux): the brightness axis of a model's training domain."""
    present = [b for b in bands if flux_col(b) in catalog.columns]
    if not present:
        return np.full(len(catalog), np.nan)
    flux = catalog[[flux_col(b) for b in present]].to_numpy(float)
    with np.errstate(all="ignore"):
        mean = np.nanmean(np.where(np.isfinite(flux), flux, np.nan), axis=1)
    return ab_mag(mean)


def pdf_width(catalog: pd.DataFrame) -> np.ndarray:
    """The 68 % width of the redshift PDF relative to 1 + z: (u68 - l68) / (1 + z_phot)."""
    _need(catalog, ("z_phot", "z_l68", "z_u68"), "max_pdf_width")
    z = catalog["z_phot"].to_numpy(float)
    return (catalog["z_u68"].to_numpy(float) - catalog["z_l68"].to_numpy(float)) / (1 + z)


def _need(catalog: pd.DataFrame, columns: Sequence[str], cut: str) -> None:
    missing = [c for c in columns if c not in catalog.columns]
    if missing:
        raise HizkitError(
            f"quality cut {cut} needs catalog column(s) {', '.join(missing)}, "
            "which this data source does not provide"
        )


@dataclass(frozen=True)
class QualityCuts:
    """Which cuts to make; ``None`` (or False) switches a cut off.

    Attributes:
        min_snr: minimum S/N in the detection stack (``detection_bands``).
        max_pdf_width: maximum (u68 - l68) / (1 + z_phot).
        max_chi2: maximum chi-square of the best photo-z fit.
        drop_stars: remove sources flagged as stars or near bright stars.
    """

    min_snr: float | None = None
    max_pdf_width: float | None = None
    max_chi2: float | None = None
    drop_stars: bool = False
    detection_bands: tuple[str, ...] = DETECTION_BANDS

    @classmethod
    def from_dict(cls, values: dict | None) -> QualityCuts:
        """From a config table such as ``{"min_snr": 10, "max_pdf_width": 0.5}``."""
        if values is not None and not isinstance(values, dict):
            raise HizkitError(
                f"quality_cuts must be a table such as {{min_snr = 10}}, got {values!r}"
            )
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise HizkitError(
                f"unknown quality cut(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        for key in ("min_snr", "max_pdf_width", "max_chi2"):
            v = values.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise HizkitError(f"quality cut {key} must be a number, got {v!r}")
            if v is not None and v != v:  # NaN: every comparison fails, every source cut
                raise HizkitError(f"quality cut {key} must be a number, not NaN")
        if "drop_stars" in values and not isinstance(values["drop_stars"], bool):
            raise HizkitError(
                f"quality cut drop_stars must be true or false, got {values['drop_stars']!r}"
            )
        if "detection_bands" in values:
            bands = values["detection_bands"]
            if isinstance(bands, str):
                bands = [bands]
            if not isinstance(bands, (list, tuple)) or not all(isinstance(b, str) for b in bands):
                raise HizkitError(
                    f"quality cut detection_bands must be a list of bands, got {bands!r}"
                )
            values["detection_bands"] = tuple(bands)
        return cls(**values)

    @property
    def active(self) -> bool:
        return any(
            v not in (None, False)
            for v in (self.min_snr, self.max_pdf_width, self.max_chi2, self.drop_stars)
        )

    def apply(
        self, catalog: pd.DataFrame, only: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """A boolean mask of the rows kept, and ``(cut, rows left)`` after each cut in turn
        (the first entry is the input count). ``only`` (boolean) restricts the cuts to
        some rows; the others are always kept (e.g. brown dwarfs are not cut on photo-z)."""
        keep = np.ones(len(catalog), dtype=bool)
        target = np.ones(len(catalog), dtype=bool) if only is None else np.asarray(only, bool)
        counts = [("input", int(keep.sum()))]
        steps: list[tuple[str, np.ndarray]] = []
        if self.min_snr is not None:
            snr = detection_snr(catalog, self.detection_bands)
            steps.append((f"S/N >= {self.min_snr:g}", snr >= self.min_snr))
        if self.max_pdf_width is not None:
            steps.append(
                (f"PDF width <= {self.max_pdf_width:g}", pdf_width(catalog) <= self.max_pdf_width)
            )
        if self.max_chi2 is not None:
            _need(catalog, ("chi2_phot",), "max_chi2")
            steps.append(
                (
                    f"chi2 <= {self.max_chi2:g}",
                    catalog["chi2_phot"].to_numpy(float) <= self.max_chi2,
                )
            )
        if self.drop_stars:
            _need(catalog, ("flag_star", "flag_bright_star"), "drop_stars")
            star = catalog["flag_star"].to_numpy(bool) | catalog["flag_bright_star"].to_numpy(bool)
            steps.append(("not a star / bright-star halo", ~star))
        for name, passed in steps:
            keep &= passed | ~target  # NaN comparisons are False: missing values fail a cut
            counts.append((name, int(keep.sum())))
        return keep, counts


def describe(counts: list[tuple[str, int]]) -> str:
    """One line: ``1200 -> S/N >= 10: 800 -> PDF width <= 0.5: 500`` (the first step is
    named unless it is the plain input count)."""
    (name, n0), *rest = counts
    start = str(n0) if name == "input" else f"{name}: {n0}"
    return " -> ".join([start, *(f"{name}: {n}" for name, n in rest)])
