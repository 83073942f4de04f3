"""Evaluators: classification metrics, ROC, calibration and the bimodal subset.

All rates are one-vs-rest per class: TPR (recall) = TP / (TP + FN), TNR = TN / (TN + FP).
A rate whose denominator is zero is NaN (reported as "-"), never 0 or 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hizkit
from hizkit import CLASSES, Dataset, Evaluation

K = len(CLASSES)


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((K, K), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def rates(cm: np.ndarray) -> dict[str, float]:
    """Per-class TPR and TNR, accuracy, balanced accuracy and macro F1 from a confusion matrix."""
    total = cm.sum()
    out: dict[str, float] = {}
    f1s, tprs = [], []
    for i, c in enumerate(CLASSES):
        tp = cm[i, i]
        fn = cm[i].sum() - tp
        fp = cm[:, i].sum() - tp
        tn = total - tp - fn - fp
        out[f"tpr_{c}"] = _ratio(tp, tp + fn)
        out[f"tnr_{c}"] = _ratio(tn, tn + fp)
        if tp + fn > 0:
            tprs.append(out[f"tpr_{c}"])
            f1s.append(_ratio(2 * tp, 2 * tp + fp + fn))
    out["accuracy"] = _ratio(np.trace(cm), total)
    out["balanced_accuracy"] = float(np.mean(tprs)) if tprs else float("nan")
    out["macro_f1"] = float(np.mean(f1s)) if f1s else float("nan")
    return out


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
    description = "Confusion matrix, per-class TPR/TNR, accuracy, balanced accuracy, F1, ROC AUC"

    def evaluate(self, y_true, proba, test, classifier) -> Evaluation:
        y_pred = proba.argmax(axis=1)
        cm = confusion(y_true, y_pred)
        metrics = rates(cm)
        curves = {}
        for i, c in enumerate(CLASSES):
            fpr, tpr, auc = roc_curve(y_true == i, proba[:, i])
            metrics[f"auc_{c}"] = auc
            curves[c] = {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()}
        return Evaluation(metrics, {"confusion": cm.tolist(), "roc": curves})

    def plot(self, evaluations, out_dir: Path, result) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = list(evaluations)
        n = len(labels)
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
        for ax, label in zip(axes[0], labels):
            cm = sum(np.array(e.details["confusion"]) for e in evaluations[label])
            rows = cm.sum(axis=1, keepdims=True)
            norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
            ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
            for i in range(K):
                for j in range(K):
                    colour = "white" if norm[i, j] > 0.6 else "black"
                    ax.text(
                        j,
                        i,
                        f"{100 * norm[i, j]:.1f}%\n({cm[i, j]})",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color=colour,
                    )
            ax.set_xticks(range(K), CLASSES, fontsize=8)
            ax.set_yticks(range(K), CLASSES, fontsize=8)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{label} ({len(evaluations[label])} run(s))", fontsize=9)
        fig.tight_layout()
        cm_path = out_dir / "confusion_matrices.png"
        fig.savefig(cm_path, dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, K, figsize=(4 * K, 3.6), squeeze=False)
        for ax, c in zip(axes[0], CLASSES):
            for label in labels:
                ev = evaluations[label][0]
                curve = ev.details["roc"][c]
                aucs = [e.metrics[f"auc_{c}"] for e in evaluations[label]]
                auc = np.nanmean(aucs) if np.isfinite(aucs).any() else float("nan")
                ax.plot(curve["fpr"], curve["tpr"], label=f"{label} (AUC {auc:.3f})")
            ax.plot([0, 1], [0, 1], ":", color="grey")
            ax.set_title(f"{c} vs rest (run 1)", fontsize=9)
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
            ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        roc_path = out_dir / "roc_curves.png"
        fig.savefig(roc_path, dpi=110)
        plt.close(fig)
        return [cm_path, roc_path]


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

    def plot(self, evaluations, out_dir: Path, result) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 4))
        for label, evs in evaluations.items():
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
        path = out_dir / "reliability.png"
        fig.savefig(path, dpi=110)
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
            "bimodal_tpr_highz": _ratio((truth & pred).sum(), truth.sum()),
            "bimodal_tnr_highz": _ratio((~truth & ~pred).sum(), (~truth).sum()),
        }
        return Evaluation(metrics)


@hizkit.hookimpl
def hizkit_register_evaluators() -> list[type[hizkit.Evaluator]]:
    return [ClassificationEvaluator, CalibrationEvaluator, BimodalEvaluator]
