"""The benchmark harness: one split per run, shared by every classifier.

The data flow is one way::

    source -> Dataset -> split (once per run) -> preprocessors (fit on train) -> classifier
           -> evaluators -> BenchResult -> report

Preprocessors marked ``per_source`` (no fitted state) run once over the whole dataset and are
reused by every run and classifier; the rest are fitted on the training part only, and
``training_only`` ones never see validation or test data. The headline metrics
(:mod:`hizkit.metrics`) are computed here for every classifier; evaluators add theirs.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hizkit import progress
from hizkit.calibration import Calibration
from hizkit.contracts import (
    Classifier,
    Diagnostics,
    Evaluation,
    Evaluator,
    PlotView,
    Preprocessor,
)
from hizkit.dataset import CLASSES, Dataset, Split, check_fractions, make_split, require_classes
from hizkit.errors import HizkitError
from hizkit.field import MIN_PURITY, calibrate, selection_rates
from hizkit.field import evaluate as evaluate_field
from hizkit.field import headline as field_headline
from hizkit.metrics import headline
from hizkit.registry import Registry, get_registry
from hizkit.science import require_bands


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
    #: a row the harness added (a reference classifier): left out, with one log line,
    #: where the data lacks what it needs, instead of failing the comparison
    optional: bool = False


@dataclass
class BenchConfig:
    classifiers: list[ClassifierSpec]
    evaluators: list[str] | None = None  # None: every registered evaluator
    runs: int = 1
    seed: int = 0
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    preprocessor_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluator_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: add every registered reference classifier (``Classifier.reference``) as a row
    references: bool = False
    #: the purity the field test's lists are selected at (:mod:`hizkit.field`)
    min_purity: float = MIN_PURITY

    def validate(self) -> None:
        if not self.classifiers:
            raise HizkitError("no classifiers given")
        if self.runs < 1:
            raise HizkitError(f"--runs must be at least 1, got {self.runs}")
        labels = [c.label for c in self.classifiers]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise HizkitError(f"classifier label(s) given twice: {', '.join(dupes)}")
        check_fractions(self.fractions)


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
    #: the core's metrics (:func:`hizkit.metrics.headline`), whatever evaluators ran
    headline: Evaluation = field(default_factory=Evaluation)
    #: the fitted preprocessors that apply to new data, in order (what a model keeps)
    steps: list[Preprocessor] = field(default_factory=list)
    diagnostics: Diagnostics | None = None
    #: the field test (:func:`hizkit.field.evaluate`), when the dataset has one
    field: dict[str, Any] | None = None
    #: its calibration (validation part, training prior) and, with a field test, the
    #: rates a kept model selects at a stated purity with
    calibration: Calibration | None = None
    selection: dict[str, Any] | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """Every scalar: timings, the evaluators' metrics, then the headline metrics
        (which an evaluator cannot override)."""
        out: dict[str, float] = {
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
        }
        for ev in self.evaluations.values():
            out.update(ev.metrics)
        if self.field is not None:
            out.update(field_headline(self.field))
        out.update(self.headline.metrics)
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

    @functools.cached_property
    def test_parts(self) -> list[Dataset]:
        """The test part of each run's split as loaded (cut once, shared by every view)."""
        return [self.dataset.subset(s.test) for s in self.splits]

    def plot_view(self, evaluator: str) -> PlotView:
        """What the evaluator called ``evaluator`` is given to draw its figures."""
        by_label = self.by_label()

        def per_label(get) -> dict:
            return {label: [get(r) for r in runs] for label, runs in by_label.items()}

        return PlotView(
            labels=list(by_label),
            tests=self.test_parts,
            proba=per_label(lambda r: r.proba),
            evaluations=per_label(lambda r: r.evaluations[evaluator]),
            headline=per_label(lambda r: r.headline),
            diagnostics=per_label(lambda r: r.diagnostics),
        )


def _mean_std(vals: np.ndarray) -> tuple[float, float]:
    finite = vals[np.isfinite(vals)]
    if finite.size == 0:
        return float("nan"), float("nan")
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return float(finite.mean()), std


class Pipeline:
    """Builds and caches the prepared parts of the data for each classifier: the one way
    the harness, ``hizkit train`` and :mod:`hizkit.testing` turn a split into the inputs
    a classifier's preprocessor chain gives it."""

    def __init__(self, dataset: Dataset, registry: Registry, config: BenchConfig) -> None:
        self.dataset = dataset
        self.registry = registry
        self.config = config
        self._whole_cache: dict[
            tuple[str, ...], tuple[Dataset, Dataset | None, Dataset | None, list[Preprocessor]]
        ] = {}

    def make(self, name: str, seed: int) -> Preprocessor:
        params = dict(self.config.preprocessor_params.get(name, {}))
        cls = self.registry.get("preprocessor", name)
        if "seed" in cls.param_names():
            params.setdefault("seed", seed)
        return cls.create(**params)  # type: ignore[return-value]

    def _whole(
        self, names: tuple[str, ...]
    ) -> tuple[Dataset, Dataset | None, Dataset | None, list[Preprocessor]]:
        """The dataset, its training-only extras and its field test after leading
        per-source steps."""
        if names not in self._whole_cache:
            data, extra, fld = self.dataset, self.dataset.extra_train, self.dataset.field
            steps = []
            for name in names:
                step = self.make(name, self.config.seed)
                data = step.transform(data)
                extra = None if extra is None else step.transform(extra)
                fld = None if fld is None else step.transform(fld)
                steps.append(step)
            self._whole_cache[names] = (data, extra, fld, steps)
        return self._whole_cache[names]

    def prepare(self, chain: tuple[str, ...], split: Split) -> tuple[Dataset, Dataset, Dataset]:
        """The train, validation and test parts after the preprocessor ``chain``."""
        return self.fit_chain(chain, split)[:3]

    def fit_chain(
        self, chain: tuple[str, ...], split: Split
    ) -> tuple[Dataset, Dataset, Dataset, list[Preprocessor], Dataset | None]:
        """As :meth:`prepare`, plus the fitted steps that apply to new data (in order;
        training-only steps left out): what a saved model keeps; and the field test
        through the same steps (None without one)."""
        classes = [self.registry.get("preprocessor", n) for n in chain]
        n_lead = 0
        while n_lead < len(classes) and classes[n_lead].per_source:
            n_lead += 1
        whole, extra, fld, lead = self._whole(chain[:n_lead])
        steps = [s for s in lead if not s.training_only]
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
            fld = None if fld is None else step.transform(fld)
            steps.append(step)
        return train, valid, test, steps, fld


def unmet_needs(cls: type[Classifier], data: Dataset) -> list[str]:
    """What ``cls`` declares it needs (``requires``, ``bands_needed``,
    ``catalog_columns``) and ``data`` lacks, in words."""
    has = {
        "cutouts": data.cutouts is not None,
        "photometry": data.has_photometry,
        "unlabelled": data.unlabelled is not None,
    }
    missing = [need for need in cls.requires if need in has and not has[need]]
    missing += [f"band {b}" for b in cls.bands_needed if b not in data.bands]
    columns = sorted(c for c in cls.catalog_columns if c not in data.catalog.columns)
    missing += [f"catalog column {c}" for c in columns]
    return missing


def with_references(dataset: Dataset, config: BenchConfig, registry: Registry) -> BenchConfig:
    """``config`` with every registered reference classifier added as an optional row
    (when ``config.references``), and every optional row whose needs ``dataset`` does not
    meet left out with one log line."""
    specs = list(config.classifiers)
    if config.references:
        taken = {s.label for s in specs} | {s.plugin for s in specs}
        for name in registry.names("classifier"):
            cls = registry.get("classifier", name)
            if getattr(cls, "reference", False) and name not in taken:
                specs.append(ClassifierSpec(name, name, {}, None, optional=True))
    kept = []
    for spec in specs:
        cls = registry.get("classifier", spec.plugin)
        unmet = unmet_needs(cls, dataset) if spec.optional else []  # type: ignore[arg-type]
        if unmet:
            progress.log(f"no {spec.label} row: the data lacks {', '.join(unmet)}")
        else:
            kept.append(spec)
    if len(kept) == len(config.classifiers) and not config.references:
        return config
    return dataclasses.replace(config, classifiers=kept, references=False)


def _check_proba(label: str, proba: np.ndarray, n: int) -> np.ndarray:
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (n, len(CLASSES)):
        raise RuntimeError(f"{label}: predict_proba gave shape {proba.shape}, not ({n}, 3)")
    if not np.all(np.isfinite(proba)) or not np.allclose(proba.sum(axis=1), 1, atol=1e-4):
        raise RuntimeError(f"{label}: predict_proba rows must be finite and sum to 1")
    return proba


def resolve(
    dataset: Dataset, config: BenchConfig, registry: Registry
) -> dict[str, tuple[type[Classifier], tuple[str, ...]]]:
    """Each label's classifier class and preprocessor chain; every name is checked and
    the dataset's inputs matched against what each classifier requires, before any work."""
    plan = {}
    for s in config.classifiers:
        cls: type[Classifier] = registry.get("classifier", s.plugin)  # type: ignore[assignment]
        chain = tuple(s.preprocessors if s.preprocessors is not None else cls.preprocessors)
        for name in chain:
            registry.get("preprocessor", name)  # unknown names fail before any work
        missing = [n for n in unmet_needs(cls, dataset) if not n.startswith("band ")]
        if missing:
            raise HizkitError(
                f"classifier '{s.label}' needs {', '.join(missing)}, which this dataset lacks"
            )
        # a band the classifier reads by name: refused before any classifier trains
        require_bands(dataset, cls.bands_needed, cls.name)
        plan[s.label] = (cls, chain)
    return plan


@dataclass
class Fitted:
    """One classifier fitted on one split, with its fitted chain and prepared parts."""

    classifier: Classifier
    steps: list[Preprocessor]
    train: Dataset
    valid: Dataset
    test: Dataset
    fit_seconds: float
    #: the field test through the fitted chain (None without one)
    field: Dataset | None = None


def fit_classifier(
    pipeline: Pipeline,
    spec: ClassifierSpec,
    cls: type[Classifier],
    chain: tuple[str, ...],
    split: Split,
    seed: int,
) -> Fitted:
    """Create the classifier of ``spec`` (seeded), prepare the split's parts through
    ``chain`` and fit it on the training part (the validation part may steer it)."""
    params = dict(spec.params)
    if "seed" in cls.param_names():
        params.setdefault("seed", seed)
    clf: Classifier = cls.create(**params)  # type: ignore[assignment]
    train, valid, test, steps, fld = pipeline.fit_chain(chain, split)
    t0 = time.perf_counter()
    clf.fit(train, valid)
    return Fitted(clf, steps, train, valid, test, time.perf_counter() - t0, fld)


def calibrate_fitted(fitted: Fitted, valid_proba: np.ndarray | None = None) -> Calibration:
    """The fitted classifier's calibration: fitted on its validation part at the prior
    it was trained at (:func:`hizkit.field.calibrate`); ``valid_proba``: its
    probabilities there, when already computed."""
    clf, valid = fitted.classifier, fitted.valid
    has_valid = len(valid) > 0
    if has_valid and valid_proba is None:
        valid_proba = clf.predict_proba(valid)
    return calibrate(
        valid_proba if has_valid else None,
        valid.y if has_valid else None,
        clf.training_prior(fitted.train.y),
    )


def field_outputs(
    fitted: Fitted, label: str, calibration: Calibration, min_purity: float, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fitted classifier on the field test: its section
    (:func:`hizkit.field.evaluate`) and the rates a kept model selects with
    (:func:`hizkit.field.selection_rates`)."""
    assert fitted.field is not None
    field_data = fitted.field
    proba = _check_proba(label, fitted.classifier.predict_proba(field_data), len(field_data))
    section = evaluate_field(field_data, proba, calibration, min_purity=min_purity, seed=seed)
    meta = field_data.meta
    where = (
        f"the field test of {meta.get('source', 'the training data')} ({len(field_data)} sources)"
    )
    return section, selection_rates(calibration.apply(proba), field_data, where)


def run_one(
    pipeline: Pipeline,
    spec: ClassifierSpec,
    cls: type[Classifier],
    chain: tuple[str, ...],
    run: int,
    split: Split,
    evaluators: dict[str, Evaluator],
) -> ClassifierRun:
    """Fit one classifier on one run's split, predict its test part and evaluate it."""
    seed = split.seed
    fitted = fit_classifier(pipeline, spec, cls, chain, split, seed)
    test, clf = fitted.test, fitted.classifier
    t0 = time.perf_counter()
    proba = _check_proba(spec.label, clf.predict_proba(test), len(test))
    predict_seconds = time.perf_counter() - t0
    y_test = test.y
    evaluations = {n: e.evaluate(y_test, proba, test, clf) for n, e in evaluators.items()}
    field_section = selection = calibration = None
    unmet = [] if fitted.field is None else unmet_needs(cls, fitted.field)
    if unmet:
        progress.log(f"{spec.label}: no field test (the field lacks {', '.join(unmet)})")
    elif fitted.field is not None:
        calibration = calibrate_fitted(fitted)
        progress.log(f"{spec.label}: the field test ({len(fitted.field)} sources)")
        field_section, selection = field_outputs(
            fitted, spec.label, calibration, pipeline.config.min_purity, seed
        )
    return ClassifierRun(
        spec.label,
        run,
        seed,
        proba,
        fitted.fit_seconds,
        predict_seconds,
        evaluations,
        clf,
        headline=headline(y_test, proba),
        steps=fitted.steps,
        diagnostics=clf.diagnostics(),
        field=field_section,
        calibration=calibration,
        selection=selection,
    )


def _evaluators(config: BenchConfig, registry: Registry) -> dict[str, Evaluator]:
    names = config.evaluators if config.evaluators is not None else registry.names("evaluator")
    return {n: registry.create("evaluator", n, **config.evaluator_params.get(n, {})) for n in names}


#: per Dask worker process: the pipeline (and its cache of per-source steps) of a dataset
_WORKER_PIPELINES: dict[tuple[int, str], Pipeline] = {}


def bench_task(dataset: Dataset, config: BenchConfig, label: str, run: int) -> ClassifierRun:
    """One (run, classifier) fit on a Dask worker: the same code, split and seeds as the
    in-process loop, so the same numbers. The worker's plugins come from its registry."""
    registry = get_registry()
    key = (id(dataset), repr((config.seed, config.preprocessor_params, config.min_purity)))
    if key not in _WORKER_PIPELINES:
        _WORKER_PIPELINES.clear()  # one dataset at a time per worker
        _WORKER_PIPELINES[key] = Pipeline(dataset, registry, config)
    spec = next(s for s in config.classifiers if s.label == label)
    cls, chain = resolve(dataset, config, registry)[label]
    split = make_split(dataset.y, config.seed + run, config.fractions)
    pipeline = _WORKER_PIPELINES[key]
    return run_one(pipeline, spec, cls, chain, run, split, _evaluators(config, registry))


def run_benchmark(
    dataset: Dataset,
    config: BenchConfig,
    registry: Registry | None = None,
    scheduler: str | None = None,
) -> BenchResult:
    """Train and test every configured classifier on the same split(s) of ``dataset``.

    ``scheduler`` (see :mod:`hizkit.cluster`) runs every (run, classifier) fit as a Dask
    task; the results equal the in-process run's."""
    registry = registry or get_registry()
    config.validate()
    y = dataset.y
    require_classes(y)
    config = with_references(dataset, config, registry)
    specs = config.classifiers
    plan = resolve(dataset, config, registry)
    evaluators = _evaluators(config, registry)
    splits = [make_split(y, config.seed + r, config.fractions) for r in range(config.runs)]
    steps = [(r, s) for r in range(config.runs) for s in specs]
    results: list[ClassifierRun] = []
    with progress.live():
        if scheduler:
            results = _run_on_cluster(dataset, config, steps, scheduler)
        else:
            pipeline = Pipeline(dataset, registry, config)
            for run, spec in progress.track(steps, "benchmark"):
                cls, chain = plan[spec.label]
                progress.log(f"run {run + 1}/{config.runs}: {spec.label}")
                results.append(run_one(pipeline, spec, cls, chain, run, splits[run], evaluators))
    chains = {label: chain for label, (_, chain) in plan.items()}
    return BenchResult(dataset, config, splits, results, evaluators, chains)


def _run_on_cluster(
    dataset: Dataset,
    config: BenchConfig,
    steps: list[tuple[int, ClassifierSpec]],
    scheduler: str,
) -> list[ClassifierRun]:
    from distributed import as_completed

    from hizkit.cluster import connect

    with connect(scheduler) as client:
        shared = client.scatter(dataset, broadcast=True)
        futures = [
            client.submit(bench_task, shared, config, spec.label, run, pure=False)
            for run, spec in steps
        ]
        for future in progress.track(as_completed(futures), "benchmark", total=len(futures)):
            future.result()  # the first failure stops the benchmark, as in-process
        return [future.result() for future in futures]
