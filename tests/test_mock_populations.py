"""The simulated survey's subpopulations: where the literature puts them."""

from __future__ import annotations

import numpy as np
import pytest

from hizkit.plugins.mock import MockSurvey, population, seds, selection, sps
from hizkit.plugins.mock.survey import quotas


def _mags(flux):
    return -2.5 * np.log10(np.maximum(flux, 1e-30)) + 31.4


@pytest.fixture(scope="module")
def highz():
    return population.draw_highz(np.random.default_rng(11), 3000)


@pytest.fixture(scope="module")
def lowz():
    return population.draw_lowz(np.random.default_rng(12), 3000)


def test_every_galaxy_is_younger_than_the_universe(highz, lowz):
    for src in (highz, lowz):
        ok = np.isfinite(src.age)
        assert ok.mean() > 0.85  # all but the little red dots
        assert np.all(src.age[ok] <= sps.age_of_universe(src.z[ok]))
    lib = sps.library()
    assert lib.age.max() > 10  # the library itself holds old populations


def test_highz_kinds_are_drawn_at_their_documented_shares(highz):
    for kind, share in population.HIGHZ_MIX.items():
        got = np.mean(highz.kind == kind)
        assert abs(got - share) < 4 * np.sqrt(share * (1 - share) / len(highz)) + 0.005, kind
    assert set(highz.kind) == set(population.HIGHZ_KINDS)
    lrd = highz.kind == "little_red_dot"
    assert np.all((highz.z[lrd] >= 4) & (highz.z[lrd] <= 9))
    assert np.all(highz.re[lrd] <= 0.02)  # < 130 pc at z > 4


def test_lowz_interlopers_are_drawn_at_their_documented_shares(lowz):
    high = lowz.z > 1.5
    assert abs(np.mean(lowz.kind[high] == "dusty") - 0.25) < 0.04
    assert abs(np.mean(lowz.kind[lowz.z > 0.5] == "quiescent") - 0.12) < 0.03


def test_little_red_dots_pass_the_kokorev_colour_cuts(highz):
    lrd = highz.kind == "little_red_dot"
    m = _mags(highz.flux[lrd])
    assert selection.little_red_dot(m).mean() > 0.7
    blue = highz.kind == "highz_starforming"
    assert selection.little_red_dot(_mags(highz.flux[blue])).mean() < 0.1
    # V shape: blue in the rest-UV, red in the rest-optical
    assert np.median(selection.colour(m, "F115W", "F150W")) < 0.5
    assert np.median(selection.colour(m, "F277W", "F444W")) > 0.7


def test_dusty_highz_galaxies_are_red_everywhere(highz):
    m = _mags(highz.flux[highz.kind == "highz_dusty"])
    assert np.median(selection.colour(m, "F150W", "F277W")) > 1.2
    assert np.median(selection.colour(m, "F277W", "F444W")) > 0.6


def test_quiescent_galaxy_at_z45_has_its_balmer_break_between_f200w_and_f277w():
    lib = sps.library()
    z = np.array([4.7])
    t = sps.choose(lib, "quenched", z, np.array([0.8]), tau=np.array([0.1]), extra=np.array([0.3]))
    m = _mags(seds.sed_photometry(seds.SEDParams(z, t, np.array([0.2]), np.zeros(1, int), z)))[0]
    jumps = -np.diff(m)  # brightening from one band to the next
    assert np.argmax(jumps) == 3  # F200W -> F277W
    assert jumps[3] > 0.8
    assert lib.age[t][0] <= sps.max_age(z)[0]


def test_blue_highz_uv_slopes_follow_beta_of_z_and_muv():
    rng = np.random.default_rng(3)
    n = 2000
    z = np.full(n, 6.0)
    kind = np.full(n, "highz_starforming")
    mag = np.full(n, 27.3)  # M_UV ~ -19.5 at z = 6
    sed = population.highz_seds(rng, z, kind, mag)
    lib = sps.library()
    beta = lib.beta[sed.main.template] + population.beta_per_av(sed.main.curve) * sed.main.av
    target = population.mean_beta(6.0, population.absolute_uv(np.array([27.3]), np.array([6.0])))
    assert abs(np.median(beta) - target[0]) < 0.15
    assert 0.2 < np.std(beta) < 0.5


def test_t_and_y_dwarfs_pass_the_hainline_box_and_faint_ones_are_metal_poor():
    bd = population.draw_brown_dwarfs(np.random.default_rng(5), 3000)
    m = _mags(bd.flux)
    cold = bd.kind != "L_dwarf"
    assert selection.hainline_brown_dwarf(m[cold]).mean() > 0.85
    assert selection.hainline_brown_dwarf(m[bd.kind == "L_dwarf"]).mean() < 0.05
    faint = m[:, 6] > 27
    assert np.mean(bd.feh[faint] < -0.3) > 0.6  # thick disk and halo at kpc distances
    # metal-poor T dwarfs: weaker CO makes F444W brighter -> redder F277W - F444W
    poor = seds.brown_dwarf_photometry(np.full(1, 800.0), feh=np.array([-1.0]))
    solar = seds.brown_dwarf_photometry(np.full(1, 800.0), feh=np.zeros(1))
    assert _mags(poor)[0, 4] > _mags(solar)[0, 4]  # both normalised to F444W


def test_labelled_high_z_class_holds_its_kinds_in_quota():
    n = 25
    ds = MockSurvey(
        n_lowz=10, n_highz=n, n_brown_dwarfs=3, n_unlabelled=200, cutout_size=32, seed=4
    ).load()
    cat = ds.catalog
    hz = cat[cat["label"] == "highz"]
    want = quotas({"lowz": 10, "highz": n, "brown_dwarf": 3}, "truth")
    for (cls, kind), count in want.items():
        if cls == "highz":
            assert (hz["kind"] == kind).sum() == count, kind
    assert (cat["age"].dropna() <= sps.age_of_universe(cat["z"][cat["age"].notna()])).all()
    assert set(ds.unlabelled["kind"]) <= set(population.KINDS)


def test_noise_is_drizzle_correlated_and_err_maps_understate_aperture_errors():
    """Per-pixel rms equals the ERR-map sigma, neighbouring pixels are correlated (more in
    the long-wavelength bands, drizzled from 0.063" pixels), and the aperture error the
    catalog quotes exceeds what white noise at the ERR level would give."""
    from hizkit.plugins.mock import images

    rng = np.random.default_rng(0)
    white = rng.standard_normal((200, 7, 38, 38)).astype(np.float32)
    noise = images.correlate_noise(white)
    np.testing.assert_allclose(noise.std(axis=(0, 2, 3)), 1.0, atol=0.02)
    rho = (noise[..., 1:] * noise[..., :-1]).mean(axis=(0, 2, 3))
    assert np.all(rho[:4] > 0.1) and np.all(rho[4:] > 0.45) and np.all(rho < 0.9)
    mask, _, factor = images.aperture_terms(32)
    naive = np.sqrt((mask**2).sum())
    assert np.all(factor[4:] / naive > 1.6) and np.all(factor[:4] / naive > 1.05)


def test_depth_varies_across_the_field_in_every_band_together():
    from hizkit.plugins.mock import images

    sigma = images.local_sigma(np.random.default_rng(1), 4000, 0.15)
    dm = 2.5 * np.log10(sigma / images.pixel_sigma())
    np.testing.assert_allclose(dm.std(axis=0), 0.15, rtol=0.1)
    r = np.corrcoef(dm[:, 0], dm[:, 6])[0, 1]
    assert abs(r - images.DEPTH_SHARED) < 0.08
