"""Cutout extraction from JADES-layout mosaics: hizkit's ``jades`` loader vs Cutout2D.

Writes a synthetic mosaic set in the JADES v2.0 layout (7 bands, SCI + ERR, one TAN grid
at 0.03"/px, some no-coverage regions) and a catalog of ``--n`` sources (some at the
edges), then extracts 64x64 cutouts in all bands: hizkit's loader (memory map, one
vectorised gather per band) against a plain ``astropy.nddata.Cutout2D`` loop over the same
sources and the same memory-mapped arrays (timed on a sample, reported per cutout).
Run: python benchmarks/cutout_throughput.py [--n 20000] [--side 4000] [--smoke]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import finish

import hizkit
from hizkit.plugins.jades import JadesSource, load_layout
from hizkit.plugins.mock import jades_writer


def write_synthetic(directory: Path, n: int, side: int, rng) -> None:
    from astropy.io import fits
    from astropy.table import Table

    wcs = jades_writer._wcs((side, side), 53.16, -27.78)
    header = wcs.to_header()
    header.update(BUNIT="MJy/sr", PIXAR_SR=jades_writer.PIXAR_SR)
    for band in hizkit.NIRCAM_BANDS:
        sci = rng.normal(0, 0.01, (side, side)).astype(np.float32)
        err = np.full((side, side), 0.01, dtype=np.float32)
        err[: side // 10, : side // 10] = 0  # a corner without coverage
        fits.HDUList(
            [
                fits.PrimaryHDU(),
                fits.ImageHDU(sci, header, name="SCI"),
                fits.ImageHDU(err, header, name="ERR"),
            ]
        ).writeto(directory / jades_writer.mosaic_name(band))
    x = rng.uniform(-20, side + 20, n)
    y = rng.uniform(-20, side + 20, n)
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    ids = np.arange(1, n + 1)
    base = {"ID": ids, "RA": ra, "DEC": dec}
    circ, size = Table(dict(base)), Table(dict(base))
    for band in hizkit.NIRCAM_BANDS:
        circ[f"{band}_CIRC2"] = rng.lognormal(2, 1, n)
        circ[f"{band}_CIRC2_e"] = np.ones(n)
        size[f"{band}_RHALF"] = np.full(n, 0.1)
    photoz = Table({"ID": ids, "EAZY_z_a": rng.uniform(0.2, 12, n)})
    flag = Table({**base, "FLAG_ST": np.zeros(n, np.int16), "FLAG_BS": np.zeros(n, np.int16)})
    fits.HDUList(
        [fits.PrimaryHDU()]
        + [
            fits.BinTableHDU(t, name=name)
            for name, t in (("FLAG", flag), ("SIZE", size), ("CIRC", circ), ("PHOTOZ", photoz))
        ]
    ).writeto(directory / jades_writer.CATALOG_NAME)


def plain_cutout2d(directory: Path, ra, dec, s: int) -> tuple[np.ndarray, float]:
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.nddata import Cutout2D
    from astropy.wcs import WCS

    out = np.full((len(ra), 7, s, s), np.nan, dtype=np.float32)
    t = time.perf_counter()
    for b, band in enumerate(hizkit.NIRCAM_BANDS):
        with fits.open(directory / jades_writer.mosaic_name(band), memmap=True) as hdul:
            wcs = WCS(hdul["SCI"].header)
            sci, err = hdul["SCI"].data, hdul["ERR"].data
            scale = hdul["SCI"].header["PIXAR_SR"] * 1e15
            for i in range(len(ra)):
                pos = SkyCoord(ra[i], dec[i], unit="deg")
                try:
                    c = Cutout2D(sci, pos, (s, s), wcs=wcs, mode="partial", fill_value=np.nan)
                    e = Cutout2D(err, pos, (s, s), wcs=wcs, mode="partial", fill_value=0)
                except Exception:  # entirely off the mosaic
                    continue
                tile = c.data.astype(np.float32) * scale
                tile[~(e.data > 0)] = np.nan
                out[i, b] = tile
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--side", type=int, default=4000)
    ap.add_argument("--reference-sample", type=int, default=1000)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the code paths only (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.side, args.reference_sample = 40, 600, 10
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_synthetic(directory, args.n, args.side, rng)
        source = JadesSource(cutout_size=64)
        lay = load_layout("jades_v2")
        cat = source.read_catalog(directory, lay)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            cut, _, _ = source.cutouts(directory, lay, cat)
            times.append(time.perf_counter() - t)
        ours = float(np.median(times))
        k = args.reference_sample
        ref, t_ref = plain_cutout2d(
            directory, cat["ra"].to_numpy()[:k], cat["dec"].to_numpy()[:k], 64
        )
        same = np.allclose(cut[:k], ref, equal_nan=True, atol=1e-6)
    rate_ours = args.n / ours
    rate_ref = k / t_ref
    print(
        f"hizkit jades loader: {rate_ours:9.0f} sources/s (7 bands each; {args.n} sources, "
        f"median of 3: {ours:.2f} s)"
    )
    print(f"plain Cutout2D loop: {rate_ref:9.0f} sources/s (timed on {k} sources)")
    print(f"ratio: {rate_ours / rate_ref:.0f}x; identical cutouts: {same}")
    assert same, "the two methods disagree"
    finish(
        "cutout_throughput",
        {
            "sources": args.n,
            "mosaic_side": args.side,
            "hizkit_sources_per_s": round(rate_ours),
            "cutout2d_sources_per_s": round(rate_ref, 1),
            "ratio": round(rate_ours / rate_ref, 1),
        },
    )


if __name__ == "__main__":
    main()
