"""The third-party plugin's own tests: hizkit's conformance checks with one import, and
a benchmark through a registry that holds it (as ``pip install`` would register it)."""

from __future__ import annotations

import hizkit_centroid
import pytest

from hizkit.bench import BenchConfig, ClassifierSpec, run_benchmark
from hizkit.registry import Registry
from hizkit.testing import check_plugin, example_data, parametrize_with_checks


@parametrize_with_checks([hizkit_centroid.NearestCentroid, hizkit_centroid.PredictedShares])
def test_hizkit_conformance(plugin, check):
    check(plugin)


@pytest.fixture(scope="module")
def registry():
    reg = Registry(autoload=False)
    reg.register(hizkit_centroid, name="hizkit-centroid")
    return reg


def test_registered_and_benchmarked(registry):
    assert registry.get("classifier", "centroid") is hizkit_centroid.NearestCentroid
    config = BenchConfig([ClassifierSpec("centroid", "centroid")], evaluators=["shares"])
    result = run_benchmark(example_data(), config, registry)
    assert result.summary()["centroid"]["accuracy"][0] > 0.6  # colours separate the classes
    assert "share_highz" in result.runs[0].metrics


def test_a_broken_variant_fails_the_checks():
    class Rounded(hizkit_centroid.NearestCentroid):
        name = "rounded"

        def __init__(self, temperature: float = 1.0) -> None:
            self.temperature = max(temperature, 2.5)  # clipped: not stored as given

    with pytest.raises(AssertionError, match="temperature"):
        check_plugin(Rounded)
