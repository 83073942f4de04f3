"""Each layout loads files written in its release's real schema (``schema_fixtures``):
photometry in nJy, radii in arcsec, flags, photo-z, and cutouts whose sum is the known
flux of each point source (so a wrong BUNIT, pixel area or rebinning shows)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from schema_fixtures import (
    BANDS,
    make_sources,
    write_dja,
    write_epochs,
    write_jades_v2,
    write_jades_v5,
)

import hizkit
from hizkit.cli import main
from hizkit.plugins import jades as loader
from hizkit.plugins.jades import JadesSource

SRC = make_sources()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemas")
    write_jades_v5(root / "v5", SRC)
    write_jades_v2(root / "v2", SRC)
    write_jades_v2(root / "v2pix", SRC, rhalf_unit="pix")
    write_epochs(root / "epochs", SRC)
    write_epochs(root / "epochs_separate", SRC, separate=True)
    write_dja(root / "dja", SRC)
    return root


@pytest.fixture
def warned(monkeypatch):
    messages: list[str] = []
    monkeypatch.setattr(hizkit.progress, "warn", messages.append)
    return messages


def _check_photometry_and_cutouts(ds, scale=1.0, cutout_scale=0.03):
    f, e = ds.photometry()
    np.testing.assert_allclose(f, SRC.flux * scale, rtol=1e-5)
    np.testing.assert_allclose(e, SRC.err, rtol=1e-5)
    assert ds.pixel_scale == pytest.approx(cutout_scale, rel=1e-3)
    # each cutout holds one point source: its sum is the catalog's total flux in nJy
    np.testing.assert_allclose(np.nansum(ds.cutouts, axis=(2, 3)), SRC.flux, rtol=2e-3)
    assert np.isfinite(ds.cutouts).all()


def test_jades_dr5_loads_as_published(dirs, warned):
    ds = JadesSource(cutout_size=32, errors=True).load(str(dirs / "v5"))
    assert ds.meta["layout"] == "jades_v5"
    np.testing.assert_array_equal(ds.catalog["id"], SRC.ids)
    _check_photometry_and_cutouts(ds, scale=1.2)  # CIRC2 = 1.2 x total in the fixture
    # one size for every band: SIZE:FWHM / 2 (the half-light radius of a Gaussian)
    for band in BANDS:
        np.testing.assert_allclose(ds.catalog[hizkit.radius_col(band)], SRC.size)
    np.testing.assert_allclose(ds.catalog["z_phot"], SRC.z, rtol=1e-6)
    np.testing.assert_allclose(ds.catalog["chi2_phot"], SRC.chi2, rtol=1e-6)  # chi_a
    np.testing.assert_allclose(ds.catalog["z_u68"], SRC.u68)
    assert ds.catalog["bimodal"].tolist()[0] == (SRC.z[0] > 4)  # two peaks when z0 > 4
    assert "flag_star" not in ds.catalog
    assert (ds.errors > 0).all()
    # error cutouts: the constant 2.5 nJy per pixel of the ERR image
    np.testing.assert_allclose(ds.errors, 2.5, rtol=1e-4)
    assert not warned  # PIXAR_SR agrees with the WCS: nothing to report
    kron = JadesSource(aperture="KRON_CONV", cutout_size=16).load_catalog(str(dirs / "v5"))
    np.testing.assert_allclose(kron.photometry()[0], SRC.flux * 1.9, rtol=1e-6)


def test_jades_dr5_has_no_star_flags(dirs):
    with pytest.raises(hizkit.HizkitError, match="layout jades_v5 has no star flags"):
        JadesSource(quality_cuts={"drop_stars": True}).load_catalog(str(dirs / "v5"))
    cuts = {"max_chi2": 25, "max_pdf_width": 0.5}
    ds = JadesSource(quality_cuts=cuts).load_catalog(str(dirs / "v5"))
    assert len(ds) == int((SRC.chi2 <= 25).sum())


def test_dr5_without_photoz_loads_unlabelled_catalog_then_cutouts(dirs, tmp_path):
    d = tmp_path / "nopz"  # the DR5 files without PHOTOZ / PHOTOZ_KRON, as GOODS-N
    d.mkdir()
    for p in (dirs / "v5").iterdir():
        name = p.name.replace("goods-s", "goods-n")
        if "photometry" not in name:
            (d / name).write_bytes(p.read_bytes())
            continue
        with fits.open(p) as hdul:
            del hdul["PHOTOZ"], hdul["PHOTOZ_KRON"]
            hdul.writeto(d / name)
    src = JadesSource(labels="none", cutout_size=16)
    part = src.load_catalog(str(d))
    assert part.cutouts is None and part.meta["layout"] == "jades_v5"
    assert "z_phot" not in part.catalog and "label" not in part.catalog
    sub = part.subset([4, 1])  # as hizkit predict cuts a chunk
    cut = src.load_cutouts(str(d), sub)
    assert cut.cutouts.shape == (2, len(BANDS), 16, 16)
    np.testing.assert_allclose(cut.cutouts.sum(axis=(2, 3)), SRC.flux[[4, 1]], rtol=2e-3)
    with pytest.raises(hizkit.HizkitError, match="no photometric redshifts"):
        JadesSource().load_catalog(str(d))


def test_jades_v2_radius_units_flags_and_photoz(dirs, warned):
    a = JadesSource(cutout_size=32, quality_cuts={"drop_stars": True}).load(str(dirs / "v2"))
    b = JadesSource(cutout_size=32).load(str(dirs / "v2pix"))
    assert a.meta["layout"] == b.meta["layout"] == "jades_v2"
    assert SRC.ids[1] not in a.catalog["id"].to_numpy()  # FLAG_ST dropped
    assert a.meta["cuts"][-1][1] == len(SRC) - 1
    # RHALF with no TUNIT read as arcsec; with TUNIT pix, times the 0.03" pixel
    for ds in (a, b):
        np.testing.assert_allclose(ds.catalog[hizkit.radius_col("F444W")], 0.047, rtol=1e-9)
    _check_photometry_and_cutouts(b, scale=1.2)
    np.testing.assert_allclose(b.catalog["chi2_phot"], SRC.chi2)
    assert not warned


def test_pixar_sr_that_disagrees_with_the_wcs_is_reported_and_not_used(tmp_path, warned):
    d = tmp_path / "v2native"
    write_jades_v2(d, SRC, pixar_sr=9.31e-14)  # a detector's native pixel, not 0.03"
    ds = JadesSource(cutout_size=32).load(str(d))
    _check_photometry_and_cutouts(ds, scale=1.2)  # converted with the WCS pixel area
    assert len(warned) == len(BANDS)
    assert "f444w_v2.0_drz.fits: PIXAR_SR 9.31e-14 sr is 4.40x" in " ".join(warned)


@pytest.mark.parametrize("which", ["epochs", "epochs_separate"])
def test_epochs_mosaics_by_suffix_and_template_sets(dirs, which):
    ds = JadesSource(cutout_size=32, errors=True).load(str(dirs / which))
    assert ds.meta["layout"] == "epochs"
    _check_photometry_and_cutouts(ds)  # Jy -> nJy, MJy/sr -> nJy per pixel
    np.testing.assert_allclose(ds.catalog["radius_F444W"], SRC.size)  # 0.03" pixels
    np.testing.assert_allclose(ds.catalog["z_phot"], SRC.z)  # fsps_larson, joined on IDENT
    np.testing.assert_allclose(ds.errors, 2.5, rtol=1e-4)  # from ERR / _rms_err
    other = JadesSource(photoz_templates="sfhz").load_catalog(str(dirs / which))
    np.testing.assert_allclose(other.catalog["z_phot"], SRC.z + 1)
    with pytest.raises(hizkit.HizkitError, match="no photo-z for templates 'eazy_v1'"):
        JadesSource(photoz_templates="eazy_v1").load_catalog(str(dirs / which))


def test_epochs_weight_only_and_missing_band(dirs, tmp_path):
    d = tmp_path / "wht_only"
    d.mkdir()
    for p in (dirs / "epochs_separate").iterdir():
        if "_rms_err" not in p.name:
            (d / p.name).write_bytes(p.read_bytes())
    ds = JadesSource(cutout_size=16, errors=True).load(str(d))
    np.testing.assert_allclose(ds.errors, 2.5, rtol=1e-4)  # 1 / sqrt(WHT)
    # a file pattern given by hand: single-image files are read from their primary HDU
    pattern = "JADES-DR3-GS-South_{BAND}_v13_sci.fits"
    by_hand = JadesSource(cutout_size=16, mosaics=pattern).load(str(d))
    np.testing.assert_array_equal(by_hand.cutouts, ds.cutouts)
    (d / "JADES-DR3-GS-South_F150W_v13_sci.fits").unlink()
    with pytest.raises(hizkit.HizkitError, match="no F150W mosaic"):
        JadesSource(cutout_size=16).load(str(d))


def test_dja_tarball_photoz_units_and_grids(dirs, warned):
    ds = JadesSource(cutout_size=16, errors=True).load(str(dirs / "dja"))
    assert ds.meta["layout"] == "dja"
    # uJy -> nJy; 10.0*nanoJansky pixels (PIXAR_SR ignored); SW 0.02" rebinned to 0.04"
    _check_photometry_and_cutouts(ds, cutout_scale=0.04)
    # the zout member of <root>-fix.photoz.tar.gz, not the stale standalone v7.0 zout
    np.testing.assert_allclose(ds.catalog["z_phot"], SRC.z)
    np.testing.assert_allclose(ds.catalog["chi2_phot"], SRC.chi2)  # z_phot_chi2
    np.testing.assert_allclose(ds.catalog["radius_F444W"], SRC.size)  # 0.04" pixels
    # 1 / sqrt(wht): 2.5 nJy per pixel; a 0.04" SW pixel sums 4 of them in quadrature
    lw = [BANDS.index(b) for b in ("F277W", "F356W", "F444W")]
    np.testing.assert_allclose(ds.errors[:, lw], 2.5, rtol=1e-4)
    np.testing.assert_allclose(ds.errors[:, :4], 5.0, rtol=1e-4)
    assert not warned


def test_dja_reads_only_its_own_photoz(dirs, tmp_path, warned):
    d = tmp_path / "dja_stale"
    d.mkdir()
    for p in (dirs / "dja").iterdir():
        if not p.name.endswith(".tar.gz"):
            (d / p.name).write_bytes(p.read_bytes())
    # left: only an older catalog's standalone zout (other IDs), which is not read
    ds = JadesSource(labels="none").load_catalog(str(d))
    assert "z_phot" not in ds.catalog and len(ds) == len(SRC)
    with pytest.raises(hizkit.HizkitError, match="no photometric redshifts"):
        JadesSource().load_catalog(str(d))
    (d / "gds-grizli-v7.0-fix.eazypy.zout.fits").rename(d / "gds-grizli-v7.2-fix.eazypy.zout.fits")
    ds = JadesSource(labels="none").load_catalog(str(d))
    assert "for only 0% of the catalog's IDs" in " ".join(warned)


def test_repeated_ids_cannot_be_joined(dirs, tmp_path):
    d = tmp_path / "dup"
    d.mkdir()
    for p in (dirs / "v2").iterdir():
        (d / p.name).write_bytes(p.read_bytes())
    path = d / "hlsp_jades_jwst_nircam_goods-s-deep_photometry_v2.0_catalog.fits"
    with fits.open(path, mode="update") as hdul:
        hdul["SIZE"].data["ID"][1] = hdul["SIZE"].data["ID"][0]
    with pytest.raises(hizkit.HizkitError, match=r"\[SIZE\]: key column ID repeats values"):
        JadesSource().load_catalog(str(d))


def test_a_layout_file_that_lacks_a_key_is_one_line(tmp_path):
    (tmp_path / "mine.toml").write_text('name = "mine"\ncatalog = "*.fits"\n')
    with pytest.raises(hizkit.HizkitError, match=r"mine\.toml: layout lacks key, flux_unit"):
        loader.load_layout(tmp_path / "mine.toml")


def test_broken_photoz_tarball_is_one_line(dirs, tmp_path):
    d = tmp_path / "dja_broken"
    d.mkdir()
    for p in (dirs / "dja").iterdir():
        (d / p.name).write_bytes(
            p.read_bytes()[:300] if p.name.endswith(".tar.gz") else p.read_bytes()
        )
    with pytest.raises(hizkit.HizkitError, match=r"photoz\.tar\.gz: not a readable tarball") as err:
        JadesSource().load_catalog(str(d))
    assert "\n" not in str(err.value)


def test_bunit_parsing():
    assert loader.flux_unit_to_njy("10.0*nanoJansky") == 10.0
    assert loader.flux_unit_to_njy("nJy") == 1.0
    assert loader.flux_unit_to_njy("uJy") == 1e3
    assert loader.flux_unit_to_njy("microJy") == 1e3
    assert loader.flux_unit_to_njy("mJy") == 1e6
    assert loader.flux_unit_to_njy("Jy") == 1e9
    assert loader.flux_unit_to_njy("1e-9 Jy") == pytest.approx(1.0)
    assert loader.flux_unit_to_njy("MJy/sr") is None
    assert loader.flux_unit_to_njy("MJy") is None
    assert loader.flux_unit_to_njy("ELECTRONS/S") is None
    for spelt in ("MJy/sr", "MJy / sr", "MJy sr-1", "MJy sr^-1"):
        assert loader.is_surface_brightness(spelt)
    assert not loader.is_surface_brightness("nJy")


def test_unusable_bunit_is_one_line(dirs, tmp_path):
    d = tmp_path / "bad_bunit"
    d.mkdir()
    for p in (dirs / "v2").iterdir():
        (d / p.name).write_bytes(p.read_bytes())
    path = d / "hlsp_jades_jwst_nircam_goods-s-deep_f200w_v2.0_drz.fits"
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].header["BUNIT"] = "DN/s"
    with pytest.raises(hizkit.HizkitError, match=r"f200w_v2\.0_drz\.fits: BUNIT 'DN/s' is neither"):
        JadesSource(cutout_size=16).load(str(d))


def test_detection_names_each_layout_tried_and_what_it_lacks(dirs, tmp_path, capsys):
    d = tmp_path / "v5_no_fwhm"
    d.mkdir()
    cat = "hlsp_jades_jwst_nircam_goods-s_photometry_v5.0_catalog.fits"
    with fits.open(dirs / "v5" / cat) as hdul:
        size = hdul["SIZE"]
        keep = [c for c in size.columns if c.name != "FWHM"]
        hdul["SIZE"] = fits.BinTableHDU.from_columns(keep, name="SIZE")
        hdul.writeto(d / cat)
    with pytest.raises(hizkit.HizkitError) as err:
        JadesSource().load_catalog(str(d))
    message = str(err.value)
    assert "layout jades_v5 needs SIZE:FWHM" in message
    assert "layout jades_v2 needs FLAG:FLAG_ST" in message
    assert "\n" not in message
    rc = main(["bench", "--data", f"jades:{d}", "--classifiers", "colour", "--out", str(d / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "needs SIZE:FWHM" in err
    with pytest.raises(hizkit.HizkitError, match="tried dja: \\*-fix_phot_apcorr"):
        JadesSource().load_catalog(str(tmp_path))
