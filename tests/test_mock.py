"""The simulated survey: its physics, its measurements, its determinism."""

from __future__ import annotations

import numpy as np
import pytest

import hizkit
from hizkit.plugins.mock import MockSurvey, images, photoz, seds, sps
from hizkit.plugins.mock.population import draw_brown_dwarfs


def _mags(flux):
    return -2.5 * np.log10(np.maximum(flux, 1e-30))


def _galaxy(z, family="delayed", age=0.05, tau=10.0, met=0.2, av=0.1, curve=1, **kw):
    """One SPS galaxy at redshift z (nearest library template)."""
    lib = sps.library()
    zz = np.array([float(z)])
    one = np.ones(1)
    if family == "quenched":
        t = sps.choose(lib, family, zz, age * one, tau=tau * one, metallicity=met * one, **kw)
    else:
        t = sps.choose(
            lib, family, zz, age * one, tau=tau * one, metallicity=met * one, logu=-2.0 * one
        )
    return seds.SEDParams(zz, t, av * one, np.array([curve]), one / 0.44)


def _phot(p):
    return _mags(seds.sed_photometry(p))[0]


def test_lyman_break_drops_out_of_f090w_at_z7_not_at_z2():
    m7 = _phot(_galaxy(7.0))
    m2 = _phot(_galaxy(2.0, age=1.0, tau=1.0, met=1.0, av=0.3, curve=0))
    assert m7[0] - m7[3] > 2.0  # F090W vs F200W
    assert m2[0] - m2[3] < 1.0


def test_break_moves_redward_with_redshift():
    m = np.array([_phot(_galaxy(z, age=0.02)) for z in (7.5, 10.0, 13.0)])
    assert m[0, 0] - m[0, 1] > 2  # z=7.5: gone from F090W
    assert m[1, 1] - m[1, 2] > 2  # z=10: gone from F115W
    assert m[2, 2] - m[2, 3] > 2  # z=13: gone from F150W


def test_t_and_y_dwarfs_meet_the_jades_colour_criteria_and_l_dwarfs_do_not():
    rng = np.random.default_rng(0)
    bd = draw_brown_dwarfs(rng, 2000)
    m = _mags(bd.flux)
    cold = bd.teff < 1000
    assert np.all(m[cold, 4] - m[cold, 6] > 1.0)  # F277W - F444W
    blue = (m[:, 1] - m[:, 4] < 0) | (m[:, 1] - m[:, 2] < 0)
    assert blue[cold].mean() > 0.95
    ell = bd.teff > 1500
    assert np.all(m[ell, 4] - m[ell, 6] < 1.0)
    assert set(bd.kind) == {"L_dwarf", "T_dwarf", "Y_dwarf"}
    assert bd.teff.min() < 400 and bd.teff.max() > 2200
    assert np.all(bd.re == 0)  # point sources


def test_dusty_interloper_mimics_a_break():
    """A dusty z~3 galaxy is red between F150W and F277W, like a z~13 dropout."""
    m = _phot(_galaxy(3.0, age=0.8, tau=1.0, met=1.0, av=3.0, curve=0))
    assert m[2] - m[4] > 1.0


def test_igm_is_opaque_blueward_of_lyman_alpha_after_reionisation():
    t = seds.madau_igm(np.array([1100.0 * 8, 1300.0 * 8]), 7.0)
    assert t[0] < 1e-3 and t[1] > 0.9


def test_photometry_on_images_matches_catalog_within_noise(small_mock):
    """Aperture photometry redone on the cutouts agrees with the catalog (the same
    measurement)."""
    cat = small_mock.catalog
    redo = images.measure(small_mock.cutouts, np.ones((len(cat), 7)))["flux"]
    flux, _err = small_mock.photometry()
    ok = np.isfinite(flux) & np.isfinite(redo)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(redo[ok], flux[ok], rtol=1e-4, atol=1e-3)


def test_catalog_photometry_recovers_the_true_flux_of_point_sources():
    """Isolated point sources (brown dwarfs, drawn with their true fluxes): the catalog's
    aperture photometry (PSF-matched, aperture-corrected) recovers the true flux in every
    band, to 3% on noiseless cutouts (sub-pixel centring only) and to 5% at high S/N."""
    src = draw_brown_dwarfs(np.random.default_rng(1), 200)
    true = src.flux.copy()
    pool = draw_brown_dwarfs(np.random.default_rng(2), 1)
    kw = dict(neighbour_rate=0.0, coverage_loss=0.0, depth_scatter=0.0)
    clean, sigma, _ = images.render_cutouts(
        np.random.default_rng(5), src, pool, 48, noise=False, **kw
    )
    noisy, _, _ = images.render_cutouts(np.random.default_rng(5), src, pool, 48, **kw)
    np.testing.assert_allclose(images.measure(clean, sigma)["flux"], true, rtol=0.03)
    measured = images.measure(noisy, sigma)
    bright = true / measured["err"] > 100  # 1% noise: the 5% holds beyond 3 sigma
    assert bright.sum() > 50
    np.testing.assert_allclose(measured["flux"][bright], true[bright], rtol=0.05)


def test_catalog_errors_describe_the_image_noise():
    """The same sources drawn with and without noise: measured fluxes differ by the
    catalog errors (pulls of mean 0 and width 1), and the noise-free measurement agrees
    with the lookup table the unlabelled catalog uses."""
    from hizkit.plugins.mock.population import draw_highz

    src = draw_highz(np.random.default_rng(1), 300)
    src.flux[:] = 30.0
    pool = draw_highz(np.random.default_rng(2), 1)
    kw = dict(neighbour_rate=0.0, coverage_loss=0.0, depth_scatter=0.0)
    noisy, sigma, _ = images.render_cutouts(np.random.default_rng(5), src, pool, 48, **kw)
    clean, _, _ = images.render_cutouts(np.random.default_rng(5), src, pool, 48, noise=False, **kw)
    m_noisy, m_clean = images.measure(noisy, sigma), images.measure(clean, sigma)
    pull = (m_noisy["flux"] - m_clean["flux"]) / m_noisy["err"]
    assert abs(pull.mean()) < 0.1
    assert 0.9 < pull.std() < 1.1
    frac, _ = images.interpolate_profile(48, src.re, src.sersic)
    rel = m_clean["flux"] / (30.0 * frac) - 1
    assert abs(np.median(rel)) < 0.04  # sub-pixel centring and interpolation only


def test_same_seed_same_survey_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HIZKIT_CACHE_DIR", str(tmp_path))
    params = dict(n_lowz=5, n_highz=5, n_brown_dwarfs=2, n_unlabelled=50, cutout_size=32)
    a = MockSurvey(cache=False, **params).load()
    b = MockSurvey(cache=False, **params).load()
    np.testing.assert_array_equal(a.cutouts, b.cutouts)
    assert a.catalog.equals(b.catalog)
    c = MockSurvey(seed=1, cache=False, **params).load()
    assert not np.array_equal(a.cutouts, c.cutouts)
    d = MockSurvey(**params).load()  # writes the cache
    assert list(tmp_path.glob("mock-*.npz"))
    e = MockSurvey(**params).load()  # reads it back
    np.testing.assert_array_equal(d.cutouts, e.cutouts)
    assert d.catalog.equals(e.catalog)
    assert d.unlabelled.equals(e.unlabelled)


def test_shape_of_the_labelled_set(small_mock):
    cat = small_mock.catalog
    assert cat["label"].value_counts().to_dict() == {"lowz": 40, "highz": 40, "brown_dwarf": 6}
    assert small_mock.cutouts.shape == (86, 7, 48, 48)
    assert (cat["snr_det"] >= 5).all()
    assert "label" not in small_mock.unlabelled.columns
    assert len(small_mock.unlabelled) == 1500


def test_bimodal_flag_is_computed_from_photometry():
    models, z = photoz.template_grid()
    lo = models[np.argmin(np.abs(z - 2.5))]
    hi = models[z >= 4][0]
    flux = np.array([lo * 100, hi * 100, lo * 100 + hi * 100])
    result = photoz.fit(flux, np.full_like(flux, 1.0))
    assert result["z_phot"][0] < 4 <= result["z_phot"][1]
    assert not result["bimodal"][0] and not result["bimodal"][1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_lowz": -1}, "non-negative"),
        ({"cutout_size": 8}, "16..256"),
        ({"coverage_loss": 2.0}, "coverage_loss"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(hizkit.HizkitError, match=message):
        MockSurvey(**kwargs).load()


def test_labelled_galaxies_pass_the_poster_cuts_and_the_counts_are_kept():
    ds = MockSurvey(
        n_lowz=10, n_highz=10, n_brown_dwarfs=2, n_unlabelled=0, cutout_size=32, seed=3
    ).load()
    cat = ds.catalog
    gal = (cat["label"] != "brown_dwarf").to_numpy()
    width = (cat["z_u68"] - cat["z_l68"]) / (1 + cat["z_phot"])
    assert (width[gal] <= 0.5).all()
    assert (cat["snr_det"][gal] >= 10).all() and (cat["chi2_phot"][gal] <= 25).all()
    counts = [n for _, n in ds.meta["cuts"]]
    assert counts == sorted(counts, reverse=True) and counts[-1] >= gal.sum()


def test_photoz_labels_keep_the_true_class_beside_them():
    ds = MockSurvey(
        n_lowz=10,
        n_highz=10,
        n_brown_dwarfs=2,
        n_unlabelled=0,
        cutout_size=32,
        seed=3,
        labels="photoz",
        quality_cuts={},
    ).load()
    cat = ds.catalog
    gal = cat["label_true"] != "brown_dwarf"
    assert ((cat["label"][gal] == "highz") == (cat["z_phot"][gal] >= 4)).all()
    assert (cat["label"][~gal] == "brown_dwarf").all()


@pytest.mark.parametrize(
    "params, message",
    [({"quality_cuts": {"min_sn": 5}}, "unknown quality cut"), ({"labels": "eazy"}, "labels")],
)
def test_bad_selection_parameters(params, message):
    with pytest.raises(hizkit.HizkitError, match=message):
        MockSurvey(**params).load()
