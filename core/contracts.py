"""The four plugin contracts: data sources, preprocessors, classifiers, evaluators.

Conventions follow scikit-learn: ``__init__`` only stores its keyword parameters (so
``get_params`` can read them back), learned state ends in ``_``, and ``fit`` returns self.
Every plugin class carries a unique ``name`` and a one-line ``description``.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from hizkit.calibration import training_prior
from hizkit.dataset import CLASSES, Dataset
from hizkit.errors import HizkitError

Input = Literal["cutouts", "photometry", "features", "unlabelled"]


class Plugin:
    """What every plugin class shares: a name, a description and its parameters."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    #: parameters that make the plugin quick enough for the shared conformance test
    test_params: ClassVar[dict[str, Any]] = {}

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]

    @classmethod
    def create(cls, **params: Any) -> Plugin:
        """Instantiate with user-given parameters, rejecting unknown names in one line."""
        known = cls.param_names()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise HizkitError(
                f"{cls.kind} '{cls.name}' has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are: {', '.join(known) or '(none)'}"
            )
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise HizkitError(f"{cls.kind} '{cls.name}': {exc}") from None

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.param_names()}

    def set_params(self, **params: Any) -> Plugin:
        for k, v in params.items():
            if k not in self.param_names():
                raise HizkitError(f"{self.kind} '{self.name}' has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def read_json(path: Path) -> Any:
    """A JSON file hizkit wrote, or a one-line error naming it when it is damaged."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HizkitError(f"{path}: damaged, not valid JSON ({exc})") from None


class Saveable:
    """Save and load a fitted plugin as a directory of safe formats: its parameters as
    JSON (``<kind>.json``) and its learned state written by :meth:`_save_state` (JSON,
    ``.npz`` without pickles, torch state dicts read with ``weights_only=True``).
    Loading never unpickles code."""

    name: ClassVar[str]
    kind: ClassVar[str]

    def save(self, directory: str | Path) -> None:
        """Write parameters (JSON) and learned state (safe formats) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"plugin": self.name, "params": self.get_params()}  # type: ignore[attr-defined]
        (directory / f"{self.kind}.json").write_text(json.dumps(meta, indent=2, default=str))
        self._save_state(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Any:
        """Rebuild a plugin written by :meth:`save`."""
        directory = Path(directory)
        meta_path = directory / f"{cls.kind}.json"
        if not meta_path.exists():
            raise HizkitError(f"{directory}: no {meta_path.name}, not a saved hizkit {cls.kind}")
        meta = read_json(meta_path)
        if meta.get("plugin") != cls.name:
            raise HizkitError(f"{directory} holds a '{meta.get('plugin')}', not a '{cls.name}'")
        obj = cls.create(**meta.get("params", {}))  # type: ignore[attr-defined]
        obj._load_state(directory)
        return obj

    def _save_state(self, directory: Path) -> None:
        """Write the learned state in a safe format (nothing for stateless plugins)."""

    def _load_state(self, directory: Path) -> None:
        """Read back what :meth:`_save_state` wrote."""


class DataSource(Plugin, ABC):
    """Turns a location into a :class:`Dataset`.

    ``hizkit bench --data NAME[:LOCATION]`` creates the source with the options of the
    ``[data]`` config table and calls :meth:`load` with LOCATION (``None`` when absent).
    """

    kind: ClassVar[str] = "data_source"
    #: True when :meth:`load` reads files: the conformance test then passes a directory
    #: of simulated files in the JADES v2.0 layout as the location
    needs_location: ClassVar[bool] = False
    #: parameters that make :meth:`load_catalog` read a field to classify, with no labels
    #: or photo-z required (``hizkit predict`` applies them unless the user set them)
    field_params: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def load(self, location: str | None = None) -> Dataset:
        """Return the dataset. Raise :class:`HizkitError` for unreadable or bad input."""

    def load_catalog(self, location: str | None = None) -> Dataset:
        """The sources before their cutouts are cut, for work done in chunks
        (``hizkit predict``): a source that reads mosaics returns its catalog with
        ``cutouts=None`` here and cuts them in :meth:`load_cutouts`, so memory stays bounded
        by the chunk. The default loads everything (cutouts included)."""
        return self.load(location)

    def load_cutouts(self, location: str | None, part: Dataset) -> Dataset:
        """``part`` (rows of :meth:`load_catalog`, in any order) with its cutouts. The
        default returns ``part`` as it is: :meth:`load_catalog` already cut them."""
        return part


class Preprocessor(Saveable, Plugin, ABC):
    """A step between the split and the classifier.

    ``fit`` sees the training part only; ``transform`` may see any part. Set
    ``training_only = True`` for steps that must never touch validation or test data
    (augmentation): the harness applies them to the training part alone. Set
    ``per_source = True`` when the step has no fitted state and treats each source on its
    own (segmentation): the harness may then run it once over the whole dataset.

    A fitted preprocessor is saved with the trained model (:meth:`save` / :meth:`load`);
    a step with learned state overrides ``_save_state`` / ``_load_state``. Every
    statistic it applies must be learned in ``fit``, never taken from the batch given to
    ``transform``: a source's result may not depend on which other sources share its batch.
    """

    kind: ClassVar[str] = "preprocessor"
    training_only: ClassVar[bool] = False
    per_source: ClassVar[bool] = False

    def fit(self, train: Dataset) -> Preprocessor:
        return self

    @abstractmethod
    def transform(self, data: Dataset) -> Dataset:
        """Return a new dataset; never modify ``data`` in place."""

    def fit_transform(self, train: Dataset) -> Dataset:
        return self.fit(train).transform(train)


class Classifier(Saveable, Plugin, ABC):
    """Maps a prepared dataset to probabilities over :data:`CLASSES`.

    ``requires`` names the inputs it reads; the harness checks the dataset has them.
    ``preprocessors`` is the default chain of preprocessor names run before it (a config
    file may replace it). ``save`` / ``load`` use a directory of safe formats only: JSON,
    ``.npz`` without pickles, torch state dicts loaded with ``weights_only=True``.
    ``predict_proba`` must give a source the same probabilities whatever else is in the
    batch (imputation values, scalings: learn them in ``fit``); the conformance test checks.
    """

    kind: ClassVar[str] = "classifier"
    requires: ClassVar[frozenset[Input]] = frozenset()
    preprocessors: ClassVar[tuple[str, ...]] = ()
    #: bands the classifier reads by name; the harness checks them before any training
    bands_needed: ClassVar[tuple[str, ...]] = ()
    #: catalog columns it reads by name (``photoz``: ``z_phot``); checked the same way
    catalog_columns: ClassVar[frozenset[str]] = frozenset()
    #: a reference row (e.g. the template-fitting ceiling) that ``hizkit bench`` adds to
    #: every comparison unless ``[bench] ceiling = false``; left out, with one log line,
    #: where the data lacks what it needs
    reference: ClassVar[bool] = False
    classes_: tuple[str, ...] = CLASSES

    @abstractmethod
    def fit(self, train: Dataset, valid: Dataset | None = None) -> Classifier:
        """Learn from ``train``; ``valid`` may choose epochs or stop early. Return self."""

    @abstractmethod
    def predict_proba(self, data: Dataset) -> np.ndarray:
        """Return ``(N, 3)`` probabilities in the order of :data:`CLASSES`, rows summing to 1."""

    def predict(self, data: Dataset) -> np.ndarray:
        """Return class names, one per source."""
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(data), axis=1)]

    def training_prior(self, y: np.ndarray) -> np.ndarray:
        """The class prior at which its probabilities are posteriors, given its training
        labels ``y``: uniform over the classes present when it weighs the classes equally
        (a ``class_weight="balanced"`` parameter, scikit-learn's convention), else their
        frequencies. Calibration and the shift to a field's priors start from it
        (:mod:`hizkit.field`); override it when the classifier differs."""
        balanced = getattr(self, "class_weight", None) == "balanced"
        return training_prior(y, "balanced" if balanced else None)

    def diagnostics(self) -> Diagnostics | None:
        """What the fitted classifier can show about itself (training history, an
        embedding, clusters), or ``None``: the one way evaluators learn about a
        classifier's insides, so none needs to know another plugin's attributes."""
        return None

    @abstractmethod
    def _save_state(self, directory: Path) -> None:
        """Write the learned state in a safe format."""

    @abstractmethod
    def _load_state(self, directory: Path) -> None:
        """Read back what :meth:`_save_state` wrote."""


@dataclass
class Diagnostics:
    """A fitted classifier's view of itself (:meth:`Classifier.diagnostics`); every field
    is optional and evaluators draw what is there.

    ``history``: one record per epoch, keys like ``epoch``, ``train_loss``, ``val_loss``,
    ``val_balanced_accuracy``, ``lr`` (the ``learning_curve`` figure). ``embedding``: an
    ``(M, 2)`` map of the sources the classifier learned from; ``clusters``: their cluster
    ids (``-1`` noise), ``silhouette`` its score (the ``clustering`` evaluator).
    ``extra``: anything else, by name; keys read by builtin evaluators: ``"z"`` (the
    redshift of each embedded source, ``(M,)``).
    """

    history: list[dict[str, float]] | None = None
    embedding: np.ndarray | None = None
    clusters: np.ndarray | None = None
    silhouette: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    """What an evaluator returns for one classifier in one run.

    ``metrics`` are scalars (averaged over runs in the report); ``details`` hold arrays
    for figures and the JSON record (confusion matrices, curves), JSON-serialisable.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlotView:
    """What :meth:`Evaluator.plot` sees of a finished benchmark: a narrow, stable view
    rather than the harness's internals, so an evaluator keeps working when those change.

    ``labels`` are the classifier labels in the order configured; ``tests[run]`` is the
    test part of each run's split as loaded (before any preprocessing: cutouts, bands,
    catalog); per label, one entry per run: ``proba`` (rows of ``tests[run]``, columns
    ``classes``), ``evaluations`` (this evaluator's :class:`Evaluation`), ``headline`` (the
    core's metrics; the confusion matrix in ``details["confusion"]``) and ``diagnostics``
    (:meth:`Classifier.diagnostics`, ``None`` where the classifier has none).
    """

    labels: list[str]
    tests: list[Dataset]
    proba: dict[str, list[np.ndarray]]
    evaluations: dict[str, list[Evaluation]]
    headline: dict[str, list[Evaluation]]
    diagnostics: dict[str, list[Diagnostics | None]]
    classes: tuple[str, ...] = CLASSES

    def y_true(self, run: int) -> np.ndarray:
        """Class indices of the test sources of ``run``."""
        return self.tests[run].y

    def ids(self, run: int) -> np.ndarray:
        """Catalog ids of the test sources of ``run``."""
        return self.tests[run].catalog["id"].to_numpy()


class Evaluator(Plugin, ABC):
    """Turns truth and predicted probabilities on the test part into metrics and figures.

    The headline metrics (confusion matrix, per-class TPR/TNR, accuracy, balanced
    accuracy, macro F1: :mod:`hizkit.metrics`) are computed by the harness for every
    classifier; evaluators add to them.
    """

    kind: ClassVar[str] = "evaluator"

    @abstractmethod
    def evaluate(
        self, y_true: np.ndarray, proba: np.ndarray, test: Dataset, classifier: Classifier
    ) -> Evaluation:
        """Score one classifier's predictions (``y_true`` holds class indices)."""

    def plot(self, view: PlotView, out_dir: Path) -> list[Path]:
        """Draw PNG figures into ``out_dir`` and return their paths (none to draw: ``[]``)."""
        return []


CONTRACTS: dict[str, type[Plugin]] = {
    "data_source": DataSource,
    "preprocessor": Preprocessor,
    "classifier": Classifier,
    "evaluator": Evaluator,
}
