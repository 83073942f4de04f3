"""The field test in the harness (issue 23): candidate lists judged at the sky's mix."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_dataset

import hizkit
from hizkit import CLASSES
from hizkit.bench import BenchConfig, ClassifierSpec, run_benchmark
from hizkit.calibration import Calibration
from hizkit.field import FieldTruth, evaluate
from hizkit.predict import predict_field
from hizkit.report import write_run

HIGHZ, BD = CLASSES.index("highz"), CLASSES.index("brown_dwarf")


def tiny_field(seed: int = 9, n_lowz: int = 150, n_highz: int = 20, n_bd: int = 4):
    """A field at a sky-like mix from the tiny source's populations: low-z dominated,
    a few brown dwarfs drawn 4x enriched (weight 1/4), three spurious detections."""
    pool = tiny_dataset(n_per_class=max(n_lowz + 3, n_highz, n_bd), seed=seed)
    y = pool.y
    rows = np.concatenate(
        [np.flatnonzero(y == 0)[: n_lowz + 3], np.flatnonzero(y == 1)[:n_highz],
         np.flatnonzero(y == 2)[:n_bd]]
    )  # fmt: skip
    field = pool.subset(rows)
    cat = field.catalog.copy()
    rng = np.random.default_rng(seed)
    cat["z"] = np.select(
        [cat["label"] == "lowz", cat["label"] == "highz"],
        [rng.uniform(0.2, 3.9, len(cat)), rng.uniform(4.0, 9.0, len(cat))],
        np.nan,
    )
    cat["kind"] = cat["label"].astype(str)
    cat["weight"] = np.where(cat["label"] == "brown_dwarf", 0.25, 1.0)
    spurious = np.arange(3)
    cat.loc[spurious, "label"] = None
    cat.loc[spurious, "kind"] = "spurious"
    cat.loc[spurious, "z"] = np.nan
    cat["id"] = cat["id"] + 10_000_000  # never a training source
    return field.replace(catalog=cat, unlabelled=None)


def test_a_perfect_classifier_hands_pure_complete_lists():
    field = tiny_field()
    truth = FieldTruth.of(field)
    # confident: a class with prior 0.6 % needs likelihood ratios of several hundred
    # before it is the most probable (98:1 would leave the brown dwarfs at P ~ 0.36)
    proba = np.full((len(field), 3), 0.0005)
    proba[np.arange(len(field)), np.maximum(truth.truth, 0)] = 0.999
    proba[truth.truth < 0] = [0.999, 0.0005, 0.0005]  # spurious sources called low-z
    section = evaluate(field, proba, Calibration(1.0, (1 / 3, 1 / 3, 1 / 3)))
    for name in ("highz", "brown_dwarf"):
        entry = section["lists"][name]["all"]
        assert entry["purity"]["value"] == 1.0 and entry["completeness"]["value"] == 1.0
        assert entry["interlopers"]["weight"] == 0
    bd = section["lists"]["brown_dwarf"]["all"]
    assert bd["weight_true"] == pytest.approx(1.0)  # four brown dwarfs weighted 1/4
    true = np.array(section["priors"]["true"])
    assert true == pytest.approx(np.array([150, 20, 1]) / 171)
    # EM finds the field's priors from the outputs alone (weighted, like the sky)
    assert np.array(section["priors"]["estimated"]) == pytest.approx(true, abs=0.03)


def test_a_classifier_that_calls_everything_high_z_is_as_pure_as_the_field():
    field = tiny_field()
    proba = np.tile([0.1, 0.8, 0.1], (len(field), 1))
    section = evaluate(field, proba, Calibration(1.0, (1 / 3, 1 / 3, 1 / 3)))
    entry = section["lists"]["highz"]["all"]
    # every source selected: purity is the weighted high-z share, spurious ones included
    assert entry["purity"]["value"] == pytest.approx(20 / (150 + 20 + 1 + 3))
    assert entry["completeness"]["value"] == 1.0
    inter = entry["interlopers"]
    assert inter["by_kind"]["spurious"]["catastrophic"] == 3
    # low-z galaxies at 3 <= z < 4 are scatter across the threshold, not catastrophic
    cat = field.catalog
    scatter = ((cat["label"] == "lowz") & (cat["z"] >= 3) & (cat["z"] < 4)).sum()
    assert inter["scatter"] == pytest.approx(scatter)
    assert entry["purity_catastrophic"]["value"] > entry["purity"]["value"]


def test_bench_reports_the_field_for_every_classifier(tmp_path):
    data = tiny_dataset(n_per_class=30).replace(field=tiny_field())
    config = BenchConfig(
        [ClassifierSpec("logistic", "logistic"), ClassifierSpec("prior", "prior")],
        evaluators=[],
        min_purity=0.8,
    )
    result = run_benchmark(data, config)
    out = write_run(result, tmp_path / "run")
    doc = json.loads((out / "results.json").read_text())
    for label in ("logistic", "prior"):
        section = doc["classifiers"][label]["field"]["runs"][0]
        assert section["n_sources"] == len(data.field)
        assert set(section["lists"]) == {"highz", "brown_dwarf"}
        pick = section["lists"]["highz"]["at_min_purity"]
        assert {"threshold", "stated_purity", "achieved"} <= set(pick)
        assert "field_purity_highz" in doc["classifiers"][label]["metrics"]
    logistic = doc["classifiers"]["logistic"]["field"]["runs"][0]["lists"]["highz"]
    assert logistic["all"]["purity"]["value"] > 0.7  # the tiny classes separate cleanly
    pick = logistic["at_min_purity"]
    assert pick["stated_purity"] >= 0.8
    assert pick["achieved"]["purity"]["value"] >= 0.7  # measured on the other half
    md = (out / "summary.md").read_text()
    assert "The field test" in md and "Brown-dwarf list" in md
    assert (out / "figures" / "field_test.png").is_file()
    assert "field_purity_highz" not in md  # scalars stay in results.json, not All metrics


def test_a_dataset_without_a_field_has_no_field_section(tmp_path):
    result = run_benchmark(
        tiny_dataset(n_per_class=30),
        BenchConfig([ClassifierSpec("prior", "prior")], evaluators=[]),
    )
    doc = json.loads((write_run(result, tmp_path / "r") / "results.json").read_text())
    assert "field" not in doc["classifiers"]["prior"]
    assert not any(k.startswith("field_") for k in doc["classifiers"]["prior"]["metrics"])


def test_field_truth_needs_labels():
    field = tiny_field()
    with pytest.raises(Exception, match="true class"):
        FieldTruth.of(field.replace(catalog=field.catalog.drop(columns="label")))
    assert isinstance(field.catalog, pd.DataFrame)


class FieldSource(hizkit.DataSource):
    """A field to classify: the tiny populations at twice the training field's high-z
    share, drawn with another seed."""

    name = "tinyfield"
    description = "a tiny field with truth"

    def load(self, location=None):
        return tiny_field(seed=21, n_lowz=150, n_highz=40, n_bd=4)


def test_predict_selects_at_a_stated_purity_that_holds_on_another_field(tmp_path):
    """Trained with a field test, a model keeps its calibration and rates; on another
    field (another seed, twice the high-z share) it estimates the priors, states the
    purity of its lists, and the truth agrees."""
    train_data = tiny_dataset(n_per_class=30).replace(field=tiny_field())
    model = hizkit.train(train_data, "logistic")["logistic"]
    assert model.manifest["calibration"]["temperature"] > 0
    assert set(model.selection["rates"]) == {"highz", "brown_dwarf"}
    # by default the priors are the sky's of the field the rates come from (20/174) ...
    predict_field(model, FieldSource(), None, tmp_path / "sky", min_purity=0.9)
    statement = json.loads((tmp_path / "sky" / "selection.json").read_text())
    assert statement["priors"]["highz"] == pytest.approx(20 / 171)
    assert statement["priors_from"].startswith("the sky's")
    # ... or EM's estimate from the target's own outputs (this field has 40/194)
    table = predict_field(model, FieldSource(), None, tmp_path / "p", min_purity=0.9, priors="em")
    statement = json.loads((tmp_path / "p" / "selection.json").read_text())
    assert statement["priors"]["highz"] == pytest.approx(40 / 194, abs=0.05)
    stated = statement["lists"]["highz"]["expected_purity"]
    assert stated >= 0.9
    chosen = table["selected_highz"].to_numpy(bool)
    measured = (table["label"][chosen] == "highz").mean()
    assert abs(measured - stated) <= 0.05
    assert {"p_field_highz", "selected_brown_dwarf"} <= set(table.columns)
    page = (tmp_path / "p" / "candidates.html").read_text()
    assert "expected purity" in page and "simulation" in page
    # a threshold instead: the list is what scores above it, its purity still stated
    table = predict_field(model, FieldSource(), None, tmp_path / "t", threshold=0.5)
    statement = json.loads((tmp_path / "t" / "selection.json").read_text())
    assert statement["lists"]["highz"]["threshold"] == 0.5
    assert statement["lists"]["highz"]["expected_purity"] is not None


def test_a_model_without_a_field_test_states_no_purity(tmp_path):
    model = hizkit.train(tiny_dataset(n_per_class=30), "logistic")["logistic"]
    assert model.selection is None
    predict_field(model, FieldSource(), None, tmp_path / "p")
    statement = json.loads((tmp_path / "p" / "selection.json").read_text())
    assert statement["lists"]["highz"]["expected_purity"] is None
    assert statement["lists"]["highz"]["rule"] == "most probable class at the field's priors"
