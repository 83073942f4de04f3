"""A third-party hizkit plugin, as an author would write it: one classifier and one
evaluator, registered through hizkit's hooks (installed, its ``pyproject.toml`` would
declare ``[project.entry-points.hizkit] centroid = "hizkit_centroid"``). Its tests, in
``test_hizkit_centroid.py``, run hizkit's conformance checks with one import."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

import hizkit


class NearestCentroid(hizkit.Classifier):
    """Each class's mean (standardised) colour vector; probabilities fall off with the
    distance to it."""

    name = "centroid"
    description = "Nearest class centroid in colour space (third-party example)"
    requires: ClassVar[frozenset] = frozenset({"photometry"})
    test_params: ClassVar[dict] = {"temperature": 2.0}

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def validate_params(self) -> None:
        if not self.temperature > 0:
            raise hizkit.HizkitError(f"centroid: temperature must be > 0, got {self.temperature}")

    def _colours(self, data: hizkit.Dataset) -> np.ndarray:
        return (hizkit.colour_features(data, fill=self.fill_) - self.mean_) / self.scale_

    def fit(self, train, valid=None):
        self.validate_params()
        raw = hizkit.colour_features(train)
        self.fill_ = hizkit.column_fill(raw)
        raw = hizkit.impute(raw, self.fill_)
        self.mean_, self.scale_ = raw.mean(axis=0), raw.std(axis=0) + 1e-9
        x = self._colours(train)
        self.centroids_ = np.array(
            [x[train.y == k].mean(axis=0) for k in range(len(hizkit.CLASSES))]
        )
        return self

    def predict_proba(self, data):
        d = np.linalg.norm(self._colours(data)[:, None] - self.centroids_[None], axis=2)
        logits = -d / self.temperature
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _save_state(self, directory: Path) -> None:
        np.savez(
            directory / "centroid.npz",
            fill=self.fill_,
            mean=self.mean_,
            scale=self.scale_,
            centroids=self.centroids_,
        )

    def _load_state(self, directory: Path) -> None:
        with np.load(directory / "centroid.npz", allow_pickle=False) as f:
            self.fill_, self.mean_, self.scale_ = f["fill"], f["mean"], f["scale"]
            self.centroids_ = f["centroids"]


class PredictedShares(hizkit.Evaluator):
    """How the test sources are shared out among the classes, against the truth."""

    name = "shares"
    description = "Fraction of test sources predicted in each class (third-party example)"

    def evaluate(self, y_true, proba, test, classifier):
        k = len(hizkit.CLASSES)
        predicted = np.bincount(proba.argmax(axis=1), minlength=k) / len(proba)
        true = np.bincount(y_true, minlength=k) / len(y_true)
        metrics = {f"share_{c}": float(v) for c, v in zip(hizkit.CLASSES, predicted)}
        return hizkit.Evaluation(metrics, {"true_share": true.tolist()})

    def plot(self, view: hizkit.PlotView, out_dir: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        x = np.arange(len(view.classes))
        width = 0.8 / (len(view.labels) + 1)
        ax.bar(x, view.evaluations[view.labels[0]][0].details["true_share"], width, label="true")
        for i, label in enumerate(view.labels, start=1):
            shares = [view.evaluations[label][0].metrics[f"share_{c}"] for c in view.classes]
            ax.bar(x + i * width, shares, width, label=label)
        ax.set_xticks(x + width * len(view.labels) / 2, view.classes)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "predicted_shares.png"
        fig.savefig(path)
        plt.close(fig)
        return [path]


@hizkit.hookimpl
def hizkit_register_classifiers():
    return [NearestCentroid]


@hizkit.hookimpl
def hizkit_register_evaluators():
    return [PredictedShares]
