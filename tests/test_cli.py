"""The command line: helpful output, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import hizkit
from hizkit.cli import main
from hizkit.registry import Registry


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


def test_top_level_and_plugin_command_help_explain():
    top = run("--help")
    assert top.returncode == 0 and "simulate" in top.stdout and "bench" in top.stdout
    sim = run("simulate", "--help")
    assert sim.returncode == 0 and "TRUTH extension" in sim.stdout and "--n-lowz" in sim.stdout


class CommandPlugin:
    """A third-party plugin adding ``hizkit hello``."""

    @hizkit.hookimpl
    def hizkit_register_commands(self, subparsers):
        p = subparsers.add_parser("hello", help="say hello from a plugin")
        p.add_argument("--name", default="world")
        p.set_defaults(func=self.hello)

    @staticmethod
    def hello(args) -> int:
        if args.name == "error":
            raise hizkit.HizkitError("hello: no such name")
        print(f"hello {args.name}")
        return 0


class ClashingPlugin:
    @hizkit.hookimpl
    def hizkit_register_commands(self, subparsers):
        subparsers.add_parser("bench", help="takes a core command's name")


@pytest.fixture
def plugged(monkeypatch):
    reg = Registry(autoload=False)
    monkeypatch.setattr("hizkit.registry._CURRENT", [reg])
    return reg


def test_a_plugin_command_appears_in_help_and_runs(plugged, capsys):
    plugged.register(CommandPlugin(), name="tests.hello")
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "say hello from a plugin" in capsys.readouterr().out
    assert main(["hello", "--name", "hizkit"]) == 0
    assert capsys.readouterr().out == "hello hizkit\n"
    assert main(["hello", "--name", "error"]) == 2  # its errors are one line too
    assert capsys.readouterr().err == "hizkit: error: hello: no such name\n"


def test_a_plugin_command_taking_a_taken_name_is_skipped_with_a_warning(plugged, capsys):
    plugged.register(ClashingPlugin(), name="tests.clash")
    assert main(["plugins", "--json"]) == 0
    out = capsys.readouterr()
    assert "tests.clash" in out.err and "broken and skipped" in out.err
    assert any(i["name"] == "tests.clash" for i in json.loads(out.out))


def test_show_works_on_a_jades_field(jades_field, tmp_path, capsys):
    out = tmp_path / "fig.png"
    rc = main(["show", "--data", f"jades:{jades_field}", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert out.stat().st_size > 10000
