"""The ``jades`` loader: a round trip through files written by ``hizkit simulate``."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import hizkit
from hizkit.cli import main
from hizkit.plugins.jades import JadesSource
from hizkit.plugins.mock import MockSurvey, jades_writer

PARAMS = dict(n_lowz=8, n_highz=8, n_brown_dwarfs=2, n_unlabelled=0, cutout_size=32, seed=4)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("j") / "jades"
    source = MockSurvey(**PARAMS)
    source.simulate_to(out)
    return out, source.load()


def test_round_trip_photometry_labels_and_cutouts(sim):
    out, truth = sim
    ds = JadesSource(labels="truth", cutout_size=32).load(str(out))
    assert len(ds) == len(truth)
    np.testing.assert_array_equal(ds.catalog["id"], truth.catalog["id"])
    np.testing.assert_array_equal(ds.catalog["label"], truth.catalog["label"])
    f1, e1 = ds.photometry()
    f0, e0 = truth.photometry()
    np.testing.assert_allclose(f1, f0, equal_nan=True)
    np.testing.assert_allclose(e1, e0, equal_nan=True)
    np.testing.assert_allclose(ds.cutouts, truth.cutouts, rtol=1e-4, atol=1e-4, equal_nan=True)
    assert ds.pixel_scale == pytest.approx(0.03)


def test_labels_from_photoz(sim):
    out, _ = sim
    ds = JadesSource().load(str(out))
    z = ds.catalog["z_phot"]
    assert ((ds.catalog["label"] == "highz") == (z >= 4)).all()


def test_edge_sources_are_padded_with_nan(sim, tmp_path):
    out, _ = sim
    ds = JadesSource(labels="truth", cutout_size=48).load(str(out))
    # 48 px cutouts around tiles of 32 px: the outermost tiles reach past the mosaic edge
    first = ds.cutouts[0]
    assert np.isnan(first[:, :8, :8]).all()
    assert not ds.coverage[0, :, :8, :8].any() and ds.coverage[0, :, 24, 24].all()
    assert np.isfinite(first[:, 24, 24]).all()


def test_bench_runs_on_simulated_files(sim, tmp_path):
    out, _ = sim
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nlabels = "truth"\ncutout_size = 32\n')
    rc = main(
        [
            "bench",
            "--data",
            f"jades:{out}",
            "--config",
            str(cfg),
            "--classifiers",
            "colour,logistic",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 0


@pytest.mark.parametrize("damage", ["missing_band", "corrupt", "no_dir"])
def test_bad_input_is_one_line(sim, tmp_path, damage, capsys):
    out, _ = sim
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in out.glob("*.fits"):
        (bad / p.name).write_bytes(p.read_bytes())
    if damage == "missing_band":
        (bad / jades_writer.mosaic_name("F150W")).unlink()
        expect = "file not found"
    elif damage == "corrupt":
        path = bad / jades_writer.mosaic_name("F200W")
        path.write_bytes(path.read_bytes()[:5000])
        expect = "not a readable FITS file"
    else:
        bad = tmp_path / "nowhere"
        expect = "no such directory"
    with pytest.raises(hizkit.HizkitError, match=expect):
        JadesSource(labels="truth", cutout_size=32).load(str(bad))
    rc = main(
        ["bench", "--data", f"jades:{bad}", "--classifiers", "colour", "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_catalog_without_band_column(sim, tmp_path):
    out, _ = sim
    bad = tmp_path / "nb"
    bad.mkdir()
    for p in out.glob("*.fits"):
        (bad / p.name).write_bytes(p.read_bytes())
    cat = bad / jades_writer.CATALOG_NAME
    with fits.open(cat) as hdul:
        circ = hdul["CIRC"]
        keep = [c for c in circ.columns if not c.name.startswith("F090W")]
        hdul["CIRC"] = fits.BinTableHDU.from_columns(keep, name="CIRC")
        hdul.writeto(cat, overwrite=True)
    # detection names the layout tried and what the catalog lacks
    with pytest.raises(hizkit.HizkitError, match="layout jades_v2 needs CIRC:F090W_CIRC2"):
        JadesSource(labels="truth", cutout_size=32).load(str(bad))
    with pytest.raises(hizkit.HizkitError, match=r"band F090W missing.*layout jades_v2"):
        JadesSource(labels="truth", cutout_size=32, layout="jades_v2").load(str(bad))


def _copy(out, dest):
    dest.mkdir()
    for p in out.glob("*.fits"):
        (dest / p.name).write_bytes(p.read_bytes())
    return dest


def test_catalog_without_photoz(sim, tmp_path):
    out, _ = sim
    bad = _copy(out, tmp_path / "nz")
    cat = bad / jades_writer.CATALOG_NAME
    with fits.open(cat) as hdul:
        del hdul["PHOTOZ"]
        hdul.writeto(cat, overwrite=True)
    with pytest.raises(hizkit.HizkitError, match="no photometric redshifts"):
        JadesSource().load(str(bad))


def test_mismatched_wcs(sim, tmp_path):
    out, _ = sim
    bad = _copy(out, tmp_path / "wcs")
    path = bad / jades_writer.mosaic_name("F356W")
    with fits.open(path) as hdul:
        hdul["SCI"].header["CRPIX1"] += 7
        hdul.writeto(path, overwrite=True)
    with pytest.raises(hizkit.HizkitError, match="WCS differs"):
        JadesSource(labels="truth", cutout_size=32).load(str(bad))
