"""Survey layouts as checked objects: a malformed TOML file is one line naming the file
and the key; a layout is given by name or as a path, or registered by a plugin."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import one_line

import hizkit
from hizkit.cli import main
from hizkit.plugins.jades import JadesSource, Layout, known_layouts, load_layout
from hizkit.plugins.jades.layouts import LAYOUTS
from hizkit.registry import Registry

V2 = (LAYOUTS / "jades_v2.toml").read_text()


@pytest.mark.parametrize(
    "change, needles",
    [
        (("radius_pixel_scale = 0.03", 'radius_pixel_scale = "0.03"'), ("radius_pixel", "number")),
        (('radius_unit = "arcsec"', 'radius_unt = "arcsec"'), ("radius_unt", "radius_unit")),
        (('flux = "{ext}:{BAND}_{aperture}"', 'flux = "{BAND}_{aperture}"'), ("columns.flux",)),
        (('flux = "{ext}:{BAND}_{aperture}"', 'flux = "{ext}:{bnd}"'), ("placeholder", "bnd")),
        (('ra = "FLAG:RA"', ""), ("layout lacks columns.ra",)),
        (('default_aperture = "CIRC2"', 'default_aperture = "CIRC9"'), ("apertures.CIRC9",)),
        (('grid = "common"', 'grid = "same"'), ("mosaics.grid", "'per_band'")),
        (('flux_unit = "nJy"', 'flux_unit = "MJy/sr"'), ("flux_unit", "flux density")),
        (("\n[photoz]\n", "\n[photoz\n"), ("not valid TOML",)),
        (('CIRC1 = { ext = "CIRC" }', "CIRC1 = 3"), ("apertures.CIRC1 must be a table",)),
    ],
)
def test_a_malformed_layout_file_is_one_line_naming_file_and_key(tmp_path, change, needles):
    path = tmp_path / "broken.toml"
    old, new = change
    assert old in V2
    path.write_text(V2.replace(old, new, 1))
    one_line(lambda: load_layout(path), str(path), *needles)


def test_a_layout_given_as_a_path(jades_field, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(V2.replace('name = "jades_v2"', 'name = "mine"'))
    assert load_layout(str(path)).name == "mine"
    source = JadesSource(layout=str(path), labels="truth", cutout_size=32)
    ds = source.load(str(jades_field))
    assert ds.meta["layout"] == "mine" and ds.cutouts.shape[1:] == (7, 32, 32)
    one_line(
        lambda: JadesSource(layout=str(tmp_path / "none.toml")).load(str(jades_field)),
        "none.toml: layout file not found",
    )
    one_line(lambda: load_layout("jades_v3"), "unknown layout 'jades_v3'", "jades_v2")


def test_typed_fields_replace_raw_lookups():
    lay = load_layout("epochs")
    assert lay.case_insensitive is True and lay.mosaics.science_suffixes[0] == "_sci"
    assert lay.spec("flux", "F444W", "D050") == ("OBJECTS", "FLUX_APER_F444W_aper_corr_Jy", 1)
    assert load_layout("dja").photoz.patterns[0] == "{root}-fix.eazypy.zout.fits*"
    assert load_layout("jades_v5").spec("flux", "F200W", "KRON_CONV").name == "F200W_KRON"


class LayoutPlugin:
    def __init__(self, *layouts) -> None:
        self.layouts = layouts

    @hizkit.hookimpl
    def hizkit_register_layouts(self):
        return list(self.layouts)


@pytest.fixture
def with_plugins(monkeypatch):
    """The process registry replaced by one with the builtins and the given plugins."""

    def install(*plugins) -> Registry:
        reg = Registry(autoload=False)
        for i, plugin in enumerate(plugins):
            reg.register(plugin, name=f"tests.layouts{i}")
        monkeypatch.setattr("hizkit.registry._CURRENT", [reg])
        return reg

    return install


def test_a_plugin_registers_layouts_by_path_or_object(jades_field, tmp_path, with_plugins):
    path = tmp_path / "release_x.toml"
    path.write_text(V2.replace('name = "jades_v2"', 'name = "release_x"'))
    as_object = dataclasses.replace(load_layout("jades_v2"), name="release_y")
    with_plugins(LayoutPlugin(path, as_object))
    assert {"jades_v2", "release_x", "release_y"} <= set(known_layouts())
    for name in ("release_x", "release_y"):
        ds = JadesSource(layout=name, labels="truth", cutout_size=32).load_catalog(str(jades_field))
        assert ds.meta["layout"] == name and len(ds) > 0


def test_two_layouts_of_one_name_are_refused_naming_both(with_plugins, tmp_path):
    path = tmp_path / "copy.toml"
    path.write_text(V2)
    with_plugins(LayoutPlugin(path))
    one_line(known_layouts, "jades_v2", "hizkit.plugins.jades", "tests.layouts0")


def test_a_layout_built_in_code_is_checked_too():
    lay = load_layout("jades_v2")
    assert isinstance(lay, Layout) and lay.path == LAYOUTS / "jades_v2.toml"
    one_line(
        lambda: Layout.from_dict({"name": "x", "catalog": "*.fits"}),
        "layout x",
        "layout lacks key",
    )
    # a plugin's Layout object is checked as a file is
    one_line(
        lambda: dataclasses.replace(lay, default_aperture="CIRC9", path=None),
        "layout jades_v2",
        "apertures.CIRC9",
    )


def test_the_cli_reports_a_broken_layout_in_one_line(jades_field, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(V2 + "\nthe_grid = 1\n")  # a typo: an unknown key in [mosaics]
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[data]\nsource = "jades"\nlocation = "{jades_field}"\nlayout = "{path}"\n'
        'labels = "truth"\n'
    )
    out = tmp_path / "run"
    rc = main(["bench", "--config", str(cfg), "--classifiers", "colour", "--out", str(out)])
    one_line((rc, capsys.readouterr().err), "bad.toml", "the_grid")
    assert not out.exists()
