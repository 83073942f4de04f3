"""A simulated field with truth: one continuous sky, detected and measured like a catalog.

The labelled set is curated (balanced classes, quality cuts) and its cutouts are drawn one
source at a time. A classifier is used on a **whole field**, so this module simulates one:

1. **Sources** are drawn at the sky's mix of kinds at JADES-Deep depth (:func:`sky_fractions`,
   every number cited at :data:`SIGMA_DET` and below), scattered over one continuous sky at
   their own positions (Poisson; galaxy clustering is left out), so neighbours and blends
   arise as they do on the sky. Rare kinds (brown dwarfs, the red z >= 4 kinds) are drawn
   in excess and carry **importance weights** back to the sky's rates (``weight`` = the
   sky's expected number of a stratum / the number drawn); the mock's own low-z draw,
   which over-represents dusty and quiescent galaxies, is weighted back to the sky's
   fractions of those kinds per source (:data:`LOWZ_SKY`). ``mix`` multiplies the sky's
   rate of a class or kind (e.g. ``{"highz": 2}``) to write a field with another mix; the
   weights then refer to that mixed sky.
2. **Images**: the seven JADES bands rendered with the mock's physics (:mod:`images`: Sersic
   profiles on a 2x oversampled grid, the GalSim PSFs, drizzle-correlated noise at depths
   that vary smoothly across the field, all bands partly together, and strips without
   coverage in single bands), in tiles with margins so that light crosses tile edges.
3. **Detection** with photutils on the inverse-variance-weighted F277W+F356W+F444W stack
   (``detect_sources`` + ``deblend_sources``; centroids from ``SourceCatalog``), then the
   labelled set's own measurements on cutouts at each detection (:func:`images.measure`:
   0.15" apertures on PSF-matched images, flux radii, the errors from the local noise), the
   catalog detection cut (S/N >= ``detection_snr`` in the stack) and the template photo-z
   (:mod:`photoz`), so every classifier, the ``photoz`` ceiling included, reads the field
   as it reads the labelled set.
4. **Truth**: each detection is matched to the brightest true source (in the detection
   bands) whose centre lies in its segment, else to the true source within
   :data:`MATCH_RADIUS` that contributes most flux at its centroid; a true source
   claimed by several detections stays with the nearest and the others (shreds of one
   galaxy) become ``spurious``, as does a detection with no true source:
   ``kind = "spurious"``, ``label`` missing, ``z`` NaN.

Sources are new draws: the field's random streams are NumPy ``SeedSequence`` children with
spawn key (:data:`FIELD_STREAM`, ...), which no stream of the survey (entropy ``seed``,
``[seed, 1]``, ``[seed, 2]``, spawn key ()) can equal.

Catalog columns (one row per detection): ``id`` (from :data:`FIRST_ID`), ``ra``, ``dec``,
``x``, ``y`` (0-based mosaic pixels), ``flux_<B>``, ``fluxerr_<B>`` (nJy), ``radius_<B>``
(arcsec), ``snr_det`` (measured S/N in the detection stack), ``area`` (segment pixels), the
template photo-z (``z_phot``, ``z_l68``, ``z_u68``, ``chi2_lowz``, ``chi2_highz``,
``chi2_phot``, ``bimodal``), and truth, for evaluation only: ``label`` (true class; None
for spurious), ``label_true`` (the same), ``z`` (true redshift; 0 for brown dwarfs, NaN for
spurious), ``kind`` (population kinds or ``spurious``), ``weight`` (importance weight),
``spurious``, ``blended`` (the segment holds another true source with at least
:data:`BLEND_FRACTION` of the matched one's detection-band flux), ``n_true`` (such sources
in the segment), ``nn_dist`` (arcsec to the nearest other detection), ``match_dist``
(arcsec from the detection to its true source), ``ra_true``, ``dec_true``, ``mag_true``
(true F444W AB), ``re_true``, ``teff``, ``av``, ``age``, ``feh``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import fft, ndimage

from hizkit import progress
from hizkit.dataset import CLASSES, NIRCAM_BANDS, Dataset, flux_col, fluxerr_col, radius_col
from hizkit.errors import HizkitError
from hizkit.plugins.mock import images
from hizkit.plugins.mock.population import (
    HIGHZ_KINDS,
    KINDS,
    LOWZ_KINDS,
    Sources,
    draw_brown_dwarfs,
    draw_highz,
    draw_lowz,
)
from hizkit.science import DETECTION_BANDS

#: spawn key of the field's random streams (issue 23): never one of the survey's
FIELD_STREAM = 23
#: first catalog id of a field (labelled 1.., extra brown dwarfs 10_000_001..,
#: unlabelled 1_000_001..)
FIRST_ID = 20_000_001

# ------------------------------------------------------------------ the sky's mix

#: Detected sources per arcmin^2 at S/N >= 5 in the detection stack at JADES-Deep depth.
#: Order of magnitude from deep-field catalogs: the HUDF catalog holds ~10,000 objects in
#: 11 arcmin^2 (Beckwith et al. 2006, AJ 132, 1729: ~900 arcmin^-2 at S/N ~ 3-5 in the
#: optical); the JADES Deep GOODS-S imaging (~45 arcmin^2 at ~130 h, Eisenstein et al.
#: 2023, arXiv:2306.02465) shows "more than 45,000 galaxies" (NASA/ESA release, June 2023),
#: ~1000 arcmin^-2 at the catalog's own detection threshold (S/N ~ 3); S/N >= 5 is ~0.55
#: mag brighter, which at count slopes ~0.28 dex/mag keeps ~70 %. It sets the field's
#: area for a number of sources, hence how crowded it is.
SIGMA_DET = 700.0
#: z >= 4 share of detected galaxies: ~12 % of JADES sources have photo-z above 4 (the
#: mix of the survey's unlabelled catalog, ``survey.UNLABELLED_MIX``; Hainline et al.
#: 2024, ApJ 964, 71 select 717 z > 8 candidates from 125 arcmin^2, ~6 arcmin^-2 at z > 8
#: alone).
HIGHZ_SHARE = 0.12 / (0.875 + 0.12)
#: Surface densities (arcmin^-2) of the rare kinds among detected sources:
#: - brown dwarfs: Hainline et al. (2024b, ApJ 975, 31) find 21 T/Y candidates in JADES +
#:   CEERS (~0.1 arcmin^-2 to F444W ~ 29-30, ~0.02 % of the sources of such fields);
#:   T dwarfs ~0.1 arcmin^-2 in UNCOVER (Burgasser et al. 2024, ApJ 962, 177). The mock's
#:   Galactic model (:func:`population.draw_brown_dwarfs`) sets the L/T/Y split.
#: - little red dots: Kokorev et al. (2024, ApJ 968, 38), 260 at 4 < z < 9 over
#:   ~640 arcmin^2 of blank fields to F444W < 27.7: 0.41 arcmin^-2.
#: - HST-dark (dusty star-forming) galaxies at z > 4: Barrufet et al. (2023, MNRAS 522,
#:   449) ~0.8 arcmin^-2 at z ~ 2-7, about half above z = 4 (Williams et al. 2024, ApJ
#:   968, 34; Gottumukkala et al. 2024, MNRAS 530, 966): 0.4 arcmin^-2.
#: - quiescent / post-starburst galaxies at z > 4: ~2e-5 cMpc^-3 (Valentino et al. 2023,
#:   ApJ 947, 20, ~1e-5 for log M > 10.6 at 3 < z < 5; Carnall et al. 2023, MNRAS 520,
#:   3974, several 1e-5 to lower masses; Alberts et al. 2024, ApJ 975, 85) over 4 < z < 5,
#:   converted to arcmin^-2 with Planck18 (:func:`quiescent_density`).
BD_DENSITY = 0.1
LRD_DENSITY = 0.41
HSTDARK_DENSITY = 0.4
QUIESCENT_SPACE_DENSITY = 2e-5  # cMpc^-3 at 4 < z < 5

#: Low-z kinds on the sky, as a function of z (the mock's own draw over-represents them,
#: :func:`population.lowz_seds`: 8 %/25 % dusty, 4 %/12 % quiescent). The detected field is
#: dominated by galaxies of log M < 9, where quiescent galaxies are a few per cent at
#: z > 0.5 (the quiescent fraction falls steeply below log M ~ 10: Tomczak et al. 2014, ApJ
#: 783, 85; Muzzin et al. 2013, ApJ 777, 18) and heavily obscured ones (A_V > 1.5) are
#: rare outside massive galaxies (Whitaker et al. 2017, ApJ 850, 208): dusty 2 % below
#: z = 1.5 and 5 % above, quiescent 1 % below z = 0.5 and 3 % above. Order-of-magnitude
#: shares, stated so they can be argued with.
LOWZ_SKY = {"dusty": (1.5, 0.02, 0.05), "quiescent": (0.5, 0.01, 0.03)}
#: the mock's draw of the same kinds (population.lowz_seds): (z split, below, above)
LOWZ_DRAWN = {"dusty": (1.5, 0.08, 0.25), "quiescent": (0.5, 0.04, 0.12)}

#: strata drawn separately, with their own importance weights
STRATA = ("lowz", *HIGHZ_KINDS, "brown_dwarf")
RARE = ("highz_dusty", "highz_quiescent", "little_red_dot", "brown_dwarf")
#: a rare stratum is drawn so that at least this share of the field's detections (and at
#: least RARE_MIN of them) belongs to it, whatever the sky's rate; weights undo it
RARE_SHARE = 0.01
RARE_MIN = 4

#: matching radius (arcsec) for a detection whose segment holds no true centre
MATCH_RADIUS = 0.5
#: a second true source in a segment makes a blend when it has at least this fraction
#: of the matched source's detection-band flux
BLEND_FRACTION = 0.1


def quiescent_density(space_density: float = QUIESCENT_SPACE_DENSITY) -> float:
    """Surface density (arcmin^-2) of z > 4 quiescent galaxies: the space density times
    the Planck18 comoving volume over 4 < z < 5 per arcmin^2."""
    from astropy.cosmology import Planck18

    vol = (Planck18.comoving_volume(5.0) - Planck18.comoving_volume(4.0)).value
    return space_density * vol / (4 * np.pi * (180 / np.pi) ** 2 * 3600)


def sky_fractions(mix: dict[str, float] | None = None) -> dict[str, float]:
    """Share of each stratum (:data:`STRATA`) among the detected sources on the sky, with
    ``mix`` multipliers (a class name applies to all its strata, a kind to its own)."""
    highz = SIGMA_DET * HIGHZ_SHARE
    red = {
        "highz_dusty": HSTDARK_DENSITY / highz,
        "highz_quiescent": quiescent_density() / highz,
        "little_red_dot": LRD_DENSITY / highz,
    }
    bd = BD_DENSITY / SIGMA_DET
    gal = 1 - bd
    out = {"lowz": gal * (1 - HIGHZ_SHARE)}
    out["highz_starforming"] = gal * HIGHZ_SHARE * (1 - sum(red.values()))
    out.update({k: gal * HIGHZ_SHARE * v for k, v in red.items()})
    out["brown_dwarf"] = bd
    for key, factor in (mix or {}).items():
        for s in _strata_of(key):
            out[s] *= factor
    return out


def _strata_of(key: str) -> tuple[str, ...]:
    if key == "lowz":
        return ("lowz",)
    if key == "highz":
        return HIGHZ_KINDS
    if key in ("brown_dwarf", "brown_dwarfs"):
        return ("brown_dwarf",)
    if key in STRATA:
        return (key,)
    raise HizkitError(
        f"field mix: unknown class or kind {key!r}; use one of "
        f"{', '.join(['lowz', 'highz', 'brown_dwarf', *HIGHZ_KINDS])}"
    )


def parse_mix(text: str | dict | None) -> dict[str, float]:
    """``"highz=2,little_red_dot=3"`` (or a dict) as multipliers of the sky's rates."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in re.split(r"[,\s]+", str(text).strip()):
            if not part:
                continue
            if "=" not in part:
                raise HizkitError(f"field mix: expected NAME=FACTOR, got {part!r}")
            k, v = part.split("=", 1)
            items.append((k.strip(), v.strip()))
    out = {}
    for k, v in items:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise HizkitError(f"field mix: {k}={v!r} is not a number") from None
        if not f >= 0 or not np.isfinite(f):
            raise HizkitError(f"field mix: {k}={v!r} must be a finite number >= 0")
        _strata_of(k)
        out[k] = f
    return out


def _lowz_weight(z: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Per-source weight of the mock's low-z draw back to :data:`LOWZ_SKY`."""
    w = np.ones(z.size)
    sky_other = np.ones(z.size)
    drawn_other = np.ones(z.size)
    for k in ("dusty", "quiescent"):
        zs, lo, hi = LOWZ_SKY[k]
        sky = np.where(z > zs, hi, lo)
        zd, dlo, dhi = LOWZ_DRAWN[k]
        drawn = np.where(z > zd, dhi, dlo)
        w = np.where(kind == k, sky / drawn, w)
        sky_other -= sky
        drawn_other -= drawn
    return np.where(kind == "starforming", sky_other / drawn_other, w)


#: detections measured at once (each holds its cutouts and the FFTs of their PSF
#: matching, ~0.6 MB per 64-pixel detection). Part of the field's numbers: the BLAS
#: reductions of :func:`images.measure` round differently for another chunking
MEASURE_CHUNK = 1000

#: sources drawn at once: the SPS photometry of a draw holds (N, wavelengths) arrays
DRAW_CHUNK = 1000


def _draw(rng, stratum: str, n: int) -> Sources:
    if n > DRAW_CHUNK:
        sizes = [DRAW_CHUNK] * (n // DRAW_CHUNK) + ([n % DRAW_CHUNK] if n % DRAW_CHUNK else [])
        return Sources.join([_draw(rng, stratum, k) for k in sizes])
    if stratum == "lowz":
        return draw_lowz(rng, n)
    if stratum == "brown_dwarf":
        return draw_brown_dwarfs(rng, n)
    return draw_highz(rng, n, kind=np.full(n, stratum))


@lru_cache(maxsize=16)
def detection_rate(stratum: str, size: int, depth_scatter: float, min_snr: float) -> float:
    """Fraction of a stratum's draws detected (S/N >= min_snr in the stack), from the
    survey's analytic photometry on a fixed pilot draw (its own stream)."""
    from hizkit.plugins.mock import survey

    rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(FIELD_STREAM, 99)))
    n = 1500 if stratum == "lowz" else 600
    src = _draw(rng, stratum, n)
    phot = survey._analytic_photometry(rng, src, size, survey._catalog_noise(rng, n, depth_scatter))
    rate = float(np.mean(survey.detection_snr(phot["flux"], phot["err"]) >= min_snr))
    return max(rate, 1.0 / n)


@dataclass
class Plan:
    """What to draw: the field's side in pixels and, per stratum, how many sources and
    their importance weight."""

    side: int
    area: float  # arcmin^2
    drawn: dict[str, int]
    weight: dict[str, float]
    expected: dict[str, float]  # the (mixed) sky's detected sources per stratum


def plan(n_sources: int, size: int, depth_scatter: float, min_snr: float, mix=None) -> Plan:
    """Area and draws for a field of about ``n_sources`` detections at the sky's mix."""
    frac = sky_fractions(mix)
    base = sky_fractions()
    area = n_sources / SIGMA_DET  # arcmin^2 of the (unmixed) sky
    side = int(np.ceil(np.sqrt(area) * 60 / images.PIXEL))
    area = (side * images.PIXEL / 60) ** 2
    n_det = SIGMA_DET * area
    drawn, weight, expected = {}, {}, {}
    for s in STRATA:
        p = detection_rate(s, size, depth_scatter, min_snr)
        expect = n_det * frac[s]  # detected, on the (mixed) sky
        sky_drawn = expect / p  # to the draw's own faint limit
        want = expect
        if s in RARE and base[s] > 0:
            want = max(expect, RARE_SHARE * n_sources, RARE_MIN)
        n = int(np.ceil(want / p)) if expect > 0 else 0
        drawn[s] = n
        weight[s] = sky_drawn / n if n else 0.0
        expected[s] = expect
    return Plan(side, area, drawn, weight, expected)


# ------------------------------------------------------------------ rendering

MARGIN = 48  # output pixels of overlap around each rendering tile
TILE = 1024  # output pixels of a rendering tile, margins included


@lru_cache(maxsize=4)
def _psf_ft(fine: int, stamp: int) -> np.ndarray:
    """rfft2 (7, fine, fine//2+1) of each band's PSF (as :func:`images.psf_transforms`,
    drawn on a ``stamp`` fine-pixel grid, the labelled cutouts' padded grid), centred at
    pixel (0, 0) of a ``fine`` x ``fine`` grid."""
    import galsim

    from hizkit.plugins.mock.seds import nircam_filters

    scale = images.PIXEL / images.OVERSAMPLE
    out = []
    for fwhm, lam in zip(images.PSF_FWHM, nircam_filters().pivot / 10.0):
        airy = galsim.Airy(lam=lam, diam=6.5, obscuration=0.11, scale_unit=galsim.arcsec)
        core = galsim.Airy(lam=lam, diam=6.5, scale_unit=galsim.arcsec).fwhm
        extra = np.sqrt(max(fwhm**2 - core**2, 1e-6))
        psf = galsim.Convolve(airy, galsim.Gaussian(fwhm=extra))
        img = psf.drawImage(nx=stamp, ny=stamp, scale=scale, method="no_pixel").array
        img = img / img.sum()
        pad = np.zeros((fine, fine))
        pad[:stamp, :stamp] = img
        pad = np.roll(pad, (-(stamp // 2), -(stamp // 2)), axis=(0, 1))
        out.append(fft.rfft2(pad))
    return np.array(out)


def _stamp(re_: float, n: float, q: float, pa: float, fx: float, fy: float) -> np.ndarray:
    """Unit-sum profile on a fine-pixel stamp centred on the fine pixel nearest the source;
    (fx, fy): the source's offset from that pixel's centre in fine pixels. As
    :func:`images.render_profiles`: a point source fills one fine pixel."""
    scale = images.PIXEL / images.OVERSAMPLE
    if re_ <= 0:
        return np.ones((1, 1))
    half = int(np.clip(np.ceil(6 * re_ / scale), 10, 96))
    c = np.arange(-half, half + 1) * scale
    dx = c[None, :] - fx * scale
    dy = c[:, None] - fy * scale
    cs, sn = np.cos(pa), np.sin(pa)
    u = dx * cs + dy * sn
    v = -dx * sn + dy * cs
    r = np.maximum(np.sqrt(u**2 * q + v**2 / q), 0.25 * scale)
    img = np.exp(-images.sersic_bn(n) * ((r / re_) ** (1 / n) - 1))
    return img / img.sum()


def render_sky(src: Sources, x: np.ndarray, y: np.ndarray, side: int) -> np.ndarray:
    """Noise-free images (7, side, side) in nJy per pixel of sources at mosaic pixel
    positions (x, y), rendered in overlapping tiles on the 2x oversampled grid."""
    ov = images.OVERSAMPLE
    core = TILE - 2 * MARGIN
    if side + 2 * MARGIN <= TILE:
        tile = fft.next_fast_len(side + 2 * MARGIN)
        tile += tile % 2
        core = tile - 2 * MARGIN
    else:
        tile = TILE
    fine = tile * ov
    psf = _psf_ft(fine, images.Grid(64).padded)
    out = np.zeros((7, side, side), dtype=np.float32)
    # fine-pixel coordinates of every source (pixel centres at integers)
    fxs, fys = (x + 0.5) * ov - 0.5, (y + 0.5) * ov - 0.5
    starts = range(0, side, core)
    jobs = [(i0, j0) for i0 in starts for j0 in starts]
    for i0, j0 in progress.track(jobs, "rendering the field"):
        y0, x0 = i0 - MARGIN, j0 - MARGIN  # output pixel of the tile's corner
        fy0, fx0 = y0 * ov, x0 * ov
        reach = 100  # fine pixels: the largest stamp's half-size and more
        sel = np.flatnonzero(
            (fxs > fx0 - reach)
            & (fxs < fx0 + fine + reach)
            & (fys > fy0 - reach)
            & (fys < fy0 + fine + reach)
        )
        # one band at a time (float64, as before: the same sums and FFTs per band), so
        # that a tile holds one fine-grid image and its transform, not seven
        pieces = []
        for k in sel:
            cx, cy = int(np.rint(fxs[k])), int(np.rint(fys[k]))
            st = _stamp(src.re[k], src.sersic[k], src.q[k], src.pa[k], fxs[k] - cx, fys[k] - cy)
            h = st.shape[0] // 2
            a0, a1 = cy - h - fy0, cy + h + 1 - fy0
            b0, b1 = cx - h - fx0, cx + h + 1 - fx0
            c0, c1 = max(a0, 0), min(a1, fine)
            d0, d1 = max(b0, 0), min(b1, fine)
            if c0 >= c1 or d0 >= d1:
                continue
            pieces.append((k, c0, c1, d0, d1, st[c0 - a0 : c1 - a0, d0 - b0 : d1 - b0]))
        ci, cj = min(core, side - i0), min(core, side - j0)
        for b in range(7):
            acc = np.zeros((1, fine, fine))
            for k, c0, c1, d0, d1, piece in pieces:
                acc[:, c0:c1, d0:d1] += src.flux[k][b : b + 1, None, None] * piece[None]
            img = fft.irfft2(
                fft.rfft2(acc, workers=-1) * psf[b : b + 1], s=(fine, fine), workers=-1
            )
            del acc
            binned = img.reshape(1, tile, ov, tile, ov).sum(axis=(2, 4))
            del img
            out[b, i0 : i0 + ci, j0 : j0 + cj] = binned[
                0, MARGIN : MARGIN + ci, MARGIN : MARGIN + cj
            ]
    return out


#: correlation length (arcsec) of the depth variations across the field: the scale of
#: exposure-time steps between overlapping dithers and pointings (a NIRCam module is 2.2')
DEPTH_SCALE = 20.0
DEPTH_CELL = 32  # output pixels per cell of the coarse depth map


def depth_map(rng, side: int, depth_scatter: float) -> np.ndarray:
    """Per-pixel noise sigma (7, cells, cells) on a coarse grid: the nominal depth moved by
    a smooth Gaussian field of ``depth_scatter`` mag rms per band, the share
    :data:`images.DEPTH_SHARED` of its variance common to the seven bands."""
    cells = side // DEPTH_CELL + 2
    smooth = DEPTH_SCALE / images.PIXEL / DEPTH_CELL

    def field_() -> np.ndarray:
        # unit variance: white noise smoothed by a 2-D Gaussian of sigma s has variance
        # 1 / (4 pi s^2) (the sample's own spread would inflate a field smaller than s)
        pad = int(np.ceil(3 * smooth))
        white = rng.standard_normal((cells + 2 * pad, cells + 2 * pad))
        f = ndimage.gaussian_filter(white, smooth, mode="wrap")[
            pad : -pad or None, pad : -pad or None
        ]
        return f * np.sqrt(4 * np.pi) * smooth

    shared = field_()
    offs = np.array(
        [
            depth_scatter
            * (np.sqrt(images.DEPTH_SHARED) * shared + np.sqrt(1 - images.DEPTH_SHARED) * field_())
            for _ in range(7)
        ]
    )
    return images.pixel_sigma()[:, None, None] * 10 ** (0.4 * offs)


def sigma_at(coarse: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear per-pixel sigma (N, 7) at mosaic pixel positions from the coarse map."""
    cx = (np.asarray(x) + 0.5) / DEPTH_CELL - 0.5
    cy = (np.asarray(y) + 0.5) / DEPTH_CELL - 0.5
    return np.column_stack(
        [ndimage.map_coordinates(c, [cy, cx], order=1, mode="nearest") for c in coarse]
    )


def sigma_image(coarse: np.ndarray, band: int, side: int) -> np.ndarray:
    """Full-resolution per-pixel sigma of one band (side, side), float32."""
    g = (np.arange(side) + 0.5) / DEPTH_CELL - 0.5
    rows = np.array([np.interp(g, np.arange(c.size), c) for c in coarse[band]])  # (cells, side)
    return np.array(
        [np.interp(g, np.arange(rows.shape[0]), rows[:, j]) for j in range(side)], np.float32
    ).T


def add_noise(rng, img: np.ndarray, sigma: np.ndarray, band: int) -> None:
    """Add drizzle-correlated noise (:func:`images.noise_kernels`) of per-pixel rms
    ``sigma`` to one band's image, in place."""
    k = images.noise_kernels()[band].astype(np.float32)
    pad = k.size // 2
    h, w = img.shape
    white = rng.standard_normal((h + 2 * pad, w + 2 * pad), dtype=np.float32)
    rows = np.zeros((h, w + 2 * pad), np.float32)
    for d in range(k.size):
        rows += k[d] * white[d : d + h]
    del white
    for d in range(k.size):
        img += k[d] * rows[:, d : d + w] * sigma


def coverage_masks(rng, side: int, coverage_loss: float) -> np.ndarray:
    """Boolean (7, side, side), True where a band has no coverage: strips 2-8" wide at
    random angles (chip gaps and mosaic edges of single bands), F090W, whose footprint is
    smallest, losing most; each band's lost area is the labelled cutouts' expectation
    (:func:`images._drop_coverage`: a share ``coverage_loss`` of cutouts loses about half of
    one band, F090W half the time)."""
    out = np.zeros((7, side, side), dtype=bool)
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    for b in range(7):
        target = 0.5 * coverage_loss * ((0.5 if b == 0 else 0.0) + 0.5 / 7)
        tries = 0
        while out[b].mean() < target and tries < 50:
            tries += 1
            theta = rng.uniform(0, np.pi)
            d = rng.uniform(0, side) * np.cos(theta) + rng.uniform(0, side) * np.sin(theta)
            # no wider than the area still to lose (a small field is not cut in half)
            width = min(rng.uniform(2.0, 8.0) / images.PIXEL, (target - out[b].mean()) * side + 1)
            dist = np.abs(xx * np.cos(theta) + yy * np.sin(theta) - d)
            out[b] |= dist < width / 2
    return out


# ------------------------------------------------------------------ detection


#: segments smaller than this (pixels) are not deblended
DEBLEND_MIN_AREA = 30
#: detection: 1.5 x the rms of the filtered S/N image over at least 8 connected pixels;
#: deblending children of at least 20 pixels at contrast 0.05. A conservative deblend:
#: lower contrasts shred the noisy outskirts of extended galaxies into spurious pieces
#: (measured on a 300-source field: 20 % of detections spurious at SExtractor's default
#: 0.005 with 8-pixel children, 10-12 % at 0.01-0.02, 4 % at 0.05)
DETECT_THRESHOLD = 1.5
DETECT_PIXELS = 8
DEBLEND_PIXELS = 20
DEBLEND_CONTRAST = 0.05


def detect(sci: np.ndarray, sigma, holes: np.ndarray):
    """photutils detection and deblending on the inverse-variance-weighted stack of the
    detection bands (``sigma``: the per-pixel rms, (7, H, W) or a function of the band
    giving (H, W)). Returns the deblended segmentation image and a table of centroids
    (x, y, 0-based pixels) and segment areas."""
    from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources

    idx = [NIRCAM_BANDS.index(b) for b in DETECTION_BANDS]
    wsum = np.zeros(sci.shape[1:], np.float32)
    stack = np.zeros(sci.shape[1:], np.float32)
    for b in idx:
        sig = sigma(b) if callable(sigma) else sigma[b]
        w = np.where(holes[b], 0.0, 1.0 / sig**2).astype(np.float32)
        stack += w * np.nan_to_num(sci[b])
        wsum += w
    snr = np.where(wsum > 0, stack / np.sqrt(np.maximum(wsum, 1e-30)), 0.0).astype(np.float32)
    del stack
    # a Gaussian filter of FWHM 3 pixels, about the F277W-F444W PSF (the usual matched
    # filter of deep-field detection), then the thresholds of DETECT_* and DEBLEND_*
    # (32 exponential levels, as SExtractor's DEBLEND_NTHRESH; Bertin & Arnouts 1996)
    filt = ndimage.gaussian_filter(snr, 3.0 / 2.3548, mode="constant")
    rms = _robust_rms(filt)
    seg = detect_sources(filt, DETECT_THRESHOLD * rms, n_pixels=DETECT_PIXELS)
    if seg is None:
        return None, pd.DataFrame({"x": [], "y": [], "area": []})
    # only segments large enough to hold two resolved sources are deblended (a compact
    # pair inside ~30 pixels, 0.17" in radius, is unresolved at F277W-F444W anyway)
    big = seg.labels[seg.areas >= DEBLEND_MIN_AREA]
    if big.size:
        with warnings.catch_warnings():  # "mode changed to linear" for flat segments
            warnings.simplefilter("ignore")
            seg = deblend_sources(
                filt,
                seg,
                n_pixels=DEBLEND_PIXELS,
                labels=big,
                n_levels=32,
                contrast=DEBLEND_CONTRAST,
                progress_bar=False,
            )
    cat = SourceCatalog(snr, seg, convolved_data=filt)
    tab = pd.DataFrame(
        {
            "label": cat.labels,
            "x": np.asarray(cat.x_centroid, float),
            "y": np.asarray(cat.y_centroid, float),
            "area": np.asarray(cat.area.value, float),
        }
    )
    return seg, tab[np.isfinite(tab["x"]) & np.isfinite(tab["y"])].reset_index(drop=True)


def _robust_rms(img: np.ndarray) -> float:
    v = img[img != 0].ravel()
    if v.size > 2_000_000:
        v = v[:: v.size // 2_000_000]
    v = v[v < np.median(v) + 3 * 1.4826 * np.median(np.abs(v - np.median(v)))]
    med = np.median(v)
    return float(1.4826 * np.median(np.abs(v - med))) or 1.0


def cutouts_at(sci: np.ndarray, x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Cutouts (N, 7, size, size) centred within half a pixel of each position (as the
    labelled set's); NaN off the mosaic's edge and where it has no coverage."""
    n = len(x)
    out = np.full((n, sci.shape[0], size, size), np.nan, dtype=np.float32)
    h, w = sci.shape[1:]
    x0 = np.rint(np.asarray(x) - size / 2 + 0.5).astype(int)
    y0 = np.rint(np.asarray(y) - size / 2 + 0.5).astype(int)
    for i in range(n):
        a0, a1 = max(y0[i], 0), min(y0[i] + size, h)
        b0, b1 = max(x0[i], 0), min(x0[i] + size, w)
        if a0 < a1 and b0 < b1:
            out[i, :, a0 - y0[i] : a1 - y0[i], b0 - x0[i] : b1 - x0[i]] = sci[:, a0:a1, b0:b1]
    return out


def match(seg, det: pd.DataFrame, tx, ty, tflux, tre):
    """Truth of each detection: (index of its true source or -1, n_true, distance in
    pixels). See the module docstring for the rules."""
    from scipy.spatial import cKDTree

    n = len(det)
    h, w = seg.data.shape
    ix, iy = np.floor(tx + 0.5).astype(int), np.floor(ty + 0.5).astype(int)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    owner = np.zeros(tx.size, int)
    owner[inside] = seg.data[iy[inside], ix[inside]]
    row_of = pd.Series(np.arange(n), index=det["label"].to_numpy())
    best = np.full(n, -1)
    n_true = np.zeros(n, int)
    members = pd.Series(np.flatnonzero(owner > 0)).groupby(owner[owner > 0]).apply(np.asarray)
    for lab, idx in members.items():
        if lab not in row_of.index:
            continue
        r = row_of[lab]
        top = idx[np.argmax(tflux[idx])]
        best[r] = top
        n_true[r] = int(np.sum(tflux[idx] >= BLEND_FRACTION * tflux[top]))
    tree = cKDTree(np.column_stack([tx, ty]))
    pos = det[["x", "y"]].to_numpy()
    # no true centre in the segment: the source contributing most flux at the centroid,
    # its light spread over its size and the F444W PSF (sigma 0.062")
    s2 = (np.asarray(tre) ** 2 + 0.062**2) / images.PIXEL**2
    for r in np.flatnonzero(best < 0):
        near = np.asarray(tree.query_ball_point(pos[r], MATCH_RADIUS / images.PIXEL), int)
        if near.size:
            d2 = (tx[near] - pos[r, 0]) ** 2 + (ty[near] - pos[r, 1]) ** 2
            score = tflux[near] / s2[near] * np.exp(-0.5 * d2 / s2[near])
            best[r] = near[np.argmax(score)]
    dist = np.hypot(det["x"].to_numpy() - tx[best], det["y"].to_numpy() - ty[best])
    dist = np.where(best >= 0, dist, np.nan)
    # one detection per true source: the nearest keeps it
    order = np.argsort(np.where(best >= 0, dist, np.inf), kind="stable")
    seen: set[int] = set()
    for r in order:
        if best[r] < 0:
            continue
        if best[r] in seen:
            best[r] = -1
            dist[r] = np.nan
        else:
            seen.add(int(best[r]))
    return best, n_true, dist


# ------------------------------------------------------------------ the field


@dataclass
class Field:
    """A simulated field: the detected catalog with truth (``data``), and, when kept, the
    mosaics (nJy per pixel, NaN without coverage), the coarse depth map and the WCS."""

    data: Dataset
    sci: np.ndarray | None = None
    depth: np.ndarray | None = None
    wcs: Any = None
    truth: pd.DataFrame | None = None  # every drawn source, detected or not
    meta: dict[str, Any] = field(default_factory=dict)

    def err_image(self, band: int) -> np.ndarray:
        """Per-pixel rms (nJy) of one band, 0 where it has no coverage."""
        img = sigma_image(self.depth, band, self.sci.shape[1])
        return np.where(np.isfinite(self.sci[band]), img, 0.0).astype(np.float32)


def field_wcs(side: int, centre: tuple[float, float]):
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(centre)
    w.wcs.crpix = [side / 2 + 0.5, side / 2 + 0.5]
    s = images.PIXEL / 3600.0
    w.wcs.cd = [[-s, 0.0], [0.0, s]]
    w.wcs.cunit = ["deg", "deg"]
    return w


def streams(seed: int, n: int, stream: tuple[int, ...] = ()) -> list[np.random.Generator]:
    """The field's random generators: children of SeedSequence(seed) with spawn key
    (FIELD_STREAM, *stream, i), disjoint from every stream of the survey; ``stream``
    (e.g. the labelled fields of :mod:`field_training`) gives other, disjoint fields."""
    return [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(FIELD_STREAM, *stream, i)))
        for i in range(n)
    ]


def simulate(
    n_sources: int,
    seed: int = 1,
    *,
    cutout_size: int = 64,
    mix: dict[str, float] | str | None = None,
    depth_scatter: float = 0.15,
    coverage_loss: float = 0.05,
    detection_snr: float = 5.0,
    keep_images: bool = False,
    stream: tuple[int, ...] = (),
) -> Field:
    """A field of about ``n_sources`` detections (module docstring). ``keep_images`` keeps
    the mosaics for writing them (``hizkit simulate --field``); ``stream`` (default: the
    field test's) selects other random streams (:func:`streams`)."""
    from hizkit.plugins.mock import survey

    if not isinstance(n_sources, int) or n_sources < 1:
        raise HizkitError(
            f"field: the number of sources must be a positive integer, got {n_sources!r}"
        )
    mix = parse_mix(mix)
    r_draw, r_pos, r_depth, r_cover, r_noise = streams(seed, 5, tuple(stream))
    p = plan(n_sources, cutout_size, depth_scatter, detection_snr, mix)
    side = p.side
    progress.log(
        f"simulating a field of {p.area:.2f} arcmin^2 ({side} x {side} pixels), about "
        f"{n_sources} detections: drawing {sum(p.drawn.values())} sources"
    )
    parts, weights = [], []
    for s in STRATA:
        if p.drawn[s] == 0:
            continue
        src = _draw(r_draw, s, p.drawn[s])
        w = np.full(len(src), p.weight[s])
        if s == "lowz":
            w = w * _lowz_weight(src.z, src.kind)
        parts.append(src)
        weights.append(w)
    src = Sources.join(parts)
    weight = np.concatenate(weights)
    nsrc = len(src)
    tx = r_pos.uniform(-0.5, side - 0.5, nsrc)
    ty = r_pos.uniform(-0.5, side - 0.5, nsrc)

    sci = render_sky(src, tx, ty, side)
    depth = depth_map(r_depth, side, depth_scatter)
    holes = coverage_masks(r_cover, side, coverage_loss)
    # band by band: a band's full-resolution sigma image is made when it is needed (here
    # and again for the detection bands), never seven at once
    for b in progress.track(range(7), "adding noise"):
        add_noise(r_noise, sci[b], sigma_image(depth, b, side), b)
        sci[b][holes[b]] = np.nan

    progress.log("detecting (photutils) on the F277W+F356W+F444W stack")
    seg, det = detect(sci, lambda b: sigma_image(depth, b, side), holes)
    del holes
    if seg is None or len(det) == 0:
        raise HizkitError("field: nothing detected (is the field too small?)")
    x, y = det["x"].to_numpy(), det["y"].to_numpy()
    sig = sigma_at(depth, x, y)
    # measured in chunks, keeping only the cutouts of detections that pass the catalog
    # cut: the segmentation finds several times more candidates than pass it
    phot: dict[str, list] = {"flux": [], "err": [], "radius": []}
    cut_parts, keep_parts = [], []
    for i in range(0, len(det), MEASURE_CHUNK):
        cut = cutouts_at(sci, x[i : i + MEASURE_CHUNK], y[i : i + MEASURE_CHUNK], cutout_size)
        m = images.measure(cut, sig[i : i + MEASURE_CHUNK])
        ok = survey.detection_snr(m["flux"], m["err"]) >= detection_snr
        for k in phot:
            phot[k].append(m[k][ok])
        cut_parts.append(cut[ok])
        keep_parts.append(ok)
        del cut, m
    if not keep_images:
        del sci
    keep = np.concatenate(keep_parts)
    det = det[keep].reset_index(drop=True)
    ph = {k: np.concatenate(v) for k, v in phot.items()}
    cutouts = np.concatenate(cut_parts)
    del cut_parts
    snr = survey.detection_snr(ph["flux"], ph["err"])

    det_idx = [NIRCAM_BANDS.index(b) for b in DETECTION_BANDS]
    tflux = src.flux[:, det_idx].mean(axis=1)
    best, n_true, dist = match(seg, det, tx, ty, tflux, src.re)
    fit = survey.cut_frame(ph)
    fit = fit[[c for c in fit.columns if not c.startswith("flux")]]

    wcs = field_wcs(side, survey.FIELD_CENTRE)
    ra, dec = wcs.wcs_pix2world(det["x"].to_numpy(), det["y"].to_numpy(), 0)
    rat, dect = wcs.wcs_pix2world(tx, ty, 0)
    cat = _field_catalog(det, ph, snr, fit, ra, dec, best, n_true, dist, src, weight, rat, dect)
    from scipy.spatial import cKDTree

    pos = det[["x", "y"]].to_numpy()
    if len(pos) > 1:
        d, _ = cKDTree(pos).query(pos, k=2)
        cat["nn_dist"] = d[:, 1] * images.PIXEL
    else:
        cat["nn_dist"] = np.inf
    meta = {
        "source": "mock field",
        "seed": seed,
        "area_arcmin2": p.area,
        "side_pixels": side,
        "sigma_det": SIGMA_DET,
        "mix": mix,
        "drawn": p.drawn,
        "weights": p.weight,
        "expected": p.expected,
        "n_drawn": nsrc,
        "n_segments": int(seg.n_labels),
    }
    data = Dataset(cat, NIRCAM_BANDS, images.PIXEL, cutouts, meta=meta)
    progress.log(
        f"field: {len(cat)} detections ({int(cat['spurious'].sum())} spurious, "
        f"{int(cat['blended'].sum())} blended) in {p.area:.2f} arcmin^2"
    )
    if not keep_images:
        return Field(data, meta=meta)
    truth = pd.DataFrame(
        {
            "x": tx,
            "y": ty,
            "ra": rat,
            "dec": dect,
            "kind": src.kind,
            "z": src.z,
            "weight": weight,
            "flux_det": tflux,
            "re": src.re,
        }
    )
    return Field(data, sci=sci, depth=depth, wcs=wcs, truth=truth, meta=meta)


def _field_catalog(det, ph, snr, fit, ra, dec, best, n_true, dist, src, weight, rat, dect):
    n = len(det)
    ok = best >= 0
    j = np.where(ok, best, 0)

    def truth(values, missing=np.nan):
        v = np.asarray(values)[j]
        if v.dtype.kind in "fc":
            return np.where(ok, v, missing)
        return np.where(ok, v.astype(object), missing)

    cols: dict[str, Any] = {
        "id": np.arange(FIRST_ID, FIRST_ID + n),
        "ra": ra,
        "dec": dec,
        "x": det["x"].to_numpy(),
        "y": det["y"].to_numpy(),
    }
    for b, band in enumerate(NIRCAM_BANDS):
        cols[flux_col(band)] = ph["flux"][:, b]
        cols[fluxerr_col(band)] = ph["err"][:, b]
        cols[radius_col(band)] = ph["radius"][:, b]
    cols["snr_det"] = snr
    cols["area"] = det["area"].to_numpy()
    cat = pd.DataFrame(cols)
    for key in fit.columns:
        cat[key] = fit[key].to_numpy()
    label = np.where(ok, src.label[j].astype(object), None)
    cat["label"] = label
    cat["label_true"] = label
    cat["z"] = truth(src.z)
    cat["kind"] = np.where(ok, src.kind[j].astype(object), "spurious")
    cat["weight"] = np.where(ok, weight[j], 1.0)
    cat["spurious"] = ~ok
    cat["n_true"] = n_true
    cat["blended"] = n_true >= 2
    cat["match_dist"] = dist * images.PIXEL
    cat["ra_true"] = truth(rat)
    cat["dec_true"] = truth(dect)
    with np.errstate(divide="ignore", invalid="ignore"):
        cat["mag_true"] = truth(-2.5 * np.log10(np.maximum(src.flux[:, -1], 1e-30)) + 31.4)
    for key, values in (
        ("re_true", src.re),
        ("teff", src.teff),
        ("av", src.av),
        ("age", src.age),
        ("feh", src.feh),
    ):
        cat[key] = truth(values)
    return cat


def kind_fractions(cat: pd.DataFrame) -> pd.Series:
    """Weighted share of each kind among the field's matched detections."""
    m = cat[~cat["spurious"].astype(bool)]
    w = m.groupby("kind")["weight"].sum()
    return (w / w.sum()).reindex([k for k in KINDS if k in w.index])


def class_fractions(cat: pd.DataFrame) -> pd.Series:
    """Weighted share of each class among the field's matched detections."""
    m = cat[~cat["spurious"].astype(bool)]
    w = m.groupby("label")["weight"].sum()
    return (w / w.sum()).reindex(list(CLASSES)).fillna(0.0)


__all__ = [
    "FIELD_STREAM",
    "LOWZ_KINDS",
    "Field",
    "class_fractions",
    "kind_fractions",
    "parse_mix",
    "plan",
    "simulate",
    "sky_fractions",
]
