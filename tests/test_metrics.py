"""The core's headline metrics and the evaluators' arithmetic, against values worked out
by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hizkit.metrics import confusion, headline, rates
from hizkit.plugins.metrics import (
    BimodalEvaluator,
    CalibrationEvaluator,
    ClassificationEvaluator,
    roc_curve,
)


def test_confusion_and_rates_by_hand():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 0])
    y_pred = np.array([0, 0, 1, 0, 1, 1, 0, 2, 0, 0])
    cm = confusion(y_true, y_pred)
    assert cm.tolist() == [[4, 1, 0], [1, 2, 0], [1, 0, 1]]
    r = rates(cm)
    assert r["tpr_lowz"] == pytest.approx(4 / 5)
    assert r["tpr_highz"] == pytest.approx(2 / 3)
    assert r["tpr_brown_dwarf"] == pytest.approx(1 / 2)
    # low-z: TN = sources neither true nor predicted low-z = 2 + 0 + 0 + 1 = 3; FP = 2
    assert r["tnr_lowz"] == pytest.approx(3 / 5)
    assert r["accuracy"] == pytest.approx(7 / 10)
    assert r["balanced_accuracy"] == pytest.approx((4 / 5 + 2 / 3 + 1 / 2) / 3)
    f1 = [2 * 4 / (2 * 4 + 2 + 1), 2 * 2 / (2 * 2 + 1 + 1), 2 * 1 / (2 * 1 + 0 + 1)]
    assert r["macro_f1"] == pytest.approx(np.mean(f1))


def test_absent_class_gives_nan_not_zero():
    r = rates(confusion(np.array([0, 1]), np.array([0, 1])))
    assert np.isnan(r["tpr_brown_dwarf"])
    assert r["balanced_accuracy"] == 1.0


def test_auc_matches_sklearn_including_ties():
    rng = np.random.default_rng(0)
    truth = rng.random(300) < 0.3
    score = np.round(rng.random(300) + truth * 0.3, 1)  # many ties
    _, _, auc = roc_curve(truth, score)
    assert auc == pytest.approx(roc_auc_score(truth, score))


def test_classification_evaluator_perfect_and_chance():
    y = np.repeat([0, 1, 2], 10)
    perfect = np.eye(3)[y]
    assert headline(y, perfect).metrics["accuracy"] == 1
    assert headline(y, perfect).details["confusion"] == (10 * np.eye(3, dtype=int)).tolist()
    ev = ClassificationEvaluator().evaluate(y, perfect, None, None)
    assert ev.metrics["auc_highz"] == 1
    flat = np.full((30, 3), 1 / 3)
    ev = ClassificationEvaluator().evaluate(y, flat, None, None)
    assert ev.metrics["auc_lowz"] == pytest.approx(0.5)


def test_brier_score_by_hand():
    y = np.array([0, 1])
    proba = np.array([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0]])
    ev = CalibrationEvaluator().evaluate(y, proba, None, None)
    assert ev.metrics["brier"] == pytest.approx(((0.25 + 0.25) + (0.04 + 0.04)) / 2)


def test_bimodal_subset(tiny):
    cat = tiny.catalog.assign(bimodal=False)
    idx = np.flatnonzero(cat["label"].isin(["lowz", "highz"]))[[0, 1, -1, -2]]
    cat.loc[idx, "bimodal"] = True
    data = tiny.replace(catalog=cat)
    y = data.y
    proba = np.eye(3)[y]
    proba[idx[0]] = [0, 1, 0]  # one low-z bimodal source called high-z
    m = BimodalEvaluator().evaluate(y, proba, data, None).metrics
    assert m["bimodal_n"] == 4
    assert m["bimodal_tpr_highz"] == 1.0
    assert m["bimodal_tnr_highz"] == pytest.approx(0.5)
