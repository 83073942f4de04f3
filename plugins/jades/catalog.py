"""The catalog side of the ``jades`` source: a layout's columns read into hizkit's
(nJy, arcsec, joined on the key), photometric redshifts from the catalog, a separate file
or a tarball, labels (photo-z, TRUTH, or none) and brown dwarfs (an ID list and/or the
colour criteria of :mod:`hizkit.science`)."""

from __future__ import annotations

import fnmatch
import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

import hizkit
from hizkit import HizkitError, progress
from hizkit.layouts import Layout, Photoz, flux_unit_to_njy
from hizkit.plugins.jades.files import (
    _ARCSEC,
    _PIXEL,
    _hdu,
    _match,
    _open,
    _Table,
    _unique_index,
)
from hizkit.science import BROWN_DWARF_BANDS, Colours, brown_dwarf, redshift_labels


class CatalogReader:
    """The catalog methods of :class:`hizkit.plugins.jades.JadesSource` (which holds the
    parameters they read: ``bands``, ``aperture``, ``labels``, ``z_threshold``...)."""

    def read_catalog(self, directory: Path, lay: Layout) -> pd.DataFrame:
        """The catalog in hizkit's columns (nJy, arcsec), labelled, with photo-z."""
        path = _match(directory, lay.catalog, "catalog")
        lay.aperture_values(self.aperture)  # an unknown aperture: one line, before reading
        with _open(path) as hdul:
            tables: dict[str, tuple[_Table, pd.Index]] = {}

            def table(ext: str) -> tuple[_Table, pd.Index]:
                if ext not in tables:
                    hdu, _ = _hdu(hdul, ext, path)
                    if getattr(hdu, "columns", None) is None:
                        raise HizkitError(f"{path}[{ext}]: not a table (layout {lay.name})")
                    t = _Table(hdu, path, lay.case_insensitive)
                    try:
                        key = t.column(lay.key)
                    except KeyError:
                        raise HizkitError(
                            f"{path}[{ext}]: no key column {lay.key} (layout {lay.name})"
                        ) from None
                    tables[ext] = (t, _unique_index(key, f"{path}[{ext}]", lay.key))
                return tables[ext]

            def column(
                name: str, what: str, band: str | None = None
            ) -> tuple[np.ndarray, str | None]:
                """The layout's column ``name`` joined on the key, and its TUNIT."""
                spec = lay.spec(name, band, self.aperture)
                t, key = table(spec.ext)
                try:
                    values = t.column(spec.name, spec.index)
                    unit = t.unit(spec.name)
                except KeyError:
                    raise HizkitError(
                        f"{path}: {what} (no column {spec.name} in {spec.ext}; layout {lay.name})"
                    ) from None
                if key is not main_key:
                    values = pd.Series(values, index=key).reindex(main_key).to_numpy()
                return values, unit

            unreadable: set[str] = set()

            def flux_factor(unit: str | None, where: str) -> float:
                if unit is not None and (factor := flux_unit_to_njy(unit)) is not None:
                    return factor
                factor = flux_unit_to_njy(lay.flux_unit)  # checked when the layout was read
                if unit is not None and unit not in unreadable:
                    unreadable.add(unit)
                    progress.warn(
                        f"{path.name}: {where} has unit {unit!r}, not a flux density; "
                        f"read as the layout's {lay.flux_unit}"
                    )
                return factor

            main_key = table(lay.spec("id").ext)[1]
            cat = pd.DataFrame(
                {
                    "id": column("id", "no IDs")[0],
                    "ra": column("ra", "no RA")[0].astype(float),
                    "dec": column("dec", "no Dec")[0].astype(float),
                }
            )
            radius_stated = []
            for band in self.bands:
                missing = f"band {band} missing"
                flux, unit = column("flux", missing, band)
                err, eunit = column("flux_err", missing, band)
                cat[hizkit.flux_col(band)] = flux * flux_factor(unit, f"{band} flux")
                cat[hizkit.fluxerr_col(band)] = err * flux_factor(eunit, f"{band} flux error")
                radius, runit = column("radius", f"no {band} radius", band)
                radius_stated.append(runit is not None)
                to_arcsec = _radius_to_arcsec(runit, lay, f"{path} ({band} radius)")
                cat[hizkit.radius_col(band)] = radius * to_arcsec * lay.radius_factor
            if not any(radius_stated):
                _check_radius_scale(cat, self.bands, path, lay)
            for flag in ("flag_star", "flag_bright_star"):
                if getattr(lay.columns, flag):
                    cat[flag] = np.nan_to_num(column(flag, f"no {flag}")[0]).astype(bool)
            truth = _hdu(hdul, "TRUTH", path)[0] if "TRUTH" in hdul else None
            if truth is not None:
                t = _Table(truth, path, False)
                key = pd.Index(t.column("ID"))
                for src, dst in (("Z_TRUE", "z_true"), ("LABEL", "label_true")):
                    cat[dst] = pd.Series(t.column(src), index=key).reindex(cat["id"]).to_numpy()
                label = cat["label_true"].astype(str).str.strip()
                # a detection with no true source (a simulated field's spurious ones)
                cat["label_true"] = label.where(~label.isin(["", "nan", "None"]), None)
                for src, dst in (("KIND", "kind"), ("WEIGHT", "weight")):
                    if src in truth.columns.names:
                        values = pd.Series(t.column(src), index=key).reindex(cat["id"])
                        cat[dst] = values.to_numpy()
                if "kind" in cat:
                    cat["kind"] = cat["kind"].astype(str).str.strip()
                if "BIMODAL" in truth.columns.names:
                    flag = pd.Series(t.column("BIMODAL"), index=key).reindex(cat["id"])
                    cat["bimodal"] = flag.to_numpy(bool)
            photoz = self._photoz(directory, path, hdul, lay, cat["id"].to_numpy())
        for key, values in photoz.items():
            cat[key] = values
        return self._label(cat, path, lay)

    def _photoz(self, directory, path, hdul, lay: Layout, ids) -> dict[str, np.ndarray]:
        """z_phot, z_l68, z_u68, chi2_phot (and bimodal from a P(z)) where the layout has
        them: from the catalog, a separate file, or a FITS member of a tarball."""
        pz = lay.photoz
        if pz is None:
            return {}
        files = pz.patterns
        if not files:
            return self._photoz_from(hdul, path, pz, ids, lay)
        root = _catalog_root(path, lay)
        for pattern in files:
            pattern = pattern.format(root=root)
            hits = sorted(p for p in directory.glob(pattern) if p.is_file())
            if len(hits) > 1:
                names = ", ".join(p.name for p in hits[:4])
                raise HizkitError(
                    f"{directory}: several photometric-redshift files match {pattern}: {names}"
                )
            if not hits:
                continue
            pz_path = hits[0]
            if ".tar" in pz_path.name:
                with _open_tar_member(pz_path, pz.member) as pz_hdul:
                    return self._photoz_from(pz_hdul, pz_path, pz, ids, lay)
            with _open(pz_path) as pz_hdul:
                return self._photoz_from(pz_hdul, pz_path, pz, ids, lay)
        return {}

    def _photoz_from(self, hdul, path, pz: Photoz, ids, lay: Layout) -> dict[str, np.ndarray]:
        ext = self._photoz_ext(hdul, path, pz)
        if ext is None:
            return {}
        hdu, _ = _hdu(hdul, ext, path)
        suffix = ""
        if any(c in pz.ext for c in "*?["):  # the glob's match names the template set
            raw = str(hdu.header.get("EXTNAME", hdu.name))  # keeps the case
            suffix = raw[len(pz.ext.split("*")[0]) :]
        t = _Table(hdu, path, lay.case_insensitive)
        try:
            key = _unique_index(t.column(pz.key), f"{path}[{ext}]", pz.key)
        except KeyError:
            raise HizkitError(
                f"{path}[{ext}]: no key column {pz.key} for the photo-z (layout {lay.name})"
            ) from None
        found = np.isin(ids, key.to_numpy()).mean() if len(ids) else 1.0
        if found < 0.9:
            progress.warn(
                f"{path.name}: photometric redshifts for only {found:.0%} of the catalog's "
                f"IDs (a photo-z file of another catalog version?)"
            )
        out: dict[str, np.ndarray] = {}
        for name, col in (
            ("z_phot", "z"),
            ("z_l68", "z_l68"),
            ("z_u68", "z_u68"),
            ("chi2_phot", "chi2"),
        ):
            if getattr(pz, col):
                try:
                    values = t.column(getattr(pz, col).format(templates=suffix))
                except KeyError:
                    continue
                out[name] = pd.Series(values, index=key).reindex(ids).to_numpy(float)
        if pz.pdf and pz.pdf_grid and pz.pdf in hdu.columns.names:
            pdf = pd.DataFrame(t.column(pz.pdf), index=key).reindex(ids).to_numpy(float)
            grid = np.asarray(t.column(pz.pdf_grid), dtype=float)
            grid = grid[0] if grid.ndim == 2 else grid
            out["bimodal"] = bimodal_from_pdf(grid, pdf, self.z_threshold, self.bimodal_min_prob)
        return out

    def _photoz_ext(self, hdul, path: Path, pz: Photoz) -> str | None:
        """The photo-z extension to read (None: the file has none). A glob such as
        ``EAZY_*`` may match one extension per template set: the one named by
        ``photoz_templates`` (else the layout's ``templates``, else the first
        alphabetically) is read, and the choice is logged."""
        ext = pz.ext
        if ext.isdigit():
            return ext if int(ext) < len(hdul) else None
        names = [h.name for h in hdul]
        if not any(c in ext for c in "*?["):
            return ext if ext.upper() in names else None
        hits = sorted(n for n in names if fnmatch.fnmatch(n, ext.upper()))
        if len(hits) <= 1:
            if self.photoz_templates and hits:
                self._template_of(hits, ext, path)  # checks the name given
            return hits[0] if hits else None
        chosen = self._template_of(hits, ext, path, pz.templates)
        others = ", ".join(h for h in hits if h != chosen)
        progress.log(f"{path.name}: photo-z from {chosen} (also there: {others})")
        return chosen

    def _template_of(self, hits: list[str], ext: str, path: Path, default: str | None = None):
        prefix = ext.upper().split("*")[0]
        by_set = {h[len(prefix) :].lower(): h for h in hits}
        if self.photoz_templates:
            want = self.photoz_templates.lower()
            if want not in by_set:
                raise HizkitError(
                    f"{path}: no photo-z for templates {self.photoz_templates!r} "
                    f"(it has {', '.join(sorted(by_set))})"
                )
            return by_set[want]
        if default and default.lower() in by_set:
            return by_set[default.lower()]
        return by_set[sorted(by_set)[0]]

    def _label(self, cat: pd.DataFrame, path: Path, lay: Layout) -> pd.DataFrame:
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
            pz = lay.photoz
            where = f"{pz.ext} column {pz.z}" if pz else f"layout {lay.name} has no [photoz]"
            raise HizkitError(f"{path}: no photometric redshifts ({where}) to label from")
        cat["z"] = cat["z_phot"]
        label = redshift_labels(cat["z"].to_numpy(float), self.z_threshold)
        bd = np.zeros(len(cat), dtype=bool)
        if self.brown_dwarfs:
            bd |= np.isin(cat["id"].to_numpy(), read_id_list(Path(self.brown_dwarfs)))
        if self.brown_dwarf_colours:
            bd |= brown_dwarf_candidates(cat, self.brown_dwarf_max_radius)
        label[bd] = "brown_dwarf"
        cat["label"] = label
        return cat

    def _check_catalog(self, cat: pd.DataFrame, path: Path) -> pd.DataFrame:
        """Damage a user should hear about: a band whose fluxes are all NaN is an error
        (that band has no data here: leave it out with ``bands``; a warning for a field
        read with ``labels = "none"``, whose cutouts may still serve); sources with NaN or
        infinite RA/Dec cannot be cut out and are dropped with a warning (all of them is
        an error)."""
        if len(cat) == 0:
            raise HizkitError(f"{path}: the catalog has no sources")
        for band in self.bands:
            flux = cat[hizkit.flux_col(band)].to_numpy(float)
            if not np.isfinite(flux).any():
                others = [b for b in self.bands if b != band]
                what = f"{path}: every {band} flux is NaN ({len(cat)} sources)"
                if self.labels == "none":  # a field to classify: cutouts may still serve
                    progress.warn(f"{what}; colours and flags using {band} mean nothing")
                    continue
                raise HizkitError(
                    f"{what}: the band has no data in this catalog; leave it out, e.g. "
                    f"bands = {others}"
                )
        ra, dec = cat["ra"].to_numpy(float), cat["dec"].to_numpy(float)
        bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
        if bad.all():
            raise HizkitError(f"{path}: no source has a finite RA and Dec ({len(cat)} sources)")
        if bad.any():
            ids = cat["id"].to_numpy()[bad][:5].tolist()
            progress.warn(
                f"{path.name}: {int(bad.sum())} of {len(cat)} sources have no valid RA/Dec "
                f"(NaN, infinite or |Dec| > 90; e.g. ids {ids}) and are left out"
            )
            cat = cat[~bad].reset_index(drop=True)
        return cat


def _radius_to_arcsec(unit: str | None, lay: Layout, where: str) -> float:
    """Arcsec per unit of a radius column: its TUNIT, else the layout's ``radius_unit``."""
    stated = unit if unit is not None else lay.radius_unit
    u = stated.strip().lower()
    if u in _ARCSEC:
        return 1.0
    if u in ("mas", "milliarcsec"):
        return 1e-3
    if u in ("deg", "degree", "degrees"):
        return 3600.0
    if u in _PIXEL or u == "pixel":
        scale = lay.radius_pixel_scale
        if scale is None:
            raise HizkitError(
                f"{where}: radius in pixels but layout {lay.name} gives no radius_pixel_scale"
            )
        return float(scale)
    raise HizkitError(f"{where}: radius unit {stated!r} is not arcsec, pixels, mas or deg")


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
    """Sources of a catalog meeting :func:`hizkit.science.brown_dwarf` (Hainline et al.
    2024: colours, F444W < 28.5 AB, a F444W half-light radius <= ``max_radius``), on
    1-sigma-limit magnitudes as the ``colour`` classifier reads them."""
    bands = BROWN_DWARF_BANDS
    mag = np.column_stack(
        [
            hizkit.limit_magnitudes(cat[hizkit.flux_col(b)], cat[hizkit.fluxerr_col(b)])
            for b in bands
        ]
    )
    radius = cat[hizkit.radius_col("F444W")].to_numpy(float)
    return brown_dwarf(Colours(mag, bands), radius, max_radius) > 0


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


def _catalog_root(path: Path, lay: Layout) -> str:
    """The catalog file name before the layout's ``root_suffix`` (DJA: the
    ``<field>-grizli-v7.x`` part that names its photo-z files), else the whole stem."""
    suffix = lay.root_suffix
    if suffix and suffix in path.name:
        return path.name[: path.name.index(suffix)]
    return path.name.split(".fits")[0]


class _open_tar_member:
    """The FITS member of a tarball (matching ``member``), read into memory."""

    def __init__(self, path: Path, member: str) -> None:
        self.path, self.member = path, member
        self.hdul = None

    def __enter__(self):
        from astropy.io import fits

        try:
            raw = None
            seen = []
            with tarfile.open(self.path) as tar:
                # read as a stream and stop at the first match: a photo-z tarball can be
                # hundreds of MB of other members (templates, HDF5 P(z))
                for member in tar:
                    seen.append(member.name)
                    if member.isfile() and fnmatch.fnmatch(Path(member.name).name, self.member):
                        raw = tar.extractfile(member).read()
                        break
            if raw is None:
                listed = ", ".join(seen[:6])
                raise HizkitError(
                    f"{self.path}: no member matching {self.member} (it holds {listed})"
                )
            self.hdul = fits.open(io.BytesIO(raw))
            len(self.hdul)
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
            raise HizkitError(
                f"{self.path}: not a readable tarball of FITS tables ({reason})"
            ) from None
        return self.hdul

    def __exit__(self, *exc) -> None:
        if self.hdul is not None:
            self.hdul.close()


def _check_radius_scale(cat: pd.DataFrame, bands, path: Path, lay: Layout) -> None:
    """No radius column states its unit: warn when the layout's unit gives implausible
    sizes (a median half-light radius over 1.5\" looks like pixels read as arcsec)."""
    values = cat[[hizkit.radius_col(b) for b in bands]].to_numpy(float)
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size and np.median(finite) > 1.5:
        progress.warn(
            f"{path.name}: radius columns have no TUNIT and read as {lay.radius_unit} "
            f'(layout {lay.name}) give a median of {np.median(finite):.2f}"; '
            "if they are pixels, set the layout's radius_unit"
        )
