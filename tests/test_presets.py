"""Shipped configuration presets and the template-fitting ceiling row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hizkit import NIRCAM_BANDS, Dataset
from hizkit import config as cfg
from hizkit.bench import with_references
from hizkit.errors import HizkitError
from hizkit.registry import get_registry


def test_the_poster_preset_reads_by_name_and_states_the_protocol():
    doc = cfg.read_toml("poster")
    settings = cfg.Settings.load(doc, {}, "bench")  # every value passes the plugins' checks
    data, config = settings.data, settings.config
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
    assert [s.label for s in config.classifiers] == ["cnn", "photoz"] and config.references


def test_a_file_of_the_same_name_wins_and_missing_names_list_presets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "poster").write_text("[bench]\nruns = 2\n")
    assert cfg.read_toml("poster")["bench"]["runs"] == 2
    with pytest.raises(HizkitError, match=r"shipped presets: .*poster"):
        cfg.read_toml("postr")


def _labels(doc, classifiers, command="bench", columns=("z_phot",)):
    settings = cfg.Settings.load(doc, {"classifiers": classifiers}, command)
    catalog = pd.DataFrame({"id": [1], "ra": [0.0], "dec": [0.0], **{c: [1.0] for c in columns}})
    data = Dataset(catalog, NIRCAM_BANDS)
    return [s.label for s in with_references(data, settings.config, get_registry()).classifiers]


def test_the_ceiling_joins_every_benchmark_unless_turned_off():
    assert _labels({}, "cnn,rf") == ["cnn", "rf", "photoz"]
    assert _labels({"bench": {"ceiling": False}}, "cnn") == ["cnn"]
    assert _labels({}, "cnn,photoz") == ["cnn", "photoz"]  # not twice
    assert _labels({}, "xgb", command="train") == ["xgb"]  # training, ablation: no ceiling
    assert _labels({}, "xgb", command="ablate") == ["xgb"]
    with pytest.raises(HizkitError, match=r"\[bench\] ceiling must be true or false"):
        cfg.Settings.load({"bench": {"ceiling": "yes"}}, {}, "bench")


def test_the_ceiling_leaves_when_the_catalog_has_no_photo_z():
    assert _labels({}, "xgb", columns=("z_phot",)) == ["xgb", "photoz"]
    assert _labels({}, "xgb", columns=("flux_F444W",)) == ["xgb"]


def test_a_reference_row_is_a_plugin_declaration_not_a_name_in_the_core():
    photoz = get_registry().get("classifier", "photoz")
    assert photoz.reference and photoz.catalog_columns == {"z_phot"}
    core = Path(cfg.__file__).parent
    for module in ("config.py", "bench.py", "cli.py", "training.py", "model.py"):
        assert '"photoz"' not in (core / module).read_text(), module


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
