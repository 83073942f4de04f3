"""Every benchmark script runs on a tiny size (``--smoke``): its code paths work and it
prints its figures, the closing JSON line. No timing is asserted; the figures themselves
come from full-size runs (README, CONTRIBUTING: one script per speed or memory claim)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
#: the command line of each script's smoke run (after the script), and its figures' keys
SMOKE: dict[str, list[list[str]]] = {
    "cnn_protocols": [["export", "{work}/export", "--smoke"], ["run", "{work}/export", "--smoke"]],
    "predict_scaling": [["--smoke", "--workdir", "{work}"]],
    "predict_throughput": [["--smoke", "--workdir", "{work}"]],
}
FIGURES = {
    "cnn_protocols": "protocols",
    "cnn_throughput": "train_speedup_default",
    "cutout_throughput": "hizkit_sources_per_s",
    "hog_throughput": "hizkit_cutouts_per_s",
    "mock_build": "survey_seconds",
    "predict_scaling": "efficiency_2_workers",
    "predict_throughput": "cnn",
    "rf_speed": "reference_silhouette",
    "segment_throughput": "default_cutouts_per_s",
}


def test_every_script_has_a_smoke_run():
    assert set(SCRIPTS) == set(FIGURES)
    for name in SCRIPTS:
        assert "--smoke" in (BENCHMARKS / f"{name}.py").read_text(), name


def run_script(name: str, args: list[str]) -> str:
    env = {**os.environ, "HIZKIT_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *args],
        cwd=BENCHMARKS,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{name} {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_runs_on_a_tiny_size(name, tmp_path_factory):
    """The work directory is shared by predict_throughput and predict_scaling (one tiny
    field and model set, built by whichever runs first)."""
    work = tmp_path_factory.getbasetemp() / "benchmarks-work"
    work.mkdir(exist_ok=True)
    out = ""
    for args in SMOKE.get(name, [["--smoke"]]):
        out = run_script(name, [a.format(work=work) for a in args])
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["benchmark"] == name
    assert FIGURES[name] in figures, figures
