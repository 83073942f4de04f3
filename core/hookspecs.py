"""The hook specifications: the only way a plugin adds anything to hizkit.

Every hook is named ``hizkit_register_<kind>``, takes no arguments and returns a list of
classes implementing one of the contracts in :mod:`hizkit.contracts`. All implementations
are called (none is ``firstresult``): each plugin module contributes zero or more classes,
and the registry checks that no two contribute the same name.

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

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
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
