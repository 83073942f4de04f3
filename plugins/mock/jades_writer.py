"""Writing a simulated survey to disk in the JADES v2.0 layout (``hizkit simulate``).

Per-filter mosaics ``hlsp_jades_jwst_nircam_goods-s-deep_<filter>_v2.0_drz.fits`` with
SCI and ERR image extensions in MJy/sr on one TAN grid at 0.03"/px (the cutouts tiled
edge to edge, one source at each tile centre; no coverage is NaN in SCI and 0 in ERR),
and the multi-extension catalog ``hlsp_jades_jwst_nircam_goods-s-deep_photometry_v2.0_
catalog.fits`` with FILTERS, FLAG, SIZE, CIRC, KRON and PHOTOZ extensions (fluxes in nJy,
upper-case band names), plus a TRUTH extension (true redshift, class, kind, bimodal).

CIRC holds the release's six circular apertures (CIRC1-6, radii 0.10-0.50", measured on
images PSF-matched to F444W with its point-source correction; CIRC2 is the catalog's own
photometry). Where the simulator measures less than JADES does, the file says so in its
headers: KRON holds a fixed 0.35" radius circular aperture (no Kron ellipses). ERR holds
the per-pixel rms of the drizzle-correlated noise, so, as in real mosaics, it
under-states the noise in an aperture; the catalog errors are the true aperture errors.
PHOTOZ carries the simulator's own template fit under the EAZY_ column names.

File, extension and column names all come from the ``jades_v2`` layout
(``plugins/layouts/jades_v2.toml``) that the ``jades`` source reads them with, so the
writer and the reader cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from hizkit import Dataset, HizkitError, progress
from hizkit.atomic import new_directory
from hizkit.layouts import LAYOUTS, Layout
from hizkit.plugins.mock import images
from hizkit.plugins.mock.population import KINDS

#: the layout written, and what fills its file patterns' wildcards (field, version)
LAYOUT = Layout.read(LAYOUTS / "jades_v2.toml")
RELEASE = ("goods-s-deep", "2.0")
NJY_PER_MJYSR = 21.154  # at 0.03"/px: 1 MJy/sr = 21.154 nJy per pixel
PIXAR_SR = 2.1154e-14


def _release_name(pattern: str) -> str:
    """A file name matching the layout's glob: its wildcards filled with the field and
    the version in turn, a trailing one (for ``.gz``) with nothing."""
    for part in (*RELEASE, ""):
        pattern = pattern.replace("*", part, 1)
    return pattern


def mosaic_name(band: str) -> str:
    return _release_name(LAYOUT.mosaics.file.format(band=band.lower(), BAND=band.upper()))


CATALOG_NAME = _release_name(LAYOUT.catalog)
#: radii (arcsec) of the JADES v2.0 CIRC apertures (data-formats.md)
CIRC_RADII = {1: 0.10, 2: 0.15, 3: 0.25, 4: 0.30, 5: 0.35, 6: 0.50}


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
    # a catalog error is NaN where a coverage gap cuts the aperture; the pixels that are
    # covered still have noise: the nominal depth's (only gap pixels get ERR = 0)
    sigma = np.where(np.isfinite(sigma), sigma, images.pixel_sigma()[None, :])

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
                    fits.ImageHDU(sci, h, name=LAYOUT.mosaics.science),
                    fits.ImageHDU(err, h, name=LAYOUT.mosaics.error),
                ]
            )
            hdul.writeto(tmp / mosaic_name(band))
            written.append(Path(out) / mosaic_name(band))

        hdul = fits.HDUList([fits.PrimaryHDU(), *_catalog_hdus(data, sigma, x, y, ra, dec)])
        hdul.writeto(tmp / CATALOG_NAME)
        written.append(Path(out) / CATALOG_NAME)
    return written


def _catalog_hdus(data: Dataset, sigma, x, y, ra, dec) -> list[fits.BinTableHDU]:
    """The catalog's extensions, every column where :data:`LAYOUT` says it is: FILTERS
    (the bands), the layout's own extensions (each keyed by its ID column, with RA and
    Dec beside it), PHOTOZ, and TRUTH (for ``labels = "truth"``)."""
    cat = data.catalog
    n = len(cat)
    ids = cat["id"].to_numpy()
    spec = LAYOUT.spec
    tables: dict[str, Table] = {}
    fluxes: set[str] = set()

    def put(where, values, flux: bool = False) -> None:
        """One column into its extension (new extensions start with ID, RA, Dec)."""
        if where.ext not in tables:
            tables[where.ext] = Table({LAYOUT.key: ids, spec("ra").name: ra, spec("dec").name: dec})
        tables[where.ext][where.name] = values
        if flux:
            fluxes.add(where.name)

    put(spec("flag_star"), np.zeros(n, np.int16))
    put(spec("flag_bright_star"), np.zeros(n, np.int16))
    size = spec("radius", data.bands[0])
    put(size._replace(name="X"), x + 1)
    put(size._replace(name="Y"), y + 1)
    # every CIRC aperture of the release, each measured on the PSF-matched cutouts;
    # CIRC2 is the catalog's own photometry
    circs = {
        k: images.measure(data.cutouts, sigma, radius=r) for k, r in CIRC_RADII.items() if k != 2
    }
    for b, band in enumerate(data.bands):
        put(spec("radius", band), cat[f"radius_{band}"].to_numpy(float))
        for k in CIRC_RADII:
            if k == 2:
                flux = cat[f"flux_{band}"].to_numpy(float)
                err = cat[f"fluxerr_{band}"].to_numpy(float)
            else:
                flux, err = circs[k]["flux"][:, b], circs[k]["err"][:, b]
            put(spec("flux", band, f"CIRC{k}"), flux, flux=True)
            put(spec("flux_err", band, f"CIRC{k}"), err, flux=True)
    kflux = images.measure(data.cutouts, sigma, radius=0.35)
    for b, band in enumerate(data.bands):
        put(spec("flux", band, "KRON"), kflux["flux"][:, b], flux=True)
        put(spec("flux_err", band, "KRON"), kflux["err"][:, b], flux=True)
    pz = LAYOUT.photoz
    photoz = Table({pz.key: ids})
    for src, dst in (("z_phot", pz.z), ("z_l68", pz.z_l68), ("z_u68", pz.z_u68)):
        if src in cat:
            photoz[dst] = cat[src].to_numpy(float)
    if "chi2_lowz" in cat:
        photoz[pz.chi2] = np.minimum(cat["chi2_lowz"], cat["chi2_highz"]).to_numpy()
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
    named = {"FILTERS": filters, **tables, pz.ext: photoz, "TRUTH": truth}
    hdus = [fits.BinTableHDU(table, name=name) for name, table in named.items()]
    by_name = {h.name: h for h in hdus}
    circ, kron = spec("flux", data.bands[0], "CIRC1").ext, spec("flux", data.bands[0], "KRON").ext
    by_name[circ].header["COMMENT"] = (
        "CIRC1-6: r=0.10,0.15,0.25,0.30,0.35,0.50 arcsec, PSF-matched to F444W, "
        "F444W point-source corrected; apertures are clipped at the cutout edge"
    )
    by_name[kron].header["COMMENT"] = "fixed r=0.35 arcsec circular aperture, not Kron"
    by_name[pz.ext].header["COMMENT"] = "hizkit mock template fit, not EAZY"
    for hdu in hdus:
        for colname in hdu.columns.names:
            if colname in fluxes:
                hdu.columns[colname].unit = "nJy"
    return hdus


def plot(data: Dataset, out: Path) -> list[Path]:
    """Colour-colour diagrams by class and by subpopulation (with the literature's
    selection boxes) and the redshift histogram by subpopulation, as PNGs."""
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
    paths.append(_subpopulation_plot(plt, cat, mag, out))
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.arange(0, 15.5, 0.25)
    galaxies = cat[cat["label"] != "brown_dwarf"]
    kinds = [k for k in KINDS if k in set(galaxies["kind"])]
    ax.hist(
        [galaxies["z"][galaxies["kind"] == k] for k in kinds],
        bins=bins,
        stacked=True,
        color=[KIND_COLOURS[k] for k in kinds],
        label=kinds,
    )
    if "bimodal" in cat:
        ax.hist(
            cat["z"][cat["bimodal"]], bins=bins, histtype="step", color="k", lw=1.5, label="bimodal"
        )
    ax.axvline(4, color="k", ls=":")
    ax.set_xlabel("true redshift")
    ax.set_ylabel("sources")
    ax.legend(fontsize=7)
    fig.tight_layout()
    p = out / "redshift_histogram.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


#: one colour per subpopulation (population.KINDS)
KIND_COLOURS = {
    "starforming": "#9ecae1",
    "dusty": "#3182bd",
    "quiescent": "#08306b",
    "highz_starforming": "#fc9272",
    "highz_dusty": "#de2d26",
    "highz_quiescent": "#67000d",
    "little_red_dot": "#ff7f00",
    "L_dwarf": "#a1d99b",
    "T_dwarf": "#31a354",
    "Y_dwarf": "#000000",
}


def _subpopulation_plot(plt, cat, mag: np.ndarray, out: Path) -> Path:
    """Six colour-colour diagrams, every subpopulation in its own colour, with the
    literature's selection boxes of :mod:`selection`."""
    from matplotlib.patches import Rectangle

    from hizkit import science
    from hizkit.plugins.mock import selection as sel

    def c(a, b):
        return sel.colour(mag, a, b)

    lo, hi = -1.5, 5.0
    panels = [
        (("F277W", "F444W"), ("F115W", "F277W"), [((1.0, lo), (hi, 0.0), "Hainline+24 BD")]),
        (("F277W", "F444W"), ("F150W", "F200W"), [((0.7, lo), (hi, 0.8), "LRD red 2*")]),
        (("F200W", "F356W"), ("F115W", "F150W"), [((1.0, lo), (hi, 0.8), "LRD red 1*")]),
    ]
    for drop, nxt, c0, c1 in science.DROPOUTS:
        box = ((lo, science.DROPOUT_BREAK), (science.DROPOUT_FLAT, hi), f"{drop} dropout")
        panels.append(((c0, c1), (drop, nxt), [box]))
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.5))
    kinds = [k for k in KINDS if k in set(cat["kind"])]
    for ax, (xc, yc, boxes) in zip(axes.ravel(), panels):
        x, y = c(*xc), c(*yc)
        for k in kinds:
            m = (cat["kind"] == k).to_numpy()
            big = k.endswith("dwarf") or k in ("little_red_dot", "highz_quiescent", "highz_dusty")
            ax.scatter(
                x[m],
                y[m],
                s=14 if big else 4,
                alpha=0.7,
                c=KIND_COLOURS[k],
                label=f"{k} ({m.sum()})",
            )
        for (x0, y0), (x1, y1), label in boxes:
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="k", ls="--", lw=1.2))
            ax.text(x0 + 0.05, y1 - 0.3 if y1 < hi else hi - 0.4, label, fontsize=8)
        ax.set_xlabel(f"{xc[0]} - {xc[1]}")
        ax.set_ylabel(f"{yc[0]} - {yc[1]}")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=9, markerscale=2)
    fig.suptitle(
        "simulated survey by subpopulation, with literature selections (dashed; *red 1/2 "
        "take a third colour, see hizkit.plugins.mock.selection); 1-sigma limits"
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    p = out / "subpopulations.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p
