"""The plugin registry: one small class owns the pluggy manager.

Builtin plugins are the modules in :data:`BUILTIN_PLUGINS`, registered through the very
hooks a third-party plugin implements. Third-party plugins are found through the
``hizkit`` entry-point group; set ``HIZKIT_DISABLE_PLUGIN_AUTOLOAD=1`` to skip them.
Nothing else in hizkit touches ``pm.hook`` directly.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

import pluggy

from hizkit import hookspecs, progress
from hizkit.contracts import CONTRACTS, Plugin
from hizkit.errors import HizkitError

ENTRY_POINT_GROUP = "hizkit"
DISABLE_AUTOLOAD_ENV = "HIZKIT_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "hizkit.plugins.mock",
    "hizkit.plugins.jades",
    "hizkit.plugins.segment",
    "hizkit.plugins.normalise",
    "hizkit.plugins.augment",
    "hizkit.plugins.hog",
    "hizkit.plugins.baselines",
    "hizkit.plugins.colour",
    "hizkit.plugins.xgb",
    "hizkit.plugins.xgb_phot",
    "hizkit.plugins.rf",
    "hizkit.plugins.cnn",
    "hizkit.plugins.photoz",
    "hizkit.plugins.metrics",
    "hizkit.plugins.figures",
)

#: hook name for each plugin kind
HOOKS: dict[str, str] = {
    "data_source": "hizkit_register_data_sources",
    "preprocessor": "hizkit_register_preprocessors",
    "classifier": "hizkit_register_classifiers",
    "evaluator": "hizkit_register_evaluators",
}
#: the hooks that add something other than a plugin class: subcommands, survey layouts
COMMANDS_HOOK = "hizkit_register_commands"
LAYOUTS_HOOK = "hizkit_register_layouts"
KIND_WORDS = {
    "data_source": "data source",
    "preprocessor": "preprocessor",
    "classifier": "classifier",
    "evaluator": "evaluator",
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin class and where it came from."""

    name: str
    kind: str
    cls: type[Plugin]
    provider: str  # the registering module or entry point
    distribution: str
    version: str

    @property
    def description(self) -> str:
        return self.cls.description

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "distribution": self.distribution,
            "version": self.version,
            "provider": self.provider,
            "description": self.description,
        }


@dataclass(frozen=True)
class BrokenPlugin:
    """An installed plugin that could not be loaded, and why."""

    name: str
    distribution: str
    version: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": "broken",
            "distribution": self.distribution,
            "version": self.version,
            "provider": self.name,
            "description": self.error,
        }


class Registry:
    """Discovers plugins, checks them, and creates them by name."""

    def __init__(
        self, builtins: tuple[str, ...] = BUILTIN_PLUGINS, autoload: bool | None = None
    ) -> None:
        if autoload is None:
            autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._builtins = set(builtins)
        #: installed plugins that failed to load or whose hook raised: skipped, reported
        self.broken: list[BrokenPlugin] = []
        self._dists: dict[str, tuple[str, str]] = {}
        for module_name in builtins:
            self._pm.register(importlib.import_module(module_name), name=module_name)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise HizkitError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
        if autoload:
            self.load_entry_points()
        self._plugins: dict[str, dict[str, PluginInfo]] = {k: {} for k in HOOKS}
        for kind in HOOKS:
            self._collect(kind)
        if self.broken:  # a hook that raised: collect again without its plugin
            for kind in HOOKS:
                self._collect(kind)

    def load_entry_points(self) -> None:
        """Register the installed plugins of the ``hizkit`` entry-point group. One that
        fails to import or declares an unknown hook is reported in one line and skipped:
        the others keep working."""
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self._pm.get_plugin(ep.name) is not None or self._pm.is_blocked(ep.name):
                continue
            dist = (ep.dist.name, ep.dist.version) if ep.dist else (ep.value, "?")
            self._dists[ep.name] = dist
            try:
                self._pm.register(ep.load(), name=ep.name)
                self._pm.check_pending()
            except Exception as exc:
                self._skip(ep.name, exc)  # unregisters it too

    def _skip(self, provider: str, exc: BaseException) -> None:
        dist, version = self._dists.get(provider, (provider, "?"))
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        self.broken.append(BrokenPlugin(provider, dist, version, error))
        if self._pm.get_plugin(provider) is not None:
            self._pm.unregister(name=provider)
        progress.warn(
            f"plugin {provider} ({dist} {version}) is broken and skipped: {error}. "
            f"Set {DISABLE_AUTOLOAD_ENV}=1 to skip every installed plugin"
        )

    def register(self, module: Any, name: str | None = None) -> None:
        """Register one more plugin object (tests and notebooks use this). A plugin that
        fails the checks is unregistered again, so the registry stays usable."""
        name = self._pm.register(module, name=name)
        try:
            try:
                self._pm.check_pending()
            except pluggy.PluginValidationError as exc:
                raise HizkitError(f"plugin {name!r} implements an unknown hook: {exc}") from None
            for kind in HOOKS:
                self._collect(kind)
        except BaseException:
            self._pm.unregister(name=name)
            for kind in HOOKS:
                self._collect(kind)
            raise

    def _collect(self, kind: str) -> None:
        contract = CONTRACTS[kind]
        found: dict[str, PluginInfo] = {}
        for impl in self._impls(HOOKS[kind]):
            provider = impl.plugin_name
            for cls in self._answer(impl) or []:
                if not (isinstance(cls, type) and issubclass(cls, contract)):
                    raise HizkitError(
                        f"plugin {provider} registered {cls!r} as a {KIND_WORDS[kind]}, "
                        f"but it does not subclass hizkit.{contract.__name__}"
                    )
                if not NAME_PATTERN.match(cls.name or ""):
                    raise HizkitError(
                        f"plugin {provider}: {cls.__name__}.name={cls.name!r} is not a valid "
                        "name (lower case letters, digits, '_' or '-')"
                    )
                if cls.name in found:
                    other = found[cls.name].provider
                    raise HizkitError(
                        f"two plugins claim the {KIND_WORDS[kind]} name '{cls.name}': "
                        f"{other} and {provider}"
                    )
                dist, version = self._dists.get(provider, ("hizkit", _own_version()))
                found[cls.name] = PluginInfo(cls.name, kind, cls, provider, dist, version)
        self._plugins[kind] = found

    def _impls(self, hook_name: str) -> list[Any]:
        """The implementations of one hook, builtins first (registration order), broken
        plugins left out."""
        broken = {b.name for b in self.broken}
        impls = getattr(self._pm.hook, hook_name).get_hookimpls()
        return [impl for impl in impls if impl.plugin_name not in broken]

    def _answer(self, impl: Any, **kwargs: Any) -> Any:
        """One plugin's answer to a hook. An installed plugin whose hook raises is
        reported in one line and skipped (None); a builtin's error propagates."""
        try:
            return impl.function(**kwargs)
        except Exception as exc:
            if impl.plugin_name in self._builtins:
                raise
            self._skip(impl.plugin_name, exc)
            return None

    def add_commands(self, subparsers: argparse._SubParsersAction) -> None:
        """Let every plugin add its subcommands to the ``hizkit`` command line
        (``hizkit_register_commands``); a name already taken is refused, naming the
        plugin (an installed plugin is then skipped with a warning, as a broken one)."""
        for impl in self._impls(COMMANDS_HOOK):
            try:
                self._answer(impl, subparsers=subparsers)
            except argparse.ArgumentError as exc:
                raise HizkitError(f"plugin {impl.plugin_name}: {exc.message}") from None

    def layouts(self) -> list[tuple[str, Any]]:
        """``(provider, layout)`` for every survey layout a plugin registers
        (``hizkit_register_layouts``: TOML paths or layout objects), builtins first."""
        return [
            (impl.plugin_name, item)
            for impl in self._impls(LAYOUTS_HOOK)
            for item in self._answer(impl) or []
        ]

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self._plugins[kind])

    def info(self, kind: str, name: str) -> PluginInfo:
        """The registered plugin of ``kind`` called ``name``, or a one-line error."""
        try:
            return self._plugins[kind][name]
        except KeyError:
            pass
        known = self.names(kind)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise HizkitError(
            f"unknown {KIND_WORDS[kind]} '{name}'.{hint} "
            f"Known {KIND_WORDS[kind]}s: {', '.join(known) or '(none)'}"
        )

    def get(self, kind: str, name: str) -> type[Plugin]:
        return self.info(kind, name).cls

    def create(self, kind: str, name: str, **params: Any) -> Any:
        """Instantiate the named plugin with ``params`` (unknown parameters are an error)."""
        return self.get(kind, name).create(**params)

    def all(self) -> list[PluginInfo]:
        """Every registered plugin, grouped by kind."""
        return [info for kind in HOOKS for _, info in sorted(self._plugins[kind].items())]


@lru_cache(maxsize=1)
def _own_version() -> str:
    try:
        return metadata.version("hizkit")
    except metadata.PackageNotFoundError:
        return "0+unknown"


#: the process-wide registry; tests put their own in its place (``use_registry``)
_CURRENT: list[Registry] = []


def get_registry() -> Registry:
    """The process-wide registry (builtins plus installed plugins), built on first use."""
    if not _CURRENT:
        _CURRENT.append(Registry())
    return _CURRENT[-1]


@contextlib.contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the process-wide one inside the block (tests, embedding)."""
    get_registry()
    _CURRENT.append(registry)
    try:
        yield registry
    finally:
        _CURRENT.remove(registry)
