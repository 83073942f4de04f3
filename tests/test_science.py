"""hizkit.science: each rule defined once and used by every plugin that applies it; a
classifier missing a band it names fails in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_dataset

import hizkit
from hizkit import NIRCAM_BANDS, Dataset, cuts, flux_col, fluxerr_col, radius_col, science
from hizkit.bench import BenchConfig, ClassifierSpec, run_benchmark
from hizkit.plugins import colour, jades, normalise, segment
from hizkit.plugins.colour import ColourCuts
from hizkit.plugins.jades import catalog
from hizkit.plugins.mock import selection, survey
from hizkit.registry import get_registry


def random_catalog(n: int = 2000, seed: int = 1) -> Dataset:
    """Sources with every colour, some undetected or uncovered bands, every radius."""
    rng = np.random.default_rng(seed)
    cat = pd.DataFrame({"id": np.arange(n), "ra": 53.1, "dec": -27.8})
    for b in NIRCAM_BANDS:
        f = 10 ** rng.uniform(-1, 2.5, n) * rng.choice([1, 1, 1, -0.1], n)
        f[rng.random(n) < 0.03] = np.nan
        cat[flux_col(b)] = f
        cat[fluxerr_col(b)] = rng.uniform(0.5, 3, n)
        cat[radius_col(b)] = rng.uniform(0, 0.3, n)
    return Dataset(cat, NIRCAM_BANDS)


def test_one_brown_dwarf_rule_for_labels_classifier_and_simulator():
    # the same function, imported, not a copy
    assert catalog.brown_dwarf is colour.brown_dwarf is science.brown_dwarf
    data = random_catalog()
    labelled = jades.brown_dwarf_candidates(data.catalog, max_radius=0.1)
    assert 0 < labelled.sum() < len(data)
    # the colour classifier without softening calls the same sources brown dwarfs,
    # except those its dropout boxes take first
    proba = ColourCuts(soft=False, compact_radius=0.1).predict_proba(data)
    high = proba[:, 1] > 0.5
    np.testing.assert_array_equal(proba[:, 2] > 0.5, labelled & ~high)
    # the simulator's Hainline box is the criteria's colour part
    mag = hizkit.limit_magnitudes(*data.photometry())
    colours_only = selection.hainline_brown_dwarf(mag)
    assert (colours_only >= labelled).all() and colours_only.sum() > labelled.sum()


def test_one_redshift_threshold_for_real_and_simulated_labels():
    z = np.array([0.5, 3.99, 4.0, 9.0])
    assert list(science.redshift_labels(z)) == ["lowz", "lowz", "highz", "highz"]
    truth = np.array(["lowz", "highz", "brown_dwarf", "lowz"])
    mock = survey.assign_labels(truth, z, "photoz")
    assert list(mock) == ["lowz", "lowz", "brown_dwarf", "highz"]
    assert science.redshift_labels(np.array([np.nan]))[0] is None  # jades: unlabelled


def test_one_set_of_detection_bands():
    assert cuts.DETECTION_BANDS is science.DETECTION_BANDS
    assert normalise.Normalise().detection_bands == science.DETECTION_BANDS
    assert segment.Segment().detection_bands == science.DETECTION_BANDS
    data = random_catalog(50)
    flux, err = data.photometry()
    np.testing.assert_allclose(survey.detection_snr(flux, err), cuts.detection_snr(data.catalog))


def test_classifiers_declare_the_bands_they_name():
    assert set(ColourCuts.bands_needed) == set(NIRCAM_BANDS)  # every box names its bands
    registry = get_registry()
    for name in registry.names("classifier"):
        needed = getattr(registry.get("classifier", name), "bands_needed", ())
        assert set(needed) <= set(NIRCAM_BANDS), name


def test_a_missing_band_is_one_line_naming_plugin_and_band():
    data = tiny_dataset(5).select_bands([b for b in NIRCAM_BANDS if b != "F090W"])
    for call in (lambda: ColourCuts().fit(data), lambda: ColourCuts().predict_proba(data)):
        with pytest.raises(hizkit.HizkitError) as err:
            call()
        message = str(err.value)
        assert "\n" not in message and "colour" in message and "F090W" in message
    # through the harness too, before any work (ablation decides from bands_needed)
    config = BenchConfig([ClassifierSpec("colour", "colour")], evaluators=["classification"])
    with pytest.raises(hizkit.HizkitError, match=r"colour needs band\(s\) F090W"):
        run_benchmark(data, config, get_registry())
    # before any classifier trains: logistic, listed first, never starts
    fitted = []
    logistic = get_registry().get("classifier", "logistic")
    original = logistic.fit
    logistic.fit = lambda self, *a, **k: fitted.append(1) or original(self, *a, **k)
    try:
        both = BenchConfig([ClassifierSpec("logistic", "logistic"), *config.classifiers])
        with pytest.raises(hizkit.HizkitError, match="F090W"):
            run_benchmark(data, both, get_registry())
    finally:
        logistic.fit = original
    assert fitted == []
