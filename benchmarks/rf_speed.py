"""The semi-supervised ``rf`` fit on the full 85,420-source catalog vs a default reference.

Reference: openTSNE with its default settings (perplexity 30, 50 Annoy trees, 250 + 500
iterations), HDBSCAN with the same settings as hizkit's, a Random Forest of the same size.
Both on the same features of the same sources, with missing bands imputed as the plugin
does (per-column medians of the fitted catalog, ``hizkit.column_fill`` + ``hizkit.impute``:
the survey has sources without coverage in some bands, and PCA refuses NaN); both
silhouette scores are reported so that speed is never bought with cluster quality.
Run: python benchmarks/rf_speed.py (``--smoke``: a tiny survey, the code paths only)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from _common import finish

import hizkit
from hizkit.plugins.figures import ClusteringEvaluator
from hizkit.plugins.mock import MockSurvey
from hizkit.plugins.rf import TSNEForest, magnitude_features


def reference_fit(train: hizkit.Dataset, seed: int, smoke: bool = False) -> dict[str, float]:
    import hdbscan
    from openTSNE import TSNE
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import silhouette_score

    t0 = time.perf_counter()
    catalog = pd.concat([train.catalog, train.unlabelled], ignore_index=True)
    raw = magnitude_features(train, catalog)
    x = hizkit.impute(raw, hizkit.column_fill(raw))  # as TSNEForest.fit: NaN -> median
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    short = {"early_exaggeration_iter": 20, "n_iter": 30} if smoke else {}  # smoke: few steps
    emb = np.asarray(TSNE(n_jobs=os.cpu_count(), random_state=seed, **short).fit(x))
    t_tsne = time.perf_counter() - t0
    size = min(100, max(5, len(x) // 20))  # as TSNEForest.cluster (100 on the full catalog)
    clusters = hdbscan.HDBSCAN(
        min_cluster_size=size, min_samples=min(10, size), cluster_selection_method="leaf"
    ).fit_predict(emb)
    y = np.full(len(catalog), -1)
    y[: len(train)] = train.y
    mapping = TSNEForest._map_clusters(clusters, y)
    keep = clusters >= 0
    RandomForestClassifier(
        n_estimators=100, min_samples_leaf=2, n_jobs=os.cpu_count(), random_state=seed
    ).fit(x[keep], mapping[clusters[keep]])
    total = time.perf_counter() - t0
    sil = (
        silhouette_score(emb[keep], clusters[keep], sample_size=5000, random_state=seed)
        if len(np.unique(clusters[keep])) > 1
        else float("nan")
    )
    return {
        "seconds": total,
        "tsne_seconds": t_tsne,
        "silhouette": float(sil),
        "n_clusters": int(clusters.max() + 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-unlabelled", type=int, default=85_420)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="a tiny survey: the code paths only")
    args = ap.parse_args()
    if args.smoke:
        data = MockSurvey(**{**MockSurvey.test_params, "n_unlabelled": 300}).load()
    else:
        data = MockSurvey(n_unlabelled=args.n_unlabelled).load()
    split = hizkit.make_split(data.y, 0)
    train = data.subset(split.train).replace(unlabelled=data.unlabelled)
    n = len(train) + len(data.unlabelled)

    t = time.perf_counter()
    clf = TSNEForest(seed=0, **(TSNEForest.test_params if args.smoke else {})).fit(train)
    ours = time.perf_counter() - t
    print(
        f"hizkit rf on {n} sources: {ours:6.1f} s  silhouette {clf.silhouette_:.3f}  "
        f"stages { ({k: round(v, 1) for k, v in clf.timings_.items()}) }"
    )
    stats = ClusteringEvaluator().evaluate(None, None, None, clf).metrics
    print(f"  cluster stats: {stats}")
    figures = {
        "sources": n,
        "hizkit_seconds": round(ours, 1),
        "hizkit_silhouette": round(clf.silhouette_, 3),
        **stats,
    }
    if not args.skip_reference:
        ref = reference_fit(train, 0, args.smoke)
        print(
            f"reference (openTSNE defaults): {ref['seconds']:6.1f} s  "
            f"silhouette {ref['silhouette']:.3f}  (t-SNE {ref['tsne_seconds']:.1f} s)"
        )
        print(f"speed-up {ref['seconds'] / ours:.2f}x")
        figures.update(
            {
                "reference_seconds": round(ref["seconds"], 1),
                "reference_silhouette": round(ref["silhouette"], 3),
                "speedup": round(ref["seconds"] / ours, 2),
            }
        )
    finish("rf_speed", figures)


if __name__ == "__main__":
    main()
