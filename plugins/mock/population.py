"""Drawing sources: class, redshift, SED parameters, brightness and shape.

Every distribution is written out here with its reasoning, so an astronomer can argue
with it. Brightness is drawn from power-law number counts (dN/dm ~ 10^(alpha m)) down
past the detection limit; detection (S/N >= 5 in the F277W+F356W+F444W stack) is applied
later on the measured photometry, so faint sources are as common and as hard as in a
real catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hizkit.plugins.mock.seds import (
    GalaxyParams,
    brown_dwarf_photometry,
    galaxy_photometry,
    neutral_fraction,
)

#: galaxy kinds inside the low-z class (for diagnostics and the plots)
KINDS = ("starforming", "dusty", "quiescent", "highz", "brown_dwarf")


@dataclass
class Sources:
    """Intrinsic properties of N sources (true total fluxes in nJy)."""

    label: np.ndarray  # class names
    kind: np.ndarray  # one of KINDS
    z: np.ndarray
    teff: np.ndarray  # brown dwarfs; NaN otherwise
    flux: np.ndarray  # (N, 7) true total f_nu in nJy
    re: np.ndarray  # circularised half-light radius, arcsec (0: point source)
    sersic: np.ndarray
    q: np.ndarray  # axis ratio
    pa: np.ndarray  # radians
    av: np.ndarray

    def __len__(self) -> int:
        return len(self.z)

    def take(self, idx: np.ndarray) -> Sources:
        return Sources(**{k: v[idx] for k, v in self.__dict__.items()})

    @staticmethod
    def join(parts: list[Sources]) -> Sources:
        return Sources(
            **{k: np.concatenate([getattr(p, k) for p in parts]) for k in Sources.__annotations__}
        )


def _powerlaw_mags(rng, n: int, lo: float, hi: float, alpha: float) -> np.ndarray:
    """Magnitudes with dN/dm ~ 10^(alpha m) on [lo, hi] (inverse-CDF sampling)."""
    a = alpha * np.log(10)
    u = rng.random(n)
    return np.log(np.exp(a * lo) + u * (np.exp(a * hi) - np.exp(a * lo))) / a


def _detection_scale(phot: np.ndarray, mag: np.ndarray) -> np.ndarray:
    """Scale an SED so that the mean of its F277W, F356W, F444W fluxes has magnitude mag."""
    det = phot[:, 4:7].mean(axis=1)
    return 10 ** (-0.4 * (mag - 31.4)) / det


def lowz_params(rng, z: np.ndarray) -> tuple[GalaxyParams, np.ndarray]:
    """SED parameters and kind of low-z galaxies at redshifts ``z``."""
    n = z.size
    u = rng.random(n)
    p_dusty = np.where(z > 1.5, 0.25, 0.08)
    p_quiescent = np.where(z > 0.5, 0.12, 0.04)
    kind = np.where(
        u < p_dusty, "dusty", np.where(u < p_dusty + p_quiescent, "quiescent", "starforming")
    )
    sf, du, qu = kind == "starforming", kind == "dusty", kind == "quiescent"
    beta = np.where(sf, np.clip(rng.normal(-1.7, 0.35, n), -2.6, -0.6), 0.0)
    beta = np.where(du, rng.uniform(-1.4, 0.0, n), beta)
    beta = np.where(qu, rng.uniform(0.5, 3.0, n), beta)
    d4000 = np.where(qu, rng.uniform(1.5, 2.4, n), rng.uniform(1.15, 1.5, n))
    opt = np.where(qu, rng.uniform(0.6, 1.0, n), np.clip(rng.normal(0.3, 0.15, n), 0, 0.8))
    av = np.where(sf, np.clip(rng.exponential(0.45, n), 0, 2.0), rng.uniform(0.0, 0.8, n))
    av = np.where(du, rng.uniform(1.5, 5.0, n), av)
    ew_med = np.where(qu, 4.0, np.where(du, 50.0, 80.0 * ((1 + z) / 3) ** 1.5))
    ew = ew_med * 10 ** rng.normal(0, 0.35, n)
    return GalaxyParams(z, beta, d4000, opt, av, ew, ew_lya=np.zeros(n)), kind


def draw_lowz(rng, n: int, faint: float = 30.6) -> Sources:
    """Galaxies at 0.2 < z < 4: star-forming, dusty star-forming and quiescent.

    N(z) ~ z^1.5 exp(-(z/1.3)^1.5), a deep-field shape peaking near z~1.3 with a long tail to
    z~4. The dusty share grows from 8 % to 25 % above z=1.5 and quiescent galaxies
    (strong 4000 A / Balmer breaks, red UV) are 12 % above z=0.5: together these are the
    z~2-4 interlopers whose break between F150W and F277W mimics a z>10 Lyman break.
    """
    z = np.empty(0)
    while z.size < n:  # rejection sampling of N(z)
        cand = rng.uniform(0.2, 4.0, 4 * n)
        pdf = cand**1.5 * np.exp(-((cand / 1.3) ** 1.5))
        keep = rng.random(cand.size) < pdf / 0.75
        z = np.concatenate([z, cand[keep]])
    z = z[:n]
    params, kind = lowz_params(rng, z)
    qu, av = kind == "quiescent", params.av
    mag = _powerlaw_mags(rng, n, 21.0, faint, 0.28)
    phot = galaxy_photometry(params)
    flux = phot * _detection_scale(phot, mag)[:, None]
    re = 0.35 * 10 ** (-0.1 * (mag - 25)) * ((1 + z) / 2.5) ** -0.7 * 10 ** rng.normal(0, 0.25, n)
    re = np.clip(np.where(qu, 0.6 * re, re), 0.02, 1.2)
    sersic = np.where(qu, rng.uniform(2.5, 4.5, n), np.clip(10 ** rng.normal(0, 0.15, n), 0.5, 2.5))
    return Sources(
        label=np.full(n, "lowz"),
        kind=kind,
        z=z,
        teff=np.full(n, np.nan),
        flux=flux,
        re=re,
        sersic=sersic,
        q=rng.uniform(0.25, 1.0, n),
        pa=rng.uniform(0, np.pi, n),
        av=av,
    )


def highz_params(rng, z: np.ndarray) -> GalaxyParams:
    """SED parameters of high-z galaxies at redshifts ``z`` (see :func:`draw_highz`)."""
    n = z.size
    beta = np.clip(rng.normal(-2.1 - 0.05 * (z - 6), 0.3), -3.0, -1.2)
    older = rng.random(n) < 0.1
    d4000 = np.where(older, rng.uniform(1.2, 1.6, n), rng.uniform(1.0, 1.15, n))
    opt = rng.uniform(0.0, 0.3, n)
    av = np.clip(rng.exponential(0.25, n), 0, 1.5)
    ew = np.clip(600 * 10 ** rng.normal(0, 0.3, n), 50, 5000)
    ew_lya = rng.exponential(30.0, n) * (1 - neutral_fraction(z))
    return GalaxyParams(z, beta, d4000, opt, av, ew, ew_lya)


def draw_highz(rng, n: int, faint: float = 30.6) -> Sources:
    """Galaxies at 4 <= z <= 15: N(z) ~ exp(-(z-4)/1.7) (the UV luminosity density falls
    steeply); UV slopes bluer with redshift (beta ~ -2.1 - 0.05 (z-6), Topping et al. 2024);
    [OIII]+Hbeta rest EWs log-normal around 600 A (Endsley et al. 2023), 10 % with a
    modest Balmer break, modest dust (A_V exponential, mean 0.25); Lyman alpha EW
    exponential (30 A) before the IGM, suppressed by the neutral fraction. Steeper counts
    (alpha = 0.45) and compact sizes, r_e ~ 0.12" ((1+z)/7)^-1 (Shibuya et al. 2015)."""
    z = np.clip(4.0 + rng.exponential(1.7, n), 4.0, 15.0)
    params = highz_params(rng, z)
    av = params.av
    mag = _powerlaw_mags(rng, n, 24.5, faint, 0.45)
    phot = galaxy_photometry(params)
    flux = phot * _detection_scale(phot, mag)[:, None]
    re = 0.12 * 10 ** (-0.08 * (mag - 27)) * ((1 + z) / 7) ** -1.0 * 10 ** rng.normal(0, 0.25, n)
    return Sources(
        label=np.full(n, "highz"),
        kind=np.full(n, "highz"),
        z=z,
        teff=np.full(n, np.nan),
        flux=flux,
        re=np.clip(re, 0.01, 0.5),
        sersic=np.clip(10 ** rng.normal(0, 0.15, n), 0.5, 2.5),
        q=rng.uniform(0.3, 1.0, n),
        pa=rng.uniform(0, np.pi, n),
        av=av,
    )


def draw_brown_dwarfs(rng, n: int, faint: float = 30.0) -> Sources:
    """T and Y dwarfs, Teff 300-1300 K (Beta(2.2, 1.6) over the range: cool ones are
    intrinsically faint, so a flux-limited survey holds fewer), point sources, F444W from
    counts rising as 10^(0.25 m) (thick disk and halo: Hainline et al. 2024), per-object
    colour scatter 0.12 mag."""
    teff = 300 + 1000 * rng.beta(2.2, 1.6, n)
    phot = brown_dwarf_photometry(teff, rng.normal(0, 0.12, (n, 6)))
    mag = _powerlaw_mags(rng, n, 23.0, faint, 0.25)
    flux = phot * 10 ** (-0.4 * (mag - 31.4))[:, None]
    return Sources(
        label=np.full(n, "brown_dwarf"),
        kind=np.full(n, "brown_dwarf"),
        z=np.zeros(n),
        teff=teff,
        flux=flux,
        re=np.zeros(n),
        sersic=np.ones(n),
        q=np.ones(n),
        pa=np.zeros(n),
        av=np.zeros(n),
    )


DRAW = {"lowz": draw_lowz, "highz": draw_highz, "brown_dwarf": draw_brown_dwarfs}
