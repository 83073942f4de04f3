"""Fault injection (issue 16): every ordinary mistake is one line and exit status 2,
before any data is loaded or any model trained; no silent wrong result."""

from __future__ import annotations

import pytest
from conftest import TinyPlugin, one_line, tiny_dataset

import hizkit
from hizkit.cli import main


class BoomSource(hizkit.DataSource):
    """A data source that must never be loaded: the checks come first."""

    name = "boom"
    description = "Raises when loaded"

    def __init__(self, n: int = 1) -> None:
        self.n = n

    def load(self, location=None):
        raise RuntimeError("data was loaded before the input was checked")


class OneClassSource(hizkit.DataSource):
    name = "oneclass"
    description = "Only low-z sources"

    def load(self, location=None):
        data = tiny_dataset(20, size=16)
        return data.subset(list(range(20)))  # the first 20 are all low-z


class StrictClassifier(hizkit.Classifier):
    """Checks its parameter values before any work (``validate_params``)."""

    name = "strict"
    description = "Refuses a bad depth up front"

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth

    def validate_params(self) -> None:
        if self.depth < 1:
            raise hizkit.HizkitError(f"depth must be at least 1, got {self.depth}")

    def fit(self, train, valid=None):
        raise AssertionError("trained before the parameters were checked")

    def predict_proba(self, data):
        raise AssertionError("never reached")

    def _save_state(self, directory):
        pass

    def _load_state(self, directory):
        pass


class FaultPlugin:
    @hizkit.hookimpl
    def hizkit_register_data_sources(self):
        return [BoomSource, OneClassSource]

    @hizkit.hookimpl
    def hizkit_register_classifiers(self):
        return [StrictClassifier]


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run the CLI with the tiny and fault sources registered; returns (rc, stderr)."""
    from hizkit.registry import Registry

    reg = Registry(autoload=False)
    reg.register(TinyPlugin(), name="tests.tiny")
    reg.register(FaultPlugin(), name="tests.faults")
    monkeypatch.setattr("hizkit.registry._CURRENT", [reg])

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        rc = main(list(args))
        return rc, capsys.readouterr().err

    return run


def toml(tmp_path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- silent wrong results


def test_empty_classifier_list_is_an_error(cli, tmp_path):
    one_line(cli("bench", "--data", "boom", "--classifiers", "", "--out", str(tmp_path / "r")))
    one_line(cli("bench", "--data", "boom", "--classifiers", " , ", "--out", str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_bench_out_in_config_is_honoured(cli, tmp_path):
    out = tmp_path / "from-config"
    cfg = toml(tmp_path, f'[bench]\nout = "{out}"\nclassifiers = ["colour"]\n')
    rc, err = cli("bench", "--data", "tiny", "--evaluators", "classification", "--config", cfg)
    assert rc == 0, err
    assert (out / "results.json").is_file()
    one_line(cli("bench", "--data", "boom", "--config", toml(tmp_path, "[bench]\nout = 5\n")))


@pytest.mark.parametrize(
    "fractions, needle",
    [
        ("[0.8, 0.2, 0.0]", "no test part"),
        ("[0.0, 0.5, 0.5]", "no training part"),
        ("[0.5, 0.5]", "three non-negative numbers"),
        ('["a", 0.5, 0.5]', "three non-negative numbers"),
        ("0.6", "three non-negative numbers"),
    ],
)
def test_bad_fractions_are_refused(cli, tmp_path, fractions, needle):
    cfg = toml(tmp_path, f"[bench]\nfractions = {fractions}\n")
    one_line(cli("bench", "--data", "boom", "--classifiers", "colour", "--config", cfg), needle)


@pytest.mark.parametrize(
    "section, needle",
    [
        ("[preprocessors.segmnt]\nfill = 'zero'", "Did you mean 'segment'"),
        ("[evaluators.clasification]\nbins = 3", "Did you mean 'classification'"),
        ("[classifiers.colur]\nsoft = false", "Did you mean 'colour'"),
        ("[classifiers.mine]\nplugin = 'xgbb'", "Did you mean 'xgb'"),
        ("[preprocessors.segment]\nfil = 'zero'", "has no parameter 'fil'"),
    ],
)
def test_misspelt_sections_are_named(cli, tmp_path, section, needle):
    cfg = toml(tmp_path, section + "\n")
    one_line(cli("bench", "--data", "boom", "--classifiers", "colour", "--config", cfg), needle)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[bench]\nruns = 2.7", "runs must be a whole number, got 2.7"),
        ('[bench]\nruns = "2"', "runs must be a whole number"),
        ("[bench]\nseed = -1", "[bench] seed must be at least 0"),
        ("[bench]\nseed = true", "seed must be a whole number"),
        ("data = 5", "[data] must be a table"),
        ("[data]\nsource = 5", "[data] source must be a non-empty string"),
        ("[classifiers]\ncolour = 5", "[classifiers.colour] must be a table"),
        ("[classifiers.colour]\nplugin = 5", "[classifiers.colour] plugin must be"),
        ('[classifiers.colour]\nsoft = "yes"', "parameter soft must be true or false"),
        ('[classifiers.colour]\nbreak_colour = "big"', "break_colour must be a number"),
        ('[classifiers.colour]\npreprocessors = ["segmnt"]', "Did you mean 'segment'"),
        ('[data]\nsource = "boom"\nn = "many"', "parameter n must be a whole number"),
    ],
)
def test_wrongly_typed_config_values(cli, tmp_path, text, needle):
    cfg = toml(tmp_path, text + "\n")
    args = ("--data", "boom") if "source" not in text else ()
    one_line(cli("bench", *args, "--classifiers", "colour", "--config", cfg), needle)


def test_plugin_validates_its_values_before_any_work(cli, tmp_path):
    cfg = toml(tmp_path, "[classifiers.strict]\ndepth = 0\n")
    rc, err = cli("bench", "--data", "boom", "--classifiers", "colour,strict", "--config", cfg)
    one_line((rc, err), "[classifiers.strict]: depth must be at least 1, got 0")


def test_negative_seed_flag(cli, tmp_path):
    one_line(cli("bench", "--data", "boom", "--classifiers", "colour", "--seed", "-3"), "seed")


def test_unreadable_config_paths(cli, tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("[data]\n# caf\xe9\n".encode("latin-1"))
    one_line(cli("bench", "--data", "boom", "--config", str(bad)), "not UTF-8")
    one_line(cli("bench", "--data", "boom", "--config", str(tmp_path)), "is a directory")


def test_single_class_data_is_refused(cli, tmp_path):
    rc, err = cli("bench", "--data", "oneclass", "--classifiers", "colour")
    one_line((rc, err), "1 class(es)", "lowz: 20")


def test_bad_train_and_predict_settings(cli, tmp_path):
    one_line(cli("train", "--data", "boom", "--classifiers", "colour", "--valid-fraction", "1"))
    one_line(
        cli(
            "predict",
            *("--model", str(tmp_path), "--data", "boom", "--out", str(tmp_path / "o")),
            *("--chunk-size", "0"),
        ),
        "--chunk-size must be at least 1",
    )


# ------------------------------------------------------------------ show and ablate


def test_show_checks_ids_and_suffix_before_loading(cli, tmp_path):
    png = str(tmp_path / "f.png")
    one_line(cli("show", "--data", "boom", "--ids", "abc", "--out", png), "--ids")
    one_line(cli("show", "--data", "boom", "--out", str(tmp_path / "x.txt")), "'.txt'")
    one_line(cli("show", "--data", "boom", "--steps", "segmnt", "--out", png), "segment")


def test_ablate_with_band_bound_classifier(cli, tmp_path):
    """The colour cuts name F090W, F115W, ...: alone it cannot be ablated (one line);
    beside a classifier that can, its cells are blank and the others are kept."""
    rc, err = cli("ablate", "--data", "tiny", "--classifiers", "colour")
    one_line((rc, err), "nothing to ablate", "colour")
    out = tmp_path / "abl"
    rc, err = cli("ablate", "--data", "tiny", "--classifiers", "colour,prior", "--out", str(out))
    assert rc == 0, err
    assert "warning: colour cannot run" in err and "Traceback" not in err
    assert (out / "ablation.csv").is_file()


@pytest.mark.parametrize(
    "cuts, needle",
    [
        ("quality_cuts = 5", "quality_cuts must be a table"),
        ("quality_cuts = {min_snr = nan}", "not NaN"),
        ('quality_cuts = {drop_stars = "yes"}', "drop_stars must be true or false"),
        ("quality_cuts = {detection_bands = 5}", "detection_bands must be a list"),
    ],
)
def test_bad_quality_cuts(cuts, needle):
    import tomllib

    from hizkit.cuts import QualityCuts

    with pytest.raises(hizkit.HizkitError, match=needle):
        QualityCuts.from_dict(tomllib.loads(cuts)["quality_cuts"])
