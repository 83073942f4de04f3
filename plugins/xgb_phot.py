"""``xgb_phot``: gradient-boosted trees (XGBoost) on the catalog photometry alone.

No cutouts and no preprocessors: each source is described by its catalog row, per band
(in the order of ``Dataset.bands``, fixed at ``fit``):

- ``mag_<B>``: the asinh magnitude (Lupton, Gunn & Szalay 1999, AJ 118, 1406),
  ``31.4 - 2.5 log10(e) [asinh(f / 2b) + ln b]`` with ``f`` and the softening ``b`` in
  nJy: the AB magnitude for bright sources, and defined, finite and monotone in the
  measured flux down to zero and negative fluxes. ``b`` is per band, learned in ``fit``
  (1.042 times the training sources' median flux error, Lupton et al.'s choice);
- ``colour_<B1>_<B2>``: adjacent asinh-magnitude differences;
- ``snr_<B>``: the measured flux over its error (negative for a negative flux);
- ``covered_<B>``: 1 where the band was observed, 0 where it was not;
- ``radius_<B>``: the half-light radius (arcsec), when the training catalog has one
  per band and ``use_sizes`` is on.

The two kinds of missing value stay apart, as a photo-z code's user asks: a band **not
observed** (NaN flux or error, or no positive error) gives NaN in every feature of that
band (XGBoost learns where missing values go) and ``covered_<B> = 0``; a band **observed
but fainter than its error** keeps its measured flux, however small or negative, through
the asinh magnitude and the S/N: no upper limit is made up and nothing is imputed.

The approach of a catalog classifier with a brown-dwarf class (SESHAT), with the
hyper-parameters of hizkit's ``xgb``: seeded, class weights balanced by default, early
stopping on the validation part when one is given, threads bounded by the machine's
cores. Saved as XGBoost JSON plus a JSON state (no pickles).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

import hizkit
from hizkit import CLASSES, Dataset
from hizkit.contracts import read_json
from hizkit.science import require_bands

#: Lupton et al. (1999): the softening that minimises the magnitude error at low S/N,
#: in units of the sky-noise flux error
LUPTON_SOFTENING = 1.042
#: the AB magnitude of 1 nJy
ZP_NJY = 31.4


def available_cores() -> int:
    """CPU cores this process may use (its affinity set where the OS reports one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def asinh_mag(flux: np.ndarray, softening: np.ndarray) -> np.ndarray:
    """Asinh (luptitude) AB magnitudes of fluxes in nJy with per-band ``softening`` b
    (nJy): ``31.4 - 2.5 log10(e) [asinh(f / 2b) + ln b]`` (Lupton et al. 1999); equal to
    the AB magnitude for ``f >> b``, finite for any finite flux, NaN where it is NaN."""
    b = np.asarray(softening, dtype=float)
    with np.errstate(invalid="ignore"):
        return ZP_NJY - 2.5 / math.log(10) * (np.arcsinh(flux / (2 * b)) + np.log(b))


def _balanced(y: np.ndarray) -> np.ndarray:
    return hizkit.balanced_class_weights(np.bincount(y, minlength=len(CLASSES)))[y]


class XGBoostPhotometry(hizkit.Classifier):
    name = "xgb_phot"
    description = "Catalog photometry (asinh magnitudes, colours, S/N, sizes) into XGBoost"
    requires: ClassVar[frozenset] = frozenset({"photometry"})
    preprocessors: ClassVar[tuple[str, ...]] = ()
    test_params: ClassVar[dict] = {"n_estimators": 20}

    def __init__(
        self,
        n_estimators: int = 400,
        learning_rate: float = 0.08,
        max_depth: int = 5,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        early_stopping_rounds: int = 30,
        use_sizes: bool = True,
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
        self.use_sizes = use_sizes
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.seed = seed

    def validate_params(self) -> None:
        """Parameter values checked before any work (the configuration calls this)."""
        if self.class_weight not in (None, "balanced"):
            raise hizkit.HizkitError("xgb_phot: class_weight must be None or 'balanced'")
        if self.n_estimators < 1 or self.max_depth < 1:
            raise hizkit.HizkitError("xgb_phot: n_estimators and max_depth must be at least 1")
        if not (0 < self.subsample <= 1 and 0 < self.colsample_bytree <= 1):
            raise hizkit.HizkitError("xgb_phot: subsample and colsample_bytree must lie in (0, 1]")
        if not self.learning_rate > 0:
            raise hizkit.HizkitError(
                f"xgb_phot: learning_rate must be positive, not {self.learning_rate}"
            )
        if self.n_jobs < 0 or self.early_stopping_rounds < 0:
            raise hizkit.HizkitError(
                "xgb_phot: n_jobs and early_stopping_rounds must not be negative"
            )

    # ------------------------------------------------------------------ features

    def _threads(self) -> int:
        cores = available_cores()
        return min(self.n_jobs, cores) if self.n_jobs else cores

    def _columns(self, catalog: pd.DataFrame, prefix: str, bands: tuple[str, ...]) -> np.ndarray:
        cols = [f"{prefix}_{b}" for b in bands]
        missing = [c for c in cols if c not in catalog.columns]
        if missing:
            raise hizkit.HizkitError(
                f"xgb_phot needs catalog column(s) {', '.join(missing)}, which the data lacks"
            )
        return catalog[cols].to_numpy(dtype=float)

    def _photometry(self, data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fluxes, errors (nJy) and the observed mask, ``(N, bands)`` in ``bands_`` order."""
        require_bands(data, self.bands_, "xgb_phot")
        flux = self._columns(data.catalog, "flux", self.bands_)
        err = self._columns(data.catalog, "fluxerr", self.bands_)
        with np.errstate(invalid="ignore"):
            observed = np.isfinite(flux) & np.isfinite(err) & (err > 0)
        return flux, err, observed

    def features(self, data: Dataset) -> np.ndarray:
        """The ``(N, F)`` float32 feature matrix (names in ``feature_names_``; module
        docstring): NaN for every feature of a band that was not observed."""
        flux, err, observed = self._photometry(data)
        flux = np.where(observed, flux, np.nan)
        mag = asinh_mag(flux, self.softening_[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = np.where(observed, flux / np.where(observed, err, 1.0), np.nan)
        parts = [mag, mag[:, :-1] - mag[:, 1:], snr, observed.astype(float)]
        if self.sizes_:
            radius = self._columns(data.catalog, "radius", self.bands_)
            parts.append(np.where(observed & np.isfinite(radius), radius, np.nan))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _names(self) -> list[str]:
        b = self.bands_
        names = [f"mag_{x}" for x in b]
        names += [f"colour_{x}_{y}" for x, y in itertools.pairwise(b)]
        names += [f"snr_{x}" for x in b] + [f"covered_{x}" for x in b]
        if self.sizes_:
            names += [f"radius_{x}" for x in b]
        return names

    # ------------------------------------------------------------------ training

    def _params(self) -> dict:
        return {
            "objective": "multi:softprob",
            "num_class": len(CLASSES),
            "eval_metric": "mlogloss",
            "tree_method": "hist",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "seed": self.seed,
            "nthread": self._threads(),
        }

    def _matrix(self, data: Dataset, y: np.ndarray | None = None, weighted: bool = False):
        import xgboost as xgb

        x = self.features(data)
        w = _balanced(y) if (weighted and y is not None) else None
        return xgb.DMatrix(x, label=y, weight=w, missing=np.nan, feature_names=self.feature_names_)

    def fit(self, train: Dataset, valid: Dataset | None = None) -> XGBoostPhotometry:
        import xgboost as xgb

        if not train.has_photometry:
            raise hizkit.HizkitError("xgb_phot needs catalog photometry (flux_<band> columns)")
        self.bands_ = tuple(train.bands)
        _, err, observed = self._photometry(train)
        med = np.array(
            [
                np.median(err[observed[:, i], i]) if observed[:, i].any() else 1.0
                for i in range(len(self.bands_))
            ]
        )
        self.softening_ = LUPTON_SOFTENING * np.where(np.isfinite(med) & (med > 0), med, 1.0)
        self.sizes_ = bool(self.use_sizes) and all(
            hizkit.radius_col(b) in train.catalog.columns for b in self.bands_
        )
        self.feature_names_ = self._names()

        labelled = train.y >= 0
        if not labelled.any():
            raise hizkit.HizkitError("xgb_phot: the training part has no labelled source")
        train = train.subset(np.flatnonzero(labelled))
        balanced = self.class_weight == "balanced"
        dtrain = self._matrix(train, train.y, balanced)
        kwargs: dict = {}
        if valid is not None and self.early_stopping_rounds:
            valid = valid.subset(np.flatnonzero(valid.y >= 0))
            if len(valid):
                dvalid = self._matrix(valid, valid.y, balanced)
                kwargs = {
                    "evals": [(dvalid, "valid")],
                    "early_stopping_rounds": self.early_stopping_rounds,
                }
        booster = xgb.train(
            self._params(),
            dtrain,
            num_boost_round=self.n_estimators,
            verbose_eval=False,
            **kwargs,
        )
        self.n_trees_ = (
            int(booster.best_iteration) + 1 if kwargs else int(booster.num_boosted_rounds())
        )
        self.booster_ = booster
        return self

    def predict_proba(self, data: Dataset) -> np.ndarray:
        if len(data) == 0:
            return np.zeros((0, len(CLASSES)))
        p = self.booster_.predict(self._matrix(data), iteration_range=(0, self.n_trees_))
        p = np.asarray(p, dtype=float).reshape(len(data), len(CLASSES))
        return p / p.sum(axis=1, keepdims=True)

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each feature over the trees used (features never split on: 0)."""
        gain = self.booster_.get_score(importance_type="total_gain")
        return {n: float(gain.get(n, 0.0)) for n in self.feature_names_}

    # ------------------------------------------------------------------ saving

    def _save_state(self, directory: Path) -> None:
        self.booster_.save_model(directory / "model.json")
        state = {
            "bands": list(self.bands_),
            "softening": self.softening_.tolist(),
            "sizes": self.sizes_,
            "n_trees": self.n_trees_,
        }
        (directory / "state.json").write_text(json.dumps(state))

    def _load_state(self, directory: Path) -> None:
        import xgboost as xgb

        for f in ("model.json", "state.json"):
            if not (directory / f).is_file():
                raise hizkit.HizkitError(f"{directory}: no {f}, not a saved xgb_phot model")
        state = read_json(directory / "state.json")
        try:
            self.bands_ = tuple(str(b) for b in state["bands"])
            self.softening_ = np.asarray(state["softening"], dtype=float)
            self.sizes_ = bool(state["sizes"])
            self.n_trees_ = int(state["n_trees"])
        except (KeyError, TypeError, ValueError) as exc:
            raise hizkit.HizkitError(f"{directory / 'state.json'}: damaged ({exc!r})") from None
        if self.softening_.shape != (len(self.bands_),):
            raise hizkit.HizkitError(f"{directory / 'state.json'}: one softening per band needed")
        self.feature_names_ = self._names()
        booster = xgb.Booster()
        booster.load_model(directory / "model.json")
        booster.set_param({"nthread": self._threads()})
        self.booster_ = booster


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [XGBoostPhotometry]
