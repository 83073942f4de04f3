"""``xgb``: HOG features (and catalog colours) into gradient-boosted trees (XGBoost).

The poster's second supervised pipeline. Early stopping on the validation split, class
weights for the rare brown dwarfs, and the model saved as XGBoost JSON (no pickles).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np

import hizkit
from hizkit import CLASSES, Dataset


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights that give every present class the same total weight."""
    return hizkit.balanced_class_weights(np.bincount(y, minlength=len(CLASSES)))[y]


class XGBoostHOG(hizkit.Classifier):
    name = "xgb"
    description = "HOG features (+ catalog colours) into XGBoost hist trees"
    requires: ClassVar[frozenset] = frozenset({"cutouts"})
    preprocessors: ClassVar[tuple[str, ...]] = ("segment", "normalise", "hog")
    test_params: ClassVar[dict] = {"n_estimators": 20}

    def __init__(
        self,
        n_estimators: int = 400,
        learning_rate: float = 0.08,
        max_depth: int = 5,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        early_stopping_rounds: int = 30,
        use_colours: bool = True,
        class_weight: str | None = "balanced",
        n_jobs: int = 0,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.early_stopping_rounds = early_stopping_rounds
        self.use_colours = use_colours
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.seed = seed

    def validate_params(self) -> None:
        """Parameter values checked before any work (the configuration calls this)."""
        if self.class_weight not in (None, "balanced"):
            raise hizkit.HizkitError("xgb: class_weight must be None or 'balanced'")
        if self.n_estimators < 1 or self.max_depth < 1:
            raise hizkit.HizkitError("xgb: n_estimators and max_depth must be at least 1")
        if not (0 < self.subsample <= 1 and 0 < self.colsample_bytree <= 1):
            raise hizkit.HizkitError("xgb: subsample and colsample_bytree must lie in (0, 1]")
        if not self.learning_rate > 0:
            raise hizkit.HizkitError(
                f"xgb: learning_rate must be positive, not {self.learning_rate}"
            )

    def _features(self, data: Dataset) -> np.ndarray:
        if data.features is None:
            raise hizkit.HizkitError("xgb needs feature vectors: put 'hog' in its preprocessors")
        parts = [data.features]
        if self.use_colours and data.has_photometry:
            parts.append(hizkit.colour_features(data, fill=self.fill_))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _model(self):
        import os

        import xgboost as xgb

        return xgb.XGBClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            tree_method="hist",
            objective="multi:softprob",
            num_class=len(CLASSES),
            eval_metric="mlogloss",
            n_jobs=self.n_jobs or os.cpu_count(),
            random_state=self.seed,
            early_stopping_rounds=self.early_stopping_rounds
            if self.early_stopping_rounds
            else None,
        )

    def fit(self, train: Dataset, valid: Dataset | None = None) -> XGBoostHOG:
        # missing colours are imputed with the training set's medians, in fit and predict
        colours = self.use_colours and train.has_photometry
        self.fill_ = hizkit.column_fill(hizkit.colour_features(train)) if colours else None
        x, y = self._features(train), train.y
        w = balanced_weights(y) if self.class_weight == "balanced" else None
        model = self._model()
        kwargs = {}
        if valid is not None and len(valid) and self.early_stopping_rounds:
            xv, yv = self._features(valid), valid.y
            kwargs["eval_set"] = [(xv, yv)]
            kwargs["sample_weight_eval_set"] = [balanced_weights(yv)] if w is not None else None
        else:
            model.set_params(early_stopping_rounds=None)
        model.fit(x, y, sample_weight=w, verbose=False, **kwargs)
        self.model_ = model
        return self

    def predict_proba(self, data: Dataset) -> np.ndarray:
        return self.model_.predict_proba(self._features(data)).astype(float)

    def _save_state(self, directory: Path) -> None:
        self.model_.save_model(directory / "model.json")
        best = getattr(self.model_, "best_iteration", None)
        fill = getattr(self, "fill_", None)
        state = {"best_iteration": best, "fill": None if fill is None else fill.tolist()}
        (directory / "state.json").write_text(json.dumps(state))

    def _load_state(self, directory: Path) -> None:
        model = self._model()
        model.load_model(directory / "model.json")
        self.model_ = model
        fill = json.loads((directory / "state.json").read_text()).get("fill")
        self.fill_ = None if fill is None else np.asarray(fill, dtype=float)


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [XGBoostHOG]
