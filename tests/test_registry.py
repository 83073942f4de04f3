from __future__ import annotations

import pytest

import hizkit
from hizkit import hookspecs
from hizkit.registry import BUILTIN_PLUGINS, COMMANDS_HOOK, HOOKS, LAYOUTS_HOOK, Registry


def test_builtins_cover_every_kind_and_come_from_hizkit():
    reg = Registry(autoload=False)
    infos = reg.all()
    assert {i.kind for i in infos} == set(HOOKS)
    assert {i.provider for i in infos} <= set(BUILTIN_PLUGINS)
    assert all(i.distribution == "hizkit" and i.version for i in infos)
    for expected in ("mock", "cnn", "rf", "xgb", "colour", "segment", "normalise", "hog"):
        assert expected in {i.name for i in infos}


def test_unknown_name_lists_known_and_suggests():
    reg = Registry(autoload=False)
    with pytest.raises(hizkit.HizkitError) as err:
        reg.info("classifier", "cnm")
    msg = str(err.value)
    assert "Did you mean 'cnn'?" in msg
    assert "colour" in msg and "\n" not in msg


def test_duplicate_name_names_both_providers():
    class Dupe(hizkit.Classifier):
        name = "cnn"

    class Plugin:
        @hizkit.hookimpl
        def hizkit_register_classifiers(self):
            return [Dupe]

    reg = Registry(autoload=False)
    with pytest.raises(hizkit.HizkitError, match=r"hizkit.plugins.cnn and third.party"):
        reg.register(Plugin(), name="third.party")


def test_misspelt_hook_fails_loudly():
    class Typo:
        @hizkit.hookimpl
        def hizkit_register_clasifiers(self):
            return []

    reg = Registry(autoload=False)
    with pytest.raises(Exception, match=r"unknown hook|hizkit_register_clasifiers"):
        reg.register(Typo(), name="typo")


def test_wrong_contract_is_rejected():
    class NotAClassifier:
        name = "nope"

    class Plugin:
        @hizkit.hookimpl
        def hizkit_register_classifiers(self):
            return [NotAClassifier]

    reg = Registry(autoload=False)
    with pytest.raises(hizkit.HizkitError, match=r"does not subclass hizkit\.Classifier"):
        reg.register(Plugin(), name="bad")


def test_every_hook_is_documented_and_prefixed():
    specs = [n for n in dir(hookspecs) if n.startswith("hizkit_")]
    assert sorted(specs) == sorted([*HOOKS.values(), COMMANDS_HOOK, LAYOUTS_HOOK])
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Called" in doc and "Return" in doc, name


def test_autoload_switch(monkeypatch):
    calls = []
    monkeypatch.setenv("HIZKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setattr(Registry, "load_entry_points", lambda self: calls.append("hizkit"))
    Registry()
    assert calls == []
    monkeypatch.delenv("HIZKIT_DISABLE_PLUGIN_AUTOLOAD")
    Registry()
    assert calls == ["hizkit"]


class _EntryPoint:
    """What importlib.metadata gives for an installed plugin, loading ``target``."""

    def __init__(self, name, target):
        self.name, self.value, self.dist, self._target = name, f"{name}_module", None, target

    def load(self):
        return self._target()


class _RaisingHook:
    @hizkit.hookimpl
    def hizkit_register_classifiers(self):
        raise RuntimeError("this plugin's hook is broken")


def _missing_module():
    raise ImportError("No module named 'numpyy'")


def test_broken_installed_plugins_are_skipped_and_listed(monkeypatch, capsys):
    from hizkit import registry as reg_mod

    eps = [_EntryPoint("badimport", _missing_module), _EntryPoint("badhook", _RaisingHook)]
    monkeypatch.setattr(reg_mod.metadata, "entry_points", lambda group: eps)
    reg = Registry(autoload=True)
    assert {b.name for b in reg.broken} == {"badimport", "badhook"}
    assert "cnn" in reg.names("classifier")  # everything else keeps working
    err = capsys.readouterr().err
    assert "numpyy" in err and "this plugin's hook is broken" in err
    assert "HIZKIT_DISABLE_PLUGIN_AUTOLOAD=1" in err
    assert {d["kind"] for d in (b.as_dict() for b in reg.broken)} == {"broken"}


def test_failed_register_leaves_the_registry_usable():
    class NotAClassifier:
        name = "nope"

    class Bad:
        @hizkit.hookimpl
        def hizkit_register_classifiers(self):
            return [NotAClassifier]

    reg = Registry(autoload=False)
    with pytest.raises(hizkit.HizkitError):
        reg.register(Bad(), name="bad")
    assert "cnn" in reg.names("classifier")
    reg.register(type("Fine", (), {})(), name="fine")  # registering still works
