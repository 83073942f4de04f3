"""Fault injection (issue 16): damaged survey files are read strictly. Truncated
mosaics, catalogs and .fits.gz files are one-line errors naming the file; NaN RA/Dec,
infinite pixels, all-NaN bands and duplicate IDs are reported, never taken silently."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits
from conftest import one_line
from schema_fixtures import make_sources, write_jades_v2
from test_robustness import cli  # noqa: F401 - the fixture

import hizkit
from hizkit.plugins.jades import JadesSource


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    out = tmp_path_factory.mktemp("field") / "v2"
    write_jades_v2(out, make_sources(6), npix=160)
    return out


@pytest.fixture
def copy(field, tmp_path):
    dest = tmp_path / "v2"
    shutil.copytree(field, dest)
    return dest


def mosaic(d, band="f200w"):
    return next(d.glob(f"*_{band}_v*_drz.fits"))


def catalog(d):
    return next(d.glob("*_catalog.fits"))


def load(d, **params):
    return JadesSource(cutout_size=16, **params).load(str(d))


def cut_at(path, hdu: int, where: str, extra: int = 0) -> None:
    """Truncate ``path`` at the start of HDU ``hdu``'s header or inside its data."""
    with fits.open(path) as hdul:
        info = hdul.fileinfo(hdu)
    end = (info["hdrLoc"] if where == "header" else info["datLoc"]) + extra
    path.write_bytes(path.read_bytes()[:end])


@pytest.mark.parametrize(
    "damage",
    ["err_half_written", "mid_science", "catalog_mid_header", "catalog_mid_data"],
)
def test_truncated_files_are_one_line_errors(copy, damage):
    if damage == "err_half_written":
        target = mosaic(copy)
        cut_at(target, 2, "data", 5000)  # the ERR extension loses its pixels
    elif damage == "mid_science":
        target = mosaic(copy)
        cut_at(target, 1, "data", 20000)
    elif damage == "catalog_mid_header":
        target = catalog(copy)
        target.write_bytes(target.read_bytes()[:4000])
    else:
        target = catalog(copy)
        cut_at(target, 4, "data", 100)
    with pytest.raises(hizkit.HizkitError, match="truncated or corrupt") as info:
        load(copy)
    assert str(target) in str(info.value)


def test_error_extension_cut_off_exactly(copy, capsys):
    """Cut at an extension boundary, astropy sees a valid shorter file: the band's
    coverage would silently come from SCI NaNs only. An error when errors are needed,
    else a warning naming the band."""
    target = mosaic(copy)
    cut_at(target, 2, "header")
    with pytest.raises(hizkit.HizkitError, match="F200W mosaic has SCI but no ERR"):
        load(copy, errors=True)
    data = load(copy)
    out = " ".join(capsys.readouterr().err.split())
    assert "F200W mosaic has SCI but no ERR" in out and "NaNs in SCI only" in out
    assert len(data) == 6


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_gzip(copy, keep):
    target = mosaic(copy)
    packed = gzip.compress(target.read_bytes())
    gz = target.with_name(target.name + ".gz")
    gz.write_bytes(packed[: int(len(packed) * keep)])
    target.unlink()
    with pytest.raises(hizkit.HizkitError, match="truncated or corrupt gzip") as info:
        load(copy)
    assert str(gz) in str(info.value)


def test_whole_gzip_still_reads(copy):
    target = mosaic(copy)
    gz = target.with_name(target.name + ".gz")
    gz.write_bytes(gzip.compress(target.read_bytes()))
    target.unlink()
    assert load(copy).cutouts.shape[0] == 6


def _edit_catalog(d, change) -> None:
    with fits.open(catalog(d), mode="update") as hdul:
        for ext in ("FLAG", "SIZE", "CIRC", "KRON"):
            change(hdul[ext].data, ext)


def test_nan_positions_are_dropped_with_a_count(copy, capsys):
    def nan_radec(data, ext):
        data["RA"][0] = np.nan
        data["DEC"][2] = np.inf

    _edit_catalog(copy, nan_radec)
    data = load(copy)
    assert len(data) == 4
    out = " ".join(capsys.readouterr().err.split())
    assert "2 of 6 sources" in out and "no valid RA/Dec" in out


def test_all_positions_nan_is_an_error(copy):
    _edit_catalog(copy, lambda data, ext: data["RA"].fill(np.nan))
    with pytest.raises(hizkit.HizkitError, match="no source has a finite RA and Dec"):
        load(copy)


def test_all_nan_band_is_an_error(copy, capsys):
    def nan_band(data, ext):
        if ext == "CIRC":
            data["F200W_CIRC2"][:] = np.nan

    _edit_catalog(copy, nan_band)
    with pytest.raises(hizkit.HizkitError, match="every F200W flux is NaN") as info:
        load(copy)
    assert "bands = [" in str(info.value)
    load(copy, labels="none")  # a field to classify: a warning
    assert "every F200W flux is NaN" in " ".join(capsys.readouterr().err.split())


def test_infinite_pixels_are_no_coverage(copy, capsys):
    with fits.open(mosaic(copy), mode="update") as hdul:
        hdul["SCI"].data[60:100, 60:100] = np.inf
    data = load(copy)
    assert not np.isinf(data.cutouts).any()
    out = " ".join(capsys.readouterr().err.split())
    assert "infinite pixel value(s)" in out and "F200W" in out


def test_duplicate_ids_reach_the_cli_as_one_line(copy, cli, tmp_path):  # noqa: F811
    def dup(data, ext):
        data["ID"][1] = data["ID"][0]

    _edit_catalog(copy, dup)
    rc, err = cli(
        "bench", "--data", f"jades:{copy}", "--classifiers", "colour", "--out", str(tmp_path / "r")
    )
    one_line((rc, err), "repeats values")


def test_missing_final_padding_only_is_read(copy):
    """Some writers leave out the padding of the last 2880-byte block: astropy warns that
    the file "may have been truncated", but every pixel is there."""
    target = mosaic(copy)
    with fits.open(target) as hdul:
        info = hdul.fileinfo(2)
        nbytes = hdul[2].data.nbytes
    whole = target.read_bytes()
    assert len(whole) > info["datLoc"] + nbytes  # there is padding to leave out
    target.write_bytes(whole[: info["datLoc"] + nbytes])
    data = load(copy, errors=True)
    assert np.isfinite(data.errors[:, 3]).any()
