"""The hook specifications: the only way a plugin adds anything to hizkit.

The four plugin-kind hooks are named ``hizkit_register_<kind>``, take no arguments and
return a list of classes implementing one of the contracts in :mod:`hizkit.contracts`.
All implementations are called (none is ``firstresult``): each plugin module contributes
zero or more classes, and the registry checks that no two contribute the same name.
Two more hooks add what is not a plugin kind: subcommands of the ``hizkit`` command line
(:func:`hizkit_register_commands`, as datasette's ``register_commands``) and survey
layouts for the ``jades`` data source (:func:`hizkit_register_layouts`).

A plugin module looks like::

    import hizkit

    class MyClassifier(hizkit.Classifier):
        name = "mine"
        ...

    @hizkit.hookimpl
    def hizkit_register_classifiers():
        return [MyClassifier]
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from hizkit.contracts import Classifier, DataSource, Evaluator, Preprocessor

PROJECT = "hizkit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def hizkit_register_data_sources() -> list[type[DataSource]]:
    """Return the data source classes this plugin provides.

    Called once, when the registry is built. A data source turns a location (a directory,
    a file, or nothing for generated data) into a :class:`hizkit.Dataset`.
    """


@hookspec
def hizkit_register_preprocessors() -> list[type[Preprocessor]]:
    """Return the preprocessor classes this plugin provides.

    Called once, when the registry is built. A preprocessor is fitted on the training part
    of a split and transforms any part; ``training_only`` ones (augmentation) are applied to
    the training part alone.
    """


@hookspec
def hizkit_register_classifiers() -> list[type[Classifier]]:
    """Return the classifier classes this plugin provides.

    Called once, when the registry is built. A classifier maps a prepared
    :class:`hizkit.Dataset` to probabilities over :data:`hizkit.CLASSES`.
    """


@hookspec
def hizkit_register_evaluators() -> list[type[Evaluator]]:
    """Return the evaluator classes this plugin provides.

    Called once, when the registry is built. An evaluator turns the truth and the predicted
    probabilities on the test part into metrics, and optionally draws figures.
    """


@hookspec
def hizkit_register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``hizkit`` command line.

    Called once per run of the command line, after the core's own commands. Add each
    command with ``subparsers.add_parser(name, help=..., description=...)`` and give it
    ``set_defaults(func=run)``, where ``run(args: argparse.Namespace) -> int`` returns the
    exit status; a :class:`hizkit.HizkitError` it raises is shown as one line (exit 2).
    Return nothing.
    A name already taken is refused, naming the plugin. This keeps what only one plugin
    can do (``hizkit simulate`` writes the ``mock`` survey to files) in that plugin.
    """


@hookspec
def hizkit_register_layouts() -> list[str | PathLike | Any]:
    """Return survey layouts for the ``jades`` data source.

    Called whenever the ``jades`` source looks a layout up by name or detects one.
    Each item is a path to a layout TOML file (see ``plugins/layouts/*.toml`` and
    CONTRIBUTING) or a :class:`hizkit.layouts.Layout`; it is then known by its ``name``
    (``layout = "<name>"``) and tried when the layout is detected. A layout is data: a
    new data release needs a file, not code.
    """
