"""Spectral energy distributions and NIRCam photometry for the simulated survey.

Everything here is vectorised over sources: parameters are arrays of length N and the
result is an ``(N, 7)`` array of band-averaged f_nu (photon-counting average through the
real NIRCam filter curves shipped by astro-sedpy).

Galaxies: a parametric stellar continuum (piecewise power law in f_nu with a UV slope
beta, a Balmer/4000 A break of strength ``d4000`` and the 1.6 um stellar bump), nebular
emission lines given by rest-frame equivalent widths, Calzetti et al. (2000) dust on the
stars and 1/0.44 times more on the lines (Calzetti 2000's gas-to-star ratio), and the
Madau (1995, ApJ 441, 18) mean IGM transmission (Lyman-series line blanketing with his
coefficients A_j and the photoelectric term of his footnote 3).

Brown dwarfs: a blackbody at Teff times molecular absorption bands (H2O at 1.15, 1.4,
1.85, 2.7 um; CH4 at 1.67, 2.25, 3.3 um, growing as Teff falls below ~1300 K; CO at
4.6 um; the pressure-broadened K I 0.77 um wing that darkens F090W). Band depths were
tuned so that the model's NIRCam colours follow the T/Y-dwarf sequence of Sonora-Bobcat
models as plotted by Hainline et al. (2024, ApJ 975, 31): F277W-F444W rising from ~0.8 at
1300 K to ~3 at 400 K, F115W-F277W below 0 for T dwarfs. It is an empirical
approximation, not an atmosphere model; see tests/test_mock.py for the colour checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hizkit.dataset import NIRCAM_BANDS

LYA = 1215.67
LYMAN_LIMIT = 911.75
#: rest wavelengths (A) and the names of the nebular lines we model
LINES = {
    "Lya": 1215.67,
    "OII": 3727.4,
    "Hb": 4862.7,
    "OIII4959": 4960.3,
    "OIII5007": 5008.2,
    "Ha": 6564.6,
    "NII": 6585.3,
    "SII": 6725.0,
    "Pab": 12821.6,
    "Paa": 18756.1,
}


@dataclass(frozen=True)
class FilterSet:
    """Filter curves sampled for fast band averages."""

    bands: tuple[str, ...]
    wave: tuple[np.ndarray, ...]  # A, per band
    weight: tuple[np.ndarray, ...]  # T / lambda * dlambda, normalised to sum 1
    norm: np.ndarray  # integral of T / lambda dlambda per band
    pivot: np.ndarray  # A

    def transmission(self, band: int, wave: np.ndarray) -> np.ndarray:
        """T(lambda)/lambda / norm at ``wave`` (for emission lines); 0 outside the band."""
        w = self.wave[band]
        t_over_l = self.weight[band] / np.gradient(w) * self.norm[band]
        return np.interp(wave, w, t_over_l, left=0.0, right=0.0) / self.norm[band]


@lru_cache(maxsize=1)
def nircam_filters(n_samples: int = 100) -> FilterSet:
    """The seven NIRCam wide filters from astro-sedpy, resampled to ``n_samples`` points."""
    from sedpy import observate

    filters = observate.load_filters([f"jwst_{b.lower()}" for b in NIRCAM_BANDS])
    waves, weights, norms, pivots = [], [], [], []
    for f in filters:
        lo, hi = f.wavelength[f.transmission > 1e-3 * f.transmission.max()][[0, -1]]
        w = np.linspace(lo, hi, n_samples)
        t = np.interp(w, f.wavelength, f.transmission, left=0, right=0)
        dw = np.gradient(w)
        integrand = t / w * dw
        norms.append(integrand.sum())
        weights.append(integrand / integrand.sum())
        waves.append(w)
        pivots.append(f.wave_pivot)
    return FilterSet(NIRCAM_BANDS, tuple(waves), tuple(weights), np.array(norms), np.array(pivots))


# --------------------------------------------------------------------------- attenuation


def calzetti_k(wave_um: np.ndarray) -> np.ndarray:
    """Calzetti et al. (2000) k(lambda) with R_V = 4.05, extended below 0.12 um linearly
    in 1/lambda and clipped at zero in the infrared."""
    lam = np.asarray(wave_um, dtype=float)
    rv = 4.05
    lam_c = np.clip(lam, 0.12, 2.2)
    short = 2.659 * (-2.156 + 1.509 / lam_c - 0.198 / lam_c**2 + 0.011 / lam_c**3) + rv
    long = 2.659 * (-1.857 + 1.040 / lam_c) + rv
    k = np.where(lam_c < 0.63, short, long)
    # linear extrapolation in 1/lambda below 0.12 um (slope from 0.12-0.13 um)
    k12 = 2.659 * (-2.156 + 1.509 / 0.12 - 0.198 / 0.12**2 + 0.011 / 0.12**3) + rv
    k13 = 2.659 * (-2.156 + 1.509 / 0.13 - 0.198 / 0.13**2 + 0.011 / 0.13**3) + rv
    slope = (k12 - k13) / (1 / 0.12 - 1 / 0.13)
    k = np.where(lam < 0.12, k12 + slope * (1 / lam - 1 / 0.12), k)
    # beyond 2.2 um continue the long-wavelength formula to zero
    k_ir = 2.659 * (-1.857 + 1.040 / lam) + rv
    k = np.where(lam > 2.2, k_ir, k)
    return np.clip(k, 0.0, None)


def madau_igm(wave_obs: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Mean IGM transmission at observed wavelength(s) for source redshift(s).

    Madau (1995) Lyman-series blanketing and photoelectric absorption, made opaque where
    the absorbing gas lies beyond the end of reionisation (Gunn-Peterson troughs are
    observed in every quasar at z_abs > 5.8: Fan et al. 2006; Madau's fit, made at z < 5,
    is far too transparent there), times the red damping wing of a partly neutral IGM
    (:func:`damping_wing`). Broadcasts ``wave_obs`` (A) against ``z``.
    """
    lam = np.asarray(wave_obs, dtype=float)
    zp1 = 1.0 + np.asarray(z, dtype=float)
    tau = np.zeros(np.broadcast(lam, zp1).shape)
    series = ((1215.67, 3.6e-3), (1025.72, 1.7e-3), (972.537, 1.2e-3), (949.743, 9.3e-4))
    for lam_j, a_j in series:
        inside = lam < lam_j * zp1
        tau = tau + np.where(inside, a_j * (lam / lam_j) ** 3.46, 0.0)
    xc = lam / LYMAN_LIMIT
    xe = zp1
    photo = (
        0.25 * xc**3 * (xe**0.46 - xc**0.46)
        + 9.4 * xc**1.5 * (xe**0.18 - xc**0.18)
        - 0.7 * xc**3 * (xc**-1.32 - xe**-1.32)
        - 0.023 * (xe**1.68 - xc**1.68)
    )
    tau = tau + np.where(lam < LYMAN_LIMIT * zp1, np.clip(photo, 0, None), 0.0)
    trough = (lam < LYA * zp1) & (lam > LYA * (1 + Z_REION))
    tau = np.where(trough, np.inf, tau)
    return np.exp(-tau) * damping_wing(lam, zp1 - 1.0)


#: redshift by which reionisation ended (Gunn-Peterson troughs above it)
Z_REION = 5.8


def neutral_fraction(z: np.ndarray) -> np.ndarray:
    """Volume-averaged neutral hydrogen fraction: ~0.1 at z=6, 0.3 at z=7, 0.7 at z=8,
    ~1 above z=10, a smooth history inside the range allowed by quasar damping wings and
    Lyman-alpha visibility (e.g. Umeda et al. 2024)."""
    z = np.asarray(z, dtype=float)
    return np.where(z > Z_REION, 1.0 / (1.0 + np.exp(-(z - 7.5) / 0.6)), 0.0)


def damping_wing(wave_obs: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Transmission red-ward of Lyman alpha through a uniform partly neutral IGM between
    the source and Z_REION (Miralda-Escude 1998, ApJ 501, 15, eq. 12)."""
    lam = np.asarray(wave_obs, dtype=float)
    z = np.asarray(z, dtype=float)
    zp1_obs = lam / LYA
    red = zp1_obs > (1 + z) * (1 + 1e-5)
    safe = np.where(red, zp1_obs, (1 + z) * 2)
    x2 = np.clip((1 + z) / safe, 1e-6, 1 - 1e-9)
    x1 = np.clip((1 + Z_REION) / safe, 1e-6, 1 - 1e-9)

    def integral(x):
        r = np.sqrt(x)
        return (
            x**4.5 / (1 - x)
            + 9 / 7 * x**3.5
            + 9 / 5 * x**2.5
            + 3 * x**1.5
            + 9 * r
            - 4.5 * np.log((1 + r) / (1 - r))
        )

    tau_gp = 7.16e5 * ((1 + z) / 10) ** 1.5
    r_alpha = 2.02e-8
    tau = neutral_fraction(z) * tau_gp * r_alpha / np.pi * x2**-1.5 * (integral(x2) - integral(x1))
    tau = np.where(red & (z > Z_REION), np.clip(tau, 0, None), 0.0)
    return np.exp(-tau)


def smc_k(wave_um: np.ndarray) -> np.ndarray:
    """A_lambda / A_V of the SMC bar (Gordon et al. 2003, ApJ 594, 279): their
    Fitzpatrick & Massa fit (c1 -4.959, c2 2.264, c3 0.389, c4 0.461, x0 4.6, gamma 1,
    R_V 2.74) below 0.276 um, held flat in 1/lambda beyond 10 um^-1 (it diverges
    there), and their measured optical/IR points above, falling to 0 at 3.1 um."""
    lam = np.asarray(wave_um, dtype=float)
    x = np.clip(1.0 / np.clip(lam, 1e-3, None), None, 10.0)
    d = x**2 / ((x**2 - 4.6**2) ** 2 + x**2)
    f = np.where(x > 5.9, 0.5392 * (x - 5.9) ** 2 + 0.05644 * (x - 5.9) ** 3, 0.0)
    uv = (-4.959 + 2.264 * x + 0.389 * d + 0.461 * f) / 2.74 + 1.0
    ref_um = np.array([0.276, 0.296, 0.37, 0.44, 0.55, 0.65, 0.81, 1.25, 1.65, 2.198, 3.1])
    ref = np.array([2.220, 2.000, 1.672, 1.374, 1.00, 0.801, 0.567, 0.25, 0.169, 0.11, 0.0])
    red = np.interp(lam, ref_um, ref, right=0.0)
    return np.where(lam < 0.276, uv, red)


#: dust curves by index: A_lambda / A_V
DUST_CURVES = ("calzetti", "smc")


def dust_a(wave_um: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """A_lambda / A_V for each source's curve (0 Calzetti, 1 SMC); broadcasts."""
    return np.where(np.asarray(curve) == 1, smc_k(wave_um), calzetti_k(wave_um) / 4.05)


# --------------------------------------------------------------------------- galaxies


@dataclass
class SEDParams:
    """Per-source SED: a template of the SPS library (:mod:`sps`) at redshift z behind
    A_V magnitudes of dust (curve: 0 Calzetti, 1 SMC); nebular lines see ``line_dust``
    times the stellar A_V (1/0.44, Calzetti 2000, for star-forming regions; 1 for AGN)."""

    z: np.ndarray
    template: np.ndarray
    av: np.ndarray
    curve: np.ndarray
    line_dust: np.ndarray

    def __len__(self) -> int:
        return len(self.z)

    def take(self, idx) -> SEDParams:
        return SEDParams(**{k: v[idx] for k, v in self.__dict__.items()})

    @staticmethod
    def join(parts: list[SEDParams]) -> SEDParams:
        return SEDParams(
            **{k: np.concatenate([getattr(p, k) for p in parts]) for k in SEDParams.__annotations__}
        )


@lru_cache(maxsize=1)
def _dust_table() -> np.ndarray:
    """A_lambda / A_V of each curve on the library's rest wavelength grid (2, W)."""
    from hizkit.plugins.mock.sps import REST_WAVE

    return np.stack([dust_a(REST_WAVE / 1e4, c) for c in range(len(DUST_CURVES))])


def _positions(rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from hizkit.plugins.mock.sps import DLN, REST_WAVE

    pos = (np.log(rest) - np.log(REST_WAVE[0])) / DLN
    i0 = np.clip(np.floor(pos).astype(int), 0, REST_WAVE.size - 2)
    return i0, np.clip(pos - i0, 0.0, 1.0)


def _sample(table: np.ndarray, rows: np.ndarray, i0: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``table`` rows ``rows`` linearly interpolated at fractional grid positions."""
    r = rows[:, None]
    return table[r, i0] * (1 - f) + table[r, i0 + 1] * f


def sed_photometry(p: SEDParams, filters: FilterSet | None = None, chunk: int = 2048) -> np.ndarray:
    """Band-averaged f_nu (N, 7) through the NIRCam filters, in the library's units
    (1 at rest 1500 A before dust)."""
    from hizkit.plugins.mock.sps import library

    fs = filters or nircam_filters()
    lib = library()
    out = np.empty((len(p), len(fs.bands)))
    lya = int(np.argmin(np.abs(lib.line_wave - LYA)))
    dust = _dust_table()
    for s in range(0, len(p), chunk):
        q = p.take(slice(s, s + chunk))
        zp1 = (1 + q.z)[:, None]
        line_obs = lib.line_wave[None, :] * zp1
        lum = lib.line_lum[q.template]
        gas = 10 ** (
            -0.4 * (q.av * q.line_dust)[:, None] * dust_a(lib.line_wave / 1e4, q.curve[:, None])
        )
        line_igm = np.ones_like(line_obs)
        uv = lib.line_wave < 1300.0  # redwards the IGM (damping wing included) is clear
        line_igm[:, uv] = madau_igm(line_obs[:, uv] * (1 + 1e-3), q.z[:, None])
        # Lyman alpha: the blue half of the line is scattered by the IGM, the red half meets
        # the damping wing a few hundred km/s from line centre (taken at +300 km/s)
        line_igm[:, lya] *= 0.5
        for b in range(len(fs.bands)):
            wave = fs.wave[b][None, :]
            i0, f = _positions(wave / zp1)
            spec = _sample(lib.flux, q.template, i0, f)
            spec *= np.exp(-0.4 * np.log(10) * q.av[:, None] * _sample(dust, q.curve, i0, f))
            reach = np.flatnonzero(fs.wave[b][0] / (1 + q.z) < 1300.0)
            if reach.size:
                spec[reach] *= madau_igm(wave, q.z[reach, None])
            out[s : s + len(q), b] = spec @ fs.weight[b]
            t = fs.transmission(b, line_obs)
            out[s : s + len(q), b] += (lum * gas * line_igm * t * line_obs).sum(axis=1)
    return out


@dataclass
class GalaxySED:
    """A galaxy's SED: one SPS component, plus (where ``mix`` > 0) a second one added
    with weight ``mix`` (the host of a little red dot beside its reddened AGN)."""

    main: SEDParams
    second: SEDParams
    mix: np.ndarray

    def __len__(self) -> int:
        return len(self.main)

    def at(self, z: np.ndarray) -> GalaxySED:
        """The same SEDs moved to redshifts ``z``."""
        return GalaxySED(
            SEDParams(
                z, *(getattr(self.main, k) for k in ("template", "av", "curve", "line_dust"))
            ),
            SEDParams(
                z, *(getattr(self.second, k) for k in ("template", "av", "curve", "line_dust"))
            ),
            self.mix,
        )

    def take(self, idx) -> GalaxySED:
        return GalaxySED(self.main.take(idx), self.second.take(idx), self.mix[idx])

    @staticmethod
    def join(parts: list[GalaxySED]) -> GalaxySED:
        return GalaxySED(
            SEDParams.join([p.main for p in parts]),
            SEDParams.join([p.second for p in parts]),
            np.concatenate([p.mix for p in parts]),
        )


def galaxy_photometry(sed: GalaxySED, filters: FilterSet | None = None) -> np.ndarray:
    """Band-averaged f_nu (N, 7) of galaxies (library units)."""
    out = sed_photometry(sed.main, filters)
    two = np.flatnonzero(sed.mix > 0)
    if two.size:
        out[two] += sed.mix[two, None] * sed_photometry(sed.second.take(two), filters)
    return out


def rest_flux(p: SEDParams, wave: float) -> np.ndarray:
    """Dust-attenuated rest-frame f_nu (library units) at one rest wavelength (A),
    continuum only (for scaling components against each other)."""
    from hizkit.plugins.mock.sps import library

    lib = library()
    i0, f = _positions(np.full((len(p), 1), float(wave)))
    spec = _sample(lib.flux, p.template, i0, f)[:, 0]
    return spec * 10 ** (-0.4 * p.av * dust_a(wave / 1e4, p.curve))


# --------------------------------------------------------------------------- brown dwarfs

#: Teff (K) and AB colours m_band - m_F444W, F090W ... F356W, along the L/T/Y sequence
#: of solar metallicity. T and Y dwarfs (<= 1200 K): approximate values read from the
#: Sonora-Bobcat NIRCam colour tracks shown by Hainline et al. (2024, ApJ 975, 31),
#: consistent with 2MASS/WISE colours of T and Y dwarfs (J-W2, W1-W2: Kirkpatrick et al.
#: 2021) and JWST spectra of Y dwarfs (Beiler et al. 2024, ApJ 973, 107). Blue
#: F115W-F150W and F115W-F277W come from the 1.27 um window between H2O bands and the CH4
#: 1.6 um band; the red F277W/F356W-F444W from the 3.3 um CH4 band and the 4-4.5 um
#: window. L dwarfs (1400-2400 K): the mean J-H, H-K, K-W1, W1-W2 colours of L0, L5 and
#: L8 dwarfs (Kirkpatrick et al. 2021; Dupuy & Liu 2012) moved to AB (J +0.91, H +1.39,
#: K +1.85, W1 +2.70, W2 +3.34) with F115W~J, F150W~H, F200W~K, F356W~W1, F444W~W2,
#: F277W between K and W1, F090W from z-J: red in the near-infrared, nearly flat from
#: 2 to 4.5 um, so they never reach the T-dwarf box (F277W-F444W > 1).
BD_TEFF = np.array([300.0, 400.0, 500.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0, 1800.0, 2400.0])
BD_COLOURS = np.array(
    #  F090W F115W F150W F200W F277W F356W
    [
        [8.6, 4.6, 5.1, 5.6, 4.0, 3.3],  # 300 K
        [7.6, 3.6, 4.2, 4.7, 3.5, 2.9],  # 400 K
        [6.7, 3.0, 3.6, 4.1, 3.1, 2.5],  # 500 K
        [5.9, 2.4, 3.0, 3.4, 2.7, 2.2],  # 600 K
        [4.6, 1.4, 2.0, 2.5, 2.1, 1.7],  # 800 K
        [3.6, 0.9, 1.3, 1.8, 1.6, 1.2],  # 1000 K
        [2.6, 0.45, 0.7, 1.0, 1.1, 0.7],  # 1200 K (early T)
        [2.9, 0.57, -0.05, -0.29, 0.1, -0.14],  # 1400 K (L8)
        [2.15, 0.15, -0.37, -0.61, -0.35, -0.31],  # 1800 K (L5)
        [0.7, -0.78, -1.0, -0.99, -0.6, -0.44],  # 2400 K (L0)
    ]
)
#: change of the colours per dex of [M/H] *below* solar (metal-poor dwarfs): collision-
#: induced H2 absorption suppresses K (F200W) and, less, H (blue H-K, red H-[4.5] of T
#: subdwarfs: Burgasser et al. 2006; Zhang et al. 2019), weaker CO/CO2 absorption makes
#: 4.5 um brighter (Leggett et al. 2017; Beiler et al. 2024: metal-rich Y dwarfs are bluer
#: in W2), and the far-red optical (F090W) fades (red z-W1, Zhang et al. 2019, 2023).
BD_FEH_SHIFT = np.array([0.8, 0.3, 0.5, 0.9, 0.3, 0.2])


def brown_dwarf_photometry(
    teff: np.ndarray, scatter: np.ndarray | None = None, feh: np.ndarray | None = None
) -> np.ndarray:
    """Band f_nu (N, 7), unit flux in F444W, for L/T/Y dwarfs of the given Teff.

    Colours are interpolated along :data:`BD_COLOURS`; metal-poor dwarfs ([M/H] < 0,
    ``feh``) are shifted by :data:`BD_FEH_SHIFT` per dex; ``scatter`` (N, 6) adds
    per-object colour offsets in magnitudes.
    """
    teff = np.clip(np.asarray(teff, dtype=float), BD_TEFF[0], BD_TEFF[-1])
    colours = np.column_stack([np.interp(teff, BD_TEFF, BD_COLOURS[:, j]) for j in range(6)])
    if feh is not None:
        colours = colours + np.clip(-np.asarray(feh, float), 0, None)[:, None] * BD_FEH_SHIFT
    if scatter is not None:
        colours = colours + scatter
    mags = np.column_stack([colours, np.zeros(len(teff))])
    return 10 ** (-0.4 * mags)
