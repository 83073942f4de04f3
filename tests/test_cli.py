"""The command line: helpful output, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hizkit.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hizkit.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_unknown_classifier_is_one_line_and_nonzero():
    proc = run("bench", "--classifiers", "nonexistent")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "unknown classifier 'nonexistent'" in lines[0] and "cnn" in lines[0]


def test_plugins_json_lists_builtins():
    proc = run("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    infos = json.loads(proc.stdout)
    assert {"mock", "cnn", "rf", "xgb", "colour"} <= {i["name"] for i in infos}
    assert all(i["description"] and i["version"] for i in infos)


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--runs", "0", "--classifiers", "colour"], "--runs must be at least 1"),
        (["bench", "--config", "/nonexistent.toml"], "does not exist"),
        (["bench", "--data", "nowhere", "--classifiers", "colour"], "unknown data source"),
    ],
)
def test_bad_input_messages(args, message, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_bad_toml(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[bench\nruns = 1")
    assert main(["bench", "--config", str(cfg)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_existing_out_dir_is_refused(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    assert main(["bench", "--classifiers", "colour", "--out", str(tmp_path / "r")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_help_explains():
    proc = run("bench", "--help")
    assert proc.returncode == 0
    assert "shared" in proc.stdout and "--classifiers" in proc.stdout
