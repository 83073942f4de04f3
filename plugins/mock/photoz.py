"""Template photometric redshifts and the computed bimodal flag.

The simulator fits each source's catalog photometry against its own template grid
(shapes drawn from its own low-z and high-z priors, over 0.2 <= z < 4 and
4 <= z <= 15), with a free non-negative amplitude per template. A
source is **bimodal** when the best low-z and best high-z solutions differ by less than
``delta_chi2`` (4 by default) while both fit acceptably (chi2 < ``chi2_ok``) and
chi2(z) rises by more than ``separation`` between them (two distinct peaks in P(z), not
one broad one): its photometry cannot
tell a Balmer break from a Lyman break, the aliasing behind bimodal redshift PDFs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hizkit.plugins.mock.population import draw_highz_kinds, highz_seds, lowz_seds
from hizkit.plugins.mock.seds import GalaxySED, galaxy_photometry

N_SHAPES = 48  # SED shapes per branch, drawn from the simulator's own priors


@lru_cache(maxsize=1)
def template_grid() -> tuple[np.ndarray, np.ndarray]:
    """Model fluxes (M, 7), normalised to peak 1, and their redshifts (M,).

    Each branch holds N_SHAPES SPS SEDs drawn (fixed seed) from the population's priors
    at a reference redshift (z = 2.5 and 6, every kind of its class), each evaluated
    over that branch's redshift grid, as a template set of fixed shapes is.
    """
    rng = np.random.default_rng(12345)
    zs_low = np.arange(0.2, 4.0, 0.025)
    zs_high = np.arange(4.0, 15.0, 0.05)
    low, _ = lowz_seds(rng, np.full(N_SHAPES, 2.5))
    high = highz_seds(rng, np.full(N_SHAPES, 6.0), draw_highz_kinds(rng, N_SHAPES))
    models, zs = [], []
    for shapes, grid in ((low, zs_low), (high, zs_high)):
        idx = np.repeat(np.arange(N_SHAPES), grid.size)
        seds = shapes.take(idx).at(np.tile(grid, N_SHAPES))
        models.append(galaxy_photometry(GalaxySED(seds.main, seds.second, seds.mix)))
        zs.append(np.tile(grid, N_SHAPES))
    m = np.concatenate(models)
    return m / m.max(axis=1, keepdims=True), np.concatenate(zs)


def fit(
    flux: np.ndarray,
    err: np.ndarray,
    delta_chi2: float = 4.0,
    chi2_ok: float = 25.0,
    separation: float = 4.0,
    chunk: int = 256,
) -> dict[str, np.ndarray]:
    """Best redshift, 68 % interval, chi2 of each branch and the bimodal flag per source."""
    parts = [
        _fit(flux[i : i + chunk], err[i : i + chunk], delta_chi2, chi2_ok, separation)
        for i in range(0, len(flux), chunk)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def _profile(chi2: np.ndarray, zgrid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum of chi2 (N, M) over templates at each redshift: the grid is blocks of
    N_SHAPES shapes, each over its branch's redshift grid (see :func:`template_grid`)."""
    zs, parts, start = [], [], 0
    while start < zgrid.size:
        z0 = zgrid[start]
        stop = start + 1
        while stop < zgrid.size and zgrid[stop] != z0:
            stop += 1
        nz = stop - start  # one shape's redshift grid
        block = N_SHAPES * nz
        parts.append(chi2[:, start : start + block].reshape(len(chi2), N_SHAPES, nz).min(axis=1))
        zs.append(zgrid[start:stop])
        start += block
    return np.concatenate(zs), np.concatenate(parts, axis=1)


def _fit(flux, err, delta_chi2, chi2_ok, separation):
    models, zgrid = template_grid()
    ok = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    w = np.where(ok, 1.0 / np.where(ok, err, 1.0) ** 2, 0.0)
    f = np.where(ok, flux, 0.0)
    fw = f * w
    num = fw @ models.T  # (N, M)
    den = w @ (models**2).T
    amp = np.clip(num / np.maximum(den, 1e-300), 0, None)
    chi2 = (f**2 * w).sum(axis=1, keepdims=True) - 2 * amp * num + amp**2 * den
    # chi2(z): the best template at each z (each branch is shapes x its own z grid)
    zu, profile = _profile(chi2, zgrid)
    zlow = zu < 4.0
    i_low = np.argmin(np.where(zlow, profile, np.inf), axis=1)
    i_high = np.argmin(np.where(zlow, np.inf, profile), axis=1)
    rows = np.arange(len(flux))
    chi_low, chi_high = profile[rows, i_low], profile[rows, i_high]
    # the deepest point of the valley between the two solutions
    between = (np.arange(zu.size)[None, :] > i_low[:, None]) & (
        np.arange(zu.size)[None, :] < i_high[:, None]
    )
    trough = np.where(between, profile, -np.inf).max(axis=1)
    like = np.exp(-0.5 * (profile - profile.min(axis=1, keepdims=True)))
    cdf = np.cumsum(like, axis=1)
    cdf /= cdf[:, -1:]
    l68 = zu[np.argmax(cdf >= 0.16, axis=1)]
    u68 = zu[np.argmax(cdf >= 0.84, axis=1)]
    worst = np.maximum(chi_low, chi_high)
    bimodal = (
        (np.abs(chi_low - chi_high) < delta_chi2)
        & (worst < chi2_ok)
        & (trough > worst + separation)
    )
    return {
        "z_phot": np.where(chi_low <= chi_high, zu[i_low], zu[i_high]),
        "z_l68": l68,
        "z_u68": u68,
        "chi2_lowz": chi_low,
        "chi2_highz": chi_high,
        "bimodal": bimodal,
    }
