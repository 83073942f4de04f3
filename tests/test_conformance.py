"""hizkit.testing's conformance checks on every registered plugin: the builtins and the
installed (entry-point) plugins alike, so a plugin is checked the moment it registers.
Plugins declare ``test_params`` to run quickly."""

from __future__ import annotations

from importlib import metadata

from hizkit.registry import ENTRY_POINT_GROUP, Registry
from hizkit.testing import ProbeClassifier, parametrize_with_checks

#: installed plugins included: the checks are what a third-party plugin must pass too
REGISTRY = Registry(autoload=True)
PLUGINS = [info.cls for info in REGISTRY.all()]


@parametrize_with_checks([*PLUGINS, ProbeClassifier], registry=REGISTRY)
def test_conformance(plugin, check, request):
    if getattr(plugin, "needs_location", False):
        # the contract: a source that reads files is given the simulated survey written
        # in the JADES v2.0 layout
        check(plugin, location=request.getfixturevalue("jades_field"))
    else:
        check(plugin)


def test_every_kind_has_builtins():
    for kind in ("data_source", "preprocessor", "classifier", "evaluator"):
        assert REGISTRY.names(kind), kind


def test_installed_plugins_are_checked():
    installed = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    checked = {info.provider for info in REGISTRY.all()}
    broken = {b.name for b in REGISTRY.broken}
    assert installed <= checked | broken


def test_bad_classifier_value_is_refused_before_training(tmp_path, capsys):
    from hizkit.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('[classifiers.cnn]\nselect_by = "accuracy"\n')
    rc = main(["bench", "--classifiers", "colour,cnn", "--config", str(cfg),
               "--out", str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "select_by" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
