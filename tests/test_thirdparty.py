"""A third-party classifier distribution, pip-installed, is listed and benchmarked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN = """
import numpy as np
import hizkit


class BrightestBand(hizkit.Classifier):
    name = "brightest"
    description = "Third-party test plugin: high-z when the reddest band dominates"
    requires = frozenset({"photometry"})

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, train, valid=None):
        return self

    def predict_proba(self, data):
        flux, _ = data.photometry()
        red = np.nan_to_num(flux[:, -1]) > np.nan_to_num(flux[:, 0]) * 3
        p = np.where(red[:, None], [0.2, 0.7, 0.1], [0.7, 0.2, 0.1])
        return p

    def _save_state(self, directory):
        pass

    def _load_state(self, directory):
        pass


@hizkit.hookimpl
def hizkit_register_classifiers():
    return [BrightestBand]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("hizkit-brightest")
    (root / "hizkit_brightest.py").write_text(PLUGIN)
    (root / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "hizkit-brightest"
        version = "0.3.1"
        dependencies = ["hizkit"]

        [project.entry-points.hizkit]
        brightest = "hizkit_brightest"

        [tool.setuptools]
        py-modules = ["hizkit_brightest"]
    """)
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", str(root)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield
    subprocess.run([*pip, "uninstall", "-y", "hizkit-brightest"], capture_output=True, timeout=300)


def _hizkit(*args, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HIZKIT_DISABLE_PLUGIN_AUTOLOAD"}
    env["HIZKIT_CACHE_DIR"] = str(tmp_path / "cache")
    return subprocess.run(
        [sys.executable, "-m", "hizkit.cli", "-q", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_listed_with_its_distribution(installed, tmp_path):
    proc = _hizkit("plugins", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = {i["name"]: i for i in json.loads(proc.stdout)}["brightest"]
    assert info["kind"] == "classifier"
    assert info["distribution"] == "hizkit-brightest" and info["version"] == "0.3.1"


def test_runs_in_bench(installed, tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text(
        '[data]\nsource = "mock"\nn_lowz = 20\nn_highz = 20\nn_brown_dwarfs = 4\n'
        "n_unlabelled = 0\ncutout_size = 32\n"
    )
    out = tmp_path / "run"
    proc = _hizkit(
        "bench",
        "--config",
        str(cfg),
        "--classifiers",
        "brightest,colour",
        "--out",
        str(out),
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["classifiers"]) == {"brightest", "colour", "photoz"}  # + the ceiling
    assert "brightest" in proc.stdout
