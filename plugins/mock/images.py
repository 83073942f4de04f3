"""Rendering 7-band cutouts and measuring catalog photometry on them.

Sersic galaxies and point sources are drawn on a 2x oversampled grid, convolved in
Fourier space with each band's PSF (GalSim's obscured Airy pattern for a 6.5 m aperture,
broadened by a Gaussian so that its FWHM matches the measured NIRCam value), integrated
over pixels, and given drizzle-correlated noise (:func:`noise_kernels`) at
JADES-Deep-like depths that vary across the field, all bands together in part
(:func:`local_sigma`). Neighbours from the field
population share the cutouts, and some sources lose part or all of a band to missing
coverage (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft

from hizkit import progress
from hizkit.dataset import NIRCAM_BANDS
from hizkit.plugins.mock.population import Sources

PIXEL = 0.03  # arcsec
OVERSAMPLE = 2
#: measured NIRCam PSF FWHM in arcsec (data-formats.md)
PSF_FWHM = np.array([0.033, 0.040, 0.050, 0.066, 0.092, 0.116, 0.145])
#: 5-sigma depths (AB) in r = 0.1" apertures, roughly JADES Deep (data-formats.md)
DEPTH_5SIG = np.array([29.6, 29.8, 29.8, 29.9, 30.3, 30.3, 30.0])
DEPTH_APERTURE = 0.1  # arcsec radius
#: catalog aperture radius: 0.15" (JADES CIRC2; EPOCHS uses a similar 0.32" diameter)
CATALOG_APERTURE = 0.15
RADIUS_LIMIT = 0.6  # arcsec, growth-curve limit for flux radii


#: native NIRCam pixel scales (arcsec) of each band's detector, short and long wavelength
NATIVE_PIXEL = np.array([0.031, 0.031, 0.031, 0.031, 0.063, 0.063, 0.063])
#: drizzle pixfrac (the fraction of an input pixel's side dropped onto the output grid);
#: 1 is an assumption close to what deep NIRCam mosaics use
PIXFRAC = 1.0


@lru_cache(maxsize=1)
def noise_kernels() -> np.ndarray:
    """Per-band 1-D kernels (7, 7) whose outer products turn white noise into
    drizzle-correlated noise.

    Drizzling drops each input pixel, shrunk by PIXFRAC, onto the 0.03" output grid, so
    an output pixel averages input pixels over a footprint of side
    PIXFRAC x native / 0.03 output pixels: about 1 for the short-wavelength bands, 2.1 for
    the long-wavelength ones (Fruchter & Hook 2002; Casertano et al. 2000). The kernel is
    that box convolved with the output pixel, averaged over sub-pixel phases, and scaled to
    unit sum of squares: the per-pixel rms (what an ERR map reports) stays sigma while
    the noise in an aperture grows by the correlation, so, as in real mosaics, ERR maps
    under-state aperture errors (by ~1.3x in F090W-F200W, ~2x in F277W-F444W here)."""
    out = []
    for native in NATIVE_PIXEL:
        acf = _drizzle_autocorrelation(native / PIXEL, PIXFRAC)
        # the zero-phase kernel whose autocorrelation is acf (square root of its
        # spectrum); the 2-D kernel is separable, as the drizzle footprint is
        spec = np.abs(np.fft.fft(np.fft.ifftshift(np.pad(acf, 4))))
        k = np.fft.fftshift(np.real(np.fft.ifft(np.sqrt(spec))))
        c = k.size // 2
        k = k[c - 3 : c + 4]
        out.append(k / np.sqrt((k**2).sum()))
    return np.array(out)


def _drizzle_autocorrelation(scale: float, pixfrac: float, phases: int = 200) -> np.ndarray:
    """1-D autocorrelation (lags -3..3, 1 at lag 0) of output-pixel noise when input
    pixels of side ``scale`` output pixels, shrunk by ``pixfrac``, are drizzled onto
    the output grid, averaged over the sub-pixel phase of the input grid."""
    acf = np.zeros(7)
    n_in = 40
    for phase in (np.arange(phases) + 0.5) / phases:
        centres = (np.arange(n_in) - n_in / 2 + phase) * scale
        lo, hi = centres - pixfrac * scale / 2, centres + pixfrac * scale / 2
        edges = np.arange(-12, 13)  # output pixel j spans [edges[j], edges[j] + 1]
        w = np.clip(
            np.minimum(hi[None, :], edges[:-1, None] + 1)
            - np.maximum(lo[None, :], edges[:-1, None]),
            0,
            None,
        )  # (outputs, inputs) overlaps
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        cov = w @ w.T
        mid = cov.shape[0] // 2
        acf += cov[mid, mid - 3 : mid + 4]
    return acf / acf[3]


def correlate_noise(noise: np.ndarray) -> np.ndarray:
    """White noise (N, 7, H, W) -> drizzle-correlated noise of the same per-pixel rms.
    Drawn on a grid 3 pixels larger each side, so the cutout edges are not special."""
    k = noise_kernels().astype(noise.dtype)
    half = k.shape[-1] // 2
    n, b, h, w = noise.shape
    rows = np.zeros((n, b, h - 2 * half, w), dtype=noise.dtype)
    for dy in range(k.shape[1]):
        rows += k[None, :, dy, None, None] * noise[:, :, dy : dy + h - 2 * half]
    out = np.zeros((n, b, h - 2 * half, w - 2 * half), dtype=noise.dtype)
    for dx in range(k.shape[1]):
        out += k[None, :, dx, None, None] * rows[:, :, :, dx : dx + w - 2 * half]
    return out


def pixel_sigma(depth: np.ndarray = DEPTH_5SIG) -> np.ndarray:
    """Per-pixel rms noise (nJy) giving the 5-sigma depth in the depth aperture, with
    the drizzle-correlated noise of :func:`noise_kernels` (depths are what random
    apertures measure on real mosaics)."""
    size = 32
    mask = aperture_mask(size, DEPTH_APERTURE)
    k = noise_kernels()
    corr = [
        np.sqrt(
            (fft.irfft2(fft.rfft2(mask) * np.conj(_kernel_ft(k[b], size)), s=mask.shape) ** 2).sum()
        )
        for b in range(7)
    ]
    return 10 ** (-0.4 * (depth - 31.4)) / 5 / np.array(corr)


#: share of the depth variance common to all bands at a position: NIRCam exposes its
#: short- and long-wavelength channels at once, so exposure-time differences across a
#: mosaic move every band together; the rest (band-specific dithers, masking, background)
#: is per band
DEPTH_SHARED = 0.65


def local_sigma(rng, n: int, depth_scatter: float) -> np.ndarray:
    """Per-pixel noise (N, 7) at N positions of the mosaic: the nominal depth moved by
    ``depth_scatter`` mag rms per band, a share DEPTH_SHARED of its variance common to
    the seven bands."""
    shared = rng.normal(0, depth_scatter * np.sqrt(DEPTH_SHARED), (n, 1))
    own = rng.normal(0, depth_scatter * np.sqrt(1 - DEPTH_SHARED), (n, 7))
    return pixel_sigma() * 10 ** (0.4 * (shared + own))


def _kernel_ft(kernel: np.ndarray, size: int) -> np.ndarray:
    """rfft2 of a small kernel (1-D: its outer product) centred at pixel (0, 0)."""
    if kernel.ndim == 1:
        kernel = np.outer(kernel, kernel)
    pad = np.zeros((size, size))
    half = kernel.shape[0] // 2
    pad[: kernel.shape[0], : kernel.shape[1]] = kernel
    pad = np.roll(pad, (-half, -half), axis=(0, 1))
    return fft.rfft2(pad)


@dataclass(frozen=True)
class Grid:
    size: int  # output pixels

    @property
    def fine(self) -> int:
        return self.size * OVERSAMPLE

    @property
    def padded(self) -> int:
        return self.fine + self.fine // 2  # room for neighbours' light and PSF wings

    @property
    def fine_scale(self) -> float:
        return PIXEL / OVERSAMPLE


@lru_cache(maxsize=4)
def psf_transforms(size: int) -> np.ndarray:
    """rfft2 of each band's PSF on the padded fine grid, centred at pixel (0, 0)."""
    import galsim

    from hizkit.plugins.mock.seds import nircam_filters

    grid = Grid(size)
    pivots_nm = nircam_filters().pivot / 10.0
    out = []
    for fwhm, lam in zip(PSF_FWHM, pivots_nm):
        airy = galsim.Airy(lam=lam, diam=6.5, obscuration=0.11, scale_unit=galsim.arcsec)
        # GalSim gives no FWHM for an obscured Airy; the clear one is within a few per cent
        core = galsim.Airy(lam=lam, diam=6.5, scale_unit=galsim.arcsec).fwhm
        extra = np.sqrt(max(fwhm**2 - core**2, 1e-6))
        psf = galsim.Convolve(airy, galsim.Gaussian(fwhm=extra))
        img = psf.drawImage(
            nx=grid.padded, ny=grid.padded, scale=grid.fine_scale, method="no_pixel"
        ).array
        img = img / img.sum()
        out.append(fft.rfft2(np.fft.ifftshift(img)))
    return np.array(out)


def sersic_bn(n: np.ndarray) -> np.ndarray:
    """Ciotti & Bertin (1999) expansion of b_n."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)


def render_profiles(
    grid: Grid,
    x: np.ndarray,
    y: np.ndarray,
    re: np.ndarray,
    n: np.ndarray,
    q: np.ndarray,
    pa: np.ndarray,
) -> np.ndarray:
    """Unit-flux profiles (K, padded, padded) on the fine grid; offsets in arcsec from centre.

    ``re == 0`` draws a point source (all light in the nearest fine pixel).
    """
    p = grid.padded
    coords = (np.arange(p) - p / 2 + 0.5) * grid.fine_scale
    out = np.zeros((len(x), p, p))
    for k in range(len(x)):
        if re[k] <= 0:
            i = int(np.clip(np.round(y[k] / grid.fine_scale + p / 2 - 0.5), 0, p - 1))
            j = int(np.clip(np.round(x[k] / grid.fine_scale + p / 2 - 0.5), 0, p - 1))
            out[k, i, j] = 1.0
            continue
        dx = coords[None, :] - x[k]
        dy = coords[:, None] - y[k]
        c, s = np.cos(pa[k]), np.sin(pa[k])
        u = dx * c + dy * s
        v = -dx * s + dy * c
        r = np.sqrt(u**2 * q[k] + v**2 / q[k])
        r = np.maximum(r, 0.25 * grid.fine_scale)
        img = np.exp(-sersic_bn(n[k]) * ((r / re[k]) ** (1 / n[k]) - 1))
        out[k] = img / img.sum()
    return out


def convolve_bin(
    grid: Grid, profiles_ft: np.ndarray, flux: np.ndarray, owner: np.ndarray, n_out: int
) -> np.ndarray:
    """Sum components into their cutouts per band, convolve with the PSF, bin to pixels.

    ``profiles_ft``: (K, padded, padded//2+1); ``flux``: (K, 7); ``owner``: (K,) cutout index.
    Returns (n_out, 7, size, size) in nJy per pixel.
    """
    from scipy import sparse

    psf = psf_transforms(grid.size)
    p, f, s = grid.padded, grid.fine, grid.size
    k = len(owner)
    owners = sparse.csr_matrix((np.ones(k), (owner, np.arange(k))), shape=(n_out, k))
    flat = profiles_ft.reshape(k, -1)
    lo = (p - f) // 2
    out = np.empty((n_out, len(NIRCAM_BANDS), s, s), dtype=np.float32)
    for b in range(len(NIRCAM_BANDS)):
        acc = (owners @ (flat * flux[:, b, None])).reshape(n_out, *profiles_ft.shape[1:])
        img = fft.irfft2(acc * psf[b], s=(p, p), workers=-1)[:, lo : lo + f, lo : lo + f]
        out[:, b] = img.reshape(n_out, s, OVERSAMPLE, s, OVERSAMPLE).sum(axis=(2, 4))
    return out


def aperture_mask(size: int, radius_arcsec: float, sub: int = 5) -> np.ndarray:
    """Fractional pixel coverage of a centred circular aperture."""
    c = (np.arange(size * sub) + 0.5) / sub - size / 2
    r = np.hypot(c[None, :], c[:, None]) * PIXEL
    return (r <= radius_arcsec).reshape(size, sub, size, sub).mean(axis=(1, 3))


@lru_cache(maxsize=4)
def radius_bins(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Annulus membership (pixels, bins) out to RADIUS_LIMIT and the outer bin radii."""
    edges = np.arange(0.5, RADIUS_LIMIT / PIXEL + 0.5, 0.5)  # pixels
    c = np.arange(size) - size / 2 + 0.5
    r = np.hypot(c[None, :], c[:, None]).ravel()
    which = np.searchsorted(edges, r)
    member = np.zeros((r.size, edges.size))
    inside = which < edges.size
    member[np.flatnonzero(inside), which[inside]] = 1.0
    return member, edges * PIXEL


def flux_radius(images: np.ndarray) -> np.ndarray:
    """Half-light radius (arcsec) from the growth curve within RADIUS_LIMIT, per image.

    ``images``: (..., H, W); NaN pixels make the radius NaN; so does a non-positive total.
    """
    shape = images.shape[:-2]
    size = images.shape[-1]
    member, outer = radius_bins(size)
    flat = images.reshape(-1, size * size).astype(float)
    annuli = flat @ member
    curve = np.cumsum(annuli, axis=1)
    total = curve[:, -1:]
    frac = np.where(total > 0, curve / np.where(total > 0, total, 1), np.nan)
    # first crossing of 0.5, linearly interpolated between outer radii
    above = frac >= 0.5
    idx = np.where(above.any(axis=1), above.argmax(axis=1), -1)
    rows = np.arange(len(flat))
    i1 = np.clip(idx, 0, None)
    i0 = np.clip(i1 - 1, 0, None)
    f0 = np.where(idx > 0, frac[rows, i0], 0.0)
    r0 = np.where(idx > 0, outer[i0], 0.0)
    f1, r1 = frac[rows, i1], outer[i1]
    r = r0 + (0.5 - f0) / np.where(f1 > f0, f1 - f0, 1) * (r1 - r0)
    r = np.where((idx >= 0) & np.isfinite(total[:, 0]) & (total[:, 0] > 0), r, np.nan)
    return r.reshape(shape)


@lru_cache(maxsize=4)
def psf_images(size: int) -> np.ndarray:
    """Pixel-integrated PSF of each band, centred in a (7, size, size) stack, unit sum."""
    grid = Grid(size)
    z1 = np.zeros(1)
    point = render_profiles(grid, z1, z1, z1, np.ones(1), np.ones(1), z1)
    img = convolve_bin(grid, fft.rfft2(point), np.ones((1, 7)), np.zeros(1, int), 1)[0]
    return img / img.sum(axis=(1, 2), keepdims=True)


@lru_cache(maxsize=4)
def matching_kernels(size: int) -> np.ndarray:
    """Fourier kernels (7, size, size//2+1) that bring each band to the F444W PSF (the
    broadest), as JADES' *_CONV and EPOCHS photometry do."""
    ft = fft.rfft2(np.fft.ifftshift(psf_images(size), axes=(1, 2)))
    ok = np.abs(ft) > 1e-6
    return np.where(ok, ft[-1] / np.where(ok, ft, 1), 0.0)


@lru_cache(maxsize=8)
def aperture_terms(
    size: int, radius: float = CATALOG_APERTURE
) -> tuple[np.ndarray, float, np.ndarray]:
    """For a centred aperture on PSF-matched images: the mask, F444W's point-source
    aperture correction (every band is matched to F444W), and per band the factor turning
    the per-pixel noise rms sigma into the aperture flux error (the root sum of squares of
    the mask correlated with the PSF-matching kernel and the drizzle noise kernel)."""
    mask = aperture_mask(size, radius)
    apcorr = 1.0 / float((psf_images(size)[-1] * mask).sum())
    k = noise_kernels()
    weights = fft.irfft2(
        fft.rfft2(mask)[None]
        * np.conj(matching_kernels(size))
        * np.conj(np.array([_kernel_ft(k[b], size) for b in range(7)])),
        s=(size, size),
    )
    return mask, apcorr, np.sqrt((weights**2).sum(axis=(1, 2)))


def measure(
    images: np.ndarray, sigma: np.ndarray, radius: float = CATALOG_APERTURE
) -> dict[str, np.ndarray]:
    """Catalog photometry of the central source, each (N, 7): aperture fluxes on images
    matched to the F444W PSF with F444W's point-source aperture correction, their errors
    (from the per-pixel noise ``sigma``), and flux radii on the native images. NaN in the
    aperture gives NaN."""
    size = images.shape[-1]
    mask, apcorr, noise = aperture_terms(size, radius)
    clean = np.nan_to_num(images, nan=0.0)
    matched = fft.irfft2(
        fft.rfft2(clean, workers=-1) * matching_kernels(size), s=(size, size), workers=-1
    )
    flux = np.einsum("nbyx,yx->nb", matched, mask, optimize=True) * apcorr
    holes = np.einsum("nbyx,yx->nb", np.isnan(images).astype(np.float32), (mask > 0) * 1.0)
    flux = np.where(holes > 0, np.nan, flux)
    err = np.where(np.isfinite(flux), sigma * noise * apcorr, np.nan)
    return {"flux": flux, "err": err, "radius": flux_radius(images)}


def pixel_noise_from_catalog(fluxerr: np.ndarray, size: int) -> np.ndarray:
    """Invert :func:`measure`'s error: per-pixel sigma (N, 7) from catalog flux errors."""
    _, apcorr, noise = aperture_terms(size)
    return fluxerr / (noise * apcorr)


@lru_cache(maxsize=2)
def profile_table(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free catalog measurements over a grid of sizes and Sersic indices.

    Returns (log10 r_e grid, n grid, aperture flux / total (R, S, 7), flux radius (R, S, 7));
    r_e = 0 (a point source) is the first row, stored at log10 r_e = -3.
    """
    grid = Grid(size)
    re_grid = np.r_[0.0, np.logspace(-2, np.log10(1.2), 14)]
    n_grid = np.array([0.5, 1.0, 1.5, 2.5, 4.0, 4.5])
    re, n = (a.ravel() for a in np.meshgrid(re_grid, n_grid, indexing="ij"))
    k = re.size
    prof = render_profiles(grid, np.zeros(k), np.zeros(k), re, n, np.ones(k), np.zeros(k))
    imgs = convolve_bin(grid, fft.rfft2(prof), np.ones((k, 7)), np.arange(k), k)
    m = measure(imgs, np.zeros(7))
    frac = (m["flux"]).reshape(re_grid.size, n_grid.size, 7)
    rad = m["radius"].reshape(re_grid.size, n_grid.size, 7)
    return np.log10(np.maximum(re_grid, 1e-3)), n_grid, frac, rad


def interpolate_profile(size: int, re: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(aperture flux / total, flux radius) for each source, bilinear in (log r_e, n)."""
    from scipy.interpolate import RegularGridInterpolator

    lre, ng, frac, rad = profile_table(size)
    pts = np.column_stack(
        [np.clip(np.log10(np.maximum(re, 1e-3)), lre[0], lre[-1]), np.clip(n, ng[0], ng[-1])]
    )
    f = np.column_stack([RegularGridInterpolator((lre, ng), frac[..., b])(pts) for b in range(7)])
    r = np.column_stack([RegularGridInterpolator((lre, ng), rad[..., b])(pts) for b in range(7)])
    return f, r


def render_cutouts(
    rng,
    sources: Sources,
    neighbours: Sources,
    size: int,
    *,
    neighbour_rate: float,
    coverage_loss: float,
    depth_scatter: float,
    chunk: int = 48,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy cutouts (N, 7, size, size) of the sources, with neighbours and coverage gaps.

    Returns the cutouts, the per-pixel noise sigma (N, 7) and the central offsets (N, 2).
    ``neighbours`` is a pool drawn from the field population, used in order.
    """
    grid = Grid(size)
    n = len(sources)
    half = grid.padded * grid.fine_scale / 2
    offsets = rng.uniform(-0.5, 0.5, (n, 2)) * PIXEL
    n_nb = rng.poisson(neighbour_rate, n)
    sigma = local_sigma(rng, n, depth_scatter)
    out = np.empty((n, 7, size, size), dtype=np.float32)
    used = 0
    for start in progress.track(range(0, n, chunk), "rendering cutouts"):
        stop = min(start + chunk, n)
        ids = np.arange(start, stop)
        owner = [ids]
        xs, ys = [offsets[ids, 0]], [offsets[ids, 1]]
        comps = [sources.take(ids)]
        for i in ids:
            k = n_nb[i]
            if k == 0:
                continue
            pool = neighbours.take(np.arange(used, used + k) % len(neighbours))
            used += k
            r = rng.uniform(0.25, half, k)
            t = rng.uniform(0, 2 * np.pi, k)
            owner.append(np.full(k, i))
            xs.append(r * np.cos(t))
            ys.append(r * np.sin(t))
            comps.append(pool)
        c = Sources.join(comps)
        prof = render_profiles(
            grid, np.concatenate(xs), np.concatenate(ys), c.re, c.sersic, c.q, c.pa
        )
        ft = fft.rfft2(prof, workers=-1)
        local_owner = np.concatenate(owner) - start
        out[start:stop] = convolve_bin(grid, ft, c.flux, local_owner, stop - start)
    if noise:
        pad = noise_kernels().shape[-1] // 2
        white = rng.standard_normal((n, 7, size + 2 * pad, size + 2 * pad), dtype=np.float32)
        out += correlate_noise(white) * sigma[:, :, None, None].astype(np.float32)
    _drop_coverage(rng, out, coverage_loss)
    return out, sigma, offsets


def _drop_coverage(rng, cutouts: np.ndarray, rate: float) -> None:
    """Blank a half-plane of one band (F090W half the time: its footprint is smallest)."""
    n, _, s, _ = cutouts.shape
    hit = np.flatnonzero(rng.random(n) < rate)
    yy, xx = np.mgrid[:s, :s] - s / 2 + 0.5
    for i in hit:
        band = 0 if rng.random() < 0.5 else rng.integers(0, 7)
        theta = rng.uniform(0, 2 * np.pi)
        offset = rng.uniform(-0.6, 1.0) * s / 2
        gap = xx * np.cos(theta) + yy * np.sin(theta) > offset
        cutouts[i, band][gap] = np.nan
