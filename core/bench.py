"""The benchmark harness: one split per run, shared by every classifier.

The data flow is one way::

    source -> Dataset -> split (once per run) -> preprocessors (fit on train) -> classifier
           -> evaluators -> BenchResult -> report

Preprocessors marked ``per_source`` (no fitted state) run once over the whole dataset and are
reused by every run and classifier; the rest are fitted on the training part only, and
``training_only`` ones never see validation or test data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hizkit import progress
from hizkit.contracts import Classifier, Evaluation, Evaluator, Preprocessor
from hizkit.dataset import CLASSES, Dataset, Split, make_split
from hizkit.errors import HizkitError
from hizkit.registry import Registry, get_registry

#: Evaluators that always run: results.json promises their metrics.
REQUIRED_EVALUATORS: tuple[str, ...] = ("classification",)


@dataclass
class ClassifierSpec:
    """One column of the comparison: a label, the plugin behind it and its settings.

    ``label`` defaults to the plugin name; two specs may share a plugin with different
    parameters (``cnn`` and ``cnn_weighted``). ``preprocessors=None`` takes the
    classifier's own default chain.
    """

    label: str
    plugin: str
    params: dict[str, Any] = field(default_factory=dict)
    preprocessors: tuple[str, ...] | None = None


@dataclass
class BenchConfig:
    classifiers: list[ClassifierSpec]
    evaluators: list[str] | None = None  # None: every registered evaluator
    runs: int = 1
    seed: int = 0
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    preprocessor_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluator_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.classifiers:
            raise HizkitError("no classifiers given")
        if self.runs < 1:
            raise HizkitError(f"--runs must be at least 1, got {self.runs}")
        labels = [c.label for c in self.classifiers]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise HizkitError(f"classifier label(s) given twice: {', '.join(dupes)}")


@dataclass
class ClassifierRun:
    """One classifier trained and tested on one run's split."""

    label: str
    run: int
    seed: int
    proba: np.ndarray
    fit_seconds: float
    predict_seconds: float
    evaluations: dict[str, Evaluation]
    classifier: Classifier

    @property
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
        }
        for ev in self.evaluations.values():
            out.update(ev.metrics)
        return out


@dataclass
class BenchResult:
    dataset: Dataset
    config: BenchConfig
    splits: list[Split]
    runs: list[ClassifierRun]
    evaluators: dict[str, Evaluator]
    preprocessors: dict[str, tuple[str, ...]]

    def by_label(self) -> dict[str, list[ClassifierRun]]:
        out: dict[str, list[ClassifierRun]] = {c.label: [] for c in self.config.classifiers}
        for r in self.runs:
            out[r.label].append(r)
        return out

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Mean and standard deviation over runs of every scalar metric, per label."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for label, runs in self.by_label().items():
            names = sorted({k for r in runs for k in r.metrics})
            stats = {}
            for name in names:
                vals = np.array([r.metrics.get(name, np.nan) for r in runs], dtype=float)
                stats[name] = _mean_std(vals)
            out[label] = stats
        return out


def _mean_std(vals: np.ndarray) -> tuple[float, float]:
    finite = vals[np.isfinite(vals)]
    if finite.size == 0:
        return float("nan"), float("nan")
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return float(finite.mean()), std


class _Pipeline:
    """Builds and caches the prepared parts of the data for each classifier."""

    def __init__(self, dataset: Dataset, registry: Registry, config: BenchConfig) -> None:
        self.dataset = dataset
        self.registry = registry
        self.config = config
        self._whole_cache: dict[tuple[str, ...], tuple[Dataset, Dataset | None]] = {}

    def make(self, name: str, seed: int) -> Preprocessor:
        params = dict(self.config.preprocessor_params.get(name, {}))
        cls = self.registry.get("preprocessor", name)
        if "seed" in cls.param_names():
            params.setdefault("seed", seed)
        return cls.create(**params)  # type: ignore[return-value]

    def _whole(self, names: tuple[str, ...]) -> tuple[Dataset, Dataset | None]:
        """The dataset (and its training-only extras) after leading per-source steps."""
        if names not in self._whole_cache:
            data, extra = self.dataset, self.dataset.extra_train
            for name in names:
                step = self.make(name, self.config.seed)
                data = step.transform(data)
                extra = None if extra is None else step.transform(extra)
            self._whole_cache[names] = (data, extra)
        return self._whole_cache[names]

    def prepare(self, chain: tuple[str, ...], split: Split) -> tuple[Dataset, Dataset, Dataset]:
        classes = [self.registry.get("preprocessor", n) for n in chain]
        n_lead = 0
        while n_lead < len(classes) and classes[n_lead].per_source:
            n_lead += 1
        whole, extra = self._whole(chain[:n_lead])
        train = whole.subset(split.train)
        if extra is not None and len(extra):
            train = train.concat(extra)
        valid, test = whole.subset(split.valid), whole.subset(split.test)
        for name in chain[n_lead:]:
            step = self.make(name, split.seed)
            if step.training_only:
                train = step.fit_transform(train)
                continue
            step.fit(train)
            train, valid, test = step.transform(train), step.transform(valid), step.transform(test)
        return train, valid, test


def _check_inputs(spec: ClassifierSpec, cls: type[Classifier], data: Dataset) -> None:
    needs = {
        "cutouts": data.cutouts is not None,
        "photometry": data.has_photometry,
        "unlabelled": data.unlabelled is not None,
    }
    missing = [need for need in cls.requires if need in needs and not needs[need]]
    if missing:
        raise HizkitError(
            f"classifier '{spec.label}' needs {', '.join(missing)}, which this dataset lacks"
        )


def _check_proba(label: str, proba: np.ndarray, n: int) -> np.ndarray:
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (n, len(CLASSES)):
        raise RuntimeError(f"{label}: predict_proba gave shape {proba.shape}, not ({n}, 3)")
    if not np.all(np.isfinite(proba)) or not np.allclose(proba.sum(axis=1), 1, atol=1e-4):
        raise RuntimeError(f"{label}: predict_proba rows must be finite and sum to 1")
    return proba


def run_benchmark(
    dataset: Dataset, config: BenchConfig, registry: Registry | None = None
) -> BenchResult:
    """Train and test every configured classifier on the same split(s) of ``dataset``."""
    registry = registry or get_registry()
    config.validate()
    y = dataset.y
    if (y >= 0).sum() == 0:
        raise HizkitError("the dataset has no labelled sources to train and test on")

    specs = config.classifiers
    classes = {s.label: registry.get("classifier", s.plugin) for s in specs}
    chains = {
        s.label: tuple(
            s.preprocessors if s.preprocessors is not None else classes[s.label].preprocessors
        )
        for s in specs
    }
    for s in specs:
        for name in chains[s.label]:
            registry.get("preprocessor", name)  # unknown names fail before any work
        _check_inputs(s, classes[s.label], dataset)  # type: ignore[arg-type]
    names = (
        list(config.evaluators) if config.evaluators is not None else registry.names("evaluator")
    )
    for req in REQUIRED_EVALUATORS:
        if req not in names:
            names.insert(0, req)
    evaluators: dict[str, Evaluator] = {
        n: registry.create("evaluator", n, **config.evaluator_params.get(n, {})) for n in names
    }

    pipeline = _Pipeline(dataset, registry, config)
    splits: list[Split] = []
    results: list[ClassifierRun] = []
    steps = [(r, s) for r in range(config.runs) for s in specs]
    with progress.live():
        for run, spec in progress.track(steps, "benchmark"):
            seed = config.seed + run
            if len(splits) <= run:
                splits.append(make_split(y, seed, config.fractions))
            split = splits[run]
            cls = classes[spec.label]
            params = dict(spec.params)
            if "seed" in cls.param_names():
                params.setdefault("seed", seed)
            clf: Classifier = cls.create(**params)  # type: ignore[assignment]
            progress.log(f"run {run + 1}/{config.runs}: {spec.label}")
            train, valid, test = pipeline.prepare(chains[spec.label], split)
            t0 = time.perf_counter()
            clf.fit(train, valid)
            t1 = time.perf_counter()
            proba = _check_proba(spec.label, clf.predict_proba(test), len(test))
            t2 = time.perf_counter()
            y_test = test.y
            evaluations = {n: e.evaluate(y_test, proba, test, clf) for n, e in evaluators.items()}
            results.append(
                ClassifierRun(spec.label, run, seed, proba, t1 - t0, t2 - t1, evaluations, clf)
            )
    return BenchResult(dataset, config, splits, results, evaluators, chains)
