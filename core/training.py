"""Training models to keep: ``hizkit train``, ``hizkit bench --save-models`` and
:func:`hizkit.train`.

Each classifier is fitted once with its preprocessor chain (the harness's own
:class:`hizkit.bench.Pipeline`, so a kept model is trained exactly as a benchmark trains
it) and returned as a :class:`hizkit.model.TrainedModel` whose manifest records the
metrics of :func:`hizkit.metrics.headline` on the held-out part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hizkit import progress
from hizkit.bench import (
    BenchConfig,
    BenchResult,
    Pipeline,
    calibrate_fitted,
    field_outputs,
    fit_classifier,
    resolve,
)
from hizkit.config import Settings, fraction, read_toml
from hizkit.dataset import Dataset, make_split, require_classes
from hizkit.field import headline as field_headline
from hizkit.metrics import headline
from hizkit.model import TrainedModel, build_manifest, save_models
from hizkit.registry import Registry, get_registry


def held_out_metrics(y, proba) -> dict[str, float]:
    """The manifest's metrics: the harness's headline rates and the part's size."""
    return {"n": float((y >= 0).sum()), **headline(y, proba).metrics}


def train_models(
    dataset: Dataset,
    config: BenchConfig,
    registry: Registry | None = None,
    valid_fraction: float = 0.2,
) -> dict[str, TrainedModel]:
    """Fit every configured classifier once (chain + classifier) on the labelled
    sources: a stratified ``1 - valid_fraction`` / ``valid_fraction`` split with
    ``config.seed``, the validation part choosing epochs and giving the recorded metrics."""
    registry = registry or get_registry()
    config.validate()
    valid_fraction = fraction(valid_fraction, "the validation fraction")
    require_classes(dataset.y, "training")
    plan = resolve(dataset, config, registry)
    split = make_split(dataset.y, config.seed, (1 - valid_fraction, valid_fraction, 0.0))
    pipeline = Pipeline(dataset, registry, config)
    models = {}
    for spec in progress.track(config.classifiers, "training"):
        cls, chain = plan[spec.label]
        progress.log(f"training {spec.label}")
        fitted = fit_classifier(pipeline, spec, cls, chain, split, config.seed)
        valid_proba = fitted.classifier.predict_proba(fitted.valid)
        metrics = held_out_metrics(fitted.valid.y, valid_proba)
        calibration = calibrate_fitted(fitted, valid_proba)
        selection = None
        if fitted.field is not None:
            progress.log(f"{spec.label}: selection rates on the field test")
            section, selection = field_outputs(
                fitted, spec.label, calibration, config.min_purity, config.seed
            )
            metrics.update(field_headline(section))
        manifest = build_manifest(
            spec.label,
            spec,
            fitted.classifier,
            fitted.steps,
            chain,
            dataset,
            fitted.train,
            metrics,
            "validation",
            registry,
            calibration=calibration,
            selection=selection,
        )
        models[spec.label] = TrainedModel(spec.label, fitted.steps, fitted.classifier, manifest)
    return models


def models_from_benchmark(
    result: BenchResult, registry: Registry | None = None
) -> dict[str, TrainedModel]:
    """Each label's first-run model of a benchmark, its manifest holding the metrics on
    that run's test part."""
    registry = registry or get_registry()
    split = result.splits[0]
    train_part = result.dataset.subset(split.train)
    models = {}
    for spec in result.config.classifiers:
        run = next(r for r in result.runs if r.label == spec.label and r.run == 0)
        manifest = build_manifest(
            spec.label,
            spec,
            run.classifier,
            run.steps,
            result.preprocessors[spec.label],
            result.dataset,
            train_part,
            held_out_metrics(result.dataset.y[split.test], run.proba),
            "test (run 0)",
            registry,
            calibration=run.calibration,
            selection=run.selection,
        )
        models[spec.label] = TrainedModel(spec.label, run.steps, run.classifier, manifest)
    return models


def train(
    data: Dataset | str = "mock",
    classifiers: str | Sequence[str] | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    valid_fraction: float | None = None,
    out: str | Path | None = None,
    registry: Registry | None = None,
) -> dict[str, TrainedModel]:
    """Train classifiers once and return ``{label: TrainedModel}`` (the Python side of
    ``hizkit train``, through the same :class:`hizkit.config.Settings`). ``data`` is a
    :class:`Dataset` or a data spec (``"mock"``, ``"jades:DIR"``); ``config`` a TOML path
    or its parsed dict; ``out``, when given, a new directory that receives one model
    directory per label."""
    registry = registry or get_registry()
    doc = read_toml(config) if isinstance(config, str | Path) else dict(config or {})
    flags = {
        "data": data if isinstance(data, str) else None,
        "classifiers": classifiers,
        "seed": seed,
        "valid_fraction": valid_fraction,
    }
    settings = Settings.load(
        doc, flags, "train", registry=registry, check_data=not isinstance(data, Dataset)
    )
    dataset = data if isinstance(data, Dataset) else settings.dataset(registry)
    models = train_models(dataset, settings.config, registry, settings.train.valid_fraction)
    if out is not None:
        save_models(models, out)
    return models
