"""The harness: one shared split, training-only steps, seeds, the run directory."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import ClassVar

import numpy as np
import pytest

import hizkit
from hizkit import report
from hizkit.bench import BenchConfig, ClassifierSpec, run_benchmark


class Spy(hizkit.Classifier):
    """Records which source ids it was trained and tested on."""

    name = "spy"
    description = "test double"
    seen: ClassVar[dict] = {}

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train, valid=None):
        Spy.seen.setdefault("train", []).append(set(train.catalog["id"]))
        Spy.seen.setdefault("n_train", []).append(len(train))
        Spy.seen.setdefault("valid_cutouts", []).append(valid.cutouts.copy())
        return self

    def predict_proba(self, data):
        Spy.seen.setdefault("test", []).append(list(data.catalog["id"]))
        Spy.seen.setdefault("test_cutouts", []).append(data.cutouts.copy())
        return np.tile([0.5, 0.3, 0.2], (len(data), 1))

    def _save_state(self, directory):
        pass

    def _load_state(self, directory):
        pass


class Marker(hizkit.Preprocessor):
    """A training-only step that makes its output recognisable (adds 1000)."""

    name = "marker"
    description = "test double"
    training_only = True

    def transform(self, data):
        return data.concat(data.replace(cutouts=data.cutouts + 1000.0))


class SpyPlugin:
    @hizkit.hookimpl
    def hizkit_register_classifiers(self):
        return [Spy]

    @hizkit.hookimpl
    def hizkit_register_preprocessors(self):
        return [Marker]


@pytest.fixture
def reg(registry):
    Spy.seen = {}
    registry.register(SpyPlugin(), name="tests.spy")
    return registry


def test_same_split_for_every_classifier_and_training_only_never_leaks(reg, tiny):
    config = BenchConfig(
        [ClassifierSpec("a", "spy", preprocessors=("marker",)), ClassifierSpec("b", "spy")],
        evaluators=["classification"],
        runs=2,
    )
    result = run_benchmark(tiny, config, reg)
    train, test = Spy.seen["train"], Spy.seen["test"]
    assert train[0] == train[1] and test[0] == test[1]  # run 0: a and b share the split
    assert train[2] == train[3] and test[2] == test[3]  # run 1 likewise
    assert test[0] != test[2]  # a new seed, a new split
    assert not (train[0] & set(test[0]))
    assert Spy.seen["n_train"][0] == 2 * Spy.seen["n_train"][1]  # marker doubled train only
    for cut in Spy.seen["test_cutouts"] + Spy.seen["valid_cutouts"]:
        assert cut.max() < 500  # the +1000 copies never reached validation or test
    split = report.split_frame(result)
    assert set(split["part"]) == {"train", "valid", "test"}


def test_extra_training_sources_join_train_only(reg, tiny):
    extra = tiny.subset(np.arange(5)).replace(
        catalog=tiny.subset(np.arange(5)).catalog.assign(id=np.arange(900, 905))
    )
    data = tiny.replace(extra_train=extra)
    run_benchmark(data, BenchConfig([ClassifierSpec("spy", "spy")], evaluators=[]), reg)
    assert set(range(900, 905)) <= Spy.seen["train"][0]
    assert not set(range(900, 905)) & set(Spy.seen["test"][0])


def test_headline_metrics_whatever_evaluators_run(reg, tiny, tmp_path):
    """The core computes the confusion matrix and rates itself: no evaluator needed."""
    config = BenchConfig([ClassifierSpec("logistic", "logistic")], evaluators=[])
    result = run_benchmark(tiny, config, reg)
    run = result.runs[0]
    assert run.evaluations == {}
    assert {"accuracy", "balanced_accuracy", "tpr_highz", "tnr_lowz"} <= set(run.metrics)
    cm = np.array(run.headline.details["confusion"])
    assert cm.sum() == len(result.splits[0].test)
    assert run.metrics["accuracy"] == np.trace(cm) / cm.sum()
    doc = json.loads((report.write_run(result, tmp_path / "r") / "results.json").read_text())
    assert doc["classifiers"]["logistic"]["runs"][0]["confusion"] == cm.tolist()


def test_split_is_stratified_and_seeded():
    y = np.repeat([0, 1, 2], [100, 100, 11])
    a, b = hizkit.make_split(y, 5), hizkit.make_split(y, 5)
    np.testing.assert_array_equal(a.test, b.test)
    for part in (a.train, a.valid, a.test):
        assert set(y[part]) == {0, 1, 2}  # even the 11 rare ones reach every part
    assert len(set(a.train) | set(a.valid) | set(a.test)) == len(y)
    c = hizkit.make_split(y, 6)
    assert not np.array_equal(a.test, c.test)


def test_runs_are_repeatable(reg, tiny):
    config = BenchConfig([ClassifierSpec("logistic", "logistic")], runs=2, seed=3)
    a = run_benchmark(tiny, config, reg)
    b = run_benchmark(tiny, config, reg)
    for ra, rb in zip(a.runs, b.runs):
        np.testing.assert_array_equal(ra.proba, rb.proba)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_run_directory(reg, tiny, tmp_path):
    config = BenchConfig(
        [ClassifierSpec("logistic", "logistic"), ClassifierSpec("prior", "prior")], runs=2
    )
    result = run_benchmark(tiny, config, reg)
    out = report.write_run(result, tmp_path / "run")
    doc = json.loads((out / "results.json").read_text())
    entry = doc["classifiers"]["logistic"]
    for cls in hizkit.CLASSES:
        assert set(entry["tpr"][cls]) == {"mean", "std"}
        assert set(entry["tnr"][cls]) == {"mean", "std"}
        assert cls in doc["classes"]
    assert "auc_highz" in entry["metrics"]  # an evaluator's metric, beside the core's
    for key in ("accuracy", "fit_seconds", "predict_seconds"):
        assert set(entry[key]) == {"mean", "std"}
    assert doc["classifiers"]["prior"]["tpr"]["highz"]["mean"] == 0.0
    preds = (out / "predictions.csv").read_text().splitlines()
    assert preds[0].startswith("run,classifier,id,true")
    parser = _Collect()
    page = (out / "report.html").read_text()
    parser.feed(page)
    assert "<th>classifier</th>" in page and "<td>logistic</td>" in page  # a real table
    assert "<pre>" not in page and "| classifier |" not in page
    assert parser.images and all(src.startswith("data:image/png;base64,") for src in parser.images)
    figures = list((out / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 1000 for f in figures)
    for fig in figures:
        assert f"figures/{fig.name}" in (out / "summary.md").read_text()
    with pytest.raises(hizkit.HizkitError, match="already exists"):
        report.write_run(result, out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_classifier_missing_inputs(reg, tiny):
    no_cutouts = tiny.replace(cutouts=None)
    config = BenchConfig([ClassifierSpec("cnn", "cnn")])
    with pytest.raises(hizkit.HizkitError, match="needs cutouts"):
        run_benchmark(no_cutouts, config, reg)
