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

from hizkit.dataset import NIRCAM_BANDS
from hizkit.plugins.mock import sps
from hizkit.plugins.mock.seds import (
    GalaxySED,
    SEDParams,
    brown_dwarf_photometry,
    dust_a,
    galaxy_photometry,
    rest_flux,
)
from hizkit.science import DETECTION_BANDS

#: what each source is: z < 4 galaxies; z >= 4 galaxies; brown dwarfs by spectral class
LOWZ_KINDS = ("starforming", "dusty", "quiescent")
HIGHZ_KINDS = ("highz_starforming", "highz_dusty", "highz_quiescent", "little_red_dot")
DWARF_KINDS = ("L_dwarf", "T_dwarf", "Y_dwarf")
KINDS = LOWZ_KINDS + HIGHZ_KINDS + DWARF_KINDS

#: shares of the z >= 4 class as drawn (before detection and cuts); see :func:`draw_highz`
HIGHZ_MIX = {
    "highz_starforming": 0.80,
    "highz_dusty": 0.08,
    "highz_quiescent": 0.04,
    "little_red_dot": 0.08,
}


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
    age: np.ndarray  # Gyr since star formation began (galaxies; NaN for dwarfs and AGN)
    feh: np.ndarray  # brown dwarfs: [M/H]; NaN otherwise

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
    """Scale an SED so that the mean of its detection-band fluxes has magnitude mag."""
    det = phot[:, [NIRCAM_BANDS.index(b) for b in DETECTION_BANDS]].mean(axis=1)
    return 10 ** (-0.4 * (mag - 31.4)) / det


def _galaxy_sources(label, kind, z, flux, re, sersic, rng, av, age) -> Sources:
    n = z.size
    return Sources(
        label=np.full(n, label),
        kind=np.asarray(kind),
        z=z,
        teff=np.full(n, np.nan),
        flux=flux,
        re=re,
        sersic=sersic,
        q=rng.uniform(0.25, 1.0, n),
        pa=rng.uniform(0, np.pi, n),
        av=av,
        age=age,
        feh=np.full(n, np.nan),
    )


def _log_uniform(rng, lo, hi, n=None) -> np.ndarray:
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    u = rng.random(lo.shape if n is None else n)
    return np.exp(np.log(lo) + u * (np.log(np.maximum(hi, lo)) - np.log(lo)))


def _one(sed: SEDParams, n: int) -> GalaxySED:
    return GalaxySED(sed, sed, np.zeros(n))


def _sed(z, template, av, curve, line_dust=1 / 0.44) -> SEDParams:
    n = z.size
    return SEDParams(
        np.array(z, float),
        np.array(template, int),
        np.array(av, float),
        np.broadcast_to(np.asarray(curve, int), (n,)).copy(),
        np.full(n, line_dust),
    )


def _pick(rng, values, weights, n) -> np.ndarray:
    return np.asarray(values, float)[rng.choice(len(values), n, p=weights)]


def lowz_seds(rng, z: np.ndarray) -> tuple[GalaxySED, np.ndarray]:
    """SPS SEDs and kind of z < 4 galaxies at redshifts ``z``.

    - star-forming (the majority): delayed-tau SFHs (tau 0.3-10 Gyr), ages log-uniform from
      100 Myr to the age of the Universe at z, near-solar metallicity (0.4-1 Z_sun), log U
      -3 or -2, Calzetti dust with A_V exponential (mean 0.45, at most 2.5; the A_V
      distribution of 1 < z < 3 star-forming galaxies, e.g. Battisti et al. 2022);
    - dusty (8 %, 25 % above z = 1.5): A_V 1.5-3.5 (Calzetti), delayed-tau 1-3 Gyr, ages
      0.3-2 Gyr: the red submillimetre-galaxy-like interlopers;
    - quiescent (4 %, 12 % above z = 0.5): delayed-tau 0.1-1 Gyr quenched 0.25-2 Gyr ago,
      A_V 0-0.6: strong 4000 A / Balmer breaks. At z ~ 2-4 both dusty and quiescent
      galaxies put a break between F150W and F277W that mimics a z > 10 Lyman break.
    """
    lib = sps.library()
    n = z.size
    u = rng.random(n)
    p_dusty = np.where(z > 1.5, 0.25, 0.08)
    p_quiescent = np.where(z > 0.5, 0.12, 0.04)
    kind = np.where(
        u < p_dusty, "dusty", np.where(u < p_dusty + p_quiescent, "quiescent", "starforming")
    )
    sf, du, qu = kind == "starforming", kind == "dusty", kind == "quiescent"
    top = sps.max_age(z)
    age = np.where(sf, _log_uniform(rng, 0.1, top), _log_uniform(rng, 0.3, np.minimum(2.0, top)))
    tau = np.where(sf, _pick(rng, [0.3, 1.0, 3.0, 10.0], None, n), rng.uniform(1.0, 3.0, n))
    met = _pick(rng, [0.4, 1.0], [0.4, 0.6], n)
    logu = _pick(rng, [-3.0, -2.0], [0.6, 0.4], n)
    tmpl = sps.choose(lib, "delayed", z, age, tau=tau, metallicity=met, logu=logu)
    t_q = _log_uniform(rng, 0.25, np.minimum(2.0, 0.7 * top))
    age_q = np.minimum(t_q + _log_uniform(rng, 0.3, 4.0, n), top)
    tmpl_q = sps.choose(
        lib, "quenched", z, age_q, tau=_log_uniform(rng, 0.1, 1.0, n), metallicity=met, extra=t_q
    )
    tmpl = np.where(qu, tmpl_q, tmpl)
    av = np.clip(rng.exponential(0.45, n), 0, 2.5)
    av = np.where(du, rng.uniform(1.5, 3.5, n), np.where(qu, rng.uniform(0.0, 0.6, n), av))
    return _one(_sed(z, tmpl, av, 0), n), kind


def draw_lowz(rng, n: int, faint: float = 30.6) -> Sources:
    """Galaxies at 0.2 < z < 4: star-forming, dusty star-forming and quiescent
    (:func:`lowz_seds`).

    N(z) ~ z^1.5 exp(-(z/1.3)^1.5), a deep-field shape peaking near z~1.3 with a long tail to
    z~4; detection-band magnitudes from counts rising as 10^(0.28 m); sizes shrinking with
    magnitude and redshift (van der Wel et al. 2014), quiescent galaxies smaller and
    centrally concentrated (Sersic 2.5-4.5).
    """
    z = np.empty(0)
    while z.size < n:  # rejection sampling of N(z)
        cand = rng.uniform(0.2, 4.0, 4 * n)
        pdf = cand**1.5 * np.exp(-((cand / 1.3) ** 1.5))
        keep = rng.random(cand.size) < pdf / 0.75
        z = np.concatenate([z, cand[keep]])
    z = z[:n]
    sed, kind = lowz_seds(rng, z)
    qu = kind == "quiescent"
    mag = _powerlaw_mags(rng, n, 21.0, faint, 0.28)
    phot = galaxy_photometry(sed)
    flux = phot * _detection_scale(phot, mag)[:, None]
    re = 0.35 * 10 ** (-0.1 * (mag - 25)) * ((1 + z) / 2.5) ** -0.7 * 10 ** rng.normal(0, 0.25, n)
    re = np.clip(np.where(qu, 0.6 * re, re), 0.02, 1.2)
    sersic = np.where(qu, rng.uniform(2.5, 4.5, n), np.clip(10 ** rng.normal(0, 0.15, n), 0.5, 2.5))
    lib = sps.library()
    return _galaxy_sources(
        "lowz", kind, z, flux, re, sersic, rng, sed.main.av, lib.age[sed.main.template]
    )


# ------------------------------------------------------------------------ z >= 4

#: Bouwens et al. (2014, ApJ 793, 115) <beta> at M_UV = -19.5 and d beta / d M_UV at
#: z = 4-8, continued to z ~ 10-14 with Topping et al. (2024, MNRAS 529, 4087) and
#: Cullen et al. (2023, MNRAS 520, 14; 2024, MNRAS 531, 997): beta ~ -2.3 to -2.5.
BETA_Z = np.array([4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0])
BETA_AT_195 = np.array([-1.85, -1.91, -2.00, -2.05, -2.13, -2.3, -2.4, -2.5])
BETA_SLOPE = np.array([-0.11, -0.14, -0.20, -0.20, -0.15, -0.17, -0.17, -0.17])
BETA_SCATTER = 0.35  # intrinsic scatter at fixed M_UV (Bouwens et al. 2014; Topping 2024)


def mean_beta(z: np.ndarray, muv: np.ndarray) -> np.ndarray:
    """Mean UV slope at redshift z and absolute UV magnitude M_UV (see BETA_Z)."""
    return np.interp(z, BETA_Z, BETA_AT_195) + np.interp(z, BETA_Z, BETA_SLOPE) * (muv + 19.5)


def absolute_uv(mag: np.ndarray, z: np.ndarray) -> np.ndarray:
    """M_UV of a source of apparent (flat-f_nu) magnitude ``mag`` at z, Planck18."""
    from astropy.cosmology import Planck18

    zz = np.linspace(3.5, 16, 300)
    dm = np.interp(z, zz, Planck18.distmod(zz).value)
    return mag - dm + 2.5 * np.log10(1 + z)


def beta_per_av(curve: np.ndarray) -> np.ndarray:
    """Change of the UV slope per magnitude of A_V for each dust curve (1300-2600 A)."""
    lam = np.array([0.13, 0.26])
    a = np.stack([dust_a(lam, c) for c in (0, 1)])
    d = 0.4 * (a[:, 0] - a[:, 1]) / np.log10(lam[1] / lam[0])
    return d[np.asarray(curve, int)]


def _highz_redshifts(rng, kind: np.ndarray) -> np.ndarray:
    n = kind.size
    z = np.clip(4.0 + rng.exponential(1.7, n), 4.0, 15.0)
    z = np.where(kind == "little_red_dot", 4.0 + 5.0 * rng.beta(1.6, 2.2, n), z)
    z = np.where(kind == "highz_dusty", np.clip(4.0 + rng.exponential(0.9, n), 4, 7.0), z)
    return np.where(kind == "highz_quiescent", np.clip(4.0 + rng.exponential(0.7, n), 4, 7.3), z)


def highz_seds(rng, z: np.ndarray, kind: np.ndarray, mag: np.ndarray | None = None) -> GalaxySED:
    """SPS SEDs of z >= 4 galaxies of the given kinds (see :func:`draw_highz`)."""
    lib = sps.library()
    n = z.size
    top = sps.max_age(z)
    if mag is None:
        mag = np.full(n, 28.0)
    du, qu, lrd = (kind == k for k in ("highz_dusty", "highz_quiescent", "little_red_dot"))
    # blue star-forming: young rising or bursty SFHs, metal-poor, strong lines
    age = _log_uniform(rng, 0.005, np.minimum(0.5, top))
    met = _pick(rng, [0.02, 0.2, 0.4], [0.2, 0.5, 0.3], n)
    logu = _pick(rng, [-3.0, -2.0], [0.3, 0.7], n)
    bursty = rng.random(n) < 0.4
    t_rise = sps.choose(lib, "delayed", z, age, tau=np.full(n, 10.0), metallicity=met, logu=logu)
    t_burst = sps.choose(
        lib, "burst", z, age, metallicity=met, logu=logu, extra=_pick(rng, [0.03, 0.15], None, n)
    )
    tmpl = np.where(bursty, t_burst, t_rise)
    curve = (rng.random(n) < 0.6).astype(int)  # SMC-like curves favoured at high z
    target = mean_beta(z, absolute_uv(mag, z)) + rng.normal(0, BETA_SCATTER, n)
    av = np.clip((target - lib.beta[tmpl]) / beta_per_av(curve), 0.0, 1.0)
    # dusty star-forming (HST-dark): A_V 1.5-3.5, Calzetti, older and metal-richer
    age_d = _log_uniform(rng, 0.1, np.minimum(1.0, top))
    t_dusty = sps.choose(
        lib,
        "delayed",
        z,
        age_d,
        tau=_pick(rng, [0.3, 1.0, 3.0], None, n),
        metallicity=_pick(rng, [0.4, 1.0], None, n),
        logu=np.full(n, -3.0),
    )
    tmpl = np.where(du, t_dusty, tmpl)
    av = np.where(du, rng.uniform(1.5, 3.5, n), av)
    curve = np.where(du | qu, 0, curve)
    # quiescent and post-starburst: short formation, quenched 30 Myr - 1 Gyr ago
    t_q = np.where(rng.random(n) < 0.5, _log_uniform(rng, 0.03, 0.25, n), 0.0)
    t_q = np.where(t_q > 0, t_q, _log_uniform(rng, 0.25, np.maximum(0.26, 0.6 * top)))
    t_q = np.minimum(t_q, 0.7 * top)
    age_q = np.minimum(t_q + _log_uniform(rng, 0.1, 0.6, n), top)
    t_quenched = sps.choose(
        lib,
        "quenched",
        z,
        age_q,
        tau=_pick(rng, [0.03, 0.1], None, n),
        metallicity=_pick(rng, [0.4, 1.0], None, n),
        extra=t_q,
    )
    tmpl = np.where(qu, t_quenched, tmpl)
    av = np.where(qu, rng.uniform(0.0, 0.5, n), av)
    main = _sed(z, tmpl, av, curve)
    second = _sed(z, tmpl, av, curve)
    mix = np.zeros(n)
    if lrd.any():
        k = np.flatnonzero(lrd)
        m = k.size
        agn = sps.choose_agn(
            lib,
            _pick(rng, [-2.0, -1.5, -1.0], None, m),
            _log_uniform(rng, 300, 1200, m),
            _pick(rng, [1.0, 1.8, 3.0], [0.3, 0.4, 0.3], m),
        )
        av_agn = np.clip(rng.normal(1.6, 0.4, m), 1.0, 3.0)
        agn_sed = _sed(z[k], agn, av_agn, (rng.random(m) < 0.5).astype(int), line_dust=1.0)
        host_age = _log_uniform(rng, 0.01, np.minimum(0.3, top[k]))
        host_t = sps.choose(
            lib,
            "delayed",
            z[k],
            host_age,
            tau=np.full(m, 10.0),
            metallicity=np.full(m, 0.2),
            logu=np.full(m, -2.0),
        )
        host = _sed(z[k], host_t, rng.uniform(0.0, 0.3, m), 1)
        ratio = 10 ** rng.uniform(-1.3, -0.5, m)  # host f_nu(1500 A) / AGN f_nu(5500 A)
        for key in main.__dict__:
            getattr(main, key)[k] = getattr(agn_sed, key)
            getattr(second, key)[k] = getattr(host, key)
        mix[k] = ratio * rest_flux(agn_sed, 5500.0) / rest_flux(host, 1500.0)
    return GalaxySED(main, second, mix)


def draw_highz_kinds(rng, n: int) -> np.ndarray:
    kinds = list(HIGHZ_MIX)
    return np.asarray(kinds)[rng.choice(len(kinds), n, p=list(HIGHZ_MIX.values()))]


def draw_highz(rng, n: int, faint: float = 30.6, kind: np.ndarray | None = None) -> Sources:
    """Galaxies at 4 <= z <= 15 in four kinds (:data:`HIGHZ_MIX`):

    - **highz_starforming** (80 %): N(z) ~ exp(-(z-4)/1.7) (the UV luminosity density
      falls steeply); young (5-500 Myr) rising or bursty SFHs at 0.02-0.4 Z_sun with
      log U -2 or -3, so that [OIII]+H-beta EWs of hundreds of A come from the SPS
      (Endsley et al. 2023); dust (SMC-like 60 %, Calzetti 40 %) set so that the UV
      slope follows beta(z, M_UV) of Bouwens et al. (2014) / Topping et al. (2024) /
      Cullen et al. (2023) with 0.35 scatter (:func:`mean_beta`); compact sizes,
      r_e ~ 0.12" ((1+z)/7)^-1 (Shibuya et al. 2015).
    - **highz_dusty** (8 %): dusty star-forming, "HST-dark" / optically faint galaxies at
      4 < z < 7 (Barrufet et al. 2023, MNRAS 522, 449: ~0.8 arcmin^-2 at z ~ 2-7 with
      A_V ~ 2-3; Williams et al. 2024, ApJ 968, 34; Gottumukkala et al. 2024, MNRAS 530,
      966): Calzetti A_V 1.5-3.5, delayed-tau 0.1-1 Gyr old, r_e ~ 0.2", Sersic ~1.
    - **highz_quiescent** (4 %): post-starburst and quiescent galaxies at 4 < z < 7.3
      (Carnall et al. 2023 Nature 619, 716, z = 4.658; Carnall et al. 2024; Valentino et
      al. 2023, ApJ 947, 20: ~1e-5 Mpc^-3 at z ~ 4-5; Weibel et al. 2024 to z = 7.3):
      a short burst quenched 30 Myr - 1 Gyr ago, A_V < 0.5; their Balmer break lies
      between F200W and F277W at z ~ 4-5. Compact (r_e 0.03-0.1", Sersic 3-4).
    - **little_red_dot** (8 %): compact V-shaped sources at 4 < z < 9 (Labbe et al. 2023,
      2025; Greene et al. 2024, ApJ 964, 39; Kocevski et al. 2024; Kokorev et al. 2024,
      ApJ 968, 38: ~0.4 arcmin^-2, r_e < 130 pc, A_V ~ 1.6). Modelled as a reddened
      accretion-disc power law (f_lambda ~ lambda^-2..-1, A_V ~ N(1.6, 0.4) in 1-3,
      Calzetti or SMC) with broad H-alpha (rest EW 300-1200 A) and H-beta, a Balmer
      break of f_nu ratio 1 (30 %), 1.8 (40 %) or 3 (30 %) at 3646 A from dense gas
      around the black hole (Setton et al. 2024; de Graaff et al. 2025), plus a young,
      nearly dust-free host (or scattered AGN light) whose f_nu at 1500 A is 5-30 % of
      the AGN's at 5500 A: a blue UV and a red optical continuum. Point-like
      (r_e 0.005-0.02", i.e. < 130 pc at z > 4), F444W 24.5-28.5.

    The red kinds are over-represented relative to the sky (there, at JADES depth, LRDs
    are ~0.5 % of z > 4 sources, HST-dark galaxies ~1 %, quiescent galaxies ~0.1 %) so a
    classifier sees enough of them to learn: the labelled set is not a census either
    (the poster balances its classes). Counts rise as 10^(0.45 m) (0.3 for the red kinds).

    ``kind`` (N names from :data:`HIGHZ_KINDS`) fixes each source's kind instead of
    drawing it from :data:`HIGHZ_MIX` (the field's enriched draws of rare kinds).
    """
    kind = draw_highz_kinds(rng, n) if kind is None else np.asarray(kind)
    z = _highz_redshifts(rng, kind)
    red = kind != "highz_starforming"
    mag = np.where(
        red,
        _powerlaw_mags(rng, n, 24.5, min(faint, 28.5), 0.3),
        _powerlaw_mags(rng, n, 24.5, faint, 0.45),
    )
    sed = highz_seds(rng, z, kind, mag)
    phot = galaxy_photometry(sed)
    flux = phot * _detection_scale(phot, mag)[:, None]
    re = 0.12 * 10 ** (-0.08 * (mag - 27)) * ((1 + z) / 7) ** -1.0 * 10 ** rng.normal(0, 0.25, n)
    re = np.clip(re, 0.01, 0.5)
    re = np.where(kind == "highz_dusty", np.clip(0.2 * 10 ** rng.normal(0, 0.2, n), 0.05, 0.6), re)
    re = np.where(kind == "highz_quiescent", _log_uniform(rng, 0.03, 0.1, n), re)
    re = np.where(kind == "little_red_dot", _log_uniform(rng, 0.005, 0.02, n), re)
    sersic = np.clip(10 ** rng.normal(0, 0.15, n), 0.5, 2.5)
    sersic = np.where(kind == "highz_quiescent", rng.uniform(3.0, 4.0, n), sersic)
    lib = sps.library()
    age = np.where(kind == "little_red_dot", np.nan, lib.age[sed.main.template])
    return _galaxy_sources("highz", kind, z, flux, re, sersic, rng, sed.main.av, age)


# ------------------------------------------------------------------------ brown dwarfs

#: GOODS-S in Galactic coordinates (deg)
FIELD_L, FIELD_B = 223.6, -54.4
R_SUN, Z_SUN = 8300.0, 25.0  # pc
#: Galactic structure of Juric et al. (2008, ApJ 673, 864): thin disk (scale height
#: 300 pc, length 2600 pc), thick disk (0.12 of the thin disk's local density, 900 pc,
#: 3600 pc), halo (0.005, power law r^-2.77, flattening 0.64); local [M/H] of each
#: population's dwarfs: thin 0 +- 0.2, thick -0.6 +- 0.2, halo -1.3 +- 0.3.
POPULATIONS = {
    "thin": dict(norm=1.0, h=300.0, length=2600.0, feh=(0.0, 0.2)),
    "thick": dict(norm=0.12, h=900.0, length=3600.0, feh=(-0.6, 0.2)),
    "halo": dict(norm=0.005, n=2.77, q=0.64, feh=(-1.3, 0.3)),
}
#: absolute F444W magnitude (AB) against Teff: M_W2 of Kirkpatrick et al. (2021, ApJS
#: 253, 7) Teff relations plus W2's AB offset (3.34), which F444W follows closely.
BD_MABS_TEFF = np.array(
    [300.0, 350.0, 450.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0, 1600.0, 2000.0, 2400.0]
)
BD_MABS_F444W = np.array([20.2, 19.5, 18.5, 17.6, 16.7, 15.9, 15.3, 14.7, 14.3, 13.7, 13.2])


SUBDWARF_GAP = 0.1  # relative density of old dwarfs at 1300-2000 K


def _density(pop: str, d: np.ndarray) -> np.ndarray:
    """Number density (relative to the thin disk at the Sun) at distance d (pc) along the
    GOODS-S line of sight."""
    lr, br = np.deg2rad(FIELD_L), np.deg2rad(FIELD_B)
    x = R_SUN - d * np.cos(br) * np.cos(lr)
    y = -d * np.cos(br) * np.sin(lr)
    zz = Z_SUN + d * np.sin(br)
    r = np.hypot(x, y)
    p = POPULATIONS[pop]
    if pop == "halo":
        rr = np.sqrt(r**2 + (zz / p["q"]) ** 2)
        return p["norm"] * (np.maximum(rr, 500.0) / R_SUN) ** -p["n"]
    return p["norm"] * np.exp(-(r - R_SUN) / p["length"] - (np.abs(zz) - Z_SUN) / p["h"])


def _distance_tables():
    d = np.geomspace(1.0, 2e5, 4000)
    cum = {}
    for pop in POPULATIONS:
        w = _density(pop, d) * d**2
        cum[pop] = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(d))])
    return d, cum


def dwarf_kind(teff: np.ndarray) -> np.ndarray:
    """Spectral class from Teff (Kirkpatrick et al. 2021): L above 1300 K, Y below 500 K."""
    return np.where(teff >= 1300, "L_dwarf", np.where(teff < 500, "Y_dwarf", "T_dwarf"))


def draw_brown_dwarfs(rng, n: int, faint: float = 30.0, bright: float = 23.0) -> Sources:
    """L, T and Y dwarfs (Teff 300-2400 K) as a deep pencil beam towards GOODS-S sees them.

    Space density flat in Teff over 300-2400 K (to a factor of ~2 what Kirkpatrick et al.
    2021 measure within 20 pc); each thin-disk, thick-disk or halo dwarf at distance d
    along the line of sight with the density of :data:`POPULATIONS`, kept where its
    F444W (:data:`BD_MABS_F444W` + distance modulus) lies in [bright, faint]. Joint
    sampling of (Teff, population, distance) makes the faint end thick-disk and halo
    dwarfs at kiloparsecs (Hainline et al. 2024, ApJ 975, 31; Burgasser et al. 2024,
    ApJ 962, 177), and brings in L dwarfs, visible to tens of kpc. Colours from
    :func:`seds.brown_dwarf_photometry` at the dwarf's Teff and [M/H], with 0.12 mag
    per-object scatter (gravity, clouds, unresolved binaries); point sources.
    """
    d, cum = _distance_tables()
    teff_grid = np.arange(300.0, 2401.0, 10.0)
    centres = 0.5 * (teff_grid[1:] + teff_grid[:-1])
    mabs = np.interp(centres, BD_MABS_TEFF, BD_MABS_F444W)
    d_hi = 10 ** ((faint - mabs + 5) / 5)
    d_lo = 10 ** ((bright - mabs + 5) / 5)
    pops = list(POPULATIONS)
    weight = np.stack(
        [np.interp(d_hi, d, cum[p]) - np.interp(d_lo, d, cum[p]) for p in pops], axis=1
    )
    # old (thick-disk, halo) populations: objects at the hydrogen-burning limit stay
    # L-type stars above ~2000 K, brown dwarfs cool through L to T quickly, leaving few
    # between 1300 and 2000 K: the "substellar subdwarf gap" (Zhang et al. 2017, 2018)
    gap = (centres > 1300) & (centres < 2000)
    weight[gap, 1:] *= SUBDWARF_GAP
    cell = rng.choice(weight.size, n, p=(weight / weight.sum()).ravel())
    it, ip = np.divmod(cell, len(pops))
    teff = teff_grid[it] + rng.random(n) * 10.0
    dist = np.empty(n)
    for j, p in enumerate(pops):
        k = np.flatnonzero(ip == j)
        lo = np.interp(d_lo[it[k]], d, cum[p])
        hi = np.interp(d_hi[it[k]], d, cum[p])
        dist[k] = np.interp(lo + rng.random(k.size) * (hi - lo), cum[p], d)
    mean = np.array([POPULATIONS[p]["feh"][0] for p in pops])[ip]
    sd = np.array([POPULATIONS[p]["feh"][1] for p in pops])[ip]
    feh = np.clip(rng.normal(mean, sd), -2.0, 0.3)
    phot = brown_dwarf_photometry(teff, rng.normal(0, 0.12, (n, 6)), feh=feh)
    mag = np.interp(teff, BD_MABS_TEFF, BD_MABS_F444W) + 5 * np.log10(dist / 10)
    flux = phot * 10 ** (-0.4 * (mag - 31.4))[:, None]
    return Sources(
        label=np.full(n, "brown_dwarf"),
        kind=dwarf_kind(teff),
        z=np.zeros(n),
        teff=teff,
        flux=flux,
        re=np.zeros(n),
        sersic=np.ones(n),
        q=np.ones(n),
        pa=np.zeros(n),
        av=np.zeros(n),
        age=np.full(n, np.nan),
        feh=feh,
    )


DRAW = {"lowz": draw_lowz, "highz": draw_highz, "brown_dwarf": draw_brown_dwarfs}
