"""The headline metrics, computed by the harness for every classifier whatever evaluators
are chosen: the confusion matrix, per-class TPR and TNR, accuracy, balanced accuracy and
macro F1. The report, the terminal table and the band ablation read these names, so the
core computes them itself rather than relying on an evaluator plugin to produce them.

All rates are one-vs-rest per class: TPR (recall) = TP / (TP + FN), TNR = TN / (TN + FP).
A rate whose denominator is zero is NaN (reported as "-"), never 0 or 1.
"""

from __future__ import annotations

import numpy as np

from hizkit.contracts import Evaluation
from hizkit.dataset import CLASSES

K = len(CLASSES)


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((K, K), dtype=int)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def ratio(num: float, den: float) -> float:
    """``num / den``, NaN when there is nothing to divide by (a class absent from a part)."""
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
        out[f"tpr_{c}"] = ratio(tp, tp + fn)
        out[f"tnr_{c}"] = ratio(tn, tn + fp)
        if tp + fn > 0:
            tprs.append(out[f"tpr_{c}"])
            f1s.append(ratio(2 * tp, 2 * tp + fp + fn))
    out["accuracy"] = ratio(np.trace(cm), total)
    out["balanced_accuracy"] = float(np.mean(tprs)) if tprs else float("nan")
    out["macro_f1"] = float(np.mean(f1s)) if f1s else float("nan")
    return out


def headline(y_true: np.ndarray, proba: np.ndarray) -> Evaluation:
    """The headline :class:`Evaluation` of one classifier on one test part: :func:`rates`
    as metrics, the confusion matrix (``details["confusion"]``, a nested list)."""
    cm = confusion(y_true, np.asarray(proba).argmax(axis=1))
    return Evaluation(rates(cm), {"confusion": cm.tolist()})
