"""Trained models: a fitted preprocessor chain and a classifier, kept as one directory.

``hizkit train`` (and ``hizkit bench --save-models``) writes one directory per classifier
label::

    models/cnn/
        manifest.json                  what it is, what it needs, where it came from
        preprocessors/00-segment/      each fitted step: preprocessor.json + its state
        preprocessors/01-normalise/
        classifier/                    classifier.json + its state (safe formats only)

``manifest.json`` records the bands in order, the pixel scale and cutout size, the labels
the model learned from, a description and SHA-256 of the training data, the validation
metrics, the training domain (the detection magnitudes it saw), the versions of hizkit,
of every plugin's distribution and of the numerical libraries, and a SHA-256 of every
file in the directory: a file changed after training is refused on load. Loading reads
JSON, ``.npz`` without pickles and torch state dicts with ``weights_only=True``; it never
unpickles code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hizkit import progress
from hizkit.atomic import jsonable, new_directory, write_directory
from hizkit.bench import ClassifierSpec
from hizkit.calibration import Calibration
from hizkit.contracts import Classifier, Preprocessor, read_json
from hizkit.cuts import detection_magnitude
from hizkit.dataset import CLASSES, Dataset
from hizkit.errors import HizkitError
from hizkit.registry import Registry, get_registry
from hizkit.science import DETECTION_BANDS

MANIFEST = "manifest.json"
#: the manifest's format; a model written in a newer format is refused with a clear error
FORMAT = 1
#: numerical libraries whose versions change a model's numbers, recorded in the manifest
LIBRARIES = ("numpy", "scipy", "scikit-learn", "xgboost", "torch", "photutils", "astropy")


def data_hash(data: Dataset) -> str:
    """SHA-256 of what a model learned from: ids, positions, labels and cutouts."""
    h = hashlib.sha256()
    cols = [c for c in ("id", "ra", "dec", "label") if c in data.catalog.columns]
    h.update(data.catalog[cols].to_csv(index=False).encode())
    h.update(",".join(data.bands).encode())
    if data.cutouts is not None:
        for row in data.cutouts:  # one source at a time: no full-size copy
            h.update(np.ascontiguousarray(row).tobytes())
    return h.hexdigest()


def _versions(registry: Registry, plugins: Sequence[tuple[str, str]]) -> dict[str, Any]:
    libs = {}
    for lib in LIBRARIES:
        try:
            libs[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    from hizkit import __version__

    infos = {f"{kind}:{name}": registry.info(kind, name) for kind, name in plugins}
    return {
        "hizkit": __version__,
        "python": platform.python_version(),
        "plugins": {
            key: {"distribution": i.distribution, "version": i.version} for key, i in infos.items()
        },
        "libraries": libs,
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class TrainedModel:
    """A fitted preprocessor chain and classifier that classify new sources.

    ``predict_proba`` runs the chain (training-only steps such as augmentation are not
    part of it) and the classifier; ``predict`` returns the candidate table. Sources are
    independent: a source's probabilities do not depend on the rest of the batch.
    """

    label: str
    steps: list[Preprocessor]
    classifier: Classifier
    manifest: dict[str, Any] = field(default_factory=dict)
    #: the directory it was loaded from or saved to (None for a model only in memory)
    path: Path | None = None

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.manifest["bands"])

    @property
    def calibration(self) -> Calibration:
        """Its calibration (validation part, training prior); none recorded: the raw
        probabilities at a uniform prior."""
        saved = self.manifest.get("calibration")
        if saved is None:
            return Calibration(1.0, tuple([1 / len(CLASSES)] * len(CLASSES)))
        return Calibration.from_dict(saved)

    @property
    def selection(self) -> dict[str, Any] | None:
        """The rates it selects at a stated purity with, measured on the training data's
        field test (None when that had none)."""
        return self.manifest.get("selection")

    @property
    def needs_cutouts(self) -> bool:
        """True when the chain or the classifier reads cutouts (else the catalog suffices)."""
        return bool(self.steps) or "cutouts" in self.classifier.requires

    def check(self, data: Dataset) -> Dataset:
        """``data`` in the model's bands and order; a one-line error when it cannot serve."""
        data = self.check_catalog(data)
        if self.needs_cutouts:
            if data.cutouts is None:
                raise HizkitError(f"model '{self.label}' needs cutouts; the data has none")
            want, size = self.manifest.get("pixel_scale"), self.manifest.get("cutout_size")
            if want and abs(data.pixel_scale - want) > 0.01 * want:
                raise HizkitError(
                    f"model '{self.label}' was trained on {want:g}\"/px cutouts; the data's are "
                    f"{data.pixel_scale:g}\"/px (set the data source's pixel_scale)"
                )
            if size and list(data.cutouts.shape[2:]) != list(size):
                raise HizkitError(
                    f"model '{self.label}' was trained on {size[0]}x{size[1]} cutouts; the "
                    f"data's are {data.cutouts.shape[2]}x{data.cutouts.shape[3]} "
                    "(set the data source's cutout_size)"
                )
        return data

    def check_catalog(self, data: Dataset) -> Dataset:
        """A field's catalog (cutouts may come later) in the model's bands and order."""
        missing = [b for b in self.bands if b not in data.bands]
        if missing:
            raise HizkitError(
                f"model '{self.label}' needs band(s) {', '.join(missing)}, which the data "
                f"lacks (it has {', '.join(data.bands)})"
            )
        data = data.select_bands(self.bands)
        if "photometry" in self.classifier.requires and not data.has_photometry:
            raise HizkitError(f"model '{self.label}' needs catalog photometry in every band")
        return data

    def prepare(self, data: Dataset) -> Dataset:
        """``data`` after the fitted preprocessor chain."""
        data = self.check(data)
        for step in self.steps:
            data = step.transform(data)
        return data

    def predict_proba(self, data: Dataset) -> np.ndarray:
        """``(N, 3)`` probabilities in the order of :data:`hizkit.CLASSES`."""
        if len(data) == 0:
            return np.zeros((0, len(CLASSES)))
        proba = np.asarray(self.classifier.predict_proba(self.prepare(data)), dtype=float)
        if proba.shape != (len(data), len(CLASSES)):
            raise HizkitError(f"model '{self.label}' gave probabilities of shape {proba.shape}")
        return proba

    def predict(self, data: Dataset) -> pd.DataFrame:
        """The candidate table of ``data``: one row per source, with its flags (see
        :func:`hizkit.predict.candidate_table`)."""
        from hizkit.predict import candidate_table  # predict builds on this module

        return candidate_table(self, data, self.predict_proba(data))

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path) -> Path:
        """Write the model as a new directory (atomically; an existing path is refused)."""
        target = new_directory(path)
        with target as tmp:
            self.write_into(tmp)
        self.path = target.path
        return self.path

    def write_into(self, directory: Path) -> None:
        """Write the model's files into an existing, empty ``directory``."""
        for i, step in enumerate(self.steps):
            step.save(directory / "preprocessors" / f"{i:02d}-{step.name}")
        self.classifier.save(directory / "classifier")
        files = sorted(p for p in directory.rglob("*") if p.is_file())
        manifest = dict(self.manifest)
        manifest["files"] = {str(p.relative_to(directory)): _sha256(p) for p in files}
        (directory / MANIFEST).write_text(json.dumps(jsonable(manifest), indent=2))
        self.manifest = manifest

    @classmethod
    def load(cls, path: str | Path, registry: Registry | None = None) -> TrainedModel:
        """Read a model directory written by :meth:`save`; a one-line error when it is
        not one, was changed after it was written, or needs a plugin that is missing."""
        path = Path(path)
        registry = registry or get_registry()
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise HizkitError(f"{path}: no {MANIFEST}; not a model written by hizkit train")
        manifest = read_json(manifest_path)
        if not isinstance(manifest, dict) or manifest.get("format", 0) > FORMAT:
            raise HizkitError(f"{path}: a model format this hizkit cannot read; upgrade hizkit")
        for rel, digest in manifest.get("files", {}).items():
            file = path / rel
            if not file.is_file():
                raise HizkitError(f"{path}: {rel} is missing; the model is incomplete")
            if _sha256(file) != digest:
                raise HizkitError(f"{path}: {rel} changed after the model was written; refused")
        _warn_versions(manifest, registry)
        steps = []
        for i, entry in enumerate(manifest["preprocessors"]):
            step_cls = registry.get("preprocessor", entry["name"])
            steps.append(step_cls.load(path / "preprocessors" / f"{i:02d}-{entry['name']}"))
        clf_cls = registry.get("classifier", manifest["classifier"]["plugin"])
        classifier = clf_cls.load(path / "classifier")
        return cls(manifest["label"], steps, classifier, manifest, path)  # type: ignore[arg-type]


def _warn_versions(manifest: dict[str, Any], registry: Registry) -> None:
    for key, saved in manifest.get("versions", {}).get("plugins", {}).items():
        kind, _, name = key.partition(":")
        try:
            now = registry.info(kind, name)
        except HizkitError:
            raise HizkitError(
                f"the model needs the {kind.replace('_', ' ')} '{name}' from "
                f"{saved['distribution']} {saved['version']}, which is not installed"
            ) from None
        if now.version != saved["version"]:
            progress.warn(
                f"the model was trained with {saved['distribution']} {saved['version']} "
                f"({name}); {now.distribution} {now.version} is installed"
            )


# ---------------------------------------------------------------------- manifest


def build_manifest(
    label: str,
    spec: ClassifierSpec,
    classifier: Classifier,
    steps: list[Preprocessor],
    chain: tuple[str, ...],
    dataset: Dataset,
    train_part: Dataset,
    metrics: dict[str, float],
    metrics_part: str,
    registry: Registry,
    *,
    calibration: Calibration | None = None,
    selection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to judge and reproduce a model, as JSON-ready values; with its
    calibration and the rates it selects at a stated purity with
    (:func:`hizkit.field.select`) when the training data had a field test."""
    mag = detection_magnitude(train_part.catalog) if train_part.has_photometry else None
    finite = mag[np.isfinite(mag)] if mag is not None else np.empty(0)
    counts = {c: int((train_part.catalog.get("label") == c).sum()) for c in CLASSES}
    plugins = [("classifier", spec.plugin)] + [("preprocessor", s.name) for s in steps]
    meta = dict(dataset.meta)
    return {
        "format": FORMAT,
        "label": label,
        "description": f"{spec.plugin} trained on {meta.get('source', '?')} "
        f"({len(train_part)} training sources)",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "classifier": {"plugin": spec.plugin, "params": classifier.get_params()},
        "preprocessors": [{"name": s.name, "params": s.get_params()} for s in steps],
        "training_chain": list(chain),
        "bands": list(dataset.bands),
        "pixel_scale": dataset.pixel_scale if dataset.cutouts is not None else None,
        "cutout_size": list(dataset.cutouts.shape[2:]) if dataset.cutouts is not None else None,
        "labels": meta.get("labels"),
        "training_data": {
            "source": meta,
            "sha256": data_hash(dataset),
            "n_sources": len(dataset),
            "n_train": len(train_part),
            "train_class_counts": counts,
        },
        "domain": {
            "quantity": "AB magnitude of the mean detection-band catalog flux",
            "bands": list(DETECTION_BANDS),
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
        },
        "metrics": {"part": metrics_part, **metrics},
        "calibration": None if calibration is None else calibration.to_dict(),
        "selection": selection,
        "versions": _versions(registry, plugins),
    }


def save_models(models: dict[str, TrainedModel], out: str | Path, existing: str = "refuse") -> Path:
    """Write ``{label: model}`` as ``out/<label>/`` directories (``out`` is new, written
    atomically: it appears only when every model is in it). ``existing="sibling"`` (for
    a caller that checked ``out`` free before training): if ``out`` appeared meanwhile,
    the models take the next free sibling name. A failure to write keeps the trained
    models in a recovery directory (:func:`hizkit.atomic.write_directory`). Returns the
    directory written."""

    def write(directory: Path) -> None:
        for label, model in models.items():
            (directory / label).mkdir()
            model.write_into(directory / label)

    path = write_directory(out, write, "models", existing)
    for label, model in models.items():
        model.path = path / label
    return path


def load_model(path: str | Path, registry: Registry | None = None) -> TrainedModel:
    """Load a model directory written by ``hizkit train`` (one classifier label)."""
    path = Path(path)
    if not (path / MANIFEST).exists() and path.is_dir():
        inside = sorted(p.parent.name for p in path.glob(f"*/{MANIFEST}"))
        if inside:
            raise HizkitError(
                f"{path} holds the models {', '.join(inside)}; name one, e.g. {path / inside[0]}"
            )
    return TrainedModel.load(path, registry)
