"""Labelled sources drawn like the field (plugins/mock/field_training.py, issue 23 item 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hizkit import CLASSES, HizkitError
from hizkit.plugins.mock import MockSurvey, field_training, survey

SMALL = {
    "n_lowz": 10,
    "n_highz": 10,
    "n_brown_dwarfs": 4,
    "n_extra_brown_dwarfs": 3,
    "n_unlabelled": 300,
    "cutout_size": 32,
    "field_sources": 80,
    "training_set": "field",
    "seed": 3,
}


@pytest.fixture(scope="module")
def balanced():
    return MockSurvey(**SMALL, training_mix="balanced").load()


def _galaxy_z(cat: pd.DataFrame) -> set[float]:
    z = cat["z"].to_numpy(float)
    return set(z[np.isfinite(z) & (z > 0)].tolist())


def test_balanced_counts_per_class(balanced):
    cat = balanced.catalog
    counts = cat["label"].value_counts().to_dict()
    assert counts == {"lowz": 10, "highz": 10, "brown_dwarf": 4}
    extra = balanced.extra_train.catalog
    assert len(extra) == 3 and (extra["label"] == "brown_dwarf").all()
    assert balanced.cutouts.shape == (24, 7, 32, 32)
    assert balanced.extra_train.cutouts.shape == (3, 7, 32, 32)
    assert (cat["label"] == cat["label_true"]).all()  # labels = "truth"
    assert balanced.meta["training"]["fields"] >= 1


def test_sources_reach_the_detection_limit_without_quality_cuts(balanced):
    cat = pd.concat([balanced.catalog, balanced.extra_train.catalog])
    assert (cat["snr_det"] >= 5.0).all()
    galaxies = cat[cat["label"] != "brown_dwarf"]
    assert (galaxies["snr_det"] < 10).any()  # the field is mostly faint: no S/N >= 10 cut
    assert cat["kind"].isin(["spurious"]).sum() == 0  # spurious detections have no class
    assert (cat["weight"] > 0).all()


def test_columns_are_the_curated_sets(balanced):
    curated = MockSurvey(
        **{k: v for k, v in SMALL.items() if k != "training_set"} | {"field_sources": 0}
    ).load()
    assert list(curated.catalog.columns) == list(field_training.COLUMNS)
    assert list(balanced.catalog.columns) == [*field_training.COLUMNS, "weight"]
    ids = balanced.catalog["id"].to_numpy()
    assert ids.min() == 1 and ids.max() == len(ids)
    assert (balanced.extra_train.catalog["id"] >= 10_000_001).all()


def test_new_draws_disjoint_from_the_field_test_and_the_unlabelled_catalog(balanced):
    labelled = _galaxy_z(pd.concat([balanced.catalog, balanced.extra_train.catalog]))
    assert len(labelled) >= 15
    assert not labelled & _galaxy_z(balanced.field.catalog)
    assert not labelled & _galaxy_z(balanced.unlabelled)
    assert not set(balanced.catalog["id"]) & set(balanced.field.catalog["id"])
    assert not set(balanced.catalog["id"]) & set(balanced.unlabelled["id"])


def test_deterministic_and_cached(balanced):
    again = MockSurvey(**SMALL, training_mix="balanced", cache=False).load()
    pd.testing.assert_frame_equal(again.catalog, balanced.catalog, check_dtype=False)
    assert np.array_equal(again.cutouts, balanced.cutouts, equal_nan=True)
    other = MockSurvey(**(SMALL | {"seed": 4}), training_mix="balanced").load()
    assert not _galaxy_z(other.catalog) & _galaxy_z(balanced.catalog)


def test_field_mix_follows_the_sky_with_weights():
    params = {k: v for k, v in SMALL.items() if k != "n_extra_brown_dwarfs"}
    ds = MockSurvey(
        **params | {"n_lowz": 50, "n_highz": 8, "n_brown_dwarfs": 2}, training_mix="field"
    ).load()
    cat = ds.catalog
    assert ds.extra_train is None  # the field's own brown dwarfs are enriched already
    assert 30 <= len(cat) <= 90
    assert set(cat["label"]) <= set(CLASSES)
    # the sky's mix (~88 % low-z) once the enriched rare kinds are weighted back
    w = cat["weight"].to_numpy(float)
    assert w[(cat["label"] == "lowz").to_numpy()].sum() / w.sum() > 0.7
    assert (cat["snr_det"] >= 5).all()
    # the enriched rare kinds carry weights below one
    rare = cat["kind"].isin(["little_red_dot", "highz_dusty", "highz_quiescent", "T", "Y"])
    assert (cat.loc[rare, "weight"] < 1).all()


def test_balanced_mix_keeps_the_skys_density():
    mix = field_training.balanced_mix({"lowz": 5, "highz": 5, "brown_dwarf": 2})
    sky = field_training.sky_class_shares()
    assert sum(mix[c] * sky[c] for c in CLASSES) == pytest.approx(1.0)
    assert mix["highz"] > 1 > mix["lowz"]


def test_the_default_survey_is_unchanged():
    params = MockSurvey()._validated()
    assert "training_set" not in params and "training_mix" not in params
    key = survey.cache_key(params)
    assert key == survey.cache_key(MockSurvey(training_set="curated")._validated())
    assert key != survey.cache_key(MockSurvey(training_set="field")._validated())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"training_set": "poster"}, "training_set"),
        ({"training_set": "field", "training_mix": "sky"}, "training_mix"),
        ({"training_mix": "field"}, "training_set = 'field'"),
        (
            {"training_set": "field", "training_mix": "field", "n_extra_brown_dwarfs": 5},
            "extra brown dwarfs",
        ),
    ],
)
def test_bad_training_options(kwargs, message):
    with pytest.raises(HizkitError, match=message):
        MockSurvey(**kwargs)._validated()
