"""Band ablation, `hizkit show`, and the image-based figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hizkit
from hizkit.ablate import run_ablation, select_bands, variants, write_ablation
from hizkit.bench import BenchConfig, ClassifierSpec
from hizkit.cli import main


def test_variants_cover_each_band_and_f444w_alone():
    names = [v for v, _ in variants(hizkit.NIRCAM_BANDS)]
    assert names[0] == "all bands" and names[-1] == "F444W alone"
    assert len(names) == 9


def test_select_bands_slices_cutouts_and_photometry(tiny):
    sub = select_bands(tiny, ("F200W", "F444W"))
    assert sub.cutouts.shape[1] == 2
    np.testing.assert_array_equal(sub.cutouts[:, 1], tiny.cutouts[:, 6])
    assert sub.photometry()[0].shape == (len(tiny), 2)
    with pytest.raises(hizkit.HizkitError, match="F999W missing"):
        select_bands(tiny, ("F999W",))


def test_ablation_finds_the_informative_band(registry, tiny, tmp_path):
    """Brown dwarfs differ from low-z sources only by an F444W excess here, so losing
    F444W must hurt and losing F277W must not."""
    flux = np.ones((len(tiny), 7)) * 50
    y = tiny.y
    flux[y == 1, :2] = 0.5  # high-z: F090W and F115W drop out
    flux[y == 2, 6] *= 4  # brown dwarfs: bright in F444W, otherwise like low-z
    rng = np.random.default_rng(0)
    cat = tiny.catalog.copy()
    for b, band in enumerate(tiny.bands):
        cat[f"flux_{band}"] = flux[:, b] * rng.lognormal(0, 0.05, len(cat))
    tiny = tiny.replace(catalog=cat)
    config = BenchConfig([ClassifierSpec("logistic", "logistic")], evaluators=["classification"])
    result = run_ablation(tiny, config, registry)
    drop = dict(result.ranking("logistic"))
    assert drop["F444W"] > drop["F277W"]
    out = write_ablation(result, tmp_path / "abl")
    doc = json.loads((out / "ablation.json").read_text())
    assert len(doc["variants"]) == 9
    assert (out / "ablation.png").stat().st_size > 5000


class _PriorBase(hizkit.Classifier):
    """Predicts the training-set class frequencies; subclasses read F090W by name."""

    def fit(self, train, valid=None):
        self._read(train)
        self.prior_ = np.bincount(train.y, minlength=3) / len(train)
        return self

    def predict_proba(self, data):
        self._read(data)
        return np.tile(self.prior_, (len(data), 1))

    def _read(self, data):
        if "F090W" not in data.bands:
            raise KeyError("flux_F090W")  # what reading the band's column would raise

    def _save_state(self, directory):
        np.save(directory / "prior.npy", self.prior_)

    def _load_state(self, directory):
        self.prior_ = np.load(directory / "prior.npy")


class DeclaresF090W(_PriorBase):
    name = "declares_f090w"
    description = "reads F090W and says so"
    bands_needed = ("F090W",)


class HidesF090W(_PriorBase):
    name = "hides_f090w"
    description = "reads F090W without declaring it"


class DeclaresEveryBand(_PriorBase):
    name = "declares_every_band"
    description = "reads every band by name"
    bands_needed = hizkit.NIRCAM_BANDS


class _BandReaders:
    @hizkit.hookimpl
    def hizkit_register_classifiers(self):
        return [DeclaresF090W, HidesF090W, DeclaresEveryBand]


@pytest.fixture
def band_registry(registry):
    registry.register(_BandReaders(), name="tests.band_readers")
    return registry


def _specs(*plugins):
    return BenchConfig([ClassifierSpec(p, p) for p in plugins])


def test_ablation_skips_exactly_the_variants_leaving_out_a_declared_band(band_registry, tiny):
    result = run_ablation(tiny, _specs("declares_f090w", "logistic"), band_registry)
    assert result.skipped == {
        "declares_f090w": {"without F090W": ("F090W",), "F444W alone": ("F090W",)}
    }
    t = result.table.set_index(["classifier", "variant"])["accuracy"]
    assert np.isnan(t["declares_f090w", "without F090W"])
    assert np.isnan(t["declares_f090w", "F444W alone"])
    ran = t.drop([("declares_f090w", "without F090W"), ("declares_f090w", "F444W alone")])
    assert np.isfinite(ran).all()  # every other variant ran, logistic's all of them
    assert len(t) == 2 * 9


def test_an_undeclared_band_failure_is_an_error_not_a_blank(band_registry, tiny):
    with pytest.raises(KeyError, match="flux_F090W"):
        run_ablation(tiny, _specs("hides_f090w", "logistic"), band_registry)


def test_a_declared_band_the_data_lacks_is_refused_not_skipped(band_registry, tiny):
    data = select_bands(tiny, tuple(b for b in tiny.bands if b != "F090W"))
    with pytest.raises(hizkit.HizkitError, match=r"declares_f090w needs band.*F090W"):
        run_ablation(data, _specs("declares_f090w"), band_registry)


def test_nothing_to_ablate_when_every_variant_is_skipped(band_registry, tiny):
    with pytest.raises(hizkit.HizkitError, match="nothing to ablate"):
        run_ablation(tiny, _specs("declares_every_band"), band_registry)


def test_show_writes_a_png(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[data]\nn_lowz = 6\nn_highz = 6\nn_brown_dwarfs = 2\nn_unlabelled = 0\ncutout_size = 32\n"
    )
    out = tmp_path / "fig.png"
    assert main(["show", "--config", str(cfg), "--out", str(out)]) == 0
    assert out.stat().st_size > 10000
    assert main(["show", "--config", str(cfg), "--out", str(out)]) == 2  # never overwrite
    assert "already exists" in capsys.readouterr().err
