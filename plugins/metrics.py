"""Evaluators: ROC curves, calibration and the bimodal subset.

They add to the headline metrics the harness computes for every classifier (confusion
matrix, per-class TPR/TNR, accuracy: :mod:`hizkit.metrics`, whose rate conventions they
share: one-vs-rest, NaN where a denominator is zero).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hizkit
from hizkit import CLASSES, Dataset, Evaluation, PlotView
from hizkit.figures import pyplot, save_atomically
from hizkit.metrics import ratio

K = len(CLASSES)


def roc_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One-vs-rest ROC (false positive rate, true positive rate) and its area.

    Tied scores are handled as one step, so the area equals the Mann-Whitney statistic.
    """
    pos = truth.sum()
    neg = truth.size - pos
    if pos == 0 or neg == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], truth[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(t)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / pos]
    fpr = np.r_[0.0, fps / neg]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


class ClassificationEvaluator(hizkit.Evaluator):
    name = "classification"
    description = "One-vs-rest ROC curves and per-class ROC AUC"

    def evaluate(self, y_true, proba, test, classifier) -> Evaluation:
        metrics, curves = {}, {}
        for i, c in enumerate(CLASSES):
            fpr, tpr, auc = roc_curve(y_true == i, proba[:, i])
            metrics[f"auc_{c}"] = auc
            curves[c] = {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()}
        return Evaluation(metrics, {"roc": curves})

    def plot(self, view: PlotView, out_dir: Path) -> list[Path]:
        plt = pyplot()
        fig, axes = plt.subplots(1, K, figsize=(4 * K, 3.6), squeeze=False)
        for ax, c in zip(axes[0], CLASSES):
            for label, evs in view.evaluations.items():
                curve = evs[0].details["roc"][c]
                aucs = [e.metrics[f"auc_{c}"] for e in evs]
                auc = np.nanmean(aucs) if np.isfinite(aucs).any() else float("nan")
                ax.plot(curve["fpr"], curve["tpr"], label=f"{label} (AUC {auc:.3f})")
            ax.plot([0, 1], [0, 1], ":", color="grey")
            ax.set_title(f"{c} vs rest (run 1)", fontsize=9)
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
            ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = save_atomically(fig, out_dir / "roc_curves.png")
        plt.close(fig)
        return [path]


class CalibrationEvaluator(hizkit.Evaluator):
    name = "calibration"
    description = "Multi-class Brier score and reliability curve of the top-class probability"

    def __init__(self, bins: int = 10) -> None:
        self.bins = bins

    def evaluate(self, y_true, proba, test, classifier) -> Evaluation:
        onehot = np.eye(K)[y_true]
        brier = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
        conf = proba.max(axis=1)
        correct = proba.argmax(axis=1) == y_true
        edges = np.linspace(0, 1, self.bins + 1)
        which = np.clip(np.digitize(conf, edges) - 1, 0, self.bins - 1)
        count = np.bincount(which, minlength=self.bins)
        mean_conf = np.bincount(which, conf, self.bins) / np.maximum(count, 1)
        accuracy = np.bincount(which, correct.astype(float), self.bins) / np.maximum(count, 1)
        ece = float(np.sum(count * np.abs(accuracy - mean_conf)) / max(count.sum(), 1))
        details = {
            "confidence": mean_conf.tolist(),
            "accuracy": accuracy.tolist(),
            "count": count.tolist(),
        }
        return Evaluation({"brier": brier, "ece": ece}, details)

    def plot(self, view: PlotView, out_dir: Path) -> list[Path]:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for label, evs in view.evaluations.items():
            count = np.sum([e.details["count"] for e in evs], axis=0)
            conf = np.sum(
                [np.multiply(e.details["confidence"], e.details["count"]) for e in evs], 0
            )
            acc = np.sum([np.multiply(e.details["accuracy"], e.details["count"]) for e in evs], 0)
            keep = count > 0
            brier = np.mean([e.metrics["brier"] for e in evs])
            ax.plot(
                conf[keep] / count[keep],
                acc[keep] / count[keep],
                "o-",
                label=f"{label} (Brier {brier:.3f})",
            )
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("predicted probability of the chosen class")
        ax.set_ylabel("fraction correct")
        ax.set_title("reliability", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = save_atomically(fig, out_dir / "reliability.png")
        plt.close(fig)
        return [path]


class BimodalEvaluator(hizkit.Evaluator):
    name = "bimodal"
    description = "TPR and TNR of high-z on test sources flagged bimodal (Balmer/Lyman aliasing)"

    def evaluate(self, y_true, proba, test: Dataset, classifier) -> Evaluation:
        if "bimodal" not in test.catalog.columns:
            return Evaluation({"bimodal_n": 0.0})
        mask = test.catalog["bimodal"].to_numpy(dtype=bool)
        hi = CLASSES.index("highz")
        truth = y_true[mask] == hi
        pred = proba[mask].argmax(axis=1) == hi
        metrics = {
            "bimodal_n": float(mask.sum()),
            "bimodal_tpr_highz": ratio((truth & pred).sum(), truth.sum()),
            "bimodal_tnr_highz": ratio((~truth & ~pred).sum(), (~truth).sum()),
        }
        return Evaluation(metrics)


@hizkit.hookimpl
def hizkit_register_evaluators() -> list[type[hizkit.Evaluator]]:
    return [ClassificationEvaluator, CalibrationEvaluator, BimodalEvaluator]
