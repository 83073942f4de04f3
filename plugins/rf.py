"""``rf``: the poster's semi-supervised pipeline, t-SNE -> HDBSCAN -> Random Forest.

1. Features: AB magnitudes (1-sigma limits where undetected) and flux radii in all bands,
   standardised, for the labelled training sources together with the large unlabelled
   photometric catalog.
2. openTSNE (FFT-accelerated gradients, approximate neighbours) embeds them in 2-D.
3. HDBSCAN (the ``hdbscan`` package) clusters the embedding; noise points (label -1) are
   explicitly left out of everything that follows.
4. Each cluster takes the majority class of the labelled *training* sources inside it;
   clusters holding none take the prior majority class (low-z).
5. A Random Forest learns features -> cluster-derived class on every clustered source,
   and predicts the test split from its features (no re-embedding needed).

:meth:`TSNEForest.diagnostics` reports the embedding, the clusters, their silhouette and,
when the catalogs carry a redshift column (simulated data, or photo-z), the redshift of
every embedded source (``extra["z"]``): the ``clustering`` evaluator derives the purity and
completeness of the best cluster for z >= 8 and z >= 10 from them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

import hizkit
from hizkit import CLASSES, Dataset, progress
from hizkit.calibration import training_prior


def magnitude_features(data: Dataset, catalog: pd.DataFrame) -> np.ndarray:
    """AB magnitudes (1-sigma limits when S/N < 1) and log10 flux radii (arcsec),
    (N, 2 bands); NaN where a band is missing (impute with values learned in ``fit``)."""
    mags = hizkit.limit_magnitudes(*data.photometry(catalog))
    radii = catalog[[hizkit.radius_col(b) for b in data.bands]].to_numpy(float)
    return np.column_stack([mags, np.log10(np.clip(radii, 1e-3, None))])


class _Clock:
    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._t = self._now()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        t = self._now()
        self.laps[name] = t - self._t
        self._t = t


class TSNEForest(hizkit.Classifier):
    name = "rf"
    description = "Semi-supervised: t-SNE + HDBSCAN cluster labels into a Random Forest"
    requires: ClassVar[frozenset] = frozenset({"photometry"})
    test_params: ClassVar[dict] = {"exaggeration_iter": 20, "n_iter": 30, "n_estimators": 20}

    def __init__(
        self,
        perplexity: float = 20.0,
        annoy_trees: int = 10,
        exaggeration_iter: int = 100,
        n_iter: int = 200,
        min_cluster_size: int = 100,
        min_samples: int = 10,
        cluster_selection: str = "leaf",
        n_estimators: int = 100,
        max_samples: float | None = 0.3,
        max_unlabelled: int | None = None,
        silhouette_sample: int = 5000,
        seed: int = 0,
    ) -> None:
        self.perplexity = perplexity
        self.annoy_trees = annoy_trees
        self.exaggeration_iter = exaggeration_iter
        self.n_iter = n_iter
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection = cluster_selection
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_unlabelled = max_unlabelled
        self.silhouette_sample = silhouette_sample
        self.seed = seed

    # -------------------------------------------------------------- the pipeline steps

    def embed(self, x: np.ndarray) -> np.ndarray:
        """2-D openTSNE embedding: PCA initialisation, FFT gradients, Annoy neighbours."""
        from openTSNE import TSNEEmbedding, affinity, initialization

        n_jobs = os.cpu_count() or 1
        perplexity = min(self.perplexity, max(2.0, (len(x) - 1) / 3.0))
        # 10 Annoy trees instead of openTSNE's 50: neighbour recall stays high enough in
        # this low-dimensional feature space, and it is the slowest step (see benchmarks/)
        aff = affinity.PerplexityBasedNN(
            x,
            perplexity=perplexity,
            method="annoy",
            n_jobs=n_jobs,
            random_state=self.seed,
            knn_kwargs={"n_trees": self.annoy_trees},
        )
        init = initialization.pca(x, random_state=self.seed)
        emb = TSNEEmbedding(
            init, aff, negative_gradient_method="fft", n_jobs=n_jobs, random_state=self.seed
        )
        emb = emb.optimize(self.exaggeration_iter, exaggeration=12, momentum=0.5)
        emb = emb.optimize(self.n_iter, momentum=0.8)
        return np.asarray(emb)

    def cluster(self, embedding: np.ndarray) -> np.ndarray:
        import hdbscan

        size = min(self.min_cluster_size, max(5, len(embedding) // 20))
        model = hdbscan.HDBSCAN(
            min_cluster_size=size,
            min_samples=min(self.min_samples, size),
            cluster_selection_method=self.cluster_selection,
            core_dist_n_jobs=os.cpu_count() or 1,
        )
        return model.fit_predict(embedding)

    def fit(self, train: Dataset, valid: Dataset | None = None) -> TSNEForest:
        from sklearn.ensemble import RandomForestClassifier

        cats = [train.catalog]
        if train.unlabelled is not None:
            unl = train.unlabelled
            if self.max_unlabelled is not None and len(unl) > self.max_unlabelled:
                unl = unl.sample(self.max_unlabelled, random_state=self.seed)
            cats.append(unl)
        catalog = pd.concat(cats, ignore_index=True)
        raw = magnitude_features(train, catalog)
        self.fill_ = hizkit.column_fill(raw)
        x = hizkit.impute(raw, self.fill_)
        self.mean_, self.scale_ = x.mean(axis=0), x.std(axis=0) + 1e-9
        xs = (x - self.mean_) / self.scale_
        clock = _Clock()
        progress.log(f"rf: t-SNE of {len(xs)} sources")
        self.embedding_ = self.embed(xs)
        clock.lap("tsne")
        self.clusters_ = self.cluster(self.embedding_)
        clock.lap("hdbscan")
        y_lab = np.full(len(catalog), -1)
        y_lab[: len(train)] = train.y
        self.cluster_class_ = self._map_clusters(self.clusters_, y_lab)
        keep = self.clusters_ >= 0
        targets = self.cluster_class_[self.clusters_[keep]]
        self._train_x, self._train_y = xs[keep].astype(np.float32), targets
        self.forest_ = self._forest(RandomForestClassifier)
        clock.lap("forest")
        self.silhouette_ = self._silhouette()
        self.embedding_z_ = catalog["z"].to_numpy(float) if "z" in catalog else None
        clock.lap("diagnostics")
        self.timings_ = clock.laps
        return self

    def _forest(self, cls):
        # each tree sees a bootstrap of max_samples of the ~50k clustered sources: the
        # labels come from clusters, so more rows add time, not information
        forest = cls(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            min_samples_leaf=2,
            n_jobs=os.cpu_count(),
            random_state=self.seed,
            class_weight="balanced",
        )
        forest.fit(self._train_x, self._train_y)
        return forest

    @staticmethod
    def _map_clusters(clusters: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class index per cluster id: majority of labelled members, else low-z."""
        n = clusters.max() + 1 if clusters.size else 0
        mapping = np.zeros(max(n, 1), dtype=int)
        for c in range(n):
            members = y[(clusters == c) & (y >= 0)]
            if members.size:
                mapping[c] = np.bincount(members, minlength=len(CLASSES)).argmax()
        return mapping

    def _silhouette(self) -> float:
        from sklearn.metrics import silhouette_score

        keep = self.clusters_ >= 0
        if len(np.unique(self.clusters_[keep])) < 2:
            return float("nan")
        return float(
            silhouette_score(
                self.embedding_[keep],
                self.clusters_[keep],
                sample_size=min(self.silhouette_sample, keep.sum()),
                random_state=self.seed,
            )
        )

    def training_prior(self, y: np.ndarray) -> np.ndarray:
        """Uniform: the forest weighs the classes equally (``class_weight='balanced'``)."""
        return training_prior(y, "balanced")

    def diagnostics(self) -> hizkit.Diagnostics:
        extra = {} if self.embedding_z_ is None else {"z": self.embedding_z_}
        return hizkit.Diagnostics(
            embedding=self.embedding_,
            clusters=self.clusters_,
            silhouette=self.silhouette_,
            extra=extra,
        )

    def predict_proba(self, data: Dataset) -> np.ndarray:
        x = hizkit.impute(magnitude_features(data, data.catalog), self.fill_)
        x = (x - self.mean_) / self.scale_
        p = self.forest_.predict_proba(x.astype(np.float32))
        out = np.zeros((len(data), len(CLASSES)))
        out[:, self.forest_.classes_] = p
        return out

    def _save_state(self, directory: Path) -> None:
        # The forest is refitted from its exact training set on load (deterministic for
        # the seed): no pickled estimator is ever written or read.
        np.savez(
            directory / "rf.npz",
            x=self._train_x,
            y=self._train_y,
            mean=self.mean_,
            scale=self.scale_,
            fill=self.fill_,
            embedding=self.embedding_,
            clusters=self.clusters_,
            **({} if self.embedding_z_ is None else {"z": self.embedding_z_}),
        )
        (directory / "rf.json").write_text(json.dumps({"silhouette": self.silhouette_}))

    def _load_state(self, directory: Path) -> None:
        from sklearn.ensemble import RandomForestClassifier

        with np.load(directory / "rf.npz", allow_pickle=False) as f:
            self._train_x, self._train_y = f["x"], f["y"]
            self.mean_, self.scale_, self.fill_ = f["mean"], f["scale"], f["fill"]
            self.embedding_, self.clusters_ = f["embedding"], f["clusters"]
            self.embedding_z_ = f.get("z")
        self.silhouette_ = json.loads((directory / "rf.json").read_text())["silhouette"]
        self.forest_ = self._forest(RandomForestClassifier)


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [TSNEForest]
