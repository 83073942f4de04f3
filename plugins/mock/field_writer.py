"""Writing a simulated field (:mod:`field`) in the JADES v2.0 layout
(``hizkit simulate --field N``).

The same files as :mod:`jades_writer` writes for the labelled set, but the mosaics are the
field's own continuous sky (SCI: the rendered, noisy images in MJy/sr, NaN without
coverage; ERR: the per-pixel rms, 0 without coverage), the catalog holds the photutils
detections at their measured positions, and the TRUTH extension holds each detection's
truth: ``ID``, ``Z_TRUE`` (NaN for spurious), ``LABEL`` (the true class, empty for a
spurious detection; the ``jades`` source reads it as ``label_true``), ``KIND`` (with
``spurious``), ``WEIGHT`` (importance weight back to the sky's rates), ``SPURIOUS``,
``BLENDED``, ``NN_DIST`` (arcsec), ``SNR_DET``, ``MATCH_DIST``, ``RA_TRUE``, ``DEC_TRUE``,
``MAG_TRUE`` (true F444W) and ``BIMODAL``. A TRUTH_SOURCES extension lists every drawn
source, detected or not (position, kind, z, weight), for completeness measurements.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from hizkit import progress
from hizkit.atomic import new_directory
from hizkit.plugins.mock import images, jades_writer
from hizkit.plugins.mock.field import Field


def write(f: Field, out: Path) -> list[Path]:
    """Write the field's mosaics and catalog into ``out`` (which must not exist yet)."""
    data = f.data
    cat = data.catalog
    header = f.wcs.to_header()
    written = []
    with new_directory(out) as tmp:
        for b in progress.track(range(len(data.bands)), "writing mosaics"):
            band = data.bands[b]
            h = header.copy()
            h.update(
                BUNIT="MJy/sr",
                PHOTMJSR=1.0,
                PIXAR_SR=jades_writer.PIXAR_SR,
                PIXAR_A2=images.PIXEL**2,
                FILTER=band,
                TELESCOP="JWST",
                INSTRUME="NIRCAM",
                ORIGIN="hizkit mock field",
            )
            sci = (f.sci[b] / jades_writer.NJY_PER_MJYSR).astype(np.float32)
            err = (f.err_image(b) / jades_writer.NJY_PER_MJYSR).astype(np.float32)
            hdul = fits.HDUList(
                [
                    fits.PrimaryHDU(),
                    fits.ImageHDU(sci, h, name=jades_writer.LAYOUT.mosaics.science),
                    fits.ImageHDU(err, h, name=jades_writer.LAYOUT.mosaics.error),
                ]
            )
            hdul.writeto(tmp / jades_writer.mosaic_name(band))
            written.append(Path(out) / jades_writer.mosaic_name(band))
            del sci, err, hdul

        x = cat["x"].to_numpy(float)
        y = cat["y"].to_numpy(float)
        from hizkit.plugins.mock.field import sigma_at

        sigma = sigma_at(f.depth, x, y)
        hdus = jades_writer._catalog_hdus(
            data, sigma, x, y, cat["ra"].to_numpy(float), cat["dec"].to_numpy(float)
        )
        hdus = [h for h in hdus if h.name != "TRUTH"]
        hdus.append(fits.BinTableHDU(_truth(cat), name="TRUTH"))
        hdus.append(fits.BinTableHDU(_sources(f), name="TRUTH_SOURCES"))
        primary = fits.PrimaryHDU()
        primary.header["ORIGIN"] = "hizkit mock field"
        primary.header["AREA"] = (f.meta["area_arcmin2"], "field area, arcmin^2")
        primary.header["SEED"] = f.meta["seed"]
        primary.header["MIX"] = json.dumps(f.meta.get("mix") or {})
        fits.HDUList([primary, *hdus]).writeto(tmp / jades_writer.CATALOG_NAME)
        written.append(Path(out) / jades_writer.CATALOG_NAME)
    return written


def _truth(cat) -> Table:
    label = np.array(["" if not isinstance(v, str) else v for v in cat["label"]])
    return Table(
        {
            "ID": cat["id"].to_numpy(),
            "Z_TRUE": cat["z"].to_numpy(float),
            "LABEL": label,
            "KIND": np.array(cat["kind"].astype(str).tolist()),
            "WEIGHT": cat["weight"].to_numpy(float),
            "SPURIOUS": cat["spurious"].to_numpy(bool),
            "BLENDED": cat["blended"].to_numpy(bool),
            "NN_DIST": cat["nn_dist"].to_numpy(float),
            "SNR_DET": cat["snr_det"].to_numpy(float),
            "MATCH_DIST": cat["match_dist"].to_numpy(float),
            "RA_TRUE": cat["ra_true"].to_numpy(float),
            "DEC_TRUE": cat["dec_true"].to_numpy(float),
            "MAG_TRUE": cat["mag_true"].to_numpy(float),
            "BIMODAL": cat["bimodal"].to_numpy(bool),
        }
    )


def _sources(f: Field) -> Table:
    t = f.truth
    return Table(
        {
            "RA": t["ra"].to_numpy(float),
            "DEC": t["dec"].to_numpy(float),
            "KIND": np.array(t["kind"].astype(str).tolist()),
            "Z_TRUE": t["z"].to_numpy(float),
            "WEIGHT": t["weight"].to_numpy(float),
            "FLUX_DET": t["flux_det"].to_numpy(float),
        }
    )
