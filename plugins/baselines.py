"""Baseline classifiers: what any method must beat.

``prior`` predicts the training class frequencies for every source (chance level);
``logistic`` is a multinomial logistic regression on catalog colours and magnitudes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np

import hizkit
from hizkit import CLASSES, Dataset
from hizkit.dataset import class_prior


class PriorClassifier(hizkit.Classifier):
    name = "prior"
    description = "Predicts the training-set class frequencies (chance level)"
    requires: ClassVar[frozenset] = frozenset()

    def __init__(self, smoothing: float = 1.0) -> None:
        self.smoothing = smoothing

    def fit(self, train: Dataset, valid: Dataset | None = None) -> PriorClassifier:
        self.prior_ = class_prior(train.y, self.smoothing)
        return self

    def predict_proba(self, data: Dataset) -> np.ndarray:
        return np.tile(self.prior_, (len(data), 1))

    def _save_state(self, directory: Path) -> None:
        (directory / "prior.json").write_text(json.dumps(self.prior_.tolist()))

    def _load_state(self, directory: Path) -> None:
        self.prior_ = np.array(json.loads((directory / "prior.json").read_text()))


class LogisticClassifier(hizkit.Classifier):
    name = "logistic"
    description = "Logistic regression on catalog colours (a linear photometric baseline)"
    requires: ClassVar[frozenset] = frozenset({"photometry"})

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", seed: int = 0):
        self.C = C
        self.class_weight = class_weight
        self.seed = seed

    def fit(self, train: Dataset, valid: Dataset | None = None) -> LogisticClassifier:
        from sklearn.linear_model import LogisticRegression

        raw = hizkit.colour_features(train)
        self.fill_ = hizkit.column_fill(raw)
        x = hizkit.impute(raw, self.fill_)
        self.mean_, self.scale_ = x.mean(axis=0), x.std(axis=0) + 1e-9
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000)
        y = train.y
        model.fit((x - self.mean_) / self.scale_, y)
        self.coef_ = np.zeros((len(CLASSES), x.shape[1]))
        self.intercept_ = np.full(len(CLASSES), -50.0)  # classes absent in training
        self.coef_[model.classes_] = model.coef_ if len(model.classes_) > 2 else 0.0
        self.intercept_[model.classes_] = model.intercept_ if len(model.classes_) > 2 else 0.0
        return self

    def predict_proba(self, data: Dataset) -> np.ndarray:
        z = (
            hizkit.colour_features(data, fill=self.fill_) - self.mean_
        ) / self.scale_ @ self.coef_.T + self.intercept_
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def _save_state(self, directory: Path) -> None:
        np.savez(
            directory / "logistic.npz",
            mean=self.mean_,
            scale=self.scale_,
            fill=self.fill_,
            coef=self.coef_,
            intercept=self.intercept_,
        )

    def _load_state(self, directory: Path) -> None:
        with np.load(directory / "logistic.npz", allow_pickle=False) as f:
            self.mean_, self.scale_, self.fill_ = f["mean"], f["scale"], f["fill"]
            self.coef_, self.intercept_ = f["coef"], f["intercept"]


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [PriorClassifier, LogisticClassifier]
