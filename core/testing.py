"""Conformance checks for hizkit plugins, to run from a plugin's own test suite.

As scikit-learn's ``check_estimator`` / ``parametrize_with_checks``: every contract hizkit
relies on is checked on the plugin class, on data the checks make themselves (the builtin
``mock`` survey at a small size, built once per process and cached on disk)::

    from hizkit.testing import parametrize_with_checks

    from my_package import MyClassifier


    @parametrize_with_checks([MyClassifier])
    def test_hizkit_conformance(plugin, check):
        check(plugin)

or, in one call that stops at the first failure, ``check_plugin(MyClassifier)``. Plugins
declare ``test_params`` that make them quick (a few epochs, a few trees). A data source
that reads files (``needs_location``) is given ``location=`` (a directory in its format);
without one its loading check is skipped. A classifier whose default preprocessor chain
names plugins of a registry other than the installed one is given ``registry=``.

What is checked, by kind:

- every plugin: a valid name and a one-line description; ``__init__`` stores its
  parameters unchanged and ``get_params`` / ``create`` round-trip them; ``create`` rejects
  an unknown parameter in one line; the defaults pass ``validate_params`` (when defined);
- data sources: ``load`` gives a :class:`~hizkit.Dataset` with known labels, float32
  cutouts and photometry for every band;
- preprocessors: ``transform`` leaves its input untouched and keeps the sources; a
  subset's output equals the whole batch's rows; ``save`` / ``load`` give the same output;
- classifiers: ``fit`` returns self; ``predict_proba`` gives ``(N, 3)`` probabilities in
  [0, 1] with rows summing to 1 and leaves its input untouched; a subset's probabilities
  equal the whole batch's rows; ``save`` / ``load`` give the same probabilities;
  ``diagnostics`` returns a :class:`~hizkit.Diagnostics` or ``None``;
- evaluators: ``evaluate`` on a really fitted classifier (:class:`ProbeClassifier`, which
  reports every kind of diagnostics) gives float metrics and JSON details; ``plot`` on a
  two-run :class:`~hizkit.PlotView` returns PNG files that exist, in its directory.
"""

from __future__ import annotations

import functools
import json
import tempfile
import unittest
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hizkit.bench import BenchConfig, ClassifierSpec, Pipeline
from hizkit.contracts import (
    CONTRACTS,
    Classifier,
    DataSource,
    Diagnostics,
    Evaluation,
    Evaluator,
    PlotView,
    Plugin,
    Preprocessor,
)
from hizkit.dataset import CLASSES, Dataset, column_fill, impute, limit_magnitudes, make_split
from hizkit.errors import HizkitError
from hizkit.metrics import confusion, headline, rates
from hizkit.registry import NAME_PATTERN, Registry, get_registry

#: the simulated survey the checks run on (86 labelled sources, 1,500 unlabelled, 48-pixel
#: cutouts): small enough for a two-core machine, every class in every split part
EXAMPLE_SURVEY: dict[str, Any] = {
    "n_lowz": 40,
    "n_highz": 40,
    "n_brown_dwarfs": 6,
    "n_unlabelled": 1500,
    "cutout_size": 48,
    "seed": 3,
}

Check = Callable[..., None]


@functools.cache
def example_data() -> Dataset:
    """The survey the checks use: the builtin ``mock`` source with :data:`EXAMPLE_SURVEY`
    (built once per process; cached on disk like any mock survey)."""
    return Registry(autoload=False).create("data_source", "mock", **EXAMPLE_SURVEY).load()


# ------------------------------------------------------------------ a real classifier


class ProbeClassifier(Classifier):
    """A small real classifier for the evaluator checks, and an example of the contract:
    softmax regression on AB magnitudes, trained by a few epochs of gradient descent, that
    reports every kind of :class:`~hizkit.Diagnostics` (a per-epoch history, a 2-D
    embedding of its training sources, clusters, a silhouette, their redshifts) so
    evaluators drawing any of them are exercised."""

    name = "probe"
    description = "hizkit.testing: softmax regression on magnitudes, with diagnostics"
    requires: ClassVar[frozenset] = frozenset({"photometry"})

    def __init__(self, epochs: int = 25, learning_rate: float = 0.5, seed: int = 0) -> None:
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.seed = seed

    def _features(self, data: Dataset) -> np.ndarray:
        x = impute(limit_magnitudes(*data.photometry()), self.fill_)
        return np.column_stack([(x - self.mean_) / self.scale_, np.ones(len(x))])

    def fit(self, train: Dataset, valid: Dataset | None = None) -> ProbeClassifier:
        mags = limit_magnitudes(*train.photometry())
        self.fill_ = column_fill(mags)
        mags = impute(mags, self.fill_)
        self.mean_, self.scale_ = mags.mean(axis=0), mags.std(axis=0) + 1e-9
        x, onehot = self._features(train), np.eye(len(CLASSES))[train.y]
        rng = np.random.default_rng(self.seed)
        self.weights_ = rng.normal(0, 0.01, (x.shape[1], len(CLASSES)))
        self.history_: list[dict[str, float]] = []
        for epoch in range(1, self.epochs + 1):
            p = _softmax(x @ self.weights_)
            self.weights_ -= self.learning_rate * x.T @ (p - onehot) / len(x)
            record = {"epoch": float(epoch), "train_loss": _log_loss(p, train.y)}
            record["lr"] = float(self.learning_rate)
            if valid is not None and len(valid):
                pv = self.predict_proba(valid)
                record["val_loss"] = _log_loss(pv, valid.y)
                cm = confusion(valid.y, pv.argmax(axis=1))
                record["val_balanced_accuracy"] = rates(cm)["balanced_accuracy"]
            self.history_.append(record)
        _, _, axes = np.linalg.svd(x[:, :-1], full_matrices=False)
        self.embedding_ = x[:, :-1] @ axes[:2].T
        self.clusters_ = self.predict_proba(train).argmax(axis=1)
        self.silhouette_ = self._silhouette()
        self.z_ = train.catalog["z"].to_numpy(float) if "z" in train.catalog else None
        return self

    def predict_proba(self, data: Dataset) -> np.ndarray:
        return _softmax(self._features(data) @ self.weights_)

    def _silhouette(self) -> float | None:
        """The clusters' silhouette in the embedding (once per fit or load, not per call
        of :meth:`diagnostics`); ``None`` for a single cluster."""
        from sklearn.metrics import silhouette_score

        if len(np.unique(self.clusters_)) < 2:
            return None
        return float(silhouette_score(self.embedding_, self.clusters_))

    def diagnostics(self) -> Diagnostics:
        return Diagnostics(
            history=self.history_,
            embedding=self.embedding_,
            clusters=self.clusters_,
            silhouette=self.silhouette_,
            extra={} if self.z_ is None else {"z": self.z_},
        )

    def _save_state(self, directory: Path) -> None:
        z = {} if self.z_ is None else {"z": self.z_}
        np.savez(
            directory / "probe.npz",
            weights=self.weights_,
            fill=self.fill_,
            mean=self.mean_,
            scale=self.scale_,
            embedding=self.embedding_,
            clusters=self.clusters_,
            **z,
        )
        (directory / "history.json").write_text(json.dumps(self.history_))

    def _load_state(self, directory: Path) -> None:
        with np.load(directory / "probe.npz", allow_pickle=False) as f:
            self.weights_, self.fill_ = f["weights"], f["fill"]
            self.mean_, self.scale_ = f["mean"], f["scale"]
            self.embedding_, self.clusters_, self.z_ = f["embedding"], f["clusters"], f.get("z")
        self.history_ = json.loads((directory / "history.json").read_text())
        self.silhouette_ = self._silhouette()


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))


# ------------------------------------------------------------------ checks for every kind


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a is b or a == b


def check_metadata(cls: type[Plugin], **_: Any) -> None:
    """A plugin of a known kind, with a valid name and a one-line description."""
    assert cls.kind in CONTRACTS, f"{cls.__name__}: unknown kind {cls.kind!r}"
    assert issubclass(cls, CONTRACTS[cls.kind]), f"{cls.__name__} does not subclass its contract"
    assert NAME_PATTERN.match(cls.name or ""), f"{cls.__name__}.name={cls.name!r} is not valid"
    assert cls.description and "\n" not in cls.description, f"{cls.name}: one-line description"
    unknown = set(cls.test_params) - set(cls.param_names())
    assert not unknown, f"{cls.name}: test_params names no parameter {sorted(unknown)}"


def check_params_stored_unchanged(cls: type[Plugin], **_: Any) -> None:
    """``__init__`` stores each given parameter as it is; ``get_params`` reads back every
    parameter; creating from them gives the same parameters; ``set_params`` sets them."""
    plugin = cls.create(**cls.test_params)
    params = plugin.get_params()
    assert set(params) == set(cls.param_names()), f"{cls.name}: get_params misses parameters"
    for key, value in cls.test_params.items():
        assert _same(params[key], value), f"{cls.name}: {key}={value!r} stored as {params[key]!r}"
    again = cls.create(**params).get_params()
    for key, value in params.items():
        assert _same(again[key], value), f"{cls.name}: {key} does not round-trip"
    assert plugin.set_params(**params) is plugin


def check_create_rejects_unknown_parameters(cls: type[Plugin], **_: Any) -> None:
    """A misspelt parameter is a one-line :class:`HizkitError`, not a TypeError."""
    try:
        cls.create(no_such_parameter=1)
    except HizkitError as exc:
        assert "no parameter 'no_such_parameter'" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError(f"{cls.name}: create accepted an unknown parameter")


def check_default_params_valid(cls: type[Plugin], **_: Any) -> None:
    """The defaults pass the plugin's own ``validate_params``, when it defines one."""
    validate = getattr(cls.create(), "validate_params", None)
    if callable(validate):
        validate()


# ------------------------------------------------------------------ data sources


def check_data_source_loads(
    cls: type[DataSource], *, location: str | Path | None = None, **_: Any
) -> None:
    """``load`` (at ``test_params``) gives a non-empty dataset with known labels."""
    if cls.needs_location and location is None:
        raise unittest.SkipTest(f"{cls.name} reads files: pass location= to check it")
    data = cls.create(**cls.test_params).load(str(location) if cls.needs_location else None)
    assert isinstance(data, Dataset), f"{cls.name}: load gave {type(data).__name__}"
    assert len(data) > 0, f"{cls.name}: empty dataset"
    assert data.cutouts is None or data.cutouts.dtype == np.float32, "cutouts must be float32"
    assert set(data.catalog["label"].dropna()) <= set(CLASSES), "labels outside CLASSES"
    if data.has_photometry:
        flux, _err = data.photometry()
        assert flux.shape == (len(data), len(data.bands))


# ------------------------------------------------------------------ preprocessors


def check_preprocessor_transform(cls: type[Preprocessor], **_: Any) -> None:
    """``fit`` / ``transform`` leave the input untouched and keep its sources in order
    (training-only steps may add sources)."""
    part = example_data().subset(np.arange(20))
    before = part.cutouts.copy()
    out = cls.create(**cls.test_params).fit(part).transform(part)
    assert isinstance(out, Dataset)
    np.testing.assert_array_equal(part.cutouts, before, err_msg="input modified")
    if cls.training_only:
        assert len(out) >= len(part)
    else:
        assert len(out) == len(part)
        np.testing.assert_array_equal(out.catalog["id"], part.catalog["id"])


def _new_data_transform(cls: type[Preprocessor]) -> tuple[Preprocessor, Dataset, Dataset]:
    data = example_data()
    train, new = data.subset(np.arange(30)), data.subset(np.arange(30, 50))
    step = cls.create(**cls.test_params).fit(train)
    return step, new, step.transform(new)


def _assert_same_output(a: Dataset, b: Dataset, what: str) -> None:
    if b.cutouts is not None:
        np.testing.assert_allclose(a.cutouts, b.cutouts, equal_nan=True, atol=1e-6, err_msg=what)
    if b.features is not None:
        np.testing.assert_allclose(a.features, b.features, atol=1e-9, err_msg=what)


def check_preprocessor_subset_invariance(cls: type[Preprocessor], **_: Any) -> None:
    """A source's output does not depend on the rest of its batch."""
    if cls.training_only:
        raise unittest.SkipTest("training-only steps never see new data")
    step, new, whole = _new_data_transform(cls)
    some = np.array([7, 2, 11])
    _assert_same_output(step.transform(new.subset(some)), whole.subset(some), "subset differs")


def check_preprocessor_save_load(cls: type[Preprocessor], **_: Any) -> None:
    """A fitted step saved and loaded transforms new data as before."""
    if cls.training_only:
        raise unittest.SkipTest("training-only steps are not kept with a model")
    step, new, whole = _new_data_transform(cls)
    with tempfile.TemporaryDirectory() as tmp:
        step.save(Path(tmp) / "step")
        again = cls.load(Path(tmp) / "step")
    assert type(again) is cls
    _assert_same_output(again.transform(new), whole, "loaded step differs")


# ------------------------------------------------------------------ classifiers


@functools.cache
def _prepared(cls: type[Classifier], registry: Registry | None) -> tuple[Dataset, ...]:
    """The example survey's first split through the classifier's default chain."""
    data = example_data()
    pipeline = Pipeline(data, registry or get_registry(), BenchConfig([ClassifierSpec("c", "c")]))
    return pipeline.prepare(cls.preprocessors, make_split(data.y, seed=0))


@functools.cache
def _fitted(cls: type[Classifier], registry: Registry | None) -> tuple[Classifier, Dataset]:
    train, valid, test = _prepared(cls, registry)
    clf = cls.create(**cls.test_params)
    assert clf.fit(train, valid) is clf, f"{cls.name}: fit must return self"
    return clf, test


def check_classifier_fit_predict(
    cls: type[Classifier], *, registry: Registry | None = None, **_: Any
) -> None:
    """Probabilities of shape ``(N, 3)`` in [0, 1], rows summing to 1, the input left
    untouched; ``predict`` gives class names; ``diagnostics`` a Diagnostics or None."""
    clf, test = _fitted(cls, registry)
    catalog = test.catalog.copy()
    cutouts = None if test.cutouts is None else test.cutouts.copy()
    proba = np.asarray(clf.predict_proba(test))
    assert proba.shape == (len(test), len(CLASSES)), f"{cls.name}: shape {proba.shape}"
    assert np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1)), "not in [0, 1]"
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5, err_msg="rows must sum to 1")
    assert test.catalog.equals(catalog), f"{cls.name}: predict_proba modified the catalog"
    if cutouts is not None:
        np.testing.assert_array_equal(test.cutouts, cutouts, err_msg="cutouts modified")
    assert set(clf.predict(test)) <= set(CLASSES)
    diagnostics = clf.diagnostics()
    assert diagnostics is None or isinstance(diagnostics, Diagnostics)


def check_classifier_subset_invariance(
    cls: type[Classifier], *, registry: Registry | None = None, **_: Any
) -> None:
    """A source's probabilities do not depend on the rest of its batch."""
    clf, test = _fitted(cls, registry)
    some = np.arange(len(test))[::-3]
    np.testing.assert_allclose(
        clf.predict_proba(test.subset(some)), clf.predict_proba(test)[some], atol=1e-5
    )


def check_classifier_save_load(
    cls: type[Classifier], *, registry: Registry | None = None, **_: Any
) -> None:
    """A fitted classifier saved and loaded predicts the same probabilities."""
    clf, test = _fitted(cls, registry)
    with tempfile.TemporaryDirectory() as tmp:
        clf.save(Path(tmp) / "model")
        again = cls.load(Path(tmp) / "model")
    assert type(again) is cls
    np.testing.assert_allclose(again.predict_proba(test), clf.predict_proba(test), atol=1e-5)


# ------------------------------------------------------------------ evaluators


@functools.cache
def _probe_runs() -> tuple[list[Dataset], list[ProbeClassifier], list[np.ndarray]]:
    """Two runs of :class:`ProbeClassifier` on the example survey: test parts, fitted
    classifiers, their test probabilities."""
    data = example_data()
    tests, classifiers, probas = [], [], []
    for seed in (0, 1):
        split = make_split(data.y, seed)
        clf = ProbeClassifier(seed=seed).fit(data.subset(split.train), data.subset(split.valid))
        test = data.subset(split.test)
        tests.append(test)
        classifiers.append(clf)
        probas.append(clf.predict_proba(test))
    return tests, classifiers, probas


def example_view(evaluator: Evaluator) -> PlotView:
    """What ``evaluator.plot`` is given after a two-run benchmark of
    :class:`ProbeClassifier` on the example survey (each run evaluated by ``evaluator``):
    for an evaluator's own figure tests."""
    tests, classifiers, probas = _probe_runs()
    label = ProbeClassifier.name
    return PlotView(
        labels=[label],
        tests=tests,
        proba={label: probas},
        evaluations={
            label: [evaluator.evaluate(t.y, p, t, c) for t, c, p in zip(tests, classifiers, probas)]
        },
        headline={label: [headline(t.y, p) for t, p in zip(tests, probas)]},
        diagnostics={label: [c.diagnostics() for c in classifiers]},
    )


def check_evaluator(cls: type[Evaluator], **_: Any) -> None:
    """``evaluate`` on a fitted classifier gives float metrics and JSON details; ``plot``
    draws from a two-run view and returns PNG files that exist inside its directory."""
    view = example_view(cls.create(**cls.test_params))
    for result in view.evaluations[ProbeClassifier.name]:
        assert isinstance(result, Evaluation), f"{cls.name}: evaluate gave {type(result)}"
        for key, value in result.metrics.items():
            assert isinstance(value, float), f"{cls.name}: metric {key} is not a float"
        json.dumps(result.details)  # JSON-serialisable, as results.json needs
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        paths = cls.create(**cls.test_params).plot(view, out)
        assert isinstance(paths, list), f"{cls.name}: plot must return a list of paths"
        for path in map(Path, paths):
            assert path.parent == out, f"{cls.name}: {path} is outside the figure directory"
            assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", (
                f"{cls.name}: {path.name} is not a PNG file"
            )


# ------------------------------------------------------------------ running them

COMMON: tuple[Check, ...] = (
    check_metadata,
    check_params_stored_unchanged,
    check_create_rejects_unknown_parameters,
    check_default_params_valid,
)
BY_KIND: dict[str, tuple[Check, ...]] = {
    "data_source": (check_data_source_loads,),
    "preprocessor": (
        check_preprocessor_transform,
        check_preprocessor_subset_invariance,
        check_preprocessor_save_load,
    ),
    "classifier": (
        check_classifier_fit_predict,
        check_classifier_subset_invariance,
        check_classifier_save_load,
    ),
    "evaluator": (check_evaluator,),
}


def checks(cls: type[Plugin]) -> Iterator[Check]:
    """The checks that apply to ``cls``, for its kind; each is called as
    ``check(cls, registry=..., location=...)`` (both optional)."""
    if cls.kind not in BY_KIND:
        raise TypeError(f"{cls!r} is not a hizkit plugin class")
    yield from COMMON
    yield from BY_KIND[cls.kind]


def check_plugin(
    cls: type[Plugin], *, registry: Registry | None = None, location: str | Path | None = None
) -> None:
    """Run every check on ``cls``; the first failure raises ``AssertionError`` (a check
    that does not apply, such as loading without ``location``, is passed over)."""
    for check in checks(cls):
        try:
            check(cls, registry=registry, location=location)
        except unittest.SkipTest:
            continue


def parametrize_with_checks(
    classes: list[type[Plugin]],
    *,
    registry: Registry | None = None,
    location: str | Path | None = None,
):
    """A ``pytest.mark.parametrize`` of ``(plugin, check)`` over every check of every
    class, with ids like ``rf-check_classifier_save_load``; the test calls
    ``check(plugin)``, which may pass ``location=`` / ``registry=`` again."""
    import pytest

    params = [
        pytest.param(
            cls,
            functools.partial(check, registry=registry, location=location),
            id=f"{cls.name}-{check.__name__}",
        )
        for cls in classes
        for check in checks(cls)
    ]
    return pytest.mark.parametrize(("plugin", "check"), params)
