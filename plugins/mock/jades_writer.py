"""Writing a simulated survey to disk in the JADES v2.0 layout (``hizkit simulate``).

Per-filter mosaics ``hlsp_jades_jwst_nircam_goods-s-deep_<filter>_v2.0_drz.fits`` with
SCI and ERR image extensions in MJy/sr on one TAN grid at 0.03"/px (the cutouts tiled
edge to edge, one source at each tile centre; no coverage is NaN in SCI and 0 in ERR),
and the multi-extension catalog ``hlsp_jades_jwst_nircam_goods-s-deep_photometry_v2.0_
catalog.fits`` with FILTERS, FLAG, SIZE, CIRC, KRON and PHOTOZ extensions (fluxes in nJy,
upper-case band names), plus a TRUTH extension (true redshift, class, kind, bimodal).

Where the simulator measures less than JADES does, the file says so in its headers:
CIRC holds only CIRC2 (0.15" radius, PSF-matched to F444W, point-source corrected) and
KRON holds a fixed 0.35" radius circular aperture (the simulator draws no Kron ellipses).
PHOTOZ carries the simulator's own template fit under the EAZY_ column names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from hizkit import Dataset, HizkitError, progress
from hizkit.atomic import new_directory
from hizkit.plugins.mock import images

PREFIX = "hlsp_jades_jwst_nircam_goods-s-deep"
NJY_PER_MJYSR = 21.154  # at 0.03"/px: 1 MJy/sr = 21.154 nJy per pixel
PIXAR_SR = 2.1154e-14


def mosaic_name(band: str) -> str:
    return f"{PREFIX}_{band.lower()}_v2.0_drz.fits"


CATALOG_NAME = f"{PREFIX}_photometry_v2.0_catalog.fits"


def _wcs(shape: tuple[int, int], ra: float, dec: float) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    scale = images.PIXEL / 3600.0
    w.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    w.wcs.cunit = ["deg", "deg"]
    return w


def write(data: Dataset, out: Path) -> list[Path]:
    """Write mosaics and catalog into ``out`` (which must not exist yet)."""
    if data.cutouts is None:
        raise HizkitError("this dataset has no cutouts to tile into mosaics")
    n, nb, s, _ = data.cutouts.shape
    side = int(np.ceil(np.sqrt(n)))
    shape = (side * s, side * s)
    cat = data.catalog
    wcs = _wcs(shape, float(cat["ra"].median()), float(cat["dec"].median()))
    row, col = np.divmod(np.arange(n), side)
    x = col * s + s / 2 - 0.5  # 0-based pixel centre of each tile
    y = row * s + s / 2 - 0.5
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    sigma = images.pixel_noise_from_catalog(
        np.column_stack([cat[f"fluxerr_{band}"].to_numpy(float) for band in data.bands]), s
    )

    written = []
    with new_directory(out) as tmp:
        header = wcs.to_header()
        for b in progress.track(range(nb), "writing mosaics"):
            band = data.bands[b]
            sci = np.full(shape, np.nan, dtype=np.float32)
            err = np.zeros(shape, dtype=np.float32)
            for i in range(n):
                tile = (slice(row[i] * s, (row[i] + 1) * s), slice(col[i] * s, (col[i] + 1) * s))
                sci[tile] = data.cutouts[i, b] / NJY_PER_MJYSR
                covered = np.isfinite(data.cutouts[i, b])
                err[tile] = np.where(covered, np.nan_to_num(sigma[i, b]) / NJY_PER_MJYSR, 0.0)
            h = header.copy()
            h.update(
                BUNIT="MJy/sr",
                PHOTMJSR=1.0,
                PIXAR_SR=PIXAR_SR,
                PIXAR_A2=images.PIXEL**2,
                FILTER=band,
                TELESCOP="JWST",
                INSTRUME="NIRCAM",
                ORIGIN="hizkit mock",
            )
            hdul = fits.HDUList(
                [
                    fits.PrimaryHDU(),
                    fits.ImageHDU(sci, h, name="SCI"),
                    fits.ImageHDU(err, h, name="ERR"),
                ]
            )
            hdul.writeto(tmp / mosaic_name(band))
            written.append(Path(out) / mosaic_name(band))

        ids = cat["id"].to_numpy()
        base = {"ID": ids, "RA": ra, "DEC": dec}
        flag = Table({**base, "FLAG_ST": np.zeros(n, np.int16), "FLAG_BS": np.zeros(n, np.int16)})
        size = Table({**base, "X": x + 1, "Y": y + 1})
        circ = Table(dict(base))
        kron = Table(dict(base))
        for band in data.bands:
            B = band.upper()
            size[f"{B}_RHALF"] = cat[f"radius_{band}"].to_numpy(float)
            circ[f"{B}_CIRC2"] = cat[f"flux_{band}"].to_numpy(float)
            circ[f"{B}_CIRC2_e"] = cat[f"fluxerr_{band}"].to_numpy(float)
        kflux = images.measure(data.cutouts, sigma, radius=0.35)
        for b, band in enumerate(data.bands):
            kron[f"{band.upper()}_KRON"] = kflux["flux"][:, b]
            kron[f"{band.upper()}_KRON_e"] = kflux["err"][:, b]
        photoz = Table({"ID": ids})
        for src, dst in (("z_phot", "EAZY_z_a"), ("z_l68", "EAZY_l68"), ("z_u68", "EAZY_u68")):
            if src in cat:
                photoz[dst] = cat[src].to_numpy(float)
        if "chi2_lowz" in cat:
            photoz["EAZY_chisq_min"] = np.minimum(cat["chi2_lowz"], cat["chi2_highz"]).to_numpy()
        truth = Table(
            {
                "ID": ids,
                "Z_TRUE": cat["z"].to_numpy(float),
                "LABEL": np.array(cat["label"].astype(str).tolist()),
                "KIND": np.array(cat["kind"].astype(str).tolist()),
                "BIMODAL": cat["bimodal"].to_numpy(bool),
            }
        )
        filters = Table({"FILTER": [b.upper() for b in data.bands]})
        hdus = [fits.PrimaryHDU()]
        for name, table in (
            ("FILTERS", filters),
            ("FLAG", flag),
            ("SIZE", size),
            ("CIRC", circ),
            ("KRON", kron),
            ("PHOTOZ", photoz),
            ("TRUTH", truth),
        ):
            hdu = fits.BinTableHDU(table, name=name)
            hdus.append(hdu)
        hdul = fits.HDUList(hdus)
        hdul["CIRC"].header["COMMENT"] = "CIRC2 only: r=0.15 arcsec, PSF-matched to F444W"
        hdul["KRON"].header["COMMENT"] = "fixed r=0.35 arcsec circular aperture, not Kron"
        hdul["PHOTOZ"].header["COMMENT"] = "hizkit mock template fit, not EAZY"
        for hdu in hdul[1:]:
            for colname in hdu.columns.names:
                if "CIRC" in colname or "KRON" in colname:
                    hdu.columns[colname].unit = "nJy"
        hdul.writeto(tmp / CATALOG_NAME)
        written.append(Path(out) / CATALOG_NAME)
    return written


def plot(data: Dataset, out: Path) -> list[Path]:
    """Colour-colour diagrams by class and the redshift histogram, as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hizkit import CLASSES, limit_magnitudes

    cat = data.catalog
    mag = limit_magnitudes(*data.photometry())
    b = {band: i for i, band in enumerate(data.bands)}

    def colour(a, c):
        return mag[:, b[a]] - mag[:, b[c]]

    colours = {"lowz": "tab:blue", "highz": "tab:red", "brown_dwarf": "k"}
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, (xa, xb) in zip(axes, (("F115W", "F200W"), ("F150W", "F277W"))):
        for cls in CLASSES:
            sel = (cat["label"] == cls).to_numpy()
            ax.scatter(
                colour("F277W", "F444W")[sel],
                colour(xa, xb)[sel],
                s=6 if cls != "brown_dwarf" else 25,
                alpha=0.6,
                c=colours[cls],
                label=f"{cls} ({sel.sum()})",
            )
        ax.set_xlabel("F277W - F444W")
        ax.set_ylabel(f"{xa} - {xb}")
        ax.set_xlim(-1.5, 4)
        ax.set_ylim(-1.5, 5)
        ax.legend(fontsize=8)
    fig.suptitle("simulated survey: colours by class (1-sigma limits for non-detections)")
    fig.tight_layout()
    p = out / "colour_colour.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(cat["z"][cat["label"] != "brown_dwarf"], bins=np.arange(0, 15.5, 0.25), color="grey")
    if "bimodal" in cat:
        ax.hist(
            cat["z"][cat["bimodal"]],
            bins=np.arange(0, 15.5, 0.25),
            color="tab:orange",
            label="bimodal",
        )
    ax.axvline(4, color="k", ls=":")
    ax.set_xlabel("true redshift")
    ax.set_ylabel("sources")
    ax.legend()
    fig.tight_layout()
    p = out / "redshift_histogram.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths
