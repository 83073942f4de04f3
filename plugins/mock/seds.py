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


# --------------------------------------------------------------------------- galaxies


@dataclass
class GalaxyParams:
    """Per-source galaxy SED parameters (arrays of one length)."""

    z: np.ndarray
    beta: np.ndarray  # UV slope, f_lambda ~ lambda^beta
    d4000: np.ndarray  # f_nu ratio across the Balmer/4000 A break (1 = none)
    opt_slope: np.ndarray  # d ln f_nu / d ln lambda between 0.4 and 1.6 um rest
    av: np.ndarray  # Calzetti A_V of the stars (mag)
    ew_o3hb: np.ndarray  # rest EW of [OIII]4959,5007 + Hbeta (A)
    ew_lya: np.ndarray  # rest EW of Lyman alpha before the IGM (A)

    def __len__(self) -> int:
        return len(self.z)


def galaxy_continuum(rest_wave: np.ndarray, p: GalaxyParams) -> np.ndarray:
    """Intrinsic stellar f_nu (arbitrary units, 1 at 1500 A) at rest wavelengths.

    ``rest_wave`` has shape (N, M); parameters are (N,). Piecewise power law in f_nu:
    slope beta+2 below 2600 A; the near-UV steepens for evolved populations; a smooth
    break of amplitude d4000 between 3646 and 4000 A; ``opt_slope`` to 1.6 um (the stellar
    H-bump), then a Rayleigh-Jeans-like decline.
    """
    lw = np.log(np.clip(rest_wave, 300.0, None))
    a_uv = (p.beta + 2.0)[:, None]
    a_nuv = a_uv + 1.5 * np.log(p.d4000)[:, None]  # evolved populations redden 2600-3646 A
    a_opt = p.opt_slope[:, None]
    l0, l1, l2, l3 = np.log(1500.0), np.log(2600.0), np.log(3646.0), np.log(16000.0)
    x = lw - l0
    seg1 = a_uv * np.minimum(lw - l0, l1 - l0)
    seg2 = a_nuv * np.clip(lw - l1, 0, l2 - l1)
    log_f = np.where(lw < l1, a_uv * x, seg1 + seg2)
    # the break: a smooth step from 3646 A to 4000 A in log f_nu
    step = np.clip((lw - l2) / (np.log(4000.0) - l2), 0, 1)
    log_f = log_f + step * np.log(p.d4000)[:, None]
    log_f = log_f + a_opt * np.clip(lw - np.log(4000.0), 0, l3 - np.log(4000.0))
    log_f = log_f - 1.8 * np.clip(lw - l3, 0, None)
    # no ionising photons escape
    log_f = np.where(rest_wave < LYMAN_LIMIT, -30.0, log_f)
    return np.exp(log_f)


def _line_ews(p: GalaxyParams) -> dict[str, np.ndarray]:
    """Rest EWs of every line from the two drawn quantities and fixed ratios.

    Ratios: [OIII]5007/4959 = 2.98; [OIII]5007/Hbeta = 5 (metal-poor, high-z-like; lower
    for evolved systems); Halpha/Hbeta = 2.86 (case B); Halpha EW scaled from the Hbeta EW
    by the continuum change; [NII]/Halpha = 0.1, [SII]/Halpha = 0.1, Pa-beta and Pa-alpha
    from case B (0.163 and 0.332 of Halpha in flux; EWs larger by the falling continuum).
    """
    ew = p.ew_o3hb
    hb = ew / (1 + 5.0 * (1 + 1 / 2.98))
    o5007 = 5.0 * hb
    ha = 2.86 * hb * 1.3  # continuum at Halpha is lower than at Hbeta in f_lambda
    return {
        "Lya": p.ew_lya,
        "OII": 0.3 * ew,
        "Hb": hb,
        "OIII4959": o5007 / 2.98,
        "OIII5007": o5007,
        "Ha": ha,
        "NII": 0.1 * ha,
        "SII": 0.1 * ha,
        "Pab": 0.163 * ha * 3.0,
        "Paa": 0.332 * ha * 6.0,
    }


def galaxy_photometry(p: GalaxyParams, filters: FilterSet | None = None) -> np.ndarray:
    """Band-averaged f_nu (N, 7), arbitrary per-source units."""
    fs = filters or nircam_filters()
    z = p.z
    zp1 = (1 + z)[:, None]
    a_star = p.av / 4.05
    out = np.empty((len(z), len(fs.bands)))
    ews = _line_ews(p)
    line_rest = np.array(list(LINES.values()))
    line_ew = np.column_stack([ews[k] for k in LINES])  # (N, L)
    line_cont = galaxy_continuum(np.broadcast_to(line_rest, (len(z), line_rest.size)), p)
    gas_att = 10 ** (-0.4 * (a_star / 0.44)[:, None] * calzetti_k(line_rest / 1e4))
    line_obs = line_rest[None, :] * zp1
    line_igm = madau_igm(line_obs * (1 + 1e-3), z[:, None])
    # Lyman alpha: the blue half of the line is scattered, the red half meets the damping
    # wing a few hundred km/s from line centre (the factor above, taken at +300 km/s)
    line_igm[:, 0] *= 0.5
    for b in range(len(fs.bands)):
        wave = fs.wave[b][None, :]
        rest = wave / zp1
        cont = galaxy_continuum(rest, p)
        att = cont * 10 ** (-0.4 * a_star[:, None] * calzetti_k(rest / 1e4))
        # the IGM acts only where the band reaches blue-ward of ~1300 A rest
        reach = np.flatnonzero(fs.wave[b][0] / (1 + z) < 1300.0)
        if reach.size:
            att[reach] *= madau_igm(wave, z[reach, None])
        out[:, b] = att @ fs.weight[b]
        t = fs.transmission(b, line_obs)
        lines = (1 + z)[:, None] * line_ew * line_cont * gas_att * line_igm * t
        out[:, b] += lines.sum(axis=1)
    return out


# --------------------------------------------------------------------------- brown dwarfs

#: Teff (K) and AB colours m_band - m_F444W, F090W ... F356W, along the T/Y sequence.
#: Approximate values read from the Sonora-Bobcat NIRCam colour tracks shown by
#: Hainline et al. (2024, ApJ 975, 31) and consistent with 2MASS/WISE colours of T and Y
#: dwarfs (J-W2, W1-W2: Kirkpatrick et al. 2021). Blue F115W-F150W and F115W-F277W come
#: from the 1.27 um window between H2O bands and the CH4 1.6 um band; the red
#: F277W/F356W-F444W from the 3.3 um CH4 band and the 4-4.5 um window.
BD_TEFF = np.array([300.0, 400.0, 500.0, 600.0, 800.0, 1000.0, 1300.0])
BD_COLOURS = np.array(
    #  F090W F115W F150W F200W F277W F356W
    [
        [8.6, 4.6, 5.1, 5.6, 4.0, 3.3],  # 300 K
        [7.6, 3.6, 4.2, 4.7, 3.5, 2.9],  # 400 K
        [6.7, 3.0, 3.6, 4.1, 3.1, 2.5],  # 500 K
        [5.9, 2.4, 3.0, 3.4, 2.7, 2.2],  # 600 K
        [4.6, 1.4, 2.0, 2.5, 2.1, 1.7],  # 800 K
        [3.6, 0.9, 1.3, 1.8, 1.6, 1.2],  # 1000 K
        [2.6, 0.45, 0.7, 1.0, 1.1, 0.7],  # 1300 K
    ]
)


def brown_dwarf_photometry(teff: np.ndarray, scatter: np.ndarray | None = None) -> np.ndarray:
    """Band f_nu (N, 7), unit flux in F444W, for T/Y dwarfs of the given Teff.

    Colours are interpolated along :data:`BD_COLOURS`; ``scatter`` (N, 6) adds
    per-object colour offsets in magnitudes (metallicity and gravity spread).
    """
    teff = np.clip(np.asarray(teff, dtype=float), BD_TEFF[0], BD_TEFF[-1])
    colours = np.column_stack([np.interp(teff, BD_TEFF, BD_COLOURS[:, j]) for j in range(6)])
    if scatter is not None:
        colours = colours + scatter
    mags = np.column_stack([colours, np.zeros(len(teff))])
    return 10 ** (-0.4 * mags)
