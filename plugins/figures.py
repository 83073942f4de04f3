"""Evaluators that look at the classifier itself or at the images.

``clustering``: the silhouette score, cluster purity and completeness for z >= 8 and
z >= 10 of clustering classifiers (those exposing ``silhouette_`` and ``cluster_stats_``,
like ``rf``), and their t-SNE map coloured by redshift and by cluster.
``gallery``: the misclassified test sources of every classifier, in all bands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hizkit
from hizkit import CLASSES, Evaluation
from hizkit.figures import save_atomically, stamp_grid


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class ClusteringEvaluator(hizkit.Evaluator):
    name = "clustering"
    description = "Silhouette and z>=8 / z>=10 cluster purity of clustering classifiers; t-SNE map"

    def evaluate(self, y_true, proba, test, classifier) -> Evaluation:
        sil = getattr(classifier, "silhouette_", None)
        if sil is None:
            return Evaluation()
        metrics = {"silhouette": float(sil)}
        metrics.update({k: float(v) for k, v in getattr(classifier, "cluster_stats_", {}).items()})
        return Evaluation(metrics)

    def plot(self, evaluations, out_dir: Path, result) -> list[Path]:
        plt = _plt()
        paths = []
        for label, runs in result.by_label().items():
            clf = runs[0].classifier
            emb = getattr(clf, "embedding_", None)
            if emb is None:
                continue
            clusters = clf.clusters_
            z = getattr(clf, "embedding_z_", None)
            fig, axes = plt.subplots(1, 2, figsize=(11, 5))
            rng = np.random.default_rng(0)
            show = rng.permutation(len(emb))[:30000]
            if z is not None:
                sc = axes[0].scatter(
                    emb[show, 0],
                    emb[show, 1],
                    c=np.clip(z[show], 0, 12),
                    s=1,
                    cmap="viridis",
                    rasterized=True,
                )
                fig.colorbar(sc, ax=axes[0], label="redshift")
            axes[0].set_title(f"{label}: t-SNE map by redshift", fontsize=9)
            noise = clusters[show] < 0
            axes[1].scatter(
                emb[show][noise, 0], emb[show][noise, 1], c="lightgrey", s=1, rasterized=True
            )
            axes[1].scatter(
                emb[show][~noise, 0],
                emb[show][~noise, 1],
                c=clusters[show][~noise] % 20,
                cmap="tab20",
                s=1,
                rasterized=True,
            )
            sil = getattr(clf, "silhouette_", float("nan"))
            axes[1].set_title(f"HDBSCAN clusters (grey: noise), silhouette {sil:.2f}", fontsize=9)
            for ax in axes:
                ax.set_xticks([])
                ax.set_yticks([])
            fig.tight_layout()
            paths.append(save_atomically(fig, out_dir / f"tsne_map_{label}.png"))
            plt.close(fig)
        return paths


class GalleryEvaluator(hizkit.Evaluator):
    name = "gallery"
    description = "Gallery of misclassified test cutouts in all bands (run 1)"

    def __init__(self, per_classifier: int = 6) -> None:
        self.per_classifier = per_classifier

    def evaluate(self, y_true, proba, test, classifier) -> Evaluation:
        wrong = np.flatnonzero(proba.argmax(axis=1) != y_true)
        # the most confidently wrong first
        order = wrong[np.argsort(-proba[wrong].max(axis=1))]
        return Evaluation({}, {"misclassified": order[: self.per_classifier].tolist()})

    def plot(self, evaluations, out_dir: Path, result) -> list[Path]:
        data = result.dataset
        if data.cutouts is None:
            return []
        plt = _plt()
        rows = []
        for label, runs in result.by_label().items():
            run = runs[0]
            test_index = result.splits[run.run].test
            for k in evaluations[label][0].details.get("misclassified", []):
                rows.append((label, test_index[k], run.proba[k]))
        if not rows:
            return []
        nb = len(data.bands)
        fig, axes = plt.subplots(len(rows), nb, figsize=(1.5 * nb, 1.6 * len(rows)), squeeze=False)
        for ax_row, (label, i, p) in zip(axes, rows):
            stamp_grid(ax_row, data.cutouts[i], data.bands)
            src = data.catalog.iloc[i]
            z = f" z={src['z']:.2f}" if "z" in src else ""
            pred = CLASSES[int(np.argmax(p))]
            ax_row[0].set_ylabel(
                f"{label}\n{src['label']}{z}\n-> {pred} ({p.max():.2f})", fontsize=6
            )
        fig.tight_layout()
        path = save_atomically(fig, out_dir / "misclassified_gallery.png")
        plt.close(fig)
        return [path]


@hizkit.hookimpl
def hizkit_register_evaluators() -> list[type[hizkit.Evaluator]]:
    return [ClusteringEvaluator, GalleryEvaluator]
