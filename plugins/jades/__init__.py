"""``jades``: a real survey from disk: catalog + per-filter mosaics, layout kept in TOML.

``hizkit bench --data jades:DIR`` reads the catalog of the directory's layout (JADES
v2.0 / v5.0, EPOCHS / galfind, DJA: ``plugins/layouts/*.toml``, detected from the file
names and checked against the catalog's columns unless ``layout`` is given), labels from
the photometric redshift (z >= ``z_threshold`` is high-z) or, for files written by
``hizkit simulate``, from the TRUTH extension (``labels="truth"``), or not at all for a
field to classify (``labels="none"``); brown dwarfs from an ID list and/or the Hainline
et al. (2024) colour and compactness criteria; optional quality cuts
(:mod:`hizkit.cuts`) with the count left after each; and cutouts from the memory-mapped
mosaics. Where all bands share one pixel grid (JADES, EPOCHS) one position serves all
bands and cutting is slicing; where they do not (DJA) each band is cut at its own
position and brought to a common angular grid (block-summed: its pixels must be an
integer fraction of the output's).
Cutouts are in nJy per pixel, NaN outside the mosaic or without coverage.

Units come from the files themselves: a mosaic's ``BUNIT`` (MJy/sr, nJy, uJy, Jy, or a
scaled unit such as DJA's ``10.0*nanoJansky``), with MJy/sr converted by the pixel area of
the mosaic's own WCS (``PIXAR_SR`` is often the detector's native pixel, not the resampled
mosaic's: it is only compared, and a disagreement is reported); catalog fluxes and radii
in the unit their column's ``TUNIT`` states, the layout's unit only where a file states none.

A layout is data: a new release is a new TOML file, not new code, read into a checked
:class:`Layout` (a core concept: :mod:`hizkit.layouts`; detecting a directory's layout is
in ``layouts.py``); the catalog is read in ``catalog.py``, the cutouts in ``cutouts.py``,
FITS files and units in ``files.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import hizkit
from hizkit import NIRCAM_BANDS, Dataset, HizkitError, progress
from hizkit.cuts import QualityCuts, describe
from hizkit.layouts import LAYOUTS, Layout, flux_unit_to_njy, known_layouts, load_layout
from hizkit.plugins.jades.catalog import (
    CatalogReader,
    bimodal_from_pdf,
    brown_dwarf_candidates,
    read_id_list,
)
from hizkit.plugins.jades.cutouts import CutoutReader, block_sum, pixel_area_sr
from hizkit.plugins.jades.files import _match, is_surface_brightness
from hizkit.plugins.jades.layouts import detect_layout, schema_problems

__all__ = [
    "LAYOUTS",
    "JadesSource",
    "Layout",
    "bimodal_from_pdf",
    "block_sum",
    "brown_dwarf_candidates",
    "detect_layout",
    "flux_unit_to_njy",
    "is_surface_brightness",
    "known_layouts",
    "load_layout",
    "pixel_area_sr",
    "read_id_list",
    "schema_problems",
]


class JadesSource(CatalogReader, CutoutReader, hizkit.DataSource):
    name = "jades"
    description = "JADES / EPOCHS / DJA catalog + mosaics from a directory (layouts in TOML)"
    test_params: ClassVar[dict] = {"labels": "truth", "cutout_size": 32}
    needs_location = True
    field_params: ClassVar[dict] = {"labels": "none"}

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
        photoz_templates: str | None = None,
    ) -> None:
        """``layout``: a layout's name, a path to a layout TOML file, or "auto" (detected
        from the catalog). ``quality_cuts`` e.g. ``{"min_snr": 10, "max_pdf_width": 0.5}`` (see
        :class:`hizkit.cuts.QualityCuts`). ``brown_dwarfs``: a CSV or FITS table whose
        first column (or ``id``/``ID``) lists brown-dwarf IDs; ``brown_dwarf_colours`` adds
        sources meeting F277W-F444W > 1, F115W-F277W < 0 or F115W-F150W < 0, F444W < 28.5
        and a F444W half-light radius <= ``brown_dwarf_max_radius`` arcsec. A source is
        ``bimodal`` when its P(z) puts at least ``bimodal_min_prob`` on each side of the
        threshold (layouts with a P(z)). ``pixel_scale``: the cutouts' arcsec per pixel on
        per-band grids (default: the coarsest band's). ``errors``: also cut the ERR (or
        WHT) images into 1-sigma error cutouts (``Dataset.errors``, nJy per pixel); a
        weight map from grizli (DJA) leaves out the sources' own Poisson noise, so its
        errors are lower limits on bright sources.
        ``mosaics`` overrides the layout's mosaic file pattern ({band}/{BAND} = filter).
        ``photoz_templates``: which template set's photo-z to read where a catalog holds
        several (EPOCHS ``EAZY_<templates>`` extensions; default: the layout's
        ``templates``, else the first in alphabetical order, named in the log)."""
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
        self.photoz_templates = photoz_templates
        self._layouts: dict[str, Layout] = {}  # read layouts by name or path
        self._grids: dict[tuple, tuple] = {}  # mosaic files and WCS, per directory

    # ------------------------------------------------------------------ catalog

    def load(self, location: str | None = None) -> Dataset:
        return self.load_cutouts(location, self.load_catalog(location))

    def load_catalog(self, location: str | None = None) -> Dataset:
        """The labelled catalog after the quality cuts, without cutouts."""
        directory = self._directory(location)
        cuts = QualityCuts.from_dict(self.quality_cuts)
        lay = self._layout(directory)
        if cuts.drop_stars and not (lay.columns.flag_star and lay.columns.flag_bright_star):
            raise HizkitError(
                f"quality cut drop_stars: layout {lay.name} has no star flags "
                f"({lay.flags_note or 'none in its catalog'}); leave drop_stars out"
            )
        cat = self.read_catalog(directory, lay)
        cat = self._check_catalog(cat, _match(directory, lay.catalog, "catalog"))
        meta: dict[str, Any] = {
            "source": "jades",
            "location": str(directory),
            "layout": lay.name,
            "aperture": self.aperture or lay.default_aperture,
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
        lay = self._layout(directory, part.meta.get("layout"))
        cut, err, pixel_scale = self.cutouts(directory, lay, part.catalog)
        return part.replace(cutouts=cut, errors=err, pixel_scale=pixel_scale)

    def _layout(self, directory: Path, found: str | None = None) -> Layout:
        """The ``layout`` parameter (a name, or a path to a TOML file), else the one
        found before (``found``), else the one detected from the directory's catalog.
        Each name is read once: ``predict`` asks again for every chunk of a field."""
        name = (
            self.layout if self.layout != "auto" else found or detect_layout(directory, self.bands)
        )
        if isinstance(name, Layout):
            return name
        key = os.fspath(name)
        if key not in self._layouts:
            self._layouts[key] = load_layout(name)
        return self._layouts[key]

    @staticmethod
    def _directory(location: str | None) -> Path:
        if not location:
            raise HizkitError("jades needs a directory: --data jades:DIR")
        directory = Path(location)
        if not directory.is_dir():
            raise HizkitError(f"{directory}: no such directory")
        return directory


@hizkit.hookimpl
def hizkit_register_data_sources() -> list[type[hizkit.DataSource]]:
    return [JadesSource]


@hizkit.hookimpl
def hizkit_register_layouts() -> list[Path]:
    """The builtin layouts, registered as a third-party plugin's would be."""
    return sorted(LAYOUTS.glob("*.toml"))
