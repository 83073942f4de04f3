"""Shipped configuration presets and the template-fitting ceiling row."""

from __future__ import annotations

import pandas as pd
import pytest

from hizkit import config as cfg
from hizkit.errors import HizkitError


def test_the_poster_preset_reads_by_name_and_states_the_protocol():
    doc = cfg.read_toml("poster")
    data, config = cfg.build(doc, ceiling=True)
    assert data.source == "mock" and data.params["labels"] == "photoz"
    assert data.params["n_extra_brown_dwarfs"] == 0
    assert config.runs == 10 and config.seed == 0
    cnn = next(s for s in config.classifiers if s.label == "cnn")
    assert cnn.preprocessors == ("segment", "normalise", "augment")
    assert cnn.params == {
        "epochs": 10,
        "batch_size": 64,
        "lr": 5e-4,
        "schedule": "constant",
        "weight_decay": 0.0,
        "class_weight": "none",
        "augment_batches": False,
    }
    assert doc["preprocessors"]["augment"]["copies"] == 8
    assert [s.label for s in config.classifiers] == ["cnn", "photoz"]
    from hizkit.registry import get_registry

    cfg.check_plugins(doc, config, get_registry())  # every value passes the plugins' checks


def test_a_file_of_the_same_name_wins_and_missing_names_list_presets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "poster").write_text("[bench]\nruns = 2\n")
    assert cfg.read_toml("poster")["bench"]["runs"] == 2
    with pytest.raises(HizkitError, match=r"shipped presets: .*poster"):
        cfg.read_toml("postr")


def test_the_ceiling_joins_every_benchmark_unless_turned_off():
    _, config = cfg.build({}, classifiers="cnn,rf", ceiling=True)
    assert [s.label for s in config.classifiers] == ["cnn", "rf", "photoz"]
    _, config = cfg.build({"bench": {"ceiling": False}}, classifiers="cnn", ceiling=True)
    assert [s.label for s in config.classifiers] == ["cnn"]
    _, config = cfg.build({}, classifiers="cnn,photoz", ceiling=True)
    assert [s.label for s in config.classifiers] == ["cnn", "photoz"]  # not twice
    _, config = cfg.build({}, classifiers="xgb")  # training, ablation: no ceiling
    assert [s.label for s in config.classifiers] == ["xgb"]
    with pytest.raises(HizkitError, match="ceiling must be true or false"):
        cfg.build({"bench": {"ceiling": "yes"}}, ceiling=True)


def test_the_ceiling_leaves_when_the_catalog_has_no_photo_z():
    _, config = cfg.build({}, classifiers="xgb", ceiling=True)
    kept = cfg.without_unavailable_ceiling(config, pd.Index(["id", "z_phot"]))
    assert [s.label for s in kept.classifiers] == ["xgb", "photoz"]
    dropped = cfg.without_unavailable_ceiling(config, pd.Index(["id", "flux_F444W"]))
    assert [s.label for s in dropped.classifiers] == ["xgb"]


def test_hizkit_bench_reports_the_ceiling_row(tmp_path):
    import json

    from hizkit.cli import main

    cfg_file = tmp_path / "small.toml"
    cfg_file.write_text(
        "[data]\nn_lowz = 10\nn_highz = 10\nn_brown_dwarfs = 3\nn_unlabelled = 0\n"
        "cutout_size = 32\nseed = 3\n"
    )
    out = tmp_path / "run"
    rc = main(["bench", "--classifiers", "colour", "--config", str(cfg_file), "--out", str(out)])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["classifiers"]) == {"colour", "photoz"}
