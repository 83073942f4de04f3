"""hizkit train / predict: saved pipelines, the candidate table, chunks and --resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

import hizkit
from hizkit import predict as predict_mod
from hizkit.bench import BenchConfig, ClassifierSpec
from hizkit.cli import main
from hizkit.model import load_model, save_models
from hizkit.training import train_models

FAST = {"xgb": {"n_estimators": 20}, "logistic": {}, "colour": {}}


@pytest.fixture(scope="module")
def field(jades_field):
    return jades_field


@pytest.fixture(scope="module")
def models(tmp_path_factory, small_mock):
    config = BenchConfig([ClassifierSpec(n, n, p) for n, p in FAST.items()])
    trained = train_models(small_mock, config)
    return save_models(trained, tmp_path_factory.mktemp("m") / "models"), trained


def test_saved_model_predicts_as_the_trained_one(models, small_mock):
    path, trained = models
    for label, model in trained.items():
        again = load_model(path / label)
        np.testing.assert_allclose(
            again.predict_proba(small_mock), model.predict_proba(small_mock), atol=1e-6
        )
        assert again.bands == small_mock.bands
        assert [s.name for s in again.steps] == [s.name for s in model.steps]


def test_manifest_records_what_a_model_needs(models, small_mock):
    path, _ = models
    manifest = json.loads((path / "xgb" / "manifest.json").read_text())
    assert manifest["bands"] == list(small_mock.bands)
    assert manifest["cutout_size"] == list(small_mock.cutouts.shape[2:])
    assert manifest["pixel_scale"] == pytest.approx(small_mock.pixel_scale)
    assert [p["name"] for p in manifest["preprocessors"]] == ["segment", "normalise", "hog"]
    assert manifest["classifier"]["params"]["n_estimators"] == 20
    assert manifest["metrics"]["part"] == "validation" and 0 <= manifest["metrics"]["accuracy"] <= 1
    assert len(manifest["training_data"]["sha256"]) == 64
    assert manifest["domain"]["min"] < manifest["domain"]["max"]
    assert manifest["versions"]["plugins"]["classifier:xgb"]["distribution"] == "hizkit"
    assert "numpy" in manifest["versions"]["libraries"]


def test_changed_model_file_is_refused(models, tmp_path):
    path, _ = models
    copy = tmp_path / "xgb"
    shutil.copytree(path / "xgb", copy)
    (copy / "classifier" / "model.json").write_text("{}")
    with pytest.raises(hizkit.HizkitError, match="changed after the model was written"):
        load_model(copy)
    with pytest.raises(hizkit.HizkitError, match="holds the models colour, logistic, xgb"):
        load_model(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(hizkit.HizkitError, match="not a model"):
        load_model(tmp_path / "empty")


def test_python_api_train_and_predict_table(small_mock, tmp_path):
    trained = hizkit.train(small_mock, ["logistic"], out=tmp_path / "m")
    table = hizkit.load_model(tmp_path / "m" / "logistic").predict(small_mock)
    assert list(table.columns[:7]) == [
        "id", "ra", "dec", "p_lowz", "p_highz", "p_brown_dwarf", "predicted",
    ]  # fmt: skip
    np.testing.assert_array_equal(table["id"], small_mock.catalog["id"])
    np.testing.assert_allclose(
        table[["p_lowz", "p_highz", "p_brown_dwarf"]].sum(axis=1), 1.0, atol=1e-9
    )
    assert set(trained) == {"logistic"}


def test_missing_band_is_named(models, small_mock):
    path, _ = models
    model = load_model(path / "logistic")
    part = small_mock.select_bands([b for b in small_mock.bands if b != "F200W"])
    with pytest.raises(hizkit.HizkitError, match=r"needs band.*F200W"):
        model.predict_proba(part)


def test_flags(models, small_mock):
    path, _ = models
    model = load_model(path / "xgb")
    part = small_mock.subset(np.arange(4))
    cut = part.cutouts.copy()
    cut[0, :, :, :5] = np.nan  # off the mosaic's edge on one side
    cut[1, 2] = np.nan  # no F150W at all
    cat = part.catalog.copy()
    cat.loc[2, [hizkit.flux_col(b) for b in ("F277W", "F356W", "F444W")]] = 1e6  # very bright
    table = model.predict(part.replace(cutouts=cut, catalog=cat))
    assert table["flag_edge"].tolist()[:2] == [True, False]
    assert table["flag_missing_band"].tolist()[:2] == [False, True]
    assert table["missing_bands"][1] == "F150W"
    assert table["flag_outside_domain"][2]


def _predict(model_dir, field, out, *extra):
    return main(["predict", "--model", str(model_dir), "--data", f"jades:{field}",
                 "--out", str(out), *extra])  # fmt: skip


def test_predict_writes_table_regions_and_page(models, field, tmp_path):
    path, _ = models
    out = tmp_path / "cand"
    assert _predict(path / "xgb", field, out, "--chunk-size", "16", "--top", "3") == 0
    table = pd.read_csv(out / "candidates.csv")
    fits = Table.read(out / "candidates.fits")
    assert len(table) == len(fits) and table["id"].is_unique
    assert str(fits["ra"].unit) == "deg"
    assert "z_phot" in table.columns  # the catalog's photo-z is carried over
    assert "label" not in table.columns  # labels='none': the field is classified blind
    regions = (out / "candidates.reg").read_text().splitlines()
    # the regions and the page show the lists (selected_*), not the raw most probable class
    lists = ("selected_highz", "selected_brown_dwarf")
    n_candidates = int(sum(table[c].astype(bool).sum() for c in lists))
    assert regions[3] == "fk5" and len(regions) == 4 + n_candidates
    page = (out / "candidates.html").read_text()
    assert page.count("<img ") == sum(min(3, int(table[c].astype(bool).sum())) for c in lists)
    assert not (out / "chunks").exists()


def test_predict_chunks_do_not_change_the_answer(models, field, tmp_path):
    path, _ = models
    assert _predict(path / "xgb", field, tmp_path / "a", "--chunk-size", "7") == 0
    assert _predict(path / "xgb", field, tmp_path / "b", "--chunk-size", "1000") == 0
    a = pd.read_csv(tmp_path / "a" / "candidates.csv")
    b = pd.read_csv(tmp_path / "b" / "candidates.csv")
    pd.testing.assert_frame_equal(a, b)


def test_interrupted_predict_resumes_to_the_same_table(models, field, tmp_path, monkeypatch):
    path, _ = models
    assert _predict(path / "xgb", field, tmp_path / "whole", "--chunk-size", "10") == 0
    real = predict_mod.predict_chunk
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_mod, "predict_chunk", flaky)
    out = tmp_path / "cut"
    assert _predict(path / "xgb", field, out, "--chunk-size", "10") == 130
    assert len(list((out / "chunks").glob("chunk-*.csv"))) == 2
    assert not (out / "candidates.csv").exists()
    monkeypatch.setattr(predict_mod, "predict_chunk", real)
    assert _predict(path / "xgb", field, out, "--chunk-size", "10") == 2  # exists: refused
    assert _predict(path / "xgb", field, out, "--chunk-size", "20", "--resume") == 2  # other run
    assert _predict(path / "xgb", field, out, "--chunk-size", "10", "--resume") == 0
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "candidates.csv"), pd.read_csv(tmp_path / "whole" / "candidates.csv")
    )


def test_field_without_a_band_is_one_line_error(models, field, tmp_path, capsys):
    path, _ = models
    partial = tmp_path / "partial"
    shutil.copytree(field, partial)
    for f in partial.glob("*f090w*"):
        f.unlink()
    assert _predict(path / "xgb", partial, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "F090W" in err and err.count("\n") == 1


def test_train_cli_then_bench_save_models(tmp_path, capsys):
    from hizkit.plugins.mock import extra_brown_dwarfs

    cfg = tmp_path / "small.toml"
    cfg.write_text(
        "[data]\nn_lowz = 40\nn_highz = 40\nn_brown_dwarfs = 6\nn_unlabelled = 0\n"
        "cutout_size = 32\nseed = 5\n[train]\nvalid_fraction = 0.25\n"
    )
    assert main(["train", "--classifiers", "logistic,colour", "--config", str(cfg),
                 "--out", str(tmp_path / "m")]) == 0  # fmt: skip
    manifest = json.loads((tmp_path / "m" / "logistic" / "manifest.json").read_text())
    extra = extra_brown_dwarfs(40, 40)  # simulated brown dwarfs join the training part
    assert manifest["training_data"]["n_train"] == pytest.approx(0.75 * 86 + extra, abs=2)
    assert main(["bench", "--classifiers", "logistic", "--config", str(cfg), "--save-models",
                 "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    model = load_model(tmp_path / "run" / "models" / "logistic")
    assert model.manifest["metrics"]["part"].startswith("test")
    bad = tmp_path / "bad.toml"
    bad.write_text("[predict]\nchunksize = 3\n")
    assert main(["predict", "--model", str(tmp_path / "m" / "logistic"), "--data", "mock",
                 "--config", str(bad), "--out", str(tmp_path / "p")]) == 2  # fmt: skip
    assert "unknown [predict] key(s) chunksize" in capsys.readouterr().err
