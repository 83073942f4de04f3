"""`hizkit simulate` writes the survey in the JADES v2.0 layout."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from hizkit import HizkitError
from hizkit.cli import main
from hizkit.plugins.mock import MockSurvey, jades_writer

PARAMS = dict(n_lowz=6, n_highz=6, n_brown_dwarfs=2, n_unlabelled=0, cutout_size=32, seed=2)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "jades"
    source = MockSurvey(**PARAMS)
    source.simulate_to(out, plot=True)
    return out, source.load()


def test_layout_and_units(written):
    out, data = written
    for band in data.bands:
        with fits.open(out / jades_writer.mosaic_name(band)) as hdul:
            assert {"SCI", "ERR"} <= {h.name for h in hdul}
            sci = hdul["SCI"]
            assert sci.header["BUNIT"] == "MJy/sr"
            scale = np.abs(WCS(sci.header).pixel_scale_matrix.diagonal()) * 3600
            np.testing.assert_allclose(scale, 0.03)
            assert sci.data.dtype.kind == "f"
    with fits.open(out / jades_writer.CATALOG_NAME) as cat:
        names = {h.name for h in cat}
        assert {"FILTERS", "FLAG", "SIZE", "CIRC", "KRON", "PHOTOZ"} <= names
        assert "F444W_CIRC2" in cat["CIRC"].columns.names
        assert "EAZY_z_a" in cat["PHOTOZ"].columns.names
        assert len(cat["FLAG"].data) == len(data)


def test_mosaic_pixels_are_the_cutouts_and_positions_follow_the_wcs(written):
    out, data = written
    cat = fits.getdata(out / jades_writer.CATALOG_NAME, "SIZE")
    with fits.open(out / jades_writer.mosaic_name("F200W")) as hdul:
        sci, wcs = hdul["SCI"].data, WCS(hdul["SCI"].header)
        x, y = wcs.wcs_world2pix(cat["RA"], cat["DEC"], 0)
        np.testing.assert_allclose(x + 1, cat["X"], atol=1e-6)
        i = 3
        x0, y0 = round(x[i] - 15.5), round(y[i] - 15.5)
        tile = sci[y0 : y0 + 32, x0 : x0 + 32] * jades_writer.NJY_PER_MJYSR
        np.testing.assert_allclose(tile, data.cutouts[i, 3], rtol=1e-5, atol=1e-5, equal_nan=True)


def test_catalog_fluxes_in_njy_match_the_dataset(written):
    out, data = written
    circ = fits.getdata(out / jades_writer.CATALOG_NAME, "CIRC")
    np.testing.assert_allclose(circ["F356W_CIRC2"], data.catalog["flux_F356W"], equal_nan=True)


def test_plots_written(written):
    out, _ = written
    for name in ("colour_colour.png", "subpopulations.png", "redshift_histogram.png"):
        assert (out / name).stat().st_size > 5000


def test_never_overwrites(written):
    out, _ = written
    with pytest.raises(HizkitError, match="already exists"):
        MockSurvey(**PARAMS).simulate_to(out)


def test_cli_simulate(tmp_path, capsys):
    rc = main(
        [
            "simulate",
            "--out",
            str(tmp_path / "s"),
            "--n-lowz",
            "3",
            "--n-highz",
            "3",
            "--n-brown-dwarfs",
            "1",
            "--n-unlabelled",
            "0",
        ]
    )
    assert rc == 0
    assert (tmp_path / "s" / jades_writer.CATALOG_NAME).exists()


def test_catalog_has_every_circ_aperture_of_the_release(written):
    out, _ = written
    circ = fits.getdata(out / jades_writer.CATALOG_NAME, "CIRC")
    for k in range(1, 7):
        assert f"F444W_CIRC{k}" in circ.columns.names
        assert f"F444W_CIRC{k}_e" in circ.columns.names
    # errors grow with the aperture
    e = np.array([np.nanmedian(circ[f"F444W_CIRC{k}_e"]) for k in range(1, 7)])
    assert np.all(np.diff(e) > 0)
