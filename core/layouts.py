"""Survey layouts: where a data release keeps its catalog columns and mosaics.

A layout is data, a TOML file (the builtin ones in ``plugins/layouts/*.toml``; CONTRIBUTING
explains the keys), read once into a typed, checked :class:`Layout`: a missing key, a value
of the wrong type, an unknown key (a typo) or a column spec that cannot be parsed is a
one-line error naming the file and the key, not a ``KeyError`` deep in a loader. A layout
is named (``layout = "jades_v2"``) or given as a path to its TOML file; plugins add layouts
through the ``hizkit_register_layouts`` hook (TOML paths or :class:`Layout` objects), and
the ``jades`` plugin registers the builtin files through the same hook. Layouts are a core
concept: the ``jades`` source reads files by them and the simulator's JADES writer writes
the columns the same layout reads, and neither plugin imports the other.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from hizkit import registry
from hizkit.dataset import NIRCAM_BANDS
from hizkit.errors import HizkitError


def builtin_layouts_dir() -> Path:
    """The builtin layouts' folder, ``layouts/`` in the builtin plugins' package (TOML
    data, found without importing any plugin)."""
    spec = importlib.util.find_spec("hizkit.plugins")
    if spec is None or not spec.submodule_search_locations:
        raise HizkitError("the builtin plugins (hizkit.plugins) are not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "layouts"


#: the builtin layouts' folder (registered by the ``jades`` plugin's hook)
LAYOUTS = builtin_layouts_dir()

#: nJy per unit, by lower-case unit name (milli-Jansky only as "mjy"; "MJy" is mega and
#: meaningful here only per steradian)
FLUX_TO_NJY = {
    "njy": 1.0,
    "nanojy": 1.0,
    "nanojansky": 1.0,
    "ujy": 1e3,
    "microjy": 1e3,
    "microjansky": 1e3,
    "\u00b5jy": 1e3,
    "mjy": 1e6,
    "millijansky": 1e6,
    "jy": 1e9,
    "jansky": 1e9,
}
_UNIT = re.compile(
    r"^\s*(?:(?P<scale>[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*\*?\s*)?(?P<unit>[A-Za-z\u00b5]+)\s*$"
)


def flux_unit_to_njy(unit: str | None) -> float | None:
    """nJy per unit of a flux-density unit string (``nJy``, ``uJy``, ``Jy``, ``mJy``,
    ``10.0*nanoJansky``, ``1e-9 Jy``...), or None when it is not one (e.g. ``MJy/sr``)."""
    if unit is None:
        return None
    m = _UNIT.match(str(unit))
    if m is None or m["unit"] in ("MJy", "MJY"):
        return None
    per = FLUX_TO_NJY.get(m["unit"].lower())
    if per is None:
        return None
    return per * (float(m["scale"]) if m["scale"] else 1.0)


_SPEC = re.compile(r"^(?P<ext>[^:]+):(?P<name>[^\[\]]+)(?:\[(?P<index>\d+)\])?$")


class ColumnSpec(NamedTuple):
    """One catalog column: its extension (a name, an HDU number or a glob), its name,
    and the index into a vector column (None for a scalar one)."""

    ext: str
    name: str
    index: int | None = None


@dataclass(frozen=True)
class Aperture:
    """An ``[apertures]`` entry: the values it fills into column specs (``{ext}``,
    ``{index}``, ``{name}``; ``{aperture}`` is the entry's own name)."""

    ext: str | None = None
    index: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class Columns:
    """``[columns]``: ``EXTENSION:COLUMN`` or ``EXTENSION:COLUMN[index]`` specs with
    ``{BAND}``/``{band}`` and the aperture's placeholders."""

    id: str
    ra: str
    dec: str
    flux: str
    flux_err: str
    radius: str
    flag_star: str | None = None
    flag_bright_star: str | None = None


@dataclass(frozen=True)
class Photoz:
    """``[photoz]``: the photometric-redshift table, in the catalog (``ext``) or in
    separate files or tarballs (``files``, tried in order; ``member`` inside a tarball)."""

    ext: str
    key: str
    z: str | None = None
    z_l68: str | None = None
    z_u68: str | None = None
    chi2: str | None = None
    pdf: str | None = None
    pdf_grid: str | None = None
    files: tuple[str, ...] = ()
    file: str | None = None
    member: str = "*.fits"
    templates: str | None = None

    @property
    def patterns(self) -> tuple[str, ...]:
        """The separate photo-z files to try (none: the catalog holds it)."""
        return self.files or ((self.file,) if self.file else ())


@dataclass(frozen=True)
class Mosaics:
    """``[mosaics]``: one file pattern per band (``file``) or galfind's way of finding a
    band's files by suffix (``find = "suffixes"``); image extensions by name or number."""

    file: str | None = None
    find: str | None = None
    science: str = ""
    error: str | None = None
    weight: str | None = None
    weight_file: str | None = None
    weight_ext: str = "0"
    default_bunit: str | None = None
    grid: str = "common"
    science_suffixes: tuple[str, ...] = ()
    error_suffixes: tuple[str, ...] = ()
    weight_suffixes: tuple[str, ...] = ()
    ignore_suffixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """One data release's catalog and mosaic layout, checked when it is read."""

    name: str
    catalog: str
    key: str
    flux_unit: str
    default_aperture: str
    apertures: dict[str, Aperture]
    columns: Columns
    description: str = ""
    radius_unit: str = "arcsec"
    radius_factor: float = 1.0
    radius_pixel_scale: float | None = None
    case_insensitive: bool = False
    flags_note: str | None = None
    root_suffix: str | None = None
    photoz: Photoz | None = None
    mosaics: Mosaics | None = None
    #: the TOML file it was read from (None for one built in code)
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Layout:
        """The layout in a TOML file; a one-line error naming the file otherwise."""
        path = Path(path)
        if not path.is_file():
            raise HizkitError(f"{path}: layout file not found")
        try:
            doc = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise HizkitError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(doc, path)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], path: str | os.PathLike | None = None) -> Layout:
        """A layout from a parsed TOML document (``path`` names it in errors)."""
        where = str(path) if path is not None else f"layout {doc.get('name', '?')}"
        values = _checked(cls, doc, where)
        apertures = values["apertures"]
        if not isinstance(apertures, dict):
            raise HizkitError(f"{where}: layout key apertures must be a table")
        values["apertures"] = {
            k: _build(Aperture, v, where, f"apertures.{k}") for k, v in apertures.items()
        }
        values["columns"] = _build(Columns, values["columns"], where, "columns")
        for key, sub in (("photoz", Photoz), ("mosaics", Mosaics)):
            if key in values:
                values[key] = _build(sub, values[key], where, key)
        return cls(**values, path=Path(path) if path is not None else None)

    def __post_init__(self) -> None:
        """What the types alone do not say, checked for a layout built in code too: values
        that must be one of a few, the default aperture present, every column spec
        parseable."""
        where = str(self.path) if self.path is not None else f"layout {self.name}"
        if self.default_aperture not in self.apertures:
            raise HizkitError(f"{where}: layout lacks apertures.{self.default_aperture}")
        if flux_unit_to_njy(self.flux_unit) is None:
            raise HizkitError(
                f"{where}: layout key flux_unit {self.flux_unit!r} is not a flux density "
                "(nJy, uJy, Jy, or a scaled one such as 10.0*nanoJansky)"
            )
        mos = self.mosaics
        if mos is not None:
            if mos.file is None and mos.find is None:
                raise HizkitError(f"{where}: layout lacks mosaics.file (or mosaics.find)")
            for key, allowed in (("grid", ("common", "per_band")), ("find", (None, "suffixes"))):
                if getattr(mos, key) not in allowed:
                    raise HizkitError(
                        f"{where}: layout key mosaics.{key} must be "
                        f"{' or '.join(repr(a) for a in allowed if a)}, got {getattr(mos, key)!r}"
                    )
        for f in fields(Columns):
            if getattr(self.columns, f.name) is not None:
                for aperture in self.apertures:
                    self.spec(f.name, NIRCAM_BANDS[-1], aperture, where=where)

    def aperture_values(self, aperture: str | None = None) -> dict[str, Any]:
        """The placeholders an aperture fills in column specs: ``{aperture}`` (its
        name), ``{name}`` (default: its name), ``{ext}`` and ``{index}`` when given."""
        aperture = aperture or self.default_aperture
        if aperture not in self.apertures:
            raise HizkitError(
                f"aperture {aperture!r} not in layout {self.name}: "
                f"choose from {', '.join(self.apertures)}"
            )
        ap = self.apertures[aperture]
        values: dict[str, Any] = {"aperture": aperture, "name": ap.name or aperture}
        values |= {k: v for k, v in (("ext", ap.ext), ("index", ap.index)) if v is not None}
        return values

    def spec(
        self,
        column: str,
        band: str | None = None,
        aperture: str | None = None,
        where: str | None = None,
    ) -> ColumnSpec:
        """Where the ``[columns]`` entry ``column`` lives for a band and an aperture
        (default: the layout's default aperture): the one place a spec is parsed, by the
        reader and by the simulator's writer alike."""
        text = getattr(self.columns, column)
        values = self.aperture_values(aperture)
        if band is not None:
            values |= {"BAND": band.upper(), "band": band.lower()}
        where = where or f"layout {self.name}"
        try:
            m = _SPEC.match(text.format(**values))
        except (KeyError, IndexError, ValueError) as exc:
            raise HizkitError(
                f"{where}: columns.{column} = {text!r} uses an unknown placeholder ({exc})"
            ) from None
        if m is None:
            raise HizkitError(
                f"{where}: columns.{column} = {text!r} is not EXTENSION:COLUMN or "
                "EXTENSION:COLUMN[index]"
            )
        return ColumnSpec(m["ext"], m["name"], None if m["index"] is None else int(m["index"]))


def _checked(cls: type, table: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """``table``'s values for the dataclass ``cls``, each checked against its field's
    type; a missing required key, an unknown key or a wrong type is one line."""
    label = prefix or "the layout"
    if not isinstance(table, dict):
        raise HizkitError(f"{where}: layout key {prefix} must be a table, got {table!r}")
    known = [f.name for f in fields(cls) if f.name != "path"]
    unknown = [k for k in table if k not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise HizkitError(
            f"{where}: unknown key(s) {', '.join(unknown)} in {label}{hint}; "
            f"known: {', '.join(known)}"
        )
    dotted = f"{prefix}." if prefix else ""
    required = [
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING and f.name != "path"
    ]
    missing = [dotted + k for k in required if k not in table]
    if missing:
        raise HizkitError(f"{where}: layout lacks {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    return {k: _typed(v, hints[k], where, dotted + k) for k, v in table.items()}


def _build(cls: type, table: Any, where: str, prefix: str) -> Any:
    return cls(**_checked(cls, table, where, prefix))


def _typed(value: Any, hint: Any, where: str, key: str) -> Any:
    """``value`` as the field type ``hint`` asks (TOML arrays become tuples), or a
    one-line error. Tables (apertures, columns, ...) are built by the caller."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    options = tuple(o for o in options if o is not type(None))
    for option in options:
        origin = typing.get_origin(option)
        if origin is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if origin is dict or (isinstance(option, type) and option.__module__ == __name__):
            return value  # a table: checked when it is built
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool) and type(value) is option:
            return value
    wanted = {str: "a string", bool: "true or false", float: "a number", int: "a whole number"}
    names = [wanted.get(o, "a list of strings") for o in options]
    raise HizkitError(f"{where}: layout key {key} must be {' or '.join(names)}, got {value!r}")


def registered_layouts() -> dict[str, Layout]:
    """Every layout the plugins register (``hizkit_register_layouts``), by name; two
    with one name are an error naming both providers."""
    found: dict[str, tuple[Layout, str]] = {}
    for provider, item in registry.get_registry().layouts():  # looked up at call time
        layout = item if isinstance(item, Layout) else Layout.read(item)
        if layout.name in found:
            raise HizkitError(
                f"two plugins register the layout '{layout.name}': "
                f"{found[layout.name][1]} and {provider}"
            )
        found[layout.name] = (layout, provider)
    return {name: layout for name, (layout, _) in found.items()}


def known_layouts() -> list[str]:
    return sorted(registered_layouts())


def load_layout(layout: str | os.PathLike | Layout) -> Layout:
    """A layout by name (registered by a plugin), by path to a TOML file (a name ending
    in ``.toml`` or containing a path separator), or as given."""
    if isinstance(layout, Layout):
        return layout
    text = os.fspath(layout)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        return Layout.read(text)
    known = registered_layouts()
    if text not in known:
        close = difflib.get_close_matches(text, list(known), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise HizkitError(
            f"unknown layout '{text}'.{hint} Known layouts: {', '.join(sorted(known))} "
            "(or give a path to a layout TOML file)"
        )
    return known[text]
