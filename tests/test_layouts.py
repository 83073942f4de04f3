"""The ``jades`` loader on the EPOCHS and DJA layouts, quality cuts and brown-dwarf labels.

The EPOCHS and DJA files are written here, from a simulated survey in the JADES layout,
the way data-formats.md describes those releases (vector apertures in Jy keyed by
NUMBER with an EAZY_<templates> extension keyed by IDENT; microJy catalog with a separate
zout file and per-band mosaic grids in 10 nJy units with _wht files).
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import hizkit
from hizkit.cuts import QualityCuts
from hizkit.plugins import jades as loader
from hizkit.plugins.jades import JadesSource
from hizkit.plugins.mock import MockSurvey, jades_writer

PARAMS = dict(n_lowz=8, n_highz=8, n_brown_dwarfs=2, n_unlabelled=0, cutout_size=32, seed=5)
BANDS = hizkit.NIRCAM_BANDS
SW = ("F090W", "F115W", "F150W", "F200W")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("l") / "jades"
    source = MockSurvey(**PARAMS)
    source.simulate_to(out)
    return out, source.load()


def _jades_catalog(out):
    with fits.open(out / jades_writer.CATALOG_NAME) as hdul:
        return {h.name: Table.read(h) for h in hdul[1:]}


def _mosaic(out, band):
    with fits.open(out / jades_writer.mosaic_name(band)) as hdul:
        return hdul["SCI"].data.copy(), hdul["ERR"].data.copy(), hdul["SCI"].header.copy()


@pytest.fixture(scope="module")
def epochs(sim, tmp_path_factory):
    out, truth = sim
    d = tmp_path_factory.mktemp("e")
    t = _jades_catalog(out)
    n = len(t["FLAG"])
    order = np.arange(n)[::-1]  # photo-z rows in another order: the join must use IDENT
    objects = Table({"NUMBER": t["FLAG"]["ID"], "ALPHA_J2000": t["FLAG"]["RA"]})
    objects["DELTA_J2000"] = t["FLAG"]["DEC"]
    for band in BANDS:
        spelt = band[0].lower() + band[1:]  # older galfind versions: "f444W"
        flux = np.asarray(t["CIRC"][f"{band}_CIRC2"], float) * 1e-9
        err = np.asarray(t["CIRC"][f"{band}_CIRC2_e"], float) * 1e-9
        objects[f"FLUX_APER_{spelt}_aper_corr_Jy"] = np.column_stack([flux, *[flux * 2] * 4])
        objects[f"FLUXERR_APER_{spelt}_loc_depth_10pc_Jy"] = np.column_stack([err] * 5)
        objects[f"FLUX_RADIUS_{spelt}"] = np.asarray(t["SIZE"][f"{band}_RHALF"]) / 0.03
    pz = t["PHOTOZ"][order]
    tmpl = "fsps_larson"
    eazy = Table({"IDENT": pz["ID"], f"zbest_{tmpl}_zfree": pz["EAZY_z_a"]})
    eazy[f"zbest_16_{tmpl}_zfree"] = pz["EAZY_l68"]
    eazy[f"zbest_84_{tmpl}_zfree"] = pz["EAZY_u68"]
    eazy[f"chi2_best_{tmpl}_zfree"] = pz["EAZY_chisq_min"]
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU(objects, name="OBJECTS"),
            fits.BinTableHDU(eazy, name=f"EAZY_{tmpl}"),
        ]
    ).writeto(d / "JADES-DR3-GS-South_MASTER_Sel-F277W+F356W+F444W_v13.fits")
    for band in BANDS:
        sci, err, h = _mosaic(out, band)
        wht = np.where(err > 0, 1 / np.where(err > 0, err, 1) ** 2, 0).astype(np.float32)
        fits.HDUList(
            [
                fits.PrimaryHDU(),
                fits.ImageHDU(sci, h, name="SCI"),
                fits.ImageHDU(err, h, name="ERR"),
                fits.ImageHDU(wht, h, name="WHT"),
            ]
        ).writeto(d / f"JADES-DR3-GS-South_{band}_v13_i2d.fits")
    return d, truth


@pytest.fixture(scope="module")
def dja(sim, tmp_path_factory):
    """LW bands on the simulator's 0.03" grid, SW bands on a 2x finer one."""
    out, truth = sim
    d = tmp_path_factory.mktemp("d")
    t = _jades_catalog(out)
    cat = Table({"id": t["FLAG"]["ID"], "ra": t["FLAG"]["RA"], "dec": t["FLAG"]["DEC"]})
    cat["flux_radius"] = np.asarray(t["SIZE"]["F444W_RHALF"]) / 0.04
    for band in BANDS:
        f = np.asarray(t["CIRC"][f"{band}_CIRC2"], float) / 1e3
        e = np.asarray(t["CIRC"][f"{band}_CIRC2_e"], float) / 1e3
        for i in range(4):
            cat[f"{band.lower()}_tot_{i}"] = f if i == 1 else f * 1.5
            cat[f"{band.lower()}_etot_{i}"] = e
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(cat)]).writeto(
        d / "gds-grizli-v7.0-fix_phot_apcorr.fits"
    )
    zout = Table({"id": t["PHOTOZ"]["ID"], "z_phot": t["PHOTOZ"]["EAZY_z_a"]})
    zout["z160"], zout["z840"] = t["PHOTOZ"]["EAZY_l68"], t["PHOTOZ"]["EAZY_u68"]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(zout)]).writeto(
        d / "gds-grizli-v7.0-fix.eazypy.zout.fits"
    )
    for band in BANDS:
        sci, err, h = _mosaic(out, band)
        njy = sci * h["PIXAR_SR"] * 1e15
        sig = err * h["PIXAR_SR"] * 1e15
        hdr = fits.Header()
        for key in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CUNIT1", "CUNIT2"):
            hdr[key] = h[key]
        cd = WCS(h).pixel_scale_matrix
        if band in SW:  # each pixel split into 2x2: same sky, twice the sampling
            njy = np.repeat(np.repeat(njy, 2, 0), 2, 1) / 4
            sig = np.repeat(np.repeat(sig, 2, 0), 2, 1) / 2
            cd = cd / 2
            hdr["CRPIX1"], hdr["CRPIX2"] = 2 * h["CRPIX1"] - 0.5, 2 * h["CRPIX2"] - 0.5
        hdr["CD1_1"], hdr["CD2_2"], hdr["CD1_2"], hdr["CD2_1"] = cd[0, 0], cd[1, 1], 0.0, 0.0
        wht = np.where(sig > 0, 1 / np.where(sig > 0, sig / 10, 1) ** 2, 0).astype(np.float32)
        for suffix, image in (("sci", (njy / 10).astype(np.float32)), ("wht", wht)):
            raw = fits.PrimaryHDU(image, hdr)
            name = d / f"gds-grizli-v7.0-{band.lower()}-clear_drc_{suffix}.fits.gz"
            with gzip.open(name, "wb") as fh:
                raw.writeto(fh)
    return d, truth


def test_layout_is_detected_from_the_file_names(sim, epochs, dja):
    assert loader.detect_layout(sim[0]) == "jades_v2"
    assert loader.detect_layout(epochs[0]) == "epochs"
    assert loader.detect_layout(dja[0]) == "dja"


@pytest.mark.parametrize("which", ["epochs", "dja"])
def test_other_layouts_read_the_same_survey(request, which):
    directory, truth = request.getfixturevalue(which)
    ds = JadesSource(cutout_size=32).load(str(directory))
    assert ds.meta["layout"] == which
    np.testing.assert_array_equal(ds.catalog["id"], truth.catalog["id"])
    f1, e1 = ds.photometry()
    f0, e0 = truth.photometry()
    np.testing.assert_allclose(f1, f0, rtol=1e-9, equal_nan=True)  # Jy / microJy -> nJy
    np.testing.assert_allclose(e1, e0, rtol=1e-9, equal_nan=True)
    # photo-z joined on IDENT / id, not by row
    np.testing.assert_allclose(ds.catalog["z_phot"], truth.catalog["z_phot"])
    assert ((ds.catalog["label"] == "highz") == (ds.catalog["z_phot"] >= 4)).all()
    np.testing.assert_allclose(ds.catalog["radius_F444W"], truth.catalog["radius_F444W"], rtol=1e-6)
    # cutouts: the same pixels in nJy (DJA: short-wavelength bands rebinned 2x2 -> 1)
    assert ds.pixel_scale == pytest.approx(0.03)
    np.testing.assert_allclose(ds.cutouts, truth.cutouts, rtol=1e-4, atol=1e-3, equal_nan=True)


def test_epochs_aperture_choice_and_chi2(epochs):
    directory, truth = epochs
    ds = JadesSource(cutout_size=32, aperture="D050").load(str(directory))
    np.testing.assert_allclose(ds.photometry()[0], 2 * truth.photometry()[0], equal_nan=True)
    assert np.isfinite(ds.catalog["chi2_phot"]).all()
    with pytest.raises(hizkit.HizkitError, match="aperture 'CIRC2' not in layout epochs"):
        JadesSource(aperture="CIRC2").load(str(directory))


def test_error_cutouts_from_err_and_from_wht(sim, dja):
    a = JadesSource(cutout_size=32, labels="truth", errors=True).load(str(sim[0]))
    b = JadesSource(cutout_size=32, errors=True).load(str(dja[0]))
    assert a.errors.shape == a.cutouts.shape
    covered = np.isfinite(a.cutouts)
    assert (a.errors[covered] > 0).all()
    np.testing.assert_allclose(b.errors, a.errors, rtol=1e-3, equal_nan=True)


def test_quality_cuts_report_counts_and_spare_brown_dwarfs(sim, tmp_path):
    out, truth = sim
    cuts = {"min_snr": 20, "max_pdf_width": 0.3}
    ds = JadesSource(labels="truth", cutout_size=32, quality_cuts=cuts).load(str(out))
    steps = ds.meta["cuts"]
    assert [n for _, n in steps] == sorted((n for _, n in steps), reverse=True)
    assert steps[0][1] == len(truth) and steps[-1][1] == len(ds)
    assert (ds.catalog["label"] == "brown_dwarf").sum() == 2
    galaxies = ds.catalog[ds.catalog["label"] != "brown_dwarf"]
    width = (galaxies["z_u68"] - galaxies["z_l68"]) / (1 + galaxies["z_phot"])
    assert (width <= 0.3).all()
    with pytest.raises(hizkit.HizkitError, match="unknown quality cut"):
        JadesSource(quality_cuts={"min_sn": 3}).load(str(out))


def test_a_cut_needs_its_column(dja):
    with pytest.raises(hizkit.HizkitError, match="needs catalog column"):
        JadesSource(quality_cuts={"max_chi2": 10}).load(str(dja[0]))


def test_brown_dwarfs_from_an_id_list_and_from_colours(sim, tmp_path):
    out, truth = sim
    bd_ids = truth.catalog.loc[truth.catalog["label"] == "brown_dwarf", "id"].to_numpy()
    ids = tmp_path / "bds.csv"
    pd.DataFrame({"ID": bd_ids}).to_csv(ids, index=False)
    ds = JadesSource(cutout_size=32, brown_dwarfs=str(ids)).load(str(out))
    assert set(ds.catalog.loc[ds.catalog["label"] == "brown_dwarf", "id"]) == set(bd_ids)
    fits_ids = tmp_path / "bds.fits"
    Table({"NUMBER": bd_ids}).write(fits_ids)
    assert set(loader.read_id_list(fits_ids)) == set(bd_ids)
    # the colour criteria pick out red, blue-in-the-short-bands, compact sources
    cat = truth.catalog.copy()
    picked = loader.brown_dwarf_candidates(cat, max_radius=0.2)
    bright_red = cat[hizkit.flux_col("F444W")] > 3 * cat[hizkit.flux_col("F277W")]
    assert not (picked & ~bright_red.to_numpy()).any()
    cat.loc[0, [hizkit.flux_col(b) for b in BANDS]] = [5, 8, 6, 4, 3, 15, 40]
    cat.loc[0, [hizkit.fluxerr_col(b) for b in BANDS]] = 0.5
    cat.loc[0, hizkit.radius_col("F444W")] = 0.05
    assert loader.brown_dwarf_candidates(cat)[0]
    with pytest.raises(hizkit.HizkitError, match="ID list not found"):
        JadesSource(brown_dwarfs=str(tmp_path / "none.csv")).load(str(out))


def test_bimodal_from_a_redshift_pdf():
    grid = np.linspace(0, 15, 151)
    one = np.exp(-0.5 * ((grid - 2.5) / 0.2) ** 2)
    two = one + 0.8 * np.exp(-0.5 * ((grid - 12) / 0.3) ** 2)
    flags = loader.bimodal_from_pdf(grid, np.vstack([one, two, 0 * grid]), 4.0, 0.2)
    assert flags.tolist() == [False, True, False]


def test_quality_cuts_alone():
    cat = pd.DataFrame(
        {
            "z_phot": [1.0, 5.0, 7.0, np.nan],
            "z_l68": [0.9, 4.0, 6.9, np.nan],
            "z_u68": [1.1, 9.0, 7.1, np.nan],
        }
    )
    keep, counts = QualityCuts(max_pdf_width=0.5).apply(cat)
    assert keep.tolist() == [True, False, True, False]  # a missing photo-z fails the cut
    assert counts == [("input", 4), ("PDF width <= 0.5", 2)]


def test_unknown_layout_and_empty_directory(tmp_path):
    with pytest.raises(hizkit.HizkitError, match="unknown layout 'dr9'"):
        JadesSource(layout="dr9").load(str(tmp_path))
    with pytest.raises(hizkit.HizkitError, match="no catalog of a known layout"):
        JadesSource().load(str(tmp_path))
