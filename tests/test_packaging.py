"""The wheel holds every module and data file of the tree: packages are found, not
listed, so splitting a plugin into a package (``plugins/cnn/``) keeps it installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPORT_ROOTS = {"core": "hizkit", "plugins": "hizkit/plugins"}


def shipped(folder: str) -> set[str]:
    """What of ``folder`` must be installed: its modules and TOML files, as wheel paths."""
    base = ROOT / folder
    return {
        f"{IMPORT_ROOTS[folder]}/{p.relative_to(base).as_posix()}"
        for p in base.rglob("*")
        if p.suffix in (".py", ".toml") and "__pycache__" not in p.parts
    }


@pytest.mark.slow
def test_wheel_holds_every_module_and_data_file(tmp_path):
    src = tmp_path / "src"  # a copy: the build writes build/ and *.egg-info beside it
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("core", "plugins"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("hizkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = shipped("core") | shipped("plugins")
    assert "hizkit/plugins/layouts/jades_v2.toml" in expected
    assert expected <= names, sorted(expected - names)
