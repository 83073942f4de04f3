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
