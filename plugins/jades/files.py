"""Reading the survey's files: FITS opened safely (truncated or corrupt files are one-line
errors), HDUs by name, number or glob, table columns with their units, and the flux
units hizkit converts from (every catalog flux ends in nJy; flux-density units are parsed
by :func:`hizkit.layouts.flux_unit_to_njy`, which a layout is checked with)."""

from __future__ import annotations

import fnmatch
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hizkit import HizkitError

#: PIXAR_SR is trusted only within this fraction of the WCS pixel area
PIXAR_TOLERANCE = 0.03
_SURFACE = re.compile(r"^\s*MJy\s*(?:/|\s|\.)\s*sr(?:\s*(?:\^|\*\*)?\s*-?1)?\s*$", re.IGNORECASE)
_ARCSEC = {"arcsec", "arcsecond", "arcseconds", "asec", '"'}
_PIXEL = {"pix", "pixel", "pixels", "px"}
#: a NIRCam/HST/MIRI filter name inside a file name (F444W, f150w, f444W, F850LP, F162M)


def is_surface_brightness(unit: str | None) -> bool:
    """True for MJy/sr spelled in any of the usual ways."""
    return unit is not None and _SURFACE.match(str(unit)) is not None


def _match(directory: Path, pattern: str, what: str, exclude: tuple[Path, ...] = ()) -> Path:
    """The one file in ``directory`` matching ``pattern`` (a glob)."""
    hits = sorted(p for p in directory.glob(pattern) if p.is_file() and p not in exclude)
    if not hits:
        raise HizkitError(f"{directory / pattern}: file not found ({what})")
    if len(hits) > 1:
        names = ", ".join(p.name for p in hits[:4])
        raise HizkitError(f"{directory}: several files match {pattern} ({what}): {names}")
    return hits[0]


def _open(path: Path):
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning
    from astropy.utils.exceptions import AstropyUserWarning

    if not path.exists():
        raise HizkitError(f"{path}: file not found")
    if path.name.endswith(".gz"):
        _check_gzip(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            warnings.simplefilter("error", VerifyWarning)  # a subclass: this filter first
            hdul = fits.open(path, memmap=not path.name.endswith(".gz"))
            len(hdul)  # read every header now, not lazily later
    except (OSError, ValueError, TypeError, EOFError, VerifyWarning) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HizkitError(
            f"{path}: not a readable FITS file, truncated or corrupt ({reason})"
        ) from None
    for w in caught:
        if "truncated" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif short := _short_by(hdul, path):
            # astropy only warns about a truncated file; here it is an error (a file
            # lacking only the padding of its last block is whole and read)
            hdul.close()
            raise HizkitError(f"{path}: not a readable FITS file, truncated or corrupt ({short})")
    return hdul


def _short_by(hdul, path: Path) -> str:
    """Why ``path`` is truncated: an HDU whose data (unpadded) runs past the end of
    the file; "" when every HDU's data is whole."""
    if path.name.endswith(".gz"):
        return ""  # sizes are of the compressed file; _check_gzip has checked it
    size = path.stat().st_size
    for i, hdu in enumerate(hdul):
        h = hdu.header
        naxis = int(h.get("NAXIS", 0))
        pixels = int(np.prod([int(h.get(f"NAXIS{k}", 0)) for k in range(1, naxis + 1)]))
        nbytes = (
            abs(int(h.get("BITPIX", 8)))
            // 8
            * int(h.get("GCOUNT", 1))
            * (int(h.get("PCOUNT", 0)) + (pixels if naxis else 0))
        )
        end = hdul.fileinfo(i)["datLoc"] + nbytes
        if end > size:
            name = h.get("EXTNAME", f"HDU {i}")
            return f"{name} needs {end} bytes, the file has {size}"
    return ""


#: (what, file) already reported: a field read in chunks warns once per file
_WARNED: set[tuple[str, str]] = set()

#: gzip files found whole: (path, size, mtime) -> True
_GZIP_OK: dict[tuple[str, int, int], bool] = {}


def _check_gzip(path: Path) -> None:
    """A truncated or corrupt ``.fits.gz`` is an error naming the file: astropy reads
    such a file silently up to the damage (whole HDUs just vanish), so the stream is
    checked to its end and its CRC (once per file version, in 16 MiB steps)."""
    import gzip
    import zlib

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _GZIP_OK:
        return
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(16 << 20):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HizkitError(
            f"{path}: a truncated or corrupt gzip file ({reason}); download it again"
        ) from None
    _GZIP_OK[key] = True


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
    """Column access to one FITS table: case-(in)sensitive names, vector indices, units."""

    hdu: Any
    path: Path
    case_insensitive: bool

    def resolve(self, name: str) -> str:
        names = self.hdu.columns.names
        if name not in names and self.case_insensitive:
            lower = {n.lower(): n for n in names}
            name = lower.get(name.lower(), name)
        if name not in names:
            raise KeyError(name)
        return name

    def unit(self, name: str) -> str | None:
        """The column's TUNIT, or None when the file states none."""
        unit = self.hdu.columns[self.resolve(name)].unit
        return str(unit).strip() if unit not in (None, "") and str(unit).strip() else None

    def column(self, name: str, index: int | None = None) -> np.ndarray:
        name = self.resolve(name)
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


def _unique_index(values: np.ndarray, where: str, name: str) -> pd.Index:
    """The key column as an index to join on; a repeated key cannot be joined."""
    index = pd.Index(values)
    if not index.is_unique:
        repeated = index[index.duplicated()][:3].tolist()
        raise HizkitError(f"{where}: key column {name} repeats values (e.g. {repeated})")
    return index
