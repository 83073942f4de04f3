"""Evaluators that look at the classifier itself or at the images; they read what a
classifier declares through :meth:`hizkit.Classifier.diagnostics`, never its attributes.

``clustering``: the silhouette score, the noise fraction, and cluster purity and
completeness for z >= 8 and z >= 10 of classifiers that report clusters (``rf``), and their
embedding map coloured by redshift and by cluster.
``learning_curve``: training and validation loss and validation balanced accuracy per epoch,
one line per run, for classifiers that report a training history (``cnn``).
``gallery``: the misclassified test sources of every classifier, in all bands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hizkit
from hizkit import CLASSES, Diagnostics, Evaluation, PlotView
from hizkit.figures import pyplot, save_atomically, stamp_grid


def cluster_stats(clusters: np.ndarray, z: np.ndarray | None) -> dict[str, float]:
    """Noise fraction, number of clusters, and for z >= 8 and z >= 10 the purity and
    completeness of the cluster holding most such sources (needs the redshifts ``z`` of
    the clustered sources: simulated data, or photo-z)."""
    out: dict[str, float] = {
        "noise_fraction": float((clusters < 0).mean()),
        "n_clusters": float(clusters.max() + 1),
    }
    if z is None or clusters.max() < 0:
        return out
    for zmin in (8, 10):
        hi = z >= zmin
        if not hi.any():
            continue
        counts = np.bincount(clusters[hi & (clusters >= 0)], minlength=clusters.max() + 1)
        best = counts.argmax()
        out[f"purity_z{zmin}"] = float(counts[best] / (clusters == best).sum())
        out[f"completeness_z{zmin}"] = float(counts[best] / hi.sum())
    return out


def _first(diagnostics: list[Diagnostics | None]) -> Diagnostics | None:
    return diagnostics[0] if diagnostics else None


class ClusteringEvaluator(hizkit.Evaluator):
    name = "clustering"
    description = "Silhouette and z>=8 / z>=10 cluster purity of clustering classifiers; t-SNE map"

    def evaluate(self, y_true, proba, test, classifier) -> Evaluation:
        d = classifier.diagnostics()
        if d is None or d.clusters is None:
            return Evaluation()
        metrics = cluster_stats(np.asarray(d.clusters), d.extra.get("z"))
        if d.silhouette is not None:
            metrics["silhouette"] = float(d.silhouette)
        return Evaluation(metrics)

    def plot(self, view: PlotView, out_dir: Path) -> list[Path]:
        plt = pyplot()
        paths = []
        for label in view.labels:
            d = _first(view.diagnostics[label])
            if d is None or d.embedding is None or d.clusters is None:
                continue
            emb, clusters, z = np.asarray(d.embedding), np.asarray(d.clusters), d.extra.get("z")
            fig, axes = plt.subplots(1, 2, figsize=(11, 5))
            show = np.random.default_rng(0).permutation(len(emb))[:30000]
            if z is not None:
                sc = axes[0].scatter(
                    emb[show, 0],
                    emb[show, 1],
                    c=np.clip(np.asarray(z)[show], 0, 12),
                    s=1,
                    cmap="viridis",
                    rasterized=True,
                )
                fig.colorbar(sc, ax=axes[0], label="redshift")
            axes[0].set_title(f"{label}: embedding by redshift", fontsize=9)
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
            sil = float("nan") if d.silhouette is None else d.silhouette
            axes[1].set_title(f"clusters (grey: noise), silhouette {sil:.2f}", fontsize=9)
            for ax in axes:
                ax.set_xticks([])
                ax.set_yticks([])
            fig.tight_layout()
            paths.append(save_atomically(fig, out_dir / f"tsne_map_{label}.png"))
            plt.close(fig)
        return paths


class LearningCurveEvaluator(hizkit.Evaluator):
    name = "learning_curve"
    description = (
        "Loss and validation balanced accuracy per epoch of classifiers that train in epochs"
    )

    #: (panel, history keys drawn in it, line style of each)
    PANELS = (
        ("loss", (("train_loss", "-"), ("val_loss", "--"))),
        ("validation balanced accuracy", (("val_balanced_accuracy", "-"),)),
    )

    def evaluate(self, y_true, proba, test, classifier) -> Evaluation:
        d = classifier.diagnostics()
        if d is None or not d.history:
            return Evaluation()
        return Evaluation({"epochs": float(len(d.history))})

    def plot(self, view: PlotView, out_dir: Path) -> list[Path]:
        plt = pyplot()
        paths = []
        for label in view.labels:
            histories = [d.history for d in view.diagnostics[label] if d and d.history]
            if not histories:
                continue
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
            for run, history in enumerate(histories):
                colour = f"C{run % 10}"
                epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
                for ax, (title, keys) in zip(axes, self.PANELS):
                    for key, style in keys:
                        values = [h.get(key, np.nan) for h in history]
                        if np.isfinite(values).any():
                            name = f"run {run + 1} {key}"
                            ax.plot(epochs, values, style, color=colour, label=name)
                    ax.set_title(f"{label}: {title}", fontsize=9)
                    ax.set_xlabel("epoch")
            for ax in axes:
                if ax.lines:
                    ax.legend(fontsize=7)
            fig.tight_layout()
            paths.append(save_atomically(fig, out_dir / f"learning_curve_{label}.png"))
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

    def plot(self, view: PlotView, out_dir: Path) -> list[Path]:
        test = view.tests[0]
        if test.cutouts is None:
            return []
        rows = [
            (label, k, view.proba[label][0][k])
            for label in view.labels
            for k in view.evaluations[label][0].details.get("misclassified", [])
        ]
        if not rows:
            return []
        plt = pyplot()
        nb = len(test.bands)
        fig, axes = plt.subplots(len(rows), nb, figsize=(1.5 * nb, 1.6 * len(rows)), squeeze=False)
        for ax_row, (label, k, p) in zip(axes, rows):
            stamp_grid(ax_row, test.cutouts[k], test.bands)
            src = test.catalog.iloc[k]
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
    return [ClusteringEvaluator, LearningCurveEvaluator, GalleryEvaluator]
