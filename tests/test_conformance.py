"""One shared conformance test per plugin kind, parametrised over the registry.

A plugin is checked the moment it registers: add a class to a hook and it appears here.
Plugins declare ``test_params`` to run quickly.
"""

from __future__ import annotations

import numpy as np
import pytest

import hizkit
from hizkit.bench import BenchConfig, ClassifierSpec, _Pipeline
from hizkit.registry import Registry

REGISTRY = Registry(autoload=False)


def names(kind: str) -> list[str]:
    return REGISTRY.names(kind)


@pytest.fixture(scope="module")
def data(small_mock):
    return small_mock


def test_every_kind_has_builtins():
    for kind in ("data_source", "preprocessor", "classifier", "evaluator"):
        assert names(kind), kind


@pytest.fixture(scope="module")
def files(jades_field):
    """A small simulated survey written in the JADES v2.0 layout."""
    return str(jades_field)


@pytest.mark.parametrize("name", names("data_source"))
def test_data_source(name, files):
    cls = REGISTRY.get("data_source", name)
    assert cls.description
    ds = cls.create(**cls.test_params).load(files if cls.needs_location else None)
    assert isinstance(ds, hizkit.Dataset)
    assert len(ds) > 0
    assert ds.cutouts is None or ds.cutouts.dtype == np.float32
    assert set(ds.catalog["label"].dropna()) <= set(hizkit.CLASSES)
    if ds.has_photometry:
        flux, _err = ds.photometry()
        assert flux.shape == (len(ds), len(ds.bands))


@pytest.mark.parametrize("name", names("preprocessor"))
def test_preprocessor(name, data):
    cls = REGISTRY.get("preprocessor", name)
    assert cls.description
    step = cls.create(**cls.test_params)
    part = data.subset(np.arange(20))
    before = part.cutouts.copy()
    out = step.fit(part).transform(part)
    assert isinstance(out, hizkit.Dataset)
    np.testing.assert_array_equal(part.cutouts, before)  # input untouched
    if cls.training_only:
        assert len(out) >= len(part)
    else:
        assert len(out) == len(part)
        np.testing.assert_array_equal(out.catalog["id"], part.catalog["id"])


@pytest.mark.parametrize("name", names("classifier"))
def test_classifier(name, data, tmp_path):
    cls = REGISTRY.get("classifier", name)
    assert cls.description
    pipeline = _Pipeline(data, REGISTRY, BenchConfig([ClassifierSpec(name, name)]))
    split = hizkit.make_split(data.y, seed=0)
    train, valid, test = pipeline.prepare(cls.preprocessors, split)
    clf = cls.create(**cls.test_params)
    assert clf.fit(train, valid) is clf
    proba = clf.predict_proba(test)
    assert proba.shape == (len(test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(proba >= 0)
    assert set(clf.predict(test)) <= set(hizkit.CLASSES)
    assert set(clf.get_params()) == set(cls.param_names())
    # a source's probabilities do not depend on the rest of its batch
    some = np.arange(len(test))[::-3]
    np.testing.assert_allclose(clf.predict_proba(test.subset(some)), proba[some], atol=1e-5)
    clf.save(tmp_path / "model")
    again = cls.load(tmp_path / "model")
    np.testing.assert_allclose(again.predict_proba(test), proba, atol=1e-5)


@pytest.mark.parametrize("name", names("preprocessor"))
def test_preprocessor_is_batch_independent_and_saves(name, data, tmp_path):
    cls = REGISTRY.get("preprocessor", name)
    if cls.training_only:
        pytest.skip("training-only steps never see new data")
    train, new = data.subset(np.arange(30)), data.subset(np.arange(30, 50))
    step = cls.create(**cls.test_params).fit(train)
    whole = step.transform(new)
    some = np.array([7, 2, 11])
    part = step.transform(new.subset(some))
    np.testing.assert_allclose(part.cutouts, whole.cutouts[some], equal_nan=True, atol=1e-6)
    if whole.features is not None:
        np.testing.assert_allclose(part.features, whole.features[some], atol=1e-9)
    step.save(tmp_path / "step")
    again = cls.load(tmp_path / "step")
    np.testing.assert_allclose(
        again.transform(new).cutouts, whole.cutouts, equal_nan=True, atol=1e-6
    )


@pytest.mark.parametrize("name", names("evaluator"))
def test_evaluator(name, data, tmp_path):
    cls = REGISTRY.get("evaluator", name)
    assert cls.description
    ev = cls.create(**cls.test_params)
    rng = np.random.default_rng(0)
    test = data.subset(np.arange(len(data)))
    proba = rng.dirichlet(np.ones(3), len(test))
    result = ev.evaluate(test.y, proba, test, None)
    assert isinstance(result, hizkit.Evaluation)
    for key, value in result.metrics.items():
        assert isinstance(value, float), key


def test_unknown_parameter_is_one_line_error():
    with pytest.raises(hizkit.HizkitError, match="no parameter 'bogus'"):
        REGISTRY.create("classifier", "colour", bogus=1)


@pytest.mark.parametrize(
    "kind", ["data_source", "preprocessor", "classifier", "evaluator"], ids=lambda k: k
)
def test_default_parameters_pass_their_own_checks(kind):
    for name in names(kind):
        plugin = REGISTRY.create(kind, name)
        check = getattr(plugin, "validate_params", None)
        if callable(check):
            check()  # defaults are valid; a bad value is refused before any work


def test_bad_classifier_value_is_refused_before_training(tmp_path, capsys):
    from hizkit.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('[classifiers.cnn]\nselect_by = "accuracy"\n')
    rc = main(["bench", "--classifiers", "colour,cnn", "--config", str(cfg),
               "--out", str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "select_by" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
