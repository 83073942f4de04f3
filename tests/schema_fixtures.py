"""Small FITS files in the real releases' schemas, for the loader's schema tests.

Each writer puts a handful of point sources of known flux (nJy) into a catalog with the
release's own extensions, column names, FITS formats and units, and into tiny mosaics in
the release's own file naming, extensions and pixel units. The schemas are written from
the sources named in ``plugins/layouts/*.toml``:

* JADES v5.0 (DR5): the header dump of the real GOODS-S catalog (repository
  antminers99/Early-universe-Galaxy-hunter, ``data/research/jades-dr5-schema.json``),
  re-expressed here as rules (band lists, per-band column groups, formats, units). Its
  unit for ``{B}_WHT`` reads ``(MJy`` because the dump's parser cut the header value at
  '/'; the full value is not published, ``(MJy/sr)^-2`` is written. Mosaic names and the
  CDELT/PC TAN grid follow the same repository's ``scripts/download_cutouts.py``; the
  mosaic extension names (SCI/ERR) are v2.0's (unconfirmed for DR5).
* JADES v2.0: data-formats.md and public code reading the real file (extensions, IDs,
  FLAG_ST/FLAG_BS/FLAG_BN, EAZY_* photo-z). ``{B}_RHALF``'s unit is not confirmed: the
  writer can give it no TUNIT (arcsec values) or TUNIT ``pix`` (pixel values).
* EPOCHS / galfind: galfind's own code (column names, ``EAZY_<TEMPLATES>`` extensions
  with lower-case template names in the columns, mosaics found by suffixes).
* DJA: grizli and eazy-py (``{f}_tot_{i}`` in uJy, ``10.0*nanoJansky`` mosaics whose
  PIXAR_SR is the detector's native pixel, the zout table inside ``-fix.photoz.tar.gz``).

Point sources are circular Gaussians integrated over each pixel, so a cutout's sum is the
source's flux to better than 1e-4 once the unit conversion is right.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.special import erf

BANDS = ("F090W", "F115W", "F150W", "F200W", "F277W", "F356W", "F444W")
RA0, DEC0 = 53.122781107619, -27.805160455556  # DR5 GOODS-S mosaic CRVAL (M5)
ARCSEC = 1 / 3600

# --- JADES DR5 (GOODS-S) band lists, in the dump's column order
DR5_CIRC_BANDS = [
    "F070W",
    "F090W",
    "F105W",
    "F115W",
    "F125W",
    "F140W",
    "F150W",
    "F160W",
    "F162M",
    "F182M",
    "F200W",
    "F210M",
    "F250M",
    "F277W",
    "F300M",
    "F335M",
    "F356W",
    "F410M",
    "F430M",
    "F435W",
    "F444W",
    "F460M",
    "F480M",
    "F606W",
    "F775W",
    "F814W",
    "F850LP",
]
DR5_FLAG_BANDS = [
    "F070W",
    "F090W",
    "F115W",
    "F150W",
    "F162M",
    "F182M",
    "F200W",
    "F210M",
    "F250M",
    "F277W",
    "F300M",
    "F335M",
    "F356W",
    "F410M",
    "F430M",
    "F444W",
    "F460M",
    "F480M",
    "F435W",
    "F606W",
    "F775W",
    "F814W",
    "F850LP",
    "F105W",
    "F125W",
    "F140W",
    "F160W",
    "F560W",
    "F770W",
    "F1280W",
    "F1500W",
    "F1800W",
    "F2100W",
    "F2550W",
]
DR5_MIRI_BANDS = ["F560W", "F770W", "F1000W", "F1280W", "F1500W", "F1800W", "F2100W", "F2550W"]
DR5_ZBINS = np.array(
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 25.0]
)


@dataclass
class Sources:
    """What the files are written from: per source, position and per-band flux (nJy)."""

    ids: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    flux: np.ndarray  # (N, 7) nJy
    err: np.ndarray  # (N, 7) nJy
    size: np.ndarray  # arcsec, a half-light radius (= FWHM / 2 of the Gaussian)
    z: np.ndarray
    l68: np.ndarray
    u68: np.ndarray
    chi2: np.ndarray
    star: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.ids)


def make_sources(n: int = 6, seed: int = 0) -> Sources:
    rng = np.random.default_rng(seed)
    # on a ring 0.9" from the mosaic centre, well inside the 4.8" mosaics
    angle = np.arange(n) * 2 * np.pi / n
    ra = RA0 + 0.9 * ARCSEC * np.cos(angle) / np.cos(np.radians(DEC0))
    dec = DEC0 + 0.9 * ARCSEC * np.sin(angle)
    flux = rng.uniform(20, 400, size=(n, len(BANDS)))
    z = rng.uniform(0.5, 12, n)
    return Sources(
        ids=np.arange(1001, 1001 + n),
        ra=ra,
        dec=dec,
        flux=flux,
        err=np.full_like(flux, 2.5),
        size=np.full(n, 0.047),  # sigma 0.04": r_half = FWHM / 2 = 1.1774 sigma
        z=z,
        l68=z - 0.2,
        u68=z + 0.3,
        chi2=rng.uniform(1, 30, n),
        star=np.arange(n) == 1,
    )


SIGMA = 0.04  # arcsec, the Gaussian's sigma (r_half = 1.1774 sigma = 0.0471")


# ---------------------------------------------------------------------- images


def tan_header(scale: float, npix: int, pc: bool = False) -> fits.Header:
    """A TAN grid centred on (RA0, DEC0): CD keywords, or CDELT + PC as DR5's mosaics."""
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = RA0, DEC0
    h["CRPIX1"] = h["CRPIX2"] = npix / 2 + 0.5
    h["CUNIT1"] = h["CUNIT2"] = "deg"
    if pc:
        h["CDELT1"], h["CDELT2"] = -scale / 3600, scale / 3600
        h["PC1_1"], h["PC1_2"], h["PC2_1"], h["PC2_2"] = 1.0, 0.0, 0.0, 1.0
    else:
        h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = -scale / 3600, 0.0, 0.0, scale / 3600
    return h


def point_sources(src: Sources, band: int, header: fits.Header, npix: int) -> np.ndarray:
    """nJy per pixel: each source a pixel-integrated circular Gaussian of sigma SIGMA."""
    from astropy.wcs import WCS

    wcs = WCS(header)
    scale = abs(wcs.pixel_scale_matrix[1, 1]) * 3600
    x, y = wcs.wcs_world2pix(src.ra, src.dec, 0)
    edges = np.arange(npix + 1) - 0.5
    image = np.zeros((npix, npix))
    s = SIGMA / scale * np.sqrt(2)
    for i in range(len(src)):
        gx = np.diff(0.5 * erf((edges - x[i]) / s))
        gy = np.diff(0.5 * erf((edges - y[i]) / s))
        image += src.flux[i, band] * np.outer(gy, gx)
    return image


def _mef(sci, err, header, extra=None, wht=None) -> fits.HDUList:
    """Empty primary HDU, then SCI and ERR (and WHT) image extensions."""
    h = header.copy()
    h.update(extra or {})
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(sci.astype(np.float32), h, name="SCI")]
    hdus.append(fits.ImageHDU(err.astype(np.float32), h, name="ERR"))
    if wht is not None:
        hdus.append(fits.ImageHDU(wht.astype(np.float32), h, name="WHT"))
    return fits.HDUList(hdus)


def _mjysr(scale: float) -> float:
    """nJy per pixel in one MJy/sr at this pixel scale."""
    return (scale * ARCSEC * np.pi / 180) ** 2 * 1e15


def _col(name: str, fmt: str, values, unit: str | None = None) -> fits.Column:
    return fits.Column(name=name, format=fmt, array=np.asarray(values), unit=unit or None)


def _table(columns: list[fits.Column], name: str | None = None) -> fits.BinTableHDU:
    return fits.BinTableHDU.from_columns(columns, name=name)


# ---------------------------------------------------------------------- JADES DR5


def write_jades_v5(
    directory: Path, src: Sources, field: str = "goods-s", photoz: bool = True, npix: int = 160
) -> Path:
    """The DR5 photometric catalog (every extension of the dump) and SCI/ERR mosaics."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(src)
    band_index = {b: i for i, b in enumerate(BANDS)}
    rng = np.random.default_rng(1)

    def flux_of(band: str, k: int = 0) -> tuple[np.ndarray, np.ndarray]:
        if band in band_index:  # CIRC<k> holds the total flux scaled by a k-dependent factor
            return src.flux[:, band_index[band]] * (1 + 0.1 * k), src.err[:, band_index[band]]
        return rng.uniform(-1, 5, n), np.full(n, 3.0)

    ids_k, ids_j = src.ids.astype(np.int64), src.ids.astype(np.int32)
    radec = [_col("RA", "D", src.ra, "deg"), _col("DEC", "D", src.dec, "deg")]
    filters = [_col("BAND", "6A", np.array(DR5_CIRC_BANDS + DR5_MIRI_BANDS))]
    nf = len(DR5_CIRC_BANDS) + len(DR5_MIRI_BANDS)
    for name in ("WAVE_PIVOT", "BANDWIDTH", "WAVE_MAX", "WAVE_MIN"):
        filters.append(_col(name, "E", np.ones(nf, np.float32), "microns"))
    filters.append(_col("R_CIRC0", "E", np.full(nf, 0.05, np.float32), "arcsec"))
    filters += [_col(f"AC_CIRC{k}", "E", np.ones(nf, np.float32)) for k in range(1, 7)]

    flag = [_col("ID", "K", ids_k), *radec]
    for b in DR5_FLAG_BANDS:
        flag.append(_col(f"{b}_FLAG", "D", np.zeros(n), "pix"))
        flag.append(_col(f"{b}_WHT", "D", np.ones(n), "(MJy/sr)^-2"))
        flag.append(_col(f"{b}_TEXP", "D", np.full(n, 1e4), "s"))
    flag += [_col(c, "J", np.zeros(n, np.int32)) for c in ("FLAG_BN", "PARENT_ID", "PID_HASH")]

    size = [_col("ID", "J", ids_j), *radec]
    size += [_col(c, "D", np.zeros(n), "pix") for c in ("X", "Y", "XC", "YC")]
    size += [_col(f"BBOX_{c}", "K", np.zeros(n, np.int64), "pix") for c in ("XMIN", "XMAX")]
    size += [_col(f"BBOX_{c}", "K", np.zeros(n, np.int64), "pix") for c in ("YMIN", "YMAX")]
    size += [_col("NPIX_DET", "D", np.full(n, 30.0))]
    size += [_col("A", "D", src.size, "arcsec"), _col("B", "D", src.size, "arcsec")]
    size += [_col("THETA", "D", np.zeros(n), "deg"), _col("R_KRON_U", "D", np.ones(n), "nJy")]
    size += [_col("FWHM", "D", 2 * src.size, "arcsec"), _col("GINI", "D", np.full(n, 0.4))]

    def circ(bsub: bool, bands=DR5_CIRC_BANDS, tag: str = "", ids=True) -> list[fits.Column]:
        cols = [_col("ID", "J", ids_j), *radec] if ids else []
        for b in bands:
            for k in range(7):
                f, e = flux_of(b, k)
                c = f"{b}_CIRC{k}"
                cols.append(_col(c + tag, "E", f.astype(np.float32), "nJy"))
                if bsub:
                    cols.append(_col(f"{c}_bkg{tag}", "D", np.zeros(n), "nJy"))
                cols.append(_col(f"{c}_e{tag}", "E", e.astype(np.float32), "nJy"))
                cols.append(_col(f"{c}_ei{tag}", "E", e.astype(np.float32), "nJy"))
        return cols

    def kron(bands=DR5_CIRC_BANDS) -> list[fits.Column]:
        cols = [_col("ID", "J", ids_j), *radec]
        for c in ("A_KRON", "B_KRON", "A_KRON_S", "B_KRON_S"):
            cols.append(_col(c, "D", np.full(n, 0.2), "arcsec"))
        cols += [_col(c, "D", np.zeros(n), "deg") for c in ("THETA_KRON", "THETA_KRON_S")]
        for b in bands:
            f, e = flux_of(b, 9)
            for s in ("", "_S"):
                cols.append(_col(f"{b}_KRON{s}", "D", f, "nJy"))
                cols.append(_col(f"{b}_KRON{s}_e", "D", e, "nJy"))
                cols.append(_col(f"{b}_KRON{s}_ei", "D", e, "nJy"))
                cols.append(_col(f"{b}_KRON{s}_bkg", "D", np.zeros(n), "nJy"))
        return cols

    def photoz_cols() -> list[fits.Column]:
        z = src.z
        cols = [_col("ID", "K", ids_k), _col("z_spec", "D", np.full(n, -1.0))]
        cols += [_col("z_a", "E", z.astype(np.float32)), _col("z_ml", "E", z.astype(np.float32))]
        cols += [_col("chi_a", "E", src.chi2.astype(np.float32))]
        for c, v in (("l68", src.l68), ("u68", src.u68), ("l95", z - 1), ("u95", z + 1)):
            cols.append(_col(c, "D", v))
        cols += [_col("l99", "D", z - 2), _col("u99", "D", z + 2)]
        cols += [_col("nfilt", "K", np.full(n, 20, np.int64)), _col("z_peak", "D", z)]
        cols += [_col("chi_peak", "D", src.chi2)]
        for c in ("z025", "z160", "z500", "z840", "z975"):
            cols.append(_col(c, "E", z.astype(np.float32)))
        cols += [_col(f"Prob_gt_{k}", "D", (z > k).astype(float)) for k in range(5, 10)]
        for k in (7, 6, 5, 4):
            cols += [_col(f"chisq_z_lt_{k}", "D", src.chi2 + 5), _col(f"z_chisq_z_lt_{k}", "D", z)]
        grid = np.tile(DR5_ZBINS, (n, 1))
        pdf = np.exp(-0.5 * ((grid - z[:, None]) / 0.5) ** 2)
        pdf[0] += np.exp(-0.5 * ((grid[0] - 2.0) / 0.5) ** 2)  # source 0: two peaks
        cols += [_col("z_bins", "22D", grid), _col("Prob_z_bins", "22D", pdf)]
        return cols

    hdus = [fits.PrimaryHDU(), _table(filters, "FILTERS"), _table(flag, "FLAG")]
    hdus += [_table(size, "SIZE"), _table(circ(False), "CIRC"), _table(circ(True), "CIRC_BSUB")]
    hdus += [_table(circ(False), "CIRC_CONV"), _table(circ(True), "CIRC_BSUB_CONV")]
    hdus += [_table(kron(), "KRON"), _table(kron(), "KRON_CONV")]
    miri = kron(DR5_MIRI_BANDS) + circ(False, DR5_MIRI_BANDS, ids=False)
    miri += circ(True, DR5_MIRI_BANDS, "_BSUB", ids=False)  # 465 columns, as in the dump
    hdus.append(_table(miri, "MIRI"))
    if photoz:
        hdus += [_table(photoz_cols(), "PHOTOZ"), _table(photoz_cols(), "PHOTOZ_KRON")]
    prefix = f"hlsp_jades_jwst_nircam_{field}"
    path = directory / f"{prefix}_photometry_v5.0_catalog.fits"
    fits.HDUList(hdus).writeto(path, output_verify="ignore")  # (verifying 4,500 columns: slow)
    header = tan_header(0.03, npix, pc=True)
    to = _mjysr(0.03)
    for b, band in enumerate(BANDS):
        sci = point_sources(src, b, header, npix) / to
        err = np.full_like(sci, 2.5 / to)
        extra = {"BUNIT": "MJy/sr", "PIXAR_SR": 2.1154e-14, "PIXAR_A2": 0.0009, "FILTER": band}
        _mef(sci, err, header, extra).writeto(directory / f"{prefix}_{band.lower()}_v5.0_drz.fits")
    return path


# ---------------------------------------------------------------------- JADES v2.0


def write_jades_v2(
    directory: Path,
    src: Sources,
    rhalf_unit: str | None = None,
    pixar_sr: float = 2.1154e-14,
    npix: int = 160,
) -> Path:
    """The v2.0 catalog (FILTERS FLAG SIZE CIRC KRON PHOTOZ) and SCI/ERR mosaics in MJy/sr.
    ``rhalf_unit``: None (no TUNIT, values in arcsec) or "pix" (values in 0.03" pixels)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(src)
    ids = src.ids.astype(np.int32)
    base = [_col("ID", "J", ids), _col("RA", "D", src.ra, "deg"), _col("DEC", "D", src.dec, "deg")]
    flag = [*base, _col("FLAG_ST", "I", src.star.astype(np.int16))]
    flag += [
        _col("FLAG_BS", "I", np.zeros(n, np.int16)),
        _col("FLAG_BN", "I", np.zeros(n, np.int16)),
    ]
    size = [*base, _col("NPIX_DET", "D", np.full(n, 30.0))]
    size += [_col("A", "D", src.size, "arcsec"), _col("B", "D", src.size, "arcsec")]
    rhalf = src.size / 0.03 if rhalf_unit == "pix" else src.size
    size += [_col(f"{b}_RHALF", "D", rhalf, rhalf_unit) for b in BANDS]
    circ, kron = list(base), list(base)
    for b, band in enumerate(BANDS):
        for k in range(1, 7):
            f = src.flux[:, b] * (1 + 0.1 * k)
            circ.append(_col(f"{band}_CIRC{k}", "E", f.astype(np.float32), "nJy"))
            circ.append(_col(f"{band}_CIRC{k}_e", "E", src.err[:, b].astype(np.float32), "nJy"))
        kron.append(_col(f"{band}_KRON", "D", src.flux[:, b], "nJy"))
        kron.append(_col(f"{band}_KRON_e", "D", src.err[:, b], "nJy"))
    photoz = [_col("ID", "J", ids), _col("EAZY_z_a", "D", src.z), _col("EAZY_l68", "D", src.l68)]
    photoz += [_col("EAZY_u68", "D", src.u68), _col("EAZY_chisq_min", "D", src.chi2)]
    hdus = [fits.PrimaryHDU(), _table([_col("BAND", "5A", np.array(BANDS))], "FILTERS")]
    for name, cols in (("FLAG", flag), ("SIZE", size), ("CIRC", circ), ("KRON", kron)):
        hdus.append(_table(cols, name))
    hdus.append(_table(photoz, "PHOTOZ"))
    prefix = "hlsp_jades_jwst_nircam_goods-s-deep"
    path = directory / f"{prefix}_photometry_v2.0_catalog.fits"
    fits.HDUList(hdus).writeto(path)
    header = tan_header(0.03, npix)
    to = _mjysr(0.03)
    for b, band in enumerate(BANDS):
        sci = point_sources(src, b, header, npix) / to
        extra = {"BUNIT": "MJy/sr", "PIXAR_SR": pixar_sr, "PHOTMJSR": 1.0}
        _mef(sci, np.full_like(sci, 2.5 / to), header, extra).writeto(
            directory / f"{prefix}_{band.lower()}_v2.0_drz.fits"
        )
    return path


# ---------------------------------------------------------------------- EPOCHS


def write_epochs(
    directory: Path,
    src: Sources,
    separate: bool = False,
    templates: tuple[str, ...] = ("fsps_larson", "sfhz"),
    npix: int = 160,
) -> Path:
    """A galfind MASTER catalog (OBJECTS + one EAZY_<TEMPLATES> extension per template set)
    and mosaics: one file per band with SCI/ERR/WHT (band in mixed case, ``_i2d``), or
    separate ``_sci`` / ``_rms_err`` / ``_wht`` files with the image in the primary HDU;
    plus a detection stack and a segmentation map that must not be taken for a band."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(src)
    objects = [
        _col("NUMBER", "J", src.ids.astype(np.int32)),
        _col("ALPHA_J2000", "D", src.ra, "deg"),
        _col("DELTA_J2000", "D", src.dec, "deg"),
    ]
    for b, band in enumerate(BANDS):
        f = src.flux[:, b] * 1e-9
        vec = np.column_stack([f, *[f * 2] * 4])
        objects.append(_col(f"FLUX_APER_{band}_aper_corr_Jy", "5D", vec, "Jy"))
        err = np.column_stack([src.err[:, b] * 1e-9] * 5)
        objects.append(_col(f"FLUXERR_APER_{band}_loc_depth_10pc_Jy", "5D", err, "Jy"))
        objects.append(_col(f"MAG_APER_{band}_aper_corr", "5D", -2.5 * np.log10(vec / 3631)))
        objects.append(_col(f"FLUX_RADIUS_{band}", "D", src.size / 0.03))
        objects.append(_col(f"unmasked_{band}", "L", np.ones(n, bool)))
    hdus = [fits.PrimaryHDU(), _table(objects, "OBJECTS")]
    order = np.arange(n)[::-1]  # photo-z rows in another order: joined on IDENT
    for t, tmpl in enumerate(templates):
        z = src.z[order] + t  # each template set its own answer
        cols = [_col("IDENT", "J", src.ids[order].astype(np.int32))]
        cols.append(_col(f"zbest_{tmpl}_zfree", "D", z))
        cols.append(_col(f"zbest_16_{tmpl}_zfree", "D", z - 0.2))
        cols.append(_col(f"zbest_84_{tmpl}_zfree", "D", z + 0.3))
        cols.append(_col(f"chi2_best_{tmpl}_zfree", "D", src.chi2[order]))
        hdus.append(_table(cols, f"EAZY_{tmpl}".upper()))
    path = directory / "JADES-DR3-GS-South_MASTER_Sel-F277W+F356W+F444W_v13.fits"
    fits.HDUList(hdus).writeto(path)
    header = tan_header(0.03, npix)
    to = _mjysr(0.03)
    root = "JADES-DR3-GS-South"
    for b, band in enumerate(BANDS):
        sci = (point_sources(src, b, header, npix) / to).astype(np.float32)
        err = np.full_like(sci, 2.5 / to)
        h = header.copy()
        h["BUNIT"] = "MJy/sr"
        h["PIXAR_SR"] = 2.1154e-14
        if separate:
            for suffix, image in (("sci", sci), ("rms_err", err), ("wht", 1 / err**2)):
                fits.PrimaryHDU(image, h).writeto(directory / f"{root}_{band}_v13_{suffix}.fits")
        else:
            spelt = band[0].lower() + band[1:]  # older galfind versions: "f444W"
            _mef(sci, err, h, wht=1 / err**2).writeto(directory / f"{root}_{spelt}_v13_i2d.fits")
    stack = np.zeros((npix, npix), np.float32)
    fits.PrimaryHDU(stack, header).writeto(directory / f"{root}_F277W+F356W+F444W_v13_i2d.fits")
    fits.PrimaryHDU(stack, header).writeto(directory / f"{root}_F444W_v13_i2d_seg.fits")
    return path


# ---------------------------------------------------------------------- DJA


def write_dja(
    directory: Path,
    src: Sources,
    root: str = "gds-grizli-v7.2",
    tarball: bool = True,
    stale_zout: bool = True,
    npix_lw: int = 120,
) -> Path:
    """A grizli ``-fix_phot_apcorr`` catalog in uJy, the eazy-py zout table inside
    ``-fix.photoz.tar.gz`` (and a stale standalone zout of another version), and
    ``10.0*nanoJansky`` mosaics with _wht maps: SW at 0.02", LW at 0.04", each with the
    detector's native PIXAR_SR (not the mosaic pixel's area)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(src)
    cols = [_col("id", "J", src.ids.astype(np.int32))]
    cols += [_col("ra", "D", src.ra, "deg"), _col("dec", "D", src.dec, "deg")]
    cols += [_col("flux_radius", "D", src.size / 0.04)]
    for b, band in enumerate(BANDS):
        for i in range(4):
            f = src.flux[:, b] / 1e3 * (1 if i == 1 else 1.5)
            cols.append(_col(f"{band.lower()}_tot_{i}", "D", f, "uJy"))
            cols.append(_col(f"{band.lower()}_etot_{i}", "D", src.err[:, b] / 1e3, "uJy"))
    path = directory / f"{root}-fix_phot_apcorr.fits"
    fits.HDUList([fits.PrimaryHDU(), _table(cols)]).writeto(path)

    def zout(ids, z) -> bytes:
        zc = [_col("id", "J", ids.astype(np.int32)), _col("ra", "D", src.ra, "deg")]
        zc += [_col("dec", "D", src.dec, "deg"), _col("z_spec", "D", np.full(n, -1.0))]
        zc += [_col("z_phot", "D", z), _col("z_phot_chi2", "D", src.chi2)]
        zc += [_col("z_phot_risk", "D", np.zeros(n)), _col("z025", "D", z - 1)]
        zc += [_col("z160", "D", z - 0.2), _col("z500", "D", z), _col("z840", "D", z + 0.3)]
        zc += [_col("z975", "D", z + 1)]
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), _table(zc)]).writeto(buf)
        return buf.getvalue()

    member = f"{root}-fix.eazypy.zout.fits"
    data = zout(src.ids, src.z)
    if tarball:
        with tarfile.open(directory / f"{root}-fix.photoz.tar.gz", "w:gz") as tar:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    else:
        (directory / member).write_bytes(data)
    if stale_zout:  # an older catalog's zout: other ids, other redshifts
        (directory / "gds-grizli-v7.0-fix.eazypy.zout.fits").write_bytes(
            zout(src.ids + 7, src.z + 3)
        )
    for b, band in enumerate(BANDS):
        sw = band in ("F090W", "F115W", "F150W", "F200W")
        scale, npix = (0.02, 2 * npix_lw) if sw else (0.04, npix_lw)
        header = tan_header(scale, npix)
        header["BUNIT"] = "10.0*nanoJansky"
        header["PIXAR_SR"] = 2.29e-14 if sw else 9.31e-14  # native detector pixels
        header["PHOTFNU"] = 1e-8
        sci = point_sources(src, b, header, npix) / 10
        wht = np.full_like(sci, 1 / (2.5 / 10) ** 2)
        for suffix, image in (("sci", sci), ("wht", wht)):
            name = f"{root}-{band.lower()}-clear_drc_{suffix}.fits"
            fits.PrimaryHDU(image.astype(np.float32), header).writeto(directory / name)
    return path
