"""``jades``: a real survey from disk, JADES v2.0 layout (catalog + per-filter mosaics).

``hizkit bench --data jades:DIR`` reads the multi-extension catalog (extensions joined on
ID; aperture chosen by ``aperture``, fluxes in nJy), labels from the photometric redshift
(z >= ``z_threshold`` is high-z) or, for files written by ``hizkit simulate``, from the
TRUTH extension (``labels="truth"``), and 64x64 cutouts from the memory-mapped mosaics.
The column names live in ``plugins/layouts/*.toml``; a new release is a new mapping.

This first version reads the JADES v2.0 layout on one common pixel grid (slicing, no
resampling). EPOCHS and DJA layouts, quality cuts and external brown-dwarf lists are
still to come (issue #4).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import tomllib

import hizkit
from hizkit import NIRCAM_BANDS, Dataset, HizkitError, progress

LAYOUTS = Path(__file__).parent / "layouts"


def load_layout(name: str) -> dict[str, Any]:
    path = LAYOUTS / f"{name}.toml"
    if not path.exists():
        known = sorted(p.stem for p in LAYOUTS.glob("*.toml"))
        raise HizkitError(f"unknown layout '{name}'; known layouts: {', '.join(known)}")
    return tomllib.loads(path.read_text())


def _open(path: Path):
    from astropy.io import fits

    if not path.exists():
        raise HizkitError(f"{path}: file not found")
    from astropy.io.fits.verify import VerifyWarning

    try:
        with warnings.catch_warnings():
            # a truncated file only warns in astropy; here it is an error
            warnings.simplefilter("error", VerifyWarning)
            hdul = fits.open(path, memmap=not path.name.endswith(".gz"))
            len(hdul)  # read every header now, not lazily later
        return hdul
    except (OSError, ValueError, TypeError, VerifyWarning) as exc:
        reason = str(exc).splitlines()[0]
        raise HizkitError(
            f"{path}: not a readable FITS file, truncated or corrupt ({reason})"
        ) from None


def _table(hdul, ext: str, path: Path) -> pd.DataFrame:
    from astropy.table import Table

    if ext not in hdul:
        names = [h.name for h in hdul]
        raise HizkitError(f"{path}: no {ext} extension (it has {', '.join(names)})")
    table = Table.read(hdul[ext])
    cols = [c for c in table.colnames if len(table[c].shape) <= 1]
    return table[cols].to_pandas()


class JadesSource(hizkit.DataSource):
    name = "jades"
    description = "JADES v2.0 catalog + mosaics from a directory (layout kept in TOML)"
    test_params: ClassVar[dict] = {"labels": "truth", "cutout_size": 32}
    needs_location = True

    def __init__(
        self,
        layout: str = "jades_v2",
        aperture: str = "CIRC2",
        z_threshold: float = hizkit.Z_HIGH,
        labels: str = "photoz",
        cutout_size: int = 64,
        bands: tuple[str, ...] | list[str] = NIRCAM_BANDS,
    ) -> None:
        self.layout = layout
        self.aperture = aperture
        self.z_threshold = z_threshold
        self.labels = labels
        self.cutout_size = cutout_size
        self.bands = tuple(bands)

    # ------------------------------------------------------------------ catalog

    def read_catalog(self, directory: Path, lay: dict[str, Any]) -> pd.DataFrame:
        cols = lay["columns"]
        path = directory / lay["catalog"]
        with _open(path) as hdul:
            pos = _table(hdul, cols["position_ext"], path)
            ext = cols["flux_ext"].get(self.aperture)
            if ext is None:
                raise HizkitError(
                    f"aperture {self.aperture!r} not in layout {lay['name']}: "
                    f"choose from {', '.join(cols['flux_ext'])}"
                )
            flux = _table(hdul, ext, path)
            size = _table(hdul, cols["radius_ext"], path)
            photoz = _table(hdul, cols["photoz_ext"], path) if cols["photoz_ext"] in hdul else None
            truth = _table(hdul, "TRUTH", path) if "TRUTH" in hdul else None
        cat = pd.DataFrame(
            {
                "id": pos[cols["id"]].to_numpy(),
                "ra": pos[cols["ra"]].to_numpy(),
                "dec": pos[cols["dec"]].to_numpy(),
            }
        )
        for band in self.bands:
            name = cols["flux"].format(BAND=band.upper(), aperture=self.aperture)
            err = cols["flux_err"].format(BAND=band.upper(), aperture=self.aperture)
            rad = cols["radius"].format(BAND=band.upper())
            for col, frame in ((name, flux), (err, flux), (rad, size)):
                if col not in frame.columns:
                    raise HizkitError(f"{path}: band {band} missing (no column {col})")
            cat[hizkit.flux_col(band)] = flux[name].to_numpy(float)
            cat[hizkit.fluxerr_col(band)] = flux[err].to_numpy(float)
            cat[hizkit.radius_col(band)] = size[rad].to_numpy(float)
        if photoz is not None and cols["z"] in photoz.columns:
            z = photoz.set_index(cols["id"])[cols["z"]]
            cat["z_phot"] = z.reindex(cat["id"]).to_numpy(float)
        if self.labels == "truth":
            if truth is None:
                raise HizkitError(
                    f"{path}: labels='truth' needs a TRUTH extension (simulated data)"
                )
            t = truth.set_index("ID")
            cat["z"] = t["Z_TRUE"].reindex(cat["id"]).to_numpy(float)
            cat["label"] = t["LABEL"].reindex(cat["id"]).astype(str).to_numpy()
            if "BIMODAL" in t:
                cat["bimodal"] = t["BIMODAL"].reindex(cat["id"]).to_numpy(bool)
        elif self.labels == "photoz":
            if "z_phot" not in cat:
                raise HizkitError(
                    f"{path}: no photometric redshifts ({cols['photoz_ext']} "
                    f"column {cols['z']}) to label from"
                )
            cat["z"] = cat["z_phot"]
            cat["label"] = np.where(cat["z"] >= self.z_threshold, "highz", "lowz")
            cat.loc[~np.isfinite(cat["z"]), "label"] = None
        else:
            raise HizkitError(f"jades: labels must be 'photoz' or 'truth', got {self.labels!r}")
        return cat

    # ------------------------------------------------------------------ cutouts

    def cutouts(
        self, directory: Path, lay: dict[str, Any], cat: pd.DataFrame
    ) -> tuple[np.ndarray, float]:
        """(N, bands, S, S) float32 in nJy/pixel (NaN outside the mosaic or without
        coverage) and the common pixel scale in arcsec."""
        from astropy.wcs import WCS

        s = self.cutout_size
        n = len(cat)
        out = np.full((n, len(self.bands), s, s), np.nan, dtype=np.float32)
        ref = None
        for b, band in enumerate(progress.track(self.bands, "cutting mosaics")):
            path = directory / lay["mosaic"].format(band_lower=band.lower(), BAND=band.upper())
            with _open(path) as hdul:
                if lay["science_ext"] not in hdul:
                    raise HizkitError(f"{path}: no {lay['science_ext']} extension")
                sci = hdul[lay["science_ext"]]
                wcs = WCS(sci.header)
                if ref is None:
                    ref = wcs
                    x, y = wcs.wcs_world2pix(cat["ra"].to_numpy(), cat["dec"].to_numpy(), 0)
                    # the source lands within half a pixel of the cutout centre, which for
                    # an even size lies between pixels s/2 - 1 and s/2 (as the simulator draws)
                    x0 = np.floor(x + 1 - s / 2).astype(int)
                    y0 = np.floor(y + 1 - s / 2).astype(int)
                elif not (
                    np.allclose(wcs.wcs.crval, ref.wcs.crval, atol=1e-9)
                    and np.allclose(wcs.wcs.crpix, ref.wcs.crpix)
                    and np.allclose(wcs.pixel_scale_matrix, ref.pixel_scale_matrix)
                ):
                    raise HizkitError(
                        f"{path}: its WCS differs from the first band's; "
                        "mosaics on different grids are not supported yet"
                    )
                scale = _to_njy_per_pixel(sci.header, path)
                data = sci.data
                err = hdul[lay["error_ext"]].data if lay["error_ext"] in hdul else None
                h, w = data.shape
                # sources whose cutout lies inside the mosaic: one vectorised gather from a
                # sliding-window view of the memory map; the rest (edges) one by one
                inside = (x0 >= 0) & (y0 >= 0) & (x0 + s <= w) & (y0 + s <= h)
                idx = np.flatnonzero(inside)
                windows = np.lib.stride_tricks.sliding_window_view(data, (s, s))
                # no-coverage map once per band (1 byte per pixel), gathered like the data
                holes = None if err is None else ~(np.isfinite(err) & (np.asarray(err) > 0))
                hole_windows = (
                    None
                    if holes is None
                    else np.lib.stride_tricks.sliding_window_view(holes, (s, s))
                )
                for chunk in np.array_split(idx, max(1, len(idx) // 2048)):
                    tile = np.asarray(windows[y0[chunk], x0[chunk]], dtype=np.float32)
                    tile *= np.float32(scale)
                    if hole_windows is not None:
                        tile[hole_windows[y0[chunk], x0[chunk]]] = np.nan
                    out[chunk, b] = tile
                for i in np.flatnonzero(~inside):
                    ya, xa = max(y0[i], 0), max(x0[i], 0)
                    yb, xb = min(y0[i] + s, h), min(x0[i] + s, w)
                    if ya >= yb or xa >= xb:
                        continue  # entirely off the mosaic: all NaN
                    tile = np.array(data[ya:yb, xa:xb], dtype=np.float32) * scale
                    if err is not None:
                        e = np.asarray(err[ya:yb, xa:xb])
                        tile[~(np.isfinite(e) & (e > 0))] = np.nan
                    out[i, b, ya - y0[i] : yb - y0[i], xa - x0[i] : xb - x0[i]] = tile
        pixel_scale = float(np.sqrt(abs(np.linalg.det(ref.pixel_scale_matrix))) * 3600)
        return out, pixel_scale

    def load(self, location: str | None = None) -> Dataset:
        if not location:
            raise HizkitError("jades needs a directory: --data jades:DIR")
        directory = Path(location)
        if not directory.is_dir():
            raise HizkitError(f"{directory}: no such directory")
        lay = load_layout(self.layout)
        cat = self.read_catalog(directory, lay)
        cut, pixel_scale = self.cutouts(directory, lay, cat)
        return Dataset(
            cat,
            self.bands,
            pixel_scale,
            cut,
            meta={
                "source": "jades",
                "location": str(directory),
                "layout": lay["name"],
                "aperture": self.aperture,
            },
        )


def _to_njy_per_pixel(header, path: Path) -> float:
    unit = str(header.get("BUNIT", "MJy/sr")).strip().lower()
    if unit not in ("mjy/sr", "mjy sr-1", "mjy / sr"):
        raise HizkitError(f"{path}: BUNIT {header.get('BUNIT')!r}; expected MJy/sr")
    pixar = header.get("PIXAR_SR")
    if pixar is None:
        raise HizkitError(f"{path}: no PIXAR_SR keyword to convert MJy/sr to nJy")
    return float(pixar) * 1e15  # 1 MJy = 1e6 Jy = 1e15 nJy


@hizkit.hookimpl
def hizkit_register_data_sources() -> list[type[hizkit.DataSource]]:
    return [JadesSource]
