"""The front door (issue 22): one Settings for every command, options declared once, and
commands that need only the plugins they use."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from conftest import TinyPlugin

from hizkit import config as cfg
from hizkit.cli import build_parser, main
from hizkit.errors import HizkitError
from hizkit.registry import Registry, use_registry

sys.path.insert(0, str(Path(__file__).parent / "thirdparty_plugin"))
import hizkit_centroid


@pytest.fixture
def bare(capsys):
    """A registry with no builtin but normalise: the tiny data source and the third-party
    centroid classifier and its evaluator. No prior, photoz, cnn, rf or builtin evaluator."""
    reg = Registry(builtins=("hizkit.plugins.normalise",), autoload=False)
    reg.register(TinyPlugin(), name="tests.tiny")
    reg.register(hizkit_centroid, name="tests.centroid")
    with use_registry(reg):

        def run(*args: str) -> tuple[int, str]:
            capsys.readouterr()
            rc = main(list(args))
            return rc, capsys.readouterr().err

        yield reg, run


def test_commands_run_in_a_registry_without_the_builtins_they_do_not_use(bare, tmp_path):
    reg, run = bare
    assert reg.names("classifier") == ["centroid"] and reg.names("evaluator") == ["shares"]
    common = ("--data", "tiny", "--classifiers", "centroid")
    rc, err = run("train", *common, "--out", str(tmp_path / "m"))
    assert rc == 0, err
    assert (tmp_path / "m" / "centroid" / "manifest.json").is_file()
    rc, err = run("ablate", *common, "--out", str(tmp_path / "a"))
    assert rc == 0, err
    assert (tmp_path / "a" / "ablation.csv").is_file()
    png = tmp_path / "f.png"
    rc, err = run("show", "--data", "tiny", "--steps", "normalise", "--out", str(png))
    assert rc == 0, err
    assert png.is_file()
    rc, err = run("bench", *common, "--out", str(tmp_path / "b"))
    assert rc == 0, err
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert list(results["classifiers"]) == ["centroid"]  # no reference row without z_phot


def test_every_option_is_a_flag_a_file_key_and_a_setting():
    parser = build_parser()
    commands = {a.dest: a for a in parser._actions if isinstance(a, argparse._SubParsersAction)}[
        "command"
    ].choices
    for option in cfg.OPTIONS:
        assert option.key in cfg.table_keys()[option.table]
        for command in option.commands:
            flags = {o for a in commands[command]._actions for o in a.option_strings}
            assert (option.flag_name in flags) == option.flag, (command, option.key)
            settings = cfg.Settings.load({}, {}, command)
            assert getattr(settings, option.table)[option.key] == option.check(
                option.default_for(command), "default"
            )


def test_a_flag_overrides_the_file_and_errors_name_where_the_value_came_from():
    doc = {"bench": {"runs": 3}, "predict": {"top": 4}}
    assert cfg.Settings.load(doc, {}, "bench").bench.runs == 3
    assert cfg.Settings.load(doc, {"runs": 2}, "bench").bench.runs == 2
    assert cfg.Settings.load(doc, {}, "predict").predict.top == 4
    with pytest.raises(HizkitError, match=r"^--runs must be at least 1, got 0$"):
        cfg.Settings.load(doc, {"runs": 0}, "bench")
    with pytest.raises(HizkitError, match=r"^\[bench\] runs must be a whole number, got 2.5$"):
        cfg.Settings.load({"bench": {"runs": 2.5}}, {}, "bench")
    with pytest.raises(HizkitError, match=r"\[predict\] scheduler: .*local:N"):
        cfg.Settings.load({"predict": {"scheduler": "nowhere"}}, {}, "predict")
    with pytest.raises(HizkitError, match=r"\[train\] valid_fraction must lie between 0 and 1"):
        cfg.Settings.load({"train": {"valid_fraction": 1.0}}, {}, "train")
    with pytest.raises(AttributeError, match="predict"):
        _ = cfg.Settings.load({}, {}, "bench").predict  # a table the command does not read


def test_hizkit_train_from_python_goes_through_the_same_settings(bare):
    import hizkit

    with pytest.raises(HizkitError, match=r"^--valid-fraction must lie between 0 and 1"):
        hizkit.train("tiny", "centroid", valid_fraction=0.0)
    with pytest.raises(HizkitError, match=r"^\[train\] valid_fraction must lie"):
        hizkit.train("tiny", "centroid", config={"train": {"valid_fraction": "half"}})
    models = hizkit.train("tiny", "centroid", config={"train": {"valid_fraction": 0.5}})
    assert models["centroid"].manifest["metrics"]["n"] == 45  # half of 90 sources


def test_adding_a_setting_is_one_entry(monkeypatch, capsys):
    """CONTRIBUTING's worked example, done: one Option, and the flag, the file key, the
    check and the setting exist."""
    cap = cfg.Option(
        "predict", "max_sources", cfg.optional(cfg.whole(1)), None,
        "classify only the first N sources of the catalog (default: all)",
        ("predict",), metavar="N",
    )  # fmt: skip
    monkeypatch.setattr(cfg, "OPTIONS", (*cfg.OPTIONS, cap))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "--help"])
    assert "--max-sources N" in capsys.readouterr().out
    args = build_parser().parse_args(
        ["predict", "--model", "m", "--out", "o", "--max-sources", "7"]
    )
    assert cfg.Settings.load({}, vars(args), "predict").predict.max_sources == 7
    assert (
        cfg.Settings.load({"predict": {"max_sources": 3}}, {}, "predict").predict.max_sources == 3
    )
    with pytest.raises(HizkitError, match=r"^\[predict\] max_sources must be at least 1"):
        cfg.Settings.load({"predict": {"max_sources": 0}}, {}, "predict")
