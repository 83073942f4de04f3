"""Survey layouts as the ``jades`` source uses them: which registered layout a directory's
catalog is in (:func:`detect_layout`, from file names and the catalog's headers) and what a
catalog lacks for a layout (:func:`schema_problems`).

The :class:`~hizkit.layouts.Layout` itself (TOML reading and checking, lookup by name or
path, the builtin layouts' folder) is core: :mod:`hizkit.layouts`, re-exported here.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from hizkit import NIRCAM_BANDS, HizkitError
from hizkit.layouts import (
    LAYOUTS,
    Aperture,
    Columns,
    ColumnSpec,
    Layout,
    Mosaics,
    Photoz,
    known_layouts,
    load_layout,
    registered_layouts,
)
from hizkit.plugins.jades.files import _open

__all__ = [
    "LAYOUTS",
    "Aperture",
    "ColumnSpec",
    "Columns",
    "Layout",
    "Mosaics",
    "Photoz",
    "detect_layout",
    "known_layouts",
    "load_layout",
    "registered_layouts",
    "schema_problems",
]


def detect_layout(directory: Path, bands: tuple[str, ...] | list[str] = NIRCAM_BANDS) -> str:
    """The layout of the catalog in ``directory``: among the layouts whose catalog file
    pattern matches, the most specific one whose columns the catalog really has (checked
    on the headers only). When none fits, the error names every layout tried and what
    its catalog lacks."""
    layouts = registered_layouts()
    candidates = []
    for name, lay in sorted(layouts.items()):
        hits = sorted(p for p in directory.glob(lay.catalog) if p.is_file())
        if hits:
            candidates.append((len(lay.catalog.replace("*", "")), name, lay, hits))
    if not candidates:
        tried = "; ".join(f"{n}: {lay.catalog}" for n, lay in sorted(layouts.items()))
        raise HizkitError(
            f"{directory}: no catalog of a known layout (tried {tried}); name one with layout=..."
        )
    reasons = []
    for _, name, lay, hits in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if len(hits) > 1:  # ambiguous: reading it names the files
            return name
        missing = schema_problems(hits[0], lay, bands)
        if not missing:
            return name
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        reasons.append(f"layout {name} needs {', '.join(missing[:3])}{more}")
    raise HizkitError(
        f"{directory}: no layout fits the catalog {candidates[0][3][0].name} "
        f"({'; '.join(reasons)}); name one with layout=..."
    )


def schema_problems(
    path: Path, lay: Layout, bands: tuple[str, ...] | list[str] = NIRCAM_BANDS
) -> list[str]:
    """``EXTENSION:COLUMN`` entries the layout reads that the catalog lacks (headers only;
    photo-z, which may be absent, is not checked)."""
    specs = [lay.spec(k) for k in ("id", "ra", "dec")]
    specs += [lay.spec(k) for k in ("flag_star", "flag_bright_star") if getattr(lay.columns, k)]
    for band in bands:
        specs += [lay.spec(k, band) for k in ("flux", "flux_err", "radius")]
    missing: list[str] = []
    with _open(path) as hdul:
        names = [h.name for h in hdul]
        for spec in dict.fromkeys(specs):
            ext = spec.ext
            if ext.isdigit():
                hdu = hdul[int(ext)] if int(ext) < len(hdul) else None
            else:
                hits = [n for n in names if fnmatch.fnmatch(n, ext.upper())]
                hdu = hdul[hits[0]] if len(hits) == 1 else None
            have = getattr(hdu, "columns", None)
            if have is None:
                missing.append(f"extension {ext}")
                continue
            present = have.names
            if lay.case_insensitive:
                found = spec.name.lower() in {n.lower() for n in present}
            else:
                found = spec.name in present
            if not found:
                missing.append(f"{ext}:{spec.name}")
    return list(dict.fromkeys(missing))
