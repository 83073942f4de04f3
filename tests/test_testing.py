"""hizkit.testing catches what it promises to catch: each check fails on a plugin that
breaks its part of the contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hizkit
from hizkit import testing
from hizkit.testing import ProbeClassifier, check_plugin


class BatchScaled(ProbeClassifier):
    """Standardises with the statistics of the batch it predicts (forbidden)."""

    name = "batch_scaled"

    def predict_proba(self, data):
        x = hizkit.limit_magnitudes(*data.photometry())
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
        logits = x[:, :3]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class Unnormalised(ProbeClassifier):
    name = "unnormalised"

    def predict_proba(self, data):
        return 2 * super().predict_proba(data)


class Forgetful(ProbeClassifier):
    """Loses its weights when loaded."""

    name = "forgetful"

    def _load_state(self, directory):
        super()._load_state(directory)
        self.weights_ = np.zeros_like(self.weights_)


class Lost(hizkit.Evaluator):
    """Claims a figure it never drew."""

    name = "lost"
    description = "test double"

    def evaluate(self, y_true, proba, test, classifier):
        return hizkit.Evaluation({"n": float(len(y_true))})

    def plot(self, view, out_dir: Path):
        return [out_dir / "never_written.png"]


class Counted(hizkit.Evaluator):
    name = "counted"
    description = "test double"

    def evaluate(self, y_true, proba, test, classifier):
        return hizkit.Evaluation({"n": len(y_true)})  # an int, not a float


class Files(hizkit.DataSource):
    name = "files"
    description = "test double"
    needs_location = True

    def load(self, location=None):
        raise AssertionError("never called without a location")


@pytest.mark.parametrize(
    "plugin, check, message",
    [
        (BatchScaled, testing.check_classifier_subset_invariance, "Not equal"),
        (Unnormalised, testing.check_classifier_fit_predict, "in \\[0, 1\\]"),
        (Forgetful, testing.check_classifier_save_load, "Not equal"),
        (Lost, testing.check_evaluator, "not a PNG"),
        (Counted, testing.check_evaluator, "not a float"),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_a_broken_plugin_fails_its_check(plugin, check, message):
    with pytest.raises(AssertionError, match=message):
        check(plugin)


def test_probe_reports_every_diagnostic_and_evaluators_draw_them(tmp_path):
    """The evaluator checks run on a classifier with a history and an embedding, so the
    learning-curve and clustering figures are really drawn."""
    from hizkit.plugins.figures import ClusteringEvaluator, LearningCurveEvaluator

    for evaluator, figure in [
        (LearningCurveEvaluator(), "learning_curve_probe.png"),
        (ClusteringEvaluator(), "tsne_map_probe.png"),
    ]:
        view = testing.example_view(evaluator)
        assert evaluator.plot(view, tmp_path) == [tmp_path / figure]
    d = view.diagnostics["probe"][0]
    assert len(d.history) == ProbeClassifier().epochs
    assert {"train_loss", "val_loss", "val_balanced_accuracy"} <= set(d.history[-1])
    assert d.history[-1]["train_loss"] < d.history[0]["train_loss"]
    assert d.embedding.shape[1] == 2 and len(d.clusters) == len(d.embedding)


def test_a_source_that_reads_files_is_passed_over_without_a_location():
    check_plugin(Files)  # its load check needs location=; the others pass
    with pytest.raises(AssertionError):
        check_plugin(Files, location="anywhere")
