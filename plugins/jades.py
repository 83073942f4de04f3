"""``jades``: a real survey from disk: catalog + per-filter mosaics, layout kept in TOML.

``hizkit bench --data jades:DIR`` reads the catalog of the directory's layout (JADES
v2.0 / v5.0, EPOCHS / galfind, DJA: ``plugins/layouts/*.toml``, detected from the file
names unless ``layout`` is given), labels from the photometric redshift (z >= ``z_threshold``
is high-z) or, for files written by ``hizkit simulate``, from the TRUTH extension
(``labels="truth"``), or not at all for a field to classify (``labels="none"``);
brown dwarfs from an ID list and/or the Hainline et al. (2024)
colour and compactness criteria; optional quality cuts (:mod:`hizkit.cuts`) with the count
left after each; and cutouts from the memory-mapped mosaics. Where all bands share one
pixel grid (JADES, EPOCHS) one position serves all bands and cutting is slicing; where they
do not (DJA) each band is cut at its own position and brought to a common angular grid
(block-summed when its pixels are an integer fraction of the output's, else resampled).
Cutouts are in nJy per pixel, NaN outside the mosaic or without coverage.

A layout is data: a new release is a new TOML file, not new code.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import tomllib

import hizkit
from hizkit import NIRCAM_BANDS, Dataset, HizkitError, progress
from hizkit.cuts import QualityCuts, describe

LAYOUTS = Path(__file__).parent / "layouts"
FLUX_TO_NJY = {"njy": 1.0, "ujy": 1e3, "microjy": 1e3, "jy": 1e9}
_SPEC = re.compile(r"^(?P<ext>[^:]+):(?P<name>[^\[\]]+)(?:\[(?P<index>\d+)\])?$")


def load_layout(name: str) -> dict[str, Any]:
    path = LAYOUTS / f"{name}.toml"
    if not path.exists():
        raise HizkitError(f"unknown layout '{name}'; known layouts: {', '.join(known_layouts())}")
    return tomllib.loads(path.read_text())


def known_layouts() -> list[str]:
    return sorted(p.stem for p in LAYOUTS.glob("*.toml"))


def _match(directory: Path, pattern: str, what: str, exclude: tuple[Path, ...] = ()) -> Path:
    """The one file in ``directory`` matching ``pattern`` (a glob)."""
    hits = sorted(p for p in directory.glob(pattern) if p.is_file() and p not in exclude)
    if not hits:
        raise HizkitError(f"{directory / pattern}: file not found ({what})")
    if len(hits) > 1:
        names = ", ".join(p.name for p in hits[:4])
        raise HizkitError(f"{directory}: several files match {pattern} ({what}): {names}")
    return hits[0]


def detect_layout(directory: Path) -> str:
    """The layout whose catalog file name is in ``directory`` (the most specific one
    when several match, e.g. jades_v5 over jades_v2 for a v5 file)."""
    found = []
    for name in known_layouts():
        lay = load_layout(name)
        hits = [p for p in directory.glob(lay["catalog"]) if p.is_file()]
        if hits:
            found.append((len(lay["catalog"].replace("*", "")), name))
    if not found:
        raise HizkitError(
            f"{directory}: no catalog of a known layout ({', '.join(known_layouts())}); "
            "name one with layout=..."
        )
    return max(found)[1]


def _open(path: Path):
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    if not path.exists():
        raise HizkitError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            # a truncated file only warns in astropy; here it is an error
            warnings.simplefilter("error", VerifyWarning)
            hdul = fits.open(path, memmap=not path.name.endswith(".gz"))
            len(hdul)  # read every header now, not lazily later
        return hdul
    except (OSError, ValueError, TypeError, EOFError, VerifyWarning) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HizkitError(
            f"{path}: not a readable FITS file, truncated or corrupt ({reason})"
        ) from None


def _hdu(hdul, ext: str, path: Path):
    """An HDU by name, by number, or by glob (the match is returned with it)."""
    names = [h.name for h in hdul]
    if ext.isdigit():
        if int(ext) >= len(hdul):
            raise HizkitError(f"{path}: no HDU {ext} (it has {len(hdul)})")
        return hdul[int(ext)], ""
    if any(c in ext for c in "*?["):
        hits = [n for n in names if fnmatch.fnmatch(n, ext.upper())]
        if len(hits) != 1:
            raise HizkitError(
                f"{path}: {'no' if not hits else 'several'} extension(s) matching {ext} "
                f"(it has {', '.join(names)})"
            )
        raw = str(hdul[hits[0]].header.get("EXTNAME", hits[0]))  # keeps the case
        return hdul[hits[0]], raw[len(ext.split("*")[0]) :]
    if ext.upper() not in names:
        raise HizkitError(f"{path}: no {ext} extension (it has {', '.join(names)})")
    return hdul[ext], ""


@dataclass
class _Table:
    """Column access to one FITS table: case-(in)sensitive names, vector indices."""

    hdu: Any
    path: Path
    case_insensitive: bool

    def column(self, name: str, index: int | None = None) -> np.ndarray:
        names = self.hdu.columns.names
        if name not in names and self.case_insensitive:
            lower = {n.lower(): n for n in names}
            name = lower.get(name.lower(), name)
        if name not in names:
            raise KeyError(name)
        values = np.asarray(self.hdu.data[name])
        values = values.astype(values.dtype.newbyteorder("="))  # FITS is big-endian
        if index is not None:
            if values.ndim != 2 or index >= values.shape[1]:
                raise HizkitError(
                    f"{self.path}: column {name} has no aperture index {index} "
                    f"(shape {values.shape})"
                )
            values = values[:, index]
        return values


class JadesSource(hizkit.DataSource):
    name = "jades"
    description = "JADES / EPOCHS / DJA catalog + mosaics from a directory (layouts in TOML)"
    test_params: ClassVar[dict] = {"labels": "truth", "cutout_size": 32}
    needs_location = True

    def __init__(
        self,
        layout: str = "auto",
        aperture: str | None = None,
        z_threshold: float = hizkit.Z_HIGH,
        labels: str = "photoz",
        cutout_size: int = 64,
        bands: tuple[str, ...] | list[str] = NIRCAM_BANDS,
        quality_cuts: dict[str, Any] | None = None,
        brown_dwarfs: str | None = None,
        brown_dwarf_colours: bool = False,
        brown_dwarf_max_radius: float = 0.1,
        bimodal_min_prob: float = 0.2,
        pixel_scale: float | None = None,
        errors: bool = False,
        mosaics: str | None = None,
    ) -> None:
        """``quality_cuts`` e.g. ``{"min_snr": 10, "max_pdf_width": 0.5}`` (see
        :class:`hizkit.cuts.QualityCuts`). ``brown_dwarfs``: a CSV or FITS table whose
        first column (or ``id``/``ID``) lists brown-dwarf IDs; ``brown_dwarf_colours`` adds
        sources meeting F277W-F444W > 1, F115W-F277W < 0 or F115W-F150W < 0, F444W < 28.5
        and a F444W half-light radius <= ``brown_dwarf_max_radius`` arcsec. A source is
        ``bimodal`` when its P(z) puts at least ``bimodal_min_prob`` on each side of the
        threshold (layouts with a P(z)). ``pixel_scale``: the cutouts' arcsec per pixel on
        per-band grids (default: the coarsest band's). ``errors``: also cut the ERR (or
        WHT) images into 1-sigma error cutouts (``Dataset.errors``, nJy per pixel).
        ``mosaics`` overrides the layout's mosaic file pattern ({band}/{BAND} = filter)."""
        self.layout = layout
        self.aperture = aperture
        self.z_threshold = z_threshold
        self.labels = labels
        self.cutout_size = cutout_size
        self.bands = tuple(bands)
        self.quality_cuts = quality_cuts
        self.brown_dwarfs = brown_dwarfs
        self.brown_dwarf_colours = brown_dwarf_colours
        self.brown_dwarf_max_radius = brown_dwarf_max_radius
        self.bimodal_min_prob = bimodal_min_prob
        self.pixel_scale = pixel_scale
        self.errors = errors
        self.mosaics = mosaics

    # ------------------------------------------------------------------ catalog

    def read_catalog(self, directory: Path, lay: dict[str, Any]) -> pd.DataFrame:
        """The catalog in hizkit's columns (nJy, arcsec), labelled, with photo-z."""
        path = _match(directory, lay["catalog"], "catalog")
        cols = lay["columns"]
        aperture = self.aperture or lay["default_aperture"]
        if aperture not in lay["apertures"]:
            raise HizkitError(
                f"aperture {aperture!r} not in layout {lay['name']}: "
                f"choose from {', '.join(lay['apertures'])}"
            )
        ap = {"aperture": aperture, **lay["apertures"][aperture]}
        insensitive = bool(lay.get("case_insensitive", False))
        with _open(path) as hdul:
            tables: dict[str, tuple[_Table, pd.Index]] = {}

            def table(ext: str) -> tuple[_Table, pd.Index]:
                if ext not in tables:
                    hdu, _ = _hdu(hdul, ext, path)
                    t = _Table(hdu, path, insensitive)
                    try:
                        key = t.column(lay["key"])
                    except KeyError:
                        raise HizkitError(f"{path}[{ext}]: no key column {lay['key']}") from None
                    tables[ext] = (t, pd.Index(key))
                return tables[ext]

            def column(spec: str, what: str, **fmt: Any) -> np.ndarray:
                m = _SPEC.match(spec.format(**ap, **fmt))
                if m is None:
                    raise HizkitError(f"layout {lay['name']}: bad column spec {spec!r}")
                t, key = table(m["ext"])
                index = None if m["index"] is None else int(m["index"])
                try:
                    values = t.column(m["name"], index)
                except KeyError:
                    raise HizkitError(f"{path}: {what} (no column {m['name']})") from None
                if key is not main_key:
                    values = pd.Series(values, index=key).reindex(main_key).to_numpy()
                return values

            main_key = table(_SPEC.match(cols["id"])["ext"])[1]
            cat = pd.DataFrame(
                {
                    "id": column(cols["id"], "no IDs"),
                    "ra": column(cols["ra"], "no RA").astype(float),
                    "dec": column(cols["dec"], "no Dec").astype(float),
                }
            )
            to_njy = FLUX_TO_NJY[lay["flux_unit"].lower()]
            to_arcsec = lay.get("radius_pixel_scale", 1.0) if lay["radius_unit"] == "pixel" else 1
            for band in self.bands:
                names = {"BAND": band.upper(), "band": band.lower()}
                missing = f"band {band} missing"
                cat[hizkit.flux_col(band)] = column(cols["flux"], missing, **names) * to_njy
                cat[hizkit.fluxerr_col(band)] = column(cols["flux_err"], missing, **names) * to_njy
                cat[hizkit.radius_col(band)] = column(cols["radius"], missing, **names) * to_arcsec
            for flag in ("flag_star", "flag_bright_star"):
                if flag in cols:
                    cat[flag] = column(cols[flag], f"no {flag}").astype(bool)
            truth = _hdu(hdul, "TRUTH", path)[0] if "TRUTH" in hdul else None
            if truth is not None:
                t = _Table(truth, path, False)
                key = pd.Index(t.column("ID"))
                for src, dst in (("Z_TRUE", "z_true"), ("LABEL", "label_true")):
                    cat[dst] = pd.Series(t.column(src), index=key).reindex(cat["id"]).to_numpy()
                cat["label_true"] = cat["label_true"].astype(str).str.strip()
                if "BIMODAL" in truth.columns.names:
                    flag = pd.Series(t.column("BIMODAL"), index=key).reindex(cat["id"])
                    cat["bimodal"] = flag.to_numpy(bool)
            photoz = self._photoz(directory, path, hdul, lay, cat["id"].to_numpy())
        for key, values in photoz.items():
            cat[key] = values
        return self._label(cat, path, lay)

    def _photoz(self, directory, path, hdul, lay, ids) -> dict[str, np.ndarray]:
        """z_phot, z_l68, z_u68, chi2_phot (and bimodal from a P(z)) where the layout has them."""
        pz = lay.get("photoz")
        if not pz:
            return {}
        if "file" in pz:
            try:
                pz_path = _match(directory, pz["file"], "photometric redshifts")
            except HizkitError:
                return {}
            with _open(pz_path) as pz_hdul:
                return self._photoz_from(pz_hdul, pz_path, pz, ids, lay)
        return self._photoz_from(hdul, path, pz, ids, lay)

    def _photoz_from(self, hdul, path, pz, ids, lay) -> dict[str, np.ndarray]:
        exts = [h.name for h in hdul]
        ext = pz["ext"]
        if not ext.isdigit() and not any(fnmatch.fnmatch(n, ext.upper()) for n in exts):
            return {}
        hdu, suffix = _hdu(hdul, ext, path)
        t = _Table(hdu, path, bool(lay.get("case_insensitive", False)))
        key = pd.Index(t.column(pz["key"]))
        out: dict[str, np.ndarray] = {}
        for name, col in (("z_phot", "z"), ("z_l68", "z_l68"), ("z_u68", "z_u68")):
            if col in pz:
                try:
                    values = t.column(pz[col].format(templates=suffix))
                except KeyError:
                    continue
                out[name] = pd.Series(values, index=key).reindex(ids).to_numpy(float)
        if "chi2" in pz:
            try:
                values = t.column(pz["chi2"].format(templates=suffix))
                out["chi2_phot"] = pd.Series(values, index=key).reindex(ids).to_numpy(float)
            except KeyError:
                pass
        if "pdf" in pz and pz["pdf"] in hdu.columns.names:
            pdf = pd.DataFrame(t.column(pz["pdf"]), index=key).reindex(ids).to_numpy(float)
            grid = np.asarray(t.column(pz["pdf_grid"]), dtype=float)
            grid = grid[0] if grid.ndim == 2 else grid
            out["bimodal"] = bimodal_from_pdf(grid, pdf, self.z_threshold, self.bimodal_min_prob)
        return out

    def _label(self, cat: pd.DataFrame, path: Path, lay: dict[str, Any]) -> pd.DataFrame:
        if self.labels == "truth":
            if "label_true" not in cat:
                raise HizkitError(
                    f"{path}: labels='truth' needs a TRUTH extension (simulated data)"
                )
            cat["z"] = cat["z_true"]
            cat["label"] = cat["label_true"]
            return cat
        if self.labels == "none":  # a field to classify: no labels needed, photo-z kept
            if "z_phot" in cat:
                cat["z"] = cat["z_phot"]
            return cat
        if self.labels != "photoz":
            raise HizkitError(
                f"jades: labels must be 'photoz', 'truth' or 'none', got {self.labels!r}"
            )
        if "z_phot" not in cat:
            pz = lay.get("photoz", {})
            raise HizkitError(
                f"{path}: no photometric redshifts ({pz.get('ext', '?')} column "
                f"{pz.get('z', '?')}) to label from"
            )
        cat["z"] = cat["z_phot"]
        label = np.where(cat["z"] >= self.z_threshold, "highz", "lowz").astype(object)
        label[~np.isfinite(cat["z"].to_numpy(float))] = None
        bd = np.zeros(len(cat), dtype=bool)
        if self.brown_dwarfs:
            bd |= np.isin(cat["id"].to_numpy(), read_id_list(Path(self.brown_dwarfs)))
        if self.brown_dwarf_colours:
            bd |= brown_dwarf_candidates(cat, self.brown_dwarf_max_radius)
        label[bd] = "brown_dwarf"
        cat["label"] = label
        return cat

    # ------------------------------------------------------------------ cutouts

    def cutouts(
        self, directory: Path, lay: dict[str, Any], cat: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray | None, float]:
        """(N, bands, S, S) float32 cutouts in nJy/pixel, their 1-sigma errors when
        ``errors`` (else None), and the cutouts' pixel scale in arcsec."""
        mos = lay["mosaics"]
        pattern = self.mosaics or mos["file"]
        catalogs = tuple(directory.glob(lay["catalog"]))
        files = {}
        for band in self.bands:
            names = {"band": band.lower(), "BAND": band.upper()}
            files[band] = _match(directory, pattern.format(**names), f"{band} mosaic", catalogs)
        per_band = mos.get("grid", "common") == "per_band"
        s = self.cutout_size
        n = len(cat)
        out = np.empty((n, len(self.bands), s, s), dtype=np.float32)
        errs = np.full_like(out, np.nan) if self.errors else None
        ref = None
        # every band's WCS, read once; the output grid is the coarsest band's pixels
        # (per-band layouts) or the common grid
        wcses = {}
        for band in self.bands:
            with _open(files[band]) as hdul:
                wcses[band] = _wcs(_hdu(hdul, mos["science"], files[band])[0].header, files[band])
        scales = {band: _scale(w) for band, w in wcses.items()}
        out_scale = self.pixel_scale or max(scales.values())
        ra, dec = cat["ra"].to_numpy(), cat["dec"].to_numpy()
        for b, band in enumerate(progress.track(self.bands, "cutting mosaics")):
            path = files[band]
            if path.name.endswith(".gz"):
                progress.log(
                    f"{path.name} is gzipped: read into memory (gunzip for memory mapping)"
                )
            with _open(path) as hdul:
                sci, _ = _hdu(hdul, mos["science"], path)
                wcs = wcses[band]
                if not per_band:
                    if ref is None:
                        ref = wcs
                    elif not _same_grid(wcs, ref):
                        raise HizkitError(
                            f"{path}: its WCS differs from the first band's; this layout "
                            f"({lay['name']}) expects all bands on one pixel grid"
                        )
                factor = _to_njy_per_pixel(sci.header, path, mos["unit"])
                error = self._error_image(directory, hdul, mos, band, path)
                ratio = out_scale / scales[band]
                k = round(ratio)
                if abs(ratio - k) > 1e-3:
                    raise HizkitError(
                        f'{path}: pixel scale {scales[band]:.4f}" is not an integer fraction of '
                        f"the cutouts' {out_scale:.4f}\"; choose pixel_scale accordingly"
                    )
                x, y = wcs.wcs_world2pix(ra, dec, 0)
                # the source lands within half an output pixel of the cutout centre, which
                # for an even size lies between pixels s/2 - 1 and s/2 (as the simulator
                # draws); a k-times finer grid is cut in whole k x k blocks of it
                x0 = k * np.floor((x - (k - 1) / 2) / k + 1 - s / 2).astype(int)
                y0 = k * np.floor((y - (k - 1) / 2) / k + 1 - s / 2).astype(int)
                data = sci.data
                if k == 1:  # the common case: straight into the output, no copy
                    _gather(data, x0, y0, s, error, out[:, b], factor)
                else:
                    tiles = np.empty((n, k * s, k * s), dtype=np.float32)
                    _gather(data, x0, y0, k * s, error, tiles, factor)
                    out[:, b] = block_sum(tiles, k)
                if errs is not None and error is not None:
                    var = np.empty((n, k * s, k * s), dtype=np.float32)
                    _gather(error, x0, y0, k * s, error, var, factor, square=True)
                    errs[:, b] = np.sqrt(block_sum(var, k))
        return out, errs, float(out_scale)

    def _error_image(self, directory, hdul, mos, band, path):
        """The 1-sigma error image in the science image's units, or None."""
        names = [h.name for h in hdul]
        if mos.get("error") and mos["error"].upper() in names:
            return hdul[mos["error"]].data
        if mos.get("weight") and mos["weight"].upper() in names:
            w = np.asarray(hdul[mos["weight"]].data, dtype=np.float32)
            with np.errstate(divide="ignore"):
                return np.where(w > 0, 1 / np.sqrt(w), 0.0)
        if mos.get("weight_file"):
            names = {"band": band.lower(), "BAND": band.upper()}
            try:
                wpath = _match(directory, mos["weight_file"].format(**names), f"{band} weight")
            except HizkitError:
                return None
            with _open(wpath) as whdul:
                w = np.asarray(whdul[0].data, dtype=np.float32)
            with np.errstate(divide="ignore"):
                return np.where(w > 0, 1 / np.sqrt(w), 0.0)
        return None

    def load(self, location: str | None = None) -> Dataset:
        return self.load_cutouts(location, self.load_catalog(location))

    def load_catalog(self, location: str | None = None) -> Dataset:
        """The labelled catalog after the quality cuts, without cutouts."""
        directory = self._directory(location)
        cuts = QualityCuts.from_dict(self.quality_cuts)
        name = detect_layout(directory) if self.layout == "auto" else self.layout
        lay = load_layout(name)
        cat = self.read_catalog(directory, lay)
        meta: dict[str, Any] = {
            "source": "jades",
            "location": str(directory),
            "layout": lay["name"],
            "aperture": self.aperture or lay["default_aperture"],
        }
        if cuts.active:
            only = (cat["label"] != "brown_dwarf").to_numpy() if "label" in cat else None
            keep, counts = cuts.apply(cat, only=only)
            progress.log("quality cuts: " + describe(counts))
            meta["cuts"] = counts
            cat = cat[keep].reset_index(drop=True)
        scale = {"pixel_scale": self.pixel_scale} if self.pixel_scale else {}
        return Dataset(cat, self.bands, meta=meta, **scale)

    def load_cutouts(self, location: str | None, part: Dataset) -> Dataset:
        """``part`` with its cutouts (and error cutouts when ``errors``) cut from the mosaics."""
        directory = self._directory(location)
        lay = load_layout(part.meta.get("layout") or detect_layout(directory))
        cut, err, pixel_scale = self.cutouts(directory, lay, part.catalog)
        return part.replace(cutouts=cut, errors=err, pixel_scale=pixel_scale)

    @staticmethod
    def _directory(location: str | None) -> Path:
        if not location:
            raise HizkitError("jades needs a directory: --data jades:DIR")
        directory = Path(location)
        if not directory.is_dir():
            raise HizkitError(f"{directory}: no such directory")
        return directory


# ---------------------------------------------------------------------- helpers


def bimodal_from_pdf(
    grid: np.ndarray, pdf: np.ndarray, threshold: float, min_prob: float
) -> np.ndarray:
    """True where P(z) holds at least ``min_prob`` on each side of ``threshold``."""
    pdf = np.nan_to_num(np.asarray(pdf, dtype=float))
    total = pdf.sum(axis=1)
    low = pdf[:, grid < threshold].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = low / total
    return (total > 0) & (frac >= min_prob) & (1 - frac >= min_prob)


def brown_dwarf_candidates(cat: pd.DataFrame, max_radius: float = 0.1) -> np.ndarray:
    """Hainline et al. (2024) criteria: F277W-F444W > 1 and (F115W-F277W < 0 or
    F115W-F150W < 0), F444W < 28.5 AB, and compact (F444W half-light radius)."""
    mag = {
        b: hizkit.limit_magnitudes(cat[hizkit.flux_col(b)], cat[hizkit.fluxerr_col(b)])
        for b in ("F115W", "F150W", "F277W", "F444W")
    }
    with np.errstate(invalid="ignore"):
        red = mag["F277W"] - mag["F444W"] > 1.0
        blue = (mag["F115W"] - mag["F277W"] < 0) | (mag["F115W"] - mag["F150W"] < 0)
        bright = hizkit.ab_mag(cat[hizkit.flux_col("F444W")].to_numpy(float)) < 28.5
        compact = cat[hizkit.radius_col("F444W")].to_numpy(float) <= max_radius
    return np.asarray(red & blue & bright & compact)


def read_id_list(path: Path) -> np.ndarray:
    """IDs from a CSV (column ``id``/``ID`` or the first) or a FITS table."""
    if not path.exists():
        raise HizkitError(f"{path}: brown-dwarf ID list not found")
    if path.suffix.lower() in (".fits", ".fit", ".fits.gz"):
        with _open(path) as hdul:
            table = next((h for h in hdul if getattr(h, "columns", None) is not None), None)
            if table is None:
                raise HizkitError(f"{path}: no table with brown-dwarf IDs")
            names = table.columns.names
            col = next((c for c in names if c.lower() in ("id", "number", "ident")), names[0])
            return np.asarray(table.data[col])
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise HizkitError(f"{path}: not a readable CSV ({exc})") from None
    col = next((c for c in frame.columns if str(c).lower() in ("id", "number", "ident")), None)
    return frame[col if col is not None else frame.columns[0]].to_numpy()


def _gather(
    image: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    size: int,
    error: np.ndarray | None,
    out: np.ndarray,
    factor: float = 1.0,
    square: bool = False,
    strip_rows: int = 2048,
) -> None:
    """Fill ``out`` (N, size, size) with the windows of ``image`` whose lower-left corners
    are (x0, y0), times ``factor`` (then squared when ``square``); NaN off the image and
    where ``error`` says there is no coverage (error <= 0 or not finite).

    Sources inside the image are sorted by row and cut strip by strip: each strip of the
    (memory-mapped, big-endian) mosaic is read once, sequentially, into native floats
    with the unit factor and the coverage mask applied in the same pass, and each window
    is then one contiguous-row slice copy. Sources at an edge get a NaN-padded window.
    """
    h, w = image.shape
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + size <= w) & (y0 + size <= h)
    idx = np.flatnonzero(inside)
    idx = idx[np.argsort(y0[idx], kind="stable")]
    rows = max(strip_rows, 2 * size)

    def pixels(r0: int, r1: int, c0: int = 0, c1: int = w) -> np.ndarray:
        block = np.array(image[r0:r1, c0:c1], dtype=np.float32)
        if factor != 1.0:
            block *= np.float32(factor)
        if square:
            block *= block
        if error is not None:
            e = np.asarray(error[r0:r1, c0:c1])
            block[~(np.isfinite(e) & (e > 0))] = np.nan
        return block

    start = 0
    while start < idx.size:
        r0 = int(y0[idx[start]])
        r1 = min(r0 + rows, h)
        stop = start + int(np.searchsorted(y0[idx[start:]], r1 - size, side="right"))
        block = pixels(r0, r1)
        # one slice copy per source: measured 5x faster than a fancy-index gather from a
        # sliding-window view, which copies element by element through a temporary
        for i, y, x in zip(
            idx[start:stop].tolist(), y0[idx[start:stop]].tolist(), x0[idx[start:stop]].tolist()
        ):
            out[i] = block[y - r0 : y - r0 + size, x : x + size]
        start = stop
    for i in np.flatnonzero(~inside):
        out[i] = np.nan
        ya, xa = max(y0[i], 0), max(x0[i], 0)
        yb, xb = min(y0[i] + size, h), min(x0[i] + size, w)
        if ya < yb and xa < xb:  # else entirely off the image: all NaN
            out[i, ya - y0[i] : yb - y0[i], xa - x0[i] : xb - x0[i]] = pixels(ya, yb, xa, xb)


def block_sum(tiles: np.ndarray, k: int) -> np.ndarray:
    """Sum k x k pixel blocks of ``(N, k*S, k*S)`` tiles: flux-conserving rebinning of a
    finer grid onto the cutouts' (a block with a missing pixel is missing)."""
    if k == 1:
        return tiles
    n, h, w = tiles.shape
    return tiles.reshape(n, h // k, k, w // k, k).sum(axis=(2, 4))


def _wcs(header, path: Path):
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:  # astropy raises several kinds for a broken WCS
            raise HizkitError(f"{path}: unreadable WCS ({exc})") from None
    if not wcs.has_celestial:
        raise HizkitError(f"{path}: no celestial WCS in the science header")
    return wcs.celestial


def _scale(wcs) -> float:
    """Arcsec per pixel of a celestial WCS."""
    return float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600)


def _same_grid(a, b) -> bool:
    return (
        np.allclose(a.wcs.crval, b.wcs.crval, atol=1e-9)
        and np.allclose(a.wcs.crpix, b.wcs.crpix)
        and np.allclose(a.pixel_scale_matrix, b.pixel_scale_matrix)
    )


def _to_njy_per_pixel(header, path: Path, unit: str) -> float:
    """The factor from the image's pixel values to nJy per pixel."""
    if unit == "10nJy":
        return 10.0
    if unit.lower() in FLUX_TO_NJY:
        return FLUX_TO_NJY[unit.lower()]
    bunit = str(header.get("BUNIT", "MJy/sr")).strip().lower()
    if bunit not in ("mjy/sr", "mjy sr-1", "mjy / sr"):
        raise HizkitError(f"{path}: BUNIT {header.get('BUNIT')!r}; expected MJy/sr")
    pixar = header.get("PIXAR_SR")
    if pixar is None:
        raise HizkitError(f"{path}: no PIXAR_SR keyword to convert MJy/sr to nJy")
    return float(pixar) * 1e15  # 1 MJy = 1e6 Jy = 1e15 nJy


@hizkit.hookimpl
def hizkit_register_data_sources() -> list[type[hizkit.DataSource]]:
    return [JadesSource]
