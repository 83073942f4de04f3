"""The simulated field with truth (plugins/mock/field.py, issue 23 item 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hizkit import CLASSES, HizkitError
from hizkit.plugins.mock import MockSurvey, field, field_writer
from hizkit.plugins.mock.population import HIGHZ_KINDS

N, SEED, SIZE = 400, 5, 32


@pytest.fixture(scope="module")
def sim():
    return field.simulate(N, SEED, cutout_size=SIZE, keep_images=True)


def _weighted_share(cat: pd.DataFrame, mask: np.ndarray) -> tuple[float, float]:
    """Weighted share of ``mask`` among matched detections and its sampling error
    (the ratio estimator's, from the weights)."""
    m = ~cat["spurious"].to_numpy(bool)
    w = cat["weight"].to_numpy(float)[m]
    x = mask[m].astype(float)
    share = (w * x).sum() / w.sum()
    err = np.sqrt(((w * (x - share)) ** 2).sum()) / w.sum()
    return share, err


def test_class_mix_follows_the_cited_fractions(sim):
    cat = sim.data.catalog
    sky = field.sky_fractions()
    highz = sum(sky[k] for k in HIGHZ_KINDS) / (1 - sky["brown_dwarf"])
    share, err = _weighted_share(cat, (cat["label"] == "highz").to_numpy())
    # sampling error, plus 20 % of the share for what the analytic detection rates used
    # to plan the draws miss (blends, deblending, segment vs aperture detection)
    assert abs(share - highz) < 3 * err + 0.2 * highz, (share, err, highz)
    bd, bd_err = _weighted_share(cat, (cat["label"] == "brown_dwarf").to_numpy())
    assert bd < sky["brown_dwarf"] * 3 + 3 * bd_err  # rare: ~0.01-0.1 % of sources


def test_rare_kinds_are_enriched_and_weighted_back(sim):
    cat = sim.data.catalog
    sky = field.sky_fractions()
    for kind in ("highz_dusty", "highz_quiescent", "little_red_dot"):
        rows = cat[cat["kind"] == kind]
        assert len(rows) >= 1, kind  # drawn in excess so that some are detected
        assert (rows["weight"] < 1).all()
        # far rarer on the sky than in the draw
        share, err = _weighted_share(cat, (cat["kind"] == kind).to_numpy())
        assert share < 5 * sky[kind] + 3 * err
    dwarfs = cat[cat["label"] == "brown_dwarf"]
    assert len(dwarfs) >= 1 and (dwarfs["weight"] < 0.5).all()
    # the mock's low-z draw over-represents dusty and quiescent galaxies: weights < 1
    for kind in ("dusty", "quiescent"):
        assert (cat.loc[cat["kind"] == kind, "weight"] < 1).all()
    lowz = cat["label"] == "lowz"
    dusty, err = _weighted_share(cat[lowz], (cat.loc[lowz, "kind"] == "dusty").to_numpy())
    lo, hi = field.LOWZ_SKY["dusty"][1:]
    assert lo - 3 * err <= dusty <= hi + 3 * err


def test_sky_fractions_and_mix_multipliers():
    sky = field.sky_fractions()
    assert sum(sky.values()) == pytest.approx(1.0)
    assert set(sky) == set(field.STRATA)
    highz = sum(sky[k] for k in HIGHZ_KINDS)
    assert 0.10 < highz < 0.14  # ~12 % of detected sources at z >= 4
    assert sky["brown_dwarf"] < 1e-3
    for kind in ("highz_dusty", "highz_quiescent", "little_red_dot"):
        assert sky[kind] / highz < 0.02  # red kinds are ~0.1-1 % of z >= 4 sources
    mixed = field.sky_fractions({"highz": 2})
    for k in HIGHZ_KINDS:
        assert mixed[k] == pytest.approx(2 * sky[k])
    assert field.parse_mix("highz=2, little_red_dot=3") == {"highz": 2.0, "little_red_dot": 3.0}
    for bad in ("highz", "dragons=2", "highz=-1", "highz=x"):
        with pytest.raises(HizkitError):
            field.parse_mix(bad)


def test_mix_changes_the_number_drawn():
    a = field.plan(1000, SIZE, 0.15, 5.0)
    b = field.plan(1000, SIZE, 0.15, 5.0, {"highz": 2})
    assert b.drawn["highz_starforming"] == pytest.approx(2 * a.drawn["highz_starforming"], rel=0.01)
    assert b.drawn["lowz"] == a.drawn["lowz"]


def test_blends_exist_and_are_matched_to_truth(sim):
    cat = sim.data.catalog
    close = cat[(cat["nn_dist"] < 1.0) & ~cat["spurious"]]
    assert len(close) > 0.1 * len(cat)  # crowded: many sources have a neighbour within 1"
    assert close["label"].isin(CLASSES).all()
    assert (close["match_dist"] <= field.MATCH_RADIUS).all()
    assert cat["blended"].any()
    assert (cat.loc[cat["blended"], "n_true"] >= 2).all()


def test_spurious_detections_are_their_own_kind(sim):
    cat = sim.data.catalog
    sp = cat["spurious"].to_numpy(bool)
    assert sp.any()  # shreds and the like exist in any real catalog
    assert (cat.loc[sp, "kind"] == "spurious").all()
    assert cat.loc[sp, "label"].isna().all()
    assert cat.loc[sp, "z"].isna().all()
    assert (cat.loc[~sp, "kind"] != "spurious").all()
    assert cat.loc[~sp, "label"].isin(CLASSES).all()
    assert (sim.data.y[sp] == -1).all()


def test_catalog_columns_and_detection(sim):
    data = sim.data
    cat = data.catalog
    for col in ("id", "ra", "dec", "z_phot", "z_l68", "z_u68", "chi2_lowz", "chi2_highz"):
        assert col in cat
    for b in data.bands:
        assert {f"flux_{b}", f"fluxerr_{b}", f"radius_{b}"} <= set(cat.columns)
    assert (cat["snr_det"] >= 5).all()
    assert cat["id"].is_unique
    assert data.cutouts.shape == (len(cat), 7, SIZE, SIZE)
    assert data.cutouts.dtype == np.float32
    assert sim.sci.shape[0] == 7 and sim.sci.shape[1] == sim.sci.shape[2]


def test_no_source_shared_with_the_training_set_or_the_unlabelled_catalog(sim):
    params = dict(MockSurvey.test_params, seed=SEED)
    survey = MockSurvey(**params).load()
    used = np.concatenate(
        [
            survey.catalog["z"].to_numpy(float),
            survey.unlabelled["z"].to_numpy(float),
            survey.extra_train.catalog["z"].to_numpy(float),
        ]
    )
    z = sim.data.catalog["z"].to_numpy(float)
    galaxies = np.isfinite(z) & (z > 0)  # brown dwarfs all have z = 0
    assert not set(z[galaxies]) & set(used)
    re = sim.data.catalog["re_true"].to_numpy(float)
    assert not set(re[re > 0]) & set(survey.catalog["re_true"].to_numpy(float))
    # the field's streams are not the survey's
    a = field.streams(SEED, 1)[0].random(4)
    for entropy in (SEED, [SEED, 1], [SEED, 2]):
        assert not np.array_equal(a, np.random.default_rng(entropy).random(4))


def test_deterministic_for_a_seed():
    a = field.simulate(60, 11, cutout_size=16)
    b = field.simulate(60, 11, cutout_size=16)
    pd.testing.assert_frame_equal(a.data.catalog, b.data.catalog)
    np.testing.assert_array_equal(a.data.cutouts, b.data.cutouts)
    c = field.simulate(60, 12, cutout_size=16)
    assert not np.array_equal(c.data.catalog["z"].to_numpy(), a.data.catalog["z"].to_numpy())


def test_written_files_read_back_through_the_jades_source(sim, tmp_path):
    from astropy.io import fits

    from hizkit.plugins.mock import jades_writer
    from hizkit.registry import get_registry

    out = tmp_path / "field"
    field_writer.write(sim, out)
    ds = get_registry().create("data_source", "jades", cutout_size=SIZE).load(str(out))
    cat = sim.data.catalog
    assert len(ds) == len(cat)
    assert ds.cutouts.shape == (len(cat), 7, SIZE, SIZE)
    np.testing.assert_allclose(ds.catalog["z_true"], cat["z"], equal_nan=True)
    # a spurious detection has no true class: missing, not a class called ""
    got = ds.catalog["label_true"]
    assert (got.isna().to_numpy() == cat["spurious"].to_numpy(bool)).all()
    real = ~cat["spurious"].to_numpy(bool)
    assert (got[real].to_numpy(str) == cat["label"][real].astype(str).to_numpy()).all()
    np.testing.assert_allclose(ds.catalog["z_phot"], cat["z_phot"])
    np.testing.assert_allclose(ds.catalog["flux_F444W"], cat["flux_F444W"], equal_nan=True)
    truth = fits.getdata(out / jades_writer.CATALOG_NAME, "TRUTH")
    assert {"Z_TRUE", "LABEL", "KIND", "WEIGHT"} <= set(truth.columns.names)
    np.testing.assert_allclose(truth["WEIGHT"], cat["weight"])
    assert set(truth["KIND"]) >= {"spurious", "starforming"}
    with fits.open(out / jades_writer.mosaic_name("F444W")) as hdul:
        assert hdul["SCI"].data.shape == sim.sci.shape[1:]
        assert (hdul["ERR"].data[np.isfinite(hdul["SCI"].data)] > 0).all()


def test_mock_survey_attaches_a_cached_field(tmp_path, monkeypatch):
    monkeypatch.setenv("HIZKIT_CACHE_DIR", str(tmp_path))
    params = dict(MockSurvey.test_params, field_sources=60, cutout_size=16)
    a = MockSurvey(**params).load()
    assert a.field is not None and len(a.field) > 0
    assert {"label", "z", "kind", "weight", "blended", "nn_dist", "snr_det"} <= set(
        a.field.catalog.columns
    )
    b = MockSurvey(**params).load()  # from the cache
    assert len(b.field) == len(a.field)
    assert b.field.catalog["label"].isna().sum() == a.field.catalog["label"].isna().sum()
    np.testing.assert_array_equal(a.field.cutouts, b.field.cutouts)
    # a damaged entry is rebuilt
    (path,) = tmp_path.glob("mock-*.npz")
    path.write_bytes(path.read_bytes()[:1000])
    c = MockSurvey(**params).load()
    assert len(c.field) == len(a.field)
    assert MockSurvey(**dict(params, field_sources=0)).load().field is None
